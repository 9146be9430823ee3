//! The PostgreSQL backend: many writers, many nodes, one gap-free global order.
//!
//! # Why readers never skip a late commit
//!
//! A plain sequence hands out positions in call order, but transactions commit in any
//! order: a reader could see position 11 before position 10 commits, move its
//! checkpoint past 10, and lose it. Filtering on `xid < pg_snapshot_xmin(...)` alone
//! does not close the hole either, because xid order and sequence order can disagree
//! between two racing writers; the sound form of that idea orders by `(xid, position)`,
//! which would break our contract that positions increase in commit order.
//!
//! Instead the insert draws its positions from the single row of `event_position` with
//! `UPDATE … SET last = last + n` in the same statement. That row lock is held until the
//! transaction ends, and PostgreSQL's `CommitTransaction` makes the commit visible
//! (`ProcArrayEndTransaction`) *before* it releases the transaction's locks. Hence a
//! writer can only draw position `p + 1` once the transaction holding `p` is visible
//! or has rolled back (its positions are then reused, so there are no gaps either).
//! Any snapshot that shows position `q` therefore shows every position below `q`, and
//! `WHERE position >= checkpoint ORDER BY position` is gap-safe and duplicate-free.
//!
//! The lock covers only the final statement and the commit; the idempotency check, the
//! head read and the hashing happen before it. Appends to one stream first queue on a
//! transaction-level advisory lock keyed by the stream id, so they read the head one
//! after another; `UNIQUE (stream_id, stream_version)` stays as the last line of defence.
//! Lock order is always stream lock, then position row: no deadlock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use uuid::Uuid;

use crate::batch::{self, Planned};
use crate::chain::{to_hash, StoredLink};
use crate::error::StoreError;
use crate::prepare::{
    appends, from_sql, group_commit, supervised_writer, to_sql, BatchOutcome, ChainedAppend,
    EncodedAppend, Job, StoredPlace,
};
use crate::types::{AppendResult, Direction, LoggedEvent, RecordedEvent};
use tokio::sync::{mpsc, oneshot};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The channel the `events_notify` trigger signals on every insert.
pub(crate) const NOTIFY_CHANNEL: &str = "kefu_events";

const EVENT_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
     schema_version, payload::text AS payload, metadata::text AS metadata, recorded_at, \
     prev_hash, hash";

const INSERT_EVENTS: &str = "\
    WITH drawn AS ( \
        UPDATE event_position SET last = last + $1 RETURNING last - $1 AS base \
    ) \
    INSERT INTO events (position, stream_id, stream_version, event_id, event_type, \
        schema_version, payload, metadata, recorded_at, prev_hash, hash) \
    SELECT drawn.base + e.ord, e.stream_id, e.stream_version, e.event_id, e.event_type, \
        e.schema_version, e.payload::json, e.metadata::json, e.recorded_at, e.prev_hash, e.hash \
    FROM drawn, UNNEST($2::text[], $3::text[], $4::timestamptz[], $5::bigint[], $6::uuid[], \
        $7::text[], $8::int[], $9::text[], $10::bytea[], $11::bytea[]) \
        WITH ORDINALITY AS e(stream_id, metadata, recorded_at, stream_version, event_id, \
        event_type, schema_version, payload, prev_hash, hash, ord) \
    RETURNING position";

#[derive(Debug, Clone)]
pub(crate) struct PgBackend {
    pool: PgPool,
    /// Appends wait here for this node's group-commit task (see [`writer_task`]).
    queue: mpsc::UnboundedSender<Job>,
}

