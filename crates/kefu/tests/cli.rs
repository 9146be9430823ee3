//! The operator verbs of the `kefu` binary, run as a real process.

use std::process::Command;

use kefu_domain::staff::{RegisterStaff, Staff, StaffCommand};
use kefu_domain::{Aggregate, DomainEvent, StaffId, StaffRole, Text};
use kefu_event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StoreOptions, StreamId};

fn kefu(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kefu")).args(args).output().expect("run kefu");
    assert!(output.status.success(), "kefu {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_status_and_rebuild_work_on_a_real_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    kefu(&["migrate", "--database-url", &url]);

    let store = EventStore::open(&url, StoreOptions::default()).await.expect("open");
    let staff_id = StaffId::new("s-0042").expect("staff id");
    let command = StaffCommand::Register(RegisterStaff {
        staff_id: staff_id.clone(),
        name: Text::new("name", "Li Wei").expect("name"),
        roles: vec![StaffRole::Agent],
    });
    let events = Staff::decide(&None, command, chrono::Utc::now()).expect("decide");
    let new: Vec<NewEvent> = events
        .iter()
        .map(|e| {
            NewEvent::new(uuid::Uuid::now_v7(), e.event_type(), e.schema_version(), e.to_payload())
        })
        .collect();
    let stream = StreamId::new(staff_id.stream_name()).expect("stream");
    store
        .append(&stream, ExpectedVersion::NoStream, &new, &Metadata::default())
        .await
        .expect("append");
    drop(store);

    let before = kefu(&["projections", "status", "--database-url", &url]);
    assert!(
        before.lines().any(|line| line.starts_with("staff") && line.trim_end().ends_with('1')),
        "lag 1:\n{before}"
    );
    kefu(&["projections", "rebuild", "--database-url", &url]);
    let after = kefu(&["projections", "status", "--database-url", &url]);
    for line in after.lines().skip(1) {
        assert!(line.trim_end().ends_with(" 0"), "no lag after the rebuild:\n{after}");
    }
    kefu(&["projections", "rebuild", "staff", "--database-url", &url]);
}
