//! The `requests` mode (issue 22): service requests through their lifecycle over gRPC.
//! Each client receives a request for its customer (as the handler `h1`, who is also an
//! agent and takes it), answers it, then resolves it, or, every fifth, escalates it to
//! a complaint (the case number, the complaint and the request's escalation in one
//! append group). Latencies are per command; the figures say how many of each ran.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use kefu_api::pb;
use serde_json::{json, Value};

use crate::load::{clients, drive, figures, prepare_staff, register_customer, rid};
use crate::server::{Client, Server};
use crate::Common;

/// Every how many lifecycles one is escalated instead of resolved.
const ESCALATE_EVERY: u64 = 5;

/// Commands run, by kind.
#[derive(Default)]
struct Ran {
    received: AtomicU64,
    responded: AtomicU64,
    resolved: AtomicU64,
    escalated: AtomicU64,
}

pub async fn run(server: &Server, common: &Common, backend: &str) -> anyhow::Result<Value> {
    let mut admin = server.client(false).await?;
    prepare_staff(&mut admin).await?;
    let n = common.concurrency.max(1);
    let mut customers = Vec::with_capacity(n);
    for index in 0..n {
        customers.push(register_customer(&mut admin, index).await?);
    }
    let customers = Arc::new(customers);
    let ran = Arc::new(Ran::default());
    let counted = ran.clone();
    let (latencies, elapsed) =
        drive(clients(server, n, true).await?, common.duration(), move |index, client, i| {
            let customer = customers[index].clone();
            let ran = counted.clone();
            async move { lifecycle(client, &customer, i, &ran).await }
        })
        .await?;
    let lifecycles = u64::try_from(latencies.len())?;
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (received, responded) = (count(&ran.received), count(&ran.responded));
    let (resolved, escalated) = (count(&ran.resolved), count(&ran.escalated));
    let commands = received + responded + resolved + escalated;
    // A receipt writes 2 events, an answer and a resolution 1, an escalation 3 (the
    // number, the complaint and the request's escalation).
    let events = 2 * received + responded + resolved + 3 * escalated;
    let mut result = figures("requests", common, backend, lifecycles, 0, latencies, elapsed);
    result["latency_of"] = json!("one lifecycle (3 commands)");
    result["lifecycles"] = json!(lifecycles);
    result["commands"] = json!(commands);
    result["commands_per_s"] = json!(crate::stats::per_second(commands, elapsed));
    result["events_per_s"] = json!(crate::stats::per_second(events, elapsed));
    result["by_command"] = json!({
        "received": received, "responded": responded, "resolved": resolved,
        "escalated": escalated,
    });
    Ok(result)
}

async fn lifecycle(
    mut client: Client,
    customer: &str,
    iteration: u64,
    ran: &Ran,
) -> anyhow::Result<()> {
    let received = client
        .requests
        .receive_request(pb::ReceiveRequestRequest {
            request_id: rid(),
            customer_id: customer.to_owned(),
            kind: pb::RequestKind::AfterSale as i32,
            channel: pb::IntakeChannel::Phone as i32,
            category: "product".into(),
            description: "the heater clicks but does not start".into(),
            received_at: None,
            agent: "h1".into(),
        })
        .await?
        .into_inner();
    let id = received.result.context("result")?.id;
    ran.received.fetch_add(1, Ordering::Relaxed);
    client
        .requests
        .respond_to_request(pb::RespondToRequestRequest {
            request_id: rid(),
            service_request_id: id.clone(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            summary: "a technician calls tomorrow".into(),
            responded_at: None,
        })
        .await?;
    ran.responded.fetch_add(1, Ordering::Relaxed);
    if iteration % ESCALATE_EVERY == ESCALATE_EVERY - 1 {
        client
            .requests
            .escalate_to_complaint(pb::EscalateToComplaintRequest {
                request_id: rid(),
                service_request_id: id,
                expected_version: None,
                cause: "no_response".into(),
                severity: pb::Severity::Normal as i32,
                respondent: String::new(),
                reason: "the technician never came".into(),
            })
            .await?;
        ran.escalated.fetch_add(1, Ordering::Relaxed);
    } else {
        client
            .requests
            .resolve_request(pb::ResolveRequestRequest {
                request_id: rid(),
                service_request_id: id,
                expected_version: None,
                summary: "ignition part replaced".into(),
            })
            .await?;
        ran.resolved.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
