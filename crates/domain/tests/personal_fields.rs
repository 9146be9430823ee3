//! R-C8/R-C6: every payload field of every customer and complaint event type is declared
//! once, with its kind, in `kefu_domain::personal`, and what is declared personal is what
//! gets sealed.

mod support;

use std::collections::BTreeSet;

use kefu_domain::complaint::*;
use kefu_domain::customer::*;
use kefu_domain::personal::{self, FieldKind};
use kefu_domain::request::*;
use kefu_domain::{
    Attachment, CallbackChannel, CallbackKind, CallbackLogged, CallbackOutcome, CallbackParty,
    Confidentiality, ContactChannel, Contacts, CustomerKind, DomainEvent, IntakeChannel, ReplyKind,
    RequestKind, Score, Severity, SignerCapacity, StarLevel, Tier,
};
use support::{at, staff, text};

#[test]
fn contacts_and_attachments_are_personal() {
    for (event_type, field) in [
        ("CustomerRegistered", "contacts"),
        ("CustomerUpdated", "contacts"),
        ("ComplaintFiled", "attachments"),
    ] {
        assert_eq!(personal::kind(event_type, field), FieldKind::Personal, "{event_type}.{field}");
    }
}

/// The value of every free-text field in [`every_event`].
const FREE: &str = "free text";

fn free() -> kefu_domain::Text {
    text(FREE)
}

/// One of every customer and complaint event, every optional field set.
fn every_event() -> Vec<(String, serde_json::Value)> {
    let customer_id = "0193a5e0-0000-7000-8000-0000000000c1".parse().unwrap();
    let complaint_id = "0193a5e0-0000-7000-8000-000000000001".parse().unwrap();
    let contacts = Contacts::new(
        vec!["13800138000".into()],
        vec!["a@b.cn".into()],
        Some("x".into()),
        kefu_domain::PhoneRegion::default(),
    )
    .unwrap();
    let callback = CallbackLogged {
        customer_id,
        complaint_id: Some(complaint_id),
        kind: CallbackKind::Complaint,
        channel: CallbackChannel::Phone,
        party: Some(CallbackParty::Complainant),
        outcome: CallbackOutcome::Dissatisfied,
        score: Some(Score::new(1).unwrap()),
        comment: Some(free()),
        by: staff("a1"),
        called_at: at(0),
    };
    let customer: Vec<CustomerEvent> = vec![
        CustomerRegistered {
            customer_id,
            name: free(),
            kind: CustomerKind::Individual,
            contacts: contacts.clone(),
            tier: Tier::Key,
            stars: Some(StarLevel::new(5).unwrap()),
            source_channel: free(),
            referred_by: Some(customer_id),
            confidentiality: Confidentiality::Secret,
            agent: staff("a1"),
            registered_at: at(0),
        }
        .into(),
        CustomerUpdated {
            name: Some(free()),
            contacts: Some(contacts),
            confidentiality: Some(Confidentiality::Public),
            updated_at: at(0),
        }
        .into(),
        CustomerGraded {
            from_tier: Tier::Key,
            to_tier: Tier::Vip,
            from_stars: Some(StarLevel::new(1).unwrap()),
            to_stars: Some(StarLevel::new(2).unwrap()),
            reason: free(),
            graded_at: at(0),
        }
        .into(),
        AgentAssigned {
            previous: staff("a1"),
            agent: staff("a2"),
            reason: Some(free()),
            assigned_at: at(0),
        }
        .into(),
        CustomerContacted {
            by: staff("a1"),
            channel: ContactChannel::Phone,
            note: Some(free()),
            contacted_at: at(0),
        }
        .into(),
        callback.clone().into(),
        CustomerMerged { into: customer_id, reason: free(), merged_at: at(0) }.into(),
        CustomerAbsorbed {
            duplicate: customer_id,
            also: vec![customer_id],
            reason: Some(free()),
            absorbed_at: at(0),
        }
        .into(),
        CustomerForgotten { reason: free(), forgotten_at: at(0) }.into(),
    ];
    let complaint: Vec<ComplaintEvent> = vec![
        ComplaintFiled {
            complaint_id,
            case_number: "2026-000001".parse().unwrap(),
            customer_id,
            category: free(),
            cause: free(),
            severity: Severity::Major,
            channel: IntakeChannel::Letter,
            description: free(),
            respondent: Some(staff("r1")),
            attachments: vec![Attachment::new("doc://1", None).unwrap()],
            received_at: at(0),
            filed_at: at(0),
            terms: CaseTerms::under(
                0,
                &kefu_domain::Policy::version_zero(),
                at(0),
                Severity::Major,
                None,
            ),
            from_request: None,
        }
        .into(),
        HandlerAssigned {
            handler: staff("h1"),
            previous: Some(staff("h2")),
            reason: Some(free()),
            assigned_at: at(0),
        }
        .into(),
        HandlerRecused { handler: staff("h1"), reason: free(), recused_at: at(0) }.into(),
        ComplainantContacted {
            by: staff("h1"),
            channel: ContactChannel::Phone,
            summary: free(),
            contacted_at: at(0),
        }
        .into(),
        InvestigationRecorded { by: staff("h1"), findings: free(), investigated_at: at(0) }.into(),
        OpinionDrafted { specialist: staff("sp1"), opinion: free(), drafted_at: at(0) }.into(),
        ComplaintEscalated { to: SignerCapacity::Committee, reason: free(), escalated_at: at(0) }
            .into(),
        OpinionSigned {
            signer: staff("d1"),
            capacity: SignerCapacity::Committee,
            decision: free(),
            remedy: Some(free()),
            meeting: Some(CommitteeMeeting {
                held_at: at(0),
                members_present: vec![staff("d1")],
                reported_to_authority: true,
            }),
            signed_at: at(0),
        }
        .into(),
        ReplySent {
            by: staff("h1"),
            kind: ReplyKind::Final,
            channel: ContactChannel::Letter,
            summary: free(),
            sent_at: at(0),
        }
        .into(),
        ComplaintClosed {
            summary: Some(free()),
            closed_at: at(0),
            callback_due_at: at(0),
            callback_at_risk_at: at(0),
        }
        .into(),
        ComplaintReopened { cause: free(), by_callback: true, reopened_at: at(0) }.into(),
        callback.into(),
        CaseArchived { year: 2026, archived_at: at(0) }.into(),
        MaterialAdded {
            number: 2,
            reference: FREE.into(),
            media_type: "application/pdf".into(),
            size_bytes: 1,
            sha256: FREE.into(),
            supersedes: Some(1),
            reason: Some(free()),
            by: staff("h1"),
            added_at: at(0),
        }
        .into(),
        ImplementationRecorded {
            by: staff("sp1"),
            summary: free(),
            implemented_at: at(0),
            recorded_at: at(0),
        }
        .into(),
    ];
    let request: Vec<RequestEvent> = vec![
        RequestReceived {
            request_id: "0193a5e0-0000-7000-8000-0000000000e1".parse().unwrap(),
            customer_id,
            kind: RequestKind::AfterSale,
            channel: IntakeChannel::Phone,
            category: free(),
            description: free(),
            received_at: at(0),
            recorded_at: at(0),
            terms: RequestTerms::under(0, &kefu_domain::Policy::version_zero(), at(0), Tier::Key),
        }
        .into(),
        RequestAssigned {
            agent: staff("a1"),
            previous: Some(staff("a2")),
            reason: Some(free()),
            assigned_at: at(0),
        }
        .into(),
        RequestResponded {
            by: staff("a1"),
            channel: ContactChannel::Phone,
            summary: free(),
            responded_at: at(0),
        }
        .into(),
        RequestResolved {
            by: staff("a1"),
            summary: free(),
            resolved_at: at(0),
            first_contact: false,
            callback_due_at: Some(at(0)),
            callback_at_risk_at: Some(at(0)),
        }
        .into(),
        RequestEscalated {
            complaint_id,
            case_number: "2026-000001".parse().unwrap(),
            by: staff("a1"),
            reason: free(),
            escalated_at: at(0),
        }
        .into(),
    ];
    let mut all: Vec<(String, serde_json::Value)> =
        customer.iter().map(|e| (e.event_type().to_owned(), e.to_payload())).collect();
    all.extend(complaint.iter().map(|e| (e.event_type().to_owned(), e.to_payload())));
    all.extend(request.iter().map(|e| (e.event_type().to_owned(), e.to_payload())));
    // Every type of the three aggregates is built above.
    let built: BTreeSet<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    let types: BTreeSet<&str> = CustomerEvent::TYPES
        .iter()
        .chain(ComplaintEvent::TYPES)
        .chain(RequestEvent::TYPES)
        .copied()
        .collect();
    assert_eq!(built, types, "build one of each event type");
    all
}

