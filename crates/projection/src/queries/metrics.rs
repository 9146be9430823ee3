//! Satisfaction (R-R2), callback coverage (R-C5), the monthly summary (R-R1) and the
//! referral report (R-R4).

use chrono::{DateTime, Utc};
use kefu_domain::Policy;

use super::records::paged;
use super::{Page, Paged, ReadModels};
use crate::error::{non_negative, ProjectionError};
use crate::projections::live_counts::{GRADES, GRADE_CUSTOMERS, REFERRER_TOTALS};
use crate::projections::report_aggregates::{
    COMPLAINTS_MONTHLY, DURATIONS_MONTHLY, FIRST_RESPONSE, SATISFACTION_MONTHLY,
};
use crate::sql::Param;

/// How satisfaction figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The complaint's handler at the time of the callback (`none` for other callbacks).
    Handler,
    /// The complaint's intake channel (`none` for callbacks not about a complaint).
    Channel,
    /// The complaint's category (`none` for callbacks not about a complaint).
    Category,
    /// The callback's month, `YYYY-MM`.
    Month,
    /// One row, key `all`.
    Total,
}

impl GroupBy {
    /// The grouping column of `rm_satisfaction_monthly` (absent values read `none`
    /// there); `None` for one total row.
    fn key_sql(self) -> Option<&'static str> {
        match self {
            GroupBy::Handler => Some("handler"),
            GroupBy::Channel => Some("intake_channel"),
            GroupBy::Category => Some("category"),
            GroupBy::Month => Some("month"),
            GroupBy::Total => None,
        }
    }
}

/// Which callbacks count; `None` fields do not filter. Months are inclusive `YYYY-MM`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SatisfactionFilter {
    pub from_month: Option<String>,
    pub to_month: Option<String>,
    /// A callback kind (`complaint`, `routine`…).
    pub kind: Option<String>,
}

/// Satisfaction figures of one group (R-R2).
#[derive(Debug, Clone, PartialEq)]
pub struct SatisfactionRow {
    pub key: String,
    /// Callbacks with a recorded outcome (every callback has one).
    pub responses: u64,
    pub satisfied: u64,
    pub neutral: u64,
    pub dissatisfied: u64,
    /// Callbacks that also gave a 1–5 score.
    pub scored: u64,
    /// satisfied / responses.
    pub satisfaction_rate: f64,
    /// dissatisfied / responses.
    pub dissatisfaction_rate: f64,
    /// Mean score over scored callbacks only; `None` when none was scored.
    pub average_score: Option<f64>,
}

/// Callback coverage of one grade group against its target (R-C5).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackCoverage {
    /// `key`, `five_star` or `vip`.
    pub group: &'static str,
    pub customers: u64,
    /// Customers with a callback within the group's cadence before `now`.
    pub covered: u64,
    pub rate: f64,
    pub target: f64,
}

/// A count under a label.
pub type Count = (String, u64);

/// The monthly complaint summary (R-R1), over complaints filed in the month.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonthlySummary {
    pub month: String,
    pub complaints: u64,
    pub by_category: Vec<Count>,
    pub by_cause: Vec<Count>,
    pub by_channel: Vec<Count>,
    pub by_severity: Vec<Count>,
    /// Seconds from receipt to first response: median and 90th percentile, from the
    /// month's histogram: each duration counts as its bucket's lower bound, so a figure
    /// is at most one bucket width (1 s / 1 min / 5 min / 1 h / 1 day, see
    /// `report_aggregates::duration_bucket`) below the exact one.
    pub first_response_median_s: Option<f64>,
    pub first_response_p90_s: Option<f64>,
    /// Seconds from receipt to first closure: median and 90th percentile, likewise.
    pub close_median_s: Option<f64>,
    pub close_p90_s: Option<f64>,
    pub reopened: u64,
    /// reopened / complaints.
    pub reopened_share: f64,
}

/// Referrals of one referrer (R-R4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralRow {
    pub referrer_id: String,
    /// `None` when the referrer has been forgotten.
    pub referrer_name: Option<String>,
    /// The referrer's confidentiality rank (R-C6), `None` while the read model does not
    /// know the referrer.
    pub referrer_rank: Option<i64>,
    /// Customers registered as referred by this referrer: each became a customer.
    pub referred: u64,
    /// Of those, how many are still customers (not erased on request).
    pub still_customers: u64,
    /// Of those, how many their agent has contacted.
    pub contacted: u64,
}

