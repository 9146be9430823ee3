//! Issue 16's findings, one test each, over the wire on SQLite and PostgreSQL: who may
//! classify and update a customer (R-C6), what the event feed shows (R-C6, R-P11), what
//! reports show analysts and uncleared readers, who acts on a case (R-P4) and the
//! separation of duties in deciding it (R-P5).

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::{denied, hidden};
use kefu_tests::{reason, rid, Clients, TestApp};
use serde_json::Value;
use tonic::Code;

kefu_tests::on_both_backends!(
    classifying_needs_a_cleared_supervisor_or_compliance_and_nobody_updates_what_they_cannot_read,
    the_event_feed_redacts_fields_above_clearance_and_complaint_details,
    reports_give_analysts_aggregates_only_and_names_within_clearance,
    only_the_handler_or_someone_stepping_in_acts_and_never_the_respondent,
    a_specialist_drafts_the_handler_who_did_not_draft_signs_and_the_committee_meets,
);

fn level(level: pb::Confidentiality) -> i32 {
    level as i32
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

fn classify(customer_id: &str, to: pb::Confidentiality) -> pb::UpdateCustomerRequest {
    pb::UpdateCustomerRequest { confidentiality: level(to), ..update(customer_id) }
}

fn rename(customer_id: &str, name: &str) -> pb::UpdateCustomerRequest {
    pb::UpdateCustomerRequest { name: Some(name.to_owned()), ..update(customer_id) }
}

async fn register(
    clients: &mut Clients,
    name: &str,
    at: pb::Confidentiality,
    agent: &str,
) -> String {
    let request = customer_request(name, at, agent);
    let registered = clients.customers.register_customer(request).await.expect("register");
    registered.into_inner().result.expect("result").id
}

/// Issue 16, item 1 (R-C6).
async fn classifying_needs_a_cleared_supervisor_or_compliance_and_nobody_updates_what_they_cannot_read(
    app: &TestApp,
) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let mut a1 = app.clients(Some("a1")).await;
    let mut a2 = app.clients(Some("a2")).await;
    let mut s1 = app.clients(Some("s1")).await;
    let mut co1 = app.clients(Some("co1")).await;
    // a1 (internal) is the own agent of the internal one; the secret one is above a1's
    // clearance (and so owned by an agent cleared for it, R-C6).
    let secret =
        register(&mut admin, "Secret Sun QK1", pb::Confidentiality::Secret, CLEARED_AGENT).await;
    let internal = register(&mut admin, "Open Moon QK2", pb::Confidentiality::Internal, "a1").await;

    // The reproduction: declassify, then read.
    let declassify = classify(&secret, pb::Confidentiality::Public);
    hidden(app, a1.customers.update_customer(declassify), &["QK1"]).await;
    let read = pb::GetCustomerRequest { customer_id: secret.clone() };
    let above = hidden(app, a1.customers.get_customer(read.clone()), &["QK1"]).await;
    // No existence oracle: the answer is the one for an id nobody registered.
    let absent = kefu_domain::CustomerId::generate().to_string();
    let nothing = pb::GetCustomerRequest { customer_id: absent.clone() };
    let none = hidden(app, a1.customers.get_customer(nothing), &[]).await;
    assert_eq!(above.message().replace(&secret, &absent), none.message());
    assert_eq!(
        String::from_utf8_lossy(above.details()).replace(&secret, &absent),
        String::from_utf8_lossy(none.details())
    );
    // Nor may a1 change anything else on a record they may not read.
    hidden(app, a1.customers.update_customer(rename(&secret, "Renamed QK3")), &["QK1"]).await;
    // Only the customer's own agent updates: a2 may not, a1 may.
    denied(app, a2.customers.update_customer(rename(&internal, "Renamed QK4")), &["QK2"]).await;
    a1.customers.update_customer(rename(&internal, "Renamed QK5")).await.expect("own agent");
    // Classifying is not an agent's, even on their own customer.
    denied(
        app,
        a1.customers.update_customer(classify(&internal, pb::Confidentiality::Public)),
        &[],
    )
    .await;

    // A supervisor cleared for confidential: neither from nor to a level above that.
    hidden(
        app,
        s1.customers.update_customer(classify(&secret, pb::Confidentiality::Public)),
        &["QK1"],
    )
    .await;
    denied(
        app,
        s1.customers.update_customer(classify(&internal, pb::Confidentiality::Secret)),
        &[],
    )
    .await;
    // Raised above a1's clearance, the customer goes to a cleared agent first (R-C6).
    let to_cleared = pb::AssignAgentRequest {
        request_id: rid(),
        customer_id: internal.clone(),
        expected_version: None,
        agent: CLEARED_AGENT.into(),
        reason: String::new(),
    };
    admin.customers.assign_agent(to_cleared).await.expect("a cleared agent");
    s1.customers
        .update_customer(classify(&internal, pb::Confidentiality::Confidential))
        .await
        .expect("both levels within clearance");
    // Compliance cleared for secret may classify the secret record down, and that is
    // the classifier's decision (R-C6): the record, history included, is now at the new
    // level, so a1 (cleared for internal) reads it as every other path shows it.
    co1.customers
        .update_customer(classify(&secret, pb::Confidentiality::Internal))
        .await
        .expect("compliance classifies");
    let shown = a1.customers.get_customer(read).await.expect("now within clearance");
    let shown = shown.into_inner().customer.expect("customer");
    assert_eq!(shown.name, "Secret Sun QK1", "declassified by a cleared classifier");
    assert!(shown.redacted_fields.is_empty(), "{:?}", shown.redacted_fields);
}

