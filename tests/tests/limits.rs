//! Limits protect the work that matters: with the default limits, a flood of reports
//! from a BI job is partly shed (`RESOURCE_EXHAUSTED` with a `RetryInfo`) while every
//! filing made meanwhile succeeds; finding the customer when the phone rings is never
//! rate-limited as an expensive read; one principal holding many calls open cannot take
//! the global pool from another's filings; a read cannot wait for a position nobody
//! was given; and connections do not live forever.

use std::time::Duration;

use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::{flows, spawn_app, spawn_app_with};
use tonic::Code;
use tonic_types::StatusExt;

// Every read, three times over, is more than the default burst of expensive reads: this
// test is about positions, so it runs without that rate (its own tests are below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_refuses_a_position_beyond_the_head_sqlite() {
    beyond_the_head_without_a_read_rate(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_refuses_a_position_beyond_the_head_postgres() {
    beyond_the_head_without_a_read_rate(Backend::Postgres).await;
}

async fn beyond_the_head_without_a_read_rate(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings, _| {
        settings.limits.expensive_reads_per_second = None;
    })
    .await
    else {
        return;
    };
    every_read_refuses_a_position_beyond_the_head(&app).await;
    app.stop().await;
}

const FLOOD: usize = 300;
const FILINGS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filings_succeed_while_a_report_flood_is_shed_sqlite() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    flows::standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = flows::register_customer(&mut agent, "F").await;

    let analyst = app.clients(Some("an1")).await;
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let mut analyst = analyst.clone();
            tokio::spawn(async move {
                analyst.reports.get_dashboard(pb::GetDashboardRequest::default()).await
            })
        })
        .collect();
    let filings: Vec<_> = (0..FILINGS)
        .map(|_| {
            let mut agent = agent.clone();
            let request = flows::file_request(&customer, pb::Severity::Normal, "");
            tokio::spawn(async move { agent.complaints.file_complaint(request).await })
        })
        .collect();

    for filing in filings {
        filing.await.expect("filing task").expect("every filing succeeds during the flood");
    }
    let (mut served, mut shed) = (0, 0);
    for report in flood {
        match report.await.expect("report task") {
            Ok(_) => served += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                let retry = status.get_details_retry_info().expect("a RetryInfo says when");
                assert!(retry.retry_delay.is_some_and(|delay| !delay.is_zero()), "{retry:?}");
                shed += 1;
            }
        }
    }
    assert!(served > 0, "the analyst is slowed down, not locked out");
    assert!(shed > 0, "the flood was partly shed ({served} served)");
    println!("{FILINGS} filings made; of {FLOOD} reports {served} served, {shed} shed");
    // Another principal's reports are not held up by the analyst's flood.
    let mut supervisor = app.clients(Some("s1")).await;
    supervisor
        .reports
        .get_dashboard(pb::GetDashboardRequest::default())
        .await
        .expect("a supervisor's report");
    app.stop().await;
}

