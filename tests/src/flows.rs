//! The steps of DOMAIN.md's flows as test helpers: staff, customers, filing, handling.

use kefu_api::pb;
use tonic::Code;

use crate::{reason, rid, Clients, TestApp};

pub async fn register_staff(app: &TestApp, staff: &[(&str, &[pb::StaffRole])]) {
    let mut admin = app.clients(Some("admin")).await;
    for (code, roles) in staff {
        admin
            .staff
            .register_staff(pb::RegisterStaffRequest {
                request_id: rid(),
                staff_id: (*code).to_owned(),
                name: format!("Staff {code}"),
                roles: roles.iter().map(|r| *r as i32).collect(),
            })
            .await
            .unwrap_or_else(|status| panic!("register {code}: {status:?}"));
    }
}

/// Registers one agent `code` as the calling (supervisor or admin) client.
pub async fn register_staff_as(clients: &mut Clients, code: &str) {
    clients
        .staff
        .register_staff(pb::RegisterStaffRequest {
            request_id: rid(),
            staff_id: code.to_owned(),
            name: format!("Staff {code}"),
            roles: vec![pb::StaffRole::Agent as i32],
        })
        .await
        .unwrap_or_else(|status| panic!("register {code}: {status:?}"));
}

pub async fn standard_staff(app: &TestApp) {
    use pb::StaffRole::*;
    register_staff(
        app,
        &[
            ("a1", &[Agent]),
            ("a2", &[Agent]),
            ("h1", &[Agent, Handler]),
            ("h2", &[Agent, Handler]),
            ("r1", &[Agent, Handler]),
            ("sp1", &[Specialist]),
            ("s1", &[Supervisor]),
            // The director and two partners sit on the committee (R-P5, quorum 3).
            ("d1", &[Director, Committee]),
            ("m1", &[Committee]),
            ("m2", &[Committee]),
            ("m3", &[Committee]),
        ],
    )
    .await;
}

/// The agent tests give customers above `internal` to: `h-sec`, whose agent token is
/// cleared for `secret` (R-C6: an agent owns only customers they may read; the agents of
/// [`standard_staff`] hold `internal` tokens). [`register_cleared_agent`] puts them on
/// the staff.
pub const CLEARED_AGENT: &str = "h-sec";

/// Registers [`CLEARED_AGENT`] as an agent and handler.
pub async fn register_cleared_agent(app: &TestApp) {
    register_staff(app, &[(CLEARED_AGENT, &[pb::StaffRole::Agent, pb::StaffRole::Handler])]).await;
}

/// Who owns a test customer at `level`: `a1` up to `internal`, else [`CLEARED_AGENT`].
pub fn owner_for(level: pb::Confidentiality) -> &'static str {
    if level > pb::Confidentiality::Internal {
        CLEARED_AGENT
    } else {
        "a1"
    }
}

pub fn customer_request(
    name: &str,
    confidentiality: pb::Confidentiality,
    agent: &str,
) -> pb::RegisterCustomerRequest {
    pb::RegisterCustomerRequest {
        request_id: rid(),
        name: name.to_owned(),
        kind: pb::CustomerKind::Individual as i32,
        contacts: Some(pb::Contacts {
            phones: vec!["+86 138 0000 1111".into()],
            emails: vec![],
            address: String::new(),
        }),
        tier: pb::Tier::Regular as i32,
        stars: 0,
        source_channel: "web".into(),
        referred_by: String::new(),
        confidentiality: confidentiality as i32,
        agent: agent.to_owned(),
    }
}

pub async fn register_customer(clients: &mut Clients, name: &str) -> String {
    let response = clients
        .customers
        .register_customer(customer_request(name, pb::Confidentiality::Internal, "a1"))
        .await
        .expect("register customer");
    response.into_inner().result.expect("result").id
}

pub fn file_request(
    customer_id: &str,
    severity: pb::Severity,
    respondent: &str,
) -> pb::FileComplaintRequest {
    pb::FileComplaintRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        category: "service".into(),
        cause: "rude_staff".into(),
        severity: severity as i32,
        channel: pb::IntakeChannel::Phone as i32,
        description: "the front desk was rude".into(),
        respondent: respondent.to_owned(),
        attachments: vec![pb::AttachmentRef {
            reference: "doc://letters/1".into(),
            sha256: String::new(),
        }],
        received_at: None,
    }
}

pub async fn file(
    clients: &mut Clients,
    customer_id: &str,
    severity: pb::Severity,
    respondent: &str,
) -> (String, String) {
    let filed = clients
        .complaints
        .file_complaint(file_request(customer_id, severity, respondent))
        .await
        .expect("file");
    let filed = filed.into_inner();
    (filed.result.expect("result").id, filed.case_number)
}

pub fn assign(complaint_id: &str, handler: &str) -> pb::AssignHandlerRequest {
    pb::AssignHandlerRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        handler: handler.to_owned(),
        reason: String::new(),
    }
}

pub fn reply(
    complaint_id: &str,
    kind: pb::ReplyKind,
    channel: pb::ContactChannel,
) -> pb::SendReplyRequest {
    pb::SendReplyRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        kind: kind as i32,
        channel: channel as i32,
        summary: "about your complaint".into(),
    }
}

