//! Reports from a read replica: with `read_database_url` pointing at a PostgreSQL hot
//! standby (a real one, streaming from the primary), the reporting RPCs read the
//! standby and wait for *its* checkpoints to reach `min_position`, so read-your-writes
//! holds there too; everything else stays on the primary.

use std::time::Duration;

use kefu_api::pb;
use kefu_tests::{flows, reason, spawn_app_on, Clients};
use sqlx::{Connection, Executor};
use tonic::Code;

/// Open complaints on the dashboard read with `min_position`.
async fn open_cases(clients: &mut Clients, min_position: u64) -> Result<u64, tonic::Status> {
    let request = pb::GetDashboardRequest { min_position, as_of: None };
    let dashboard = clients.reports.get_dashboard(request).await?.into_inner();
    Ok(dashboard.open_by_stage.iter().map(|stage| stage.count).sum())
}

/// [`open_cases`], asked again while the answer is "read models behind" (the standby
/// replays asynchronously): never a stale answer, only a refusal or the write.
async fn open_cases_once_caught_up(clients: &mut Clients, min_position: u64) -> u64 {
    for _ in 0..60 {
        match open_cases(clients, min_position).await {
            Ok(open) => return open,
            Err(status) if reason(&status).as_deref() == Some("READ_MODEL_BEHIND") => continue,
            Err(status) => panic!("{status:?}"),
        }
    }
    panic!("the standby never reached position {min_position}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_read_the_standby_and_wait_for_its_replay_postgres() {
    let Some((primary, standby_url)) = kefu_testkit::replicated_postgres().await else { return };
    let replica = standby_url.clone();
    let app = spawn_app_on(primary, move |settings, _| {
        settings.read_database_url = Some(replica);
        settings.read_wait = Duration::from_secs(1);
    })
    .await;
    flows::standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = flows::register_customer(&mut agent, "R").await;
    let filed = agent
        .complaints
        .file_complaint(flows::file_request(&customer, pb::Severity::Normal, ""))
        .await
        .expect("file")
        .into_inner();
    let first = filed.result.expect("result").position;
    let mut supervisor = app.clients(Some("s1")).await;
    assert_eq!(open_cases_once_caught_up(&mut supervisor, first).await, 1);

    // The standby stops replaying: the primary goes on, the standby stays behind.
    let mut standby = sqlx::PgConnection::connect(&standby_url).await.expect("standby");
    standby.execute("SELECT pg_wal_replay_pause()").await.expect("pause replay");
    let filed = agent
        .complaints
        .file_complaint(flows::file_request(&customer, pb::Severity::Normal, ""))
        .await
        .expect("file")
        .into_inner();
    let second = filed.result.expect("result").position;
    // Commands and record reads stay on the primary, caught up at once.
    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest { min_position: second, ..Default::default() })
        .await
        .expect("listed from the primary")
        .into_inner();
    assert_eq!(listed.complaints.len(), 2);
    // A report waits for the standby rather than answer without the caller's write.
    let behind = open_cases(&mut supervisor, second).await.expect_err("the standby is paused");
    assert_eq!(behind.code(), Code::DeadlineExceeded);
    assert_eq!(reason(&behind).as_deref(), Some("READ_MODEL_BEHIND"));
    assert_eq!(open_cases(&mut supervisor, 0).await.expect("stale is fine unasked"), 1);

    // Replay resumes: the report that asks for the write sees it.
    standby.execute("SELECT pg_wal_replay_resume()").await.expect("resume replay");
    assert_eq!(open_cases_once_caught_up(&mut supervisor, second).await, 2);
    app.stop().await;
}
