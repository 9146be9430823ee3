//! Projection isolation and leases, on SQLite and PostgreSQL: a projection that cannot
//! apply a stored event stops alone and says where and why, waits on it fail at once,
//! it resumes after a fix; a rebuild racing a live runner on another node applies every
//! event exactly once.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kefu_domain::complaint::{Actor, ComplaintCommand, RecordInvestigation};
use kefu_domain::{CallbackOutcome, IntakeChannel, Severity, StaffRole, Tier};
use kefu_event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use kefu_projection::sql::DbTx;
use kefu_projection::{
    all_projections, Complaints, Customers, Event, Projection, ProjectionError, ReadModels, Runner,
    StaffDirectory,
};
use kefu_testkit::TestDatabase;
use support::*;
use uuid::Uuid;

kefu_testkit::on_both_databases!(
    workers = 2;
    a_projection_that_cannot_apply_an_event_stops_alone,
    a_rebuild_racing_a_live_runner_applies_every_event_once,
    a_case_number_issued_twice_in_an_old_log_stops_nothing,
);

fn customer_spec() -> NewCustomer {
    NewCustomer { tier: Tier::Regular, stars: None, referred_by: None, registered: t(0) }
}

/// A `ComplaintFiled` whose payload the complaints read model cannot decode: stored as
/// any event is (the log takes any JSON), read by `complaints` only.
async fn append_unreadable_filing(store: &EventStore) -> u64 {
    let stream = StreamId::new(format!("complaint-{}", Uuid::now_v7())).unwrap();
    let event =
        NewEvent::new(Uuid::now_v7(), "ComplaintFiled", 1, serde_json::json!({"refused": true}));
    let appended = store
        .append(&stream, ExpectedVersion::NoStream, &[event], &Metadata::default())
        .await
        .unwrap();
    appended.last_position
}

/// The complaints projection of a later binary that knows what to do with the event the
/// first could not apply (here: it skips it), under the same name and version.
struct FixedComplaints {
    unreadable: u64,
}

impl Projection for FixedComplaints {
    fn name(&self) -> &'static str {
        Complaints::default().name()
    }
    fn version(&self) -> u32 {
        Complaints::default().version()
    }
    fn event_types(&self) -> &'static [&'static str] {
        Complaints::default().event_types()
    }
    fn tables(&self) -> &'static [&'static str] {
        Complaints::default().tables()
    }
    fn shared_tables(&self) -> &'static [(&'static str, &'static str)] {
        Complaints::default().shared_tables()
    }
    fn apply<'a>(
        &'a self,
        tx: &'a mut DbTx,
        events: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let readable: Vec<&Event> =
                events.iter().copied().filter(|e| e.position != self.unreadable).collect();
            Complaints::default().apply(tx, &readable).await
        })
    }
}

