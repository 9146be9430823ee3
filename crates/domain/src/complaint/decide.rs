//! `Complaint::decide`: every rule of complaint handling that one case can enforce.

use chrono::{DateTime, Datelike, Utc};

use super::commands::*;
use super::events::*;
use super::{Case, CaseStatus};
use crate::error::DomainError;
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
            let contacted_at = crate::time::given("contacted_at", contact.contacted_at, now)?;
            if contacted_at < case.received_at {
                return Err(DomainError::ContactBeforeReceipt);
            }
            ComplainantContacted {
                by: contact.by,
                channel: contact.channel,
                summary: contact.summary,
                contacted_at: contact.contacted_at,
            }
            .into()
        }
        ComplaintCommand::RecordInvestigation(investigation) => {
            if case.is_respondent(&investigation.by) {
                return Err(DomainError::RespondentCannotInvestigate);
            }
            current_handler(case, &investigation.by)?;
            InvestigationRecorded {
                by: investigation.by,
                findings: investigation.findings,
                investigated_at: now,
            }
            .into()
        }
        ComplaintCommand::DraftOpinion(draft) => {
            if case.is_respondent(&draft.specialist) {
                return Err(DomainError::RespondentCannotHandle);
            }
            if case.is_recused(&draft.specialist) {
                return Err(DomainError::RecusedCannotReturn);
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
                by: reply.by,
                kind: reply.kind,
                channel: reply.channel,
                summary: reply.summary,
                sent_at: now,
            }
            .into()
        }
        ComplaintCommand::Close(close) => {
            if case.round.signature.is_none() {
                return Err(DomainError::CloseNeedsSignedOpinion);
            }
            if case.round.final_reply_at.is_none() {
                return Err(DomainError::CloseNeedsFinalReply);
            }
            ComplaintClosed { summary: close.summary, closed_at: now }.into()
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
    match crate::time::given("received_at", file.received_at, now) {
        Err(DomainError::DatedInFuture { .. }) => return Err(DomainError::ReceivedInFuture),
        other => other?,
    };
    if file.case_number.year() != now.year() {
        return Err(DomainError::CaseNumberYearMismatch {
            case_number: file.case_number.to_string(),
            year: now.year(),
        });
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
    if case.severity == Severity::Major && case.escalated_to.is_none() {
        return Err(DomainError::MajorComplaintNotEscalated);
    }
    if case.escalated_to.is_some() {
        if sign.capacity == SignerCapacity::Handler {
            return Err(DomainError::EscalatedNeedsDirectorOrCommittee);
        }
    } else {
        if sign.capacity != SignerCapacity::Handler {
            return Err(DomainError::NormalNeedsHandlerSignature);
        }
        current_handler(case, &sign.signer)?;
    }
    Ok(OpinionSigned {
        signer: sign.signer,
        capacity: sign.capacity,
        decision: sign.decision,
        remedy: sign.remedy,
        signed_at: now,
    })
}

/// On a closed case only callbacks, reopening and archiving make sense.
fn decide_closed(
    case: &Case,
    command: ComplaintCommand,
    now: DateTime<Utc>,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    match command {
        ComplaintCommand::File(_) => Err(DomainError::ComplaintAlreadyFiled),
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
            if let Some(closed_at) = case.callback_pending_since() {
                let due = crate::time::later(closed_at, archive.callback_window);
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
        | ComplaintCommand::Close(_) => Err(DomainError::ComplaintClosed),
    }
}

fn current_handler(case: &Case, person: &crate::ids::StaffId) -> Result<(), DomainError> {
    match &case.handler {
        None => Err(DomainError::NoHandlerAssigned),
        Some(handler) if handler == person => Ok(()),
        Some(_) => Err(DomainError::NotCurrentHandler),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
