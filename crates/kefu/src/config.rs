//! The configuration file (`kefu.toml`), then `KEFU_…` environment variables, then
//! flags: one typed [`Config`], every key with a default, unknown keys refused with
//! their path, secrets masked when shown (`kefu config check`).
//!
//! Environment variables name keys in upper case after `KEFU_`, with `__` between
//! nested keys: `KEFU_LISTEN` is `listen`, `KEFU_POLICY__AT_RISK_PERCENT` is
//! `policy.at_risk_percent`. The loader takes the environment as a map, so tests never
//! touch the process's. Variables that are not configuration (`KEFU_CONFIG` itself, the
//! example clients' `KEFU_TOKEN` and `KEFU_ADDRESS`, the test and bench harnesses') are
//! left alone; any other `KEFU_` variable must name a key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;
use kefu_domain::calendar::Calendar;
use kefu_domain::{PhoneRegion, Policy};
use serde::{Deserialize, Serialize};

use crate::settings::{parse_duration, redact, CallLimits, LogFormat, Settings, TlsFiles};

/// `KEFU_` variables that are not configuration keys.
const NOT_CONFIGURATION: &[&str] =
    &["KEFU_CONFIG", "KEFU_TOKEN", "KEFU_ADDRESS", "KEFU_GENERATED", "KEFU_BENCH_TOKEN"];
/// Prefixes of `KEFU_` variables that belong to test and bench harnesses.
const HARNESS_PREFIXES: &[&str] = &["KEFU_TEST_", "KEFU_BLESS_", "KEFU_BENCH_"];

/// Everything `kefu` can be configured with. Field names are the file's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://FILE` (embedded) or `postgres://…`.
    pub database_url: String,
    /// A PostgreSQL hot standby that answers the reporting RPCs.
    pub read_database_url: Option<String>,
    pub listen: SocketAddr,
    /// JSON file of hashed bearer tokens; without one a development token is made and
    /// only loopback addresses are allowed.
    pub tokens_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
    /// Where the console for people is served (`off`: nowhere). Loopback only unless
    /// `tokens_file`, `tls_cert` and `tls_key` are set; over TLS when they are.
    pub console_listen: String,
    /// How long a console session lasts after sign-in.
    #[serde(with = "duration_text")]
    pub console_session_ttl: Duration,
    pub otlp_endpoint: Option<String>,
    /// `text` or `json`.
    pub log_format: String,
    /// Who recorded policy changes name as their actor (R-T3).
    pub operator: String,
    #[serde(with = "duration_text")]
    pub shutdown_grace: Duration,
    #[serde(with = "duration_text")]
    pub read_wait: Duration,
    #[serde(with = "duration_text")]
    pub health_interval: Duration,
    #[serde(with = "duration_text")]
    pub metrics_interval: Duration,
    /// How often a `WatchSla` stream looks at the clock and the deadlines (R-T5).
    #[serde(with = "duration_text")]
    pub sla_watch_interval: Duration,
    pub max_concurrent_calls: usize,
    /// Calls one principal may have running at once, within `max_concurrent_calls`.
    pub max_concurrent_calls_per_principal: usize,
    pub max_concurrent_expensive_reads: usize,
    /// 0: unlimited.
    pub expensive_reads_per_second: u32,
    pub expensive_reads_burst: u32,
    /// 0: never.
    #[serde(with = "duration_text")]
    pub max_connection_age: Duration,
    #[serde(with = "duration_text")]
    pub max_connection_age_grace: Duration,
    /// A calendar file (TOML, the keys of `[policy.calendar]`) replacing
    /// `policy.calendar`.
    pub calendar_file: Option<PathBuf>,
    /// The region (ISO 3166, e.g. `CN`, `HK`) of phone numbers written without a country
    /// code: new ones are stored in E.164 by it, and the customer search index reads old
    /// ones in it.
    pub phone_region: PhoneRegion,
    /// Refuse to register a customer whose phone or email a customer the caller may see
    /// already has (ALREADY_EXISTS naming it); otherwise duplicates are only reported.
    pub refuse_duplicate_contacts: bool,
    pub pools: Pools,
    pub store: StoreLimits,
    /// The business's time zone, calendar and targets (R-T1..R-T3, R-C5).
    pub policy: Policy,
}

