//! Prometheus metrics over HTTP: RPCs by method and code as histograms with buckets,
//! counted also when they time out, are cancelled or are streams that end later;
//! appends and their batches; projection lag and stopped projections; SLA items breached
//! and at risk.

use std::net::SocketAddr;
use std::time::Duration;

use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::{flows, spawn_app_with};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics`, as a scraper sends it.
async fn scrape(address: SocketAddr) -> String {
    let mut socket = tokio::net::TcpStream::connect(address).await.expect("connect to /metrics");
    let request = "GET /metrics HTTP/1.1\r\nhost: kefu\r\nconnection: close\r\n\r\n";
    socket.write_all(request.as_bytes()).await.expect("request");
    let mut response = String::new();
    socket.read_to_string(&mut response).await.expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("content-type: text/plain; version=0.0.4"), "{response}");
    response
}

/// Scrapes until every `wanted` line fragment is there (gauges refresh every 100 ms).
async fn scrape_until(address: SocketAddr, wanted: &[&str]) -> String {
    let mut body = String::new();
    for _ in 0..100 {
        body = scrape(address).await;
        if wanted.iter().all(|fragment| body.contains(fragment)) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<_> = wanted.iter().filter(|f| !body.contains(**f)).collect();
    panic!("missing {missing:?} from:\n{body}");
}

/// `FileComplaint` as admin with a `grpc-timeout` of 300 ms over a bare HTTP/2
/// connection, which (unlike tonic's client) leaves the deadline to the server;
/// returns the `grpc-status` the server answers with.
async fn call_with_deadline(address: SocketAddr, request: pb::FileComplaintRequest) -> String {
    let tcp = tokio::net::TcpStream::connect(address).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let head =
        http::Request::post(format!("http://{address}/kefu.v1.ComplaintService/FileComplaint"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", "300m")
            .header("authorization", "Bearer token-admin")
            .body(())
            .expect("request head");
    let (answer, mut body) = client.send_request(head, false).expect("send");
    let message = prost::Message::encode_to_vec(&request);
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&message);
    body.send_data(frame.into(), true).expect("send the message");
    let mut answer = answer.await.expect("answer");
    if let Some(status) = answer.headers().get("grpc-status") {
        return status.to_str().expect("ascii").to_owned();
    }
    let trailers = answer.body_mut().trailers().await.expect("trailers").expect("some");
    trailers.get("grpc-status").expect("grpc-status").to_str().expect("ascii").to_owned()
}

fn rpc(kind: &str, service: &str, method: &str, code: &str) -> String {
    format!(
        "grpc_server_handled_total{{grpc_type=\"{kind}\",grpc_service=\"kefu.v1.{service}\",\
         grpc_method=\"{method}\",grpc_code=\"{code}\"}} 1"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_call_however_it_ends_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, |settings, _| {
        settings.metrics_listen = Some("127.0.0.1:0".parse().expect("address"));
        settings.metrics_interval = Duration::from_millis(100);
    })
    .await
    .expect("app");
    let address = app.metrics_addr.expect("metrics are served");
    flows::register_staff(&app, &[("a1", &[pb::StaffRole::Agent, pb::StaffRole::Handler])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let refused = admin.staff.register_staff(pb::RegisterStaffRequest::default()).await;
    assert!(refused.is_err());

    // An SLA breach: a complaint received two days ago, never answered (R-P7).
    let customer = flows::register_customer(&mut admin, "M").await;
    let mut late = flows::file_request(&customer, pb::Severity::Normal, "");
    late.received_at = Some(prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() - 2 * 86_400,
        nanos: 0,
    });
    admin.complaints.file_complaint(late).await.expect("file");
    // And one at risk (R-T5): received 11 hours ago, past 80 % of its 12 hours.
    let mut at_risk = flows::file_request(&customer, pb::Severity::Normal, "");
    at_risk.received_at = Some(prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() - 11 * 3_600,
        nanos: 0,
    });
    admin.complaints.file_complaint(at_risk).await.expect("file");

    // Calls held up by a database another process holds locked (a legitimate wait:
    // the writer waits out SQLite's busy timeout, 10 s).
    let url = format!("{}?mode=rw", app.db.url().split('?').next().unwrap_or(app.db.url()));
    let mut holder = sqlx::SqliteConnection::connect(&url).await.expect("open the database");
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.expect("hold the write lock");
    // A call past its deadline: the server drops it, the metrics still count it.
    let waiting = flows::file_request(&customer, pb::Severity::Normal, "");
    assert_eq!(call_with_deadline(app.addr, waiting).await, "4", "DEADLINE_EXCEEDED");

    // A call the client gives up on: cancelled.
    let mut supervisor = app.clients(Some("s1")).await;
    let filing = flows::file_request(&customer, pb::Severity::Normal, "");
    let filing = tokio::spawn(async move { supervisor.complaints.file_complaint(filing).await });
    // Started: the two filed above, the one past its deadline and this one.
    scrape_until(address, &["grpc_method=\"FileComplaint\"} 4"]).await;
    filing.abort();
    sqlx::query("ROLLBACK").execute(&mut holder).await.expect("let the writer go on");

    // A stream is measured when it ends, not when it starts.
    let mut feed = app.clients(Some("svc-web")).await;
    let mut stream = feed
        .events
        .subscribe(pb::SubscribeRequest { from_position: 1, categories: vec![] })
        .await
        .expect("subscribe")
        .into_inner();
    stream.message().await.expect("an event").expect("not ended");
    let open = scrape(address).await;
    assert!(!open.contains("grpc_method=\"Subscribe\",grpc_code"), "still open:\n{open}");
    drop(stream);

    let body = scrape_until(
        address,
        &[
            &rpc("unary", "StaffService", "RegisterStaff", "OK"),
            &rpc("unary", "StaffService", "RegisterStaff", "InvalidArgument"),
            &rpc("unary", "ComplaintService", "FileComplaint", "DeadlineExceeded"),
            &rpc("unary", "ComplaintService", "FileComplaint", "Canceled"),
            &rpc("server_stream", "EventService", "Subscribe", "Canceled"),
            "kefu_sla_breached{rule=\"first_response\"} 1",
            "kefu_sla_breached{rule=\"callback_overdue\"} 0",
            "kefu_sla_at_risk{rule=\"first_response\"} 1",
            "kefu_sla_at_risk{rule=\"callback_overdue\"} 0",
            // Service requests' obligations beside the complaints' (issue 22).
            "kefu_sla_breached{rule=\"request_first_response\"} 0",
            "kefu_sla_breached{rule=\"request_callback_overdue\"} 0",
            "kefu_sla_at_risk{rule=\"request_callback_overdue\"} 0",
            "kefu_projection_lag_events{projection=\"complaints\"}",
            "kefu_projection_stopped{projection=\"complaints\"} 0",
            "kefu_ready 1",
        ],
    )
    .await;
    // Histograms with explicit buckets (aggregatable across nodes), not summaries.
    for bucket in [
        "grpc_server_handling_seconds_bucket{grpc_type=\"unary\",grpc_service=\"kefu.v1.StaffService\",grpc_method=\"RegisterStaff\",grpc_code=\"OK\",le=\"0.005\"}",
        "kefu_append_duration_seconds_bucket{le=\"0.01\"}",
        "kefu_append_batch_size_bucket{le=\"1\"}",
    ] {
        assert!(body.contains(bucket), "{bucket} missing from:\n{body}");
    }
    assert!(!body.contains("quantile="), "no summaries:\n{body}");
    for name in kefu::METRIC_NAMES {
        assert!(body.contains(name), "{name} is documented but not exported:\n{body}");
    }
    app.stop().await;
}