impl PgBackend {
    pub async fn open(
        url: &str,
        max_connections: u32,
        commit_delay: Option<Duration>,
        commits: Arc<AtomicU64>,
        alive: Arc<AtomicBool>,
    ) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        // Concurrent nodes may start together; the migrator takes an advisory lock.
        MIGRATOR.run(&pool).await?;
        let (queue, jobs) = mpsc::unbounded_channel();
        spawn_writer(options, jobs, commit_delay, commits, alive)?;
        Ok(PgBackend { pool, queue })
    }

    /// Queues an append for this node's group-commit task, in call order.
    pub fn submit(
        &self,
        appends: Vec<EncodedAppend>,
    ) -> oneshot::Receiver<Vec<Result<AppendResult, StoreError>>> {
        crate::prepare::submit(&self.queue, appends)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn listener(&self) -> Result<PgListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(listener)
    }

    pub async fn locate(&self, event_ids: &[Uuid]) -> Result<Vec<StoredPlace>, StoreError> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        stored_places(&mut conn, event_ids).await
    }

    pub async fn stream_version(&self, stream_id: &str) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0)::bigint FROM events WHERE stream_id = $1",
        )
        .bind(stream_id)
        .fetch_one(&self.pool)
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
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 \
                 ORDER BY stream_version ASC LIMIT $3"
            ),
            Direction::Backward => format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version <= $2 \
                 ORDER BY stream_version DESC LIMIT $3"
            ),
        };
        let rows = sqlx::query(&sql)
            .bind(stream_id)
            .bind(from_version)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    pub async fn read_all(
        &self,
        from_position: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position >= $1 ORDER BY position LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(from_position).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(decode_event).collect()
    }

    pub async fn read_range(
        &self,
        from_position: i64,
        to_position: i64,
        event_types: &[&str],
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, stream_id, event_type, schema_version, payload::text AS payload \
             FROM events WHERE position >= $1 AND position <= $2 \
             AND (cardinality($3::text[]) = 0 OR event_type = ANY($3)) ORDER BY position",
        )
        .bind(from_position)
        .bind(to_position)
        .bind(event_types)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_logged).collect()
    }

    pub async fn head_position(&self) -> Result<u64, StoreError> {
        let position: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::bigint FROM events")
                .fetch_one(&self.pool)
                .await?;
        from_sql(position, position)
    }

    pub async fn stream_links(&self, stream_id: &str) -> Result<Vec<StoredLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, stream_version, event_id, event_type, schema_version, \
             payload::text AS payload, metadata::text AS metadata, recorded_at, prev_hash, hash \
             FROM events WHERE stream_id = $1 ORDER BY stream_version",
        )
        .bind(stream_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let position: i64 = row.try_get("position")?;
                Ok(StoredLink {
                    stream_version: from_sql(position, row.try_get("stream_version")?)?,
                    event_id: row.try_get("event_id")?,
                    event_type: row.try_get("event_type")?,
                    schema_version: schema_version(position, row.try_get("schema_version")?)?,
                    payload: row.try_get("payload")?,
                    metadata: row.try_get("metadata")?,
                    recorded_at_micros: row
                        .try_get::<DateTime<Utc>, _>("recorded_at")?
                        .timestamp_micros(),
                    prev_hash: row.try_get("prev_hash")?,
                    hash: row.try_get("hash")?,
                })
            })
            .collect()
    }
}

async fn stored_places(
    conn: &mut sqlx::PgConnection,
    event_ids: &[Uuid],
) -> Result<Vec<StoredPlace>, StoreError> {
    let rows = sqlx::query(
        "SELECT event_id, stream_id, stream_version, position, event_type, \
         metadata->>'request_fingerprint' AS request_fingerprint FROM events \
         WHERE event_id = ANY($1)",
    )
    .bind(event_ids)
    .fetch_all(conn)
    .await?;
    rows.iter().map(stored_place).collect()
}

fn stored_place(row: &PgRow) -> Result<StoredPlace, StoreError> {
    let position: i64 = row.try_get("position")?;
    Ok(StoredPlace {
        event_id: row.try_get("event_id")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: from_sql(position, row.try_get("stream_version")?)?,
        position: from_sql(position, position)?,
        event_type: row.try_get("event_type")?,
        request_fingerprint: row.try_get("request_fingerprint")?,
    })
}

fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
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
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: schema_version(position, row.try_get("schema_version")?)?,
        payload: serde_json::from_str(&payload)
            .map_err(|error| corrupt(format!("payload: {error}")))?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|error| corrupt(format!("metadata: {error}")))?,
        recorded_at: row.try_get("recorded_at")?,
        prev_hash: to_hash(&prev_hash).ok_or_else(|| corrupt("prev_hash length".into()))?,
        hash: to_hash(&hash).ok_or_else(|| corrupt("hash length".into()))?,
    })
}

fn decode_logged(row: &PgRow) -> Result<LoggedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    Ok(LoggedEvent {
        position: from_sql(position, position)?,
        stream_id: row.try_get("stream_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: schema_version(position, row.try_get("schema_version")?)?,
        payload: row.try_get("payload")?,
    })
}

fn schema_version(position: i64, value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        position,
        reason: format!("schema version {value} out of range"),
    })
}

fn schema_versions(append: &EncodedAppend) -> Result<Vec<i32>, StoreError> {
    append
        .events
        .iter()
        .map(|event| {
            i32::try_from(event.schema_version).map_err(|_| StoreError::OutOfRange {
                what: "schema version",
                value: u64::from(event.schema_version),
            })
        })
        .collect()
}

/// How long a call waits for a connection, reconnecting included, before it fails
/// transient (`PoolTimedOut`: gRPC `UNAVAILABLE`, retry with the same request id). With
/// PostgreSQL down a connect is refused and sqlx retries until this deadline: short, so
/// writes and reads fail fast instead of holding their callers to their deadlines; long
/// enough for a restart's brief refusals and for a busy pool's queue.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// This node's group-commit writer: every append queued since its last turn goes into
/// one transaction. The batch first locks all its streams (advisory locks, taken in one
/// global order so two nodes' batches cannot deadlock); then every append is checked
/// (idempotency, head, expectation: [`batch::plan`]) before any row is inserted, so a
/// refused append writes nothing, and the planned rows go in with one statement.
/// Positions come from the `event_position` row, locked to commit: gap free and in
/// commit order across nodes. Nobody hears back before the commit.
/// Starts the writer on a supervised thread of its own ([`supervised_writer`]), with
/// connections of its own: created there, their I/O is driven there (anew after a
/// restart).
fn spawn_writer(
    options: PgConnectOptions,
    jobs: mpsc::UnboundedReceiver<Job>,
    commit_delay: Option<Duration>,
    commits: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
) -> Result<(), StoreError> {
    supervised_writer("kefu-pg-writer", jobs, alive, move |jobs| {
        let (options, commits) = (options.clone(), commits.clone());
        async move {
            // Two: one for the batches, one for the occasional ANALYZE.
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(options);
            let mut jobs = jobs.lock().await;
            writer_task(pool, &mut jobs, commit_delay, commits).await;
        }
    })
}

async fn writer_task(
    pool: PgPool,
    jobs: &mut mpsc::UnboundedReceiver<Job>,
    commit_delay: Option<Duration>,
    commits: Arc<AtomicU64>,
) {
    group_commit(jobs, commits, |batch| {
        let pool = &pool;
        async move {
            let outcome = write_batch(pool, &batch, commit_delay).await;
            (batch, outcome)
        }
    })
    .await;
}