#[test]
fn every_payload_field_is_declared() {
    let mut declared_types = BTreeSet::new();
    for (event_type, payload) in every_event() {
        let fields = personal::declared(&event_type)
            .unwrap_or_else(|| panic!("{event_type} carries a customer's data: declare it"));
        let in_payload: BTreeSet<&str> =
            payload.as_object().unwrap().keys().map(String::as_str).collect();
        let in_list: BTreeSet<&str> = fields.iter().map(|(name, _)| *name).collect();
        assert_eq!(in_payload, in_list, "{event_type}: payload fields and declared fields");
        declared_types.insert(event_type);
    }
    let listed: BTreeSet<String> = personal::event_types().map(str::to_owned).collect();
    assert_eq!(listed, declared_types, "nothing declared for an event type that does not exist");
}

#[test]
fn every_free_text_is_personal_except_the_classifications() {
    // Texts kept in clear are classifications that statistics group by, and the
    // erasure's own reason (it outlives the key it destroys).
    let mut clear_texts = personal::LABELS.to_vec();
    clear_texts.push(("CustomerForgotten", "reason"));
    for (event_type, payload) in every_event() {
        for (field, value) in payload.as_object().unwrap() {
            let is_text = value.as_str() == Some(FREE);
            if is_text && !clear_texts.contains(&(event_type.as_str(), field.as_str())) {
                assert_eq!(
                    personal::kind(&event_type, field),
                    FieldKind::Personal,
                    "{event_type}.{field} is free text about the person"
                );
            }
        }
    }
    for (event_type, field) in personal::LABELS {
        assert_eq!(
            personal::kind(event_type, field),
            FieldKind::Restricted,
            "{event_type}.{field}"
        );
    }
    // R-C8: the cause of a reopen may quote a callback comment; it is sealed like it.
    assert_eq!(personal::kind("ComplaintReopened", "cause"), FieldKind::Personal);
    assert!(personal::fields("ComplaintReopened").contains(&"cause"));
    // Unknown fields of a declared type are not shown by mistake.
    assert_eq!(personal::kind("ComplaintFiled", "new_field"), FieldKind::Restricted);
    assert_eq!(personal::kind("StaffRegistered", "name"), FieldKind::Plain);
}
