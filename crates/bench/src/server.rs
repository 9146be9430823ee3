//! The system under test: a real kefu server in this process on a loopback port (or one
//! already running, `--endpoint`), and tonic clients that authenticate to it.

use std::path::Path;

use anyhow::Context;
use kefu_api::pb;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::Target;

/// Bearer tokens of the in-process server: an admin and the handler `h1`.
const ADMIN_TOKEN: &str = "bench-admin";
const HANDLER_TOKEN: &str = "bench-h1";

/// A kefu to drive; the in-process one stops when this is dropped.
pub struct Server {
    pub endpoint: String,
    pub admin_token: String,
    pub handler_token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn write_tokens(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let entry = |token: &str, principal: &str, role: &str| {
        format!(
            r#"{{"sha256":"{}","principal":"{principal}","roles":["{role}"],"clearance":"secret"}}"#,
            kefu_api::auth::hash_token(token)
        )
    };
    // Agent a1 owns the customers the modes register: an agent must hold a token
    // cleared for their customers' level (R-C6); nobody calls with it.
    let tokens = format!(
        r#"{{"tokens":[{},{},{}]}}"#,
        entry(ADMIN_TOKEN, "bench-admin", "admin"),
        entry(HANDLER_TOKEN, "h1", "agent"),
        entry("bench-a1", "a1", "agent")
    );
    std::fs::write(path, tokens).context("write tokens file")?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Starts kefu over `target` on 127.0.0.1, or uses `endpoint` with `token` (admin).
pub async fn start(
    target: &Target,
    endpoint: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<Server> {
    if let Some(endpoint) = endpoint {
        let token = token.context("--endpoint needs --token (an admin token)")?;
        return Ok(Server {
            endpoint: endpoint.to_owned(),
            admin_token: token.to_owned(),
            handler_token: token.to_owned(),
            stop: None,
        });
    }
    let dir = target.scratch_dir()?;
    let tokens = dir.join("bench-tokens.json");
    write_tokens(&tokens)?;
    let mut settings = kefu::Settings::new(target.url.clone(), "127.0.0.1:0".parse()?);
    settings.tokens_file = Some(tokens);
    // The benchmark measures capacity: no shedding or rate limits in the way.
    settings.limits = kefu::CallLimits::unlimited();
    let app = kefu::Application::build(settings).await?;
    let addr = app.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Ok(Server {
        endpoint: format!("http://{addr}"),
        admin_token: ADMIN_TOKEN.to_owned(),
        handler_token: HANDLER_TOKEN.to_owned(),
        stop: Some(stop),
    })
}

/// Adds the bearer token to every call.
#[derive(Debug, Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// One connection's clients, all as one principal.
#[derive(Clone)]
pub struct Client {
    pub staff: pb::staff_service_client::StaffServiceClient<Authed>,
    pub customers: pb::customer_service_client::CustomerServiceClient<Authed>,
    pub complaints: pb::complaint_service_client::ComplaintServiceClient<Authed>,
    pub audit: pb::audit_service_client::AuditServiceClient<Authed>,
    pub reports: pb::reporting_service_client::ReportingServiceClient<Authed>,
    pub callbacks: pb::callback_service_client::CallbackServiceClient<Authed>,
    pub requests: pb::request_service_client::RequestServiceClient<Authed>,
}

impl Server {
    /// A new connection as the admin (`handler: false`) or as handler `h1`.
    pub async fn client(&self, handler: bool) -> anyhow::Result<Client> {
        let channel = Channel::from_shared(self.endpoint.clone())?.connect().await?;
        let token = if handler { &self.handler_token } else { &self.admin_token };
        let bearer = Bearer(format!("Bearer {token}").parse()?);
        Ok(Client {
            staff: pb::staff_service_client::StaffServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            customers: pb::customer_service_client::CustomerServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            complaints: pb::complaint_service_client::ComplaintServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            audit: pb::audit_service_client::AuditServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            reports: pb::reporting_service_client::ReportingServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            callbacks: pb::callback_service_client::CallbackServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            requests: pb::request_service_client::RequestServiceClient::with_interceptor(
                channel, bearer,
            ),
        })
    }
}

/// Peak and current resident memory of this process (server and clients), in MiB.
pub fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Starts a new peak for [`rss_mib`] (Linux's `clear_refs` 5 resets `VmHWM`), so a phase's
/// peak is its own and not the seeding's before it.
pub fn reset_rss_peak() {
    // Where the kernel refuses it, the peak stays the whole process's: still an upper bound.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
