//! The complaint-handling policy (R-P1..R-P15), one given/when/then test per rule.

mod support;

use kefu_domain::complaint::*;
use kefu_domain::{
    Aggregate, CallbackChannel, CallbackKind, CallbackOutcome, CallbackParty, CaseNumber,
    ComplaintId, ContactChannel, CustomerId, DomainError, IntakeChannel, LogCallback, Policy,
    PolicyBook, ReplyKind, Score, Severity, SignerCapacity,
};
use support::{at, given, staff, text};

fn complaint_id() -> ComplaintId {
    "0193a5e0-0000-7000-8000-000000000001".parse().unwrap()
}

fn customer_id() -> CustomerId {
    "0193a5e0-0000-7000-8000-0000000000c1".parse().unwrap()
}

fn file_command(severity: Severity, respondent: Option<&str>) -> FileComplaint {
    FileComplaint {
        complaint_id: complaint_id(),
        case_number: "2026-000007".parse().unwrap(),
        customer_id: customer_id(),
        category: text("billing"),
        cause: text("overcharge"),
        severity,
        channel: IntakeChannel::Phone,
        description: text("charged twice for one visit"),
        respondent: respondent.map(staff),
        attachments: vec![],
        received_at: at(-2),
        policy: PolicyBook::new().current(),
        tier: kefu_domain::Tier::Regular,
        from_request: None,
    }
}

fn filed(severity: Severity, respondent: Option<&str>) -> ComplaintEvent {
    let command = file_command(severity, respondent);
    ComplaintFiled {
        complaint_id: command.complaint_id,
        case_number: command.case_number,
        customer_id: command.customer_id,
        category: command.category,
        cause: command.cause,
        severity,
        channel: command.channel,
        description: command.description,
        respondent: command.respondent,
        attachments: vec![],
        received_at: command.received_at,
        filed_at: at(0),
        terms: CaseTerms::under(
            0,
            &Policy::version_zero(),
            command.received_at,
            severity,
            Some(kefu_domain::Tier::Regular),
        ),
        from_request: None,
    }
    .into()
}

fn assigned(handler: &str) -> ComplaintEvent {
    HandlerAssigned { handler: staff(handler), previous: None, reason: None, assigned_at: at(0) }
        .into()
}

fn investigated(by: &str) -> ComplaintEvent {
    InvestigationRecorded { by: staff(by), findings: text("facts checked"), investigated_at: at(0) }
        .into()
}

fn drafted(specialist: &str) -> ComplaintEvent {
    OpinionDrafted { specialist: staff(specialist), opinion: text("refund"), drafted_at: at(0) }
        .into()
}

fn escalated(to: SignerCapacity) -> ComplaintEvent {
    ComplaintEscalated { to, reason: text("major matter"), escalated_at: at(0) }.into()
}

fn signed(signer: &str, capacity: SignerCapacity) -> ComplaintEvent {
    OpinionSigned {
        signer: staff(signer),
        capacity,
        decision: text("refund the second charge"),
        remedy: None,
        meeting: None,
        signed_at: at(0),
    }
    .into()
}

fn final_reply() -> ComplaintEvent {
    ReplySent {
        by: staff("h1"),
        kind: ReplyKind::Final,
        channel: ContactChannel::Letter,
        summary: text("decision"),
        sent_at: at(0),
    }
    .into()
}

fn closed() -> ComplaintEvent {
    ComplaintClosed {
        summary: None,
        closed_at: at(0),
        callback_due_at: at(72),
        callback_at_risk_at: at(72),
    }
    .into()
}

/// A normal case handled by h1, with r1 the respondent, ready to sign.
fn ready_to_sign() -> Vec<ComplaintEvent> {
    vec![filed(Severity::Normal, Some("r1")), assigned("h1"), investigated("h1"), drafted("sp1")]
}

fn handled_and_closed() -> Vec<ComplaintEvent> {
    let mut history = ready_to_sign();
    history.extend([signed("h1", SignerCapacity::Handler), final_reply(), closed()]);
    history
}

fn sign(signer: &str, capacity: SignerCapacity) -> ComplaintCommand {
    ComplaintCommand::SignOpinion(SignOpinion {
        signer: staff(signer),
        capacity,
        decision: text("refund the second charge"),
        remedy: None,
        meeting: None,
        members: Vec::new(),
        committee_quorum: usize::from(Policy::default().committee_quorum),
    })
}

/// A committee meeting held an hour ago with `members` present, not reported.
fn meeting(members: &[&str]) -> CommitteeMeeting {
    CommitteeMeeting {
        held_at: at(0),
        members_present: members.iter().map(|m| staff(m)).collect(),
        reported_to_authority: false,
    }
}

