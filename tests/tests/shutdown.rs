//! Graceful shutdown: calls in flight when the server is told to stop still finish;
//! streams end with a clear status; the server stops within its grace period.

use std::time::{Duration, Instant};

use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::spawn_app_with;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_calls_finish_when_the_server_stops_sqlite() {
    let app =
        spawn_app_with(Backend::Sqlite, |settings, _| settings.read_wait = Duration::from_secs(2))
            .await
            .expect("app");
    let mut supervisor = app.clients(Some("s1")).await;
    // A read that waits (up to read_wait) for a position the log has not reached.
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let result = supervisor
            .complaints
            .list_complaints(pb::ListComplaintsRequest {
                min_position: 1_000_000,
                ..Default::default()
            })
            .await;
        (result, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stop_started = Instant::now();
    app.stop().await;
    let (result, took) = waiting.await.expect("call task");
    let status = result.expect_err("the log never reaches that position");
    assert_eq!(status.code(), Code::DeadlineExceeded, "answered, not cut off: {status:?}");
    assert!(took >= Duration::from_millis(1_900), "the call ran its course ({took:?})");
    assert!(stop_started.elapsed() >= Duration::from_millis(1_500), "stop waited for the call");
}

/// SIGTERM's sequence, seen from clients: health turns NOT_SERVING first, open streams
/// end with UNAVAILABLE "server shutting down", new calls are refused, and the server
/// stops within its grace period although a call in flight would wait ten minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_streams_and_keeps_its_deadline_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, |settings, _| {
        settings.read_wait = Duration::from_secs(600);
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
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
    let mut serving = health.watch(request).await.expect("watch health").into_inner();
    assert_eq!(serving.message().await.expect("status").expect("open").status, 1, "SERVING");
    // A call that would take ten minutes, still in flight at the shutdown.
    let mut supervisor = app.clients(Some("s1")).await;
    let stuck = tokio::spawn(async move {
        let request = pb::ListComplaintsRequest { min_position: 1_000_000, ..Default::default() };
        supervisor.complaints.list_complaints(request).await
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
    let ended = tokio::time::timeout(bound, async {
        loop {
            match events.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => break status,
            }
        }
    })
    .await
    .expect("the stream ended");
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

    // Stopped within the grace period, the ten-minute call notwithstanding.
    tokio::time::timeout(bound, stopping)
        .await
        .expect("the server stopped within its grace period")
        .expect("stop");
    let cut = stuck.await.expect("call task").expect_err("cut off at the deadline");
    assert_ne!(cut.code(), Code::Ok);
}
