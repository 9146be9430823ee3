//! The `Customer` aggregate (客户档案): record, grading, owner agent, contacts, callbacks, erasure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::callback::{CallbackLogged, LogCallback};
use crate::codec::{event_enum, no_upcasters};
use crate::error::DomainError;
use crate::ids::{CustomerId, StaffId};
use crate::values::{
    CallbackKind, Confidentiality, ContactChannel, Contacts, CustomerKind, StarLevel, Text, Tier,
};

/// R-C1: a customer's record is created with everything the policy asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRegistered {
    pub customer_id: CustomerId,
    pub name: Text,
    pub kind: CustomerKind,
    pub contacts: Contacts,
    pub tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stars: Option<StarLevel>,
    /// Where the customer came from (advert, exhibition, referral…).
    pub source_channel: Text,
    /// R-C7: the existing customer who referred this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_by: Option<CustomerId>,
    pub confidentiality: Confidentiality,
    /// R-C3: the owning agent.
    pub agent: StaffId,
    pub registered_at: DateTime<Utc>,
}

/// Changed profile fields; absent fields are unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Contacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidentiality: Option<Confidentiality>,
    pub updated_at: DateTime<Utc>,
}

/// R-C2: a grading change, from and to, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerGraded {
    pub from_tier: Tier,
    pub to_tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_stars: Option<StarLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_stars: Option<StarLevel>,
    pub reason: Text,
    pub graded_at: DateTime<Utc>,
}

/// R-C3: the customer's owning agent changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAssigned {
    pub previous: StaffId,
    pub agent: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
    pub assigned_at: DateTime<Utc>,
}

/// R-C4: an agent contacted the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerContacted {
    pub by: StaffId,
    pub channel: ContactChannel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Text>,
    pub contacted_at: DateTime<Utc>,
}

/// R-C8: the customer's personal data is erased (its key destroyed); history stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerForgotten {
    pub reason: Text,
    pub forgotten_at: DateTime<Utc>,
}

/// The stored types of the events after which a customer's records are read at another
/// level (R-C6): an update may reclassify, a merge puts the duplicate under its
/// survivor's level, an erasure ends the record. Any other event leaves the level as it
/// was, so a write that relied on the level need not conflict with it.
pub const LEVEL_EVENT_TYPES: [&str; 3] =
    ["CustomerUpdated", "CustomerMerged", CustomerForgotten::EVENT_TYPE];

impl CustomerForgotten {
    /// Its stored type. It ends its stream: `decide` refuses every command after it, so
    /// "the stream does not end with it" is "the customer is not forgotten".
    pub const EVENT_TYPE: &'static str = "CustomerForgotten";
}

/// This customer was a duplicate, merged into `into` (the survivor): reads go there, and
/// the record accepts nothing more but an erasure. Written with [`CustomerAbsorbed`] on
/// the survivor's stream, in one append group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMerged {
    pub into: CustomerId,
    /// Why the two records are one person; personal (it may quote contacts), sealed.
    pub reason: Text,
    pub merged_at: DateTime<Utc>,
}

/// This customer, the survivor, took in `duplicate` (and `also`, the customers merged
/// into the duplicate before): their complaints, callbacks and referrals count here, and
/// erasing this customer erases them too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerAbsorbed {
    pub duplicate: CustomerId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<CustomerId>,
    /// Older events copied [`CustomerMerged`]'s reason here (personal, sealed with the
    /// survivor's key, so erasing the duplicate alone left it readable, R-C8). New ones
    /// leave it out: the duplicate's own event keeps it, under the duplicate's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
    pub absorbed_at: DateTime<Utc>,
}

event_enum!(
    /// Everything that happens in a `customer-<uuid>` stream.
    CustomerEvent, upcast = no_upcasters, {
        CustomerRegistered = 1,
        CustomerUpdated = 1,
        CustomerGraded = 1,
        AgentAssigned = 1,
        CustomerContacted = 1,
        CallbackLogged = 1,
        CustomerForgotten = 1,
        CustomerMerged = 1,
        CustomerAbsorbed = 1,
    }
);

