//! `spawn_app`: a real kefu on 127.0.0.1:0 over a fresh database, and clients that
//! authenticate as the principals of a test tokens file.

pub mod console;
pub mod db;
pub mod flows;
pub mod refusals;

use std::net::SocketAddr;
use std::time::Duration;

use kefu::{Application, Settings};
use kefu_api::auth::hash_token;
use kefu_api::pb::audit_service_client::AuditServiceClient;
use kefu_api::pb::callback_service_client::CallbackServiceClient;
use kefu_api::pb::complaint_service_client::ComplaintServiceClient;
use kefu_api::pb::customer_service_client::CustomerServiceClient;
use kefu_api::pb::event_service_client::EventServiceClient;
use kefu_api::pb::reporting_service_client::ReportingServiceClient;
use kefu_api::pb::request_service_client::RequestServiceClient;
use kefu_api::pb::staff_service_client::StaffServiceClient;
use kefu_testkit::{Backend, TestDatabase};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Declares each named `async fn(&TestApp)` as two tests, `sqlite::<name>` and
/// `postgres::<name>`, each on a fresh server and database (PostgreSQL ones return early
/// outside CI when no server can be had).
#[macro_export]
macro_rules! on_both_backends {
    // With the settings adjusted: `on_both_backends!(configure = |settings, dir| …; names)`.
    (configure = $configure:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::spawn_app_with(kefu_testkit::Backend::Sqlite, $configure)
                        .await
                        .expect("sqlite");
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let configured = $crate::spawn_app_with(kefu_testkit::Backend::Postgres, $configure);
                    let Some(app) = configured.await else { return };
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::spawn_app(kefu_testkit::Backend::Sqlite).await.expect("sqlite");
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::spawn_app(kefu_testkit::Backend::Postgres).await else { return };
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
    };
}

/// `(principal, roles, clearance)` of every token the test server knows; the token of
/// principal `p` is `token-p`.
pub const PRINCIPALS: &[(&str, &[&str], &str)] = &[
    ("admin", &["admin"], "secret"),
    ("a1", &["agent"], "internal"),
    ("a2", &["agent"], "internal"),
    ("h1", &["agent"], "internal"),
    ("h2", &["agent"], "internal"),
    ("r1", &["agent"], "internal"),
    ("sp1", &["specialist"], "internal"),
    ("s1", &["supervisor"], "confidential"),
    ("d1", &["director"], "secret"),
    ("co1", &["compliance"], "secret"),
    ("an1", &["analyst"], "public"),
    ("svc-web", &["service"], "internal"),
    ("svc-pub", &["service"], "public"),
    ("svc-sec", &["service"], "secret"),
    ("co-int", &["compliance"], "internal"),
    ("s-sec", &["supervisor"], "secret"),
    ("hs1", &["agent", "specialist"], "internal"),
    ("a-pub", &["agent"], "public"),
    ("s-pub", &["supervisor"], "public"),
    ("h-pub", &["agent"], "public"),
    ("h-sec", &["agent"], "secret"),
    ("s-resp", &["supervisor"], "secret"),
    ("d-resp", &["director"], "secret"),
    ("d2", &["director"], "secret"),
    // A principal written in capitals: the staff code `co-caps` (codes fold case).
    ("CO-CAPS", &["compliance", "supervisor"], "secret"),
    // On staff as an agent and handler, but holding only an analyst's token: cleared to
    // read aggregates, not the records an owner or handler works on.
    ("an-sec", &["analyst"], "secret"),
    ("a-sec", &["agent"], "secret"),
    // Committee members (R-P5): counted at a meeting only when cleared for the case's
    // customer (R-C6), like any handler.
    ("m1", &["specialist"], "secret"),
    ("m2", &["specialist"], "secret"),
    ("m3", &["specialist"], "secret"),
    ("c2", &["specialist"], "secret"),
    ("c3", &["specialist"], "secret"),
];

