//! The monthly aggregates the reports read (issue 18): complaint counts, duration
//! histograms and satisfaction counts per business-local month, kept by the
//! `complaints` projection as deltas in the same transaction as the rows they summarise,
//! so a report costs what its months cost, never what the whole history costs.

use std::collections::HashMap;

use chrono_tz::Tz;
use kefu_domain::calendar::business_month;
use kefu_domain::CallbackLogged;

use super::complaints::ComplaintRow;
use super::insert_rows;
use crate::error::ProjectionError;
use crate::params;
use crate::sql::{DbTx, Param};

pub const COMPLAINTS_MONTHLY: &str = "rm_complaints_monthly";
pub const DURATIONS_MONTHLY: &str = "rm_complaint_durations_monthly";
pub const SATISFACTION_MONTHLY: &str = "rm_satisfaction_monthly";

/// What an absent handler, channel or category reads as, in the tables and the reports.
pub const NONE: &str = "none";

/// The two measures of [`DURATIONS_MONTHLY`].
pub const FIRST_RESPONSE: &str = "first_response";
pub const CLOSE: &str = "close";

/// The histogram bucket `[lower, upper)` holding a duration in seconds: 1 s wide below
/// 1 min, 1 min below 1 h, 5 min below 1 day, 1 h below 60 days, 1 day beyond. Bounds
/// fall on whole minutes, hours and days, so a duration of whole units is its bucket's
/// lower bound. Negative durations (none are recorded) count as 0.
pub fn duration_bucket(seconds: i64) -> (i64, i64) {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 3_600;
    const DAY: i64 = 86_400;
    let seconds = seconds.max(0);
    let width = match seconds {
        s if s < MINUTE => 1,
        s if s < HOUR => MINUTE,
        s if s < DAY => 5 * MINUTE,
        s if s < 60 * DAY => HOUR,
        _ => DAY,
    };
    let lower = seconds - seconds % width;
    (lower, lower.saturating_add(width))
}

type CaseKey = (String, String, String, String, String);
type SatisfactionKey = (String, String, String, String, String, String);

/// Changes to the aggregate tables from one batch, summed before they are written.
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    /// → (complaints, reopened)
    cases: HashMap<CaseKey, (i64, i64)>,
    /// (month, measure, lower) → (upper, cases)
    durations: HashMap<(String, &'static str, i64), (i64, i64)>,
    /// → (callbacks, scored, score_sum)
    satisfaction: HashMap<SatisfactionKey, (i64, i64, i64)>,
}

impl Deltas {
    /// Adds (`sign` 1) or takes back (`sign` -1) what one case row counts for: a case
    /// that changed is taken back as it was and added as it is.
    pub(crate) fn case(&mut self, row: &ComplaintRow, sign: i64) {
        let key = (
            row.filed_month.clone(),
            row.category.clone(),
            row.cause.clone(),
            row.channel.clone(),
            row.severity.clone(),
        );
        let entry = self.cases.entry(key).or_default();
        entry.0 += sign;
        entry.1 += sign * i64::from(row.reopen_count > 0);
        for (measure, seconds) in
            [(FIRST_RESPONSE, row.first_response_seconds), (CLOSE, row.close_seconds)]
        {
            let Some(seconds) = seconds else { continue };
            let (lower, upper) = duration_bucket(seconds);
            let entry = self
                .durations
                .entry((row.filed_month.clone(), measure, lower))
                .or_insert((upper, 0));
            entry.1 += sign;
        }
    }

    /// Counts one callback, with the complaint it is about as it stood at the call.
    pub(crate) fn callback(
        &mut self,
        callback: &CallbackLogged,
        case: Option<&ComplaintRow>,
        zone: Tz,
    ) {
        let key = (
            business_month(callback.called_at, zone),
            callback.kind.as_str().to_owned(),
            case.and_then(|case| case.handler.clone()).unwrap_or_else(|| NONE.to_owned()),
            case.map_or_else(|| NONE.to_owned(), |case| case.channel.clone()),
            case.map_or_else(|| NONE.to_owned(), |case| case.category.clone()),
            callback.outcome.as_str().to_owned(),
        );
        let entry = self.satisfaction.entry(key).or_default();
        entry.0 += 1;
        if let Some(score) = callback.score {
            entry.1 += 1;
            entry.2 += i64::from(score.get());
        }
    }

