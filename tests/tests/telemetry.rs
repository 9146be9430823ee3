//! Tracing across systems: a caller's W3C `traceparent` joins kefu's span for the call
//! to the caller's trace, every event the call writes carries the trace id, the
//! correlation id (the caller's or a new one) and the causation id, and the spans
//! reach an OTLP collector (one runs in this test, on 127.0.0.1:0).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::{flows, rid, spawn_app_with};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// An OTLP trace collector that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn with_headers<T>(message: T, headers: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (name, value) in headers {
        request.metadata_mut().insert(*name, value.parse().expect("ascii header"));
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_reaches_the_events_and_the_collector() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind collector");
    let endpoint = format!("http://{}", listener.local_addr().expect("collector address"));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    // The layers `kefu serve --otlp-endpoint` installs.
    let provider = kefu::telemetry::otlp_provider(&endpoint).expect("OTLP exporter");
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(kefu::telemetry::log_layer(kefu::LogFormat::Json, std::io::sink, false))
        .with(kefu::telemetry::otel_layer(&provider))
        .init();
    let otlp = endpoint.clone();
    let app = spawn_app_with(Backend::Sqlite, move |settings, _| {
        settings.otlp_endpoint = Some(otlp);
    })
    .await
    .expect("app");
    let mut admin = app.clients(Some("admin")).await;

    // Joined to the caller's trace, with its correlation and causation ids.
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let staff_request = rid();
    let registered = pb::RegisterStaffRequest {
        request_id: staff_request.clone(),
        staff_id: "a1".into(),
        name: "T".into(),
        roles: vec![pb::StaffRole::Agent as i32],
    };
    let headers = [
        ("traceparent", traceparent.as_str()),
        ("x-correlation-id", "order-4711"),
        ("x-causation-id", "evt-0042"),
    ];
    admin.staff.register_staff(with_headers(registered, &headers)).await.expect("register staff");
    // No trace context, no ids: a new trace and a new correlation id.
    let customer_request = flows::customer_request("Q", pb::Confidentiality::Internal, "a1");
    let customer = admin
        .customers
        .register_customer(customer_request.clone())
        .await
        .expect("register customer")
        .into_inner()
        .result
        .expect("result");

    let mut feed = app.clients(Some("svc-web")).await;
    let events = feed
        .events
        .read_all(pb::ReadAllRequest { from_position: 1, limit: 100, categories: vec![] })
        .await
        .expect("read the log")
        .into_inner()
        .events;
    let metadata_of = |stream: &str| {
        let event = events.iter().find(|e| e.stream_id == stream).expect(stream);
        event.metadata.clone().expect("metadata")
    };
    let staff = metadata_of("staff-a1");
    assert_eq!(staff.trace_id, TRACE);
    assert_eq!(staff.correlation_id, "order-4711");
    assert_eq!(staff.causation_id, "evt-0042");
    let fresh = metadata_of(&format!("customer-{}", customer.id));
    assert_eq!(fresh.trace_id.len(), 32, "{fresh:?}");
    assert_ne!(fresh.trace_id, TRACE);
    assert!(uuid::Uuid::parse_str(&fresh.correlation_id).is_ok(), "{fresh:?}");
    assert_eq!(fresh.causation_id, customer_request.request_id, "the command caused them");

    // The span of the call, a child of the caller's, reaches the collector.
    provider.force_flush().expect("flush spans");
    let trace = hex_bytes(TRACE);
    let mut exported = None;
    for _ in 0..200 {
        let spans = collector.0.lock().unwrap().clone();
        exported = spans.into_iter().find(|span| span.trace_id == trace);
        if exported.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exported = exported.expect("the call's span was exported");
    assert_eq!(exported.parent_span_id, hex_bytes(PARENT), "a child of the caller's span");
    assert_eq!(exported.name, "kefu.v1.StaffService/RegisterStaff");
    assert_eq!(exported.kind, SpanKind::Server as i32);
    let spans = collector.0.lock().unwrap().clone();
    assert!(
        spans.iter().any(|span| hex::encode(&span.trace_id) == fresh.trace_id),
        "the untraced call's span carries the trace id its events carry"
    );
    app.stop().await;
    provider.shutdown().expect("shut the exporter down");
}

fn hex_bytes(text: &str) -> Vec<u8> {
    hex::decode(text).expect("hex")
}
