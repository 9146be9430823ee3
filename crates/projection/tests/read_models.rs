//! Read models on SQLite and PostgreSQL: hand-computed metrics from a scripted scenario,
//! exactly-once across crashes, rebuild equals incremental, bounded live lag.

mod support;

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use kefu_domain::complaint::{
    Actor, ArchiveCase, ComplaintCommand, DraftOpinion, EscalateComplaint, RecordInvestigation,
};
use kefu_domain::{
    CallbackOutcome, IntakeChannel, Policy, Severity, SignerCapacity, StaffRole, Tier,
};
use kefu_event_store::EventStore;
use kefu_projection::queries::{
    ComplaintFilter, CustomerFilter, DueKind, GroupBy, SatisfactionFilter, SlaBreachCounts, SlaKind,
};
use kefu_projection::{all_projections, Page, ProjectionError, ReadModels, Runner};
use kefu_testkit::TestDatabase;
use support::*;

kefu_testkit::on_both_databases!(
    workers = 2;
    scripted_scenario_matches_hand_computed_metrics,
    rebuild_from_zero_equals_incremental_build,
    crashes_between_and_inside_batches_apply_each_event_once,
    version_bump_rebuilds_on_start,
    live_runner_catches_up_within_a_bound,
    waiters_trust_announced_progress_only_until_a_reset,
);

/// The clock of the scenario's questions: ten days after T0.
fn clock() -> chrono::DateTime<chrono::Utc> {
    t(days(10))
}

struct Scenario {
    customers: [kefu_domain::CustomerId; 5],
    k1: kefu_domain::ComplaintId,
    k4: kefu_domain::ComplaintId,
    k6: kefu_domain::ComplaintId,
    k10: kefu_domain::ComplaintId,
}

/// Staff h1, h2 (handlers), a1 (agent), d1 (director). Customers A (key), B (VIP, five
/// stars), C and D (regular, referred by A; D never contacted), E (VIP, never called).
/// Ten complaints k1..k10 received at T0 + k hours, customers A, B, C round robin.
async fn scenario(store: &EventStore) -> Scenario {
    for (code, role) in [
        ("h1", StaffRole::Handler),
        ("h2", StaffRole::Handler),
        ("a1", StaffRole::Agent),
        ("d1", StaffRole::Director),
    ] {
        register_staff(store, code, role).await;
    }
    let spec =
        |tier, stars, referred_by| NewCustomer { tier, stars, referred_by, registered: t(0) };
    let a = register_customer(store, "Customer A", spec(Tier::Key, None, None)).await;
    let b = register_customer(store, "Customer B", spec(Tier::Vip, Some(5), None)).await;
    let c = register_customer(store, "Customer C", spec(Tier::Regular, None, Some(a))).await;
    let d = register_customer(store, "Customer D", spec(Tier::Regular, None, Some(a))).await;
    let e = register_customer(store, "Customer E", spec(Tier::Vip, None, None)).await;
    for (customer, hours) in [(a, 1), (b, 2), (c, 3), (e, 1)] {
        contact_customer(store, customer, t(hours)).await;
    }

    use IntakeChannel::*;
    let specs = [
        ("billing", "overcharge", Phone, Severity::Normal),
        ("billing", "overcharge", Phone, Severity::Normal),
        ("billing", "overcharge", Phone, Severity::Normal),
        ("billing", "overcharge", Email, Severity::Normal),
        ("service", "rude_staff", Email, Severity::Major),
        ("service", "rude_staff", Letter, Severity::Normal),
        ("service", "rude_staff", Letter, Severity::Normal),
        ("delay", "late_delivery", Phone, Severity::Normal),
        ("delay", "late_delivery", Letter, Severity::Major),
        ("delay", "late_delivery", Letter, Severity::Normal),
    ];
    let mut cases = Vec::new();
    for (i, (category, cause, channel, severity)) in specs.into_iter().enumerate() {
        let k = i64::try_from(i).unwrap() + 1;
        let customer = [a, b, c][i % 3];
        let case = Case::file(
            store,
            u32::try_from(k).unwrap(),
            customer,
            category,
            cause,
            channel,
            severity,
            t(k),
        )
        .await;
        case.assign(store, if k <= 5 { "h1" } else { "h2" }, t(k)).await;
        match k {
            8 => case.contact(store, t(k + 20)).await, // late first response (R-P7)
            10 => {}                                   // no response at all
            _ => case.contact(store, t(k + 1)).await,
        }
        cases.push(case);
    }
    // k1..k4, k6, k7 closed after k days; callbacks one day after closing.
    let callbacks = [
        (1, Some((CallbackOutcome::Satisfied, Some(5)))),
        (2, Some((CallbackOutcome::Satisfied, Some(4)))),
        (3, Some((CallbackOutcome::Neutral, None))),
        (4, Some((CallbackOutcome::Dissatisfied, Some(1)))),
        (6, None),
        (7, Some((CallbackOutcome::Neutral, Some(3)))),
    ];
    for (k, callback) in callbacks {
        let case = &cases[k - 1];
        let k = i64::try_from(k).unwrap();
        let handler = if k <= 5 { "h1" } else { "h2" };
        case.handle_and_close(store, handler, t(k + days(k))).await;
        if let Some((outcome, score)) = callback {
            case.callback(store, outcome, score, t(k + days(k + 1))).await;
        }
    }
    // k5: major, escalated to the director, not yet signed.
    let k5 = &cases[4];
    k5.run(
        store,
        ComplaintCommand::RecordInvestigation(RecordInvestigation {
            by: Actor::handler(staff("h1")),
            findings: text("f"),
        }),
        t(30),
    )
    .await;
    k5.run(
        store,
        ComplaintCommand::DraftOpinion(DraftOpinion {
            specialist: staff("sp1"),
            opinion: text("o"),
        }),
        t(31),
    )
    .await;
    k5.run(
        store,
        ComplaintCommand::Escalate(EscalateComplaint {
            to: SignerCapacity::Director,
            reason: text("major"),
        }),
        t(32),
    )
    .await;
    // Routine callbacks: B and C dissatisfied.
    customer_callback(store, b, CallbackOutcome::Dissatisfied, Some(2), t(days(5))).await;
    customer_callback(store, c, CallbackOutcome::Dissatisfied, None, t(days(5))).await;
    Scenario {
        customers: [a, b, c, d, e],
        k1: cases[0].id,
        k4: cases[3].id,
        k6: cases[5].id,
        k10: cases[9].id,
    }
}

