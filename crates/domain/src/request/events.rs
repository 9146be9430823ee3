//! What happens to a service request: the events of a `request-<uuid>` stream.
//!
//! Every fact the quality metrics need is here: when the request was received and
//! through which channel, who holds it, when it was first answered and resolved, and
//! whether the resolution was the first answer (first-contact resolution).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::{event_enum, no_upcasters};
use crate::ids::{CaseNumber, ComplaintId, CustomerId, ServiceRequestId, StaffId};
use crate::policy::{Policy, SlaRule};
use crate::values::{ContactChannel, IntakeChannel, RequestKind, Text, Tier};

/// A question (咨询) or an after-sales request (售后申请) came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestReceived {
    pub request_id: ServiceRequestId,
    pub customer_id: CustomerId,
    pub kind: RequestKind,
    /// How it reached us (the complaints' intake channels).
    pub channel: IntakeChannel,
    /// A category code of the one taxonomy ([`crate::taxonomy::CATEGORIES`]).
    pub category: Text,
    /// What the customer asks, in their words (personal text, sealed).
    pub description: Text,
    /// When the call, visit or message came in; the SLA clock starts here (R-P7).
    pub received_at: DateTime<Utc>,
    /// When it was entered.
    pub recorded_at: DateTime<Utc>,
    pub terms: RequestTerms,
}

/// R-T3: the policy version a request is held to and the deadline it gave, fixed at
/// receipt: a later policy change never moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestTerms {
    pub policy_version: u64,
    /// The customer's tier at receipt, which chose the tier's targets.
    pub tier: Tier,
    /// R-P7: when the first response is due (12 hours by default).
    pub first_response_due_at: DateTime<Utc>,
    /// R-T5: when the first response is at risk.
    pub first_response_at_risk_at: DateTime<Utc>,
}

impl RequestTerms {
    /// R-P7: the first-response deadline `policy` gives a request received at
    /// `received_at` from a customer of `tier`: the same rule and deadline math as a
    /// complaint's first response. A request has no severity, so only the base and the
    /// tier's targets apply.
    pub fn under(version: u64, policy: &Policy, received_at: DateTime<Utc>, tier: Tier) -> Self {
        let first = policy.deadline(SlaRule::FirstResponse, received_at, None, Some(tier));
        RequestTerms {
            policy_version: version,
            tier,
            first_response_due_at: first.due,
            first_response_at_risk_at: first.at_risk,
        }
    }
}

/// R-C3: the agent who handles the request (balanced on receipt, or reassigned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestAssigned {
    pub agent: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<StaffId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
    pub assigned_at: DateTime<Utc>,
}

/// R-P7: the customer was answered; the earliest one is the first response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestResponded {
    pub by: StaffId,
    pub channel: ContactChannel,
    pub summary: Text,
    pub responded_at: DateTime<Utc>,
}

/// The request is settled. For an after-sales request the callback of R-P15 is due
/// within the policy's callback target of the resolution (under the request's policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestResolved {
    pub by: StaffId,
    pub summary: Text,
    pub resolved_at: DateTime<Utc>,
    /// True when no response preceded the resolution: it was the first response
    /// (first-contact resolution).
    pub first_contact: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_due_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_at_risk_at: Option<DateTime<Utc>>,
}

/// A dissatisfied requester became a complainant: the complaint filed from the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEscalated {
    pub complaint_id: ComplaintId,
    pub case_number: CaseNumber,
    pub by: StaffId,
    pub reason: Text,
    pub escalated_at: DateTime<Utc>,
}

event_enum!(
    /// Everything that happens in a `request-<uuid>` stream.
    RequestEvent, upcast = no_upcasters, {
        RequestReceived = 1,
        RequestAssigned = 1,
        RequestResponded = 1,
        RequestResolved = 1,
        RequestEscalated = 1,
    }
);