/// How many racing leavers (`x0`, `x1`, ...) hold tokens besides [`PRINCIPALS`].
pub const RACING_LEAVERS: usize = 32;

/// A running server and the database under it; stops when dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when the settings asked for it.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the console is served, when the settings asked for it.
    pub console_addr: Option<SocketAddr>,
    pub db: TestDatabase,
    /// The server's own event store (its writer), for fault injection.
    pub store: kefu_event_store::EventStore,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Starts kefu on a fresh database of `backend`; `None` when PostgreSQL cannot be had
/// outside CI.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_, _| {}).await
}

/// Settings without the per-principal rate of expensive reads (reports, the event log,
/// audit), for tests that make many such calls as inputs, not as load: the rate
/// refuses the surplus before any check runs (`RESOURCE_EXHAUSTED`), which is
/// tests/tests/limits.rs's subject, not theirs.
pub fn without_read_rate(settings: &mut Settings, _: &std::path::Path) {
    settings.limits.expensive_reads_per_second = None;
}

/// Like [`spawn_app`], letting the test adjust the settings (given the scratch dir).
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Settings, &std::path::Path),
) -> Option<TestApp> {
    let db = kefu_testkit::database(backend).await?;
    Some(spawn_app_on(db, configure).await)
}

/// Starts kefu on the given fresh database, letting the test adjust the settings.
pub async fn spawn_app_on(
    db: TestDatabase,
    configure: impl FnOnce(&mut Settings, &std::path::Path),
) -> TestApp {
    let dir = db.scratch_dir().expect("test databases have a scratch dir").to_path_buf();
    let tokens_file = dir.join("tokens.json");
    // Staff the race tests register and see leave, `x0`..: an assignee must hold a
    // token cleared for the customer (R-C6), so these hold agent tokens too.
    let leavers: Vec<(String, &[&str], &str)> =
        (0..RACING_LEAVERS).map(|n| (format!("x{n}"), &["agent"][..], "internal")).collect();
    let fixed =
        PRINCIPALS.iter().map(|(p, roles, clearance)| ((*p).to_owned(), *roles, *clearance));
    let entries: Vec<String> = fixed
        .chain(leavers)
        .map(|(principal, roles, clearance)| {
            let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
            format!(
                r#"{{"sha256":"{}","principal":"{principal}","roles":[{}],"clearance":"{clearance}"}}"#,
                hash_token(&format!("token-{principal}")),
                roles.join(",")
            )
        })
        .collect();
    std::fs::write(&tokens_file, format!(r#"{{"tokens":[{}]}}"#, entries.join(",")))
        .expect("write tokens");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tokens_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod tokens");
    }
    let mut settings = Settings::new(db.url(), "127.0.0.1:0".parse().expect("address"));
    settings.tokens_file = Some(tokens_file);
    settings.read_wait = Duration::from_secs(10);
    configure(&mut settings, &dir);
    let app = Application::build(settings).await.expect("build kefu");
    let addr = app.local_addr().expect("bound");
    let metrics_addr = app.metrics_addr();
    let console_addr = app.console_addr();
    let store = app.store().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp { addr, metrics_addr, console_addr, db, store, stop: Some(stop), task: Some(task) }
}

/// Another kefu process's worth of server on the same database (a second node).
#[derive(Debug)]
pub struct Node {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    pub async fn clients(&self, principal: Option<&str>) -> Clients {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect to the second node");
        TestApp::clients_on(channel, principal)
    }

    /// Stops the node (its projection leases go with it).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("node task").expect("node ran cleanly");
        }
    }
}

impl TestApp {
    /// Starts a second server on this app's database, with the same tokens.
    pub async fn second_node(&self) -> Node {
        let dir = self.db.scratch_dir().expect("scratch dir");
        let mut settings = Settings::new(self.db.url(), "127.0.0.1:0".parse().expect("address"));
        settings.tokens_file = Some(dir.join("tokens.json"));
        settings.read_wait = Duration::from_secs(10);
        let app = Application::build(settings).await.expect("build the second node");
        let addr = app.local_addr().expect("bound");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Node { addr, stop: Some(stop), task: Some(task) }
    }

