//! `EventStore`: the one handle the rest of kefu holds, whatever the backend.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::chain::{verify_links, StoredLink};
use crate::error::StoreError;
use crate::postgres::PgBackend;
use crate::prepare::{to_sql, EncodedAppend};
use crate::sqlite::SqliteBackend;
use crate::types::{
    Append, AppendResult, Direction, ExpectedVersion, LoggedEvent, Metadata, NewEvent,
    RecordedEvent, StoreOptions, StreamId, Verification,
};

/// Events fetched per round trip while a subscription catches up.
const SUBSCRIBE_BATCH: i64 = 512;
/// A subscriber re-reads at least this often even if no wake-up arrives (writes from
/// another process on SQLite, a lost `NOTIFY` connection on PostgreSQL).
const POLL_FALLBACK: Duration = Duration::from_secs(1);

/// Which database holds the log; the projection runner writes its read models there too.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite {
        /// The single writer connection; write transactions must go through it.
        writer: sqlx::SqlitePool,
        readers: sqlx::SqlitePool,
    },
    Postgres(sqlx::PgPool),
}

#[derive(Debug)]
enum Backend {
    Sqlite(SqliteBackend),
    Postgres(PgBackend),
}

/// An append on its way: resolves once committed (and synced) or refused.
pub type PendingAppend =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<AppendResult, StoreError>> + Send>>;

/// Appends on their way together: one outcome each, in order, once committed (and
/// synced) or refused.
pub type PendingGroup = std::pin::Pin<
    Box<dyn std::future::Future<Output = Vec<Result<AppendResult, StoreError>>> + Send>,
>;

/// Where one stored event sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLocation {
    pub event_id: uuid::Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub position: u64,
    /// What request wrote it (`Metadata::request_fingerprint`), when recorded.
    pub request_fingerprint: Option<String>,
}

