//! The world a sequence plays in: a real server over a fresh database with a clock the
//! test moves, clients per principal, and the minimal model of what must be true (what
//! exists, who left, what was acknowledged), with the checks every write goes through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use kefu_api::pb;
use kefu_event_store::{EventStore, StoreOptions};
use kefu_projection::{projections_in, Runner};
use kefu_testkit::Backend;
use kefu_tests::{reason, violated_fields, Clients, TestApp, PRINCIPALS};
use tonic::{Code, Status};

use super::calls::{send, Ack, Call, Sent};

/// Where every sequence's clock starts: eleven days before New Year, so day-long
/// advances cross it too.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 20, 9, 0, 0).unwrap()
}

/// A server clock the test moves: every reading is 10 µs after the one before (time
/// never stands still, so a call may straddle midnight), plus the test's jumps.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(AtomicI64::new(start().timestamp_micros())))
    }

    /// The next reading, without moving the clock.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).expect("in range")
    }

    /// Moves the clock to `at` if that is later.
    pub fn jump_to(&self, at: DateTime<Utc>) {
        self.0.fetch_max(at.timestamp_micros(), Ordering::SeqCst);
    }

    fn clock(&self) -> kefu_api::Clock {
        let micros = self.0.clone();
        Arc::new(move || {
            let reading = micros.fetch_add(10, Ordering::SeqCst);
            DateTime::from_timestamp_micros(reading).unwrap_or(DateTime::<Utc>::MAX_UTC)
        })
    }
}

/// A staff member the sequence knows.
#[derive(Debug, Clone)]
pub struct StaffModel {
    pub code: String,
    pub departed: bool,
}

#[derive(Debug, Clone)]
pub struct CustomerModel {
    pub id: String,
    pub forgotten: bool,
}

#[derive(Debug, Clone)]
pub struct CaseModel {
    pub id: String,
    pub number: String,
    pub customer: String,
    pub handler: Option<String>,
    pub respondent: Option<String>,
}

/// An accepted write: what was sent, what it answered, and whether it moved the log.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub sent: Sent,
    pub ack: Ack,
    pub wrote: bool,
}

pub struct World {
    pub app: TestApp,
    /// The log and read models as the test sees them, beside the server.
    pub store: EventStore,
    pub runner: Runner,
    pub clock: TestClock,
    /// The business time zone the server runs in: case years are local to it (R-T1).
    pub zone: chrono_tz::Tz,
    clients: HashMap<&'static str, Clients>,
    pub staff: Vec<StaffModel>,
    pub customers: Vec<CustomerModel>,
    pub cases: Vec<CaseModel>,
    pub accepted: Vec<Accepted>,
    pub rebuilds: Vec<tokio::task::JoinHandle<()>>,
    /// The step being played, for messages.
    pub step: usize,
    /// Refused writes, for the summary.
    pub refused: usize,
    /// Why writes were refused, by RPC, code and reason, for the summary.
    pub refusals: std::collections::BTreeMap<String, usize>,
}

/// Codes a caller may get; any other (CANCELLED from a panic, UNKNOWN, INTERNAL, a
/// DEADLINE_EXCEEDED from a stopped projection…) breaks a promise.
const ALLOWED: &[Code] = &[
    Code::Ok,
    Code::InvalidArgument,
    Code::FailedPrecondition,
    Code::NotFound,
    Code::AlreadyExists,
    Code::Aborted,
    Code::PermissionDenied,
];

#[track_caller]
pub fn allowed(status: &Status, what: &str) {
    assert!(ALLOWED.contains(&status.code()), "{what}: a caller never gets this: {status:?}");
}

/// The `&'static` name of a principal of the test tokens file.
pub fn principal(name: &str) -> Option<&'static str> {
    PRINCIPALS.iter().map(|(p, _, _)| *p).find(|p| *p == name)
}

