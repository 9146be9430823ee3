//! `grpc.health.v1`: every kefu service is registered, with liveness and one name per
//! projection; readiness turns NOT_SERVING when the database cannot be reached and
//! back when it can, while liveness (restart me) stays SERVING; a stopped projection
//! takes the services that read the read models until it is rebuilt; a writer its
//! supervisor gave up on takes readiness and liveness.

use std::time::Duration;

use kefu_api::pb;
use kefu_event_store::test_hooks::{GIVE_UP_AFTER, PANIC_STREAM};
use kefu_event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StoreError, StoreOptions};
use kefu_projection::{all_projections, Runner};
use kefu_testkit::Backend;
use kefu_tests::flows::{file, file_request, register_customer, standard_staff};
use kefu_tests::{db, spawn_app_with};
use sqlx::{Connection, Executor};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Every name kefu answers health for: the server, each service, liveness, and each
/// projection.
const NAMES: [&str; 12] = [
    "",
    "kefu.v1.CustomerService",
    "kefu.v1.StaffService",
    "kefu.v1.ComplaintService",
    "kefu.v1.CallbackService",
    "kefu.v1.ReportingService",
    "kefu.v1.EventService",
    "kefu.v1.AuditService",
    "kefu.liveness",
    "kefu.projection.customers",
    "kefu.projection.complaints",
    "kefu.projection.staff",
];

async fn health(address: std::net::SocketAddr) -> HealthClient<Channel> {
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    HealthClient::new(channel)
}

