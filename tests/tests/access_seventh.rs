//! Issue 16, seventh attack, over gRPC on SQLite and PostgreSQL: a merge never lowers a
//! level (R-C6). A secret record merged into a public one was read at the survivor's
//! level by the access checks and the search keys but at its own by the feed, so public
//! callers found the secret person by name and phone and acted on their case. Now the
//! merge is refused until a classifier raises the survivor; after it, the merged record
//! reads at its survivor's level on every path, a declassification releasing both.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{db, reason, rid, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    a_merge_never_lowers_a_level_and_the_merged_record_follows_its_survivor,
    a_merged_record_takes_no_new_request,
    erasing_a_merged_duplicate_erases_the_merges_reason,
);

const HIDDEN_NAME: &str = "Zorblax Hiddenperson";
const HIDDEN_PHONE: &str = "+86 137 0000 4242";

async fn register(admin: &mut Clients, request: pb::RegisterCustomerRequest) -> String {
    let registered = admin.customers.register_customer(request).await.expect("register");
    registered.into_inner().result.expect("result").id
}

fn merge(duplicate: &str, survivor: &str) -> pb::MergeCustomersRequest {
    pb::MergeCustomersRequest {
        request_id: rid(),
        duplicate_id: duplicate.to_owned(),
        survivor_id: survivor.to_owned(),
        reason: "one person".into(),
        duplicate_expected_version: None,
        survivor_expected_version: None,
    }
}

fn classify(customer_id: &str, to: pb::Confidentiality) -> pb::UpdateCustomerRequest {
    pb::UpdateCustomerRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        expected_version: None,
        name: None,
        contacts: None,
        confidentiality: to as i32,
    }
}

fn find(query: &str, by: pb::FindBy, position: u64) -> pb::FindCustomersRequest {
    pb::FindCustomersRequest {
        query: query.to_owned(),
        by: by as i32,
        min_position: position,
        ..Default::default()
    }
}

/// The ids `clients` finds by the duplicate's name prefix and by its phone.
async fn found_by_the_duplicate(clients: &mut Clients, position: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for (query, by) in [("Zorb", pb::FindBy::Name), (HIDDEN_PHONE, pb::FindBy::Phone)] {
        let found = clients.customers.find_customers(find(query, by, position)).await;
        let matches = found.expect("find").into_inner().matches;
        ids.extend(matches.into_iter().filter_map(|m| Some(m.customer?.customer_id)));
    }
    ids
}

