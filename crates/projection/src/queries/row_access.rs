//! Who may see one row of an operational list (breaches, items at risk, due callbacks):
//! the level that governs its customer (R-C6) and, for a case, its respondent (R-P4);
//! and when the row last changed, which a resumed `WatchSla` compares. The lists read
//! these beside each row; the service filters by the caller.

use crate::error::ProjectionError;
use crate::sql::DbRow;

/// The access facts of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowAccess {
    /// The confidentiality rank governing the row's customer (a merged duplicate's is
    /// its survivor's); the highest rank when the read model does not know the customer.
    pub level_rank: i64,
    /// The staff member complained about, for a case.
    pub respondent: Option<String>,
    /// The log position of the last event applied to the row.
    pub last_position: u64,
}

impl RowAccess {
    /// Whether `staff`, cleared up to `max_rank`, may see the row: within clearance
    /// (R-C6) and not a case against them (R-P4).
    pub fn visible_to(&self, max_rank: i64, staff: &str) -> bool {
        self.level_rank <= max_rank && self.respondent.as_deref() != Some(staff)
    }

    /// A case row's, read with [`case_columns`].
    pub(super) fn of_case(row: &DbRow) -> Result<Self, ProjectionError> {
        Ok(RowAccess {
            level_rank: row.opt_int("level_rank")?.unwrap_or(i64::MAX),
            respondent: row.opt_text("respondent")?,
            last_position: position(row)?,
        })
    }

    /// A service request row's: its customer's governing rank read as `level_rank`
    /// beside `rm_requests.*` (a request has no respondent).
    pub(super) fn of_request(row: &DbRow) -> Result<Self, ProjectionError> {
        Ok(RowAccess {
            level_rank: row.opt_int("level_rank")?.unwrap_or(i64::MAX),
            respondent: None,
            last_position: position(row)?,
        })
    }

    /// A customer row's, read with [`CUSTOMER_COLUMNS`].
    pub(super) fn of_customer(row: &DbRow) -> Result<Self, ProjectionError> {
        Ok(RowAccess {
            level_rank: row.int("confidentiality_rank")?,
            respondent: None,
            last_position: position(row)?,
        })
    }
}

/// The columns [`RowAccess::of_case`] reads, for `rm_complaints` named `table` in the
/// query.
pub(super) fn case_columns(table: &str) -> String {
    format!(
        "{table}.respondent, {table}.last_position, (SELECT COALESCE(s.confidentiality_rank, k.confidentiality_rank) \
         FROM rm_customers k LEFT JOIN rm_customers s ON s.customer_id = k.merged_into \
         WHERE k.customer_id = {table}.customer_id) AS level_rank"
    )
}

/// The columns [`RowAccess::of_customer`] reads, from `rm_customers`.
pub(super) const CUSTOMER_COLUMNS: &str = "confidentiality_rank, last_position";

fn position(row: &DbRow) -> Result<u64, ProjectionError> {
    let position = row.int("last_position")?;
    u64::try_from(position).map_err(|_| ProjectionError::Corrupt(format!("position {position}")))
}
