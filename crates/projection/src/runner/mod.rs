//! The projection runner: tails the log from each projection's checkpoint and applies
//! batches exactly once.
//!
//! A batch's read-model rows and the projection's new checkpoint are written in one
//! transaction, and the checkpoint update is conditional on the position it started
//! from (`… WHERE position = $old`). A crash before commit rolls both back; a second
//! runner that raced us (another node, or an operator's rebuild) finds the checkpoint
//! moved and discards its batch. Either way every event takes effect exactly once.
//!
//! Live: a runner sleeps until the store signals an append (in-process, and PostgreSQL
//! `NOTIFY` across nodes), polling only as a fallback. On PostgreSQL each projection runs
//! on one node at a time, the holder of a session advisory lock; if that node dies its
//! connection closes, the lock is released and a standby takes over. Resets and rebuilds
//! hold the same lease (`lease`), so they never interleave with a live runner.
//!
//! Isolation: each projection applies its part of a batch inside a savepoint of the one
//! transaction (`isolation`); one that cannot apply an event stops alone, at that event,
//! and the checkpoint row says where and why, while the others go on.

mod isolation;
mod lease;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use kefu_event_store::{EventStore, LoggedEvent};
use sqlx::Connection;
use tokio::sync::watch;

use crate::error::{non_negative, to_sql, ProjectionError};
use crate::event::{decode_window, Event};
use crate::params;
use crate::sql::{Db, DbTx};

/// One read model: a name, a version, the event types it reads, and how to apply them.
pub trait Projection: Send + Sync + 'static {
    /// Stable name, the key of its checkpoint (`customers`, `complaints`…).
    fn name(&self) -> &'static str;
    /// Bump when `apply` or the tables change meaning: the projection rebuilds on start.
    fn version(&self) -> u32;
    /// Event types `apply` wants; the runner skips the rest (but moves past them).
    fn event_types(&self) -> &'static [&'static str];
    /// The `rm_*` tables this projection owns: emptied when it rebuilds.
    fn tables(&self) -> &'static [&'static str];
    /// Tables it shares with other projections, each with the condition that selects
    /// the rows it owns there (`kind = 'request'`): a rebuild deletes only those, so
    /// rebuilding one projection never clears another's rows.
    fn shared_tables(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Whether `apply` keeps personal data (names, contacts…) and so needs sealed fields
    /// opened; others get them as erased placeholders, without keys or decryption.
    fn reads_personal_data(&self) -> bool {
        false
    }
    /// Event types after which `apply` has scrubbed personal data from its tables; the
    /// runner then asks the database to purge the overwritten bytes (R-C8).
    fn erasures(&self) -> &'static [&'static str] {
        &[]
    }
    /// Applies a batch of events (in position order, decoded with sealed fields opened
    /// when `reads_personal_data`) inside the runner's transaction.
    fn apply<'a>(
        &'a self,
        tx: &'a mut DbTx,
        events: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

/// Where a projection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: &'static str,
    pub version: u32,
    /// Last position applied (0 = nothing yet).
    pub position: u64,
    /// Last position in the log.
    pub head: u64,
    /// Events not yet applied.
    pub lag: u64,
    /// Set when the projection stopped on an event it cannot apply.
    pub stopped: Option<Stopped>,
}

/// Why a projection stopped: the event it cannot apply and the error. It stays stopped
/// (the others go on) until it is rebuilt or a new binary starts it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The position of the event it cannot apply (its checkpoint is just before it).
    pub position: u64,
    pub event_type: String,
    pub error: String,
}

/// A projection's checkpoint row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checkpoint {
    position: u64,
    version: u32,
    stopped: Option<Stopped>,
}