async fn a_projection_that_cannot_apply_an_event_stops_alone(db: &TestDatabase) {
    let store = open(db).await;
    register_staff(&store, "a1", StaffRole::Agent).await;
    let before = register_customer(&store, "before", customer_spec()).await;
    let unreadable = append_unreadable_filing(&store).await;
    let after = register_customer(&store, "after", customer_spec()).await;
    customer_callback(&store, after, CallbackOutcome::Satisfied, Some(5), t(1)).await;
    let head = store.head_position().await.unwrap();

    let runner = Runner::new(store.clone(), all_projections()).with_batch_size(1_000);
    let caught_up = runner.catch_up().await;
    assert!(
        matches!(
            &caught_up,
            Err(ProjectionError::Stopped { projection, position, event_type })
                if projection == "complaints" && *position == unreadable && event_type == "ComplaintFiled"
        ),
        "{caught_up:?}"
    );
    // Only complaints stopped, just before the event, saying why; the others went on.
    let status = runner.status().await.unwrap();
    for projection in &status {
        match projection.name {
            "complaints" => {
                assert_eq!(projection.position, unreadable - 1, "{projection:?}");
                let stopped = projection.stopped.as_ref().expect("complaints stopped");
                assert_eq!(
                    (stopped.position, stopped.event_type.as_str()),
                    (unreadable, "ComplaintFiled")
                );
                assert!(stopped.error.contains("does not decode"), "{stopped:?}");
            }
            _ => assert_eq!(
                (projection.position, &projection.stopped),
                (head, &None),
                "{projection:?}"
            ),
        }
    }
    let models = ReadModels::new(runner.clone());
    for customer in [before, after] {
        let row = models.customer(&customer.to_string()).await.unwrap();
        assert!(row.is_some(), "customers went on past the event complaints cannot apply");
    }
    // A wait that needs complaints past the event fails at once, not at its deadline;
    // one below it passes.
    let blocked = models.wait_for(head, Duration::from_secs(600)).await;
    assert!(
        matches!(&blocked, Err(ProjectionError::Stopped { projection, .. }) if projection == "complaints"),
        "{blocked:?}"
    );
    models.wait_for(unreadable - 1, Duration::from_secs(600)).await.unwrap();
    // A live runner leaves it stopped, and keeps the others live.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.run(async { stopped.await.unwrap_or(()) }).await })
    };
    let later = register_customer(&store, "later", customer_spec()).await;
    let later_position = store.head_position().await.unwrap();
    let live_reach =
        ReadModels::new(Runner::new(store.clone(), vec![Arc::new(Customers::default())]));
    live_reach.wait_for(later_position, Duration::from_secs(30)).await.unwrap();
    assert!(models.customer(&later.to_string()).await.unwrap().is_some());
    stop.send(()).unwrap();
    live.await.unwrap();
    let complaints = runner.status().await.unwrap();
    assert!(complaints.iter().any(|s| s.name == "complaints" && s.stopped.is_some()));

    // A new binary that can apply it: started, the projection resumes from its checkpoint.
    let fixed: Vec<Arc<dyn Projection>> = vec![
        Arc::new(Customers::default()),
        Arc::new(FixedComplaints { unreadable }),
        Arc::new(StaffDirectory),
    ];
    let fixed = Runner::new(store.clone(), fixed);
    fixed.catch_up().await.unwrap();
    let status = fixed.status().await.unwrap();
    assert!(
        status.iter().all(|s| s.stopped.is_none() && s.position == later_position),
        "{status:?}"
    );
    ReadModels::new(fixed).wait_for(later_position, Duration::from_secs(1)).await.unwrap();
}

