//! The `kefu` binary: command line, logging and signals around the application.

mod cases;
mod operations;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kefu::{redact, Application, Settings};
use kefu_event_store::{EventStore, StoreOptions};
use kefu_projection::{all_projections_in, Runner};

/// mimalloc, not glibc's malloc: a rebuild allocates and frees millions of small
/// values across threads, and glibc spent a quarter of the CPU consolidating its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "kefu", version, about = "Event-sourced CRM backend for complaints and callbacks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(ServeArgs),
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
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    #[arg(long, env = "KEFU_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Refuse to register a customer whose phone or email a customer the caller may
    /// see already has (ALREADY_EXISTS naming it); otherwise they are only reported.
    #[arg(long, env = "KEFU_REFUSE_DUPLICATE_CONTACTS")]
    refuse_duplicate_contacts: bool,
}

#[tokio::main]
#[allow(clippy::print_stdout)] // the operator asked for this output
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        // Standard output is for what an operator asked for (a replay, a dossier).
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let mut settings = Settings::new(args.database.database_url, args.listen);
            settings.tokens_file = args.tokens_file;
            settings.metrics_listen = args.metrics_listen;
            settings.phone_region = args.database.phone_region;
            settings.refuse_duplicate_contacts = args.refuse_duplicate_contacts;
            if let (Some(certificate), Some(key)) = (args.tls_cert, args.tls_key) {
                settings.tls = Some(kefu::TlsFiles { certificate, key });
            }
            let app = Application::build(settings).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::Projections { command } => projections(command).await,
        Command::Backup { database, file } => {
            operations::backup(&database.database_url, &file).await?;
            println!("backup written to {}", file.display());
            Ok(())
        }
        Command::Restore { database, file } => {
            let checked = operations::restore(&file, &database.database_url).await?;
            println!(
                "restored: {} events in {} streams verified, read models rebuilt",
                checked.events, checked.streams
            );
            Ok(())
        }
        Command::Check(database) => {
            let checked = operations::check(&database.database_url).await?;
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
                "{:<12} {:>7} {:>12} {:>12} {:>10}",
                "projection", "version", "position", "head", "lag"
            );
            for status in runner.status().await? {
                println!(
                    "{:<12} {:>7} {:>12} {:>12} {:>10}",
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
