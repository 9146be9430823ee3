//! Integrity over gRPC (issue 15): stated times stay in one time domain, `as_of` at the
//! edges is refused, a reused request id never hides a command, archiving never traps a
//! callback, an erasure is never half-done. Departures and handovers: `departures.rs`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::flows::*;
use kefu_tests::{reason, rid, violated_fields, Clients, TestApp};
use prost_types::Timestamp;
use tonic::Code;

kefu_tests::on_both_backends!(
    stated_times_outside_the_time_domain_are_refused_naming_the_field,
    a_legacy_event_at_year_minus_one_does_not_stop_the_projections,
    a_contact_before_the_receipt_is_refused_and_the_breach_stays,
    a_request_id_reused_for_another_command_is_refused,
    a_failed_erasure_leaves_nothing_half_done_and_its_retry_completes_it,
    a_retried_archive_names_the_cases_it_archived,
    a_request_id_of_a_forgotten_customer_is_never_answered_for_another_request,
);

// 28 reports and replays in a row from two principals, as inputs: on a server without
// the per-principal rate of expensive reads, which would refuse the surplus before `as_of`
// is looked at (tests/tests/limits.rs).
mod sqlite_as_of {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn as_of_at_chronos_edges_is_invalid_argument() {
        let backend = kefu_testkit::Backend::Sqlite;
        let app = kefu_tests::spawn_app_with(backend, kefu_tests::without_read_rate).await;
        let app = app.expect("sqlite");
        super::as_of_at_chronos_edges_is_invalid_argument(&app).await;
        app.stop().await;
    }
}

mod postgres_as_of {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn as_of_at_chronos_edges_is_invalid_argument() {
        let backend = kefu_testkit::Backend::Postgres;
        let app = kefu_tests::spawn_app_with(backend, kefu_tests::without_read_rate).await;
        let Some(app) = app else { return };
        super::as_of_at_chronos_edges_is_invalid_argument(&app).await;
        app.stop().await;
    }
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// Seconds of 1 January of `year`, 00:00 UTC.
fn year(year: i32) -> i64 {
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap().timestamp()
}

#[track_caller]
fn invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("must be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(violated_fields(&status).iter().any(|f| f == field), "{field}: {status:?}");
}

fn contact(complaint_id: &str, contacted_at: Option<Timestamp>) -> pb::ContactComplainantRequest {
    pb::ContactComplainantRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        summary: "we called".into(),
        contacted_at,
    }
}

fn record_contact(customer_id: &str, contacted_at: Option<Timestamp>) -> pb::RecordContactRequest {
    pb::RecordContactRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        note: String::new(),
        contacted_at,
    }
}

/// The position the read models must reach before a read answers: a fresh write's.
async fn fresh_position(agent: &mut Clients) -> u64 {
    let customer = agent
        .customers
        .register_customer(customer_request("Fresh", pb::Confidentiality::Internal, "a1"))
        .await
        .expect("register");
    customer.into_inner().result.expect("result").position
}

async fn stated_times_outside_the_time_domain_are_refused_naming_the_field(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut h1 = app.clients(Some("h1")).await;
    let customer = register_customer(&mut agent, "Sun Li").await;
    let (case, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    for seconds in [year(-1), year(1999), year(10_000), i64::MAX, i64::MIN] {
        let mut filing = file_request(&customer, pb::Severity::Normal, "");
        filing.received_at = at(seconds);
        invalid(agent.complaints.file_complaint(filing).await, "received_at");
        invalid(
            h1.complaints.contact_complainant(contact(&case, at(seconds))).await,
            "contacted_at",
        );
        invalid(
            agent.customers.record_contact(record_contact(&customer, at(seconds))).await,
            "contacted_at",
        );
        let mut callback = complaint_callback(&customer, &case, "");
        callback.called_at = at(seconds);
        invalid(agent.callbacks.log_callback(callback).await, "called_at");
    }
    // The projections went on: a read waiting for a fresh write answers.
    let position = fresh_position(&mut agent).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest { min_position: position, ..Default::default() })
        .await
        .expect("projections keep up");
    assert_eq!(listed.into_inner().complaints.len(), 1, "only the valid filing");
}

