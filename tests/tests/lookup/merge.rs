//! `MergeCustomers`: reports count the duplicate as the survivor, reads of it name the
//! survivor, it takes no more writes, merging across levels needs clearance for both,
//! and from then on the duplicate is read at the survivor's level on every read path.

use chrono::{TimeDelta, Utc};
use kefu_api::pb;
use kefu_api::pb::Confidentiality::{Confidential, Internal, Secret};
use kefu_tests::flows::{complaint_callback, file, handle_to_close};
use kefu_tests::{reason, rid, Clients, TestApp};
use tonic::Code;

use super::{find, get, merge, merge_request, register, registration};

kefu_tests::on_both_backends!(
    merged_duplicates_count_for_the_survivor_in_every_report,
    a_merged_duplicate_names_its_survivor_and_takes_no_more_writes,
    merging_across_levels_needs_a_supervisor_cleared_for_both,
    a_merged_duplicate_is_read_at_its_survivors_level_on_every_read_path,
);

/// What every report says about the customers of this test, at `at` (as of four days on,
/// past every new customer's first-contact deadline).
#[derive(Debug, PartialEq)]
struct Reports {
    /// Referrer → referred.
    referrals: Vec<(String, u64)>,
    /// Cases listed for the survivor.
    survivor_cases: usize,
    /// VIP coverage: customers, covered.
    vip_coverage: (u64, u64),
    /// Customers of agent a1.
    a1_customers: u64,
    /// Customers breaching the first-contact deadline.
    not_contacted: Vec<String>,
    /// Customers whose first contact is at risk, an hour before its deadline (R-T5).
    contact_at_risk: Vec<String>,
    /// Customers with something due: (customer, kind), sorted.
    due: Vec<(String, pb::DueKind)>,
}

async fn reports(admin: &mut Clients, survivor: &str, at: u64) -> Reports {
    let later = kefu_api_timestamp(Utc::now() + TimeDelta::days(4));
    let referrals = admin
        .reports
        .get_referral_report(pb::GetReferralReportRequest {
            min_position: at,
            ..Default::default()
        })
        .await
        .expect("referrals")
        .into_inner()
        .referrals
        .into_iter()
        .map(|r| (r.referrer_id, r.referred))
        .collect();
    let cases = admin
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            customer_id: survivor.to_owned(),
            min_position: at,
            ..Default::default()
        })
        .await
        .expect("complaints")
        .into_inner()
        .complaints
        .len();
    let coverage = admin
        .reports
        .get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest {
            min_position: at,
            ..Default::default()
        })
        .await
        .expect("satisfaction")
        .into_inner()
        .coverage;
    let vip = coverage.iter().find(|c| c.group == "vip").expect("vip coverage");
    let workload = admin
        .reports
        .get_handler_workload(pb::GetHandlerWorkloadRequest { min_position: at })
        .await
        .expect("workload")
        .into_inner()
        .workload;
    let a1 = workload.iter().find(|w| w.staff_id == "a1").map_or(0, |w| w.customers);
    let breaches = admin
        .reports
        .list_sla_breaches(pb::ListSlaBreachesRequest {
            min_position: at,
            as_of: Some(later),
            include_at_risk: false,
        })
        .await
        .expect("breaches")
        .into_inner()
        .breaches;
    let mut not_contacted: Vec<String> = breaches
        .into_iter()
        .filter(|b| b.rule == pb::SlaRule::NewCustomerNotContacted as i32)
        .map(|b| b.subject_id)
        .collect();
    not_contacted.sort();
    // Registered moments ago: 71 hours on, past 80% of the 3 days, not yet due.
    let almost = kefu_api_timestamp(Utc::now() + TimeDelta::hours(71));
    let at_risk =
        pb::ListSlaBreachesRequest { min_position: at, as_of: Some(almost), include_at_risk: true };
    let at_risk = admin.reports.list_sla_breaches(at_risk).await.expect("at risk").into_inner();
    let contact_at_risk = sorted(
        at_risk
            .breaches
            .into_iter()
            .filter(|b| b.rule == pb::SlaRule::NewCustomerNotContacted as i32)
            .filter(|b| b.state == pb::SlaState::AtRisk as i32)
            .map(|b| b.subject_id)
            .collect(),
    );
    let mut due: Vec<(String, pb::DueKind)> = admin
        .callbacks
        .list_due_callbacks(pb::ListDueCallbacksRequest {
            horizon_hours: 24 * 40,
            owner: String::new(),
            min_position: at,
            as_of: None,
        })
        .await
        .expect("due")
        .into_inner()
        .due
        .into_iter()
        .map(|d| (d.customer_id, pb::DueKind::try_from(d.kind).expect("kind")))
        .collect();
    due.sort();
    Reports {
        referrals,
        survivor_cases: cases,
        vip_coverage: (vip.customers, vip.covered),
        a1_customers: a1,
        not_contacted,
        contact_at_risk,
        due,
    }
}

