//! Projection isolation: in a batch, each projection applies its events inside a
//! savepoint of the runner's one transaction, so one that cannot apply an event stops
//! alone while the others' rows and checkpoints commit (one writer turn per batch stays).
//!
//! Savepoints cost two statements per projection, and on SQLite every statement holds
//! the one writer connection that appends wait for (filings/s fell by about a tenth with
//! them on every batch). So a batch is first applied without them; only when a
//! projection refuses it is the transaction rolled back and the batch applied again
//! `careful`ly, each projection in a savepoint.
//!
//! A projection that fails is rolled back to its savepoint and tried again one event at
//! a time, to find the event it cannot apply: what comes before it is kept, its
//! checkpoint stops just before it, and the checkpoint row records the event's position
//! and type and the error (`kefu projections status`, health, metrics). A transient
//! failure (the connection, a busy database) is no reason to stop: it fails the whole
//! step, which the runner retries.

use std::sync::Arc;

use super::{Projection, Stopped};
use crate::error::{to_sql, ProjectionError};
use crate::event::Event;
use crate::params;
use crate::sql::DbTx;

/// The longest error text kept in a checkpoint row.
const MAX_ERROR_LEN: usize = 1_000;

/// What one batch did for its projections.
pub(super) struct Applied<'a> {
    /// `(projection, start, target)`: where each checkpoint moves in this batch.
    pub moving: Vec<(&'a Arc<dyn Projection>, u64, u64)>,
    /// Tables whose deleted bytes should be purged after commit (R-C8).
    pub purge: Vec<&'static str>,
    /// The projections that stopped in this batch, and why.
    pub stops: Vec<(&'static str, Stopped)>,
}

/// Applies `events` (positions up to `end`) to every projection of `behind` that is
/// below `end`: `careful`ly each in a savepoint, stopping one that refuses an event;
/// else directly, failing the whole batch if any projection refuses.
pub(super) async fn apply_batch<'a>(
    tx: &mut DbTx,
    behind: &'a [(&'a Arc<dyn Projection>, u64)],
    events: &[Event],
    end: u64,
    careful: bool,
) -> Result<Applied<'a>, ProjectionError> {
    let mut applied = Applied { moving: Vec::new(), purge: Vec::new(), stops: Vec::new() };
    for (projection, position) in behind {
        if *position >= end {
            continue;
        }
        let wanted = projection.event_types();
        let relevant: Vec<&Event> = events
            .iter()
            .filter(|e| e.position > *position && wanted.contains(&e.event_type.as_str()))
            .collect();
        let mut target = end;
        if !relevant.is_empty() && !careful {
            projection.apply(tx, &relevant).await?;
            let erasures = projection.erasures();
            if relevant.iter().any(|e| erasures.contains(&e.event_type.as_str())) {
                applied.purge.extend(projection.tables());
            }
        } else if !relevant.is_empty() {
            let kept = match apply_isolated(tx, projection.as_ref(), &relevant).await? {
                None => relevant.as_slice(),
                Some((failed, stopped)) => {
                    record_stop(tx, projection.name(), &stopped).await?;
                    target = stopped.position.saturating_sub(1);
                    applied.stops.push((projection.name(), stopped));
                    &relevant[..failed]
                }
            };
            let erasures = projection.erasures();
            if kept.iter().any(|e| erasures.contains(&e.event_type.as_str())) {
                applied.purge.extend(projection.tables());
            }
        }
        applied.moving.push((projection, *position, target));
    }
    Ok(applied)
}

/// Applies `events` to one projection inside a savepoint. `Some((index, why))` when it
/// cannot apply `events[index]`: the events before it are applied, nothing after.
async fn apply_isolated(
    tx: &mut DbTx,
    projection: &dyn Projection,
    events: &[&Event],
) -> Result<Option<(usize, Stopped)>, ProjectionError> {
    if try_apply(tx, projection, events).await?.is_none() {
        return Ok(None);
    }
    // Find the event it cannot apply; those before it stay applied.
    for (index, event) in events.iter().enumerate() {
        if let Some(error) = try_apply(tx, projection, std::slice::from_ref(event)).await? {
            let stopped = Stopped {
                position: event.position,
                event_type: event.event_type.clone(),
                error: bounded(&error.to_string()),
            };
            return Ok(Some((index, stopped)));
        }
    }
    // Refused as a batch, applied one by one: nothing to stop for.
    Ok(None)
}

/// Applies inside a savepoint: `Ok(None)` when applied, `Ok(Some(error))` when the
/// projection refused (rolled back to the savepoint), `Err` for a transient failure
/// (the step fails and is retried).
async fn try_apply(
    tx: &mut DbTx,
    projection: &dyn Projection,
    events: &[&Event],
) -> Result<Option<ProjectionError>, ProjectionError> {
    tx.execute("SAVEPOINT kefu_projection", &[]).await?;
    match projection.apply(tx, events).await {
        Ok(()) => {
            tx.execute("RELEASE SAVEPOINT kefu_projection", &[]).await?;
            Ok(None)
        }
        Err(error) if error.is_transient() => Err(error),
        Err(error) => {
            tx.execute("ROLLBACK TO SAVEPOINT kefu_projection", &[]).await?;
            tx.execute("RELEASE SAVEPOINT kefu_projection", &[]).await?;
            Ok(Some(error))
        }
    }
}

/// Records the stop in the projection's checkpoint row (in the batch's transaction).
async fn record_stop(
    tx: &mut DbTx,
    name: &'static str,
    stopped: &Stopped,
) -> Result<(), ProjectionError> {
    tx.execute(
        "UPDATE projection_checkpoints SET stopped_position = $1, stopped_event_type = $2, \
         stopped_error = $3 WHERE name = $4",
        &params![
            to_sql("position", stopped.position)?,
            stopped.event_type.as_str(),
            stopped.error.as_str(),
            name
        ],
    )
    .await?;
    Ok(())
}

/// At most [`MAX_ERROR_LEN`] bytes, cut at a char boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
