//! `staff` projection → `rm_staff`: who works here, in which roles, and who has left.

use futures::future::BoxFuture;
use kefu_domain::staff::StaffEvent;

use super::{decode, stream_key, Decoded};
use crate::error::{to_sql, ProjectionError};
use crate::event::Event;
use crate::params;
use crate::runner::Projection;
use crate::sql::DbTx;

pub const TABLE: &str = "rm_staff";

/// The `staff` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaffDirectory;

impl Projection for StaffDirectory {
    fn name(&self) -> &'static str {
        "staff"
    }

    fn version(&self) -> u32 {
        1
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["StaffRegistered", "StaffDeparted"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[TABLE]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut DbTx,
        events: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(tx, events))
    }
}

async fn apply(tx: &mut DbTx, events: &[&Event]) -> Result<(), ProjectionError> {
    for event in events {
        let position = to_sql("position", event.position)?;
        let Decoded::Staff(change) = decode(event)? else { continue };
        let staff_id = stream_key(event);
        match change {
            StaffEvent::StaffRegistered(e) => {
                let roles: Vec<&str> = e.roles.iter().map(|role| role.as_str()).collect();
                tx.execute(
                    "INSERT INTO rm_staff (staff_id, name, roles, active, registered_at, departed_at, last_position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (staff_id) DO NOTHING",
                    &params![staff_id, e.name.to_string(), roles.join(","), true, e.registered_at, None::<chrono::DateTime<chrono::Utc>>, position],
                )
                .await?;
            }
            StaffEvent::StaffDeparted(e) => {
                tx.execute(
                    "UPDATE rm_staff SET active = $1, departed_at = $2, last_position = $3 WHERE staff_id = $4",
                    &params![false, e.departed_at, position, staff_id],
                )
                .await?;
            }
        }
    }
    Ok(())
}
