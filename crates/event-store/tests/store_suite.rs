//! The event store contract, one generic suite run against SQLite and PostgreSQL.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use kefu_event_store::{
    Append, AppendResult, BrokenReason, Condition, Database, Direction, EventStore,
    ExpectedVersion, Limits, Metadata, NewEvent, StoreError, StoreOptions, StreamId, Verification,
    GENESIS,
};
use kefu_testkit::TestDatabase;
use serde_json::json;
use uuid::Uuid;

// Instantiates every listed test once per backend: `sqlite::name` and `postgres::name`.
kefu_testkit::on_both_databases!(
    workers = 4;
    append_then_read_stream_both_ways,
    expectations_no_stream_and_exact,
    wrong_expected_version_reports_actual_and_writes_nothing,
    multi_event_append_is_atomic,
    retried_append_returns_first_result_and_stores_nothing,
    partial_or_misplaced_retry_is_refused,
    conditions_guard_an_append,
    a_group_is_written_whole_or_not_at_all,
    read_all_pages_by_position,
    subscribe_catches_up_then_goes_live_and_resumes,
    concurrent_writers_and_late_commits_reach_subscriber_exactly_once,
    concurrent_any_appends_to_one_stream_all_land,
    racing_exact_appends_let_exactly_one_win,
    database_refuses_update_and_delete,
    verify_stream_names_the_tampered_version,
    limits_are_enforced_before_writing,
    invalid_names_and_numbers_are_refused,
    cancelled_appends_leave_the_store_usable,
    read_range_filters_by_type_within_positions,
    group_commit_batches_yet_answers_each_append_alone,
);

