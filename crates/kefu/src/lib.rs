//! The kefu application: settings and the wiring of store, projections and gRPC server.
//!
//! `Application::build` opens everything and binds the listener (port 0 works, for
//! tests); `run_until` serves until the shutdown future resolves, then drains: health
//! turns NOT_SERVING, new calls are refused, server streams end with `UNAVAILABLE`,
//! in-flight calls finish, and whatever is left is closed when the grace period ends.

mod caller_errors;
mod calls;
pub mod config;
mod connections;
pub mod health;
mod limits;
mod metrics;
mod settings;
pub mod telemetry;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use kefu_api::auth::Tokens;
use kefu_api::{Api, ApiConfig, Clock};
use kefu_domain::Policy;
use kefu_event_store::EventStore;
use kefu_projection::{projections_in, ReadModels, Runner};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use calls::SHUTTING_DOWN;
pub use metrics::NAMES as METRIC_NAMES;
pub use settings::{parse_duration, redact, CallLimits, LogFormat, Settings, TlsFiles};

/// Where the development token is written when no tokens file is configured.
pub const DEV_TOKEN_FILE: &str = "kefu-dev-token";

/// A built, bound, not yet serving kefu.
pub struct Application {
    listener: TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
    /// Where the console for people is served, if it is.
    console: Option<TcpListener>,
    store: EventStore,
    runner: Runner,
    api: Api,
    limiter: limits::Limiter,
    policy: Arc<Policy>,
    clock: Clock,
    settings: Settings,
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
            EventStore::open(&settings.database_url, settings.store.clone()).await.with_context(
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
        let projections = projections_in(settings.policy.time_zone, settings.phone_region);
        let runner = Runner::new(store.clone(), projections);
        runner.prepare().await.context("prepare the projections")?;
        let mut config = ApiConfig::new(tokens.clone());
        if let Some(clock) = &settings.clock {
            config.clock = clock.clone();
        }
        config.read_wait = settings.read_wait;
        config.sla_watch_interval = settings.sla_watch_interval;
        config.phone_region = settings.phone_region;
        config.refuse_duplicate_contacts = settings.refuse_duplicate_contacts;
        if let Some(url) = &settings.read_database_url {
            if !matches!(store.database(), kefu_event_store::Database::Postgres(_)) {
                bail!("a read replica replicates PostgreSQL: --read-database-url needs a postgres:// --database-url");
            }
            let replica = kefu_projection::sql::Db::replica(url, settings.replica_connections)
                .with_context(|| format!("read replica {}", redact(url)))?;
            config.read_replica = Some(replica);
            tracing::info!(replica = %redact(url), "reports are served by the read replica");
        }
        let policy = Arc::new(settings.policy.clone());
        config.policy = settings.policy.clone();
        config.operator = settings.operator.clone();
        let clock = config.clock.clone();
        // Bound before the policy is recorded: a node that cannot serve records none.
        let tls = settings.tls.as_ref().map(tls_config).transpose()?;
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
        let console = match settings.console_listen {
            None => None,
            Some(address) => Some(bind_console(&settings, address).await?),
        };
        let api = Api::new(store.clone(), runner.clone(), config)
            .await
            .context("record the configured policy")?;
        warn_of_uncleared_holders(&ReadModels::new(runner.clone()), &tokens).await;
        let limiter = limits::Limiter::new(&settings.limits, tokens);
        Ok(Application {
            listener,
            tls,
            metrics,
            console,
            store,
            runner,
            api,
            limiter,
            policy,
            clock,
            settings,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Where `GET /metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Where the console is served, if it is.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Serves until `shutdown` resolves, then drains (see the module documentation);
    /// returns within the grace period whatever clients do.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let services = kefu_api::describe::kefu_services().context("read the kefu services")?;
        let projections = self.runner.names().into_iter().map(str::to_owned).collect();
        let health = health::Health::new(reporter, services, projections).await;
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

        // Helpers stop after the server; draining starts the shutdown; closing ends it.
        let (stop_tx, stop_rx) = watch::channel(false);
        let (drain_tx, drain_rx) = watch::channel(false);
        let (close_tx, close_rx) = watch::channel(false);
        let stopped = |mut stop: watch::Receiver<bool>| async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let mut helpers = Vec::new();
        let runner = self.runner.clone();
        let runner_stop = stopped(stop_rx.clone());
        helpers.push(tokio::spawn(async move { runner.run(runner_stop).await }));
        let probes = self.probes();
        let interval = self.settings.health_interval;
        helpers.push(tokio::spawn(health.clone().watch(
            probes,
            interval,
            stopped(stop_rx.clone()),
        )));
        if let Some((listener, handle)) = self.metrics {
            tracing::info!(listen = %listener.local_addr()?, "metrics at /metrics");
            helpers.push(tokio::spawn(metrics::serve(
                listener,
                handle.clone(),
                stopped(stop_rx.clone()),
            )));
            let gauges = metrics::Gauges {
                runner: self.runner.clone(),
                models: ReadModels::new(self.runner.clone()),
                policy: self.policy.clone(),
                clock: self.clock.clone(),
                handle,
            };
            let interval = self.settings.metrics_interval;
            helpers.push(tokio::spawn(gauges.publish(interval, stopped(stop_rx.clone()))));
        }

        if let Some(listener) = self.console {
            helpers.push(tokio::spawn(serve_console(
                listener,
                &self.settings,
                &self.api,
                &self.limiter,
                self.clock.clone(),
                drain_rx.clone(),
            )?));
        }

        let limits = &self.settings.limits;
        let calls = calls::CallLayer::new(
            served_methods()?,
            self.limiter.clone(),
            drain_rx.clone(),
            self.settings.otlp_endpoint.is_some(),
        );
        let lifetime = limits.max_connection_age.map(|age| age + limits.max_connection_age_grace);
        let incoming = connections::incoming(self.listener, lifetime, close_rx);
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls).context("configure TLS")?;
        }
        if let Some(age) = limits.max_connection_age {
            // GOAWAY at the age; `connections` closes what is left after the grace.
            builder = builder.max_connection_age(age);
        }
        tracing::info!(listen = %self.settings.listen, tls = self.settings.tls.is_some(), "kefu is serving");
        let server = builder
            .concurrency_limit_per_connection(256)
            .layer(calls)
            .layer(caller_errors::CallerErrorsLayer)
            .add_routes(self.api.routes())
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(incoming, stopped(drain_rx));
        tokio::pin!(server);
        tokio::pin!(shutdown);
        let grace = self.settings.shutdown_grace;
        let close_wait = self.settings.close_wait;
        let served = tokio::select! {
            served = &mut server => served,
            () = &mut shutdown => {
                health.drain().await;
                let _ = drain_tx.send(true);
                tracing::info!(
                    grace_s = grace.as_secs_f64(),
                    "shutting down: refusing new calls, ending streams, finishing in-flight calls"
                );
                match tokio::time::timeout(grace, &mut server).await {
                    Ok(served) => served,
                    Err(_) => {
                        tracing::warn!("grace period over: closing the remaining connections");
                        let _ = close_tx.send(true);
                        tokio::time::timeout(close_wait, &mut server).await.unwrap_or(Ok(()))
                    }
                }
            }
        };
        let _ = stop_tx.send(true);
        for helper in helpers {
            let _ = helper.await;
        }
        served.context("serve")?;
        tracing::info!("kefu stopped");
        Ok(())
    }

    /// Where health's signals come from: the store, its supervised writer, the
    /// projection runner's stops (recorded in the checkpoints, so every node sees a stop
    /// whichever node's runner met it), the read replica.
    fn probes(&self) -> health::Probes {
        let store = self.store.clone();
        let writer = self.store.clone();
        let runner = self.runner.clone();
        let replica = self.api.report_models().clone();
        health::Probes {
            database: Box::new(move || {
                let store = store.clone();
                Box::pin(async move { store.head_position().await.is_ok() })
            }),
            writer_alive: Box::new(move || writer.writer_alive()),
            stopped_projections: Box::new(move || {
                let runner = runner.clone();
                Box::pin(async move {
                    match runner.status().await {
                        Ok(statuses) => Some(
                            statuses
                                .into_iter()
                                .filter(|status| status.stopped.is_some())
                                .map(|status| status.name.to_owned())
                                .collect::<BTreeSet<String>>(),
                        ),
                        Err(error) => {
                            tracing::debug!(%error, "the projections' stops not read");
                            None
                        }
                    }
                })
            }),
            replica: replica.is_replica().then(|| -> health::Probe<bool> {
                Box::new(move || {
                    let replica = replica.clone();
                    Box::pin(async move { replica.reachable().await })
                })
            }),
        }
    }
}

/// R-C6: a token's clearance lowered in the tokens file since the last start leaves its
/// holder's customers and cases where they were (clearance is not in the log); each such
/// holder is named, with the remedy (docs/operations.md). They read nothing above their
/// clearance meanwhile: every read checks the token.
async fn warn_of_uncleared_holders(models: &ReadModels, tokens: &Tokens) {
    match kefu_api::holdings::uncleared(models, tokens).await {
        Ok(found) => {
            for holder in found {
                let clearance =
                    holder.clearance.map_or_else(|| "none".to_owned(), |c| c.to_string());
                tracing::warn!(
                    staff = %holder.staff,
                    holds = holder.what,
                    count = holder.count,
                    level = %holder.level,
                    clearance = %clearance,
                    "a staff member holds work above their tokens' clearance (R-C6): assign it to someone cleared (AssignAgent, AssignHandler) or record their departure"
                );
            }
        }
        Err(error) => {
            tracing::warn!(%error, "could not check that every owner and handler is cleared for what they hold")
        }
    }
}

/// Binds the console's address: loopback only, unless kefu has real tokens and TLS
/// (a session cookie and a token typed into a form must not cross a network in clear).
async fn bind_console(settings: &Settings, address: SocketAddr) -> anyhow::Result<TcpListener> {
    if !address.ip().is_loopback() && (settings.tokens_file.is_none() || settings.tls.is_none()) {
        bail!(
            "refusing to serve the console on {address}: beyond loopback it needs a tokens file and TLS (--tokens-file, --tls-cert, --tls-key)"
        );
    }
    TcpListener::bind(address).await.with_context(|| format!("bind the console on {address}"))
}

/// The console's server (over TLS when kefu has a certificate), ending when kefu
/// drains.
fn serve_console(
    listener: TcpListener,
    settings: &Settings,
    api: &Api,
    limiter: &limits::Limiter,
    clock: Clock,
    draining: watch::Receiver<bool>,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let config = kefu_console::ConsoleConfig {
        time_zone: settings.policy.time_zone,
        clock,
        session_ttl: settings.console_session_ttl,
        tls: settings.tls.is_some(),
    };
    let router = kefu_console::router(
        // The gRPC port's limiter: a principal's calls share one budget either way.
        api.in_process().with_gate(Arc::new(limiter.clone())),
        api.authenticator().clone(),
        config,
        draining.clone(),
    );
    let identity = match &settings.tls {
        Some(files) => Some((
            std::fs::read(&files.certificate)
                .with_context(|| format!("read TLS certificate {}", files.certificate.display()))?,
            std::fs::read(&files.key)
                .with_context(|| format!("read TLS key {}", files.key.display()))?,
        )),
        None => None,
    };
    let address = listener.local_addr()?;
    let mut drained = draining;
    let shutdown = async move {
        let _ = drained.wait_for(|draining| *draining).await;
    };
    tracing::info!(listen = %address, tls = identity.is_some(), "the console is serving");
    Ok(async move {
        let served = match identity {
            Some((certificate, key)) => {
                kefu_console::serve_tls(listener, router, &certificate, &key, shutdown).await
            }
            None => kefu_console::serve(listener, router, shutdown).await,
        };
        if let Err(error) = served {
            tracing::error!(%error, "the console stopped");
        }
    })
}

/// Every RPC the server answers: kefu's, health's and reflection's.
fn served_methods() -> anyhow::Result<Vec<kefu_api::describe::Method>> {
    let mut methods = Vec::new();
    for set in [
        kefu_api::pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        methods.extend(kefu_api::describe::methods(set).context("read a descriptor set")?);
    }
    Ok(methods)
}

/// The server's TLS: its identity, and the client CAs when clients must present a
/// certificate (mutual TLS).
fn tls_config(files: &TlsFiles) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).with_context(|| format!("read {what} {}", path.display()))
    };
    let identity = tonic::transport::Identity::from_pem(
        read(&files.certificate, "TLS certificate")?,
        read(&files.key, "TLS key")?,
    );
    let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &files.client_ca {
        let ca = tonic::transport::Certificate::from_pem(read(ca, "client CA")?);
        config = config.client_ca_root(ca).client_auth_optional(false);
    }
    Ok(config)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_tokens_sit_beside_the_database() {
        assert_eq!(
            dev_token_path("sqlite:///var/lib/kefu/kefu.db"),
            PathBuf::from("/var/lib/kefu/kefu-dev-token")
        );
        assert_eq!(dev_token_path("sqlite://kefu.db"), PathBuf::from("./kefu-dev-token"));
        assert_eq!(dev_token_path("postgres://db/kefu"), PathBuf::from("./kefu-dev-token"));
    }

    #[test]
    fn every_served_method_is_known_to_the_call_layer() {
        let methods = served_methods().unwrap();
        for path in [
            "/kefu.v1.EventService/Subscribe",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            let method = methods.iter().find(|m| m.path == path).expect(path);
            assert!(method.server_streaming, "{path} streams");
        }
    }
}
