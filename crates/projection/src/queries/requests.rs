//! Service requests from `rm_requests`: the paged list, the open requests per agent that
//! balanced assignment reads (R-C3), and the first responses past due or at risk
//! (R-P7, R-T5) that the SLA lists read.

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

/// The level governing a request row's customer (a merged duplicate's: its survivor's).
const LEVEL_RANK: &str = "(SELECT COALESCE(s.confidentiality_rank, k.confidentiality_rank) \
     FROM rm_customers k LEFT JOIN rm_customers s ON s.customer_id = k.merged_into \
     WHERE k.customer_id = rm_requests.customer_id)";

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
            clauses.push(&format!("{LEVEL_RANK} <= ?"), rank);
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
        let window = if at_risk {
            "first_response_at_risk_at <= $1 AND first_response_due_at >= $1"
        } else {
            "first_response_due_at < $1"
        };
        let sql = format!(
            "SELECT rm_requests.*, {LEVEL_RANK} AS level_rank FROM rm_requests \
             WHERE first_response_at IS NULL AND status = 'open' \
             AND {window} ORDER BY first_response_due_at, request_id"
        );
        let rows = self.db().fetch_all(&sql, &crate::params![now]).await?;
        rows.iter()
            .map(|row| Ok((RequestRow::from_row(row)?, RowAccess::of_request(row)?)))
            .collect()
    }
}
