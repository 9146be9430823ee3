//! Service requests (咨询, 售后申请), given/when/then: intake, balanced and cleared
//! assignment (R-C3, R-C6), the 12-hour first response (R-P7) on the policy's time
//! (R-T2, R-T3), the after-sales callback within the policy's days of the service
//! (R-P15), and escalation of a dissatisfied requester to a complaint.

mod support;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use kefu_domain::policy::{Policy, Target, Unit};
use kefu_domain::request::*;
use kefu_domain::{
    Aggregate, ContactChannel, CustomerId, DomainError, IntakeChannel, PolicyBook, RequestKind,
    ServiceRequest, ServiceRequestId, Tier, Versioned,
};
use support::{at, given, staff, text};

fn request_id() -> ServiceRequestId {
    "0193a5e0-0000-7000-8000-0000000000e1".parse().unwrap()
}

fn customer_id() -> CustomerId {
    "0193a5e0-0000-7000-8000-0000000000c1".parse().unwrap()
}

fn policy() -> Versioned {
    PolicyBook::new().current()
}

fn receive(kind: RequestKind) -> ReceiveRequest {
    ReceiveRequest {
        request_id: request_id(),
        customer_id: customer_id(),
        kind,
        channel: IntakeChannel::Phone,
        category: text("product"),
        description: text("the heater clicks but does not start"),
        received_at: at(-2),
        policy: policy(),
        tier: Tier::Regular,
        agent: staff("a1"),
        agent_cleared: true,
    }
}

fn received(kind: RequestKind) -> Vec<RequestEvent> {
    let (events, _) =
        given::<ServiceRequest>([]).when(RequestCommand::Receive(receive(kind))).events();
    events
}

fn by(agent: &str) -> RequestActor {
    RequestActor { staff: staff(agent), stepping_in: false }
}

fn respond(actor: RequestActor, responded_at: DateTime<Utc>) -> RequestCommand {
    RequestCommand::Respond(RespondToRequest {
        by: actor,
        channel: ContactChannel::Phone,
        summary: text("a technician calls tomorrow"),
        responded_at,
    })
}

fn resolve(actor: RequestActor) -> RequestCommand {
    RequestCommand::Resolve(ResolveRequest {
        by: actor,
        summary: text("ignition part replaced"),
        policy: policy(),
    })
}

fn escalate() -> RequestCommand {
    RequestCommand::Escalate(EscalateRequest {
        by: staff("a1"),
        complaint_id: "0193a5e0-0000-7000-8000-000000000001".parse().unwrap(),
        case_number: "2026-000009".parse().unwrap(),
        reason: text("the customer is dissatisfied with the repair"),
    })
}

#[test]
fn receipt_records_the_facts_and_the_balanced_agent() {
    let (events, state) = given::<ServiceRequest>([])
        .when(RequestCommand::Receive(receive(RequestKind::Inquiry)))
        .events();
    let RequestEvent::RequestReceived(receipt) = &events[0] else { panic!("{events:?}") };
    assert_eq!(receipt.received_at, at(-2));
    assert_eq!(receipt.recorded_at, at(1));
    assert_eq!(receipt.channel, IntakeChannel::Phone);
    assert_eq!(receipt.category.as_str(), "product");
    assert_eq!(
        events[1],
        RequestAssigned { agent: staff("a1"), previous: None, reason: None, assigned_at: at(1) }
            .into()
    );
    let state = state.unwrap();
    assert_eq!(state.agent, Some(staff("a1")));
    assert_eq!(state.status, RequestStatus::Open);
}

#[test]
fn first_response_is_due_12_hours_after_receipt_r_p7() {
    let events = received(RequestKind::AfterSale);
    let RequestEvent::RequestReceived(receipt) = &events[0] else { panic!() };
    // Received at at(-2); version 0 counts 12 calendar hours.
    assert_eq!(receipt.terms.first_response_due_at, at(10));
    assert_eq!(receipt.terms.policy_version, 0);
}

