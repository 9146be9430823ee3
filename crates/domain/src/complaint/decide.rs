//! `Complaint::decide`: every rule of complaint handling that one case can enforce.

use chrono::{DateTime, Utc};

use super::commands::*;
use super::events::*;
use super::{Case, CaseStatus};
use crate::error::DomainError;
use crate::ids::StaffId;
use crate::policy::SlaRule;
use crate::values::{CallbackKind, CallbackOutcome, ReplyKind, Severity, SignerCapacity, Text};

pub(super) fn decide(
    case: Option<&Case>,
    command: ComplaintCommand,
    now: DateTime<Utc>,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    let Some(case) = case else {
        return match command {
            ComplaintCommand::File(file) => file_complaint(file, now),
            _ => Err(DomainError::ComplaintNotFiled),
        };
    };
    match case.status {
        // A callback still owed is never refused because of archiving (R-P15): cases
        // archived inside their window by earlier releases take it as if closed.
        CaseStatus::Archived
            if matches!(command, ComplaintCommand::LogCallback(_))
                && case.callback_pending_since().is_some() =>
        {
            return decide_closed(case, command, now)
        }
        CaseStatus::Archived => return Err(DomainError::ComplaintArchived),
        CaseStatus::Closed => return decide_closed(case, command, now),
        CaseStatus::Open => {}
    }
    let event: ComplaintEvent = match command {
        ComplaintCommand::File(_) => return Err(DomainError::ComplaintAlreadyFiled),
        ComplaintCommand::AssignHandler(assign) => {
            if case.is_respondent(&assign.handler) {
                return Err(DomainError::RespondentCannotHandle);
            }
            if case.is_recused(&assign.handler) {
                return Err(DomainError::RecusedCannotReturn);
            }
            if !assign.handler_cleared {
                return Err(DomainError::HandlerNotCleared);
            }
            if case.handler.as_ref() == Some(&assign.handler) {
                return Ok(vec![]);
            }
            HandlerAssigned {
                handler: assign.handler,
                previous: case.handler.clone(),
                reason: assign.reason,
                assigned_at: now,
            }
            .into()
        }
        ComplaintCommand::RecuseHandler(recuse) => {
            let reason = recuse.reason.ok_or(DomainError::RecusalNeedsReason)?;
            current_handler(case, &recuse.handler)?;
            HandlerRecused { handler: recuse.handler, reason, recused_at: now }.into()
        }
        ComplaintCommand::ContactComplainant(contact) => {
            acting(case, &contact.by, DomainError::RespondentCannotContact)?;
            let contacted_at = crate::time::given("contacted_at", contact.contacted_at, now)?;
            if contacted_at < case.received_at {
                return Err(DomainError::ContactBeforeReceipt);
            }
            ComplainantContacted {
                by: contact.by.staff,
                channel: contact.channel,
                summary: contact.summary,
                contacted_at: contact.contacted_at,
            }
            .into()
        }
        ComplaintCommand::RecordInvestigation(investigation) => {
            acting(case, &investigation.by, DomainError::RespondentCannotInvestigate)?;
            InvestigationRecorded {
                by: investigation.by.staff,
                findings: investigation.findings,
                investigated_at: now,
            }
            .into()
        }
        ComplaintCommand::DraftOpinion(draft) => {
            if case.is_respondent(&draft.specialist) {
                return Err(DomainError::RespondentCannotDraft);
            }
            if case.is_recused(&draft.specialist) {
                return Err(DomainError::RecusedCannotReturn);
            }
            // R-P5: the handler decides on someone else's written opinion.
            if case.handler.as_ref() == Some(&draft.specialist) {
                return Err(DomainError::HandlerCannotDraft);
            }
            if case.round.signature.is_some() {
                return Err(DomainError::AlreadySigned);
            }
            OpinionDrafted { specialist: draft.specialist, opinion: draft.opinion, drafted_at: now }
                .into()
        }
        ComplaintCommand::Escalate(escalate) => {
            if escalate.to == SignerCapacity::Handler {
                return Err(DomainError::EscalationTarget);
            }
            if case.escalated_to.is_some() {
                return Err(DomainError::AlreadyEscalated);
            }
            if case.round.signature.is_some() {
                return Err(DomainError::AlreadySigned);
            }
            ComplaintEscalated { to: escalate.to, reason: escalate.reason, escalated_at: now }
                .into()
        }
        ComplaintCommand::SignOpinion(sign) => sign_opinion(case, sign, now)?.into(),
        ComplaintCommand::SendReply(reply) => {
            acting(case, &reply.by, DomainError::RespondentCannotReply)?;
            if reply.kind == ReplyKind::Final {
                if case.round.signature.is_none() {
                    return Err(DomainError::NoCommitmentBeforeDecision);
                }
                if !reply.channel.is_written() {
                    return Err(DomainError::FinalReplyNotWritten);
                }
                if case.round.final_reply_at.is_some() {
                    return Err(DomainError::FinalReplyAlreadySent);
                }
            }
            ReplySent {
                by: reply.by.staff,
                kind: reply.kind,
                channel: reply.channel,
                summary: reply.summary,
                sent_at: now,
            }
            .into()
        }
        ComplaintCommand::Close(close) => {
            acting(case, &close.by, DomainError::RespondentCannotClose)?;
            if case.round.signature.is_none() {
                return Err(DomainError::CloseNeedsSignedOpinion);
            }
            if case.round.final_reply_at.is_none() {
                return Err(DomainError::CloseNeedsFinalReply);
            }
            let promised = case.round.signature.as_ref().is_some_and(|s| s.remedy_promised);
            if promised && case.round.implementations.is_empty() {
                return Err(DomainError::CloseNeedsImplementation);
            }
            if close.policy.version != case.terms.policy_version {
                return Err(DomainError::PolicyVersionUnknown {
                    version: case.terms.policy_version,
                });
            }
            let callback = close.policy.policy.deadline(
                SlaRule::CallbackAfterClosure,
                now,
                Some(case.severity),
                case.terms.tier,
            );
            ComplaintClosed {
                summary: close.summary,
                closed_at: now,
                callback_due_at: callback.due,
                callback_at_risk_at: callback.at_risk,
            }
            .into()
        }
        ComplaintCommand::AddMaterial(add) => return add_material(case, add, now),
        ComplaintCommand::RecordImplementation(record) => {
            record_implementation(case, record, now)?.into()
        }
        ComplaintCommand::Reopen(_) | ComplaintCommand::Archive(_) => {
            return Err(DomainError::ComplaintNotClosed)
        }
        ComplaintCommand::LogCallback(_) => return Err(DomainError::CallbackBeforeClose),
    };
    Ok(vec![event])
}

