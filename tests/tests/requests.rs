//! Service requests over the wire (issue 22), on SQLite and PostgreSQL: receipt by a
//! service, balanced to the least-loaded cleared agent (R-C3, R-C6); the 12-hour first
//! response from receipt (R-P7); resolution and the after-sales callback due within 3
//! days (R-P15), settled by a customer callback of kind `after_sale`, at risk then
//! overdue on the SLA lists, watch and counts like a complaint's; idempotency; who
//! reads and acts (its agent, supervisors, compliance; not another agent, an analyst, a
//! service or an uncleared caller); bad input refused field by field, changing nothing;
//! escalation to a complaint: linked both ways, its clocks from the request's receipt
//! (R-P7), one complaint however often or concurrently it is asked.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::{denied, hidden, refused_quietly};
use kefu_tests::{reason, rid, violated_fields, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    a_request_goes_from_receipt_to_its_after_sale_callback,
    requests_are_read_and_worked_only_by_those_the_table_allows,
    bad_requests_are_refused_field_by_field_and_change_nothing,
    an_escalation_files_one_complaint_linked_both_ways_and_clocked_from_the_receipt,
    escalation_is_the_agents_or_a_supervisors_and_refuses_bad_input_quietly,
    an_unanswered_request_is_at_risk_then_breached_on_the_sla_lists,
    a_request_callback_is_owned_by_the_customers_agent_who_makes_it,
    a_departure_hands_over_the_leavers_open_requests,
    a_request_escalated_against_its_agent_does_not_name_the_complaint_to_them,
    a_late_answer_buys_an_escalated_complaint_no_time,
    the_feed_names_no_escalated_complaint_to_its_respondent,
);

const PRECONDITION: Code = Code::FailedPrecondition;
const DESCRIPTION: &str = "the water heater from order 77 leaks at the valve";
const RESOLUTION: &str = "valve replaced at the customer's home";

fn receive(customer_id: &str, received_at: DateTime<Utc>) -> pb::ReceiveRequestRequest {
    pb::ReceiveRequestRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        kind: pb::RequestKind::AfterSale as i32,
        channel: pb::IntakeChannel::Phone as i32,
        category: "product".into(),
        description: DESCRIPTION.into(),
        received_at: Some(timestamp(received_at)),
        agent: String::new(),
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }
}

fn time(at: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let at = at.as_ref().expect("a time");
    DateTime::from_timestamp(at.seconds, 0).expect("valid")
}

fn respond(id: &str) -> pb::RespondToRequestRequest {
    pb::RespondToRequestRequest {
        request_id: rid(),
        service_request_id: id.to_owned(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        summary: "a technician comes tomorrow".into(),
        responded_at: None,
    }
}

fn resolve(id: &str) -> pb::ResolveRequestRequest {
    pb::ResolveRequestRequest {
        request_id: rid(),
        service_request_id: id.to_owned(),
        expected_version: None,
        summary: RESOLUTION.into(),
    }
}

async fn get(clients: &mut Clients, id: &str) -> Result<pb::ServiceRequest, tonic::Status> {
    let request = pb::GetRequestRequest { service_request_id: id.to_owned() };
    let answer = clients.requests.get_request(request).await?;
    Ok(answer.into_inner().request.expect("request"))
}

async fn listed(clients: &mut Clients, position: u64) -> Vec<pb::ServiceRequest> {
    let request = pb::ListRequestsRequest { min_position: position, ..Default::default() };
    clients.requests.list_requests(request).await.expect("list").into_inner().requests
}

/// The request callbacks on `clients`' due list for the next four days.
async fn request_callbacks_due(clients: &mut Clients, position: u64) -> Vec<pb::DueCallback> {
    let list = pb::ListDueCallbacksRequest {
        horizon_hours: 24 * 4,
        owner: String::new(),
        min_position: position,
        as_of: None,
    };
    let due = clients.callbacks.list_due_callbacks(list).await.expect("due").into_inner().due;
    due.into_iter().filter(|d| d.kind == pb::DueKind::RequestCallback as i32).collect()
}

async fn received(app: &TestApp) -> (String, String, u64, DateTime<Utc>) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Qian Li").await;
    let mut service = app.clients(Some("svc-web")).await;
    let received_at = Utc::now().trunc_subsecs(0) - TimeDelta::hours(2);
    let answer = service
        .requests
        .receive_request(receive(&customer, received_at))
        .await
        .expect("receive")
        .into_inner();
    let result = answer.result.expect("result");
    (customer, result.id, result.position, received_at)
}

