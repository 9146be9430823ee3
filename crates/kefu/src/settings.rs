//! Everything `kefu serve` can be told, in one struct (`config::Config`, from
//! `kefu.toml`, the environment and flags, maps onto it), with the defaults an
//! operator gets without saying anything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use kefu_api::Clock;
use kefu_domain::Policy;
use kefu_event_store::StoreOptions;

/// Everything `kefu serve` can be told.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub listen: SocketAddr,
    /// Hashed bearer tokens; without one a development admin token is made.
    pub tokens_file: Option<PathBuf>,
    /// A fixed clock for tests; the wall clock when `None`.
    pub clock: Option<Clock>,
    /// How long reads wait for `min_position`.
    pub read_wait: Duration,
    /// PEM certificate chain and private key: serve TLS (rustls) when both are set.
    pub tls: Option<TlsFiles>,
    /// Where to serve Prometheus metrics (`GET /metrics`); none when `None`.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the console for people is served; none when `None` (the default here:
    /// `kefu serve`'s configuration defaults to 127.0.0.1:8080).
    pub console_listen: Option<SocketAddr>,
    /// How long a console session lasts after sign-in.
    pub console_session_ttl: Duration,
    /// A PostgreSQL hot standby of the database that answers the reporting RPCs.
    pub read_database_url: Option<String>,
    /// How log lines are written (`main` sets up logging from it).
    pub log_format: LogFormat,
    /// Where spans are exported (OTLP over gRPC, e.g. `http://collector:4317`); none
    /// when `None`.
    pub otlp_endpoint: Option<String>,
    /// After a shutdown signal, how long in-flight calls may take before every
    /// connection is closed and the server stops anyway.
    pub shutdown_grace: Duration,
    /// How often the health service checks the database, the writer and the projections.
    pub health_interval: Duration,
    /// How often the gauges that cost a query (projection lag, SLA breaches) are refreshed.
    pub metrics_interval: Duration,
    /// Concurrency, rate and connection limits.
    pub limits: CallLimits,
    /// The business's time zone, calendar and targets (R-T1..R-T3); recorded at start
    /// when it differs from the last recorded one.
    pub policy: Policy,
    /// Who recorded policy changes name as their actor.
    pub operator: String,
    /// The event store's pool and limits.
    pub store: StoreOptions,
    /// Connections a read replica pool opens at most.
    pub replica_connections: u32,
    /// After the grace period, how long the closed connections get to wind down.
    pub close_wait: Duration,
    /// How often a `WatchSla` stream looks at the clock and the deadlines (R-T5).
    pub sla_watch_interval: Duration,
    /// The region of phone numbers written without a country code: new ones are
    /// normalised to E.164 in it, and the read model reads old ones in it (CN).
    pub phone_region: kefu_domain::PhoneRegion,
    /// Refuse a new customer whose phone or email a customer the caller may see has.
    pub refuse_duplicate_contacts: bool,
}

/// Where the server's certificate and key are, and whose clients it accepts.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
    /// PEM certificates of the CAs whose client certificates are accepted: with one,
    /// every client must present a certificate it signed (mutual TLS). The caller's
    /// principal still comes from its bearer token.
    pub client_ca: Option<PathBuf>,
}

/// How much work the server takes on at once, and from whom.
#[derive(Debug, Clone, PartialEq)]
pub struct CallLimits {
    /// Calls served at once; beyond it calls are shed with `RESOURCE_EXHAUSTED` and a
    /// `RetryInfo`, before any work is done for them.
    pub max_concurrent_calls: usize,
    /// Calls one principal may have running at once, within `max_concurrent_calls`:
    /// well below it, so no one caller (a runaway job, a stolen token) can hold the
    /// whole pool and starve the others' commands.
    pub max_concurrent_calls_per_principal: usize,
    /// Expensive reads (reports, the event log, audit replays and exports) served at
    /// once, within `max_concurrent_calls`: the rest of the capacity stays free for
    /// commands, so a flood of reports cannot starve filings.
    pub max_concurrent_expensive_reads: usize,
    /// Expensive reads one principal may start per second (a token bucket of
    /// `expensive_reads_burst`); `None`: unlimited.
    pub expensive_reads_per_second: Option<u32>,
    pub expensive_reads_burst: u32,
    /// A connection older than this is asked to go away (HTTP/2 GOAWAY), so clients
    /// reconnect and spread over the nodes behind an L4 balancer; `None`: never.
    pub max_connection_age: Option<Duration>,
    /// How long an aged connection may finish its calls before it is closed.
    pub max_connection_age_grace: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            max_concurrent_calls: 1024,
            max_concurrent_calls_per_principal: 64,
            max_concurrent_expensive_reads: 64,
            expensive_reads_per_second: Some(10),
            expensive_reads_burst: 20,
            max_connection_age: Some(Duration::from_secs(30 * 60)),
            max_connection_age_grace: Duration::from_secs(30),
        }
    }
}