#[derive(Debug, Clone, PartialEq)]
pub struct RegisterCustomer {
    pub customer_id: CustomerId,
    pub name: Text,
    pub kind: CustomerKind,
    pub contacts: Contacts,
    pub tier: Tier,
    pub stars: Option<StarLevel>,
    pub source_channel: Text,
    pub referred_by: Option<CustomerId>,
    /// Resolved by the caller: whether `referred_by` is a registered customer (R-C7).
    pub referrer_registered: bool,
    pub confidentiality: Confidentiality,
    /// Chosen by the caller, balanced across agents (R-C3, [`crate::balance`]).
    pub agent: StaffId,
    /// Resolved by the caller: the agent's clearance (`None`: cleared for nothing). The
    /// record's level must be within it (R-C6: nobody owns a record they may not read).
    pub agent_clearance: Option<Confidentiality>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateCustomer {
    pub name: Option<Text>,
    pub contacts: Option<Contacts>,
    pub confidentiality: Option<Confidentiality>,
    /// Resolved by the caller: the clearance of the customer's current agent. A raise
    /// above it is refused (R-C6): the customer is handed to a cleared agent first.
    pub agent_clearance: Option<Confidentiality>,
    /// Resolved by the caller when the level changes: who holds the customer's open work
    /// (a case's handler, a request's agent) and their clearance. A change of level
    /// beyond any of them is refused like one beyond the agent's (R-C6 with R-C3): their
    /// work is handed to a cleared colleague first, so nothing is left with someone who
    /// may no longer read it.
    pub open_work: Vec<OpenWork>,
}

/// A piece of a customer's open work and who holds it, for the check on a change of level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWork {
    /// How a refusal names it to the classifier (a case number, a request id); `None`
    /// for a case they may not be told of (one against them, R-P4): neither it nor its
    /// holder is named.
    pub label: Option<String>,
    pub holder: StaffId,
    /// `None`: cleared for nothing (no longer on the tokens).
    pub clearance: Option<Confidentiality>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GradeCustomer {
    pub tier: Tier,
    pub stars: Option<StarLevel>,
    /// R-C2: required; `None` is refused with the rule's error.
    pub reason: Option<Text>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssignAgent {
    pub agent: StaffId,
    pub reason: Option<Text>,
    /// Resolved by the caller: the new agent's clearance, which must cover the
    /// customer's level (R-C6).
    pub agent_clearance: Option<Confidentiality>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordContact {
    pub by: StaffId,
    pub channel: ContactChannel,
    pub note: Option<Text>,
    pub contacted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForgetCustomer {
    pub reason: Text,
}

/// To the duplicate: it is merged into `survivor` (the caller checked the survivor).
#[derive(Debug, Clone, PartialEq)]
pub struct MergeInto {
    pub survivor: CustomerId,
    pub reason: Text,
}

/// To the survivor: it takes in `duplicate` and the customers merged into it before
/// (`also`, from the duplicate's state, resolved by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Absorb {
    pub duplicate: CustomerId,
    pub also: Vec<CustomerId>,
    /// The duplicate's level: a merge never lowers one (R-C6), since a merged record is
    /// read at its survivor's level from then on.
    pub duplicate_level: Confidentiality,
    /// Resolved by the caller: who holds the duplicate's open work. Read at the
    /// survivor's level from then on, so a merge into a higher survivor raises it, within
    /// every holder's clearance like any raise (R-C6 with R-C3).
    pub duplicate_work: Vec<OpenWork>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    Register(RegisterCustomer),
    Update(UpdateCustomer),
    Grade(GradeCustomer),
    AssignAgent(AssignAgent),
    RecordContact(RecordContact),
    LogCallback(LogCallback),
    Forget(ForgetCustomer),
    MergeInto(MergeInto),
    Absorb(Absorb),
}

/// A registered customer as folded from its events.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRecord {
    pub id: CustomerId,
    /// `None` once the customer is forgotten (R-C8).
    pub name: Option<Text>,
    pub kind: CustomerKind,
    pub contacts: Contacts,
    pub tier: Tier,
    pub stars: Option<StarLevel>,
    pub source_channel: Text,
    pub referred_by: Option<CustomerId>,
    pub confidentiality: Confidentiality,
    pub agent: StaffId,
    pub registered_at: DateTime<Utc>,
    pub first_contact_at: Option<DateTime<Utc>>,
    pub last_callback_at: Option<DateTime<Utc>>,
    pub callbacks: u32,
    pub forgotten_at: Option<DateTime<Utc>>,
    /// The survivor this duplicate was merged into.
    pub merged_into: Option<CustomerId>,
    /// Every customer merged into this one, directly or through a duplicate.
    pub absorbed: Vec<CustomerId>,
}

/// The `Customer` aggregate; its state is `None` until registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Customer;

impl Aggregate for Customer {
    type State = Option<CustomerRecord>;
    type Command = CustomerCommand;
    type Event = CustomerEvent;

    fn decide(
        state: &Self::State,
        command: CustomerCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<CustomerEvent>, DomainError> {
        let Some(record) = state else {
            return match command {
                CustomerCommand::Register(command) => register(command, now),
                _ => Err(DomainError::CustomerNotRegistered),
            };
        };
        if record.forgotten_at.is_some() {
            return match command {
                CustomerCommand::Forget(_) => Ok(vec![]), // erasure is idempotent
                _ => Err(DomainError::CustomerForgotten),
            };
        }
        // A merged duplicate lives on in its survivor; erasure stays possible (R-C8).
        if record.merged_into.is_some() && !matches!(command, CustomerCommand::Forget(_)) {
            return Err(DomainError::CustomerMerged);
        }
        let event: CustomerEvent = match command {
            CustomerCommand::Register(_) => return Err(DomainError::CustomerAlreadyRegistered),
            CustomerCommand::Update(update) => {
                let changed = CustomerUpdated {
                    name: update.name.filter(|name| record.name.as_ref() != Some(name)),
                    contacts: update.contacts.filter(|contacts| *contacts != record.contacts),
                    confidentiality: update
                        .confidentiality
                        .filter(|level| *level != record.confidentiality),
                    updated_at: now,
                };
                if changed.name.is_none()
                    && changed.contacts.is_none()
                    && changed.confidentiality.is_none()
                {
                    return Ok(vec![]);
                }
                if let Some(level) = changed.confidentiality {
                    if !cleared(update.agent_clearance, level) {
                        return Err(DomainError::AgentNotCleared);
                    }
                    holders_cleared(&update.open_work, level)?;
                }
                changed.into()
            }
            CustomerCommand::Grade(grade) => {
                let reason = grade.reason.ok_or(DomainError::GradingNeedsReason)?;
                if grade.tier == record.tier && grade.stars == record.stars {
                    return Err(DomainError::GradeUnchanged);
                }
                CustomerGraded {
                    from_tier: record.tier,
                    to_tier: grade.tier,
                    from_stars: record.stars,
                    to_stars: grade.stars,
                    reason,
                    graded_at: now,
                }
                .into()
            }
            CustomerCommand::AssignAgent(assign) => {
                if !cleared(assign.agent_clearance, record.confidentiality) {
                    return Err(DomainError::AgentNotCleared);
                }
                if assign.agent == record.agent {
                    return Ok(vec![]);
                }
                AgentAssigned {
                    previous: record.agent.clone(),
                    agent: assign.agent,
                    reason: assign.reason,
                    assigned_at: now,
                }
                .into()
            }
            CustomerCommand::RecordContact(contact) => {
                let contacted_at = crate::time::given("contacted_at", contact.contacted_at, now)?;
                if contacted_at < record.registered_at {
                    return Err(DomainError::ContactBeforeRegistration);
                }
                CustomerContacted {
                    by: contact.by,
                    channel: contact.channel,
                    note: contact.note,
                    contacted_at: contact.contacted_at,
                }
                .into()
            }
            CustomerCommand::LogCallback(callback) => {
                // Complaint callbacks belong to the complaint's stream (they may reopen it).
                if callback.kind == CallbackKind::Complaint {
                    return Err(DomainError::CallbackKindMismatch);
                }
                callback
                    .into_event(
                        record.id,
                        None,
                        now,
                        record.registered_at,
                        DomainError::CallbackBeforeRegistration,
                    )?
                    .into()
            }
            CustomerCommand::Forget(forget) => {
                CustomerForgotten { reason: forget.reason, forgotten_at: now }.into()
            }
            CustomerCommand::MergeInto(merge) => {
                if merge.survivor == record.id {
                    return Err(DomainError::MergeIntoItself);
                }
                CustomerMerged { into: merge.survivor, reason: merge.reason, merged_at: now }.into()
            }
            CustomerCommand::Absorb(absorb) => {
                if absorb.duplicate == record.id || absorb.also.contains(&record.id) {
                    return Err(DomainError::MergeIntoItself);
                }
                if absorb.duplicate_level > record.confidentiality {
                    return Err(DomainError::MergeLowersLevel);
                }
                if absorb.duplicate_level != record.confidentiality {
                    holders_cleared(&absorb.duplicate_work, record.confidentiality)?;
                }
                CustomerAbsorbed {
                    duplicate: absorb.duplicate,
                    also: absorb.also,
                    reason: None,
                    absorbed_at: now,
                }
                .into()
            }
        };
        Ok(vec![event])
    }

    fn data_subject(state: &Self::State, events: &[CustomerEvent]) -> Option<CustomerId> {
        state.as_ref().map(|record| record.id).or_else(|| {
            events.iter().find_map(|event| match event {
                CustomerEvent::CustomerRegistered(e) => Some(e.customer_id),
                _ => None,
            })
        })
    }

    fn evolve(state: Self::State, event: &CustomerEvent) -> Self::State {
        let mut record = match (state, event) {
            (None, CustomerEvent::CustomerRegistered(e)) => {
                return Some(CustomerRecord {
                    id: e.customer_id,
                    name: Some(e.name.clone()),
                    kind: e.kind,
                    contacts: e.contacts.clone(),
                    tier: e.tier,
                    stars: e.stars,
                    source_channel: e.source_channel.clone(),
                    referred_by: e.referred_by,
                    confidentiality: e.confidentiality,
                    agent: e.agent.clone(),
                    registered_at: e.registered_at,
                    first_contact_at: None,
                    last_callback_at: None,
                    callbacks: 0,
                    forgotten_at: None,
                    merged_into: None,
                    absorbed: Vec::new(),
                })
            }
            // Nothing but registration starts a stream; a stray event changes nothing.
            (None, _) => return None,
            (Some(record), _) => record,
        };
        match event {
            CustomerEvent::CustomerRegistered(_) => {}
            CustomerEvent::CustomerUpdated(e) => {
                if let Some(name) = &e.name {
                    record.name = Some(name.clone());
                }
                if let Some(contacts) = &e.contacts {
                    record.contacts = contacts.clone();
                }
                if let Some(level) = e.confidentiality {
                    record.confidentiality = level;
                }
            }
            CustomerEvent::CustomerGraded(e) => {
                record.tier = e.to_tier;
                record.stars = e.to_stars;
            }
            CustomerEvent::AgentAssigned(e) => record.agent = e.agent.clone(),
            CustomerEvent::CustomerContacted(e) => {
                record.first_contact_at.get_or_insert(e.contacted_at);
            }
            CustomerEvent::CallbackLogged(e) => {
                record.callbacks += 1;
                record.last_callback_at = record.last_callback_at.max(Some(e.called_at));
            }
            CustomerEvent::CustomerForgotten(e) => {
                record.name = None;
                record.contacts = Contacts::default();
                record.forgotten_at = Some(e.forgotten_at);
            }
            CustomerEvent::CustomerMerged(e) => record.merged_into = Some(e.into),
            CustomerEvent::CustomerAbsorbed(e) => {
                for id in std::iter::once(&e.duplicate).chain(&e.also) {
                    if !record.absorbed.contains(id) {
                        record.absorbed.push(*id);
                    }
                }
            }
        }
        Some(record)
    }
}

fn register(
    command: RegisterCustomer,
    now: DateTime<Utc>,
) -> Result<Vec<CustomerEvent>, DomainError> {
    if let Some(referrer) = command.referred_by {
        if referrer == command.customer_id {
            return Err(DomainError::SelfReferral);
        }
        if !command.referrer_registered {
            return Err(DomainError::ReferrerUnknown);
        }
    }
    if !cleared(command.agent_clearance, command.confidentiality) {
        return Err(DomainError::AgentNotCleared);
    }
    Ok(vec![CustomerRegistered {
        customer_id: command.customer_id,
        name: command.name,
        kind: command.kind,
        contacts: command.contacts,
        tier: command.tier,
        stars: command.stars,
        source_channel: command.source_channel,
        referred_by: command.referred_by,
        confidentiality: command.confidentiality,
        agent: command.agent,
        registered_at: now,
    }
    .into()])
}

/// R-C6: whether an agent of `clearance` may own a customer at `level`.
/// R-C6 with R-C3: everyone holding `work` may read a record at `level`; else the
/// refusal names each piece of work and its holder.
fn holders_cleared(work: &[OpenWork], level: Confidentiality) -> Result<(), DomainError> {
    let uncleared: Vec<String> = work
        .iter()
        .filter(|work| !cleared(work.clearance, level))
        .map(|work| match &work.label {
            Some(label) => format!("{label} held by {}", work.holder),
            None => {
                "an open case you may not see (a supervisor cleared for it reassigns it)".into()
            }
        })
        .collect();
    if uncleared.is_empty() {
        Ok(())
    } else {
        Err(DomainError::HoldersNotCleared(uncleared.join(", ")))
    }
}

fn cleared(clearance: Option<Confidentiality>, level: Confidentiality) -> bool {
    clearance.is_some_and(|clearance| level <= clearance)
}