/// Runs a set of projections against one store.
#[derive(Clone)]
pub struct Runner {
    store: EventStore,
    db: Db,
    projections: Arc<Vec<Arc<dyn Projection>>>,
    batch_size: usize,
    /// Events per batch of a rebuild (`rebuild`, `rebuild_all`). The same 5,000 by
    /// default: 20,000 was measured slower at 1M events (13,700 against 19,000
    /// events/s, one pair under load) and nearly doubled the RSS peak (409 against
    /// 224 MiB); a knob for such A/B runs (`kefu-bench rebuild --batch-size`).
    rebuild_batch_size: usize,
    /// After every batch this process commits: the position all projections have now
    /// reached, if the batch covered them all (else 0: only a wake-up), so
    /// read-your-writes waiters need not query the checkpoints.
    progress: watch::Sender<u64>,
    /// Orders commits with their announcements on `progress`, so a reset's 0 is never
    /// overtaken by the announcement of a batch committed before it.
    announcing: Arc<tokio::sync::Mutex<()>>,
    /// The next window of the log, read while the current one is applied (catch-up).
    prefetched: Arc<std::sync::Mutex<Option<Prefetch>>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        f.debug_struct("Runner")
            .field("projections", &names)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// Idle runners re-read at least this often, for appends no notification announced.
const POLL_FALLBACK: Duration = Duration::from_secs(1);
/// A standby re-tries for a lease this often.
const LEASE_RETRY: Duration = Duration::from_secs(1);
/// After a wake-up, how long the live runner lets further commits land before stepping.
const COALESCE: Duration = Duration::from_millis(2);

impl Runner {
    pub fn new(store: EventStore, projections: Vec<Arc<dyn Projection>>) -> Self {
        let db = Db::from(store.database());
        let (progress, _) = watch::channel(0);
        Runner {
            store,
            db,
            projections: Arc::new(projections),
            batch_size: 5_000,
            rebuild_batch_size: 5_000,
            progress,
            announcing: Arc::default(),
            prefetched: Arc::default(),
        }
    }

    /// Events read per batch (and per transaction), live and in rebuilds alike. Smaller
    /// batches mean shorter locks.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self.rebuild_batch_size = self.batch_size;
        self
    }

    /// Events per batch of a rebuild only (after [`Runner::with_batch_size`], which sets
    /// both): a benchmark's knob.
    pub fn with_rebuild_batch_size(mut self, batch_size: usize) -> Self {
        self.rebuild_batch_size = batch_size.max(1);
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    /// The read-model tables of all projections, in projection order.
    pub fn tables(&self) -> Vec<&'static str> {
        let mut tables: Vec<&'static str> = Vec::new();
        for projection in self.projections.iter() {
            let shared = projection.shared_tables().iter().map(|(table, _)| *table);
            for table in projection.tables().iter().copied().chain(shared) {
                if !tables.contains(&table) {
                    tables.push(table);
                }
            }
        }
        tables
    }

    /// A signal that changes whenever this process commits a batch or resets a
    /// projection; its value is a position every projection has reached when known
    /// (0 when not: after a reset, or when this node runs only some of them).
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// The position every projection of this process has applied, as last announced
    /// (0 after a reset): a position of the log, so never beyond its head.
    pub fn applied(&self) -> u64 {
        *self.progress.borrow()
    }

