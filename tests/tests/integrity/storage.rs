//! Integrity under races and failures, over a real socket on both backends: case
//! numbers across midnight on 31 December, filings beside a busy customer, and a
//! projection that stops alone (health per projection, waits that fail at once).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kefu_api::pb;
use kefu_domain::case_register::{self, CaseRegisterEvent};
use kefu_domain::DomainEvent;
use kefu_event_store::{
    Direction, EventStore, ExpectedVersion, Metadata, NewEvent, StoreOptions, StreamId,
};
use kefu_testkit::Backend;
use kefu_tests::flows::*;
use kefu_tests::{reason, rid, spawn_app_with, TestApp};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

kefu_tests::on_both_backends!(
    filings_succeed_while_a_customer_is_contacted,
    a_stopped_projection_is_named_and_fails_waits_at_once,
);

mod sqlite_new_year {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn filings_across_midnight_are_numbered_once_in_their_own_year() {
        super::filings_across_midnight(kefu_testkit::Backend::Sqlite).await;
    }
}

mod postgres_new_year {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn filings_across_midnight_are_numbered_once_in_their_own_year() {
        super::filings_across_midnight(kefu_testkit::Backend::Postgres).await;
    }
}

/// A clock the test moves: a start, plus `step` microseconds more on every reading.
#[derive(Clone)]
struct SteppingClock {
    micros: Arc<AtomicI64>,
    step: Arc<AtomicI64>,
}

impl SteppingClock {
    fn at(start: DateTime<Utc>) -> Self {
        SteppingClock {
            micros: Arc::new(AtomicI64::new(start.timestamp_micros())),
            step: Arc::new(AtomicI64::new(0)),
        }
    }

    fn set(&self, at: DateTime<Utc>, step_micros: i64) {
        self.micros.store(at.timestamp_micros(), Ordering::SeqCst);
        self.step.store(step_micros, Ordering::SeqCst);
    }

    fn clock(&self) -> kefu_api::Clock {
        let this = self.clone();
        Arc::new(move || {
            let step = this.step.load(Ordering::SeqCst);
            let micros = this.micros.fetch_add(step, Ordering::SeqCst);
            DateTime::from_timestamp_micros(micros).expect("in range")
        })
    }
}

const FILERS: usize = 32;
const FILINGS_PER_FILER: usize = 8;