async fn read_models(store: &EventStore) -> (Runner, ReadModels) {
    let runner = Runner::new(store.clone(), all_projections()).with_batch_size(17);
    runner.catch_up().await.unwrap();
    (runner.clone(), ReadModels::new(runner))
}

async fn scripted_scenario_matches_hand_computed_metrics(db: &TestDatabase) {
    let store = open(db).await;
    let s = scenario(&store).await;
    let (_, models) = read_models(&store).await;
    let policy = Policy::default();
    let [a, b, c, d, e] = s.customers;

    // R-R3 dashboard at T0 + 10 days.
    let dashboard = models.dashboard(clock(), &policy).await.unwrap();
    assert_eq!(
        dashboard.open_by_stage,
        vec![
            ("assigned".into(), "major".into(), 1),  // k9
            ("assigned".into(), "normal".into(), 3), // k4 (reopened), k8, k10
            ("escalated".into(), "major".into(), 1), // k5
        ]
    );
    assert_eq!(
        dashboard.ageing,
        vec![("0-1d", 0), ("1-3d", 0), ("3-7d", 0), ("7-30d", 5), ("30d+", 0)]
    );
    assert_eq!(
        dashboard.breaches,
        SlaBreachCounts {
            first_response: 2,
            resolution_overdue: 0,
            callback_overdue: 1,
            new_customer_not_contacted: 1,
            request_first_response: 0,
            request_callback_overdue: 0,
        }
    );
    let load = |id: &str| dashboard.workload.iter().find(|l| l.staff_id == id).unwrap().clone();
    assert_eq!((load("h1").open_cases, load("h1").open_major_cases), (2, 1));
    assert_eq!((load("h2").open_cases, load("h2").open_major_cases), (3, 1));
    assert_eq!(load("a1").customers, 5);
    assert!(load("d1").active);

    let breaches = models.sla_breaches(clock(), &policy).await.unwrap();
    let callback_breach = breaches.iter().find(|b| b.kind == SlaKind::CallbackOverdue).unwrap();
    assert_eq!(callback_breach.subject_id, s.k6.to_string());
    assert_eq!(callback_breach.due_at, t(6 + days(6) + days(3)));
    assert_eq!(callback_breach.overdue_seconds, (clock() - callback_breach.due_at).num_seconds());
    let contact_breach =
        breaches.iter().find(|b| b.kind == SlaKind::NewCustomerNotContacted).unwrap();
    assert_eq!(contact_breach.subject_id, d.to_string());
    // Time rules are evaluated at query time: six hours before k6's deadline it is not late.
    let earlier = models.dashboard(t(6 + days(9) - 1), &policy).await.unwrap();
    assert_eq!(earlier.breaches.callback_overdue, 0);

    // R-R2 satisfaction: 7 callbacks, 2 satisfied, 2 neutral, 3 dissatisfied; scores 5,4,1,3,2.
    let total = models.satisfaction(&SatisfactionFilter::default(), GroupBy::Total).await.unwrap();
    assert_eq!(total.len(), 1);
    let total = &total[0];
    assert_eq!((total.responses, total.satisfied, total.neutral, total.dissatisfied), (7, 2, 2, 3));
    assert_eq!(total.scored, 5);
    assert!((total.satisfaction_rate - 2.0 / 7.0).abs() < 1e-9);
    assert!((total.dissatisfaction_rate - 3.0 / 7.0).abs() < 1e-9);
    assert_eq!(total.average_score, Some(3.0));
    let by_handler =
        models.satisfaction(&SatisfactionFilter::default(), GroupBy::Handler).await.unwrap();
    let keys: Vec<(&str, u64)> = by_handler.iter().map(|r| (r.key.as_str(), r.responses)).collect();
    assert_eq!(keys, [("h1", 4), ("h2", 1), ("none", 2)]);
    assert!((by_handler[0].average_score.unwrap() - 10.0 / 3.0).abs() < 1e-9);
    let complaint_only =
        SatisfactionFilter { kind: Some("complaint".into()), ..SatisfactionFilter::default() };
    let by_category = models.satisfaction(&complaint_only, GroupBy::Category).await.unwrap();
    let keys: Vec<(&str, u64, u64)> =
        by_category.iter().map(|r| (r.key.as_str(), r.responses, r.dissatisfied)).collect();
    assert_eq!(keys, [("billing", 4, 1), ("service", 1, 0)]);
    let by_channel = models.satisfaction(&complaint_only, GroupBy::Channel).await.unwrap();
    let keys: Vec<(&str, u64)> = by_channel.iter().map(|r| (r.key.as_str(), r.responses)).collect();
    assert_eq!(keys, [("email", 1), ("letter", 1), ("phone", 3)]);
    let by_month =
        models.satisfaction(&SatisfactionFilter::default(), GroupBy::Month).await.unwrap();
    assert_eq!(
        by_month.iter().map(|r| (r.key.as_str(), r.responses)).collect::<Vec<_>>(),
        [("2026-03", 7)]
    );

    // R-C5 coverage: A (key) called back within 7 days, B (VIP, 5 stars) within 30, E never.
    let coverage = models.callback_coverage(clock(), &policy).await.unwrap();
    let row = |group: &str| coverage.iter().find(|c| c.group == group).unwrap().clone();
    assert_eq!((row("key").customers, row("key").covered), (1, 1));
    assert_eq!((row("five_star").customers, row("five_star").covered), (1, 1));
    assert_eq!(
        (row("vip").customers, row("vip").covered, row("vip").rate, row("vip").target),
        (2, 1, 0.5, 1.0)
    );

    // R-R1 monthly summary for March 2026.
    let summary = models.monthly_summary("2026-03").await.unwrap();
    assert_eq!(summary.complaints, 10);
    let counts = |v: &[(String, u64)]| {
        v.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(",")
    };
    assert_eq!(counts(&summary.by_category), "billing=4,delay=3,service=3");
    assert_eq!(counts(&summary.by_cause), "late_delivery=3,overcharge=4,rude_staff=3");
    assert_eq!(counts(&summary.by_channel), "email=2,letter=4,phone=4");
    assert_eq!(counts(&summary.by_severity), "major=2,normal=8");
    assert_eq!(summary.first_response_median_s, Some(3_600.0), "eight answered in 1 h, k8 in 20 h");
    assert_eq!(summary.first_response_p90_s, Some(72_000.0));
    assert_eq!(summary.close_median_s, Some(3.5 * 86_400.0), "closed after 1,2,3,4,6,7 days");
    assert_eq!(summary.close_p90_s, Some(7.0 * 86_400.0));
    assert_eq!((summary.reopened, summary.reopened_share), (1, 0.1));
    assert_eq!(models.monthly_summary("2026-04").await.unwrap().complaints, 0);
    assert!(models.monthly_summary("2026-4").await.is_err());

    // R-R4 referrals: A referred C (contacted) and D (not).
    let referrals = models.referral_report(&Page::default(), 3).await.unwrap().rows;
    assert_eq!(referrals.len(), 1);
    assert_eq!(referrals[0].referrer_id, a.to_string());
    assert_eq!(referrals[0].referrer_name.as_deref(), Some("Customer A"));
    assert_eq!(
        (referrals[0].referred, referrals[0].still_customers, referrals[0].contacted),
        (2, 2, 1)
    );

    // Due callbacks (R-C4, R-P15) at the clock: D's first contact, k6's callback.
    let due = models.due_callbacks(clock(), TimeDelta::zero(), &policy).await.unwrap();
    let due: Vec<(DueKind, String, bool)> =
        due.into_iter().map(|d| (d.kind, d.customer_id, d.overdue)).collect();
    assert_eq!(
        due,
        vec![
            (DueKind::NewCustomerContact, d.to_string(), true),
            (DueKind::ComplaintCallback, c.to_string(), true)
        ]
    );
    // Within the next 30 days the routine cadences come due too (A weekly, B and E monthly).
    let month_ahead = models.due_callbacks(clock(), TimeDelta::days(30), &policy).await.unwrap();
    let routine: Vec<String> = month_ahead
        .iter()
        .filter(|d| d.kind == DueKind::RoutineCallback)
        .map(|d| d.customer_id.clone())
        .collect();
    assert_eq!(routine.len(), 3);
    assert!(
        routine.contains(&a.to_string())
            && routine.contains(&b.to_string())
            && routine.contains(&e.to_string())
    );

    // Records and lists.
    let k4 = models.complaint(&s.k4.to_string()).await.unwrap().unwrap();
    assert_eq!((k4.status.as_str(), k4.stage.as_str(), k4.reopen_count), ("open", "assigned", 1));
    assert_eq!(k4.last_callback_outcome.as_deref(), Some("dissatisfied"));
    let by_number = models.complaint_by_case_number("2026-000004").await.unwrap().unwrap();
    assert_eq!(by_number.complaint_id, s.k4.to_string());
    let open = ComplaintFilter { status: Some("open".into()), ..ComplaintFilter::default() };
    let first = models.complaints(&open, &Page { after: None, size: 3 }).await.unwrap();
    assert_eq!(first.rows.len(), 3);
    let second =
        models.complaints(&open, &Page { after: first.next.clone(), size: 3 }).await.unwrap();
    assert_eq!((second.rows.len(), second.next.clone()), (2, None));
    assert!(models.complaints(&open, &Page { after: None, size: 501 }).await.is_err());
    let vip = CustomerFilter { tier: Some("vip".into()), ..CustomerFilter::default() };
    let vips = models.customers(&vip, &Page::default()).await.unwrap();
    assert_eq!(vips.rows.iter().map(|r| r.customer_id.clone()).collect::<Vec<_>>(), {
        let mut ids = vec![b.to_string(), e.to_string()];
        ids.sort();
        ids
    });
    let public_only =
        CustomerFilter { max_confidentiality_rank: Some(0), ..CustomerFilter::default() };
    assert!(
        models.customers(&public_only, &Page::default()).await.unwrap().rows.is_empty(),
        "all are internal"
    );
    let customer_c = models.customer(&c.to_string()).await.unwrap().unwrap();
    assert_eq!(
        (customer_c.callbacks, customer_c.referred_by),
        (2, Some(a.to_string())),
        "k3's and the routine callback"
    );
}

