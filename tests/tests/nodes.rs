//! Two kefu nodes on one database: commands on the same cases from both lose no update
//! (each node decides on the log, never on a stale cache), subscriptions through either
//! node deliver the same order, and on PostgreSQL each projection runs on exactly one
//! node, the other taking over when it stops.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{reason, rid, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    two_nodes_lose_no_update_and_agree_on_the_order,
    a_customer_forgotten_on_one_node_gets_no_filing_on_the_other
);

fn investigation(case: &str, expected_version: Option<u64>) -> pb::RecordInvestigationRequest {
    pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: case.to_owned(),
        expected_version,
        findings: "checked the ledger".into(),
    }
}

async fn order(clients: &mut Clients, n: usize) -> Vec<(u64, String)> {
    let mut stream = clients
        .events
        .subscribe(pb::SubscribeRequest { from_position: 1, categories: vec![] })
        .await
        .expect("subscribe")
        .into_inner();
    let mut seen = Vec::with_capacity(n);
    while seen.len() < n {
        let event = stream.next().await.expect("more events").expect("event").event.expect("event");
        seen.push((event.position, event.event_id));
    }
    seen
}

async fn two_nodes_lose_no_update_and_agree_on_the_order(app: &TestApp) {
    standard_staff(app).await;
    let node = app.second_node().await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let customer = register_customer(&mut agent, "Two Nodes").await;
    let (case, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    supervisor.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");
    let mut on_a = app.clients(Some("h1")).await;
    let mut on_b = node.clients(Some("h1")).await;

    // Alternating nodes with expectations: each sees the other's write.
    let mut version = 2;
    for turn in 0..6 {
        let node_clients = if turn % 2 == 0 { &mut on_a } else { &mut on_b };
        let written = node_clients
            .complaints
            .record_investigation(investigation(&case, Some(version)))
            .await
            .unwrap_or_else(|status| panic!("turn {turn}: {status:?}"));
        version = written.into_inner().result.expect("result").version;
    }
    assert_eq!(version, 8);
    // A stale expectation is refused by either node, with the actual version.
    let stale = on_b
        .complaints
        .record_investigation(investigation(&case, Some(3)))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);

    // Racing without expectations: every command lands, none is lost.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut clients = if i % 2 == 0 { on_a.clone() } else { on_b.clone() };
        let case = case.clone();
        tasks.push(tokio::spawn(async move {
            // A client retries what the server reports as contended (ABORTED).
            let request = investigation(&case, None);
            loop {
                match clients.complaints.record_investigation(request.clone()).await {
                    Err(status) if status.code() == Code::Aborted => continue,
                    outcome => return outcome,
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("racing command lands");
    }
    let mut compliance = app.clients(Some("co1")).await;
    let mut replay = compliance
        .audit
        .replay_case(pb::ReplayCaseRequest { complaint: case.clone() })
        .await
        .expect("replay")
        .into_inner();
    let mut events = 0;
    while let Some(event) = replay.next().await {
        event.expect("event");
        events += 1;
    }
    assert_eq!(events, 28, "filing, assignment, 6 alternating and 20 racing investigations");

    // Subscriptions through either node deliver the same order.
    let mut service_a = app.clients(Some("svc-web")).await;
    let mut service_b = node.clients(Some("svc-web")).await;
    let head = 20;
    assert_eq!(order(&mut service_a, head).await, order(&mut service_b, head).await);

    node.stop().await;
}

/// A node files without reading the customer when it has seen them live (R-C8 must
/// still hold): the other node's erasure is seen by the writer's condition, not missed.
async fn a_customer_forgotten_on_one_node_gets_no_filing_on_the_other(app: &TestApp) {
    standard_staff(app).await;
    let node = app.second_node().await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Forgotten Elsewhere").await;
    file(&mut agent, &customer, pb::Severity::Normal, "").await;
    let mut compliance = node.clients(Some("co1")).await;
    compliance
        .customers
        .forget_customer(pb::ForgetCustomerRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            reason: "erasure request".into(),
        })
        .await
        .expect("forget on the second node");
    let refused = agent
        .complaints
        .file_complaint(file_request(&customer, pb::Severity::Normal, ""))
        .await
        .expect_err("the customer is forgotten");
    assert_eq!(reason(&refused).as_deref(), Some("CUSTOMER_FORGOTTEN"), "{refused:?}");
    node.stop().await;
}

/// Advisory locks held by the projection runners, as `(pid, lock key)`.
async fn leases(url: &str) -> Vec<(i32, i64)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_as(
        "SELECT pid, ((classid::bigint << 32) | objid::bigint) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND database = \
         (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(&mut conn)
    .await
    .expect("pg_locks")
}

/// PostgreSQL: each projection runs on exactly one node; when that node stops, the
/// other takes its leases within seconds and goes on projecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_leases_move_to_the_surviving_node() {
    let Some(app) = kefu_tests::spawn_app(kefu_testkit::Backend::Postgres).await else { return };
    standard_staff(&app).await;
    let node = app.second_node().await;
    let url = app.db.url().to_owned();
    let mut agent = node.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Lease Holder").await;
    let held = leases(&url).await;
    let projections = kefu_projection::all_projections().len();
    assert_eq!(held.len(), projections, "each projection runs on one node: {held:?}");
    // The first server started first and holds them; stop it (keeping its database).
    let db = app.stop_keeping_database().await;
    let started = Instant::now();
    loop {
        let now = leases(&url).await;
        if now.len() == projections && now.iter().all(|lease| !held.contains(lease)) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "leases not taken over: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("projection leases taken over in {:?}", started.elapsed());
    // The survivor projects what is written after the takeover.
    let filed = agent
        .complaints
        .file_complaint(file_request(&customer, pb::Severity::Normal, ""))
        .await
        .expect("file after the takeover")
        .into_inner();
    let position = filed.result.expect("result").position;
    let mut supervisor = node.clients(Some("s1")).await;
    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            customer_id: customer,
            min_position: position,
            ..Default::default()
        })
        .await
        .expect("the survivor projects new events")
        .into_inner();
    assert_eq!(listed.complaints.len(), 1);
    node.stop().await;
    drop(db);
}
