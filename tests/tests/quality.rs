//! Quality metrics over the wire (issue 22, seed 001 ch. 7), on SQLite and PostgreSQL,
//! with an injected clock: first-contact resolution, response and resolution time
//! distributions and reopen rates by business-local month, channel and handler match
//! figures computed by hand for a scripted history (a reopen, a reassignment, an
//! erasure, archiving), agree exactly with a scan of the case rows and survive a rebuild.

use chrono::{DateTime, TimeZone, Utc};
use kefu_api::pb;
use kefu_domain::Policy;
use kefu_projection::{all_projections, Runner};
use kefu_testkit::Backend;
use kefu_tests::flows::*;
use kefu_tests::{rid, spawn_app_on, violated_fields, TestApp, TestClock};
use tonic::Code;

const SHANGHAI: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn beijing(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    SHANGHAI.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap().with_timezone(&Utc)
}

async fn start(db: kefu_testkit::TestDatabase, clock: &TestClock) -> TestApp {
    let clock = clock.clone();
    spawn_app_on(db, move |settings, dir| {
        settings.clock = Some(clock.clock());
        settings.policy = Policy::default();
        kefu_tests::without_read_rate(settings, dir);
    })
    .await
}

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

both!(quality_metrics_match_a_hand_computed_history, bad_quality_requests_are_refused_by_field);

/// The server and the clock its commands read.
struct Desk {
    app: TestApp,
    clock: TestClock,
}

impl Desk {
    async fn file(&self, customer: &str, channel: pb::IntakeChannel) -> String {
        let mut agent = self.app.clients(Some("a1")).await;
        let mut request = file_request(customer, pb::Severity::Normal, "");
        request.channel = channel as i32;
        let filed = agent.complaints.file_complaint(request).await.expect("file").into_inner();
        filed.result.expect("result").id
    }

    async fn assign(&self, id: &str, handler: &str) {
        let mut supervisor = self.app.clients(Some("s1")).await;
        supervisor.complaints.assign_handler(assign(id, handler)).await.expect("assign");
    }