/// Connection pools and waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pools {
    /// Connections of the PostgreSQL pool.
    pub postgres_connections: u32,
    /// Connections of the read replica's pool.
    pub replica_connections: u32,
    /// After the shutdown grace, how long closed connections get to wind down.
    #[serde(with = "duration_text")]
    pub close_wait: Duration,
}

impl Default for Pools {
    fn default() -> Self {
        Pools {
            postgres_connections: 16,
            replica_connections: 8,
            close_wait: Duration::from_secs(1),
        }
    }
}

/// The event store's limits on one append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreLimits {
    pub max_events_per_append: usize,
    pub max_payload_bytes: usize,
    pub max_metadata_bytes: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        let limits = kefu_event_store::Limits::default();
        StoreLimits {
            max_events_per_append: limits.max_events_per_append,
            max_payload_bytes: limits.max_payload_bytes,
            max_metadata_bytes: limits.max_metadata_bytes,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let limits = CallLimits::default();
        let settings = Settings::new("sqlite://kefu.db", SocketAddr::from(([127, 0, 0, 1], 50051)));
        Config {
            database_url: settings.database_url,
            read_database_url: None,
            listen: settings.listen,
            tokens_file: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            metrics_listen: None,
            console_listen: "127.0.0.1:8080".into(),
            console_session_ttl: settings.console_session_ttl,
            otlp_endpoint: None,
            log_format: "text".into(),
            operator: "system".into(),
            shutdown_grace: settings.shutdown_grace,
            read_wait: settings.read_wait,
            health_interval: settings.health_interval,
            metrics_interval: settings.metrics_interval,
            sla_watch_interval: settings.sla_watch_interval,
            max_concurrent_calls: limits.max_concurrent_calls,
            max_concurrent_calls_per_principal: limits.max_concurrent_calls_per_principal,
            max_concurrent_expensive_reads: limits.max_concurrent_expensive_reads,
            expensive_reads_per_second: limits.expensive_reads_per_second.unwrap_or(0),
            expensive_reads_burst: limits.expensive_reads_burst,
            max_connection_age: limits.max_connection_age.unwrap_or(Duration::ZERO),
            max_connection_age_grace: limits.max_connection_age_grace,
            calendar_file: None,
            phone_region: settings.phone_region,
            refuse_duplicate_contacts: settings.refuse_duplicate_contacts,
            pools: Pools::default(),
            store: StoreLimits::default(),
            policy: Policy::default(),
        }
    }
}

/// Where the configuration comes from: a file (if any), the environment, and flags
/// given on the command line (each a key path and its value).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub flags: Vec<(String, Value)>,
}

impl Sources {
    /// The file named by `--config`, else by `KEFU_CONFIG`, with `env` and `flags`.
    pub fn new(
        config_flag: Option<PathBuf>,
        env: BTreeMap<String, String>,
        flags: Vec<(String, Value)>,
    ) -> Self {
        let file = config_flag.or_else(|| env.get("KEFU_CONFIG").map(PathBuf::from));
        Sources { file, env, flags }
    }
}

impl Config {
    /// Loads and checks the configuration: defaults, then the file, then the
    /// environment, then flags. Errors name the key and where its value came from.
    pub fn load(sources: &Sources) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = &sources.file {
            if !file.is_file() {
                anyhow::bail!("configuration file {} not found", file.display());
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        for (name, value) in &sources.env {
            if let Some(key) = env_key(name) {
                figment = figment.merge(Serialized::default(
                    &key,
                    value.parse::<Value>().unwrap_or_else(|never| match never {}),
                ));
            }
        }
        for (key, value) in &sources.flags {
            figment = figment.merge(Serialized::default(key, value.clone()));
        }
        let mut config: Config = figment.extract_lossy().map_err(|error| {
            let errors: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("configuration: {}", errors.join("; "))
        })?;
        if let Some(file) = config.calendar_file.clone() {
            let base = sources.file.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
            let path = if file.is_absolute() { file } else { base.join(file) };
            config.policy.calendar = load_calendar(&path)?;
        }
        config.check()?;
        Ok(config)
    }

    /// Refuses what deserialization cannot: an unusable policy or calendar, a
    /// half-configured TLS, a log format nobody knows.
    fn check(&self) -> anyhow::Result<()> {
        self.policy.check().map_err(|reason| anyhow::anyhow!("configuration: policy.{reason}"))?;
        self.log_format
            .parse::<LogFormat>()
            .map_err(|reason| anyhow::anyhow!("configuration: log_format: {reason}"))?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            anyhow::bail!("configuration: tls_cert and tls_key go together");
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            anyhow::bail!("configuration: tls_client_ca needs tls_cert and tls_key");
        }
        if self.operator.trim().is_empty() {
            anyhow::bail!("configuration: operator must name someone (\"system\" by default)");
        }
        self.check_durations()
    }

