//! The kefu application: settings and the wiring of store, projections and gRPC server.
//!
//! `Application::build` opens everything and binds the listener (port 0 works, for
//! tests); `run_until` serves until the shutdown future resolves, then lets in-flight
//! calls finish and stops the projection runner.

mod caller_errors;
mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use kefu_api::auth::Tokens;
use kefu_api::{Api, ApiConfig, Clock};
use kefu_event_store::{EventStore, StoreOptions};
use kefu_projection::{all_projections_in, Runner};
use tokio::net::TcpListener;

/// Where the development token is written when no tokens file is configured.
pub const DEV_TOKEN_FILE: &str = "kefu-dev-token";

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
    /// The region of phone numbers written without a country code: new ones are
    /// normalised to E.164 in it, and the read model reads old ones in it (CN).
    pub phone_region: kefu_domain::PhoneRegion,
    /// Refuse a new customer whose phone or email a customer the caller may see has.
    pub refuse_duplicate_contacts: bool,
}

/// Where the server's certificate and key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact(&self.database_url))
            .field("listen", &self.listen)
            .field("tokens_file", &self.tokens_file)
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
            phone_region: kefu_domain::PhoneRegion::default(),
            refuse_duplicate_contacts: false,
        }
    }
}

/// A built, bound, not yet serving kefu.
pub struct Application {
    listener: TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
    store: EventStore,
    runner: Runner,
    api: Api,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("listener", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store =
            EventStore::open(&settings.database_url, StoreOptions::default()).await.with_context(
                || format!("open the event store at {}", redact(&settings.database_url)),
            )?;
        let tokens = match &settings.tokens_file {
            Some(path) => Tokens::load(path)?,
            None => {
                if !settings.listen.ip().is_loopback() {
                    bail!("refusing to listen on {} with only a development token: configure --tokens-file", settings.listen);
                }
                let path = dev_token_path(&settings.database_url);
                let token = dev_token(&path)?;
                tracing::warn!(path = %path.display(), "no tokens file configured: a development admin token is in this file");
                Tokens::single_admin(&token)
            }
        };
        let runner = Runner::new(store.clone(), all_projections_in(settings.phone_region));
        runner.prepare().await.context("prepare the projections")?;
        let mut config = ApiConfig::new(tokens);
        if let Some(clock) = settings.clock {
            config.clock = clock;
        }
        config.read_wait = settings.read_wait;
        config.phone_region = settings.phone_region;
        config.refuse_duplicate_contacts = settings.refuse_duplicate_contacts;
        let api = Api::new(store.clone(), runner.clone(), config);
        let tls = match &settings.tls {
            None => None,
            Some(files) => {
                let certificate = std::fs::read(&files.certificate).with_context(|| {
                    format!("read TLS certificate {}", files.certificate.display())
                })?;
                let key = std::fs::read(&files.key)
                    .with_context(|| format!("read TLS key {}", files.key.display()))?;
                let identity = tonic::transport::Identity::from_pem(certificate, key);
                Some(tonic::transport::ServerTlsConfig::new().identity(identity))
            }
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("bind {}", settings.listen))?;
        let metrics = match settings.metrics_listen {
            None => None,
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("bind metrics on {address}"))?;
                Some((listener, metrics::handle()?))
            }
        };
        Ok(Application { listener, tls, metrics, store, runner, api })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Where `GET /metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(listener, _)| listener.local_addr().ok())
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Serves until `shutdown` resolves; in-flight calls then finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
        for service in [
            "kefu.v1.CustomerService",
            "kefu.v1.StaffService",
            "kefu.v1.ComplaintService",
            "kefu.v1.CallbackService",
        ] {
            health_reporter.set_service_status(service, tonic_health::ServingStatus::Serving).await;
        }
        // Reflection in both versions: v1 for current tools, v1alpha for older clients
        // (Python's grpcio-reflection, grpcurl before 1.9).
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(kefu_api::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1().context("build the reflection service")?;
        let reflection_v1alpha =
            reflection().build_v1alpha().context("build the reflection service")?;

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let runner = self.runner.clone();
        let mut runner_stop = stop_rx.clone();
        let projections = tokio::spawn(async move {
            runner
                .run(async move {
                    let _ = runner_stop.wait_for(|stop| *stop).await;
                })
                .await;
        });
        let mut helpers = Vec::new();
        if let Some((listener, handle)) = self.metrics {
            tracing::info!(listen = %listener.local_addr()?, "metrics at /metrics");
            let mut stop = stop_rx.clone();
            helpers.push(tokio::spawn(metrics::serve(listener, handle, async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })));
            let mut stop = stop_rx.clone();
            helpers.push(tokio::spawn(metrics::publish_lag(self.runner.clone(), async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })));
        }
        tracing::info!(listen = %self.listener.local_addr()?, tls = self.tls.is_some(), "kefu is serving");
        // Small unary replies must not wait for a delayed ACK (Nagle): measured 13-19 ms
        // per call on loopback before, well under 1 ms after.
        let incoming =
            tonic::transport::server::TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls).context("configure TLS")?;
        }
        let served = builder
            .concurrency_limit_per_connection(256)
            .trace_fn(|request| {
                tracing::info_span!(
                    "rpc",
                    method = %request.uri().path(),
                    principal = tracing::field::Empty,
                    request_id = tracing::field::Empty
                )
            })
            .layer(metrics::RpcMetricsLayer)
            .layer(caller_errors::CallerErrorsLayer)
            .add_routes(self.api.routes())
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                tracing::info!("shutting down: finishing in-flight calls");
            })
            .await;
        let _ = stop_tx.send(true);
        let _ = projections.await;
        for helper in helpers {
            let _ = helper.await;
        }
        served.context("serve")?;
        tracing::info!("kefu stopped");
        Ok(())
    }
}

/// The development token file: beside an SQLite database, else in the working directory.
fn dev_token_path(database_url: &str) -> PathBuf {
    let dir = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|path| path.split('?').next().unwrap_or(path))
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    dir.join(DEV_TOKEN_FILE)
}

/// Reads the development token, creating it (readable by its owner only) if needed.
fn dev_token(path: &Path) -> anyhow::Result<String> {
    if let Ok(token) = std::fs::read_to_string(path) {
        let token = token.trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("write {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// A database URL with any password replaced, fit for logs and error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_dev_tokens_sit_beside_the_database() {
        assert_eq!(redact("postgres://kefu:s3cret@db/kefu"), "postgres://kefu:***@db/kefu");
        assert_eq!(redact("sqlite://kefu.db"), "sqlite://kefu.db");
        assert_eq!(
            dev_token_path("sqlite:///var/lib/kefu/kefu.db"),
            PathBuf::from("/var/lib/kefu/kefu-dev-token")
        );
        assert_eq!(dev_token_path("sqlite://kefu.db"), PathBuf::from("./kefu-dev-token"));
        assert_eq!(dev_token_path("postgres://db/kefu"), PathBuf::from("./kefu-dev-token"));
    }
}