    /// Clients authenticated as `principal` (`None`: no token at all).
    pub async fn clients(&self, principal: Option<&str>) -> Clients {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect to kefu");
        Self::clients_on(channel, principal)
    }

    /// Clients on an existing channel (e.g. one speaking TLS).
    pub fn clients_on(channel: Channel, principal: Option<&str>) -> Clients {
        let auth = Auth { header: principal.map(|p| format!("Bearer token-{p}")) };
        Clients {
            customers: CustomerServiceClient::with_interceptor(channel.clone(), auth.clone()),
            staff: StaffServiceClient::with_interceptor(channel.clone(), auth.clone()),
            complaints: ComplaintServiceClient::with_interceptor(channel.clone(), auth.clone()),
            callbacks: CallbackServiceClient::with_interceptor(channel.clone(), auth.clone()),
            reports: ReportingServiceClient::with_interceptor(channel.clone(), auth.clone()),
            requests: RequestServiceClient::with_interceptor(channel.clone(), auth.clone()),
            events: EventServiceClient::with_interceptor(channel.clone(), auth.clone()),
            audit: AuditServiceClient::with_interceptor(channel, auth),
        }
    }

    /// Stops the server but hands back its database, for other nodes still using it.
    pub async fn stop_keeping_database(mut self) -> TestDatabase {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran cleanly");
        }
        let placeholder = kefu_testkit::sqlite();
        std::mem::replace(&mut self.db, placeholder)
    }

    /// Stops the server, letting in-flight calls finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Adds the bearer token to every call.
#[derive(Debug, Clone)]
pub struct Auth {
    header: Option<String>,
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            let value: MetadataValue<_> =
                header.parse().map_err(|_| Status::internal("bad header"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// One client per service, all as the same principal.
#[derive(Debug, Clone)]
pub struct Clients {
    pub customers: CustomerServiceClient<InterceptedService<Channel, Auth>>,
    pub staff: StaffServiceClient<InterceptedService<Channel, Auth>>,
    pub complaints: ComplaintServiceClient<InterceptedService<Channel, Auth>>,
    pub callbacks: CallbackServiceClient<InterceptedService<Channel, Auth>>,
    pub reports: ReportingServiceClient<InterceptedService<Channel, Auth>>,
    pub requests: RequestServiceClient<InterceptedService<Channel, Auth>>,
    pub events: EventServiceClient<InterceptedService<Channel, Auth>>,
    pub audit: AuditServiceClient<InterceptedService<Channel, Auth>>,
}

/// The `ErrorInfo` reason of a failed call, if it has one.
pub fn reason(status: &Status) -> Option<String> {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|info| info.reason)
}

/// The fields named by a failed call's `BadRequest` details.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// A clock a test sets and advances, injected as the server's (`Settings::clock`):
/// time rules are tested at chosen instants, never by sleeping.
#[derive(Debug, Clone)]
pub struct TestClock(std::sync::Arc<std::sync::Mutex<chrono::DateTime<chrono::Utc>>>);

impl TestClock {
    pub fn at(now: chrono::DateTime<chrono::Utc>) -> Self {
        TestClock(std::sync::Arc::new(std::sync::Mutex::new(now)))
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set(&self, now: chrono::DateTime<chrono::Utc>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }

    pub fn advance(&self, by: chrono::TimeDelta) {
        self.set(self.now() + by);
    }

    /// The server's clock, reading this one.
    pub fn clock(&self) -> kefu_api::Clock {
        let this = self.clone();
        std::sync::Arc::new(move || this.now())
    }
}

/// A fresh idempotency key.
pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}
