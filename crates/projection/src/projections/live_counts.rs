//! The counts the workload, coverage and referral reports read (issue 18): open cases
//! per handler (kept by `complaints`), live customers per agent and per graded group,
//! and referred customers per referrer (kept by `customers`). Like the monthly
//! aggregates they are deltas of the rows they count, written in the same transaction,
//! so they stay exactly equal to a scan of those rows and to a rebuild, and a report
//! costs what its answer costs.

use std::collections::{BTreeSet, HashMap};

use kefu_domain::Tier;

use super::complaints::ComplaintRow;
use super::customers::CustomerRow;
use super::insert_rows;
use crate::error::ProjectionError;
use crate::params;
use crate::sql::{DbTx, Param};

pub const HANDLER_OPEN_CASES: &str = "rm_handler_open_cases";
pub const AGENT_CUSTOMERS: &str = "rm_agent_customers";
pub const REFERRAL_COUNTS: &str = "rm_referral_counts";
pub const GRADE_CUSTOMERS: &str = "rm_grade_customers";
pub const REFERRER_TOTALS: &str = "rm_referrer_totals";

/// A graded group of R-C5 callback coverage: the customers of these tiers with these
/// stars (0: none). The one definition the count, its scan and the coverage query share.
#[derive(Debug, Clone, Copy)]
pub struct Grade {
    pub name: &'static str,
    tiers: &'static [Tier],
    stars: &'static [i64],
}

const ANY_STARS: &[i64] = &[0, 1, 2, 3, 4, 5];

/// Key customers, five-star customers (of any tier) and VIP customers.
pub const GRADES: [Grade; 3] = [
    Grade { name: "key", tiers: &[Tier::Key], stars: ANY_STARS },
    Grade { name: "five_star", tiers: Tier::ALL, stars: &[5] },
    Grade { name: "vip", tiers: &[Tier::Vip], stars: ANY_STARS },
];

impl Grade {
    fn holds(&self, row: &CustomerRow) -> bool {
        self.tiers.iter().any(|tier| tier.as_str() == row.tier)
            && self.stars.contains(&row.stars.unwrap_or(0))
    }

    /// The SQL condition on `rm_customers` of this group's members, spelled as lists of
    /// tiers and stars so that an index on `(tier, COALESCE(stars, 0), …)` is read by
    /// seeks, not scanned.
    pub fn condition(&self) -> String {
        let tiers: Vec<String> =
            self.tiers.iter().map(|tier| format!("'{}'", tier.as_str())).collect();
        let stars: Vec<String> = self.stars.iter().map(i64::to_string).collect();
        format!("tier IN ({}) AND COALESCE(stars, 0) IN ({})", tiers.join(", "), stars.join(", "))
    }
}

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
    grades: Counts<1>,
    referrals: Counts<3>,
    /// Report keys whose referral totals may have changed: referrers whose counts
    /// changed, and customers merged in or out of a survivor.
    touched: BTreeSet<String>,
}

impl Default for CustomerCounts {
    fn default() -> Self {
        CustomerCounts {
            agents: Counts::new(AGENT_CUSTOMERS, "agent", ["customers"]),
            grades: Counts::new(GRADE_CUSTOMERS, "grade", ["customers"]),
            referrals: Counts::new(
                REFERRAL_COUNTS,
                "referrer",
                ["referred", "still_customers", "contacted"],
            ),
            touched: BTreeSet::new(),
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
            for grade in GRADES.iter().filter(|grade| grade.holds(row)) {
                self.grades.add(grade.name, [1], sign);
            }
        }
        if let Some(referrer) = &row.referred_by {
            let still = i64::from(row.forgotten_at.is_none());
            let contacted = i64::from(row.first_contact_at.is_some());
            self.referrals.add(referrer, [1, still, contacted], sign);
            self.touched.insert(referrer.clone());
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
        let survivor = |row: Option<&CustomerRow>| row.and_then(|row| row.merged_into.clone());
        if survivor(before) != survivor(after) {
            // Its own referrals now count for another key.
            self.touched.extend(after.map(|row| row.customer_id.clone()));
            self.touched.extend(survivor(before));
            self.touched.extend(survivor(after));
        }
    }

    /// Writes the counts; call once the batch's customer rows are written (the
    /// referral totals read who is merged into whom).
    pub(crate) async fn write(self, tx: &mut DbTx) -> Result<(), ProjectionError> {
        self.agents.write(tx).await?;
        self.grades.write(tx).await?;
        self.referrals.write(tx).await?;
        refresh_referrer_totals(tx, self.touched).await
    }
}

/// Recomputes the report's totals of every key that `touched` may have changed: each
/// touched referrer and the survivor it is merged into. A key's total is what the
/// report's grouping gives it (`COALESCE(merged_into, referrer)`, one level, as the
/// scan in `dump.rs` says): its own counts unless it is merged away, plus those of the
/// customers merged into it. The cost follows the touched referrers, not all of them.
async fn refresh_referrer_totals(
    tx: &mut DbTx,
    touched: BTreeSet<String>,
) -> Result<(), ProjectionError> {
    let touched: Vec<String> = touched.into_iter().collect();
    let mut keys: BTreeSet<String> = touched.iter().cloned().collect();
    for row in super::load_rows(tx, "rm_customers", "customer_id", &touched).await? {
        keys.extend(row.opt_text("merged_into")?);
    }
    let keys: Vec<String> = keys.into_iter().collect();
    for chunk in keys.chunks(400) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let list = list.join(", ");
        let params: Vec<Param> = chunk.iter().map(|key| Param::Text(key.clone())).collect();
        tx.execute(&format!("DELETE FROM {REFERRER_TOTALS} WHERE referrer IN ({list})"), &params)
            .await?;
        let sum = |column: &str| format!("CAST(SUM({column}) AS BIGINT)");
        tx.execute(
            &format!(
                "INSERT INTO {REFERRER_TOTALS} (referrer, referred, still_customers, contacted)                  SELECT g, {}, {}, {} FROM (                  SELECT c.referrer AS g, c.referred, c.still_customers, c.contacted                  FROM {REFERRAL_COUNTS} c LEFT JOIN rm_customers p ON p.customer_id = c.referrer                  WHERE c.referrer IN ({list}) AND p.merged_into IS NULL                  UNION ALL                  SELECT p.merged_into AS g, c.referred, c.still_customers, c.contacted                  FROM rm_customers p JOIN {REFERRAL_COUNTS} c ON c.referrer = p.customer_id                  WHERE p.merged_into IN ({list})) t GROUP BY g",
                sum("referred"),
                sum("still_customers"),
                sum("contacted"),
            ),
            &params,
        )
        .await?;
    }
    Ok(())
}