    /// Where the console is served: `None` for `off`.
    fn console_address(&self) -> anyhow::Result<Option<SocketAddr>> {
        match self.console_listen.trim() {
            "off" => Ok(None),
            address => address.parse().map(Some).map_err(|_| {
                anyhow::anyhow!(
                    "configuration: console_listen {address:?} is neither an address such as 127.0.0.1:8080 nor off"
                )
            }),
        }
    }

    /// Periods and waits within sense: a period of 0 would spin or stop a timer, and a
    /// wait past an hour holds a call slot for nothing.
    fn check_durations(&self) -> anyhow::Result<()> {
        let periods = [
            ("health_interval", self.health_interval),
            ("metrics_interval", self.metrics_interval),
            ("sla_watch_interval", self.sla_watch_interval),
        ];
        for (key, period) in periods {
            if period < MIN_PERIOD || period > MAX_WAIT {
                anyhow::bail!("configuration: {key} must be from 100ms to 1h");
            }
        }
        let waits = [
            ("read_wait", self.read_wait),
            ("shutdown_grace", self.shutdown_grace),
            ("max_connection_age_grace", self.max_connection_age_grace),
        ];
        for (key, wait) in waits {
            if wait > MAX_WAIT {
                anyhow::bail!("configuration: {key} must be at most 1h");
            }
        }
        self.console_address()?;
        let day = Duration::from_secs(24 * 3_600);
        if self.console_session_ttl < Duration::from_secs(60) || self.console_session_ttl > day {
            anyhow::bail!("configuration: console_session_ttl must be from 1m to 24h");
        }
        Ok(())
    }

    /// The effective configuration as TOML, passwords in URLs masked.
    pub fn show(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        shown.database_url = redact(&shown.database_url);
        shown.read_database_url = shown.read_database_url.as_deref().map(redact);
        shown.otlp_endpoint = shown.otlp_endpoint.as_deref().map(redact);
        // The calendar shown is the one in force, wherever it came from.
        shown.calendar_file = None;
        Ok(toml::to_string(&shown)?)
    }

    /// The server's settings.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut settings = Settings::new(self.database_url.clone(), self.listen);
        settings.tokens_file = self.tokens_file.clone();
        if let (Some(certificate), Some(key)) = (&self.tls_cert, &self.tls_key) {
            settings.tls = Some(TlsFiles {
                certificate: certificate.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            });
        }
        settings.metrics_listen = self.metrics_listen;
        settings.console_listen = self.console_address()?;
        settings.console_session_ttl = self.console_session_ttl;
        settings.read_database_url = self.read_database_url.clone();
        settings.log_format = self.log_format.parse().map_err(anyhow::Error::msg)?;
        settings.otlp_endpoint = self.otlp_endpoint.clone();
        settings.shutdown_grace = self.shutdown_grace;
        settings.read_wait = self.read_wait;
        settings.health_interval = self.health_interval;
        settings.metrics_interval = self.metrics_interval;
        settings.sla_watch_interval = self.sla_watch_interval;
        settings.limits = CallLimits {
            max_concurrent_calls: self.max_concurrent_calls,
            max_concurrent_calls_per_principal: self.max_concurrent_calls_per_principal,
            max_concurrent_expensive_reads: self.max_concurrent_expensive_reads,
            expensive_reads_per_second: Some(self.expensive_reads_per_second).filter(|n| *n > 0),
            expensive_reads_burst: self.expensive_reads_burst,
            max_connection_age: Some(self.max_connection_age).filter(|age| !age.is_zero()),
            max_connection_age_grace: self.max_connection_age_grace,
        };
        settings.policy = self.policy.clone();
        settings.operator = self.operator.clone();
        settings.store = self.store_options();
        settings.replica_connections = self.pools.replica_connections;
        settings.close_wait = self.pools.close_wait;
        settings.phone_region = self.phone_region;
        settings.refuse_duplicate_contacts = self.refuse_duplicate_contacts;
        Ok(settings)
    }

    /// The event store's options.
    pub fn store_options(&self) -> kefu_event_store::StoreOptions {
        kefu_event_store::StoreOptions {
            limits: kefu_event_store::Limits {
                max_events_per_append: self.store.max_events_per_append,
                max_payload_bytes: self.store.max_payload_bytes,
                max_metadata_bytes: self.store.max_metadata_bytes,
                ..kefu_event_store::Limits::default()
            },
            postgres_connections: self.pools.postgres_connections,
            ..kefu_event_store::StoreOptions::default()
        }
    }
}