impl CallLimits {
    /// No limit at all (benchmarks measuring capacity).
    pub fn unlimited() -> Self {
        CallLimits {
            max_concurrent_calls: usize::MAX >> 4,
            max_concurrent_calls_per_principal: usize::MAX >> 4,
            max_concurrent_expensive_reads: usize::MAX >> 4,
            expensive_reads_per_second: None,
            max_connection_age: None,
            ..CallLimits::default()
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, span fields before the message.
    #[default]
    Text,
    /// One JSON object per line: the event's fields at the top, the spans' fields
    /// (method, principal, request id, trace id…) under `spans`.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?} is neither text nor json")),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact(&self.database_url))
            .field("listen", &self.listen)
            .field("tokens_file", &self.tokens_file)
            .field("read_database_url", &self.read_database_url.as_deref().map(redact))
            .field("tls", &self.tls)
            .field("metrics_listen", &self.metrics_listen)
            .field("console_listen", &self.console_listen)
            .field("log_format", &self.log_format)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("limits", &self.limits)
            .field("policy", &self.policy)
            .field("operator", &self.operator)
            .field("phone_region", &self.phone_region)
            .field("refuse_duplicate_contacts", &self.refuse_duplicate_contacts)
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub fn new(database_url: impl Into<String>, listen: SocketAddr) -> Self {
        Settings {
            database_url: database_url.into(),
            listen,
            tokens_file: None,
            clock: None,
            read_wait: Duration::from_secs(5),
            tls: None,
            metrics_listen: None,
            console_listen: None,
            console_session_ttl: Duration::from_secs(8 * 3_600),
            read_database_url: None,
            log_format: LogFormat::default(),
            otlp_endpoint: None,
            shutdown_grace: Duration::from_secs(10),
            health_interval: Duration::from_secs(5),
            metrics_interval: Duration::from_secs(15),
            limits: CallLimits::default(),
            policy: Policy::default(),
            operator: "system".to_owned(),
            store: StoreOptions::default(),
            replica_connections: 8,
            close_wait: Duration::from_secs(1),
            sla_watch_interval: Duration::from_secs(30),
            phone_region: kefu_domain::PhoneRegion::default(),
            refuse_duplicate_contacts: false,
        }
    }
}

/// A duration as an operator writes it: `250ms`, `10s`, `30m`, `2h`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: u64 =
        digits.parse().map_err(|_| format!("{text:?} is not a duration such as 10s or 30m"))?;
    let duration = match unit {
        "ms" => Some(Duration::from_millis(amount)),
        "" | "s" => Some(Duration::from_secs(amount)),
        "m" => amount.checked_mul(60).map(Duration::from_secs),
        "h" => amount.checked_mul(3_600).map(Duration::from_secs),
        _ => return Err(format!("{text:?} has an unknown unit (ms, s, m or h)")),
    };
    duration.ok_or_else(|| format!("{text:?} is too long"))
}

/// A database URL with any password replaced, fit for logs and error messages: the
/// `user:password@` part and `password=` query parameters.
pub fn redact(url: &str) -> String {
    if !url.contains("://") {
        return redact_key_values(url);
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &base[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    let Some(query) = query else { return base };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// A key/value connection string (`host=db password=… user=kefu`), its password masked.
fn redact_key_values(conninfo: &str) -> String {
    conninfo
        .split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_wherever_the_url_holds_them() {
        assert_eq!(redact("postgres://kefu:s3cret@db/kefu"), "postgres://kefu:***@db/kefu");
        assert_eq!(redact("sqlite://kefu.db"), "sqlite://kefu.db");
        assert_eq!(redact("host=db password=KV1 user=kefu"), "host=db password=*** user=kefu");
        assert_eq!(redact("http://user:Otlp1@collector:4317"), "http://user:***@collector:4317");
        assert_eq!(
            redact("postgres://db/kefu?user=kefu&password=s3cret&sslmode=require"),
            "postgres://db/kefu?user=kefu&password=***&sslmode=require"
        );
        assert_eq!(
            redact("postgres://k:a@db/kefu?sslpassword=s3cret"),
            "postgres://k:***@db/kefu?sslpassword=***"
        );
        let settings = Settings {
            read_database_url: Some("postgres://r:hidden@standby/kefu".into()),
            ..Settings::new("postgres://db/kefu?password=s3cret", "127.0.0.1:1".parse().unwrap())
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("hidden"), "{shown}");
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        for bad in ["", "s", "10 days", "-1s", "1.5s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
