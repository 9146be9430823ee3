//! A thin dialect adapter so each read model is written once for SQLite and PostgreSQL.
//!
//! Queries use `$1, $2, …` placeholders (both drivers accept them) and portable SQL
//! (`INSERT … ON CONFLICT … DO UPDATE`, plain aggregates). What differs is how values
//! travel: timestamps are `TIMESTAMPTZ` on PostgreSQL and fixed-width UTC text on SQLite
//! (`2026-03-10T09:00:00.000000Z`, which sorts and compares like the instant it names).
//! Both clamp an instant to years 0000–9999 (`sqlite_time::storable`), the range where
//! that text is fixed-width: so the backends hold the same value for every instant, and
//! an old event dated year −1 shows as 0000-01-01 instead of stopping the projection.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, Row, Sqlite, Transaction};

use crate::error::ProjectionError;

/// The database the read models live in (the one holding the events).
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite {
        /// The event store's single writer connection: read-model writes queue with appends.
        writer: sqlx::SqlitePool,
        readers: sqlx::SqlitePool,
    },
    Postgres(sqlx::PgPool),
}

impl From<kefu_event_store::Database> for Db {
    fn from(database: kefu_event_store::Database) -> Self {
        match database {
            kefu_event_store::Database::Sqlite { writer, readers } => {
                Db::Sqlite { writer, readers }
            }
            kefu_event_store::Database::Postgres(pool) => Db::Postgres(pool),
        }
    }
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Time(DateTime<Utc>),
    /// A NULL of the given kind (PostgreSQL wants NULLs typed).
    Null(Kind),
}

/// The SQL type of a NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Time,
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}
impl From<u32> for Param {
    fn from(value: u32) -> Self {
        Param::Int(i64::from(value))
    }
}
impl From<bool> for Param {
    fn from(value: bool) -> Self {
        Param::Bool(value)
    }
}
impl From<f64> for Param {
    fn from(value: f64) -> Self {
        Param::Real(value)
    }
}
impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(value.to_owned())
    }
}
impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(value)
    }
}
impl From<DateTime<Utc>> for Param {
    fn from(value: DateTime<Utc>) -> Self {
        Param::Time(value)
    }
}
impl From<Option<DateTime<Utc>>> for Param {
    fn from(value: Option<DateTime<Utc>>) -> Self {
        value.map_or(Param::Null(Kind::Time), Param::Time)
    }
}
impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        value.map_or(Param::Null(Kind::Text), Param::Text)
    }
}
impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Self {
        value.map_or(Param::Null(Kind::Text), Param::from)
    }
}
impl From<Option<i64>> for Param {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Param::Null(Kind::Int), Param::Int)
    }
}

/// Builds an array of [`Param`]s from anything convertible.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::sql::Param::from($value)),*]
    };
}

/// SQLite spelling of a query: `$1, $2, …` become `?` when they appear once each, in
/// order. SQLite looks numbered parameters up by a linear scan, so binding N of them
/// costs O(N²); plain `?` costs O(N) and multi-row upserts stay fast.
fn sqlite_sql(sql: &str) -> std::borrow::Cow<'_, str> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1u64;
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 {
                let number: u64 = sql[i + 1..i + 1 + digits].parse().unwrap_or(0);
                if number != expected {
                    return std::borrow::Cow::Borrowed(sql);
                }
                out.push_str(&sql[last..i]);
                out.push('?');
                expected += 1;
                i += 1 + digits;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&sql[last..]);
    std::borrow::Cow::Owned(out)
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Rows of `sql` on any SQLite executor (pool, connection or transaction).
async fn rows_sqlite<'e>(
    executor: impl sqlx::Executor<'e, Database = Sqlite>,
    sql: &str,
    params: &[Param],
) -> Result<Vec<DbRow>, ProjectionError> {
    let sql = sqlite_sql(sql);
    let rows = bind_sqlite(sqlx::query(&sql), params).fetch_all(executor).await?;
    Ok(rows.into_iter().map(DbRow::Sqlite).collect())
}

/// Rows of `sql` on any PostgreSQL executor (pool, connection or transaction).
async fn rows_pg<'e>(
    executor: impl sqlx::Executor<'e, Database = Postgres>,
    sql: &str,
    params: &[Param],
) -> Result<Vec<DbRow>, ProjectionError> {
    let rows = bind_pg(sqlx::query(sql), params).fetch_all(executor).await?;
    Ok(rows.into_iter().map(DbRow::Postgres).collect())
}

