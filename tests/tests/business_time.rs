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
        // WatchSla looks at the (test) clock this often.
        settings.sla_watch_interval = std::time::Duration::from_millis(20);
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
    watch_sla_pushes_at_risk_then_breached_as_the_clock_moves,
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
    // The point-in-time view and the dossier show the same version and deadlines.
    let mut compliance = app.clients(Some("co1")).await;
    let as_of = compliance
        .audit
        .get_case_as_of(pb::GetCaseAsOfRequest {
            complaint: old_case.clone(),
            point: Some(pb::get_case_as_of_request::Point::Version(1)),
        })
        .await
        .expect("as of")
        .into_inner()
        .complaint
        .expect("complaint");
    assert_eq!(
        (as_of.policy_version, &as_of.first_response_due_at),
        (1, &before.first_response_due_at)
    );
    let dossier = compliance
        .audit
        .export_case(pb::ExportCaseRequest { complaint: old_case.clone() })
        .await
        .expect("export")
        .into_inner()
        .dossier_json;
    let dossier: serde_json::Value = serde_json::from_str(&dossier).expect("json");
    let terms = &dossier["entries"][0]["state_after"]["terms"];
    assert_eq!(terms["policy_version"], 1, "{terms}");
    assert_eq!(
        terms["first_response_due_at"],
        serde_json::json!(time(&before.first_response_due_at))
    );
    assert_eq!(after.first_response_due_at, before.first_response_due_at, "R-T3: never moved");
    assert_eq!(after.resolution_due_at, before.resolution_due_at);
    let (new_case, _, filed_position) = file_at(&app, &customer, received).await;
    let new = complaint(&app, &new_case).await;
    assert_eq!(new.policy_version, 2);
    assert_eq!(time(&new.first_response_due_at), received + TimeDelta::hours(2));

    // The list shows the same stored deadlines as the single read.
    let mut supervisor = app.clients(Some("s1")).await;
    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            min_position: filed_position,
            ..Default::default()
        })
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

    // Restarting with the same policy records nothing; going back to the first one is
    // a change like any other (version 3).
    let db = app.stop_keeping_database().await;
    let app = start(db, &clock, faster).await;
    assert_eq!(policy_changes(&app).await, [1, 2], "one PolicyChanged per change");
    // A node that cannot serve (its port is taken) records no policy of its own.
    let taken =
        kefu::Settings { policy: Policy::default(), ..kefu::Settings::new(app.db.url(), app.addr) };
    assert!(kefu::Application::build(taken).await.is_err(), "the port is taken");
    assert_eq!(policy_changes(&app).await, [1, 2], "nothing recorded by a node that never served");
    let db = app.stop_keeping_database().await;
    let app = start(db, &clock, Policy::default()).await;
    assert_eq!(policy_changes(&app).await, [1, 2, 3]);

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