async fn write_batch(pool: &PgPool, batch: &[Job], commit_delay: Option<Duration>) -> BatchOutcome {
    let mut tx = pool.begin().await?;
    // Its own streams and those its conditions read.
    let streams: Vec<&str> = appends(batch).flat_map(EncodedAppend::streams).collect();
    // Volatile functions run after ORDER BY: the locks are taken in key order.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM \
         (SELECT DISTINCT hashtextextended(s, 0) AS k FROM unnest($1::text[]) AS s) AS keys \
         ORDER BY k",
    )
    .bind(&streams)
    .execute(&mut *tx)
    .await?;
    // With every stream locked, the whole batch is checked from one read.
    let event_ids: Vec<Uuid> = appends(batch).flat_map(EncodedAppend::ids_to_find).collect();
    let since: Vec<(&str, u64)> = appends(batch).flat_map(EncodedAppend::since).collect();
    let (stored, heads) = find(&mut tx, &event_ids, &streams, &since).await?;
    let plans =
        batch::plan(batch.iter().map(|job| job.appends.as_slice()), &stored, heads, Utc::now());

    let mut rows = Rows::default();
    // Per append: the range of `rows` it wrote.
    let mut spans: Vec<Option<std::ops::Range<usize>>> = Vec::with_capacity(batch.len());
    for (append, plan) in appends(batch).zip(&plans) {
        let Planned::Write(chained) = plan else {
            spans.push(None);
            continue;
        };
        let start = rows.len();
        rows.push(append, chained)?;
        spans.push(Some(start..rows.len()));
    }
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(batch::outcomes(plans, &[]));
    }
    let base = rows.insert(&mut tx).await?;
    if let Some(delay) = commit_delay {
        tokio::time::sleep(delay).await;
    }
    tx.commit().await?;
    analyze_young_log(pool, base, base + to_sql("position", rows.len() as u64)?);
    // Row k of the statement took position base + 1 + k (see INSERT_EVENTS).
    let written: Vec<Option<AppendResult>> = spans
        .iter()
        .zip(&plans)
        .map(|(span, plan)| {
            let (Some(span), Planned::Write(chained)) = (span, plan) else { return Ok(None) };
            let first = base + 1 + to_sql("position", span.start as u64)?;
            let last = base + to_sql("position", span.end as u64)?;
            chained.result(first, last).map(Some)
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(batch::outcomes(plans, &written))
}

/// Log sizes at which the writer analyzes the database itself.
const ANALYZE_AT: [i64; 3] = [100, 1_000, 10_000];

/// sqlx prepares each statement once per connection and PostgreSQL may keep a generic
/// plan for it; one made while the log (or a read model growing with it) was a page or
/// two is a sequential scan, and it stays as the table grows: the idempotency lookup
/// went from 0.07 to 0.9 ms within seconds of a fresh start. ANALYZE makes PostgreSQL
/// re-plan every statement on the analyzed tables; autovacuum would too, but only after
/// its first nap (a minute). From about 10,000 events on, the plans are index plans
/// anyway. (Forcing custom plans instead cost about 10 % of append throughput.)
fn analyze_young_log(pool: &PgPool, before: i64, after: i64) {
    if !ANALYZE_AT.iter().any(|&size| before < size && size <= after) {
        return;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        if let Err(error) = sqlx::query("ANALYZE").execute(&pool).await {
            tracing::debug!(%error, "could not analyze the young database");
        }
    });
}