fn sign_in_meeting(signer: &str, members: &[&str]) -> ComplaintCommand {
    let ComplaintCommand::SignOpinion(mut command) = sign(signer, SignerCapacity::Committee) else {
        unreachable!()
    };
    command.meeting = Some(meeting(members));
    // Everyone named sits on the committee unless a test says otherwise.
    command.members = members.iter().map(|m| (staff(m), MemberStanding::Member)).collect();
    ComplaintCommand::SignOpinion(command)
}

fn reply(kind: ReplyKind, channel: ContactChannel) -> ComplaintCommand {
    reply_by(Actor::handler(staff("h1")), kind, channel)
}

fn reply_by(by: Actor, kind: ReplyKind, channel: ContactChannel) -> ComplaintCommand {
    ComplaintCommand::SendReply(SendReply { by, kind, channel, summary: text("news") })
}

fn close_by(by: Actor) -> ComplaintCommand {
    ComplaintCommand::Close(CloseComplaint {
        by,
        summary: None,
        policy: PolicyBook::new().current(),
    })
}

fn contact_by(by: Actor) -> ComplaintCommand {
    ComplaintCommand::ContactComplainant(ContactComplainant {
        by,
        channel: ContactChannel::Phone,
        summary: text("we will call back"),
        contacted_at: at(0),
    })
}

fn callback(outcome: CallbackOutcome) -> ComplaintCommand {
    ComplaintCommand::LogCallback(LogCallback {
        kind: CallbackKind::Complaint,
        channel: CallbackChannel::Phone,
        party: Some(CallbackParty::Complainant),
        outcome,
        score: Some(Score::new(2).unwrap()),
        comment: Some(text("still charged twice")),
        by: staff("a1"),
        called_at: at(1),
    })
}

#[test]
fn filing_records_receipt_and_register_entry_r_p3() {
    let case = given::<Complaint>([])
        .when(ComplaintCommand::File(file_command(Severity::Normal, Some("r1"))))
        .events()
        .1
        .unwrap();
    assert_eq!(case.received_at, at(-2), "SLA clocks start at receipt, before filing");
    assert_eq!(case.filed_at, at(1));
    assert_eq!(case.case_number.to_string(), "2026-000007");
    assert_eq!(case.respondent, Some(staff("r1")));
}

/// Issue 22: a dissatisfied requester's complaint names the request it came from, and
/// its clocks (R-P7 first response, the resolution) run from the request's receipt, not
/// from the escalation.
#[test]
fn a_complaint_from_a_request_names_it_and_runs_from_its_receipt_r_p7() {
    let request: kefu_domain::ServiceRequestId =
        "0193a5e0-0000-7000-8000-0000000000e1".parse().unwrap();
    let mut command = file_command(Severity::Normal, None);
    command.received_at = at(-20);
    command.from_request = Some(FromRequest { id: request, answered: false });
    let (events, case) =
        given::<Complaint>([]).when(ComplaintCommand::File(command.clone())).events();
    let ComplaintEvent::ComplaintFiled(filed) = &events[0] else { panic!("{events:?}") };
    assert_eq!(filed.from_request, Some(request));
    assert_eq!(filed.received_at, at(-20));
    assert_eq!(filed.filed_at, at(1));
    // Version 0: 12 calendar hours from the request's receipt, already past: an
    // unanswered request's escalation buys no time.
    assert_eq!(filed.terms.first_response_due_at, at(-8));
    assert_eq!(case.unwrap().from_request, Some(request));
    let resolution_due = filed.terms.resolution_due_at;

    // Answered (R-P7's first contact made on the request): the complaint's own first
    // response, how it is handled, is due 12 hours from the escalation; the resolution
    // still runs from the receipt.
    command.from_request = Some(FromRequest { id: request, answered: true });
    let (events, _) = given::<Complaint>([]).when(ComplaintCommand::File(command)).events();
    let ComplaintEvent::ComplaintFiled(filed) = &events[0] else { panic!("{events:?}") };
    assert_eq!(filed.terms.first_response_due_at, at(13));
    assert!(filed.terms.first_response_at_risk_at > at(1));
    assert_eq!(filed.terms.resolution_due_at, resolution_due, "from the receipt");
    assert_eq!(filed.received_at, at(-20));
}

#[test]
fn received_in_the_future_is_refused_r_p3() {
    let mut command = file_command(Severity::Normal, None);
    command.received_at = at(5);
    given::<Complaint>([])
        .when(ComplaintCommand::File(command))
        .then_error(DomainError::ReceivedInFuture);
}

#[test]
fn case_number_must_be_of_the_filing_year_r_p1() {
    let mut command = file_command(Severity::Normal, None);
    command.case_number = "2025-000001".parse::<CaseNumber>().unwrap();
    given::<Complaint>([]).when(ComplaintCommand::File(command)).then_error(
        DomainError::CaseNumberYearMismatch { case_number: "2025-000001".into(), year: 2026 },
    );
}