    /// Adds the deltas to the tables, and drops rows they bring to zero so that an
    /// incremental build holds the same rows as a rebuild.
    pub(crate) async fn write(self, tx: &mut DbTx) -> Result<(), ProjectionError> {
        let mut emptied: Vec<(String, Vec<Param>)> = Vec::new();
        let mut rows = Vec::new();
        for ((month, category, cause, channel, severity), (complaints, reopened)) in self.cases {
            if (complaints, reopened) == (0, 0) {
                continue;
            }
            if complaints < 0 {
                emptied.push((
                    format!(
                        "DELETE FROM {COMPLAINTS_MONTHLY} WHERE month = $1 AND category = $2 \
                         AND cause = $3 AND channel = $4 AND severity = $5 AND complaints = 0"
                    ),
                    Vec::from(params![
                        month.as_str(),
                        category.as_str(),
                        cause.as_str(),
                        channel.as_str(),
                        severity.as_str()
                    ]),
                ));
            }
            rows.push(Vec::from(params![
                month, category, cause, channel, severity, complaints, reopened
            ]));
        }
        insert_rows(
            tx,
            COMPLAINTS_MONTHLY,
            &["month", "category", "cause", "channel", "severity", "complaints", "reopened"],
            &format!(
                "ON CONFLICT (month, category, cause, channel, severity) DO UPDATE SET \
                 complaints = {COMPLAINTS_MONTHLY}.complaints + excluded.complaints, \
                 reopened = {COMPLAINTS_MONTHLY}.reopened + excluded.reopened"
            ),
            rows,
        )
        .await?;

        let mut rows = Vec::new();
        for ((month, measure, lower), (upper, cases)) in self.durations {
            if cases == 0 {
                continue;
            }
            if cases < 0 {
                emptied.push((
                    format!(
                        "DELETE FROM {DURATIONS_MONTHLY} WHERE month = $1 AND measure = $2 \
                         AND lower_s = $3 AND cases = 0"
                    ),
                    Vec::from(params![month.as_str(), measure, lower]),
                ));
            }
            rows.push(Vec::from(params![month, measure, lower, upper, cases]));
        }
        insert_rows(
            tx,
            DURATIONS_MONTHLY,
            &["month", "measure", "lower_s", "upper_s", "cases"],
            &format!(
                "ON CONFLICT (month, measure, lower_s) DO UPDATE SET \
                 cases = {DURATIONS_MONTHLY}.cases + excluded.cases"
            ),
            rows,
        )
        .await?;

        // Callbacks are only ever added: no satisfaction row goes back to zero.
        let rows = self
            .satisfaction
            .into_iter()
            .map(|((month, kind, handler, channel, category, outcome), (n, scored, sum))| {
                Vec::from(params![month, kind, handler, channel, category, outcome, n, scored, sum])
            })
            .collect();
        insert_rows(
            tx,
            SATISFACTION_MONTHLY,
            &[
                "month",
                "kind",
                "handler",
                "intake_channel",
                "category",
                "outcome",
                "callbacks",
                "scored",
                "score_sum",
            ],
            &format!(
                "ON CONFLICT (month, kind, handler, intake_channel, category, outcome) DO UPDATE SET \
                 callbacks = {SATISFACTION_MONTHLY}.callbacks + excluded.callbacks, \
                 scored = {SATISFACTION_MONTHLY}.scored + excluded.scored, \
                 score_sum = {SATISFACTION_MONTHLY}.score_sum + excluded.score_sum"
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

#[cfg(test)]
mod tests {
    use super::duration_bucket;

    #[test]
    fn buckets_hold_their_value_and_fall_on_whole_units() {
        for (seconds, bucket) in [
            (-5, (0, 1)),
            (0, (0, 1)),
            (59, (59, 60)),
            (60, (60, 120)),
            (3_599, (3_540, 3_600)),
            (3_600, (3_600, 3_900)),
            (72_000, (72_000, 72_300)),
            (86_400, (86_400, 90_000)),
            (3 * 86_400 + 1_800, (3 * 86_400, 3 * 86_400 + 3_600)),
            (60 * 86_400, (60 * 86_400, 61 * 86_400)),
        ] {
            assert_eq!(duration_bucket(seconds), bucket, "{seconds}");
        }
        // Every value lies in its bucket, at the far end of the range too.
        for seconds in [1, 61, 4_000, 100_000, 6_000_000, i64::MAX] {
            let (lower, upper) = duration_bucket(seconds);
            assert!(lower <= seconds && (seconds < upper || upper == i64::MAX), "{seconds}");
        }
    }
}
