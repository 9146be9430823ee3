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

/// The raw bytes of the database's files, as text: on SQLite the file and its WAL (as
/// [`scan`]); on PostgreSQL, after `VACUUM FULL` of every table and a `CHECKPOINT`, the
/// on-disk files of every table, index and TOAST table of the schema, read through
/// `pg_read_binary_file` (the test cluster's superuser may). What was deleted or
/// overwritten must be gone from these bytes, not only from query results.
pub async fn scan_files(db: &TestDatabase) -> String {
    if db.sqlite_path().is_some() {
        return scan(db).await;
    }
    let mut conn = sqlx::PgConnection::connect(db.url()).await.expect("connect postgres");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    for table in tables {
        sqlx::raw_sql(&format!("VACUUM FULL \"{table}\""))
            .execute(&mut conn)
            .await
            .expect("vacuum");
    }
    sqlx::raw_sql("CHECKPOINT").execute(&mut conn).await.expect("checkpoint");
    let files: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT pg_read_binary_file(pg_relation_filepath(c.oid)) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE (n.nspname = current_schema() OR n.nspname = 'pg_toast') \
         AND c.relkind IN ('r', 'i', 't') AND pg_relation_filepath(c.oid) IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read the relation files");
    let bytes: Vec<u8> = files.concat();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Asserts that none of `texts` is in the database files ([`scan_files`]) within a few
/// seconds: the read models scrub in the erasure's transaction, but SQLite truncates
/// its WAL (which holds old page images) just after that commit.
pub async fn assert_absent_from_files(db: &TestDatabase, texts: &[&str], when: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scan = scan_files(db).await;
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
