//! Issue 16, third attack, each finding over gRPC on SQLite and PostgreSQL: a record
//! above the caller's clearance answers exactly as one nobody registered on every write
//! and lookup (no existence oracle), the respondent reads their own case through no
//! audit call, and nothing is acknowledged on the case of someone erased meanwhile.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::{denied, refused_quietly};
use kefu_tests::{rid, Clients, TestApp};
use prost::Message;
use tonic::{Code, Status};

kefu_tests::on_both_backends!(
    a_customer_above_clearance_answers_every_write_as_an_unknown_one,
    a_case_above_clearance_answers_every_lookup_as_an_unknown_one,
    a_respondent_reads_their_own_case_through_no_audit_call,
    nothing_is_acknowledged_on_a_case_after_its_customers_erasure,
    a_referrer_above_clearance_is_as_unknown_as_one_never_registered,
    the_feed_shows_a_respondent_nothing_of_their_own_case,
);

/// `status` with `id` written as `as_id`: two refusals compared but for the id.
fn shape(status: &Status, id: &str, as_id: &str) -> (Code, String, String) {
    let details = String::from_utf8_lossy(status.details()).replace(id, as_id);
    (status.code(), status.message().replace(id, as_id), details)
}

/// The same call on a record above clearance and on an unknown id, compared.
async fn alike<F, Fut, T>(app: &TestApp, above: &str, call: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
    T: std::fmt::Debug,
{
    let unknown = kefu_domain::CustomerId::generate().to_string();
    let hidden = refused_quietly(app, call(above.to_owned()), Code::NotFound, &[]).await;
    let absent = refused_quietly(app, call(unknown.clone()), Code::NotFound, &[]).await;
    assert_eq!(shape(&hidden, above, "ID"), shape(&absent, &unknown, "ID"));
}

async fn secret_customer(admin: &mut Clients, name: &str) -> String {
    let request = customer_request(name, pb::Confidentiality::Secret, CLEARED_AGENT);
    let registered = admin.customers.register_customer(request).await.expect("register");
    registered.into_inner().result.expect("result").id
}

/// Finding 1 (R-C6): customer writes told a secret record (`customer <id> not found`)
/// from an unknown one (`CUSTOMER_NOT_REGISTERED`, or `ABORTED` with a stale version);
/// finding 8: a duplicate merged into a secret survivor answered `CUSTOMER_MERGED`.
async fn a_customer_above_clearance_answers_every_write_as_an_unknown_one(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let secret = secret_customer(&mut admin, "Secret Oracle Person").await;
    let duplicate = register_customer(&mut admin, "Merged Oracle Person").await;
    admin
        .customers
        .merge_customers(pb::MergeCustomersRequest {
            request_id: rid(),
            duplicate_id: duplicate.clone(),
            survivor_id: secret.clone(),
            reason: "the same person".into(),
            ..Default::default()
        })
        .await
        .expect("merge");
    let s_pub = app.clients(Some("s-pub")).await;
    let svc_pub = app.clients(Some("svc-pub")).await;
    for above in [&secret, &duplicate] {
        alike(app, above, |id| {
            let mut s = s_pub.clone();
            async move {
                let grade = pb::GradeCustomerRequest {
                    request_id: rid(),
                    customer_id: id,
                    expected_version: Some(99),
                    tier: pb::Tier::Vip as i32,
                    stars: 0,
                    reason: "probe".into(),
                };
                s.customers.grade_customer(grade).await
            }
        })
        .await;
        alike(app, above, |id| {
            let mut s = s_pub.clone();
            async move {
                let update = pb::UpdateCustomerRequest {
                    request_id: rid(),
                    customer_id: id,
                    expected_version: None,
                    name: None,
                    contacts: None,
                    confidentiality: pb::Confidentiality::Public as i32,
                };
                s.customers.update_customer(update).await
            }
        })
        .await;
        alike(app, above, |id| {
            let mut s = s_pub.clone();
            async move {
                let assign = pb::AssignAgentRequest {
                    request_id: rid(),
                    customer_id: id,
                    expected_version: None,
                    agent: "nobody-registered".into(),
                    reason: String::new(),
                };
                s.customers.assign_agent(assign).await
            }
        })
        .await;
        alike(app, above, |id| {
            let mut s = svc_pub.clone();
            async move {
                let routine = pb::LogCallbackRequest {
                    kind: pb::CallbackKind::Routine as i32,
                    ..complaint_callback(&id, "", "probe")
                };
                s.callbacks.log_callback(routine).await
            }
        })
        .await;
        alike(app, above, |id| {
            let mut s = svc_pub.clone();
            async move { s.complaints.file_complaint(file_request(&id, pb::Severity::Normal, "")).await }
        })
        .await;
    }
}

/// Findings 4 and 7 (R-C6): a case number of a secret case answered naming the case's
/// id; an assignment to an unregistered handler said so before the case's level.
async fn a_case_above_clearance_answers_every_lookup_as_an_unknown_one(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let secret = secret_customer(&mut admin, "Secret Case Person").await;
    let (case, number) = file(&mut admin, &secret, pb::Severity::Normal, "").await;
    let unused = format!("{}-099999", &number[..4]);
    let mut co_int = app.clients(Some("co-int")).await;
    let mut s_pub = app.clients(Some("s-pub")).await;
    for key in [number.as_str(), case.as_str()] {
        let get = pb::GetComplaintRequest { complaint: key.to_owned() };
        let hidden = s_pub.complaints.get_complaint(get).await.expect_err("hidden");
        let export = pb::ExportCaseRequest { complaint: key.to_owned() };
        let exported = co_int.audit.export_case(export).await.expect_err("hidden");
        let verify = pb::VerifyCaseRequest { complaint: key.to_owned() };
        let verified = co_int.audit.verify_case(verify).await.expect_err("hidden");
        for status in [&hidden, &exported, &verified] {
            assert_eq!(status.code(), Code::NotFound, "{status:?}");
            assert!(!status.message().contains(&case) || key == case, "names the id: {status:?}");
        }
        let mut replay =
            co_int.audit.replay_case(pb::ReplayCaseRequest { complaint: key.to_owned() }).await;
        if let Ok(stream) = replay.as_mut() {
            let first = stream.get_mut().message().await;
            assert!(first.is_err(), "a replay of a case above clearance: {first:?}");
        } else {
            assert_eq!(replay.expect_err("hidden").code(), Code::NotFound);
        }
    }
    let get = pb::GetComplaintRequest { complaint: number.clone() };
    let hidden = s_pub.complaints.get_complaint(get).await.expect_err("hidden");
    let get = pb::GetComplaintRequest { complaint: unused.clone() };
    let absent = s_pub.complaints.get_complaint(get).await.expect_err("absent");
    assert_eq!(shape(&hidden, &number, "KEY"), shape(&absent, &unused, "KEY"));
    // The case's level is told before anything about the handler.
    let to_nobody = assign(&case, "nobody-registered");
    let hidden = s_pub.complaints.assign_handler(to_nobody).await.expect_err("hidden");
    let unknown = kefu_domain::ComplaintId::generate().to_string();
    let absent = s_pub.complaints.assign_handler(assign(&unknown, "nobody-registered")).await;
    assert_eq!(shape(&hidden, &case, "ID"), shape(&absent.expect_err("absent"), &unknown, "ID"));
}

/// Finding 3 (R-P4, R-P11): a compliance officer named as the respondent exported,
/// replayed, verified and read their own case as of a time.
async fn a_respondent_reads_their_own_case_through_no_audit_call(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = register_customer(&mut admin, "Audit Respondent Person").await;
    let (case, _) = file(&mut admin, &customer, pb::Severity::Normal, "co1").await;
    let co1 = app.clients(Some("co1")).await;
    let secrets = ["the front desk was rude"];
    let mut c = co1.clone();
    denied(app, c.audit.export_case(pb::ExportCaseRequest { complaint: case.clone() }), &secrets)
        .await;
    denied(app, c.audit.verify_case(pb::VerifyCaseRequest { complaint: case.clone() }), &secrets)
        .await;
    let as_of = pb::GetCaseAsOfRequest {
        complaint: case.clone(),
        point: Some(pb::get_case_as_of_request::Point::Version(1)),
    };
    denied(app, c.audit.get_case_as_of(as_of), &secrets).await;
    let replay = c.audit.replay_case(pb::ReplayCaseRequest { complaint: case.clone() }).await;
    match replay {
        Ok(mut stream) => {
            let first = stream.get_mut().message().await.expect_err("refused");
            assert_eq!(first.code(), Code::PermissionDenied, "{first:?}");
        }
        Err(status) => assert_eq!(status.code(), Code::PermissionDenied, "{status:?}"),
    }
    // Another compliance officer may.
    let mut co_other = app.clients(Some("admin")).await;
    co_other
        .audit
        .export_case(pb::ExportCaseRequest { complaint: case })
        .await
        .expect("the admin, not the respondent, exports");
}

/// Finding 10 (R-C8): case writes racing `ForgetCustomer` were acknowledged at
/// positions after the erasure, their text then unreadable: acknowledged, then lost.
async fn nothing_is_acknowledged_on_a_case_after_its_customers_erasure(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let mut late = Vec::new();
    for round in 0..8 {
        let customer = register_customer(&mut admin, &format!("Erased Racer {round}")).await;
        let (case, _) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
        admin.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");
        let (mut eraser, mut handler) = (admin.clone(), app.clients(Some("h1")).await);
        let forget = pb::ForgetCustomerRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            reason: "the customer asked".into(),
        };
        let investigation = pb::RecordInvestigationRequest {
            request_id: rid(),
            complaint_id: case.clone(),
            expected_version: None,
            findings: format!("round {round}"),
        };
        let (forgotten, written) = tokio::join!(
            eraser.customers.forget_customer(forget),
            handler.complaints.record_investigation(investigation),
        );
        let forgotten = forgotten.expect("forget").into_inner().result.expect("result").position;
        if let Ok(written) = written {
            let written = written.into_inner().result.expect("result").position;
            if written > forgotten {
                late.push((round, forgotten, written));
            }
        }
    }
    assert!(late.is_empty(), "acknowledged after the erasure (round, erased, write): {late:?}");
}