#[test]
fn a_case_is_filed_once() {
    given::<Complaint>([filed(Severity::Normal, None)])
        .when(ComplaintCommand::File(file_command(Severity::Normal, None)))
        .then_error(DomainError::ComplaintAlreadyFiled);
    given::<Complaint>([])
        .when(callback(CallbackOutcome::Satisfied))
        .then_error(DomainError::ComplaintNotFiled);
}

#[test]
fn respondent_cannot_be_assigned_r_p4() {
    given::<Complaint>([filed(Severity::Normal, Some("r1"))])
        .when(ComplaintCommand::AssignHandler(AssignHandler {
            handler: staff("r1"),
            reason: None,
            handler_cleared: true,
        }))
        .then_error(DomainError::RespondentCannotHandle);
}

#[test]
fn respondent_cannot_investigate_r_p4() {
    given::<Complaint>([filed(Severity::Normal, Some("r1")), assigned("h1")])
        .when(ComplaintCommand::RecordInvestigation(RecordInvestigation {
            by: Actor::handler(staff("r1")),
            findings: text("nothing wrong"),
        }))
        .then_error(DomainError::RespondentCannotInvestigate);
}

#[test]
fn respondent_cannot_sign_even_as_director_r_p4() {
    let mut history = vec![filed(Severity::Major, Some("r1")), assigned("h1"), investigated("h1")];
    history.extend([drafted("sp1"), escalated(SignerCapacity::Director)]);
    given::<Complaint>(history.clone())
        .when(sign("r1", SignerCapacity::Director))
        .then_error(DomainError::RespondentCannotSign);
    // The same command from someone else is accepted: the refusal is about the person.
    given::<Complaint>(history).when(sign("d1", SignerCapacity::Director)).events();
}

#[test]
fn respondent_cannot_write_the_opinion_r_p4() {
    given::<Complaint>([filed(Severity::Normal, Some("r1")), assigned("h1")])
        .when(ComplaintCommand::DraftOpinion(DraftOpinion {
            specialist: staff("r1"),
            opinion: text("fine"),
        }))
        .then_error(DomainError::RespondentCannotDraft);
}

#[test]
fn recusal_records_its_reason_and_frees_the_case_r_p4() {
    let recuse =
        |reason| ComplaintCommand::RecuseHandler(RecuseHandler { handler: staff("h1"), reason });
    let history = [filed(Severity::Normal, None), assigned("h1")];
    given::<Complaint>(history.clone())
        .when(recuse(None))
        .then_error(DomainError::RecusalNeedsReason);
    let case = given::<Complaint>(history)
        .when(recuse(Some(text("customer is a relative"))))
        .then(vec![HandlerRecused {
            handler: staff("h1"),
            reason: text("customer is a relative"),
            recused_at: at(1),
        }
        .into()])
        .unwrap();
    assert_eq!(case.handler, None);
    assert_eq!(case.recused, vec![staff("h1")]);
}

#[test]
fn only_the_current_handler_recuses() {
    given::<Complaint>([filed(Severity::Normal, None), assigned("h1")])
        .when(ComplaintCommand::RecuseHandler(RecuseHandler {
            handler: staff("h2"),
            reason: Some(text("conflict")),
        }))
        .then_error(DomainError::NotCurrentHandler);
}

#[test]
fn recused_person_can_never_be_reassigned_r_p4() {
    let recused =
        HandlerRecused { handler: staff("h1"), reason: text("conflict"), recused_at: at(0) };
    let history =
        vec![filed(Severity::Normal, None), assigned("h1"), recused.into(), assigned("h2")];
    given::<Complaint>(history.clone())
        .when(ComplaintCommand::AssignHandler(AssignHandler {
            handler: staff("h1"),
            reason: None,
            handler_cleared: true,
        }))
        .then_error(DomainError::RecusedCannotReturn);
    // Nor sign in another capacity.
    let mut escalated_history = history;
    escalated_history.extend([
        investigated("h2"),
        drafted("sp1"),
        escalated(SignerCapacity::Committee),
    ]);
    given::<Complaint>(escalated_history)
        .when(sign("h1", SignerCapacity::Committee))
        .then_error(DomainError::RecusedCannotReturn);
}

#[test]
fn reassigning_records_the_previous_handler_r_p5() {
    given::<Complaint>([filed(Severity::Normal, None), assigned("h1")])
        .when(ComplaintCommand::AssignHandler(AssignHandler {
            handler: staff("h2"),
            reason: Some(text("h1 is absent")),
            handler_cleared: true,
        }))
        .then(vec![HandlerAssigned {
            handler: staff("h2"),
            previous: Some(staff("h1")),
            reason: Some(text("h1 is absent")),
            assigned_at: at(1),
        }
        .into()]);
    given::<Complaint>([filed(Severity::Normal, None), assigned("h1")])
        .when(ComplaintCommand::AssignHandler(AssignHandler {
            handler: staff("h1"),
            reason: None,
            handler_cleared: true,
        }))
        .then(vec![]);
}

