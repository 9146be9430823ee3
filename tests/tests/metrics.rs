//! Prometheus metrics over HTTP: RPC counts and latency, appends, projection lag.

use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::{rid, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_rpcs_appends_and_lag_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, |settings, _| {
        settings.metrics_listen = Some("127.0.0.1:0".parse().expect("address"));
    })
    .await
    .expect("app");
    let mut admin = app.clients(Some("admin")).await;
    admin
        .staff
        .register_staff(pb::RegisterStaffRequest {
            request_id: rid(),
            staff_id: "m1".into(),
            name: "M".into(),
            roles: vec![1],
        })
        .await
        .expect("register");
    let refused = admin.staff.register_staff(pb::RegisterStaffRequest::default()).await;
    assert!(refused.is_err());

    let metrics_addr = app.metrics_addr.expect("metrics are served");
    let mut body = String::new();
    for _ in 0..50 {
        let mut socket =
            tokio::net::TcpStream::connect(metrics_addr).await.expect("connect to /metrics");
        socket.write_all(b"GET /metrics HTTP/1.1\r\nhost: kefu\r\n\r\n").await.expect("request");
        body.clear();
        socket.read_to_string(&mut body).await.expect("response");
        if body.contains("kefu_projection_lag_events") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for name in [
        "kefu_rpc_requests_total",
        "kefu_rpc_duration_seconds",
        "kefu_events_appended_total",
        "kefu_append_duration_seconds",
        "kefu_projection_lag_events",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
    assert!(body.contains("method=\"/kefu.v1.StaffService/RegisterStaff\""), "{body}");
    assert!(
        body.contains("code=\"3\""),
        "the refused call is counted as INVALID_ARGUMENT:\n{body}"
    );
    app.stop().await;
}