async fn a_legacy_event_at_year_minus_one_does_not_stop_the_projections(app: &TestApp) {
    use kefu_domain::complaint::{ComplaintEvent, ComplaintFiled};
    use kefu_domain::DomainEvent;
    use kefu_event_store::{Append, EventStore, ExpectedVersion, Metadata, NewEvent, StoreOptions};
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Qian Bo").await;
    // What an earlier release accepted: a filing received in year -1, written as it was.
    let complaint_id = kefu_domain::ComplaintId::generate();
    let text = |value: &str| kefu_domain::Text::new("text", value).unwrap();
    let legacy: ComplaintEvent = ComplaintFiled {
        complaint_id,
        case_number: "2026-999999".parse().unwrap(),
        customer_id: customer.parse().unwrap(),
        category: text("legacy"),
        cause: text("old"),
        severity: kefu_domain::Severity::Normal,
        channel: kefu_domain::IntakeChannel::Letter,
        description: text("entered long ago"),
        respondent: None,
        attachments: vec![],
        received_at: Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
        filed_at: Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
        terms: kefu_domain::complaint::CaseTerms::under(
            0,
            &kefu_domain::Policy::version_zero(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            kefu_domain::Severity::Normal,
            None,
        ),
        from_request: None,
    }
    .into();
    // Written as that release wrote it: schema v2, without the terms v3 added (R-T3).
    let mut payload = legacy.to_payload();
    payload.as_object_mut().expect("an object").remove("terms");
    let store = EventStore::open(app.db.url(), StoreOptions::default()).await.expect("open");
    let append = Append {
        stream_id: kefu_event_store::StreamId::new(complaint_id.stream_name()).unwrap(),
        expected: ExpectedVersion::NoStream,
        events: vec![NewEvent::new(uuid::Uuid::now_v7(), legacy.event_type(), 2, payload)],
        metadata: Metadata::default(),
        conditions: vec![],
    };
    let pending = store.submit_group(&[append]).expect("submit");
    pending.await.pop().expect("outcome").expect("legacy event stored");
    drop(store);

    let position = fresh_position(&mut agent).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest { min_position: position, ..Default::default() })
        .await
        .expect("the projections went past the legacy event")
        .into_inner();
    let shown = listed.complaints.iter().find(|c| c.complaint_id == complaint_id.to_string());
    let shown = shown.expect("the legacy case is listed");
    // R-P3: prose in a legacy event's code fields is listed as `unlisted`, never as a label.
    assert_eq!((shown.category.as_str(), shown.cause.as_str()), ("unlisted", "unlisted"));
    // The read models hold instants within years 0000-9999, the nearest bound, and the
    // answer within protobuf's (0001-9999), the nearest bound again.
    assert_eq!(shown.received_at.as_ref().map(|t| t.seconds), Some(year(1)));
    let breaches = supervisor
        .reports
        .list_sla_breaches(pb::ListSlaBreachesRequest {
            min_position: position,
            as_of: None,
            include_at_risk: false,
        })
        .await
        .expect("breaches")
        .into_inner();
    assert!(breaches.breaches.iter().any(|b| b.subject_id == complaint_id.to_string()));
    // A second pass over the same rows (load, update, store) reads them back fine.
    let position = fresh_position(&mut agent).await;
    supervisor
        .complaints
        .assign_handler(assign(&complaint_id.to_string(), "h1"))
        .await
        .expect("the legacy case takes commands");
    supervisor
        .reports
        .get_dashboard(pb::GetDashboardRequest { min_position: position, as_of: None })
        .await
        .expect("dashboard");
}

