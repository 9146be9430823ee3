//! Issue 16, the holes left after the fourth attack, each over gRPC on SQLite and
//! PostgreSQL: every path reads a customer's information at the customer's current level
//! (R-C6), the read models' lists, lookups and reports as the feed; a merged duplicate
//! and a leaver's duplicates have a cleared owner; only agents own customers.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{db, reason, rid, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    list_rows_follow_the_customers_level_through_a_declassification_and_a_raise,
    a_customer_record_is_read_listed_and_found_at_its_current_level,
    materials_follow_the_customers_level_on_every_path,
    a_merged_duplicate_is_owned_by_its_survivors_agent,
    a_leavers_merged_duplicate_follows_its_survivor_not_the_leaver,
    only_a_staff_member_with_the_agent_role_owns_a_customer,
    the_referral_report_names_a_referrer_at_its_current_level,
    coverage_is_answered_for_now_and_ahead_and_refused_for_the_past,
);

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

/// A secret customer owned by the cleared agent, registered by the admin.
async fn secret_customer(app: &TestApp, admin: &mut Clients, name: &str) -> String {
    register_cleared_agent(app).await;
    let request = customer_request(name, pb::Confidentiality::Secret, CLEARED_AGENT);
    let registered = admin.customers.register_customer(request).await.expect("register");
    registered.into_inner().result.expect("result").id
}

/// Declassifies `customer` to public; the log position of that write.
async fn declassify(admin: &mut Clients, customer: &str) -> u64 {
    reclassify(admin, customer, pb::Confidentiality::Public).await
}

/// Classifies `customer` at `to`; the log position of that write.
async fn reclassify(admin: &mut Clients, customer: &str, to: pb::Confidentiality) -> u64 {
    let update = classify(customer, to);
    let updated = admin.customers.update_customer(update).await.expect("classify");
    updated.into_inner().result.expect("result").position
}

/// Waits until both read models a case list joins include `position`.
async fn caught_up(clients: &mut Clients, position: u64) {
    let wait = pb::ListCustomersRequest { min_position: position, ..Default::default() };
    clients.customers.list_customers(wait).await.expect("customers caught up");
}

fn list(customer: &str, category: &str, position: u64) -> pb::ListComplaintsRequest {
    pb::ListComplaintsRequest {
        customer_id: customer.to_owned(),
        category: category.to_owned(),
        min_position: position,
        ..Default::default()
    }
}

/// Item 1 (R-C6): `ListComplaints` rows answered a filing's category, cause and
/// respondent by a rule other than the feed's. Now a row is read at its customer's
/// current level: hidden while secret, released by a cleared classifier's
/// declassification (history included), hidden again once raised, and a category filter
/// or a page token tells no more than the rows.
async fn list_rows_follow_the_customers_level_through_a_declassification_and_a_raise(
    app: &TestApp,
) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = secret_customer(app, &mut admin, "Listed Secret Person").await;
    let (secret_era, _) = file(&mut admin, &customer, pb::Severity::Normal, "r1").await;
    let mut co_int = app.clients(Some("co-int")).await;
    let head = db::head(app.db.url()).await;
    caught_up(&mut admin, head).await;
    let listed = co_int.complaints.list_complaints(list(&customer, "", head)).await;
    assert!(listed.expect("list").into_inner().complaints.is_empty(), "secret: not listed");

    declassify(&mut admin, &customer).await;
    let mut filing = file_request(&customer, pb::Severity::Normal, "r1");
    filing.category = "billing".into();
    let filed = admin.complaints.file_complaint(filing).await.expect("file").into_inner();
    let public_era = filed.result.expect("result");
    caught_up(&mut admin, public_era.position).await;
    let listed = co_int
        .complaints
        .list_complaints(list(&customer, "", public_era.position))
        .await
        .expect("list")
        .into_inner()
        .complaints;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let row = listed.iter().find(|row| row.complaint_id == secret_era).expect("secret-era row");
    assert_eq!((row.category.as_str(), row.respondent.as_str()), ("service", "r1"), "{row:?}");
    assert!(row.redacted_fields.is_empty(), "released by the declassification: {row:?}");
    let by_category = co_int
        .complaints
        .list_complaints(list(&customer, "service", public_era.position))
        .await
        .expect("list by category")
        .into_inner()
        .complaints;
    assert_eq!(by_category.len(), 1, "{by_category:?}");
    assert_eq!(by_category[0].complaint_id, secret_era);

    let raised = reclassify(&mut admin, &customer, pb::Confidentiality::Secret).await;
    caught_up(&mut admin, raised).await;
    for category in ["", "service", "billing"] {
        let mut request = list(&customer, category, raised);
        request.page_size = 1;
        let page = co_int.complaints.list_complaints(request).await.expect("list").into_inner();
        assert!(page.complaints.is_empty(), "raised: {page:?}");
        assert!(page.next_page_token.is_empty(), "a token would tell a row: {page:?}");
    }
    // The secret-cleared reader sees every filing as recorded.
    let all = admin
        .complaints
        .list_complaints(list(&customer, "", raised))
        .await
        .expect("list")
        .into_inner()
        .complaints;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|row| row.redacted_fields.is_empty()), "{all:?}");
}

