//! Staff departures and balanced reassignment (R-C3), and the yearly case register (R-P1).

mod support;

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use kefu_domain::balance::{
    least_loaded, plan_customers, plan_departure, plan_reassignment, CaseToHand, CustomerToHand,
};
use kefu_domain::case_register::{
    case_year, next_case_number, CaseNumberIssued, CaseRegisterEvent, IssueCaseNumber,
};
use kefu_domain::staff::*;
use kefu_domain::{
    CaseNumber, CaseRegister, ComplaintId, CustomerId, DomainError, StaffId, StaffRole,
};
use proptest::prelude::*;
use support::{at, given, staff, text};

fn registered(code: &str) -> StaffEvent {
    StaffRegistered {
        staff_id: staff(code),
        name: text("Li Wei"),
        roles: vec![StaffRole::Agent],
        registered_at: at(0),
    }
    .into()
}

#[test]
fn departure_lists_what_must_be_reassigned_r_c3() {
    let customers = vec![CustomerId::generate(), CustomerId::generate()];
    let cases = vec![ComplaintId::generate()];
    let customer_handovers: Vec<_> =
        customers.iter().map(|id| Handover { id: *id, to: staff("a2") }).collect();
    let case_handovers: Vec<_> =
        cases.iter().map(|id| Handover { id: *id, to: staff("h2") }).collect();
    let departure = StaffCommand::RecordDeparture(RecordDeparture {
        reason: Some(text("resigned")),
        customers: customer_handovers.clone(),
        open_cases: case_handovers.clone(),
    });
    let member = given::<Staff>([registered("a1")])
        .when(departure.clone())
        .then(vec![StaffDeparted {
            reason: Some(text("resigned")),
            customers_to_reassign: customers,
            cases_to_reassign: cases,
            customer_handovers,
            case_handovers,
            departed_at: at(1),
        }
        .into()])
        .unwrap();
    assert!(!member.is_active());
    let departed = StaffDeparted {
        reason: None,
        customers_to_reassign: vec![],
        cases_to_reassign: vec![],
        customer_handovers: vec![],
        case_handovers: vec![],
        departed_at: at(0),
    };
    given::<Staff>([registered("a1"), departed.into()])
        .when(departure.clone())
        .then_error(DomainError::StaffDeparted);
    given::<Staff>([]).when(departure).then_error(DomainError::StaffNotRegistered);
}

#[test]
fn nothing_is_handed_back_to_the_leaver_r_c3() {
    let customer = CustomerId::generate();
    let departure = StaffCommand::RecordDeparture(RecordDeparture {
        reason: None,
        customers: vec![Handover { id: customer, to: staff("a1") }],
        open_cases: vec![],
    });
    given::<Staff>([registered("a1")]).when(departure).then_error(
        DomainError::DepartureUnassignable(format!("{customer} handed back to the leaver")),
    );
}

#[test]
fn a_departure_is_planned_whole_or_refused_naming_what_nobody_can_take_r_c3() {
    let leaver = staff("h1");
    let loads = |ids: &[(&str, usize)]| -> BTreeMap<StaffId, usize> {
        ids.iter().map(|(id, n)| (staff(id), *n)).collect()
    };
    let barred_case = CaseToHand {
        complaint_id: ComplaintId::generate(),
        label: "2026-000009".into(),
        barred: vec![staff("h2"), staff("h3")],
    };
    let free_case = CaseToHand {
        complaint_id: ComplaintId::generate(),
        label: "2026-000010".into(),
        barred: vec![],
    };
    let customers = [CustomerToHand { customer_id: CustomerId::generate(), uncleared: vec![] }];
    // h2 is the respondent and h3 recused: nobody may take case 9.
    let refused = plan_departure(
        &leaver,
        &customers,
        &[free_case.clone(), barred_case.clone()],
        &loads(&[("a2", 0)]),
        &loads(&[("h1", 0), ("h2", 0), ("h3", 5)]),
    );
    assert_eq!(
        refused,
        Err(DomainError::DepartureUnassignable(
            "case 2026-000009: every active handler is its respondent or recused (R-P4)".into()
        ))
    );
    let refused = plan_departure(&leaver, &customers, &[], &loads(&[]), &loads(&[]));
    assert_eq!(
        refused,
        Err(DomainError::DepartureUnassignable("1 customer(s): no other active agent".into()))
    );
    // With h4 there, case 9 goes to h4 and case 10 to the least loaded, h2.
    let (customer_plan, case_plan) = plan_departure(
        &leaver,
        &customers,
        &[free_case.clone(), barred_case.clone()],
        &loads(&[("a2", 0)]),
        &loads(&[("h1", 0), ("h2", 0), ("h3", 5), ("h4", 1)]),
    )
    .unwrap();
    assert_eq!(customer_plan, vec![Handover { id: customers[0].customer_id, to: staff("a2") }]);
    assert_eq!(
        case_plan,
        vec![
            Handover { id: free_case.complaint_id, to: staff("h2") },
            Handover { id: barred_case.complaint_id, to: staff("h4") },
        ]
    );
}