#[test]
fn first_response_counts_business_hours_under_the_recorded_policy_r_t2_r_t3() {
    let mut business = Policy::default();
    business.targets.first_response = Target::new(12, Unit::BusinessHours);
    let versioned = Versioned { version: 4, policy: Arc::new(business) };
    let shanghai = chrono_tz::Asia::Shanghai;
    // Friday 17:00 in Beijing: one working hour left that day (09-12, 13-18).
    let friday = shanghai.with_ymd_and_hms(2026, 3, 13, 17, 0, 0).unwrap().with_timezone(&Utc);
    let mut command = receive(RequestKind::Inquiry);
    command.received_at = friday;
    command.policy = versioned;
    let (events, _) = given::<ServiceRequest>([])
        .at(friday + chrono::TimeDelta::minutes(5))
        .when(RequestCommand::Receive(command))
        .events();
    let RequestEvent::RequestReceived(receipt) = &events[0] else { panic!() };
    // 1 hour on Friday, 8 on Monday, 3 on Tuesday morning: Tuesday 12:00 in Beijing.
    let due = shanghai.with_ymd_and_hms(2026, 3, 17, 12, 0, 0).unwrap().with_timezone(&Utc);
    assert_eq!(receipt.terms.first_response_due_at, due);
    assert_eq!(receipt.terms.policy_version, 4);
}

#[test]
fn a_vip_request_takes_the_tiers_faster_target_r_t3() {
    let mut faster = Policy::version_zero();
    faster.tier.insert(
        Tier::Vip,
        kefu_domain::policy::Overrides {
            first_response: Some(Target::new(2, Unit::Hours)),
            ..Default::default()
        },
    );
    let mut command = receive(RequestKind::Inquiry);
    command.tier = Tier::Vip;
    command.policy = Versioned { version: 2, policy: Arc::new(faster) };
    let (events, _) = given::<ServiceRequest>([]).when(RequestCommand::Receive(command)).events();
    let RequestEvent::RequestReceived(receipt) = &events[0] else { panic!() };
    assert_eq!(receipt.terms.first_response_due_at, at(0));
}

#[test]
fn intake_refuses_prose_as_category_a_future_receipt_and_an_uncleared_agent() {
    let mut prose = receive(RequestKind::Inquiry);
    prose.category = text("Zhang San wants a refund");
    let refused = ServiceRequest::decide(&None, RequestCommand::Receive(prose), at(1)).unwrap_err();
    assert_eq!(refused.field(), Some("category"));

    let mut future = receive(RequestKind::Inquiry);
    future.received_at = at(3);
    given::<ServiceRequest>([])
        .when(RequestCommand::Receive(future))
        .then_error(DomainError::DatedInFuture { field: "received_at" });

    let mut uncleared = receive(RequestKind::Inquiry);
    uncleared.agent_cleared = false;
    given::<ServiceRequest>([])
        .when(RequestCommand::Receive(uncleared))
        .then_error(DomainError::AgentNotCleared);
}

#[test]
fn a_request_is_received_once_and_acted_on_only_once_received() {
    given::<ServiceRequest>(received(RequestKind::Inquiry))
        .when(RequestCommand::Receive(receive(RequestKind::Inquiry)))
        .then_error(DomainError::RequestAlreadyReceived);
    given::<ServiceRequest>([])
        .when(respond(by("a1"), at(0)))
        .then_error(DomainError::RequestNotReceived);
}

#[test]
fn reassignment_needs_a_cleared_agent_r_c6_r_c3() {
    let history = received(RequestKind::Inquiry);
    given::<ServiceRequest>(history.clone())
        .when(RequestCommand::Assign(AssignRequest {
            agent: staff("a2"),
            reason: None,
            agent_cleared: false,
        }))
        .then_error(DomainError::AgentNotCleared);
    let state = given::<ServiceRequest>(history)
        .when(RequestCommand::Assign(AssignRequest {
            agent: staff("a2"),
            reason: Some(text("a1 is on leave")),
            agent_cleared: true,
        }))
        .then(vec![RequestAssigned {
            agent: staff("a2"),
            previous: Some(staff("a1")),
            reason: Some(text("a1 is on leave")),
            assigned_at: at(1),
        }
        .into()]);
    assert_eq!(state.unwrap().agent, Some(staff("a2")));
}

#[test]
fn only_the_agent_or_a_supervisor_stepping_in_answers() {
    let history = received(RequestKind::Inquiry);
    given::<ServiceRequest>(history.clone())
        .when(respond(by("a2"), at(0)))
        .then_error(DomainError::NotRequestAgent);
    given::<ServiceRequest>(history.clone())
        .when(resolve(by("a2")))
        .then_error(DomainError::NotRequestAgent);
    let supervisor = RequestActor { staff: staff("sup1"), stepping_in: true };
    let (_, state) = given::<ServiceRequest>(history).when(respond(supervisor, at(0))).events();
    assert_eq!(state.unwrap().first_response_at, Some(at(0)));
}

#[test]
fn a_response_is_a_past_fact_after_the_receipt_r_t4() {
    let history = received(RequestKind::Inquiry);
    given::<ServiceRequest>(history.clone())
        .when(respond(by("a1"), at(-3)))
        .then_error(DomainError::ResponseBeforeReceipt);
    given::<ServiceRequest>(history)
        .when(respond(by("a1"), at(2)))
        .then_error(DomainError::DatedInFuture { field: "responded_at" });
}