impl World {
    /// A fresh server on `backend` with the standard staff; `None` when PostgreSQL
    /// cannot be had outside CI.
    pub async fn new(backend: Backend) -> Option<World> {
        let clock = TestClock::new();
        let server_clock = clock.clock();
        let zone = kefu_domain::Policy::default().time_zone;
        let app = kefu_tests::spawn_app_with(backend, move |settings, dir| {
            kefu_tests::without_read_rate(settings, dir);
            settings.clock = Some(server_clock);
            settings.policy.time_zone = zone;
        })
        .await?;
        kefu_tests::flows::standard_staff(&app).await;
        let store = EventStore::open(app.db.url(), StoreOptions::default()).await.expect("open");
        let projections = projections_in(zone, kefu_domain::PhoneRegion::default());
        let runner = Runner::new(store.clone(), projections);
        let staff = ["a1", "a2", "h1", "h2", "r1"]
            .iter()
            .map(|code| StaffModel { code: (*code).to_owned(), departed: false })
            .collect();
        Some(World {
            app,
            store,
            runner,
            clock,
            zone,
            clients: HashMap::new(),
            staff,
            customers: Vec::new(),
            cases: Vec::new(),
            accepted: Vec::new(),
            rebuilds: Vec::new(),
            step: 0,
            refused: 0,
            refusals: Default::default(),
        })
    }

    /// What every sequence starts from besides the staff: two customers and a case,
    /// through the same checked writes as the steps.
    pub async fn seed(&mut self) {
        for agent in ["a1", "a2"] {
            let request =
                kefu_tests::flows::customer_request("Seed", pb::Confidentiality::Internal, agent);
            let ack = self.write("a1", Call::RegisterCustomer(request)).await;
            let result = ack.and_then(|ack| ack.result).expect("a seed customer");
            self.customers.push(CustomerModel { id: result.id, forgotten: false });
        }
        let customer = self.customers[0].id.clone();
        let request = kefu_tests::flows::file_request(&customer, pb::Severity::Normal, "r1");
        let ack = self.write("a1", Call::FileComplaint(request)).await.expect("a seed case");
        self.cases.push(CaseModel {
            id: ack.result.expect("result").id,
            number: ack.case_number.expect("a case number"),
            customer,
            handler: None,
            respondent: Some("r1".into()),
        });
    }

    pub async fn clients(&mut self, principal: &'static str) -> Clients {
        if let Some(clients) = self.clients.get(principal) {
            return clients.clone();
        }
        let clients = self.app.clients(Some(principal)).await;
        self.clients.insert(principal, clients.clone());
        clients
    }

    pub async fn head(&self) -> u64 {
        self.store.head_position().await.expect("head")
    }

    /// Sends one write and checks what every answer promises: an allowed code; a
    /// refusal changes nothing; an assignment to a leaver is never accepted; an
    /// acceptance is in the log and in the reads. The acknowledgement, if any.
    pub async fn write(&mut self, principal: &'static str, call: Call) -> Option<Ack> {
        let mut clients = self.clients(principal).await;
        let before = self.head().await;
        let answer = send(&mut clients, call.clone()).await;
        let after = self.head().await;
        let what = format!("step {}: {principal} {call:?}", self.step);
        let what = truncated(&what);
        match answer {
            Err(status) => {
                allowed(&status, &what);
                assert_eq!(after, before, "{what}: refused ({status:?}) yet the log moved");
                self.refused += 1;
                let rpc = format!("{call:?}");
                let rpc = rpc.split('(').next().unwrap_or_default();
                let why = reason(&status).unwrap_or_default();
                let why = format!("{principal} {rpc} {:?} {why}", status.code());
                *self.refusals.entry(why).or_default() += 1;
                None
            }
            Ok(ack) => {
                self.assigned_to_leaver(&call, &what);
                let wrote = after > before;
                if let Some(result) = &ack.result {
                    if wrote {
                        assert!(
                            result.position > before && result.position <= after,
                            "{what}: position {} outside ({before}, {after}]",
                            result.position
                        );
                    }
                }
                let sent = Sent { principal, call };
                if wrote {
                    self.visible(&sent, &ack, &what).await;
                }
                self.accepted.push(Accepted { sent, ack: ack.clone(), wrote });
                Some(ack)
            }
        }
    }

    /// Checks a refusal of a call with a stated time outside the time domain.
    #[track_caller]
    pub fn refused_time(status: &Status, field: &str, what: &str) {
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(violated_fields(status).iter().any(|f| f == field), "{what}: {status:?}");
    }

