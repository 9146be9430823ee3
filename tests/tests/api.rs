//! The complaint lifecycle of DOMAIN.md over the wire, on SQLite and PostgreSQL: a real
//! server on a free port, a real tonic client, every status code a caller can cause.

use std::collections::BTreeSet;

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{rid, violated_fields, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    complaint_lifecycle_enforces_the_policy_end_to_end,
    retried_requests_return_the_first_answer,
    a_filing_interrupted_after_its_number_is_finished_with_that_number,
    concurrent_filings_get_distinct_consecutive_case_numbers,
    callers_must_authenticate_and_hold_the_role,
    confidentiality_filters_customers_and_complaints,
    malformed_requests_get_field_violations,
    departure_reassigns_customers_and_cases_balanced,
    event_stream_read_all_and_case_replay,
);

async fn complaint_lifecycle_enforces_the_policy_end_to_end(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut service = app.clients(Some("svc-web")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut h1 = app.clients(Some("h1")).await;
    let mut h2 = app.clients(Some("h2")).await;
    let mut specialist = app.clients(Some("sp1")).await;
    let mut director = app.clients(Some("d1")).await;

    let customer_id = register_customer(&mut agent, "Wang Fang").await;
    let (complaint_id, case_number) =
        file(&mut service, &customer_id, pb::Severity::Major, "r1").await;
    assert!(case_number.ends_with("-000001"), "{case_number}");

    // R-P4: the respondent is never the handler; a recused person never returns.
    refused(
        supervisor.complaints.assign_handler(assign(&complaint_id, "r1")).await,
        Code::FailedPrecondition,
        "RESPONDENT_CANNOT_HANDLE",
    );
    supervisor.complaints.assign_handler(assign(&complaint_id, "h1")).await.expect("assign h1");
    h1.complaints
        .recuse_handler(pb::RecuseHandlerRequest {
            request_id: rid(),
            complaint_id: complaint_id.clone(),
            expected_version: None,
            reason: "the complainant is my neighbour".into(),
        })
        .await
        .expect("recuse");
    refused(
        supervisor.complaints.assign_handler(assign(&complaint_id, "h1")).await,
        Code::FailedPrecondition,
        "RECUSED_CANNOT_RETURN",
    );
    supervisor.complaints.assign_handler(assign(&complaint_id, "h2")).await.expect("assign h2");

    // R-P7/R-P8: contact and acknowledge at once; no final answer before the decision.
    h2.complaints
        .contact_complainant(pb::ContactComplainantRequest {
            request_id: rid(),
            complaint_id: complaint_id.clone(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            summary: "h2 handles your case".into(),
            contacted_at: None,
        })
        .await
        .expect("contact");
    h2.complaints
        .send_reply(reply(&complaint_id, pb::ReplyKind::Acknowledgement, pb::ContactChannel::Sms))
        .await
        .expect("ack");
    refused(
        h2.complaints
            .send_reply(reply(&complaint_id, pb::ReplyKind::Final, pb::ContactChannel::Letter))
            .await,
        Code::FailedPrecondition,
        "NO_COMMITMENT_BEFORE_DECISION",
    );

    // R-P6, R-P5: investigation and written opinion, then escalation of the major case.
    h2.complaints
        .record_investigation(pb::RecordInvestigationRequest {
            request_id: rid(),
            complaint_id: complaint_id.clone(),
            expected_version: None,
            findings: "two witnesses confirm".into(),
        })
        .await
        .expect("investigate");
    specialist
        .complaints
        .draft_opinion(pb::DraftOpinionRequest {
            request_id: rid(),
            complaint_id: complaint_id.clone(),
            expected_version: None,
            opinion: "apologise and retrain".into(),
        })
        .await
        .expect("draft");
    refused(
        h2.complaints.sign_opinion(sign(&complaint_id, pb::SignerCapacity::Handler)).await,
        Code::FailedPrecondition,
        "MAJOR_COMPLAINT_NOT_ESCALATED",
    );
    let status = h2
        .complaints
        .sign_opinion(sign(&complaint_id, pb::SignerCapacity::Committee))
        .await
        .expect_err("not a director");
    assert_eq!(status.code(), Code::PermissionDenied);
    supervisor
        .complaints
        .escalate_complaint(pb::EscalateComplaintRequest {
            request_id: rid(),
            complaint_id: complaint_id.clone(),
            expected_version: None,
            to: pb::SignerCapacity::Committee as i32,
            reason: "major matter".into(),
        })
        .await
        .expect("escalate");
    // R-P5: the committee decides by a meeting, not one director "as committee".
    refused(
        director.complaints.sign_opinion(sign(&complaint_id, pb::SignerCapacity::Committee)).await,
        Code::InvalidArgument,
        "COMMITTEE_MEETING_REQUIRED",
    );
    refused(
        director.complaints.sign_opinion(sign(&complaint_id, pb::SignerCapacity::Director)).await,
        Code::FailedPrecondition,
        "NOT_THE_DECIDING_BODY",
    );
    let meeting = |members: &[&str]| pb::CommitteeMeeting {
        // R-T4: held after the case was received (and not in the future).
        held_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        members_present: members.iter().map(|m| (*m).to_owned()).collect(),
        reported_to_authority: true,
    };
    let mut in_meeting = sign(&complaint_id, pb::SignerCapacity::Committee);
    in_meeting.meeting = Some(meeting(&["d1", "m1"]));
    refused(
        director.complaints.sign_opinion(in_meeting.clone()).await,
        Code::FailedPrecondition,
        "COMMITTEE_QUORUM_NOT_MET",
    );
    in_meeting.meeting = Some(meeting(&["d1", "m1", "r1"]));
    refused(
        director.complaints.sign_opinion(in_meeting.clone()).await,
        Code::FailedPrecondition,
        "RESPONDENT_CANNOT_SIGN",
    );
    in_meeting.meeting = Some(meeting(&["d1", "m1", "m2"]));
    in_meeting.request_id = rid();
    director.complaints.sign_opinion(in_meeting).await.expect("the meeting decides");

    // R-P10: the final reply is written.
    refused(
        h2.complaints
            .send_reply(reply(&complaint_id, pb::ReplyKind::Final, pb::ContactChannel::Phone))
            .await,
        Code::FailedPrecondition,
        "FINAL_REPLY_NOT_WRITTEN",
    );
    h2.complaints
        .send_reply(reply(&complaint_id, pb::ReplyKind::Final, pb::ContactChannel::Letter))
        .await
        .expect("final");
    // R-P9: the opinion promised a remedy, so the case closes once it is implemented.
    let close = pb::CloseComplaintRequest {
        request_id: rid(),
        complaint_id: complaint_id.clone(),
        expected_version: None,
        summary: String::new(),
    };
    refused(
        h2.complaints.close_complaint(close).await,
        Code::FailedPrecondition,
        "CLOSE_NEEDS_IMPLEMENTATION",
    );
    specialist.complaints.record_implementation(implement(&complaint_id)).await.expect("implement");
    let closed = h2
        .complaints
        .close_complaint(pb::CloseComplaintRequest {
            request_id: rid(),
            complaint_id: complaint_id.clone(),
            expected_version: None,
            summary: String::new(),
        })
        .await
        .expect("close")
        .into_inner()
        .result
        .expect("result");

    // R-P13/R-P14: a dissatisfied callback reopens the case in the same write.
    let callback = agent
        .callbacks
        .log_callback(pb::LogCallbackRequest {
            request_id: rid(),
            customer_id: String::new(),
            complaint_id: complaint_id.clone(),
            expected_version: None,
            kind: pb::CallbackKind::Complaint as i32,
            channel: pb::CallbackChannel::Phone as i32,
            party: pb::CallbackParty::Complainant as i32,
            outcome: pb::CallbackOutcome::Dissatisfied as i32,
            score: 2,
            comment: "still unhappy".into(),
            called_at: None,
        })
        .await
        .expect("callback")
        .into_inner();
    assert!(callback.reopened);
    let written = callback.result.expect("result");
    assert_eq!(written.version, closed.version + 2, "callback and reopen in one write");

    let complaint = supervisor
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: case_number.clone() })
        .await
        .expect("get by case number")
        .into_inner()
        .complaint
        .expect("complaint");
    assert_eq!(complaint.complaint_id, complaint_id);
    assert_eq!(complaint.status, pb::ComplaintStatus::Open as i32);
    assert_eq!((complaint.reopen_count, complaint.handler.as_str()), (1, "h2"));
    assert_eq!(complaint.recused, vec!["h1".to_owned()]);
    assert_eq!(complaint.version, written.version);
    // The reopen started a new round; the meeting is in the signed opinion's event.
    assert_eq!(complaint.meeting, None);

    // Read-your-writes through the read model.
    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            min_position: written.position,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.complaints.len(), 1);
    assert_eq!(
        (listed.complaints[0].stage.as_str(), listed.complaints[0].reopen_count),
        ("escalated", 1)
    );
}

