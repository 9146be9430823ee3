//! R-C3: balanced assignment of customers and cases to staff, as pure functions of loads.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::ids::StaffId;

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
