//! Reading a range of SQLite events as one text value: a batch crosses from sqlx's worker
//! thread in one hand-off, and each payload is parsed once, in Rust.
//!
//! Rows are joined with ASCII record (`\x1e`) and unit (`\x1f`) separators. No stored
//! column can hold either: stream ids and event types are printable ASCII (checked on
//! append), numbers, hex and timestamps are plain, and JSON text never holds a raw
//! control character (RFC 8259 §7; inside strings they are escaped). This replaced a
//! `json_group_array` batch, in which SQLite parsed and re-rendered every payload only
//! for Rust to parse it again.

use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;

use crate::chain::to_hash;
use crate::error::StoreError;
use crate::prepare::from_sql;
use crate::sqlite::{parse_timestamp, parse_uuid, schema_version};
use crate::types::{LoggedEvent, RecordedEvent};

const RECORD: char = '\x1e';
const UNIT: char = '\x1f';
const COLUMNS: usize = 11;

/// The single-value query over `inner`, which selects the event columns in their stored
/// order. An empty range gives NULL.
pub(crate) fn batch_sql(inner: &str) -> String {
    let unit = "|| char(31) ||";
    format!(
        "SELECT group_concat(position {unit} stream_id {unit} stream_version {unit} event_id \
         {unit} event_type {unit} schema_version {unit} payload {unit} metadata {unit} \
         recorded_at {unit} hex(prev_hash) {unit} hex(hash), char(30)) FROM ({inner})"
    )
}

/// The columns of a [`LoggedEvent`], for the `inner` query of [`logged_batch_sql`].
pub(crate) const LOGGED_COLUMNS: &str = "position, stream_id, event_type, schema_version, payload";

/// [`batch_sql`] for [`LoggedEvent`]s: only the columns a projection reads, so SQLite
/// neither hex-encodes two hashes per event nor copies metadata nobody looks at.
pub(crate) fn logged_batch_sql(inner: &str) -> String {
    let unit = "|| char(31) ||";
    format!(
        "SELECT group_concat(position {unit} stream_id {unit} event_type {unit} schema_version \
         {unit} payload, char(30)) FROM ({inner})"
    )
}

