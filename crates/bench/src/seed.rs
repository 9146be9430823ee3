//! Realistic events for benchmarks: customers and whole complaint lifecycles, produced by
//! the real aggregates (decide/evolve) and written through the event store (so every
//! event is valid and chained), many appends in flight at once so that the store's
//! group-commit writer puts hundreds in each transaction: fast enough for 10M events.
//!
//! The shape of a register some years old: receipts spread over three years, nearly
//! every case closed and called back (a dissatisfied callback reopens it, and it is
//! closed and called back again), old cases archived, a small open set (the newest
//! cases) and a few closed cases awaiting their callback, whatever the size. One customer
//! in five cases; some key, VIP or five-star customers (called back on cadence), some
//! referred by an earlier customer.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use kefu_domain::complaint::*;
use kefu_domain::customer::*;
use kefu_domain::*;
use kefu_event_store::{
    DataKey, EventStore, ExpectedVersion, Metadata, NewEvent, PendingAppend, StreamId,
};
use uuid::Uuid;

/// The newest cases, still open: a centre's open set follows its inflow, not its age.
const OPEN_CASES: u64 = 500;
/// The next newest: closed, callback not logged yet (R-P15).
const AWAITING_CALLBACK: u64 = 200;
/// How far back receipts go, before the recent days of the open set.
const SPAN_DAYS: i64 = 3 * 365;
/// The days over which the open set and the cases awaiting callback were received.
const RECENT_DAYS: i64 = 10;
/// Cases older than this are archived (their callback window long past).
const ARCHIVE_AFTER_DAYS: i64 = 365;
/// How long after its receipt a case is filed.
const FILED_AFTER: TimeDelta = TimeDelta::minutes(10);
/// Appends queued before the oldest is awaited.
const IN_FLIGHT: usize = 2_000;

/// The payload of a typical `ComplaintFiled`, for sizing the baseline's rows.
pub fn sample_payload() -> serde_json::Value {
    let now = Utc::now();
    let number = CaseNumber::new(now.year(), 1).unwrap_or_else(|_| unreachable!("in range"));
    let (complaint, _) = case(CustomerId::generate(), number, now, 0, Stage::Open);
    complaint[0].to_payload()
}

fn text(value: &str) -> Text {
    Text::new("text", value).unwrap_or_else(|_| unreachable!("constant text is valid"))
}

fn staff(code: &str) -> StaffId {
    StaffId::new(code).unwrap_or_else(|_| unreachable!("constant staff code is valid"))
}

/// Runs commands through an aggregate in memory, each at its own time, returning the
/// events.
fn run<A: Aggregate>(commands: Vec<(A::Command, DateTime<Utc>)>) -> Vec<A::Event> {
    let mut state = A::State::default();
    let mut events = Vec::new();
    for (command, at) in commands {
        // Every command here is valid by construction. A refusal is a bug in the seed and
        // must stop it: skipped silently, it left one case in ten open for ever (a major
        // complaint needs an escalation before its signature), so the open set grew with
        // the log and the benchmark measured the seed, not the reports.
        let new = A::decide(&state, command, at).unwrap_or_else(|error| {
            panic!("the seed issued a command the domain refuses: {error}")
        });
        for event in new {
            state = A::evolve(state, &event);
            events.push(event);
        }
    }
    events
}

/// How far a seeded case got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Open,
    AwaitingCallback,
    CalledBack,
    Archived,
}

