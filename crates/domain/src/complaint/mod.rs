//! The `Complaint` aggregate: a case from intake through handling, decision, reply,
//! closure, callback, reopening and archiving (R-P1..R-P15).

mod commands;
mod decide;
mod events;
mod materials;

use chrono::{DateTime, Utc};

pub use commands::*;
pub use events::*;
pub use materials::{Implementation, Material, MaterialRef, MAX_MATERIALS, MAX_SIZE_BYTES};

use crate::aggregate::Aggregate;
use crate::error::DomainError;
use crate::ids::{CaseNumber, ComplaintId, CustomerId, ServiceRequestId, StaffId};
use crate::values::{
    Attachment, CallbackOutcome, IntakeChannel, ReplyKind, Severity, SignerCapacity, Text,
};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Closed,
    Archived,
}

/// The facts that place an open case at a stage of handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageFacts {
    pub status: CaseStatus,
    pub final_reply_sent: bool,
    pub signed: bool,
    pub escalated: bool,
    pub drafted: bool,
    pub investigated: bool,
    pub has_handler: bool,
}

/// The finer-grained stage of a case, one vocabulary for the API and the read models:
/// `filed`, `assigned`, `investigating`, `drafted`, `escalated`, `signed`, `replied`,
/// `closed`, `archived` (the latest fact of the current round wins).
pub fn stage(facts: StageFacts) -> &'static str {
    match facts.status {
        CaseStatus::Archived => "archived",
        CaseStatus::Closed => "closed",
        CaseStatus::Open if facts.final_reply_sent => "replied",
        CaseStatus::Open if facts.signed => "signed",
        CaseStatus::Open if facts.escalated => "escalated",
        CaseStatus::Open if facts.drafted => "drafted",
        CaseStatus::Open if facts.investigated => "investigating",
        CaseStatus::Open if facts.has_handler => "assigned",
        CaseStatus::Open => "filed",
    }
}

/// A signed opinion (R-P9).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Signature {
    pub signer: StaffId,
    pub capacity: SignerCapacity,
    pub signed_at: DateTime<Utc>,
    /// R-P5: the meeting, for a committee decision.
    pub meeting: Option<CommitteeMeeting>,
    /// R-P9: the opinion promised a remedy, so closing needs its implementation.
    pub remedy_promised: bool,
}

/// The facts of one round of handling; a reopen starts a new round (R-P14).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Round {
    pub investigations: u32,
    pub draft_by: Option<StaffId>,
    /// R-P5: everyone who drafted an opinion this round; none of them signs it.
    pub drafters: Vec<StaffId>,
    pub signature: Option<Signature>,
    pub final_reply_at: Option<DateTime<Utc>>,
    /// R-P9: how this round's signed opinion was carried out.
    pub implementations: Vec<Implementation>,
}

/// A filed complaint as folded from its events (serialized in compliance dossiers).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Case {
    pub id: ComplaintId,
    pub case_number: CaseNumber,
    pub customer_id: CustomerId,
    pub category: Text,
    pub cause: Text,
    pub severity: Severity,
    pub channel: IntakeChannel,
    pub description: Text,
    pub respondent: Option<StaffId>,
    pub attachments: Vec<Attachment>,
    /// R-P2: every material, numbered from 1: the filing's attachments, then those
    /// added since; none removed, a superseded one names its successor.
    pub materials: Vec<Material>,
    pub received_at: DateTime<Utc>,
    pub filed_at: DateTime<Utc>,
    /// R-T3: the policy version the case is held to and the deadlines it gave.
    pub terms: CaseTerms,
    /// R-P15: when the callback after the latest closure is due, under `terms`.
    pub callback_due_at: Option<DateTime<Utc>>,
    pub status: CaseStatus,
    pub handler: Option<StaffId>,
    /// R-P4: everyone who ever recused from this case.
    pub recused: Vec<StaffId>,
    /// Escalation survives a reopen: a major case stays with the director or committee.
    pub escalated_to: Option<SignerCapacity>,
    /// When it was escalated (R-T4: the deciding meeting follows it).
    pub escalated_at: Option<DateTime<Utc>>,
    pub round: Round,
    pub first_response_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// R-P12: when the case went into its year's archive.
    pub archived_at: Option<DateTime<Utc>>,
    pub reopen_count: u32,
    pub callbacks: u32,
    pub last_callback_outcome: Option<CallbackOutcome>,
    /// When the latest callback happened; a callback after the latest close settles R-P15.
    pub last_callback_at: Option<DateTime<Utc>>,
    /// The service request this complaint was escalated from.
    pub from_request: Option<ServiceRequestId>,
}

