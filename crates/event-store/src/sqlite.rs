//! The SQLite backend: WAL, `synchronous=FULL`, one writer connection, many readers.
//!
//! Every append runs in one `BEGIN IMMEDIATE` transaction on the single writer
//! connection, so the idempotency check, the head read, the position draw and the
//! inserts see no concurrent writer, and commit order equals position order.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::batch::{self, Planned};
use crate::chain::{to_hash, StoredLink};
use crate::error::StoreError;
use crate::prepare::{
    appends, from_sql, group_commit, supervised_writer, to_sql, BatchOutcome, ChainedAppend,
    ChainedEvent, EncodedAppend, EncodedEvent, Job, StoredPlace,
};
use crate::types::{AppendResult, Direction, LoggedEvent, RecordedEvent};
use crate::{sqlite_batch, sqlite_time};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

const EVENT_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
     schema_version, payload, metadata, recorded_at, prev_hash, hash";

#[derive(Debug, Clone)]
pub(crate) struct SqliteBackend {
    /// Exactly one connection: SQLite has one writer, and queueing here is cheaper than
    /// busy-waiting in the database.
    writer: SqlitePool,
    readers: SqlitePool,
    /// Appends wait here for the group-commit task (see [`writer_task`]).
    queue: mpsc::UnboundedSender<Job>,
}