/// Investigation to closure by `handler`, from `at` (a day to two days after); a major
/// complaint is escalated to the director, who signs (R-P5).
fn handle_and_close(
    handler: &StaffId,
    severity: Severity,
    at: DateTime<Utc>,
) -> Vec<(ComplaintCommand, DateTime<Utc>)> {
    let day = TimeDelta::days(1);
    let (signer, capacity) = match severity {
        Severity::Major => (staff("d1"), SignerCapacity::Director),
        _ => (handler.clone(), SignerCapacity::Handler),
    };
    let mut commands = vec![
        (
            ComplaintCommand::RecordInvestigation(RecordInvestigation {
                by: Actor::handler(handler.clone()),
                findings: text("double charge confirmed"),
            }),
            at,
        ),
        (
            ComplaintCommand::DraftOpinion(DraftOpinion {
                specialist: staff("sp1"),
                opinion: text("refund the second charge"),
            }),
            at + day,
        ),
    ];
    if severity == Severity::Major {
        let escalate = EscalateComplaint {
            to: SignerCapacity::Director,
            reason: text("major complaint: the director decides"),
        };
        commands.push((ComplaintCommand::Escalate(escalate), at + day));
    }
    commands.extend([
        (
            ComplaintCommand::SignOpinion(SignOpinion {
                signer,
                capacity,
                decision: text("refund"),
                remedy: Some(text("refund and apology letter")),
                meeting: None,
                members: Vec::new(),
                committee_quorum: 3,
            }),
            at + day * 2,
        ),
        (
            // R-P9: the promised remedy is carried out before the case closes.
            ComplaintCommand::RecordImplementation(RecordImplementation {
                by: staff("sp1"),
                summary: text("refunded and wrote to apologise"),
                implemented_at: at + day * 2,
            }),
            at + day * 2,
        ),
        (
            ComplaintCommand::SendReply(SendReply {
                by: Actor::handler(handler.clone()),
                kind: ReplyKind::Final,
                channel: ContactChannel::Letter,
                summary: text("decision letter"),
            }),
            at + day * 2,
        ),
        (
            ComplaintCommand::Close(CloseComplaint {
                by: Actor::handler(handler.clone()),
                summary: None,
                policy: PolicyBook::new().current(),
            }),
            at + day * 2,
        ),
    ]);
    commands
}

fn callback(
    outcome: CallbackOutcome,
    score: u32,
    at: DateTime<Utc>,
) -> (ComplaintCommand, DateTime<Utc>) {
    let command = ComplaintCommand::LogCallback(LogCallback {
        kind: CallbackKind::Complaint,
        channel: CallbackChannel::Phone,
        party: Some(CallbackParty::Complainant),
        outcome,
        score: Score::new(score).ok(),
        comment: None,
        by: staff("a1"),
        called_at: at,
    });
    (command, at)
}

/// A complaint received at `received`, taken as far as `stage`: 4 events open, 9 closed,
/// 10 called back, 17 when the first callback was dissatisfied (reopened, closed and
/// called back again), one more archived.
fn case(
    customer_id: CustomerId,
    number: CaseNumber,
    received: DateTime<Utc>,
    n: u64,
    stage: Stage,
) -> (Vec<ComplaintEvent>, ComplaintId) {
    let id = ComplaintId::generate();
    let handler = staff(["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"][index(n, 8)]);
    let severity = if n % 10 == 0 { Severity::Major } else { Severity::Normal };
    let hour = TimeDelta::hours(1);
    let day = TimeDelta::days(1);
    let mut commands = vec![
        (
            ComplaintCommand::File(FileComplaint {
                complaint_id: id,
                case_number: number,
                customer_id,
                category: text(["billing", "service", "delay"][index(n, 3)]),
                cause: text(["overcharge", "rude_staff", "late_delivery", "wrong_item"][index(n, 4)]),
                severity,
                channel: IntakeChannel::ALL[index(n, IntakeChannel::ALL.len())],
                description: text("The customer reports being charged twice for the same visit and asks for a refund of the second charge."),
                respondent: Some(staff("r1")),
                attachments: vec![],
                received_at: received,
                // Seeded straight into the store, under version 0 (calendar time, UTC years).
                policy: PolicyBook::new().current(),
                tier: Tier::Regular,
                from_request: None,
            }),
            received + FILED_AFTER,
        ),
        (
            ComplaintCommand::AssignHandler(AssignHandler {
                handler: handler.clone(),
                reason: None,
                handler_cleared: true,
            }),
            received + hour,
        ),
        (
            ComplaintCommand::ContactComplainant(ContactComplainant {
                by: Actor::handler(handler.clone()),
                channel: ContactChannel::Phone,
                summary: text("explained how the case will be handled"),
                contacted_at: received + hour * 2,
            }),
            received + hour * 2,
        ),
    ];
    if stage != Stage::Open {
        commands.extend(handle_and_close(&handler, severity, received + day));
    }
    if matches!(stage, Stage::CalledBack | Stage::Archived) {
        let at = received + day * 4;
        if n % 10 == 7 {
            // R-P14: reopened by the callback, closed again, called back again.
            commands.push(callback(CallbackOutcome::Dissatisfied, 1, at));
            commands.extend(handle_and_close(&handler, severity, at + day));
            commands.push(callback(CallbackOutcome::Satisfied, 4, at + day * 4));
        } else {
            let outcome = [CallbackOutcome::Satisfied, CallbackOutcome::Neutral][index(n, 2)];
            let score = u32::try_from(n % 5).unwrap_or(0) + 1;
            commands.push(callback(outcome, score, at));
        }
    }
    if stage == Stage::Archived {
        let archive = ArchiveCase { year: number.year() };
        commands.push((ComplaintCommand::Archive(archive), received + day * 40));
    }
    (run::<Complaint>(commands), id)
}