/// R-P3 and R-P1: the register entry.
fn file_complaint(
    file: FileComplaint,
    now: DateTime<Utc>,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    // R-P3: codes from the one taxonomy, never prose (free text goes in the description).
    crate::taxonomy::category(file.category.as_str())?;
    crate::taxonomy::cause(file.cause.as_str())?;
    match crate::time::given("received_at", file.received_at, now) {
        Err(DomainError::DatedInFuture { .. }) => return Err(DomainError::ReceivedInFuture),
        other => other?,
    };
    let zone = file.policy.policy.time_zone;
    if file.case_number.year() != crate::case_register::case_year(now, zone) {
        return Err(DomainError::CaseNumberYearMismatch {
            case_number: file.case_number.to_string(),
            year: crate::case_register::case_year(now, zone),
        });
    }
    let mut terms = CaseTerms::under(
        file.policy.version,
        &file.policy.policy,
        file.received_at,
        file.severity,
        Some(file.tier),
    );
    // R-P7 for an escalated request: an answered request already had its first contact
    // in time; what is due now is telling the complainant how the complaint is handled,
    // within the rule's time of the escalation. An unanswered one keeps the receipt's
    // clock (an escalation never buys time), as does the resolution either way.
    if file.from_request.is_some_and(|from| from.answered) {
        let escalated = CaseTerms::under(
            file.policy.version,
            &file.policy.policy,
            now,
            file.severity,
            Some(file.tier),
        );
        terms.first_response_due_at = escalated.first_response_due_at;
        terms.first_response_at_risk_at = escalated.first_response_at_risk_at;
    }
    Ok(vec![ComplaintFiled {
        complaint_id: file.complaint_id,
        case_number: file.case_number,
        customer_id: file.customer_id,
        category: file.category,
        cause: file.cause,
        severity: file.severity,
        channel: file.channel,
        description: file.description,
        respondent: file.respondent,
        attachments: file.attachments,
        received_at: file.received_at,
        filed_at: now,
        terms,
        from_request: file.from_request.map(|from| from.id),
    }
    .into()])
}

