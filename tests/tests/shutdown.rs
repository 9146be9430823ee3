//! Graceful shutdown: calls in flight when the server is told to stop still finish.

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
