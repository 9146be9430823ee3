//! The operator verbs of the `kefu` binary, run as a real process.

use std::process::Command;

mod support;

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
        before.lines().any(|line| line.starts_with("staff") && lag(line) == "1"),
        "lag 1:\n{before}"
    );
    kefu(&["projections", "rebuild", "--database-url", &url]);
    let after = kefu(&["projections", "status", "--database-url", &url]);
    for line in after.lines().skip(1) {
        assert_eq!(lag(line), "0", "no lag after the rebuild:\n{after}");
        assert!(line.ends_with("running"), "{after}");
    }
    kefu(&["projections", "rebuild", "staff", "--database-url", &url]);
}

/// The lag column of a `kefu projections status` line.
fn lag(line: &str) -> &str {
    line.split_whitespace().nth(4).unwrap_or_default()
}

/// A projection that cannot apply a stored event is named by `projections status`: the
/// position, the event type and the error; a rebuild says so and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_a_stopped_projection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    kefu(&["migrate", "--database-url", &url]);
    let store = EventStore::open(&url, StoreOptions::default()).await.expect("open");
    let stream = StreamId::new(format!("complaint-{}", uuid::Uuid::now_v7())).expect("stream");
    let unreadable =
        NewEvent::new(uuid::Uuid::now_v7(), "ComplaintFiled", 1, serde_json::json!({"x": 1}));
    let position = store
        .append(&stream, ExpectedVersion::NoStream, &[unreadable], &Metadata::default())
        .await
        .expect("append")
        .last_position;
    drop(store);

    let rebuild = Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["projections", "rebuild", "--database-url", &url])
        .output()
        .expect("run kefu");
    let error = String::from_utf8_lossy(&rebuild.stderr);
    assert!(!rebuild.status.success(), "the rebuild cannot finish");
    assert!(
        error.contains(&format!("projection complaints stopped at position {position}")),
        "{error}"
    );
    let status = kefu(&["projections", "status", "--database-url", &url]);
    let complaints =
        status.lines().find(|line| line.starts_with("complaints")).expect("complaints");
    assert!(
        complaints.contains(&format!("STOPPED at position {position} (ComplaintFiled)"))
            && complaints.contains("does not decode"),
        "{status}"
    );
    for other in ["customers", "staff"] {
        let line = status.lines().find(|line| line.starts_with(other)).expect("listed");
        assert!(line.ends_with("running") && lag(line) == "0", "{status}");
    }
}

/// A server over `url` with one admin token, `token-admin`; returns its address.
async fn serve(
    url: &str,
    dir: &std::path::Path,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let tokens = support::write_tokens(dir);
    let mut settings = kefu::Settings::new(url.to_owned(), "127.0.0.1:0".parse().expect("addr"));
    settings.tokens_file = Some(tokens);
    let app = kefu::Application::build(settings).await.expect("build kefu");
    let addr = app.local_addr().expect("bound");
    let task = tokio::spawn(async move {
        app.run_until(std::future::pending()).await.expect("serve");
    });
    (addr, task)
}

/// Files one complaint over gRPC as admin; returns its case number.
async fn file_one_case(addr: std::net::SocketAddr) -> String {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let customer = support::agent_and_customer(&channel, "Ma Jun CLI7").await;
    let request = support::filing("complaint-1", &customer, "charged twice for one order CLI7");
    let filed = support::complaints(&channel).file_complaint(request).await.expect("file");
    filed.into_inner().case_number
}