impl ReadModels {
    /// R-R2 from `rm_satisfaction_monthly`: the cost follows the months and groups asked,
    /// not the number of callbacks ever logged.
    pub async fn satisfaction(
        &self,
        filter: &SatisfactionFilter,
        group_by: GroupBy,
    ) -> Result<Vec<SatisfactionRow>, ProjectionError> {
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut params: Vec<Param> = Vec::new();
        let mut push = |clause: &str, value: &str| {
            params.push(Param::Text(value.to_owned()));
            clauses.push(clause.replace('?', &format!("${}", params.len())));
        };
        if let Some(from) = &filter.from_month {
            push("month >= ?", from);
        }
        if let Some(to) = &filter.to_month {
            push("month <= ?", to);
        }
        if let Some(kind) = &filter.kind {
            push("kind = ?", kind);
        }
        let (key, grouping) = match group_by.key_sql() {
            Some(key) => (key, format!("GROUP BY {key} ORDER BY {key}")),
            None => ("'all'", String::new()),
        };
        let sum = |expr: &str| format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)");
        let of =
            |outcome: &str| sum(&format!("CASE WHEN outcome = '{outcome}' THEN callbacks END"));
        let sql = format!(
            "SELECT {key} AS k, {} AS n, {} AS satisfied, {} AS neutral, {} AS dissatisfied, \
             {} AS scored, {} AS score_sum FROM {SATISFACTION_MONTHLY} WHERE {} {grouping}",
            sum("callbacks"),
            of("satisfied"),
            of("neutral"),
            of("dissatisfied"),
            sum("scored"),
            sum("score_sum"),
            clauses.join(" AND ")
        );
        let rows = self.db().fetch_all(&sql, &params).await?;
        rows.iter()
            .map(|row| {
                let responses = non_negative("count", row.int("n")?)?;
                let satisfied = non_negative("count", row.int("satisfied")?)?;
                let dissatisfied = non_negative("count", row.int("dissatisfied")?)?;
                let scored = non_negative("count", row.int("scored")?)?;
                let score_sum = non_negative("score sum", row.int("score_sum")?)?;
                Ok(SatisfactionRow {
                    key: row.text("k")?,
                    responses,
                    satisfied,
                    neutral: non_negative("count", row.int("neutral")?)?,
                    dissatisfied,
                    scored,
                    satisfaction_rate: ratio(satisfied, responses),
                    dissatisfaction_rate: ratio(dissatisfied, responses),
                    average_score: (scored > 0).then(|| ratio(score_sum, scored)),
                })
            })
            .collect()
    }

    /// R-C5 coverage at `now`: the share of each graded group called back within its
    /// cadence. The group's size is a kept count; the query reads only the members not
    /// covered (never called back, or last before the cadence), so the cost follows
    /// the callbacks owed, not the graded customers.
    pub async fn callback_coverage(
        &self,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<CallbackCoverage>, ProjectionError> {
        let mut coverage = Vec::with_capacity(GRADES.len());
        for grade in GRADES {
            let (days, target) = match grade.name {
                "key" => (policy.key_customer_callback_days, 100.0),
                "five_star" => (policy.five_star_callback_days, 100.0),
                _ => (policy.vip_callback_days, f64::from(policy.vip_coverage_target_percent)),
            };
            let live = "forgotten_at IS NULL AND merged_into IS NULL";
            let member = grade.condition();
            // `COALESCE(…) < $1` with a callback logged is `last_callback_at < $1`, read as
            // one range of `rm_customers_routine` per tier and stars.
            let sql = format!(
                "SELECT (SELECT customers FROM {GRADE_CUSTOMERS} WHERE grade = '{name}') AS n, \
                 (SELECT COUNT(*) FROM rm_customers WHERE {live} AND {member} \
                 AND COALESCE(last_callback_at, registered_at) < $1 \
                 AND last_callback_at IS NOT NULL) AS late, \
                 (SELECT COUNT(*) FROM rm_customers WHERE last_callback_at IS NULL \
                 AND {live} AND {member}) AS never",
                name = grade.name,
            );
            let row = self
                .db()
                .fetch_optional(
                    &sql,
                    &crate::params![kefu_domain::time::earlier(now, kefu_domain::time::days(days))],
                )
                .await?
                .ok_or_else(|| ProjectionError::Corrupt("aggregate returned no row".into()))?;
            let customers = non_negative("count", row.opt_int("n")?.unwrap_or(0))?;
            let uncovered = non_negative("count", row.int("late")? + row.int("never")?)?;
            let covered = customers.checked_sub(uncovered).ok_or_else(|| {
                ProjectionError::Corrupt(format!(
                    "{GRADE_CUSTOMERS} holds {customers} {} customers, fewer than the {uncovered} not covered",
                    grade.name
                ))
            })?;
            coverage.push(CallbackCoverage {
                group: grade.name,
                customers,
                covered,
                rate: if customers == 0 { 1.0 } else { ratio(covered, customers) },
                target: target / 100.0,
            });
        }
        Ok(coverage)
    }

    /// R-R1 for complaints filed in `month` (`YYYY-MM`).
    pub async fn monthly_summary(&self, month: &str) -> Result<MonthlySummary, ProjectionError> {
        if !is_month(month) {
            return Err(ProjectionError::InvalidArgument {
                field: "month",
                reason: format!("{month:?} is not YYYY-MM"),
            });
        }
        let month_param = crate::params![month];
        let mut summary = MonthlySummary { month: month.to_owned(), ..MonthlySummary::default() };
        let sum = |column: &str| format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)");
        for (column, target) in [
            ("category", &mut summary.by_category),
            ("cause", &mut summary.by_cause),
            ("channel", &mut summary.by_channel),
            ("severity", &mut summary.by_severity),
        ] {
            let sql = format!(
                "SELECT {column} AS k, {} AS n FROM {COMPLAINTS_MONTHLY} WHERE month = $1 \
                 GROUP BY {column} HAVING SUM(complaints) > 0 ORDER BY {column}",
                sum("complaints")
            );
            for row in self.db().fetch_all(&sql, &month_param).await? {
                target.push((row.text("k")?, non_negative("count", row.int("n")?)?));
            }
        }
        let totals = format!(
            "SELECT {} AS n, {} AS reopened FROM {COMPLAINTS_MONTHLY} WHERE month = $1",
            sum("complaints"),
            sum("reopened")
        );
        let row = self
            .db()
            .fetch_optional(&totals, &month_param)
            .await?
            .ok_or_else(|| ProjectionError::Corrupt("aggregate returned no row".into()))?;
        summary.complaints = non_negative("count", row.int("n")?)?;
        summary.reopened = non_negative("count", row.int("reopened")?)?;
        let mut response = Vec::new();
        let mut close = Vec::new();
        let sql = format!(
            "SELECT measure, lower_s, cases FROM {DURATIONS_MONTHLY} WHERE month = $1 \
             AND cases > 0 ORDER BY measure, lower_s"
        );
        for row in self.db().fetch_all(&sql, &month_param).await? {
            let bucket = (row.int("lower_s")?, non_negative("count", row.int("cases")?)?);
            if row.text("measure")? == FIRST_RESPONSE {
                response.push(bucket);
            } else {
                close.push(bucket);
            }
        }
        summary.first_response_median_s = median(&response);
        summary.first_response_p90_s = percentile(&response, 90);
        summary.close_median_s = median(&close);
        summary.close_p90_s = percentile(&close, 90);
        summary.reopened_share = ratio(summary.reopened, summary.complaints);
        Ok(summary)
    }

    /// R-R4: referrals per referrer, most referrals first, a page at a time, only
    /// referrers the caller is cleared for (`cleared`: the highest confidentiality rank).
    /// A merged duplicate's referrals count for its survivor, and a merged duplicate is
    /// no referred customer of its own. Read from `rm_referrer_totals` along its
    /// `(referred DESC, referrer)` index: the cost follows the page (and the referrers
    /// above the caller's clearance skipped on the way), not the referrers.
    pub async fn referral_report(
        &self,
        page: &Page,
        cleared: i64,
    ) -> Result<Paged<ReferralRow>, ProjectionError> {
        let limit = page.limit()?;
        let mut params: Vec<Param> = vec![Param::Int(cleared)];
        let mut after = String::new();
        if let Some(token) = &page.after {
            let (referred, referrer) = token
                .split_once(':')
                .and_then(|(n, id)| Some((n.parse::<i64>().ok()?, id)))
                .ok_or_else(|| ProjectionError::InvalidArgument {
                    field: "page_token",
                    reason: "not a token of this report".into(),
                })?;
            params.push(Param::Int(referred));
            params.push(Param::Text(referrer.to_owned()));
            after = " AND (t.referred < $2 OR (t.referred = $2 AND t.referrer > $3))".to_owned();
        }
        params.push(Param::Int(limit + 1));
        let sql = format!(
            "SELECT t.referrer, n.name AS referrer_name, n.confidentiality_rank AS referrer_rank, \
             t.referred, t.still_customers, t.contacted FROM {REFERRER_TOTALS} t \
             LEFT JOIN rm_customers n ON n.customer_id = t.referrer \
             WHERE (n.confidentiality_rank IS NULL OR n.confidentiality_rank <= $1){after} \
             ORDER BY t.referred DESC, t.referrer LIMIT ${}",
            params.len()
        );
        let rows = self.db().fetch_all(&sql, &params).await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok(ReferralRow {
                    referrer_id: row.text("referrer")?,
                    referrer_name: row.opt_text("referrer_name")?,
                    referrer_rank: row.opt_int("referrer_rank")?,
                    referred: non_negative("count", row.int("referred")?)?,
                    still_customers: non_negative("count", row.int("still_customers")?)?,
                    contacted: non_negative("count", row.int("contacted")?)?,
                })
            })
            .collect::<Result<Vec<_>, ProjectionError>>()?;
        Ok(paged(rows, limit, |row| format!("{}:{}", row.referred, row.referrer_id)))
    }
}