/// The versions of the `PolicyChanged` events in the `policy` stream, in order.
async fn policy_changes(app: &TestApp) -> Vec<u64> {
    let mut admin = app.clients(Some("admin")).await;
    let request =
        pb::ReadAllRequest { from_position: 0, limit: 1_000, categories: vec!["policy".into()] };
    let events = admin.events.read_all(request).await.expect("read all").into_inner().events;
    assert!(events.iter().all(|e| e.event_type == "PolicyChanged" && e.stream_id == "policy"));
    events.iter().map(|e| e.stream_version).collect()
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
    // R-C4 met at once: the customer's own deadline is not this example's.
    let contact = pb::RecordContactRequest {
        request_id: kefu_tests::rid(),
        customer_id: vip.clone(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        note: "welcome call".into(),
        contacted_at: None,
    };
    agent.customers.record_contact(contact).await.expect("contact");
    let (case, _, filed) = file_at(&app, &vip, received).await;
    let shown = complaint(&app, &case).await;
    // 1–7 October are holidays: 09:00–12:00 and 13:00–14:00 on Thursday 8 October.
    assert_eq!(time(&shown.first_response_due_at), beijing(2026, 10, 8, 14, 0, 0));
    // Resolution: 30 business-local days, the same local time on 30 October.
    assert_eq!(time(&shown.resolution_due_at), beijing(2026, 10, 30, 20, 0, 0));
    println!(
        "worked example: received {}, first response due {}, resolution due {}",
        received.with_timezone(&SHANGHAI),
        time(&shown.first_response_due_at).with_timezone(&SHANGHAI),
        time(&shown.resolution_due_at).with_timezone(&SHANGHAI),
    );
    // What WatchSla sends a supervisor as the days pass: nothing over the holiday week,
    // at risk at 13:12 on 8 October (3 h 12 min of working time, 80 % of 4 h), breached
    // at 14:00.
    let mut watch = Watch::open(&app, None, filed).await;
    assert_eq!(watch.items_until_caught_up().await, []);
    for (at, expected) in [
        (beijing(2026, 10, 7, 23, 0, 0), None),
        (
            beijing(2026, 10, 8, 13, 12, 0),
            Some((pb::SlaState::AtRisk, beijing(2026, 10, 8, 13, 12, 0))),
        ),
        (
            beijing(2026, 10, 8, 14, 0, 1),
            Some((pb::SlaState::Breached, beijing(2026, 10, 8, 14, 0, 0))),
        ),
    ] {
        clock.set(at);
        let Some((state, changed_at)) = expected else {
            watch.nothing_for_a_while().await;
            continue;
        };
        let item = watch.next_item().await;
        println!(
            "WatchSla at {}: {:?} {:?} case {} due {} changed_at {}",
            at.with_timezone(&SHANGHAI),
            pb::SlaRule::try_from(item.rule).unwrap(),
            pb::SlaState::try_from(item.state).unwrap(),
            item.case_number,
            time(&item.due_at).with_timezone(&SHANGHAI),
            time(&item.changed_at).with_timezone(&SHANGHAI),
        );
        assert_eq!(
            (item.subject_id.as_str(), item.state, time(&item.changed_at)),
            (case.as_str(), state as i32, changed_at)
        );
    }
    app.stop().await;
}

/// A `WatchSla` stream as a supervisor.
struct Watch {
    stream: tonic::Streaming<pb::WatchSlaResponse>,
    /// Where a reconnect resumes: the last message's `observed_at` and position.
    resume: Option<(DateTime<Utc>, u64)>,
}

impl Watch {
    /// A watch that starts once the read models include `min_position`, resuming at
    /// `resume` (an earlier watch's [`Watch::resume`]).
    async fn open(app: &TestApp, resume: Option<(DateTime<Utc>, u64)>, min_position: u64) -> Watch {
        let mut supervisor = app.clients(Some("s1")).await;
        let request = pb::WatchSlaRequest {
            resume_after: resume.map(|(at, _)| timestamp(at)),
            min_position,
            resume_position: resume.map_or(0, |(_, position)| position),
        };
        let stream = supervisor.reports.watch_sla(request).await.expect("watch").into_inner();
        Watch { stream, resume: None }
    }

    async fn next(&mut self) -> pb::WatchSlaResponse {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), self.stream.message());
        let message =
            next.await.expect("a message in time").expect("the watch goes on").expect("not ended");
        self.resume = Some((time(&message.observed_at), message.observed_position));
        message
    }

    /// The items sent before `caught_up`: (rule, subject, state).
    async fn items_until_caught_up(&mut self) -> Vec<(i32, String, i32)> {
        let mut items = Vec::new();
        loop {
            let message = self.next().await;
            if message.caught_up {
                return items;
            }
            let item = message.item.expect("an item");
            items.push((item.rule, item.subject_id, item.state));
        }
    }

    async fn next_item(&mut self) -> pb::SlaBreach {
        self.next().await.item.expect("an item")
    }

    /// Nothing arrives while the watch looks at the clock many times over.
    async fn nothing_for_a_while(&mut self) {
        let quiet =
            tokio::time::timeout(std::time::Duration::from_millis(300), self.stream.message());
        assert!(quiet.await.is_err(), "nothing changed, nothing is sent");
    }
}

