//! One time domain (R-T4): a stated time is never in the future, never before the
//! floor, never before what it follows; deadlines never overflow.

mod support;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kefu_domain::complaint::*;
use kefu_domain::customer::*;
use kefu_domain::policy::{Targets, Unit};
use kefu_domain::{
    time, CallbackChannel, CallbackKind, CallbackOutcome, CallbackParty, ComplaintId,
    Confidentiality, ContactChannel, Contacts, CustomerId, CustomerKind, DomainError,
    IntakeChannel, LogCallback, Policy, Severity, Target, Tier,
};
use support::{at, given, staff, text};

fn customer_id() -> CustomerId {
    "0193a5e0-0000-7000-8000-0000000000c1".parse().unwrap()
}

fn complaint_id() -> ComplaintId {
    "0193a5e0-0000-7000-8000-000000000001".parse().unwrap()
}

fn filed(received_at: DateTime<Utc>) -> ComplaintEvent {
    ComplaintFiled {
        complaint_id: complaint_id(),
        case_number: "2026-000007".parse().unwrap(),
        customer_id: customer_id(),
        category: text("billing"),
        cause: text("overcharge"),
        severity: Severity::Normal,
        channel: IntakeChannel::Phone,
        description: text("charged twice"),
        respondent: None,
        attachments: vec![],
        received_at,
        filed_at: at(0),
        terms: CaseTerms::under(0, &Policy::version_zero(), received_at, Severity::Normal, None),
        from_request: None,
    }
    .into()
}

fn contact(contacted_at: DateTime<Utc>) -> ComplaintCommand {
    ComplaintCommand::ContactComplainant(ContactComplainant {
        by: Actor::handler(staff("h1")),
        channel: ContactChannel::Phone,
        summary: text("arranged"),
        contacted_at,
    })
}

/// Filed at `received_at` and handed to h1, who contacts the complainant (R-P4).
fn assigned_case(received_at: DateTime<Utc>) -> Vec<ComplaintEvent> {
    let assigned =
        HandlerAssigned { handler: staff("h1"), previous: None, reason: None, assigned_at: at(0) };
    vec![filed(received_at), assigned.into()]
}

fn file(received_at: DateTime<Utc>) -> ComplaintCommand {
    let ComplaintEvent::ComplaintFiled(e) = filed(received_at) else { unreachable!() };
    ComplaintCommand::File(FileComplaint {
        complaint_id: e.complaint_id,
        case_number: e.case_number,
        customer_id: e.customer_id,
        category: e.category,
        cause: e.cause,
        severity: e.severity,
        channel: e.channel,
        description: e.description,
        respondent: None,
        attachments: vec![],
        received_at,
        policy: kefu_domain::PolicyBook::new().current(),
        tier: Tier::Regular,
        from_request: None,
    })
}

fn year(y: i32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap()
}

#[test]
fn a_receipt_is_between_the_floor_and_now_r_t4() {
    for (received_at, error) in [
        (year(1999), DomainError::DatedBeforeFloor { field: "received_at" }),
        (DateTime::<Utc>::MIN_UTC, DomainError::DatedBeforeFloor { field: "received_at" }),
        (DateTime::<Utc>::MAX_UTC, DomainError::ReceivedInFuture),
        (at(1) + time::MAX_SKEW + TimeDelta::seconds(1), DomainError::ReceivedInFuture),
    ] {
        given::<Complaint>([]).when(file(received_at)).then_error(error);
    }
    let (_, case) = given::<Complaint>([]).when(file(time::floor())).events();
    assert_eq!(case.unwrap().received_at, time::floor(), "the floor itself is accepted");
    let (_, case) = given::<Complaint>([]).when(file(at(1) + time::MAX_SKEW)).events();
    assert!(case.is_some(), "a caller's clock a little ahead is tolerated");
}

#[test]
fn a_contact_before_the_receipt_is_refused_r_t4() {
    // Received at -2 h: a contact dated earlier would erase the first-response breach.
    for contacted_at in [at(-3), year(2001)] {
        given::<Complaint>(assigned_case(at(-2)))
            .when(contact(contacted_at))
            .then_error(DomainError::ContactBeforeReceipt);
    }
    given::<Complaint>(assigned_case(at(-2)))
        .when(contact(year(1)))
        .then_error(DomainError::DatedBeforeFloor { field: "contacted_at" });
    let (_, case) = given::<Complaint>(assigned_case(at(-2))).when(contact(at(-2))).events();
    assert_eq!(case.unwrap().first_response_at, Some(at(-2)), "at the receipt is fine");
}