/// Reads `from..=to` with `read`, splitting the range in halves wherever SQLite refuses
/// the batch as longer than its string limit (1 GB; a window of very large payloads),
/// so a projection is never stuck on a window it cannot read in one piece.
/// `is_too_big` is [`too_big`] outside tests.
pub(crate) async fn read_in_pieces<T, F, Fut>(
    from: i64,
    to: i64,
    is_too_big: impl Fn(&StoreError) -> bool,
    mut read: F,
) -> Result<Vec<T>, StoreError>
where
    F: FnMut(i64, i64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    let mut events = Vec::new();
    // A stack of ranges still to read, the next one on top.
    let mut pending = vec![(from, to)];
    while let Some((from, to)) = pending.pop() {
        match read(from, to).await {
            Ok(mut piece) => events.append(&mut piece),
            Err(error) if from < to && is_too_big(&error) => {
                let middle = from + (to - from) / 2;
                pending.push((middle + 1, to));
                pending.push((from, middle));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(events)
}

/// SQLite's `SQLITE_TOOBIG` (18): a string or blob over the length limit.
pub(crate) fn too_big(error: &StoreError) -> bool {
    match error {
        StoreError::Storage(sqlx::Error::Database(error)) => error.code().as_deref() == Some("18"),
        _ => false,
    }
}

/// The events of a [`batch_sql`] row, in position order. The text is borrowed from the
/// row: a batch is megabytes, and sqlx has already copied it once.
pub(crate) fn decode(row: &SqliteRow) -> Result<Vec<RecordedEvent>, StoreError> {
    decode_text(row.try_get::<Option<&str>, _>(0)?)
}

fn decode_text(batch: Option<&str>) -> Result<Vec<RecordedEvent>, StoreError> {
    let Some(batch) = batch else { return Ok(Vec::new()) };
    let mut events = Vec::with_capacity(batch.matches(RECORD).count() + 1);
    for record in batch.split(RECORD) {
        events.push(decode_record(record)?);
    }
    // group_concat keeps the subquery's order in practice, but SQLite does not promise it.
    if !events.is_sorted_by_key(|event| event.position) {
        events.sort_by_key(|event| event.position);
    }
    Ok(events)
}

/// The events of a [`logged_batch_sql`] row, in position order.
pub(crate) fn decode_logged(row: &SqliteRow) -> Result<Vec<LoggedEvent>, StoreError> {
    decode_logged_text(row.try_get::<Option<&str>, _>(0)?)
}

fn decode_logged_text(batch: Option<&str>) -> Result<Vec<LoggedEvent>, StoreError> {
    let Some(batch) = batch else { return Ok(Vec::new()) };
    let mut events = Vec::with_capacity(batch.matches(RECORD).count() + 1);
    for record in batch.split(RECORD) {
        events.push(decode_logged_record(record)?);
    }
    if !events.is_sorted_by_key(|event| event.position) {
        events.sort_by_key(|event| event.position);
    }
    Ok(events)
}

fn decode_logged_record(record: &str) -> Result<LoggedEvent, StoreError> {
    // The payload is last: split off the four columns before it only.
    let mut fields = record.splitn(5, UNIT);
    let mut next = || fields.next().unwrap_or_default();
    let (position, stream_id, event_type, schema, payload) =
        (next(), next(), next(), next(), next());
    let position: i64 = position.parse().map_err(|_| StoreError::Corrupt {
        position: 0,
        reason: format!("event batch: position {position:?}"),
    })?;
    let schema = schema.parse::<i64>().map_err(|_| StoreError::Corrupt {
        position,
        reason: format!("schema version {schema:?} is not an integer"),
    })?;
    if payload.is_empty() {
        return Err(StoreError::Corrupt { position, reason: "event batch: a short row".into() });
    }
    Ok(LoggedEvent {
        position: from_sql(position, position)?,
        stream_id: stream_id.to_owned(),
        event_type: event_type.to_owned(),
        schema_version: schema_version(position, schema)?,
        payload: payload.to_owned(),
    })
}

fn decode_record(record: &str) -> Result<RecordedEvent, StoreError> {
    let fields: Vec<&str> = record.split(UNIT).collect();
    let position: i64 = fields[0].parse().map_err(|_| StoreError::Corrupt {
        position: 0,
        reason: format!("event batch: position {:?}", fields[0]),
    })?;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let &[_, stream_id, version, event_id, event_type, schema, payload, metadata, recorded_at, prev_hash, this_hash] =
        fields.as_slice()
    else {
        return Err(corrupt(format!("event batch: a row without {COLUMNS} columns")));
    };
    let integer = |text: &str, what: &str| {
        text.parse::<i64>().map_err(|_| corrupt(format!("{what} {text:?} is not an integer")))
    };
    let hash = |text: &str, what: &str| {
        hex::decode(text)
            .ok()
            .as_deref()
            .and_then(to_hash)
            .ok_or_else(|| corrupt(format!("{what} is not 32 bytes")))
    };
    Ok(RecordedEvent {
        position: from_sql(position, position)?,
        stream_id: stream_id.to_owned(),
        stream_version: from_sql(position, integer(version, "stream version")?)?,
        event_id: parse_uuid(position, event_id)?,
        event_type: event_type.to_owned(),
        schema_version: schema_version(position, integer(schema, "schema version")?)?,
        payload: serde_json::from_str(payload)
            .map_err(|error| corrupt(format!("payload: {error}")))?,
        metadata: serde_json::from_str(metadata)
            .map_err(|error| corrupt(format!("metadata: {error}")))?,
        recorded_at: parse_timestamp(position, recorded_at)?,
        prev_hash: hash(prev_hash, "prev_hash")?,
        hash: hash(this_hash, "hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &str) -> String {
        let hash = "ab".repeat(32);
        [
            "7",
            "complaint-1",
            "2",
            "0193a0b0-0000-7000-8000-000000000001",
            "ComplaintFiled",
            "1",
            payload,
            r#"{"actor":"svc"}"#,
            "2026-11-22T15:04:05.123456Z",
            &hash,
            &hash,
        ]
        .join("\x1f")
    }

    #[test]
    fn a_batch_decodes_in_position_order() {
        let later = record(r#"{"text":"line\nbreak \u001f"}"#).replacen('7', "9", 1);
        let events = decode_text(Some(&[later, record("{}")].join("\x1e"))).unwrap();
        assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), [7, 9]);
        // Escaped control characters inside JSON strings are data, not separators.
        assert_eq!(events[1].payload["text"], "line\nbreak \u{1f}");
        assert_eq!(events[0].hash, [0xab; 32]);
        assert_eq!(decode_text(None).unwrap(), []);
    }

    /// A stand-in for SQLite's length limit: more than `limit` positions is too big.
    async fn read_up_to(limit: i64, from: i64, to: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        if to - from + 1 > limit {
            return Err(StoreError::Corrupt { position: from, reason: "too big".into() });
        }
        let record = |position: i64| record("{}").replacen('7', &position.to_string(), 1);
        decode_text(Some(&(from..=to).map(record).collect::<Vec<_>>().join("\x1e")))
    }

    #[tokio::test]
    async fn an_oversized_window_is_read_in_halves_in_order() {
        // `too_big` knows only SQLite's code; here the stand-in's refusal counts as one.
        let mut reads = Vec::new();
        let events = read_in_pieces(
            1,
            10,
            |error| matches!(error, StoreError::Corrupt { .. }),
            |from, to| {
                reads.push((from, to));
                read_up_to(3, from, to)
            },
        )
        .await
        .unwrap();
        assert_eq!(
            events.iter().map(|e| e.position).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<u64>>()
        );
        assert_eq!(reads[0], (1, 10));
        assert!(reads.iter().all(|&(from, to)| from <= to));
        // A single position that is still too big is an error, not an endless split.
        let error = read_in_pieces(5, 5, |_| true, |from, to| read_up_to(0, from, to)).await;
        assert!(error.is_err());
    }

    #[test]
    fn a_logged_batch_keeps_each_payload_as_its_text() {
        let record = |position: u64, payload: &str| {
            format!("{position}\x1fcomplaint-1\x1fComplaintFiled\x1f2\x1f{payload}")
        };
        let payload = r#"{"text":"line\nbreak \u001f"}"#;
        let batch = [record(9, payload), record(7, "{}")].join("\x1e");
        let events = decode_logged_text(Some(&batch)).unwrap();
        assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), [7, 9]);
        assert_eq!((events[1].payload.as_str(), events[1].schema_version), (payload, 2));
        assert_eq!(events[1].category(), "complaint");
        for bad in ["", "x", "7\x1fcomplaint-1\x1fComplaintFiled\x1f2", "7\x1fa\x1fB\x1fx\x1f{}"] {
            assert!(matches!(decode_logged_text(Some(bad)), Err(StoreError::Corrupt { .. })));
        }
    }

    #[test]
    fn a_malformed_row_is_corrupt_not_a_panic() {
        for bad in [
            String::new(),
            "x".to_owned(),
            record("{").to_owned(),
            record("{}").rsplit_once('\x1f').unwrap().0.to_owned(),
            format!("{}\x1fextra", record("{}")),
        ] {
            assert!(matches!(decode_text(Some(&bad)), Err(StoreError::Corrupt { .. })));
        }
    }
}