fn kefu_status(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kefu")).args(args).output().expect("run kefu");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn case_verbs_replay_verify_and_export(url: &str, dir: &std::path::Path) {
    let (addr, server) = serve(url, dir).await;
    let case = file_one_case(addr).await;

    let replayed = kefu(&["case", "replay", &case, "--database-url", url]);
    let events: Vec<serde_json::Value> = replayed
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 1, "{replayed}");
    assert_eq!(events[0]["event_type"], "ComplaintFiled");
    assert_eq!(events[0]["payload"]["description"], "charged twice for one order CLI7");
    assert_eq!(events[0]["metadata"]["actor"], "admin");

    let verified = kefu(&["case", "verify", &case, "--database-url", url]);
    assert!(verified.starts_with("intact: 1 events, head hash "), "{verified}");
    let file = dir.join("dossier.json");
    kefu(&[
        "case",
        "export",
        &case,
        "--database-url",
        url,
        "--output",
        file.to_str().expect("utf-8"),
    ]);
    let dossier: kefu_api::casefile::Dossier =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("dossier"))
            .expect("dossier JSON");
    assert_eq!(dossier.case_number, case);
    assert!(matches!(dossier.verify(), kefu_event_store::Verification::Intact { events: 1, .. }));
    assert!(verified
        .trim_end()
        .ends_with(dossier.verification.head_hash.as_deref().expect("head")));

    // Every verb was recorded as an inspection by the operator.
    let store = EventStore::open(url, StoreOptions::default()).await.expect("open");
    let complaint_id = dossier.complaint_id.clone();
    let audit = StreamId::new(format!("caseaudit-{complaint_id}")).expect("stream");
    let records = store
        .read_stream(&audit, 1, kefu_event_store::Direction::Forward, 100)
        .await
        .expect("read");
    let kinds: Vec<&str> =
        records.iter().map(|r| r.payload["inspection"].as_str().unwrap_or_default()).collect();
    assert_eq!(kinds, ["replay", "verify", "export"]);
    assert!(records.iter().all(|r| r.metadata.source.as_deref() == Some("cli")
        && r.metadata.actor.as_deref().is_some_and(|a| a.starts_with("cli:"))));

    // A row altered behind kefu's back: verify names the version and exits with status 1.
    let tamper = format!("UPDATE events SET event_type = 'ComplaintFiled ' WHERE stream_id = 'complaint-{complaint_id}'");
    let guard = if url.starts_with("sqlite") {
        "DROP TRIGGER events_reject_update"
    } else {
        "ALTER TABLE events DISABLE TRIGGER events_reject_update"
    };
    match store.database() {
        kefu_event_store::Database::Sqlite { writer, .. } => {
            sqlx_exec_sqlite(&writer, &[guard, &tamper]).await;
        }
        kefu_event_store::Database::Postgres(pool) => {
            sqlx_exec_pg(&pool, &[guard, &tamper]).await;
        }
    }
    let (ok, out) = kefu_status(&["case", "verify", &case, "--database-url", url]);
    assert!(!ok, "a broken chain fails the command");
    assert_eq!(out.trim(), "BROKEN at version 1: content does not match its hash");
    server.abort();
}

async fn sqlx_exec_sqlite(pool: &sqlx::SqlitePool, statements: &[&str]) {
    for sql in statements {
        sqlx::raw_sql(sql).execute(pool).await.expect(sql);
    }
}