/// `YYYY-MM` with a month from 01 to 12: the month keys of every report.
pub fn is_month(text: &str) -> bool {
    text.len() == 7
        && text.as_bytes()[4] == b'-'
        && text.bytes().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit())
        && text[5..].parse::<u32>().is_ok_and(|month| (1..=12).contains(&month))
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
pub(super) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Values with their counts, ascending: a histogram's buckets (lower bound, cases).
pub(super) type Histogram = [(i64, u64)];

/// The `rank`-th smallest value (1-based) of a histogram.
fn at_rank(values: &Histogram, rank: u64) -> Option<i64> {
    let mut seen = 0u64;
    values.iter().find_map(|&(value, count)| {
        seen = seen.saturating_add(count);
        (seen >= rank).then_some(value)
    })
}

fn total(values: &Histogram) -> u64 {
    values.iter().map(|(_, count)| count).fold(0, |sum, count| sum.saturating_add(*count))
}

/// The middle value; the mean of the two middle values for an even count.
#[allow(clippy::cast_precision_loss)] // seconds far below 2^52
pub(super) fn median(values: &Histogram) -> Option<f64> {
    let n = total(values);
    if n == 0 {
        return None;
    }
    if n % 2 == 0 {
        Some((at_rank(values, n / 2)? as f64 + at_rank(values, n / 2 + 1)? as f64) / 2.0)
    } else {
        at_rank(values, n / 2 + 1).map(|value| value as f64)
    }
}