/// Concurrent filings while the injected clock crosses from 31 December 23:59:59.99x
/// into 1 January: every case number is unique, each is in the register of its own
/// year and of the filing's year, and the read models keep going.
async fn filings_across_midnight(backend: Backend) {
    // Midnight in the business time zone (R-T1; Asia/Shanghai by default): 16:00 UTC.
    let zone = kefu_domain::Policy::default().time_zone;
    let new_year = zone.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
    let clock = SteppingClock::at(new_year - chrono::TimeDelta::hours(1));
    let clock_for_app = clock.clock();
    let Some(app) = spawn_app_with(backend, move |settings, _| {
        settings.clock = Some(clock_for_app);
    })
    .await
    else {
        return;
    };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut customers = Vec::new();
    for n in 0..FILERS {
        customers.push(register_customer(&mut agent, &format!("New Year {n}")).await);
    }
    // From 1 ms before midnight on, every reading of the clock is 10 µs later: the
    // 256 filings below read it at least once each, so midnight falls among them.
    // Contacts recorded on one customer meanwhile make filings retry (a refused group
    // fails the numbers queued behind it), as any busy day does.
    clock.set(new_year - chrono::TimeDelta::milliseconds(1), 10);
    let contacts = {
        let mut clients = app.clients(Some("a1")).await;
        let busy = customers[0].clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                let contact = pb::RecordContactRequest {
                    request_id: rid(),
                    customer_id: busy.clone(),
                    expected_version: None,
                    channel: pb::ContactChannel::Phone as i32,
                    note: String::new(),
                    contacted_at: None,
                };
                clients.customers.record_contact(contact).await.expect("contact");
            }
        })
    };
    let mut filers = Vec::new();
    for customer in customers {
        let mut clients = app.clients(Some("a1")).await;
        filers.push(tokio::spawn(async move {
            let mut filed = Vec::new();
            for _ in 0..FILINGS_PER_FILER {
                let answer = clients
                    .complaints
                    .file_complaint(file_request(&customer, pb::Severity::Normal, ""))
                    .await
                    .map(|answer| answer.into_inner());
                filed.push(answer.map(|answer| {
                    let result = answer.result.expect("result");
                    (result.id, answer.case_number, result.position)
                }));
            }
            filed
        }));
    }
    let mut answers = Vec::new();
    for filer in filers {
        answers.extend(filer.await.unwrap());
    }
    contacts.await.unwrap();
    let (filed, failed): (Vec<_>, Vec<_>) = answers.into_iter().partition(Result::is_ok);
    let filed: Vec<(String, String, u64)> = filed.into_iter().flatten().collect();
    let numbers: Vec<&str> = filed.iter().map(|(_, number, _)| number.as_str()).collect();
    let unique: HashSet<&str> = numbers.iter().copied().collect();
    assert_eq!(unique.len(), numbers.len(), "case numbers issued twice: {numbers:?}");
    let failed: Vec<tonic::Status> = failed.into_iter().filter_map(Result::err).collect();
    assert!(failed.is_empty(), "every filing succeeds: {failed:?}");
    let years: HashSet<&str> = unique.iter().map(|number| &number[..4]).collect();
    assert_eq!(years, HashSet::from(["2026", "2027"]), "the filings straddle midnight");

    // Each register holds only its own year's numbers, each issued once.
    let store = EventStore::open(app.db.url(), StoreOptions::default()).await.unwrap();
    let mut issued: HashMap<String, i32> = HashMap::new();
    for year in [2026, 2027] {
        let register = StreamId::new(case_register::stream_name(year)).unwrap();
        for stored in store.read_stream(&register, 1, Direction::Forward, usize::MAX).await.unwrap()
        {
            let event = CaseRegisterEvent::from_stored(
                &stored.event_type,
                stored.schema_version,
                &stored.payload,
            )
            .unwrap();
            let CaseRegisterEvent::CaseNumberIssued(number) = event;
            assert_eq!(
                number.case_number.year(),
                year,
                "{} in the {year} register",
                number.case_number
            );
            assert_eq!(
                case_register::case_year(
                    number.issued_at,
                    kefu_domain::Policy::default().time_zone
                ),
                year,
                "issued in its year"
            );
            let previous = issued.insert(number.case_number.to_string(), year);
            assert!(previous.is_none(), "{} issued twice", number.case_number);
        }
    }
    assert_eq!(issued.len(), filed.len());

    // The read models keep going, and each case was filed in its number's year.
    let last = filed.iter().map(|(_, _, position)| *position).max().unwrap();
    let mut supervisor = app.clients(Some("s1")).await;
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = supervisor
            .complaints
            .list_complaints(pb::ListComplaintsRequest {
                page_size: 500,
                page_token: page_token.clone(),
                min_position: last,
                ..Default::default()
            })
            .await
            .expect("the read models caught up")
            .into_inner();
        listed.extend(page.complaints);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(listed.len(), filed.len());
    for case in &listed {
        let filed_at = case.filed_at.as_ref().expect("filed_at");
        let filed_at = DateTime::from_timestamp(filed_at.seconds, 0).unwrap();
        assert_eq!(
            case.case_number[..4],
            case_register::case_year(filed_at, kefu_domain::Policy::default().time_zone)
                .to_string()
        );
    }
    app.stop().await;
}