async fn open(db: &TestDatabase) -> EventStore {
    EventStore::open(db.url(), StoreOptions::default()).await.expect("open store")
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

fn event(n: u64) -> NewEvent {
    NewEvent::new(Uuid::now_v7(), "Thing", 1, json!({ "n": n }))
}

fn events(count: u64) -> Vec<NewEvent> {
    (1..=count).map(event).collect()
}

fn meta() -> Metadata {
    Metadata { actor: Some("tester".into()), ..Metadata::default() }
}

async fn count_all(store: &EventStore) -> usize {
    store.read_all(1, 1_000_000).await.expect("read all").len()
}

async fn append_then_read_stream_both_ways(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-1");
    let written = events(5);
    let result = store.append(&s, ExpectedVersion::NoStream, &written, &meta()).await.unwrap();
    assert_eq!(
        result,
        AppendResult {
            first_version: 1,
            last_version: 5,
            first_position: 1,
            last_position: 5,
            repeated: false
        }
    );

    let forward = store.read_stream(&s, 2, Direction::Forward, 2).await.unwrap();
    assert_eq!(forward.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [2, 3]);
    let backward = store.read_stream(&s, u64::MAX, Direction::Backward, 10).await.unwrap();
    assert_eq!(backward.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [5, 4, 3, 2, 1]);

    let first = &forward[0];
    assert_eq!(first.event_id, written[1].event_id);
    assert_eq!(first.event_type, "Thing");
    assert_eq!(first.schema_version, 1);
    assert_eq!(first.payload, json!({ "n": 2 }));
    assert_eq!(first.metadata, meta());
    assert_eq!(first.category(), "thing");
    assert_eq!(backward[4].prev_hash, GENESIS);
    assert_eq!(backward[3].prev_hash, backward[4].hash, "each event chains onto the last");
    assert_eq!(store.stream_version(&s).await.unwrap(), 5);
    assert_eq!(store.stream_version(&stream("thing-none")).await.unwrap(), 0);
    assert!(store
        .read_stream(&stream("thing-none"), 1, Direction::Forward, 9)
        .await
        .unwrap()
        .is_empty());
}

async fn expectations_no_stream_and_exact(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-2");
    store.append(&s, ExpectedVersion::NoStream, &events(2), &meta()).await.unwrap();
    let third = store.append(&s, ExpectedVersion::Exact(2), &events(1), &meta()).await.unwrap();
    assert_eq!(third.last_version, 3);
    let any = store.append(&s, ExpectedVersion::Any, &events(2), &meta()).await.unwrap();
    assert_eq!((any.first_version, any.last_version), (4, 5));
    let fresh = store.append(&stream("thing-3"), ExpectedVersion::Any, &events(1), &meta()).await;
    assert_eq!(fresh.unwrap().last_version, 1);
}

async fn wrong_expected_version_reports_actual_and_writes_nothing(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-4");
    store.append(&s, ExpectedVersion::NoStream, &events(3), &meta()).await.unwrap();

    for expected in
        [ExpectedVersion::NoStream, ExpectedVersion::Exact(2), ExpectedVersion::Exact(9)]
    {
        let error = store.append(&s, expected, &events(2), &meta()).await.unwrap_err();
        assert!(error.is_conflict(), "{error}");
        match error {
            StoreError::WrongExpectedVersion { actual, expected: reported, .. } => {
                assert_eq!(actual, 3);
                assert_eq!(reported, expected);
            }
            other => panic!("expected a conflict, got {other}"),
        }
    }
    let missing =
        store.append(&stream("thing-5"), ExpectedVersion::Exact(1), &events(1), &meta()).await;
    assert!(matches!(missing, Err(StoreError::WrongExpectedVersion { actual: 0, .. })));
    assert_eq!(count_all(&store).await, 3);
}

async fn multi_event_append_is_atomic(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-6");
    store.append(&s, ExpectedVersion::NoStream, &events(1), &meta()).await.unwrap();
    // The third event reuses an id stored elsewhere: the whole append must fail.
    let taken = store.read_stream(&s, 1, Direction::Forward, 1).await.unwrap()[0].event_id;
    let mut batch = events(4);
    batch[2].event_id = taken;
    let error = store.append(&stream("thing-7"), ExpectedVersion::Any, &batch, &meta()).await;
    assert!(matches!(error, Err(StoreError::IdempotencyMismatch { .. })), "{error:?}");
    // A batch with one oversized payload fails before anything is written.
    let mut batch = events(3);
    batch[1].payload = json!({ "blob": "x".repeat(Limits::default().max_payload_bytes) });
    let error = store.append(&stream("thing-7"), ExpectedVersion::Any, &batch, &meta()).await;
    assert!(matches!(error, Err(StoreError::LimitExceeded { .. })), "{error:?}");
    assert_eq!(count_all(&store).await, 1);
    assert_eq!(store.stream_version(&stream("thing-7")).await.unwrap(), 0);
}

async fn retried_append_returns_first_result_and_stores_nothing(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-8");
    store.append(&s, ExpectedVersion::NoStream, &events(2), &meta()).await.unwrap();
    let batch = events(3);
    let first = store.append(&s, ExpectedVersion::Exact(2), &batch, &meta()).await.unwrap();
    store.append(&stream("thing-9"), ExpectedVersion::Any, &events(1), &meta()).await.unwrap();
    // The retry carries the same stale expectation; it must still get the original answer.
    let again = store.append(&s, ExpectedVersion::Exact(2), &batch, &meta()).await.unwrap();
    assert!(!first.repeated && again.repeated);
    assert_eq!(AppendResult { repeated: false, ..again }, first);
    let any = store.append(&s, ExpectedVersion::Any, &batch, &meta()).await.unwrap();
    assert_eq!(any, again);
    assert_eq!(count_all(&store).await, 6);

    // Two clients racing the same append: both get the same answer, one copy is stored.
    let (batch, metadata) = (events(2), meta());
    let (a, b) = tokio::join!(
        store.append(&s, ExpectedVersion::Any, &batch, &metadata),
        store.append(&s, ExpectedVersion::Any, &batch, &metadata),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(AppendResult { repeated: false, ..a }, AppendResult { repeated: false, ..b });
    assert!(a.repeated != b.repeated, "exactly one of them wrote: {a:?} {b:?}");
    assert_eq!(count_all(&store).await, 8);
}

async fn partial_or_misplaced_retry_is_refused(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-10");
    let batch = events(2);
    store.append(&s, ExpectedVersion::NoStream, &batch, &meta()).await.unwrap();

    let overlapping = vec![batch[1].clone(), event(3)];
    let error = store.append(&s, ExpectedVersion::Any, &overlapping, &meta()).await.unwrap_err();
    assert!(matches!(error, StoreError::IdempotencyMismatch { .. }), "{error}");

    let elsewhere = store.append(&stream("thing-11"), ExpectedVersion::Any, &batch, &meta()).await;
    assert!(matches!(elsewhere, Err(StoreError::IdempotencyMismatch { .. })));

    let reordered = vec![batch[1].clone(), batch[0].clone()];
    let error = store.append(&s, ExpectedVersion::Any, &reordered, &meta()).await.unwrap_err();
    assert!(matches!(error, StoreError::IdempotencyMismatch { .. }), "{error}");

    let twice = vec![batch[0].clone(), batch[0].clone()];
    let error = store.append(&stream("thing-12"), ExpectedVersion::Any, &twice, &meta()).await;
    assert!(matches!(error, Err(StoreError::DuplicateEventId { .. })));
    assert_eq!(count_all(&store).await, 2);
}

async fn conditions_guard_an_append(db: &TestDatabase) {
    let store = open(db).await;
    let (read, other) = (stream("thing-read"), stream("thing-other"));
    store.append(&read, ExpectedVersion::NoStream, &events(2), &meta()).await.unwrap();
    // A group of one append, for its conditions.
    let submit_if = |events: Vec<NewEvent>, conditions: Vec<Condition>| {
        let (store, other) = (store.clone(), other.clone());
        async move {
            let append = Append {
                stream_id: other,
                expected: ExpectedVersion::Any,
                events,
                metadata: meta(),
                conditions,
            };
            store.submit_group(&[append])?.await.pop().expect("one outcome")
        }
    };
    let append_if = |conditions| submit_if(vec![event(1)], conditions);
    let at = |version| Condition::StreamAt { stream_id: read.clone(), version };

    // What was read is unchanged: written. Changed since: refused, nothing written.
    append_if(vec![at(2)]).await.unwrap();
    let error = append_if(vec![at(1)]).await.unwrap_err();
    assert!(matches!(error, StoreError::ConditionFailed(_)) && error.is_conflict(), "{error}");
    let error = append_if(vec![Condition::StreamAt { stream_id: stream("nothing"), version: 1 }])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::ConditionFailed(_)), "{error}");
    assert_eq!(store.stream_version(&other).await.unwrap(), 1);

    // Absent: refused once any of the named events is stored.
    let stored = event(9);
    let fresh = Uuid::now_v7();
    append_if(vec![Condition::Absent(vec![fresh])]).await.unwrap();
    store
        .append(&read, ExpectedVersion::Any, std::slice::from_ref(&stored), &meta())
        .await
        .unwrap();
    let error = append_if(vec![Condition::Absent(vec![fresh, stored.event_id])]).await.unwrap_err();
    assert!(matches!(error, StoreError::ConditionFailed(_)), "{error}");

    assert_eq!(store.stream_version(&other).await.unwrap(), 2);

    // A retry of a stored append gets its result, whatever its conditions say now.
    let once = event(20);
    let first = submit_if(vec![once.clone()], vec![at(3)]).await.unwrap();
    let again = submit_if(vec![once], vec![at(1)]).await.unwrap();
    assert!(again.repeated && again.last_position == first.last_position);

    // NoneSince: refused once an event of the named types follows the version, stored or
    // earlier in the batch; other types after it do not conflict.
    let (level, contact) = ("LevelChanged", "Contacted");
    let none_since = |version| Condition::NoneSince {
        stream_id: read.clone(),
        version,
        event_types: vec![level.to_owned(), "Erased".to_owned()],
    };
    let head = store.stream_version(&read).await.unwrap();
    let typed = |event_type: &str| NewEvent::new(Uuid::now_v7(), event_type, 1, json!({}));
    store.append(&read, ExpectedVersion::Any, &[typed(contact)], &meta()).await.unwrap();
    append_if(vec![none_since(head)]).await.unwrap();
    store.append(&read, ExpectedVersion::Any, &[typed(level)], &meta()).await.unwrap();
    store.append(&read, ExpectedVersion::Any, &[typed(contact)], &meta()).await.unwrap();
    let error = append_if(vec![none_since(head)]).await.unwrap_err();
    assert!(matches!(error, StoreError::ConditionFailed(_)) && error.is_conflict(), "{error}");
    let after_level = store.stream_version(&read).await.unwrap();
    append_if(vec![none_since(after_level - 1)]).await.unwrap();
    append_if(vec![none_since(after_level + 5)]).await.unwrap();
    let in_batch = Append {
        stream_id: read.clone(),
        expected: ExpectedVersion::Any,
        events: vec![typed(level)],
        metadata: meta(),
        conditions: Vec::new(),
    };
    let guarded = Append {
        stream_id: other.clone(),
        expected: ExpectedVersion::Any,
        events: vec![event(30)],
        metadata: meta(),
        conditions: vec![none_since(after_level)],
    };
    let outcomes = store.submit_group(&[in_batch, guarded]).unwrap().await;
    assert!(
        matches!(outcomes[1], Err(StoreError::ConditionFailed(_))),
        "a level change earlier in the group: {outcomes:?}"
    );
    assert_eq!(store.stream_version(&other).await.unwrap(), 6);
}