async fn a_request_goes_from_receipt_to_its_after_sale_callback(app: &TestApp) {
    let (customer, id, position, received_at) = received(app).await;
    let mut a1 = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    // R-C3: the tie between agents holding no request goes to the smallest code.
    let first = get(&mut a1, &id).await.expect("its agent reads it");
    assert_eq!(first.agent, "a1");
    assert_eq!(first.description, DESCRIPTION);
    assert_eq!(first.status, pb::RequestStatus::Open as i32);
    // R-P7: 12 hours from receipt, not from entry.
    assert_eq!(time(&first.first_response_due_at), received_at + TimeDelta::hours(12));
    // The next goes to the agent with fewer open requests.
    listed(&mut supervisor, position).await;
    let mut service = app.clients(Some("svc-web")).await;
    let second =
        service.requests.receive_request(receive(&customer, Utc::now())).await.expect("second");
    assert_ne!(second.into_inner().agent, "a1", "balanced: a1 already holds one");

    let responded = a1.requests.respond_to_request(respond(&id)).await.expect("respond");
    let responded_at = time(&get(&mut a1, &id).await.unwrap().first_response_at);
    assert!(responded_at >= received_at);
    assert!(responded.into_inner().result.unwrap().version >= 3);
    let resolved = a1.requests.resolve_request(resolve(&id)).await.expect("resolve").into_inner();
    let shown = get(&mut a1, &id).await.unwrap();
    assert_eq!(shown.status, pb::RequestStatus::Resolved as i32);
    assert_eq!(shown.resolution, RESOLUTION);
    assert!(!shown.first_contact, "answered before it was resolved");
    // R-P15: the callback is due 3 days after the service.
    let resolved_at = time(&shown.resolved_at);
    assert_eq!(time(&resolved.callback_due_at), resolved_at + TimeDelta::days(3));
    let position = resolved.result.unwrap().position;
    let row =
        listed(&mut supervisor, position).await.into_iter().find(|r| r.service_request_id == id);
    let row = row.expect("listed");
    assert!(!row.called_back && row.description.is_empty() && row.resolution.is_empty());
    // R-P15: the callback is on the due lists, its agent's and the supervisors'.
    for clients in [&mut a1, &mut supervisor] {
        let due = request_callbacks_due(clients, position).await;
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!((due[0].owner.as_str(), due[0].customer_id.as_str()), ("a1", customer.as_str()));
        assert_eq!(time(&due[0].due_at), resolved_at + TimeDelta::days(3));
        assert!(!due[0].overdue);
    }
    let mut a2 = app.clients(Some("a2")).await;
    assert!(request_callbacks_due(&mut a2, position).await.is_empty(), "another agent's");

    // A customer callback of kind after_sale settles it.
    let callback = pb::LogCallbackRequest {
        kind: pb::CallbackKind::AfterSale as i32,
        party: 0,
        ..complaint_callback(&customer, "", "satisfied with the repair")
    };
    let logged = a1.callbacks.log_callback(callback).await.expect("callback").into_inner();
    let position = logged.result.unwrap().position;
    let row =
        listed(&mut supervisor, position).await.into_iter().find(|r| r.service_request_id == id);
    assert!(row.expect("listed").called_back);
    assert!(get(&mut a1, &id).await.unwrap().called_back);
    assert!(request_callbacks_due(&mut supervisor, position).await.is_empty(), "made");

    // Idempotency: the same receipt again answers the same request; another payload
    // under the same key is refused.
    let again = receive(&customer, received_at);
    let first = service.requests.receive_request(again.clone()).await.expect("first").into_inner();
    let repeat =
        service.requests.receive_request(again.clone()).await.expect("repeat").into_inner();
    assert_eq!(first.result, repeat.result);
    let reused = pb::ReceiveRequestRequest { description: "another matter".into(), ..again };
    let status = service.requests.receive_request(reused).await.expect_err("reused key");
    assert_eq!(reason(&status).as_deref(), Some("REQUEST_ID_REUSED"), "{status:?}");
}

async fn requests_are_read_and_worked_only_by_those_the_table_allows(app: &TestApp) {
    let (_, id, _, _) = received(app).await;
    let secrets = [DESCRIPTION];
    for other in ["a2", "an1", "svc-web", "sp1"] {
        let mut clients = app.clients(Some(other)).await;
        denied(app, get(&mut clients, &id), &secrets).await;
    }
    // Another agent neither answers nor resolves it; a supervisor steps in.
    let mut a2 = app.clients(Some("a2")).await;
    denied(app, a2.requests.respond_to_request(respond(&id)), &secrets).await;
    denied(app, a2.requests.resolve_request(resolve(&id)), &secrets).await;
    // R-C6: a caller below the customer's level learns nothing of it.
    let mut uncleared = app.clients(Some("a-pub")).await;
    hidden(app, get(&mut uncleared, &id), &secrets).await;
    let mut compliance = app.clients(Some("co1")).await;
    assert_eq!(get(&mut compliance, &id).await.expect("compliance reads").description, DESCRIPTION);
    let mut supervisor = app.clients(Some("s1")).await;
    supervisor.requests.respond_to_request(respond(&id)).await.expect("a supervisor steps in");
    // Agents list only their own.
    let mine = pb::ListRequestsRequest { agent: "a1".into(), ..Default::default() };
    denied(app, a2.requests.list_requests(mine), &secrets).await;
    assert!(listed(&mut a2, 0).await.iter().all(|row| row.agent == "a2"));
    // An uncleared agent is never given it (R-C6).
    let to_public = pb::AssignRequestRequest {
        request_id: rid(),
        service_request_id: id.clone(),
        expected_version: None,
        agent: "a-pub".into(),
        reason: String::new(),
    };
    register_staff(app, &[("a-pub", &[pb::StaffRole::Agent])]).await;
    let status = refused_quietly(
        app,
        supervisor.requests.assign_request(to_public),
        Code::FailedPrecondition,
        &secrets,
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("AGENT_NOT_CLEARED"));
}