/// R-P4, R-P5, R-P6, R-P9: who may sign, and what must come first.
fn sign_opinion(
    case: &Case,
    sign: SignOpinion,
    now: DateTime<Utc>,
) -> Result<OpinionSigned, DomainError> {
    if case.round.signature.is_some() {
        return Err(DomainError::AlreadySigned);
    }
    if case.is_respondent(&sign.signer) {
        return Err(DomainError::RespondentCannotSign);
    }
    if case.is_recused(&sign.signer) {
        return Err(DomainError::RecusedCannotReturn);
    }
    if case.round.investigations == 0 {
        return Err(DomainError::InvestigationRequired);
    }
    if case.round.draft_by.is_none() {
        return Err(DomainError::DraftOpinionRequired);
    }
    // R-P5: a signature binds to the opinion of this round; whoever drafted any version
    // of it signs in no capacity.
    if case.round.drafters.contains(&sign.signer) {
        return Err(DomainError::DrafterCannotSign);
    }
    if case.severity == Severity::Major && case.escalated_to.is_none() {
        return Err(DomainError::MajorComplaintNotEscalated);
    }
    match (case.escalated_to, sign.capacity) {
        (Some(_), SignerCapacity::Handler) => {
            return Err(DomainError::EscalatedNeedsDirectorOrCommittee)
        }
        (None, SignerCapacity::Director | SignerCapacity::Committee) => {
            return Err(DomainError::NormalNeedsHandlerSignature)
        }
        (None, SignerCapacity::Handler) => current_handler(case, &sign.signer)?,
        (Some(to), capacity) if to != capacity => {
            return Err(DomainError::NotTheDecidingBody { escalated_to: to.to_string() })
        }
        (Some(_), _) => {}
    }
    let meeting = match sign.capacity {
        SignerCapacity::Committee => {
            let meeting = sign.meeting.ok_or(DomainError::CommitteeMeetingRequired)?;
            let standing = Standing { members: &sign.members, quorum: sign.committee_quorum };
            committee_meeting(case, &meeting, &sign.signer, &standing, now)?;
            Some(meeting)
        }
        SignerCapacity::Handler | SignerCapacity::Director => None,
    };
    Ok(OpinionSigned {
        signer: sign.signer,
        capacity: sign.capacity,
        decision: sign.decision,
        remedy: sign.remedy,
        meeting,
        signed_at: now,
    })
}

/// Who sits on the committee, as the caller found the members named present.
struct Standing<'a> {
    members: &'a [(StaffId, MemberStanding)],
    quorum: usize,
}