async fn a_group_is_written_whole_or_not_at_all(db: &TestDatabase) {
    let store = open(db).await;
    let (first, second) = (stream("thing-g1"), stream("thing-g2"));
    let member = |stream_id: &StreamId, expected| Append {
        stream_id: stream_id.clone(),
        expected,
        events: events(2),
        metadata: meta(),
        conditions: Vec::new(),
    };
    let group =
        [member(&first, ExpectedVersion::NoStream), member(&second, ExpectedVersion::NoStream)];
    let outcomes = store.submit_group(&group).unwrap().await;
    let written: Vec<AppendResult> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        written[1].first_position,
        written[0].last_position + 1,
        "one transaction, in order"
    );
    assert!(written.iter().all(|w| !w.repeated && w.last_version == 2));

    // One member refused: the other is not written either.
    let broken =
        [member(&first, ExpectedVersion::Exact(2)), member(&second, ExpectedVersion::Exact(7))];
    let outcomes = store.submit_group(&broken).unwrap().await;
    assert!(matches!(outcomes[0], Err(StoreError::GroupIncomplete)), "{outcomes:?}");
    assert!(matches!(outcomes[1], Err(StoreError::WrongExpectedVersion { actual: 2, .. })));
    assert_eq!(store.stream_version(&first).await.unwrap(), 2);
    assert_eq!(count_all(&store).await, 4);

    // A retried group gets its first answers; nothing is stored twice.
    let again = store.submit_group(&group).unwrap().await;
    let again: Vec<AppendResult> = again.into_iter().map(Result::unwrap).collect();
    assert!(again.iter().all(|w| w.repeated));
    assert_eq!(again[1].last_position, written[1].last_position);
    assert_eq!(count_all(&store).await, 4);
    assert!(matches!(store.submit_group(&[]), Err(StoreError::EmptyAppend)));
}

