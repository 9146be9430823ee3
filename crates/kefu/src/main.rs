//! The `kefu` binary: command line, configuration and wiring of the server.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kefu_event_store::{EventStore, StoreOptions};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

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
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// `sqlite://FILE` (the embedded default) or `postgres://…`.
    #[arg(long, env = "KEFU_DATABASE_URL", default_value = "sqlite://kefu.db")]
    database_url: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "KEFU_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => {
            open_store(&args.database_url).await?;
            tracing::info!("schema is up to date");
            Ok(())
        }
    }
}

async fn open_store(url: &str) -> anyhow::Result<EventStore> {
    EventStore::open(url, StoreOptions::default())
        .await
        .with_context(|| format!("open the event store at {}", redact(url)))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(&args.database.database_url).await?;
    let head = store.head_position().await?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("build the reflection service")?;

    let listener =
        TcpListener::bind(args.listen).await.with_context(|| format!("bind {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, head_position = head, "kefu is serving");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown_signal())
        .await
        .context("serve")?;
    tracing::info!("kefu stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM; in-flight calls then finish before `serve` returns.
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
    tracing::info!("shutting down: finishing in-flight calls");
}

/// A database URL with any password replaced, fit for logs and error messages.
fn redact(url: &str) -> String {
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