fn bind_sqlite<'q>(mut query: SqliteQuery<'q>, params: &'q [Param]) -> SqliteQuery<'q> {
    for param in params {
        query = match param {
            Param::Int(value) => query.bind(*value),
            Param::Real(value) => query.bind(*value),
            Param::Bool(value) => query.bind(*value),
            Param::Text(value) => query.bind(value.as_str()),
            Param::Time(value) => query.bind(kefu_event_store::sqlite_time::format(*value)),
            Param::Null(_) => query.bind(None::<String>),
        };
    }
    query
}

fn bind_pg<'q>(mut query: PgQuery<'q>, params: &'q [Param]) -> PgQuery<'q> {
    for param in params {
        query = match param {
            Param::Int(value) => query.bind(*value),
            Param::Real(value) => query.bind(*value),
            Param::Bool(value) => query.bind(*value),
            Param::Text(value) => query.bind(value.as_str()),
            Param::Time(value) => {
                query.bind(kefu_event_store::sqlite_time::storable(*value).trunc_subsecs(6))
            }
            Param::Null(Kind::Int) => query.bind(None::<i64>),
            Param::Null(Kind::Text) => query.bind(None::<String>),
            Param::Null(Kind::Time) => query.bind(None::<DateTime<Utc>>),
        };
    }
    query
}

/// One result row, whichever backend it came from.
pub enum DbRow {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl std::fmt::Debug for DbRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DbRow::Sqlite(_) => "DbRow::Sqlite",
            DbRow::Postgres(_) => "DbRow::Postgres",
        })
    }
}