#[test]
fn a_leavers_customer_goes_only_to_an_agent_cleared_for_them_r_c6() {
    let leaver = staff("a1");
    let secret = CustomerToHand {
        customer_id: CustomerId::generate(),
        uncleared: vec![staff("a2"), staff("a3")],
    };
    let internal = |uncleared| CustomerToHand { customer_id: CustomerId::generate(), uncleared };
    let (first, second) = (internal(vec![]), internal(vec![]));
    // a4 alone is cleared for the secret customer, though the most loaded; the others go
    // to the least loaded, counting what the plan handed out.
    let agents = loads(&[("a1", 0), ("a2", 0), ("a3", 1), ("a4", 5)]);
    let to_hand = [secret.clone(), first.clone(), second.clone()];
    let (plan, left) = plan_customers(&leaver, &to_hand, &agents);
    assert_eq!(
        plan,
        vec![
            Handover { id: secret.customer_id, to: staff("a4") },
            Handover { id: first.customer_id, to: staff("a2") },
            Handover { id: second.customer_id, to: staff("a2") },
        ]
    );
    assert!(left.is_empty(), "{left:?}");
    // Nobody cleared: the customer is left out (named by the caller), the rest planned,
    // and the departure is not refused for it (R-C6 over R-C3).
    let blocked =
        CustomerToHand { uncleared: vec![staff("a2"), staff("a3"), staff("a4")], ..secret };
    let to_hand = [blocked.clone(), first.clone()];
    let (plan, left) = plan_customers(&leaver, &to_hand, &agents);
    assert_eq!(plan, vec![Handover { id: first.customer_id, to: staff("a2") }]);
    assert_eq!(left, vec![blocked.customer_id]);
    let (customer_plan, _) = plan_departure(&leaver, &to_hand, &[], &agents, &loads(&[])).unwrap();
    assert_eq!(customer_plan, plan);
    // No other agent at all is still a refusal (nothing may be left unowned, R-C3).
    assert_eq!(
        plan_departure(&leaver, &to_hand, &[], &loads(&[("a1", 0)]), &loads(&[])),
        Err(DomainError::DepartureUnassignable("2 customer(s): no other active agent".into()))
    );
}

#[test]
fn staff_register_once_with_a_role() {
    let register = |roles| {
        StaffCommand::Register(RegisterStaff { staff_id: staff("a1"), name: text("Li Wei"), roles })
    };
    given::<Staff>([registered("a1")])
        .when(register(vec![StaffRole::Agent]))
        .then_error(DomainError::StaffAlreadyRegistered);
    assert!(matches!(
        Staff::decide(&None, register(vec![]), at(0)),
        Err(DomainError::InvalidValue(_))
    ));
    let member = given::<Staff>([])
        .when(register(vec![StaffRole::Handler, StaffRole::Agent, StaffRole::Handler]))
        .events()
        .1
        .unwrap();
    assert_eq!(member.roles, vec![StaffRole::Agent, StaffRole::Handler]);
}

use kefu_domain::Aggregate;

fn loads(entries: &[(&str, usize)]) -> BTreeMap<StaffId, usize> {
    entries.iter().map(|(code, load)| (staff(code), *load)).collect()
}

#[test]
fn reassignment_goes_to_the_least_loaded_and_never_the_leaver_r_c3() {
    let plan = plan_reassignment(
        &staff("a1"),
        &[1, 2, 3, 4],
        &loads(&[("a1", 0), ("a2", 3), ("a3", 1), ("a4", 2)]),
    );
    let owners: Vec<&str> = plan.iter().map(|(_, owner)| owner.as_str()).collect();
    assert_eq!(owners, ["a3", "a3", "a4", "a2"], "a3 to 3, then ties broken by id");
    assert!(
        plan_reassignment(&staff("a1"), &[1], &loads(&[("a1", 0)])).is_empty(),
        "no one else: caller refuses"
    );
    assert_eq!(least_loaded(&loads(&[("a2", 3), ("a3", 1), ("a4", 1)])), Some(staff("a3")));
    assert_eq!(least_loaded(&BTreeMap::new()), None);
}

proptest! {
    #[test]
    fn reassignment_keeps_loads_balanced_r_c3(
        initial in proptest::collection::vec(0usize..5, 2..8),
        items in 0usize..60,
    ) {
        let loads: BTreeMap<StaffId, usize> =
            initial.iter().enumerate().map(|(i, load)| (staff(&format!("s{i}")), *load)).collect();
        let leaver = staff("s0");
        let plan = plan_reassignment(&leaver, &vec![(); items], &loads);
        prop_assert_eq!(plan.len(), items, "nothing is left unowned");
        let mut after = loads.clone();
        after.remove(&leaver);
        for (_, owner) in &plan {
            prop_assert_ne!(owner, &leaver);
            *after.get_mut(owner).unwrap() += 1;
        }
        let spread = |map: &BTreeMap<StaffId, usize>| {
            map.values().max().unwrap() - map.values().min().unwrap()
        };
        let mut before = loads.clone();
        before.remove(&leaver);
        prop_assert!(spread(&after) <= spread(&before).max(1));
    }
}

