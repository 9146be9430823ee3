//! Backend-independent steps of an append: encoding, the idempotency and expectation
//! checks, and chaining the new events onto the stream's head.

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::chain::{event_hash, ChainInput};
use crate::error::StoreError;
use crate::limits::Limits;
use crate::types::{AppendResult, Condition, ExpectedVersion, Metadata, NewEvent, StreamId};

/// An append rendered to the bytes that will be stored and hashed; owned, so it can
/// wait in the SQLite writer's queue.
#[derive(Debug)]
pub(crate) struct EncodedAppend {
    pub stream_id: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<EncodedEvent>,
    pub payloads: Vec<String>,
    pub metadata: String,
    /// What must hold for it to be written (see [`Condition`]).
    pub conditions: Vec<Condition>,
}

/// The most appends one group-commit transaction carries.
const MAX_BATCH: usize = 128;

/// A backend's group-commit writer loop: takes every job queued since its last turn
/// (up to [`MAX_BATCH`]), hands them to `write_batch` (one transaction; `Err` when that
/// transaction failed, so none of them is stored) and answers each job only then.
/// Returns when every sender is gone.
///
/// One append's failure is its own: when a batch of several jobs fails for a reason
/// that is not transient (a statement one append's rows make fail), each job is written
/// again in a transaction of its own, so only the failing one fails. A transient failure
/// (connection, busy database) fails the batch as [`StoreError::Unavailable`]: retry.
pub(crate) async fn group_commit<F, Fut>(
    jobs: &mut tokio::sync::mpsc::UnboundedReceiver<Job>,
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    mut write_batch: F,
) where
    F: FnMut(Vec<Job>) -> Fut,
    Fut: std::future::Future<Output = (Vec<Job>, BatchOutcome)>,
{
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        // Let appends issued at the same moment join this turn.
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Appends per writer turn: how well group commit batches under this load.
        let appends = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        metrics::histogram!("kefu_append_batch_size").record(f64::from(appends));
        #[cfg(any(test, feature = "test-hooks"))]
        test_hooks::maybe_panic(&batch);
        let (batch, outcome) = write_batch(batch).await;
        match outcome {
            Err(error) if batch.len() > 1 && !error.is_transient() => {
                tracing::warn!(%error, jobs = batch.len(), "a group commit failed; writing its appends one by one");
                for job in batch {
                    let (alone, outcome) = write_batch(vec![job]).await;
                    answer(alone, outcome, &commits);
                }
            }
            outcome => answer(batch, outcome, &commits),
        }
    }
}

