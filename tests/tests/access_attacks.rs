//! Issue 16, second round: what an outside attacker still broke once the access table was
//! in place, each case kept as a test over gRPC on SQLite and PostgreSQL. The live feed's
//! level (R-C6), who sits on a committee (R-P5), the respondent (R-P4), labels (R-P3,
//! R-R1), clearance for writes (R-C6), a meeting's date (R-T4), the drafter (R-P5), what a
//! refusal tells (its order, echoed input), `by_callback` on the feed (R-P11), and an
//! update that restates the current level.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::{denied, hidden, refused_quietly};
use kefu_tests::{db, reason, rid, violated_fields, Clients, TestApp};
use serde_json::Value;
use tonic::Code;

kefu_tests::on_both_backends!(
    the_live_feed_honours_a_raise_in_its_own_event_and_the_level_at_each_event,
    a_committee_meeting_counts_registered_present_committee_members_after_the_escalation,
    the_respondent_never_acts_on_nor_reads_their_own_complaint,
    category_and_cause_are_codes_not_prose,
    nobody_changes_a_case_they_are_not_cleared_to_read,
    whoever_drafted_in_this_round_signs_in_no_capacity,
    a_refused_caller_learns_no_version_nor_state,
    errors_say_what_is_wrong_without_echoing_the_input,
    the_feed_withholds_whether_a_callback_reopened_a_case,
    restating_the_current_level_is_no_classification,
);

/// `StaffRole.STAFF_ROLE_COMMITTEE`: sits on the committee (R-P5).
const COMMITTEE: i32 = 6;
const AGENT: i32 = pb::StaffRole::Agent as i32;
const HANDLER: i32 = pb::StaffRole::Handler as i32;
const SUPERVISOR: i32 = pb::StaffRole::Supervisor as i32;
const DIRECTOR: i32 = pb::StaffRole::Director as i32;

/// Registers staff with raw role values, as the admin.
async fn staff(app: &TestApp, members: &[(&str, &[i32])]) {
    let mut admin = app.clients(Some("admin")).await;
    for (code, roles) in members {
        admin
            .staff
            .register_staff(pb::RegisterStaffRequest {
                request_id: rid(),
                staff_id: (*code).to_owned(),
                name: format!("Staff {code}"),
                roles: roles.to_vec(),
            })
            .await
            .unwrap_or_else(|status| panic!("register {code}: {status:?}"));
    }
}

async fn register(clients: &mut Clients, name: &str, at: pb::Confidentiality) -> String {
    register_to(clients, name, at, owner_for(at)).await
}

/// A customer of `agent` (one to be raised: an agent cleared for the new level, R-C6).
async fn register_to(
    clients: &mut Clients,
    name: &str,
    at: pb::Confidentiality,
    agent: &str,
) -> String {
    let request = customer_request(name, at, agent);
    let registered = clients.customers.register_customer(request).await.expect("register");
    registered.into_inner().result.expect("result").id
}

fn update(customer_id: &str) -> pb::UpdateCustomerRequest {
    pb::UpdateCustomerRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        expected_version: None,
        name: None,
        contacts: None,
        confidentiality: 0,
    }
}

fn payload(event: &pb::Event) -> Value {
    serde_json::from_str(&event.payload_json).expect("payload is JSON")
}

/// The next event of `event_type` (and `stream_id`, when given) on a live feed.
async fn next_of(
    live: &mut tonic::Streaming<pb::SubscribeResponse>,
    event_type: &str,
    stream_id: &str,
) -> pb::Event {
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), live.message());
        let event = next.await.expect("in time").expect("ok").expect("open").event.expect("event");
        if event.event_type == event_type && event.stream_id.ends_with(stream_id) {
            return event;
        }
    }
}

async fn read_all(clients: &mut Clients) -> Vec<pb::Event> {
    let page = pb::ReadAllRequest { from_position: 1, limit: 1_000, categories: Vec::new() };
    clients.events.read_all(page).await.expect("read all").into_inner().events
}

fn find<'a>(events: &'a [pb::Event], event_type: &str, stream_id: &str) -> &'a pb::Event {
    events
        .iter()
        .find(|e| e.event_type == event_type && e.stream_id.ends_with(stream_id))
        .unwrap_or_else(|| panic!("{event_type} of {stream_id}"))
}

