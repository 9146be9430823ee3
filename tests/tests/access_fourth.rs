//! Issue 16, fourth attack, each finding over gRPC on SQLite and PostgreSQL: a bulk
//! write acts only on the cases its caller may act on and names no other (R-C6, R-P4),
//! a committee counts only members cleared for the case and none who drafted it (R-P5),
//! and every audit path withholds what was written while the level was higher.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::refused_quietly;
use kefu_tests::{reason, rid, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    archiving_acts_only_on_cases_the_caller_may_act_on_and_names_no_other,
    a_committee_counts_no_member_uncleared_for_the_case_nor_one_who_drafted_it,
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

/// A major case of an internal customer: handled by h1, drafted by `drafter`, escalated
/// to the committee.
async fn before_the_committee(app: &TestApp, customer: &str, drafter: &str) -> String {
    let mut admin = app.clients(Some("admin")).await;
    let (case, _) = file(&mut admin, customer, pb::Severity::Major, "").await;
    let mut s1 = app.clients(Some("s1")).await;
    s1.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");
    let mut h1 = app.clients(Some("h1")).await;
    let investigate = pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        findings: "confirmed".into(),
    };
    h1.complaints.record_investigation(investigate).await.expect("investigate");
    let mut specialist = app.clients(Some(drafter)).await;
    let draft = pb::DraftOpinionRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        opinion: "refund".into(),
    };
    specialist.complaints.draft_opinion(draft).await.expect("draft");
    let escalate = pb::EscalateComplaintRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        to: pb::SignerCapacity::Committee as i32,
        reason: "major matter".into(),
    };
    s1.complaints.escalate_complaint(escalate).await.expect("escalate");
    case
}

fn as_committee(case: &str, members: &[&str]) -> pb::SignOpinionRequest {
    let mut request = sign(case, pb::SignerCapacity::Committee);
    request.meeting = Some(pb::CommitteeMeeting {
        held_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        members_present: members.iter().map(|m| (*m).to_owned()).collect(),
        reported_to_authority: false,
    });
    request
}

/// Finding 2 (R-C6, R-P5): a committee meeting on a case counted a member whose
/// clearance is below the customer's level (`AssignHandler` refuses such a handler), and
/// the specialist who drafted the round's opinion as one of the members deciding it.
async fn a_committee_counts_no_member_uncleared_for_the_case_nor_one_who_drafted_it(app: &TestApp) {
    standard_staff(app).await;
    use pb::StaffRole::{Committee, Specialist};
    // s-pub holds a public token only; hs1 drafts opinions and sits on the committee.
    register_staff(app, &[("s-pub", &[Committee]), ("hs1", &[Specialist, Committee])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = register_customer(&mut admin, "Committee Internal Person").await;
    let case = before_the_committee(app, &customer, "hs1").await;
    let mut d1 = app.clients(Some("d1")).await;
    for (members, expected) in [
        (&["d1", "m1", "s-pub"][..], "COMMITTEE_MEMBER_NOT_CLEARED"),
        (&["d1", "m1", "hs1"][..], "DRAFTER_CANNOT_SIGN"),
    ] {
        let status = refused_quietly(
            app,
            d1.complaints.sign_opinion(as_committee(&case, members)),
            Code::FailedPrecondition,
            &[],
        )
        .await;
        assert_eq!(reason(&status).as_deref(), Some(expected), "{members:?}: {status:?}");
    }
    d1.complaints.sign_opinion(as_committee(&case, &["d1", "m1", "m2"])).await.expect("quorum");
}