async fn rebuild_from_zero_equals_incremental_build(db: &TestDatabase) {
    let store = open(db).await;
    let runner = Runner::new(store.clone(), all_projections()).with_batch_size(3);
    runner.prepare().await.unwrap();
    // Build incrementally while the scenario is written, a few events at a time; then
    // merges (one onto a survivor that is merged away in turn) and erasures, which run
    // against the tables beyond the batch in hand.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let s = scenario(&store).await;
            let [a, b, c, d, e] = s.customers;
            let spec =
                NewCustomer { tier: Tier::Key, stars: None, referred_by: None, registered: t(0) };
            let f = register_customer(&store, "王芳", spec).await;
            // G is referred by C, who is merged away below: G counts for C's survivor.
            let spec = NewCustomer {
                tier: Tier::Regular,
                stars: None,
                referred_by: Some(c),
                registered: t(0),
            };
            let g = register_customer(&store, "Customer G", spec).await;
            contact_customer(&store, g, t(days(6))).await;
            // Service requests feed the quality tables the complaints' rows share
            // (kind 'request'): rebuilding either projection alone must keep the other's.
            service_request(&store, a, t(days(6)), None, Some(1)).await;
            service_request(&store, g, t(days(6)), Some(2), Some(26)).await;
            service_request(&store, g, t(days(7)), Some(13), None).await;
            // k10 (open) changes hands; k6 (closed, never called back) and k1 (called
            // back) are archived once k6's callback window has passed.
            let k10 = Case { id: s.k10 };
            k10.assign(&store, "h1", t(days(6))).await;
            for id in [s.k6, s.k1] {
                let archive = ComplaintCommand::Archive(ArchiveCase { year: 2026 });
                Case { id }.run(&store, archive, t(days(12))).await;
            }
            merge_customers(&store, d, c, vec![], t(days(6))).await;
            customer_callback(&store, c, CallbackOutcome::Satisfied, None, t(days(6))).await;
            merge_customers(&store, c, f, vec![d], t(days(7))).await;
            merge_customers(&store, e, b, vec![], t(days(7))).await;
            forget_customer(&store, e, t(days(8))).await;
            forget_customer(&store, f, t(days(8))).await;
        })
    };
    while !writer.is_finished() {
        for name in runner.names() {
            runner.step(name).await.unwrap();
        }
    }
    writer.await.unwrap();
    runner.catch_up().await.unwrap();
    let incremental = runner.dump().await.unwrap();
    assert!(incremental.len() > 20, "the scenario fills the tables");
    // The aggregates (monthly figures, open cases per handler, customers per agent,
    // referrals, quality metrics) hold exactly what a scan of their rows gives, each table filled
    // (issue 18).
    let aggregates = runner.aggregates_stored().await.unwrap();
    assert_eq!(aggregates, runner.aggregates_by_scan().await.unwrap());
    for table in [
        "rm_complaints_monthly",
        "rm_complaint_durations_monthly",
        "rm_satisfaction_monthly",
        "rm_handler_open_cases",
        "rm_agent_customers",
        "rm_referral_counts",
        "rm_grade_customers",
        "rm_referrer_totals",
        "rm_quality_monthly",
        "rm_quality_durations_monthly",
    ] {
        assert!(aggregates.iter().any(|line| line.starts_with(table)), "{table} is empty");
    }
    for kind in ["complaint", "request"] {
        let line = format!("rm_quality_monthly: {kind} |");
        assert!(aggregates.iter().any(|l| l.starts_with(&line)), "no {kind} quality rows");
    }
    reports_from_counts_equal_scans(&runner).await;

    let mut seen = Vec::new();
    for name in runner.names() {
        runner.rebuild(name, |position, head| seen.push((position, head))).await.unwrap();
    }
    assert_eq!(runner.dump().await.unwrap(), incremental, "row for row");
    assert!(seen.iter().all(|(position, head)| position <= head));
    let status = runner.status().await.unwrap();
    assert!(status.iter().all(|s| s.lag == 0 && s.position == s.head), "{status:?}");
}