fn redacted(event: &pb::Event, fields: &[&str]) {
    for field in fields {
        assert_eq!(payload(event)[field], Value::Null, "{field}: {event:?}");
        assert!(event.redacted_fields.iter().any(|f| f == field), "{field}: {event:?}");
    }
}

/// Finding 1 (HIGH, R-C6): the `CustomerUpdated` that raised a customer to secret reached a
/// live public subscriber with the new name and phone in clear (the reader trusted a level
/// it had looked up a moment before); and a customer once secret, declassified later, had
/// their secret-era data shown as public (since then R-C6 reads every event at the
/// customer's current level: a cleared classifier's declassification releases it).
async fn the_live_feed_honours_a_raise_in_its_own_event_and_the_level_at_each_event(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let mut supervisor = app.clients(Some("s-sec")).await;
    let mut service = app.clients(Some("svc-pub")).await;
    let from = db::head(app.db.url()).await + 1;
    let request = pb::SubscribeRequest { from_position: from, categories: vec!["customer".into()] };
    let mut live = service.events.subscribe(request).await.expect("subscribe").into_inner();

    let raised =
        register_to(&mut admin, "Public Name QL0", pb::Confidentiality::Public, CLEARED_AGENT)
            .await;
    // The reader has shown the registration, so it knows the customer as public now.
    let registered = next_of(&mut live, "CustomerRegistered", &raised).await;
    assert_eq!(payload(&registered)["name"], "Public Name QL0");
    let mut raise = update(&raised);
    raise.name = Some("Raised Name QL1".into());
    raise.contacts = Some(pb::Contacts {
        phones: vec!["+86 139 5555 0101".into()],
        emails: Vec::new(),
        address: String::new(),
    });
    raise.confidentiality = pb::Confidentiality::Secret as i32;
    supervisor.customers.update_customer(raise).await.expect("raise to secret");
    let shown = next_of(&mut live, "CustomerUpdated", &raised).await;
    for secret in ["QL1", "5555 0101"] {
        assert!(!format!("{shown:?}").contains(secret), "live feed leaks {secret}: {shown:?}");
    }
    redacted(&shown, &["name", "contacts"]);
    assert_eq!(payload(&shown)["confidentiality"], "secret", "the level itself is plain");
    let log = read_all(&mut service).await;
    redacted(find(&log, "CustomerUpdated", &raised), &["name", "contacts"]);

    // Secret: withheld live while secret. Declassified by compliance (cleared for both
    // levels, R-C6): the record is public, history included, on every later read.
    let declassified = register(&mut admin, "Secret Era QL2", pb::Confidentiality::Secret).await;
    let shown = next_of(&mut live, "CustomerRegistered", &declassified).await;
    assert!(!format!("{shown:?}").contains("QL2"), "live while secret: {shown:?}");
    redacted(&shown, &["name", "contacts"]);
    let mut compliance = app.clients(Some("co1")).await;
    let mut lower = update(&declassified);
    lower.confidentiality = pb::Confidentiality::Public as i32;
    compliance.customers.update_customer(lower).await.expect("declassify");
    let log = read_all(&mut service).await;
    let registered = find(&log, "CustomerRegistered", &declassified);
    assert_eq!(payload(registered)["name"], "Secret Era QL2", "released: {registered:?}");
    assert!(registered.redacted_fields.is_empty(), "{registered:?}");
    // Raised again: the whole history is withheld at once, paged and live.
    let mut raise = update(&declassified);
    raise.name = Some("Raised Again QL3".into());
    raise.confidentiality = pb::Confidentiality::Secret as i32;
    supervisor.customers.update_customer(raise).await.expect("raise again");
    let log = read_all(&mut service).await;
    redacted(find(&log, "CustomerRegistered", &declassified), &["name", "contacts"]);
    let text = format!("{log:?}");
    for secret in ["QL2", "QL3"] {
        assert!(!text.contains(secret), "ReadAll leaks {secret} once raised");
    }
}

fn meeting_at(held_at: std::time::SystemTime, members: &[&str]) -> pb::CommitteeMeeting {
    pb::CommitteeMeeting {
        held_at: Some(prost_types::Timestamp::from(held_at)),
        members_present: members.iter().map(|m| (*m).to_owned()).collect(),
        reported_to_authority: false,
    }
}

