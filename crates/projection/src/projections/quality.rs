//! The quality metrics' aggregates (issue 22, seed 001 ch. 7: 质量评估指标): per kind of
//! case, business-local month of receipt, intake channel and handler, the counts behind
//! first-contact resolution and reopen rates and histograms of first-response and
//! resolution times. Kept like `report_aggregates`: as deltas of the case rows, in the
//! same transaction, so they stay exactly equal to a scan of those rows and to a rebuild.
//! Complaints (the `complaints` projection) and service requests (the `requests`
//! projection) feed them, each describing its rows as a [`QualityCase`] of its kind;
//! each projection owns the rows of its kind (`Projection::shared_tables`), so
//! rebuilding one never clears the other's.

use std::collections::HashMap;

use super::complaints::ComplaintRow;
use super::insert_rows;
use super::report_aggregates::{duration_bucket, NONE};
use super::requests::RequestRow;
use crate::error::ProjectionError;
use crate::params;
use crate::sql::{DbTx, Param};

pub const QUALITY_MONTHLY: &str = "rm_quality_monthly";
pub const QUALITY_DURATIONS_MONTHLY: &str = "rm_quality_durations_monthly";

/// The kinds of case the metrics are kept for.
pub const COMPLAINT: &str = "complaint";
pub const REQUEST: &str = "request";

/// The measures of [`QUALITY_DURATIONS_MONTHLY`].
pub const FIRST_RESPONSE: &str = "first_response";
pub const RESOLUTION: &str = "resolution";

/// The count columns of [`QUALITY_MONTHLY`], in the order of [`QualityCase::counts`];
/// the first is the whole the others are parts of.
pub const COUNT_COLUMNS: [&str; 8] = [
    "cases",
    "responded",
    "responded_in_time",
    "closed",
    "resolved_first_contact",
    "reopened",
    "reopens",
    "closes",
];

/// What one case counts for in the quality metrics, whatever its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QualityCase {
    pub kind: &'static str,
    /// The business-local month of receipt (`business_month` of the time policy).
    pub month: String,
    pub channel: String,
    /// The case's handler now (`none` when it has none).
    pub handler: Option<String>,
    /// Receipt → first response, wall-clock seconds.
    pub first_response_seconds: Option<i64>,
    /// The first response came by the case's deadline (R-P7 under its policy, R-T3).
    pub responded_in_time: bool,
    /// Receipt → first closure, wall-clock seconds; `Some` once closed.
    pub resolution_seconds: Option<i64>,
    /// Resolved at the first contact, as the kind defines it.
    pub resolved_first_contact: bool,
    pub reopens: i64,
    pub closes: i64,
}

impl QualityCase {
    /// A complaint is resolved at the first contact when it is closed, was never
    /// reopened, and the complainant was reached once: under R-P8 that one contact is
    /// the final written reply (closing needs one), so the first response resolved it.
    pub(crate) fn complaint(row: &ComplaintRow) -> Self {
        let closed_now = row.status != "open";
        QualityCase {
            kind: COMPLAINT,
            month: row.filed_month.clone(),
            channel: row.channel.clone(),
            handler: row.handler.clone(),
            first_response_seconds: row.first_response_seconds,
            responded_in_time: row
                .first_response_at
                .is_some_and(|at| at <= row.first_response_due_at),
            resolution_seconds: row.close_seconds,
            resolved_first_contact: closed_now && row.reopen_count == 0 && row.contacts == 1,
            reopens: row.reopen_count,
            closes: row.closes,
        }
    }

    /// A service request: responded once answered (a resolution with no answer before
    /// it is the first response), closed once resolved; resolved at the first contact
    /// when the resolution was the first answer. A request is never reopened: a
    /// dissatisfied requester is escalated to a complaint, counted there.
    pub(crate) fn request(row: &RequestRow) -> Self {
        let since_receipt =
            |at: chrono::DateTime<chrono::Utc>| (at - row.received_at).num_seconds();
        QualityCase {
            kind: REQUEST,
            month: row.received_month.clone(),
            channel: row.channel.clone(),
            handler: row.agent.clone(),
            first_response_seconds: row.first_response_at.map(since_receipt),
            responded_in_time: row
                .first_response_at
                .is_some_and(|at| at <= row.first_response_due_at),
            resolution_seconds: row.resolved_at.map(since_receipt),
            resolved_first_contact: row.resolved_at.is_some() && row.first_contact,
            reopens: 0,
            closes: i64::from(row.resolved_at.is_some()),
        }
    }

