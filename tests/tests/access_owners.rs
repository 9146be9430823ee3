//! Issue 16 (R-C6 with R-C3), over gRPC on SQLite and PostgreSQL: a customer is owned
//! only by an agent cleared for their level, whether registered to one, assigned, raised
//! or handed over by a departure (`AGENT_NOT_CLEARED`, docs/security.md); and a level
//! changes only within the clearance of everyone holding the customer's open work, a
//! case's handler or a request's agent (`HOLDERS_NOT_CLEARED`, issue 22 F1).

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::refused_quietly;
use kefu_tests::{reason, rid, Clients, TestApp};
use tonic::{Code, Status};

kefu_tests::on_both_backends!(
    a_customer_is_registered_assigned_and_raised_only_to_a_cleared_agent,
    a_departure_hands_each_customer_to_a_cleared_agent_or_names_it,
    only_a_token_that_lets_them_do_the_work_clears_an_owner,
    a_level_changes_only_within_the_clearance_of_everyone_holding_open_work,
    an_assignment_racing_a_raise_never_leaves_work_with_someone_uncleared,
    a_request_received_racing_a_raise_ends_with_a_cleared_agent,
    a_case_reopened_after_a_raise_goes_to_a_cleared_handler,
    a_merge_into_a_higher_survivor_waits_for_the_duplicates_holders,
    a_refusal_names_no_case_against_the_classifier,
    a_complaints_callback_is_owned_by_the_customers_agent_who_makes_it,
);

/// `FAILED_PRECONDITION` `AGENT_NOT_CLEARED`, nothing written.
async fn not_cleared<T: std::fmt::Debug>(
    app: &TestApp,
    call: impl std::future::Future<Output = Result<T, Status>>,
) {
    let status = refused_quietly(app, call, Code::FailedPrecondition, &[]).await;
    assert_eq!(reason(&status).as_deref(), Some("AGENT_NOT_CLEARED"), "{status:?}");
}

async fn registered(clients: &mut Clients, request: pb::RegisterCustomerRequest) -> String {
    let registered = clients.customers.register_customer(request).await.expect("register");
    registered.into_inner().result.expect("result").id
}

async fn owner(clients: &mut Clients, customer_id: &str) -> String {
    let request = pb::GetCustomerRequest { customer_id: customer_id.to_owned() };
    let customer = clients.customers.get_customer(request).await.expect("get").into_inner();
    customer.customer.expect("customer").agent
}

fn assign(customer_id: &str, agent: &str) -> pb::AssignAgentRequest {
    pb::AssignAgentRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        expected_version: None,
        agent: agent.to_owned(),
        reason: String::new(),
    }
}

fn raise(customer_id: &str, level: pb::Confidentiality) -> pb::UpdateCustomerRequest {
    pb::UpdateCustomerRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        expected_version: None,
        name: None,
        contacts: None,
        confidentiality: level as i32,
    }
}

