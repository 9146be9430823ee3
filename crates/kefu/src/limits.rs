//! Load shedding and per-caller rate limits, decided before a call does any work.
//!
//! Every call takes a slot of the global concurrency limit and one of its principal's
//! smaller share, so no one caller can hold the whole pool; expensive reads (reports,
//! the event log, audit replays and exports) also take one of a smaller pool, so they
//! can never hold all the capacity commands need, and each principal may start only
//! so many of them per second. A call that finds no room is refused at once with
//! `RESOURCE_EXHAUSTED` and a `google.rpc.RetryInfo` saying when to try again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kefu_api::auth::Tokens;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::CallLimits;

/// The services whose every RPC is an expensive read: reports, the raw event log
/// (`ReadAll`, `Subscribe`), audit replays, verifications and exports.
const EXPENSIVE_SERVICES: [&str; 3] =
    ["kefu.v1.ReportingService", "kefu.v1.EventService", "kefu.v1.AuditService"];
/// When a shed caller is told to retry: a moment, long enough for calls to finish.
const SHED_RETRY: Duration = Duration::from_millis(200);
/// Principals whose buckets are remembered at most; idle ones are forgotten beyond it.
const TRACKED_PRINCIPALS: usize = 10_000;

/// Whether a call of `service` is an expensive read.
pub fn is_expensive(service: &str) -> bool {
    EXPENSIVE_SERVICES.contains(&service)
}

/// Why a call was refused, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: &'static str,
    pub message: String,
    pub retry_after: Duration,
}

impl Refused {
    /// The status the caller gets: `RESOURCE_EXHAUSTED` with a `RetryInfo`.
    pub fn status(&self) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt};
        tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            self.message.clone(),
            ErrorDetails::with_retry_info(Some(self.retry_after)),
        )
    }
}

/// The slots a call holds while its handler runs.
#[derive(Debug)]
pub struct Admitted {
    call: OwnedSemaphorePermit,
    share: Option<Share>,
    _expensive: Option<OwnedSemaphorePermit>,
}

/// What a call keeps once its handler answered, until its response body ends: a server
/// stream (the event feed, a replay) runs for as long as it is open, so it holds its
/// call slot and its principal's share for its whole life. The expensive-read slot is
/// given back then: that pool bounds the work of answering, and followers of the feed
/// must not keep reports out.
#[derive(Debug)]
pub struct Held {
    _call: OwnedSemaphorePermit,
    _share: Option<Share>,
}

impl Admitted {
    pub fn answered(self) -> Held {
        Held { _call: self.call, _share: self.share }
    }
}

/// Calls running per principal; an entry lives while its principal has calls running,
/// so the map is never larger than the calls in flight.
type Running = Arc<Mutex<HashMap<String, usize>>>;

/// One running call of a principal, given back when the call ends.
#[derive(Debug)]
struct Share {
    principal: String,
    running: Running,
}

impl Drop for Share {
    fn drop(&mut self) {
        let Ok(mut running) = self.running.lock() else { return };
        if let Some(count) = running.get_mut(&self.principal) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.principal);
            }
        }
    }
}

/// The limits of one server.
#[derive(Debug, Clone)]
pub struct Limiter {
    calls: Arc<Semaphore>,
    per_principal: usize,
    running: Running,
    expensive: Arc<Semaphore>,
    rate: Option<Rate>,
    tokens: Tokens,
}

#[derive(Debug, Clone)]
struct Rate {
    per_second: f64,
    burst: f64,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

/// A token bucket: `tokens` left as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    /// `tokens` identify the principal of a call, for its share and its rate limit.
    pub fn new(limits: &CallLimits, tokens: Tokens) -> Self {
        let rate = limits.expensive_reads_per_second.map(|per_second| Rate {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(limits.expensive_reads_burst.max(1)),
            buckets: Arc::default(),
        });
        Limiter {
            calls: Arc::new(Semaphore::new(limits.max_concurrent_calls.max(1))),
            per_principal: limits.max_concurrent_calls_per_principal.max(1),
            running: Running::default(),
            expensive: Arc::new(Semaphore::new(limits.max_concurrent_expensive_reads.max(1))),
            rate,
            tokens,
        }
    }

    /// Admits a call of `service` with `authorization` header, or says why not.
    pub fn admit(&self, service: &str, authorization: Option<&str>) -> Result<Admitted, Refused> {
        // Unknown callers are refused by authentication, not counted here.
        let principal = self.tokens.authenticate(authorization).ok();
        self.admit_as(service, principal.as_ref().map(|principal| principal.id.as_str()))
    }

    /// Admits a call of `service` by `principal` (none: not yet authenticated).
    fn admit_as(&self, service: &str, principal: Option<&str>) -> Result<Admitted, Refused> {
        let overloaded = |what: &str| Refused {
            reason: "overloaded",
            message: format!("server is at its limit of concurrent {what}; retry shortly"),
            retry_after: SHED_RETRY,
        };
        let call = self.calls.clone().try_acquire_owned().map_err(|_| overloaded("calls"))?;
        let share = match principal {
            Some(principal) => Some(self.share(principal)?),
            None => None,
        };
        if !is_expensive(service) {
            return Ok(Admitted { call, share, _expensive: None });
        }
        if let (Some(rate), Some(principal)) = (&self.rate, principal) {
            rate.take(principal, Instant::now())?;
        }
        let expensive = self
            .expensive
            .clone()
            .try_acquire_owned()
            .map_err(|_| overloaded("reports and exports"))?;
        Ok(Admitted { call, share, _expensive: Some(expensive) })
    }

