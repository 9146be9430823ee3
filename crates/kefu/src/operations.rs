//! `kefu backup`, `kefu restore` and `kefu check`: copies of the log that can be trusted.
//!
//! A restore is only done when the copy proves itself: every stream's hash chain
//! verifies and the read models rebuild from it (the policy asks for regular backups
//! and a recovery procedure; docs/operations.md has the PostgreSQL one).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use kefu_event_store::{EventStore, StoreOptions, StreamId, Verification};
use kefu_projection::{Projection, Runner};

/// What `check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub events: u64,
    pub streams: usize,
}

async fn open(url: &str) -> anyhow::Result<EventStore> {
    EventStore::open(url, StoreOptions::default())
        .await
        .with_context(|| format!("open the event store at {}", kefu::redact(url)))
}

/// Writes a consistent copy of the SQLite database at `url` to `file`, online.
pub async fn backup(url: &str, file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} exists; refusing to overwrite a backup", file.display());
    }
    let store = open(url).await?;
    store.backup_sqlite(file).await.context("write the backup")?;
    Ok(())
}

/// Copies the SQLite backup `file` to the (new) database of `url`, then checks it.
pub async fn restore(
    file: &Path,
    url: &str,
    projections: Vec<Arc<dyn Projection>>,
) -> anyhow::Result<Checked> {
    let target = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|path| path.split('?').next().unwrap_or(path))
        .context("restore writes SQLite files; for PostgreSQL use pg_restore, then kefu check")?;
    let target = Path::new(target);
    if target.exists() {
        bail!("{} exists; restore into a new file", target.display());
    }
    std::fs::copy(file, target)
        .with_context(|| format!("copy {} to {}", file.display(), target.display()))?;
    check(url, projections).await
}

/// Verifies every stream's hash chain, then rebuilds `projections` (all of them, in the
/// configured business zone and phone region) from zero.
pub async fn check(url: &str, projections: Vec<Arc<dyn Projection>>) -> anyhow::Result<Checked> {
    let store = open(url).await?;
    let mut streams = BTreeSet::new();
    let mut events = 0u64;
    let mut from = 1;
    loop {
        let page = store.read_all(from, 1_000).await?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        events += page.len() as u64;
        streams.extend(page.into_iter().map(|event| event.stream_id));
    }
    for stream in &streams {
        match store.verify_stream(&StreamId::new(stream.clone())?).await? {
            Verification::Intact { .. } => {}
            Verification::Broken { version, reason } => {
                bail!("stream {stream} fails verification at version {version}: {reason}")
            }
        }
    }
    Runner::new(store, projections).rebuild_all(|_, _| {}).await?;
    Ok(Checked { events, streams: streams.len() })
}
