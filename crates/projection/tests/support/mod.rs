//! Writes domain events the way the API will (fold, decide, append), for read-model tests.
#![allow(dead_code)] // each test binary uses its own part of the kit

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kefu_domain::complaint::*;
use kefu_domain::customer::*;
use kefu_domain::staff::*;
use kefu_domain::*;
use kefu_event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StoreOptions, StreamId};
use kefu_testkit::TestDatabase;
use uuid::Uuid;

/// Monday 2026-03-02 09:00 UTC plus `hours`.
pub fn t(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + TimeDelta::hours(hours)
}

pub fn days(days: i64) -> i64 {
    days * 24
}

pub fn staff(code: &str) -> StaffId {
    StaffId::new(code).unwrap()
}

pub fn text(value: &str) -> Text {
    Text::new("text", value).unwrap()
}

pub async fn open(db: &TestDatabase) -> EventStore {
    EventStore::open(db.url(), StoreOptions::default()).await.unwrap()
}

/// Runs one command against its stream and appends what `decide` returns.
pub async fn exec<A>(
    store: &EventStore,
    stream: &str,
    command: A::Command,
    now: DateTime<Utc>,
) -> u64
where
    A: Aggregate,
    A::Event: DomainEvent,
{
    let stream = StreamId::new(stream).unwrap();
    let recorded = store
        .read_stream(&stream, 1, kefu_event_store::Direction::Forward, usize::MAX)
        .await
        .unwrap();
    let history: Vec<A::Event> = recorded
        .iter()
        .map(|e| A::Event::from_stored(&e.event_type, e.schema_version, &e.payload).unwrap())
        .collect();
    let state = A::fold(&history);
    let events =
        A::decide(&state, command, now).unwrap_or_else(|error| panic!("{stream}: {error}"));
    if events.is_empty() {
        return 0;
    }
    let new: Vec<NewEvent> = events
        .iter()
        .map(|e| NewEvent::new(Uuid::now_v7(), e.event_type(), e.schema_version(), e.to_payload()))
        .collect();
    let version = u64::try_from(recorded.len()).unwrap();
    let expected =
        if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
    store.append(&stream, expected, &new, &Metadata::default()).await.unwrap().last_position
}

pub async fn register_staff(store: &EventStore, code: &str, role: StaffRole) {
    let command = StaffCommand::Register(RegisterStaff {
        staff_id: staff(code),
        name: text(code),
        roles: vec![role],
    });
    exec::<Staff>(store, &staff(code).stream_name(), command, t(0)).await;
}

pub struct NewCustomer {
    pub tier: Tier,
    pub stars: Option<u32>,
    pub referred_by: Option<CustomerId>,
    pub registered: DateTime<Utc>,
}

pub async fn register_customer(store: &EventStore, name: &str, spec: NewCustomer) -> CustomerId {
    let id = CustomerId::generate();
    let command = CustomerCommand::Register(RegisterCustomer {
        customer_id: id,
        name: text(name),
        kind: CustomerKind::Individual,
        contacts: Contacts::new(
            vec!["+86 10 5555 0101".into()],
            vec![],
            None,
            PhoneRegion::default(),
        )
        .unwrap(),
        tier: spec.tier,
        stars: spec.stars.map(|s| StarLevel::new(s).unwrap()),
        source_channel: text("web"),
        referred_by: spec.referred_by,
        referrer_registered: spec.referred_by.is_some(),
        confidentiality: Confidentiality::Internal,
        agent: staff("a1"),
        agent_clearance: Some(Confidentiality::Internal),
    });
    exec::<Customer>(store, &id.stream_name(), command, spec.registered).await;
    id
}

