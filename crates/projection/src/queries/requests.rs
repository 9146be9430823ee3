//! Service requests from `rm_requests`: the paged list, the open requests per agent that
//! balanced assignment reads (R-C3), and the first responses past due (R-P7).

use chrono::{DateTime, Utc};

use super::records::{paged, Where};
use super::{Page, Paged, ReadModels};
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

    /// R-P7: open requests not answered by their deadline at `as_of`, soonest due first,
    /// with the rank of their customer's governing level (R-C6), read through the
    /// partial index of requests awaiting a first response.
    pub async fn request_response_breaches(
        &self,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(RequestRow, i64)>, ProjectionError> {
        let sql = format!(
            "SELECT rm_requests.*, {LEVEL_RANK} AS level_rank FROM rm_requests \
             WHERE first_response_at IS NULL AND status = 'open' \
             AND first_response_due_at < $1 ORDER BY first_response_due_at, request_id"
        );
        let rows = self.db().fetch_all(&sql, &crate::params![as_of]).await?;
        rows.iter()
            .map(|row| {
                Ok((RequestRow::from_row(row)?, row.opt_int("level_rank")?.unwrap_or(i64::MAX)))
            })
            .collect()
    }
}