/// A major case of `customer`, handled by h1, drafted by sp1 and escalated to `to`.
async fn escalated(
    app: &TestApp,
    customer: &str,
    received_at: Option<prost_types::Timestamp>,
    to: pb::SignerCapacity,
) -> String {
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut request = file_request(customer, pb::Severity::Major, "r1");
    request.received_at = received_at;
    let filed = agent.complaints.file_complaint(request).await.expect("file");
    let case = filed.into_inner().result.expect("result").id;
    supervisor.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");
    let mut h1 = app.clients(Some("h1")).await;
    h1.complaints.record_investigation(investigation(&case)).await.expect("investigate");
    let mut specialist = app.clients(Some("sp1")).await;
    specialist.complaints.draft_opinion(draft(&case)).await.expect("draft");
    supervisor.complaints.escalate_complaint(escalate(&case, to)).await.expect("escalate");
    case
}

fn investigation(complaint_id: &str) -> pb::RecordInvestigationRequest {
    pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        findings: "confirmed".into(),
    }
}

fn draft(complaint_id: &str) -> pb::DraftOpinionRequest {
    pb::DraftOpinionRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        opinion: "refund".into(),
    }
}

fn escalate(complaint_id: &str, to: pb::SignerCapacity) -> pb::EscalateComplaintRequest {
    pb::EscalateComplaintRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        to: to as i32,
        reason: "major matter".into(),
    }
}

fn contact(complaint_id: &str) -> pb::ContactComplainantRequest {
    pb::ContactComplainantRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        summary: "about your case".into(),
        contacted_at: None,
    }
}

fn reopen(complaint_id: &str) -> pb::ReopenComplaintRequest {
    pb::ReopenComplaintRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        cause: "asked again".into(),
    }
}

fn close(complaint_id: &str) -> pb::CloseComplaintRequest {
    pb::CloseComplaintRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        summary: String::new(),
    }
}

fn get(complaint_id: &str) -> pb::GetComplaintRequest {
    pb::GetComplaintRequest { complaint: complaint_id.to_owned() }
}

/// Findings 2 (HIGH) and 6 (LOW), R-P5 and R-T4: one director signed "as committee" with
/// invented members, departed ones and agents; and a meeting dated before the escalation
/// (before the draft it decided on) was accepted.
async fn a_committee_meeting_counts_registered_present_committee_members_after_the_escalation(
    app: &TestApp,
) {
    standard_staff(app).await;
    staff(
        app,
        &[
            ("d2", &[DIRECTOR, COMMITTEE]),
            ("c2", &[COMMITTEE]),
            ("c3", &[COMMITTEE]),
            ("c-left", &[AGENT, COMMITTEE]),
        ],
    )
    .await;
    let mut supervisor = app.clients(Some("s1")).await;
    let departure = pb::RecordDepartureRequest {
        request_id: rid(),
        staff_id: "c-left".into(),
        reason: "left the firm".into(),
    };
    supervisor.staff.record_departure(departure).await.expect("c-left leaves");
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Committee Person").await;
    let case = escalated(app, &customer, None, pb::SignerCapacity::Committee).await;
    let mut d2 = app.clients(Some("d2")).await;
    let now = std::time::SystemTime::now();
    let as_committee = |signer_members: &[&str]| {
        let mut request = sign(&case, pb::SignerCapacity::Committee);
        request.meeting = Some(meeting_at(now, signer_members));
        request
    };
    for (members, expected) in [
        (&["d2", "nobody1", "nobody2"][..], "COMMITTEE_MEMBER_NOT_ON_STAFF"),
        (&["d2", "c2", "c-left"][..], "COMMITTEE_MEMBER_NOT_ON_STAFF"),
        (&["d2", "h1", "a2"][..], "NOT_A_COMMITTEE_MEMBER"),
        (&["d2", "c2", "sp1"][..], "NOT_A_COMMITTEE_MEMBER"),
    ] {
        let status = refused_quietly(
            app,
            d2.complaints.sign_opinion(as_committee(members)),
            Code::FailedPrecondition,
            &[],
        )
        .await;
        assert_eq!(reason(&status).as_deref(), Some(expected), "{members:?}: {status:?}");
    }
    // A director who does not sit on the committee is no member of its meeting either.
    staff(app, &[("d-resp", &[DIRECTOR])]).await;
    let mut d_other = app.clients(Some("d-resp")).await;
    let status = refused_quietly(
        app,
        d_other.complaints.sign_opinion(as_committee(&["d-resp", "c2", "c3"])),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("NOT_A_COMMITTEE_MEMBER"));
    d2.complaints.sign_opinion(as_committee(&["d2", "c2", "c3"])).await.expect("the meeting");
    let shown = supervisor.complaints.get_complaint(get(&case)).await.expect("get");
    let meeting = shown.into_inner().complaint.expect("complaint").meeting.expect("meeting");
    assert_eq!(meeting.members_present, ["d2", "c2", "c3"]);

    // R-T4: received three days ago, escalated now: a meeting two days ago came before
    // the escalation (and the draft it would have decided on).
    let day = std::time::Duration::from_secs(86_400);
    let received = prost_types::Timestamp::from(now - 3 * day);
    let late = escalated(app, &customer, Some(received), pb::SignerCapacity::Committee).await;
    let mut early = sign(&late, pb::SignerCapacity::Committee);
    early.meeting = Some(meeting_at(now - 2 * day, &["d2", "c2", "c3"]));
    let status =
        refused_quietly(app, d2.complaints.sign_opinion(early), Code::InvalidArgument, &[]).await;
    assert_eq!(reason(&status).as_deref(), Some("MEETING_BEFORE_ESCALATION"), "{status:?}");
    assert_eq!(violated_fields(&status), ["meeting.held_at"]);
    let mut after = sign(&late, pb::SignerCapacity::Committee);
    after.meeting = Some(meeting_at(std::time::SystemTime::now(), &["d2", "c2", "c3"]));
    d2.complaints.sign_opinion(after).await.expect("a meeting after the escalation");
}

