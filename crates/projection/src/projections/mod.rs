//! The read models kefu maintains, and what they share: decoding and batch loading.

pub mod case_records;
pub mod complaints;
mod customer_index;
pub mod customers;
pub mod live_counts;
pub mod quality;
pub mod report_aggregates;
pub mod requests;
pub mod staff;

use std::fmt::Write as _;

use crate::error::ProjectionError;
pub(crate) use crate::event::Decoded;
use crate::event::Event;
use crate::sql::{DbRow, DbTx, Param};

/// The event in the domain's terms (decoded once per batch, for every projection).
pub(crate) fn decode(event: &Event) -> Result<Decoded, ProjectionError> {
    event.decoded()
}

/// The id part of `<category>-<id>`.
pub(crate) fn stream_key(event: &Event) -> &str {
    event.stream_id.split_once('-').map_or(event.stream_id.as_str(), |(_, key)| key)
}

/// Loads the rows whose `key_column` is among `keys`, in chunks that stay well under
/// every backend's parameter limit.
pub(crate) async fn load_rows(
    tx: &mut DbTx,
    table: &str,
    key_column: &str,
    keys: &[String],
) -> Result<Vec<DbRow>, ProjectionError> {
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql =
            format!("SELECT * FROM {table} WHERE {key_column} IN ({})", placeholders.join(", "));
        let params: Vec<Param> = chunk.iter().map(|key| Param::Text(key.clone())).collect();
        rows.extend(tx.fetch_all(&sql, &params).await?);
    }
    Ok(rows)
}

/// Upserts rows (each a full set of `columns`) with multi-row statements: one round trip
/// per few hundred rows rather than per row, which is what makes rebuilds fast.
pub(crate) async fn upsert_rows(
    tx: &mut DbTx,
    table: &str,
    key: &str,
    columns: &[&str],
    rows: Vec<Vec<Param>>,
) -> Result<(), ProjectionError> {
    let updates: Vec<String> =
        columns.iter().filter(|c| **c != key).map(|c| format!("{c} = excluded.{c}")).collect();
    let conflict = format!("ON CONFLICT ({key}) DO UPDATE SET {}", updates.join(", "));
    insert_rows(tx, table, columns, &conflict, rows).await
}

/// Inserts rows with multi-row statements, `on_conflict` appended to each.
pub(crate) async fn insert_rows(
    tx: &mut DbTx,
    table: &str,
    columns: &[&str],
    on_conflict: &str,
    rows: Vec<Vec<Param>>,
) -> Result<(), ProjectionError> {
    // Well under SQLite's 32,766 and PostgreSQL's 65,535 parameters per statement.
    let rows_per_statement = (8_000 / columns.len().max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Param>> = rows.by_ref().take(rows_per_statement).collect();
        let mut values = Vec::with_capacity(chunk.len());
        let mut params = Vec::with_capacity(chunk.len() * columns.len());
        for row in chunk {
            let first = params.len() + 1;
            let mut tuple = String::with_capacity(row.len() * 7);
            for i in first..first + row.len() {
                let comma = if i == first { "(" } else { ", " };
                let _ = write!(tuple, "{comma}${i}");
            }
            tuple.push(')');
            values.push(tuple);
            params.extend(row);
        }
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} {on_conflict}",
            columns.join(", "),
            values.join(", ")
        );
        tx.execute(&sql, &params).await?;
    }
    Ok(())
}