#[test]
fn only_the_current_handler_signs_a_normal_case_r_p5() {
    given::<Complaint>(ready_to_sign())
        .when(sign("h2", SignerCapacity::Handler))
        .then_error(DomainError::NotCurrentHandler);
    given::<Complaint>(ready_to_sign())
        .when(sign("h1", SignerCapacity::Handler))
        .then(vec![signed_now("h1", SignerCapacity::Handler)]);
}

fn signed_now(signer: &str, capacity: SignerCapacity) -> ComplaintEvent {
    let ComplaintEvent::OpinionSigned(mut e) = signed(signer, capacity) else { unreachable!() };
    e.signed_at = at(1);
    e.into()
}

#[test]
fn normal_case_is_signed_in_handler_capacity_r_p9() {
    given::<Complaint>(ready_to_sign())
        .when(sign("h1", SignerCapacity::Director))
        .then_error(DomainError::NormalNeedsHandlerSignature);
}

#[test]
fn major_case_must_be_escalated_before_signing_r_p5() {
    let history =
        vec![filed(Severity::Major, None), assigned("h1"), investigated("h1"), drafted("sp1")];
    given::<Complaint>(history.clone())
        .when(sign("h1", SignerCapacity::Handler))
        .then_error(DomainError::MajorComplaintNotEscalated);
    given::<Complaint>(history)
        .when(sign("d1", SignerCapacity::Director))
        .then_error(DomainError::MajorComplaintNotEscalated);
}

#[test]
fn escalated_case_is_signed_by_the_body_it_went_to_r_p5() {
    let mut history = vec![filed(Severity::Major, None), assigned("h1"), investigated("h1")];
    history.push(drafted("sp1"));
    let to_director = [history.clone(), vec![escalated(SignerCapacity::Director)]].concat();
    let to_committee = [history, vec![escalated(SignerCapacity::Committee)]].concat();
    given::<Complaint>(to_committee.clone())
        .when(sign("h1", SignerCapacity::Handler))
        .then_error(DomainError::EscalatedNeedsDirectorOrCommittee);
    // One director does not sign "as committee" alone, nor as director what went to it.
    given::<Complaint>(to_committee.clone())
        .when(sign("d1", SignerCapacity::Director))
        .then_error(DomainError::NotTheDecidingBody { escalated_to: "committee".into() });
    given::<Complaint>(to_director.clone())
        .when(sign_in_meeting("d1", &["d1", "p1", "p2"]))
        .then_error(DomainError::NotTheDecidingBody { escalated_to: "director".into() });
    let (events, case) =
        given::<Complaint>(to_director).when(sign("d1", SignerCapacity::Director)).events();
    assert_eq!(events, vec![signed_now("d1", SignerCapacity::Director)]);
    assert!(case.unwrap().round.signature.is_some());
}

#[test]
fn a_committee_decision_records_its_meeting_r_p5() {
    let mut history = vec![filed(Severity::Major, Some("r1")), assigned("h1")];
    history.extend([investigated("h1"), drafted("sp1"), escalated(SignerCapacity::Committee)]);
    given::<Complaint>(history.clone())
        .when(sign("d1", SignerCapacity::Committee))
        .then_error(DomainError::CommitteeMeetingRequired);
    // Below the default quorum of three, duplicates counted once.
    given::<Complaint>(history.clone())
        .when(sign_in_meeting("d1", &["d1", "p1", "p1"]))
        .then_error(DomainError::CommitteeQuorumNotMet { present: 2, quorum: 3 });
    given::<Complaint>(history.clone())
        .when(sign_in_meeting("d1", &["p1", "p2", "p3"]))
        .then_error(DomainError::SignerNotAtMeeting);
    given::<Complaint>(history.clone())
        .when(sign_in_meeting("d1", &["d1", "p1", "r1"]))
        .then_error(DomainError::RespondentCannotSign);
    let mut future = sign_in_meeting("d1", &["d1", "p1", "p2"]);
    if let ComplaintCommand::SignOpinion(command) = &mut future {
        command.meeting.as_mut().unwrap().held_at = at(2);
    }
    given::<Complaint>(history.clone())
        .when(future)
        .then_error(DomainError::DatedInFuture { field: "meeting.held_at" });
    // R-T4: the meeting that decided the case cannot precede its receipt (at -2 h).
    let mut before_receipt = sign_in_meeting("d1", &["d1", "p1", "p2"]);
    if let ComplaintCommand::SignOpinion(command) = &mut before_receipt {
        command.meeting.as_mut().unwrap().held_at = at(-3);
    }
    given::<Complaint>(history.clone())
        .when(before_receipt)
        .then_error(DomainError::MeetingBeforeReceipt);
    // R-T4: nor its escalation (received at -2 h, escalated at 0, met at -1 h).
    let mut before_escalation = sign_in_meeting("d1", &["d1", "p1", "p2"]);
    if let ComplaintCommand::SignOpinion(command) = &mut before_escalation {
        command.meeting.as_mut().unwrap().held_at = at(-1);
    }
    given::<Complaint>(history.clone())
        .when(before_escalation)
        .then_error(DomainError::MeetingBeforeEscalation);
    // Only registered, active committee members count; one named and not is refused.
    for (standing, error) in [
        (Some(MemberStanding::NotOnStaff), DomainError::CommitteeMemberNotOnStaff),
        (None, DomainError::CommitteeMemberNotOnStaff),
        (Some(MemberStanding::NotOnCommittee), DomainError::NotACommitteeMember),
        // R-C6: below the customer's level, as the caller found it.
        (Some(MemberStanding::NotCleared), DomainError::CommitteeMemberNotCleared),
    ] {
        let mut command = sign_in_meeting("d1", &["d1", "p1", "p2"]);
        if let ComplaintCommand::SignOpinion(command) = &mut command {
            command.members.retain(|(code, _)| code != &staff("p2"));
            if let Some(standing) = standing {
                command.members.push((staff("p2"), standing));
            }
        }
        given::<Complaint>(history.clone()).when(command).then_error(error);
    }
    // R-P5: sp1 drafted this round's opinion, so sits at no meeting deciding it.
    given::<Complaint>(history.clone())
        .when(sign_in_meeting("d1", &["d1", "p1", "sp1"]))
        .then_error(DomainError::DrafterCannotSign);
    let ComplaintEvent::OpinionSigned(mut expected) = signed_now("d1", SignerCapacity::Committee)
    else {
        unreachable!()
    };
    expected.meeting = Some(meeting(&["d1", "p1", "p2"]));
    given::<Complaint>(history)
        .when(sign_in_meeting("d1", &["d1", "p1", "p2"]))
        .then(vec![expected.into()]);
}