/// One principal holds as many calls open as it can (event feed streams that never
/// end) while another files: the first gets its share of the global pool, the rest of
/// its calls are shed with a `RetryInfo`, and every filing succeeds. Then a flood of
/// reads waiting for a position far beyond the log's head (the attack that used to
/// hold a slot for the whole `--read-wait`) is refused at once, naming `min_position`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_cannot_hold_the_pool_from_anothers_filings_sqlite() {
    const POOL: usize = 48;
    let app = spawn_app_with(Backend::Sqlite, |settings, _| {
        settings.limits.max_concurrent_calls = POOL;
        settings.limits.max_concurrent_expensive_reads = POOL;
        settings.limits.expensive_reads_per_second = None;
        settings.limits.max_concurrent_calls_per_principal = POOL / 4;
    })
    .await
    .expect("app");
    flows::standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = flows::register_customer(&mut agent, "F").await;

    // A service opens the whole pool's worth of streams (each on its own connection).
    let mut held = Vec::new();
    let mut shed = 0;
    for _ in 0..POOL {
        let mut service = app.clients(Some("svc-web")).await;
        let request = pb::SubscribeRequest { from_position: 1, categories: vec![] };
        match service.events.subscribe(request).await {
            Ok(stream) => held.push(stream.into_inner()),
            Err(status) => {
                assert_resource_exhausted(&status);
                shed += 1;
            }
        }
    }
    assert_eq!(held.len(), POOL / 4, "one principal holds its share, no more");
    assert_eq!(shed, POOL - POOL / 4);

    // Another principal floods reads waiting for a position nobody was given.
    let head = kefu_tests::db::head(app.db.url()).await;
    let flooder = app.clients(Some("a2")).await;
    let waits: Vec<_> = (0..200)
        .map(|_| {
            let mut flooder = flooder.clone();
            tokio::spawn(async move {
                let request = pb::ListCustomersRequest {
                    min_position: head + 1_000_000_000,
                    ..Default::default()
                };
                flooder.customers.list_customers(request).await
            })
        })
        .collect();
    // As many at once as the agent's own share allows.
    let filings: Vec<_> = (0..POOL / 4)
        .map(|_| {
            let mut agent = agent.clone();
            let request = flows::file_request(&customer, pb::Severity::Normal, "");
            tokio::spawn(async move { agent.complaints.file_complaint(request).await })
        })
        .collect();
    for filing in filings {
        filing.await.expect("filing task").expect("every filing succeeds beside the floods");
    }
    for wait in waits {
        let status = wait.await.expect("wait task").expect_err("a position beyond the head");
        match status.code() {
            Code::InvalidArgument => {
                assert_eq!(kefu_tests::violated_fields(&status), ["min_position"], "{status:?}")
            }
            _ => assert_resource_exhausted(&status),
        }
    }
    drop(held);
    app.stop().await;
}

fn assert_resource_exhausted(status: &tonic::Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_details_retry_info().expect("a RetryInfo says when");
    assert!(retry.retry_delay.is_some_and(|delay| !delay.is_zero()), "{retry:?}");
}

/// A caller holds only positions of acknowledged writes, so a `min_position` past the
/// log's head is a mistake (or an attack holding a call slot for `--read-wait`): every
/// read that takes one refuses it at once, naming the field, and serves the head itself.
async fn every_read_refuses_a_position_beyond_the_head(app: &kefu_tests::TestApp) {
    flows::standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    flows::register_customer(&mut agent, "F").await;
    let head = kefu_tests::db::head(app.db.url()).await;
    let mut admin = app.clients(Some("admin")).await;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    for (min_position, beyond) in [(head, false), (head + 1, true), (u64::MAX >> 1, true)] {
        let answers = [
            (
                "ListCustomers",
                admin
                    .customers
                    .list_customers(pb::ListCustomersRequest { min_position, ..Default::default() })
                    .await
                    .err(),
            ),
            (
                "ListComplaints",
                admin
                    .complaints
                    .list_complaints(pb::ListComplaintsRequest {
                        min_position,
                        ..Default::default()
                    })
                    .await
                    .err(),
            ),
            (
                "ListStaff",
                admin
                    .staff
                    .list_staff(pb::ListStaffRequest { min_position, include_departed: true })
                    .await
                    .err(),
            ),
            (
                "ListDueCallbacks",
                admin
                    .callbacks
                    .list_due_callbacks(pb::ListDueCallbacksRequest {
                        min_position,
                        ..Default::default()
                    })
                    .await
                    .err(),
            ),
            (
                "GetDashboard",
                admin
                    .reports
                    .get_dashboard(pb::GetDashboardRequest { min_position, ..Default::default() })
                    .await
                    .err(),
            ),
            (
                "GetSatisfactionMetrics",
                admin
                    .reports
                    .get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest {
                        min_position,
                        ..Default::default()
                    })
                    .await
                    .err(),
            ),
            (
                "GetMonthlySummary",
                admin
                    .reports
                    .get_monthly_summary(pb::GetMonthlySummaryRequest {
                        min_position,
                        month: month.clone(),
                    })
                    .await
                    .err(),
            ),
            (
                "ListSlaBreaches",
                admin
                    .reports
                    .list_sla_breaches(pb::ListSlaBreachesRequest {
                        min_position,
                        ..Default::default()
                    })
                    .await
                    .err(),
            ),
            (
                "GetHandlerWorkload",
                admin
                    .reports
                    .get_handler_workload(pb::GetHandlerWorkloadRequest { min_position })
                    .await
                    .err(),
            ),
            (
                "GetReferralReport",
                admin
                    .reports
                    .get_referral_report(pb::GetReferralReportRequest {
                        min_position,
                        ..Default::default()
                    })
                    .await
                    .err(),
            ),
            (
                "GetQualityMetrics",
                admin
                    .reports
                    .get_quality_metrics(pb::GetQualityMetricsRequest {
                        min_position,
                        ..Default::default()
                    })
                    .await
                    .err(),
            ),
        ];
        for (rpc, refused) in answers {
            match refused {
                None => assert!(!beyond, "{rpc} served a position beyond the head"),
                Some(status) => {
                    assert!(beyond, "{rpc} at the head: {status:?}");
                    assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
                    assert_eq!(kefu_tests::violated_fields(&status), ["min_position"], "{rpc}");
                }
            }
        }
    }
}

