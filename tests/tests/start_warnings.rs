//! R-C6 at start (issue 16, item 5d): a token's clearance lowered in the tokens file
//! between starts leaves its holder's customers and cases where they were (clearance
//! is not in the log), so kefu names each such holder when it starts, with the remedy.
//! Its own binary: it installs the process's log subscriber to read the warning.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kefu::telemetry::log_layer;
use kefu::LogFormat;
use kefu_api::auth::hash_token;
use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::spawn_app_on;
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

impl Captured {
    fn warnings_naming(&self, staff: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|line| line.contains("above their tokens' clearance"))
            .filter(|line| line.contains(&format!("staff={staff} ")))
            .map(str::to_owned)
            .collect()
    }
}

/// A tokens file where `a1` and `h1` hold public agent tokens (internal before).
fn lowered_tokens(dir: &std::path::Path) -> std::path::PathBuf {
    let entry = |principal: &str, role: &str, clearance: &str| {
        format!(
            r#"{{"sha256":"{}","principal":"{principal}","roles":["{role}"],"clearance":"{clearance}"}}"#,
            hash_token(&format!("token-{principal}"))
        )
    };
    let entries = [
        entry("admin", "admin", "secret"),
        entry("a1", "agent", "public"),
        entry("h1", "agent", "public"),
    ];
    let path = dir.join("lowered-tokens.json");
    std::fs::write(&path, format!(r#"{{"tokens":[{}]}}"#, entries.join(","))).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_names_each_holder_no_longer_cleared_for_what_they_hold() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("warn"))
        .with(log_layer(LogFormat::Text, move || sink.clone(), false))
        .init();
    let app = kefu_tests::spawn_app(kefu_testkit::Backend::Sqlite).await.expect("sqlite");
    standard_staff(&app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = register_customer(&mut admin, "Held Internal Person").await;
    let (case, _) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
    let assigned = admin.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");
    let position = assigned.into_inner().result.expect("result").position;
    let wait = pb::ListComplaintsRequest { min_position: position, ..Default::default() };
    admin.complaints.list_complaints(wait).await.expect("caught up");
    let wait = pb::ListCustomersRequest { min_position: position, ..Default::default() };
    admin.customers.list_customers(wait).await.expect("caught up");
    let db = app.stop_keeping_database().await;
    assert!(captured.warnings_naming("a1").is_empty(), "cleared at the first start");

    let app =
        spawn_app_on(db, |settings, dir| settings.tokens_file = Some(lowered_tokens(dir))).await;
    let owner = captured.warnings_naming("a1");
    assert_eq!(owner.len(), 1, "{owner:?}");
    assert!(owner[0].contains(r#"holds="customers""#) && owner[0].contains("clearance=public"));
    let handler = captured.warnings_naming("h1");
    assert!(handler.iter().any(|line| line.contains(r#"holds="cases""#)), "{handler:?}");
    assert!(captured.warnings_naming("a2").is_empty(), "a2 holds nothing");
    app.stop().await;
}
