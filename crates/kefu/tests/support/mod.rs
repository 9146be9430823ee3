//! What the `kefu` binary's tests share: an admin token, its tokens file, and the agent,
//! customer and filing they set up over gRPC.

use std::path::{Path, PathBuf};

use kefu_api::pb;
use tonic::transport::Channel;

/// Adds the admin's bearer token (`token-admin`) to every call.
#[derive(Debug, Clone)]
pub struct Bearer;

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", "Bearer token-admin".parse().expect("ascii"));
        Ok(request)
    }
}

pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// A tokens file in `dir` (mode 0600) knowing one admin, `token-admin`, and agent `a1`
/// (`token-a1`, internal): a customer's agent must hold a token cleared for the
/// customer's level (R-C6).
pub fn write_tokens(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tokens = dir.join("tokens.json");
    let admin = kefu_api::auth::hash_token("token-admin");
    let agent = kefu_api::auth::hash_token("token-a1");
    let entries = [
        format!(
            r#"{{"sha256":"{admin}","principal":"admin","roles":["admin"],"clearance":"secret"}}"#
        ),
        format!(
            r#"{{"sha256":"{agent}","principal":"a1","roles":["agent"],"clearance":"internal"}}"#
        ),
    ];
    std::fs::write(&tokens, format!(r#"{{"tokens":[{}]}}"#, entries.join(","))).expect("tokens");
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    tokens
}

pub fn complaints(
    channel: &Channel,
) -> pb::complaint_service_client::ComplaintServiceClient<Authed> {
    pb::complaint_service_client::ComplaintServiceClient::with_interceptor(channel.clone(), Bearer)
}

/// Registers agent `a1` and one customer of theirs; returns the customer's id.
pub async fn agent_and_customer(channel: &Channel, name: &str) -> String {
    let mut staff =
        pb::staff_service_client::StaffServiceClient::with_interceptor(channel.clone(), Bearer);
    staff
        .register_staff(pb::RegisterStaffRequest {
            request_id: "staff-a1".into(),
            staff_id: "a1".into(),
            name: "Agent One".into(),
            roles: vec![pb::StaffRole::Agent as i32],
        })
        .await
        .expect("register staff");
    let mut customers = pb::customer_service_client::CustomerServiceClient::with_interceptor(
        channel.clone(),
        Bearer,
    );
    let registered = customers
        .register_customer(pb::RegisterCustomerRequest {
            request_id: format!("customer-{name}"),
            name: name.to_owned(),
            kind: pb::CustomerKind::Individual as i32,
            contacts: Some(pb::Contacts {
                phones: vec!["+86 21 5555 0101".into()],
                ..Default::default()
            }),
            tier: pb::Tier::Regular as i32,
            source_channel: "web".into(),
            confidentiality: pb::Confidentiality::Internal as i32,
            agent: "a1".into(),
            ..Default::default()
        })
        .await
        .expect("register customer");
    registered.into_inner().result.expect("result").id
}

/// A normal-severity billing complaint under `request_id`.
pub fn filing(request_id: &str, customer_id: &str, description: &str) -> pb::FileComplaintRequest {
    pb::FileComplaintRequest {
        request_id: request_id.to_owned(),
        customer_id: customer_id.to_owned(),
        category: "billing".into(),
        cause: "double_charge".into(),
        severity: pb::Severity::Normal as i32,
        channel: pb::IntakeChannel::Phone as i32,
        description: description.to_owned(),
        ..Default::default()
    }
}