    /// An assignment to someone the model saw leave was accepted: never right (R-C3).
    fn assigned_to_leaver(&self, call: &Call, what: &str) {
        let assignee = match call {
            Call::AssignAgent(r) => &r.agent,
            Call::AssignHandler(r) => &r.handler,
            Call::RegisterCustomer(r) => &r.agent,
            _ => return,
        };
        let departed = self.staff.iter().any(|s| s.departed && &s.code == assignee);
        assert!(!departed, "{what}: work assigned to {assignee}, who has left");
    }

    /// An accepted write that moved the log is at its position in the log under its
    /// key, and the read models show it once they reach that position.
    async fn visible(&mut self, sent: &Sent, ack: &Ack, what: &str) {
        let Some(result) = &ack.result else { return };
        let events = self.store.read_all(result.position, 1).await.expect("read the log");
        let event = events.first().unwrap_or_else(|| panic!("{what}: not in the log"));
        assert_eq!(event.position, result.position, "{what}");
        if !matches!(sent.call, Call::RecordDeparture(_)) {
            assert_eq!(
                event.metadata.request_id.as_deref(),
                Some(sent.call.request_id()),
                "{what}: the event at the answer's position is another request's"
            );
        }
        if self.rebuilding() {
            // A read that waited for `min_position` can run just after a racing rebuild
            // reset the tables (the wait and the query are not one snapshot): the reads
            // are checked again at the end, after the rebuilds (a known gap, reported).
            return;
        }
        let id = result.id.clone();
        let position = result.position;
        let is_case = self.cases.iter().any(|c| c.id == id);
        if is_case || matches!(sent.call, Call::FileComplaint(_)) {
            let case = self.listed_case(&id, position).await;
            let case = case.unwrap_or_else(|| panic!("{what}: case not listed"));
            shows_case(&sent.call, ack, &case, what);
        } else if let Some(customer) = self.customers.iter().find(|c| c.id == id) {
            let forgotten = customer.forgotten || matches!(sent.call, Call::ForgetCustomer(_));
            match self.listed_customer(&id, position).await {
                Some(listed) if !forgotten => shows_customer(&sent.call, &listed, what),
                None if forgotten => {}
                other => panic!("{what}: forgotten {forgotten}, listed {other:?}"),
            }
        } else if matches!(sent.call, Call::RegisterCustomer(_)) {
            let listed = self.listed_customer(&id, position).await;
            assert!(listed.is_some(), "{what}: the new customer is not listed");
        } else if matches!(sent.call, Call::RegisterStaff(_) | Call::RecordDeparture(_)) {
            let staff = self.listed_staff(position).await;
            let member = staff.iter().find(|s| s.staff_id == id);
            let member = member.unwrap_or_else(|| panic!("{what}: staff not listed"));
            let departing = matches!(sent.call, Call::RecordDeparture(_));
            assert_eq!(member.active, !departing, "{what}: {member:?}");
        }
    }

    /// Whether a rebuild started by a step is still running.
    pub fn rebuilding(&self) -> bool {
        self.rebuilds.iter().any(|rebuild| !rebuild.is_finished())
    }