#[test]
fn the_drafter_does_not_sign_and_the_handler_does_not_draft_r_p5() {
    let history = vec![filed(Severity::Normal, None), assigned("h1"), investigated("h1")];
    given::<Complaint>(history.clone())
        .when(ComplaintCommand::DraftOpinion(DraftOpinion {
            specialist: staff("h1"),
            opinion: text("my own view"),
        }))
        .then_error(DomainError::HandlerCannotDraft);
    // Drafted before they were handler: still not theirs to sign.
    let drafted_then_assigned =
        vec![filed(Severity::Normal, None), drafted("sp1"), assigned("sp1"), investigated("sp1")];
    given::<Complaint>(drafted_then_assigned)
        .when(sign("sp1", SignerCapacity::Handler))
        .then_error(DomainError::DrafterCannotSign);
    // A signature binds to this round's opinion: whoever drafted any version of it
    // signs in no capacity, even once another redrafted.
    let redrafted = vec![
        filed(Severity::Normal, None),
        drafted("hs1"),
        drafted("sp1"),
        assigned("hs1"),
        investigated("hs1"),
    ];
    given::<Complaint>(redrafted)
        .when(sign("hs1", SignerCapacity::Handler))
        .then_error(DomainError::DrafterCannotSign);
    let to_director = vec![
        filed(Severity::Major, None),
        assigned("h1"),
        investigated("h1"),
        drafted("d1"),
        escalated(SignerCapacity::Director),
    ];
    given::<Complaint>(to_director)
        .when(sign("d1", SignerCapacity::Director))
        .then_error(DomainError::DrafterCannotSign);
}

#[test]
fn a_handler_not_cleared_for_the_customer_is_not_assigned_r_c6() {
    given::<Complaint>([filed(Severity::Normal, None)])
        .when(ComplaintCommand::AssignHandler(AssignHandler {
            handler: staff("h1"),
            reason: None,
            handler_cleared: false,
        }))
        .then_error(DomainError::HandlerNotCleared);
}

#[test]
fn an_old_log_whose_handler_drafted_and_signed_still_loads() {
    // Before R-P5 was enforced a handler could draft and sign: such a round stays signed.
    let history = vec![
        filed(Severity::Normal, None),
        assigned("h1"),
        investigated("h1"),
        drafted("h1"),
        signed("h1", SignerCapacity::Handler),
    ];
    let case = Complaint::fold(&history).unwrap();
    assert_eq!(case.round.draft_by, Some(staff("h1")));
    assert_eq!(case.round.signature.map(|s| s.signer), Some(staff("h1")));
}

