//! Issue 16, fourth attack: a token's principal is the staff member whatever the case of
//! its letters. Staff codes fold case (`RegisterStaff("CO-CAPS")` is `co-caps`), so a
//! principal written `CO-CAPS` must be the respondent of a case against `co-caps` on every
//! path (R-P4), not a stranger to the access layer's checks.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::denied;
use kefu_tests::TestApp;
use tonic::Code;

kefu_tests::on_both_backends!(a_principal_in_capitals_is_the_respondent_on_every_path);

/// Finding 1 (R-P4): `SUR`/`COR` tokens read, listed, escalated and audited their own
/// case, because the access layer compared `SUR` with the stored respondent `sur`.
async fn a_principal_in_capitals_is_the_respondent_on_every_path(app: &TestApp) {
    use pb::StaffRole::*;
    standard_staff(app).await;
    register_staff(app, &[("CO-CAPS", &[Supervisor])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = register_customer(&mut admin, "Capital Respondent Person").await;
    let (case, number) = file(&mut admin, &customer, pb::Severity::Normal, "CO-CAPS").await;
    let secrets = ["the front desk was rude"];
    let caps = app.clients(Some("CO-CAPS")).await;

    let mut c = caps.clone();
    let get = pb::GetComplaintRequest { complaint: case.clone() };
    denied(app, c.complaints.get_complaint(get), &secrets).await;
    denied(app, c.audit.export_case(pb::ExportCaseRequest { complaint: case.clone() }), &secrets)
        .await;
    denied(app, c.audit.verify_case(pb::VerifyCaseRequest { complaint: number.clone() }), &secrets)
        .await;
    let as_of = pb::GetCaseAsOfRequest {
        complaint: case.clone(),
        point: Some(pb::get_case_as_of_request::Point::Version(1)),
    };
    denied(app, c.audit.get_case_as_of(as_of), &secrets).await;
    let escalate = pb::EscalateComplaintRequest {
        request_id: kefu_tests::rid(),
        complaint_id: case.clone(),
        expected_version: None,
        to: pb::SignerCapacity::Director as i32,
        reason: "above my desk".into(),
    };
    let refused = c.complaints.escalate_complaint(escalate).await.expect_err("refused");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let listed = c
        .complaints
        .list_complaints(pb::ListComplaintsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(
        listed.complaints.iter().all(|row| row.complaint_id != case),
        "the respondent listed their own case: {listed:?}"
    );
}
