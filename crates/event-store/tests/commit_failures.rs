//! When the database refuses or fails, on SQLite and PostgreSQL: one append's failure
//! in a group commit is its own, and transient failures are told apart (retryable).

use std::time::Duration;

use kefu_event_store::{
    is_transient, Database, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError,
    StoreOptions, StreamId,
};
use kefu_testkit::TestDatabase;
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

kefu_testkit::on_both_databases!(
    workers = 4;
    one_failing_append_in_a_group_commit_fails_alone,
    transient_database_failures_are_retryable,
);

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

fn event(n: u64) -> NewEvent {
    NewEvent::new(Uuid::now_v7(), "Thing", 1, json!({ "n": n }))
}

/// Makes the database itself refuse any insert into the stream `poison` (a trigger):
/// a real statement failure, which the store's checks before writing cannot foresee.
async fn poison_stream(store: &EventStore) {
    match store.database() {
        Database::Sqlite { writer, .. } => {
            sqlx::query(
                "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream_id = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned append'); END",
            )
            .execute(&writer)
            .await
            .unwrap();
        }
        Database::Postgres(pool) => {
            sqlx::raw_sql(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                   IF NEW.stream_id = 'poison' THEN RAISE EXCEPTION 'poisoned append'; END IF; \
                   RETURN NEW; END $$; \
                 CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW \
                   EXECUTE FUNCTION poison();",
            )
            .execute(&pool)
            .await
            .unwrap();
        }
    }
}

async fn one_failing_append_in_a_group_commit_fails_alone(db: &TestDatabase) {
    // Commits are held a while, so the appends pile up into shared batches.
    let options =
        StoreOptions { commit_delay: Some(Duration::from_millis(20)), ..StoreOptions::default() };
    let store = EventStore::open(db.url(), options).await.unwrap();
    poison_stream(&store).await;
    let before = store.commits();
    // Queued one after another before any is awaited: one writer turn takes them all.
    let mut pending = Vec::new();
    for n in 0..30u64 {
        let name = if n % 10 == 5 { "poison".to_owned() } else { format!("good-{n}") };
        let expected = ExpectedVersion::Any;
        pending
            .push((n, store.submit(&stream(&name), expected, &[event(n)], &Metadata::default())));
    }
    for (n, append) in pending {
        let outcome = append.unwrap().await;
        if n % 10 == 5 {
            let error = outcome.expect_err("the poisoned append fails");
            assert!(
                matches!(error, StoreError::CommitFailed(ref reason) if reason.contains("poisoned")),
                "append {n}: {error}"
            );
        } else {
            assert_eq!(outcome.unwrap().last_version, 1, "append {n} is written");
        }
    }
    assert!(store.commits() > before, "the good appends committed");
    assert_eq!(store.head_position().await.unwrap(), 27, "27 good appends, no poisoned one");
    for n in (0..30u64).filter(|n| n % 10 != 5) {
        let stored = store.stream_version(&stream(&format!("good-{n}"))).await.unwrap();
        assert_eq!(stored, 1, "good-{n}");
    }
    // The store goes on as before.
    let after = store
        .append(
            &stream("good-after"),
            ExpectedVersion::NoStream,
            &[event(99)],
            &Metadata::default(),
        )
        .await;
    assert_eq!(after.unwrap().first_position, 28);
}