/// R-P5, R-P4, R-T4: a committee decision names a meeting that was held (after the
/// receipt and the escalation, not in the future), counted only registered, active
/// committee members, had its quorum and the signer present, and excluded whoever may
/// not decide this case.
fn committee_meeting(
    case: &Case,
    meeting: &CommitteeMeeting,
    signer: &StaffId,
    standing: &Standing<'_>,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let held_at = crate::time::given("meeting.held_at", meeting.held_at, now)?;
    if held_at < case.received_at {
        return Err(DomainError::MeetingBeforeReceipt);
    }
    if case.escalated_at.is_some_and(|escalated_at| held_at < escalated_at) {
        return Err(DomainError::MeetingBeforeEscalation);
    }
    let mut present: Vec<&StaffId> = meeting.members_present.iter().collect();
    present.sort();
    present.dedup();
    let quorum = standing.quorum;
    if present.iter().any(|member| case.is_respondent(member)) {
        return Err(DomainError::RespondentCannotSign);
    }
    if present.iter().any(|member| case.is_recused(member)) {
        return Err(DomainError::RecusedCannotReturn);
    }
    let standing_of = |member: &StaffId| {
        let found = standing.members.iter().find(|(code, _)| code == member);
        found.map_or(MemberStanding::NotOnStaff, |(_, standing)| *standing)
    };
    if present.iter().any(|member| standing_of(member) == MemberStanding::NotOnStaff) {
        return Err(DomainError::CommitteeMemberNotOnStaff);
    }
    if present.iter().any(|member| standing_of(member) == MemberStanding::NotOnCommittee) {
        return Err(DomainError::NotACommitteeMember);
    }
    if present.iter().any(|member| standing_of(member) == MemberStanding::NotCleared) {
        return Err(DomainError::CommitteeMemberNotCleared);
    }
    // R-P5: whoever drafted this round's opinion decides it in no capacity.
    if present.iter().any(|member| case.round.drafters.contains(member)) {
        return Err(DomainError::DrafterCannotSign);
    }
    if present.len() < quorum {
        return Err(DomainError::CommitteeQuorumNotMet { present: present.len(), quorum });
    }
    if !present.contains(&signer) {
        return Err(DomainError::SignerNotAtMeeting);
    }
    Ok(())
}

/// On a closed case only callbacks, reopening and archiving make sense.
fn decide_closed(
    case: &Case,
    command: ComplaintCommand,
    now: DateTime<Utc>,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    match command {
        ComplaintCommand::File(_) => Err(DomainError::ComplaintAlreadyFiled),
        // R-P2: materials arrive at any stage before archiving.
        ComplaintCommand::AddMaterial(add) if case.status == CaseStatus::Closed => {
            add_material(case, add, now)
        }
        ComplaintCommand::AddMaterial(_) => Err(DomainError::ComplaintArchived),
        ComplaintCommand::Reopen(reopen) => {
            let cause = reopen.cause.ok_or(DomainError::ReopenNeedsCause)?;
            Ok(vec![ComplaintReopened { cause, by_callback: false, reopened_at: now }.into()])
        }
        ComplaintCommand::LogCallback(callback) => {
            if callback.kind != CallbackKind::Complaint {
                return Err(DomainError::CallbackKindMismatch);
            }
            let closed_at = case.closed_at.unwrap_or(case.received_at);
            let logged = callback.into_event(
                case.customer_id,
                Some(case.id),
                now,
                closed_at,
                DomainError::CallbackBeforeClosure,
            )?;
            let mut events = Vec::with_capacity(2);
            // R-P14: dissatisfaction reopens the case in the same decision.
            if logged.outcome == CallbackOutcome::Dissatisfied {
                let cause = match &logged.comment {
                    Some(comment) => format!("dissatisfied callback: {comment}"),
                    None => "dissatisfied callback".to_owned(),
                };
                let cause = Text::new("cause", &truncate(&cause, Text::MAX_CHARS))?;
                events.push(logged.into());
                events
                    .push(ComplaintReopened { cause, by_callback: true, reopened_at: now }.into());
            } else {
                events.push(logged.into());
            }
            Ok(events)
        }
        ComplaintCommand::Archive(archive) => {
            if archive.year != case.case_number.year() {
                return Err(DomainError::ArchiveYearMismatch {
                    case_number: case.case_number.to_string(),
                    year: archive.year,
                });
            }
            if case.status == CaseStatus::Archived {
                return Err(DomainError::ComplaintArchived);
            }
            if let Some(due) = case.callback_due() {
                if now <= due {
                    return Err(DomainError::CallbackWindowOpen {
                        case_number: case.case_number.to_string(),
                        due: due.to_rfc3339(),
                    });
                }
            }
            Ok(vec![CaseArchived { year: archive.year, archived_at: now }.into()])
        }
        ComplaintCommand::AssignHandler(_)
        | ComplaintCommand::RecuseHandler(_)
        | ComplaintCommand::ContactComplainant(_)
        | ComplaintCommand::RecordInvestigation(_)
        | ComplaintCommand::DraftOpinion(_)
        | ComplaintCommand::Escalate(_)
        | ComplaintCommand::SignOpinion(_)
        | ComplaintCommand::SendReply(_)
        | ComplaintCommand::RecordImplementation(_)
        | ComplaintCommand::Close(_) => Err(DomainError::ComplaintClosed),
    }
}