/// The append-only event log. Cheap to clone; all clones share one connection pool.
#[derive(Debug, Clone)]
pub struct EventStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    backend: Backend,
    options: StoreOptions,
    /// Bumped after every commit this process makes and on every PostgreSQL `NOTIFY`,
    /// so subscribers wake without polling.
    wake: watch::Sender<u64>,
    listener: Option<JoinHandle<()>>,
    /// Live data keys this process sealed with lately (see `vault`).
    /// Transactions the group-commit writer has committed.
    commits: Arc<std::sync::atomic::AtomicU64>,
    /// Whether the group-commit writer's thread still runs (see `supervised_writer`).
    writer_alive: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) sealing_keys:
        std::sync::Mutex<std::collections::HashMap<String, crate::vault::DataKey>>,
    /// An erasure's WAL truncation is being retried (see `vault`): one at a time, since
    /// each try holds the writer, and a later success covers every erasure before it.
    pub(crate) purge: Arc<crate::vault::PurgeState>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl EventStore {
    /// Opens (creating if needed) the log at `url` (`sqlite://path` or `postgres://…`)
    /// and brings its schema up to date.
    pub async fn open(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let (wake, _) = watch::channel(0);
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer_alive = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (backend, listener) = if url.starts_with("sqlite:") {
            let alive = writer_alive.clone();
            let sqlite =
                SqliteBackend::open(url, options.commit_delay, commits.clone(), alive).await?;
            (Backend::Sqlite(sqlite), None)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let backend = PgBackend::open(
                url,
                options.postgres_connections,
                options.commit_delay,
                commits.clone(),
                writer_alive.clone(),
            )
            .await?;
            let listener = spawn_listener(&backend, wake.clone()).await?;
            (Backend::Postgres(backend), Some(listener))
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let sealing_keys = std::sync::Mutex::default();
        let purge = Arc::default();
        let inner =
            Inner { backend, options, wake, listener, sealing_keys, commits, writer_alive, purge };
        Ok(EventStore { inner: Arc::new(inner) })
    }

    /// The database behind the log, for read models that live beside it.
    pub fn database(&self) -> Database {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => Database::Sqlite {
                writer: sqlite.writer_pool().clone(),
                readers: sqlite.reader_pool().clone(),
            },
            Backend::Postgres(postgres) => Database::Postgres(postgres.pool().clone()),
        }
    }

    /// A signal that changes after every append this process commits and, on PostgreSQL,
    /// after every append any node commits. Its value means nothing; wait on `changed()`
    /// and then read from your last position.
    pub fn notifications(&self) -> watch::Receiver<u64> {
        self.inner.wake.subscribe()
    }

    /// Appends `events` to `stream_id` atomically if the stream matches `expected`.
    ///
    /// Re-sending an append whose event ids are all stored already, as this same append,
    /// returns the original result and writes nothing. A wrong expectation fails with
    /// [`StoreError::WrongExpectedVersion`] carrying the actual version.
    pub async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<AppendResult, StoreError> {
        self.submit(stream_id, expected, events, metadata)?.await
    }

    /// Like [`EventStore::append`], but the append is queued when this returns, so a
    /// caller holding a lock can release it before waiting for the commit: appends
    /// submitted one after another are tried in that order (each backend has one
    /// group-commit writer per process), possibly sharing one commit.
    pub fn submit(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<PendingAppend, StoreError> {
        let encoded =
            EncodedAppend::new(stream_id, expected, events, metadata, &self.inner.options.limits)?;
        let pending = self.queue(vec![encoded]);
        Ok(Box::pin(async move {
            pending.await.pop().unwrap_or_else(|| {
                Err(StoreError::Corrupt { position: 0, reason: "an append went unanswered".into() })
            })
        }))
    }

    /// Appends written all in one transaction or none of them: each is checked like an
    /// append of its own (idempotency, expectation, and its conditions: a retry of an
    /// append already stored gets its result whatever they say), and if any of them is
    /// not written, the others are not either ([`StoreError::GroupIncomplete`]; a
    /// refused or repeated one keeps its own answer). One outcome per append, in order.
    pub fn submit_group(&self, appends: &[Append]) -> Result<PendingGroup, StoreError> {
        let limits = &self.inner.options.limits;
        let encoded = appends
            .iter()
            .map(|append| {
                let encoded = EncodedAppend::new(
                    &append.stream_id,
                    append.expected,
                    &append.events,
                    &append.metadata,
                    limits,
                )?;
                Ok(encoded.with_conditions(append.conditions.clone()))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if encoded.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        Ok(self.queue(encoded))
    }

    /// Queues encoded appends as one job of this process's group-commit writer.
    fn queue(&self, appends: Vec<EncodedAppend>) -> PendingGroup {
        let count = appends.len();
        let store = self.clone();
        let answer = match &self.inner.backend {
            Backend::Sqlite(sqlite) => sqlite.submit(appends),
            Backend::Postgres(postgres) => postgres.submit(appends),
        };
        Box::pin(async move {
            let Ok(outcomes) = answer.await else {
                // The writer failed with this job in flight, or was given up on: whether
                // it was stored is unknown, and a retry (same ids) is safe either way.
                let stopped =
                    || StoreError::Unavailable("the writer failed before answering; retry".into());
                return (0..count).map(|_| Err(stopped())).collect();
            };
            if outcomes.iter().any(Result::is_ok) {
                store.inner.wake.send_modify(|n| *n = n.wrapping_add(1));
            }
            outcomes
        })
    }

    /// Writes a consistent copy of an SQLite database to `path` while it stays in use
    /// (`VACUUM INTO`: a snapshot, compacted). PostgreSQL is backed up with `pg_dump`.
    pub async fn backup_sqlite(&self, path: &std::path::Path) -> Result<(), StoreError> {
        let Backend::Sqlite(sqlite) = &self.inner.backend else {
            return Err(StoreError::Unsupported("online backup of PostgreSQL: use pg_dump"));
        };
        let target = path.to_str().ok_or(StoreError::Unsupported("backup paths must be UTF-8"))?;
        sqlx::query("VACUUM INTO ?").bind(target).execute(sqlite.reader_pool()).await?;
        Ok(())
    }

    /// Whether this process's group-commit writer still runs. A writer that panicked is
    /// restarted; one that panicked too often is given up on, and then every append
    /// fails [`StoreError::Unavailable`]: the node should report itself NOT_SERVING.
    pub fn writer_alive(&self) -> bool {
        self.inner.writer_alive.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many write transactions this process's group-commit writer has committed:
    /// appends per commit is the batching factor.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the given events are stored, for those that are (in no particular order).
    /// Lets a caller recognise a retried request before deciding anything again.
    pub async fn locate(&self, event_ids: &[uuid::Uuid]) -> Result<Vec<EventLocation>, StoreError> {
        let places = match &self.inner.backend {
            Backend::Sqlite(sqlite) => sqlite.locate(event_ids).await?,
            Backend::Postgres(postgres) => postgres.locate(event_ids).await?,
        };
        Ok(places
            .into_iter()
            .map(|place| EventLocation {
                event_id: place.event_id,
                stream_id: place.stream_id,
                stream_version: place.stream_version,
                position: place.position,
                request_fingerprint: place.request_fingerprint,
            })
            .collect())
    }

    /// The stream's last version; 0 when it does not exist.
    pub async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => sqlite.stream_version(stream_id.as_str()).await,
            Backend::Postgres(postgres) => postgres.stream_version(stream_id.as_str()).await,
        }
    }

    /// Up to `limit` events of one stream starting at `from_version`, walking `direction`.
    pub async fn read_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Backward from "the end" is spelled u64::MAX; clamp it into SQL's range.
        let from_version = i64::try_from(from_version).unwrap_or(i64::MAX);
        let limit = sql_limit(limit);
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => {
                sqlite.read_stream(stream_id.as_str(), from_version, direction, limit).await
            }
            Backend::Postgres(postgres) => {
                postgres.read_stream(stream_id.as_str(), from_version, direction, limit).await
            }
        }
    }

    /// Up to `limit` events of the whole log with `position >= from_position`, in order.
    pub async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from_position = to_sql("position", from_position)?;
        let limit = sql_limit(limit);
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => sqlite.read_all(from_position, limit).await,
            Backend::Postgres(postgres) => postgres.read_all(from_position, limit).await,
        }
    }

    /// The events with `from_position <= position <= to_position` whose type is one of
    /// `event_types` (all types when empty), in position order.
    ///
    /// Positions are gap-free, so a range is exactly `to - from + 1` events before
    /// filtering; with `to_position <= head_position()` every one of them is committed.
    /// Filtering in the database lets a reader skip what it does not need cheaply. Each
    /// event comes as a [`LoggedEvent`]: its payload as stored text, no metadata or hashes.
    pub async fn read_range(
        &self,
        from_position: u64,
        to_position: u64,
        event_types: &[&str],
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let from_position = to_sql("position", from_position)?;
        let to_position = to_sql("position", to_position)?;
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => {
                sqlite.read_range(from_position, to_position, event_types).await
            }
            Backend::Postgres(postgres) => {
                postgres.read_range(from_position, to_position, event_types).await
            }
        }
    }

    /// The position of the last committed event; 0 for an empty log.
    pub async fn head_position(&self) -> Result<u64, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => sqlite.head_position().await,
            Backend::Postgres(postgres) => postgres.head_position().await,
        }
    }

    /// Every event with `position >= from_position`: first those already stored, then live
    /// ones as they commit, in position order, each exactly once. Resume after a
    /// disconnect with the last position seen plus one. The stream ends only on error.
    pub fn subscribe(
        &self,
        from_position: u64,
    ) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static {
        let store = self.clone();
        let mut wake = self.inner.wake.subscribe();
        async_stream::try_stream! {
            let mut next = from_position.max(1);
            loop {
                // Mark wake-ups seen *before* reading, so a commit during the read is
                // not missed: it will make `changed()` fire again.
                wake.borrow_and_update();
                let batch = store.read_all(next, usize::try_from(SUBSCRIBE_BATCH).unwrap_or(512)).await?;
                if batch.is_empty() {
                    tokio::select! {
                        _ = wake.changed() => {}
                        () = tokio::time::sleep(POLL_FALLBACK) => {}
                    }
                    continue;
                }
                for event in batch {
                    next = event.position + 1;
                    yield event;
                }
            }
        }
    }

    /// Recomputes the stream's hash chain and names the first version that does not match.
    pub async fn verify_stream(&self, stream_id: &StreamId) -> Result<Verification, StoreError> {
        Ok(verify_links(stream_id.as_str(), &self.stream_links(stream_id).await?))
    }

    /// The stream's rows exactly as stored and hashed (payloads still sealed), in
    /// version order: what [`verify_links`] checks, here or anywhere else.
    pub async fn stream_links(&self, stream_id: &StreamId) -> Result<Vec<StoredLink>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => sqlite.stream_links(stream_id.as_str()).await,
            Backend::Postgres(postgres) => postgres.stream_links(stream_id.as_str()).await,
        }
    }
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Forwards PostgreSQL `NOTIFY`s from other nodes (and our own) to local subscribers.
async fn spawn_listener(
    backend: &PgBackend,
    wake: watch::Sender<u64>,
) -> Result<JoinHandle<()>, StoreError> {
    let mut listener = backend.listener().await?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(_) => wake.send_modify(|n| *n = n.wrapping_add(1)),
                Err(error) => {
                    // PgListener reconnects on the next recv; subscribers still poll meanwhile.
                    tracing::warn!(%error, "event notification listener failed; retrying");
                    tokio::time::sleep(POLL_FALLBACK).await;
                }
            }
        }
    }))
}
