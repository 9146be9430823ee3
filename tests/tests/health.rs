//! `grpc.health.v1`: every kefu service is registered, with liveness and one name per
//! projection; readiness turns NOT_SERVING when the database cannot be reached and
//! back when it can, while liveness (restart me) stays SERVING.

use std::time::Duration;

use kefu_testkit::Backend;
use kefu_tests::spawn_app_with;
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
