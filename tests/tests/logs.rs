//! Logs say what happened, in both formats, and nothing personal: a whole customer
//! and complaint lifecycle (plus refused and repeated requests carrying personal data)
//! runs with every kefu log line captured at TRACE as text and as JSON lines, through
//! the very layers `kefu serve` installs. None of the person's data appears in either;
//! a repeated request is logged as a repeat, not as applied; span fields come once.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kefu::telemetry::log_layer;
use kefu::LogFormat;
use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::rid;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Collects every formatted log line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const NAME: &str = "Lin Yutong LG5";
const PHONE: &str = "+86 137 5555 0505";
const EMAIL: &str = "lin.lg5@example.cn";
const ADDRESS: &str = "5 Nanjing Road LG5";
const DESCRIPTION: &str = "my card ending 4455 was charged twice LG5";
const COMMENT: &str = "happy with Mr Lin's refund LG5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_logs_no_personal_data() {
    let (text, json) = (Captured::default(), Captured::default());
    let (text_sink, json_sink) = (text.clone(), json.clone());
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace,h2=info,hyper=info,tower=info,sqlx=debug"))
        .with(log_layer(LogFormat::Text, move || text_sink.clone(), false))
        .with(log_layer(LogFormat::Json, move || json_sink.clone(), false))
        .init();
    let app = kefu_tests::spawn_app(kefu_testkit::Backend::Sqlite).await.expect("sqlite");
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut request = customer_request(NAME, pb::Confidentiality::Internal, "a1");
    request.contacts = Some(pb::Contacts {
        phones: vec![PHONE.into()],
        emails: vec![EMAIL.into()],
        address: ADDRESS.into(),
    });
    let customer = agent.customers.register_customer(request.clone()).await.expect("register");
    let customer = customer.into_inner().result.expect("result").id;
    // The same request again (a client's retry): answered, nothing written.
    let again = agent.customers.register_customer(request.clone()).await.expect("retry");
    assert_eq!(again.into_inner().result.expect("result").id, customer);
    // Refused requests that carry personal data: a reused key (another request under
    // the same key, REQUEST_ID_REUSED), a bad email.
    let refused = agent.customers.register_customer(pb::RegisterCustomerRequest {
        request_id: request.request_id.clone(),
        name: format!("{NAME} again"),
        ..request.clone()
    });
    let refused = refused.await.expect_err("a reused key is refused");
    assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    let mut bad = request.clone();
    bad.request_id = rid();
    bad.contacts =
        Some(pb::Contacts { emails: vec![format!("{EMAIL} not an email")], ..Default::default() });
    let _ = agent.customers.register_customer(bad).await;

    let mut filing = file_request(&customer, pb::Severity::Normal, "");
    filing.description = DESCRIPTION.into();
    let filed = agent.complaints.file_complaint(filing).await.expect("file").into_inner();
    let complaint = filed.result.expect("result").id;
    handle_to_close(&app, &complaint).await;
    agent
        .callbacks
        .log_callback(complaint_callback(&customer, &complaint, COMMENT))
        .await
        .expect("callback");
    let mut supervisor = app.clients(Some("s1")).await;
    supervisor
        .customers
        .get_customer(pb::GetCustomerRequest { customer_id: customer.clone() })
        .await
        .expect("get customer");
    let mut compliance = app.clients(Some("co1")).await;
    compliance
        .audit
        .export_case(pb::ExportCaseRequest { complaint: complaint.clone() })
        .await
        .expect("export");
    app.stop().await;

    let text = String::from_utf8(text.0.lock().unwrap().clone()).expect("utf-8 logs");
    let json = String::from_utf8(json.0.lock().unwrap().clone()).expect("utf-8 logs");
    for (format, logs) in [("text", &text), ("json", &json)] {
        assert!(logs.contains("command applied"), "{format}: the capture works");
        assert!(logs.contains(&customer), "{format}: ids may be logged");
        for secret in [NAME, PHONE, EMAIL, ADDRESS, DESCRIPTION, COMMENT, "Lin Yutong", "137 5555"]
        {
            assert!(!logs.contains(secret), "{format}: {secret:?} is in the logs");
        }
        println!(
            "{format}: {} log lines checked for 8 pieces of personal data",
            logs.lines().count()
        );
    }

    // Span fields are printed once per line, not again by the events inside the span.
    for line in text.lines().filter(|line| line.contains("principal=")) {
        assert_eq!(line.matches("principal=").count(), 1, "{line}");
        assert!(line.matches("request_id=").count() <= 1, "{line}");
    }
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for (line, raw) in lines.iter().zip(json.lines()) {
        assert!(raw.matches("\"principal\"").count() <= 1, "{raw}");
        assert!(line.get("timestamp").is_some() && line.get("level").is_some(), "{raw}");
    }

    // The registration is applied once and its retry is logged as a repeat.
    let of_request = |message: &str| {
        lines
            .iter()
            .filter(|line| line["message"].as_str().is_some_and(|m| m.starts_with(message)))
            .filter(|line| {
                line["spans"].as_array().is_some_and(|spans| {
                    spans.iter().any(|span| span["request_id"] == request.request_id.as_str())
                })
            })
            .count()
    };
    assert_eq!(of_request("command applied"), 1, "applied once, not again for its retries");
    assert_eq!(of_request("request repeated"), 1, "the retry (the reused key is refused)");
    let applied =
        lines.iter().find(|line| line["message"] == "command applied").expect("a command applied");
    let rpc = &applied["spans"][0];
    assert_eq!(rpc["name"], "rpc");
    for field in ["method", "principal", "request_id", "trace_id", "correlation_id"] {
        assert!(rpc.get(field).is_some(), "span field {field} in {applied}");
    }
    assert!(applied.get("principal").is_none(), "not repeated by the event: {applied}");
}
