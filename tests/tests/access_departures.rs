//! Issue 16, fourth attack, finding 6 (R-C6, R-P4): a departure's answer and its refusal
//! tell the supervisor recording it only about what they may see. The leaver's customers
//! and cases above the supervisor's clearance, and a case against the supervisor, are
//! handed over all the same, but named to nobody who may not read them.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{reason, rid, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    a_departures_answer_names_only_what_its_recorder_may_see,
    a_departure_refused_for_a_hidden_case_names_neither_it_nor_its_respondent,
);

async fn customer(clients: &mut Clients, name: &str, level: pb::Confidentiality) -> String {
    let request = customer_request(name, level, "h1");
    let registered = clients.customers.register_customer(request).await.expect("register");
    registered.into_inner().result.expect("result").id
}

fn depart(staff_id: &str, request_id: &str) -> pb::RecordDepartureRequest {
    pb::RecordDepartureRequest {
        request_id: request_id.to_owned(),
        staff_id: staff_id.into(),
        reason: String::new(),
    }
}

async fn a_departures_answer_names_only_what_its_recorder_may_see(app: &TestApp) {
    use pb::StaffRole::*;
    standard_staff(app).await;
    register_staff(app, &[("s-pub", &[Supervisor]), ("h-pub", &[Agent, Handler])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let public = customer(&mut admin, "Public Leaver Customer", pb::Confidentiality::Public).await;
    let internal =
        customer(&mut admin, "Internal Leaver Customer", pb::Confidentiality::Internal).await;
    let (internal_case, internal_number) =
        file(&mut admin, &internal, pb::Severity::Normal, "").await;
    admin.complaints.assign_handler(assign(&internal_case, "h1")).await.expect("assign");
    let (against, against_number) = file(&mut admin, &public, pb::Severity::Normal, "s-pub").await;
    admin.complaints.assign_handler(assign(&against, "h1")).await.expect("assign");

    let mut s_pub = app.clients(Some("s-pub")).await;
    let request_id = rid();
    let answer = s_pub.staff.record_departure(depart("h1", &request_id)).await.expect("depart");
    let answer = answer.into_inner();
    let shown = format!("{answer:?}");
    for hidden in [&internal, &internal_case, &internal_number, &against, &against_number] {
        assert!(!shown.contains(hidden.as_str()), "names {hidden}: {shown}");
    }
    assert!(answer.customers.iter().any(|moved| moved.id == public), "{shown}");

    // All of it was handed over: the admin, cleared for all, reads the same departure.
    let whole = admin.staff.record_departure(depart("h1", &request_id)).await.expect("retry");
    let whole = format!("{:?}", whole.into_inner());
    for item in [&internal, &internal_case, &against] {
        assert!(whole.contains(item.as_str()), "{item} not handed over: {whole}");
    }
}

/// The leaver holds the only case of an internal customer; the other handlers are its
/// respondent or recused, so nobody may take it: the departure is refused, but the public
/// supervisor is told neither the case nor that a respondent bars it.
async fn a_departure_refused_for_a_hidden_case_names_neither_it_nor_its_respondent(app: &TestApp) {
    use pb::StaffRole::*;
    standard_staff(app).await;
    register_staff(app, &[("s-pub", &[Supervisor])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let internal = register_customer(&mut admin, "Hidden Unassignable Customer").await;
    let (case, number) = file(&mut admin, &internal, pb::Severity::Normal, "r1").await;
    admin.complaints.assign_handler(assign(&case, "h2")).await.expect("assign h2");
    let mut h2 = app.clients(Some("h2")).await;
    let recuse = pb::RecuseHandlerRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        reason: "knows the complainant".into(),
    };
    h2.complaints.recuse_handler(recuse).await.expect("recuse");
    admin.complaints.assign_handler(assign(&case, "h1")).await.expect("assign h1");

    let mut s_pub = app.clients(Some("s-pub")).await;
    let refused = s_pub.staff.record_departure(depart("h1", &rid())).await.expect_err("refused");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused).as_deref(), Some("DEPARTURE_UNASSIGNABLE"));
    let told = format!("{} {}", refused.message(), String::from_utf8_lossy(refused.details()));
    for hidden in [case.as_str(), number.as_str(), "respondent", "recused"] {
        assert!(!told.contains(hidden), "tells {hidden}: {told}");
    }
    // A supervisor cleared for the case is told which case and why.
    let refused = admin.staff.record_departure(depart("h1", &rid())).await.expect_err("refused");
    assert!(refused.message().contains(&number), "{refused:?}");
}