async fn read_all_pages_by_position(db: &TestDatabase) {
    let store = open(db).await;
    for i in 0..5 {
        let s = stream(&format!("thing-{i}"));
        store.append(&s, ExpectedVersion::Any, &events(3), &meta()).await.unwrap();
    }
    let page = store.read_all(4, 5).await.unwrap();
    assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), [4, 5, 6, 7, 8]);
    assert_eq!(page[0].stream_id, "thing-1");
    assert_eq!(page[0].stream_version, 1);
    assert!(store.read_all(16, 5).await.unwrap().is_empty());
    assert_eq!(store.head_position().await.unwrap(), 15);
}

async fn subscribe_catches_up_then_goes_live_and_resumes(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-sub");
    store.append(&s, ExpectedVersion::Any, &events(3), &meta()).await.unwrap();

    let mut subscription = Box::pin(store.subscribe(0));
    for expected in 1..=3 {
        assert_eq!(next(&mut subscription).await, expected);
    }
    let writer = store.clone();
    let s2 = s.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.append(&s2, ExpectedVersion::Any, &events(2), &meta()).await.unwrap();
    });
    assert_eq!(next(&mut subscription).await, 4, "live event arrives");
    assert_eq!(next(&mut subscription).await, 5);
    drop(subscription);

    // Resume where we stopped, from a second handle (as another process would).
    let other = open(db).await;
    let mut resumed = Box::pin(other.subscribe(4));
    assert_eq!(next(&mut resumed).await, 4);
    assert_eq!(next(&mut resumed).await, 5);
    store.append(&s, ExpectedVersion::Any, &events(1), &meta()).await.unwrap();
    assert_eq!(next(&mut resumed).await, 6, "a write through another handle wakes us");
}

