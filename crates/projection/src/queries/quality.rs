//! Quality metrics (issue 22, seed 001 ch. 7: 质量评估指标) from `rm_quality_monthly` and
//! `rm_quality_durations_monthly`: first-contact resolution, first-response and
//! resolution time distributions and reopen rates, grouped by any of month, kind,
//! channel and handler. The cost follows the months and groups asked, never the history.

use std::collections::BTreeMap;

use super::metrics::{median, percentile, ratio};
use super::ReadModels;
use crate::error::{non_negative, ProjectionError};
use crate::projections::quality::{
    COUNT_COLUMNS, FIRST_RESPONSE, QUALITY_DURATIONS_MONTHLY, QUALITY_MONTHLY,
};
use crate::sql::Param;

/// A dimension the quality metrics can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QualityDimension {
    /// The business-local month of receipt, `YYYY-MM`.
    Month,
    /// `complaint` (and `request`, once service requests feed the tables).
    Kind,
    /// The intake channel.
    Channel,
    /// The case's handler now (`none` when it has none).
    Handler,
}

impl QualityDimension {
    fn column(self) -> &'static str {
        match self {
            QualityDimension::Month => "month",
            QualityDimension::Kind => "kind",
            QualityDimension::Channel => "channel",
            QualityDimension::Handler => "handler",
        }
    }
}

/// Which cases count; `None` fields do not filter. Months are inclusive `YYYY-MM`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QualityFilter {
    pub from_month: Option<String>,
    pub to_month: Option<String>,
    pub kind: Option<String>,
    pub channel: Option<String>,
    pub handler: Option<String>,
}

/// The quality metrics of one group. A key part is `Some` when grouped by it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityRow {
    pub month: Option<String>,
    pub kind: Option<String>,
    pub channel: Option<String>,
    pub handler: Option<String>,
    /// Cases received.
    pub cases: u64,
    /// With a first response; of those, by the case's first-response deadline.
    pub responded: u64,
    pub responded_in_time: u64,
    /// Closed at least once; of those, resolved at the first contact.
    pub closed: u64,
    pub resolved_first_contact: u64,
    /// resolved_first_contact / closed.
    pub first_contact_resolution_rate: f64,
    /// Cases reopened at least once; reopens and closes (events) over the cases.
    pub reopened: u64,
    pub reopens: u64,
    pub closes: u64,
    /// reopens / closes.
    pub reopen_rate: f64,
    /// Seconds from receipt to first response and to first closure: median and 90th
    /// percentile from the histograms (bucket lower bounds, as in the monthly summary).
    pub first_response_median_s: Option<f64>,
    pub first_response_p90_s: Option<f64>,
    pub resolution_median_s: Option<f64>,
    pub resolution_p90_s: Option<f64>,
}

type GroupKey = Vec<String>;

impl ReadModels {
    /// The quality metrics of the cases `filter` selects, one row per group of
    /// `group_by` (one row in all when it is empty), in key order.
    pub async fn quality(
        &self,
        filter: &QualityFilter,
        group_by: &[QualityDimension],
    ) -> Result<Vec<QualityRow>, ProjectionError> {
        let mut dimensions = group_by.to_vec();
        dimensions.sort();
        dimensions.dedup();
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut params: Vec<Param> = Vec::new();
        for (clause, value) in [
            ("month >= ?", &filter.from_month),
            ("month <= ?", &filter.to_month),
            ("kind = ?", &filter.kind),
            ("channel = ?", &filter.channel),
            ("handler = ?", &filter.handler),
        ] {
            if let Some(value) = value {
                params.push(Param::Text(value.clone()));
                clauses.push(clause.replace('?', &format!("${}", params.len())));
            }
        }
        let filter_sql = clauses.join(" AND ");
        let keys: Vec<&str> = dimensions.iter().map(|d| d.column()).collect();
        let select_keys: String = keys.iter().map(|k| format!("{k}, ")).collect();
        let grouping = if keys.is_empty() {
            String::new()
        } else {
            format!("GROUP BY {0} ORDER BY {0}", keys.join(", "))
        };
        let sums: Vec<String> = COUNT_COLUMNS
            .iter()
            .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}"))
            .collect();
        let sql = format!(
            "SELECT {select_keys}{} FROM {QUALITY_MONTHLY} WHERE {filter_sql} {grouping}",
            sums.join(", ")
        );
        let mut groups: BTreeMap<GroupKey, QualityRow> = BTreeMap::new();
        for row in self.db().fetch_all(&sql, &params).await? {
            let key = keys.iter().map(|k| row.text(k)).collect::<Result<GroupKey, _>>()?;
            let count = |column: &str| non_negative("count", row.int(column)?);
            let mut group = QualityRow {
                cases: count("cases")?,
                responded: count("responded")?,
                responded_in_time: count("responded_in_time")?,
                closed: count("closed")?,
                resolved_first_contact: count("resolved_first_contact")?,
                reopened: count("reopened")?,
                reopens: count("reopens")?,
                closes: count("closes")?,
                ..QualityRow::default()
            };
            for (dimension, value) in dimensions.iter().zip(&key) {
                let part = match dimension {
                    QualityDimension::Month => &mut group.month,
                    QualityDimension::Kind => &mut group.kind,
                    QualityDimension::Channel => &mut group.channel,
                    QualityDimension::Handler => &mut group.handler,
                };
                *part = Some(value.clone());
            }
            group.first_contact_resolution_rate = ratio(group.resolved_first_contact, group.closed);
            group.reopen_rate = ratio(group.reopens, group.closes);
            groups.insert(key, group);
        }

        // The histograms of the same groups, buckets merged across what is summed over.
        let grouping = format!("GROUP BY {select_keys}measure, lower_s");
        let sql = format!(
            "SELECT {select_keys}measure, lower_s, CAST(SUM(cases) AS BIGINT) AS cases \
             FROM {QUALITY_DURATIONS_MONTHLY} WHERE {filter_sql} {grouping} \
             ORDER BY {select_keys}measure, lower_s"
        );
        let mut histograms: BTreeMap<(GroupKey, bool), Vec<(i64, u64)>> = BTreeMap::new();
        for row in self.db().fetch_all(&sql, &params).await? {
            let key = keys.iter().map(|k| row.text(k)).collect::<Result<GroupKey, _>>()?;
            let first_response = row.text("measure")? == FIRST_RESPONSE;
            let bucket = (row.int("lower_s")?, non_negative("count", row.int("cases")?)?);
            histograms.entry((key, first_response)).or_default().push(bucket);
        }
        for ((key, first_response), buckets) in histograms {
            let Some(group) = groups.get_mut(&key) else { continue };
            if first_response {
                group.first_response_median_s = median(&buckets);
                group.first_response_p90_s = percentile(&buckets, 90);
            } else {
                group.resolution_median_s = median(&buckets);
                group.resolution_p90_s = percentile(&buckets, 90);
            }
        }
        Ok(groups.into_values().collect())
    }
}
