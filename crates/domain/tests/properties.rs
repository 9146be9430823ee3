//! Properties over random command sequences: folding from scratch equals step-by-step
//! state, and every event survives the trip through stored JSON.

mod support;

use kefu_domain::complaint::*;
use kefu_domain::customer::*;
use kefu_domain::{
    Aggregate, CallbackChannel, CallbackKind, CallbackOutcome, CallbackParty, Confidentiality,
    ContactChannel, Contacts, CustomerId, CustomerKind, DomainEvent, IntakeChannel, LogCallback,
    ReplyKind, Score, Severity, SignerCapacity, StarLevel, Tier,
};
use proptest::prelude::*;
use support::{at, staff, text};

const PEOPLE: [&str; 6] = ["h1", "h2", "r1", "d1", "c1", "sp1"];

fn person(pick: u8) -> kefu_domain::StaffId {
    staff(PEOPLE[usize::from(pick) % PEOPLE.len()])
}

/// The person acting, as handler or (every third variant) stepping in.
fn actor(pick: u8, variant: u8) -> Actor {
    Actor { staff: person(pick), stepping_in: variant % 3 == 2 }
}

fn complaint_command(op: u8, who: u8, variant: u8, step: i64) -> ComplaintCommand {
    let capacity = [SignerCapacity::Handler, SignerCapacity::Director, SignerCapacity::Committee]
        [usize::from(variant) % 3];
    let outcome =
        [CallbackOutcome::Satisfied, CallbackOutcome::Neutral, CallbackOutcome::Dissatisfied]
            [usize::from(variant) % 3];
    match op % 15 {
        0 => ComplaintCommand::File(FileComplaint {
            complaint_id: "0193a5e0-0000-7000-8000-000000000001".parse().unwrap(),
            case_number: "2026-000001".parse().unwrap(),
            customer_id: "0193a5e0-0000-7000-8000-0000000000c1".parse().unwrap(),
            category: text("billing"),
            cause: text("overcharge"),
            severity: if variant % 2 == 0 { Severity::Normal } else { Severity::Major },
            channel: IntakeChannel::ALL[usize::from(variant) % IntakeChannel::ALL.len()],
            description: text("charged twice"),
            respondent: (variant % 3 != 0).then(|| staff("r1")),
            attachments: vec![],
            received_at: at(step - 1),
            policy: kefu_domain::PolicyBook::new().current(),
            tier: Tier::Regular,
            from_request: None,
        }),
        1 => ComplaintCommand::AssignHandler(AssignHandler {
            handler: person(who),
            reason: None,
            handler_cleared: true,
        }),
        2 => ComplaintCommand::RecuseHandler(RecuseHandler {
            handler: person(who),
            reason: (variant % 4 != 0).then(|| text("conflict")),
        }),
        3 => ComplaintCommand::ContactComplainant(ContactComplainant {
            by: actor(who, variant),
            channel: ContactChannel::ALL[usize::from(variant) % ContactChannel::ALL.len()],
            summary: text("arranged"),
            contacted_at: at(step),
        }),
        4 => ComplaintCommand::RecordInvestigation(RecordInvestigation {
            by: actor(who, variant),
            findings: text("f"),
        }),
        5 => ComplaintCommand::DraftOpinion(DraftOpinion {
            specialist: person(who),
            opinion: text("o"),
        }),
        6 => ComplaintCommand::Escalate(EscalateComplaint { to: capacity, reason: text("major") }),
        7 => ComplaintCommand::SignOpinion(SignOpinion {
            signer: person(who),
            capacity,
            decision: text("d"),
            remedy: None,
            meeting: (variant % 2 == 0).then(|| CommitteeMeeting {
                held_at: at(step - 1),
                members_present: (0..3).map(|i| person(who.wrapping_add(i))).collect(),
                reported_to_authority: variant % 3 == 0,
            }),
            members: (0..3)
                .map(|i| (person(who.wrapping_add(i)), MemberStanding::Member))
                .collect(),
            committee_quorum: 3,
        }),
        8 => ComplaintCommand::SendReply(SendReply {
            by: actor(who, variant),
            kind: if variant % 2 == 0 { ReplyKind::Acknowledgement } else { ReplyKind::Final },
            channel: ContactChannel::ALL[usize::from(variant) % ContactChannel::ALL.len()],
            summary: text("s"),
        }),
        9 => ComplaintCommand::Close(CloseComplaint {
            by: actor(who, variant),
            summary: None,
            policy: kefu_domain::PolicyBook::new().current(),
        }),
        10 => ComplaintCommand::Reopen(ReopenComplaint { cause: Some(text("again")) }),
        11 => ComplaintCommand::LogCallback(LogCallback {
            kind: CallbackKind::Complaint,
            channel: CallbackChannel::Phone,
            party: Some(CallbackParty::Complainant),
            outcome,
            score: Score::new(u32::from(variant % 5) + 1).ok(),
            comment: None,
            by: person(who),
            called_at: at(step),
        }),
        12 => ComplaintCommand::AddMaterial(AddMaterial {
            by: person(who),
            material: MaterialRef::new(
                "doc://m",
                "application/pdf",
                u64::from(variant),
                &"a".repeat(64),
            )
            .unwrap(),
            supersedes: (variant % 2 == 1).then_some(u32::from(variant % 4)),
            reason: (variant % 2 == 1).then(|| text("newer")),
        }),
        13 => ComplaintCommand::RecordImplementation(RecordImplementation {
            by: person(who),
            summary: text("done"),
            implemented_at: at(step),
        }),
        _ => ComplaintCommand::Archive(ArchiveCase { year: 2026 }),
    }
}