async fn sqlx_exec_pg(pool: &sqlx::PgPool, statements: &[&str]) {
    for sql in statements {
        sqlx::raw_sql(sql).execute(pool).await.expect(sql);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_verbs_work_on_sqlite() {
    let db = kefu_testkit::sqlite();
    case_verbs_replay_verify_and_export(db.url(), db.scratch_dir().expect("dir")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_verbs_work_on_postgres() {
    let Some(db) = kefu_testkit::postgres().await else { return };
    case_verbs_replay_verify_and_export(db.url(), db.scratch_dir().expect("dir")).await;
}

/// Row counts of every read model (what a restore must reproduce).
async fn read_model_counts(url: &str) -> Vec<i64> {
    let store = EventStore::open(url, StoreOptions::default()).await.expect("open");
    let db = kefu_projection::sql::Db::from(store.database());
    let mut counts = Vec::new();
    for table in ["rm_customers", "rm_complaints", "rm_callbacks", "rm_staff"] {
        let rows =
            db.fetch_all(&format!("SELECT COUNT(*) AS n FROM {table}"), &[]).await.expect("count");
        counts.push(rows[0].int("n").expect("n"));
    }
    counts
}

/// The read-model counts once the server's projections have reached the log's head.
async fn caught_up_counts(url: &str) -> Vec<i64> {
    let store = EventStore::open(url, StoreOptions::default()).await.expect("open");
    let runner = kefu_projection::Runner::new(store, kefu_projection::all_projections());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = runner.status().await.expect("status");
        if status.iter().all(|projection| projection.lag == 0) {
            return read_model_counts(url).await;
        }
        assert!(std::time::Instant::now() < deadline, "projections did not catch up: {status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_while_serving_restores_to_a_verified_copy() {
    let db = kefu_testkit::sqlite();
    let dir = db.scratch_dir().expect("dir");
    let (addr, server) = serve(db.url(), dir).await;
    file_one_case(addr).await;
    let before = caught_up_counts(db.url()).await;

    let backup = dir.join("backup.db");
    let backup_arg = backup.to_str().expect("utf-8");
    kefu(&["backup", backup_arg, "--database-url", db.url()]);
    let (ok, _) = kefu_status(&["backup", backup_arg, "--database-url", db.url()]);
    assert!(!ok, "a backup never overwrites another");
    server.abort();

    let restored = format!("sqlite://{}", dir.join("restored.db").display());
    let out = kefu(&["restore", backup_arg, "--database-url", &restored]);
    assert!(out.starts_with("restored: 4 events in 4 streams verified"), "{out}");
    assert_eq!(read_model_counts(&restored).await, before, "same read-model totals");
    let (ok, _) = kefu_status(&["restore", backup_arg, "--database-url", &restored]);
    assert!(!ok, "a restore never overwrites a database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pg_dump_and_pg_restore_give_a_verified_copy() {
    let Some(db) = kefu_testkit::postgres().await else { return };
    let dir = db.scratch_dir().expect("dir");
    let (addr, server) = serve(db.url(), dir).await;
    file_one_case(addr).await;
    let before = caught_up_counts(db.url()).await;
    server.abort();

    let bindir = Command::new("pg_config").arg("--bindir").output().expect("pg_config");
    let bindir = std::path::PathBuf::from(String::from_utf8_lossy(&bindir.stdout).trim());
    let dump = dir.join("kefu.dump");
    let status = Command::new(bindir.join("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(db.url())
        .status()
        .expect("pg_dump");
    assert!(status.success(), "pg_dump failed");
    // A fresh database beside the original, restored from the dump.
    let (base, name) = db.url().rsplit_once('/').expect("database in the url");
    let name = name.split('?').next().unwrap_or(name);
    let restored_name = format!("{name}_restored");
    let store = EventStore::open(db.url(), StoreOptions::default()).await.expect("open");
    if let kefu_event_store::Database::Postgres(pool) = store.database() {
        sqlx::raw_sql(&format!("CREATE DATABASE \"{restored_name}\""))
            .execute(&pool)
            .await
            .expect("createdb");
    }
    let restored = format!("{base}/{restored_name}");
    let status = Command::new(bindir.join("pg_restore"))
        .args(["--no-owner", "--dbname", &restored])
        .arg(&dump)
        .status()
        .expect("pg_restore");
    assert!(status.success(), "pg_restore failed");
    let out = kefu(&["check", "--database-url", &restored]);
    assert!(out.starts_with("checked: 4 events in 4 streams verified"), "{out}");
    assert_eq!(read_model_counts(&restored).await, before, "same read-model totals");
}

/// Issue 16, item 7: kefu refuses a tokens file its group (or others) may read, and says
/// how to fix it; the same file at 0600 is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_tokens_file_its_group_may_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    let tokens = support::write_tokens(dir.path());
    let settings = || {
        let mut settings = kefu::Settings::new(url.clone(), "127.0.0.1:0".parse().expect("addr"));
        settings.tokens_file = Some(tokens.clone());
        settings
    };
    for mode in [0o640, 0o604, 0o660] {
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let Err(error) = kefu::Application::build(settings()).await else {
            panic!("a tokens file of mode {mode:o} was accepted")
        };
        assert!(format!("{error:#}").contains("chmod 600"), "says how to fix it: {error:#}");
    }
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    kefu::Application::build(settings()).await.expect("a private tokens file is accepted");
}
