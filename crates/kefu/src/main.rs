//! The `kefu` binary: command line, logging and signals around the application.

mod cases;
mod operations;

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kefu::telemetry::Telemetry;
use kefu::{parse_duration, redact, Application, CallLimits, LogFormat, Settings};
use kefu_event_store::{EventStore, StoreOptions};
use kefu_projection::{all_projections_in, Runner};

/// mimalloc, not glibc's malloc: a rebuild allocates and frees millions of small
/// values across threads, and glibc spent a quarter of the CPU consolidating its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "kefu", version, about = "Event-sourced CRM backend for complaints and callbacks")]
struct Cli {
    /// How log lines are written: `text`, or `json` (one object per line).
    #[arg(long, env = "KEFU_LOG_FORMAT", default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(Box<ServeArgs>),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Inspect or rebuild the read models.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Write an online, consistent copy of the SQLite database to FILE.
    Backup {
        #[command(flatten)]
        database: DatabaseArgs,
        file: PathBuf,
    },
    /// Restore an SQLite backup into a new database file, then check it.
    Restore {
        #[command(flatten)]
        database: DatabaseArgs,
        file: PathBuf,
    },
    /// Verify every stream's hash chain and rebuild the read models (after a restore).
    Check(DatabaseArgs),
    /// Compliance: replay, verify or export one case (each recorded as an inspection).
    Case {
        #[command(subcommand)]
        command: cases::CaseCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Each projection's version, checkpoint and lag behind the log.
    Status(DatabaseArgs),
    /// Rebuild projections from zero (all of them in one pass when no name is given).
    Rebuild {
        #[command(flatten)]
        database: DatabaseArgs,
        /// customers, complaints or staff.
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DatabaseArgs {
    /// `sqlite://FILE` (the embedded default) or `postgres://…`.
    #[arg(long, env = "KEFU_DATABASE_URL", default_value = "sqlite://kefu.db")]
    pub(crate) database_url: String,
    /// Region of phone numbers written without a country code (ISO 3166, e.g. CN, HK):
    /// new ones are stored in E.164 by it, and the customer search index reads old ones.
    #[arg(long, env = "KEFU_PHONE_REGION", default_value = "CN")]
    pub(crate) phone_region: kefu_domain::PhoneRegion,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "KEFU_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// JSON file of hashed bearer tokens; without it a development admin token is
    /// written beside the database and only loopback addresses are allowed.
    #[arg(long, env = "KEFU_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// PEM certificate chain; with `--tls-key`, the server speaks TLS only.
    #[arg(long, env = "KEFU_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "KEFU_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM certificates of the CAs whose client certificates are accepted: every client
    /// must then present one (mutual TLS); the principal still comes from the token.
    #[arg(long, env = "KEFU_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    #[arg(long, env = "KEFU_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Refuse to register a customer whose phone or email a customer the caller may
    /// see already has (ALREADY_EXISTS naming it); otherwise they are only reported.
    #[arg(long, env = "KEFU_REFUSE_DUPLICATE_CONTACTS")]
    refuse_duplicate_contacts: bool,
    /// A PostgreSQL hot standby of the database: the reporting RPCs are served from it.
    #[arg(long, env = "KEFU_READ_DATABASE_URL")]
    read_database_url: Option<String>,
    /// Export spans over OTLP/gRPC to this collector (e.g. `http://localhost:4317`).
    #[arg(long, env = "KEFU_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// After SIGTERM, how long in-flight calls may take before the server stops anyway.
    #[arg(long, env = "KEFU_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// How long a read waits at most for the read models to reach `min_position`.
    #[arg(long, env = "KEFU_READ_WAIT", default_value = "5s", value_parser = parse_duration)]
    read_wait: Duration,
    /// How often health checks the database and the writer.
    #[arg(long, env = "KEFU_HEALTH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    health_interval: Duration,
    /// How often projection lag and SLA breaches are measured for /metrics.
    #[arg(long, env = "KEFU_METRICS_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    metrics_interval: Duration,
    /// Calls served at once; more are shed with RESOURCE_EXHAUSTED and a RetryInfo.
    #[arg(long, env = "KEFU_MAX_CONCURRENT_CALLS", default_value_t = CallLimits::default().max_concurrent_calls)]
    max_concurrent_calls: usize,
    /// Calls one principal may have running at once, within the above; more are shed.
    #[arg(long, env = "KEFU_MAX_CONCURRENT_CALLS_PER_PRINCIPAL", default_value_t = CallLimits::default().max_concurrent_calls_per_principal)]
    max_concurrent_calls_per_principal: usize,
    /// Expensive reads (reports, event log, audit) served at once, within the above.
    #[arg(long, env = "KEFU_MAX_CONCURRENT_EXPENSIVE_READS", default_value_t = CallLimits::default().max_concurrent_expensive_reads)]
    max_concurrent_expensive_reads: usize,
    /// Expensive reads one principal may start per second (0: unlimited).
    #[arg(long, env = "KEFU_EXPENSIVE_READS_PER_SECOND", default_value = "10")]
    expensive_reads_per_second: u32,
    /// How many expensive reads a principal may start at once before its rate applies.
    #[arg(long, env = "KEFU_EXPENSIVE_READS_BURST", default_value_t = CallLimits::default().expensive_reads_burst)]
    expensive_reads_burst: u32,
    /// Connections older than this are asked to reconnect (0: never).
    #[arg(long, env = "KEFU_MAX_CONNECTION_AGE", default_value = "30m", value_parser = parse_duration)]
    max_connection_age: Duration,
    /// How long an aged connection may finish its calls before it is closed.
    #[arg(long, env = "KEFU_MAX_CONNECTION_AGE_GRACE", default_value = "30s", value_parser = parse_duration)]
    max_connection_age_grace: Duration,
}

impl ServeArgs {
    /// The server's settings from the flags (and their `KEFU_` variables).
    fn settings(self, log_format: LogFormat) -> Settings {
        let mut settings = Settings::new(self.database.database_url, self.listen);
        settings.tokens_file = self.tokens_file;
        settings.metrics_listen = self.metrics_listen;
        if let (Some(certificate), Some(key)) = (self.tls_cert, self.tls_key) {
            settings.tls = Some(kefu::TlsFiles { certificate, key, client_ca: self.tls_client_ca });
        }
        settings.read_database_url = self.read_database_url;
        settings.log_format = log_format;
        settings.otlp_endpoint = self.otlp_endpoint;
        settings.shutdown_grace = self.shutdown_grace;
        settings.read_wait = self.read_wait;
        settings.health_interval = self.health_interval;
        settings.metrics_interval = self.metrics_interval;
        settings.limits = CallLimits {
            max_concurrent_calls: self.max_concurrent_calls,
            max_concurrent_calls_per_principal: self.max_concurrent_calls_per_principal,
            max_concurrent_expensive_reads: self.max_concurrent_expensive_reads,
            expensive_reads_per_second: Some(self.expensive_reads_per_second).filter(|n| *n > 0),
            expensive_reads_burst: self.expensive_reads_burst,
            max_connection_age: Some(self.max_connection_age).filter(|age| !age.is_zero()),
            max_connection_age_grace: self.max_connection_age_grace,
        };
        settings.phone_region = self.database.phone_region;
        settings.refuse_duplicate_contacts = self.refuse_duplicate_contacts;
        settings
    }
}

#[tokio::main]
#[allow(clippy::print_stdout)] // the operator asked for this output
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let otlp_endpoint = match &cli.command {
        Command::Serve(args) => args.otlp_endpoint.clone(),
        _ => None,
    };
    let telemetry = Telemetry::init(cli.log_format, otlp_endpoint.as_deref())?;
    let outcome = run(cli.command, cli.log_format).await;
    telemetry.shutdown();
    outcome
}

#[allow(clippy::print_stdout)] // the operator asked for this output
async fn run(command: Command, log_format: LogFormat) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let app = Application::build(args.settings(log_format)).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::Projections { command } => projections(command).await,
        Command::Backup { database, file } => {
            operations::backup(&database.database_url, &file).await?;
            println!("backup written to {}", file.display());
            Ok(())
        }
        Command::Restore { database, file } => {
            let checked =
                operations::restore(&file, &database.database_url, database.phone_region).await?;
            println!(
                "restored: {} events in {} streams verified, read models rebuilt",
                checked.events, checked.streams
            );
            Ok(())
        }
        Command::Check(database) => {
            let checked = operations::check(&database.database_url, database.phone_region).await?;
            println!(
                "checked: {} events in {} streams verified, read models rebuilt",
                checked.events, checked.streams
            );
            Ok(())
        }
        Command::Case { command } => {
            if !cases::run(command).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Migrate(args) => {
            EventStore::open(&args.database_url, StoreOptions::default()).await.with_context(
                || format!("open the event store at {}", redact(&args.database_url)),
            )?;
            tracing::info!("schema is up to date");
            Ok(())
        }
    }
}

async fn open_runner(args: &DatabaseArgs) -> anyhow::Result<Runner> {
    let url = &args.database_url;
    let store = EventStore::open(url, StoreOptions::default())
        .await
        .with_context(|| format!("open the event store at {}", redact(url)))?;
    Ok(Runner::new(store, all_projections_in(args.phone_region)))
}

#[allow(clippy::print_stdout)] // the operator asked for this output
async fn projections(command: ProjectionsCommand) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::Status(args) => {
            let runner = open_runner(&args).await?;
            println!(
                "{:<12} {:>7} {:>12} {:>12} {:>10}  state",
                "projection", "version", "position", "head", "lag"
            );
            for status in runner.status().await? {
                let state = match &status.stopped {
                    None => "running".to_owned(),
                    Some(stopped) => format!(
                        "STOPPED at position {} ({}): {}",
                        stopped.position, stopped.event_type, stopped.error
                    ),
                };
                println!(
                    "{:<12} {:>7} {:>12} {:>12} {:>10}  {state}",
                    status.name, status.version, status.position, status.head, status.lag
                );
            }
            Ok(())
        }
        ProjectionsCommand::Rebuild { database, name } => {
            let runner = open_runner(&database).await?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
                )
                .context("progress bar template")?,
            );
            bar.set_message(name.clone().unwrap_or_else(|| "all projections".into()));
            let progress = |position: u64, head: u64| {
                bar.set_length(head);
                bar.set_position(position);
            };
            match &name {
                Some(name) => runner.rebuild(name, progress).await?,
                None => runner.rebuild_all(progress).await?,
            }
            bar.finish();
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
}
