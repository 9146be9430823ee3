//! The `Staff` aggregate: who works in the service department, and who has left (R-C3).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::{event_enum, no_upcasters};
use crate::error::{DomainError, ValueError};
use crate::ids::{ComplaintId, CustomerId, StaffId};
use crate::values::{StaffRole, Text};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffRegistered {
    pub staff_id: StaffId,
    pub name: Text,
    pub roles: Vec<StaffRole>,
    pub registered_at: DateTime<Utc>,
}

/// R-C3: a staff member left; the customers and open cases they owned at that moment
/// must all be reassigned (the API carries that out, balanced, and can resume from here).
///
/// Since the handovers were added, the departure records who takes over each item, so
/// a resumed departure carries out (and reports) the plan it recorded; older events
/// have no handovers and are planned when resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffDeparted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
    pub customers_to_reassign: Vec<CustomerId>,
    pub cases_to_reassign: Vec<ComplaintId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customer_handovers: Vec<Handover<CustomerId>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub case_handovers: Vec<Handover<ComplaintId>>,
    pub departed_at: DateTime<Utc>,
}

/// R-C3: who takes over one of a leaver's customers or cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover<Id> {
    pub id: Id,
    pub to: StaffId,
}

event_enum!(
    /// Everything that happens in a `staff-<code>` stream.
    StaffEvent, upcast = no_upcasters, {
        StaffRegistered = 1,
        StaffDeparted = 1,
    }
);

#[derive(Debug, Clone, PartialEq)]
pub struct RegisterStaff {
    pub staff_id: StaffId,
    pub name: Text,
    pub roles: Vec<StaffRole>,
}

/// R-C3: the leaver's customers and open cases, each with who takes it over, planned
/// by the caller with [`crate::balance::plan_departure`]; nothing may be left unowned.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDeparture {
    pub reason: Option<Text>,
    pub customers: Vec<Handover<CustomerId>>,
    pub open_cases: Vec<Handover<ComplaintId>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StaffCommand {
    Register(RegisterStaff),
    RecordDeparture(RecordDeparture),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StaffMember {
    pub id: StaffId,
    pub name: Text,
    pub roles: Vec<StaffRole>,
    pub departed_at: Option<DateTime<Utc>>,
}

impl StaffMember {
    /// Whether new customers or cases may be given to this person.
    pub fn is_active(&self) -> bool {
        self.departed_at.is_none()
    }

    pub fn has_role(&self, role: StaffRole) -> bool {
        self.roles.contains(&role)
    }
}

/// The `Staff` aggregate; its state is `None` until registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staff;

impl Aggregate for Staff {
    type State = Option<StaffMember>;
    type Command = StaffCommand;
    type Event = StaffEvent;

    fn decide(
        state: &Self::State,
        command: StaffCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<StaffEvent>, DomainError> {
        match (state, command) {
            (Some(_), StaffCommand::Register(_)) => Err(DomainError::StaffAlreadyRegistered),
            (None, StaffCommand::Register(register)) => {
                if register.roles.is_empty() {
                    return Err(
                        ValueError::new("roles", "a staff member needs at least one role").into()
                    );
                }
                let mut roles = register.roles;
                roles.sort();
                roles.dedup();
                Ok(vec![StaffRegistered {
                    staff_id: register.staff_id,
                    name: register.name,
                    roles,
                    registered_at: now,
                }
                .into()])
            }
            (None, StaffCommand::RecordDeparture(_)) => Err(DomainError::StaffNotRegistered),
            (Some(member), StaffCommand::RecordDeparture(_)) if !member.is_active() => {
                Err(DomainError::StaffDeparted)
            }
            (Some(member), StaffCommand::RecordDeparture(departure)) => {
                let to_leaver = departure.customers.iter().map(|h| (&h.to, h.id.to_string()));
                let to_leaver = to_leaver
                    .chain(departure.open_cases.iter().map(|h| (&h.to, h.id.to_string())))
                    .filter(|(to, _)| **to == member.id)
                    .map(|(_, id)| id)
                    .collect::<Vec<_>>();
                if !to_leaver.is_empty() {
                    return Err(DomainError::DepartureUnassignable(format!(
                        "{} handed back to the leaver",
                        to_leaver.join(", ")
                    )));
                }
                Ok(vec![StaffDeparted {
                    reason: departure.reason,
                    customers_to_reassign: departure.customers.iter().map(|h| h.id).collect(),
                    cases_to_reassign: departure.open_cases.iter().map(|h| h.id).collect(),
                    customer_handovers: departure.customers,
                    case_handovers: departure.open_cases,
                    departed_at: now,
                }
                .into()])
            }
        }
    }

    fn evolve(state: Self::State, event: &StaffEvent) -> Self::State {
        match (state, event) {
            (None, StaffEvent::StaffRegistered(e)) => Some(StaffMember {
                id: e.staff_id.clone(),
                name: e.name.clone(),
                roles: e.roles.clone(),
                departed_at: None,
            }),
            (Some(mut member), StaffEvent::StaffDeparted(e)) => {
                member.departed_at = Some(e.departed_at);
                Some(member)
            }
            (state, _) => state,
        }
    }
}