/// R-P2: a material by reference; a newer one supersedes an earlier one with a reason,
/// and nothing is ever altered or removed.
fn add_material(
    case: &Case,
    add: AddMaterial,
    now: DateTime<Utc>,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    if case.is_respondent(&add.by) {
        return Err(DomainError::RespondentCannotAddMaterial);
    }
    if case.is_recused(&add.by) {
        return Err(DomainError::RecusedCannotReturn);
    }
    match (add.supersedes, &add.reason) {
        (Some(number), Some(_)) => {
            let earlier = case.material(number).ok_or(DomainError::MaterialNotFound { number })?;
            if let Some(by) = earlier.superseded_by {
                return Err(DomainError::MaterialAlreadySuperseded { number, by });
            }
        }
        (Some(_), None) => return Err(DomainError::SupersedingNeedsReason),
        (None, Some(_)) => return Err(DomainError::ReasonWithoutSuperseding),
        (None, None) => {}
    }
    if case.materials.len() >= super::MAX_MATERIALS {
        return Err(DomainError::MaterialsExhausted { max: super::MAX_MATERIALS });
    }
    // Numbers follow the highest so far (none is ever removed, so none is reused).
    let last = case.materials.iter().map(|material| material.number).max().unwrap_or(0);
    let number =
        last.checked_add(1).ok_or(DomainError::MaterialsExhausted { max: super::MAX_MATERIALS })?;
    let material = add.material;
    Ok(vec![MaterialAdded {
        number,
        reference: material.reference,
        media_type: material.media_type,
        size_bytes: material.size_bytes,
        sha256: material.sha256,
        supersedes: add.supersedes,
        reason: add.reason,
        by: add.by,
        added_at: now,
    }
    .into()])
}

/// R-P9: after the signature, how it was carried out; R-T4: not before the signature,
/// not in the future.
fn record_implementation(
    case: &Case,
    record: RecordImplementation,
    now: DateTime<Utc>,
) -> Result<ImplementationRecorded, DomainError> {
    if case.is_respondent(&record.by) {
        return Err(DomainError::RespondentCannotImplement);
    }
    if case.is_recused(&record.by) {
        return Err(DomainError::RecusedCannotReturn);
    }
    let signature =
        case.round.signature.as_ref().ok_or(DomainError::ImplementationBeforeSignature)?;
    let implemented_at = crate::time::given("implemented_at", record.implemented_at, now)?;
    if implemented_at < signature.signed_at {
        return Err(DomainError::ImplementedBeforeSigning);
    }
    Ok(ImplementationRecorded {
        by: record.by,
        summary: record.summary,
        implemented_at,
        recorded_at: now,
    })
}

/// R-P4: the respondent never acts on their own complaint; anyone else acts only as the
/// current handler, or stepping in as a supervisor or the director.
fn acting(case: &Case, actor: &Actor, respondent: DomainError) -> Result<(), DomainError> {
    if case.is_respondent(&actor.staff) {
        return Err(respondent);
    }
    if actor.stepping_in {
        return Ok(());
    }
    current_handler(case, &actor.staff)
}

fn current_handler(case: &Case, person: &StaffId) -> Result<(), DomainError> {
    match &case.handler {
        None => Err(DomainError::NoHandlerAssigned),
        Some(handler) if handler == person => Ok(()),
        Some(_) => Err(DomainError::NotCurrentHandler),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