async fn bad_requests_are_refused_field_by_field_and_change_nothing(app: &TestApp) {
    let (customer, id, _, _) = received(app).await;
    let mut service = app.clients(Some("svc-web")).await;
    let bad = pb::ReceiveRequestRequest {
        kind: 0,
        category: "Zhang San wants his money back".into(),
        received_at: Some(timestamp(Utc::now() + TimeDelta::days(2))),
        ..receive(&customer, Utc::now())
    };
    let status = refused_quietly(
        app,
        service.requests.receive_request(bad),
        Code::InvalidArgument,
        &["Zhang San"],
    )
    .await;
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["category", "kind", "received_at"]);
    let mut a1 = app.clients(Some("a1")).await;
    let before = pb::RespondToRequestRequest {
        responded_at: Some(timestamp(Utc::now() - TimeDelta::days(3))),
        ..respond(&id)
    };
    let status =
        refused_quietly(app, a1.requests.respond_to_request(before), Code::InvalidArgument, &[])
            .await;
    assert_eq!(reason(&status).as_deref(), Some("RESPONSE_BEFORE_RECEIPT"));
    let unknown = resolve(&uuid::Uuid::now_v7().to_string());
    refused_quietly(app, a1.requests.resolve_request(unknown), Code::NotFound, &[]).await;
}

fn escalate(id: &str) -> pb::EscalateToComplaintRequest {
    pb::EscalateToComplaintRequest {
        request_id: rid(),
        service_request_id: id.to_owned(),
        expected_version: None,
        cause: "poor_communication".into(),
        severity: pb::Severity::Normal as i32,
        respondent: String::new(),
        reason: "the customer is not satisfied with the answer".into(),
    }
}

async fn complaint(clients: &mut Clients, id: &str) -> pb::Complaint {
    let request = pb::GetComplaintRequest { complaint: id.to_owned() };
    let answer = clients.complaints.get_complaint(request).await.expect("get complaint");
    answer.into_inner().complaint.expect("complaint")
}

async fn complaints_of(clients: &mut Clients, customer: &str, position: u64) -> usize {
    let request = pb::ListComplaintsRequest {
        customer_id: customer.to_owned(),
        min_position: position,
        ..Default::default()
    };
    let answer = clients.complaints.list_complaints(request).await.expect("list complaints");
    answer.into_inner().complaints.len()
}

async fn an_escalation_files_one_complaint_linked_both_ways_and_clocked_from_the_receipt(
    app: &TestApp,
) {
    let (customer, id, _, received_at) = received(app).await;
    let mut a1 = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    a1.requests.respond_to_request(respond(&id)).await.expect("respond");
    let asked = escalate(&id);
    let answer =
        a1.requests.escalate_to_complaint(asked.clone()).await.expect("escalate").into_inner();
    assert!(!answer.complaint_id.is_empty() && !answer.case_number.is_empty());
    let result = answer.result.clone().expect("result");
    assert_eq!(result.id, id, "the result is the request's write");

    // The request names the complaint, the complaint the request.
    let shown = get(&mut a1, &id).await.expect("its agent reads it");
    assert_eq!(shown.status, pb::RequestStatus::Escalated as i32);
    assert_eq!(shown.complaint_id, answer.complaint_id);
    assert_eq!(shown.case_number, answer.case_number);
    let filed = complaint(&mut supervisor, &answer.case_number).await;
    assert_eq!(filed.complaint_id, answer.complaint_id);
    assert_eq!(filed.from_request, id);
    assert_eq!(filed.customer_id, customer);
    assert_eq!(filed.description, DESCRIPTION, "the request's own words");
    assert_eq!(filed.channel, pb::IntakeChannel::Phone as i32);
    // R-P7: the complaint's clocks run from the request's receipt, not the escalation;
    // but the request was answered (its first contact made in time), so the complaint's
    // own first response, how it is handled, is due 12 hours from the escalation
    // (issue 22 F6; an unanswered request keeps the receipt's clock, below).
    assert_eq!(time(&filed.received_at), received_at);
    assert!(time(&filed.filed_at) > received_at);
    assert_eq!(time(&filed.first_response_due_at), time(&filed.filed_at) + TimeDelta::hours(12));
    assert!(time(&filed.resolution_due_at) < time(&filed.filed_at) + TimeDelta::days(30));

    // A retry under the same key answers the same; another key is refused, unwritten.
    let again = a1.requests.escalate_to_complaint(asked).await.expect("retry").into_inner();
    assert_eq!(again, answer);
    let status = refused_quietly(
        app,
        a1.requests.escalate_to_complaint(escalate(&id)),
        Code::FailedPrecondition,
        &[DESCRIPTION],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("REQUEST_ALREADY_ESCALATED"), "{status:?}");
    assert_eq!(complaints_of(&mut supervisor, &customer, result.position).await, 1);

    // Two escalations of one request at once (two keys): one complaint, never two.
    let mut service = app.clients(Some("svc-web")).await;
    let other = service
        .requests
        .receive_request(receive(&customer, Utc::now().trunc_subsecs(0)))
        .await
        .expect("another request")
        .into_inner()
        .result
        .expect("result")
        .id;
    let mut s1 = app.clients(Some("s1")).await;
    let mut s2 = app.clients(Some("s1")).await;
    let (one, two) = tokio::join!(
        s1.requests.escalate_to_complaint(escalate(&other)),
        s2.requests.escalate_to_complaint(escalate(&other)),
    );
    let won: Vec<_> = [one, two].into_iter().filter_map(Result::ok).collect();
    assert_eq!(won.len(), 1, "exactly one escalation files");
    let position = won[0].get_ref().result.as_ref().expect("result").position;
    assert_eq!(complaints_of(&mut supervisor, &customer, position).await, 2);
    let shown = get(&mut supervisor, &other).await.expect("read");
    assert_eq!(shown.complaint_id, won[0].get_ref().complaint_id);
}