/// Finding 5 (R-C6): `referred_by` told a secret customer from an unknown id: a
/// registration referred by them was accepted (an unknown referrer is refused), a list
/// of those they referred had rows, and the referral report listed them by id.
async fn a_referrer_above_clearance_is_as_unknown_as_one_never_registered(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let secret = secret_customer(&mut admin, "Secret Referrer Person").await;
    let mut referred = customer_request("Referred By Secret", pb::Confidentiality::Public, "a1");
    referred.referred_by = secret.clone();
    let referred = admin.customers.register_customer(referred).await.expect("the admin may refer");
    let referred = referred.into_inner().result.expect("result").id;
    let a_pub = app.clients(Some("a-pub")).await;
    alike(app, &secret, |id| {
        let mut a = a_pub.clone();
        async move {
            let mut request = customer_request("Probe", pb::Confidentiality::Public, "a1");
            request.referred_by = id;
            a.customers.register_customer(request).await
        }
    })
    .await;
    let mut s_pub = app.clients(Some("s-pub")).await;
    let head = kefu_tests::db::head(app.db.url()).await;
    let list = pb::ListCustomersRequest {
        referred_by: secret.clone(),
        min_position: head,
        ..Default::default()
    };
    let listed = s_pub.customers.list_customers(list).await.expect("list").into_inner();
    assert!(listed.customers.is_empty(), "{listed:?}");
    let report = pb::GetReferralReportRequest { min_position: head, ..Default::default() };
    let report = s_pub.reports.get_referral_report(report).await.expect("report").into_inner();
    assert!(report.referrals.iter().all(|r| r.referrer_id != secret), "{report:?}");

    // Fourth attack, finding 5: the referred customer's own record named the secret
    // referrer on every read of it, and on the feed to a public service token.
    let get = pb::GetCustomerRequest { customer_id: referred.clone() };
    let got = s_pub.customers.get_customer(get).await.expect("get").into_inner();
    assert_eq!(got.customer.expect("customer").referred_by, "", "GetCustomer");
    let all = pb::ListCustomersRequest { min_position: head, ..Default::default() };
    let listed = s_pub.customers.list_customers(all).await.expect("list").into_inner();
    let row = listed.customers.iter().find(|c| c.customer_id == referred).expect("listed");
    assert_eq!(row.referred_by, "", "ListCustomers");
    let find = pb::FindCustomersRequest {
        query: "Referred By Secret".into(),
        min_position: head,
        ..Default::default()
    };
    let found = s_pub.customers.find_customers(find).await.expect("find").into_inner();
    let found = found.matches.iter().filter_map(|m| m.customer.as_ref());
    assert!(found.clone().any(|c| c.customer_id == referred), "found");
    assert!(found.clone().all(|c| c.referred_by.is_empty()), "FindCustomers");
    let mut svc = app.clients(Some("svc-pub")).await;
    let page = pb::ReadAllRequest { from_position: 1, limit: 1_000, categories: Vec::new() };
    let log = svc.events.read_all(page).await.expect("read all").into_inner().events;
    let registered = log
        .iter()
        .find(|e| e.event_type == "CustomerRegistered" && e.stream_id.ends_with(&referred))
        .expect("the referred customer's registration");
    assert!(!registered.payload_json.contains(&secret), "ReadAll: {registered:?}");
    assert!(registered.redacted_fields.iter().any(|f| f == "referred_by"), "{registered:?}");
    // A caller cleared for the referrer still sees them.
    let got = admin.customers.get_customer(pb::GetCustomerRequest { customer_id: referred });
    assert_eq!(got.await.expect("get").into_inner().customer.expect("c").referred_by, secret);
}

