//! Service requests from `rm_requests`: the paged list, the open requests per agent that
//! balanced assignment reads (R-C3), and the first responses and after-sales callbacks
//! past due or at risk (R-P7, R-P15, R-T5) that the SLA and due lists read.

use chrono::{DateTime, Utc};

use super::records::{paged, Where};
use super::{Page, Paged, ReadModels, RowAccess};
use crate::error::ProjectionError;
use crate::projections::requests::RequestRow;

/// Which requests a list returns; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub agent: Option<String>,
    pub customer_id: Option<String>,
    /// R-C6: only requests whose customer's governing level is at most this rank.
    pub max_confidentiality_rank: Option<i64>,
}

/// Which of the requests awaiting an obligation a read wants, as of `$1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Window {
    /// Due before `$1` and not met: breached.
    Breached,
    /// Past its warning point and not yet due at `$1` (R-T5).
    AtRisk,
    /// Due by `$1` (a due list's horizon), late or not.
    DueBy,
}

/// R-P7: open requests with no first response yet (spelled as the partial index
/// `rm_requests_awaiting_response` is, so that only they are read).
macro_rules! awaiting_response {
    () => {
        "FROM rm_requests WHERE first_response_at IS NULL AND status = 'open'"
    };
}
/// The requests awaiting a first response that is breached as of `$1`: what
/// [`ReadModels::request_first_responses`] lists and the dashboard counts.
pub(super) const FIRST_RESPONSE_BREACHED: &str =
    concat!(awaiting_response!(), " AND first_response_due_at < $1");
/// R-P15: resolved after-sales requests, as `r`, whose callback is not made yet
/// (spelled as the partial index `rm_requests_callback_due` is, by `callback_due_at`).
/// One escalated since is followed by its complaint.
macro_rules! awaiting_callback {
    () => {
        "r.callback_due_at IS NOT NULL AND r.called_back_at IS NULL AND r.status = 'resolved'"
    };
}
/// Of those, the callbacks overdue as of `$1`.
macro_rules! callback_late {
    () => {
        "r.callback_due_at < $1"
    };
}
/// The requests whose callback is overdue as of `$1`: what
/// [`ReadModels::request_callbacks`] lists as breached and the dashboard counts.
pub(super) const CALLBACK_OVERDUE: &str =
    concat!("FROM rm_requests r WHERE ", awaiting_callback!(), " AND ", callback_late!());

/// A resolved after-sales request awaiting its callback (R-P15).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RequestCallback {
    pub request_id: String,
    /// The customer called back: a merged duplicate's survivor.
    pub customer_id: String,
    /// Who makes the callback: the customer's agent (a merged duplicate's survivor's),
    /// not the request's, as only a customer's own agent logs their callback (R-C3).
    pub owner: Option<String>,
    pub at_risk_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub access: RowAccess,
}

/// The level governing the customer of the request row `table` (a merged duplicate's:
/// its survivor's).
fn level_rank(table: &str) -> String {
    format!(
        "(SELECT COALESCE(s.confidentiality_rank, k.confidentiality_rank) \
         FROM rm_customers k LEFT JOIN rm_customers s ON s.customer_id = k.merged_into \
         WHERE k.customer_id = {table}.customer_id)"
    )
}