impl DbRow {
    pub fn int(&self, column: &str) -> Result<i64, ProjectionError> {
        Ok(match self {
            DbRow::Sqlite(row) => row.try_get(column)?,
            DbRow::Postgres(row) => row.try_get(column)?,
        })
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, ProjectionError> {
        Ok(match self {
            DbRow::Sqlite(row) => row.try_get(column)?,
            DbRow::Postgres(row) => row.try_get(column)?,
        })
    }

    pub fn real(&self, column: &str) -> Result<Option<f64>, ProjectionError> {
        Ok(match self {
            DbRow::Sqlite(row) => row.try_get(column)?,
            DbRow::Postgres(row) => row.try_get(column)?,
        })
    }

    pub fn bool(&self, column: &str) -> Result<bool, ProjectionError> {
        Ok(match self {
            DbRow::Sqlite(row) => row.try_get(column)?,
            DbRow::Postgres(row) => row.try_get(column)?,
        })
    }

    pub fn text(&self, column: &str) -> Result<String, ProjectionError> {
        Ok(match self {
            DbRow::Sqlite(row) => row.try_get(column)?,
            DbRow::Postgres(row) => row.try_get(column)?,
        })
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<String>, ProjectionError> {
        Ok(match self {
            DbRow::Sqlite(row) => row.try_get(column)?,
            DbRow::Postgres(row) => row.try_get(column)?,
        })
    }

    pub fn time(&self, column: &str) -> Result<DateTime<Utc>, ProjectionError> {
        self.opt_time(column)?.ok_or_else(|| ProjectionError::Corrupt(format!("{column} is NULL")))
    }

    pub fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, ProjectionError> {
        match self {
            DbRow::Sqlite(row) => row
                .try_get::<Option<String>, _>(column)?
                .map(|text| {
                    kefu_event_store::sqlite_time::parse(&text)
                        .map_err(|error| ProjectionError::Corrupt(format!("{column}: {error}")))
                })
                .transpose(),
            DbRow::Postgres(row) => Ok(row.try_get(column)?),
        }
    }
}

/// A write transaction on the read models.
#[derive(Debug)]
pub enum DbTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl DbTx {
    pub async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, ProjectionError> {
        Ok(match self {
            DbTx::Sqlite(tx) => bind_sqlite(sqlx::query(&sqlite_sql(sql)), params)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            DbTx::Postgres(tx) => {
                bind_pg(sqlx::query(sql), params).execute(&mut **tx).await?.rows_affected()
            }
        })
    }

    pub async fn fetch_all(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<DbRow>, ProjectionError> {
        Ok(match self {
            DbTx::Sqlite(tx) => rows_sqlite(&mut **tx, sql, params).await?,
            DbTx::Postgres(tx) => rows_pg(&mut **tx, sql, params).await?,
        })
    }

    pub async fn rollback(self) -> Result<(), ProjectionError> {
        match self {
            DbTx::Sqlite(tx) => tx.rollback().await?,
            DbTx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<(), ProjectionError> {
        match self {
            DbTx::Sqlite(tx) => tx.commit().await?,
            DbTx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// A read-only session of several statements, from [`Db::begin_generic_read`].
#[derive(Debug)]
pub enum DbRead {
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl DbRead {
    pub async fn fetch_all(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<DbRow>, ProjectionError> {
        Ok(match self {
            DbRead::Sqlite(conn) => rows_sqlite(&mut **conn, sql, params).await?,
            DbRead::Postgres(tx) => rows_pg(&mut **tx, sql, params).await?,
        })
    }

    /// Ends the session (PostgreSQL: commits, which ends `plan_cache_mode` with it).
    pub async fn finish(self) -> Result<(), ProjectionError> {
        match self {
            DbRead::Sqlite(_) => {}
            DbRead::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Db {
    /// A pool of at most `max_connections` on a read replica of the database at `url`
    /// (a PostgreSQL hot standby), for [`crate::ReadModels::on_replica`]. Only queries
    /// run there; nothing is written or migrated. Connections are made when needed, so
    /// a replica that is down delays nothing but the reads sent to it.
    pub fn replica(url: &str, max_connections: u32) -> Result<Db, ProjectionError> {
        if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            return Err(ProjectionError::InvalidArgument {
                field: "read_database_url",
                reason: "a read replica is a PostgreSQL server (postgres://…)".into(),
            });
        }
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_lazy_with(options);
        Ok(Db::Postgres(pool))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite: no lock upgrade later).
    pub async fn begin(&self) -> Result<DbTx, ProjectionError> {
        Ok(match self {
            Db::Sqlite { writer, .. } => {
                // Read models are derived data: their commits need not wait for an fsync
                // of their own (the store's next append syncs the WAL, these frames with
                // it). SQLite takes the setting only outside a transaction; the writer
                // pool restores FULL when the connection is released.
                // Both statements go in one round trip to sqlx's worker thread.
                let conn = writer.acquire().await?;
                let begin = "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE";
                // sqlx's `begin_with` on a pooled connection (public, if undocumented).
                DbTx::Sqlite(Transaction::begin(conn, Some(begin.into())).await?)
            }
            Db::Postgres(pool) => DbTx::Postgres(pool.begin().await?),
        })
    }

    /// A read-only session for statements whose best plan does not depend on their
    /// parameters (an index range of a page, whatever it holds). On PostgreSQL it is a
    /// `READ ONLY` transaction with `SET LOCAL plan_cache_mode = force_generic_plan`, so
    /// each statement is planned once per connection, not on every execution: left to
    /// itself PostgreSQL keeps re-planning such a statement, because the generic plan's
    /// estimates for unknown parameters look costlier than any one custom plan, and the
    /// planning cost more than the execution (1 ms against 0.1–0.4 ms at a million
    /// customers). Those estimates (0.5 % of the table for a range, 10 % of it for a
    /// `LIMIT`) also made a parallel plan look worth it, whose worker took 10–20 ms to
    /// start for a page of ten: so no parallel workers either. `SET LOCAL` ends with the
    /// transaction: no other statement on the pooled connection sees either setting.
    /// On SQLite (which prepares once and never plans per binding): a reader connection.
    pub async fn begin_generic_read(&self) -> Result<DbRead, ProjectionError> {
        Ok(match self {
            Db::Sqlite { readers, .. } => DbRead::Sqlite(readers.acquire().await?),
            Db::Postgres(pool) => {
                let conn = pool.acquire().await?;
                // One round trip: the three statements go as one simple query.
                let begin = "BEGIN READ ONLY; SET LOCAL plan_cache_mode = force_generic_plan; \
                             SET LOCAL max_parallel_workers_per_gather = 0";
                DbRead::Postgres(Transaction::begin(conn, Some(begin.into())).await?)
            }
        })
    }

    /// Runs a read-only query on the reader pool.
    pub async fn fetch_all(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<DbRow>, ProjectionError> {
        Ok(match self {
            Db::Sqlite { readers, .. } => rows_sqlite(readers, sql, params).await?,
            Db::Postgres(pool) => rows_pg(pool, sql, params).await?,
        })
    }

    pub async fn fetch_optional(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Option<DbRow>, ProjectionError> {
        Ok(self.fetch_all(sql, params).await?.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_sql;

    #[test]
    fn in_order_placeholders_become_anonymous_for_sqlite() {
        assert_eq!(sqlite_sql("a = $1 AND b IN ($2, $3)"), "a = ? AND b IN (?, ?)");
        assert_eq!(sqlite_sql("a = $2 AND b = $1"), "a = $2 AND b = $1");
        assert_eq!(sqlite_sql("a = $1 OR b = $1"), "a = $1 OR b = $1");
        assert_eq!(sqlite_sql("SELECT 1"), "SELECT 1");
    }
}