pub fn sign(complaint_id: &str, capacity: pb::SignerCapacity) -> pb::SignOpinionRequest {
    pb::SignOpinionRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        capacity: capacity as i32,
        decision: "apology and staff training".into(),
        remedy: "a written apology".into(),
        meeting: None,
    }
}

/// R-P9: the specialist's record of how the signed opinion was carried out (a signed
/// remedy, as [`sign`] promises, must be implemented before the case closes).
pub fn implement(complaint_id: &str) -> pb::RecordImplementationRequest {
    pb::RecordImplementationRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        summary: "the apology letter was sent".into(),
        implemented_at: None,
    }
}

pub fn refused(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    code: Code,
    expected_reason: &str,
) {
    let status = result.expect_err("the call must be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status).as_deref(), Some(expected_reason), "{status:?}");
}

/// Takes a filed normal case through handling to closure by handler `h1` (who must be
/// registered as a handler, e.g. by [`standard_staff`]); returns the close's position.
pub async fn handle_to_close(app: &TestApp, complaint_id: &str) -> u64 {
    let mut supervisor = app.clients(Some("s1")).await;
    supervisor.complaints.assign_handler(assign(complaint_id, "h1")).await.expect("assign");
    handle_to_close_from_assigned(app, complaint_id).await
}

/// [`handle_to_close`] for a case already assigned to `h1`.
pub async fn handle_to_close_from_assigned(app: &TestApp, complaint_id: &str) -> u64 {
    let mut h1 = app.clients(Some("h1")).await;
    let mut specialist = app.clients(Some("sp1")).await;
    h1.complaints
        .contact_complainant(pb::ContactComplainantRequest {
            request_id: rid(),
            complaint_id: complaint_id.to_owned(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            summary: "we called to arrange handling".into(),
            contacted_at: None,
        })
        .await
        .expect("contact");
    h1.complaints
        .record_investigation(pb::RecordInvestigationRequest {
            request_id: rid(),
            complaint_id: complaint_id.to_owned(),
            expected_version: None,
            findings: "the account shows the fault".into(),
        })
        .await
        .expect("investigate");
    specialist
        .complaints
        .draft_opinion(pb::DraftOpinionRequest {
            request_id: rid(),
            complaint_id: complaint_id.to_owned(),
            expected_version: None,
            opinion: "refund the fee".into(),
        })
        .await
        .expect("draft");
    h1.complaints
        .sign_opinion(sign(complaint_id, pb::SignerCapacity::Handler))
        .await
        .expect("sign");
    specialist.complaints.record_implementation(implement(complaint_id)).await.expect("implement");
    h1.complaints
        .send_reply(reply(complaint_id, pb::ReplyKind::Final, pb::ContactChannel::Letter))
        .await
        .expect("final reply");
    let closed = h1
        .complaints
        .close_complaint(pb::CloseComplaintRequest {
            request_id: rid(),
            complaint_id: complaint_id.to_owned(),
            expected_version: None,
            summary: String::new(),
        })
        .await
        .expect("close");
    closed.into_inner().result.expect("result").position
}

/// A satisfied complaint callback (R-P13) with `comment`, by the calling agent.
pub fn complaint_callback(
    customer_id: &str,
    complaint_id: &str,
    comment: &str,
) -> pb::LogCallbackRequest {
    pb::LogCallbackRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        kind: pb::CallbackKind::Complaint as i32,
        channel: pb::CallbackChannel::Phone as i32,
        party: pb::CallbackParty::Complainant as i32,
        outcome: pb::CallbackOutcome::Satisfied as i32,
        score: 5,
        comment: comment.to_owned(),
        called_at: None,
    }
}

/// Raises `customer` to `level` by writing the update straight to `store`'s log, past
/// whoever holds their open work. The API refuses such a raise (`HOLDERS_NOT_CLEARED`,
/// issue 22 F1), but the state it leaves stays possible: a token's clearance lowered in
/// the configuration leaves a handler below the level too, as does a log written by an
/// earlier build; tests of what such a handler may do build it this way.
pub async fn raise_past_the_holders(
    store: &kefu_event_store::EventStore,
    customer: &str,
    level: kefu_domain::Confidentiality,
) {
    use kefu_domain::customer::{CustomerEvent, CustomerUpdated};
    use kefu_domain::DomainEvent;
    use kefu_event_store::{ExpectedVersion, Metadata, NewEvent, StreamId};
    let id: kefu_domain::CustomerId = customer.parse().expect("a customer id");
    let event = CustomerEvent::CustomerUpdated(CustomerUpdated {
        name: None,
        contacts: None,
        confidentiality: Some(level),
        updated_at: chrono::Utc::now(),
    });
    let new = NewEvent::new(
        uuid::Uuid::now_v7(),
        event.event_type(),
        event.schema_version(),
        event.to_payload(),
    );
    let metadata = Metadata { actor: Some("admin".into()), ..Metadata::default() };
    let stream = StreamId::new(id.stream_name()).expect("a stream");
    store.append(&stream, ExpectedVersion::Any, &[new], &metadata).await.expect("raised");
}
