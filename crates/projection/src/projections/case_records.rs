//! `case_records` projection → `rm_case_materials` (R-P2: one row per material added to
//! a case, with the number of the newer one that superseded it) and
//! `rm_case_implementations` (R-P9: one row per implementation record). No personal
//! text is kept: references, digests and what was done stay sealed in the case's stream.

use futures::future::BoxFuture;
use kefu_domain::complaint::ComplaintEvent;

use super::{decode, insert_rows, stream_key, Decoded};
use crate::error::{to_sql, ProjectionError};
use crate::event::Event;
use crate::params;
use crate::runner::Projection;
use crate::sql::{DbTx, Param};

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
        events: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(tx, events))
    }
}

const MATERIAL_COLUMNS: &[&str] = &[
    "complaint_id",
    "number",
    "media_type",
    "size_bytes",
    "added_by",
    "added_at",
    "supersedes",
    "superseded_by",
    "last_position",
];

const IMPLEMENTATION_COLUMNS: &[&str] =
    &["position", "complaint_id", "by_staff", "implemented_at", "recorded_at"];

/// Rows go in with multi-row statements (one round trip per few hundred events, not one
/// each: a rebuild meets one implementation record per case). A supersession first
/// writes the rows gathered before it, so every statement runs in the log's order.
async fn apply(tx: &mut DbTx, events: &[&Event]) -> Result<(), ProjectionError> {
    let mut materials: Vec<Vec<Param>> = Vec::new();
    let mut implementations: Vec<Vec<Param>> = Vec::new();
    for event in events {
        let position = to_sql("position", event.position)?;
        let Decoded::Complaint(change) = decode(event)? else { continue };
        let complaint_id = stream_key(event);
        match change {
            ComplaintEvent::MaterialAdded(e) => {
                let size = to_sql("size_bytes", e.size_bytes)?;
                let supersedes = e.supersedes.map(i64::from);
                materials.push(
                    params![
                        complaint_id,
                        e.number,
                        e.media_type,
                        size,
                        e.by.to_string(),
                        e.added_at,
                        supersedes,
                        None::<i64>,
                        position
                    ]
                    .to_vec(),
                );
                if let Some(earlier) = e.supersedes {
                    insert_materials(tx, std::mem::take(&mut materials)).await?;
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
                implementations.push(
                    params![
                        position,
                        complaint_id,
                        e.by.to_string(),
                        e.implemented_at,
                        e.recorded_at
                    ]
                    .to_vec(),
                );
            }
            _ => {}
        }
    }
    insert_materials(tx, materials).await?;
    let conflict = "ON CONFLICT (position) DO NOTHING";
    insert_rows(tx, IMPLEMENTATIONS_TABLE, IMPLEMENTATION_COLUMNS, conflict, implementations).await
}

/// Material rows not written yet; a replayed one is left as it is.
async fn insert_materials(tx: &mut DbTx, rows: Vec<Vec<Param>>) -> Result<(), ProjectionError> {
    let conflict = "ON CONFLICT (complaint_id, number) DO NOTHING";
    insert_rows(tx, MATERIALS_TABLE, MATERIAL_COLUMNS, conflict, rows).await
}
