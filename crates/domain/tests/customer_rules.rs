//! Customer records (R-C1..R-C8), one given/when/then test per rule.

mod support;

use kefu_domain::customer::*;
use kefu_domain::{
    CallbackChannel, CallbackKind, CallbackOutcome, Confidentiality, ContactChannel, Contacts,
    CustomerId, CustomerKind, DomainError, LogCallback, PhoneRegion, Policy, StarLevel, Tier,
};
use support::{at, given, staff, text};

fn customer_id() -> CustomerId {
    "0193a5e0-0000-7000-8000-0000000000c1".parse().unwrap()
}

fn referrer_id() -> CustomerId {
    "0193a5e0-0000-7000-8000-0000000000c2".parse().unwrap()
}

fn register_command() -> RegisterCustomer {
    RegisterCustomer {
        customer_id: customer_id(),
        name: text("Wang Fang"),
        kind: CustomerKind::Individual,
        contacts: Contacts::new(
            vec!["+86 138 0000 0000".into()],
            vec![],
            None,
            PhoneRegion::default(),
        )
        .unwrap(),
        tier: Tier::Regular,
        stars: None,
        source_channel: text("exhibition"),
        referred_by: None,
        referrer_registered: false,
        confidentiality: Confidentiality::Internal,
        agent: staff("a1"),
        agent_clearance: Some(Confidentiality::Internal),
    }
}

fn registered() -> CustomerEvent {
    let command = register_command();
    CustomerRegistered {
        customer_id: command.customer_id,
        name: command.name,
        kind: command.kind,
        contacts: command.contacts,
        tier: command.tier,
        stars: None,
        source_channel: command.source_channel,
        referred_by: None,
        confidentiality: command.confidentiality,
        agent: command.agent,
        registered_at: at(0),
    }
    .into()
}

fn grade(tier: Tier, stars: Option<u32>, reason: Option<&str>) -> CustomerCommand {
    CustomerCommand::Grade(GradeCustomer {
        tier,
        stars: stars.map(|stars| StarLevel::new(stars).unwrap()),
        reason: reason.map(text),
    })
}

#[test]
fn registration_creates_the_record_r_c1() {
    let record = given::<Customer>([])
        .when(CustomerCommand::Register(register_command()))
        .then(vec![CustomerRegistered { registered_at: at(1), ..registered_payload() }.into()])
        .unwrap();
    assert_eq!(record.agent, staff("a1"), "R-C3: every customer has an agent");
    assert_eq!(record.name, Some(text("Wang Fang")));
    given::<Customer>([registered()])
        .when(CustomerCommand::Register(register_command()))
        .then_error(DomainError::CustomerAlreadyRegistered);
}

fn registered_payload() -> CustomerRegistered {
    let CustomerEvent::CustomerRegistered(payload) = registered() else { unreachable!() };
    payload
}

#[test]
fn grading_records_from_to_and_reason_r_c2() {
    let record = given::<Customer>([registered()])
        .when(grade(Tier::Vip, Some(5), Some("annual spend over target")))
        .then(vec![CustomerGraded {
            from_tier: Tier::Regular,
            to_tier: Tier::Vip,
            from_stars: None,
            to_stars: Some(StarLevel::new(5).unwrap()),
            reason: text("annual spend over target"),
            graded_at: at(1),
        }
        .into()])
        .unwrap();
    assert_eq!((record.tier, record.stars.map(StarLevel::get)), (Tier::Vip, Some(5)));
}

#[test]
fn grading_needs_a_reason_r_c2() {
    given::<Customer>([registered()])
        .when(grade(Tier::Key, None, None))
        .then_error(DomainError::GradingNeedsReason);
}

#[test]
fn grading_to_the_same_grade_is_refused_r_c2() {
    given::<Customer>([registered()])
        .when(grade(Tier::Regular, None, Some("no change")))
        .then_error(DomainError::GradeUnchanged);
}

#[test]
fn referral_is_by_an_existing_customer_r_c7() {
    let referred = |referrer_registered| RegisterCustomer {
        referred_by: Some(referrer_id()),
        referrer_registered,
        ..register_command()
    };
    given::<Customer>([])
        .when(CustomerCommand::Register(referred(false)))
        .then_error(DomainError::ReferrerUnknown);
    let record =
        given::<Customer>([]).when(CustomerCommand::Register(referred(true))).events().1.unwrap();
    assert_eq!(record.referred_by, Some(referrer_id()));
    let own = RegisterCustomer {
        referred_by: Some(customer_id()),
        referrer_registered: true,
        ..register_command()
    };
    given::<Customer>([])
        .when(CustomerCommand::Register(own))
        .then_error(DomainError::SelfReferral);
}