/// The shortest period a timer of the server runs at.
const MIN_PERIOD: Duration = Duration::from_millis(100);
/// The longest period or wait the configuration accepts.
const MAX_WAIT: Duration = Duration::from_secs(3_600);

/// The key a `KEFU_` variable sets, or `None` for one that is not configuration.
fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("KEFU_")?;
    if NOT_CONFIGURATION.contains(&name) || HARNESS_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return None;
    }
    Some(rest.to_ascii_lowercase().split("__").collect::<Vec<_>>().join("."))
}

/// A calendar file: the keys of `[policy.calendar]`, unknown ones refused.
pub fn load_calendar(path: &Path) -> anyhow::Result<Calendar> {
    if !path.is_file() {
        anyhow::bail!("calendar file {} not found", path.display());
    }
    Figment::from(Toml::file_exact(path)).extract().map_err(|error| {
        let errors: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("calendar file {}: {}", path.display(), errors.join("; "))
    })
}

/// Durations as operators write them (`250ms`, `10s`, `30m`, `2h`; a bare number is
/// seconds), in the file and in the environment.
mod duration_text {
    use std::time::Duration;

    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        let millis = duration.as_millis();
        let text = if millis % 1000 != 0 {
            format!("{millis}ms")
        } else if millis % 3_600_000 == 0 && millis > 0 {
            format!("{}h", millis / 3_600_000)
        } else if millis % 60_000 == 0 && millis > 0 {
            format!("{}m", millis / 60_000)
        } else {
            format!("{}s", millis / 1000)
        };
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        struct Text;
        impl de::Visitor<'_> for Text {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"10s\", \"250ms\", \"30m\" or \"2h\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                super::parse_duration(text).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(seconds))
            }
            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
                u64::try_from(seconds)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom("a duration is not negative"))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../kefu.example.toml");
        let loaded = Config::load(&Sources { file: Some(example), ..Sources::default() }).unwrap();
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn file_then_environment_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kefu.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\nread_wait = \"2s\"\n[policy]\nat_risk_percent = 70\n",
        )
        .unwrap();
        let sources = Sources::new(
            None,
            env(&[
                ("KEFU_CONFIG", file.to_str().unwrap()),
                ("KEFU_LISTEN", "127.0.0.1:7001"),
                ("KEFU_POLICY__AT_RISK_PERCENT", "75"),
                ("KEFU_PHONE_REGION", "hk"),
                ("KEFU_REFUSE_DUPLICATE_CONTACTS", "true"),
                ("KEFU_TOKEN", "a client's, not ours"),
                ("KEFU_TEST_DATABASE_URL", "postgres://test"),
                ("PATH", "/bin"),
            ]),
            vec![("listen".into(), Value::from("127.0.0.1:7002"))],
        );
        let config = Config::load(&sources).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7002".parse().unwrap(), "the flag wins");
        assert_eq!(config.policy.at_risk_percent, 75, "the environment beats the file");
        assert_eq!(config.read_wait, Duration::from_secs(2), "the file beats the default");
        assert_eq!(config.max_concurrent_calls, 1024, "the default");
        // Lookup's settings (issue 20) are keys like any other, and reach the server.
        let settings = config.settings().unwrap();
        assert_eq!(settings.phone_region, "HK".parse().unwrap());
        assert!(settings.refuse_duplicate_contacts);
        assert_eq!(settings.console_listen, Some("127.0.0.1:8080".parse().unwrap()), "default");
        let off = Sources::new(None, env(&[("KEFU_CONSOLE_LISTEN", "off")]), vec![]);
        assert_eq!(Config::load(&off).unwrap().settings().unwrap().console_listen, None);
    }

    #[test]
    fn unknown_keys_are_refused_naming_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kefu.toml");
        std::fs::write(&file, "[policy.targets]\nfirst_responce = \"4 hours\"\n").unwrap();
        let error = Config::load(&Sources { file: Some(file), ..Sources::default() }).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("first_responce") && text.contains("policy.targets"), "{text}");
        let error = Config::load(&Sources::new(None, env(&[("KEFU_LISTN", "x")]), vec![]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("listn"), "{error}");
    }

    #[test]
    fn nonsense_values_are_refused() {
        for (key, value, expect) in [
            ("KEFU_POLICY__TIME_ZONE", "Mars/Olympus", "time_zone"),
            ("KEFU_POLICY__TARGETS__FIRST_RESPONSE", "soon", "first_response"),
            ("KEFU_POLICY__AT_RISK_PERCENT", "100", "at_risk_percent"),
            ("KEFU_READ_WAIT", "5 days", "read_wait"),
            // A period of 0 panicked every WatchSla (tokio's interval) or spun a timer.
            ("KEFU_SLA_WATCH_INTERVAL", "0s", "sla_watch_interval"),
            ("KEFU_HEALTH_INTERVAL", "0s", "health_interval"),
            ("KEFU_METRICS_INTERVAL", "0ms", "metrics_interval"),
            ("KEFU_READ_WAIT", "100000000h", "read_wait"),
            ("KEFU_LOG_FORMAT", "xml", "log_format"),
            ("KEFU_PHONE_REGION", "Atlantis", "phone_region"),
            ("KEFU_REFUSE_DUPLICATE_CONTACTS", "perhaps", "refuse_duplicate_contacts"),
            ("KEFU_CONSOLE_LISTEN", "everywhere", "console_listen"),
            ("KEFU_CONSOLE_SESSION_TTL", "30s", "console_session_ttl"),
            ("KEFU_CONSOLE_SESSION_TTL", "48h", "console_session_ttl"),
        ] {
            let error = Config::load(&Sources::new(None, env(&[(key, value)]), vec![]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expect), "{key}={value}: {error}");
        }
    }

    #[test]
    fn the_example_calendar_loads_from_a_flag() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let calendar = root.join("calendars/cn-example-2026.toml");
        let flags = vec![("calendar_file".to_owned(), Value::from(calendar.to_str().unwrap()))];
        let config = Config::load(&Sources::new(None, BTreeMap::new(), flags)).unwrap();
        let day = |text: &str| text.parse::<chrono::NaiveDate>().unwrap();
        assert!(config.policy.calendar.holidays.contains(&day("2026-10-01")));
        assert!(config.policy.calendar.makeup_days.contains(&day("2026-10-10")));
        assert_ne!(config.policy, Policy::default(), "the calendar is part of the policy");
    }

    #[test]
    fn a_calendar_without_working_time_is_refused_at_check() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kefu.toml");
        std::fs::write(&file, "calendar_file = \"idle.toml\"\n").unwrap();
        let idle = "[hours]\nmon = []\ntue = []\nwed = []\nthu = []\nfri = []\n";
        std::fs::write(dir.path().join("idle.toml"), idle).unwrap();
        let error = Config::load(&Sources { file: Some(file), ..Sources::default() }).unwrap_err();
        assert!(error.to_string().contains("no weekday has working hours"), "{error}");
    }

    #[test]
    fn shown_configuration_masks_database_passwords_and_reads_back() {
        let sources = Sources::new(
            None,
            env(&[
                ("KEFU_DATABASE_URL", "postgres://kefu:s3cret@db/kefu"),
                ("KEFU_READ_DATABASE_URL", "postgres://r:hidden@standby/kefu?password=x2"),
            ]),
            vec![],
        );
        let shown = Config::load(&sources).unwrap().show().unwrap();
        assert!(
            !shown.contains("s3cret") && !shown.contains("hidden") && !shown.contains("x2"),
            "{shown}"
        );
        assert!(shown.contains("postgres://kefu:***@db/kefu"), "{shown}");
        // What is shown is a configuration file giving the same configuration.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shown.toml");
        std::fs::write(&file, Config::default().show().unwrap()).unwrap();
        let again = Config::load(&Sources { file: Some(file), ..Sources::default() }).unwrap();
        assert_eq!(again, Config::default());
    }
}
