//! `STATE_FIELDS` and `ITEM_FIELDS` are complete: every restricted or personal field
//! the domain declares (`kefu_domain::personal`) that a case's state keeps is withheld
//! with its event. A field is kept when changing its value (or leaving it out) changes
//! the state folded by the domain's own `evolve` after some event of a case that went
//! through every event type.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use kefu_domain::complaint::*;
use kefu_domain::personal::{self, FieldKind};
use kefu_domain::{
    Aggregate, Attachment, CallbackChannel, CallbackKind, CallbackLogged, CallbackOutcome,
    CallbackParty, ContactChannel, DomainEvent, IntakeChannel, ReplyKind, Score, Severity,
    SignerCapacity, StaffId, Text,
};
use serde_json::Value;

use super::{ITEM_FIELDS, STATE_FIELDS};

fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap() + chrono::TimeDelta::hours(hours)
}

fn staff(code: &str) -> StaffId {
    StaffId::new(code).unwrap()
}

fn text(value: &str) -> Text {
    Text::new("text", value).unwrap()
}

/// A case through every complaint event type, every optional field set, in an order
/// its state can follow (the reopen comes after the signed round it ends).
fn every_event() -> Vec<ComplaintEvent> {
    let customer_id = "0193a5e0-0000-7000-8000-0000000000c1".parse().unwrap();
    let complaint_id = "0193a5e0-0000-7000-8000-000000000001".parse().unwrap();
    let events: Vec<ComplaintEvent> = vec![
        ComplaintFiled {
            complaint_id,
            case_number: "2026-000001".parse().unwrap(),
            customer_id,
            category: text("billing"),
            cause: text("overcharge"),
            severity: Severity::Major,
            channel: IntakeChannel::Letter,
            description: text("filed text"),
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
            reason: Some(text("assigned text")),
            assigned_at: at(1),
        }
        .into(),
        ComplainantContacted {
            by: staff("h1"),
            channel: ContactChannel::Phone,
            summary: text("contact text"),
            contacted_at: at(2),
        }
        .into(),
        InvestigationRecorded {
            by: staff("h1"),
            findings: text("findings text"),
            investigated_at: at(3),
        }
        .into(),
        MaterialAdded {
            number: 2,
            reference: "doc://2".into(),
            media_type: "application/pdf".into(),
            size_bytes: 1,
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            supersedes: Some(1),
            reason: Some(text("material text")),
            by: staff("h1"),
            added_at: at(4),
        }
        .into(),
        OpinionDrafted { specialist: staff("sp1"), opinion: text("opinion"), drafted_at: at(5) }
            .into(),
        ComplaintEscalated {
            to: SignerCapacity::Committee,
            reason: text("escalation text"),
            escalated_at: at(6),
        }
        .into(),
        OpinionSigned {
            signer: staff("d1"),
            capacity: SignerCapacity::Committee,
            decision: text("decision text"),
            remedy: Some(text("remedy text")),
            meeting: Some(CommitteeMeeting {
                held_at: at(7),
                members_present: vec![staff("d1")],
                reported_to_authority: true,
            }),
            signed_at: at(7),
        }
        .into(),
        ImplementationRecorded {
            by: staff("sp1"),
            summary: text("implementation text"),
            implemented_at: at(8),
            recorded_at: at(8),
        }
        .into(),
        ReplySent {
            by: staff("h1"),
            kind: ReplyKind::Final,
            channel: ContactChannel::Letter,
            summary: text("reply text"),
            sent_at: at(9),
        }
        .into(),
        ComplaintClosed {
            summary: Some(text("closing text")),
            closed_at: at(10),
            callback_due_at: at(11),
            callback_at_risk_at: at(11),
        }
        .into(),
        CallbackLogged {
            customer_id,
            complaint_id: Some(complaint_id),
            kind: CallbackKind::Complaint,
            channel: CallbackChannel::Phone,
            party: Some(CallbackParty::Complainant),
            outcome: CallbackOutcome::Dissatisfied,
            score: Some(Score::new(1).unwrap()),
            comment: Some(text("callback text")),
            by: staff("a1"),
            called_at: at(12),
        }
        .into(),
        ComplaintReopened { cause: text("reopen text"), by_callback: true, reopened_at: at(12) }
            .into(),
        HandlerRecused { handler: staff("h1"), reason: text("recusal text"), recused_at: at(13) }
            .into(),
        CaseArchived { year: 2026, archived_at: at(14) }.into(),
    ];
    let built: BTreeSet<&str> = events.iter().map(DomainEvent::event_type).collect();
    let types: BTreeSet<&str> = ComplaintEvent::TYPES.iter().copied().collect();
    assert_eq!(built, types, "build one of each complaint event type");
    events
}

