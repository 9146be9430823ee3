//! Looking at a test database behind kefu's back: raw statements, whole-file scans.

use std::time::{Duration, Instant};

use kefu_event_store::{EventStore, StoreOptions};
use kefu_projection::{all_projections, Runner};
use kefu_testkit::TestDatabase;
use sqlx::{Connection, Row};

/// Runs statements directly on the database, as a superuser could.
pub async fn execute(url: &str, statements: &[String]) {
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect sqlite");
        for sql in statements {
            sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect postgres");
        for sql in statements {
            sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        }
    }
}

/// Everything the database holds, as text: on SQLite the raw bytes of the database file
/// and its WAL (so free pages and old page images count too); on PostgreSQL every row
/// of every table of the schema.
pub async fn scan(db: &TestDatabase) -> String {
    if let Some(path) = db.sqlite_path() {
        let mut bytes = std::fs::read(&path).expect("read database file");
        let wal = format!("{}-wal", path.display());
        if let Ok(more) = std::fs::read(wal) {
            bytes.extend(more);
        }
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut conn = sqlx::PgConnection::connect(db.url()).await.expect("connect postgres");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    let mut text = String::new();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT t::text FROM \"{table}\" t"))
            .fetch_all(&mut conn)
            .await
            .expect("scan table");
        for row in rows {
            text.push_str(&row.get::<String, _>(0));
            text.push('\n');
        }
    }
    text
}

/// The log's head: the position of its last event (0 when empty).
pub async fn head(url: &str) -> u64 {
    let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
    let head: i64 = if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect sqlite");
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("head")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect postgres");
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("head")
    };
    u64::try_from(head).expect("positions are positive")
}

/// Rows of a read-model query, each as its columns joined by `|` (cast what is not text
/// to text in `sql`, e.g. `CAST(n AS TEXT)`), read behind kefu's back.
pub async fn rows(url: &str, sql: &str) -> Vec<String> {
    let join = |columns: Vec<Option<String>>| {
        columns.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>().join("|")
    };
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect sqlite");
        let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect(sql);
        rows.iter().map(|row| join((0..row.len()).map(|i| row.get(i)).collect())).collect()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect postgres");
        let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect(sql);
        rows.iter().map(|row| join((0..row.len()).map(|i| row.get(i)).collect())).collect()
    }
}

/// The raw bytes of the database's files, as the disk holds them: on SQLite the file and
/// its WAL; on PostgreSQL every file of the database's directory (tables, indexes, TOAST
/// and the catalogs), after `VACUUM FULL` has rewritten every table without its dead
/// rows and a `CHECKPOINT` has written every page. `None` when the files cannot be read
/// (a server on another machine); in CI that fails instead.
pub async fn raw_files(db: &TestDatabase) -> Option<Vec<u8>> {
    if let Some(path) = db.sqlite_path() {
        let mut bytes = std::fs::read(&path).expect("read database file");
        if let Ok(more) = std::fs::read(format!("{}-wal", path.display())) {
            bytes.extend(more);
        }
        return Some(bytes);
    }
    let mut conn = sqlx::PgConnection::connect(db.url()).await.expect("connect postgres");
    sqlx::raw_sql("VACUUM FULL").execute(&mut conn).await.expect("vacuum full");
    sqlx::raw_sql("CHECKPOINT").execute(&mut conn).await.expect("checkpoint");
    let data: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut conn)
        .await
        .expect("data directory");
    let oid: sqlx::postgres::types::Oid =
        sqlx::query_scalar("SELECT oid FROM pg_database WHERE datname = current_database()")
            .fetch_one(&mut conn)
            .await
            .expect("database oid");
    let dir = std::path::Path::new(&data).join("base").join(oid.0.to_string());
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("cannot read {}: {error}; raw file scan skipped", dir.display());
            return None;
        }
        Err(error) => panic!("CI: cannot read the database files in {}: {error}", dir.display()),
    };
    let mut bytes = Vec::new();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).expect("read a data file"));
        }
    }
    assert!(!bytes.is_empty(), "the database directory has files");
    Some(bytes)
}

/// [`raw_files`] as text; `None` where they cannot be read (outside CI).
pub async fn scan_files(db: &TestDatabase) -> Option<String> {
    raw_files(db).await.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Asserts that none of `texts` is in the database files ([`raw_files`]) within a few
/// seconds: the read models scrub in the erasure's transaction, but SQLite truncates
/// its WAL (which holds old page images) just after that commit.
pub async fn assert_absent_from_files(db: &TestDatabase, texts: &[&str], when: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let Some(scan) = scan_files(db).await else { return };
        let found: Vec<&&str> = texts.iter().filter(|text| scan.contains(**text)).collect();
        if found.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{when}: still in the database files: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every stored payload and metadata, as text.
pub async fn events_text(url: &str) -> String {
    let sql = "SELECT payload || metadata FROM events";
    let rows: Vec<String> = if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect sqlite");
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.expect("events")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect postgres");
        sqlx::query_scalar("SELECT payload::text || metadata::text FROM events")
            .fetch_all(&mut conn)
            .await
            .expect("events")
    };
    rows.join("\n")
}

/// Asserts that none of `texts` is anywhere in the database within a few seconds (the
/// read models scrub and purge asynchronously after the erasure event).
pub async fn assert_absent(db: &TestDatabase, texts: &[&str], when: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scan = scan(db).await;
        let found: Vec<&&str> = texts.iter().filter(|text| scan.contains(**text)).collect();
        if found.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{when}: still in the database: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rebuilds every projection from zero, as `kefu projections rebuild` does.
pub async fn rebuild_projections(url: &str) {
    let store = EventStore::open(url, StoreOptions::default()).await.expect("open store");
    Runner::new(store, all_projections()).rebuild_all(|_, _| {}).await.expect("rebuild");
}

/// Every live data key in `data_keys`, as an attacker holding the database reads them.
pub async fn live_data_keys(url: &str) -> Vec<Vec<u8>> {
    let sql = "SELECT key_bytes FROM data_keys WHERE key_bytes IS NOT NULL";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect sqlite");
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.expect("data keys")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect postgres");
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.expect("data keys")
    }
}

/// The `request_fingerprint` recorded in every event's metadata.
pub async fn recorded_fingerprints(url: &str) -> Vec<String> {
    let rows: Vec<Option<String>> = if url.starts_with("sqlite") {
        let sql = "SELECT json_extract(metadata, '$.request_fingerprint') FROM events";
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect sqlite");
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.expect("fingerprints")
    } else {
        let sql = "SELECT metadata->>'request_fingerprint' FROM events";
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect postgres");
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.expect("fingerprints")
    };
    rows.into_iter().flatten().collect()
}