/// Sends each job of a written batch its own outcomes, or the batch's failure.
fn answer(batch: Vec<Job>, outcome: BatchOutcome, commits: &std::sync::atomic::AtomicU64) {
    match outcome {
        Ok(outcomes) => {
            // Counts the batches that answered an append with success (a batch of only
            // repeats rolls back yet counts: a rare overcount).
            if outcomes.iter().any(Result::is_ok) {
                commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // One outcome per append, in queue order: each job takes its own.
            let mut outcomes = outcomes.into_iter();
            for job in batch {
                let own = outcomes.by_ref().take(job.appends.len()).collect();
                let _ = job.reply.send(own);
            }
        }
        Err(error) => {
            let transient = error.is_transient();
            if !transient {
                tracing::error!(%error, "a commit failed");
            }
            let reason = error.to_string();
            for job in batch {
                let failed = job
                    .appends
                    .iter()
                    .map(|_| {
                        Err(if transient {
                            StoreError::Unavailable(reason.clone())
                        } else {
                            StoreError::CommitFailed(reason.clone())
                        })
                    })
                    .collect();
                let _ = job.reply.send(failed);
            }
        }
    }
}

/// How often a writer that panicked is restarted within [`RESTART_WINDOW`] before the
/// store gives up on it (then [`crate::EventStore::writer_alive`] is false, and every
/// append fails [`StoreError::Unavailable`] until the process is restarted).
pub(crate) const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs a backend's group-commit writer on a thread of its own, in a current-thread
/// runtime, and supervises it: if `writer` panics, the jobs of the batch in flight are
/// answered [`StoreError::Unavailable`] (their reply channels close; a retry with the
/// same ids is idempotent, whether or not they were stored), and a fresh runtime runs
/// `writer` again on the same queue, so nothing queued is dropped. It ends when
/// `writer` returns (every sender gone) or after [`MAX_RESTARTS`] panics in a
/// [`RESTART_WINDOW`]; `alive` is false from then on.
///
/// Every append waits for a writer turn, and a turn is several round trips to the
/// database. On the shared runtime each reply waited for a worker thread busy with gRPC
/// calls, so a turn took several times its database time; here the writer polls again
/// as soon as a reply is in. (PostgreSQL `append`, 32 clients: 1.2-1.4x.)
pub(crate) fn supervised_writer<F, Fut>(
    name: &str,
    jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    alive: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mut writer: F,
) -> Result<(), StoreError>
where
    F: FnMut(SharedJobs) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    // Shared, so the queue outlives a writer that panicked (tokio's lock is released,
    // not poisoned, when the panicking writer's future is dropped).
    let jobs: SharedJobs = std::sync::Arc::new(tokio::sync::Mutex::new(jobs));
    let failed = |error: std::io::Error| StoreError::Storage(sqlx::Error::Io(error));
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
    // The first runtime is built here, so a failure to build one is the caller's error.
    let first = runtime().map_err(failed)?;
    let thread_name = name.to_owned();
    alive.store(true, std::sync::atomic::Ordering::SeqCst);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut panics: Vec<std::time::Instant> = Vec::new();
            let mut next = Some(first);
            while let Some(rt) = next.take() {
                let run = std::panic::AssertUnwindSafe(|| rt.block_on(writer(jobs.clone())));
                let Err(panic) = std::panic::catch_unwind(run) else { break };
                let reason = panic_message(panic.as_ref());
                panics.retain(|at| at.elapsed() < RESTART_WINDOW);
                panics.push(std::time::Instant::now());
                if panics.len() > MAX_RESTARTS {
                    tracing::error!(writer = %thread_name, %reason, "the writer panicked too often; giving up: appends fail until kefu restarts");
                    break;
                }
                tracing::error!(writer = %thread_name, %reason, "the writer panicked; restarting it (the appends in flight were answered UNAVAILABLE)");
                match runtime() {
                    Ok(rt) => next = Some(rt),
                    Err(error) => tracing::error!(%error, "cannot restart the writer"),
                }
            }
            alive.store(false, std::sync::atomic::Ordering::SeqCst);
        })
        .map_err(failed)?;
    Ok(())
}

/// The job queue a supervised writer reads, kept across restarts.
pub(crate) type SharedJobs =
    std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Job>>>;

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A real panic in the real writer, on request: compiled only into this crate's own
/// tests (`cfg(test)`) and, through the `test-hooks` feature, into kefu's end-to-end
/// tests; never into kefu's release build. No RPC names a stream: callers cannot reach it.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) mod test_hooks {
    /// An append to this stream makes the writer panic before writing its batch.
    pub const PANIC_STREAM: &str = "test-writer-panics";

    pub fn maybe_panic(batch: &[super::Job]) {
        if super::appends(batch).any(|append| append.stream_id.as_str() == PANIC_STREAM) {
            panic!("test hook: the writer panics");
        }
    }
}

/// Queues a group of appends (usually one) for a backend's group-commit writer, in call
/// order; the returned channel answers, one outcome per append, once their transaction
/// has committed (and synced) or failed. A closed queue (a writer given up on) drops the
/// job, and the caller sees its channel close.
pub(crate) fn submit(
    queue: &tokio::sync::mpsc::UnboundedSender<Job>,
    appends: Vec<EncodedAppend>,
) -> tokio::sync::oneshot::Receiver<Vec<Result<AppendResult, StoreError>>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let _ = queue.send(Job { appends, reply });
    answer
}

/// Each append's own outcome, or the failure of the transaction that carried them all.
pub(crate) type BatchOutcome = Result<Vec<Result<AppendResult, StoreError>>, StoreError>;