/// A busy SQLite database and a lost PostgreSQL connection are transient (retry later,
/// gRPC UNAVAILABLE); a constraint the data breaks is not.
async fn transient_database_failures_are_retryable(db: &TestDatabase) {
    let store = EventStore::open(db.url(), StoreOptions::default()).await.unwrap();
    store
        .append(&stream("s"), ExpectedVersion::NoStream, &[event(1)], &Metadata::default())
        .await
        .unwrap();
    match store.database() {
        Database::Sqlite { .. } => {
            let url = format!("{}?mode=rw", db.url().split('?').next().unwrap_or(db.url()));
            let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("PRAGMA busy_timeout = 0").execute(&mut other).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
            let busy = sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.unwrap_err();
            assert!(is_transient(&busy), "busy: {busy}");
            assert!(StoreError::Storage(busy).is_transient());
            sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        }
        Database::Postgres(pool) => {
            // The writer's connection is cut while it holds a batch's transaction open.
            let options = StoreOptions {
                commit_delay: Some(Duration::from_millis(300)),
                ..StoreOptions::default()
            };
            let slow = EventStore::open(db.url(), options).await.unwrap();
            let mut cut = 0;
            for n in 2..12 {
                let append = slow
                    .submit(&stream("s"), ExpectedVersion::Any, &[event(n)], &Metadata::default())
                    .unwrap();
                let append = tokio::spawn(append);
                let mut killed = false;
                while !killed && !append.is_finished() {
                    killed = sqlx::query_scalar::<_, bool>(
                        "SELECT COALESCE(bool_or(pg_terminate_backend(pid)), false) \
                         FROM pg_stat_activity WHERE datname = current_database() \
                         AND state = 'idle in transaction' AND pid <> pg_backend_pid()",
                    )
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                }
                match append.await.unwrap() {
                    Ok(_) => {}
                    Err(error) => {
                        cut += 1;
                        assert!(
                            matches!(error, StoreError::Unavailable(_)),
                            "a cut connection is transient: {error}"
                        );
                    }
                }
                if cut > 0 {
                    break;
                }
            }
            assert!(cut > 0, "a batch's connection was cut");
            // Retrying succeeds: the writer reconnects.
            let retried = slow
                .append(&stream("s"), ExpectedVersion::Any, &[event(99)], &Metadata::default())
                .await;
            assert!(retried.is_ok(), "{retried:?}");
        }
    }
    // A refusal the data causes is not transient: retrying would fail again.
    let Database::Sqlite { writer, .. } = store.database() else { return };
    let duplicate = sqlx::query("INSERT INTO projection_checkpoints (name, version, position, updated_at) VALUES ('x', 1, 0, 'now'), ('x', 1, 0, 'now')")
        .execute(&writer)
        .await
        .unwrap_err();
    assert!(!is_transient(&duplicate), "{duplicate}");
}

/// PostgreSQL refusing connections (an operator's `ALLOW_CONNECTIONS false`, its
/// backends terminated) is transient on every attempt, reconnects included (SQLSTATE
/// 55000 "database is not currently accepting connections" on connect): retry later,
/// gRPC UNAVAILABLE, never INTERNAL. Once connections are allowed again a retry goes
/// through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refusing_connections_is_transient() {
    let Some(db) = kefu_testkit::database(kefu_testkit::Backend::Postgres).await else { return };
    let store = EventStore::open(db.url(), StoreOptions::default()).await.unwrap();
    store
        .append(&stream("s"), ExpectedVersion::NoStream, &[event(1)], &Metadata::default())
        .await
        .unwrap();
    // The operator works from another database of the server (`postgres`).
    let (url, query) = db.url().split_once('?').unwrap_or((db.url(), ""));
    let (server, name) = url.rsplit_once('/').expect("a database in the url");
    let name = name.to_owned();
    let mut admin =
        sqlx::PgConnection::connect(&format!("{server}/postgres?{query}")).await.unwrap();
    let allow = |allowed: bool| format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allowed}");
    sqlx::query(&allow(false)).execute(&mut admin).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .execute(&mut admin)
    .await
    .unwrap();
    // The first attempts meet the terminated connections, the later ones reconnect.
    for n in 2..5 {
        let refused = store
            .append(&stream("s"), ExpectedVersion::Any, &[event(n)], &Metadata::default())
            .await
            .expect_err("the database accepts no connection");
        assert!(refused.is_transient(), "append {n}: {refused}");
        let read = store.head_position().await.expect_err("nor a read");
        assert!(read.is_transient(), "read {n}: {read}");
    }
    sqlx::query(&allow(true)).execute(&mut admin).await.unwrap();
    store
        .append(&stream("s"), ExpectedVersion::Any, &[event(9)], &Metadata::default())
        .await
        .expect("connections allowed again: the retry goes through");
}