#[test]
fn case_numbers_count_up_per_year_r_p1() {
    let n = |text: &str| text.parse::<CaseNumber>().unwrap();
    assert_eq!(next_case_number(2026, None).unwrap(), n("2026-000001"));
    assert_eq!(next_case_number(2026, Some(n("2026-000041"))).unwrap(), n("2026-000042"));
    assert_eq!(next_case_number(2027, Some(n("2026-000041"))).unwrap(), n("2027-000001"));
    assert_eq!(
        next_case_number(2026, Some(n("2026-999999"))),
        Err(DomainError::CaseNumbersExhausted { year: 2026 })
    );
}

#[test]
fn the_register_issues_the_next_number_r_p1() {
    let first = ComplaintId::generate();
    let issued = CaseNumberIssued {
        case_number: "2026-000001".parse().unwrap(),
        complaint_id: first,
        issued_at: at(0),
    };
    let second = ComplaintId::generate();
    given::<CaseRegister>([issued.into()])
        .when(IssueCaseNumber { complaint_id: second, year: 2026, zone: chrono_tz::UTC })
        .then(vec![CaseNumberIssued {
            case_number: "2026-000002".parse().unwrap(),
            complaint_id: second,
            issued_at: at(1),
        }
        .into()]);
}

/// R-P1 by construction: a register only ever issues its own year's numbers, to filings
/// of its own year, and does not go on from a number of another year (what the old
/// New Year race left in a log).
#[test]
fn a_register_issues_only_its_own_years_numbers_r_p1() {
    // Midnight in UTC here; the business zone's own midnight is tests/business_time.rs's.
    use chrono_tz::UTC;
    let n = |text: &str| text.parse::<CaseNumber>().unwrap();
    let complaint_id = ComplaintId::generate();
    let last_of_2026 = Some(n("2026-000041"));
    let new_year = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let before_midnight = new_year - chrono::TimeDelta::milliseconds(100);
    // A filing of 2026 decided after midnight is refused by the 2026 register...
    let late = CaseRegister::decide(
        &last_of_2026,
        IssueCaseNumber { complaint_id, year: 2026, zone: UTC },
        new_year,
    );
    assert_eq!(late, Err(DomainError::RegisterYearMismatch { register: 2026, year: 2027 }));
    // ...and a 2026 filing by the 2027 register.
    let early = CaseRegister::decide(
        &None,
        IssueCaseNumber { complaint_id, year: 2027, zone: UTC },
        before_midnight,
    );
    assert_eq!(early, Err(DomainError::RegisterYearMismatch { register: 2027, year: 2026 }));
    // A 2026 register whose last number is of 2027 does not restart 2026 at 000001.
    let mixed = CaseRegister::decide(
        &Some(n("2027-000001")),
        IssueCaseNumber { complaint_id, year: 2026, zone: UTC },
        before_midnight,
    );
    assert_eq!(mixed, Err(DomainError::RegisterYearMismatch { register: 2026, year: 2027 }));
    // On either side of midnight, each register goes on in its own year.
    let issued = CaseRegister::decide(
        &last_of_2026,
        IssueCaseNumber { complaint_id, year: 2026, zone: UTC },
        before_midnight,
    )
    .unwrap();
    let CaseRegisterEvent::CaseNumberIssued(issued) = &issued[0];
    assert_eq!(issued.case_number, n("2026-000042"));
    let issued = CaseRegister::decide(
        &None,
        IssueCaseNumber { complaint_id, year: 2027, zone: UTC },
        new_year,
    )
    .unwrap();
    let CaseRegisterEvent::CaseNumberIssued(issued) = &issued[0];
    assert_eq!(issued.case_number, n("2027-000001"));
    assert_eq!((case_year(before_midnight, UTC), case_year(new_year, UTC)), (2026, 2027));
}

#[test]
fn the_register_state_is_its_last_event_so_loaders_may_read_only_that() {
    const { assert!(<CaseRegister as Aggregate>::STATE_FROM_LAST_EVENT) };
    let issued: Vec<_> = (1..=3)
        .map(|n| {
            CaseNumberIssued {
                case_number: CaseNumber::new(2026, n).unwrap(),
                complaint_id: ComplaintId::generate(),
                issued_at: at(0),
            }
            .into()
        })
        .collect();
    let last = CaseRegister::evolve(None, issued.last().unwrap());
    assert_eq!(CaseRegister::fold(&issued), last);
}