/// Appends waiting for a backend's group-commit writer, written all or none (one append
/// but for [`crate::EventStore::submit_group`]), and where their outcomes go.
#[derive(Debug)]
pub(crate) struct Job {
    pub appends: Vec<EncodedAppend>,
    pub reply: tokio::sync::oneshot::Sender<Vec<Result<AppendResult, StoreError>>>,
}

/// Every append of a batch, in queue order.
pub(crate) fn appends(batch: &[Job]) -> impl Iterator<Item = &EncodedAppend> {
    batch.iter().flat_map(|job| &job.appends)
}

/// The envelope fields of one event (its payload is rendered in `payloads`).
#[derive(Debug)]
pub(crate) struct EncodedEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
}

impl EncodedAppend {
    pub fn new(
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
        limits: &Limits,
    ) -> Result<Self, StoreError> {
        limits.check_events(events)?;
        let mut ids = std::collections::HashSet::with_capacity(events.len());
        if let Some(duplicate) = events.iter().find(|event| !ids.insert(event.event_id)) {
            return Err(StoreError::DuplicateEventId { event_id: duplicate.event_id });
        }
        if let ExpectedVersion::Exact(version) = expected {
            to_sql("expected version", version)?;
        }
        let payloads = events
            .iter()
            .map(|event| {
                let text = event.payload.to_string();
                limits.check_payload(&text).map(|()| text)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = serde_json::to_string(metadata).map_err(|error| StoreError::Corrupt {
            position: 0,
            reason: format!("metadata does not serialize: {error}"),
        })?;
        limits.check_metadata(&metadata)?;
        let events = events
            .iter()
            .map(|event| EncodedEvent {
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
            })
            .collect();
        Ok(EncodedAppend {
            stream_id: stream_id.clone(),
            expected,
            events,
            payloads,
            metadata,
            conditions: Vec::new(),
        })
    }

    pub fn with_conditions(mut self, conditions: Vec<Condition>) -> Self {
        self.conditions = conditions;
        self
    }

    /// The event ids whose stored places the batch reads for this append: its own and
    /// those its conditions name.
    pub fn ids_to_find(&self) -> impl Iterator<Item = Uuid> + '_ {
        let named = self.conditions.iter().flat_map(|condition| match condition {
            Condition::Absent(ids) => ids.as_slice(),
            Condition::StreamAt { .. }
            | Condition::LastNot { .. }
            | Condition::NoneSince { .. } => &[],
        });
        self.events.iter().map(|event| event.event_id).chain(named.copied())
    }

    /// The streams whose heads the batch reads (and on PostgreSQL locks) for this append:
    /// its own and those its conditions name. A head is read as a stored place too
    /// (its type is what [`Condition::LastNot`] checks).
    pub fn streams(&self) -> impl Iterator<Item = &str> + '_ {
        let named = self.conditions.iter().filter_map(|condition| match condition {
            Condition::StreamAt { stream_id, .. }
            | Condition::LastNot { stream_id, .. }
            | Condition::NoneSince { stream_id, .. } => Some(stream_id.as_str()),
            Condition::Absent(_) => None,
        });
        std::iter::once(self.stream_id.as_str()).chain(named)
    }

    /// The streams and versions after which the batch reads the stored events' places
    /// for this append ([`Condition::NoneSince`] checks their types).
    pub fn since(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.conditions.iter().filter_map(|condition| match condition {
            Condition::NoneSince { stream_id, version, .. } => Some((stream_id.as_str(), *version)),
            Condition::StreamAt { .. } | Condition::LastNot { .. } | Condition::Absent(_) => None,
        })
    }

