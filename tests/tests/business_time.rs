//! Service-centre time over the wire, on SQLite and PostgreSQL, with an injected clock:
//! business-local case years and report months (R-T1), deadlines under the business
//! calendar and per-tier targets (R-T2, R-T3), and policy versions that never move an
//! existing case's deadlines (R-T3).

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kefu_api::pb;
use kefu_domain::policy::{Overrides, Target, Unit};
use kefu_domain::{Policy, Tier};
use kefu_testkit::Backend;
use kefu_tests::flows::*;
use kefu_tests::{spawn_app_on, TestApp, TestClock};

const SHANGHAI: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn beijing(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    SHANGHAI.with_ymd_and_hms(y, m, d, h, min, s).unwrap().with_timezone(&Utc)
}

fn time(at: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let at = at.as_ref().expect("a timestamp");
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap()).unwrap()
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }
}

/// A server on a fresh database of `backend` whose clock is `clock` and whose policy is
/// `policy`; `None` when PostgreSQL cannot be had outside CI.
async fn app_at(backend: Backend, clock: &TestClock, policy: Policy) -> Option<TestApp> {
    let db = kefu_testkit::database(backend).await?;
    Some(start(db, clock, policy).await)
}

async fn start(db: kefu_testkit::TestDatabase, clock: &TestClock, policy: Policy) -> TestApp {
    let clock = clock.clone();
    spawn_app_on(db, move |settings, _| {
        settings.clock = Some(clock.clock());
        settings.policy = policy;
        kefu_tests::without_read_rate(settings, std::path::Path::new("."));
    })
    .await
}

/// Runs `test` on both backends.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(kefu_testkit::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(kefu_testkit::Backend::Postgres).await;
                }
            )*
        }
    };
}

both!(
    case_numbers_take_the_business_local_year_at_new_year,
    monthly_summaries_count_business_local_months_of_receipt,
    a_policy_change_never_moves_an_existing_cases_deadlines,
    a_vip_complaint_before_a_holiday_is_due_after_it,
);

/// Files a normal complaint received at `received_at`: (id, case number, position).
async fn file_at(
    app: &TestApp,
    customer: &str,
    received_at: DateTime<Utc>,
) -> (String, String, u64) {
    let mut agent = app.clients(Some("a1")).await;
    let mut request = file_request(customer, pb::Severity::Normal, "");
    request.received_at = Some(timestamp(received_at));
    let filed = agent.complaints.file_complaint(request).await.expect("file").into_inner();
    let result = filed.result.expect("result");
    (result.id, filed.case_number, result.position)
}

async fn complaint(app: &TestApp, id: &str) -> pb::Complaint {
    let mut supervisor = app.clients(Some("s1")).await;
    let request = pb::GetComplaintRequest { complaint: id.to_owned() };
    let got = supervisor.complaints.get_complaint(request).await.expect("get complaint");
    got.into_inner().complaint.expect("complaint")
}

async fn case_numbers_take_the_business_local_year_at_new_year(backend: Backend) {
    // 23:59:59 on 31 December in Beijing; 15:59:59 UTC.
    let clock = TestClock::at(beijing(2026, 12, 31, 23, 59, 59));
    let Some(app) = app_at(backend, &clock, Policy::default()).await else { return };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Zhao Lei").await;
    let (_, last, _) = file_at(&app, &customer, clock.now()).await;
    assert_eq!(last, "2026-000001");
    // 00:00:00 on 1 January in Beijing, still 31 December (16:00) in UTC: a new year.
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 12, 31, 16, 0, 0).unwrap());
    let (_, first, _) = file_at(&app, &customer, clock.now()).await;
    assert_eq!(first, "2027-000001", "R-P1: the business-local year of registration");
    // 03:00 in Beijing, the example: the new year's second number.
    clock.advance(TimeDelta::hours(3));
    let (_, next, _) = file_at(&app, &customer, clock.now()).await;
    assert_eq!(next, "2027-000002");
    app.stop().await;
}

async fn monthly_summaries_count_business_local_months_of_receipt(backend: Backend) {
    let clock = TestClock::at(beijing(2026, 12, 1, 9, 0, 0));
    let Some(app) = app_at(backend, &clock, Policy::default()).await else { return };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Sun Mei").await;
    // Received at 23:59 on 30 November and at 00:00 on 1 December, Beijing time; both
    // filed on 1 December, and both still in November in UTC.
    let (november, _, _) = file_at(&app, &customer, beijing(2026, 11, 30, 23, 59, 0)).await;
    let (_, _, position) = file_at(&app, &customer, beijing(2026, 12, 1, 0, 0, 0)).await;
    let mut analyst = app.clients(Some("an1")).await;
    for (month, expected) in [("2026-11", 1), ("2026-12", 1)] {
        let request = pb::GetMonthlySummaryRequest { min_position: position, month: month.into() };
        let summary = analyst.reports.get_monthly_summary(request).await.expect("summary");
        assert_eq!(summary.into_inner().complaints, expected, "R-R1: {month}, months of receipt");
    }
    // Satisfaction months are business-local months too: a callback at 00:30 on
    // 1 January in Beijing (16:30 on 31 December UTC) counts in January.
    handle_to_close(&app, &november).await;
    clock.set(beijing(2027, 1, 1, 0, 30, 0));
    let logged = agent
        .callbacks
        .log_callback(complaint_callback(&customer, &november, "fine"))
        .await
        .expect("callback")
        .into_inner();
    let position = logged.result.expect("result").position;
    let metrics = analyst
        .reports
        .get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest {
            min_position: position,
            group_by: pb::SatisfactionGrouping::Month as i32,
            ..Default::default()
        })
        .await
        .expect("metrics")
        .into_inner();
    let months: Vec<(&str, u64)> =
        metrics.groups.iter().map(|g| (g.key.as_str(), g.responses)).collect();
    assert_eq!(months, [("2027-01", 1)], "R-R2: business-local months");
    app.stop().await;
}