/// How many cases make about `events` events, their customers' share (one customer in
/// five cases) included: the newest cases are the open set and then those awaiting their
/// callback (few events each), the older ones closed and called back or archived.
fn cases_for(events: u64, now: DateTime<Utc>) -> u64 {
    let number = CaseNumber::new(now.year(), 1).unwrap_or_else(|_| unreachable!("in range"));
    let customer = CustomerId::generate();
    let of = |stage| -> u64 {
        (0..10u64).map(|n| case(customer, number, now, n, stage).0.len() as u64).sum()
    };
    // Events per ten cases of each kind (an older case is archived two times in three).
    let share = (0..10u64).map(|c| customer_events(c, now)).sum::<u64>() / 5;
    let open = of(Stage::Open) + share;
    let awaiting = of(Stage::AwaitingCallback) + share;
    let older = (of(Stage::Archived) * 2 + of(Stage::CalledBack)) / 3 + share;
    let mut budget = events * 10;
    let mut cases = 0;
    for (count, per_ten) in [(OPEN_CASES, open), (AWAITING_CALLBACK, awaiting), (u64::MAX, older)] {
        let affordable = budget.div_ceil(per_ten.max(1));
        if affordable <= count {
            return (cases + affordable).max(1);
        }
        cases += count;
        budget -= count * per_ten;
    }
    cases.max(1)
}

fn customer_events(c: u64, now: DateTime<Utc>) -> u64 {
    customer(c, now - TimeDelta::days(30), None, now).0.len() as u64
}

fn index(n: u64, len: usize) -> usize {
    usize::try_from(n % u64::try_from(len).unwrap_or(1)).unwrap_or(0)
}

/// The `c`-th customer, registered at `registered`: 10 % key, 10 % VIP, 5 % five-star;
/// one in ten referred by `referrer`; every graded customer called back on cadence,
/// last within a few days of `now`.
fn customer(
    c: u64,
    registered: DateTime<Utc>,
    referrer: Option<CustomerId>,
    now: DateTime<Utc>,
) -> (Vec<CustomerEvent>, CustomerId) {
    let id = CustomerId::generate();
    let tier = match c % 10 {
        0 => Tier::Key,
        1 => Tier::Vip,
        _ => Tier::Regular,
    };
    let stars = if c % 20 == 2 { StarLevel::new(5).ok() } else { None };
    let referred_by = referrer.filter(|_| c % 10 == 3);
    let mut commands = vec![
        (
            CustomerCommand::Register(RegisterCustomer {
                customer_id: id,
                name: text(&format!("Customer {c}")),
                kind: CustomerKind::Individual,
                contacts: Contacts::default(),
                tier,
                stars,
                source_channel: text("web"),
                referred_by,
                referrer_registered: referred_by.is_some(),
                confidentiality: Confidentiality::Internal,
                agent: staff(["a1", "a2", "a3", "a4"][index(c, 4)]),
                agent_clearance: Some(Confidentiality::Internal),
            }),
            registered,
        ),
        (
            CustomerCommand::RecordContact(RecordContact {
                by: staff("a1"),
                channel: ContactChannel::Phone,
                note: None,
                contacted_at: registered + TimeDelta::hours(1),
            }),
            registered + TimeDelta::hours(1),
        ),
    ];
    if tier != Tier::Regular || stars.is_some() {
        let called_at = (now - TimeDelta::days(i64::try_from(c % 5).unwrap_or(0)))
            .max(registered + TimeDelta::hours(2));
        commands.push((
            CustomerCommand::LogCallback(LogCallback {
                kind: CallbackKind::Routine,
                channel: CallbackChannel::Phone,
                party: None,
                outcome: CallbackOutcome::Satisfied,
                score: Score::new(5).ok(),
                comment: None,
                by: staff("a1"),
                called_at,
            }),
            called_at,
        ));
    }
    (run::<Customer>(commands), id)
}