impl SqliteBackend {
    /// `commits` counts the group-commit writer's transactions; `alive` says whether its
    /// thread still runs.
    pub async fn open(
        url: &str,
        commit_delay: Option<Duration>,
        commits: Arc<AtomicU64>,
        alive: Arc<AtomicBool>,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Deleted and overwritten content is zeroed, so an erased key or a scrubbed
            // read-model row leaves no bytes behind (R-C8).
            .pragma("secure_delete", "ON")
            // The WAL is copied into the database by `checkpoint_wal`, not inside commits.
            .pragma("wal_autocheckpoint", "0");
        // No ping before each acquire: an embedded database has no link to lose, and on
        // SQLite every statement, a ping too, is a round trip to a worker thread.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(restore_writer(conn)))
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let wal = wal_file(&options);
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(discard_if_in_transaction(conn)))
            .connect_with(options)
            .await?;
        let (queue, jobs) = mpsc::unbounded_channel();
        let (pool, checkpointer) = (writer.clone(), readers.clone());
        supervised_writer("kefu-sqlite-writer", jobs, alive, move |jobs| {
            let (pool, checkpointer, commits) =
                (pool.clone(), checkpointer.clone(), commits.clone());
            let wal = wal.clone();
            async move {
                let mut jobs = jobs.lock().await;
                tokio::select! {
                    () = writer_task(pool, &mut jobs, commit_delay, commits, wal) => {}
                    () = checkpoint_wal(checkpointer) => {}
                }
            }
        })?;
        Ok(SqliteBackend { writer, readers, queue })
    }

    pub fn writer_pool(&self) -> &SqlitePool {
        &self.writer
    }

    pub fn reader_pool(&self) -> &SqlitePool {
        &self.readers
    }

    /// Queues an append for the group-commit task (see [`crate::prepare::submit`]).
    pub fn submit(
        &self,
        appends: Vec<EncodedAppend>,
    ) -> oneshot::Receiver<Vec<Result<AppendResult, StoreError>>> {
        crate::prepare::submit(&self.queue, appends)
    }

    pub async fn locate(&self, event_ids: &[Uuid]) -> Result<Vec<StoredPlace>, StoreError> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.readers.acquire().await?;
        stored_places(&mut conn, event_ids).await
    }

    pub async fn stream_version(&self, stream_id: &str) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?",
        )
        .bind(stream_id)
        .fetch_one(&self.readers)
        .await?;
        from_sql(0, version)
    }

    pub async fn read_stream(
        &self,
        stream_id: &str,
        from_version: i64,
        direction: Direction,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = match direction {
            Direction::Forward => format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ? AND stream_version >= ? \
                 ORDER BY stream_version ASC LIMIT ?"
            ),
            Direction::Backward => format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ? AND stream_version <= ? \
                 ORDER BY stream_version DESC LIMIT ?"
            ),
        };
        let rows = sqlx::query(&sql)
            .bind(stream_id)
            .bind(from_version)
            .bind(limit)
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    pub async fn read_all(
        &self,
        from_position: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position >= ? ORDER BY position LIMIT ?"
        );
        let sql = sqlite_batch::batch_sql(&inner);
        let query = sqlx::query(&sql).bind(from_position).bind(limit);
        sqlite_batch::decode(&query.fetch_one(&self.readers).await?)
    }

    pub async fn read_range(
        &self,
        from_position: i64,
        to_position: i64,
        event_types: &[&str],
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let type_filter = if event_types.is_empty() {
            String::new()
        } else {
            format!("AND event_type IN ({})", vec!["?"; event_types.len()].join(", "))
        };
        let columns = sqlite_batch::LOGGED_COLUMNS;
        let inner = format!(
            "SELECT {columns} FROM events WHERE position >= ? AND position <= ? {type_filter} \
             ORDER BY position"
        );
        let sql = sqlite_batch::logged_batch_sql(&inner);
        let read = |from: i64, to: i64| {
            let mut query = sqlx::query(&sql).bind(from).bind(to);
            for event_type in event_types {
                query = query.bind(*event_type);
            }
            async move { sqlite_batch::decode_logged(&query.fetch_one(&self.readers).await?) }
        };
        sqlite_batch::read_in_pieces(from_position, to_position, sqlite_batch::too_big, read).await
    }

    pub async fn head_position(&self) -> Result<u64, StoreError> {
        let position: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&self.readers)
            .await?;
        from_sql(position, position)
    }

    pub async fn stream_links(&self, stream_id: &str) -> Result<Vec<StoredLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, stream_version, event_id, event_type, schema_version, payload, \
             metadata, recorded_at, prev_hash, hash FROM events WHERE stream_id = ? \
             ORDER BY stream_version",
        )
        .bind(stream_id)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let position: i64 = row.try_get("position")?;
                Ok(StoredLink {
                    stream_version: from_sql(position, row.try_get("stream_version")?)?,
                    event_id: parse_uuid(position, &row.try_get::<String, _>("event_id")?)?,
                    event_type: row.try_get("event_type")?,
                    schema_version: schema_version(position, row.try_get("schema_version")?)?,
                    payload: row.try_get("payload")?,
                    metadata: row.try_get("metadata")?,
                    recorded_at_micros: parse_timestamp(
                        position,
                        &row.try_get::<String, _>("recorded_at")?,
                    )?
                    .timestamp_micros(),
                    prev_hash: row.try_get("prev_hash")?,
                    hash: row.try_get("hash")?,
                })
            })
            .collect()
    }
}

/// How often the WAL is copied into the database file: under a full append load
/// SQLite's 1,000-page threshold was passed about as often.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`], on a reader
/// connection (`PASSIVE`: it waits for no reader or writer). SQLite's default makes the
/// committing connection do it inside its commit whenever the WAL passes 1,000 pages,
/// so an append (or a read-model batch) now and then waited for a checkpoint and its
/// fsyncs. `kefu projections rebuild` of 100,000 events, twelve paired runs: 0.89 x the
/// wall time (median) of autocheckpointing. Runs until the writer stops.
async fn checkpoint_wal(readers: SqlitePool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&readers).await {
            tracing::warn!(%error, "WAL checkpoint failed; trying again");
        }
    }
}