async fn escalation_is_the_agents_or_a_supervisors_and_refuses_bad_input_quietly(app: &TestApp) {
    let (_, id, _, _) = received(app).await;
    let secrets = [DESCRIPTION];
    for other in ["a2", "an1", "svc-web", "sp1", "co1"] {
        let mut clients = app.clients(Some(other)).await;
        denied(app, clients.requests.escalate_to_complaint(escalate(&id)), &secrets).await;
    }
    let mut uncleared = app.clients(Some("a-pub")).await;
    hidden(app, uncleared.requests.escalate_to_complaint(escalate(&id)), &secrets).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let bad = pb::EscalateToComplaintRequest {
        cause: "he shouted at Zhang San".into(),
        severity: 0,
        reason: String::new(),
        ..escalate(&id)
    };
    let status = refused_quietly(
        app,
        supervisor.requests.escalate_to_complaint(bad),
        Code::InvalidArgument,
        &["Zhang San"],
    )
    .await;
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["cause", "reason", "severity"]);
    let stale = pb::EscalateToComplaintRequest { expected_version: Some(1), ..escalate(&id) };
    refused_quietly(app, supervisor.requests.escalate_to_complaint(stale), Code::Aborted, &[])
        .await;
    let unknown = escalate(&uuid::Uuid::now_v7().to_string());
    refused_quietly(app, supervisor.requests.escalate_to_complaint(unknown), Code::NotFound, &[])
        .await;
    // A supervisor steps in, with the version it read.
    let version = get(&mut supervisor, &id).await.expect("read").version;
    let current =
        pb::EscalateToComplaintRequest { expected_version: Some(version), ..escalate(&id) };
    supervisor.requests.escalate_to_complaint(current).await.expect("a supervisor escalates");
}

async fn sla_items(clients: &mut Clients, position: u64) -> Vec<pb::SlaBreach> {
    let request =
        pb::ListSlaBreachesRequest { min_position: position, as_of: None, include_at_risk: true };
    clients.reports.list_sla_breaches(request).await.expect("sla list").into_inner().breaches
}

