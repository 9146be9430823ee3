//! What callers may ask of a complaint; each command is checked by `Complaint::decide`.

use chrono::{DateTime, Utc};

use super::events::CommitteeMeeting;
use super::materials::MaterialRef;
use crate::callback::LogCallback;
use crate::ids::{CaseNumber, ComplaintId, CustomerId, ServiceRequestId, StaffId};
use crate::policy_log::Versioned;
use crate::values::{
    Attachment, ContactChannel, IntakeChannel, ReplyKind, Severity, SignerCapacity, Text, Tier,
};

/// R-P1/R-P3. The caller has already issued `case_number` (see [`crate::case_register`])
/// and checked that the customer exists.
#[derive(Debug, Clone, PartialEq)]
pub struct FileComplaint {
    pub complaint_id: ComplaintId,
    pub case_number: CaseNumber,
    pub customer_id: CustomerId,
    pub category: Text,
    pub cause: Text,
    pub severity: Severity,
    pub channel: IntakeChannel,
    pub description: Text,
    pub respondent: Option<StaffId>,
    pub attachments: Vec<Attachment>,
    /// When the call, visit or letter came in; may precede filing, never follow `now`.
    pub received_at: DateTime<Utc>,
    /// R-T3: the policy in force, whose version and deadlines the case keeps.
    pub policy: Versioned,
    /// The customer's tier now (R-T3: it chooses the tier's targets).
    pub tier: Tier,
    /// The service request this complaint was escalated from (its receipt is
    /// `received_at`, so the clocks run from the request's receipt).
    pub from_request: Option<FromRequest>,
}

/// The service request a complaint is escalated from (`EscalateToComplaint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromRequest {
    pub id: ServiceRequestId,
    /// Whether the request had its first response within R-P7's time: the customer was
    /// contacted in time then, and the complaint's own first response (telling them how
    /// the complaint is handled) runs from the escalation.
    pub answered: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssignHandler {
    pub handler: StaffId,
    pub reason: Option<Text>,
    /// R-C6: the caller found the handler cleared for the customer's level.
    pub handler_cleared: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecuseHandler {
    /// The handler stepping aside; must be the current one.
    pub handler: StaffId,
    /// R-P4: required; `None` is refused with the rule's error.
    pub reason: Option<Text>,
}

/// Who acts on a case (R-P4): its assigned handler, or a supervisor or the director
/// stepping in. The caller resolves the standing from the actor's roles; `decide`
/// checks that a handler is the current one and that nobody acts on a complaint
/// against themself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub staff: StaffId,
    /// True for a supervisor or the director acting in the handler's place.
    pub stepping_in: bool,
}

impl Actor {
    /// The staff member acting as the case's handler.
    pub fn handler(staff: StaffId) -> Self {
        Actor { staff, stepping_in: false }
    }

    /// A supervisor or the director stepping in.
    pub fn stepping_in(staff: StaffId) -> Self {
        Actor { staff, stepping_in: true }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContactComplainant {
    pub by: Actor,
    pub channel: ContactChannel,
    pub summary: Text,
    pub contacted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordInvestigation {
    pub by: Actor,
    pub findings: Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DraftOpinion {
    pub specialist: StaffId,
    pub opinion: Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalateComplaint {
    /// `director` or `committee`.
    pub to: SignerCapacity,
    pub reason: Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignOpinion {
    pub signer: StaffId,
    /// The capacity the signer acts in; the caller has checked the signer holds it.
    pub capacity: SignerCapacity,
    pub decision: Text,
    pub remedy: Option<Text>,
    /// R-P5: the meeting that decided, for a committee decision (required then).
    pub meeting: Option<CommitteeMeeting>,
    /// R-P5: where each member named present stands on the staff, as the caller found
    /// them; a member missing here counts as not on the staff.
    pub members: Vec<(StaffId, MemberStanding)>,
    /// R-P5: the fewest members a committee meeting must have present (from the policy).
    pub committee_quorum: usize,
}

/// Where someone named at a committee meeting stands (R-P5: only registered, active
/// committee members count towards the quorum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStanding {
    /// Not registered, or departed.
    NotOnStaff,
    /// On the staff without the committee role.
    NotOnCommittee,
    /// A committee member whose clearance is below the case's customer's level (R-C6:
    /// a meeting deciding the case reads it, as a handler would).
    NotCleared,
    Member,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SendReply {
    pub by: Actor,
    pub kind: ReplyKind,
    pub channel: ContactChannel,
    pub summary: Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CloseComplaint {
    pub by: Actor,
    pub summary: Option<Text>,
    /// R-T3: the case's own policy (the version in its terms), whose callback target
    /// sets the callback deadline.
    pub policy: Versioned,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReopenComplaint {
    /// R-P14: required; `None` is refused with the rule's error.
    pub cause: Option<Text>,
}

/// R-P12: into the year's archive, once handling is over: the case is closed and its
/// callback is logged, or its callback window (R-P15) has passed.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveCase {
    pub year: i32,
}

/// R-P2: a material by reference, at any stage before archiving.
#[derive(Debug, Clone, PartialEq)]
pub struct AddMaterial {
    pub by: StaffId,
    pub material: MaterialRef,
    /// The earlier material this one replaces; `reason` is required with it.
    pub supersedes: Option<u32>,
    pub reason: Option<Text>,
}

/// R-P9: the implementation of the signed opinion.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordImplementation {
    pub by: StaffId,
    pub summary: Text,
    pub implemented_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ComplaintCommand {
    File(FileComplaint),
    AssignHandler(AssignHandler),
    RecuseHandler(RecuseHandler),
    ContactComplainant(ContactComplainant),
    RecordInvestigation(RecordInvestigation),
    DraftOpinion(DraftOpinion),
    Escalate(EscalateComplaint),
    SignOpinion(SignOpinion),
    SendReply(SendReply),
    Close(CloseComplaint),
    Reopen(ReopenComplaint),
    LogCallback(LogCallback),
    Archive(ArchiveCase),
    AddMaterial(AddMaterial),
    RecordImplementation(RecordImplementation),
}
