//! Merging a duplicate into a survivor (issue 20): the duplicate's stream records where
//! it went and accepts nothing more but an erasure; the survivor's records what it took in.

mod support;

use kefu_domain::customer::*;
use kefu_domain::{
    Confidentiality, ContactChannel, Contacts, CustomerId, CustomerKind, DomainError, ErrorKind,
    Tier,
};
use support::{at, given, staff, text};

fn id(n: u8) -> CustomerId {
    format!("0193a5e0-0000-7000-8000-0000000000{n:02x}").parse().unwrap()
}

fn registered(customer: CustomerId) -> CustomerEvent {
    CustomerRegistered {
        customer_id: customer,
        name: text("王芳"),
        kind: CustomerKind::Individual,
        contacts: Contacts::default(),
        tier: Tier::Regular,
        stars: None,
        source_channel: text("web"),
        referred_by: None,
        confidentiality: Confidentiality::Internal,
        agent: staff("a1"),
        registered_at: at(0),
    }
    .into()
}

fn merge_into(survivor: CustomerId) -> CustomerCommand {
    CustomerCommand::MergeInto(MergeInto { survivor, reason: text("same phone, same person") })
}

fn absorb(duplicate: CustomerId, also: Vec<CustomerId>) -> CustomerCommand {
    absorb_at(duplicate, also, Confidentiality::Internal)
}

fn absorb_at(
    duplicate: CustomerId,
    also: Vec<CustomerId>,
    level: Confidentiality,
) -> CustomerCommand {
    CustomerCommand::Absorb(Absorb {
        duplicate,
        also,
        duplicate_level: level,
        duplicate_work: vec![],
    })
}

fn merged(survivor: CustomerId) -> CustomerEvent {
    CustomerMerged { into: survivor, reason: text("same phone, same person"), merged_at: at(1) }
        .into()
}

#[test]
fn the_duplicate_records_its_survivor_and_the_survivor_what_it_absorbed() {
    let duplicate =
        given::<Customer>([registered(id(2))]).when(merge_into(id(1))).then(vec![merged(id(1))]);
    assert_eq!(duplicate.unwrap().merged_into, Some(id(1)));
    let survivor = given::<Customer>([registered(id(1))])
        .when(absorb(id(2), vec![id(3)]))
        .then(vec![CustomerAbsorbed {
            duplicate: id(2),
            also: vec![id(3)],
            // The reason stays on the duplicate's own event, under its key (R-C8).
            reason: None,
            absorbed_at: at(1),
        }
        .into()])
        .unwrap();
    assert_eq!(survivor.absorbed, [id(2), id(3)], "erasing the survivor erases these too");
}

#[test]
fn a_merged_duplicate_accepts_no_more_changes() {
    let update = CustomerCommand::Update(UpdateCustomer {
        name: Some(text("王芳芳")),
        ..UpdateCustomer::default()
    });
    let contact = CustomerCommand::RecordContact(RecordContact {
        by: staff("a1"),
        channel: ContactChannel::Phone,
        note: None,
        contacted_at: at(1),
    });
    for command in [update, contact, merge_into(id(3)), absorb(id(3), vec![])] {
        given::<Customer>([registered(id(2)), merged(id(1))])
            .when(command)
            .then_error(DomainError::CustomerMerged);
    }
    assert_eq!(DomainError::CustomerMerged.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(DomainError::CustomerMerged.code(), "CUSTOMER_MERGED");
}

#[test]
fn a_merged_duplicate_can_still_be_erased() {
    let forget = CustomerCommand::Forget(ForgetCustomer { reason: text("erasure request") });
    let (events, record) =
        given::<Customer>([registered(id(2)), merged(id(1))]).at(at(2)).when(forget).events();
    assert!(matches!(events.as_slice(), [CustomerEvent::CustomerForgotten(_)]));
    let record = record.unwrap();
    assert!(record.forgotten_at.is_some() && record.name.is_none());
    assert_eq!(record.merged_into, Some(id(1)), "still merged: reads go to the survivor");
}

#[test]
fn a_customer_is_not_merged_into_itself() {
    given::<Customer>([registered(id(1))])
        .when(merge_into(id(1)))
        .then_error(DomainError::MergeIntoItself);
    given::<Customer>([registered(id(1))])
        .when(absorb(id(1), vec![]))
        .then_error(DomainError::MergeIntoItself);
    given::<Customer>([registered(id(1))])
        .when(absorb(id(2), vec![id(1)]))
        .then_error(DomainError::MergeIntoItself);
}

#[test]
fn unregistered_and_forgotten_customers_take_no_part_in_a_merge() {
    given::<Customer>([]).when(merge_into(id(1))).then_error(DomainError::CustomerNotRegistered);
    given::<Customer>([])
        .when(absorb(id(2), vec![]))
        .then_error(DomainError::CustomerNotRegistered);
    let forgotten =
        CustomerForgotten { reason: text("erasure request"), forgotten_at: at(0) }.into();
    given::<Customer>([registered(id(1)), forgotten])
        .when(absorb(id(2), vec![]))
        .then_error(DomainError::CustomerForgotten);
}

/// R-C6: a merged record is read at its survivor's level from then on, so a merge into
/// a survivor classified below the duplicate would lower the duplicate's level without a
/// classifier's decision: refused; at or below the survivor's level it goes ahead.
#[test]
fn a_merge_never_lowers_a_level() {
    given::<Customer>([registered(id(1))])
        .when(absorb_at(id(2), vec![], Confidentiality::Secret))
        .then_error(DomainError::MergeLowersLevel);
    given::<Customer>([registered(id(1))])
        .when(absorb_at(id(2), vec![], Confidentiality::Confidential))
        .then_error(DomainError::MergeLowersLevel);
    for level in [Confidentiality::Public, Confidentiality::Internal] {
        let (events, _) =
            given::<Customer>([registered(id(1))]).when(absorb_at(id(2), vec![], level)).events();
        assert_eq!(events.len(), 1, "absorbed at or below the survivor's level: {level:?}");
    }
}

#[test]
fn a_merge_into_a_higher_survivor_raises_the_duplicates_work_within_its_holders_clearance() {
    // The survivor is internal: a public duplicate's work is read at internal from then on.
    let held = |clearance| {
        vec![OpenWork { label: Some("request r-9".into()), holder: staff("a-pub"), clearance }]
    };
    let absorb = |level, work| {
        CustomerCommand::Absorb(Absorb {
            duplicate: id(2),
            also: vec![],
            duplicate_level: level,
            duplicate_work: work,
        })
    };
    given::<Customer>([registered(id(1))])
        .when(absorb(Confidentiality::Public, held(Some(Confidentiality::Public))))
        .then_error(DomainError::HoldersNotCleared("request r-9 held by a-pub".into()));
    for (level, clearance) in [
        (Confidentiality::Public, Some(Confidentiality::Internal)),
        // At the survivor's level already: nothing is raised.
        (Confidentiality::Internal, Some(Confidentiality::Public)),
    ] {
        let (events, _) =
            given::<Customer>([registered(id(1))]).when(absorb(level, held(clearance))).events();
        assert_eq!(events.len(), 1, "{level:?} {clearance:?}");
    }
}