fn encode<E: DomainEvent>(events: &[E], key: &DataKey) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| {
            let mut payload = e.to_payload();
            key.seal_fields(&mut payload, &personal::fields(e.event_type()), personal::erased);
            NewEvent::new(Uuid::now_v7(), e.event_type(), e.schema_version(), payload)
        })
        .collect()
}

/// Appends queued in the store's writer, awaited oldest first once `IN_FLIGHT` wait.
#[derive(Default)]
struct InFlight(VecDeque<PendingAppend>);

impl InFlight {
    /// Queues one stream (personal fields sealed with the customer's key, as the API
    /// does).
    async fn append<E: DomainEvent>(
        &mut self,
        store: &EventStore,
        stream: &str,
        events: &[E],
        key: &DataKey,
    ) -> anyhow::Result<u64> {
        let new = encode(events, key);
        let pending = store.submit(
            &StreamId::new(stream)?,
            ExpectedVersion::NoStream,
            &new,
            &Metadata::default(),
        )?;
        self.0.push_back(pending);
        while self.0.len() > IN_FLIGHT {
            if let Some(oldest) = self.0.pop_front() {
                oldest.await?;
            }
        }
        Ok(u64::try_from(new.len())?)
    }

    async fn finish(self) -> anyhow::Result<()> {
        for pending in self.0 {
            pending.await?;
        }
        Ok(())
    }
}

/// Appends customers and complaint lifecycles until at least `events` are stored.
pub async fn seed(store: &EventStore, events: u64) -> anyhow::Result<u64> {
    // Case numbers are issued from 1 here, as in a new year's register.
    anyhow::ensure!(
        store.head_position().await? == 0,
        "seeding needs an empty database: its case numbers would collide with those stored"
    );
    let now = Utc::now();
    // Exactly this many cases, so the newest are the open set and the ones awaiting their
    // callback whatever the size (an estimate that fell short left the newest days empty
    // and the open set to chance); the events come out close to `events`.
    let cases = cases_for(events, now);
    let span = TimeDelta::days(SPAN_DAYS).num_seconds();
    let mut in_flight = InFlight::default();
    let mut sequences: HashMap<i32, u32> = HashMap::new();
    let (mut written, mut n, mut c) = (0u64, 0u64, 0u64);
    let mut current: Option<(CustomerId, DataKey)> = None;
    let mut referrer = None;
    let recent = OPEN_CASES + AWAITING_CALLBACK;
    // Every case counted, and at least the events asked for (rounding may leave a few).
    while n < cases || written < events {
        // The newest cases over the last ten days, the others over the span before.
        let left = cases.saturating_sub(n + 1);
        let age = if left < recent {
            TimeDelta::days(RECENT_DAYS).num_seconds() * i64::try_from(left)?
                / i64::try_from(recent)?
        } else {
            TimeDelta::days(RECENT_DAYS).num_seconds()
                + span * i64::try_from(left)? / i64::try_from(cases)?
        };
        let received = now - TimeDelta::seconds(age) - TimeDelta::hours(1);
        if n % 5 == 0 || current.is_none() {
            let registered = received - TimeDelta::days(1);
            let (customer_events, id) = customer(c, registered, referrer, now);
            let key = store.data_key(&id.to_string()).await?;
            written += in_flight.append(store, &id.stream_name(), &customer_events, &key).await?;
            referrer = current.as_ref().map(|(id, _)| *id).or(Some(id));
            current = Some((id, key));
            c += 1;
        }
        let stage = if left < OPEN_CASES {
            Stage::Open
        } else if left < OPEN_CASES + AWAITING_CALLBACK {
            Stage::AwaitingCallback
        } else if age > TimeDelta::days(ARCHIVE_AFTER_DAYS).num_seconds() {
            Stage::Archived
        } else {
            Stage::CalledBack
        };
        // R-P1: the number is of the year the case is filed in (a receipt at 23:55 on
        // 31 December is filed in the new year).
        let year = (received + FILED_AFTER).year();
        let sequence = sequences.entry(year).or_insert(0);
        *sequence += 1;
        let number = CaseNumber::new(year, *sequence)?;
        let Some((customer_id, key)) = &current else { continue };
        let (complaint_events, id) = case(*customer_id, number, received, n, stage);
        written += in_flight.append(store, &id.stream_name(), &complaint_events, key).await?;
        n += 1;
    }
    in_flight.finish().await?;
    Ok(written)
}