fn customer_command(op: u8, who: u8, variant: u8, step: i64) -> CustomerCommand {
    match op % 7 {
        0 => CustomerCommand::Register(RegisterCustomer {
            customer_id: "0193a5e0-0000-7000-8000-0000000000c1".parse::<CustomerId>().unwrap(),
            name: text("Wang Fang"),
            kind: CustomerKind::Individual,
            contacts: Contacts::default(),
            tier: Tier::ALL[usize::from(variant) % 3],
            stars: StarLevel::new(u32::from(variant % 6)).ok(),
            source_channel: text("web"),
            referred_by: None,
            referrer_registered: false,
            confidentiality: Confidentiality::ALL[usize::from(variant) % 4],
            agent: person(who),
            agent_clearance: Confidentiality::ALL.get(usize::from(variant / 4) % 5).copied(),
        }),
        1 => CustomerCommand::Grade(GradeCustomer {
            tier: Tier::ALL[usize::from(variant) % 3],
            stars: StarLevel::new(u32::from(variant % 6)).ok(),
            reason: Some(text("review")),
        }),
        2 => CustomerCommand::AssignAgent(AssignAgent {
            agent: person(who),
            reason: None,
            agent_clearance: Confidentiality::ALL.get(usize::from(variant / 4) % 5).copied(),
        }),
        3 => CustomerCommand::RecordContact(RecordContact {
            by: person(who),
            channel: ContactChannel::Phone,
            note: None,
            contacted_at: at(step),
        }),
        4 => CustomerCommand::Update(UpdateCustomer {
            name: Some(text(if variant % 2 == 0 { "Wang Fang" } else { "Wang F." })),
            contacts: None,
            confidentiality: Some(Confidentiality::ALL[usize::from(variant) % 4]),
            agent_clearance: Confidentiality::ALL.get(usize::from(variant / 4) % 5).copied(),
            open_work: vec![],
        }),
        5 => CustomerCommand::LogCallback(LogCallback {
            kind: CallbackKind::Routine,
            channel: CallbackChannel::Sms,
            party: None,
            outcome: CallbackOutcome::Satisfied,
            score: None,
            comment: None,
            by: person(who),
            called_at: at(step),
        }),
        _ => CustomerCommand::Forget(ForgetCustomer { reason: text("request") }),
    }
}

/// Runs the commands, keeping the accepted events; checks each event's JSON round trip.
fn run<A, E>(commands: Vec<A::Command>) -> (Vec<A::Event>, A::State)
where
    A: Aggregate<Event = E>,
    E: DomainEvent + Clone + std::fmt::Debug + PartialEq,
{
    let mut state = A::State::default();
    let mut history = Vec::new();
    for (step, command) in commands.into_iter().enumerate() {
        let now = at(i64::try_from(step).unwrap());
        if let Ok(events) = A::decide(&state, command, now) {
            for event in events {
                let stored = serde_json::to_string(&event.to_payload()).unwrap();
                let loaded = E::from_stored(
                    event.event_type(),
                    event.schema_version(),
                    &serde_json::from_str(&stored).unwrap(),
                )
                .unwrap();
                assert_eq!(loaded, event, "JSON round trip of {}", event.event_type());
                state = A::evolve(state, &event);
                history.push(event);
            }
        }
    }
    (history, state)
}

fn ops() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
    proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn complaint_fold_equals_step_by_step(ops in ops()) {
        // Filing first, so most sequences get somewhere.
        let mut commands = vec![complaint_command(0, 0, 0, 0)];
        commands.extend(ops.iter().enumerate().map(|(i, &(op, who, variant))| {
            complaint_command(op, who, variant, i64::try_from(i).unwrap() + 1)
        }));
        let (history, stepwise) = run::<Complaint, ComplaintEvent>(commands);
        prop_assert_eq!(Complaint::fold(&history), stepwise);
    }

    #[test]
    fn customer_fold_equals_step_by_step(ops in ops()) {
        let mut commands = vec![customer_command(0, 0, 0, 0)];
        commands.extend(ops.iter().enumerate().map(|(i, &(op, who, variant))| {
            customer_command(op, who, variant, i64::try_from(i).unwrap() + 1)
        }));
        let (history, stepwise) = run::<Customer, CustomerEvent>(commands);
        prop_assert_eq!(Customer::fold(&history), stepwise);
    }
}

#[test]
fn the_generator_reaches_closed_and_reopened_cases() {
    // Guard against a vacuous property: a scripted walk through the same generator
    // must reach closure and a callback reopen.
    let script =
        [(0, 0, 0), (1, 0, 0), (4, 0, 0), (5, 5, 0), (7, 0, 0), (8, 0, 3), (9, 0, 0), (11, 0, 2)];
    let commands = script
        .iter()
        .enumerate()
        .map(|(i, &(op, who, variant))| {
            complaint_command(op, who, variant, i64::try_from(i).unwrap())
        })
        .collect();
    let (history, state) = run::<Complaint, ComplaintEvent>(commands);
    assert_eq!(history.len(), 9, "{history:#?}");
    let case = state.unwrap();
    assert_eq!((case.status, case.reopen_count), (CaseStatus::Open, 1));
}