/// R-P7 for requests on the complaints' SLA lists (R-T5 warnings included), told apart
/// by `subject`; the lists are rows, not for analysts (R-C6, R-P11's analogue).
async fn an_unanswered_request_is_at_risk_then_breached_on_the_sla_lists(app: &TestApp) {
    standard_staff(app).await;
    let mut a1 = app.clients(Some("a1")).await;
    let customer = register_customer(&mut a1, "Sun Wei").await;
    let mut service = app.clients(Some("svc-web")).await;
    let now = Utc::now().trunc_subsecs(0);
    let receive_at = |hours: i64| {
        let mut asked = receive(&customer, now - TimeDelta::hours(hours));
        asked.agent = "a1".into();
        asked
    };
    let late = service.requests.receive_request(receive_at(13)).await.expect("late");
    let late = late.into_inner().result.expect("result");
    let risky = service.requests.receive_request(receive_at(11)).await.expect("at risk");
    let risky = risky.into_inner().result.expect("result");
    let fresh = service.requests.receive_request(receive_at(1)).await.expect("fresh");
    let fresh = fresh.into_inner().result.expect("result");
    let mut supervisor = app.clients(Some("s1")).await;
    let items = sla_items(&mut supervisor, fresh.position).await;
    let of = |id: &str| items.iter().find(|item| item.subject_id == id).cloned();
    let breached = of(&late.id).expect("13 hours unanswered is a breach");
    assert_eq!(breached.subject, pb::SlaSubject::ServiceRequest as i32);
    assert_eq!(breached.rule, pb::SlaRule::FirstResponse as i32);
    assert_eq!(breached.state, pb::SlaState::Breached as i32);
    assert_eq!(breached.owner, "a1");
    assert_eq!(time(&breached.due_at), now - TimeDelta::hours(1));
    assert!(breached.case_number.is_empty());
    let warned = of(&risky.id).expect("11 of 12 hours is past the 80 % warning point");
    assert_eq!(warned.state, pb::SlaState::AtRisk as i32);
    assert_eq!(warned.subject, pb::SlaSubject::ServiceRequest as i32);
    assert!(of(&fresh.id).is_none(), "1 hour in is neither");

    // Answered, it leaves the lists.
    let answered = a1.requests.respond_to_request(respond(&late.id)).await.expect("respond");
    let position = answered.into_inner().result.expect("result").position;
    let items = sla_items(&mut supervisor, position).await;
    assert!(items.iter().all(|item| item.subject_id != late.id));
    // An analyst reads aggregates only; an agent no row lists.
    for who in ["an1", "a1"] {
        let mut clients = app.clients(Some(who)).await;
        let request = pb::ListSlaBreachesRequest {
            min_position: position,
            as_of: None,
            include_at_risk: true,
        };
        denied(app, clients.reports.list_sla_breaches(request), &[]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_request_callback_is_on_every_sla_surface_sqlite() {
    an_overdue_request_callback_is_on_every_sla_surface(kefu_testkit::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_request_callback_is_on_every_sla_surface_postgres() {
    an_overdue_request_callback_is_on_every_sla_surface(kefu_testkit::Backend::Postgres).await;
}

/// The dashboard's breach counts as `who` reads them once the read models include
/// `position`.
async fn breach_counts(app: &TestApp, who: &str, position: u64) -> pb::SlaBreachCounts {
    let mut clients = app.clients(Some(who)).await;
    let request = pb::GetDashboardRequest { min_position: position, as_of: None };
    let dashboard = clients.reports.get_dashboard(request).await.expect("dashboard");
    dashboard.into_inner().breaches.expect("breach counts")
}

/// The next item `watch` pushes about `subject`, skipping the others.
async fn pushed_about(
    watch: &mut tonic::Streaming<pb::WatchSlaResponse>,
    subject: &str,
) -> pb::SlaBreach {
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), watch.message());
        let message = next.await.expect("in time").expect("the watch goes on").expect("not ended");
        if let Some(item) = message.item.filter(|item| item.subject_id == subject) {
            return item;
        }
    }
}

/// R-P15 with R-T5 for requests as for complaints (R-R3: "callback overdue > 3 days"):
/// a resolved after-sales request not called back is at risk at 80 % of its 3 days,
/// then breached, on `ListSlaBreaches` and `WatchSla` (subject `SERVICE_REQUEST`, owner
/// the customer's agent who makes the callback), counted on the dashboard, the console
/// and beside the request first responses breached (R-P7); the customer's after-sales
/// callback settles it. An inquiry owes no callback. Rows for supervisors, counts for
/// analysts, neither row list for agents (the access table), no row above the caller's
/// clearance (R-C6).
async fn an_overdue_request_callback_is_on_every_sla_surface(backend: kefu_testkit::Backend) {
    let start: DateTime<Utc> = "2026-11-10T02:00:00Z".parse().expect("instant");
    let Some((app, clock)) = kefu_tests::console::spawn_clocked(backend, start).await else {
        return;
    };
    standard_staff(&app).await;
    let mut admin = app.clients(Some("admin")).await;
    let request = customer_request("Fixed At Home", pb::Confidentiality::Internal, "a2");
    let registered = admin.customers.register_customer(request).await.expect("register");
    let customer = registered.into_inner().result.expect("result").id;
    let mut service = app.clients(Some("svc-web")).await;
    let receive_as = |kind: pb::RequestKind| {
        let mut asked = receive(&customer, start - TimeDelta::hours(1));
        asked.agent = "a1".into();
        asked.kind = kind as i32;
        asked
    };
    let mut ids = Vec::new();
    for kind in [pb::RequestKind::AfterSale, pb::RequestKind::Inquiry, pb::RequestKind::AfterSale] {
        let received = service.requests.receive_request(receive_as(kind)).await.expect("receive");
        ids.push(received.into_inner().result.expect("result").id);
    }
    let [repaired, asked, unanswered] = <[String; 3]>::try_from(ids).expect("three");
    let mut a1 = app.clients(Some("a1")).await;
    for id in [&repaired, &asked] {
        a1.requests.resolve_request(resolve(id)).await.expect("resolve");
    }
    let resolved_at = time(&get(&mut a1, &repaired).await.expect("read").resolved_at);
    assert_eq!(resolved_at, start);
    let head = app.store.head_position().await.expect("head");
    let mut supervisor = app.clients(Some("s1")).await;

    // 48 of 72 hours: not yet at risk.
    clock.set(start + TimeDelta::hours(48));
    assert_eq!(callback_items(sla_items(&mut supervisor, head).await), []);
    // 60 of 72 hours: past the 80 % warning point.
    clock.set(start + TimeDelta::hours(60));
    let warned = callback_items(sla_items(&mut supervisor, head).await);
    assert_eq!(warned.len(), 1, "the after-sales request only, not the inquiry: {warned:?}");
    let warned = &warned[0];
    assert_eq!(warned.subject_id, repaired);
    assert_eq!(warned.subject, pb::SlaSubject::ServiceRequest as i32);
    assert_eq!(warned.state, pb::SlaState::AtRisk as i32);
    assert_eq!(warned.owner, "a2", "the customer's agent makes the callback");
    assert_eq!(time(&warned.due_at), start + TimeDelta::days(3));
    assert!(warned.case_number.is_empty());
    let watch = pb::WatchSlaRequest { resume_after: None, min_position: head, resume_position: 0 };
    let mut watch = supervisor.reports.watch_sla(watch).await.expect("watch").into_inner();
    let pushed = pushed_about(&mut watch, &repaired).await;
    assert_eq!((pushed.rule, pushed.subject), (warned.rule, warned.subject));
    assert_eq!(pushed.state, pb::SlaState::AtRisk as i32);
    let counts = breach_counts(&app, "s1", head).await;
    assert_eq!((counts.request_callback_overdue, counts.request_first_response), (0, 1));

    // Past 3 days: breached, pushed as time passes, counted.
    clock.set(start + TimeDelta::days(3) + TimeDelta::hours(1));
    let pushed = pushed_about(&mut watch, &repaired).await;
    assert_eq!(pushed.state, pb::SlaState::Breached as i32);
    assert_eq!(pushed.overdue_seconds, 3_600);
    let breached = callback_items(sla_items(&mut supervisor, head).await);
    assert_eq!(breached.len(), 1, "{breached:?}");
    assert_eq!((breached[0].subject_id.as_str(), breached[0].owner.as_str()), (&*repaired, "a2"));
    assert_eq!(breached[0].state, pb::SlaState::Breached as i32);
    assert_eq!(breached[0].subject, pb::SlaSubject::ServiceRequest as i32);
    seen_as_the_access_table_allows(&app, head).await;

    // The customer's after-sales callback settles it everywhere.
    let mut a2 = app.clients(Some("a2")).await;
    let callback = pb::LogCallbackRequest {
        kind: pb::CallbackKind::AfterSale as i32,
        party: 0,
        ..complaint_callback(&customer, "", "the repair holds")
    };
    let logged = a2.callbacks.log_callback(callback).await.expect("the owner logs it");
    let position = logged.into_inner().result.expect("result").position;
    assert_eq!(callback_items(sla_items(&mut supervisor, position).await), []);
    let counts = breach_counts(&app, "s1", position).await;
    assert_eq!((counts.request_callback_overdue, counts.request_first_response), (0, 1));
    let first_responses = sla_items(&mut supervisor, position).await;
    assert!(first_responses.iter().any(|item| item.subject_id == unanswered));
    drop(watch);
    app.stop().await;
}

/// Those SLA items only in `callback_overdue`'s rule (complaints' and requests').
fn callback_items(items: Vec<pb::SlaBreach>) -> Vec<pb::SlaBreach> {
    let items = items.into_iter().filter(|item| item.rule == pb::SlaRule::CallbackOverdue as i32);
    items.collect()
}

/// The overdue request callback of [`an_overdue_request_callback_is_on_every_sla_surface`]
/// (owned by a2) as the access table shows it once the read models include `head`:
/// counted for a supervisor and an analyst, on the console; rows for supervisors
/// cleared for its customer only (R-C6); on its owner's due list, not another agent's.
async fn seen_as_the_access_table_allows(app: &TestApp, head: u64) {
    // R-C6: a supervisor cleared below the customer sees no row of theirs.
    let mut uncleared = app.clients(Some("s-pub")).await;
    assert_eq!(callback_items(sla_items(&mut uncleared, head).await), []);
    for who in ["s1", "an1"] {
        let counts = breach_counts(app, who, head).await;
        assert_eq!(counts.request_callback_overdue, 1, "{who}: {counts:?}");
        assert_eq!(counts.request_first_response, 1, "{who}: {counts:?}");
        assert_eq!(counts.callback_overdue, 0, "no complaint: {counts:?}");
    }
    let mut console = kefu_tests::console::Console::new(app.console_addr.expect("console"));
    console.sign_in("token-s1").await;
    let page = console.get("/operations").await;
    assert!(page.body.contains(r#"id="breach-request-callback">1<"#), "{}", page.body);
    assert!(page.body.contains(r#"id="breach-request-first-response">1<"#), "{}", page.body);
    // Rows are for supervisors: an analyst or an agent, even the owner, lists none.
    for who in ["an1", "a1", "a2"] {
        let mut clients = app.clients(Some(who)).await;
        let request =
            pb::ListSlaBreachesRequest { min_position: head, as_of: None, include_at_risk: true };
        denied(app, clients.reports.list_sla_breaches(request), &[]).await;
    }
    let mut a2 = app.clients(Some("a2")).await;
    let due = request_callbacks_due(&mut a2, head).await;
    assert!(due.len() == 1 && due[0].overdue, "on its owner's due list too: {due:?}");
    let mut a1 = app.clients(Some("a1")).await;
    assert!(request_callbacks_due(&mut a1, head).await.is_empty(), "not another agent's");
}

/// Attack on issue 22, F4 (R-P15, R-C3): the after-sales callback was listed for the
/// request's agent, who may not log a customer's callback (only the customer's own
/// agent may), and hidden from the customer's agent, who could. It is the customer's
/// agent's now; an escalated request's follow-up is its complaint's.
async fn a_request_callback_is_owned_by_the_customers_agent_who_makes_it(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let request = customer_request("Owned Elsewhere", pb::Confidentiality::Public, "a2");
    let registered = admin.customers.register_customer(request).await.expect("register");
    let customer = registered.into_inner().result.expect("result").id;
    let mut service = app.clients(Some("svc-web")).await;
    let mut asked = receive(&customer, Utc::now() - TimeDelta::hours(1));
    asked.agent = "a1".into();
    let received = service.requests.receive_request(asked).await.expect("receive").into_inner();
    let id = received.result.expect("result").id;
    let mut a1 = app.clients(Some("a1")).await;
    let resolved = a1.requests.resolve_request(resolve(&id)).await.expect("resolve");
    let position = resolved.into_inner().result.expect("result").position;

    let mut a2 = app.clients(Some("a2")).await;
    let due = request_callbacks_due(&mut a2, position).await;
    assert_eq!(due.len(), 1, "the customer's agent makes it: {due:?}");
    assert_eq!((due[0].owner.as_str(), due[0].request_id.as_str()), ("a2", id.as_str()));
    assert!(request_callbacks_due(&mut a1, position).await.is_empty(), "not the request's agent");
    let callback = pb::LogCallbackRequest {
        kind: pb::CallbackKind::AfterSale as i32,
        party: 0,
        ..complaint_callback(&customer, "", "the repair holds")
    };
    let logged = a2.callbacks.log_callback(callback).await.expect("the owner logs it");
    let position = logged.into_inner().result.expect("result").position;
    assert!(request_callbacks_due(&mut a2, position).await.is_empty(), "made");
}

/// Attack on issue 22, F2 (R-C3): a departure handed over the leaver's customers and
/// cases but not their requests: the leaver still owned the open request (its breach
/// named them) and could escalate it. Now each open request goes to an active agent
/// cleared for its customer, before the departure answers.
async fn a_departure_hands_over_the_leavers_open_requests(app: &TestApp) {
    standard_staff(app).await;
    register_staff(app, &[("x0", &[pb::StaffRole::Agent])]).await;
    let mut admin = app.clients(Some("admin")).await;
    let request = customer_request("Asks Often", pb::Confidentiality::Public, "a1");
    let registered = admin.customers.register_customer(request).await.expect("register");
    let customer = registered.into_inner().result.expect("result").id;
    let mut service = app.clients(Some("svc-web")).await;
    let mut asked = receive(&customer, Utc::now() - TimeDelta::hours(1));
    asked.agent = "x0".into();
    let received = service.requests.receive_request(asked).await.expect("receive").into_inner();
    let id = received.result.expect("result").id;
    let mut settled = receive(&customer, Utc::now() - TimeDelta::hours(1));
    settled.agent = "x0".into();
    let settled = service.requests.receive_request(settled).await.expect("receive");
    let settled = settled.into_inner().result.expect("result").id;
    let mut x0 = app.clients(Some("x0")).await;
    x0.requests.resolve_request(resolve(&settled)).await.expect("x0 resolves one");

    let departure = pb::RecordDepartureRequest {
        request_id: rid(),
        staff_id: "x0".into(),
        reason: "left the firm".into(),
    };
    let answer = admin.staff.record_departure(departure).await.expect("x0 leaves").into_inner();
    assert!(answer.unassigned.is_empty(), "{answer:?}");
    let open = get(&mut admin, &id).await.expect("the open request");
    assert!(["a1", "a2"].contains(&open.agent.as_str()), "handed over: {open:?}");
    let resolved = get(&mut admin, &settled).await.expect("the resolved request");
    assert_eq!(resolved.agent, "x0", "a settled request keeps who settled it");
    let refused = x0.requests.escalate_to_complaint(escalate(&id)).await;
    assert!(refused.is_err(), "the leaver no longer acts on it: {refused:?}");
}

/// R-P4 (issue 22 F5): a request escalated naming its own agent as the respondent stays
/// theirs to read (escalated), but neither `GetRequest` nor `ListRequests` names the
/// complaint against them, as `GetComplaint` refuses it; a supervisor reads the link.
/// And R-P7 (F6): the request was never answered, so the complaint's first response is
/// due 12 hours from the request's receipt, escalation or not.
async fn a_request_escalated_against_its_agent_does_not_name_the_complaint_to_them(app: &TestApp) {
    let (customer, id, _, received_at) = received(app).await;
    let mut a1 = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut against = escalate(&id);
    against.respondent = "a1".into();
    let answer = supervisor.requests.escalate_to_complaint(against).await.expect("escalate");
    let answer = answer.into_inner();
    let position = answer.result.as_ref().expect("result").position;
    let filed = complaint(&mut supervisor, &answer.case_number).await;
    assert_eq!(time(&filed.first_response_due_at), received_at + TimeDelta::hours(12));

    let shown = get(&mut a1, &id).await.expect("its agent still reads it");
    assert_eq!(shown.status, pb::RequestStatus::Escalated as i32);
    assert_eq!((shown.complaint_id.as_str(), shown.case_number.as_str()), ("", ""));
    assert!(shown.redacted_fields.contains(&"RequestEscalated.complaint_id".to_owned()));
    let rows = listed(&mut a1, position).await;
    let row = rows.iter().find(|row| row.service_request_id == id).expect("listed");
    assert_eq!((row.complaint_id.as_str(), row.case_number.as_str()), ("", ""));
    let encoded = format!("{shown:?}{rows:?}");
    assert!(!encoded.contains(&answer.complaint_id) && !encoded.contains(&answer.case_number));
    let status = a1
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: answer.complaint_id.clone() })
        .await
        .expect_err("R-P4");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Nor does a refusal name it (attacked: "escalated to complaint 2026-…").
    let canaries = [answer.complaint_id.as_str(), answer.case_number.as_str()];
    let refusals = [
        refused_quietly(app, a1.requests.respond_to_request(respond(&id)), PRECONDITION, &canaries)
            .await,
        refused_quietly(app, a1.requests.resolve_request(resolve(&id)), PRECONDITION, &canaries)
            .await,
        refused_quietly(
            app,
            a1.requests.escalate_to_complaint(escalate(&id)),
            PRECONDITION,
            &canaries,
        )
        .await,
    ];
    for status in refusals {
        assert_eq!(reason(&status).as_deref(), Some("REQUEST_ALREADY_ESCALATED"), "{status:?}");
    }
    // Another caller is told which complaint carries it on.
    let status = supervisor.requests.resolve_request(resolve(&id)).await.expect_err("escalated");
    assert!(status.message().contains(&answer.case_number), "{}", status.message());

    let shown = get(&mut supervisor, &id).await.expect("a supervisor reads it");
    assert_eq!((shown.complaint_id, shown.case_number), (answer.complaint_id, answer.case_number));
    assert!(shown.redacted_fields.is_empty(), "{:?}", shown.redacted_fields);
    assert_eq!(shown.customer_id, customer);
}

/// R-P7 (issue 22 F6, attacked): only an answer within the request's 12 hours moves the
/// complaint's first response to the escalation; a late one, given just before
/// escalating, leaves the complaint due 12 hours from the request's receipt.
async fn a_late_answer_buys_an_escalated_complaint_no_time(app: &TestApp) {
    standard_staff(app).await;
    let mut a1 = app.clients(Some("a1")).await;
    let customer = register_customer(&mut a1, "Late Answer").await;
    let mut service = app.clients(Some("svc-web")).await;
    let received_at = Utc::now().trunc_subsecs(0) - TimeDelta::hours(20);
    let answer = service.requests.receive_request(receive(&customer, received_at)).await;
    let id = answer.expect("receive").into_inner().result.expect("result").id;
    a1.requests.respond_to_request(respond(&id)).await.expect("a late answer");
    let answer = a1.requests.escalate_to_complaint(escalate(&id)).await.expect("escalate");
    let mut supervisor = app.clients(Some("s1")).await;
    let filed = complaint(&mut supervisor, &answer.into_inner().case_number).await;
    assert_eq!(time(&filed.first_response_due_at), received_at + TimeDelta::hours(12));
}

/// R-P4 (issue 22 F5, attacked): a compliance officer who reads the event feed and is
/// the respondent of a complaint escalated from a request reads, on the request's
/// `RequestEscalated`, neither the complaint's id and number nor the reason; a colleague
/// reads them.
async fn the_feed_names_no_escalated_complaint_to_its_respondent(app: &TestApp) {
    let (_, id, _, _) = received(app).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut against = escalate(&id);
    against.respondent = "co1".into();
    let answer = supervisor.requests.escalate_to_complaint(against).await.expect("escalate");
    let answer = answer.into_inner();
    let page = pb::ReadAllRequest { from_position: 1, limit: 1_000, categories: Vec::new() };
    let escalation = |log: &pb::ReadAllResponse| {
        log.events
            .iter()
            .find(|e| e.event_type == "RequestEscalated" && e.stream_id.ends_with(id.as_str()))
            .cloned()
            .expect("the escalation is on the feed")
    };
    let mut co1 = app.clients(Some("co1")).await;
    let log = co1.events.read_all(page.clone()).await.expect("read all").into_inner();
    let shown = escalation(&log);
    for field in ["case_number", "complaint_id", "reason"] {
        assert!(shown.redacted_fields.iter().any(|f| f == field), "{field}: {shown:?}");
    }
    let text = format!("{shown:?}");
    assert!(!text.contains(&answer.case_number) && !text.contains(&answer.complaint_id));
    let mut co_other = app.clients(Some("CO-CAPS")).await;
    let log = co_other.events.read_all(page).await.expect("read all").into_inner();
    let shown = escalation(&log);
    assert!(shown.redacted_fields.is_empty(), "{shown:?}");
    assert!(format!("{shown:?}").contains(&answer.case_number));
}
