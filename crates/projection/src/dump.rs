//! Every read-model row as text: how two builds of the read models are compared (a live
//! run against a rebuild from zero, before and after crashes or a version bump).

use crate::error::ProjectionError;
use crate::params;
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