const SECRET_NAME: &str = "Qqsecretname Person";
const SECRET_PHONE: &str = "13800001111";

fn rows(position: u64) -> pb::ListCustomersRequest {
    pb::ListCustomersRequest {
        agent: CLEARED_AGENT.into(),
        min_position: position,
        page_size: 1,
        ..Default::default()
    }
}

fn find(query: &str, by: pb::FindBy, position: u64) -> pb::FindCustomersRequest {
    pb::FindCustomersRequest {
        query: query.to_owned(),
        by: by as i32,
        min_position: position,
        page_size: 1,
        ..Default::default()
    }
}

/// Nothing of `customer`'s record reaches `clients`, and no token or match tells it.
async fn hidden(clients: &mut Clients, customer: &str, position: u64) {
    let get = pb::GetCustomerRequest { customer_id: customer.to_owned() };
    let refused = clients.customers.get_customer(get).await.expect_err("above clearance");
    assert!(!format!("{refused:?}").contains("Qqsecretname"));
    let listed = clients.customers.list_customers(rows(position)).await.expect("list");
    let listed = listed.into_inner();
    assert!(listed.customers.is_empty() && listed.next_page_token.is_empty(), "{listed:?}");
    for (query, by) in [(SECRET_PHONE, pb::FindBy::Phone), ("Qqsecretname", pb::FindBy::Name)] {
        let found = clients.customers.find_customers(find(query, by, position)).await;
        let found = found.expect("find").into_inner();
        assert!(found.matches.is_empty() && found.next_page_token.is_empty(), "{found:?}");
    }
}