/// A secret record with a case, a public record, a public supervisor: the merge of the
/// secret one into the public one is refused (nothing written); with the survivor raised
/// first it goes ahead, and nothing of either reaches the public supervisor, who may not
/// act on the duplicate's case; declassifying the survivor releases both, alike on every
/// path.
async fn a_merge_never_lowers_a_level_and_the_merged_record_follows_its_survivor(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let mut hidden = customer_request(HIDDEN_NAME, pb::Confidentiality::Secret, CLEARED_AGENT);
    hidden.contacts = Some(pb::Contacts {
        phones: vec![HIDDEN_PHONE.into()],
        emails: vec![],
        address: String::new(),
    });
    let duplicate = register(&mut admin, hidden).await;
    let (case, _) = file(&mut admin, &duplicate, pb::Severity::Normal, "").await;
    let plain = customer_request("Plain Survivor", pb::Confidentiality::Public, CLEARED_AGENT);
    let survivor = register(&mut admin, plain).await;

    let head = db::head(app.db.url()).await;
    let refused = admin.customers.merge_customers(merge(&duplicate, &survivor)).await;
    let refused = refused.expect_err("a merge into a lower level");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused).as_deref(), Some("MERGE_LOWERS_LEVEL"));
    assert_eq!(db::head(app.db.url()).await, head, "nothing written");

    let raise = classify(&survivor, pb::Confidentiality::Secret);
    admin.customers.update_customer(raise).await.expect("the classifier raises the survivor");
    let merged = admin.customers.merge_customers(merge(&duplicate, &survivor)).await;
    let position = merged.expect("merge").into_inner().survivor.expect("survivor").position;

    let mut public = app.clients(Some("s-pub")).await;
    assert_eq!(found_by_the_duplicate(&mut public, position).await, Vec::<String>::new());
    let get = pb::GetCustomerRequest { customer_id: duplicate.clone() };
    public.customers.get_customer(get.clone()).await.expect_err("secret, merged or not");
    let get_case = pb::GetComplaintRequest { complaint: case.clone() };
    public.complaints.get_complaint(get_case.clone()).await.expect_err("its case is secret");
    let head = db::head(app.db.url()).await;
    let contact = pb::ContactComplainantRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        summary: "called".into(),
        contacted_at: None,
    };
    let refused = public.complaints.contact_complainant(contact).await.expect_err("not theirs");
    assert!(!format!("{refused:?}").contains("Zorblax"), "{refused:?}");
    let assign = pb::AssignHandlerRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        handler: "h1".into(),
        reason: "public handler".into(),
    };
    public.complaints.assign_handler(assign).await.expect_err("not theirs to assign");
    assert_eq!(db::head(app.db.url()).await, head, "nothing written");

    // The survivor's classifier releases the one record, the duplicate with it.
    let lower = classify(&survivor, pb::Confidentiality::Public);
    let lowered = admin.customers.update_customer(lower).await.expect("declassify");
    let position = lowered.into_inner().result.expect("result").position;
    let found = found_by_the_duplicate(&mut public, position).await;
    assert_eq!(found, [survivor.clone(), survivor.clone()], "found as the survivor");
    let shown = public.customers.get_customer(get).await.expect("released").into_inner();
    let shown = shown.customer.expect("customer");
    assert_eq!(shown.name, HIDDEN_NAME);
    assert!(shown.redacted_fields.is_empty(), "{shown:?}");
    let got = public.complaints.get_complaint(get_case).await.expect("released").into_inner();
    assert!(got.complaint.expect("complaint").redacted_fields.is_empty());
}

/// Sixth finding of the seventh attack: `ReceiveRequest` accepted a merged record,
/// though `FileComplaint` refuses one: a merged duplicate takes nothing new.
async fn a_merged_record_takes_no_new_request(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let duplicate = register(
        &mut admin,
        customer_request("Twice Registered", pb::Confidentiality::Public, "a1"),
    )
    .await;
    let survivor = register(
        &mut admin,
        customer_request("Twice Registered", pb::Confidentiality::Public, "a1"),
    )
    .await;
    let received = pb::ReceiveRequestRequest {
        request_id: rid(),
        customer_id: duplicate.clone(),
        kind: pb::RequestKind::Inquiry as i32,
        channel: pb::IntakeChannel::Phone as i32,
        category: "service".into(),
        description: "asked before the merge".into(),
        received_at: None,
        agent: String::new(),
    };
    let mut service = app.clients(Some("svc-web")).await;
    let earlier = service.requests.receive_request(received).await.expect("before the merge");
    let earlier = earlier.into_inner().result.expect("result").id;
    admin.customers.merge_customers(merge(&duplicate, &survivor)).await.expect("merge");
    let head = db::head(app.db.url()).await;
    // Nor a new case from a request made before the merge (issue 22's escalation).
    let escalate = pb::EscalateToComplaintRequest {
        request_id: rid(),
        service_request_id: earlier,
        expected_version: None,
        cause: "poor_communication".into(),
        severity: pb::Severity::Normal as i32,
        respondent: String::new(),
        reason: "not satisfied".into(),
    };
    let refused = admin.requests.escalate_to_complaint(escalate).await.expect_err("merged");
    assert_eq!(reason(&refused).as_deref(), Some("CUSTOMER_MERGED"), "{refused:?}");
    let receive = pb::ReceiveRequestRequest {
        request_id: rid(),
        customer_id: duplicate.clone(),
        kind: pb::RequestKind::Inquiry as i32,
        channel: pb::IntakeChannel::Phone as i32,
        category: "service".into(),
        description: "where is my order".into(),
        received_at: None,
        agent: String::new(),
    };
    let refused = service.requests.receive_request(receive).await.expect_err("merged");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused).as_deref(), Some("CUSTOMER_MERGED"));
    assert_eq!(db::head(app.db.url()).await, head, "nothing written");
}