#[test]
fn the_first_response_is_the_earliest_answer_r_p7() {
    let mut history = received(RequestKind::Inquiry);
    history.push(
        RequestResponded {
            by: staff("a1"),
            channel: ContactChannel::Phone,
            summary: text("later call"),
            responded_at: at(0),
        }
        .into(),
    );
    let (_, state) = given::<ServiceRequest>(history).when(respond(by("a1"), at(-1))).events();
    let state = state.unwrap();
    assert_eq!((state.first_response_at, state.responses), (Some(at(-1)), 2));
}

#[test]
fn an_inquiry_resolved_at_first_contact_owes_no_callback() {
    let (events, state) =
        given::<ServiceRequest>(received(RequestKind::Inquiry)).when(resolve(by("a1"))).events();
    assert_eq!(
        events,
        vec![RequestResolved {
            by: staff("a1"),
            summary: text("ignition part replaced"),
            resolved_at: at(1),
            first_contact: true,
            callback_due_at: None,
            callback_at_risk_at: None,
        }
        .into()]
    );
    let state = state.unwrap();
    // The resolution answered the customer: it is the first response.
    assert_eq!(state.first_response_at, Some(at(1)));
    assert_eq!(state.status, RequestStatus::Resolved);
}

#[test]
fn an_after_sale_resolution_sets_the_callback_due_within_3_days_r_p15() {
    let mut history = received(RequestKind::AfterSale);
    history.push(
        RequestResponded {
            by: staff("a1"),
            channel: ContactChannel::Phone,
            summary: text("booked"),
            responded_at: at(0),
        }
        .into(),
    );
    let (events, _) = given::<ServiceRequest>(history).when(resolve(by("a1"))).events();
    let RequestEvent::RequestResolved(resolved) = &events[0] else { panic!() };
    assert!(!resolved.first_contact);
    assert_eq!(resolved.callback_due_at, Some(at(1 + 72)));
    assert!(resolved.callback_at_risk_at.unwrap() < at(1 + 72));
}

#[test]
fn resolution_uses_the_policy_of_the_receipt_r_t3() {
    let mut changed = PolicyBook::new();
    changed.record(&kefu_domain::policy_log::PolicyChanged {
        version: 1,
        hash: String::new(),
        policy: Policy::default(),
        changed_at: at(0),
    });
    given::<ServiceRequest>(received(RequestKind::AfterSale))
        .when(RequestCommand::Resolve(ResolveRequest {
            by: by("a1"),
            summary: text("done"),
            policy: changed.current(),
        }))
        .then_error(DomainError::PolicyVersionUnknown { version: 0 });
}

#[test]
fn a_resolved_request_takes_nothing_but_an_escalation() {
    let mut history = received(RequestKind::AfterSale);
    let (resolved, _) = given::<ServiceRequest>(history.clone()).when(resolve(by("a1"))).events();
    history.extend(resolved);
    given::<ServiceRequest>(history.clone())
        .when(respond(by("a1"), at(0)))
        .then_error(DomainError::RequestAlreadyResolved);
    given::<ServiceRequest>(history.clone())
        .when(resolve(by("a1")))
        .then_error(DomainError::RequestAlreadyResolved);
    let state = given::<ServiceRequest>(history).when(escalate()).events().1.unwrap();
    assert_eq!(state.status, RequestStatus::Escalated);
}

#[test]
fn an_escalated_request_names_its_complaint_and_is_carried_on_there() {
    let mut history = received(RequestKind::Inquiry);
    let (escalated, state) = given::<ServiceRequest>(history.clone()).when(escalate()).events();
    let state = state.unwrap();
    assert_eq!(state.complaint.unwrap().1.to_string(), "2026-000009");
    history.extend(escalated);
    for command in [respond(by("a1"), at(0)), resolve(by("a1")), escalate()] {
        given::<ServiceRequest>(history.clone()).when(command).then_error(
            DomainError::RequestAlreadyEscalated { complaint: "complaint 2026-000009".into() },
        );
    }
}

#[test]
fn the_customer_is_the_data_subject_r_c8() {
    let events = received(RequestKind::Inquiry);
    assert_eq!(ServiceRequest::data_subject(&None, &events), Some(customer_id()));
    let state = ServiceRequest::fold(&events);
    assert_eq!(ServiceRequest::data_subject(&state, &[]), Some(customer_id()));
    assert_eq!(request_id().stream_name(), format!("request-{}", request_id()));
}
