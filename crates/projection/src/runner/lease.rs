//! Projection leases: on PostgreSQL one runner per projection, the holder of a session
//! advisory lock, applies batches; resets and rebuilds take the same lock, so they never
//! interleave with a live runner on another node (or in this process).
//!
//! A rebuild that cannot take a lease because a live runner holds it asks that runner to
//! do it: it marks the checkpoint with version 0, which the holder's next step reads as
//! a version change and answers with a reset under its lease (its batch in flight finds
//! the checkpoint changed and rolls back). The rebuild then waits for the checkpoint to
//! come back at the projection's version and reach the head, taking the lease itself if
//! the holder goes away meanwhile.
//!
//! On SQLite there is no lock to take: every write transaction, a reset's, a batch's,
//! another process's, runs alone (`BEGIN IMMEDIATE` on one writer connection), a reset
//! updates the checkpoint before deleting, and a batch updates the checkpoint last on
//! condition of its old position, so a batch and a reset are ordered one way or the
//! other as wholes.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::Connection;

use super::{Projection, Runner};
use crate::error::ProjectionError;
use crate::params;
use crate::sql::Db;

/// A held lease: on PostgreSQL the connection holding the advisory lock; on SQLite none.
pub(super) type Lease = Option<sqlx::PgConnection>;

/// How often a rebuild waiting on another runner looks at the checkpoints.
const REBUILD_POLL: Duration = Duration::from_millis(100);

