//! The `kefu` binary: command line, logging and signals around the application.

mod cases;
mod operations;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use figment::value::Value;
use kefu::config::{Config, Sources};
use kefu::telemetry::Telemetry;
use kefu::{redact, Application, LogFormat};
use kefu_event_store::EventStore;
use kefu_projection::{projections_in, Projection, Runner};

/// mimalloc, not glibc's malloc: a rebuild allocates and frees millions of small
/// values across threads, and glibc spent a quarter of the CPU consolidating its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "kefu", version, about = "Event-sourced CRM backend for complaints and callbacks")]
struct Cli {
    /// How log lines are written: `text`, or `json` (one object per line); for `serve`,
    /// also `log_format` in the configuration.
    #[arg(long, global = true)]
    log_format: Option<LogFormat>,
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
    /// The configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration (file, KEFU_ environment, flags) and print the
    /// effective one, database passwords masked; exits non-zero naming what is wrong.
    Check(DatabaseArgs),
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

/// Where the configuration is and which database it names; every verb takes them.
#[derive(Debug, Args)]
pub(crate) struct DatabaseArgs {
    /// The configuration file (TOML; see kefu.example.toml); also `KEFU_CONFIG`.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// `sqlite://FILE` (the embedded default) or `postgres://…`; also `database_url`
    /// in the configuration and `KEFU_DATABASE_URL`.
    #[arg(long)]
    pub(crate) database_url: Option<String>,
    /// Region (ISO 3166, e.g. CN, HK) of phone numbers written without a country code;
    /// also `phone_region` in the configuration and `KEFU_PHONE_REGION`.
    #[arg(long)]
    pub(crate) phone_region: Option<String>,
}

impl DatabaseArgs {
    /// The configuration: the file, then the process's `KEFU_` environment, then these
    /// flags and `flags`.
    pub(crate) fn load(&self, mut flags: Vec<(String, Value)>) -> anyhow::Result<Config> {
        if let Some(url) = &self.database_url {
            flags.insert(0, ("database_url".into(), Value::from(url.clone())));
        }
        if let Some(region) = &self.phone_region {
            flags.insert(0, ("phone_region".into(), Value::from(region.clone())));
        }
        let env = std::env::vars().filter(|(name, _)| name.starts_with("KEFU_")).collect();
        Config::load(&Sources::new(self.config.clone(), env, flags))
    }

    /// The configuration's database URL.
    pub(crate) fn url(&self) -> anyhow::Result<String> {
        Ok(self.load(Vec::new())?.database_url)
    }
}

/// `kefu serve`'s flags: each overrides the configuration key of the same name (the
/// file's, then `KEFU_…`'s); see kefu.example.toml for what they mean and default to.
#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long)]
    listen: Option<String>,
    /// JSON file of hashed bearer tokens; without it a development admin token is
    /// written beside the database and only loopback addresses are allowed.
    #[arg(long)]
    tokens_file: Option<String>,
    /// PEM certificate chain; with `--tls-key`, the server speaks TLS only.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// PEM certificates of the CAs whose client certificates are accepted (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<String>,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Serve the console for people at `http://ADDR/` (`off`: not at all; default
    /// 127.0.0.1:8080; another than loopback needs a tokens file and TLS).
    #[arg(long)]
    console_listen: Option<String>,
    /// How long a console session lasts after sign-in (default 8h).
    #[arg(long)]
    console_session_ttl: Option<String>,
    /// Refuse to register a customer whose phone or email a customer the caller may
    /// see already has (ALREADY_EXISTS naming it); otherwise they are only reported.
    #[arg(long)]
    refuse_duplicate_contacts: bool,
    /// A PostgreSQL hot standby of the database: the reporting RPCs are served from it.
    #[arg(long)]
    read_database_url: Option<String>,
    /// Export spans over OTLP/gRPC to this collector (e.g. `http://localhost:4317`).
    #[arg(long)]
    otlp_endpoint: Option<String>,
    /// Who policy changes recorded at start name as their actor (default `system`).
    #[arg(long)]
    operator: Option<String>,
    /// After SIGTERM, how long in-flight calls may take before the server stops anyway.
    #[arg(long)]
    shutdown_grace: Option<String>,
    /// How long a read waits at most for the read models to reach `min_position`.
    #[arg(long)]
    read_wait: Option<String>,
    /// How often health checks the database and the writer.
    #[arg(long)]
    health_interval: Option<String>,
    /// How often projection lag and SLA breaches are measured for /metrics.
    #[arg(long)]
    metrics_interval: Option<String>,
    /// How often a WatchSla stream looks at the clock and the deadlines.
    #[arg(long)]
    sla_watch_interval: Option<String>,
    /// Calls served at once; more are shed with RESOURCE_EXHAUSTED and a RetryInfo.
    #[arg(long)]
    max_concurrent_calls: Option<String>,
    /// Calls one principal may have running at once, within the above; more are shed.
    #[arg(long)]
    max_concurrent_calls_per_principal: Option<String>,
    /// Expensive reads (reports, event log, audit) served at once, within the above.
    #[arg(long)]
    max_concurrent_expensive_reads: Option<String>,
    /// Expensive reads one principal may start per second (0: unlimited).
    #[arg(long)]
    expensive_reads_per_second: Option<String>,
    /// How many expensive reads a principal may start at once before its rate applies.
    #[arg(long)]
    expensive_reads_burst: Option<String>,
    /// Connections older than this are asked to reconnect (0: never).
    #[arg(long)]
    max_connection_age: Option<String>,
    /// How long an aged connection may finish its calls before it is closed.
    #[arg(long)]
    max_connection_age_grace: Option<String>,
    /// A calendar file replacing `policy.calendar`.
    #[arg(long)]
    calendar_file: Option<String>,
}