impl Case {
    /// See [`stage`].
    pub fn stage(&self) -> &'static str {
        stage(StageFacts {
            status: self.status,
            final_reply_sent: self.round.final_reply_at.is_some(),
            signed: self.round.signature.is_some(),
            escalated: self.escalated_to.is_some(),
            drafted: self.round.draft_by.is_some(),
            investigated: self.round.investigations > 0,
            has_handler: self.handler.is_some(),
        })
    }

    /// R-P7: when the first response is (or was) due, as fixed at filing (R-T3).
    pub fn first_response_due(&self) -> DateTime<Utc> {
        self.terms.first_response_due_at
    }

    /// R-P15: when a callback is due, if the case is closed and not yet called back
    /// since; the deadline its closure recorded under the case's policy (R-T3).
    pub fn callback_due(&self) -> Option<DateTime<Utc>> {
        self.callback_pending_since().and(self.callback_due_at)
    }

    /// R-P15: when the case closed, if it is not open and no callback was logged since.
    pub fn callback_pending_since(&self) -> Option<DateTime<Utc>> {
        let closed_at = self.closed_at.filter(|_| self.status != CaseStatus::Open)?;
        let called_since = self.last_callback_at.is_some_and(|at| at >= closed_at);
        (!called_since).then_some(closed_at)
    }

    /// R-P2: material `number`, if the case has it.
    pub fn material(&self, number: u32) -> Option<&Material> {
        self.materials.iter().find(|material| material.number == number)
    }

    fn material_mut(&mut self, number: u32) -> Option<&mut Material> {
        self.materials.iter_mut().find(|material| material.number == number)
    }

    fn is_recused(&self, person: &StaffId) -> bool {
        self.recused.contains(person)
    }

    fn is_respondent(&self, person: &StaffId) -> bool {
        self.respondent.as_ref() == Some(person)
    }
}

/// The `Complaint` aggregate; its state is `None` until filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Complaint;

impl Aggregate for Complaint {
    type State = Option<Case>;
    type Command = ComplaintCommand;
    type Event = ComplaintEvent;