/// The group-commit writer (see [`group_commit`]): each batch is one `BEGIN IMMEDIATE`
/// transaction, so appends arriving together share one commit and one fsync while each
/// keeps its own atomicity and its own expected-version outcome. Between batches it
/// keeps the WAL bounded ([`truncate_wal`]).
async fn writer_task(
    writer: SqlitePool,
    jobs: &mut mpsc::UnboundedReceiver<Job>,
    commit_delay: Option<Duration>,
    commits: Arc<AtomicU64>,
    wal: Option<std::path::PathBuf>,
) {
    let last_truncation = std::cell::Cell::new(std::time::Instant::now());
    group_commit(jobs, commits, |batch| {
        let (writer, wal, last_truncation) = (&writer, wal.as_deref(), &last_truncation);
        async move {
            let outcome = write_batch(writer, &batch, commit_delay).await;
            if let Some(wal) = wal {
                truncate_wal(writer, wal, last_truncation).await;
            }
            (batch, outcome)
        }
    })
    .await;
}

/// The WAL is truncated once it passes this size, and cut back to it whenever it
/// starts over (`journal_size_limit`).
pub(crate) const WAL_LIMIT_BYTES: u64 = 32 << 20;
/// A truncation that readers kept from completing is tried again after this long.
const TRUNCATE_RETRY: Duration = Duration::from_millis(250);
/// How long a truncation waits for readers on an older snapshot before giving up for
/// now: appends queue behind it meanwhile.
const TRUNCATE_WAIT_MS: u32 = 50;

/// Keeps the WAL bounded under sustained load. The 1 s passive checkpoint copies the WAL
/// into the database but cannot make the WAL start over while readers keep using it, so
/// under steady appends and reads it grew without bound (746 MB beside a 30 MB database
/// in the issue). When the file passes [`WAL_LIMIT_BYTES`], the writer, between two
/// batches (so no write is in progress), runs `wal_checkpoint(TRUNCATE)`: it waits up to
/// [`TRUNCATE_WAIT_MS`] for readers on older snapshots to finish, copies what is left
/// and truncates the file to zero. Readers that keep it from completing are waited out
/// on a later batch, at most every [`TRUNCATE_RETRY`].
async fn truncate_wal(
    writer: &SqlitePool,
    wal: &std::path::Path,
    last_try: &std::cell::Cell<std::time::Instant>,
) {
    let size = std::fs::metadata(wal).map(|meta| meta.len()).unwrap_or(0);
    if size <= WAL_LIMIT_BYTES || last_try.get().elapsed() < TRUNCATE_RETRY {
        return;
    }
    last_try.set(std::time::Instant::now());
    match checkpoint_truncate(writer, TRUNCATE_WAIT_MS).await {
        Ok(true) => tracing::debug!(size, "WAL truncated"),
        Ok(false) => tracing::debug!(size, "WAL truncation waits for readers; trying again"),
        Err(error) => tracing::warn!(%error, size, "WAL truncation failed; trying again"),
    }
}

/// Runs `wal_checkpoint(TRUNCATE)` on the writer, waiting at most `wait_ms` for readers
/// on older snapshots; whether it completed (the WAL copied and cut to zero).
pub(crate) async fn checkpoint_truncate(
    writer: &SqlitePool,
    wait_ms: u32,
) -> Result<bool, sqlx::Error> {
    let mut conn = writer.acquire().await?;
    sqlx::query(&format!("PRAGMA busy_timeout = {wait_ms}")).execute(&mut *conn).await?;
    let checkpoint: Result<(i64, i64, i64), sqlx::Error> =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut *conn).await;
    sqlx::query(&format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis()))
        .execute(&mut *conn)
        .await?;
    Ok(checkpoint?.0 == 0)
}

/// How long a connection waits for a lock before SQLite answers busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The `-wal` file beside an SQLite database file (none in memory).
fn wal_file(options: &SqliteConnectOptions) -> Option<std::path::PathBuf> {
    let file = options.get_filename();
    let name = file.to_str()?;
    (!name.is_empty() && name != ":memory:")
        .then(|| std::path::PathBuf::from(format!("{name}-wal")))
}

