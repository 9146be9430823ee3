//! Issue 16, the holes left after the fourth attack, each over gRPC on SQLite and
//! PostgreSQL: information is released at the level it was recorded under (R-C6), on
//! the read models' lists and the customer record as on the feed; a merged duplicate
//! and a leaver's duplicates have a cleared owner; only agents own customers.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{reason, rid, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    list_rows_withhold_what_a_filing_recorded_while_the_level_was_higher,
    a_customer_record_withholds_what_was_written_while_the_level_was_higher,
    materials_recorded_while_the_level_was_higher_are_withheld_on_every_path,
    a_merged_duplicate_is_owned_by_its_survivors_agent,
    a_leavers_merged_duplicate_follows_its_survivor_not_the_leaver,
    only_a_staff_member_with_the_agent_role_owns_a_customer,
    the_referral_report_withholds_a_referrers_name_written_while_secret,
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
    let update = classify(customer, pb::Confidentiality::Public);
    let updated = admin.customers.update_customer(update).await.expect("declassify");
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

/// Item 1 (R-C6): `ListComplaints` rows showed a secret-era filing's category, cause and
/// respondent to callers cleared below it once the customer was declassified, though
/// the feed, `GetComplaint` and the audit calls withheld them.
async fn list_rows_withhold_what_a_filing_recorded_while_the_level_was_higher(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = secret_customer(app, &mut admin, "Listed Secret Person").await;
    let (secret_era, _) = file(&mut admin, &customer, pb::Severity::Normal, "r1").await;
    declassify(&mut admin, &customer).await;
    let mut filing = file_request(&customer, pb::Severity::Normal, "r1");
    filing.category = "billing".into();
    let filed = admin.complaints.file_complaint(filing).await.expect("file").into_inner();
    let public_era = filed.result.expect("result");
    caught_up(&mut admin, public_era.position).await;

    let mut co_int = app.clients(Some("co-int")).await;
    let listed = co_int
        .complaints
        .list_complaints(list(&customer, "", public_era.position))
        .await
        .expect("list")
        .into_inner()
        .complaints;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let row = listed.iter().find(|row| row.complaint_id == secret_era).expect("secret-era row");
    assert_eq!((row.category.as_str(), row.cause.as_str(), row.respondent.as_str()), ("", "", ""));
    for field in ["category", "cause", "respondent"] {
        assert!(row.redacted_fields.contains(&field.to_owned()), "{field}: {row:?}");
    }
    let row = listed.iter().find(|row| row.complaint_id == public_era.id).expect("public row");
    assert_eq!((row.category.as_str(), row.respondent.as_str()), ("billing", "r1"), "{row:?}");
    assert!(row.redacted_fields.is_empty(), "{row:?}");
    // Filtering by a withheld category would tell it: the row is not matched.
    let by_category = co_int
        .complaints
        .list_complaints(list(&customer, "service", public_era.position))
        .await
        .expect("list by category")
        .into_inner()
        .complaints;
    assert!(by_category.is_empty(), "{by_category:?}");
    // The secret-cleared reader sees the filing as recorded.
    let all = admin
        .complaints
        .list_complaints(list(&customer, "service", public_era.position))
        .await
        .expect("list")
        .into_inner()
        .complaints;
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].category.as_str(), all[0].respondent.as_str()), ("service", "r1"));
    assert!(all[0].redacted_fields.is_empty());
}

const SECRET_NAME: &str = "Qqsecretname Person";
const SECRET_PHONE: &str = "13800001111";

/// Item 2 (R-C6): `GetCustomer`, `ListCustomers` and `FindCustomers` showed the name and
/// phone written while the customer was secret after a declassification.
async fn a_customer_record_withholds_what_was_written_while_the_level_was_higher(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = secret_customer(app, &mut admin, SECRET_NAME).await;
    let position = declassify(&mut admin, &customer).await;

    let mut co_int = app.clients(Some("co-int")).await;
    let get = pb::GetCustomerRequest { customer_id: customer.clone() };
    let got = co_int.customers.get_customer(get.clone()).await.expect("get").into_inner();
    let shown = got.customer.expect("customer");
    assert!(!format!("{shown:?}").contains("Qqsecretname"), "{shown:?}");
    let text = format!("{shown:?}");
    assert!(!text.contains("0000 1111") && !text.contains("00001111"), "{shown:?}");
    assert_eq!(shown.name, "");
    assert_eq!(shown.contacts, None);
    for field in ["contacts", "name", "source_channel", "tier"] {
        assert!(shown.redacted_fields.contains(&field.to_owned()), "{field}: {shown:?}");
    }
    let rows = |position| pb::ListCustomersRequest {
        agent: CLEARED_AGENT.into(),
        min_position: position,
        ..Default::default()
    };
    let listed = co_int.customers.list_customers(rows(position)).await.expect("list");
    let listed = listed.into_inner().customers;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), &listed[0].contacts), ("", &None));
    assert!(listed[0].redacted_fields.contains(&"name".to_owned()));
    let find = |query: &str, by: pb::FindBy| pb::FindCustomersRequest {
        query: query.to_owned(),
        by: by as i32,
        min_position: position,
        ..Default::default()
    };
    // Being found by the withheld phone would tell it.
    let found = co_int.customers.find_customers(find(SECRET_PHONE, pb::FindBy::Phone)).await;
    assert!(found.expect("find").into_inner().matches.is_empty());
    let found = admin.customers.find_customers(find(SECRET_PHONE, pb::FindBy::Phone)).await;
    assert_eq!(found.expect("find").into_inner().matches.len(), 1, "the cleared reader finds");

    // A name written once public is shown; the contacts written while secret are not.
    let rename = pb::UpdateCustomerRequest {
        request_id: rid(),
        customer_id: customer.clone(),
        expected_version: None,
        name: Some("Publicname Person".into()),
        contacts: None,
        confidentiality: 0,
    };
    let renamed = admin.customers.update_customer(rename).await.expect("rename").into_inner();
    let position = renamed.result.expect("result").position;
    let got = co_int.customers.get_customer(get.clone()).await.expect("get").into_inner();
    let shown = got.customer.expect("customer");
    assert_eq!(shown.name, "Publicname Person");
    assert_eq!(shown.contacts, None);
    assert!(!shown.redacted_fields.contains(&"name".to_owned()), "{shown:?}");
    let listed = co_int.customers.list_customers(rows(position)).await.expect("list");
    assert_eq!(listed.into_inner().customers[0].name, "Publicname Person");
    let found = co_int.customers.find_customers(find("Publicname Person", pb::FindBy::Name)).await;
    let matches = found.expect("find").into_inner().matches;
    assert_eq!(matches.len(), 1, "found by the name written once public: {matches:?}");

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

