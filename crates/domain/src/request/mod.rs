//! The `ServiceRequest` aggregate: a question (咨询) or an after-sales request (售后申请)
//! from receipt through assignment, first response (R-P7) and resolution, with the
//! after-sales callback due (R-P15), or its escalation to a complaint.
//!
//! Requests run on the complaints' SLA machinery: the first-response deadline is the
//! policy's `first_response` rule from receipt ([`RequestTerms::under`]), the callback
//! deadline its `callback_after_closure` rule from resolution, both fixed under the
//! policy version recorded at receipt (R-T3).

mod commands;
mod decide;
mod events;

use chrono::{DateTime, Utc};

pub use commands::*;
pub use events::*;

use crate::aggregate::Aggregate;
use crate::error::DomainError;
use crate::ids::{CaseNumber, ComplaintId, CustomerId, ServiceRequestId, StaffId};
use crate::values::{IntakeChannel, RequestKind, Text};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Open,
    Resolved,
    /// Filed as a complaint; the complaint carries it on.
    Escalated,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Resolved => "resolved",
            RequestStatus::Escalated => "escalated",
        }
    }
}

/// A received request as folded from its events.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub id: ServiceRequestId,
    pub customer_id: CustomerId,
    pub kind: RequestKind,
    pub channel: IntakeChannel,
    pub category: Text,
    pub description: Text,
    pub received_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub terms: RequestTerms,
    pub agent: Option<StaffId>,
    pub status: RequestStatus,
    pub responses: u32,
    /// R-P7: the earliest answer (a resolution without an earlier answer is one).
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<Text>,
    /// R-P15: for an after-sales request, when its callback is due.
    pub callback_due_at: Option<DateTime<Utc>>,
    /// The complaint the request was escalated to.
    pub complaint: Option<(ComplaintId, CaseNumber)>,
}

impl RequestRecord {
    fn may_act(&self, actor: &RequestActor) -> bool {
        actor.stepping_in || self.agent.as_ref() == Some(&actor.staff)
    }
}

/// The `ServiceRequest` aggregate; its state is `None` until received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRequest;

impl Aggregate for ServiceRequest {
    type State = Option<RequestRecord>;
    type Command = RequestCommand;
    type Event = RequestEvent;

    fn decide(
        state: &Self::State,
        command: RequestCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<RequestEvent>, DomainError> {
        decide::decide(state.as_ref(), command, now)
    }

    /// R-C8: a request's texts are the customer's personal data, sealed with their key.
    fn data_subject(state: &Self::State, events: &[RequestEvent]) -> Option<CustomerId> {
        state.as_ref().map(|record| record.customer_id).or_else(|| {
            events.iter().find_map(|event| match event {
                RequestEvent::RequestReceived(e) => Some(e.customer_id),
                _ => None,
            })
        })
    }

    fn evolve(state: Self::State, event: &RequestEvent) -> Self::State {
        let mut record = match (state, event) {
            (None, RequestEvent::RequestReceived(e)) => {
                return Some(RequestRecord {
                    id: e.request_id,
                    customer_id: e.customer_id,
                    kind: e.kind,
                    channel: e.channel,
                    category: e.category.clone(),
                    description: e.description.clone(),
                    received_at: e.received_at,
                    recorded_at: e.recorded_at,
                    terms: e.terms,
                    agent: None,
                    status: RequestStatus::Open,
                    responses: 0,
                    first_response_at: None,
                    resolved_at: None,
                    resolution: None,
                    callback_due_at: None,
                    complaint: None,
                })
            }
            // Only a receipt starts a request.
            (None, _) => return None,
            (Some(record), _) => record,
        };
        match event {
            RequestEvent::RequestReceived(_) => {}
            RequestEvent::RequestAssigned(e) => record.agent = Some(e.agent.clone()),
            RequestEvent::RequestResponded(e) => {
                record.responses += 1;
                record.first_response_at = earliest(record.first_response_at, e.responded_at);
            }
            RequestEvent::RequestResolved(e) => {
                record.status = RequestStatus::Resolved;
                record.resolved_at = Some(e.resolved_at);
                record.resolution = Some(e.summary.clone());
                record.first_response_at = earliest(record.first_response_at, e.resolved_at);
                record.callback_due_at = e.callback_due_at;
            }
            RequestEvent::RequestEscalated(e) => {
                record.status = RequestStatus::Escalated;
                record.complaint = Some((e.complaint_id, e.case_number));
            }
        }
        Some(record)
    }
}

fn earliest(current: Option<DateTime<Utc>>, candidate: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(current.map_or(candidate, |current| current.min(candidate)))
}
