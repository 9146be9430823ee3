//! What callers may ask of a service request; each command is checked by
//! `ServiceRequest::decide`.

use chrono::{DateTime, Utc};

use crate::ids::{CaseNumber, ComplaintId, CustomerId, ServiceRequestId, StaffId};
use crate::policy_log::Versioned;
use crate::values::{ContactChannel, IntakeChannel, RequestKind, Text, Tier};

/// Intake. The caller has checked that the customer exists and chosen the agent
/// (balanced, [`crate::balance`]) among those cleared for the customer's level.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveRequest {
    pub request_id: ServiceRequestId,
    pub customer_id: CustomerId,
    pub kind: RequestKind,
    pub channel: IntakeChannel,
    /// A category code of the taxonomy; anything else is refused.
    pub category: Text,
    pub description: Text,
    /// When it came in; may precede the entry, never follow `now` (R-T4).
    pub received_at: DateTime<Utc>,
    /// R-T3: the policy in force, whose version and deadline the request keeps.
    pub policy: Versioned,
    /// The customer's tier now (it chooses the tier's targets).
    pub tier: Tier,
    pub agent: StaffId,
    /// R-C6: the caller found the agent cleared for the customer's level.
    pub agent_cleared: bool,
}

/// R-C3: hand the request to another agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignRequest {
    pub agent: StaffId,
    pub reason: Option<Text>,
    /// R-C6: the caller found the agent cleared for the customer's level.
    pub agent_cleared: bool,
}

/// Who acts on a request: its agent, or a supervisor stepping in (the caller resolves
/// the standing from the actor's roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestActor {
    pub staff: StaffId,
    pub stepping_in: bool,
}

/// R-P7: an answer to the customer; the first one is the first response.
#[derive(Debug, Clone, PartialEq)]
pub struct RespondToRequest {
    pub by: RequestActor,
    pub channel: ContactChannel,
    pub summary: Text,
    /// When the customer was answered; not before the receipt, not in the future.
    pub responded_at: DateTime<Utc>,
}

/// Settle the request.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolveRequest {
    pub by: RequestActor,
    pub summary: Text,
    /// R-T3: the request's own policy (the version in its terms), whose callback target
    /// sets an after-sales request's callback deadline (R-P15).
    pub policy: Versioned,
}

/// A dissatisfied requester becomes a complainant: the caller filed `complaint_id`
/// (numbered `case_number`) from the request in the same append.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalateRequest {
    pub by: StaffId,
    pub complaint_id: ComplaintId,
    pub case_number: CaseNumber,
    pub reason: Text,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestCommand {
    Receive(ReceiveRequest),
    Assign(AssignRequest),
    Respond(RespondToRequest),
    Resolve(ResolveRequest),
    Escalate(EscalateRequest),
}
