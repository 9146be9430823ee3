//! R-C3: balanced assignment of customers and cases to staff, as pure functions of loads.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::error::DomainError;
use crate::ids::{ComplaintId, CustomerId, StaffId};
use crate::staff::Handover;

/// The candidate with the fewest items; ties go to the smallest id, so the choice is
/// deterministic. `None` when there are no candidates.
pub fn least_loaded(loads: &BTreeMap<StaffId, usize>) -> Option<StaffId> {
    loads.iter().min_by_key(|(id, load)| (**load, (*id).clone())).map(|(id, _)| id.clone())
}

/// Hands each item, in order, to the currently least-loaded candidate other than
/// `leaver`, counting what it has already handed out. After the plan, the candidates'
/// loads differ by at most one more than they did before (and by at most one when they
/// started equal). Empty when there is no candidate: the caller must refuse then, since
/// nothing may be left unowned.
pub fn plan_reassignment<T: Clone>(
    leaver: &StaffId,
    items: &[T],
    loads: &BTreeMap<StaffId, usize>,
) -> Vec<(T, StaffId)> {
    let mut heap: BinaryHeap<Reverse<(usize, StaffId)>> = loads
        .iter()
        .filter(|(id, _)| *id != leaver)
        .map(|(id, load)| Reverse((*load, id.clone())))
        .collect();
    if heap.is_empty() {
        return Vec::new();
    }
    let mut plan = Vec::with_capacity(items.len());
    for item in items {
        let Some(Reverse((load, owner))) = heap.pop() else { break };
        plan.push((item.clone(), owner.clone()));
        heap.push(Reverse((load + 1, owner)));
    }
    plan
}

/// One of a leaver's open cases, as the departure plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseToHand {
    pub complaint_id: ComplaintId,
    /// How the case is named to people (its case number).
    pub label: String,
    /// Who may never handle it: the respondent and everyone who recused (R-P4).
    pub barred: Vec<StaffId>,
}

/// One of a leaver's customers, as the departure plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerToHand {
    pub customer_id: CustomerId,
    /// Who may not own them: every agent not cleared for their level (R-C6).
    pub uncleared: Vec<StaffId>,
}

/// Who takes over each of a leaver's customers, and each of their open cases.
pub type DeparturePlan = (Vec<Handover<CustomerId>>, Vec<Handover<ComplaintId>>);

/// R-C3 with R-C6: each customer, in order, to the least-loaded candidate other than
/// `leaver` cleared for them, counting what the plan has handed out; and the customers
/// no candidate is cleared for (all of them when there is no candidate at all).
pub fn plan_customers(
    leaver: &StaffId,
    customers: &[CustomerToHand],
    agents: &BTreeMap<StaffId, usize>,
) -> (Vec<Handover<CustomerId>>, Vec<CustomerId>) {
    let mut loads: BTreeMap<StaffId, usize> =
        agents.iter().filter(|(id, _)| *id != leaver).map(|(id, n)| (id.clone(), *n)).collect();
    let mut plan = Vec::with_capacity(customers.len());
    let mut left = Vec::new();
    for customer in customers {
        let allowed: BTreeMap<StaffId, usize> = loads
            .iter()
            .filter(|(id, _)| !customer.uncleared.contains(id))
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        match least_loaded(&allowed) {
            Some(owner) => {
                *loads.entry(owner.clone()).or_default() += 1;
                plan.push(Handover { id: customer.customer_id, to: owner });
            }
            None => left.push(customer.customer_id),
        }
    }
    (plan, left)
}

/// R-C3: a departure's whole plan, or why there is none. Customers go to active agents
/// and cases to active handlers other than the leaver, each to the least-loaded one the
/// item accepts (a case skips its respondent and recused people, R-P4; both skip anyone
/// not cleared for the customer, R-C6), counting what the plan has handed out. Refused,
/// naming every item nobody can take, when anything would be left unowned; except a
/// customer whom other agents exist for but none is cleared to read: R-C6 over R-C3,
/// they are left out of the plan (and stay with the leaver until a cleared agent is
/// assigned; see [`plan_customers`]).
pub fn plan_departure(
    leaver: &StaffId,
    customers: &[CustomerToHand],
    cases: &[CaseToHand],
    agents: &BTreeMap<StaffId, usize>,
    handlers: &BTreeMap<StaffId, usize>,
) -> Result<DeparturePlan, DomainError> {
    let mut unassignable = Vec::new();
    let (customer_plan, _uncleared) = plan_customers(leaver, customers, agents);
    if !customers.is_empty() && agents.keys().all(|id| id == leaver) {
        unassignable.push(format!("{} customer(s): no other active agent", customers.len()));
    }
    let mut loads: BTreeMap<StaffId, usize> =
        handlers.iter().filter(|(id, _)| *id != leaver).map(|(id, n)| (id.clone(), *n)).collect();
    let mut case_plan = Vec::with_capacity(cases.len());
    for case in cases {
        let allowed: BTreeMap<StaffId, usize> = loads
            .iter()
            .filter(|(id, _)| !case.barred.contains(id))
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        match least_loaded(&allowed) {
            Some(owner) => {
                *loads.entry(owner.clone()).or_default() += 1;
                case_plan.push(Handover { id: case.complaint_id, to: owner });
            }
            None if loads.is_empty() => {
                unassignable.push(format!("case {}: no other active handler", case.label));
            }
            None => unassignable.push(format!(
                "case {}: every active handler is its respondent or recused (R-P4)",
                case.label
            )),
        }
    }
    if !unassignable.is_empty() {
        return Err(DomainError::DepartureUnassignable(unassignable.join("; ")));
    }
    Ok((customer_plan, case_plan))
}