async fn retried_requests_return_the_first_answer(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer_id = register_customer(&mut agent, "Li Lei").await;
    let request = file_request(&customer_id, pb::Severity::Normal, "");
    let first = agent.complaints.file_complaint(request.clone()).await.expect("first").into_inner();
    let again = agent.complaints.file_complaint(request.clone()).await.expect("retry").into_inner();
    assert_eq!(first, again, "same id, case number, version and position");
    let listed = agent
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            min_position: first.result.as_ref().unwrap().position,
            ..Default::default()
        })
        .await;
    // Agents list only cases they handle; the supervisor sees the one case.
    assert!(listed.expect("list").into_inner().complaints.is_empty());
    let mut supervisor = app.clients(Some("s1")).await;
    let all = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(all.complaints.len(), 1, "the retry filed nothing new");

    // A retried close on a closed case still answers with the close.
    let complaint_id = first.result.unwrap().id;
    supervisor.complaints.assign_handler(assign(&complaint_id, "h1")).await.expect("assign");
    let mut h1 = app.clients(Some("h1")).await;
    h1.complaints
        .record_investigation(pb::RecordInvestigationRequest {
            request_id: rid(),
            complaint_id: complaint_id.clone(),
            expected_version: None,
            findings: "f".into(),
        })
        .await
        .expect("investigate");
    // R-P5: the specialist drafts; the handler, who signs, may not.
    let draft = pb::DraftOpinionRequest {
        request_id: rid(),
        complaint_id: complaint_id.clone(),
        expected_version: None,
        opinion: "o".into(),
    };
    let status = h1.complaints.draft_opinion(draft.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "the handler holds no specialist role");
    let mut specialist = app.clients(Some("sp1")).await;
    specialist.complaints.draft_opinion(draft).await.expect("draft");
    h1.complaints
        .sign_opinion(sign(&complaint_id, pb::SignerCapacity::Handler))
        .await
        .expect("sign");
    h1.complaints
        .send_reply(reply(&complaint_id, pb::ReplyKind::Final, pb::ContactChannel::Email))
        .await
        .expect("final");
    specialist.complaints.record_implementation(implement(&complaint_id)).await.expect("implement");
    let close = pb::CloseComplaintRequest {
        request_id: rid(),
        complaint_id: complaint_id.clone(),
        expected_version: None,
        summary: String::new(),
    };
    let closed = h1.complaints.close_complaint(close.clone()).await.expect("close").into_inner();
    let closed_again =
        h1.complaints.close_complaint(close).await.expect("retried close").into_inner();
    assert_eq!(closed, closed_again);

    // The same caller's key for a different request is refused, not silently merged.
    let reused = pb::RecordContactRequest {
        request_id: request.request_id.clone(),
        customer_id: customer_id.clone(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        note: String::new(),
        contacted_at: None,
    };
    refused(agent.customers.record_contact(reused).await, Code::AlreadyExists, "REQUEST_ID_REUSED");
    // And the other way round: a command's key is no key for a filing, which takes no
    // case number then.
    let contact = pb::RecordContactRequest {
        request_id: rid(),
        customer_id: customer_id.clone(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        note: String::new(),
        contacted_at: None,
    };
    agent.customers.record_contact(contact.clone()).await.expect("contact");
    let mut filing = file_request(&customer_id, pb::Severity::Normal, "");
    filing.request_id = contact.request_id.clone();
    refused(
        agent.complaints.file_complaint(filing).await,
        Code::AlreadyExists,
        "REQUEST_ID_REUSED",
    );
    let (_, next_number) = file(&mut agent, &customer_id, pb::Severity::Normal, "").await;
    let first_number: u32 = first.case_number[5..].parse().unwrap();
    assert_eq!(next_number[5..].parse::<u32>().unwrap(), first_number + 1, "no number taken");
    // Keys are per caller: another caller's identical key is a different request.
    let other = pb::ReopenComplaintRequest {
        request_id: request.request_id.clone(),
        complaint_id: complaint_id.clone(),
        expected_version: None,
        cause: "new facts".into(),
    };
    supervisor.complaints.reopen_complaint(other).await.expect("supervisor's own key space");

    // ABORTED when the caller's expected version is stale.
    let stale = pb::ReopenComplaintRequest {
        request_id: rid(),
        complaint_id,
        expected_version: Some(1),
        cause: "again".into(),
    };
    refused(
        supervisor.complaints.reopen_complaint(stale).await,
        Code::Aborted,
        "WRONG_EXPECTED_VERSION",
    );
}

/// Before a number and its case were one append group, a filing could stop between the
/// two (a crash): its retry must file the case under the number it was given.
async fn a_filing_interrupted_after_its_number_is_finished_with_that_number(app: &TestApp) {
    use kefu_domain::case_register::{self, CaseRegister, CaseRegisterEvent, IssueCaseNumber};
    use kefu_domain::{Aggregate, ComplaintId, DomainEvent};
    use kefu_event_store::{
        Direction, EventStore, ExpectedVersion, Metadata, NewEvent, StoreOptions, StreamId,
    };

    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer_id = register_customer(&mut agent, "Interrupted").await;
    let (_, first_number) = file(&mut agent, &customer_id, pb::Severity::Normal, "").await;

    // What the interrupted try left: its number in the register, no case.
    let store = EventStore::open(app.db.url(), StoreOptions::default()).await.expect("store");
    let year: i32 = first_number[..4].parse().unwrap();
    let register = StreamId::new(case_register::stream_name(year)).unwrap();
    let stored = store.read_stream(&register, 1, Direction::Forward, usize::MAX).await.unwrap();
    let last = stored.iter().fold(None, |last, e| {
        let event = CaseRegisterEvent::from_stored(&e.event_type, e.schema_version, &e.payload);
        CaseRegister::evolve(last, &event.unwrap())
    });
    let complaint_id = ComplaintId::generate();
    let issued = CaseRegister::decide(
        &last,
        IssueCaseNumber { complaint_id, year, zone: kefu_domain::Policy::default().time_zone },
        chrono::Utc::now(),
    )
    .unwrap();
    let request_id = rid();
    let new: Vec<NewEvent> = issued
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let id = kefu_api::event_id("a1", &request_id, "register", i);
            NewEvent::new(id, e.event_type(), e.schema_version(), e.to_payload())
        })
        .collect();
    store
        .append(&register, ExpectedVersion::Exact(stored.len() as u64), &new, &Metadata::default())
        .await
        .expect("plant the number");

    let mut retry = file_request(&customer_id, pb::Severity::Normal, "");
    retry.request_id = request_id;
    let filed = agent.complaints.file_complaint(retry.clone()).await.expect("finish").into_inner();
    let first_sequence: u32 = first_number[5..].parse().unwrap();
    assert_eq!(filed.case_number[5..].parse::<u32>().unwrap(), first_sequence + 1);
    assert_eq!(filed.result.as_ref().unwrap().id, complaint_id.to_string());
    let again = agent.complaints.file_complaint(retry).await.expect("again").into_inner();
    assert_eq!(again.case_number, filed.case_number);
    assert_eq!(again.result.unwrap().position, filed.result.unwrap().position);
}