/// Runs a batch in one transaction; `Err` when the transaction itself failed (then no
/// append of the batch is stored).
///
/// The whole batch is checked (idempotency, heads, expectations: [`batch::plan`]) from
/// one read before anything is written, so a refused append writes nothing and needs
/// no savepoint; then every planned row goes in with as few `INSERT`s as the statement
/// size allows. After the checks only a storage failure can stop an insert, and that
/// fails the batch. Statements, not rows, are what cost here: each is a round trip to
/// sqlx's worker thread.
async fn write_batch(
    writer: &SqlitePool,
    batch: &[Job],
    commit_delay: Option<Duration>,
) -> BatchOutcome {
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // The write lock is ours until commit: positions continue from here, in order.
    let Found { last_position, stored, heads } = find(&mut tx, batch).await?;
    let plans =
        batch::plan(batch.iter().map(|job| job.appends.as_slice()), &stored, heads, Utc::now());

    let mut rows = Vec::new();
    let mut written: Vec<Option<AppendResult>> = Vec::with_capacity(batch.len());
    let mut position = last_position;
    for (append, plan) in appends(batch).zip(&plans) {
        let Planned::Write(chained) = plan else {
            written.push(None);
            continue;
        };
        let first_position = position + 1;
        for ((event, payload), row) in append.events.iter().zip(&append.payloads).zip(&chained.rows)
        {
            position += 1;
            rows.push(EventRow { position, append, event, payload, chained, row });
        }
        written.push(Some(chained.result(first_position, position)?));
    }
    if rows.is_empty() {
        // Nothing to keep: no commit, no fsync.
        tx.rollback().await?;
    } else {
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            insert(&mut tx, chunk).await?;
        }
        if let Some(delay) = commit_delay {
            tokio::time::sleep(delay).await;
        }
        tx.commit().await?;
    }
    Ok(batch::outcomes(plans, &written))
}

/// Rows per `INSERT`: 11 parameters each, well under SQLite's 32,766.
const ROWS_PER_INSERT: usize = 1_000;

/// One planned event row and everything its columns come from.
struct EventRow<'a> {
    position: i64,
    append: &'a EncodedAppend,
    event: &'a EncodedEvent,
    payload: &'a str,
    chained: &'a ChainedAppend,
    row: &'a ChainedEvent,
}

/// What the database holds that a batch's checks need.
struct Found {
    /// The log's last position.
    last_position: i64,
    /// The places of the batch's event ids that are already stored.
    stored: Vec<StoredPlace>,
    /// The last `(version, hash)` of each stream the batch appends to; new streams are
    /// absent.
    heads: HashMap<String, (u64, [u8; 32])>,
}

