//! Single records and filtered, paged lists of customers and complaints, and the open
//! work each customer's staff hold.

use super::{Page, Paged, ReadModels};
use crate::error::ProjectionError;
use crate::projections::complaints::ComplaintRow;
use crate::projections::customers::CustomerRow;
use crate::sql::Param;

/// Which customers to list; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    pub tier: Option<String>,
    pub agent: Option<String>,
    pub referred_by: Option<String>,
    /// R-C6: only customers at or below this confidentiality rank (0 public … 3 secret).
    pub max_confidentiality_rank: Option<i64>,
    /// Forgotten customers are listed only when asked for (their personal data is gone).
    pub include_forgotten: bool,
}

/// Which complaints to list; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplaintFilter {
    pub status: Option<String>,
    pub stage: Option<String>,
    pub severity: Option<String>,
    pub handler: Option<String>,
    pub customer_id: Option<String>,
    pub category: Option<String>,
    pub year: Option<i64>,
    /// R-C6: only cases whose customer is at or below this confidentiality rank; a case
    /// whose customer the read model does not know yet is left out.
    pub max_confidentiality_rank: Option<i64>,
    /// R-P4: leaves out the cases whose respondent this staff member is.
    pub not_respondent: Option<String>,
}

/// A customer's open case or request and who holds it (a case's handler, a request's
/// agent; `None`: nobody yet), for the check on a change of the customer's level (R-C6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWork {
    /// `complaint` or `request`.
    pub kind: &'static str,
    pub id: String,
    /// The case number of a case.
    pub case_number: Option<String>,
    pub holder: Option<String>,
}

/// Builds `AND column = $n` clauses for the filters that are set.
pub(super) struct Where {
    clauses: Vec<String>,
    pub(super) params: Vec<Param>,
}

impl Where {
    pub(super) fn new() -> Self {
        Where { clauses: vec!["1 = 1".into()], params: Vec::new() }
    }

    pub(super) fn push(&mut self, clause: &str, value: impl Into<Param>) {
        self.params.push(value.into());
        self.clauses.push(clause.replace('?', &format!("${}", self.params.len())));
    }

    pub(super) fn eq(&mut self, column: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.push(&format!("{column} = ?"), value.as_str());
        }
    }

    pub(super) fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

impl ReadModels {
    pub async fn customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerRow>, ProjectionError> {
        self.db()
            .fetch_optional(
                "SELECT * FROM rm_customers WHERE customer_id = $1",
                &crate::params![customer_id],
            )
            .await?
            .map(|row| CustomerRow::from_row(&row))
            .transpose()
    }