/// Finding 3 (HIGH/MED, R-P4, R-P11): the respondent logged the satisfaction callback of
/// their own case (dissatisfied reopens it, satisfied inflates the metrics); a supervisor
/// respondent assigned, escalated, reopened and read their own case; a director
/// respondent assigned and escalated it. And any agent could log a complaint callback.
async fn the_respondent_never_acts_on_nor_reads_their_own_complaint(app: &TestApp) {
    standard_staff(app).await;
    staff(app, &[("s-resp", &[SUPERVISOR]), ("d-resp", &[DIRECTOR])]).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Respondent Case Person").await;
    let callback = |complaint_id: &str, outcome: pb::CallbackOutcome| pb::LogCallbackRequest {
        outcome: outcome as i32,
        ..complaint_callback("", complaint_id, "logged by the caller")
    };

    // r1, an agent, is the respondent of a closed case.
    let (own, _) = file(&mut agent, &customer, pb::Severity::Normal, "r1").await;
    handle_to_close(app, &own).await;
    let mut r1 = app.clients(Some("r1")).await;
    for outcome in [pb::CallbackOutcome::Dissatisfied, pb::CallbackOutcome::Satisfied] {
        denied(app, r1.callbacks.log_callback(callback(&own, outcome)), &[]).await;
    }
    // Nor does an agent unrelated to the case survey it: neither the customer's agent
    // nor its handler.
    let mut a2 = app.clients(Some("a2")).await;
    denied(app, a2.callbacks.log_callback(callback(&own, pb::CallbackOutcome::Satisfied)), &[])
        .await;
    agent
        .callbacks
        .log_callback(callback(&own, pb::CallbackOutcome::Satisfied))
        .await
        .expect("the customer's own agent surveys");

    // s-resp, a supervisor, is the respondent: no stepping in, no reading.
    let mut s_resp = app.clients(Some("s-resp")).await;
    let (open, _) = file(&mut agent, &customer, pb::Severity::Normal, "s-resp").await;
    denied(app, s_resp.complaints.assign_handler(assign(&open, "h2")), &[]).await;
    let to_director = escalate(&open, pb::SignerCapacity::Director);
    denied(app, s_resp.complaints.escalate_complaint(to_director), &[]).await;
    denied(app, s_resp.complaints.get_complaint(get(&open)), &["the front desk"]).await;
    let (closed, _) = file(&mut agent, &customer, pb::Severity::Normal, "s-resp").await;
    handle_to_close(app, &closed).await;
    denied(app, s_resp.complaints.reopen_complaint(reopen(&closed)), &[]).await;
    let dissatisfied = callback(&closed, pb::CallbackOutcome::Dissatisfied);
    denied(app, s_resp.callbacks.log_callback(dissatisfied), &[]).await;
    // Lists are a read path too: the respondent's own cases are not among the rows.
    let head = db::head(app.db.url()).await;
    let list = pb::ListComplaintsRequest { min_position: head, ..Default::default() };
    let listed = s_resp.complaints.list_complaints(list.clone()).await.expect("list");
    let ids: Vec<String> =
        listed.into_inner().complaints.into_iter().map(|c| c.complaint_id).collect();
    assert!(ids.contains(&own), "other cases are listed: {ids:?}");
    assert!(!ids.contains(&open) && !ids.contains(&closed), "own cases listed: {ids:?}");

    // d-resp, the director, is the respondent.
    let mut d_resp = app.clients(Some("d-resp")).await;
    let (major, _) = file(&mut agent, &customer, pb::Severity::Major, "d-resp").await;
    denied(app, d_resp.complaints.assign_handler(assign(&major, "h2")), &[]).await;
    let to_director = escalate(&major, pb::SignerCapacity::Director);
    denied(app, d_resp.complaints.escalate_complaint(to_director), &[]).await;
    let mut supervisor = app.clients(Some("s1")).await;
    supervisor.complaints.assign_handler(assign(&major, "h2")).await.expect("others may");
}