/// R-C6: nobody owns a record they may not read. The agents of `standard_staff` hold
/// internal tokens; `h-sec` holds a secret one; `nobody` is on staff with no token.
async fn a_customer_is_registered_assigned_and_raised_only_to_a_cleared_agent(app: &TestApp) {
    use pb::Confidentiality::{Confidential, Internal, Public, Secret};
    standard_staff(app).await;
    register_staff(app, &[("nobody", &[pb::StaffRole::Agent])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let mut service = app.clients(Some("svc-sec")).await;
    // Registered to a named agent below the level, or holding no token at all.
    for (level, agent) in [(Secret, "a1"), (Confidential, "a1"), (Public, "nobody")] {
        let request = customer_request("Uncleared Owner QA1", level, agent);
        not_cleared(app, admin.customers.register_customer(request.clone())).await;
        not_cleared(app, service.customers.register_customer(request)).await;
    }
    // Automatic assignment chooses among cleared agents only: none is cleared yet.
    let automatic = |level| customer_request("Automatic Owner QA2", level, "");
    not_cleared(app, service.customers.register_customer(automatic(Secret))).await;
    register_staff(app, &[("h-sec", &[pb::StaffRole::Agent])]).await;
    // h-sec now owns the most customers of all agents, yet is the only one cleared.
    let first =
        registered(&mut admin, customer_request("Cleared Owner QA3", Internal, "h-sec")).await;
    let secret = registered(&mut service, automatic(Secret)).await;
    assert_eq!(owner(&mut admin, &secret).await, "h-sec");
    let internal = registered(&mut service, automatic(Internal)).await;
    assert_ne!(owner(&mut admin, &internal).await, "h-sec", "the least loaded, h-sec has two");
    // Assigned: only to a cleared agent.
    not_cleared(app, admin.customers.assign_agent(assign(&secret, "a2"))).await;
    not_cleared(app, admin.customers.assign_agent(assign(&first, "nobody"))).await;
    assert_eq!(owner(&mut admin, &secret).await, "h-sec");
    // Raised: refused above the current agent's clearance, by a supervisor cleared for
    // both levels too; handed to a cleared agent first, the raise passes.
    let mut supervisor = app.clients(Some("s-sec")).await;
    not_cleared(app, supervisor.customers.update_customer(raise(&internal, Secret))).await;
    not_cleared(app, admin.customers.update_customer(raise(&internal, Confidential))).await;
    admin.customers.assign_agent(assign(&internal, "h-sec")).await.expect("a cleared agent");
    supervisor.customers.update_customer(raise(&internal, Secret)).await.expect("raise");
    let get = pb::GetCustomerRequest { customer_id: internal.clone() };
    let raised = admin.customers.get_customer(get).await.expect("get").into_inner().customer;
    let raised = raised.expect("customer");
    assert_eq!((raised.confidentiality, raised.agent.as_str()), (Secret as i32, "h-sec"));
}

/// R-C3 with R-C6: a leaver's customer goes to the least-loaded agent cleared for them;
/// one nobody active is cleared for stays with the leaver and is named in the answer
/// (and in a retry's), R-C6 in its reason, while the rest are handed over.
async fn a_departure_hands_each_customer_to_a_cleared_agent_or_names_it(app: &TestApp) {
    use pb::Confidentiality::{Internal, Secret};
    let mut admin = with_secret_agents(app).await;
    // a-sec (secret) is the most loaded agent; a1, a2, h1, h2, r1 (internal) have none.
    for n in 0..3 {
        let name = format!("Load Person QB{n}");
        registered(&mut admin, customer_request(&name, Internal, "a-sec")).await;
    }
    let secret =
        registered(&mut admin, customer_request("Secret Leaver QB4", Secret, "h-sec")).await;
    let internal =
        registered(&mut admin, customer_request("Plain Leaver QB5", Internal, "h-sec")).await;
    let depart = |leaver: &str| pb::RecordDepartureRequest {
        request_id: rid(),
        staff_id: leaver.to_owned(),
        reason: String::new(),
    };
    let answer = admin.staff.record_departure(depart("h-sec")).await.expect("depart");
    let answer = answer.into_inner();
    let moved: Vec<(&str, &str)> =
        answer.customers.iter().map(|m| (m.id.as_str(), m.new_owner.as_str())).collect();
    assert!(moved.contains(&(secret.as_str(), "a-sec")), "{moved:?}");
    assert!(answer.unassigned.is_empty(), "{:?}", answer.unassigned);
    assert_eq!(owner(&mut admin, &secret).await, "a-sec");
    assert_ne!(owner(&mut admin, &internal).await, "a-sec", "the least loaded");
    // a-sec leaves: no active agent is cleared for the secret customer any more.
    let request = depart("a-sec");
    let answer = admin.staff.record_departure(request.clone()).await.expect("depart");
    let answer = answer.into_inner();
    let named: Vec<&pb::UnassignedItem> =
        answer.unassigned.iter().filter(|item| item.id == secret).collect();
    assert_eq!(named.len(), 1, "{:?}", answer.unassigned);
    assert!(named[0].reason.contains("R-C6"), "{:?}", named[0]);
    assert_eq!(answer.unassigned.len(), 1, "only the secret customer: {:?}", answer.unassigned);
    assert_eq!(answer.customers.len(), 3, "a-sec's internal customers handed over");
    assert!(answer.customers.iter().all(|m| m.new_owner != "a-sec" && m.id != secret));
    assert_eq!(owner(&mut admin, &secret).await, "a-sec", "nobody uncleared holds it");
    let retried = admin.staff.record_departure(request).await.expect("retry").into_inner();
    assert_eq!(retried.unassigned, answer.unassigned);
    // A supervisor assigns a cleared agent once there is one (R-C3 restored).
    register_staff(app, &[("s-sec", &[pb::StaffRole::Agent])]).await;
    admin.customers.assign_agent(assign(&secret, "s-sec")).await.expect("a cleared agent");
}

/// Fifth attack, finding 1 (R-C6): clearance was the highest of a staff member's tokens
/// of any role, so staff holding only a secret analyst's (or service's) token were given
/// secret customers and cases they then could not read. Only a token that lets them do
/// the work (read and contact the customer; read and investigate the case) clears them.
async fn only_a_token_that_lets_them_do_the_work_clears_an_owner(app: &TestApp) {
    use pb::StaffRole::{Agent, Handler};
    standard_staff(app).await;
    register_staff(app, &[("an-sec", &[Agent, Handler]), (CLEARED_AGENT, &[Agent, Handler])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let request = customer_request("Analyst Owned Person", pb::Confidentiality::Secret, "an-sec");
    not_cleared(app, admin.customers.register_customer(request)).await;
    let request =
        customer_request("Secret Owned Person", pb::Confidentiality::Secret, CLEARED_AGENT);
    let customer = registered(&mut admin, request).await;
    not_cleared(app, admin.customers.assign_agent(assign(&customer, "an-sec"))).await;
    let (case, _) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
    let status = refused_quietly(
        app,
        admin.complaints.assign_handler(kefu_tests::flows::assign(&case, "an-sec")),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("HANDLER_NOT_CLEARED"), "{status:?}");
}

/// The standard staff and two agents cleared for secret, `h-sec` and `a-sec`; an admin.
async fn with_secret_agents(app: &TestApp) -> Clients {
    standard_staff(app).await;
    register_staff(app, &[("h-sec", &[pb::StaffRole::Agent]), ("a-sec", &[pb::StaffRole::Agent])])
        .await;
    app.clients(Some("admin")).await
}

/// `call` refused `FAILED_PRECONDITION` `HOLDERS_NOT_CLEARED`, nothing written.
async fn holders_not_cleared<T: std::fmt::Debug>(
    app: &TestApp,
    call: impl std::future::Future<Output = Result<T, Status>>,
    canaries: &[&str],
) -> Status {
    let status = refused_quietly(app, call, Code::FailedPrecondition, canaries).await;
    assert_eq!(reason(&status).as_deref(), Some("HOLDERS_NOT_CLEARED"), "{status:?}");
    status
}

fn receive(customer_id: &str, agent: &str) -> pb::ReceiveRequestRequest {
    pb::ReceiveRequestRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        kind: pb::RequestKind::Inquiry as i32,
        channel: pb::IntakeChannel::Phone as i32,
        category: "product".into(),
        description: "which filter fits model 7".into(),
        received_at: None,
        agent: agent.to_owned(),
    }
}

fn assign_request(id: &str, agent: &str) -> pb::AssignRequestRequest {
    pb::AssignRequestRequest {
        request_id: rid(),
        service_request_id: id.to_owned(),
        expected_version: None,
        agent: agent.to_owned(),
        reason: String::new(),
    }
}

/// R-C6 with R-C3 (issue 22 F1): whoever holds a customer's open work must be able to
/// read it, so a raise above a case's handler or a request's agent is refused as one
/// above the customer's agent is, naming each piece of work to hand over first, and
/// writing nothing; closed work holds nothing up. The customer's agent (`h-sec`) is
/// cleared throughout, so only the holders decide.
async fn a_level_changes_only_within_the_clearance_of_everyone_holding_open_work(app: &TestApp) {
    use pb::Confidentiality::{Internal, Secret};
    let mut admin = with_secret_agents(app).await;
    let mut supervisor = app.clients(Some("s-sec")).await;
    let customer =
        registered(&mut admin, customer_request("Held Work QC1", Internal, "h-sec")).await;
    let (open_case, case_number) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
    admin
        .complaints
        .assign_handler(kefu_tests::flows::assign(&open_case, "h1"))
        .await
        .expect("assign h1");
    let (closed_case, _) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
    handle_to_close(app, &closed_case).await;
    let received = admin.requests.receive_request(receive(&customer, "a1")).await;
    let request_id = received.expect("receive").into_inner().result.expect("result").id;
    // h1 holds the open case, a1 the request, both internal: the raise names both.
    let status = holders_not_cleared(
        app,
        supervisor.customers.update_customer(raise(&customer, Secret)),
        &[],
    )
    .await;
    let message = status.message();
    assert!(message.contains(&case_number) && message.contains("h1"), "{message}");
    assert!(message.contains(&request_id) && message.contains("a1"), "{message}");
    // The case handed to a cleared handler: the request alone holds it up.
    admin
        .complaints
        .assign_handler(kefu_tests::flows::assign(&open_case, "a-sec"))
        .await
        .expect("to a-sec");
    let status =
        holders_not_cleared(app, admin.customers.update_customer(raise(&customer, Secret)), &[])
            .await;
    assert!(!status.message().contains(&case_number), "{}", status.message());
    // Every holder cleared (the closed case's h1 holds nothing): the raise goes ahead.
    admin.requests.assign_request(assign_request(&request_id, "h-sec")).await.expect("to h-sec");
    supervisor.customers.update_customer(raise(&customer, Secret)).await.expect("raise");
    let get = pb::GetCustomerRequest { customer_id: customer.clone() };
    let raised = admin.customers.get_customer(get).await.expect("get").into_inner().customer;
    assert_eq!(raised.expect("customer").confidentiality, Secret as i32);
}

/// The same rule against a race (issue 22 F1): an assignment of an uncleared handler and
/// a raise, sent together, never both go ahead. The raise holds the cases it read as
/// they were, the assignment holds the level it read; whichever commits second is
/// refused (or `ABORTED`, to be retried).
async fn an_assignment_racing_a_raise_never_leaves_work_with_someone_uncleared(app: &TestApp) {
    use pb::Confidentiality::{Internal, Secret};
    let mut admin = with_secret_agents(app).await;
    for round in 0..8 {
        let name = format!("Raced Work QD{round}");
        let customer = registered(&mut admin, customer_request(&name, Internal, "h-sec")).await;
        let (case, _) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
        admin
            .complaints
            .assign_handler(kefu_tests::flows::assign(&case, "a-sec"))
            .await
            .expect("a cleared one");
        let mut assigner = app.clients(Some("admin")).await;
        let mut raiser = app.clients(Some("s-sec")).await;
        let (assigned, raised) = tokio::join!(
            assigner.complaints.assign_handler(kefu_tests::flows::assign(&case, "h1")),
            raiser.customers.update_customer(raise(&customer, Secret)),
        );
        assert!(
            !(assigned.is_ok() && raised.is_ok()),
            "round {round}: h1 (internal) was given the case and the customer raised to secret"
        );
        for refused in [assigned.err(), raised.err()].into_iter().flatten() {
            assert!(
                matches!(refused.code(), Code::FailedPrecondition | Code::Aborted),
                "round {round}: {refused:?}"
            );
        }
    }
}

/// F1 attacked (issue 22): a request received for an uncleared agent in the moment
/// between the raise's check and its commit. The raise's sweep (or the receipt's own
/// check of the level, whichever comes second) leaves the request with a cleared agent.
async fn a_request_received_racing_a_raise_ends_with_a_cleared_agent(app: &TestApp) {
    use pb::Confidentiality::{Internal, Secret};
    let mut admin = with_secret_agents(app).await;
    for round in 0..8 {
        let name = format!("Raced Request QE{round}");
        let customer = registered(&mut admin, customer_request(&name, Internal, "h-sec")).await;
        let mut receiver = app.clients(Some("admin")).await;
        let mut raiser = app.clients(Some("s-sec")).await;
        let (received, raised) = tokio::join!(
            receiver.requests.receive_request(receive(&customer, "a1")),
            raiser.customers.update_customer(raise(&customer, Secret)),
        );
        let (Ok(received), Ok(_)) = (received, raised) else { continue };
        let id = received.into_inner().result.expect("result").id;
        let get = pb::GetRequestRequest { service_request_id: id };
        let shown = admin.requests.get_request(get).await.expect("get").into_inner();
        let agent = shown.request.expect("request").agent;
        assert!(["h-sec", "a-sec"].contains(&agent.as_str()), "round {round}: held by {agent}");
    }
}

/// F1 attacked (issue 22): a closed case holds nothing up, so its customer may be raised
/// above its handler; reopened (R-P14), it goes to the least-loaded cleared handler, as a
/// case reopened after its handler left does (R-C3), not back to someone who may not
/// read it.
async fn a_case_reopened_after_a_raise_goes_to_a_cleared_handler(app: &TestApp) {
    use pb::Confidentiality::{Internal, Secret};
    standard_staff(app).await;
    let both: &[pb::StaffRole] = &[pb::StaffRole::Agent, pb::StaffRole::Handler];
    register_staff(app, &[("h-sec", both), ("a-sec", both)]).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer =
        registered(&mut admin, customer_request("Reopened QF1", Internal, "h-sec")).await;
    let (case, _) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
    handle_to_close(app, &case).await;
    let mut supervisor = app.clients(Some("s-sec")).await;
    supervisor.customers.update_customer(raise(&customer, Secret)).await.expect("closed: raised");
    let reopen = pb::ReopenComplaintRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        cause: "the customer asked again".into(),
    };
    supervisor.complaints.reopen_complaint(reopen).await.expect("reopen");
    let get = pb::GetComplaintRequest { complaint: case.clone() };
    let shown = admin.complaints.get_complaint(get).await.expect("get").into_inner();
    let handler = shown.complaint.expect("complaint").handler;
    assert!(["h-sec", "a-sec"].contains(&handler.as_str()), "reopened to {handler}");
}

/// F1 attacked (issue 22): a duplicate merged into a higher survivor is read at the
/// survivor's level from then on, so the merge raises the duplicate's open work and is
/// refused, like a raise, while an uncleared colleague holds it.
async fn a_merge_into_a_higher_survivor_waits_for_the_duplicates_holders(app: &TestApp) {
    use pb::Confidentiality::{Confidential, Internal};
    let mut admin = with_secret_agents(app).await;
    let duplicate =
        registered(&mut admin, customer_request("Merged Holder QG1", Internal, "h-sec")).await;
    let survivor =
        registered(&mut admin, customer_request("Merged Holder QG1", Confidential, "h-sec")).await;
    let received = admin.requests.receive_request(receive(&duplicate, "a1")).await;
    let request_id = received.expect("receive").into_inner().result.expect("result").id;
    let merge = || pb::MergeCustomersRequest {
        request_id: rid(),
        duplicate_id: duplicate.clone(),
        survivor_id: survivor.clone(),
        reason: "the same person".into(),
        ..Default::default()
    };
    let status = holders_not_cleared(app, admin.customers.merge_customers(merge()), &[]).await;
    assert!(status.message().contains(&request_id), "{}", status.message());
    admin.requests.assign_request(assign_request(&request_id, "a-sec")).await.expect("to a-sec");
    admin.customers.merge_customers(merge()).await.expect("merged once a-sec holds it");
}

/// F1 attacked (issue 22, R-P4): a classifier who is the respondent of one of the
/// customer's open cases is refused the raise without being told that case's number or
/// who handles it.
async fn a_refusal_names_no_case_against_the_classifier(app: &TestApp) {
    use pb::Confidentiality::{Internal, Secret};
    standard_staff(app).await;
    register_staff(app, &[("h-sec", &[pb::StaffRole::Agent])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer =
        registered(&mut admin, customer_request("Against Classifier QH1", Internal, "h-sec")).await;
    let (case, number) = file(&mut admin, &customer, pb::Severity::Normal, "s-sec").await;
    admin.complaints.assign_handler(kefu_tests::flows::assign(&case, "h1")).await.expect("h1");
    let mut respondent = app.clients(Some("s-sec")).await;
    let status = holders_not_cleared(
        app,
        respondent.customers.update_customer(raise(&customer, Secret)),
        &[&number, &case],
    )
    .await;
    assert!(!status.message().contains("h1"), "{}", status.message());
    // Another classifier is told which case it is.
    let status = refused_quietly(
        app,
        admin.customers.update_customer(raise(&customer, Secret)),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert!(status.message().contains(&number), "{}", status.message());
}

/// Attacked (issue 22, R-P15 with R-C3): a closed case's callback was listed for its
/// handler, who may not log it (`LogCallback` of a complaint is the customer's own
/// agent's), and hidden from the agent who could. It is owned by the customer's agent
/// on `ListDueCallbacks` and on the SLA list, and gone once they make it.
async fn a_complaints_callback_is_owned_by_the_customers_agent_who_makes_it(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = registered(
        &mut admin,
        customer_request("Called Back QI1", pb::Confidentiality::Internal, "a2"),
    )
    .await;
    let (case, _) = file(&mut admin, &customer, pb::Severity::Normal, "").await;
    let closed = handle_to_close(app, &case).await;
    let due = |position| pb::ListDueCallbacksRequest {
        horizon_hours: 24 * 4,
        owner: String::new(),
        min_position: position,
        as_of: None,
    };
    let of_case = |list: pb::ListDueCallbacksResponse| -> Vec<pb::DueCallback> {
        list.due.into_iter().filter(|item| item.complaint_id == case).collect()
    };
    let mut a2 = app.clients(Some("a2")).await;
    let listed =
        of_case(a2.callbacks.list_due_callbacks(due(closed)).await.expect("a2").into_inner());
    assert_eq!(listed.len(), 1, "the customer's agent makes it");
    assert_eq!(listed[0].owner, "a2");
    let mut h1 = app.clients(Some("h1")).await;
    let listed =
        of_case(h1.callbacks.list_due_callbacks(due(closed)).await.expect("h1").into_inner());
    assert!(listed.is_empty(), "not the handler's: {listed:?}");
    // On the SLA list, four days on, under the same owner.
    let later = chrono::Utc::now() + chrono::TimeDelta::days(4);
    let breaches = pb::ListSlaBreachesRequest {
        min_position: closed,
        as_of: Some(prost_types::Timestamp { seconds: later.timestamp(), nanos: 0 }),
        include_at_risk: false,
    };
    let breaches = admin.reports.list_sla_breaches(breaches).await.expect("breaches").into_inner();
    let item = breaches
        .breaches
        .iter()
        .find(|b| b.subject_id == case && b.rule == pb::SlaRule::CallbackOverdue as i32)
        .expect("the callback overdue");
    assert_eq!(item.owner, "a2");
    let callback = complaint_callback(&customer, &case, "satisfied now");
    let logged = a2.callbacks.log_callback(callback).await.expect("the owner logs it");
    let position = logged.into_inner().result.expect("result").position;
    let listed =
        of_case(a2.callbacks.list_due_callbacks(due(position)).await.expect("a2").into_inner());
    assert!(listed.is_empty(), "made: {listed:?}");

    // R-P4 (attacked): when the customer's agent is the case's respondent, the call is
    // nobody's own (a supervisor's to make), not theirs.
    let (against, _) = file(&mut admin, &customer, pb::Severity::Normal, "a2").await;
    let closed = handle_to_close(app, &against).await;
    let mine = a2.callbacks.list_due_callbacks(due(closed)).await.expect("a2").into_inner();
    assert!(mine.due.iter().all(|item| item.complaint_id != against), "{mine:?}");
    let mut s1 = app.clients(Some("s1")).await;
    let all = s1.callbacks.list_due_callbacks(due(closed)).await.expect("s1").into_inner();
    let item = all.due.iter().find(|item| item.complaint_id == against).expect("listed");
    assert_eq!(item.owner, "", "{item:?}");
}
