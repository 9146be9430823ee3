//! Every read-model row as text: how two builds of the read models are compared (a live
//! run against a rebuild from zero, before and after crashes or a version bump).

use crate::error::ProjectionError;
use crate::params;
use crate::projections::live_counts::{
    AGENT_CUSTOMERS, GRADES, GRADE_CUSTOMERS, HANDLER_OPEN_CASES, REFERRAL_COUNTS, REFERRER_TOTALS,
};
use crate::projections::quality::{QUALITY_DURATIONS_MONTHLY, QUALITY_MONTHLY};
use crate::projections::report_aggregates::{
    COMPLAINTS_MONTHLY, DURATIONS_MONTHLY, SATISFACTION_MONTHLY,
};
use crate::runner::Runner;
use crate::sql::Db;

impl Runner {
    /// Each row of each projection's tables as one line, `table: v1 | v2 | …` (NULL as
    /// `NULL`), tables in projection order and rows sorted by all their columns, so two
    /// builds holding the same data give the same lines.
    pub async fn dump(&self) -> Result<Vec<String>, ProjectionError> {
        let mut lines = Vec::new();
        for table in self.tables() {
            let columns = columns(self.db(), table).await?;
            let select: Vec<String> =
                columns.iter().map(|c| format!("CAST({c} AS TEXT) AS {c}")).collect();
            let order: Vec<String> = (1..=columns.len()).map(|n| n.to_string()).collect();
            let sql =
                format!("SELECT {} FROM {table} ORDER BY {}", select.join(", "), order.join(", "));
            for row in self.db().fetch_all(&sql, &[]).await? {
                let values = columns
                    .iter()
                    .map(|c| Ok(row.opt_text(c)?.unwrap_or_else(|| "NULL".into())))
                    .collect::<Result<Vec<String>, ProjectionError>>()?;
                lines.push(format!("{table}: {}", values.join(" | ")));
            }
        }
        Ok(lines)
    }
}

/// A table's column names, in declaration order.
async fn columns(db: &Db, table: &str) -> Result<Vec<String>, ProjectionError> {
    let sql = if db.is_postgres() {
        "SELECT column_name AS name FROM information_schema.columns \
         WHERE table_name = $1 ORDER BY ordinal_position"
    } else {
        "SELECT name FROM pragma_table_info($1) ORDER BY cid"
    };
    db.fetch_all(sql, &params![table]).await?.iter().map(|row| row.text("name")).collect()
}