/// The workload and referral reports, read from the counts the projections keep, equal
/// what a scan of the raw rows gives (the queries those reports ran before issue 18).
async fn reports_from_counts_equal_scans(runner: &Runner) {
    let models = ReadModels::new(runner.clone());
    let scan = |sql: &'static str| async move {
        let rows = runner.db().fetch_all(sql, &[]).await.unwrap();
        rows.iter()
            .map(|row| {
                (0..4)
                    .map(|i| row.opt_text(&format!("c{i}")).unwrap().unwrap_or_default())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let referrals = scan(
        "SELECT g.referrer AS c0, CAST(g.referred AS TEXT) AS c1, \
         CAST(g.still_customers AS TEXT) AS c2, CAST(g.contacted AS TEXT) AS c3 \
         FROM (SELECT COALESCE(p.merged_into, r.referred_by) AS referrer, COUNT(*) AS referred, \
         COUNT(CASE WHEN r.forgotten_at IS NULL THEN 1 END) AS still_customers, \
         COUNT(r.first_contact_at) AS contacted \
         FROM rm_customers r LEFT JOIN rm_customers p ON p.customer_id = r.referred_by \
         WHERE r.referred_by IS NOT NULL AND r.merged_into IS NULL \
         GROUP BY COALESCE(p.merged_into, r.referred_by)) g ORDER BY g.referred DESC, g.referrer",
    )
    .await;
    let report: Vec<Vec<String>> = models
        .referral_report(&Page::default(), 3)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| {
            let counts = [r.referred, r.still_customers, r.contacted].map(|n| n.to_string());
            [vec![r.referrer_id], Vec::from(counts)].concat()
        })
        .collect();
    assert_eq!(report, referrals);
    // C and D (A's referrals) are merged away; G, referred by C, counts for C's survivor.
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0][1..], ["1", "1", "1"]);

    let open = scan(
        "SELECT handler AS c0, CAST(COUNT(*) AS TEXT) AS c1, \
         CAST(COUNT(CASE WHEN severity = 'major' THEN 1 END) AS TEXT) AS c2, '' AS c3 \
         FROM rm_complaints WHERE status = 'open' AND handler IS NOT NULL \
         GROUP BY handler ORDER BY handler",
    )
    .await;
    let customers = scan(
        "SELECT agent AS c0, CAST(COUNT(*) AS TEXT) AS c1, '' AS c2, '' AS c3 FROM rm_customers \
         WHERE forgotten_at IS NULL AND merged_into IS NULL GROUP BY agent ORDER BY agent",
    )
    .await;
    let workload = models.workload().await.unwrap();
    let held: Vec<Vec<String>> = workload
        .iter()
        .filter(|l| l.open_cases > 0)
        .map(|l| {
            let counts = [l.open_cases, l.open_major_cases].map(|n| n.to_string());
            [vec![l.staff_id.clone()], Vec::from(counts), vec![String::new()]].concat()
        })
        .collect();
    assert_eq!(held, open);
    let agents: Vec<Vec<String>> = workload
        .iter()
        .filter(|l| l.customers > 0)
        .map(|l| vec![l.staff_id.clone(), l.customers.to_string(), String::new(), String::new()])
        .collect();
    assert_eq!(agents, customers);
    assert!(!open.is_empty() && !customers.is_empty());

    // The pending callbacks, read through their partial index, are the closed cases
    // with `callback_pending` (an archived one, k6, owes nothing any more).
    let policy = Policy::default();
    for now in [t(days(5)), t(days(9)), t(days(20))] {
        let rows = runner
            .db()
            .fetch_all(
                "SELECT complaint_id FROM rm_complaints WHERE status = 'closed' \
                 AND callback_pending AND callback_due_at < $1 ORDER BY complaint_id",
                &[now.into()],
            )
            .await
            .unwrap();
        let scanned: Vec<String> =
            rows.iter().map(|row| row.text("complaint_id").unwrap()).collect();
        let mut listed: Vec<String> = models
            .sla_breaches(now, &policy)
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.kind == SlaKind::CallbackOverdue)
            .map(|b| b.subject_id)
            .collect();
        listed.sort();
        assert_eq!(listed, scanned, "at {now}");
        let counts = models.sla_breach_counts(now, &policy).await.unwrap();
        assert_eq!(counts.callback_overdue, u64::try_from(scanned.len()).unwrap());
        let mut due: Vec<String> = models
            .due_callbacks(now, TimeDelta::zero(), &policy)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.kind == DueKind::ComplaintCallback && d.overdue)
            .filter_map(|d| d.complaint_id)
            .collect();
        due.sort();
        assert_eq!(due, scanned, "at {now}");
    }
}