/// Finding 4 (MED, R-P3, R-R1, R-C8): category and cause took 8000 characters of prose,
/// shown as labels to analysts and kept through an erasure.
async fn category_and_cause_are_codes_not_prose(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Label Person").await;
    let prose = "Zhang San, +86 138 0013 8000, divorce file";
    for (field, text) in [
        ("category", prose),
        ("cause", "Staff leaked Zhang San's HIV test to employer"),
        ("cause", "zhang.san@example.cn"),
        ("category", "+8613800138000"),
        ("category", "张三 离婚"),
        ("cause", &"x".repeat(65)),
        // Shaped like a code, yet no code of the taxonomy: a label is listed or refused.
        ("cause", "zhang_san_hiv_leak"),
        ("category", "Billing"),
    ] {
        let mut filing = file_request(&customer, pb::Severity::Normal, "");
        match field {
            "category" => filing.category = text.into(),
            _ => filing.cause = text.into(),
        }
        let status = refused_quietly(
            app,
            agent.complaints.file_complaint(filing),
            Code::InvalidArgument,
            &["Zhang", "zhang", "0013", "HIV", "张三", "xxxxxxxx", "Billing"],
        )
        .await;
        assert_eq!(violated_fields(&status), [field], "{text}: {status:?}");
    }
    let mut filing = file_request(&customer, pb::Severity::Normal, "");
    filing.category = "privacy".into();
    filing.cause = "data_error".into();
    let filed = agent.complaints.file_complaint(filing).await.expect("codes are labels");
    let position = filed.into_inner().result.expect("result").position;
    let mut analyst = app.clients(Some("an1")).await;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let summary = pb::GetMonthlySummaryRequest { min_position: position, month };
    let summary = analyst.reports.get_monthly_summary(summary).await.expect("summary");
    let summary = summary.into_inner();
    assert!(summary.by_category.iter().any(|line| line.label == "privacy"), "{summary:?}");
    assert!(summary.by_cause.iter().any(|line| line.label == "data_error"), "{summary:?}");
}