#[test]
fn only_the_handler_or_someone_stepping_in_acts_and_never_the_respondent_r_p4() {
    let mut history = ready_to_sign();
    history.push(signed("h1", SignerCapacity::Handler));
    let with_reply = [history.clone(), vec![final_reply()]].concat();
    // An act on the case, what refuses it to the respondent, and the history it needs.
    type Act<'a> = (fn(Actor) -> ComplaintCommand, DomainError, &'a [ComplaintEvent]);
    let acts: [Act; 4] = [
        (contact_by, DomainError::RespondentCannotContact, &history),
        (
            |by| reply_by(by, ReplyKind::Final, ContactChannel::Letter),
            DomainError::RespondentCannotReply,
            &history,
        ),
        (close_by, DomainError::RespondentCannotClose, &with_reply),
        (
            |by| {
                ComplaintCommand::RecordInvestigation(RecordInvestigation {
                    by,
                    findings: text("more facts"),
                })
            },
            DomainError::RespondentCannotInvestigate,
            &history,
        ),
    ];
    for (act, respondent_error, history) in acts {
        // r1 is the respondent: refused even stepping in as a supervisor.
        given::<Complaint>(history.to_vec())
            .when(act(Actor::stepping_in(staff("r1"))))
            .then_error(respondent_error.clone());
        given::<Complaint>(history.to_vec())
            .when(act(Actor::handler(staff("r1"))))
            .then_error(respondent_error);
        given::<Complaint>(history.to_vec())
            .when(act(Actor::handler(staff("h2"))))
            .then_error(DomainError::NotCurrentHandler);
        given::<Complaint>(history.to_vec()).when(act(Actor::handler(staff("h1")))).events();
        given::<Complaint>(history.to_vec()).when(act(Actor::stepping_in(staff("s1")))).events();
    }
}

#[test]
fn escalation_goes_to_director_or_committee_once_r_p5() {
    let escalate = |to| ComplaintCommand::Escalate(EscalateComplaint { to, reason: text("major") });
    given::<Complaint>([filed(Severity::Major, None)])
        .when(escalate(SignerCapacity::Handler))
        .then_error(DomainError::EscalationTarget);
    given::<Complaint>([filed(Severity::Major, None), escalated(SignerCapacity::Director)])
        .when(escalate(SignerCapacity::Committee))
        .then_error(DomainError::AlreadyEscalated);
}

#[test]
fn investigation_precedes_the_signed_opinion_r_p6() {
    given::<Complaint>([filed(Severity::Normal, None), assigned("h1"), drafted("sp1")])
        .when(sign("h1", SignerCapacity::Handler))
        .then_error(DomainError::InvestigationRequired);
}

#[test]
fn investigation_is_by_the_current_handler_r_p6() {
    let investigate = |by| {
        ComplaintCommand::RecordInvestigation(RecordInvestigation {
            by: Actor::handler(staff(by)),
            findings: text("x"),
        })
    };
    given::<Complaint>([filed(Severity::Normal, None)])
        .when(investigate("h1"))
        .then_error(DomainError::NoHandlerAssigned);
    given::<Complaint>([filed(Severity::Normal, None), assigned("h1")])
        .when(investigate("h2"))
        .then_error(DomainError::NotCurrentHandler);
}

#[test]
fn drafted_opinion_precedes_the_signature_r_p5() {
    given::<Complaint>([filed(Severity::Normal, None), assigned("h1"), investigated("h1")])
        .when(sign("h1", SignerCapacity::Handler))
        .then_error(DomainError::DraftOpinionRequired);
}

#[test]
fn only_acknowledgements_before_the_signed_opinion_r_p8() {
    given::<Complaint>(ready_to_sign())
        .when(reply(ReplyKind::Final, ContactChannel::Letter))
        .then_error(DomainError::NoCommitmentBeforeDecision);
    let (_, case) = given::<Complaint>(ready_to_sign())
        .at(at(3))
        .when(reply(ReplyKind::Acknowledgement, ContactChannel::Phone))
        .events();
    assert_eq!(case.unwrap().first_response_at, Some(at(3)), "R-P7: a reply is a first response");
}

#[test]
fn final_reply_is_written_r_p10() {
    let mut history = ready_to_sign();
    history.push(signed("h1", SignerCapacity::Handler));
    given::<Complaint>(history.clone())
        .when(reply(ReplyKind::Final, ContactChannel::Phone))
        .then_error(DomainError::FinalReplyNotWritten);
    given::<Complaint>(history.clone())
        .when(reply(ReplyKind::Final, ContactChannel::Email))
        .events();
    history.push(final_reply());
    given::<Complaint>(history)
        .when(reply(ReplyKind::Final, ContactChannel::Letter))
        .then_error(DomainError::FinalReplyAlreadySent);
}

#[test]
fn closing_requires_signed_opinion_and_final_reply() {
    let close = || close_by(Actor::handler(staff("h1")));
    given::<Complaint>(ready_to_sign())
        .when(close())
        .then_error(DomainError::CloseNeedsSignedOpinion);
    let mut history = ready_to_sign();
    history.push(signed("h1", SignerCapacity::Handler));
    given::<Complaint>(history.clone()).when(close()).then_error(DomainError::CloseNeedsFinalReply);
    history.push(final_reply());
    let case = given::<Complaint>(history).when(close()).events().1.unwrap();
    assert_eq!(case.status, CaseStatus::Closed);
    assert_eq!(case.closed_at, Some(at(1)));
}