/// `FindCustomers` answers a page through an index (docs/performance.md), like
/// `ListCustomers`: it is not an expensive read, so a principal out of expensive reads
/// (its reports shed) still finds customers, as many as it asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_not_expensive_reads_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, |settings, _| {
        settings.limits.expensive_reads_per_second = Some(1);
        settings.limits.expensive_reads_burst = 1;
    })
    .await
    .expect("app");
    flows::standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let registration = flows::customer_request("王芳", pb::Confidentiality::Internal, "a1");
    let registered = agent.customers.register_customer(registration).await.expect("register");
    let at = registered.into_inner().result.expect("result").position;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut shed = 0;
    for _ in 0..5 {
        match supervisor.reports.get_dashboard(pb::GetDashboardRequest::default()).await {
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                shed += 1;
            }
        }
    }
    assert!(shed > 0, "the supervisor is out of expensive reads");
    for n in 0..30 {
        let request =
            pb::FindCustomersRequest {
                query: "芳".into(), min_position: at, ..Default::default()
            };
        let found = supervisor.customers.find_customers(request).await;
        let found = found.unwrap_or_else(|status| panic!("lookup {n}: {status:?}"));
        assert_eq!(found.into_inner().matches.len(), 1, "lookup {n}");
    }
    app.stop().await;
}

/// A connection past its maximum age is closed after its grace, even with a stream
/// open on it; the client reconnects and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_connections_are_recycled_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, |settings, _| {
        settings.limits.max_connection_age = Some(Duration::from_millis(500));
        settings.limits.max_connection_age_grace = Duration::from_millis(500);
    })
    .await
    .expect("app");
    flows::register_staff(&app, &[("a1", &[pb::StaffRole::Agent])]).await;
    let mut feed = app.clients(Some("svc-web")).await;
    let mut events = feed
        .events
        .subscribe(pb::SubscribeRequest { from_position: 1, categories: vec![] })
        .await
        .expect("subscribe")
        .into_inner();
    events.message().await.expect("an event").expect("open");
    // (The bound only keeps a connection that lives forever from hanging the suite.)
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => break None,
                Err(status) => break Some(status),
            }
        }
    })
    .await
    .expect("the old connection was closed");
    assert!(ended.is_some(), "the stream was cut, not ended as if complete");
    // The client reconnects: its first try may still meet the closed connection.
    let request = pb::ReadAllRequest { from_position: 1, limit: 10, categories: vec![] };
    let mut answered = feed.events.read_all(request.clone()).await;
    for _ in 0..50 {
        if answered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answered = feed.events.read_all(request.clone()).await;
    }
    answered.expect("served on a new connection");
    app.stop().await;
}
