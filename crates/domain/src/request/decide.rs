//! `ServiceRequest::decide`: every rule of a service request that its stream can enforce.

use chrono::{DateTime, Utc};

use super::commands::*;
use super::events::*;
use super::{RequestRecord, RequestStatus};
use crate::error::DomainError;
use crate::policy::SlaRule;
use crate::values::RequestKind;

pub(super) fn decide(
    record: Option<&RequestRecord>,
    command: RequestCommand,
    now: DateTime<Utc>,
) -> Result<Vec<RequestEvent>, DomainError> {
    let Some(record) = record else {
        return match command {
            RequestCommand::Receive(receive) => receive_request(receive, now),
            _ => Err(DomainError::RequestNotReceived),
        };
    };
    if let Some((_, case_number)) = record.complaint {
        return Err(DomainError::RequestAlreadyEscalated {
            complaint: format!("complaint {case_number}"),
        });
    }
    // A resolved request may still become a complaint; nothing else changes it.
    if record.status == RequestStatus::Resolved && !matches!(command, RequestCommand::Escalate(_)) {
        return Err(match command {
            RequestCommand::Receive(_) => DomainError::RequestAlreadyReceived,
            _ => DomainError::RequestAlreadyResolved,
        });
    }
    let event: RequestEvent = match command {
        RequestCommand::Receive(_) => return Err(DomainError::RequestAlreadyReceived),
        RequestCommand::Assign(assign) => {
            if !assign.agent_cleared {
                return Err(DomainError::AgentNotCleared);
            }
            if record.agent.as_ref() == Some(&assign.agent) {
                return Ok(vec![]);
            }
            RequestAssigned {
                agent: assign.agent,
                previous: record.agent.clone(),
                reason: assign.reason,
                assigned_at: now,
            }
            .into()
        }
        RequestCommand::Respond(respond) => {
            if !record.may_act(&respond.by) {
                return Err(DomainError::NotRequestAgent);
            }
            let responded_at = crate::time::given("responded_at", respond.responded_at, now)?;
            if responded_at < record.received_at {
                return Err(DomainError::ResponseBeforeReceipt);
            }
            RequestResponded {
                by: respond.by.staff,
                channel: respond.channel,
                summary: respond.summary,
                responded_at,
            }
            .into()
        }
        RequestCommand::Resolve(resolve) => {
            if !record.may_act(&resolve.by) {
                return Err(DomainError::NotRequestAgent);
            }
            if resolve.policy.version != record.terms.policy_version {
                return Err(DomainError::PolicyVersionUnknown {
                    version: record.terms.policy_version,
                });
            }
            // R-P15: an after-sales service is called back within the callback target.
            let callback = (record.kind == RequestKind::AfterSale).then(|| {
                resolve.policy.policy.deadline(
                    SlaRule::CallbackAfterClosure,
                    now,
                    None,
                    Some(record.terms.tier),
                )
            });
            RequestResolved {
                by: resolve.by.staff,
                summary: resolve.summary,
                resolved_at: now,
                first_contact: record.responses == 0,
                callback_due_at: callback.map(|deadline| deadline.due),
                callback_at_risk_at: callback.map(|deadline| deadline.at_risk),
            }
            .into()
        }
        RequestCommand::Escalate(escalate) => RequestEscalated {
            complaint_id: escalate.complaint_id,
            case_number: escalate.case_number,
            by: escalate.by,
            reason: escalate.reason,
            escalated_at: now,
        }
        .into(),
    };
    Ok(vec![event])
}

/// Intake: a taxonomy category, a receipt in the past, a cleared agent; the deadline
/// of the first response fixed under the policy in force (R-P7, R-T3).
fn receive_request(
    receive: ReceiveRequest,
    now: DateTime<Utc>,
) -> Result<Vec<RequestEvent>, DomainError> {
    let category = crate::taxonomy::category(receive.category.as_str())?;
    let received_at = crate::time::given("received_at", receive.received_at, now)?;
    if !receive.agent_cleared {
        return Err(DomainError::AgentNotCleared);
    }
    let terms = RequestTerms::under(
        receive.policy.version,
        &receive.policy.policy,
        received_at,
        receive.tier,
    );
    Ok(vec![
        RequestReceived {
            request_id: receive.request_id,
            customer_id: receive.customer_id,
            kind: receive.kind,
            channel: receive.channel,
            category,
            description: receive.description,
            received_at,
            recorded_at: now,
            terms,
        }
        .into(),
        RequestAssigned { agent: receive.agent, previous: None, reason: None, assigned_at: now }
            .into(),
    ])
}