/// Item 2 (R-C6): `GetCustomer`, `ListCustomers` and `FindCustomers` (and the
/// page tokens and filters behind them) read a record at the customer's current level:
/// nothing of a secret record reaches a caller cleared below it, all of it once a
/// cleared classifier declassifies it, and nothing again once it is raised.
async fn a_customer_record_is_read_listed_and_found_at_its_current_level(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = secret_customer(app, &mut admin, SECRET_NAME).await;
    let head = db::head(app.db.url()).await;
    let mut co_int = app.clients(Some("co-int")).await;
    let get = pb::GetCustomerRequest { customer_id: customer.clone() };
    hidden(&mut co_int, &customer, head).await;

    let position = declassify(&mut admin, &customer).await;
    let got = co_int.customers.get_customer(get.clone()).await.expect("get").into_inner();
    let shown = got.customer.expect("customer");
    assert_eq!(shown.name, SECRET_NAME, "released by the declassification");
    assert!(shown.contacts.is_some() && shown.redacted_fields.is_empty(), "{shown:?}");
    let listed = co_int.customers.list_customers(rows(position)).await.expect("list");
    let listed = listed.into_inner().customers;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, SECRET_NAME);
    for (query, by) in [(SECRET_PHONE, pb::FindBy::Phone), ("Qqsecretname", pb::FindBy::Name)] {
        let found = co_int.customers.find_customers(find(query, by, position)).await;
        let matches = found.expect("find").into_inner().matches;
        assert_eq!(matches.len(), 1, "found by {query}: {matches:?}");
    }

    let position = reclassify(&mut admin, &customer, pb::Confidentiality::Secret).await;
    hidden(&mut co_int, &customer, position).await;
    let all = admin.customers.get_customer(get).await.expect("get").into_inner();
    let all = all.customer.expect("customer");
    assert!(all.redacted_fields.is_empty() && all.contacts.is_some(), "{all:?}");
}

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const PUBLIC_DIGEST: &str = "0000d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn material(case: &str, reference: &str, digest: &str) -> pb::AddMaterialRequest {
    pb::AddMaterialRequest {
        request_id: rid(),
        complaint_id: case.to_owned(),
        expected_version: None,
        reference: reference.to_owned(),
        media_type: "application/pdf".into(),
        size_bytes: 1_234,
        sha256: digest.into(),
        supersedes: 0,
        reason: String::new(),
    }
}

/// Item 3 (R-C6, R-P2): `GetComplaint`'s and `GetCaseAsOf`'s `materials` and the
/// dossier's states followed a rule of their own. Now materials (added, or attached at
/// filing, while the customer was secret) are read at the customer's current level on
/// every path: all of them once declassified, none once raised again.
async fn materials_follow_the_customers_level_on_every_path(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = secret_customer(app, &mut admin, "Material Secret Person").await;
    let (case, number) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
    admin.complaints.assign_handler(assign(&case, CLEARED_AGENT)).await.expect("assign");
    let mut handler = app.clients(Some(CLEARED_AGENT)).await;
    let secret_doc = "doc://QQMATSECRETQQ";
    handler.complaints.add_material(material(&case, secret_doc, DIGEST)).await.expect("secret era");
    declassify(&mut admin, &customer).await;
    let public_doc = "doc://QQMATPUBLICQQ";
    handler
        .complaints
        .add_material(material(&case, public_doc, PUBLIC_DIGEST))
        .await
        .expect("public era");
    // The filing's attachment (`file_request`) was recorded while secret too.
    let canaries = [secret_doc, "doc://letters/1", DIGEST, public_doc];
    let holds = |shown: &str| -> Vec<&str> {
        canaries.iter().copied().filter(|canary| shown.contains(canary)).collect()
    };

    let mut co_int = app.clients(Some("co-int")).await;
    let get = pb::GetComplaintRequest { complaint: number.clone() };
    let got = co_int.complaints.get_complaint(get.clone()).await.expect("get").into_inner();
    let complaint = got.complaint.expect("complaint");
    let materials: Vec<&str> = complaint.materials.iter().map(|m| m.reference.as_str()).collect();
    assert_eq!(materials, ["doc://letters/1", secret_doc, public_doc], "{complaint:?}");
    assert_eq!(complaint.materials[1].sha256, DIGEST);
    assert!(complaint.redacted_fields.is_empty(), "{complaint:?}");
    let as_of = pb::GetCaseAsOfRequest {
        complaint: number.clone(),
        point: Some(pb::get_case_as_of_request::Point::Version(3)),
    };
    let state = co_int.audit.get_case_as_of(as_of.clone()).await.expect("as of").into_inner();
    let shown = format!("{:?}", state.complaint.expect("complaint").materials);
    assert_eq!(holds(&shown), [secret_doc, "doc://letters/1", DIGEST], "GetCaseAsOf: {shown}");
    let export = pb::ExportCaseRequest { complaint: number.clone() };
    let dossier = co_int.audit.export_case(export.clone()).await.expect("export").into_inner();
    assert_eq!(holds(&dossier.dossier_json), canaries, "ExportCase");

    reclassify(&mut admin, &customer, pb::Confidentiality::Secret).await;
    let shown = co_int.complaints.get_complaint(get.clone()).await;
    assert_eq!(holds(&format!("{shown:?}")), Vec::<&str>::new(), "GetComplaint: {shown:?}");
    let shown = co_int.audit.get_case_as_of(as_of).await;
    assert_eq!(holds(&format!("{shown:?}")), Vec::<&str>::new(), "GetCaseAsOf: {shown:?}");
    let shown = co_int.audit.export_case(export).await;
    assert_eq!(holds(&format!("{shown:?}")), Vec::<&str>::new(), "ExportCase: {shown:?}");

    let all = admin.complaints.get_complaint(get).await.expect("get").into_inner();
    let materials = all.complaint.expect("complaint").materials;
    assert_eq!(materials[1].reference, secret_doc, "the cleared reader sees it");
}