    pub async fn customers(
        &self,
        filter: &CustomerFilter,
        page: &Page,
    ) -> Result<Paged<CustomerRow>, ProjectionError> {
        let limit = page.limit()?;
        let mut clauses = Where::new();
        clauses.eq("tier", &filter.tier);
        clauses.eq("agent", &filter.agent);
        clauses.eq("referred_by", &filter.referred_by);
        if let Some(rank) = filter.max_confidentiality_rank {
            clauses.push("confidentiality_rank <= ?", rank);
        }
        if !filter.include_forgotten {
            clauses.clauses.push("forgotten_at IS NULL".into());
        }
        // A merged duplicate is its survivor now (GetCustomer of it names the survivor).
        clauses.clauses.push("merged_into IS NULL".into());
        if let Some(after) = &page.after {
            clauses.push("customer_id > ?", after.as_str());
        }
        clauses.params.push(Param::Int(limit + 1));
        let sql = format!(
            "SELECT * FROM rm_customers WHERE {} ORDER BY customer_id LIMIT ${}",
            clauses.sql(),
            clauses.params.len()
        );
        let rows = self.db().fetch_all(&sql, &clauses.params).await?;
        let rows = rows.iter().map(CustomerRow::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(paged(rows, limit, |row| row.customer_id.clone()))
    }

    pub async fn complaint(
        &self,
        complaint_id: &str,
    ) -> Result<Option<ComplaintRow>, ProjectionError> {
        self.db()
            .fetch_optional(
                "SELECT * FROM rm_complaints WHERE complaint_id = $1",
                &crate::params![complaint_id],
            )
            .await?
            .map(|row| ComplaintRow::from_row(&row))
            .transpose()
    }

    pub async fn complaint_by_case_number(
        &self,
        case_number: &str,
    ) -> Result<Option<ComplaintRow>, ProjectionError> {
        self.db()
            .fetch_optional(
                "SELECT * FROM rm_complaints WHERE case_number = $1",
                &crate::params![case_number],
            )
            .await?
            .map(|row| ComplaintRow::from_row(&row))
            .transpose()
    }

    pub async fn complaints(
        &self,
        filter: &ComplaintFilter,
        page: &Page,
    ) -> Result<Paged<ComplaintRow>, ProjectionError> {
        let limit = page.limit()?;
        let mut clauses = Where::new();
        clauses.eq("status", &filter.status);
        clauses.eq("stage", &filter.stage);
        clauses.eq("severity", &filter.severity);
        clauses.eq("handler", &filter.handler);
        if let Some(customer_id) = &filter.customer_id {
            // A survivor's cases include those of the duplicates merged into it.
            clauses.push(
                "(customer_id = ? OR customer_id IN \
                 (SELECT customer_id FROM rm_customers WHERE merged_into = ?))",
                customer_id.as_str(),
            );
        }
        clauses.eq("category", &filter.category);
        if let Some(year) = filter.year {
            clauses.push("year = ?", year);
        }
        if let Some(me) = &filter.not_respondent {
            clauses.push("(respondent IS NULL OR respondent <> ?)", me.as_str());
        }
        if let Some(rank) = filter.max_confidentiality_rank {
            // A merged duplicate's cases are at its survivor's level.
            clauses.push(
                "EXISTS (SELECT 1 FROM rm_customers k \
                 LEFT JOIN rm_customers s ON s.customer_id = k.merged_into \
                 WHERE k.customer_id = rm_complaints.customer_id \
                 AND COALESCE(s.confidentiality_rank, k.confidentiality_rank) <= ?)",
                rank,
            );
        }
        // Complaint ids are UUID v7: their order is filing order.
        if let Some(after) = &page.after {
            clauses.push("complaint_id > ?", after.as_str());
        }
        clauses.params.push(Param::Int(limit + 1));
        let sql = format!(
            "SELECT * FROM rm_complaints WHERE {} ORDER BY complaint_id LIMIT ${}",
            clauses.sql(),
            clauses.params.len()
        );
        let rows = self.db().fetch_all(&sql, &clauses.params).await?;
        let rows = rows.iter().map(ComplaintRow::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(paged(rows, limit, |row| row.complaint_id.clone()))
    }

    /// Open cases per handler and customers per agent: what balanced assignment needs (R-C3).
    pub async fn open_cases_of(&self, handler: &str) -> Result<Vec<String>, ProjectionError> {
        let rows = self
            .db()
            .fetch_all(
                "SELECT complaint_id FROM rm_complaints WHERE handler = $1 AND status = 'open' ORDER BY complaint_id",
                &crate::params![handler],
            )
            .await?;
        rows.iter().map(|row| row.text("complaint_id")).collect()
    }

    pub async fn customers_of(&self, agent: &str) -> Result<Vec<String>, ProjectionError> {
        let rows = self
            .db()
            .fetch_all(
                "SELECT customer_id FROM rm_customers WHERE agent = $1 AND forgotten_at IS NULL \
                 AND merged_into IS NULL ORDER BY customer_id",
                &crate::params![agent],
            )
            .await?;
        rows.iter().map(|row| row.text("customer_id")).collect()
    }

    /// The open cases and requests of `customer_id` and of every record merged into it
    /// (they are read at its level, R-C6), with who holds each.
    pub async fn open_work_of(&self, customer_id: &str) -> Result<Vec<OpenWork>, ProjectionError> {
        let customers =
            "(SELECT CAST($1 AS TEXT) UNION SELECT customer_id FROM rm_customers WHERE merged_into = $1)";
        let cases = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT complaint_id, case_number, handler FROM rm_complaints \
                     WHERE customer_id IN {customers} AND status = 'open' ORDER BY complaint_id"
                ),
                &crate::params![customer_id],
            )
            .await?;
        let requests = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT request_id, agent FROM rm_requests \
                     WHERE customer_id IN {customers} AND status = 'open' ORDER BY request_id"
                ),
                &crate::params![customer_id],
            )
            .await?;
        let mut work = Vec::with_capacity(cases.len() + requests.len());
        for row in &cases {
            work.push(OpenWork {
                kind: "complaint",
                id: row.text("complaint_id")?,
                case_number: Some(row.text("case_number")?),
                holder: row.opt_text("handler")?,
            });
        }
        for row in &requests {
            work.push(OpenWork {
                kind: "request",
                id: row.text("request_id")?,
                case_number: None,
                holder: row.opt_text("agent")?,
            });
        }
        Ok(work)
    }
}

/// How many customers one agent owns (`cases: false`) or open cases one handler holds
/// (`cases: true`) at one confidentiality rank, the rank governing them (a merged
/// duplicate's case is at its survivor's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub staff: String,
    pub cases: bool,
    pub rank: i64,
    pub count: i64,
}

impl ReadModels {
    /// Every agent's live customers and every handler's open cases, by rank: what R-C6
    /// needs them cleared for.
    pub async fn holdings(&self) -> Result<Vec<Holding>, ProjectionError> {
        let customers = self
            .db()
            .fetch_all(
                "SELECT agent AS staff, confidentiality_rank AS level_rank, COUNT(*) AS n \
                 FROM rm_customers WHERE forgotten_at IS NULL AND merged_into IS NULL \
                 GROUP BY agent, confidentiality_rank ORDER BY agent, confidentiality_rank",
                &[],
            )
            .await?;
        let cases = self
            .db()
            .fetch_all(
                "SELECT staff, level_rank, COUNT(*) AS n FROM (SELECT c.handler AS staff, \
                 COALESCE((SELECT COALESCE(s.confidentiality_rank, k.confidentiality_rank) \
                 FROM rm_customers k LEFT JOIN rm_customers s ON s.customer_id = k.merged_into \
                 WHERE k.customer_id = c.customer_id), 3) AS level_rank \
                 FROM rm_complaints c WHERE c.status = 'open' AND c.handler IS NOT NULL) held \
                 GROUP BY staff, level_rank ORDER BY staff, level_rank",
                &[],
            )
            .await?;
        let mut holdings = Vec::with_capacity(customers.len() + cases.len());
        for (rows, are_cases) in [(customers, false), (cases, true)] {
            for row in rows {
                holdings.push(Holding {
                    staff: row.text("staff")?,
                    cases: are_cases,
                    rank: row.int("level_rank")?,
                    count: row.int("n")?,
                });
            }
        }
        Ok(holdings)
    }
}

/// Cuts the extra row fetched to learn whether another page follows.
pub(super) fn paged<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Paged<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(&key);
        Paged { rows, next }
    } else {
        Paged { rows, next: None }
    }
}
