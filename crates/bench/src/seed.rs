//! Realistic events for benchmarks: customers and whole complaint lifecycles, produced by
//! the real aggregates (decide/evolve) and appended one stream per append.

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use kefu_domain::complaint::*;
use kefu_domain::customer::*;
use kefu_domain::*;
use kefu_event_store::{DataKey, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use uuid::Uuid;

/// The payload of a typical `ComplaintFiled`, for sizing the baseline's rows.
pub fn sample_payload() -> serde_json::Value {
    let now = Utc::now();
    let (complaint, _) = lifecycle(CustomerId::generate(), 1, now, 0);
    complaint[0].to_payload()
}

fn text(value: &str) -> Text {
    Text::new("text", value).unwrap_or_else(|_| unreachable!("constant text is valid"))
}

fn staff(code: &str) -> StaffId {
    StaffId::new(code).unwrap_or_else(|_| unreachable!("constant staff code is valid"))
}

/// Runs commands through an aggregate in memory, returning the events.
fn run<A: Aggregate>(commands: Vec<A::Command>, now: DateTime<Utc>) -> Vec<A::Event> {
    let mut state = A::State::default();
    let mut events = Vec::new();
    for command in commands {
        // Every command here is valid by construction; a refusal would be a bug in the seed.
        let new = A::decide(&state, command, now).unwrap_or_default();
        for event in new {
            state = A::evolve(state, &event);
            events.push(event);
        }
    }
    events
}

/// A complaint from filing to callback: 10 or 11 events (a dissatisfied callback reopens).
pub fn lifecycle(
    customer_id: CustomerId,
    sequence: u32,
    now: DateTime<Utc>,
    n: u64,
) -> (Vec<ComplaintEvent>, ComplaintId) {
    let id = ComplaintId::generate();
    let handler = staff(if n % 2 == 0 { "h1" } else { "h2" });
    let channels = IntakeChannel::ALL;
    let outcomes =
        [CallbackOutcome::Satisfied, CallbackOutcome::Neutral, CallbackOutcome::Dissatisfied];
    let index = usize::try_from(n % 1_000).unwrap_or(0);
    let commands = vec![
        ComplaintCommand::File(FileComplaint {
            complaint_id: id,
            case_number: CaseNumber::new(now.year(), sequence).unwrap_or_else(|_| unreachable!("sequence in range")),
            customer_id,
            category: text(["billing", "service", "delay"][index % 3]),
            cause: text(["overcharge", "rude_staff", "late_delivery", "wrong_item"][index % 4]),
            severity: Severity::Normal,
            channel: channels[index % channels.len()],
            description: text("The customer reports being charged twice for the same visit and asks for a refund of the second charge."),
            respondent: Some(staff("r1")),
            attachments: vec![],
            received_at: now - TimeDelta::hours(2),
            // Seeded straight into the store, under version 0 (calendar time, UTC years).
            policy: PolicyBook::new().current(),
            tier: Tier::Regular,
        }),
        ComplaintCommand::AssignHandler(AssignHandler {
            handler: handler.clone(),
            reason: None,
            handler_cleared: true,
        }),
        ComplaintCommand::ContactComplainant(ContactComplainant {
            by: Actor::handler(handler.clone()),
            channel: ContactChannel::Phone,
            summary: text("explained how the case will be handled"),
            contacted_at: now,
        }),
        ComplaintCommand::RecordInvestigation(RecordInvestigation { by: Actor::handler(handler.clone()), findings: text("double charge confirmed") }),
        ComplaintCommand::DraftOpinion(DraftOpinion { specialist: staff("sp1"), opinion: text("refund the second charge") }),
        ComplaintCommand::SignOpinion(SignOpinion {
            signer: handler.clone(),
            capacity: SignerCapacity::Handler,
            decision: text("refund"),
            remedy: Some(text("refund and apology letter")),
            meeting: None,
            members: Vec::new(),
            committee_quorum: 3,
        }),
        // R-P9: the promised remedy is carried out before the case closes.
        ComplaintCommand::RecordImplementation(RecordImplementation {
            by: staff("sp1"),
            summary: text("refunded and wrote to apologise"),
            implemented_at: now,
        }),
        ComplaintCommand::SendReply(SendReply {
            by: Actor::handler(handler.clone()),
            kind: ReplyKind::Final,
            channel: ContactChannel::Letter,
            summary: text("decision letter"),
        }),
        ComplaintCommand::Close(CloseComplaint {
            by: Actor::handler(handler),
            summary: None,
            policy: PolicyBook::new().current(),
        }),
        ComplaintCommand::LogCallback(LogCallback {
            kind: CallbackKind::Complaint,
            channel: CallbackChannel::Phone,
            party: Some(CallbackParty::Complainant),
            outcome: outcomes[index % 3],
            score: Score::new(u32::try_from(index % 5).unwrap_or(0) + 1).ok(),
            comment: None,
            by: staff("a1"),
            called_at: now,
        }),
    ];
    (run::<Complaint>(commands, now), id)
}

fn customer(n: u64, now: DateTime<Utc>) -> (Vec<CustomerEvent>, CustomerId) {
    let id = CustomerId::generate();
    let commands = vec![
        CustomerCommand::Register(RegisterCustomer {
            customer_id: id,
            name: text(&format!("Customer {n}")),
            kind: CustomerKind::Individual,
            contacts: Contacts::default(),
            tier: Tier::ALL[usize::try_from(n % 3).unwrap_or(0)],
            stars: None,
            source_channel: text("web"),
            referred_by: None,
            referrer_registered: false,
            confidentiality: Confidentiality::Internal,
            agent: staff("a1"),
            agent_clearance: Some(Confidentiality::Internal),
        }),
        CustomerCommand::RecordContact(RecordContact {
            by: staff("a1"),
            channel: ContactChannel::Phone,
            note: None,
            contacted_at: now,
        }),
    ];
    (run::<Customer>(commands, now), id)
}

/// Appends one stream, personal fields sealed with the customer's key as the API does.
async fn append<E: DomainEvent>(
    store: &EventStore,
    stream: &str,
    events: &[E],
    key: &DataKey,
) -> anyhow::Result<()> {
    let new: Vec<NewEvent> = events
        .iter()
        .map(|e| {
            let mut payload = e.to_payload();
            key.seal_fields(&mut payload, &personal::fields(e.event_type()), personal::erased);
            NewEvent::new(Uuid::now_v7(), e.event_type(), e.schema_version(), payload)
        })
        .collect();
    store
        .append(&StreamId::new(stream)?, ExpectedVersion::NoStream, &new, &Metadata::default())
        .await?;
    Ok(())
}

/// Appends customers and complaint lifecycles until at least `events` are stored.
pub async fn seed(store: &EventStore, events: u64) -> anyhow::Result<u64> {
    // Case numbers are issued from 1 here, as in a new year's register.
    anyhow::ensure!(
        store.head_position().await? == 0,
        "seeding needs an empty database: its case numbers would collide with those stored"
    );
    let now = Utc::now();
    let mut written = 0u64;
    let mut n = 0u64;
    let mut sequence = 0u32;
    let mut current = None;
    while written < events {
        if n % 5 == 0 || current.is_none() {
            let (customer_events, id) = customer(n, now);
            let key = store.data_key(&id.to_string()).await?;
            append(store, &id.stream_name(), &customer_events, &key).await?;
            written += u64::try_from(customer_events.len())?;
            current = Some((id, key));
        }
        sequence += 1;
        let Some((customer_id, key)) = &current else { continue };
        let (complaint_events, id) = lifecycle(*customer_id, sequence, now, n);
        append(store, &id.stream_name(), &complaint_events, key).await?;
        written += u64::try_from(complaint_events.len())?;
        n += 1;
    }
    Ok(written)
}