/// R-T5: a case's first response becomes at risk at 80 % of its 12 hours and breached
/// at 12 hours, pushed by time alone; a watch resumed after the last item gets nothing
/// again; a watch resumed before it gets it; analysts are refused (row-level data).
async fn watch_sla_pushes_at_risk_then_breached_as_the_clock_moves(backend: Backend) {
    let received = beijing(2026, 6, 1, 10, 0, 0);
    let clock = TestClock::at(received);
    let Some(app) = app_at(backend, &clock, Policy::default()).await else { return };
    standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Zhou Xun").await;
    let (case, _, filed) = file_at(&app, &customer, received).await;
    let mut watch = Watch::open(&app, None, filed).await;
    assert_eq!(watch.items_until_caught_up().await, [], "nothing at risk yet");
    clock.set(received + TimeDelta::hours(9));
    watch.nothing_for_a_while().await;
    // 80 % of 12 hours: at risk from 9 h 36 min.
    clock.set(received + TimeDelta::hours(10));
    let at_risk = watch.next_item().await;
    let after_warning = watch.resume;
    assert_eq!(at_risk.rule, pb::SlaRule::FirstResponse as i32);
    assert_eq!(
        (at_risk.subject_id.as_str(), at_risk.state),
        (case.as_str(), pb::SlaState::AtRisk as i32)
    );
    assert_eq!(time(&at_risk.changed_at), received + TimeDelta::minutes(576));
    assert_eq!(time(&at_risk.due_at), received + TimeDelta::hours(12));
    // ListSlaBreaches lists the same item for the same caller.
    let mut supervisor = app.clients(Some("s1")).await;
    let listed = supervisor
        .reports
        .list_sla_breaches(pb::ListSlaBreachesRequest {
            min_position: 0,
            as_of: None,
            include_at_risk: true,
        })
        .await
        .expect("list")
        .into_inner()
        .breaches;
    assert_eq!(listed, std::slice::from_ref(&at_risk));
    clock.set(received + TimeDelta::hours(12) + TimeDelta::seconds(1));
    let breached = watch.next_item().await;
    assert_eq!(
        (breached.subject_id.as_str(), breached.state),
        (case.as_str(), pb::SlaState::Breached as i32)
    );
    assert_eq!(time(&breached.changed_at), received + TimeDelta::hours(12));
    let after_breach = watch.resume;

    // Resumed after the breach: nothing new. Resumed after the warning: the breach.
    let mut resumed = Watch::open(&app, after_breach, filed).await;
    assert_eq!(resumed.items_until_caught_up().await, []);
    let mut earlier = Watch::open(&app, after_warning, filed).await;
    let again = earlier.items_until_caught_up().await;
    assert_eq!(again, [(breached.rule, case.clone(), pb::SlaState::Breached as i32)]);
    // Entered late (received with the first, filed now): breached before the resume
    // point, yet news to a resumed watch; the first, breached at the same instant, is not.
    let (late, _, late_position) = file_at(&app, &customer, received).await;
    let mut resumed = Watch::open(&app, after_breach, late_position).await;
    let late_item = (breached.rule, late.clone(), pb::SlaState::Breached as i32);
    assert_eq!(resumed.items_until_caught_up().await, [late_item]);

    // A resume point outside the as_of window (year 10000) is refused, naming it.
    let year_10000 = prost_types::Timestamp { seconds: 253_402_300_800, nanos: 0 };
    let refused = supervisor
        .reports
        .watch_sla(pb::WatchSlaRequest {
            resume_after: Some(year_10000),
            ..pb::WatchSlaRequest::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(kefu_tests::violated_fields(&refused), ["resume_after"]);

    // Analysts see aggregates only: no row-level watch.
    let mut analyst = app.clients(Some("an1")).await;
    let refused = analyst.reports.watch_sla(pb::WatchSlaRequest::default()).await;
    assert_eq!(refused.expect_err("refused").code(), tonic::Code::PermissionDenied);
    app.stop().await;
}