/// Fourth finding of the seventh attack (R-C8): the merge's reason was copied onto the
/// survivor's `CustomerAbsorbed`, sealed with the survivor's key, so forgetting the
/// duplicate alone left it readable. It stays on the duplicate's own event only.
async fn erasing_a_merged_duplicate_erases_the_merges_reason(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let request = |name: &str| customer_request(name, pb::Confidentiality::Public, "a1");
    let duplicate = register(&mut admin, request("Merged Away")).await;
    let survivor = register(&mut admin, request("Merged Into")).await;
    let canary = "QQMERGEREASONQQ same phone as the old account";
    let mut merging = merge(&duplicate, &survivor);
    merging.reason = canary.into();
    admin.customers.merge_customers(merging).await.expect("merge");
    let all = pb::ReadAllRequest { from_position: 1, limit: 1_000, categories: Vec::new() };
    let log = admin.events.read_all(all.clone()).await.expect("read all").into_inner().events;
    let quoting: Vec<&str> = log
        .iter()
        .filter(|e| e.payload_json.contains("QQMERGEREASONQQ"))
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(quoting, ["CustomerMerged"], "only the duplicate's own event holds it");

    let forget = pb::ForgetCustomerRequest {
        request_id: rid(),
        customer_id: duplicate.clone(),
        reason: "the customer asked".into(),
    };
    admin.customers.forget_customer(forget).await.expect("forget the duplicate");
    let log = admin.events.read_all(all).await.expect("read all").into_inner().events;
    assert!(!format!("{log:?}").contains("QQMERGEREASONQQ"), "ReadAll after the erasure");
    db::assert_absent_from_files(&app.db, &["QQMERGEREASONQQ"], "after the erasure").await;
    assert!(!db::events_text(app.db.url()).await.contains("QQMERGEREASONQQ"), "sealed");
}

/// Fifth finding of the seventh attack (R-C8, every copy): on PostgreSQL the planner's
/// statistics (`pg_stats`, sampled by `ANALYZE` and autovacuum) kept an erased
/// customer's contacts and search terms. The erasure's purge analyses the tables again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_nothing_in_the_planners_statistics_postgres() {
    use sqlx::Connection;
    let Some(app) = kefu_tests::spawn_app_with(kefu_testkit::Backend::Postgres, |_, _| {}).await
    else {
        return;
    };
    standard_staff(&app).await;
    let mut admin = app.clients(Some("admin")).await;
    let mut request = customer_request("Qqstatsname Person", pb::Confidentiality::Public, "a1");
    request.contacts = Some(pb::Contacts {
        phones: vec!["+86 139 7777 4242".into()],
        emails: vec!["qqstats@example.cn".into()],
        address: String::new(),
    });
    let customer = register(&mut admin, request).await;
    // Someone else stays: PostgreSQL keeps an emptied table's last statistics (see
    // docs/compliance.md), so the test erases one customer of two, as in real use.
    let bystander = customer_request("Bystander Person", pb::Confidentiality::Public, "a1");
    register(&mut admin, bystander).await;
    let position = db::head(app.db.url()).await;
    let wait = pb::ListCustomersRequest { min_position: position, ..Default::default() };
    admin.customers.list_customers(wait).await.expect("caught up");
    let mut conn = sqlx::PgConnection::connect(app.db.url()).await.expect("connect");
    let stats = "SELECT COALESCE(string_agg(COALESCE(most_common_vals::text, '') || \
                 COALESCE(histogram_bounds::text, ''), ' '), '') FROM pg_stats \
                 WHERE schemaname = current_schema()";
    sqlx::query("ANALYZE").execute(&mut conn).await.expect("analyze");
    let sampled: String = sqlx::query_scalar(stats).fetch_one(&mut conn).await.expect("stats");
    assert!(sampled.contains("qqstats"), "the statistics sample the contacts first");

    let forget = pb::ForgetCustomerRequest {
        request_id: rid(),
        customer_id: customer,
        reason: "the customer asked".into(),
    };
    admin.customers.forget_customer(forget).await.expect("forget");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let sampled: String = sqlx::query_scalar(stats).fetch_one(&mut conn).await.expect("stats");
        if !sampled.contains("qqstats") && !sampled.contains("77774242") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still in pg_stats: {sampled}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;
}