async fn crashes_between_and_inside_batches_apply_each_event_once(db: &TestDatabase) {
    let store = open(db).await;
    scenario(&store).await;
    let head = store.head_position().await.unwrap();
    // Kill runners at arbitrary moments: mid-transaction, between batches, anywhere.
    let mut crashes = 0;
    for attempt in 0u64..40 {
        let runner = Runner::new(store.clone(), all_projections()).with_batch_size(5);
        let task = tokio::spawn(async move { runner.catch_up().await });
        tokio::time::sleep(Duration::from_micros(300 + attempt * 97 % 1_500)).await;
        if !task.is_finished() {
            crashes += 1;
        }
        task.abort();
        let _ = task.await;
    }
    let runner = Runner::new(store.clone(), all_projections()).with_batch_size(5);
    runner.catch_up().await.unwrap();
    assert!(crashes > 5, "the runner was killed mid-stream ({crashes} times)");
    let after_crashes = runner.dump().await.unwrap();
    let status = runner.status().await.unwrap();
    assert!(status.iter().all(|s| s.position == head), "{status:?}");

    for name in runner.names() {
        runner.rebuild(name, |_, _| {}).await.unwrap();
    }
    assert_eq!(runner.dump().await.unwrap(), after_crashes, "totals unchanged by the crashes");
    let models = ReadModels::new(runner);
    let total = models.satisfaction(&SatisfactionFilter::default(), GroupBy::Total).await.unwrap();
    assert_eq!(total[0].responses, 7, "no callback counted twice");
}