async fn next<S>(subscription: &mut S) -> u64
where
    S: futures::Stream<Item = Result<kefu_event_store::RecordedEvent, StoreError>> + Unpin,
{
    let event = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("event within 10 s")
        .expect("subscription open")
        .expect("no error");
    event.position
}

/// 8 writers × 500 events over shared and own streams; a quarter of the writes go
/// through a handle that sleeps between insert and commit. A live subscriber must see
/// every committed event exactly once, in position order, with no gap.
async fn concurrent_writers_and_late_commits_reach_subscriber_exactly_once(db: &TestDatabase) {
    const WRITERS: u64 = 8;
    const PER_WRITER: u64 = 500;
    let store = open(db).await;
    let late = EventStore::open(
        db.url(),
        StoreOptions { commit_delay: Some(Duration::from_millis(3)), ..StoreOptions::default() },
    )
    .await
    .unwrap();

    let total = usize::try_from(WRITERS * PER_WRITER).unwrap();
    let subscriber = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::with_capacity(total);
            let mut subscription = Box::pin(store.subscribe(1));
            while seen.len() < total {
                let event = tokio::time::timeout(Duration::from_secs(60), subscription.next())
                    .await
                    .expect("subscriber starved")
                    .expect("subscription open")
                    .expect("no error");
                seen.push(event);
            }
            seen
        })
    };

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (store, late) = (store.clone(), late.clone());
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..PER_WRITER {
                let s = if i % 2 == 0 {
                    stream(&format!("shared-{}", i % 3))
                } else {
                    stream(&format!("own-{writer}"))
                };
                let handle = if i % 4 == writer % 4 { &late } else { &store };
                let e = event(i);
                handle
                    .append(&s, ExpectedVersion::Any, std::slice::from_ref(&e), &meta())
                    .await
                    .unwrap();
                written.push(e.event_id);
            }
            written
        }));
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    let seen = subscriber.await.unwrap();

    let positions: Vec<u64> = seen.iter().map(|e| e.position).collect();
    let expected: Vec<u64> = (1..=WRITERS * PER_WRITER).collect();
    assert_eq!(positions, expected, "every position once, in order, no gap");
    let seen_ids: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(seen_ids, written, "exactly the committed events");
    let mut versions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for e in &seen {
        versions.entry(&e.stream_id).or_default().push(e.stream_version);
    }
    for (stream_id, versions) in versions {
        let expected: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, expected, "stream {stream_id} versions are gap-free in order");
        let verification = store.verify_stream(&stream(stream_id)).await.unwrap();
        assert!(matches!(verification, Verification::Intact { .. }), "{verification:?}");
    }
}

async fn concurrent_any_appends_to_one_stream_all_land(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-hot");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                for _ in 0..10 {
                    store.append(&s, ExpectedVersion::Any, &events(2), &meta()).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.stream_version(&s).await.unwrap(), 320);
    assert!(matches!(
        store.verify_stream(&s).await.unwrap(),
        Verification::Intact { events: 320, .. }
    ));
}