/// The `Event`s of a whole log as `clients` reads it with `ReadAll`.
async fn read_all(clients: &mut Clients) -> Vec<pb::Event> {
    let page = pb::ReadAllRequest { from_position: 1, limit: 1_000, categories: Vec::new() };
    clients.events.read_all(page).await.expect("read all").into_inner().events
}

/// The first `event_type` event as `clients` receives it from `Subscribe`.
async fn subscribed(clients: &mut Clients, event_type: &str) -> pb::Event {
    let request = pb::SubscribeRequest { from_position: 1, categories: Vec::new() };
    let mut stream = clients.events.subscribe(request).await.expect("subscribe").into_inner();
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message());
        let event = next.await.expect("in time").expect("ok").expect("open").event.expect("event");
        if event.event_type == event_type {
            return event;
        }
    }
}

fn payload(event: &pb::Event) -> Value {
    serde_json::from_str(&event.payload_json).expect("payload is JSON")
}

fn find<'a>(events: &'a [pb::Event], event_type: &str) -> &'a pb::Event {
    events.iter().find(|e| e.event_type == event_type).expect(event_type)
}

/// Issue 16, item 2 (R-C6, R-P11 on `EventService`).
async fn the_event_feed_redacts_fields_above_clearance_and_complaint_details(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let level = pb::Confidentiality::Confidential;
    let mut request = customer_request("Feed Person QF1", level, owner_for(level));
    request.contacts = Some(pb::Contacts {
        phones: vec!["+86 138 2222 9191".into()],
        emails: vec!["feed.qf1@example.cn".into()],
        address: String::new(),
    });
    let customer = admin.customers.register_customer(request).await.expect("register");
    let customer = customer.into_inner().result.expect("result").id;
    let mut filing = file_request(&customer, pb::Severity::Normal, "r1");
    filing.description = "Feed Description QF2".into();
    admin.complaints.file_complaint(filing).await.expect("file");
    let personal = ["QF1", "2222 9191", "feed.qf1", "QF2"];

    // A service cleared for public or internal: the person's fields are redacted, in
    // ReadAll and in Subscribe alike, marked so a consumer tells them from empty.
    for principal in ["svc-pub", "svc-web"] {
        let mut service = app.clients(Some(principal)).await;
        let log = read_all(&mut service).await;
        let live = subscribed(&mut service, "ComplaintFiled").await;
        for event in [find(&log, "CustomerRegistered"), find(&log, "ComplaintFiled"), &live] {
            for text in personal {
                assert!(!format!("{event:?}").contains(text), "{principal}: {text} in {event:?}");
            }
        }
        let registered = find(&log, "CustomerRegistered");
        assert_eq!(payload(registered)["name"], Value::Null);
        assert!(registered.redacted_fields.iter().any(|f| f == "name"), "{registered:?}");
        assert!(registered.redacted_fields.iter().any(|f| f == "contacts"));
        // Plain fields are there, and absent optional ones are not called redacted.
        assert_eq!(payload(registered)["customer_id"], customer.as_str());
        assert!(!registered.redacted_fields.iter().any(|f| f == "stars"));
        assert!(live.redacted_fields.iter().any(|f| f == "description"), "{live:?}");
    }
    // Cleared for secret: the customer in clear, but R-P11 keeps the complaint from a
    // service: its description, category, cause and respondent stay redacted.
    let mut cleared = app.clients(Some("svc-sec")).await;
    let log = read_all(&mut cleared).await;
    let registered = find(&log, "CustomerRegistered");
    assert_eq!(payload(registered)["name"], "Feed Person QF1");
    assert!(registered.redacted_fields.is_empty(), "{registered:?}");
    let filed = find(&log, "ComplaintFiled");
    for field in ["description", "category", "cause", "respondent"] {
        assert_eq!(payload(filed)[field], Value::Null, "{field}");
        assert!(filed.redacted_fields.iter().any(|f| f == field), "{field}: {filed:?}");
    }
    assert_eq!(payload(filed)["customer_id"], customer.as_str(), "ids stay");
    // Compliance reads complaint details, within clearance only.
    let mut compliance = app.clients(Some("co1")).await;
    let filed = read_all(&mut compliance).await;
    assert_eq!(payload(find(&filed, "ComplaintFiled"))["description"], "Feed Description QF2");
    let mut uncleared = app.clients(Some("co-int")).await;
    let filed = read_all(&mut uncleared).await;
    assert_eq!(payload(find(&filed, "ComplaintFiled"))["description"], Value::Null);
}