/// Each aggregate table the projections keep (`report_aggregates`, `live_counts`,
/// `quality`) and
/// the scan of the rows it summarises that gives the rows it must hold, naming the
/// columns as the table does. The histogram bounds are spelled here again in SQL on
/// purpose, as an independent check.
fn aggregate_scans() -> Vec<(&'static str, String)> {
    let bucket = |column: &str| {
        let width = format!(
            "(CASE WHEN {column} < 60 THEN 1 WHEN {column} < 3600 THEN 60 \
             WHEN {column} < 86400 THEN 300 WHEN {column} < 5184000 THEN 3600 ELSE 86400 END)"
        );
        format!(
            "{column} - {column} % {width} AS lower_s, {column} - {column} % {width} + {width} AS upper_s"
        )
    };
    let grades: Vec<String> = GRADES
        .iter()
        .map(|grade| {
            format!(
                "SELECT '{}' AS grade, COUNT(*) AS customers FROM rm_customers \
                 WHERE forgotten_at IS NULL AND merged_into IS NULL AND {} HAVING COUNT(*) > 0",
                grade.name,
                grade.condition()
            )
        })
        .collect();
    let grades = grades.join(" UNION ALL ");
    vec![
        (
            COMPLAINTS_MONTHLY,
            "SELECT filed_month AS month, category, cause, channel, severity, \
             COUNT(*) AS complaints, \
             COUNT(CASE WHEN reopen_count > 0 THEN 1 END) AS reopened FROM rm_complaints \
             GROUP BY filed_month, category, cause, channel, severity"
                .to_owned(),
        ),
        (
            DURATIONS_MONTHLY,
            format!(
                "SELECT month, measure, lower_s, upper_s, COUNT(*) AS cases FROM (\
                 SELECT filed_month AS month, 'first_response' AS measure, {} \
                 FROM rm_complaints WHERE first_response_seconds IS NOT NULL UNION ALL \
                 SELECT filed_month AS month, 'close' AS measure, {} \
                 FROM rm_complaints WHERE close_seconds IS NOT NULL) d \
                 GROUP BY month, measure, lower_s, upper_s",
                bucket("first_response_seconds"),
                bucket("close_seconds")
            ),
        ),
        (
            SATISFACTION_MONTHLY,
            "SELECT month, kind, COALESCE(handler, 'none') AS handler, \
             COALESCE(intake_channel, 'none') AS intake_channel, \
             COALESCE(category, 'none') AS category, outcome, COUNT(*) AS callbacks, \
             COUNT(score) AS scored, COALESCE(SUM(score), 0) AS score_sum FROM rm_callbacks \
             GROUP BY month, kind, COALESCE(handler, 'none'), \
             COALESCE(intake_channel, 'none'), COALESCE(category, 'none'), outcome"
                .to_owned(),
        ),
        (
            QUALITY_MONTHLY,
            "SELECT filed_month AS month, 'complaint' AS kind, channel, \
             COALESCE(handler, 'none') AS handler, COUNT(*) AS cases, \
             COUNT(first_response_at) AS responded, \
             COUNT(CASE WHEN first_response_at <= first_response_due_at THEN 1 END) \
             AS responded_in_time, COUNT(first_closed_at) AS closed, \
             COUNT(CASE WHEN status <> 'open' AND reopen_count = 0 AND contacts = 1 THEN 1 END) \
             AS resolved_first_contact, COUNT(CASE WHEN reopen_count > 0 THEN 1 END) AS reopened, \
             SUM(reopen_count) AS reopens, SUM(closes) AS closes FROM rm_complaints \
             GROUP BY filed_month, channel, COALESCE(handler, 'none') UNION ALL \
             SELECT received_month AS month, 'request' AS kind, channel, \
             COALESCE(agent, 'none') AS handler, COUNT(*) AS cases, \
             COUNT(first_response_at) AS responded, \
             COUNT(CASE WHEN first_response_at <= first_response_due_at THEN 1 END) \
             AS responded_in_time, COUNT(resolved_at) AS closed, \
             COUNT(CASE WHEN resolved_at IS NOT NULL AND first_contact THEN 1 END) \
             AS resolved_first_contact, 0 AS reopened, 0 AS reopens, \
             COUNT(resolved_at) AS closes FROM rm_requests \
             GROUP BY received_month, channel, COALESCE(agent, 'none')"
                .to_owned(),
        ),
        (
            QUALITY_DURATIONS_MONTHLY,
            format!(
                "SELECT month, kind, channel, handler, measure, lower_s, upper_s, \
                 COUNT(*) AS cases FROM (\
                 SELECT filed_month AS month, 'complaint' AS kind, channel, \
                 COALESCE(handler, 'none') AS handler, 'first_response' AS measure, {} \
                 FROM rm_complaints WHERE first_response_seconds IS NOT NULL UNION ALL \
                 SELECT filed_month AS month, 'complaint' AS kind, channel, \
                 COALESCE(handler, 'none') AS handler, 'resolution' AS measure, {} \
                 FROM rm_complaints WHERE close_seconds IS NOT NULL UNION ALL \
                 SELECT received_month AS month, 'request' AS kind, channel, \
                 COALESCE(agent, 'none') AS handler, 'first_response' AS measure, {} \
                 FROM rm_requests WHERE first_response_seconds IS NOT NULL UNION ALL \
                 SELECT received_month AS month, 'request' AS kind, channel, \
                 COALESCE(agent, 'none') AS handler, 'resolution' AS measure, {} \
                 FROM rm_requests WHERE resolution_seconds IS NOT NULL) d \
                 GROUP BY month, kind, channel, handler, measure, lower_s, upper_s",
                bucket("first_response_seconds"),
                bucket("close_seconds"),
                bucket("first_response_seconds"),
                bucket("resolution_seconds")
            ),
        ),
        (
            HANDLER_OPEN_CASES,
            "SELECT handler, COUNT(*) AS open_cases, \
             COUNT(CASE WHEN severity = 'major' THEN 1 END) AS open_major_cases \
             FROM rm_complaints WHERE status = 'open' AND handler IS NOT NULL GROUP BY handler"
                .to_owned(),
        ),
        (
            AGENT_CUSTOMERS,
            "SELECT agent, COUNT(*) AS customers FROM rm_customers \
             WHERE forgotten_at IS NULL AND merged_into IS NULL GROUP BY agent"
                .to_owned(),
        ),
        (
            REFERRAL_COUNTS,
            "SELECT referred_by AS referrer, COUNT(*) AS referred, \
             COUNT(CASE WHEN forgotten_at IS NULL THEN 1 END) AS still_customers, \
             COUNT(first_contact_at) AS contacted FROM rm_customers \
             WHERE referred_by IS NOT NULL AND merged_into IS NULL GROUP BY referred_by"
                .to_owned(),
        ),
        (GRADE_CUSTOMERS, grades),
        (
            REFERRER_TOTALS,
            "SELECT COALESCE(p.merged_into, r.referred_by) AS referrer, COUNT(*) AS referred,              COUNT(CASE WHEN r.forgotten_at IS NULL THEN 1 END) AS still_customers,              COUNT(r.first_contact_at) AS contacted              FROM rm_customers r LEFT JOIN rm_customers p ON p.customer_id = r.referred_by              WHERE r.referred_by IS NOT NULL AND r.merged_into IS NULL              GROUP BY COALESCE(p.merged_into, r.referred_by)"
                .to_owned(),
        ),
    ]
}