async fn racing_exact_appends_let_exactly_one_win(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-race");
    store.append(&s, ExpectedVersion::NoStream, &events(1), &meta()).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                store.append(&s, ExpectedVersion::Exact(1), &events(2), &meta()).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(result) => {
                wins += 1;
                assert_eq!(result.last_version, 3);
            }
            Err(StoreError::WrongExpectedVersion { actual: 3, .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.stream_version(&s).await.unwrap(), 3);
}

async fn database_refuses_update_and_delete(db: &TestDatabase) {
    let store = open(db).await;
    store.append(&stream("thing-ro"), ExpectedVersion::Any, &events(2), &meta()).await.unwrap();
    let attempts = [
        "UPDATE events SET payload = '{}' WHERE position = 1",
        "DELETE FROM events WHERE position = 2",
        "DELETE FROM events",
    ];
    for sql in attempts {
        assert!(raw_execute(&store, sql).await.is_err(), "{sql} must be refused");
    }
    if matches!(store.database(), Database::Postgres(_)) {
        assert!(raw_execute(&store, "TRUNCATE events").await.is_err(), "TRUNCATE must be refused");
    }
    assert_eq!(count_all(&store).await, 2);
    assert_eq!(store.read_all(1, 1).await.unwrap()[0].payload, json!({ "n": 1 }));
}

async fn raw_execute(store: &EventStore, sql: &str) -> Result<u64, sqlx::Error> {
    match store.database() {
        Database::Sqlite { writer, .. } => {
            sqlx::query(sql).execute(&writer).await.map(|r| r.rows_affected())
        }
        Database::Postgres(pool) => {
            sqlx::query(sql).execute(&pool).await.map(|r| r.rows_affected())
        }
    }
}

async fn verify_stream_names_the_tampered_version(db: &TestDatabase) {
    let store = open(db).await;
    let victim = stream("thing-victim");
    let bystander = stream("thing-bystander");
    store.append(&victim, ExpectedVersion::NoStream, &events(5), &meta()).await.unwrap();
    store.append(&bystander, ExpectedVersion::NoStream, &events(5), &meta()).await.unwrap();
    let intact = store.verify_stream(&victim).await.unwrap();
    let Verification::Intact { events: 5, head_hash } = intact else { panic!("{intact:?}") };
    let last = store.read_stream(&victim, u64::MAX, Direction::Backward, 1).await.unwrap();
    assert_eq!(head_hash, last[0].hash);

    // Behind the store's back, as a superuser would: lift the guard and rewrite version 3.
    let tamper = match store.database() {
        Database::Sqlite { .. } => vec![
            "DROP TRIGGER events_reject_update",
            "UPDATE events SET payload = '{\"n\":33}' WHERE stream_id = 'thing-victim' AND stream_version = 3",
        ],
        Database::Postgres(_) => vec![
            "ALTER TABLE events DISABLE TRIGGER events_reject_update",
            "UPDATE events SET payload = '{\"n\":33}' WHERE stream_id = 'thing-victim' AND stream_version = 3",
        ],
    };
    for sql in tamper {
        raw_execute(&store, sql).await.unwrap();
    }
    assert_eq!(
        store.verify_stream(&victim).await.unwrap(),
        Verification::Broken { version: 3, reason: BrokenReason::HashMismatch }
    );
    assert!(matches!(
        store.verify_stream(&bystander).await.unwrap(),
        Verification::Intact { events: 5, .. }
    ));
    assert_eq!(
        store.verify_stream(&stream("thing-empty")).await.unwrap(),
        Verification::Intact { events: 0, head_hash: GENESIS }
    );

    // Overwriting a stored hash is caught at that very version.
    let forge =
        "UPDATE events SET hash = X'00' WHERE stream_id = 'thing-bystander' AND stream_version = 2";
    let forge = match store.database() {
        Database::Sqlite { .. } => forge.to_owned(),
        Database::Postgres(_) => forge.replace("X'00'", "'\\x00'::bytea"),
    };
    raw_execute(&store, &forge).await.unwrap();
    assert_eq!(
        store.verify_stream(&bystander).await.unwrap(),
        Verification::Broken { version: 2, reason: BrokenReason::HashMismatch }
    );
}

async fn limits_are_enforced_before_writing(db: &TestDatabase) {
    let limits = Limits {
        max_events_per_append: 3,
        max_payload_bytes: 64,
        max_metadata_bytes: 128,
        max_event_type_len: 10,
    };
    let store = EventStore::open(db.url(), StoreOptions { limits, ..StoreOptions::default() })
        .await
        .unwrap();
    let s = stream("thing-limits");
    let too_many = store.append(&s, ExpectedVersion::Any, &events(4), &meta()).await;
    assert!(matches!(
        too_many,
        Err(StoreError::LimitExceeded { what: "events per append", limit: 3, actual: 4 })
    ));
    let big = NewEvent::new(Uuid::now_v7(), "Thing", 1, json!({ "x": "y".repeat(100) }));
    let too_big = store.append(&s, ExpectedVersion::Any, &[big], &meta()).await;
    assert!(matches!(too_big, Err(StoreError::LimitExceeded { what: "payload bytes", .. })));
    let long_type = NewEvent::new(Uuid::now_v7(), "ThingHappenedAgain", 1, json!({}));
    let too_long = store.append(&s, ExpectedVersion::Any, &[long_type], &meta()).await;
    assert!(matches!(too_long, Err(StoreError::LimitExceeded { what: "event type bytes", .. })));
    let chatty = Metadata { actor: Some("z".repeat(200)), ..Metadata::default() };
    let too_chatty = store.append(&s, ExpectedVersion::Any, &events(1), &chatty).await;
    assert!(matches!(too_chatty, Err(StoreError::LimitExceeded { what: "metadata bytes", .. })));
    let empty = store.append(&s, ExpectedVersion::Any, &[], &meta()).await;
    assert!(matches!(empty, Err(StoreError::EmptyAppend)));
    assert_eq!(count_all(&store).await, 0);
}

async fn invalid_names_and_numbers_are_refused(db: &TestDatabase) {
    let store = open(db).await;
    assert!(matches!(StreamId::new(""), Err(StoreError::InvalidStreamId { .. })));
    assert!(matches!(StreamId::new("has space"), Err(StoreError::InvalidStreamId { .. })));
    assert!(matches!(StreamId::new("x".repeat(201)), Err(StoreError::LimitExceeded { .. })));
    assert_eq!(StreamId::new("complaint-0193-ab").unwrap().category(), "complaint");
    let s = stream("thing-n");
    let huge = store.append(&s, ExpectedVersion::Exact(u64::MAX), &events(1), &meta()).await;
    assert!(matches!(huge, Err(StoreError::OutOfRange { .. })));
    let bad_type = NewEvent::new(Uuid::now_v7(), "bad type", 1, json!({}));
    let refused = store.append(&s, ExpectedVersion::Any, &[bad_type], &meta()).await;
    assert!(matches!(refused, Err(StoreError::InvalidEventType { .. })));
    assert!(matches!(store.read_all(u64::MAX, 1).await, Err(StoreError::OutOfRange { .. })));
    assert_eq!(count_all(&store).await, 0);
}

/// A client that hangs up cancels its append at any await point (gRPC drops the
/// handler's future). Nothing half-done may linger: later appends must work and the
/// cancelled ones are either whole or absent.
async fn cancelled_appends_leave_the_store_usable(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-cancel");
    for attempt in 0u64..60 {
        let (store, s) = (store.clone(), s.clone());
        let task = tokio::spawn(async move {
            store.append(&s, ExpectedVersion::Any, &events(3), &meta()).await
        });
        tokio::time::sleep(Duration::from_micros(attempt * 37 % 400)).await;
        task.abort();
        let _ = task.await;
    }
    let result = store.append(&s, ExpectedVersion::Any, &events(1), &meta()).await.unwrap();
    assert_eq!((result.last_version - 1) % 3, 0, "only whole appends of three landed");
    assert!(matches!(store.verify_stream(&s).await.unwrap(), Verification::Intact { .. }));
}

async fn read_range_filters_by_type_within_positions(db: &TestDatabase) {
    let store = open(db).await;
    let s = stream("thing-range");
    let mixed: Vec<NewEvent> = (0..6u64)
        .map(|n| {
            NewEvent::new(
                Uuid::now_v7(),
                if n % 2 == 0 { "Even" } else { "Odd" },
                1,
                json!({ "n": n }),
            )
        })
        .collect();
    store.append(&s, ExpectedVersion::NoStream, &mixed, &meta()).await.unwrap();
    let all = store.read_range(2, 5, &[]).await.unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), [2, 3, 4, 5]);
    let odd = store.read_range(1, 6, &["Odd"]).await.unwrap();
    assert_eq!(odd.iter().map(|e| e.position).collect::<Vec<_>>(), [2, 4, 6]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&odd[0].payload).unwrap(),
        json!({ "n": 1 })
    );
    assert_eq!(odd[0], all[0], "the same event either way");
    assert!(store.read_range(7, 100, &[]).await.unwrap().is_empty());
    assert!(store.read_range(1, 6, &["Neither"]).await.unwrap().is_empty());
}