    async fn contact(&self, id: &str, handler: &str) {
        let mut clients = self.app.clients(Some(handler)).await;
        let request = pb::ContactComplainantRequest {
            request_id: rid(),
            complaint_id: id.to_owned(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            summary: "we called to arrange handling".into(),
            contacted_at: None,
        };
        clients.complaints.contact_complainant(request).await.expect("contact");
    }

    /// Investigation, opinion, signature, implementation and the final written reply:
    /// everything a round needs before it may close (R-P6, R-P5, R-P9, R-P10).
    async fn decide_and_reply(&self, id: &str, handler: &str) {
        let mut h = self.app.clients(Some(handler)).await;
        let mut specialist = self.app.clients(Some("sp1")).await;
        h.complaints
            .record_investigation(pb::RecordInvestigationRequest {
                request_id: rid(),
                complaint_id: id.to_owned(),
                expected_version: None,
                findings: "the account shows the fault".into(),
            })
            .await
            .expect("investigate");
        specialist
            .complaints
            .draft_opinion(pb::DraftOpinionRequest {
                request_id: rid(),
                complaint_id: id.to_owned(),
                expected_version: None,
                opinion: "refund the fee".into(),
            })
            .await
            .expect("draft");
        h.complaints.sign_opinion(sign(id, pb::SignerCapacity::Handler)).await.expect("sign");
        specialist.complaints.record_implementation(implement(id)).await.expect("implement");
        let final_reply = reply(id, pb::ReplyKind::Final, pb::ContactChannel::Letter);
        h.complaints.send_reply(final_reply).await.expect("final reply");
    }

    async fn close(&self, id: &str, handler: &str) -> u64 {
        let mut h = self.app.clients(Some(handler)).await;
        let request = pb::CloseComplaintRequest {
            request_id: rid(),
            complaint_id: id.to_owned(),
            expected_version: None,
            summary: String::new(),
        };
        let closed = h.complaints.close_complaint(request).await.expect("close").into_inner();
        closed.result.expect("result").position
    }

    async fn quality(
        &self,
        as_whom: &str,
        group_by: &[pb::QualityDimension],
        adjust: impl FnOnce(&mut pb::GetQualityMetricsRequest),
    ) -> Vec<pb::QualityGroup> {
        let mut clients = self.app.clients(Some(as_whom)).await;
        let head = kefu_tests::db::head(self.app.db.url()).await;
        let mut request = pb::GetQualityMetricsRequest {
            min_position: head,
            group_by: group_by.iter().map(|d| *d as i32).collect(),
            ..Default::default()
        };
        adjust(&mut request);
        clients.reports.get_quality_metrics(request).await.expect("quality").into_inner().groups
    }

    async fn by_month(&self) -> Vec<pb::QualityGroup> {
        self.quality("an1", &[pb::QualityDimension::Month], |_| {}).await
    }
}

/// A group's figures, as computed by hand: cases, responded, responded in time, closed,
/// resolved at the first contact, reopened, reopens, closes.
type Counts = [u64; 8];

fn counts(group: &pb::QualityGroup) -> Counts {
    [
        group.cases,
        group.responded,
        group.responded_in_time,
        group.closed,
        group.resolved_first_contact,
        group.reopened,
        group.reopens,
        group.closes,
    ]
}

/// Median and p90 of first response, then of resolution, in seconds.
fn times(group: &pb::QualityGroup) -> [Option<f64>; 4] {
    [
        group.first_response_median_seconds,
        group.first_response_p90_seconds,
        group.resolution_median_seconds,
        group.resolution_p90_seconds,
    ]
}

const HOUR: f64 = 3_600.0;

/// The history (Beijing time, 2026; the default policy: first response within 12 hours):
/// - A (phone, h1): received 2 Mar 09:00; the final reply at 11:00 is the first and only
///   contact; closed 12:00. Resolved at the first contact.
/// - B (phone, h1): received 2 Mar 09:00; called 10:00; replied and closed 3 Mar 09:00;
///   reopened 4 Mar; replied and closed again 5 Mar. Reopened: 2 closes, 1 reopen.
/// - C (email): received 3 Mar 09:00 by h1, handed to h2 at 10:00; called 22:00 (13 h:
///   late); still open.
/// - D (phone, h2): another customer's, received 4 Mar 09:00; final reply 10:00, closed
///   11:00. Resolved at the first contact; the customer is then erased.
/// - F (phone, no handler): received 31 Mar 23:30, a March case (15:30 UTC); untouched.
/// - E (phone, h1): received 1 Apr 00:30, an April case although 31 Mar in UTC; final
///   reply 01:30, closed 02:30, called back. Then every closed case is archived.
async fn quality_metrics_match_a_hand_computed_history(backend: Backend) {
    let clock = TestClock::at(beijing(3, 2, 9, 0));
    let Some(db) = kefu_testkit::database(backend).await else { return };
    let desk = Desk { app: start(db, &clock).await, clock };
    standard_staff(&desk.app).await;
    let mut agent = desk.app.clients(Some("a1")).await;
    let zhao = register_customer(&mut agent, "Zhao Lei").await;
    let qian = register_customer(&mut agent, "Qian Yu").await;
    let phone = pb::IntakeChannel::Phone;

    let a = desk.file(&zhao, phone).await;
    let b = desk.file(&zhao, phone).await;
    desk.assign(&a, "h1").await;
    desk.assign(&b, "h1").await;
    desk.clock.set(beijing(3, 2, 10, 0));
    desk.contact(&b, "h1").await;
    desk.clock.set(beijing(3, 2, 11, 0));
    desk.decide_and_reply(&a, "h1").await;
    desk.clock.set(beijing(3, 2, 12, 0));
    desk.close(&a, "h1").await;
    desk.clock.set(beijing(3, 3, 9, 0));
    desk.decide_and_reply(&b, "h1").await;
    desk.close(&b, "h1").await;
    let c = desk.file(&zhao, pb::IntakeChannel::Email).await;
    desk.assign(&c, "h1").await;
    desk.clock.set(beijing(3, 3, 10, 0));
    desk.assign(&c, "h2").await;
    desk.clock.set(beijing(3, 3, 22, 0));
    desk.contact(&c, "h2").await;
    desk.clock.set(beijing(3, 4, 9, 0));
    let mut supervisor = desk.app.clients(Some("s1")).await;
    supervisor
        .complaints
        .reopen_complaint(pb::ReopenComplaintRequest {
            request_id: rid(),
            complaint_id: b.clone(),
            expected_version: None,
            cause: "the refund never arrived".into(),
        })
        .await
        .expect("reopen");
    let d = desk.file(&qian, phone).await;
    desk.assign(&d, "h2").await;
    desk.clock.set(beijing(3, 4, 10, 0));
    desk.decide_and_reply(&d, "h2").await;
    desk.clock.set(beijing(3, 4, 11, 0));
    desk.close(&d, "h2").await;
    desk.clock.set(beijing(3, 5, 9, 0));
    desk.decide_and_reply(&b, "h1").await;
    desk.close(&b, "h1").await;

    // R-C8: erasing D's customer keeps the history, and so the figures.
    let before_erasure = desk.by_month().await;
    desk.clock.set(beijing(3, 5, 10, 0));
    let mut compliance = desk.app.clients(Some("co1")).await;
    compliance
        .customers
        .forget_customer(pb::ForgetCustomerRequest {
            request_id: rid(),
            customer_id: qian.clone(),
            reason: "asked to be forgotten".into(),
        })
        .await
        .expect("forget");
    assert_eq!(desk.by_month().await, before_erasure, "an erasure changes no figure");

    desk.clock.set(beijing(3, 31, 23, 30));
    let _f = desk.file(&zhao, phone).await;
    desk.clock.set(beijing(4, 1, 0, 30));
    let e = desk.file(&zhao, phone).await;
    desk.assign(&e, "h1").await;
    desk.clock.set(beijing(4, 1, 1, 30));
    desk.decide_and_reply(&e, "h1").await;
    desk.clock.set(beijing(4, 1, 2, 30));
    desk.close(&e, "h1").await;
    desk.clock.set(beijing(4, 1, 3, 0));
    agent.callbacks.log_callback(complaint_callback(&zhao, &e, "thank you")).await.expect("cb");

    // R-P12: archiving every closed case (A, B, D by their lapsed callback windows, E
    // called back) keeps them closed in the figures.
    let before_archiving = desk.by_month().await;
    let archived = supervisor
        .complaints
        .archive_cases(pb::ArchiveCasesRequest { request_id: rid(), year: 2026 })
        .await
        .expect("archive")
        .into_inner();
    assert_eq!(archived.archived.len(), 4, "{archived:?}");
    let by_month = desk.by_month().await;
    assert_eq!(by_month, before_archiving, "archiving changes no figure");

    // By business-local month of receipt. March: A, B, C, D, F; responses after
    // 2 h, 1 h, 13 h (late) and 1 h; closures after 3 h, 1 day and 2 h; A and D resolved
    // at the first contact of 3 closed (B was reached three times and reopened); 1 reopen
    // in 4 closes. April: E alone.
    let months: Vec<(&str, Counts, [Option<f64>; 4])> =
        by_month.iter().map(|g| (g.month.as_str(), counts(g), times(g))).collect();
    assert_eq!(
        months,
        [
            (
                "2026-03",
                [5, 4, 3, 3, 2, 1, 1, 4],
                // 1 h, 1 h, 2 h, 13 h: median 1.5 h, p90 the 4th; 2 h, 3 h, 24 h.
                [Some(1.5 * HOUR), Some(13.0 * HOUR), Some(3.0 * HOUR), Some(24.0 * HOUR)]
            ),
            (
                "2026-04",
                [1, 1, 1, 1, 1, 0, 0, 1],
                [Some(HOUR), Some(HOUR), Some(2.0 * HOUR), Some(2.0 * HOUR)]
            ),
        ]
    );
    let march = &by_month[0];
    assert!((march.first_contact_resolution_rate - 2.0 / 3.0).abs() < 1e-9, "{march:?}");
    assert!((march.reopen_rate - 0.25).abs() < 1e-9, "{march:?}");
    assert!(march.handler.is_empty() && march.channel.is_empty() && march.kind.is_empty());

    // By handler, over every month: C counts for h2, who has it now; F has none.
    let handlers = desk.quality("s1", &[pb::QualityDimension::Handler], |_| {}).await;
    let handlers: Vec<(&str, Counts, [Option<f64>; 4])> =
        handlers.iter().map(|g| (g.handler.as_str(), counts(g), times(g))).collect();
    assert_eq!(
        handlers,
        [
            // A, B, E: responses 2 h, 1 h, 1 h; closures 3 h, 24 h, 2 h.
            (
                "h1",
                [3, 3, 3, 3, 2, 1, 1, 4],
                [Some(HOUR), Some(2.0 * HOUR), Some(3.0 * HOUR), Some(24.0 * HOUR)]
            ),
            // C, D: responses 13 h (late), 1 h; D closed after 2 h.
            (
                "h2",
                [2, 2, 1, 1, 1, 0, 0, 1],
                [Some(7.0 * HOUR), Some(13.0 * HOUR), Some(2.0 * HOUR), Some(2.0 * HOUR)]
            ),
            ("none", [1, 0, 0, 0, 0, 0, 0, 0], [None, None, None, None]),
        ]
    );

    // Filtered to h1's March cases, by channel and kind: A and B, both by phone.
    let filtered = desk
        .quality("s1", &[pb::QualityDimension::Channel, pb::QualityDimension::Kind], |request| {
            request.handler = "h1".into();
            request.from_month = "2026-03".into();
            request.to_month = "2026-03".into();
            request.kind = "complaint".into();
        })
        .await;
    let filtered: Vec<(&str, &str, Counts)> =
        filtered.iter().map(|g| (g.kind.as_str(), g.channel.as_str(), counts(g))).collect();
    assert_eq!(filtered, [("complaint", "phone", [2, 2, 2, 2, 1, 1, 1, 3])]);
    let email = desk.quality("d1", &[], |request| request.channel = "email".into()).await;
    assert_eq!(email.iter().map(counts).collect::<Vec<_>>(), [[1, 1, 0, 0, 0, 0, 0, 0]]);
    let requests = desk.quality("an1", &[], |request| request.kind = "request".into()).await;
    assert_eq!(requests.iter().map(counts).collect::<Vec<_>>(), [[0; 8]], "no request yet");

    // Figures per handler are figures per staff member (issue 22 F3): an analyst, who
    // reads aggregates only, gets none, grouped or filtered, and is told they were
    // withheld; unassigned cases (`none`) and every other grouping are aggregates.
    let mut analyst = desk.app.clients(Some("an1")).await;
    let per_staff = [
        (vec![pb::QualityDimension::Handler as i32], ""),
        (vec![pb::QualityDimension::Month as i32, pb::QualityDimension::Handler as i32], ""),
        (vec![pb::QualityDimension::Channel as i32], "h1"),
        (vec![], "h2"),
    ];
    for (group_by, handler) in per_staff {
        let request = pb::GetQualityMetricsRequest {
            group_by: group_by.clone(),
            handler: handler.into(),
            ..Default::default()
        };
        let answer = analyst.reports.get_quality_metrics(request).await.expect("answered");
        let answer = answer.into_inner();
        assert!(answer.groups.is_empty(), "{group_by:?} {handler}: {:?}", answer.groups);
        assert!(answer.handler_groups_withheld, "{group_by:?} {handler}");
    }
    let unassigned = pb::GetQualityMetricsRequest { handler: "none".into(), ..Default::default() };
    let answer = analyst.reports.get_quality_metrics(unassigned).await.expect("answered");
    let answer = answer.into_inner();
    assert!(!answer.handler_groups_withheld && answer.groups.len() == 1, "{answer:?}");
    assert_eq!(answer.groups.iter().map(counts).collect::<Vec<_>>(), [[1, 0, 0, 0, 0, 0, 0, 0]]);
    // The same rule for satisfaction by handler.
    for (grouping, withheld) in [
        (pb::SatisfactionGrouping::Handler, true),
        (pb::SatisfactionGrouping::Month, false),
        (pb::SatisfactionGrouping::Channel, false),
    ] {
        let request =
            pb::GetSatisfactionMetricsRequest { group_by: grouping.into(), ..Default::default() };
        let answer = analyst.reports.get_satisfaction_metrics(request.clone()).await;
        let answer = answer.expect("answered").into_inner();
        assert_eq!(answer.handler_groups_withheld, withheld, "{grouping:?}");
        assert_eq!(answer.groups.is_empty(), withheld, "{grouping:?}: {:?}", answer.groups);
        let mut s1 = desk.app.clients(Some("s1")).await;
        let answer = s1.reports.get_satisfaction_metrics(request).await.expect("answered");
        let answer = answer.into_inner();
        assert!(!answer.handler_groups_withheld && !answer.groups.is_empty(), "{grouping:?}");
    }
    let supervisor = desk.quality("s1", &[pb::QualityDimension::Handler], |_| {}).await;
    assert_eq!(supervisor.len(), 3, "h1, h2 and none for a supervisor");
    let mut s1 = desk.app.clients(Some("s1")).await;
    let request = pb::GetQualityMetricsRequest { handler: "h1".into(), ..Default::default() };
    let answer = s1.reports.get_quality_metrics(request).await.expect("answered").into_inner();
    assert!(!answer.handler_groups_withheld && !answer.groups.is_empty());

    // The aggregates hold exactly what a scan of the case rows gives, and a rebuild
    // from the log gives the same rows and the same answers.
    let db = desk.app.stop_keeping_database().await;
    let store = kefu_event_store::EventStore::open(db.url(), Default::default()).await.unwrap();
    let runner = Runner::new(store, all_projections());
    let stored = runner.aggregates_stored().await.unwrap();
    assert!(stored.iter().any(|line| line.starts_with("rm_quality_durations_monthly")));
    assert_eq!(stored, runner.aggregates_by_scan().await.unwrap());
    let incremental = runner.dump().await.unwrap();
    runner.rebuild_all(|_, _| {}).await.unwrap();
    assert_eq!(runner.dump().await.unwrap(), incremental, "rebuild equals incremental");
    let desk = Desk { app: start(db, &desk.clock).await, clock: desk.clock };
    assert_eq!(desk.by_month().await, by_month);
    desk.app.stop().await;
}

async fn bad_quality_requests_are_refused_by_field(backend: Backend) {
    let clock = TestClock::at(beijing(3, 2, 9, 0));
    let Some(db) = kefu_testkit::database(backend).await else { return };
    let app = start(db, &clock).await;
    let mut analyst = app.clients(Some("an1")).await;
    let bad = pb::GetQualityMetricsRequest {
        min_position: 0,
        from_month: "2026-13".into(),
        to_month: "March".into(),
        kind: "inquiry".into(),
        channel: "pigeon".into(),
        handler: "not a staff id!".into(),
        group_by: vec![pb::QualityDimension::Month as i32, 0, 99],
    };
    let status = analyst.reports.get_quality_metrics(bad).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut fields = violated_fields(&status);
    fields.sort();
    fields.dedup();
    assert_eq!(fields, ["channel", "from_month", "group_by", "handler", "kind", "to_month"]);
    // A reversed range (sixth attack, F9) would answer empty groups that read as "nothing
    // happened": refused, here and for satisfaction, which shares the check.
    let reversed = pb::GetQualityMetricsRequest {
        from_month: "2026-12".into(),
        to_month: "2026-01".into(),
        ..Default::default()
    };
    let status = analyst.reports.get_quality_metrics(reversed).await.expect_err("refused");
    assert_eq!(violated_fields(&status), ["to_month"], "{status:?}");
    let reversed = pb::GetSatisfactionMetricsRequest {
        from_month: "2026-12".into(),
        to_month: "2026-01".into(),
        ..Default::default()
    };
    let status = analyst.reports.get_satisfaction_metrics(reversed).await.expect_err("refused");
    assert_eq!(violated_fields(&status), ["to_month"], "{status:?}");
    // Reports are for overseers and analysts (aggregates), not agents.
    let mut agent = app.clients(Some("a1")).await;
    let status = agent
        .reports
        .get_quality_metrics(pb::GetQualityMetricsRequest::default())
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    app.stop().await;
}