impl Runner {
    /// The rows of every aggregate table recomputed from scratch by scanning the rows
    /// they summarise, as `dump` lines sorted: the rows those tables must hold.
    /// Checks and audits compare it with [`Runner::aggregates_stored`].
    pub async fn aggregates_by_scan(&self) -> Result<Vec<String>, ProjectionError> {
        let mut lines = Vec::new();
        for (table, scan) in aggregate_scans() {
            lines.extend(self.lines(table, &format!("({scan})")).await?);
        }
        lines.sort();
        Ok(lines)
    }

    /// The rows the aggregate tables hold, as `dump` lines sorted.
    pub async fn aggregates_stored(&self) -> Result<Vec<String>, ProjectionError> {
        let mut lines = Vec::new();
        for (table, _) in aggregate_scans() {
            lines.extend(self.lines(table, table).await?);
        }
        lines.sort();
        Ok(lines)
    }

    /// The rows of `from` (a table, or a parenthesised query naming its columns as
    /// `table` does) as `table: v1 | v2 | …` lines.
    async fn lines(&self, table: &str, from: &str) -> Result<Vec<String>, ProjectionError> {
        let columns = columns(self.db(), table).await?;
        let select: Vec<String> =
            columns.iter().map(|c| format!("CAST({c} AS TEXT) AS {c}")).collect();
        let sql = format!("SELECT {} FROM {from} s", select.join(", "));
        let mut lines = Vec::new();
        for row in self.db().fetch_all(&sql, &[]).await? {
            let values = columns
                .iter()
                .map(|c| Ok(row.opt_text(c)?.unwrap_or_else(|| "NULL".into())))
                .collect::<Result<Vec<String>, ProjectionError>>()?;
            lines.push(format!("{table}: {}", values.join(" | ")));
        }
        Ok(lines)
    }
}
