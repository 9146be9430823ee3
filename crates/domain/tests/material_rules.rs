//! R-P2 (case materials) and R-P9 (implementation of the signed opinion), given/when/then.

mod support;

use kefu_domain::complaint::*;
use kefu_domain::{
    Aggregate, Attachment, ContactChannel, DomainError, IntakeChannel, Policy, PolicyBook,
    ReplyKind, Severity, SignerCapacity,
};
use support::{at, given, staff, text};

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn filed() -> ComplaintEvent {
    let received_at = at(-2);
    ComplaintFiled {
        complaint_id: "0193a5e0-0000-7000-8000-000000000001".parse().unwrap(),
        case_number: "2026-000007".parse().unwrap(),
        customer_id: "0193a5e0-0000-7000-8000-0000000000c1".parse().unwrap(),
        category: text("billing"),
        cause: text("overcharge"),
        severity: Severity::Normal,
        channel: IntakeChannel::Phone,
        description: text("charged twice for one visit"),
        respondent: Some(staff("r1")),
        attachments: vec![Attachment::new("doc://letter", None).unwrap()],
        received_at,
        filed_at: at(0),
        terms: CaseTerms::under(0, &Policy::version_zero(), received_at, Severity::Normal, None),
        from_request: None,
    }
    .into()
}

fn handled_to_signature(remedy: Option<&str>) -> Vec<ComplaintEvent> {
    vec![
        filed(),
        HandlerAssigned { handler: staff("h1"), previous: None, reason: None, assigned_at: at(0) }
            .into(),
        InvestigationRecorded { by: staff("h1"), findings: text("facts"), investigated_at: at(0) }
            .into(),
        OpinionDrafted { specialist: staff("sp1"), opinion: text("refund"), drafted_at: at(0) }
            .into(),
        OpinionSigned {
            signer: staff("h1"),
            capacity: SignerCapacity::Handler,
            decision: text("refund the second charge"),
            remedy: remedy.map(text),
            meeting: None,
            signed_at: at(1),
        }
        .into(),
        ReplySent {
            by: staff("h1"),
            kind: ReplyKind::Final,
            channel: ContactChannel::Letter,
            summary: text("decision"),
            sent_at: at(1),
        }
        .into(),
    ]
}

fn closed_at(hours: i64) -> ComplaintEvent {
    ComplaintClosed {
        summary: None,
        closed_at: at(hours),
        callback_due_at: at(hours + 72),
        callback_at_risk_at: at(hours + 48),
    }
    .into()
}

fn material(by: &str, supersedes: Option<u32>, reason: Option<&str>) -> ComplaintCommand {
    ComplaintCommand::AddMaterial(AddMaterial {
        by: staff(by),
        material: MaterialRef::new("doc://receipt", "application/pdf", 2_048, DIGEST).unwrap(),
        supersedes,
        reason: reason.map(text),
    })
}

fn added(number: u32, by: &str, supersedes: Option<u32>, reason: Option<&str>) -> ComplaintEvent {
    MaterialAdded {
        number,
        reference: "doc://receipt".into(),
        media_type: "application/pdf".into(),
        size_bytes: 2_048,
        sha256: DIGEST.into(),
        supersedes,
        reason: reason.map(text),
        by: staff(by),
        added_at: at(1),
    }
    .into()
}

fn close() -> ComplaintCommand {
    ComplaintCommand::Close(CloseComplaint {
        by: Actor::handler(staff("h1")),
        summary: None,
        policy: PolicyBook::new().current(),
    })
}

fn implement(by: &str, implemented_at: i64) -> ComplaintCommand {
    ComplaintCommand::RecordImplementation(RecordImplementation {
        by: staff(by),
        summary: text("refunded 120 yuan"),
        implemented_at: at(implemented_at),
    })
}

#[test]
fn a_material_takes_the_number_after_the_filings_attachments() {
    let case = given::<Complaint>([filed()])
        .when(material("h1", None, None))
        .then(vec![added(2, "h1", None, None)]);
    let case = case.unwrap();
    assert_eq!(case.materials.len(), 2);
    assert_eq!(case.materials[0].reference, "doc://letter");
    assert_eq!(case.materials[1].sha256.as_deref(), Some(DIGEST));
}

#[test]
fn a_newer_material_supersedes_with_a_reason_and_the_old_one_stays() {
    let case = given::<Complaint>([filed(), added(2, "h1", None, None)])
        .when(material("sp1", Some(1), Some("the signed original arrived")))
        .then(vec![added(3, "sp1", Some(1), Some("the signed original arrived"))])
        .unwrap();
    // Never removed: the superseded one is still there, naming its successor.
    assert_eq!(case.materials.len(), 3);
    assert_eq!(case.materials[0].superseded_by, Some(3));
    assert_eq!(case.materials[0].reference, "doc://letter");
    assert_eq!(case.materials[1].superseded_by, None);
}

#[test]
fn superseding_needs_a_reason_and_a_reason_needs_a_superseded_material() {
    given::<Complaint>([filed()])
        .when(material("h1", Some(1), None))
        .then_error(DomainError::SupersedingNeedsReason);
    given::<Complaint>([filed()])
        .when(material("h1", None, Some("why")))
        .then_error(DomainError::ReasonWithoutSuperseding);
}