/// A duplicate `a1` owns merged into a survivor `a2` owns; their ids.
async fn merged_pair(admin: &mut Clients) -> (String, String) {
    let request = customer_request("Merged Duplicate", pb::Confidentiality::Internal, "a1");
    let duplicate = admin.customers.register_customer(request).await.expect("register");
    let duplicate = duplicate.into_inner().result.expect("result").id;
    let request = customer_request("Merged Survivor", pb::Confidentiality::Internal, "a2");
    let survivor = admin.customers.register_customer(request).await.expect("register");
    let survivor = survivor.into_inner().result.expect("result").id;
    let merge = pb::MergeCustomersRequest {
        request_id: rid(),
        duplicate_id: duplicate.clone(),
        survivor_id: survivor.clone(),
        reason: "one person".into(),
        duplicate_expected_version: None,
        survivor_expected_version: None,
    };
    admin.customers.merge_customers(merge).await.expect("merge");
    (duplicate, survivor)
}

async fn agent_of(clients: &mut Clients, customer: &str) -> String {
    let get = pb::GetCustomerRequest { customer_id: customer.to_owned() };
    let got = clients.customers.get_customer(get).await.expect("get").into_inner();
    got.customer.expect("customer").agent
}

/// Item 5a (R-C3, R-C6): a merged duplicate kept the agent it had before the merge, so
/// once its survivor was raised above that agent, the duplicate (read as part of the
/// survivor) named an owner not cleared for it.
async fn a_merged_duplicate_is_owned_by_its_survivors_agent(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let (duplicate, survivor) = merged_pair(&mut admin).await;
    assert_eq!(agent_of(&mut admin, &duplicate).await, "a2", "the survivor's owner");
    let assign = pb::AssignAgentRequest {
        request_id: rid(),
        customer_id: survivor.clone(),
        expected_version: None,
        agent: CLEARED_AGENT.into(),
        reason: "raised next".into(),
    };
    admin.customers.assign_agent(assign).await.expect("assign a cleared agent");
    admin
        .customers
        .update_customer(classify(&survivor, pb::Confidentiality::Secret))
        .await
        .expect("raise");
    assert_eq!(agent_of(&mut admin, &duplicate).await, CLEARED_AGENT);
    assert_eq!(agent_of(&mut admin, &survivor).await, CLEARED_AGENT);
}

/// Item 5b (R-C3): `RecordDeparture` left the leaver's merged duplicates naming the
/// leaver as their owner.
async fn a_leavers_merged_duplicate_follows_its_survivor_not_the_leaver(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let (duplicate, _) = merged_pair(&mut admin).await;
    let depart = pb::RecordDepartureRequest {
        request_id: rid(),
        staff_id: "a1".into(),
        reason: "left".into(),
    };
    admin.staff.record_departure(depart).await.expect("a1 leaves");
    assert_eq!(agent_of(&mut admin, &duplicate).await, "a2", "nobody who left owns it");
}