async fn a_contact_before_the_receipt_is_refused_and_the_breach_stays(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut h1 = app.clients(Some("h1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let customer = register_customer(&mut agent, "Zhou Min").await;
    let received = Utc::now() - TimeDelta::hours(24);
    let mut filing = file_request(&customer, pb::Severity::Normal, "");
    filing.received_at = at(received.timestamp());
    let filed = agent.complaints.file_complaint(filing).await.expect("file").into_inner();
    let case = filed.result.expect("result").id;
    supervisor.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");

    let before = h1
        .complaints
        .contact_complainant(contact(&case, at(received.timestamp() - 3_600)))
        .await
        .expect_err("a contact before the receipt");
    assert_eq!(before.code(), Code::InvalidArgument);
    assert_eq!(reason(&before).as_deref(), Some("CONTACT_BEFORE_RECEIPT"));
    assert_eq!(violated_fields(&before), ["contacted_at"]);
    invalid(h1.complaints.contact_complainant(contact(&case, at(year(1)))).await, "contacted_at");

    let position = fresh_position(&mut agent).await;
    let breaches = supervisor
        .reports
        .list_sla_breaches(pb::ListSlaBreachesRequest {
            min_position: position,
            as_of: None,
            include_at_risk: false,
        })
        .await
        .expect("breaches")
        .into_inner();
    assert!(
        breaches
            .breaches
            .iter()
            .any(|b| b.subject_id == case && b.rule == pb::SlaRule::FirstResponse as i32),
        "the first-response breach stays: {breaches:?}"
    );
    // Contacted now, 24 h after receipt: the median says so, not 0.
    let contacted = h1.complaints.contact_complainant(contact(&case, None)).await.expect("contact");
    let position = contacted.into_inner().result.expect("result").position;
    let month = filed.case_number[..4].to_owned() + &Utc::now().format("-%m").to_string();
    let summary = supervisor
        .reports
        .get_monthly_summary(pb::GetMonthlySummaryRequest { min_position: position, month })
        .await
        .expect("summary")
        .into_inner();
    let median = summary.first_response_median_seconds.expect("a median");
    assert!(median >= 23.0 * 3_600.0, "median {median}");
}

async fn as_of_at_chronos_edges_is_invalid_argument(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let customer = register_customer(&mut agent, "Wu Han").await;
    let (case, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    for seconds in [min, min + 3_600, year(1), year(1999), year(10_000), max - 3_600, max] {
        let as_of = at(seconds);
        invalid(
            supervisor
                .reports
                .list_sla_breaches(pb::ListSlaBreachesRequest {
                    min_position: 0,
                    as_of,
                    include_at_risk: false,
                })
                .await,
            "as_of",
        );
        invalid(
            supervisor
                .reports
                .get_dashboard(pb::GetDashboardRequest { min_position: 0, as_of })
                .await,
            "as_of",
        );
        invalid(
            supervisor
                .reports
                .get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest {
                    as_of,
                    ..Default::default()
                })
                .await,
            "as_of",
        );
        invalid(
            supervisor
                .callbacks
                .list_due_callbacks(pb::ListDueCallbacksRequest { as_of, ..Default::default() })
                .await,
            "as_of",
        );
        invalid(
            compliance
                .audit
                .get_case_as_of(pb::GetCaseAsOfRequest {
                    complaint: case.clone(),
                    point: Some(pb::get_case_as_of_request::Point::AsOf(as_of.unwrap())),
                })
                .await,
            "as_of",
        );
    }
    // Within the window, a breach 12 h after receipt shows as of a month ahead.
    let ahead = Utc::now() + TimeDelta::days(30);
    let position = fresh_position(&mut agent).await;
    let as_of = at(ahead.timestamp());
    let breaches = supervisor
        .reports
        .list_sla_breaches(pb::ListSlaBreachesRequest {
            min_position: position,
            as_of,
            include_at_risk: false,
        })
        .await
        .expect("as of a month ahead")
        .into_inner();
    assert!(breaches.breaches.iter().any(|b| b.subject_id == case), "{breaches:?}");
    // Due contacts take the same window: R-C4's first contact, due 3 days after
    // registration, is not due now but overdue as of a month ahead.
    let due =
        |as_of| pb::ListDueCallbacksRequest { min_position: position, as_of, ..Default::default() };
    let first_contact = |list: &pb::ListDueCallbacksResponse| {
        list.due
            .iter()
            .find(|d| d.customer_id == customer && d.kind == pb::DueKind::NewCustomerContact as i32)
            .map(|d| d.overdue)
    };
    let now = supervisor.callbacks.list_due_callbacks(due(None)).await.expect("due now");
    assert_eq!(first_contact(now.get_ref()), None, "{now:?}");
    let ahead = supervisor.callbacks.list_due_callbacks(due(as_of)).await.expect("due ahead");
    assert_eq!(first_contact(ahead.get_ref()), Some(true), "{ahead:?}");
}

async fn a_request_id_reused_for_another_command_is_refused(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Zheng Yi").await;
    let key = rid();
    let contact =
        pb::RecordContactRequest { request_id: key.clone(), ..record_contact(&customer, None) };
    let first = agent.customers.record_contact(contact.clone()).await.expect("contact");
    let first = first.into_inner().result.expect("result");
    let grade = pb::GradeCustomerRequest {
        request_id: key.clone(),
        customer_id: customer.clone(),
        expected_version: None,
        tier: pb::Tier::Vip as i32,
        stars: 0,
        reason: "big spender".into(),
    };
    refused(
        agent.customers.grade_customer(grade.clone()).await,
        Code::AlreadyExists,
        "REQUEST_ID_REUSED",
    );
    // The same command, same content: its first answer.
    let again = agent.customers.record_contact(contact.clone()).await.expect("retry");
    assert_eq!(again.into_inner().result.expect("result"), first);
    // Same RPC, other content, same key: refused too.
    let other = pb::RecordContactRequest { note: "another call".into(), ..contact };
    refused(agent.customers.record_contact(other).await, Code::AlreadyExists, "REQUEST_ID_REUSED");
    // Nothing was graded; a fresh key grades.
    let shown = agent
        .customers
        .get_customer(pb::GetCustomerRequest { customer_id: customer.clone() })
        .await
        .expect("get")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!((shown.tier, shown.version), (pb::Tier::Regular as i32, first.version));
    agent
        .customers
        .grade_customer(pb::GradeCustomerRequest { request_id: rid(), ..grade })
        .await
        .expect("graded under its own key");

    // Filings too: the same key with another complaint is refused, a retry answered.
    let filing = file_request(&customer, pb::Severity::Normal, "");
    let filed = agent.complaints.file_complaint(filing.clone()).await.expect("file").into_inner();
    let retried =
        agent.complaints.file_complaint(filing.clone()).await.expect("retry").into_inner();
    assert_eq!(retried, filed);
    let other = pb::FileComplaintRequest { category: "billing".into(), ..filing };
    refused(agent.complaints.file_complaint(other).await, Code::AlreadyExists, "REQUEST_ID_REUSED");
}

async fn a_failed_erasure_leaves_nothing_half_done_and_its_retry_completes_it(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let customer = register_customer(&mut agent, "Feng Xue").await;
    // A real failure of the append: the database refuses the erasure's event.
    let refuse = if app.db.url().starts_with("sqlite") {
        "CREATE TRIGGER refuse_forget BEFORE INSERT ON events \
         WHEN NEW.event_type = 'CustomerForgotten' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    } else {
        "CREATE FUNCTION refuse_forget() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'disk full'; END $$; \
         CREATE TRIGGER refuse_forget BEFORE INSERT ON events FOR EACH ROW \
         WHEN (NEW.event_type = 'CustomerForgotten') EXECUTE FUNCTION refuse_forget()"
    };
    kefu_tests::db::execute(app.db.url(), &[refuse.to_owned()]).await;
    let forget = pb::ForgetCustomerRequest {
        request_id: rid(),
        customer_id: customer.clone(),
        reason: "erasure request".into(),
    };
    compliance.customers.forget_customer(forget.clone()).await.expect_err("the append failed");
    // Nothing half-done: the person is as before, readable and not forgotten.
    let get = pb::GetCustomerRequest { customer_id: customer.clone() };
    let shown = agent.customers.get_customer(get.clone()).await.expect("get").into_inner();
    let shown = shown.customer.expect("customer");
    assert_eq!((shown.name.as_str(), shown.forgotten), ("Feng Xue", false));

    let drop = if app.db.url().starts_with("sqlite") {
        "DROP TRIGGER refuse_forget"
    } else {
        "DROP TRIGGER refuse_forget ON events; DROP FUNCTION refuse_forget()"
    };
    kefu_tests::db::execute(app.db.url(), &[drop.to_owned()]).await;
    let done = compliance.customers.forget_customer(forget).await.expect("the retry erases");
    let position = done.into_inner().result.expect("result").position;
    let shown = agent.customers.get_customer(get).await.expect("get").into_inner();
    let shown = shown.customer.expect("customer");
    assert!(shown.name.is_empty() && shown.forgotten, "{shown:?}");
    let listed = compliance
        .customers
        .list_customers(pb::ListCustomersRequest { min_position: position, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.customers.iter().all(|c| c.customer_id != customer), "scrubbed from lists");
    kefu_tests::db::assert_absent(&app.db, &["Feng Xue"], "after the erasure").await;
}

/// R-C8 with request ids: once the customer's key is destroyed nothing can tell what a
/// request about them said, so a request id of theirs presented again is refused
/// (fail closed), never answered with the forgotten customer's result; the erasure's
/// own retry still gets its first answer.
async fn a_request_id_of_a_forgotten_customer_is_never_answered_for_another_request(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let first = customer_request("Erased Ang", pb::Confidentiality::Internal, "a1");
    let registered = agent.customers.register_customer(first.clone()).await.expect("register");
    let customer = registered.into_inner().result.expect("result").id;
    let forget = pb::ForgetCustomerRequest {
        request_id: rid(),
        customer_id: customer.clone(),
        reason: "asked to be forgotten".into(),
    };
    let forgotten = compliance.customers.forget_customer(forget.clone()).await.expect("forget");
    let forgotten = forgotten.into_inner().result.expect("result");

    let other = pb::RegisterCustomerRequest { name: "Other Bo".into(), ..first.clone() };
    for (what, request) in [("another customer", other.clone()), ("the first request", first)] {
        let status = agent.customers.register_customer(request).await.expect_err(what);
        assert_eq!(status.code(), Code::FailedPrecondition, "{what}: {status:?}");
        assert_eq!(reason(&status).as_deref(), Some("REQUEST_SUBJECT_ERASED"), "{what}");
        assert!(!status.message().contains(&customer), "no forgotten id: {status:?}");
    }
    let retried = compliance.customers.forget_customer(forget).await.expect("retry the erasure");
    assert_eq!(retried.into_inner().result.expect("result"), forgotten);
    // The other customer is registered under a new request id, as a new customer.
    let fresh = pb::RegisterCustomerRequest { request_id: rid(), ..other };
    let fresh = agent.customers.register_customer(fresh).await.expect("a new request id");
    assert_ne!(fresh.into_inner().result.expect("result").id, customer);
}

/// A server whose clock the test moves.
async fn app_with_clock(backend: Backend, clock: Arc<AtomicI64>) -> Option<TestApp> {
    kefu_tests::spawn_app_with(backend, move |settings, _| {
        settings.clock = Some(Arc::new(move || {
            DateTime::from_timestamp(clock.load(Ordering::SeqCst), 0).unwrap_or_default()
        }));
    })
    .await
}

async fn archiving_never_traps_a_callback(backend: Backend) {
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap().timestamp();
    let clock = Arc::new(AtomicI64::new(start));
    let Some(app) = app_with_clock(backend, clock.clone()).await else { return };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let customer = register_customer(&mut agent, "He Ping").await;
    let (owed, owed_number) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    let (lapsed, lapsed_number) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    handle_to_close(&app, &owed).await;
    handle_to_close(&app, &lapsed).await;

    // Inside the callback window neither case is archived, and the answer says why.
    let archive = |request_id: String| pb::ArchiveCasesRequest { request_id, year: 2026 };
    let early = supervisor.complaints.archive_cases(archive(rid())).await.expect("archive");
    let early = early.into_inner();
    assert!(early.archived.is_empty(), "{early:?}");
    let skipped: Vec<(&str, &str)> =
        early.skipped.iter().map(|s| (s.case_number.as_str(), s.reason.as_str())).collect();
    assert_eq!(
        skipped,
        [
            (owed_number.as_str(), "CALLBACK_WINDOW_OPEN"),
            (lapsed_number.as_str(), "CALLBACK_WINDOW_OPEN")
        ]
    );
    assert_eq!(
        early.skipped[0].archivable_after.as_ref().map(|t| t.seconds),
        Some(start + 3 * 86_400),
        "closed at the start, due 3 days later"
    );
    // The owed callback is logged; then that case is archived at once.
    agent
        .callbacks
        .log_callback(complaint_callback(&customer, &owed, "fine"))
        .await
        .expect("callback inside the window");
    let archived = supervisor.complaints.archive_cases(archive(rid())).await.expect("archive");
    assert_eq!(archived.into_inner().archived, std::slice::from_ref(&owed_number));

    // Four days on, the lapsed case is archived, leaves the due list and the breaches.
    clock.store(start + 4 * 86_400, Ordering::SeqCst);
    let late = supervisor.complaints.archive_cases(archive(rid())).await.expect("archive");
    let late = late.into_inner();
    assert_eq!(late.archived, [lapsed_number]);
    let due = supervisor
        .callbacks
        .list_due_callbacks(pb::ListDueCallbacksRequest {
            horizon_hours: 24,
            owner: String::new(),
            min_position: late.position,
            as_of: None,
        })
        .await
        .expect("due")
        .into_inner();
    assert!(due.due.iter().all(|d| d.complaint_id != lapsed && d.complaint_id != owed), "{due:?}");
    let breaches = supervisor
        .reports
        .list_sla_breaches(pb::ListSlaBreachesRequest {
            min_position: late.position,
            as_of: None,
            include_at_risk: false,
        })
        .await
        .expect("breaches")
        .into_inner();
    assert!(
        breaches.breaches.iter().all(|b| b.rule != pb::SlaRule::CallbackOverdue as i32),
        "{breaches:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_never_traps_a_callback_sqlite() {
    archiving_never_traps_a_callback(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_never_traps_a_callback_postgres() {
    archiving_never_traps_a_callback(Backend::Postgres).await;
}

/// R-P12 with a retry: an `ArchiveCases` sent again names the cases it archived, at the
/// same position, and writes nothing (before: it answered them as `already_archived` by
/// someone else, position 0).
async fn a_retried_archive_names_the_cases_it_archived(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let customer = register_customer(&mut agent, "Xu Lan").await;
    let (case, number) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    handle_to_close(app, &case).await;
    agent
        .callbacks
        .log_callback(complaint_callback(&customer, &case, "fine"))
        .await
        .expect("callback");
    let archive = pb::ArchiveCasesRequest { request_id: rid(), year: number[..4].parse().unwrap() };
    let first = supervisor.complaints.archive_cases(archive.clone()).await.expect("archive");
    let first = first.into_inner();
    assert_eq!(first.archived, std::slice::from_ref(&number));
    let head = kefu_tests::db::head(app.db.url()).await;
    let again = supervisor.complaints.archive_cases(archive.clone()).await.expect("retry");
    assert_eq!(again.into_inner(), first);
    assert_eq!(kefu_tests::db::head(app.db.url()).await, head, "the retry wrote nothing");
    // Another request finds it archived already.
    let other = pb::ArchiveCasesRequest { request_id: rid(), ..archive };
    let other = supervisor.complaints.archive_cases(other).await.expect("archive").into_inner();
    assert!(other.archived.is_empty() && other.already_archived == 1, "{other:?}");
}