/// R-P1 filings without `expected_version` never fail for contention they did not
/// cause: while contacts are recorded on one customer without pause until the last
/// filing has answered (each moves their stream), filings for that very customer and
/// for others all succeed within their deadline.
async fn filings_succeed_while_a_customer_is_contacted(app: &TestApp) {
    use std::sync::atomic::AtomicBool;
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let busy = register_customer(&mut agent, "Busy").await;
    let mut customers = vec![busy.clone()];
    for n in 0..3 {
        customers.push(register_customer(&mut agent, &format!("Quiet {n}")).await);
    }
    let filed = Arc::new(AtomicBool::new(false));
    let mut contacts = Vec::new();
    // One contact after another, as an agent's tool in a loop would (two at once would
    // contend with each other, which is theirs to retry).
    for _ in 0..1 {
        let (busy, filed) = (busy.clone(), filed.clone());
        let mut clients = app.clients(Some("a1")).await;
        contacts.push(tokio::spawn(async move {
            let mut contacts = 0;
            while !filed.load(Ordering::SeqCst) {
                let contact = pb::RecordContactRequest {
                    request_id: rid(),
                    customer_id: busy.clone(),
                    expected_version: None,
                    channel: pb::ContactChannel::Phone as i32,
                    note: String::new(),
                    contacted_at: None,
                };
                clients.customers.record_contact(contact).await.expect("contact");
                contacts += 1;
            }
            contacts
        }));
    }
    let mut filers = Vec::new();
    for filer in 0..6 {
        let mut clients = app.clients(Some("a1")).await;
        let customers = customers.clone();
        filers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for n in 0..30 {
                // Every other filing is for the customer being contacted.
                let customer = if n % 2 == 0 { &customers[0] } else { &customers[1 + filer % 3] };
                let mut request =
                    tonic::Request::new(file_request(customer, pb::Severity::Normal, ""));
                request.set_timeout(Duration::from_secs(10));
                if let Err(status) = clients.complaints.file_complaint(request).await {
                    failures.push((status.code(), status.message().to_owned()));
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for filer in filers {
        failures.extend(filer.await.unwrap());
    }
    filed.store(true, Ordering::SeqCst);
    let mut contacted = 0;
    for contacts in contacts {
        contacted += contacts.await.unwrap();
    }
    assert!(contacted > 0);
    assert!(failures.is_empty(), "{} of 180 filings failed: {failures:?}", failures.len());
}

/// A `ComplaintFiled` the complaints read model cannot decode, stored beside the
/// server as another writer would.
async fn append_unreadable_filing(app: &TestApp) -> u64 {
    let store = EventStore::open(app.db.url(), StoreOptions::default()).await.unwrap();
    let stream = StreamId::new(format!("complaint-{}", uuid::Uuid::now_v7())).unwrap();
    let event = NewEvent::new(
        uuid::Uuid::now_v7(),
        "ComplaintFiled",
        1,
        serde_json::json!({"refused": true}),
    );
    let appended = store
        .append(&stream, ExpectedVersion::NoStream, &[event], &Metadata::default())
        .await
        .unwrap();
    appended.last_position
}

async fn health_of(app: &TestApp, service: &str) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = HealthCheckRequest { service: service.to_owned() };
    let answer = HealthClient::new(channel).check(request).await.expect("health");
    answer.into_inner().status()
}

async fn a_stopped_projection_is_named_and_fails_waits_at_once(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Before").await;
    let (_, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    let unreadable = append_unreadable_filing(app).await;
    // Health names the stopped projection (it is looked at every second).
    let mut looks = 0;
    while health_of(app, "kefu.projection.complaints").await != ServingStatus::NotServing {
        looks += 1;
        assert!(looks < 300, "complaints never reported NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for service in [
        "kefu.projection.customers",
        "kefu.projection.staff",
        "",
        "kefu.liveness",
        "kefu.v1.EventService",
    ] {
        assert_eq!(health_of(app, service).await, ServingStatus::Serving, "{service}");
    }
    // The services that read the read models are not ready (see tests/health.rs).
    let readers = health_of(app, "kefu.v1.ComplaintService").await;
    assert_eq!(readers, ServingStatus::NotServing);
    // The others go on: a customer registered after the event is listed, read-your-writes.
    let after = agent
        .customers
        .register_customer(customer_request("After", pb::Confidentiality::Internal, "a1"))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    assert!(after.position > unreadable);
    let listed = agent
        .customers
        .list_customers(pb::ListCustomersRequest {
            min_position: after.position,
            ..Default::default()
        })
        .await
        .expect("customers are not held up by complaints")
        .into_inner();
    assert!(listed.customers.iter().any(|c| c.customer_id == after.id));
    // A wait on complaints past the event fails at once, naming what stopped and where
    // (the server waits up to 10 s for `min_position`: a wait would end DEADLINE_EXCEEDED).
    let mut supervisor = app.clients(Some("s1")).await;
    let waited = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            min_position: after.position,
            ..Default::default()
        })
        .await
        .expect_err("complaints stopped before this position");
    assert_eq!(waited.code(), Code::FailedPrecondition, "{waited:?}");
    assert_eq!(reason(&waited).as_deref(), Some("PROJECTION_STOPPED"), "{waited:?}");
    assert!(waited.message().contains("complaints"), "{waited:?}");
    // Below the event it still answers.
    supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            min_position: unreadable - 1,
            ..Default::default()
        })
        .await
        .expect("complaints up to the event");
}