/// Item 5c (R-C3): a staff member without the agent role (a supervisor whose token
/// reads customers) was accepted as the named agent of `RegisterCustomer` and
/// `AssignAgent`.
async fn only_a_staff_member_with_the_agent_role_owns_a_customer(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let request = customer_request("Owned By Whom", pb::Confidentiality::Internal, "s1");
    let refused = admin.customers.register_customer(request).await.expect_err("not an agent");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused).as_deref(), Some("NOT_AN_AGENT"));
    let customer = register_customer(&mut admin, "Owned By An Agent").await;
    let assign = pb::AssignAgentRequest {
        request_id: rid(),
        customer_id: customer.clone(),
        expected_version: None,
        agent: "s1".into(),
        reason: "try".into(),
    };
    let refused = admin.customers.assign_agent(assign).await.expect_err("not an agent");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused).as_deref(), Some("NOT_AN_AGENT"));
    assert_eq!(agent_of(&mut admin, &customer).await, "a1", "nothing written");
}

/// Sixth attack, F1 (R-C6, R-R4): the referral report named a referrer by a rule of its
/// own. Now a referrer is named at its current level, as `GetCustomer` shows it: not
/// listed while secret, named once a cleared classifier declassifies it, gone again
/// once raised.
async fn the_referral_report_names_a_referrer_at_its_current_level(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let referrer = secret_customer(app, &mut admin, "Qqreferrer Secretname").await;
    let mut referred = customer_request("Referred Person", pb::Confidentiality::Public, "a1");
    referred.referred_by = referrer.clone();
    let registered = admin.customers.register_customer(referred).await.expect("register");
    let position = registered.into_inner().result.expect("result").position;
    let report =
        |position| pb::GetReferralReportRequest { min_position: position, ..Default::default() };
    let mut co_int = app.clients(Some("co-int")).await;
    let answer = co_int.reports.get_referral_report(report(position)).await.expect("report");
    let answer = answer.into_inner();
    assert!(!format!("{answer:?}").contains(&referrer), "secret: not listed {answer:?}");
    assert!(!format!("{answer:?}").contains("Qqreferrer"), "{answer:?}");

    let position = declassify(&mut admin, &referrer).await;
    let answer = co_int.reports.get_referral_report(report(position)).await.expect("report");
    let answer = answer.into_inner();
    let row = answer.referrals.iter().find(|r| r.referrer_id == referrer).expect("now public");
    assert_eq!(
        (row.referrer_name.as_str(), row.referrer_name_redacted, row.referred),
        ("Qqreferrer Secretname", false, 1)
    );

    let position = reclassify(&mut admin, &referrer, pb::Confidentiality::Secret).await;
    let answer = co_int.reports.get_referral_report(report(position)).await.expect("report");
    let answer = answer.into_inner();
    assert!(!format!("{answer:?}").contains(&referrer), "raised: not listed {answer:?}");
    assert!(!format!("{answer:?}").contains("Qqreferrer"), "{answer:?}");
}

/// Sixth attack, F8 (R-C5): `GetSatisfactionMetrics` at an `as_of` a year ago answered a
/// coverage that counted customers registered and callbacks logged after it (the read
/// model keeps each customer's last callback only). Now and ahead are answered; an
/// earlier instant is `INVALID_ARGUMENT` on `as_of` (a minute's clock skew allowed).
async fn coverage_is_answered_for_now_and_ahead_and_refused_for_the_past(app: &TestApp) {
    standard_staff(app).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let at = |offset: chrono::Duration| {
        let instant = chrono::Utc::now() + offset;
        Some(prost_types::Timestamp { seconds: instant.timestamp(), nanos: 0 })
    };
    let ask = |as_of| pb::GetSatisfactionMetricsRequest { as_of, ..Default::default() };
    for offset in [chrono::Duration::days(-365), chrono::Duration::hours(-1)] {
        let refused = supervisor.reports.get_satisfaction_metrics(ask(at(offset))).await;
        let refused = refused.expect_err("a past coverage cannot be exact");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(kefu_tests::violated_fields(&refused), ["as_of"], "{refused:?}");
    }
    for as_of in [None, at(chrono::Duration::seconds(-5)), at(chrono::Duration::days(30))] {
        let answer = supervisor.reports.get_satisfaction_metrics(ask(as_of)).await;
        assert_eq!(answer.expect("now or ahead").into_inner().coverage.len(), 3);
    }
}