/// Issue 16, item 3 (analysts: aggregates only; R-C6 names in reports).
async fn reports_give_analysts_aggregates_only_and_names_within_clearance(app: &TestApp) {
    standard_staff(app).await;
    // R-C6: a secret customer is owned by an agent, and their case handled by a
    // handler, cleared for secret.
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let referrer =
        register(&mut admin, "Referrer QR1", pb::Confidentiality::Secret, CLEARED_AGENT).await;
    let mut referred = customer_request("Referred QR2", pb::Confidentiality::Public, "a1");
    referred.referred_by = referrer.clone();
    admin.customers.register_customer(referred).await.expect("referred");
    let (case, _) = file(&mut admin, &referrer, pb::Severity::Normal, "").await;
    let assigned = admin.complaints.assign_handler(assign(&case, "h-sec")).await.expect("assign");
    // Every report below reads at least up to the last write.
    let position = assigned.into_inner().result.expect("result").position;

    let mut analyst = app.clients(Some("an1")).await;
    let breaches =
        pb::ListSlaBreachesRequest { min_position: position, as_of: None, include_at_risk: false };
    denied(app, analyst.reports.list_sla_breaches(breaches), &[]).await;
    let workload = pb::GetHandlerWorkloadRequest { min_position: position };
    denied(app, analyst.reports.get_handler_workload(workload), &[]).await;
    let referrals = pb::GetReferralReportRequest { min_position: position, ..Default::default() };
    denied(app, analyst.reports.get_referral_report(referrals.clone()), &["QR1"]).await;
    let dashboard = pb::GetDashboardRequest { min_position: position, as_of: None };
    let seen = analyst.reports.get_dashboard(dashboard).await.expect("aggregates");
    let seen = seen.into_inner();
    assert!(seen.workload.is_empty() && seen.workload_withheld, "no per-staff rows: {seen:?}");
    assert!(!seen.open_by_stage.is_empty(), "the aggregates are there");
    let mut supervisor = app.clients(Some("s1")).await;
    let full = supervisor.reports.get_dashboard(dashboard).await.expect("dashboard").into_inner();
    assert!(full.workload.iter().any(|load| load.staff_id == "h1") && !full.workload_withheld);

    // A supervisor cleared for confidential does not learn that the secret referrer
    // exists: no row (third attack: the id was listed with the name redacted).
    let report = supervisor.reports.get_referral_report(referrals.clone()).await.expect("report");
    let rows = report.into_inner().referrals;
    assert!(rows.iter().all(|row| row.referrer_id != referrer), "{rows:?}");
    let mut director = app.clients(Some("d1")).await;
    let report = director.reports.get_referral_report(referrals).await.expect("report");
    let row = report.into_inner().referrals.into_iter().next().expect("one referrer");
    assert_eq!(row.referrer_name, "Referrer QR1");
    assert!(!row.referrer_name_redacted);
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

fn close(complaint_id: &str) -> pb::CloseComplaintRequest {
    pb::CloseComplaintRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        summary: String::new(),
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

fn investigation(complaint_id: &str) -> pb::RecordInvestigationRequest {
    pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        findings: "confirmed".into(),
    }
}

/// Issue 16, item 4 (R-P4).
async fn only_the_handler_or_someone_stepping_in_acts_and_never_the_respondent(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut respondent = app.clients(Some("r1")).await;
    let mut other = app.clients(Some("a2")).await;
    let mut h1 = app.clients(Some("h1")).await;
    let mut specialist = app.clients(Some("sp1")).await;
    let customer = register_customer(&mut agent, "Case Person").await;
    let (case, _) = file(&mut agent, &customer, pb::Severity::Normal, "r1").await;
    supervisor.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");

    let ack = || reply(&case, pb::ReplyKind::Acknowledgement, pb::ContactChannel::Phone);
    for who in [&mut respondent, &mut other] {
        denied(app, who.complaints.contact_complainant(contact(&case)), &[]).await;
        denied(app, who.complaints.send_reply(ack()), &[]).await;
        denied(app, who.complaints.record_investigation(investigation(&case)), &[]).await;
    }
    h1.complaints.contact_complainant(contact(&case)).await.expect("the handler contacts");
    supervisor.complaints.send_reply(ack()).await.expect("a supervisor steps in");
    h1.complaints.record_investigation(investigation(&case)).await.expect("investigate");
    specialist.complaints.draft_opinion(draft(&case)).await.expect("draft");
    h1.complaints.sign_opinion(sign(&case, pb::SignerCapacity::Handler)).await.expect("sign");
    let final_reply = || reply(&case, pb::ReplyKind::Final, pb::ContactChannel::Letter);
    for who in [&mut respondent, &mut other] {
        denied(app, who.complaints.send_reply(final_reply()), &[]).await;
        denied(app, who.complaints.close_complaint(close(&case)), &[]).await;
    }
    h1.complaints.send_reply(final_reply()).await.expect("final reply");
    // R-P9 (R-P4): the respondent records no implementation; the specialist does.
    denied(app, respondent.complaints.record_implementation(implement(&case)), &[]).await;
    specialist.complaints.record_implementation(implement(&case)).await.expect("implement");
    h1.complaints.close_complaint(close(&case)).await.expect("the handler closes");

    // A supervisor who is the respondent does not step in on their own complaint: not
    // even to assign it (another supervisor does), refused before any rule of the case.
    let (own, _) = file(&mut agent, &customer, pb::Severity::Normal, "s1").await;
    denied(app, supervisor.complaints.assign_handler(assign(&own, "h1")), &[]).await;
    let mut other_supervisor = app.clients(Some("s-sec")).await;
    other_supervisor.complaints.assign_handler(assign(&own, "h1")).await.expect("assign");
    denied(app, supervisor.complaints.contact_complainant(contact(&own)), &[]).await;
    let ack = reply(&own, pb::ReplyKind::Acknowledgement, pb::ContactChannel::Phone);
    denied(app, supervisor.complaints.send_reply(ack), &[]).await;
}

fn meeting(members: &[&str]) -> pb::CommitteeMeeting {
    pb::CommitteeMeeting {
        // R-T4: held after the case was received (and not in the future).
        held_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        members_present: members.iter().map(|m| (*m).to_owned()).collect(),
        reported_to_authority: true,
    }
}

/// Issue 16, item 5 (R-P5).
async fn a_specialist_drafts_the_handler_who_did_not_draft_signs_and_the_committee_meets(
    app: &TestApp,
) {
    standard_staff(app).await;
    register_staff(app, &[("hs1", &[pb::StaffRole::Handler, pb::StaffRole::Specialist])]).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut h1 = app.clients(Some("h1")).await;
    let mut hs1 = app.clients(Some("hs1")).await;
    let mut director = app.clients(Some("d1")).await;
    let customer = register_customer(&mut agent, "Duty Person").await;

    // The handler holds no specialist role: they do not draft.
    let (case, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    supervisor.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");
    denied(app, h1.complaints.draft_opinion(draft(&case)), &[]).await;
    // One person with both roles: as handler they may not draft ...
    supervisor.complaints.assign_handler(assign(&case, "hs1")).await.expect("assign");
    refused(
        hs1.complaints.draft_opinion(draft(&case)).await,
        Code::FailedPrecondition,
        "HANDLER_CANNOT_DRAFT",
    );
    // ... and what they drafted before being assigned, they may not sign.
    let (drafted, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    hs1.complaints.draft_opinion(draft(&drafted)).await.expect("the specialist drafts");
    supervisor.complaints.assign_handler(assign(&drafted, "hs1")).await.expect("assign");
    hs1.complaints.record_investigation(investigation(&drafted)).await.expect("investigate");
    refused(
        hs1.complaints.sign_opinion(sign(&drafted, pb::SignerCapacity::Handler)).await,
        Code::FailedPrecondition,
        "DRAFTER_CANNOT_SIGN",
    );

    // A major case escalated to the committee is decided by its meeting.
    let (major, _) = file(&mut agent, &customer, pb::Severity::Major, "r1").await;
    supervisor.complaints.assign_handler(assign(&major, "h1")).await.expect("assign");
    h1.complaints.record_investigation(investigation(&major)).await.expect("investigate");
    let mut specialist = app.clients(Some("sp1")).await;
    specialist.complaints.draft_opinion(draft(&major)).await.expect("draft");
    let escalate = |to: pb::SignerCapacity, complaint_id: &str| pb::EscalateComplaintRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        to: to as i32,
        reason: "major matter".into(),
    };
    supervisor
        .complaints
        .escalate_complaint(escalate(pb::SignerCapacity::Committee, &major))
        .await
        .expect("escalate");
    let as_committee = |members: Option<&[&str]>| {
        let mut request = sign(&major, pb::SignerCapacity::Committee);
        request.meeting = members.map(meeting);
        request
    };
    refused(
        director.complaints.sign_opinion(as_committee(None)).await,
        Code::InvalidArgument,
        "COMMITTEE_MEETING_REQUIRED",
    );
    refused(
        director.complaints.sign_opinion(sign(&major, pb::SignerCapacity::Director)).await,
        Code::FailedPrecondition,
        "NOT_THE_DECIDING_BODY",
    );
    refused(
        director.complaints.sign_opinion(as_committee(Some(&["d1", "m1"]))).await,
        Code::FailedPrecondition,
        "COMMITTEE_QUORUM_NOT_MET",
    );
    refused(
        director.complaints.sign_opinion(as_committee(Some(&["m1", "m2", "m3"]))).await,
        Code::FailedPrecondition,
        "SIGNER_NOT_AT_MEETING",
    );
    director
        .complaints
        .sign_opinion(as_committee(Some(&["d1", "m1", "m2"])))
        .await
        .expect("the meeting decides");
    let shown = supervisor
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: major.clone() })
        .await
        .expect("get")
        .into_inner()
        .complaint
        .expect("complaint");
    let recorded = shown.meeting.expect("the decision records its meeting");
    assert_eq!(recorded.members_present, ["d1", "m1", "m2"]);
    assert!(recorded.reported_to_authority && recorded.held_at.is_some());
    assert_eq!(shown.signer_capacity, pb::SignerCapacity::Committee as i32);

    // Escalated to the director: the director signs as director, not "as committee".
    let (to_director, _) = file(&mut agent, &customer, pb::Severity::Major, "").await;
    supervisor.complaints.assign_handler(assign(&to_director, "h1")).await.expect("assign");
    h1.complaints.record_investigation(investigation(&to_director)).await.expect("investigate");
    specialist.complaints.draft_opinion(draft(&to_director)).await.expect("draft");
    supervisor
        .complaints
        .escalate_complaint(escalate(pb::SignerCapacity::Director, &to_director))
        .await
        .expect("escalate");
    let mut committee = sign(&to_director, pb::SignerCapacity::Committee);
    committee.meeting = Some(meeting(&["d1", "m1", "m2"]));
    let refused_as = director.complaints.sign_opinion(committee).await.expect_err("refused");
    assert_eq!(reason(&refused_as).as_deref(), Some("NOT_THE_DECIDING_BODY"));
    director
        .complaints
        .sign_opinion(sign(&to_director, pb::SignerCapacity::Director))
        .await
        .expect("the director decides");
}