/// Group commit: appends that arrive together share one transaction, yet each keeps
/// its own atomicity and its own expected-version outcome.
async fn group_commit_batches_yet_answers_each_append_alone(db: &TestDatabase) {
    // Commits are held a while, so appends pile up behind each one.
    let store = EventStore::open(
        db.url(),
        StoreOptions { commit_delay: Some(Duration::from_millis(20)), ..StoreOptions::default() },
    )
    .await
    .unwrap();
    let before = store.commits();
    let mut tasks = Vec::new();
    for n in 0..40u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Ten racers for one new stream (one may win), thirty on streams of their own.
            let (name, events) = if n < 10 {
                ("contested".to_owned(), vec![event(n), event(n + 100)])
            } else {
                (format!("own-{n}"), vec![event(n)])
            };
            store.append(&stream(&name), ExpectedVersion::NoStream, &events, &meta()).await
        }));
    }
    let mut won = 0;
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(result) if n < 10 => {
                won += 1;
                assert_eq!((result.first_version, result.last_version), (1, 2));
            }
            Ok(result) => assert_eq!(result.last_version, 1),
            Err(error) => {
                assert!(n < 10 && error.is_conflict(), "append {n}: {error}");
            }
        }
    }
    assert_eq!(won, 1, "exactly one racer creates the contested stream");
    let contested =
        store.read_stream(&stream("contested"), 1, Direction::Forward, 10).await.unwrap();
    assert_eq!(contested.len(), 2, "the winner's two events, nothing of the losers");
    assert_eq!(count_all(&store).await, 32);
    let commits = store.commits() - before;
    assert!(commits < 31, "31 successful appends shared {commits} commits");
}

