//! Issue 16, fourth attack, each finding over gRPC on SQLite and PostgreSQL: a bulk
//! write acts only on the cases its caller may act on and names no other (R-C6, R-P4),
//! a committee counts only members cleared for the case and none who drafted it (R-P5),
//! and every audit path withholds what was written while the level was higher.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{rid, Clients, TestApp};

kefu_tests::on_both_backends!(
    archiving_acts_only_on_cases_the_caller_may_act_on_and_names_no_other,
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

async fn status(admin: &mut Clients, number: &str) -> i32 {
    let get = pb::GetComplaintRequest { complaint: number.to_owned() };
    let got = admin.complaints.get_complaint(get).await.expect("admin reads every case");
    got.into_inner().complaint.expect("complaint").status
}

/// A case of `customer` taken to closure and, with `called_back`, its callback logged.
async fn closed_case(
    app: &TestApp,
    admin: &mut Clients,
    customer: &str,
    respondent: &str,
    called_back: bool,
) -> String {
    let (case, number) = file(admin, customer, pb::Severity::Normal, respondent).await;
    handle_to_close(app, &case).await;
    if called_back {
        let mut a1 = app.clients(Some("a1")).await;
        a1.callbacks.log_callback(complaint_callback(customer, &case, "fine")).await.expect("cb");
    }
    number
}

/// Finding 1 (R-C6, R-P4): `ArchiveCases` archived a public supervisor's way through
/// secret cases and cases against the caller, and named the hidden case numbers in its
/// answer (archived, or skipped with when they become archivable).
async fn archiving_acts_only_on_cases_the_caller_may_act_on_and_names_no_other(app: &TestApp) {
    standard_staff(app).await;
    use pb::StaffRole::Supervisor;
    register_staff(app, &[("s-resp", &[Supervisor]), ("s-pub", &[Supervisor])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let internal = register_customer(&mut admin, "Archive Internal Person").await;
    let raised = register_customer(&mut admin, "Archive Raised Person").await;
    let against = closed_case(app, &mut admin, &internal, "s-resp", true).await;
    let owed = closed_case(app, &mut admin, &internal, "", false).await;
    let secret = closed_case(app, &mut admin, &raised, "", true).await;
    let secret_owed = closed_case(app, &mut admin, &raised, "", false).await;
    admin
        .customers
        .update_customer(classify(&raised, pb::Confidentiality::Secret))
        .await
        .expect("raise to secret");
    let year: u32 = against[..4].parse().expect("year");
    let archive = || pb::ArchiveCasesRequest { request_id: rid(), year };
    let empty = pb::ArchiveCasesResponse::default();

    // Public: every case of the year is above clearance. Nothing done, nothing named.
    let mut s_pub = app.clients(Some("s-pub")).await;
    let answer = s_pub.complaints.archive_cases(archive()).await.expect("archive").into_inner();
    assert_eq!(answer, empty, "a public supervisor learns of no case");

    // Secret, but the respondent of one: that one is neither archived nor named.
    let mut s_resp = app.clients(Some("s-resp")).await;
    let answer = s_resp.complaints.archive_cases(archive()).await.expect("archive").into_inner();
    assert_eq!(answer.archived, vec![secret.clone()]);
    let skipped: Vec<&str> = answer.skipped.iter().map(|s| s.case_number.as_str()).collect();
    assert_eq!(skipped, vec![owed.as_str(), secret_owed.as_str()]);
    assert_eq!((answer.already_archived, answer.still_open), (0, 0));

    // Confidential: the raised customer's cases are above it, archived or not.
    let mut s1 = app.clients(Some("s1")).await;
    let answer = s1.complaints.archive_cases(archive()).await.expect("archive").into_inner();
    assert_eq!(answer.archived, vec![against.clone()]);
    let skipped: Vec<&str> = answer.skipped.iter().map(|s| s.case_number.as_str()).collect();
    assert_eq!(skipped, vec![owed.as_str()]);
    assert_eq!((answer.already_archived, answer.still_open), (0, 0));

    let archived = pb::ComplaintStatus::Archived as i32;
    assert_eq!(status(&mut admin, &against).await, archived);
    assert_eq!(status(&mut admin, &secret).await, archived);
    assert_ne!(status(&mut admin, &owed).await, archived);
}