async fn version_bump_rebuilds_on_start(db: &TestDatabase) {
    let store = open(db).await;
    scenario(&store).await;
    let (runner, _) = read_models(&store).await;
    let built = runner.dump().await.unwrap();
    // Pretend the stored tables were built by an older version with other meanings.
    let mut tx = runner.db().begin().await.unwrap();
    tx.execute("UPDATE projection_checkpoints SET version = 0 WHERE name = 'complaints'", &[])
        .await
        .unwrap();
    tx.execute("UPDATE rm_complaints SET stage = 'stale'", &[]).await.unwrap();
    tx.commit().await.unwrap();
    runner.prepare().await.unwrap();
    let status = runner.status().await.unwrap();
    let complaints = status.iter().find(|s| s.name == "complaints").unwrap();
    let version = kefu_projection::Projection::version(&kefu_projection::Complaints::default());
    assert_eq!((complaints.version, complaints.position), (version, 0), "reset for the rebuild");
    runner.catch_up().await.unwrap();
    assert_eq!(runner.dump().await.unwrap(), built);
}

/// Read-your-writes: a batch covering every projection announces the position they all
/// reached; a reset (and a step of only some projections) announces none, so waiters
/// fall back to the checkpoints and never pass on a stale announcement.
async fn waiters_trust_announced_progress_only_until_a_reset(db: &TestDatabase) {
    let store = open(db).await;
    scenario(&store).await;
    let (runner, models) = read_models(&store).await;
    let head = store.head_position().await.unwrap();
    assert_eq!(*runner.progress().borrow(), head, "a full catch-up announces the head");
    models.wait_for(head, Duration::from_secs(1)).await.unwrap();

    let mut tx = runner.db().begin().await.unwrap();
    tx.execute("UPDATE projection_checkpoints SET version = 0 WHERE name = 'complaints'", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    runner.prepare().await.unwrap();
    assert_eq!(*runner.progress().borrow(), 0, "a reset withdraws the announcement");
    let waited = models.wait_for(head, Duration::from_millis(100)).await;
    assert!(
        matches!(waited, Err(ProjectionError::NotCaughtUp { reached: 0, .. })),
        "a waiter must not pass while complaints rebuild: {waited:?}"
    );
    runner.step("complaints").await.unwrap();
    assert_eq!(*runner.progress().borrow(), 0, "a step of one projection announces nothing");
    runner.catch_up().await.unwrap();
    models.wait_for(head, Duration::from_secs(1)).await.unwrap();
}

async fn live_runner_catches_up_within_a_bound(db: &TestDatabase) {
    let store = open(db).await;
    register_staff(&store, "a1", StaffRole::Agent).await;
    let runner = Runner::new(store.clone(), all_projections());
    let models = ReadModels::new(runner.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live = tokio::spawn(async move {
        runner.run(async { stopped.await.unwrap_or(()) }).await;
    });
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let spec =
            NewCustomer { tier: Tier::Regular, stars: None, referred_by: None, registered: t(0) };
        let id = register_customer(&store, &format!("live {i}"), spec).await;
        let position = store.head_position().await.unwrap();
        let started = Instant::now();
        models.wait_for(position, Duration::from_secs(5)).await.unwrap();
        worst = worst.max(started.elapsed());
        assert!(
            models.customer(&id.to_string()).await.unwrap().is_some(),
            "visible after wait_for"
        );
    }
    // Woken by appends, not by the 1 s polling fallback.
    assert!(worst < Duration::from_millis(900), "worst append-to-visible lag {worst:?}");
    let too_far = models
        .wait_for(store.head_position().await.unwrap() + 100, Duration::from_millis(100))
        .await;
    assert!(too_far.is_err());
    stop.send(()).unwrap();
    live.await.unwrap();
}