    /// Checks the writer's expectation against the stream's current version.
    pub fn check_expected(&self, current: u64) -> Result<(), StoreError> {
        let ok = match self.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::Exact(version) => current == version,
        };
        if ok {
            Ok(())
        } else {
            Err(StoreError::WrongExpectedVersion {
                stream_id: self.stream_id.to_string(),
                expected: self.expected,
                actual: current,
            })
        }
    }

    /// Numbers and hashes the events after a head at `(version, hash)`.
    pub fn chain(
        &self,
        head_version: u64,
        head_hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> ChainedAppend {
        let recorded_at = now.trunc_subsecs(6);
        let recorded_at_micros = recorded_at.timestamp_micros();
        let mut prev_hash = head_hash;
        let mut rows = Vec::with_capacity(self.events.len());
        for (offset, (event, payload)) in self.events.iter().zip(&self.payloads).enumerate() {
            let stream_version = head_version + 1 + offset as u64;
            let hash = event_hash(
                &prev_hash,
                &ChainInput {
                    stream_id: self.stream_id.as_str(),
                    stream_version,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    payload,
                    metadata: &self.metadata,
                    recorded_at_micros,
                },
            );
            rows.push(ChainedEvent { stream_version, prev_hash, hash });
            prev_hash = hash;
        }
        ChainedAppend { recorded_at, rows }
    }
}

/// Versions and hashes for each event of an append, in order.
#[derive(Debug)]
pub(crate) struct ChainedAppend {
    pub recorded_at: DateTime<Utc>,
    pub rows: Vec<ChainedEvent>,
}

impl ChainedAppend {
    /// The append's result once its rows took positions `first..=last`.
    pub fn result(&self, first: i64, last: i64) -> Result<AppendResult, StoreError> {
        let versions = self.rows.first().zip(self.rows.last());
        let (first_row, last_row) = versions.ok_or_else(|| StoreError::Corrupt {
            position: first,
            reason: "an append without events".into(),
        })?;
        Ok(AppendResult {
            first_version: first_row.stream_version,
            last_version: last_row.stream_version,
            first_position: from_sql(first, first)?,
            last_position: from_sql(last, last)?,
            repeated: false,
        })
    }
}

#[derive(Debug)]
pub(crate) struct ChainedEvent {
    pub stream_version: u64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// Where an already stored event sits, as the idempotency check needs it.
#[derive(Debug, Clone)]
pub(crate) struct StoredPlace {
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub position: u64,
    pub event_type: String,
    /// The metadata's `request_fingerprint`, if the append recorded one.
    pub request_fingerprint: Option<String>,
}

/// Decides what the already stored events among an append's ids mean:
/// none stored → `Ok(None)` (append normally); all stored, as this very append, in
/// order → `Ok(Some(original result))`; anything else is a reused id.
pub(crate) fn idempotent_result(
    append: &EncodedAppend,
    mut stored: Vec<StoredPlace>,
) -> Result<Option<AppendResult>, StoreError> {
    if stored.is_empty() {
        return Ok(None);
    }
    let all_stored =
        append.events.iter().all(|event| stored.iter().any(|s| s.event_id == event.event_id));
    if !all_stored {
        return Err(StoreError::IdempotencyMismatch {
            event_id: stored[0].event_id,
            reason: "while other events of this append are not (partial overlap)",
        });
    }
    stored.sort_by_key(|s| s.stream_version);
    let first = &stored[0];
    for (offset, (event, place)) in append.events.iter().zip(&stored).enumerate() {
        let same_place = place.event_id == event.event_id
            && place.stream_id == append.stream_id.as_str()
            && place.stream_version == first.stream_version + offset as u64
            && place.event_type == event.event_type;
        if !same_place {
            return Err(StoreError::IdempotencyMismatch {
                event_id: event.event_id,
                reason: "at another place or with another type",
            });
        }
    }
    let last = &stored[stored.len() - 1];
    Ok(Some(AppendResult {
        first_version: first.stream_version,
        last_version: last.stream_version,
        first_position: stored.iter().map(|s| s.position).min().unwrap_or(first.position),
        last_position: stored.iter().map(|s| s.position).max().unwrap_or(last.position),
        repeated: true,
    }))
}

/// A version or position from Rust into SQL's `i64`, refusing what does not fit.
pub(crate) fn to_sql(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

/// A version or position from SQL into Rust, treating a negative value as corruption.
pub(crate) fn from_sql(position: i64, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        position,
        reason: format!("negative number {value} where a version or position belongs"),
    })
}
