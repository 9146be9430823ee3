//! Issue 16, fourth attack, each finding over gRPC on SQLite and PostgreSQL: a bulk
//! write acts only on the cases its caller may act on and names no other (R-C6, R-P4),
//! a committee counts only members cleared for the case and none who drafted it (R-P5),
//! and every audit path reads a case at its customer's current level.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::refused_quietly;
use kefu_tests::{reason, rid, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    archiving_acts_only_on_cases_the_caller_may_act_on_and_names_no_other,
    a_committee_counts_no_member_uncleared_for_the_case_nor_one_who_drafted_it,
    every_audit_path_reads_a_case_at_its_customers_current_level,
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
    // R-C6: a cleared agent owns them before the raise.
    register_cleared_agent(app).await;
    let hand_over = pb::AssignAgentRequest {
        request_id: rid(),
        customer_id: raised.clone(),
        expected_version: None,
        agent: CLEARED_AGENT.into(),
        reason: String::new(),
    };
    admin.customers.assign_agent(hand_over).await.expect("a cleared agent");
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

const SECRET_ERA: [&str; 2] = ["QQDESCSECRETQQ", "QQFINDSECRETQQ"];

fn holds_secret_era(shown: &impl std::fmt::Debug) -> Vec<&'static str> {
    let shown = format!("{shown:?}");
    SECRET_ERA.iter().copied().filter(|canary| shown.contains(canary)).collect()
}

/// Finding 3 (R-C6, docs/event-feed.md): after a declassification the audit paths
/// disagreed (`ReplayCase` and the feed withheld the secret-era text, `ExportCase`,
/// `GetCaseAsOf` and `GetComplaint` showed it). Now every path reads the case at its
/// customer's current level: withheld while secret, released by a cleared classifier's
/// declassification, withheld again (history included) once raised.
async fn every_audit_path_reads_a_case_at_its_customers_current_level(app: &TestApp) {
    standard_staff(app).await;
    use pb::StaffRole::{Agent, Handler};
    register_staff(app, &[("h-sec", &[Agent, Handler])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let request = customer_request("Declassified Person", pb::Confidentiality::Secret, "h-sec");
    let registered = admin.customers.register_customer(request).await.expect("register");
    let customer = registered.into_inner().result.expect("result").id;
    let mut filing = file_request(&customer, pb::Severity::Normal, "");
    filing.description = format!("{} the desk was rude", SECRET_ERA[0]);
    let filed = admin.complaints.file_complaint(filing).await.expect("file").into_inner();
    let (case, number) = (filed.result.expect("result").id, filed.case_number);
    admin.complaints.assign_handler(assign(&case, "h-sec")).await.expect("assign");
    let mut h_sec = app.clients(Some("h-sec")).await;
    let investigate = |findings: &str| pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        findings: findings.to_owned(),
    };
    h_sec.complaints.record_investigation(investigate(SECRET_ERA[1])).await.expect("secret era");
    let mut co_int = app.clients(Some("co-int")).await;
    let get = pb::GetComplaintRequest { complaint: number.clone() };
    let refused = co_int.complaints.get_complaint(get.clone()).await.expect_err("secret");
    assert_eq!(holds_secret_era(&refused), Vec::<&str>::new());

    admin
        .customers
        .update_customer(classify(&customer, pb::Confidentiality::Public))
        .await
        .expect("declassify");
    let got = co_int.complaints.get_complaint(get.clone()).await.expect("get").into_inner();
    let complaint = got.complaint.expect("complaint");
    assert!(complaint.description.contains(SECRET_ERA[0]), "released: {complaint:?}");
    assert!(complaint.redacted_fields.is_empty(), "{complaint:?}");
    let as_of = |version| pb::GetCaseAsOfRequest {
        complaint: number.clone(),
        point: Some(pb::get_case_as_of_request::Point::Version(version)),
    };
    let state = co_int.audit.get_case_as_of(as_of(1)).await.expect("as of").into_inner();
    assert_eq!(holds_secret_era(&state), vec![SECRET_ERA[0]], "GetCaseAsOf: {state:?}");
    let export = pb::ExportCaseRequest { complaint: number.clone() };
    let dossier = co_int.audit.export_case(export.clone()).await.expect("export").into_inner();
    assert_eq!(holds_secret_era(&dossier.dossier_json), SECRET_ERA.to_vec(), "ExportCase");
    let replay = pb::ReplayCaseRequest { complaint: number.clone() };
    let mut replayed = co_int.audit.replay_case(replay.clone()).await.expect("replay").into_inner();
    let mut events = Vec::new();
    while let Some(next) = replayed.message().await.expect("replay") {
        events.push(next.event.expect("event"));
    }
    assert_eq!(holds_secret_era(&events), SECRET_ERA.to_vec(), "ReplayCase");

    // Raised again: every path withholds the whole case at once, nothing leaks.
    admin
        .customers
        .update_customer(classify(&customer, pb::Confidentiality::Secret))
        .await
        .expect("raise");
    let refused = co_int.complaints.get_complaint(get.clone()).await.expect_err("secret again");
    assert_eq!(holds_secret_era(&refused), Vec::<&str>::new());
    let shown = co_int.audit.get_case_as_of(as_of(4)).await;
    assert_eq!(holds_secret_era(&shown), Vec::<&str>::new(), "GetCaseAsOf: {shown:?}");
    let shown = co_int.audit.export_case(export).await;
    assert_eq!(holds_secret_era(&shown), Vec::<&str>::new(), "ExportCase: {shown:?}");
    let mut events = Vec::new();
    if let Ok(replayed) = co_int.audit.replay_case(replay).await {
        let mut replayed = replayed.into_inner();
        while let Ok(Some(next)) = replayed.message().await {
            events.push(next);
        }
    }
    assert_eq!(holds_secret_era(&events), Vec::<&str>::new(), "ReplayCase: {events:?}");
    // The secret-cleared reader sees it all, on the same paths.
    let all = admin.complaints.get_complaint(get).await.expect("get").into_inner();
    assert_eq!(holds_secret_era(&all), vec![SECRET_ERA[0]]);
}