    fn find(&self, name: &str) -> Result<&Arc<dyn Projection>, ProjectionError> {
        self.projections
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| ProjectionError::UnknownProjection(name.to_owned()))
    }

    /// Registers every projection's checkpoint; of those whose lease it gets (on SQLite,
    /// all), rebuilds those whose version changed and lets a stopped one try again (a
    /// new binary may apply what the old one could not). A projection another node
    /// holds is left to that node.
    pub async fn prepare(&self) -> Result<(), ProjectionError> {
        for projection in self.projections.iter() {
            self.insert_checkpoint(projection.as_ref()).await?;
            let Some(lease) = self.acquire_lease(projection.name()).await? else { continue };
            let prepared = self.prepare_one(projection.as_ref(), true).await;
            lease::release_one(lease).await;
            prepared?;
        }
        Ok(())
    }

    /// Under the projection's lease: rebuilds it if its version changed, and with
    /// `restart` clears a stop so that it tries again.
    async fn prepare_one(
        &self,
        projection: &dyn Projection,
        restart: bool,
    ) -> Result<(), ProjectionError> {
        self.insert_checkpoint(projection).await?;
        let checkpoint = self.checkpoint(projection.name()).await?;
        if checkpoint.version != projection.version() {
            tracing::info!(
                projection = projection.name(),
                from = checkpoint.version,
                to = projection.version(),
                "projection version changed (or a rebuild was asked for): rebuilding"
            );
            self.reset(projection).await?;
        } else if let (true, Some(stopped)) = (restart, &checkpoint.stopped) {
            tracing::info!(
                projection = projection.name(),
                position = stopped.position,
                "a stopped projection tries again"
            );
            self.clear_stop(projection).await?;
        }
        Ok(())
    }

    async fn insert_checkpoint(
        &self,
        projection: &dyn Projection,
    ) -> Result<bool, ProjectionError> {
        let mut tx = self.db.begin().await?;
        let inserted = tx
            .execute(
                "INSERT INTO projection_checkpoints (name, version, position, updated_at) \
                 VALUES ($1, $2, 0, $3) ON CONFLICT (name) DO NOTHING",
                &params![projection.name(), projection.version(), Utc::now()],
            )
            .await?;
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// A projection's checkpoint.
    async fn checkpoint(&self, name: &str) -> Result<Checkpoint, ProjectionError> {
        self.checkpoints()
            .await?
            .remove(name)
            .ok_or_else(|| ProjectionError::UnknownProjection(name.to_owned()))
    }

    /// Every registered checkpoint by name, in one query.
    async fn checkpoints(
        &self,
    ) -> Result<std::collections::HashMap<String, Checkpoint>, ProjectionError> {
        checkpoints_in(&self.db).await
    }

    /// Empties the projection's tables and its checkpoint (and clears a stop), in one
    /// transaction. Callers hold the projection's lease (see `lease`).
    ///
    /// The checkpoint row is updated first: it is the row every batch of the projection
    /// updates last, on condition of its old position, so from here on a racing batch
    /// either committed before (and its rows are seen and deleted below, even under
    /// PostgreSQL's READ COMMITTED) or finds the checkpoint moved and rolls back.
    async fn reset(&self, projection: &dyn Projection) -> Result<(), ProjectionError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "UPDATE projection_checkpoints SET position = 0, version = $1, updated_at = $2, \
             stopped_position = NULL, stopped_event_type = NULL, stopped_error = NULL \
             WHERE name = $3",
            &params![projection.version(), Utc::now(), projection.name()],
        )
        .await?;
        for table in projection.tables() {
            tx.execute(&format!("DELETE FROM {table}"), &[]).await?;
        }
        for (table, owned) in projection.shared_tables() {
            tx.execute(&format!("DELETE FROM {table} WHERE {owned}"), &[]).await?;
        }
        {
            let _announcing = self.announcing.lock().await;
            tx.commit().await?;
            self.progress.send_replace(0);
        }
        // A rebuild is also how an operator makes sure no erased copy survives.
        self.store.purge_deleted(projection.tables()).await;
        Ok(())
    }

    /// Applies the next batch of one projection; returns how many log positions it moved
    /// past (0 when caught up, or when another runner moved the checkpoint first).
    pub async fn step(&self, name: &str) -> Result<u64, ProjectionError> {
        let projection = self.find(name)?.clone();
        Ok(self.step_many(&[projection], self.batch_size).await?.moved)
    }

    /// Applies the next batch of every projection in one pass over the log and one
    /// transaction: what a catch-up or a rebuild of everything wants.
    pub async fn step_all(&self) -> Result<u64, ProjectionError> {
        let projections: Vec<Arc<dyn Projection>> = self.projections.iter().cloned().collect();
        Ok(self.step_many(&projections, self.batch_size).await?.moved)
    }

    /// One batch of at most `batch_size` events for `projections` (those not stopped),
    /// in one transaction; a version change resets one projection instead. Callers hold
    /// the projections' leases, or accept the conditional checkpoint update as their only
    /// guard (`step`, tests).
    async fn step_many(
        &self,
        projections: &[Arc<dyn Projection>],
        batch_size: usize,
    ) -> Result<Stepped, ProjectionError> {
        let checkpoints = self.checkpoints().await?;
        let mut behind = Vec::with_capacity(projections.len());
        for projection in projections {
            let Some(checkpoint) = checkpoints.get(projection.name()) else {
                return Err(ProjectionError::UnknownProjection(projection.name().to_owned()));
            };
            if checkpoint.version != projection.version() {
                self.reset(projection.as_ref()).await?;
                return Ok(Stepped::DISCARDED);
            }
            // A stopped projection waits for a fix or a rebuild; the others go on.
            if checkpoint.stopped.is_none() {
                behind.push((projection, checkpoint.position));
            }
        }
        let Some(from) = behind.iter().map(|(_, position)| position + 1).min() else {
            return Ok(Stepped::CAUGHT_UP);
        };
        // Positions are gap-free and commit in order: every position up to the head we
        // read is committed, so a window of positions is exactly that many events.
        let head = self.store.head_position().await?;
        if from > head {
            return Ok(Stepped::CAUGHT_UP);
        }
        let window = u64::try_from(batch_size.max(1)).unwrap_or(u64::MAX);
        let end = head.min(from.saturating_add(window - 1));
        let types = event_types(behind.iter().filter(|(_, position)| *position < end));
        let logged = match self.take_prefetched(from, end, &types).await {
            Some(events) => events?,
            None => self.store.read_range(from, end, &types).await?,
        };
        if end < head {
            // Catching up: read the next window while this one is applied. After this
            // step every projection here is at `end` or beyond.
            let next_end = head.min(end.saturating_add(window));
            self.prefetch(end + 1, next_end, event_types(behind.iter()));
        }
        let events = decode_window(&self.store, logged, &personal_types(&behind)).await?;

        let mut tx = self.db.begin().await?;
        let applied = match isolation::apply_batch(&mut tx, &behind, &events, end, false).await {
            Ok(applied) => applied,
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => {
                // A projection refused: again, each projection in a savepoint.
                tracing::debug!(%error, "a projection refused a batch; applying it carefully");
                tx.rollback().await?;
                tx = self.db.begin().await?;
                isolation::apply_batch(&mut tx, &behind, &events, end, true).await?
            }
        };
        if !move_checkpoints(&mut tx, &applied.moving).await? {
            // Someone else applied this range first; our writes roll back with the transaction.
            tracing::debug!(end, "a checkpoint moved under us; batch discarded");
            return Ok(Stepped::DISCARDED);
        }
        {
            let _announcing = self.announcing.lock().await;
            tx.commit().await?;
            // Every projection at `end` or beyond, if this batch covered them all.
            let all = behind.len() == self.projections.len() && applied.stops.is_empty();
            self.progress.send_modify(|reached| *reached = if all { end.max(*reached) } else { 0 });
        }
        for (name, stopped) in &applied.stops {
            tracing::error!(
                projection = name,
                position = stopped.position,
                event_type = %stopped.event_type,
                error = %stopped.error,
                "projection stopped: it cannot apply this event; the others go on"
            );
        }
        if !applied.purge.is_empty() {
            self.store.purge_deleted(&applied.purge).await;
        }
        Ok(Stepped { moved: end + 1 - from, caught_up: end == head })
    }

    /// Starts reading `from..=end` of `types` in the background, for the next step.
    fn prefetch(&self, from: u64, end: u64, types: Vec<&'static str>) {
        let store = self.store.clone();
        let wanted = types.clone();
        let read = tokio::spawn(async move { store.read_range(from, end, &wanted).await });
        let previous = self
            .prefetched
            .lock()
            .map(|mut slot| slot.replace(Prefetch { from, end, types, read }));
        if let Ok(Some(stale)) = previous {
            stale.read.abort();
        }
    }

    /// The events read ahead for exactly this window and these types, if any. The log
    /// below the head never changes, so a read made earlier is as good as one made now
    /// (sealed fields are opened afterwards, against the keys as they are now).
    async fn take_prefetched(
        &self,
        from: u64,
        end: u64,
        types: &[&'static str],
    ) -> Option<Result<Vec<LoggedEvent>, ProjectionError>> {
        let prefetch = self.prefetched.lock().ok()?.take()?;
        if (prefetch.from, prefetch.end, prefetch.types.as_slice()) != (from, end, types) {
            prefetch.read.abort();
            return None;
        }
        match prefetch.read.await {
            Ok(read) => Some(read.map_err(ProjectionError::from)),
            // Cancelled or panicked: read again in the caller.
            Err(_) => None,
        }
    }

    /// Applies batches until every projection has reached the log's head as of the call;
    /// fails with [`ProjectionError::Stopped`] when one of them stops on the way.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        self.prepare().await?;
        let head = self.store.head_position().await?;
        loop {
            let reach = self.reach(None).await?;
            if let Some(stopped) = reach.blocking(head) {
                return Err(stopped);
            }
            if reach.low_water_mark >= head {
                return Ok(());
            }
            self.step_all().await?;
        }
    }

    /// Rebuilds one projection from zero, reporting `(position, head)` after each batch,
    /// under its lease (see `lease`).
    pub async fn rebuild(
        &self,
        name: &str,
        on_progress: impl FnMut(u64, u64),
    ) -> Result<(), ProjectionError> {
        let projection = self.find(name)?.clone();
        self.rebuild_set(vec![projection], on_progress).await
    }

    /// Rebuilds every projection from zero in one pass over the log, reporting
    /// `(position, head)` after each batch, under their leases (see `lease`).
    pub async fn rebuild_all(
        &self,
        on_progress: impl FnMut(u64, u64),
    ) -> Result<(), ProjectionError> {
        self.rebuild_set(self.projections.to_vec(), on_progress).await
    }

    /// Every projection's checkpoint, lag and stop.
    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, ProjectionError> {
        let head = self.store.head_position().await?;
        let mut checkpoints = self.checkpoints().await?;
        let mut statuses = Vec::with_capacity(self.projections.len());
        for projection in self.projections.iter() {
            // Not registered yet: it has applied nothing.
            let checkpoint = checkpoints.remove(projection.name()).unwrap_or(Checkpoint {
                position: 0,
                version: projection.version(),
                stopped: None,
            });
            statuses.push(ProjectionStatus {
                name: projection.name(),
                version: checkpoint.version,
                position: checkpoint.position,
                head,
                lag: head.saturating_sub(checkpoint.position),
                stopped: checkpoint.stopped,
            });
        }
        Ok(statuses)
    }

    /// The lowest checkpoint among all projections: every read model includes at least this.
    pub async fn low_water_mark(&self) -> Result<u64, ProjectionError> {
        Ok(self.reach(None).await?.low_water_mark)
    }

    /// The low-water mark of the projections named (all when `None`), and those of
    /// them that stopped.
    pub(crate) async fn reach(&self, names: Option<&[&str]>) -> Result<Reach, ProjectionError> {
        self.reach_in(&self.db, names).await
    }

    /// [`Runner::reach`] as the checkpoints in `db` say: the database, or a replica of
    /// it (which replays each batch, and each stop, with its checkpoint).
    pub(crate) async fn reach_in(
        &self,
        db: &Db,
        names: Option<&[&str]>,
    ) -> Result<Reach, ProjectionError> {
        let checkpoints = checkpoints_in(db).await?;
        let mut reach = Reach { low_water_mark: u64::MAX, stopped: Vec::new() };
        let named = |p: &&Arc<dyn Projection>| names.is_none_or(|names| names.contains(&p.name()));
        for projection in self.projections.iter().filter(named) {
            // Not registered yet: it has applied nothing.
            let Some(checkpoint) = checkpoints.get(projection.name()) else {
                reach.low_water_mark = 0;
                continue;
            };
            reach.low_water_mark = reach.low_water_mark.min(checkpoint.position);
            if let Some(stopped) = &checkpoint.stopped {
                reach.stopped.push((projection.name(), stopped.clone()));
            }
        }
        if reach.low_water_mark == u64::MAX {
            reach.low_water_mark = 0;
        }
        Ok(reach)
    }

    /// Runs every projection live until `shutdown` resolves. Errors are logged and
    /// retried; they never end the loop.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let runner = self.clone();
        let task = tokio::spawn(async move { runner.run_leased(stop_rx).await });
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = task.await;
    }

    /// Steps every projection this node holds the lease of, all in one transaction per
    /// batch (one writer turn per batch, not one per projection), and keeps trying to
    /// take the leases it lacks, so a node takes over within a second or two of the
    /// holder's death.
    async fn run_leased(&self, mut stop: watch::Receiver<bool>) {
        let mut notifications = self.store.notifications();
        let mut leases: Vec<(Arc<dyn Projection>, lease::Lease)> = Vec::new();
        let mut next_lease_attempt = tokio::time::Instant::now();
        while !*stop.borrow() {
            if leases.len() < self.projections.len()
                && tokio::time::Instant::now() >= next_lease_attempt
            {
                self.take_leases(&mut leases).await;
                next_lease_attempt = tokio::time::Instant::now() + LEASE_RETRY;
            }
            if leases.is_empty() {
                wait(&mut stop, LEASE_RETRY).await;
                continue;
            }
            notifications.borrow_and_update();
            let held: Vec<Arc<dyn Projection>> = leases.iter().map(|(p, _)| p.clone()).collect();
            match self.step_many(&held, self.batch_size).await {
                // More to do, or a racer's batch to re-read: go on at once.
                Ok(stepped) if !stepped.caught_up => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "projections failed; retrying");
                    lease::release(&mut leases).await;
                    wait(&mut stop, LEASE_RETRY).await;
                    continue;
                }
            }
            tokio::select! {
                _ = notifications.changed() => {
                    // Let a burst of commits land, so one batch (one writer turn)
                    // covers them instead of one each.
                    tokio::time::sleep(COALESCE).await;
                }
                _ = stop.changed() => {}
                () = tokio::time::sleep(POLL_FALLBACK) => {
                    // Prove we still hold the leases before working on.
                    for (projection, lease) in &mut leases {
                        if let Some(conn) = lease.as_mut() {
                            if conn.ping().await.is_err() {
                                tracing::warn!(projection = projection.name(), "lease lost");
                                lease::release(&mut leases).await;
                                break;
                            }
                        }
                    }
                }
            }
        }
        lease::release(&mut leases).await;
    }
}

