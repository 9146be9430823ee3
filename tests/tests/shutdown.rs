//! Graceful shutdown: calls in flight when the server is told to stop still finish;
//! streams end with a clear status; the server stops within its grace period.

use std::time::{Duration, Instant};

use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::spawn_app_with;
use tonic::Code;

/// Holds SQLite's write lock from another connection, as another process could: the
/// server's writer waits (up to its busy timeout, 10 s), and so do its filings. A read
/// beyond the log's head, which used to wait, is refused at once.
async fn lock_the_database(app: &kefu_tests::TestApp) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let url = format!("{}?mode=rw", app.db.url().split('?').next().unwrap_or(app.db.url()));
    let mut holder = sqlx::SqliteConnection::connect(&url).await.expect("open the database");
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.expect("hold the write lock");
    holder
}

/// A customer to file for, as `a1`'s.
async fn customer(app: &kefu_tests::TestApp) -> String {
    kefu_tests::flows::register_staff(app, &[("a1", &[pb::StaffRole::Agent])]).await;
    let mut admin = app.clients(Some("admin")).await;
    kefu_tests::flows::register_customer(&mut admin, "S").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_calls_finish_when_the_server_stops_sqlite() {
    let app = kefu_tests::spawn_app(Backend::Sqlite).await.expect("app");
    let customer = customer(&app).await;
    let mut holder = lock_the_database(&app).await;
    let mut supervisor = app.clients(Some("s1")).await;
    // A filing that waits for the database.
    let request = kefu_tests::flows::file_request(&customer, pb::Severity::Normal, "");
    let waiting = tokio::spawn(async move { supervisor.complaints.file_complaint(request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stop_started = Instant::now();
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    sqlx::query("ROLLBACK").execute(&mut holder).await.expect("let the writer go on");
    stopping.await.expect("stop");
    let filed = waiting.await.expect("call task");
    filed.expect("the filing in flight finished, not cut off");
    assert!(stop_started.elapsed() >= Duration::from_millis(1_500), "stop waited for the call");
}

/// SIGTERM's sequence, seen from clients: health turns NOT_SERVING first, open streams
/// (the event feed and an SLA watch) end with UNAVAILABLE "server shutting down", new calls are refused, and the server
/// stops within its grace period although a call in flight waits for a locked database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_streams_and_keeps_its_deadline_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, |settings, _| {
        settings.shutdown_grace = Duration::from_secs(2);
    })
    .await
    .expect("app");
    let address = app.addr;
    kefu_tests::flows::register_staff(&app, &[("a1", &[pb::StaffRole::Agent])]).await;
    let mut feed = app.clients(Some("svc-web")).await;
    let mut events = feed
        .events
        .subscribe(pb::SubscribeRequest { from_position: 1, categories: vec![] })
        .await
        .expect("subscribe")
        .into_inner();
    events.message().await.expect("the first event").expect("open");
    // And a WatchSla stream, caught up and waiting for the clock (R-T5).
    let mut supervisor = app.clients(Some("s1")).await;
    let mut watch = supervisor
        .reports
        .watch_sla(pb::WatchSlaRequest::default())
        .await
        .expect("watch the SLA")
        .into_inner();
    while !watch.message().await.expect("watch").expect("open").caught_up {}
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
    let mut serving = health.watch(request).await.expect("watch health").into_inner();
    assert_eq!(serving.message().await.expect("status").expect("open").status, 1, "SERVING");
    // A call waiting for the database (longer than the grace), in flight at the shutdown.
    let customer = {
        let mut admin = app.clients(Some("admin")).await;
        kefu_tests::flows::register_customer(&mut admin, "S").await
    };
    let _holder = lock_the_database(&app).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let stuck = tokio::spawn(async move {
        let request = kefu_tests::flows::file_request(&customer, pb::Severity::Normal, "");
        supervisor.complaints.file_complaint(request).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopping = tokio::spawn(app.stop());
    // (Bounds keep a broken shutdown from hanging the suite; they time nothing.)
    let bound = Duration::from_secs(60);
    let status = tokio::time::timeout(bound, serving.message())
        .await
        .expect("health turned")
        .expect("health says")
        .expect("before it ends");
    assert_eq!(status.status, 2, "NOT_SERVING while draining");
    let ended = tokio::time::timeout(bound, end_of(&mut events)).await.expect("the feed ended");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert_eq!(ended.message(), kefu::SHUTTING_DOWN);
    let ended = tokio::time::timeout(bound, end_of(&mut watch)).await.expect("the watch ended");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert_eq!(ended.message(), kefu::SHUTTING_DOWN);
    let mut late = kefu_tests::TestApp::clients_on(
        tonic::transport::Channel::from_shared(format!("http://{address}"))
            .expect("uri")
            .connect_lazy(),
        Some("admin"),
    );
    let refused = late.staff.list_staff(pb::ListStaffRequest::default()).await;
    assert_eq!(refused.expect_err("no new calls").code(), Code::Unavailable);

    // Stopped within the grace period, the waiting call notwithstanding.
    tokio::time::timeout(bound, stopping)
        .await
        .expect("the server stopped within its grace period")
        .expect("stop");
    let cut = stuck.await.expect("call task").expect_err("cut off at the deadline");
    assert_ne!(cut.code(), Code::Ok);
}

/// The status a stream ends with, skipping what it still sends.
async fn end_of<T>(stream: &mut tonic::Streaming<T>) -> tonic::Status {
    loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    }
}
