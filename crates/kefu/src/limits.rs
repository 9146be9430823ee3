//! Load shedding and per-caller rate limits, decided before a call does any work.
//!
//! Every call takes a slot of the global concurrency limit; expensive reads (reports,
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

/// The slots a call holds while it runs.
#[derive(Debug)]
pub struct Admitted {
    _call: OwnedSemaphorePermit,
    _expensive: Option<OwnedSemaphorePermit>,
}

/// The limits of one server.
#[derive(Debug, Clone)]
pub struct Limiter {
    calls: Arc<Semaphore>,
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
    /// `tokens` identify the principal of an expensive read, for its rate limit.
    pub fn new(limits: &CallLimits, tokens: Tokens) -> Self {
        let rate = limits.expensive_reads_per_second.map(|per_second| Rate {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(limits.expensive_reads_burst.max(1)),
            buckets: Arc::default(),
        });
        Limiter {
            calls: Arc::new(Semaphore::new(limits.max_concurrent_calls.max(1))),
            expensive: Arc::new(Semaphore::new(limits.max_concurrent_expensive_reads.max(1))),
            rate,
            tokens,
        }
    }

    /// Admits a call of `service` with `authorization` header, or says why not.
    pub fn admit(&self, service: &str, authorization: Option<&str>) -> Result<Admitted, Refused> {
        let overloaded = |what: &str| Refused {
            reason: "overloaded",
            message: format!("server is at its limit of concurrent {what}; retry shortly"),
            retry_after: SHED_RETRY,
        };
        let call = self.calls.clone().try_acquire_owned().map_err(|_| overloaded("calls"))?;
        if !is_expensive(service) {
            return Ok(Admitted { _call: call, _expensive: None });
        }
        // Unknown callers are refused by authentication, not counted here.
        if let (Some(rate), Ok(principal)) = (&self.rate, self.tokens.authenticate(authorization)) {
            rate.take(&principal.id, Instant::now())?;
        }
        let expensive = self
            .expensive
            .clone()
            .try_acquire_owned()
            .map_err(|_| overloaded("reports and exports"))?;
        Ok(Admitted { _call: call, _expensive: Some(expensive) })
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
}