impl Runner {
    /// On PostgreSQL, a dedicated connection holding the projection's advisory lock
    /// (`Ok(None)`: another runner holds it). On SQLite, `Ok(Some(None))`.
    pub(super) async fn acquire_lease(&self, name: &str) -> Result<Option<Lease>, ProjectionError> {
        let Db::Postgres(pool) = &self.db else { return Ok(Some(None)) };
        let mut conn = pool.acquire().await?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lease_key(name))
            .fetch_one(&mut conn)
            .await?;
        if held {
            tracing::debug!(projection = name, "projection lease taken");
            Ok(Some(Some(conn)))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Takes the leases of the projections not held yet, preparing each one taken.
    pub(super) async fn take_leases(&self, leases: &mut Vec<(Arc<dyn Projection>, Lease)>) {
        for projection in self.projections.iter() {
            if leases.iter().any(|(held, _)| held.name() == projection.name()) {
                continue;
            }
            match self.acquire_lease(projection.name()).await {
                Ok(Some(lease)) => match self.prepare_one(projection.as_ref(), false).await {
                    Ok(()) => {
                        tracing::info!(projection = projection.name(), "projection lease taken");
                        leases.push((projection.clone(), lease));
                    }
                    Err(error) => {
                        tracing::warn!(projection = projection.name(), %error, "cannot prepare");
                        release_one(lease).await;
                    }
                },
                Ok(None) => {} // another runner holds it
                Err(error) => {
                    tracing::warn!(projection = projection.name(), %error, "cannot take the projection lease");
                }
            }
        }
    }

    /// Rebuilds `projections` from zero: those whose lease it gets here, in one pass over
    /// the log; the others by their holder, asked through the checkpoint (see above).
    pub(super) async fn rebuild_set(
        &self,
        projections: Vec<Arc<dyn Projection>>,
        mut on_progress: impl FnMut(u64, u64),
    ) -> Result<(), ProjectionError> {
        let mut held: Vec<(Arc<dyn Projection>, Lease)> = Vec::new();
        let mut elsewhere: Vec<Arc<dyn Projection>> = Vec::new();
        for projection in projections {
            self.insert_checkpoint(projection.as_ref()).await?;
            match self.acquire_lease(projection.name()).await {
                Ok(Some(lease)) => held.push((projection, lease)),
                Ok(None) => elsewhere.push(projection),
                Err(error) => {
                    release(&mut held).await;
                    return Err(error);
                }
            }
        }
        let rebuilt = self.rebuild_leased(&mut held, elsewhere, &mut on_progress).await;
        release(&mut held).await;
        rebuilt
    }

    async fn rebuild_leased(
        &self,
        held: &mut Vec<(Arc<dyn Projection>, Lease)>,
        mut elsewhere: Vec<Arc<dyn Projection>>,
        on_progress: &mut impl FnMut(u64, u64),
    ) -> Result<(), ProjectionError> {
        for projection in &elsewhere {
            self.request_rebuild(projection.as_ref()).await?;
        }
        for (projection, _) in held.iter() {
            self.reset(projection.as_ref()).await?;
        }
        let head = self.store.head_position().await?;
        loop {
            // A holder that went away leaves its projection to us.
            let mut still_elsewhere = Vec::with_capacity(elsewhere.len());
            for projection in elsewhere {
                match self.acquire_lease(projection.name()).await? {
                    Some(lease) => held.push((projection, lease)),
                    None => still_elsewhere.push(projection),
                }
            }
            elsewhere = still_elsewhere;
            let all: Vec<&Arc<dyn Projection>> =
                held.iter().map(|(p, _)| p).chain(elsewhere.iter()).collect();
            let (position, stopped) = self.rebuilt_to(&all).await?;
            on_progress(position.min(head), head);
            if let Some(stopped) = stopped {
                return Err(stopped);
            }
            if position >= head {
                return Ok(());
            }
            let mine: Vec<Arc<dyn Projection>> = held.iter().map(|(p, _)| p.clone()).collect();
            let moved = if mine.is_empty() {
                0
            } else {
                self.step_many(&mine, self.rebuild_batch_size).await?.moved
            };
            if moved == 0 {
                // Ours are done (or none are ours): the holder rebuilds the rest.
                tokio::time::sleep(REBUILD_POLL).await;
            }
        }
    }

    /// How far a rebuild of `projections` got: the lowest checkpoint among them (0 for
    /// one not yet reset at its version), and a stop among them, if any.
    async fn rebuilt_to(
        &self,
        projections: &[&Arc<dyn Projection>],
    ) -> Result<(u64, Option<ProjectionError>), ProjectionError> {
        let checkpoints = self.checkpoints().await?;
        let mut lowest = u64::MAX;
        for projection in projections {
            let Some(checkpoint) = checkpoints.get(projection.name()) else { return Ok((0, None)) };
            if checkpoint.version != projection.version() {
                // Not reset yet (a stop recorded before the request does not count).
                lowest = 0;
                continue;
            }
            if let Some(stopped) = &checkpoint.stopped {
                let error = ProjectionError::Stopped {
                    projection: projection.name().to_owned(),
                    position: stopped.position,
                    event_type: stopped.event_type.clone(),
                };
                return Ok((checkpoint.position, Some(error)));
            }
            lowest = lowest.min(checkpoint.position);
        }
        Ok((if lowest == u64::MAX { 0 } else { lowest }, None))
    }

    /// Asks the runner holding the projection's lease to rebuild it: version 0 reads as
    /// a version change to every runner, and only the holder acts on it.
    async fn request_rebuild(&self, projection: &dyn Projection) -> Result<(), ProjectionError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "UPDATE projection_checkpoints SET version = 0, updated_at = $1 WHERE name = $2",
            &params![Utc::now(), projection.name()],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            projection = projection.name(),
            "another runner holds the projection: it was asked to rebuild it"
        );
        Ok(())
    }

    /// Lets a stopped projection try again from its checkpoint.
    pub(super) async fn clear_stop(
        &self,
        projection: &dyn Projection,
    ) -> Result<(), ProjectionError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "UPDATE projection_checkpoints SET stopped_position = NULL, \
             stopped_event_type = NULL, stopped_error = NULL WHERE name = $1",
            &params![projection.name()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Gives up one lease (closing its connection releases the advisory lock).
pub(super) async fn release_one(lease: Lease) {
    if let Some(conn) = lease {
        let _ = conn.close().await;
    }
}

/// Gives up every lease.
pub(super) async fn release(leases: &mut Vec<(Arc<dyn Projection>, Lease)>) {
    for (_, lease) in leases.drain(..) {
        release_one(lease).await;
    }
}

/// A stable 64-bit advisory-lock key per projection (FNV-1a of a namespaced name).
fn lease_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "kefu-projection:".bytes().chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_be_bytes(hash.to_be_bytes())
}