async fn concurrent_filings_get_distinct_consecutive_case_numbers(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer_id = register_customer(&mut agent, "Zhang San").await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let mut client = agent.clone();
            let customer_id = customer_id.clone();
            tokio::spawn(async move {
                client
                    .complaints
                    .file_complaint(file_request(&customer_id, pb::Severity::Normal, ""))
                    .await
            })
        })
        .collect();
    let mut numbers = BTreeSet::new();
    for task in tasks {
        let filed = task.await.expect("task").expect("filed").into_inner();
        numbers.insert(filed.case_number);
    }
    assert_eq!(numbers.len(), 50, "distinct");
    let sequences: Vec<u32> = numbers.iter().map(|n| n[5..].parse().unwrap()).collect();
    assert_eq!(sequences, (1..=50).collect::<Vec<u32>>(), "consecutive from 1");
}

async fn callers_must_authenticate_and_hold_the_role(app: &TestApp) {
    standard_staff(app).await;
    let mut anonymous = app.clients(None).await;
    let status = anonymous
        .customers
        .register_customer(customer_request("X", pb::Confidentiality::Public, "a1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut forged = app.clients(Some("nobody")).await;
    let status =
        forged.complaints.list_complaints(pb::ListComplaintsRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut analyst = app.clients(Some("an1")).await;
    let status = analyst
        .customers
        .register_customer(customer_request("X", pb::Confidentiality::Public, "a1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "analysts get aggregates only");
    let status =
        analyst.customers.list_customers(pb::ListCustomersRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut agent = app.clients(Some("a1")).await;
    let status = agent
        .staff
        .register_staff(pb::RegisterStaffRequest {
            request_id: rid(),
            staff_id: "x1".into(),
            name: "X".into(),
            roles: vec![1],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn confidentiality_filters_customers_and_complaints(app: &TestApp) {
    standard_staff(app).await;
    register_cleared_agent(app).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut director = app.clients(Some("d1")).await;
    let internal = register_customer(&mut agent, "Open Person").await;
    // R-C6: nobody files a record above their own clearance (s1 is cleared for confidential).
    let status = supervisor
        .customers
        .register_customer(customer_request(
            "Secret Person",
            pb::Confidentiality::Secret,
            CLEARED_AGENT,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut admin = app.clients(Some("admin")).await;
    let secret = admin
        .customers
        .register_customer(customer_request(
            "Secret Person",
            pb::Confidentiality::Secret,
            CLEARED_AGENT,
        ))
        .await
        .expect("register")
        .into_inner()
        .result
        .unwrap();

    // R-C6: only staff cleared for the level read it; to others it does not exist.
    let status = agent
        .customers
        .get_customer(pb::GetCustomerRequest { customer_id: secret.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let seen = director
        .customers
        .get_customer(pb::GetCustomerRequest { customer_id: secret.id.clone() })
        .await
        .expect("director");
    assert_eq!(seen.into_inner().customer.unwrap().name, "Secret Person");
    let listed = agent
        .customers
        .list_customers(pb::ListCustomersRequest {
            min_position: secret.position,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<String> = listed.customers.iter().map(|c| c.customer_id.clone()).collect();
    assert_eq!(ids, vec![internal.clone()], "the secret customer is not listed");

    // R-P11: complaint details for the handler, supervisors, director, compliance.
    let (complaint_id, _) = file(&mut agent, &internal, pb::Severity::Normal, "").await;
    supervisor.complaints.assign_handler(assign(&complaint_id, "h1")).await.expect("assign");
    let status = agent
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: complaint_id.clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut handler = app.clients(Some("h1")).await;
    handler
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: complaint_id.clone() })
        .await
        .expect("handler sees");
    let mut compliance = app.clients(Some("co1")).await;
    compliance
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: complaint_id })
        .await
        .expect("compliance sees");
}

async fn malformed_requests_get_field_violations(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut bad = customer_request("", pb::Confidentiality::Internal, "a1");
    bad.tier = 42;
    bad.stars = 9;
    bad.contacts = Some(pb::Contacts {
        phones: vec!["call me".into()],
        emails: vec![],
        address: String::new(),
    });
    let status = agent.customers.register_customer(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields = violated_fields(&status);
    for field in ["name", "tier", "stars", "contacts.phones"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }
    let missing_key = pb::RegisterCustomerRequest {
        request_id: String::new(),
        ..customer_request("N", pb::Confidentiality::Internal, "a1")
    };
    let status = agent.customers.register_customer(missing_key).await.unwrap_err();
    assert_eq!(violated_fields(&status), vec!["request_id".to_owned()]);

    let status = agent
        .complaints
        .file_complaint(file_request("not-a-uuid", pb::Severity::Normal, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), vec!["customer_id".to_owned()]);
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = agent
        .complaints
        .file_complaint(file_request(&unknown, pb::Severity::Normal, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let mut future =
        file_request(&register_customer(&mut agent, "F").await, pb::Severity::Normal, "");
    future.received_at = Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 });
    let status = agent.complaints.file_complaint(future).await.unwrap_err();
    assert_eq!(violated_fields(&status), vec!["received_at".to_owned()]);
    let mut supervisor = app.clients(Some("s1")).await;
    let status = supervisor
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: unknown })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest { page_size: 10_000, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

async fn departure_reassigns_customers_and_cases_balanced(app: &TestApp) {
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let mut customers = Vec::new();
    for i in 0..4 {
        let id = admin
            .customers
            .register_customer(customer_request(
                &format!("C{i}"),
                pb::Confidentiality::Internal,
                "a1",
            ))
            .await
            .expect("register")
            .into_inner()
            .result
            .unwrap()
            .id;
        customers.push(id);
    }
    let (case_a, _) = file(&mut admin, &customers[0], pb::Severity::Normal, "h2").await;
    let (case_b, _) = file(&mut admin, &customers[1], pb::Severity::Normal, "").await;
    admin.complaints.assign_handler(assign(&case_a, "h1")).await.expect("assign");
    admin.complaints.assign_handler(assign(&case_b, "h1")).await.expect("assign");

    let mut supervisor = app.clients(Some("s1")).await;
    let departure = pb::RecordDepartureRequest {
        request_id: rid(),
        staff_id: "h1".into(),
        reason: "resigned".into(),
    };
    let moved =
        supervisor.staff.record_departure(departure.clone()).await.expect("departure").into_inner();
    assert!(moved.customers.is_empty(), "h1 owned no customers");
    let owners: Vec<(&str, &str)> =
        moved.cases.iter().map(|r| (r.id.as_str(), r.new_owner.as_str())).collect();
    // Case A names h2 as respondent (R-P4), so it goes to r1; case B to the least loaded.
    assert!(owners.contains(&(case_a.as_str(), "r1")), "{owners:?}");
    assert_eq!(owners.len(), 2);

    let moved = supervisor
        .staff
        .record_departure(pb::RecordDepartureRequest {
            request_id: rid(),
            staff_id: "a1".into(),
            reason: "moved".into(),
        })
        .await
        .expect("a1 departs")
        .into_inner();
    let owners: Vec<&str> = moved.customers.iter().map(|r| r.new_owner.as_str()).collect();
    assert_eq!(owners.len(), 4, "nothing left unowned (R-C3)");
    let per_owner = |who: &str| owners.iter().filter(|o| **o == who).count();
    // Agents a2, h2, r1 (h1 left): 4 customers spread 2/1/1 at most.
    assert!(["a2", "h2", "r1"].iter().all(|who| per_owner(who) <= 2), "{owners:?}");
    assert!(!owners.contains(&"a1") && !owners.contains(&"h1"));
    // Retrying the first departure resumes safely: nothing moves twice.
    let again = supervisor.staff.record_departure(departure).await.expect("retry").into_inner();
    assert!(again.cases.len() <= 2);
    let listed = supervisor
        .staff
        .list_staff(pb::ListStaffRequest { include_departed: true, min_position: 0 })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.staff.iter().any(|s| s.staff_id == "h1" && !s.active));
}

async fn event_stream_read_all_and_case_replay(app: &TestApp) {
    standard_staff(app).await;
    let mut service = app.clients(Some("svc-web")).await;
    let mut subscription = service
        .events
        .subscribe(pb::SubscribeRequest { from_position: 1, categories: vec!["complaint".into()] })
        .await
        .expect("subscribe")
        .into_inner();
    let mut agent = app.clients(Some("a1")).await;
    let customer_id = register_customer(&mut agent, "Event Person").await;
    let (complaint_id, case_number) =
        file(&mut agent, &customer_id, pb::Severity::Normal, "").await;
    let next =
        |event: Option<pb::SubscribeResponse>| event.expect("stream open").event.expect("event");
    let first = next(
        tokio::time::timeout(std::time::Duration::from_secs(10), subscription.message())
            .await
            .expect("in time")
            .expect("ok"),
    );
    assert_eq!(
        (first.event_type.as_str(), first.stream_version),
        ("ComplaintFiled", 1),
        "only complaint events"
    );
    assert_eq!(first.metadata.as_ref().map(|m| m.actor.as_str()), Some("a1"));
    let mut supervisor = app.clients(Some("s1")).await;
    supervisor.complaints.assign_handler(assign(&complaint_id, "h1")).await.expect("assign");
    let live = next(
        tokio::time::timeout(std::time::Duration::from_secs(10), subscription.message())
            .await
            .expect("live")
            .expect("ok"),
    );
    assert_eq!(live.event_type, "HandlerAssigned");
    assert!(live.position > first.position);

    let page = service
        .events
        .read_all(pb::ReadAllRequest { from_position: 1, limit: 3, categories: vec![] })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.events.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(page.next_position, 4);
    let status = service
        .events
        .read_all(pb::ReadAllRequest { from_position: 1, limit: 5_000, categories: vec![] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let mut compliance = app.clients(Some("co1")).await;
    let mut replay = compliance
        .audit
        .replay_case(pb::ReplayCaseRequest { complaint: case_number })
        .await
        .expect("replay")
        .into_inner();
    let mut history = Vec::new();
    while let Some(message) = replay.message().await.expect("replay stream") {
        history.push(message.event.expect("event"));
    }
    assert_eq!(
        history.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(),
        ["ComplaintFiled", "HandlerAssigned"]
    );
    assert_eq!(history[1].prev_hash, history[0].hash, "the hash chain links the case's events");
    assert_eq!(history[0].prev_hash, "0".repeat(64));
    assert_eq!(history[1].metadata.as_ref().map(|m| m.actor.as_str()), Some("s1"));
    let status = agent
        .audit
        .replay_case(pb::ReplayCaseRequest { complaint: complaint_id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut analyst = app.clients(Some("an1")).await;
    let status = analyst.events.subscribe(pb::SubscribeRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}
