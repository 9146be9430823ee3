//! R-C6 at the commit: a case write by someone cleared when it read the customer, racing
//! a raise of that customer above their clearance, commits before the raise or not at
//! all: nobody writes to a case they may no longer read. The writer is a supervisor
//! stepping in: a raise above the case's handler is refused outright (issue 22 F1).

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{rid, TestApp};

kefu_tests::on_both_backends!(
    a_case_write_racing_a_raise_above_the_writer_commits_before_it_or_not,
    a_write_on_a_merged_duplicates_case_racing_a_raise_of_its_survivor_commits_before_it,
    a_filing_racing_a_raise_above_the_filer_commits_before_it_or_not,
);

/// Rounds of the race; each one lowers the customer again.
const ROUNDS: usize = 30;

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

/// A customer owned by an agent cleared for the raise (R-C6), at `internal`.
async fn raisable(app: &TestApp, name: &str) -> String {
    register_cleared_agent(app).await;
    let request = customer_request(name, pb::Confidentiality::Internal, CLEARED_AGENT);
    let mut admin = app.clients(Some("admin")).await;
    let registered = admin.customers.register_customer(request).await.expect("register");
    registered.into_inner().result.expect("result").id
}

async fn a_case_write_racing_a_raise_above_the_writer_commits_before_it_or_not(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = raisable(app, "Raised In A Race").await;
    let (case, _) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
    let late = raced(app, &case, &customer).await;
    assert!(late.is_empty(), "s1 wrote after the raise above them (round, raise, write): {late:?}");
}

/// The same race on the case of a duplicate merged into the customer raised: the
/// survivor's level governs the duplicate's cases (third attack: the write held only the
/// duplicate's own stream and committed after the survivor's raise).
async fn a_write_on_a_merged_duplicates_case_racing_a_raise_of_its_survivor_commits_before_it(
    app: &TestApp,
) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let survivor = raisable(app, "Raised Survivor").await;
    let duplicate = register_customer(&mut admin, "Merged Duplicate").await;
    let (case, _) = file(&mut admin, &duplicate, pb::Severity::Normal, "").await;
    let merge = pb::MergeCustomersRequest {
        request_id: rid(),
        duplicate_id: duplicate,
        survivor_id: survivor.clone(),
        reason: "the same person".into(),
        ..Default::default()
    };
    admin.customers.merge_customers(merge).await.expect("merge");
    let late = raced(app, &case, &survivor).await;
    assert!(late.is_empty(), "s1 wrote after the raise above them (round, raise, write): {late:?}");
}

/// `FileComplaint` checks the filer's clearance against the customer as read; a raise
/// between that read and the commit let a filing be acknowledged after it, under the old
/// level (4 of 15 rounds on SQLite). Each round files as `svc-web` (internal) while the
/// customer is raised to confidential, and lowers them again; a contact logged in the
/// same round shows that unrelated changes to the customer still do not hold a filing up.
async fn a_filing_racing_a_raise_above_the_filer_commits_before_it_or_not(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = raisable(app, "Raised While Filed For").await;
    let filer = app.clients(Some("svc-web")).await;
    let (mut late, mut filed) = (Vec::new(), 0);
    for round in 0..ROUNDS {
        let (mut raiser, mut filing, mut contact) = (admin.clone(), filer.clone(), admin.clone());
        let contacted = pb::RecordContactRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            note: String::new(),
            contacted_at: None,
        };
        let (raise, written, contacted) = tokio::join!(
            raiser
                .customers
                .update_customer(classify(&customer, pb::Confidentiality::Confidential)),
            filing.complaints.file_complaint(file_request(&customer, pb::Severity::Normal, "")),
            contact.customers.record_contact(contacted),
        );
        contacted.expect("a contact is no level change");
        let raise = raise.expect("raise").into_inner().result.expect("result").position;
        match written {
            Ok(written) => {
                filed += 1;
                let written = written.into_inner().result.expect("result").position;
                if written > raise {
                    late.push((round, raise, written));
                }
            }
            Err(status) => assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}"),
        }
        let lowered = classify(&customer, pb::Confidentiality::Internal);
        admin.customers.update_customer(lowered).await.expect("lower again");
    }
    assert!(
        late.is_empty(),
        "filed after the raise above the filer (round, raise, filing): {late:?}"
    );
    // Not vacuous: filings before the raise still go through.
    let request = file_request(&customer, pb::Severity::Normal, "");
    filer.clone().complaints.file_complaint(request).await.expect("filed at internal");
    println!("{filed} of {ROUNDS} racing filings acknowledged, none after the raise");
}

/// Rounds of `s1`'s `RecordInvestigation` on `case` (a supervisor stepping in) racing a
/// raise of `raised` above s1's clearance (lowered again after each): the rounds where
/// the write committed after.
async fn raced(app: &TestApp, case: &str, raised: &str) -> Vec<(usize, u64, u64)> {
    let mut admin = app.clients(Some("admin")).await;
    // The handler is cleared for the raise; s1 for confidential, above the level now.
    admin.complaints.assign_handler(assign(case, CLEARED_AGENT)).await.expect("assign");
    let s1 = app.clients(Some("s1")).await;
    let mut late = Vec::new();
    for round in 0..ROUNDS {
        let (mut raiser, mut handler) = (admin.clone(), s1.clone());
        let investigation = pb::RecordInvestigationRequest {
            request_id: rid(),
            complaint_id: case.to_owned(),
            expected_version: None,
            findings: format!("round {round}"),
        };
        let (raise, written) = tokio::join!(
            raiser.customers.update_customer(classify(raised, pb::Confidentiality::Secret)),
            handler.complaints.record_investigation(investigation),
        );
        let raise = raise.expect("raise").into_inner().result.expect("result").position;
        if let Ok(written) = written {
            let written = written.into_inner().result.expect("result").position;
            if written > raise {
                late.push((round, raise, written));
            }
        }
        let lowered = classify(raised, pb::Confidentiality::Internal);
        admin.customers.update_customer(lowered).await.expect("lower again");
    }
    late
}
