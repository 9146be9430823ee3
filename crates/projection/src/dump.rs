//! Every read-model row as text: how two builds of the read models are compared (a live
//! run against a rebuild from zero, before and after crashes or a version bump).

use crate::error::ProjectionError;
use crate::params;
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

impl Runner {
    /// The rows of the monthly aggregate tables (`report_aggregates`) recomputed from
    /// scratch by scanning the rows they summarise, as `dump` lines sorted: the rows
    /// those tables must hold. Checks and audits compare it with `dump`; the bucket
    /// bounds are spelled here again in SQL on purpose, as an independent check.
    pub async fn aggregates_by_scan(&self) -> Result<Vec<String>, ProjectionError> {
        let bucket = |column: &str| {
            let width = format!(
                "(CASE WHEN {column} < 60 THEN 1 WHEN {column} < 3600 THEN 60 \
                 WHEN {column} < 86400 THEN 300 WHEN {column} < 5184000 THEN 3600 ELSE 86400 END)"
            );
            format!(
                "{column} - {column} % {width} AS lower_s, {column} - {column} % {width} + {width} AS upper_s"
            )
        };
        let queries = [
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
        ];
        let mut lines = Vec::new();
        for (table, scan) in queries {
            let columns = columns(self.db(), table).await?;
            let select: Vec<String> =
                columns.iter().map(|c| format!("CAST({c} AS TEXT) AS {c}")).collect();
            // The scans name their columns as the table does.
            let sql = format!("SELECT {} FROM ({scan}) s", select.join(", "));
            for row in self.db().fetch_all(&sql, &[]).await? {
                let values = columns
                    .iter()
                    .map(|c| Ok(row.opt_text(c)?.unwrap_or_else(|| "NULL".into())))
                    .collect::<Result<Vec<String>, ProjectionError>>()?;
                lines.push(format!("{table}: {}", values.join(" | ")));
            }
        }
        lines.sort();
        Ok(lines)
    }
}