/// Every checkpoint row of `db` (the database, or a replica of it).
async fn checkpoints_in(
    db: &Db,
) -> Result<std::collections::HashMap<String, Checkpoint>, ProjectionError> {
    let rows = db
        .fetch_all(
            "SELECT name, position, version, stopped_position, stopped_event_type, \
             stopped_error FROM projection_checkpoints",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let version = u32::try_from(row.int("version")?)
                .map_err(|_| ProjectionError::Corrupt("checkpoint version out of range".into()))?;
            let stopped = match row.opt_int("stopped_position")? {
                None => None,
                Some(position) => Some(Stopped {
                    position: non_negative("stopped position", position)?,
                    event_type: row.opt_text("stopped_event_type")?.unwrap_or_default(),
                    error: row.opt_text("stopped_error")?.unwrap_or_default(),
                }),
            };
            let position = non_negative("checkpoint", row.int("position")?)?;
            Ok((row.text("name")?, Checkpoint { position, version, stopped }))
        })
        .collect()
}

/// The event types a set of projections reads, sorted and without repeats.
fn event_types<'a>(
    projections: impl Iterator<Item = &'a (&'a Arc<dyn Projection>, u64)>,
) -> Vec<&'static str> {
    let mut types: Vec<&'static str> =
        projections.flat_map(|(p, _)| p.event_types().iter().copied()).collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// The event types whose sealed fields are opened: those a personal-data projection of