/// Reads [`Found`] with one statement (four `SELECT`s joined, told apart by `kind`; the
/// events after a [`crate::Condition::NoneSince`]'s version are read as stored places).
async fn find(tx: &mut sqlx::SqliteConnection, batch: &[Job]) -> Result<Found, StoreError> {
    let event_ids: Vec<String> =
        appends(batch).flat_map(EncodedAppend::ids_to_find).map(|id| id.to_string()).collect();
    let streams: Vec<&str> = appends(batch).flat_map(EncodedAppend::streams).collect();
    let since: Vec<serde_json::Value> = appends(batch)
        .flat_map(EncodedAppend::since)
        .map(|(stream, version)| serde_json::json!([stream, version]))
        .collect();
    // JSON arrays keep the statement text fixed, so it is prepared once and cached.
    let ids = serde_json::Value::from(event_ids).to_string();
    let streams = serde_json::Value::from(streams).to_string();
    let since = serde_json::Value::from(since).to_string();
    // Each head is one index seek (`MAX` on the index prefix): a `GROUP BY` over the
    // streams would walk every version, and the yearly register grows with each filing.
    // The events after a `NoneSince` version: `CROSS JOIN` keeps the (few) conditions
    // the outer loop, so each is one index range on `(stream_id, stream_version)`.
    let rows: Vec<FoundRow> = sqlx::query_as(
        "SELECT 'stored', event_id, stream_id, stream_version, position, event_type, NULL \
           FROM events WHERE event_id IN (SELECT value FROM json_each(?1)) \
         UNION ALL \
         SELECT 'head', e.event_id, e.stream_id, e.stream_version, e.position, e.event_type, \
           e.hash \
           FROM (SELECT DISTINCT value FROM json_each(?2)) AS s \
           JOIN events AS e ON e.stream_id = s.value AND e.stream_version = \
             (SELECT MAX(stream_version) FROM events WHERE stream_id = s.value) \
         UNION ALL \
         SELECT 'stored', e.event_id, e.stream_id, e.stream_version, e.position, e.event_type, \
           NULL \
           FROM json_each(?3) AS c \
           CROSS JOIN events AS e ON e.stream_id = json_extract(c.value, '$[0]') \
             AND e.stream_version > json_extract(c.value, '$[1]') \
         UNION ALL \
         SELECT 'last', NULL, NULL, NULL, COALESCE(MAX(position), 0), NULL, NULL FROM events",
    )
    .bind(ids)
    .bind(streams)
    .bind(since)
    .fetch_all(&mut *tx)
    .await?;
    let mut found = Found { last_position: 0, stored: Vec::new(), heads: HashMap::new() };
    let mut heads = Vec::new();
    for (kind, event_id, stream_id, version, position, event_type, hash) in rows {
        let position = position.unwrap_or_default();
        let missing = || StoreError::Corrupt { position, reason: format!("{kind} row incomplete") };
        match kind.as_str() {
            "stored" => found.stored.push(StoredPlace {
                event_id: parse_uuid(position, &event_id.ok_or_else(missing)?)?,
                stream_id: stream_id.ok_or_else(missing)?,
                stream_version: from_sql(position, version.ok_or_else(missing)?)?,
                position: from_sql(position, position)?,
                event_type: event_type.ok_or_else(missing)?,
                // The writer's check compares places and types; callers compare
                // fingerprints when they look their keys up (`locate`).
                request_fingerprint: None,
            }),
            "head" => {
                let (stream_id, version) =
                    (stream_id.ok_or_else(missing)?, version.ok_or_else(missing)?);
                // The head as a stored place too: its type is what `LastNot` checks.
                found.stored.push(StoredPlace {
                    event_id: parse_uuid(position, &event_id.ok_or_else(missing)?)?,
                    stream_id: stream_id.clone(),
                    stream_version: from_sql(position, version)?,
                    position: from_sql(position, position)?,
                    event_type: event_type.ok_or_else(missing)?,
                    request_fingerprint: None,
                });
                heads.push((stream_id, version, hash.ok_or_else(missing)?));
            }
            _ => found.last_position = position,
        }
    }
    // A head among the batch's own ids is listed once.
    let mut seen = std::collections::HashSet::new();
    found.stored.retain(|place| seen.insert(place.event_id));
    found.heads = batch::heads(heads)?;
    Ok(found)
}

type FoundRow = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
);

/// Inserts planned rows with one statement.
async fn insert(tx: &mut sqlx::SqliteConnection, rows: &[EventRow<'_>]) -> Result<(), StoreError> {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
    let sql = format!("INSERT INTO events ({EVENT_COLUMNS}) VALUES {values}");
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query
            .bind(row.position)
            .bind(row.append.stream_id.as_str())
            .bind(to_sql("stream version", row.row.stream_version)?)
            .bind(row.event.event_id.to_string())
            .bind(&row.event.event_type)
            .bind(i64::from(row.event.schema_version))
            .bind(row.payload)
            .bind(&row.append.metadata)
            .bind(sqlite_time::format(row.chained.recorded_at))
            .bind(&row.row.prev_hash[..])
            .bind(&row.row.hash[..]);
    }
    query.execute(&mut *tx).await?;
    Ok(())
}

