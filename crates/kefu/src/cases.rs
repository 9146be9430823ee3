//! `kefu case replay|verify|export`: the compliance verbs for operators, on the database
//! directly (both backends), each recorded as an inspection like the gRPC ones.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use kefu_api::casefile::{CaseFiles, Inspector};
use kefu_event_store::{EventStore, Verification};
use serde_json::json;

use crate::DatabaseArgs;

#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// Print every event of a case as one JSON object per line.
    Replay {
        #[command(flatten)]
        database: DatabaseArgs,
        /// A complaint id or a case number (YYYY-NNNNNN).
        case: String,
    },
    /// Check the case's hash chain; exits with status 1 when it is broken.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        case: String,
    },
    /// Write the case's dossier (JSON, format kefu-case-dossier/1).
    Export {
        #[command(flatten)]
        database: DatabaseArgs,
        case: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// The operator, as recorded in the inspection's metadata.
fn operator() -> Inspector {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Inspector { actor: format!("cli:{user}"), roles: vec!["operator".into()], source: "cli" }
}

async fn case_files(database: &DatabaseArgs) -> anyhow::Result<CaseFiles> {
    let config = database.load(Vec::new())?;
    let url = &config.database_url;
    let store = EventStore::open(url, config.store_options())
        .await
        .with_context(|| format!("open the event store at {}", kefu::redact(url)))?;
    Ok(CaseFiles::open(store, Arc::new(chrono::Utc::now)))
}

/// Runs one verb; `Ok(false)` means the case failed verification.
#[allow(clippy::print_stdout)] // the operator asked for this output
pub async fn run(command: CaseCommand) -> anyhow::Result<bool> {
    let who = operator();
    match command {
        CaseCommand::Replay { database, case } => {
            let files = case_files(&database).await?;
            let history = files.replay(&case, &who).await?;
            let mut out = std::io::stdout().lock();
            for event in history {
                let line = json!({
                    "position": event.position,
                    "stream_id": event.stream_id,
                    "stream_version": event.stream_version,
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "schema_version": event.schema_version,
                    "recorded_at": event.recorded_at,
                    "metadata": event.metadata,
                    "payload": event.payload,
                    "prev_hash": hex::encode(event.prev_hash),
                    "hash": hex::encode(event.hash),
                });
                writeln!(out, "{line}")?;
            }
            Ok(true)
        }
        CaseCommand::Verify { database, case } => {
            let files = case_files(&database).await?;
            match files.verify(&case, &who).await? {
                Verification::Intact { events, head_hash } => {
                    println!("intact: {events} events, head hash {}", hex::encode(head_hash));
                    Ok(true)
                }
                Verification::Broken { version, reason } => {
                    println!("BROKEN at version {version}: {reason}");
                    Ok(false)
                }
            }
        }
        CaseCommand::Export { database, case, output } => {
            let files = case_files(&database).await?;
            let dossier = files.export(&case, &who).await?;
            let text = serde_json::to_string_pretty(&dossier)?;
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("write {}", path.display()))?,
                None => println!("{text}"),
            }
            Ok(dossier.verification.intact)
        }
    }
}