    /// One of `principal`'s calls, or `RESOURCE_EXHAUSTED` when it already has its share
    /// of the pool running (its own calls must end first; nobody else is affected).
    fn share(&self, principal: &str) -> Result<Share, Refused> {
        let refused = || Refused {
            reason: "principal_limit",
            message: format!(
                "{principal} has {} calls running, its limit; retry when one has ended",
                self.per_principal
            ),
            retry_after: SHED_RETRY,
        };
        let mut running = self.running.lock().map_err(|_| refused())?;
        let count = running.entry(principal.to_owned()).or_insert(0);
        if *count >= self.per_principal {
            return Err(refused());
        }
        *count += 1;
        Ok(Share { principal: principal.to_owned(), running: self.running.clone() })
    }
}

/// The console's calls, made in-process as a signed-in principal, take the very slots
/// and rate a gRPC call of that principal takes: one budget per principal, whichever
/// way it calls.
impl kefu_api::inproc::Gate for Limiter {
    fn admit(
        &self,
        service: &'static str,
        who: &kefu_api::auth::Principal,
    ) -> Result<kefu_api::inproc::Pass, tonic::Status> {
        let admitted = self.admit_as(service, Some(&who.id)).map_err(|refused| {
            metrics::counter!(crate::metrics::RPC_SHED, "reason" => refused.reason).increment(1);
            refused.status()
        })?;
        let Admitted { call, share, _expensive: expensive } = admitted;
        Ok(kefu_api::inproc::Pass::new(expensive, (call, share)))
    }
}

impl Rate {
    /// Takes a token of `principal`'s bucket, or says how long until one is there.
    fn take(&self, principal: &str, now: Instant) -> Result<(), Refused> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() >= TRACKED_PRINCIPALS && !buckets.contains_key(principal) {
            // A full bucket is as good as a forgotten one.
            let full = Duration::from_secs_f64(self.burst / self.per_second);
            buckets.retain(|_, bucket| now.duration_since(bucket.at) < full);
        }
        let bucket =
            buckets.entry(principal.to_owned()).or_insert(Bucket { tokens: self.burst, at: now });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second);
        Err(Refused {
            reason: "rate_limited",
            message: format!(
                "{principal} may start {} reports, log reads and exports per second; retry in {} ms",
                self.per_second,
                wait.as_millis().max(1)
            ),
            retry_after: wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> Rate {
        Rate { per_second: f64::from(per_second), burst: f64::from(burst), buckets: Arc::default() }
    }

    #[test]
    fn a_principal_gets_its_burst_then_its_rate_and_others_are_not_affected() {
        let rate = rate(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            rate.take("an1", start).unwrap();
        }
        let refused = rate.take("an1", start).unwrap_err();
        assert_eq!(refused.reason, "rate_limited");
        let about = |d: Duration| d.abs_diff(Duration::from_millis(100)) < Duration::from_millis(1);
        assert!(about(refused.retry_after), "{:?}", refused.retry_after);
        rate.take("an2", start).expect("another principal has a bucket of its own");
        rate.take("an1", start + Duration::from_millis(100)).expect("refilled after 1/rate");
        assert!(rate.take("an1", start + Duration::from_millis(100)).is_err());
        let status = refused.status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        use tonic_types::StatusExt;
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert!(retry.retry_delay.is_some_and(about), "{retry:?}");
    }

    #[test]
    fn concurrency_is_shed_beyond_the_limits_and_commands_keep_their_share() {
        let limits = CallLimits {
            max_concurrent_calls: 3,
            max_concurrent_expensive_reads: 1,
            expensive_reads_per_second: None,
            ..CallLimits::default()
        };
        let limiter = Limiter::new(&limits, Tokens::default());
        let report = limiter.admit("kefu.v1.ReportingService", None).expect("one report");
        let refused = limiter.admit("kefu.v1.AuditService", None).unwrap_err();
        assert_eq!(refused.reason, "overloaded");
        let filing = limiter.admit("kefu.v1.ComplaintService", None).expect("commands go on");
        let second = limiter.admit("kefu.v1.CustomerService", None).expect("still room");
        assert!(limiter.admit("kefu.v1.CustomerService", None).is_err(), "global limit");
        drop((report, filing, second));
        limiter.admit("kefu.v1.EventService", None).expect("slots come back");
    }

    #[test]
    fn a_principal_holds_its_share_and_no_more_and_others_are_not_affected() {
        let limits = CallLimits {
            max_concurrent_calls: 10,
            max_concurrent_calls_per_principal: 2,
            expensive_reads_per_second: None,
            ..CallLimits::default()
        };
        let entry = |principal: &str| {
            let hash = kefu_api::auth::hash_token(&format!("token-{principal}"));
            format!(
                r#"{{"sha256":"{hash}","principal":"{principal}","roles":["agent"],"clearance":"public"}}"#
            )
        };
        let tokens = Tokens::parse(&format!(r#"{{"tokens":[{},{}]}}"#, entry("p1"), entry("p2")))
            .expect("tokens");
        let limiter = Limiter::new(&limits, tokens);
        let (p1, p2) = (Some("Bearer token-p1"), Some("Bearer token-p2"));
        let first = limiter.admit("kefu.v1.CustomerService", p1).expect("first");
        let second = limiter.admit("kefu.v1.ReportingService", p1).expect("second");
        let refused = limiter.admit("kefu.v1.ComplaintService", p1).unwrap_err();
        assert_eq!(refused.reason, "principal_limit");
        assert!(!refused.retry_after.is_zero());
        limiter.admit("kefu.v1.ComplaintService", p2).expect("another principal goes on");
        limiter.admit("kefu.v1.ComplaintService", None).expect("unknown: left to authentication");
        drop(first);
        let third = limiter.admit("kefu.v1.ComplaintService", p1).expect("a share comes back");
        drop((second, third));
        assert!(limiter.running.lock().expect("lock").is_empty(), "no principal kept");
    }
}