impl ServeArgs {
    /// The flags given, as configuration keys and values.
    fn flags(&self) -> Vec<(String, Value)> {
        let given = [
            ("listen", &self.listen),
            ("tokens_file", &self.tokens_file),
            ("tls_cert", &self.tls_cert),
            ("tls_key", &self.tls_key),
            ("tls_client_ca", &self.tls_client_ca),
            ("metrics_listen", &self.metrics_listen),
            ("console_listen", &self.console_listen),
            ("console_session_ttl", &self.console_session_ttl),
            ("read_database_url", &self.read_database_url),
            ("otlp_endpoint", &self.otlp_endpoint),
            ("operator", &self.operator),
            ("shutdown_grace", &self.shutdown_grace),
            ("read_wait", &self.read_wait),
            ("health_interval", &self.health_interval),
            ("metrics_interval", &self.metrics_interval),
            ("sla_watch_interval", &self.sla_watch_interval),
            ("max_concurrent_calls", &self.max_concurrent_calls),
            ("max_concurrent_calls_per_principal", &self.max_concurrent_calls_per_principal),
            ("max_concurrent_expensive_reads", &self.max_concurrent_expensive_reads),
            ("expensive_reads_per_second", &self.expensive_reads_per_second),
            ("expensive_reads_burst", &self.expensive_reads_burst),
            ("max_connection_age", &self.max_connection_age),
            ("max_connection_age_grace", &self.max_connection_age_grace),
            ("calendar_file", &self.calendar_file),
        ];
        let switches = [("refuse_duplicate_contacts", self.refuse_duplicate_contacts)];
        let switches = switches.into_iter().filter(|(_, on)| *on);
        given
            .into_iter()
            .filter_map(|(key, value)| {
                value.as_ref().map(|value| {
                    (key.to_owned(), value.parse::<Value>().unwrap_or_else(|never| match never {}))
                })
            })
            .chain(switches.map(|(key, on)| (key.to_owned(), Value::from(on))))
            .collect()
    }
}

#[tokio::main]
#[allow(clippy::print_stdout)] // the operator asked for this output
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `serve` is configured before logging starts: its log format and exporter are
    // configuration too.
    let mut flags = Vec::new();
    if let Some(format) = cli.log_format {
        let word = if format == LogFormat::Json { "json" } else { "text" };
        flags.push(("log_format".to_owned(), Value::from(word)));
    }
    let (log_format, otlp_endpoint, serving) = match &cli.command {
        Command::Serve(args) => {
            flags.extend(args.flags());
            let config = args.database.load(flags)?;
            let settings = config.settings()?;
            (settings.log_format, settings.otlp_endpoint.clone(), Some(settings))
        }
        _ => {
            let from_env = std::env::var("KEFU_LOG_FORMAT").ok().and_then(|f| f.parse().ok());
            (cli.log_format.or(from_env).unwrap_or_default(), None, None)
        }
    };
    let telemetry = Telemetry::init(log_format, otlp_endpoint.as_deref())?;
    let outcome = match serving {
        Some(settings) => serve(settings).await,
        None => run(cli.command).await,
    };
    telemetry.shutdown();
    outcome
}

async fn serve(settings: kefu::Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until(shutdown_signal()).await
}

#[allow(clippy::print_stdout)] // the operator asked for this output
async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args.database.load(args.flags())?.settings()?).await,
        Command::Config { command: ConfigCommand::Check(database) } => {
            let config = database.load(Vec::new())?;
            print!("{}", config.show()?);
            Ok(())
        }
        Command::Projections { command } => projections(command).await,
        Command::Backup { database, file } => {
            operations::backup(&database.url()?, &file).await?;
            println!("backup written to {}", file.display());
            Ok(())
        }
        Command::Restore { database, file } => {
            let config = database.load(Vec::new())?;
            let checked =
                operations::restore(&file, &config.database_url, configured_projections(&config))
                    .await?;
            println!(
                "restored: {} events in {} streams verified, read models rebuilt",
                checked.events, checked.streams
            );
            Ok(())
        }
        Command::Check(database) => {
            let config = database.load(Vec::new())?;
            let checked =
                operations::check(&config.database_url, configured_projections(&config)).await?;
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
            let config = args.load(Vec::new())?;
            let url = &config.database_url;
            EventStore::open(url, config.store_options())
                .await
                .with_context(|| format!("open the event store at {}", redact(url)))?;
            tracing::info!("schema is up to date");
            Ok(())
        }
    }
}

/// Every projection, with months in the configured business zone and old phone numbers
/// read in the configured region.
fn configured_projections(config: &Config) -> Vec<Arc<dyn Projection>> {
    projections_in(config.policy.time_zone, config.phone_region)
}

/// The projections over the configured database.
async fn open_runner(database: &DatabaseArgs) -> anyhow::Result<Runner> {
    let config = database.load(Vec::new())?;
    let url = &config.database_url;
    let store = EventStore::open(url, config.store_options())
        .await
        .with_context(|| format!("open the event store at {}", redact(url)))?;
    Ok(Runner::new(store, configured_projections(&config)))
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