/// The state after each event of `payloads`, serialized; `None` when one does not decode.
fn states(payloads: &[(String, Value)]) -> Option<Vec<Value>> {
    let mut state = None;
    let mut states = Vec::with_capacity(payloads.len());
    for (event_type, payload) in payloads {
        let event = ComplaintEvent::from_payload(event_type, payload).ok()?;
        state = Complaint::evolve(state, &event);
        states.push(serde_json::to_value(&state).unwrap());
    }
    Some(states)
}

/// Other values `value` could hold (the first that decodes is used).
fn others(value: &Value) -> Vec<Value> {
    let mut others = vec![Value::Null];
    match value {
        Value::String(s) => {
            others.push(Value::String(format!("{s}x")));
            for word in ["satisfied", "neutral", "other", "unlisted"] {
                others.push(Value::String(word.to_owned()));
            }
        }
        Value::Number(n) => others.push(Value::from(n.as_u64().unwrap_or(0) + 1)),
        Value::Bool(b) => others.push(Value::Bool(!b)),
        Value::Array(items) => {
            others.push(Value::Array(Vec::new()));
            for (i, item) in items.iter().enumerate() {
                for other in self::others(item) {
                    let mut changed = items.clone();
                    changed[i] = other;
                    others.push(Value::Array(changed));
                }
            }
        }
        Value::Object(fields) => {
            for (key, field) in fields {
                for other in self::others(field) {
                    let mut changed = fields.clone();
                    changed.insert(key.clone(), other);
                    others.push(Value::Object(changed));
                }
            }
        }
        Value::Null => {}
    }
    others.retain(|other| other != value);
    others
}

#[test]
fn every_field_the_state_keeps_is_withheld_with_its_event() {
    let payloads: Vec<(String, Value)> = every_event()
        .iter()
        .map(|event| (event.event_type().to_owned(), event.to_payload()))
        .collect();
    let baseline = states(&payloads).expect("the case decodes");
    let mut kept = BTreeSet::new();
    for (index, (event_type, payload)) in payloads.iter().enumerate() {
        let declared = personal::declared(event_type).expect("declared");
        for (field, value) in payload.as_object().expect("object") {
            assert!(!value.is_null(), "{event_type}.{field}: set it in the sample");
            if personal::kind(event_type, field) == FieldKind::Plain {
                continue;
            }
            assert!(declared.iter().any(|(name, _)| name == field));
            let changes_state = others(value).into_iter().any(|other| {
                let mut changed = payloads.clone();
                changed[index].1[field] = other;
                states(&changed).is_some_and(|states| states != baseline)
            });
            if changes_state {
                kept.insert((event_type.clone(), field.clone()));
            }
        }
    }
    let covered: BTreeSet<(String, String)> = STATE_FIELDS
        .iter()
        .map(|(event_type, field, _, _)| (event_type, field))
        .chain(ITEM_FIELDS.iter().map(|(event_type, field)| (event_type, field)))
        .map(|(event_type, field)| ((*event_type).to_owned(), (*field).to_owned()))
        .collect();
    let missing: Vec<_> = kept.difference(&covered).collect();
    assert!(missing.is_empty(), "kept by the case's state, withheld nowhere: {missing:?}");
    // And nothing is listed that the state does not keep (a stale entry hides nothing).
    let stale: Vec<_> = covered.difference(&kept).collect();
    assert!(stale.is_empty(), "listed, not kept by the state: {stale:?}");
}