#[test]
fn agent_reassignment_records_the_previous_agent_r_c3() {
    let assign = |agent| {
        CustomerCommand::AssignAgent(AssignAgent {
            agent: staff(agent),
            reason: None,
            agent_clearance: Some(Confidentiality::Internal),
        })
    };
    given::<Customer>([registered()]).when(assign("a2")).then(vec![AgentAssigned {
        previous: staff("a1"),
        agent: staff("a2"),
        reason: None,
        assigned_at: at(1),
    }
    .into()]);
    given::<Customer>([registered()]).when(assign("a1")).then(vec![]);
}

#[test]
fn first_contact_is_tracked_against_three_days_r_c4() {
    let contact = |hours| {
        CustomerCommand::RecordContact(RecordContact {
            by: staff("a1"),
            channel: ContactChannel::Phone,
            note: None,
            contacted_at: at(hours),
        })
    };
    let record = given::<Customer>([registered()]).at(at(30)).when(contact(20)).events().1.unwrap();
    assert_eq!(record.first_contact_at, Some(at(20)));
    let due = Policy::default().due(
        kefu_domain::SlaRule::NewCustomerContact,
        record.registered_at,
        None,
        None,
    );
    assert_eq!(due, at(72));
    given::<Customer>([registered()])
        .when(contact(5))
        .then_error(DomainError::DatedInFuture { field: "contacted_at" });
}

#[test]
fn routine_callbacks_are_logged_on_the_customer_r_c5() {
    let log = |kind| {
        CustomerCommand::LogCallback(LogCallback {
            kind,
            channel: CallbackChannel::Sms,
            party: None,
            outcome: CallbackOutcome::Satisfied,
            score: None,
            comment: Some(text("spring festival greeting")),
            by: staff("a1"),
            called_at: at(1),
        })
    };
    let record =
        given::<Customer>([registered()]).when(log(CallbackKind::Routine)).events().1.unwrap();
    assert_eq!((record.callbacks, record.last_callback_at), (1, Some(at(1))));
    given::<Customer>([registered()])
        .when(log(CallbackKind::Complaint))
        .then_error(DomainError::CallbackKindMismatch);
}

#[test]
fn updates_record_only_what_changed() {
    let update = |confidentiality| {
        CustomerCommand::Update(UpdateCustomer {
            name: Some(text("Wang Fang")),
            contacts: None,
            confidentiality,
            agent_clearance: Some(Confidentiality::Secret),
            open_work: vec![],
        })
    };
    given::<Customer>([registered()]).when(update(None)).then(vec![]);
    given::<Customer>([registered()]).when(update(Some(Confidentiality::Secret))).then(vec![
        CustomerUpdated {
            name: None,
            contacts: None,
            confidentiality: Some(Confidentiality::Secret),
            updated_at: at(1),
        }
        .into(),
    ]);
}

#[test]
fn forgotten_customer_keeps_history_but_no_personal_data_r_c8() {
    let forget = || CustomerCommand::Forget(ForgetCustomer { reason: text("erasure request") });
    let (events, record) = given::<Customer>([registered()]).when(forget()).events();
    let record = record.unwrap();
    assert_eq!(record.name, None);
    assert_eq!(record.contacts, Contacts::default());
    assert_eq!(record.tier, Tier::Regular, "non-personal facts stay for the metrics");
    let mut history = vec![registered()];
    history.extend(events.clone());
    given::<Customer>(history.clone()).when(forget()).then(vec![]);
    given::<Customer>(history)
        .when(grade(Tier::Key, None, Some("x")))
        .then_error(DomainError::CustomerForgotten);
    // Filings rely on it ending the stream under this stored type.
    use kefu_domain::DomainEvent;
    assert!(matches!(&events[..], [CustomerEvent::CustomerForgotten(_)]));
    assert_eq!(events[0].event_type(), CustomerForgotten::EVENT_TYPE);
}

#[test]
fn commands_need_a_registered_customer() {
    given::<Customer>([])
        .when(grade(Tier::Key, None, Some("x")))
        .then_error(DomainError::CustomerNotRegistered);
}