/// Finding 6 (R-P4, R-P11): the event feed redacted by level and role, not by respondent:
/// a compliance officer or admin named as the respondent read their own case in clear
/// from `ReadAll` and `Subscribe`. Checked on the encoded answers for canaries.
async fn the_feed_shows_a_respondent_nothing_of_their_own_case(app: &TestApp) {
    use kefu_tests::refusals::contains;
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = register_customer(&mut admin, "Feed Respondent Person").await;
    // One case against co1, with findings recorded after the filing; one against admin.
    let (against_co1, against_admin) = ("QF6-CO1-CANARY", "QF6-ADMIN-CANARY");
    let filing = |respondent: &str, canary: &str| pb::FileComplaintRequest {
        description: format!("the officer was rude {canary}"),
        ..file_request(&customer, pb::Severity::Normal, respondent)
    };
    let filed = admin.complaints.file_complaint(filing("co1", against_co1)).await.expect("file");
    let co1_case = filed.into_inner().result.expect("result").id;
    admin.complaints.assign_handler(assign(&co1_case, "h1")).await.expect("assign");
    let findings = pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: co1_case.clone(),
        expected_version: None,
        findings: format!("confirmed {against_co1}"),
    };
    let mut h1 = app.clients(Some("h1")).await;
    h1.complaints.record_investigation(findings).await.expect("investigate");
    let filed = admin.complaints.file_complaint(filing("admin", against_admin)).await;
    let admin_case = filed.expect("file").into_inner().result.expect("result").id;
    let page = pb::ReadAllRequest { from_position: 1, limit: 1_000, categories: Vec::new() };
    let readers = [
        ("co1", &co1_case, against_co1, against_admin),
        ("admin", &admin_case, against_admin, against_co1),
    ];
    for (respondent, case, own, other) in readers {
        let mut reader = app.clients(Some(respondent)).await;
        let log = reader.events.read_all(page.clone()).await.expect("read all").into_inner();
        let bytes = log.encode_to_vec();
        assert!(!contains(&bytes, own), "{respondent} reads their own case on ReadAll");
        assert!(contains(&bytes, other), "{respondent} reads other cases: not vacuous");
        let filed = log
            .events
            .iter()
            .find(|e| e.event_type == "ComplaintFiled" && e.stream_id.ends_with(case.as_str()))
            .expect("their case is on the feed");
        assert!(filed.redacted_fields.iter().any(|f| f == "description"), "{filed:?}");
        // The live feed from the start: the case events, caught up, then live.
        let request =
            pb::SubscribeRequest { from_position: 1, categories: vec!["complaint".into()] };
        let mut live = reader.events.subscribe(request).await.expect("subscribe").into_inner();
        let mut shown = Vec::new();
        // Both filings, the assignment and the investigation.
        for _ in 0..4 {
            let next = tokio::time::timeout(std::time::Duration::from_secs(20), live.message());
            let event = next.await.expect("in time").expect("ok").expect("open");
            shown.extend(event.event.expect("event").encode_to_vec());
        }
        assert!(!contains(&shown, own), "{respondent} reads their own case on Subscribe");
        assert!(contains(&shown, other), "{respondent} reads other cases live: not vacuous");
    }
}