#[test]
fn a_complaint_callback_before_the_closure_is_refused_r_t4() {
    let closed = |closed_at| ComplaintClosed {
        summary: None,
        closed_at,
        callback_due_at: at(72),
        callback_at_risk_at: at(72),
    };
    let history: Vec<ComplaintEvent> = vec![filed(at(-2)), closed(at(0)).into()];
    let callback = |called_at| {
        ComplaintCommand::LogCallback(LogCallback {
            kind: CallbackKind::Complaint,
            channel: CallbackChannel::Phone,
            party: Some(CallbackParty::Complainant),
            outcome: CallbackOutcome::Satisfied,
            score: None,
            comment: None,
            by: staff("a1"),
            called_at,
        })
    };
    given::<Complaint>(history.clone())
        .when(callback(at(-1)))
        .then_error(DomainError::CallbackBeforeClosure);
    given::<Complaint>(history.clone())
        .when(callback(DateTime::<Utc>::MAX_UTC))
        .then_error(DomainError::DatedInFuture { field: "called_at" });
    let (events, _) = given::<Complaint>(history).when(callback(at(0))).events();
    assert_eq!(events.len(), 1);
}

#[test]
fn customer_contacts_and_callbacks_follow_the_registration_r_t4() {
    let registered = CustomerRegistered {
        customer_id: customer_id(),
        name: text("Wang Fang"),
        kind: CustomerKind::Individual,
        contacts: Contacts::default(),
        tier: Tier::Key,
        stars: None,
        source_channel: text("web"),
        referred_by: None,
        confidentiality: Confidentiality::Internal,
        agent: staff("a1"),
        registered_at: at(0),
    };
    let record_contact = |contacted_at| {
        CustomerCommand::RecordContact(RecordContact {
            by: staff("a1"),
            channel: ContactChannel::Phone,
            note: None,
            contacted_at,
        })
    };
    let callback = |called_at| {
        CustomerCommand::LogCallback(LogCallback {
            kind: CallbackKind::Routine,
            channel: CallbackChannel::Phone,
            party: None,
            outcome: CallbackOutcome::Satisfied,
            score: None,
            comment: None,
            by: staff("a1"),
            called_at,
        })
    };
    let history = || [registered.clone().into()];
    given::<Customer>(history())
        .when(record_contact(at(-1)))
        .then_error(DomainError::ContactBeforeRegistration);
    given::<Customer>(history())
        .when(callback(at(-1)))
        .then_error(DomainError::CallbackBeforeRegistration);
    given::<Customer>(history())
        .when(callback(year(-1)))
        .then_error(DomainError::DatedBeforeFloor { field: "called_at" });
    let (_, record) = given::<Customer>(history()).when(record_contact(at(0))).events();
    assert_eq!(record.unwrap().first_contact_at, Some(at(0)));
}

#[test]
fn refusals_of_time_name_their_field_and_rule() {
    for (error, field) in [
        (DomainError::ContactBeforeReceipt, "contacted_at"),
        (DomainError::ContactBeforeRegistration, "contacted_at"),
        (DomainError::CallbackBeforeClosure, "called_at"),
        (DomainError::CallbackBeforeRegistration, "called_at"),
        (DomainError::MeetingBeforeReceipt, "meeting.held_at"),
        (DomainError::DatedBeforeFloor { field: "received_at" }, "received_at"),
        (DomainError::DatedInFuture { field: "called_at" }, "called_at"),
    ] {
        assert_eq!(error.field(), Some(field), "{error:?}");
        assert_eq!(error.rule(), Some("R-T4"), "{error:?}");
        assert_eq!(error.kind(), kefu_domain::ErrorKind::InvalidArgument, "{error:?}");
    }
    assert_eq!(DomainError::AsOfOutOfWindow { field: "as_of" }.field(), Some("as_of"));
}

#[test]
fn deadlines_from_stored_extremes_never_overflow() {
    // An old log may hold any instant chrono can: deadlines saturate, never panic.
    let mut policy = Policy::default();
    let rules = kefu_domain::SlaRule::ALL;
    for unit in [Unit::Hours, Unit::Days, Unit::BusinessHours, Unit::BusinessDays] {
        let most = Target::new(kefu_domain::policy::MAX_TARGET_AMOUNT, unit);
        policy.targets = Targets {
            first_response: most,
            resolution: most,
            callback_after_closure: most,
            new_customer_contact: most,
        };
        for rule in rules {
            let last = DateTime::<Utc>::MAX_UTC;
            assert_eq!(policy.due(rule, last, None, None), last, "{rule:?} {unit:?}");
            assert!(policy.due(rule, at(0), None, None) > at(0), "{rule:?} {unit:?}");
            let risk = policy.at_risk_from(last, policy.due(rule, last, None, None));
            assert_eq!(risk, last);
        }
    }
    let huge = Policy { key_customer_callback_days: i64::MAX, ..Policy::default() };
    assert_eq!(
        huge.next_routine_callback_due(Tier::Key, None, DateTime::<Utc>::MAX_UTC, None),
        Some(DateTime::<Utc>::MAX_UTC - TimeDelta::zero())
    );
}