/// Nearest-rank percentile: the smallest value with at least `p` % of values at or below it.
#[allow(clippy::cast_precision_loss)]
pub(super) fn percentile(values: &Histogram, p: u64) -> Option<f64> {
    let n = total(values);
    if n == 0 {
        return None;
    }
    let rank = p.saturating_mul(n).div_ceil(100).max(1);
    at_rank(values, rank).map(|value| value as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_keys_are_checked() {
        assert!(is_month("2026-03") && is_month("2026-12"));
        for bad in ["2026-13", "2026-00", "2026-3", "26-03", "2026_03", ""] {
            assert!(!is_month(bad), "{bad}");
        }
    }

    #[test]
    fn median_and_nearest_rank_percentile() {
        let ones = |values: std::ops::RangeInclusive<i64>| -> Vec<(i64, u64)> {
            values.map(|value| (value, 1)).collect()
        };
        assert_eq!(median(&ones(1..=3)), Some(2.0));
        assert_eq!(median(&ones(1..=4)), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(percentile(&[], 90), None);
        assert_eq!(percentile(&ones(1..=10), 90), Some(9.0));
        assert_eq!(percentile(&[(5, 1)], 90), Some(5.0));
        assert_eq!(percentile(&ones(1..=11), 90), Some(10.0));
        // Counts stand for repeated values: 1, 1, 1, 7, 9 and 1, 1, 7, 7.
        assert_eq!(median(&[(1, 3), (7, 1), (9, 1)]), Some(1.0));
        assert_eq!(median(&[(1, 2), (7, 2)]), Some(4.0));
        assert_eq!(percentile(&[(1, 3), (7, 1), (9, 1)], 90), Some(9.0));
    }
}