async fn status(client: &mut HealthClient<Channel>, name: &str) -> ServingStatus {
    let request = HealthCheckRequest { service: name.to_owned() };
    let response = client.check(request).await.unwrap_or_else(|e| panic!("{name:?}: {e:?}"));
    ServingStatus::try_from(response.into_inner().status).expect("a known status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_answers_health_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, |_, _| {}).await.expect("app");
    let mut client = health(app.addr).await;
    for name in NAMES {
        assert_eq!(status(&mut client, name).await, ServingStatus::Serving, "{name:?}");
    }
    let unknown = client.check(HealthCheckRequest { service: "kefu.v1.Nothing".into() }).await;
    assert_eq!(unknown.expect_err("not a service").code(), tonic::Code::NotFound);
    app.stop().await;
}

/// Waits until the watched status is `wanted`.
async fn watch_until(
    updates: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    wanted: ServingStatus,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline, updates.message())
            .await
            .unwrap_or_else(|_| panic!("health never turned {wanted:?}"))
            .expect("watching health")
            .expect("the watch goes on");
        if next.status == wanted as i32 {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_and_liveness_does_not_postgres() {
    let Some(app) = spawn_app_with(Backend::Postgres, |settings, _| {
        settings.health_interval = Duration::from_millis(100);
    })
    .await
    else {
        return;
    };
    let mut client = health(app.addr).await;
    let mut updates = client
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .expect("watch")
        .into_inner();
    watch_until(&mut updates, ServingStatus::Serving).await;

    // The database refuses kefu: no new connections, the open ones cut.
    let url = app.db.url().to_owned();
    let (server, name) = url.rsplit_once('/').expect("a database in the URL");
    let mut admin =
        sqlx::PgConnection::connect(&format!("{server}/postgres")).await.expect("admin");
    let refuse = format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    );
    admin.execute(refuse.as_str()).await.expect("refuse kefu");
    watch_until(&mut updates, ServingStatus::NotServing).await;
    assert_eq!(status(&mut client, "kefu.v1.ComplaintService").await, ServingStatus::NotServing);
    assert_eq!(status(&mut client, "kefu.liveness").await, ServingStatus::Serving);

    admin
        .execute(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true").as_str())
        .await
        .expect("allow");
    watch_until(&mut updates, ServingStatus::Serving).await;
    assert_eq!(status(&mut client, "kefu.v1.ComplaintService").await, ServingStatus::Serving);
    app.stop().await;
}

/// Health looked at often, so the tests wait little for a probe.
fn fast_health(settings: &mut kefu::Settings, _: &std::path::Path) {
    settings.health_interval = Duration::from_millis(100);
}

/// A health watch of `name`, its first status SERVING.
async fn watching(
    client: &mut HealthClient<Channel>,
    name: &str,
) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    let request = HealthCheckRequest { service: name.to_owned() };
    let mut updates = client.watch(request).await.expect("watch").into_inner();
    watch_until(&mut updates, ServingStatus::Serving).await;
    updates
}

/// The services that read the read models: a stopped projection takes their readiness.
const READ_MODEL_SERVICES: [&str; 5] = [
    "kefu.v1.CustomerService",
    "kefu.v1.StaffService",
    "kefu.v1.ComplaintService",
    "kefu.v1.CallbackService",
    "kefu.v1.ReportingService",
];

/// Statements that make the database refuse every new `rm_complaints` row, and the ones
/// that take that back.
fn refusing_complaint_rows(backend: Backend) -> (Vec<&'static str>, &'static str) {
    match backend {
        Backend::Sqlite => (
            vec![
                "CREATE TRIGGER test_refuse BEFORE INSERT ON rm_complaints \
                 BEGIN SELECT RAISE(ABORT, 'rm_complaints takes no rows'); END",
            ],
            "DROP TRIGGER test_refuse",
        ),
        Backend::Postgres => (
            vec![
                "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'rm_complaints takes no rows'; END $$",
                "CREATE TRIGGER test_refuse BEFORE INSERT ON rm_complaints \
                 FOR EACH ROW EXECUTE FUNCTION test_refuse()",
            ],
            "DROP TRIGGER test_refuse ON rm_complaints",
        ),
    }
}

/// A projection that cannot apply a stored event stops alone: its own name and the
/// readiness of every service reading the read models turn NOT_SERVING, while the node
/// (`""`, so filings and the feed stay in the balancer), the services answering from
/// the log alone and liveness (a restart cures nothing here) stay SERVING. After the
/// cause is removed and the projection rebuilt (as `kefu projections rebuild
/// complaints` does), everything serves again and the read model has the case.
///
/// The event is a real filing stored by the server. The complaints read model cannot
/// apply it because the database refuses its row (a trigger planted behind kefu's back,
/// as a bad manual migration would): unlike an event no binary can decode (see
/// tests/integrity/storage.rs), that cause can be fixed, so the recovery is shown too.
async fn a_stopped_projection_takes_its_readers_out_until_rebuilt(backend: Backend) {
    let Some(app) = spawn_app_with(backend, fast_health).await else { return };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Refused Row").await;
    let mut client = health(app.addr).await;
    let mut projection = watching(&mut client, "kefu.projection.complaints").await;
    let mut complaints = watching(&mut client, "kefu.v1.ComplaintService").await;

    let (refuse, take_back) = refusing_complaint_rows(backend);
    let refuse: Vec<String> = refuse.into_iter().map(str::to_owned).collect();
    db::execute(app.db.url(), &refuse).await;
    // The log takes the filing; the complaints read model cannot.
    let (complaint_id, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    watch_until(&mut projection, ServingStatus::NotServing).await;
    watch_until(&mut complaints, ServingStatus::NotServing).await;
    for name in READ_MODEL_SERVICES {
        assert_eq!(status(&mut client, name).await, ServingStatus::NotServing, "{name}");
    }
    for name in [
        "",
        "kefu.v1.EventService",
        "kefu.v1.AuditService",
        "kefu.liveness",
        "kefu.projection.customers",
        "kefu.projection.staff",
    ] {
        assert_eq!(status(&mut client, name).await, ServingStatus::Serving, "{name:?}");
    }
    // Filings go on while it is stopped.
    file(&mut agent, &customer, pb::Severity::Normal, "").await;

    db::execute(app.db.url(), &[take_back.to_owned()]).await;
    let store = EventStore::open(app.db.url(), StoreOptions::default()).await.expect("open");
    let head = store.head_position().await.expect("head");
    Runner::new(store, all_projections()).rebuild("complaints", |_, _| {}).await.expect("rebuild");
    watch_until(&mut projection, ServingStatus::Serving).await;
    watch_until(&mut complaints, ServingStatus::Serving).await;
    for name in NAMES {
        assert_eq!(status(&mut client, name).await, ServingStatus::Serving, "{name:?}");
    }
    let mut supervisor = app.clients(Some("s1")).await;
    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest { min_position: head, ..Default::default() })
        .await
        .expect("complaints answer again")
        .into_inner();
    assert!(listed.complaints.iter().any(|c| c.complaint_id == complaint_id), "{listed:?}");
    assert_eq!(listed.complaints.len(), 2, "both filings, once each");
    app.stop().await;
}

/// A writer that keeps panicking is given up on by its supervisor (the integrity work):
/// no append can succeed until the process restarts, so readiness and liveness both turn
/// NOT_SERVING, and a filing answers UNAVAILABLE (retryable elsewhere).
///
/// The panics are real panics of the server's own writer thread, handled by its real
/// supervisor: the `test-hooks` feature of kefu-event-store (enabled by this crate only)
/// compiles in one line that panics the writer on a batch holding an append to
/// [`PANIC_STREAM`], a stream no RPC can name. Nothing is replaced or faked: the
/// probe reads the store's `writer_alive` and health answers over gRPC.
async fn a_dead_writer_takes_readiness_and_liveness(backend: Backend) {
    let Some(app) = spawn_app_with(backend, fast_health).await else { return };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Before The Panics").await;
    let mut client = health(app.addr).await;
    let mut ready = watching(&mut client, "").await;
    let mut alive = watching(&mut client, "kefu.liveness").await;

    let stream = kefu_event_store::StreamId::new(PANIC_STREAM).expect("stream");
    for _ in 0..GIVE_UP_AFTER {
        let event = NewEvent::new(uuid::Uuid::now_v7(), "Panics", 1, serde_json::json!({}));
        let appended =
            app.store.append(&stream, ExpectedVersion::Any, &[event], &Metadata::default()).await;
        assert!(matches!(appended, Err(StoreError::Unavailable(_))), "{appended:?}");
    }
    watch_until(&mut ready, ServingStatus::NotServing).await;
    watch_until(&mut alive, ServingStatus::NotServing).await;
    for name in ["kefu.v1.ComplaintService", "kefu.v1.EventService"] {
        assert_eq!(status(&mut client, name).await, ServingStatus::NotServing, "{name}");
    }
    let refused = agent
        .complaints
        .file_complaint(file_request(&customer, pb::Severity::Normal, ""))
        .await
        .expect_err("no writer");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    app.stop().await;
}

mod sqlite_failures {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_projection_takes_its_readers_out_until_rebuilt() {
        super::a_stopped_projection_takes_its_readers_out_until_rebuilt(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_writer_takes_readiness_and_liveness() {
        super::a_dead_writer_takes_readiness_and_liveness(Backend::Sqlite).await;
    }
}

mod postgres_failures {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_projection_takes_its_readers_out_until_rebuilt() {
        super::a_stopped_projection_takes_its_readers_out_until_rebuilt(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_writer_takes_readiness_and_liveness() {
        super::a_dead_writer_takes_readiness_and_liveness(Backend::Postgres).await;
    }
}