/// R-C6 at once: a raise is acknowledged before the read models apply it, and a list
/// answered from a read model that has not yet must not show the raised customer's rows
/// (the feed's reader reads the customer's stream). PostgreSQL lets the test hold the
/// read models back: an `EXCLUSIVE` lock on their tables stops the projections' writes
/// and lets reads through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raise_the_read_models_have_not_applied_yet_hides_the_rows_postgres() {
    use sqlx::{Connection, Executor};
    // The raise's sweep of open work waits this long for the held-back read models, then
    // answers without it (the raise is committed).
    let short_wait = |settings: &mut kefu::Settings, _: &std::path::Path| {
        settings.read_wait = std::time::Duration::from_secs(1);
    };
    let Some(app) = kefu_tests::spawn_app_with(kefu_testkit::Backend::Postgres, short_wait).await
    else {
        return;
    };
    standard_staff(&app).await;
    let mut admin = app.clients(Some("admin")).await;
    let request =
        customer_request("Qqsecretname Person", pb::Confidentiality::Public, CLEARED_AGENT);
    register_cleared_agent(&app).await;
    let registered = admin.customers.register_customer(request).await.expect("register");
    let customer = registered.into_inner().result.expect("result").id;
    let (_, _) = file(&mut admin, &customer, pb::Severity::Normal, "r1").await;
    let asked = pb::ReceiveRequestRequest {
        request_id: rid(),
        customer_id: customer.clone(),
        kind: pb::RequestKind::Inquiry as i32,
        channel: pb::IntakeChannel::Phone as i32,
        category: "service".into(),
        description: "a question".into(),
        received_at: None,
        // Held by someone cleared for the raise (issue 22 F1).
        agent: CLEARED_AGENT.into(),
    };
    admin.requests.receive_request(asked).await.expect("a request");
    let head = db::head(app.db.url()).await;
    caught_up(&mut admin, head).await;
    let mut co_int = app.clients(Some("co-int")).await;
    let listed = co_int.customers.list_customers(rows(head)).await.expect("list");
    assert_eq!(listed.into_inner().customers.len(), 1, "listed while public");

    let mut hold = sqlx::PgConnection::connect(app.db.url()).await.expect("connect");
    hold.execute("BEGIN").await.expect("begin");
    let tables = "rm_customers, rm_complaints, rm_requests";
    hold.execute(format!("LOCK TABLE {tables} IN EXCLUSIVE MODE").as_str()).await.expect("lock");
    reclassify(&mut admin, &customer, pb::Confidentiality::Secret).await;
    let listed = co_int.customers.list_customers(rows(0)).await.expect("list").into_inner();
    assert!(listed.customers.is_empty(), "raised: {listed:?}");
    let found = co_int.customers.find_customers(find(SECRET_PHONE, pb::FindBy::Phone, 0)).await;
    assert!(found.expect("find").into_inner().matches.is_empty());
    let cases = co_int.complaints.list_complaints(list(&customer, "", 0)).await.expect("list");
    assert!(cases.into_inner().complaints.is_empty(), "raised: its cases are not listed");
    let asked = pb::ListRequestsRequest { customer_id: customer.clone(), ..Default::default() };
    let requests = co_int.requests.list_requests(asked).await.expect("list requests");
    assert!(requests.into_inner().requests.is_empty(), "raised: its requests are not listed");
    let text = format!("{listed:?}");
    assert!(!text.contains("Qqsecretname"), "{text}");
    hold.execute("ROLLBACK").await.expect("release");
    app.stop().await;
}