/// Item 3 (R-C6, R-P2): a material added (or attached at filing) while the customer was
/// secret was shown in `GetComplaint`'s and `GetCaseAsOf`'s `materials` and in the
/// dossier's states after a declassification, though the feed withheld its event.
async fn materials_recorded_while_the_level_was_higher_are_withheld_on_every_path(app: &TestApp) {
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
    let secret_era = [secret_doc, "doc://letters/1", DIGEST];
    let holds = |shown: &str| -> Vec<&str> {
        secret_era.iter().copied().filter(|canary| shown.contains(canary)).collect()
    };

    let mut co_int = app.clients(Some("co-int")).await;
    let get = pb::GetComplaintRequest { complaint: number.clone() };
    let got = co_int.complaints.get_complaint(get.clone()).await.expect("get").into_inner();
    let complaint = got.complaint.expect("complaint");
    let materials: Vec<&str> = complaint.materials.iter().map(|m| m.reference.as_str()).collect();
    assert_eq!(materials, ["", "", public_doc], "{complaint:?}");
    assert!(
        complaint.materials[1].sha256.is_empty() && complaint.materials[1].size_bytes.is_none()
    );
    assert_eq!(complaint.materials[2].sha256, PUBLIC_DIGEST, "written once public is shown");
    assert!(complaint.redacted_fields.contains(&"materials".to_owned()), "{complaint:?}");
    let as_of = pb::GetCaseAsOfRequest {
        complaint: number.clone(),
        point: Some(pb::get_case_as_of_request::Point::Version(3)),
    };
    let state = co_int.audit.get_case_as_of(as_of).await.expect("as of").into_inner();
    let shown = format!("{:?}", state.complaint.expect("complaint").materials);
    assert_eq!(holds(&shown), Vec::<&str>::new(), "GetCaseAsOf: {shown}");
    let export = pb::ExportCaseRequest { complaint: number.clone() };
    let dossier = co_int.audit.export_case(export).await.expect("export").into_inner();
    let json = dossier.dossier_json.replace(public_doc, "");
    assert_eq!(holds(&json), Vec::<&str>::new(), "ExportCase: {}", dossier.dossier_json);
    assert!(dossier.dossier_json.contains(public_doc), "written once public is shown");

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

/// Sixth attack, F1 (R-C6, R-R4): the referral report named a declassified referrer by
/// the name written while it was secret, though `GetCustomer` withheld it.
async fn the_referral_report_withholds_a_referrers_name_written_while_secret(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let referrer = secret_customer(app, &mut admin, "Qqreferrer Secretname").await;
    let mut referred = customer_request("Referred Person", pb::Confidentiality::Public, "a1");
    referred.referred_by = referrer.clone();
    admin.customers.register_customer(referred).await.expect("register the referred");
    let position = declassify(&mut admin, &referrer).await;
    let report =
        |position| pb::GetReferralReportRequest { min_position: position, ..Default::default() };

    let mut co_int = app.clients(Some("co-int")).await;
    let answer = co_int.reports.get_referral_report(report(position)).await.expect("report");
    let answer = answer.into_inner();
    let row = answer.referrals.iter().find(|r| r.referrer_id == referrer).expect("now public");
    assert!(row.referrer_name.is_empty() && row.referrer_name_redacted, "{row:?}");
    assert_eq!(row.referred, 1);
    assert!(!format!("{answer:?}").contains("Qqreferrer"), "{answer:?}");
    // Cleared for the level it was written at, the name as recorded.
    let answer = admin.reports.get_referral_report(report(position)).await.expect("report");
    let answer = answer.into_inner();
    let row = answer.referrals.iter().find(|r| r.referrer_id == referrer).expect("listed");
    assert_eq!(
        (row.referrer_name.as_str(), row.referrer_name_redacted),
        ("Qqreferrer Secretname", false)
    );
}