/// Finding 5 (HIGH/MED, R-C6): callers not cleared for the customer wrote to the case: a
/// public agent filed on a secret customer, a public supervisor assigned, contacted,
/// investigated, replied and escalated (and learnt the respondent from the refusal to
/// assign them), a public handler ran the whole lifecycle, a public service logged a
/// callback; and a handler below the customer's level could be assigned. Each is now
/// answered as for a case or customer that does not exist (no existence oracle).
async fn nobody_changes_a_case_they_are_not_cleared_to_read(app: &TestApp) {
    standard_staff(app).await;
    staff(
        app,
        &[
            ("a-pub", &[AGENT]),
            ("s-pub", &[SUPERVISOR]),
            ("h-pub", &[AGENT, HANDLER]),
            ("h-sec", &[AGENT, HANDLER]),
        ],
    )
    .await;
    let mut admin = app.clients(Some("admin")).await;
    let secret = register(&mut admin, "Secret Person QU1", pb::Confidentiality::Secret).await;
    let mut a_pub = app.clients(Some("a-pub")).await;
    let filing = file_request(&secret, pb::Severity::Normal, "r1");
    hidden(app, a_pub.complaints.file_complaint(filing), &["QU1"]).await;

    let (case, _) = file(&mut admin, &secret, pb::Severity::Normal, "r1").await;
    let mut s_pub = app.clients(Some("s-pub")).await;
    hidden(app, s_pub.complaints.assign_handler(assign(&case, "h-sec")), &[]).await;
    // Hidden for clearance first: the refusal does not say that r1 is the respondent.
    hidden(app, s_pub.complaints.assign_handler(assign(&case, "r1")), &["RESPONDENT"]).await;
    hidden(app, s_pub.complaints.contact_complainant(contact(&case)), &[]).await;
    hidden(app, s_pub.complaints.record_investigation(investigation(&case)), &[]).await;
    let ack = reply(&case, pb::ReplyKind::Acknowledgement, pb::ContactChannel::Phone);
    hidden(app, s_pub.complaints.send_reply(ack), &[]).await;
    let to_director = escalate(&case, pb::SignerCapacity::Director);
    hidden(app, s_pub.complaints.escalate_complaint(to_director), &[]).await;
    let mut svc_pub = app.clients(Some("svc-pub")).await;
    let callback = complaint_callback("", &case, "uncleared comment");
    hidden(app, svc_pub.callbacks.log_callback(callback), &[]).await;

    // A handler must be cleared for the customer (the tokens file says how far).
    let status = refused_quietly(
        app,
        admin.complaints.assign_handler(assign(&case, "h-pub")),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("HANDLER_NOT_CLEARED"), "{status:?}");
    admin.complaints.assign_handler(assign(&case, "h-sec")).await.expect("cleared handler");

    // A handler assigned while the customer was public, who is not cleared once the
    // customer is raised: the raise waits for a cleared handler (issue 22 F1), but a
    // lowered token leaves that state too, and every step of the lifecycle is refused them.
    let public =
        register_to(&mut admin, "Raised Person QU2", pb::Confidentiality::Public, CLEARED_AGENT)
            .await;
    let (raised, _) = file(&mut admin, &public, pb::Severity::Normal, "").await;
    admin.complaints.assign_handler(assign(&raised, "h-pub")).await.expect("cleared then");
    let mut raise = update(&public);
    raise.confidentiality = pb::Confidentiality::Secret as i32;
    let status =
        refused_quietly(app, admin.customers.update_customer(raise), Code::FailedPrecondition, &[])
            .await;
    assert_eq!(reason(&status).as_deref(), Some("HOLDERS_NOT_CLEARED"), "{status:?}");
    raise_past_the_holders(&app.store, &public, kefu_domain::Confidentiality::Secret).await;
    let mut h_pub = app.clients(Some("h-pub")).await;
    hidden(app, h_pub.complaints.contact_complainant(contact(&raised)), &[]).await;
    hidden(app, h_pub.complaints.record_investigation(investigation(&raised)), &[]).await;
    admin.complaints.record_investigation(investigation(&raised)).await.expect("investigate");
    admin.complaints.draft_opinion(draft(&raised)).await.expect("draft");
    let as_handler = sign(&raised, pb::SignerCapacity::Handler);
    hidden(app, h_pub.complaints.sign_opinion(as_handler), &[]).await;
    let ack = reply(&raised, pb::ReplyKind::Acknowledgement, pb::ContactChannel::Phone);
    hidden(app, h_pub.complaints.send_reply(ack), &[]).await;
    hidden(app, h_pub.complaints.close_complaint(close(&raised)), &[]).await;
    let recuse = pb::RecuseHandlerRequest {
        request_id: rid(),
        complaint_id: raised.clone(),
        expected_version: None,
        reason: "not cleared".into(),
    };
    hidden(app, h_pub.complaints.recuse_handler(recuse), &[]).await;
    hidden(app, h_pub.complaints.get_complaint(get(&raised)), &["QU2"]).await;
}