/// Two nodes on one database: node A runs the projections live while node B rebuilds all
/// of them again and again and events keep coming. Every event takes effect exactly
/// once: the read models equal a fresh rebuild, and the counts are exact.
async fn a_rebuild_racing_a_live_runner_applies_every_event_once(db: &TestDatabase) {
    const CUSTOMERS: usize = 40;
    let node_a = open(db).await;
    let node_b = open(db).await;
    register_staff(&node_a, "a1", StaffRole::Agent).await;
    register_staff(&node_a, "h1", StaffRole::Handler).await;
    let live = Runner::new(node_a.clone(), all_projections()).with_batch_size(2);
    live.prepare().await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live_task = {
        let live = live.clone();
        tokio::spawn(async move { live.run(async { stopped.await.unwrap_or(()) }).await })
    };
    let writer = {
        let store = node_a.clone();
        tokio::spawn(async move {
            for i in 0..CUSTOMERS {
                let id = register_customer(&store, &format!("c{i}"), customer_spec()).await;
                for hour in 1..=2 {
                    customer_callback(&store, id, CallbackOutcome::Neutral, Some(3), t(hour)).await;
                }
                // Counters a second application would double (investigations per round).
                let sequence = u32::try_from(i + 1).unwrap();
                let (phone, normal) = (IntakeChannel::Phone, Severity::Normal);
                let case =
                    Case::file(&store, sequence, id, "billing", "overcharge", phone, normal, t(1))
                        .await;
                case.assign(&store, "h1", t(2)).await;
                let investigation = ComplaintCommand::RecordInvestigation(RecordInvestigation {
                    by: Actor::handler(staff("h1")),
                    findings: text("f"),
                });
                case.run(&store, investigation, t(3)).await;
            }
        })
    };
    let rebuilder = Runner::new(node_b.clone(), all_projections()).with_batch_size(3);
    let mut rebuilds = 0;
    while !writer.is_finished() || rebuilds < 3 {
        rebuilder.rebuild_all(|_, _| {}).await.unwrap();
        rebuilds += 1;
    }
    writer.await.unwrap();
    let head = node_a.head_position().await.unwrap();
    ReadModels::new(live.clone()).wait_for(head, Duration::from_secs(60)).await.unwrap();
    stop.send(()).unwrap();
    live_task.await.unwrap();

    let incremental = live.dump().await.unwrap();
    let callbacks = incremental.iter().filter(|line| line.starts_with("rm_callbacks: ")).count();
    let customers = incremental.iter().filter(|line| line.starts_with("rm_customers: ")).count();
    let cases = incremental.iter().filter(|line| line.starts_with("rm_complaints: ")).count();
    assert_eq!((customers, callbacks, cases), (CUSTOMERS, 2 * CUSTOMERS, CUSTOMERS), "each once");
    let investigations = ReadModels::new(live.clone())
        .complaints(&Default::default(), &kefu_projection::Page { after: None, size: 500 })
        .await
        .unwrap()
        .rows
        .iter()
        .map(|row| row.round_investigations)
        .sum::<i64>();
    assert_eq!(investigations, i64::try_from(CUSTOMERS).unwrap(), "no investigation counted twice");
    let fresh = Runner::new(node_b.clone(), all_projections());
    fresh.rebuild_all(|_, _| {}).await.unwrap();
    assert_eq!(fresh.dump().await.unwrap(), incremental, "equal to a fresh rebuild, row for row");
}

/// A log written before R-P1 held by construction may hold a case number issued twice
/// (a filing straddling midnight). The log cannot change, and the read models must not
/// stop on it: the first case keeps the number, later ones are listed as `<number>/2`,
/// `/3`, in log order, whether they arrive in one batch or in several.
async fn a_case_number_issued_twice_in_an_old_log_stops_nothing(db: &TestDatabase) {
    let store = open(db).await;
    register_staff(&store, "a1", StaffRole::Agent).await;
    let customer = register_customer(&store, "twice", customer_spec()).await;
    let mut cases = Vec::new();
    for _ in 0..3 {
        let case = Case::file(
            &store,
            7,
            customer,
            "billing",
            "overcharge",
            IntakeChannel::Phone,
            Severity::Normal,
            t(1),
        )
        .await;
        cases.push(case.id.to_string());
    }
    let one_by_one = Runner::new(store.clone(), all_projections()).with_batch_size(1);
    one_by_one.catch_up().await.unwrap();
    let models = ReadModels::new(one_by_one.clone());
    let mut numbers = Vec::new();
    for case in &cases {
        let row = models.complaint(case).await.unwrap().expect("every case is listed");
        numbers.push(row.case_number);
    }
    assert_eq!(numbers, ["2026-000007", "2026-000007/2", "2026-000007/3"]);
    let first = models.complaint_by_case_number("2026-000007").await.unwrap().unwrap();
    assert_eq!(first.complaint_id, cases[0], "the number finds the case it was first issued to");
    let incremental = one_by_one.dump().await.unwrap();
    // In one batch, the same.
    let at_once = Runner::new(store.clone(), all_projections()).with_batch_size(1_000);
    at_once.rebuild_all(|_, _| {}).await.unwrap();
    assert_eq!(at_once.dump().await.unwrap(), incremental);
    assert!(at_once.status().await.unwrap().iter().all(|s| s.stopped.is_none()));
}