#[test]
fn closed_case_refuses_handling_commands() {
    let commands = [
        ComplaintCommand::AssignHandler(AssignHandler {
            handler: staff("h2"),
            reason: None,
            handler_cleared: true,
        }),
        ComplaintCommand::RecordInvestigation(RecordInvestigation {
            by: Actor::handler(staff("h1")),
            findings: text("x"),
        }),
        sign("h1", SignerCapacity::Handler),
        reply(ReplyKind::Acknowledgement, ContactChannel::Phone),
        close_by(Actor::handler(staff("h1"))),
    ];
    for command in commands {
        given::<Complaint>(handled_and_closed())
            .when(command)
            .then_error(DomainError::ComplaintClosed);
    }
}

#[test]
fn callback_surveys_a_closed_complaint_r_p13() {
    given::<Complaint>(ready_to_sign())
        .when(callback(CallbackOutcome::Satisfied))
        .then_error(DomainError::CallbackBeforeClose);
    let (events, case) = given::<Complaint>(handled_and_closed())
        .at(at(2))
        .when(callback(CallbackOutcome::Neutral))
        .events();
    assert_eq!(events.len(), 1, "a neutral outcome does not reopen");
    let case = case.unwrap();
    assert_eq!(case.status, CaseStatus::Closed);
    assert_eq!(case.last_callback_outcome, Some(CallbackOutcome::Neutral));
    let ComplaintEvent::CallbackLogged(logged) = &events[0] else { panic!("{events:?}") };
    assert_eq!((logged.complaint_id, logged.customer_id), (Some(complaint_id()), customer_id()));
    assert_eq!(logged.score, Some(Score::new(2).unwrap()), "the whole result is recorded (R-P15)");
}

#[test]
fn complaint_callback_must_be_of_kind_complaint_r_p13() {
    let ComplaintCommand::LogCallback(mut routine) = callback(CallbackOutcome::Satisfied) else {
        unreachable!()
    };
    routine.kind = CallbackKind::Routine;
    given::<Complaint>(handled_and_closed())
        .when(ComplaintCommand::LogCallback(routine))
        .then_error(DomainError::CallbackKindMismatch);
}

#[test]
fn dissatisfied_callback_reopens_in_the_same_decision_r_p14() {
    let (events, case) = given::<Complaint>(handled_and_closed())
        .at(at(2))
        .when(callback(CallbackOutcome::Dissatisfied))
        .events();
    assert!(matches!(events[0], ComplaintEvent::CallbackLogged(_)));
    assert_eq!(
        events[1],
        ComplaintReopened {
            cause: text("dissatisfied callback: still charged twice"),
            by_callback: true,
            reopened_at: at(2),
        }
        .into()
    );
    let case = case.unwrap();
    assert_eq!((case.status, case.reopen_count), (CaseStatus::Open, 1));
}

#[test]
fn reopen_records_its_cause_and_starts_a_new_round_r_p14() {
    let reopen = |cause| ComplaintCommand::Reopen(ReopenComplaint { cause });
    given::<Complaint>(handled_and_closed())
        .when(reopen(None))
        .then_error(DomainError::ReopenNeedsCause);
    given::<Complaint>(ready_to_sign())
        .when(reopen(Some(text("x"))))
        .then_error(DomainError::ComplaintNotClosed);
    let mut history = handled_and_closed();
    history.push(
        ComplaintReopened { cause: text("new facts"), by_callback: false, reopened_at: at(0) }
            .into(),
    );
    // The new round needs its own investigation and opinion before a signature.
    given::<Complaint>(history)
        .when(sign("h1", SignerCapacity::Handler))
        .then_error(DomainError::InvestigationRequired);
}

fn archive(year: i32) -> ComplaintCommand {
    ComplaintCommand::Archive(ArchiveCase { year })
}

#[test]
fn archiving_is_by_the_case_year_and_final_r_p12() {
    given::<Complaint>(ready_to_sign())
        .when(archive(2026))
        .then_error(DomainError::ComplaintNotClosed);
    given::<Complaint>(handled_and_closed()).at(at(80)).when(archive(2025)).then_error(
        DomainError::ArchiveYearMismatch { case_number: "2026-000007".into(), year: 2025 },
    );
    let mut history = handled_and_closed();
    history.push(callback_logged(at(1)));
    history.push(CaseArchived { year: 2026, archived_at: at(2) }.into());
    for command in [
        callback(CallbackOutcome::Satisfied),
        archive(2026),
        ComplaintCommand::Reopen(ReopenComplaint { cause: Some(text("x")) }),
    ] {
        given::<Complaint>(history.clone())
            .at(at(3))
            .when(command)
            .then_error(DomainError::ComplaintArchived);
    }
}