/// PostgreSQL only (SQLite plans without table sizes): the writer analyzes a young log as
/// it passes 100, 1,000 and 10,000 events, so no connection keeps a sequential-scan plan
/// made while the table was empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_analyzes_a_young_log_as_it_grows() {
    let Some(db) = kefu_testkit::postgres().await else { return };
    let store = open(&db).await;
    let Database::Postgres(pool) = store.database() else { panic!("a PostgreSQL store") };
    // Manual analyses only; autovacuum's are counted apart (autoanalyze_count).
    let analyses = || async {
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'events'",
        )
        .fetch_optional(&pool)
        .await
        .expect("read table statistics");
        count.unwrap_or(0)
    };
    let log = stream("young-1");
    store.append(&log, ExpectedVersion::Any, &events(50), &meta()).await.expect("append");
    assert_eq!(analyses().await, 0, "50 events cross no size");
    // One append from 50 to 1,049 crosses both 100 and 1,000: one ANALYZE.
    store.append(&log, ExpectedVersion::Any, &events(999), &meta()).await.expect("append");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // The statistics collector publishes counts within a second or so.
    while analyses().await == 0 {
        assert!(std::time::Instant::now() < deadline, "the young log was never analyzed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(analyses().await, 1, "one ANALYZE per append that crosses sizes");
}

/// SQLite: commits never copy the WAL into the database file themselves
/// (`wal_autocheckpoint=0`); a background checkpoint does, so the file catches up alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let db = kefu_testkit::sqlite();
    let store = open(&db).await;
    let path = db.sqlite_path().expect("an SQLite file");
    let size = || std::fs::metadata(&path).expect("database file").len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = size();
    // About half a megabyte of pages: fewer than SQLite's own 1,000-page threshold.
    for n in 0..50 {
        store
            .append(&stream(&format!("thing-w{n}")), ExpectedVersion::Any, &events(20), &meta())
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size() < before + 100_000 {
        assert!(std::time::Instant::now() < deadline, "the WAL was not checkpointed: {}", size());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
