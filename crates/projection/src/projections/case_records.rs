//! `case_records` projection → `rm_case_materials` (R-P2: one row per material added to
//! a case, with the number of the newer one that superseded it) and
//! `rm_case_implementations` (R-P9: one row per implementation record). No personal
//! text is kept: references, digests and what was done stay sealed in the case's stream.

use futures::future::BoxFuture;
use kefu_domain::complaint::ComplaintEvent;
use kefu_event_store::RecordedEvent;

use super::{decode, stream_key, Decoded};
use crate::error::{to_sql, ProjectionError};
use crate::params;
use crate::runner::Projection;
use crate::sql::DbTx;

pub const MATERIALS_TABLE: &str = "rm_case_materials";
pub const IMPLEMENTATIONS_TABLE: &str = "rm_case_implementations";

/// The `case_records` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaseRecords;

impl Projection for CaseRecords {
    fn name(&self) -> &'static str {
        "case_records"
    }

    fn version(&self) -> u32 {
        1
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["MaterialAdded", "ImplementationRecorded"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[MATERIALS_TABLE, IMPLEMENTATIONS_TABLE]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut DbTx,
        events: &'a [&'a RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(tx, events))
    }
}

async fn apply(tx: &mut DbTx, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    for event in events {
        let position = to_sql("position", event.position)?;
        let Decoded::Complaint(change) = decode(event)? else { continue };
        let complaint_id = stream_key(event);
        match change {
            ComplaintEvent::MaterialAdded(e) => {
                let size = to_sql("size_bytes", e.size_bytes)?;
                let supersedes = e.supersedes.map(i64::from);
                tx.execute(
                    "INSERT INTO rm_case_materials (complaint_id, number, media_type, size_bytes, \
                     added_by, added_at, supersedes, superseded_by, last_position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (complaint_id, number) DO NOTHING",
                    &params![
                        complaint_id,
                        e.number,
                        e.media_type,
                        size,
                        e.by.to_string(),
                        e.added_at,
                        supersedes,
                        None::<i64>,
                        position
                    ],
                )
                .await?;
                if let Some(earlier) = e.supersedes {
                    // A filing's attachment has no row here: nothing to mark then.
                    tx.execute(
                        "UPDATE rm_case_materials SET superseded_by = $1, last_position = $2 \
                         WHERE complaint_id = $3 AND number = $4",
                        &params![e.number, position, complaint_id, earlier],
                    )
                    .await?;
                }
            }
            ComplaintEvent::ImplementationRecorded(e) => {
                tx.execute(
                    "INSERT INTO rm_case_implementations (position, complaint_id, by_staff, \
                     implemented_at, recorded_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (position) DO NOTHING",
                    &params![
                        position,
                        complaint_id,
                        e.by.to_string(),
                        e.implemented_at,
                        e.recorded_at
                    ],
                )
                .await?;
            }
            _ => {}
        }
    }
    Ok(())
}