/// `behind` reads. The rest show their erased placeholders (decrypting them would be
/// work nobody uses).
fn personal_types(behind: &[(&Arc<dyn Projection>, u64)]) -> Vec<&'static str> {
    behind
        .iter()
        .filter(|(projection, _)| projection.reads_personal_data())
        .flat_map(|(projection, _)| projection.event_types().iter().copied())
        .collect()
}

/// How far the read models are, for waiters.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    /// The lowest checkpoint: every read model includes at least this.
    pub low_water_mark: u64,
    /// The projections that stopped, and where.
    pub stopped: Vec<(&'static str, Stopped)>,
}

impl Reach {
    /// The error for a wait for `position` that a stopped projection will never reach.
    pub fn blocking(&self, position: u64) -> Option<ProjectionError> {
        self.stopped.iter().find(|(_, stopped)| stopped.position <= position).map(
            |(name, stopped)| ProjectionError::Stopped {
                projection: (*name).to_owned(),
                position: stopped.position,
                event_type: stopped.event_type.clone(),
            },
        )
    }
}

/// A window of the log being read ahead of the step that will apply it.
struct Prefetch {
    from: u64,
    end: u64,
    types: Vec<&'static str>,
    read: tokio::task::JoinHandle<Result<Vec<LoggedEvent>, kefu_event_store::StoreError>>,
}