fn kefu_api_timestamp(at: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }
}

fn sorted<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values
}

async fn merged_duplicates_count_for_the_survivor_in_every_report(app: &TestApp) {
    use pb::DueKind::{ComplaintCallback, NewCustomerContact, RoutineCallback};
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut admin = app.clients(Some("admin")).await;
    let vip = |name: &str, phone: &str| pb::RegisterCustomerRequest {
        tier: pb::Tier::Vip as i32,
        ..registration(name, &[phone], &[], "", Internal)
    };
    let (survivor, _) = register(&mut agent, vip("王芳", "13800138000")).await;
    let (duplicate, _) = register(&mut agent, vip("王芳", "13900139000")).await;
    let referred = pb::RegisterCustomerRequest {
        referred_by: duplicate.clone(),
        ..registration("李雷", &[], &[], "", Internal)
    };
    let (referred, _) = register(&mut agent, referred).await;
    agent
        .customers
        .record_contact(pb::RecordContactRequest {
            request_id: rid(),
            customer_id: duplicate.clone(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            note: String::new(),
            contacted_at: None,
        })
        .await
        .expect("contact");
    // The duplicate's cases: one called back (coverage), one waiting for its callback.
    let (called, _) = file(&mut agent, &duplicate, pb::Severity::Normal, "").await;
    handle_to_close(app, &called).await;
    agent
        .callbacks
        .log_callback(complaint_callback(&duplicate, &called, "fine"))
        .await
        .expect("cb");
    let (waiting, _) = file(&mut agent, &duplicate, pb::Severity::Normal, "").await;
    let at = handle_to_close(app, &waiting).await;

    let before = reports(&mut admin, &survivor, at).await;
    assert_eq!(
        before,
        Reports {
            referrals: vec![(duplicate.clone(), 1)],
            survivor_cases: 0,
            vip_coverage: (2, 1),
            a1_customers: 3,
            not_contacted: sorted(vec![survivor.clone(), referred.clone()]),
            contact_at_risk: sorted(vec![survivor.clone(), referred.clone()]),
            due: sorted(vec![
                (survivor.clone(), NewCustomerContact),
                (survivor.clone(), RoutineCallback),
                (duplicate.clone(), ComplaintCallback),
                (duplicate.clone(), RoutineCallback),
                (referred.clone(), NewCustomerContact),
            ]),
        }
    );

    let mut supervisor = app.clients(Some("s1")).await;
    let request = merge_request(&duplicate, &survivor);
    let merged = supervisor.customers.merge_customers(request.clone()).await.expect("merge");
    let merged = merged.into_inner();
    let retried = supervisor.customers.merge_customers(request).await.expect("retry").into_inner();
    assert_eq!(retried, merged, "a retried merge answers as the first time");
    let at = merged.survivor.as_ref().expect("survivor").position;

    let after = reports(&mut admin, &survivor, at).await;
    assert_eq!(
        after,
        Reports {
            referrals: vec![(survivor.clone(), 1)],
            survivor_cases: 2,
            vip_coverage: (1, 1),
            a1_customers: 2,
            // The person was contacted (as the duplicate).
            not_contacted: vec![referred.clone()],
            // Nor is a merged duplicate's contact at risk: the survivor was reached.
            contact_at_risk: vec![referred.clone()],
            due: sorted(vec![
                (survivor.clone(), ComplaintCallback),
                (survivor.clone(), RoutineCallback),
                (referred.clone(), NewCustomerContact),
            ]),
        }
    );
    // Found by the duplicate's number, as the survivor.
    assert_eq!(
        find(&mut agent, "139 0013 9000", at).await,
        [(survivor.clone(), pb::MatchKind::Phone)]
    );
    assert_eq!(find(&mut agent, "王芳", at).await, [(survivor.clone(), pb::MatchKind::NameExact)]);
    // One event on each stream.
    let first = merged.duplicate.as_ref().expect("duplicate").position.min(at);
    let events = admin
        .events
        .read_all(pb::ReadAllRequest { from_position: first, limit: 2, categories: vec![] })
        .await
        .expect("read all")
        .into_inner()
        .events;
    let written: Vec<(String, String)> =
        events.into_iter().map(|e| (e.stream_id, e.event_type)).collect();
    assert_eq!(
        written,
        [
            (format!("customer-{duplicate}"), "CustomerMerged".to_owned()),
            (format!("customer-{survivor}"), "CustomerAbsorbed".to_owned()),
        ]
    );
}

async fn a_merged_duplicate_names_its_survivor_and_takes_no_more_writes(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let (survivor, _) =
        register(&mut agent, registration("王芳", &["13800138000"], &[], "", Internal)).await;
    let (duplicate, _) =
        register(&mut agent, registration("王芳", &["13900139000"], &[], "", Internal)).await;
    let (other, _) = register(&mut agent, registration("李雷", &[], &[], "", Internal)).await;
    merge(&mut supervisor, &duplicate, &survivor).await;

    let shown = get(&mut agent, &duplicate).await.expect("get the duplicate");
    assert_eq!(shown.merged_into, survivor, "{shown:?}");
    assert_eq!(shown.name, "王芳", "its own record, marked merged");
    assert_eq!(get(&mut agent, &survivor).await.expect("survivor").absorbed, [duplicate.as_str()]);

    let merged = |result: Result<_, tonic::Status>, what: &str| {
        let status = result.expect_err(what);
        assert_eq!(status.code(), Code::FailedPrecondition, "{what}: {status:?}");
        assert_eq!(reason(&status).as_deref(), Some("CUSTOMER_MERGED"), "{what}");
    };
    let update = pb::UpdateCustomerRequest {
        request_id: rid(),
        customer_id: duplicate.clone(),
        expected_version: None,
        name: Some("王芳芳".into()),
        contacts: None,
        confidentiality: 0,
    };
    merged(agent.customers.update_customer(update).await.map(drop), "update");
    let grade = pb::GradeCustomerRequest {
        request_id: rid(),
        customer_id: duplicate.clone(),
        expected_version: None,
        tier: pb::Tier::Vip as i32,
        stars: 0,
        reason: "spend".into(),
    };
    merged(agent.customers.grade_customer(grade).await.map(drop), "grade");
    let contact = pb::RecordContactRequest {
        request_id: rid(),
        customer_id: duplicate.clone(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        note: String::new(),
        contacted_at: None,
    };
    merged(agent.customers.record_contact(contact).await.map(drop), "contact");
    let filing = kefu_tests::flows::file_request(&duplicate, pb::Severity::Normal, "");
    merged(agent.complaints.file_complaint(filing).await.map(drop), "file a complaint");
    merged(
        supervisor.customers.merge_customers(merge_request(&duplicate, &other)).await.map(drop),
        "merge away again",
    );
    merged(
        supervisor.customers.merge_customers(merge_request(&other, &duplicate)).await.map(drop),
        "absorb",
    );
    let status = supervisor
        .customers
        .merge_customers(merge_request(&survivor, &survivor))
        .await
        .expect_err("into itself");
    assert_eq!(
        (status.code(), reason(&status).as_deref()),
        (Code::InvalidArgument, Some("MERGE_INTO_ITSELF"))
    );
    let listed = agent
        .customers
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect("list")
        .into_inner()
        .customers;
    assert!(listed.iter().all(|c| c.customer_id != duplicate), "listed as its survivor only");

    // The survivor merged away in turn: reads of the first duplicate name the last survivor.
    let at = merge(&mut supervisor, &survivor, &other).await;
    assert_eq!(get(&mut agent, &duplicate).await.expect("get").merged_into, other);
    assert_eq!(find(&mut agent, "13900139000", at).await, [(other.clone(), pb::MatchKind::Phone)]);
    let mut absorbed = get(&mut agent, &other).await.expect("other").absorbed;
    absorbed.sort();
    assert_eq!(absorbed, sorted(vec![survivor, duplicate]));
}

async fn merging_across_levels_needs_a_supervisor_cleared_for_both(app: &TestApp) {
    super::staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let (internal, _) =
        register(&mut admin, registration("王芳", &["13800138000"], &[], "", Internal)).await;
    let (confidential, _) =
        register(&mut admin, registration("王芳", &[], &[], "", Confidential)).await;
    let (secret, _) = register(&mut admin, registration("王芳", &[], &[], "", Secret)).await;
    let nobody = uuid::Uuid::now_v7().to_string();

    // s1 is a supervisor cleared for confidential: the secret record is "not found",
    // answered exactly as a record that does not exist.
    let mut s1 = app.clients(Some("s1")).await;
    let refusal = |status: tonic::Status| {
        (status.code(), reason(&status), kefu_tests::violated_fields(&status))
    };
    let into_secret =
        s1.customers.merge_customers(merge_request(&internal, &secret)).await.expect_err("secret");
    let into_nobody =
        s1.customers.merge_customers(merge_request(&internal, &nobody)).await.expect_err("nobody");
    assert_eq!(into_secret.code(), Code::NotFound, "{into_secret:?}");
    assert_eq!(refusal(into_secret.clone()), refusal(into_nobody.clone()));
    assert_eq!(
        into_secret.message().replace(&secret, "ID"),
        into_nobody.message().replace(&nobody, "ID"),
        "the same words"
    );
    let from_secret =
        s1.customers.merge_customers(merge_request(&secret, &internal)).await.expect_err("secret");
    assert_eq!(from_secret.code(), Code::NotFound);
    assert!(
        get(&mut admin, &internal).await.expect("get").merged_into.is_empty(),
        "nothing written"
    );

    // Roles: only supervisors merge (the director and compliance officer are cleared but
    // are not supervisors; agents are neither).
    for who in ["a1", "d1", "co1", "an1"] {
        let mut clients = app.clients(Some(who)).await;
        let status = clients
            .customers
            .merge_customers(merge_request(&internal, &confidential))
            .await
            .expect_err(who);
        assert_eq!(status.code(), Code::PermissionDenied, "{who}");
    }
    // Cleared for both: internal into confidential.
    merge(&mut s1, &internal, &confidential).await;
    // The administrator (a supervisor cleared for secret) classifies it further up.
    let at = merge(&mut admin, &confidential, &secret).await;
    // The internal record now reads as the secret survivor: internal agents see nothing.
    let mut agent = app.clients(Some("a1")).await;
    assert_eq!(get(&mut agent, &internal).await.expect_err("classified").code(), Code::NotFound);
    assert!(find(&mut agent, "13800138000", at).await.is_empty());
    assert!(find(&mut s1, "13800138000", at).await.is_empty(), "confidential is not enough");
    assert_eq!(find(&mut admin, "13800138000", at).await, [(secret.clone(), pb::MatchKind::Phone)]);
    let shown = get(&mut admin, &internal).await.expect("get");
    assert_eq!((shown.merged_into, shown.confidentiality), (secret, Secret as i32));
}

/// The duplicate's name as `clients` reads its registration on the event feed: `None`
/// when redacted.
async fn name_on_the_feed(clients: &mut Clients, customer_id: &str) -> Option<String> {
    let request = pb::ReadAllRequest { from_position: 1, limit: 1_000, categories: Vec::new() };
    let events = clients.events.read_all(request).await.expect("read all").into_inner().events;
    let stream = format!("customer-{customer_id}");
    let registered = events
        .iter()
        .find(|e| e.stream_id == stream && e.event_type == "CustomerRegistered")
        .expect("the registration is on the feed");
    if registered.redacted_fields.iter().any(|field| field == "name") {
        return None;
    }
    let payload: serde_json::Value =
        serde_json::from_str(&registered.payload_json).expect("payload json");
    Some(payload["name"].as_str().expect("name").to_owned())
}

/// R-C6: merging an internal record into a secret one classifies it: its history on the
/// feed, its complaints in lists and single reads, are at the secret level from then on.
async fn a_merged_duplicate_is_read_at_its_survivors_level_on_every_read_path(app: &TestApp) {
    super::staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let (duplicate, _) =
        register(&mut admin, registration("李雷", &["13700137000"], &[], "", Internal)).await;
    let (survivor, _) = register(&mut admin, registration("李雷", &[], &[], "", Secret)).await;
    let filing = kefu_tests::flows::file_request(&duplicate, pb::Severity::Normal, "");
    let filed = admin.complaints.file_complaint(filing).await.expect("file").into_inner();
    let filed = filed.result.expect("result");
    let case = filed.id;
    // s1: a supervisor cleared for confidential; svc-web: a service cleared for internal.
    let mut s1 = app.clients(Some("s1")).await;
    let mut feed = app.clients(Some("svc-web")).await;
    let listed = |s1: &mut Clients, at: u64| {
        let mut s1 = s1.clone();
        async move {
            let request = pb::ListComplaintsRequest {
                min_position: at,
                page_size: 500,
                ..Default::default()
            };
            let page = s1.complaints.list_complaints(request).await.expect("list").into_inner();
            page.complaints.into_iter().map(|c| c.complaint_id).collect::<Vec<_>>()
        }
    };
    assert_eq!(name_on_the_feed(&mut feed, &duplicate).await.as_deref(), Some("李雷"));
    assert!(listed(&mut s1, filed.position).await.contains(&case), "internal: listed");
    let get_case = |case: &str| pb::GetComplaintRequest { complaint: case.to_owned() };
    s1.complaints.get_complaint(get_case(&case)).await.expect("readable before");

    let at = merge(&mut admin, &duplicate, &survivor).await;
    assert!(!listed(&mut s1, at).await.contains(&case), "the case is secret now");
    let status = s1.complaints.get_complaint(get_case(&case)).await.expect_err("secret now");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(name_on_the_feed(&mut feed, &duplicate).await, None, "redacted at secret");
    let mut cleared = app.clients(Some("svc-sec")).await;
    assert_eq!(name_on_the_feed(&mut cleared, &duplicate).await.as_deref(), Some("李雷"));
    let mut co1 = app.clients(Some("co1")).await;
    let request = pb::ListComplaintsRequest { min_position: at, ..Default::default() };
    let all = co1.complaints.list_complaints(request).await.expect("list").into_inner();
    assert!(all.complaints.iter().any(|c| c.complaint_id == case), "compliance, secret, sees it");
}
