//! The group-commit writer's supervision, tested for real: the real writer thread of a
//! real store on a real database panics (a hook compiled only into these tests, see
//! `prepare::test_hooks`), nothing is mocked. The appends in flight get a clear,
//! retryable error, nothing queued is lost, the writer restarts, and a writer that
//! keeps panicking is given up on and says so (`writer_alive`).

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::prepare::test_hooks::PANIC_STREAM;
use crate::{EventStore, ExpectedVersion, Metadata, NewEvent, StoreError, StoreOptions, StreamId};

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

fn event() -> NewEvent {
    NewEvent::new(Uuid::now_v7(), "Thing", 1, json!({ "n": 1 }))
}

async fn a_writer_that_panics_is_restarted_and_loses_nothing(url: &str) {
    let options =
        StoreOptions { commit_delay: Some(Duration::from_millis(20)), ..StoreOptions::default() };
    let store = EventStore::open(url, options).await.expect("open");
    assert!(store.writer_alive());
    let good = [event()];
    let meta = Metadata::default();
    // Queued together: the panicking append's batch may carry the good one too.
    let first = store.submit(&stream("good"), ExpectedVersion::Any, &good, &meta).unwrap();
    let panics = store.submit(&stream(PANIC_STREAM), ExpectedVersion::Any, &[event()], &meta);
    let queued_after = store.submit(&stream("queued"), ExpectedVersion::Any, &[event()], &meta);
    let (first, panics) = (first.await, panics.unwrap().await);
    assert!(matches!(panics, Err(StoreError::Unavailable(_))), "{panics:?}");
    match &first {
        Ok(result) => assert_eq!(result.last_version, 1),
        Err(error) => assert!(matches!(error, StoreError::Unavailable(_)), "{error}"),
    }
    // Queued behind the panic: answered by the restarted writer, not dropped.
    let queued_after = queued_after.unwrap().await;
    assert!(
        matches!(&queued_after, Ok(result) if result.last_version == 1)
            || matches!(queued_after, Err(StoreError::Unavailable(_))),
        "{queued_after:?}"
    );
    assert!(store.writer_alive(), "restarted");
    // A retry (same ids) is stored exactly once, whatever the first try became.
    let retried = store.append(&stream("good"), ExpectedVersion::Any, &good, &meta).await.unwrap();
    assert_eq!(retried.last_version, 1);
    assert_eq!(store.stream_version(&stream("good")).await.unwrap(), 1);

    // A writer that keeps panicking is given up on; appends then fail clearly.
    for _ in 0..crate::prepare::MAX_RESTARTS {
        let panics =
            store.append(&stream(PANIC_STREAM), ExpectedVersion::Any, &[event()], &meta).await;
        assert!(matches!(panics, Err(StoreError::Unavailable(_))));
    }
    for _ in 0..1_000 {
        if !store.writer_alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!store.writer_alive(), "given up after too many panics");
    let refused = store.append(&stream("late"), ExpectedVersion::Any, &[event()], &meta).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    assert_eq!(store.stream_version(&stream(PANIC_STREAM)).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_is_supervised() {
    let db = kefu_testkit::sqlite();
    a_writer_that_panics_is_restarted_and_loses_nothing(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_is_supervised() {
    let Some(db) = kefu_testkit::postgres().await else { return };
    a_writer_that_panics_is_restarted_and_loses_nothing(db.url()).await;
}
