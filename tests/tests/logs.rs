//! No personal data in logs: a whole customer and complaint lifecycle (plus refused
//! requests carrying personal data) runs with every kefu log line captured at TRACE,
//! and none of the person's data appears in them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::rid;

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
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace,h2=info,hyper=info,tower=info,sqlx=debug")
        .with_writer(move || sink.clone())
        .with_ansi(false)
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
    // Refused requests that carry personal data: a reused key, a bad email.
    let refused = agent.customers.register_customer(pb::RegisterCustomerRequest {
        request_id: request.request_id.clone(),
        name: format!("{NAME} again"),
        ..request.clone()
    });
    let _ = refused.await;
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

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).expect("utf-8 logs");
    assert!(logs.contains("command applied"), "the capture works");
    assert!(logs.contains(&customer), "ids may be logged");
    for text in [NAME, PHONE, EMAIL, ADDRESS, DESCRIPTION, COMMENT, "Lin Yutong", "137 5555"] {
        assert!(!logs.contains(text), "{text:?} is in the logs");
    }
    println!("{} log lines checked for 8 pieces of personal data", logs.lines().count());
}
