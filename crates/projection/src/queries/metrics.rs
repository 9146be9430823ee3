//! Satisfaction (R-R2), callback coverage (R-C5), the monthly summary (R-R1) and the
//! referral report (R-R4).

use chrono::{DateTime, Utc};
use kefu_domain::Policy;

use super::ReadModels;
use crate::error::{non_negative, ProjectionError};
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
    /// The grouping expression; `None` for one total row.
    fn key_sql(self) -> Option<&'static str> {
        match self {
            GroupBy::Handler => Some("COALESCE(handler, 'none')"),
            GroupBy::Channel => Some("COALESCE(intake_channel, 'none')"),
            GroupBy::Category => Some("COALESCE(category, 'none')"),
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
    /// Seconds from receipt to first response: median and 90th percentile.
    pub first_response_median_s: Option<f64>,
    pub first_response_p90_s: Option<f64>,
    /// Seconds from receipt to first closure: median and 90th percentile.
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
        let sql = format!(
            "SELECT {key} AS k, COUNT(*) AS n, \
             COUNT(CASE WHEN outcome = 'satisfied' THEN 1 END) AS satisfied, \
             COUNT(CASE WHEN outcome = 'neutral' THEN 1 END) AS neutral, \
             COUNT(CASE WHEN outcome = 'dissatisfied' THEN 1 END) AS dissatisfied, \
             COUNT(score) AS scored, COALESCE(CAST(SUM(score) AS BIGINT), 0) AS score_sum \
             FROM rm_callbacks WHERE {} {grouping}",
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

    /// R-C5 coverage at `now`: the share of each graded group called back within its cadence.
    pub async fn callback_coverage(
        &self,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<CallbackCoverage>, ProjectionError> {
        let groups = [
            ("key", "tier = 'key'", policy.key_customer_callback_days, 100.0),
            ("five_star", "stars = 5", policy.five_star_callback_days, 100.0),
            (
                "vip",
                "tier = 'vip'",
                policy.vip_callback_days,
                f64::from(policy.vip_coverage_target_percent),
            ),
        ];
        let mut coverage = Vec::with_capacity(groups.len());
        for (group, condition, days, target) in groups {
            let sql = format!(
                "SELECT COUNT(*) AS n, COUNT(CASE WHEN last_callback_at >= $1 THEN 1 END) AS covered \
                 FROM rm_customers WHERE forgotten_at IS NULL AND merged_into IS NULL AND {condition}"
            );
            let row = self
                .db()
                .fetch_optional(
                    &sql,
                    &crate::params![kefu_domain::time::earlier(now, kefu_domain::time::days(days))],
                )
                .await?
                .ok_or_else(|| ProjectionError::Corrupt("aggregate returned no row".into()))?;
            let customers = non_negative("count", row.int("n")?)?;
            let covered = non_negative("count", row.int("covered")?)?;
            coverage.push(CallbackCoverage {
                group,
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
        for (column, target) in [
            ("category", &mut summary.by_category),
            ("cause", &mut summary.by_cause),
            ("channel", &mut summary.by_channel),
            ("severity", &mut summary.by_severity),
        ] {
            let sql = format!(
                "SELECT {column} AS k, COUNT(*) AS n FROM rm_complaints WHERE filed_month = $1 \
                 GROUP BY {column} ORDER BY {column}"
            );
            for row in self.db().fetch_all(&sql, &month_param).await? {
                target.push((row.text("k")?, non_negative("count", row.int("n")?)?));
            }
        }
        let rows = self
            .db()
            .fetch_all(
                "SELECT first_response_seconds, close_seconds, reopen_count FROM rm_complaints WHERE filed_month = $1",
                &month_param,
            )
            .await?;
        let mut response = Vec::new();
        let mut close = Vec::new();
        for row in &rows {
            summary.complaints += 1;
            if let Some(seconds) = row.opt_int("first_response_seconds")? {
                response.push(seconds);
            }
            if let Some(seconds) = row.opt_int("close_seconds")? {
                close.push(seconds);
            }
            if row.int("reopen_count")? > 0 {
                summary.reopened += 1;
            }
        }
        summary.first_response_median_s = median(&mut response);
        summary.first_response_p90_s = percentile(&mut response, 90);
        summary.close_median_s = median(&mut close);
        summary.close_p90_s = percentile(&mut close, 90);
        summary.reopened_share = ratio(summary.reopened, summary.complaints);
        Ok(summary)
    }

    /// R-R4: referrals per referrer, most referrals first. A merged duplicate's referrals
    /// count for its survivor, and a merged duplicate is no referred customer of its own.
    pub async fn referral_report(&self) -> Result<Vec<ReferralRow>, ProjectionError> {
        let rows = self
            .db()
            .fetch_all(
                "SELECT g.referrer, n.name AS referrer_name, \
                 n.confidentiality_rank AS referrer_rank, g.referred, g.still_customers, g.contacted \
                 FROM (SELECT COALESCE(p.merged_into, r.referred_by) AS referrer, COUNT(*) AS referred, \
                 COUNT(CASE WHEN r.forgotten_at IS NULL THEN 1 END) AS still_customers, \
                 COUNT(r.first_contact_at) AS contacted \
                 FROM rm_customers r LEFT JOIN rm_customers p ON p.customer_id = r.referred_by \
                 WHERE r.referred_by IS NOT NULL AND r.merged_into IS NULL \
                 GROUP BY COALESCE(p.merged_into, r.referred_by)) g \
                 LEFT JOIN rm_customers n ON n.customer_id = g.referrer \
                 ORDER BY g.referred DESC, g.referrer",
                &[],
            )
            .await?;
        rows.iter()
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
            .collect()
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
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The middle value; the mean of the two middle values for an even count.
#[allow(clippy::cast_precision_loss)] // seconds far below 2^52
fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] as f64 + values[mid] as f64) / 2.0
    } else {
        values[mid] as f64
    })
}

/// Nearest-rank percentile: the smallest value with at least `p` % of values at or below it.
#[allow(clippy::cast_precision_loss)]
fn percentile(values: &mut [i64], p: usize) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (p * values.len()).div_ceil(100).max(1);
    Some(values[rank - 1] as f64)
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
        assert_eq!(median(&mut [3, 1, 2]), Some(2.0));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2.5));
        assert_eq!(median(&mut []), None);
        let mut ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&mut ten, 90), Some(9.0));
        assert_eq!(percentile(&mut [5], 90), Some(5.0));
        let mut eleven: Vec<i64> = (1..=11).collect();
        assert_eq!(percentile(&mut eleven, 90), Some(10.0));
    }
}