/// `duplicate` merged into `survivor` (the API writes both events as one group).
pub async fn merge_customers(
    store: &EventStore,
    duplicate: CustomerId,
    survivor: CustomerId,
    also: Vec<CustomerId>,
    at: DateTime<Utc>,
) {
    let reason = text("same person");
    let merge = CustomerCommand::MergeInto(MergeInto { survivor, reason: reason.clone() });
    exec::<Customer>(store, &duplicate.stream_name(), merge, at).await;
    // The fixtures merge at one level: a merge never lowers one (R-C6).
    let duplicate_level = Confidentiality::Public;
    let absorb = CustomerCommand::Absorb(Absorb {
        duplicate,
        also,
        duplicate_level,
        duplicate_work: vec![],
    });
    exec::<Customer>(store, &survivor.stream_name(), absorb, at).await;
}

pub async fn forget_customer(store: &EventStore, id: CustomerId, at: DateTime<Utc>) {
    let command = CustomerCommand::Forget(ForgetCustomer { reason: text("erasure request") });
    exec::<Customer>(store, &id.stream_name(), command, at).await;
}

pub async fn contact_customer(store: &EventStore, id: CustomerId, at: DateTime<Utc>) {
    let command = CustomerCommand::RecordContact(RecordContact {
        by: staff("a1"),
        channel: ContactChannel::Phone,
        note: None,
        contacted_at: at,
    });
    exec::<Customer>(store, &id.stream_name(), command, at).await;
}

pub async fn customer_callback(
    store: &EventStore,
    id: CustomerId,
    outcome: CallbackOutcome,
    score: Option<u32>,
    at: DateTime<Utc>,
) {
    let command = CustomerCommand::LogCallback(LogCallback {
        kind: CallbackKind::Routine,
        channel: CallbackChannel::Phone,
        party: None,
        outcome,
        score: score.map(|s| Score::new(s).unwrap()),
        comment: None,
        by: staff("a1"),
        called_at: at,
    });
    exec::<Customer>(store, &id.stream_name(), command, at).await;
}

/// A complaint's stream, and the commands of its life.
pub struct Case {
    pub id: ComplaintId,
}