    fn decide(
        state: &Self::State,
        command: ComplaintCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<ComplaintEvent>, DomainError> {
        decide::decide(state.as_ref(), command, now)
    }

    fn data_subject(state: &Self::State, events: &[ComplaintEvent]) -> Option<CustomerId> {
        state.as_ref().map(|case| case.customer_id).or_else(|| {
            events.iter().find_map(|event| match event {
                ComplaintEvent::ComplaintFiled(e) => Some(e.customer_id),
                _ => None,
            })
        })
    }

    fn evolve(state: Self::State, event: &ComplaintEvent) -> Self::State {
        let mut case = match (state, event) {
            (None, ComplaintEvent::ComplaintFiled(e)) => {
                return Some(Case {
                    id: e.complaint_id,
                    case_number: e.case_number,
                    customer_id: e.customer_id,
                    category: e.category.clone(),
                    cause: e.cause.clone(),
                    severity: e.severity,
                    channel: e.channel,
                    description: e.description.clone(),
                    respondent: e.respondent.clone(),
                    attachments: e.attachments.clone(),
                    materials: filed_materials(e),
                    received_at: e.received_at,
                    filed_at: e.filed_at,
                    terms: e.terms,
                    callback_due_at: None,
                    status: CaseStatus::Open,
                    handler: None,
                    recused: Vec::new(),
                    escalated_to: None,
                    escalated_at: None,
                    round: Round::default(),
                    first_response_at: None,
                    closed_at: None,
                    archived_at: None,
                    reopen_count: 0,
                    callbacks: 0,
                    last_callback_outcome: None,
                    last_callback_at: None,
                    from_request: e.from_request,
                })
            }
            // Only filing starts a case; anything else on an empty stream changes nothing.
            (None, _) => return None,
            (Some(case), _) => case,
        };
        match event {
            ComplaintEvent::ComplaintFiled(_) => {}
            ComplaintEvent::HandlerAssigned(e) => case.handler = Some(e.handler.clone()),
            ComplaintEvent::HandlerRecused(e) => {
                if case.handler.as_ref() == Some(&e.handler) {
                    case.handler = None;
                }
                if !case.is_recused(&e.handler) {
                    case.recused.push(e.handler.clone());
                }
            }
            ComplaintEvent::ComplainantContacted(e) => {
                case.first_response_at = earliest(case.first_response_at, e.contacted_at);
            }
            ComplaintEvent::InvestigationRecorded(_) => case.round.investigations += 1,
            ComplaintEvent::OpinionDrafted(e) => {
                case.round.draft_by = Some(e.specialist.clone());
                if !case.round.drafters.contains(&e.specialist) {
                    case.round.drafters.push(e.specialist.clone());
                }
            }
            ComplaintEvent::ComplaintEscalated(e) => {
                case.escalated_to = Some(e.to);
                case.escalated_at = Some(e.escalated_at);
            }
            ComplaintEvent::OpinionSigned(e) => {
                case.round.signature = Some(Signature {
                    signer: e.signer.clone(),
                    capacity: e.capacity,
                    signed_at: e.signed_at,
                    meeting: e.meeting.clone(),
                    remedy_promised: e.remedy.is_some(),
                });
            }
            ComplaintEvent::ReplySent(e) => {
                case.first_response_at = earliest(case.first_response_at, e.sent_at);
                if e.kind == ReplyKind::Final {
                    case.round.final_reply_at = Some(e.sent_at);
                }
            }
            ComplaintEvent::ComplaintClosed(e) => {
                case.status = CaseStatus::Closed;
                case.closed_at = Some(e.closed_at);
                case.callback_due_at = Some(e.callback_due_at);
            }
            ComplaintEvent::ComplaintReopened(_) => {
                case.status = CaseStatus::Open;
                case.reopen_count += 1;
                case.round = Round::default();
            }
            ComplaintEvent::CallbackLogged(e) => {
                case.callbacks += 1;
                case.last_callback_outcome = Some(e.outcome);
                case.last_callback_at = case.last_callback_at.max(Some(e.called_at));
            }
            ComplaintEvent::CaseArchived(e) => {
                case.status = CaseStatus::Archived;
                case.archived_at = Some(e.archived_at);
            }
            ComplaintEvent::MaterialAdded(e) => {
                if let Some(earlier) = e.supersedes.and_then(|number| case.material_mut(number)) {
                    earlier.superseded_by = Some(e.number);
                }
                case.materials.push(Material {
                    number: e.number,
                    reference: e.reference.clone(),
                    media_type: Some(e.media_type.clone()),
                    size_bytes: Some(e.size_bytes),
                    sha256: Some(e.sha256.clone()),
                    added_by: Some(e.by.clone()),
                    added_at: e.added_at,
                    supersedes: e.supersedes,
                    reason: e.reason.clone(),
                    superseded_by: None,
                });
            }
            ComplaintEvent::ImplementationRecorded(e) => {
                case.round.implementations.push(Implementation {
                    by: e.by.clone(),
                    summary: e.summary.clone(),
                    implemented_at: e.implemented_at,
                    recorded_at: e.recorded_at,
                });
            }
        }
        Some(case)
    }
}

/// R-P2: a filing's attachments are the case's first materials, numbered from 1.
fn filed_materials(filed: &ComplaintFiled) -> Vec<Material> {
    (1u32..)
        .zip(&filed.attachments)
        .map(|(number, attachment)| Material {
            number,
            reference: attachment.reference.clone(),
            media_type: None,
            size_bytes: None,
            sha256: attachment.sha256.clone(),
            added_by: None,
            added_at: filed.filed_at,
            supersedes: None,
            reason: None,
            superseded_by: None,
        })
        .collect()
}

fn earliest(current: Option<DateTime<Utc>>, candidate: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(current.map_or(candidate, |current| current.min(candidate)))
}