impl ReadModels {
    pub async fn requests(
        &self,
        filter: &RequestFilter,
        page: &Page,
    ) -> Result<Paged<RequestRow>, ProjectionError> {
        let limit = page.limit()?;
        let mut clauses = Where::new();
        clauses.eq("status", &filter.status);
        clauses.eq("kind", &filter.kind);
        clauses.eq("agent", &filter.agent);
        clauses.eq("customer_id", &filter.customer_id);
        if let Some(rank) = filter.max_confidentiality_rank {
            clauses.push(&format!("{} <= ?", level_rank("rm_requests")), rank);
        }
        // Request ids are UUID v7: their order is the order of receipt.
        if let Some(after) = &page.after {
            clauses.push("request_id > ?", after.as_str());
        }
        clauses.params.push(crate::sql::Param::Int(limit + 1));
        let sql = format!(
            "SELECT * FROM rm_requests WHERE {} ORDER BY request_id LIMIT ${}",
            clauses.sql(),
            clauses.params.len()
        );
        let rows = self.db().fetch_all(&sql, &clauses.params).await?;
        let rows = rows.iter().map(RequestRow::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(paged(rows, limit, |row| row.request_id.clone()))
    }

    /// R-C3: the open requests `agent` holds, for a departure to hand over.
    pub async fn open_requests_of(&self, agent: &str) -> Result<Vec<String>, ProjectionError> {
        let rows = self
            .db()
            .fetch_all(
                "SELECT request_id FROM rm_requests WHERE agent = $1 AND status = 'open' \
                 ORDER BY request_id",
                &crate::params![agent],
            )
            .await?;
        rows.iter().map(|row| row.text("request_id")).collect()
    }

    /// R-C3: how many open requests each agent holds (agents holding none are absent).
    pub async fn open_requests_by_agent(&self) -> Result<Vec<(String, i64)>, ProjectionError> {
        let rows = self
            .db()
            .fetch_all(
                "SELECT agent, COUNT(*) AS open_requests FROM rm_requests \
                 WHERE status = 'open' AND agent IS NOT NULL GROUP BY agent",
                &[],
            )
            .await?;
        rows.iter().map(|row| Ok((row.text("agent")?, row.int("open_requests")?))).collect()
    }

    /// R-P7 with R-T5: open requests awaiting their first response that are breached
    /// (due before `now`) or, with `at_risk`, past their warning point and not yet due;
    /// soonest due first, read through the partial index of requests awaiting a first
    /// response. Each with the access facts of its customer (R-C6).
    pub(super) async fn request_first_responses(
        &self,
        now: DateTime<Utc>,
        at_risk: bool,
    ) -> Result<Vec<(RequestRow, RowAccess)>, ProjectionError> {
        let sql = if at_risk {
            format!(
                "SELECT rm_requests.*, {} AS level_rank {} \
                 AND first_response_at_risk_at <= $1 AND first_response_due_at >= $1 \
                 ORDER BY first_response_due_at, request_id",
                level_rank("rm_requests"),
                awaiting_response!()
            )
        } else {
            format!(
                "SELECT rm_requests.*, {} AS level_rank {FIRST_RESPONSE_BREACHED} \
                 ORDER BY first_response_due_at, request_id",
                level_rank("rm_requests")
            )
        };
        let rows = self.db().fetch_all(&sql, &crate::params![now]).await?;
        rows.iter()
            .map(|row| Ok((RequestRow::from_row(row)?, RowAccess::of_request(row)?)))
            .collect()
    }

    /// R-P15 with R-T5: the resolved after-sales requests awaiting their callback in
    /// `window` as of `at`, soonest due first, read through the partial index of those
    /// awaiting one by due time. Each with the access facts of its customer (R-C6).
    pub(super) async fn request_callbacks(
        &self,
        window: Window,
        at: DateTime<Utc>,
    ) -> Result<Vec<RequestCallback>, ProjectionError> {
        let window = match window {
            Window::Breached => callback_late!(),
            Window::AtRisk => "r.callback_at_risk_at <= $1 AND r.callback_due_at >= $1",
            Window::DueBy => "r.callback_due_at <= $1",
        };
        let rows = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT r.request_id, COALESCE(sv.agent, m.agent) AS agent, \
                     r.callback_at_risk_at, r.callback_due_at, r.last_position, \
                     COALESCE(m.merged_into, r.customer_id) AS customer_id, {} AS level_rank \
                     FROM rm_requests r \
                     LEFT JOIN rm_customers m ON m.customer_id = r.customer_id \
                     LEFT JOIN rm_customers sv ON sv.customer_id = m.merged_into \
                     WHERE {} AND {window} ORDER BY r.callback_due_at, r.request_id",
                    level_rank("r"),
                    awaiting_callback!()
                ),
                &crate::params![at],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(RequestCallback {
                    request_id: row.text("request_id")?,
                    customer_id: row.text("customer_id")?,
                    owner: row.opt_text("agent")?,
                    at_risk_at: row.time("callback_at_risk_at")?,
                    due_at: row.time("callback_due_at")?,
                    access: RowAccess::of_request(row)?,
                })
            })
            .collect()
    }
}