/// What one step did.
#[derive(Debug, Clone, Copy)]
struct Stepped {
    /// Log positions moved past.
    moved: u64,
    /// Whether the step reached the head it read (so waiting for the next append is
    /// right), as opposed to a full window with more behind it, or a discarded batch.
    caught_up: bool,
}

impl Stepped {
    const CAUGHT_UP: Stepped = Stepped { moved: 0, caught_up: true };
    const DISCARDED: Stepped = Stepped { moved: 0, caught_up: false };
}

/// Moves the checkpoints of a step's projections from where each started to where each
/// got (`(projection, start, target)`), with one statement per `(start, target)` (usually
/// one in all). `false` if any of them had moved under us or changed version: then the
/// whole batch must be discarded.
async fn move_checkpoints(
    tx: &mut DbTx,
    moving: &[(&Arc<dyn Projection>, u64, u64)],
) -> Result<bool, ProjectionError> {
    let mut moves: Vec<(u64, u64)> =
        moving.iter().map(|(_, start, target)| (*start, *target)).collect();
    moves.sort_unstable();
    moves.dedup();
    let now = Utc::now();
    for (start, target) in moves {
        let group: Vec<&Arc<dyn Projection>> = moving
            .iter()
            .filter(|(_, s, t)| (*s, *t) == (start, target))
            .map(|(p, _, _)| *p)
            .collect();
        let mut params =
            params![to_sql("position", target)?, now, to_sql("position", start)?].to_vec();
        let mut names = Vec::with_capacity(group.len());
        for projection in &group {
            let n = params.len();
            names.push(format!("(name = ${} AND version = ${})", n + 1, n + 2));
            params.extend(params![projection.name(), projection.version()]);
        }
        let sql = format!(
            "UPDATE projection_checkpoints SET position = $1, updated_at = $2 \
             WHERE position = $3 AND ({})",
            names.join(" OR ")
        );
        if usize::try_from(tx.execute(&sql, &params).await?) != Ok(group.len()) {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn wait(stop: &mut watch::Receiver<bool>, delay: Duration) {
    tokio::select! {
        _ = stop.changed() => {}
        () = tokio::time::sleep(delay) => {}
    }
}