#[test]
fn a_customer_is_owned_only_by_an_agent_cleared_for_their_level_r_c6() {
    use Confidentiality::{Confidential, Internal, Public, Secret};
    // Registering: the new record's level within the agent's clearance.
    let register = |level, clearance| {
        CustomerCommand::Register(RegisterCustomer {
            confidentiality: level,
            agent_clearance: clearance,
            ..register_command()
        })
    };
    given::<Customer>([])
        .when(register(Secret, Some(Internal)))
        .then_error(DomainError::AgentNotCleared);
    given::<Customer>([]).when(register(Public, None)).then_error(DomainError::AgentNotCleared);
    let record = given::<Customer>([]).when(register(Secret, Some(Secret))).events().1.unwrap();
    assert_eq!(record.confidentiality, Secret);
    // Assigning: the record's level within the new agent's clearance, even a restatement.
    let assign = |agent: &str, clearance| {
        CustomerCommand::AssignAgent(AssignAgent {
            agent: staff(agent),
            reason: None,
            agent_clearance: clearance,
        })
    };
    given::<Customer>([registered()])
        .when(assign("a2", Some(Public)))
        .then_error(DomainError::AgentNotCleared);
    given::<Customer>([registered()])
        .when(assign("a2", None))
        .then_error(DomainError::AgentNotCleared);
    let record = given::<Customer>([registered()]).when(assign("a2", Some(Confidential))).events();
    assert_eq!(record.1.map(|record| record.agent), Some(staff("a2")));
    // Raising: refused above the current agent's clearance (hand the customer to a
    // cleared agent first); lowering or other fields never need it.
    let update = |level, clearance| {
        CustomerCommand::Update(UpdateCustomer {
            name: None,
            contacts: None,
            confidentiality: Some(level),
            agent_clearance: clearance,
            open_work: vec![],
        })
    };
    given::<Customer>([registered()])
        .when(update(Secret, Some(Internal)))
        .then_error(DomainError::AgentNotCleared);
    given::<Customer>([registered()])
        .when(update(Confidential, Some(Internal)))
        .then_error(DomainError::AgentNotCleared);
    for (level, clearance) in [(Public, Some(Internal)), (Secret, Some(Secret))] {
        let record = given::<Customer>([registered()]).when(update(level, clearance)).events();
        assert_eq!(record.1.map(|record| record.confidentiality), Some(level));
    }
    assert_eq!(DomainError::AgentNotCleared.code(), "AGENT_NOT_CLEARED");
    assert_eq!(DomainError::AgentNotCleared.kind(), kefu_domain::ErrorKind::FailedPrecondition);
}

#[test]
fn a_level_change_stays_within_the_clearance_of_everyone_holding_open_work_r_c6() {
    use Confidentiality::{Confidential, Internal, Public, Secret};
    let work = |label: &str, holder: &str, clearance| OpenWork {
        label: Some(label.to_owned()),
        holder: staff(holder),
        clearance,
    };
    let change = |level, open_work: Vec<OpenWork>| {
        CustomerCommand::Update(UpdateCustomer {
            confidentiality: Some(level),
            agent_clearance: Some(Secret),
            open_work,
            ..UpdateCustomer::default()
        })
    };
    // A case's handler or a request's agent below the new level: refused, every one named.
    let held = vec![
        work("case 2026-000001", "h1", Some(Internal)),
        work("case 2026-000002", "h2", Some(Secret)),
        work("request r-1", "a1", None),
    ];
    given::<Customer>([registered()]).when(change(Confidential, held.clone())).then_error(
        DomainError::HoldersNotCleared(
            "case 2026-000001 held by h1, request r-1 held by a1".to_owned(),
        ),
    );
    // Within every holder's clearance (a lowering too), or a level that changes nothing:
    // goes ahead.
    let record = given::<Customer>([registered()])
        .when(change(Public, held[..2].to_vec()))
        .events()
        .1
        .unwrap();
    assert_eq!(record.confidentiality, Public);
    given::<Customer>([registered()])
        .when(change(Public, held.clone()))
        .then_error(DomainError::HoldersNotCleared("request r-1 held by a1".to_owned()));
    let restated = given::<Customer>([registered()]).when(change(Internal, held)).events();
    assert!(restated.0.is_empty(), "restating the level classifies nothing");
    let error = DomainError::HoldersNotCleared(String::new());
    assert_eq!((error.code(), error.rule()), ("HOLDERS_NOT_CLEARED", Some("R-C6")));
    assert_eq!(error.kind(), kefu_domain::ErrorKind::FailedPrecondition);
}

#[test]
fn the_level_events_are_the_stored_types_that_change_a_customers_level_r_c6() {
    use kefu_domain::DomainEvent;
    // Every event that can change the level a record is read at: a reclassifying update
    // (above), a merge into a survivor, an erasure. A contact or a grading cannot.
    let raised = given::<Customer>([registered()]).when(CustomerCommand::Update(UpdateCustomer {
        confidentiality: Some(Confidentiality::Secret),
        agent_clearance: Some(Confidentiality::Secret),
        ..UpdateCustomer::default()
    }));
    let (events, _) = raised.events();
    assert!(events.iter().all(|event| LEVEL_EVENT_TYPES.contains(&event.event_type())));
    for event_type in LEVEL_EVENT_TYPES {
        assert!(CustomerEvent::TYPES.contains(&event_type), "{event_type} is not stored");
    }
    assert!(LEVEL_EVENT_TYPES.contains(&"CustomerMerged"));
    for unchanged in ["CustomerContacted", "CallbackLogged", "CustomerGraded", "AgentAssigned"] {
        assert!(!LEVEL_EVENT_TYPES.contains(&unchanged));
    }
}