#[test]
fn only_an_existing_current_material_is_superseded() {
    given::<Complaint>([filed()])
        .when(material("h1", Some(2), Some("why")))
        .then_error(DomainError::MaterialNotFound { number: 2 });
    given::<Complaint>([filed()])
        .when(material("h1", Some(u32::MAX), Some("why")))
        .then_error(DomainError::MaterialNotFound { number: u32::MAX });
    given::<Complaint>([filed(), added(2, "h1", Some(1), Some("newer"))])
        .when(material("h1", Some(1), Some("newer still")))
        .then_error(DomainError::MaterialAlreadySuperseded { number: 1, by: 2 });
}

#[test]
fn the_respondent_and_the_recused_add_no_material() {
    given::<Complaint>([filed()])
        .when(material("r1", None, None))
        .then_error(DomainError::RespondentCannotAddMaterial);
    let recused =
        HandlerRecused { handler: staff("h2"), reason: text("related"), recused_at: at(0) };
    given::<Complaint>([filed(), recused.into()])
        .when(material("h2", None, None))
        .then_error(DomainError::RecusedCannotReturn);
}

#[test]
fn materials_arrive_after_closing_but_not_after_archiving() {
    let mut history = handled_to_signature(None);
    history.push(closed_at(2));
    given::<Complaint>(history.clone())
        .at(at(3))
        .when(material("h1", None, None))
        .then(vec![MaterialAdded { added_at: at(3), ..material_added(2) }.into()]);
    history.push(CaseArchived { year: 2026, archived_at: at(80) }.into());
    given::<Complaint>(history)
        .at(at(81))
        .when(material("h1", None, None))
        .then_error(DomainError::ComplaintArchived);
}

fn material_added(number: u32) -> MaterialAdded {
    match added(number, "h1", None, None) {
        ComplaintEvent::MaterialAdded(added) => added,
        other => unreachable!("{other:?}"),
    }
}

#[test]
fn a_case_takes_a_bounded_number_of_materials() {
    let mut history = vec![filed()];
    let max = u32::try_from(MAX_MATERIALS).unwrap();
    history.extend((2..=max).map(|number| added(number, "h1", None, None)));
    given::<Complaint>(history)
        .when(material("h1", None, None))
        .then_error(DomainError::MaterialsExhausted { max: MAX_MATERIALS });
}

#[test]
fn implementation_follows_the_signature() {
    let mut history = handled_to_signature(Some("refund"));
    history.truncate(4);
    given::<Complaint>(history)
        .when(implement("sp1", 0))
        .then_error(DomainError::ImplementationBeforeSignature);
}

#[test]
fn implementation_is_dated_after_the_signature_and_not_in_the_future() {
    let history = handled_to_signature(Some("refund"));
    // Signed at +1h: done at +0h would precede it (R-T4).
    given::<Complaint>(history.clone())
        .at(at(2))
        .when(implement("sp1", 0))
        .then_error(DomainError::ImplementedBeforeSigning);
    given::<Complaint>(history.clone())
        .at(at(2))
        .when(implement("sp1", 3))
        .then_error(DomainError::DatedInFuture { field: "implemented_at" });
    given::<Complaint>(history).at(at(2)).when(implement("sp1", 1)).then(vec![
        ImplementationRecorded {
            by: staff("sp1"),
            summary: text("refunded 120 yuan"),
            implemented_at: at(1),
            recorded_at: at(2),
        }
        .into(),
    ]);
}

#[test]
fn the_respondent_records_no_implementation() {
    given::<Complaint>(handled_to_signature(Some("refund")))
        .at(at(2))
        .when(implement("r1", 1))
        .then_error(DomainError::RespondentCannotImplement);
}

#[test]
fn closing_a_promised_remedy_needs_its_implementation() {
    let history = handled_to_signature(Some("refund 120 yuan"));
    given::<Complaint>(history.clone())
        .at(at(2))
        .when(close())
        .then_error(DomainError::CloseNeedsImplementation);
    let mut implemented = history;
    implemented.push(
        ImplementationRecorded {
            by: staff("sp1"),
            summary: text("refunded"),
            implemented_at: at(1),
            recorded_at: at(2),
        }
        .into(),
    );
    let closed = given::<Complaint>(implemented).at(at(2)).when(close());
    let (_, case) = closed.events();
    let case = case.unwrap();
    assert_eq!(case.status, CaseStatus::Closed);
    assert_eq!(case.round.implementations.len(), 1);
}

#[test]
fn closing_without_a_promised_remedy_needs_no_implementation() {
    let (_, case) = given::<Complaint>(handled_to_signature(None)).at(at(2)).when(close()).events();
    assert_eq!(case.unwrap().status, CaseStatus::Closed);
}

#[test]
fn a_reopened_case_needs_the_implementation_of_its_new_opinion() {
    let mut history = handled_to_signature(Some("refund"));
    history.push(
        ImplementationRecorded {
            by: staff("sp1"),
            summary: text("refunded"),
            implemented_at: at(1),
            recorded_at: at(1),
        }
        .into(),
    );
    history.push(closed_at(2));
    history.push(
        ComplaintReopened { cause: text("still charged"), by_callback: false, reopened_at: at(3) }
            .into(),
    );
    let round = handled_to_signature(Some("refund again"));
    history.extend(round.into_iter().skip(2));
    let case = Complaint::fold(&history).unwrap();
    assert!(case.round.implementations.is_empty());
    given::<Complaint>(history)
        .at(at(4))
        .when(close())
        .then_error(DomainError::CloseNeedsImplementation);
}

#[test]
fn no_implementation_is_recorded_on_a_closed_case() {
    let mut history = handled_to_signature(None);
    history.push(closed_at(2));
    given::<Complaint>(history)
        .at(at(3))
        .when(implement("sp1", 2))
        .then_error(DomainError::ComplaintClosed);
}