    /// The case as ListComplaints shows it once the read models reach `position`.
    pub async fn listed_case(&mut self, id: &str, position: u64) -> Option<pb::Complaint> {
        let mut compliance = self.clients("co1").await;
        let mut page_token = String::new();
        loop {
            let page = compliance
                .complaints
                .list_complaints(pb::ListComplaintsRequest {
                    page_size: 500,
                    page_token,
                    min_position: position,
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|s| panic!("step {}: list complaints: {s:?}", self.step))
                .into_inner();
            if let Some(case) = page.complaints.into_iter().find(|c| c.complaint_id == id) {
                return Some(case);
            }
            if page.next_page_token.is_empty() {
                return None;
            }
            page_token = page.next_page_token;
        }
    }

    /// The customer as ListCustomers shows it once the read models reach `position`.
    pub async fn listed_customer(&mut self, id: &str, position: u64) -> Option<pb::Customer> {
        let customers = self.listed_customers(position, "").await;
        customers.into_iter().find(|c| c.customer_id == id)
    }

    /// Every customer ListCustomers shows (of `agent` when not empty) at `position`.
    pub async fn listed_customers(&mut self, position: u64, agent: &str) -> Vec<pb::Customer> {
        let mut compliance = self.clients("co1").await;
        let mut listed = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = compliance
                .customers
                .list_customers(pb::ListCustomersRequest {
                    page_size: 500,
                    page_token,
                    min_position: position,
                    agent: agent.to_owned(),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|s| panic!("step {}: list customers: {s:?}", self.step))
                .into_inner();
            listed.extend(page.customers);
            if page.next_page_token.is_empty() {
                return listed;
            }
            page_token = page.next_page_token;
        }
    }

    pub async fn listed_staff(&mut self, position: u64) -> Vec<pb::StaffMember> {
        let mut supervisor = self.clients("s1").await;
        let listed = supervisor
            .staff
            .list_staff(pb::ListStaffRequest { include_departed: true, min_position: position })
            .await
            .unwrap_or_else(|s| panic!("step {}: list staff: {s:?}", self.step));
        listed.into_inner().staff
    }

    /// What the sequence did, for `--nocapture` runs: accepted writes by RPC.
    pub fn summary(&self) -> String {
        let mut by_rpc: std::collections::BTreeMap<String, usize> = Default::default();
        for accepted in self.accepted.iter().filter(|a| a.wrote) {
            let call = format!("{:?}", accepted.sent.call);
            let rpc = call.split('(').next().unwrap_or_default().to_owned();
            *by_rpc.entry(rpc).or_default() += 1;
        }
        let numbers: Vec<&str> = self.cases.iter().map(|c| c.number.as_str()).collect();
        format!(
            "{} steps, {} refused, cases {numbers:?}, written {by_rpc:?}, refused {:?}",
            self.step + 1,
            self.refused,
            self.refusals,
        )
    }

    /// No projection has stopped (DESIGN.md: a projection that cannot apply an event
    /// stops alone and says so; here none may).
    pub async fn no_projection_stopped(&self) {
        for status in self.runner.status().await.expect("projection status") {
            assert!(status.stopped.is_none(), "step {}: stopped: {status:?}", self.step);
        }
    }

    /// A refusal naming `reason`, which changed nothing (checked by the caller).
    #[track_caller]
    pub fn refused_for(status: &Status, code: Code, expected: &str, what: &str) {
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert_eq!(reason(status).as_deref(), Some(expected), "{what}: {status:?}");
    }
}

/// `text` cut to a readable length (a 200 kB name makes a long message).
pub fn truncated(text: &str) -> String {
    if text.len() <= 600 {
        return text.to_owned();
    }
    let mut end = 600;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The list shows what an accepted customer write changed (lists carry no stream
/// version, so the changed fields say it).
fn shows_customer(call: &Call, listed: &pb::Customer, what: &str) {
    let shown = match call {
        Call::UpdateCustomer(r) => r.name.as_ref().is_none_or(|name| &listed.name == name),
        Call::GradeCustomer(r) => listed.tier == r.tier && listed.stars == r.stars,
        Call::AssignAgent(r) => listed.agent == r.agent,
        Call::RecordContact(_) => listed.first_contact_at.is_some(),
        _ => true,
    };
    assert!(shown, "{what}: listed {listed:?}");
}

/// The list shows what an accepted case write changed.
fn shows_case(call: &Call, ack: &Ack, listed: &pb::Complaint, what: &str) {
    let open = pb::ComplaintStatus::Open as i32;
    let shown = match call {
        Call::FileComplaint(_) => Some(&listed.case_number) == ack.case_number.as_ref(),
        Call::AssignHandler(r) => listed.handler == r.handler,
        Call::ContactComplainant(_) => listed.first_response_at.is_some(),
        Call::CloseComplaint(_) => listed.status == pb::ComplaintStatus::Closed as i32,
        Call::ReopenComplaint(_) => listed.status == open && listed.reopen_count > 0,
        _ => true,
    };
    assert!(shown, "{what}: listed {listed:?}");
}
