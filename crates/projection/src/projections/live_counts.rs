//! The counts the workload and referral reports read (issue 18): open cases per
//! handler (kept by `complaints`), live customers per agent and referred customers per
//! referrer (kept by `customers`). Like the monthly aggregates they are deltas of the
//! rows they count, written in the same transaction, so they stay exactly equal to a
//! scan of those rows and to a rebuild, and a report costs what its answer costs.

use std::collections::HashMap;

use super::complaints::ComplaintRow;
use super::customers::CustomerRow;
use super::insert_rows;
use crate::error::ProjectionError;
use crate::params;
use crate::sql::{DbTx, Param};

pub const HANDLER_OPEN_CASES: &str = "rm_handler_open_cases";
pub const AGENT_CUSTOMERS: &str = "rm_agent_customers";
pub const REFERRAL_COUNTS: &str = "rm_referral_counts";

/// Signed changes to a table of `N` counts keyed by one text column. The first count
/// is the whole and the others parts of it, so a row whose first count is zero holds
/// nothing and is deleted: an incremental build then holds the rows a rebuild does.
#[derive(Debug)]
pub(crate) struct Counts<const N: usize> {
    table: &'static str,
    key: &'static str,
    columns: [&'static str; N],
    changes: HashMap<String, [i64; N]>,
}

impl<const N: usize> Counts<N> {
    fn new(table: &'static str, key: &'static str, columns: [&'static str; N]) -> Self {
        Counts { table, key, columns, changes: HashMap::new() }
    }

    fn add(&mut self, key: &str, counts: [i64; N], sign: i64) {
        let entry = self.changes.entry(key.to_owned()).or_insert([0; N]);
        for (total, count) in entry.iter_mut().zip(counts) {
            *total += sign * count;
        }
    }

    async fn write(self, tx: &mut DbTx) -> Result<(), ProjectionError> {
        let (table, key) = (self.table, self.key);
        let mut emptied = Vec::new();
        let mut rows = Vec::new();
        for (id, counts) in self.changes {
            if counts.iter().all(|count| *count == 0) {
                continue;
            }
            if counts[0] < 0 {
                emptied.push(id.clone());
            }
            let mut row: Vec<Param> = Vec::from(params![id]);
            row.extend(counts.iter().map(|count| Param::from(*count)));
            rows.push(row);
        }
        let mut columns = vec![key];
        columns.extend(self.columns);
        let sums: Vec<String> =
            self.columns.iter().map(|c| format!("{c} = {table}.{c} + excluded.{c}")).collect();
        let conflict = format!("ON CONFLICT ({key}) DO UPDATE SET {}", sums.join(", "));
        insert_rows(tx, table, &columns, &conflict, rows).await?;
        let first = self.columns[0];
        for id in emptied {
            tx.execute(
                &format!("DELETE FROM {table} WHERE {key} = $1 AND {first} = 0"),
                &params![id],
            )
            .await?;
        }
        Ok(())
    }
}

/// What the `complaints` projection's cases count for: open cases per handler.
#[derive(Debug)]
pub(crate) struct CaseCounts(Counts<2>);

impl Default for CaseCounts {
    fn default() -> Self {
        CaseCounts(Counts::new(HANDLER_OPEN_CASES, "handler", ["open_cases", "open_major_cases"]))
    }
}

impl CaseCounts {
    /// Adds (`sign` 1) or takes back (`sign` -1) what one case row counts for.
    pub(crate) fn case(&mut self, row: &ComplaintRow, sign: i64) {
        if let (Some(handler), "open") = (&row.handler, row.status.as_str()) {
            self.0.add(handler, [1, i64::from(row.severity == "major")], sign);
        }
    }

    pub(crate) async fn write(self, tx: &mut DbTx) -> Result<(), ProjectionError> {
        self.0.write(tx).await
    }
}

/// What the `customers` projection's rows count for: live customers per agent, and
/// referred customers per referrer as registered.
#[derive(Debug)]
pub(crate) struct CustomerCounts {
    agents: Counts<1>,
    referrals: Counts<3>,
}

impl Default for CustomerCounts {
    fn default() -> Self {
        CustomerCounts {
            agents: Counts::new(AGENT_CUSTOMERS, "agent", ["customers"]),
            referrals: Counts::new(
                REFERRAL_COUNTS,
                "referrer",
                ["referred", "still_customers", "contacted"],
            ),
        }
    }
}

impl CustomerCounts {
    /// Adds (`sign` 1) or takes back (`sign` -1) what one customer row counts for: a
    /// merged duplicate counts nowhere (its survivor does), an erased customer still
    /// counts as referred.
    pub(crate) fn customer(&mut self, row: &CustomerRow, sign: i64) {
        if row.merged_into.is_some() {
            return;
        }
        if row.forgotten_at.is_none() {
            self.agents.add(&row.agent, [1], sign);
        }
        if let Some(referrer) = &row.referred_by {
            let still = i64::from(row.forgotten_at.is_none());
            let contacted = i64::from(row.first_contact_at.is_some());
            self.referrals.add(referrer, [1, still, contacted], sign);
        }
    }

    /// A row as it was and as it is.
    pub(crate) fn changed(&mut self, before: Option<&CustomerRow>, after: Option<&CustomerRow>) {
        if let Some(row) = before {
            self.customer(row, -1);
        }
        if let Some(row) = after {
            self.customer(row, 1);
        }
    }

    pub(crate) async fn write(self, tx: &mut DbTx) -> Result<(), ProjectionError> {
        self.agents.write(tx).await?;
        self.referrals.write(tx).await
    }
}