/// Finding 7 (LOW, R-P5): the admin drafted, then signed as director; and someone who
/// drafted an earlier version of this round's opinion signed once another had redrafted.
async fn whoever_drafted_in_this_round_signs_in_no_capacity(app: &TestApp) {
    standard_staff(app).await;
    register_staff(app, &[("hs1", &[pb::StaffRole::Handler, pb::StaffRole::Specialist])]).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut admin = app.clients(Some("admin")).await;
    let customer = register_customer(&mut agent, "Drafter Person").await;

    let (major, _) = file(&mut agent, &customer, pb::Severity::Major, "").await;
    supervisor.complaints.assign_handler(assign(&major, "h1")).await.expect("assign");
    let mut h1 = app.clients(Some("h1")).await;
    h1.complaints.record_investigation(investigation(&major)).await.expect("investigate");
    admin.complaints.draft_opinion(draft(&major)).await.expect("the admin drafts");
    let to_director = escalate(&major, pb::SignerCapacity::Director);
    supervisor.complaints.escalate_complaint(to_director).await.expect("escalate");
    let as_director = sign(&major, pb::SignerCapacity::Director);
    let status = refused_quietly(
        app,
        admin.complaints.sign_opinion(as_director),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("DRAFTER_CANNOT_SIGN"), "{status:?}");
    let mut director = app.clients(Some("d1")).await;
    let as_director = sign(&major, pb::SignerCapacity::Director);
    director.complaints.sign_opinion(as_director).await.expect("another director signs");

    let (normal, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    let mut hs1 = app.clients(Some("hs1")).await;
    let mut specialist = app.clients(Some("sp1")).await;
    hs1.complaints.draft_opinion(draft(&normal)).await.expect("hs1 drafts first");
    specialist.complaints.draft_opinion(draft(&normal)).await.expect("sp1 redrafts");
    supervisor.complaints.assign_handler(assign(&normal, "hs1")).await.expect("assign");
    hs1.complaints.record_investigation(investigation(&normal)).await.expect("investigate");
    let as_handler = sign(&normal, pb::SignerCapacity::Handler);
    let status = refused_quietly(
        app,
        hs1.complaints.sign_opinion(as_handler),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("DRAFTER_CANNOT_SIGN"), "{status:?}");
}

/// Finding 8 (LOW): an uncleared agent's `UpdateCustomer` with `expected_version: 99` was
/// answered `ABORTED` with the stream's version; a refused caller must learn nothing.
async fn a_refused_caller_learns_no_version_nor_state(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let secret = register(&mut admin, "Secret Person QV1", pb::Confidentiality::Secret).await;
    // a1 and a2, cleared for internal only, are no relation (an agent below the level
    // cannot own the customer: AGENT_NOT_CLEARED, tests/tests/access_owners.rs).
    for principal in ["a1", "a2"] {
        let mut caller = app.clients(Some(principal)).await;
        let mut stale = update(&secret);
        stale.expected_version = Some(99);
        stale.name = Some("Renamed".into());
        hidden(app, caller.customers.update_customer(stale), &["QV1", "version 1"]).await;
    }
    let internal = register(&mut admin, "Internal Person", pb::Confidentiality::Internal).await;
    let (case, _) = file(&mut admin, &internal, pb::Severity::Normal, "").await;
    admin.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");
    let mut a2 = app.clients(Some("a2")).await;
    let mut stale = contact(&case);
    stale.expected_version = Some(99);
    denied(app, a2.complaints.contact_complainant(stale), &["version 2"]).await;
}

/// Finding 9 (LOW, R-C8): refusals quoted the caller's personal input back (an email,
/// a phone, a page token).
async fn errors_say_what_is_wrong_without_echoing_the_input(app: &TestApp) {
    standard_staff(app).await;
    let canary = "ZZCANARY71";
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Echo Person").await;
    let with_contacts = |phones: Vec<String>, emails: Vec<String>| {
        let mut request = customer_request("Echo Person", pb::Confidentiality::Internal, "a1");
        request.contacts = Some(pb::Contacts { phones, emails, address: String::new() });
        request
    };
    let bad_email = with_contacts(Vec::new(), vec![format!("{canary}-not-an-email")]);
    let status = refused_quietly(
        app,
        agent.customers.register_customer(bad_email),
        Code::InvalidArgument,
        &[canary],
    )
    .await;
    assert!(status.message().contains("emails[0]"), "says which entry: {status:?}");
    let bad_phone = with_contacts(vec![format!("+86 {canary}")], Vec::new());
    let status = refused_quietly(
        app,
        agent.customers.register_customer(bad_phone),
        Code::InvalidArgument,
        &[canary],
    )
    .await;
    assert!(status.message().contains("phones[0]"), "says which entry: {status:?}");
    let mut renamed = update(&customer);
    renamed.contacts = Some(pb::Contacts {
        phones: Vec::new(),
        emails: vec![format!("{canary}@")],
        address: String::new(),
    });
    refused_quietly(
        app,
        agent.customers.update_customer(renamed),
        Code::InvalidArgument,
        &[canary],
    )
    .await;
    let page = pb::ListCustomersRequest { page_token: canary.into(), ..Default::default() };
    refused_quietly(app, agent.customers.list_customers(page), Code::InvalidArgument, &[canary])
        .await;
    let read = pb::GetCustomerRequest { customer_id: canary.into() };
    refused_quietly(app, agent.customers.get_customer(read), Code::InvalidArgument, &[canary])
        .await;
    let filing = file_request(&customer, pb::Severity::Normal, &format!("{canary} x"));
    refused_quietly(app, agent.complaints.file_complaint(filing), Code::InvalidArgument, &[canary])
        .await;
    let mut tier = customer_request("Echo Person", pb::Confidentiality::Internal, "a1");
    tier.agent = format!("{canary}!");
    refused_quietly(app, agent.customers.register_customer(tier), Code::InvalidArgument, &[canary])
        .await;
}

/// Finding 10 (LOW, R-P11): `ComplaintReopened.by_callback` was in clear on the feed and
/// told the callback's redacted outcome (dissatisfied).
async fn the_feed_withholds_whether_a_callback_reopened_a_case(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Reopened Person").await;
    let (case, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    handle_to_close(app, &case).await;
    let dissatisfied = pb::LogCallbackRequest {
        outcome: pb::CallbackOutcome::Dissatisfied as i32,
        ..complaint_callback("", &case, "still unhappy")
    };
    let logged = agent.callbacks.log_callback(dissatisfied).await.expect("callback");
    assert!(logged.into_inner().reopened);
    let mut service = app.clients(Some("svc-sec")).await;
    let log = read_all(&mut service).await;
    let reopened = find(&log, "ComplaintReopened", &case);
    redacted(reopened, &["by_callback", "cause"]);
    redacted(find(&log, "CallbackLogged", &case), &["outcome"]);
    let mut compliance = app.clients(Some("co1")).await;
    let log = read_all(&mut compliance).await;
    assert_eq!(payload(find(&log, "ComplaintReopened", &case))["by_callback"], true);
}

/// Finding 11 (functional, R-C6): the own agent's update restating the current level was
/// refused as a classification; only a change of level classifies.
async fn restating_the_current_level_is_no_classification(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = register_customer(&mut agent, "Level Person").await;
    let mut restated = update(&customer);
    restated.name = Some("Level Person Renamed".into());
    restated.confidentiality = pb::Confidentiality::Internal as i32;
    let written = agent.customers.update_customer(restated).await.expect("not classifying");
    assert_eq!(written.into_inner().result.expect("result").version, 2);
    let mut only_level = update(&customer);
    only_level.confidentiality = pb::Confidentiality::Internal as i32;
    agent.customers.update_customer(only_level).await.expect("a no-op");
    let mut lowered = update(&customer);
    lowered.confidentiality = pb::Confidentiality::Public as i32;
    denied(app, agent.customers.update_customer(lowered), &[]).await;
    let shown = agent.customers.get_customer(pb::GetCustomerRequest { customer_id: customer });
    let shown = shown.await.expect("get").into_inner().customer.expect("customer");
    assert_eq!(shown.name, "Level Person Renamed");
    assert_eq!(shown.confidentiality, pb::Confidentiality::Internal as i32);
}