async fn a_policy_change_never_moves_an_existing_cases_deadlines(backend: Backend) {
    let clock = TestClock::at(beijing(2026, 6, 1, 10, 0, 0));
    let Some(app) = app_at(backend, &clock, Policy::default()).await else { return };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Li Na").await;
    let received = beijing(2026, 6, 1, 9, 0, 0);
    let (old_case, _, _) = file_at(&app, &customer, received).await;
    let before = complaint(&app, &old_case).await;
    assert_eq!(before.policy_version, 1, "the configured policy was recorded as version 1");
    assert_eq!(time(&before.first_response_due_at), received + TimeDelta::hours(12));

    // The operator changes the policy and restarts: first responses in 2 hours.
    let db = app.stop_keeping_database().await;
    let mut faster = Policy::default();
    faster.targets.first_response = Target::new(2, Unit::Hours);
    let app = start(db, &clock, faster.clone()).await;
    let after = complaint(&app, &old_case).await;
    assert_eq!(after.policy_version, 1, "R-T3: the case keeps its version");
    assert_eq!(after.first_response_due_at, before.first_response_due_at, "R-T3: never moved");
    assert_eq!(after.resolution_due_at, before.resolution_due_at);
    let (new_case, _, _) = file_at(&app, &customer, received).await;
    let new = complaint(&app, &new_case).await;
    assert_eq!(new.policy_version, 2);
    assert_eq!(time(&new.first_response_due_at), received + TimeDelta::hours(2));

    // The list shows the same stored deadlines as the single read.
    let mut supervisor = app.clients(Some("s1")).await;
    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest { min_position: 0, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    for case in [&after, &new] {
        let row = listed.complaints.iter().find(|c| c.complaint_id == case.complaint_id);
        let row = row.expect("listed");
        assert_eq!(
            (row.policy_version, &row.first_response_due_at),
            (case.policy_version, &case.first_response_due_at)
        );
    }

    // Restarting with the same policy records nothing; the stream holds both versions.
    let db = app.stop_keeping_database().await;
    let app = start(db, &clock, faster).await;
    let mut admin = app.clients(Some("admin")).await;
    let events = admin
        .events
        .read_all(pb::ReadAllRequest { from_position: 0, limit: 10_000 })
        .await
        .expect("read all")
        .into_inner()
        .events;
    let changes: Vec<_> = events.iter().filter(|e| e.event_type == "PolicyChanged").collect();
    assert_eq!(changes.len(), 2, "one PolicyChanged per change");
    assert!(changes.iter().all(|e| e.stream_id == "policy"));
    // A case of version 1 closed now gets version 1's callback target (3 days), not
    // a later version's.
    let db = app.stop_keeping_database().await;
    let mut slower_callbacks = Policy::default();
    slower_callbacks.targets.callback_after_closure = Target::new(9, Unit::Days);
    let app = start(db, &clock, slower_callbacks).await;
    handle_to_close(&app, &old_case).await;
    let closed = complaint(&app, &old_case).await;
    assert_eq!(time(&closed.callback_due_at), clock.now() + TimeDelta::days(3));
    app.stop().await;
}

/// The worked example of the issue: a VIP complaint received at 20:00 on 30 September,
/// the evening before National Day, under the example calendar and a VIP first response
/// of 4 business hours.
async fn a_vip_complaint_before_a_holiday_is_due_after_it(backend: Backend) {
    let mut policy = Policy::default();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../calendars/cn-example-2026.toml");
    policy.calendar = kefu::config::load_calendar(&example).expect("the example calendar");
    policy.tier.insert(
        Tier::Vip,
        Overrides {
            first_response: Some(Target::new(4, Unit::BusinessHours)),
            ..Overrides::default()
        },
    );
    let received = beijing(2026, 9, 30, 20, 0, 0);
    let clock = TestClock::at(received + TimeDelta::minutes(5));
    let Some(app) = app_at(backend, &clock, policy).await else { return };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut request = customer_request("Wang Fang", pb::Confidentiality::Internal, "a1");
    request.tier = pb::Tier::Vip as i32;
    let vip = agent.customers.register_customer(request).await.expect("register").into_inner();
    let vip = vip.result.expect("result").id;
    let (case, _, _) = file_at(&app, &vip, received).await;
    let shown = complaint(&app, &case).await;
    // 1–7 October are holidays: 09:00–12:00 and 13:00–14:00 on Thursday 8 October.
    assert_eq!(time(&shown.first_response_due_at), beijing(2026, 10, 8, 14, 0, 0));
    // Resolution: 30 business-local days, the same local time on 30 October.
    assert_eq!(time(&shown.resolution_due_at), beijing(2026, 10, 30, 20, 0, 0));
    println!(
        "worked example: received {received}, first response due {}, resolution due {}",
        time(&shown.first_response_due_at).with_timezone(&SHANGHAI),
        time(&shown.resolution_due_at).with_timezone(&SHANGHAI),
    );
    app.stop().await;
}