/// Keeps a released connection only if no transaction is left open on it.
///
/// A future cancelled inside sqlx's `begin_with` (between the `BEGIN` and the check
/// that follows it) leaves a transaction that nothing will roll back; reusing that
/// connection would fail every later `BEGIN IMMEDIATE`. A dropped `Transaction` whose
/// queued rollback has not run yet also counts as open: that connection is discarded
/// too, a rare reconnect instead of a round trip to the worker on every release.
async fn discard_if_in_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    Ok(!conn.is_in_transaction())
}

/// Keeps the writer only if no transaction is left open on it, and gives it `synchronous = FULL`
/// back: the projection runner relaxes it inside its own transactions (read models are
/// rebuildable, and the next append's sync of the WAL covers their frames too), and no
/// append may ever run relaxed. The `PRAGMA` doubles as the ping: it runs after any
/// rollback a dropped `Transaction` queued.
async fn restore_writer(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
    Ok(!conn.is_in_transaction())
}

/// Where the database already holds any of `event_ids` (the idempotency check's input).
async fn stored_places(
    conn: &mut sqlx::SqliteConnection,
    event_ids: &[Uuid],
) -> Result<Vec<StoredPlace>, StoreError> {
    let ids: Vec<String> = event_ids.iter().map(Uuid::to_string).collect();
    let ids = serde_json::Value::from(ids).to_string();
    // One statement text whatever the count, so it is prepared once and cached.
    let rows = sqlx::query(
        "SELECT event_id, stream_id, stream_version, position, event_type, \
         json_extract(metadata, '$.request_fingerprint') AS request_fingerprint FROM events \
         WHERE event_id IN (SELECT value FROM json_each(?))",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let position: i64 = row.try_get("position")?;
            Ok(StoredPlace {
                event_id: parse_uuid(position, &row.try_get::<String, _>("event_id")?)?,
                stream_id: row.try_get("stream_id")?,
                stream_version: from_sql(position, row.try_get("stream_version")?)?,
                position: from_sql(position, position)?,
                event_type: row.try_get("event_type")?,
                request_fingerprint: row.try_get("request_fingerprint")?,
            })
        })
        .collect()
}

fn decode_event(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let payload: String = row.try_get("payload")?;
    let metadata: String = row.try_get("metadata")?;
    let prev_hash: Vec<u8> = row.try_get("prev_hash")?;
    let hash: Vec<u8> = row.try_get("hash")?;
    Ok(RecordedEvent {
        position: from_sql(position, position)?,
        stream_id: row.try_get("stream_id")?,
        stream_version: from_sql(position, row.try_get("stream_version")?)?,
        event_id: parse_uuid(position, &row.try_get::<String, _>("event_id")?)?,
        event_type: row.try_get("event_type")?,
        schema_version: schema_version(position, row.try_get("schema_version")?)?,
        payload: serde_json::from_str(&payload)
            .map_err(|error| corrupt(format!("payload: {error}")))?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|error| corrupt(format!("metadata: {error}")))?,
        recorded_at: parse_timestamp(position, &row.try_get::<String, _>("recorded_at")?)?,
        prev_hash: to_hash(&prev_hash).ok_or_else(|| corrupt("prev_hash length".into()))?,
        hash: to_hash(&hash).ok_or_else(|| corrupt("hash length".into()))?,
    })
}

pub(crate) fn parse_uuid(position: i64, text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text)
        .map_err(|error| StoreError::Corrupt { position, reason: format!("event id: {error}") })
}

pub(crate) fn parse_timestamp(position: i64, text: &str) -> Result<DateTime<Utc>, StoreError> {
    sqlite_time::parse(text)
        .map_err(|error| StoreError::Corrupt { position, reason: format!("recorded_at: {error}") })
}

pub(crate) fn schema_version(position: i64, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        position,
        reason: format!("schema version {value} out of range"),
    })
}