    fn counts(&self) -> [i64; 8] {
        [
            1,
            i64::from(self.first_response_seconds.is_some()),
            i64::from(self.responded_in_time),
            i64::from(self.resolution_seconds.is_some()),
            i64::from(self.resolved_first_contact),
            i64::from(self.reopens > 0),
            self.reopens,
            self.closes,
        ]
    }
}

/// (month, kind, channel, handler)
type GroupKey = (String, &'static str, String, String);

/// Changes to the quality tables from one batch, summed before they are written.
#[derive(Debug, Default)]
pub(crate) struct QualityDeltas {
    counts: HashMap<GroupKey, [i64; 8]>,
    /// (group, measure, lower) → (upper, cases)
    durations: HashMap<(GroupKey, &'static str, i64), (i64, i64)>,
}

impl QualityDeltas {
    /// Adds (`sign` 1) or takes back (`sign` -1) what one case counts for.
    pub(crate) fn case(&mut self, case: &QualityCase, sign: i64) {
        let key: GroupKey = (
            case.month.clone(),
            case.kind,
            case.channel.clone(),
            case.handler.clone().unwrap_or_else(|| NONE.to_owned()),
        );
        let entry = self.counts.entry(key.clone()).or_default();
        for (total, count) in entry.iter_mut().zip(case.counts()) {
            *total += sign * count;
        }
        for (measure, seconds) in
            [(FIRST_RESPONSE, case.first_response_seconds), (RESOLUTION, case.resolution_seconds)]
        {
            let Some(seconds) = seconds else { continue };
            let (lower, upper) = duration_bucket(seconds);
            let entry = self.durations.entry((key.clone(), measure, lower)).or_insert((upper, 0));
            entry.1 += sign;
        }
    }

    /// Adds the deltas to the tables and drops the rows they bring to zero, so that an
    /// incremental build holds the same rows as a rebuild.
    pub(crate) async fn write(self, tx: &mut DbTx) -> Result<(), ProjectionError> {
        const GROUP: [&str; 4] = ["month", "kind", "channel", "handler"];
        let mut emptied: Vec<(String, Vec<Param>)> = Vec::new();
        let mut rows = Vec::new();
        for ((month, kind, channel, handler), counts) in self.counts {
            if counts.iter().all(|count| *count == 0) {
                continue;
            }
            if counts[0] < 0 {
                emptied.push((
                    format!(
                        "DELETE FROM {QUALITY_MONTHLY} WHERE month = $1 AND kind = $2 \
                         AND channel = $3 AND handler = $4 AND cases = 0"
                    ),
                    Vec::from(params![month.as_str(), kind, channel.as_str(), handler.as_str()]),
                ));
            }
            let mut row = Vec::from(params![month, kind, channel, handler]);
            row.extend(counts.iter().map(|count| Param::from(*count)));
            rows.push(row);
        }
        let mut columns = GROUP.to_vec();
        columns.extend(COUNT_COLUMNS);
        let sums: Vec<String> = COUNT_COLUMNS
            .iter()
            .map(|c| format!("{c} = {QUALITY_MONTHLY}.{c} + excluded.{c}"))
            .collect();
        let conflict =
            format!("ON CONFLICT ({}) DO UPDATE SET {}", GROUP.join(", "), sums.join(", "));
        insert_rows(tx, QUALITY_MONTHLY, &columns, &conflict, rows).await?;

        let mut rows = Vec::new();
        for (((month, kind, channel, handler), measure, lower), (upper, cases)) in self.durations {
            if cases == 0 {
                continue;
            }
            if cases < 0 {
                emptied.push((
                    format!(
                        "DELETE FROM {QUALITY_DURATIONS_MONTHLY} WHERE month = $1 AND kind = $2 \
                         AND channel = $3 AND handler = $4 AND measure = $5 AND lower_s = $6 \
                         AND cases = 0"
                    ),
                    Vec::from(params![
                        month.as_str(),
                        kind,
                        channel.as_str(),
                        handler.as_str(),
                        measure,
                        lower
                    ]),
                ));
            }
            rows.push(Vec::from(params![
                month, kind, channel, handler, measure, lower, upper, cases
            ]));
        }
        insert_rows(
            tx,
            QUALITY_DURATIONS_MONTHLY,
            &["month", "kind", "channel", "handler", "measure", "lower_s", "upper_s", "cases"],
            &format!(
                "ON CONFLICT (month, kind, channel, handler, measure, lower_s) DO UPDATE SET \
                 cases = {QUALITY_DURATIONS_MONTHLY}.cases + excluded.cases"
            ),
            rows,
        )
        .await?;

        for (sql, params) in emptied {
            tx.execute(&sql, &params).await?;
        }
        Ok(())
    }
}