fn callback_logged(called_at: chrono::DateTime<chrono::Utc>) -> ComplaintEvent {
    kefu_domain::CallbackLogged {
        customer_id: customer_id(),
        complaint_id: Some(complaint_id()),
        kind: CallbackKind::Complaint,
        channel: CallbackChannel::Phone,
        party: Some(CallbackParty::Complainant),
        outcome: CallbackOutcome::Satisfied,
        score: None,
        comment: None,
        by: staff("a1"),
        called_at,
    }
    .into()
}

#[test]
fn archiving_waits_for_the_callback_or_its_window_r_p12_r_p15() {
    // Closed at 0 h; the callback is due 3 days (72 h) later.
    given::<Complaint>(handled_and_closed()).at(at(1)).when(archive(2026)).then_error(
        DomainError::CallbackWindowOpen {
            case_number: "2026-000007".into(),
            due: at(72).to_rfc3339(),
        },
    );
    given::<Complaint>(handled_and_closed()).at(at(72)).when(archive(2026)).then_error(
        DomainError::CallbackWindowOpen {
            case_number: "2026-000007".into(),
            due: at(72).to_rfc3339(),
        },
    );
    let (events, case) =
        given::<Complaint>(handled_and_closed()).at(at(73)).when(archive(2026)).events();
    assert_eq!(events, vec![CaseArchived { year: 2026, archived_at: at(73) }.into()]);
    assert_eq!(case.unwrap().status, CaseStatus::Archived, "the window passed uncalled");

    let mut called = handled_and_closed();
    called.push(callback_logged(at(1)));
    let (events, _) = given::<Complaint>(called).at(at(2)).when(archive(2026)).events();
    assert_eq!(events, vec![CaseArchived { year: 2026, archived_at: at(2) }.into()]);
}

#[test]
fn a_callback_owed_is_never_refused_because_of_archiving_r_p15() {
    // An earlier release archived this case inside its callback window.
    let mut history = handled_and_closed();
    history.push(CaseArchived { year: 2026, archived_at: at(1) }.into());
    let (events, case) =
        given::<Complaint>(history).at(at(2)).when(callback(CallbackOutcome::Satisfied)).events();
    assert!(matches!(events.as_slice(), [ComplaintEvent::CallbackLogged(_)]));
    assert_eq!(case.unwrap().callback_due(), None, "R-P15 settled");
}

#[test]
fn first_response_and_callback_deadlines_r_p7_r_p15() {
    let contact = ComplaintCommand::ContactComplainant(ContactComplainant {
        by: Actor::stepping_in(staff("s1")),
        channel: ContactChannel::Phone,
        summary: text("handling arranged"),
        contacted_at: at(0),
    });
    let case =
        given::<Complaint>([filed(Severity::Normal, None)]).when(contact).events().1.unwrap();
    assert_eq!(case.first_response_at, Some(at(0)));
    assert_eq!(case.first_response_due(), at(10), "received at -2 h, due 12 h later");

    let case = Complaint::fold(&handled_and_closed()).unwrap();
    assert_eq!(case.callback_due(), Some(at(72)));
    let (_, called) = given::<Complaint>(handled_and_closed())
        .at(at(5))
        .when(callback(CallbackOutcome::Satisfied))
        .events();
    assert_eq!(called.unwrap().callback_due(), None, "a callback after closing settles it");
}

#[test]
fn contacts_cannot_be_dated_in_the_future() {
    let contact = ComplaintCommand::ContactComplainant(ContactComplainant {
        by: Actor::stepping_in(staff("s1")),
        channel: ContactChannel::Phone,
        summary: text("hello"),
        contacted_at: at(9),
    });
    given::<Complaint>([filed(Severity::Normal, None)])
        .when(contact)
        .then_error(DomainError::DatedInFuture { field: "contacted_at" });
}

#[test]
fn stages_follow_the_latest_fact_of_the_round() {
    let mut history = vec![filed(Severity::Major, None)];
    let mut seen = vec![Complaint::fold(&history).unwrap().stage()];
    for event in
        [assigned("h1"), investigated("h1"), drafted("sp1"), escalated(SignerCapacity::Director)]
    {
        history.push(event);
        seen.push(Complaint::fold(&history).unwrap().stage());
    }
    history.extend([signed("d1", SignerCapacity::Director)]);
    seen.push(Complaint::fold(&history).unwrap().stage());
    history.extend([final_reply()]);
    seen.push(Complaint::fold(&history).unwrap().stage());
    history.extend([closed()]);
    seen.push(Complaint::fold(&history).unwrap().stage());
    assert_eq!(
        seen,
        [
            "filed",
            "assigned",
            "investigating",
            "drafted",
            "escalated",
            "signed",
            "replied",
            "closed"
        ]
    );
}