/// What the batch's checks need, in one statement (one round trip of the writer's
/// turn fewer): the stored places of `event_ids`, the last `(version, hash)` of each of
/// `streams` (new streams are absent), and the places of the events after each
/// `(stream, version)` of `since` (what [`crate::Condition::NoneSince`] checks).
async fn find(
    tx: &mut sqlx::PgConnection,
    event_ids: &[Uuid],
    streams: &[&str],
    since: &[(&str, u64)],
) -> Result<(Vec<StoredPlace>, HashMap<String, (u64, [u8; 32])>), StoreError> {
    let since_streams: Vec<&str> = since.iter().map(|(stream, _)| *stream).collect();
    let since_versions = since
        .iter()
        .map(|(_, version)| to_sql("version", *version))
        .collect::<Result<Vec<_>, _>>()?;
    // One index seek per stream: `DISTINCT ON` over the streams would read every
    // version, and the yearly register grows with each filing.
    let rows = sqlx::query(
        "SELECT event_id, stream_id, stream_version, position, event_type, NULL::bytea AS hash, \
           NULL::text AS request_fingerprint FROM events WHERE event_id = ANY($1) \
         UNION ALL \
         SELECT e.event_id, s.stream_id, e.stream_version, e.position, e.event_type, e.hash, NULL \
         FROM (SELECT DISTINCT unnest($2::text[]) AS stream_id) AS s \
         CROSS JOIN LATERAL (SELECT event_id, stream_version, position, event_type, hash \
           FROM events \
           WHERE events.stream_id = s.stream_id ORDER BY stream_version DESC LIMIT 1) AS e \
         UNION ALL \
         SELECT e.event_id, e.stream_id, e.stream_version, e.position, e.event_type, NULL, NULL \
         FROM unnest($3::text[], $4::bigint[]) AS c(stream_id, version) \
         JOIN events AS e ON e.stream_id = c.stream_id AND e.stream_version > c.version",
    )
    .bind(event_ids)
    .bind(streams)
    .bind(since_streams)
    .bind(since_versions)
    .fetch_all(&mut *tx)
    .await?;
    let (mut stored, mut heads) = (Vec::new(), Vec::new());
    for row in &rows {
        // A head is a stored place too: its type is what `Condition::LastNot` checks.
        stored.push(stored_place(row)?);
        if let Some(hash) = row.try_get::<Option<Vec<u8>>, _>("hash")? {
            heads.push((row.try_get("stream_id")?, row.try_get("stream_version")?, hash))
        }
    }
    // A head among the batch's own ids is listed once.
    let mut seen = std::collections::HashSet::new();
    stored.retain(|place| seen.insert(place.event_id));
    Ok((stored, batch::heads(heads)?))
}

/// A batch's planned rows as the column arrays `INSERT_EVENTS` unnests.
#[derive(Default)]
struct Rows {
    stream_ids: Vec<String>,
    metadata: Vec<String>,
    recorded_at: Vec<DateTime<Utc>>,
    versions: Vec<i64>,
    event_ids: Vec<Uuid>,
    event_types: Vec<String>,
    schema_versions: Vec<i32>,
    payloads: Vec<String>,
    prev_hashes: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

impl Rows {
    fn len(&self) -> usize {
        self.event_ids.len()
    }

    fn is_empty(&self) -> bool {
        self.event_ids.is_empty()
    }

    fn push(&mut self, append: &EncodedAppend, chained: &ChainedAppend) -> Result<(), StoreError> {
        self.schema_versions.extend(schema_versions(append)?);
        for ((event, payload), row) in append.events.iter().zip(&append.payloads).zip(&chained.rows)
        {
            self.stream_ids.push(append.stream_id.to_string());
            self.metadata.push(append.metadata.clone());
            self.recorded_at.push(chained.recorded_at);
            self.versions.push(to_sql("stream version", row.stream_version)?);
            self.event_ids.push(event.event_id);
            self.event_types.push(event.event_type.clone());
            self.payloads.push(payload.clone());
            self.prev_hashes.push(row.prev_hash.to_vec());
            self.hashes.push(row.hash.to_vec());
        }
        Ok(())
    }

    /// Inserts every row in one statement; returns the position before the first.
    async fn insert(&self, tx: &mut sqlx::PgConnection) -> Result<i64, StoreError> {
        let n_events = i64::try_from(self.len()).unwrap_or(i64::MAX);
        let positions = sqlx::query_scalar::<_, i64>(INSERT_EVENTS)
            .bind(n_events)
            .bind(&self.stream_ids)
            .bind(&self.metadata)
            .bind(&self.recorded_at)
            .bind(&self.versions)
            .bind(&self.event_ids)
            .bind(&self.event_types)
            .bind(&self.schema_versions)
            .bind(&self.payloads)
            .bind(&self.prev_hashes)
            .bind(&self.hashes)
            .fetch_all(&mut *tx)
            .await?;
        let first = positions.iter().copied().min().ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: "insert returned no positions".into(),
        })?;
        Ok(first - 1)
    }
}