impl Case {
    pub fn stream(&self) -> String {
        self.id.stream_name()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn file(
        store: &EventStore,
        sequence: u32,
        customer: CustomerId,
        category: &str,
        cause: &str,
        channel: IntakeChannel,
        severity: Severity,
        received: DateTime<Utc>,
    ) -> Case {
        let case = Case { id: ComplaintId::generate() };
        let command = ComplaintCommand::File(FileComplaint {
            complaint_id: case.id,
            case_number: CaseNumber::new(2026, sequence).unwrap(),
            customer_id: customer,
            category: text(category),
            cause: text(cause),
            severity,
            channel,
            description: text("what happened"),
            respondent: None,
            attachments: vec![],
            received_at: received,
            policy: PolicyBook::new().current(),
            tier: Tier::Regular,
            from_request: None,
        });
        exec::<Complaint>(store, &case.stream(), command, received).await;
        case
    }

    pub async fn run(
        &self,
        store: &EventStore,
        command: ComplaintCommand,
        at: DateTime<Utc>,
    ) -> u64 {
        exec::<Complaint>(store, &self.stream(), command, at).await
    }

    pub async fn assign(&self, store: &EventStore, handler: &str, at: DateTime<Utc>) {
        self.run(
            store,
            ComplaintCommand::AssignHandler(AssignHandler {
                handler: staff(handler),
                reason: None,
                handler_cleared: true,
            }),
            at,
        )
        .await;
    }

    pub async fn contact(&self, store: &EventStore, at: DateTime<Utc>) {
        // Before a handler is assigned, as someone stepping in.
        let command = ComplaintCommand::ContactComplainant(ContactComplainant {
            by: Actor::stepping_in(staff("a1")),
            channel: ContactChannel::Phone,
            summary: text("arranged"),
            contacted_at: at,
        });
        self.run(store, command, at).await;
    }

    /// Investigation, draft, signature by `handler`, two materials (R-P2, the second
    /// superseding the first), the implementation (R-P9), final letter, close — all at `at`.
    pub async fn handle_and_close(&self, store: &EventStore, handler: &str, at: DateTime<Utc>) {
        let commands = [
            ComplaintCommand::RecordInvestigation(RecordInvestigation {
                by: Actor::handler(staff(handler)),
                findings: text("f"),
            }),
            ComplaintCommand::DraftOpinion(DraftOpinion {
                specialist: staff("sp1"),
                opinion: text("o"),
            }),
            ComplaintCommand::SignOpinion(SignOpinion {
                signer: staff(handler),
                capacity: SignerCapacity::Handler,
                decision: text("d"),
                remedy: None,
                meeting: None,
                members: Vec::new(),
                committee_quorum: 3,
            }),
            ComplaintCommand::AddMaterial(AddMaterial {
                by: staff(handler),
                material: MaterialRef::new("doc://m", "application/pdf", 10, &"ab".repeat(32))
                    .unwrap(),
                supersedes: None,
                reason: None,
            }),
            ComplaintCommand::AddMaterial(AddMaterial {
                by: staff(handler),
                material: MaterialRef::new("doc://m", "application/pdf", 10, &"ab".repeat(32))
                    .unwrap(),
                supersedes: Some(1),
                reason: Some(text("newer")),
            }),
            ComplaintCommand::RecordImplementation(RecordImplementation {
                by: staff("sp1"),
                summary: text("done"),
                implemented_at: at,
            }),
            ComplaintCommand::SendReply(SendReply {
                by: Actor::handler(staff(handler)),
                kind: ReplyKind::Final,
                channel: ContactChannel::Letter,
                summary: text("decision"),
            }),
            ComplaintCommand::Close(CloseComplaint {
                by: Actor::handler(staff(handler)),
                summary: None,
                policy: PolicyBook::new().current(),
            }),
        ];
        for command in commands {
            self.run(store, command, at).await;
        }
    }

    pub async fn callback(
        &self,
        store: &EventStore,
        outcome: CallbackOutcome,
        score: Option<u32>,
        at: DateTime<Utc>,
    ) -> u64 {
        let command = ComplaintCommand::LogCallback(LogCallback {
            kind: CallbackKind::Complaint,
            channel: CallbackChannel::Phone,
            party: Some(CallbackParty::Complainant),
            outcome,
            score: score.map(|s| Score::new(s).unwrap()),
            comment: None,
            by: staff("a1"),
            called_at: at,
        });
        self.run(store, command, at).await
    }
}

/// A service request of `customer` received at `at` by agent `a1` (issue 22), answered
/// after `answered` hours if given, resolved after `resolved` hours if given.
pub async fn service_request(
    store: &EventStore,
    customer: CustomerId,
    at: DateTime<Utc>,
    answered: Option<i64>,
    resolved: Option<i64>,
) -> ServiceRequestId {
    use kefu_domain::request::*;
    let id = ServiceRequestId::generate();
    let stream = id.stream_name();
    let receive = RequestCommand::Receive(ReceiveRequest {
        request_id: id,
        customer_id: customer,
        kind: RequestKind::AfterSale,
        channel: IntakeChannel::Phone,
        category: text("product"),
        description: text("the heater leaks"),
        received_at: at,
        policy: PolicyBook::new().current(),
        tier: Tier::Regular,
        agent: staff("a1"),
        agent_cleared: true,
    });
    exec::<ServiceRequest>(store, &stream, receive, at).await;
    let by = RequestActor { staff: staff("a1"), stepping_in: false };
    if let Some(hours) = answered {
        let respond = RequestCommand::Respond(RespondToRequest {
            by: by.clone(),
            channel: ContactChannel::Phone,
            summary: text("a technician comes"),
            responded_at: at + TimeDelta::hours(hours),
        });
        exec::<ServiceRequest>(store, &stream, respond, at + TimeDelta::hours(hours)).await;
    }
    if let Some(hours) = resolved {
        let resolve = RequestCommand::Resolve(ResolveRequest {
            by,
            summary: text("valve replaced"),
            policy: PolicyBook::new().current(),
        });
        exec::<ServiceRequest>(store, &stream, resolve, at + TimeDelta::hours(hours)).await;
    }
    id
}
