//! R-C8, issue 16 item 6: erasure covers every copy. A customer and a case go through
//! every customer and complaint event type with a distinct canary in every free-text
//! field; after `ForgetCustomer` no personal canary is in `ReadAll` nor anywhere in the
//! raw database files (SQLite with its WAL; PostgreSQL's data files after `VACUUM FULL`
//! and a `CHECKPOINT`). The classification labels and the erasure's own reason, kept in
//! clear by design (`kefu_domain::personal`), are found: the scan sees what is there.
//! The request fingerprint recorded with every write cannot confirm a guessed request
//! once the subject's key is gone, not even to whoever holds the whole database.

use std::collections::BTreeSet;

use kefu_api::pb;
use kefu_domain::personal::{self, FieldKind};
use kefu_domain::DomainEvent;
use kefu_tests::flows::*;
use kefu_tests::{db, rid, Clients, TestApp};
use prost::Message;
use tonic::Code;

kefu_tests::on_both_backends!(
    forgetting_erases_every_copy_of_every_free_text,
    a_request_fingerprint_confirms_no_guess_after_the_erasure,
    a_source_channel_is_a_code_that_can_carry_no_one,
);

/// One canary per free-text field: (text, event type, field).
const CANARIES: &[(&str, &str, &str)] = &[
    ("EzName One", "CustomerRegistered", "name"),
    ("+8613501014242", "CustomerRegistered", "contacts"),
    ("ez.one@example.cn", "CustomerRegistered", "contacts"),
    ("EzAddress One", "CustomerRegistered", "contacts"),
    // A code (R-C8): kept through an erasure like the other labels below.
    ("exhibition", "CustomerRegistered", "source_channel"),
    ("EzName Two", "CustomerUpdated", "name"),
    ("+8613502024242", "CustomerUpdated", "contacts"),
    ("EzAddress Two", "CustomerUpdated", "contacts"),
    ("EzGrade Reason", "CustomerGraded", "reason"),
    ("EzAgent Reason", "AgentAssigned", "reason"),
    ("EzContact Note", "CustomerContacted", "note"),
    ("EzRoutine Comment", "CallbackLogged", "comment"),
    // Codes (R-P3): restricted, kept through an erasure like every statistic.
    ("privacy", "ComplaintFiled", "category"),
    ("misinformation", "ComplaintFiled", "cause"),
    ("EzDescription", "ComplaintFiled", "description"),
    ("doc://ez-attachment", "ComplaintFiled", "attachments"),
    ("EzAssign Reason", "HandlerAssigned", "reason"),
    ("EzRecusal Reason", "HandlerRecused", "reason"),
    ("EzContacted Summary", "ComplainantContacted", "summary"),
    ("EzFindings", "InvestigationRecorded", "findings"),
    ("EzOpinion", "OpinionDrafted", "opinion"),
    ("EzEscalation Reason", "ComplaintEscalated", "reason"),
    ("EzDecision", "OpinionSigned", "decision"),
    ("EzRemedy", "OpinionSigned", "remedy"),
    ("EzAck Summary", "ReplySent", "summary"),
    ("EzFinal Summary", "ReplySent", "summary"),
    ("EzClose Summary", "ComplaintClosed", "summary"),
    ("EzReopen Cause", "ComplaintReopened", "cause"),
    ("EzDissatisfied Comment", "CallbackLogged", "comment"),
    ("EzForget Reason", "CustomerForgotten", "reason"),
    ("EzSatisfied Comment", "CallbackLogged", "comment"),
    // A duplicate merged into the customer: erased with its survivor.
    ("EzDuplicate Name", "CustomerRegistered", "name"),
    ("+8613503034242", "CustomerRegistered", "contacts"),
    ("EzMerge Reason", "CustomerMerged", "reason"),
    ("EzMerge Reason", "CustomerAbsorbed", "reason"),
    // R-P2: where a document is kept and its digest go with the person.
    ("doc://ez-material", "MaterialAdded", "reference"),
    ("ca11ab1eca11ab1eca11ab1eca11ab1eca11ab1eca11ab1eca11ab1eca11ab1e", "MaterialAdded", "sha256"),
    ("EzMaterial Reason", "MaterialAdded", "reason"),
    ("EzImplementation", "ImplementationRecorded", "summary"),
    // Service requests (issue 22): their texts go with the person, their code stays.
    ("quality", "RequestReceived", "category"),
    ("EzRequest Description", "RequestReceived", "description"),
    ("EzRequest Assign Reason", "RequestAssigned", "reason"),
    ("EzRequest Response", "RequestResponded", "summary"),
    ("EzRequest Resolution", "RequestResolved", "summary"),
];

fn text(event_type: &str, field: &str) -> String {
    CANARIES
        .iter()
        .find(|(_, t, f)| *t == event_type && *f == field)
        .map(|(text, _, _)| (*text).to_owned())
        .unwrap_or_else(|| panic!("no canary for {event_type}.{field}"))
}

/// The canaries that must be gone: every one of a personal field.
fn personal_canaries() -> Vec<&'static str> {
    CANARIES
        .iter()
        .filter(|(_, event_type, field)| personal::kind(event_type, field) == FieldKind::Personal)
        .map(|(text, _, _)| *text)
        .collect()
}

fn meeting() -> pb::CommitteeMeeting {
    pb::CommitteeMeeting {
        // R-T4: held after the case was received (and not in the future).
        held_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        members_present: vec!["d1".into(), "m1".into(), "m2".into()],
        reported_to_authority: true,
    }
}

/// One round of handling to closure by `h2`, signed by the committee.
async fn decide_and_close(app: &TestApp, case: &str, round: usize) {
    let mut h2 = app.clients(Some("h2")).await;
    let mut specialist = app.clients(Some("sp1")).await;
    let mut director = app.clients(Some("d1")).await;
    let suffix = |canary: String| if round == 0 { canary } else { format!("{canary} {round}") };
    h2.complaints
        .record_investigation(pb::RecordInvestigationRequest {
            request_id: rid(),
            complaint_id: case.to_owned(),
            expected_version: None,
            findings: suffix(text("InvestigationRecorded", "findings")),
        })
        .await
        .expect("investigate");
    specialist
        .complaints
        .draft_opinion(pb::DraftOpinionRequest {
            request_id: rid(),
            complaint_id: case.to_owned(),
            expected_version: None,
            opinion: suffix(text("OpinionDrafted", "opinion")),
        })
        .await
        .expect("draft");
    let mut signing = sign(case, pb::SignerCapacity::Committee);
    signing.decision = suffix(text("OpinionSigned", "decision"));
    signing.remedy = suffix(text("OpinionSigned", "remedy"));
    signing.meeting = Some(meeting());
    director.complaints.sign_opinion(signing).await.expect("the committee signs");
    let mut implementation = implement(case);
    implementation.summary = suffix(text("ImplementationRecorded", "summary"));
    specialist.complaints.record_implementation(implementation).await.expect("implement");
    let mut final_reply = reply(case, pb::ReplyKind::Final, pb::ContactChannel::Letter);
    final_reply.summary = suffix(CANARIES[25].0.to_owned());
    h2.complaints.send_reply(final_reply).await.expect("final reply");
    h2.complaints
        .close_complaint(pb::CloseComplaintRequest {
            request_id: rid(),
            complaint_id: case.to_owned(),
            expected_version: None,
            summary: suffix(text("ComplaintClosed", "summary")),
        })
        .await
        .expect("close");
}

/// The customer's whole life, every event type with canaries; returns (customer, case).
async fn live_through_every_event_type(app: &TestApp) -> (String, String) {
    let customer = customer_life(app).await;
    let case = case_life(app, &customer).await;
    request_life(app, &customer).await;
    (customer, case)
}

/// A service request of the customer from receipt to resolution, with canaries.
async fn request_life(app: &TestApp, customer: &str) {
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut other = app.clients(Some("a2")).await;
    let received = agent
        .requests
        .receive_request(pb::ReceiveRequestRequest {
            request_id: rid(),
            customer_id: customer.to_owned(),
            kind: pb::RequestKind::AfterSale as i32,
            channel: pb::IntakeChannel::Phone as i32,
            category: text("RequestReceived", "category"),
            description: text("RequestReceived", "description"),
            received_at: None,
            agent: "a1".into(),
        })
        .await
        .expect("receive");
    let id = received.into_inner().result.expect("result").id;
    supervisor
        .requests
        .assign_request(pb::AssignRequestRequest {
            request_id: rid(),
            service_request_id: id.clone(),
            expected_version: None,
            agent: "a2".into(),
            reason: text("RequestAssigned", "reason"),
        })
        .await
        .expect("assign");
    other
        .requests
        .respond_to_request(pb::RespondToRequestRequest {
            request_id: rid(),
            service_request_id: id.clone(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            summary: text("RequestResponded", "summary"),
            responded_at: None,
        })
        .await
        .expect("respond");
    other
        .requests
        .resolve_request(pb::ResolveRequestRequest {
            request_id: rid(),
            service_request_id: id,
            expected_version: None,
            summary: text("RequestResolved", "summary"),
        })
        .await
        .expect("resolve");
}

/// Every customer event type but the erasure, with canaries; a duplicate merged in.
async fn customer_life(app: &TestApp) -> String {
    let mut supervisor = app.clients(Some("s1")).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut request =
        customer_request(&text("CustomerRegistered", "name"), pb::Confidentiality::Internal, "a1");
    request.contacts = Some(pb::Contacts {
        phones: vec![CANARIES[1].0.into()],
        emails: vec![CANARIES[2].0.into()],
        address: CANARIES[3].0.into(),
    });
    request.source_channel = text("CustomerRegistered", "source_channel");
    let customer = agent.customers.register_customer(request).await.expect("register");
    let customer = customer.into_inner().result.expect("result").id;
    agent
        .customers
        .update_customer(pb::UpdateCustomerRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            expected_version: None,
            name: Some(text("CustomerUpdated", "name")),
            contacts: Some(pb::Contacts {
                phones: vec![CANARIES[6].0.into()],
                emails: Vec::new(),
                address: CANARIES[7].0.into(),
            }),
            confidentiality: 0,
        })
        .await
        .expect("update");
    agent
        .customers
        .grade_customer(pb::GradeCustomerRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            expected_version: None,
            tier: pb::Tier::Key as i32,
            stars: 5,
            reason: text("CustomerGraded", "reason"),
        })
        .await
        .expect("grade");
    supervisor
        .customers
        .assign_agent(pb::AssignAgentRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            expected_version: None,
            agent: "a2".into(),
            reason: text("AgentAssigned", "reason"),
        })
        .await
        .expect("assign agent");
    let mut a2 = app.clients(Some("a2")).await;
    a2.customers
        .record_contact(pb::RecordContactRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            note: text("CustomerContacted", "note"),
            contacted_at: None,
        })
        .await
        .expect("contact");
    let mut routine = complaint_callback(&customer, "", CANARIES[11].0);
    routine.kind = pb::CallbackKind::Routine as i32;
    a2.callbacks.log_callback(routine).await.expect("routine callback");
    // The same person registered twice, merged into the customer (issue 20).
    let mut twice = customer_request(CANARIES[31].0, pb::Confidentiality::Internal, "a1");
    twice.contacts =
        Some(pb::Contacts { phones: vec![CANARIES[32].0.into()], ..Default::default() });
    let duplicate = agent.customers.register_customer(twice).await.expect("register twice");
    let duplicate = duplicate.into_inner().result.expect("result").id;
    supervisor
        .customers
        .merge_customers(pb::MergeCustomersRequest {
            request_id: rid(),
            duplicate_id: duplicate,
            survivor_id: customer.clone(),
            reason: text("CustomerMerged", "reason"),
            ..Default::default()
        })
        .await
        .expect("merge the duplicate");
    customer
}

/// Every complaint event type, three rounds of handling and the archive, with canaries.
async fn case_life(app: &TestApp, customer: &str) -> String {
    let mut supervisor = app.clients(Some("s1")).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut filing = file_request(customer, pb::Severity::Major, "r1");
    filing.category = text("ComplaintFiled", "category");
    filing.cause = text("ComplaintFiled", "cause");
    filing.description = text("ComplaintFiled", "description");
    filing.attachments = vec![pb::AttachmentRef {
        reference: text("ComplaintFiled", "attachments"),
        sha256: String::new(),
    }];
    let (case, _) = {
        let filed = agent.complaints.file_complaint(filing).await.expect("file").into_inner();
        (filed.result.expect("result").id, filed.case_number)
    };
    let mut to_h1 = assign(&case, "h1");
    to_h1.reason = text("HandlerAssigned", "reason");
    supervisor.complaints.assign_handler(to_h1).await.expect("assign h1");
    let mut h1 = app.clients(Some("h1")).await;
    h1.complaints
        .recuse_handler(pb::RecuseHandlerRequest {
            request_id: rid(),
            complaint_id: case.clone(),
            expected_version: None,
            reason: text("HandlerRecused", "reason"),
        })
        .await
        .expect("recuse");
    supervisor.complaints.assign_handler(assign(&case, "h2")).await.expect("assign h2");
    let mut h2 = app.clients(Some("h2")).await;
    h2.complaints
        .contact_complainant(pb::ContactComplainantRequest {
            request_id: rid(),
            complaint_id: case.clone(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            summary: text("ComplainantContacted", "summary"),
            contacted_at: None,
        })
        .await
        .expect("contact complainant");
    let mut ack = reply(&case, pb::ReplyKind::Acknowledgement, pb::ContactChannel::Sms);
    ack.summary = CANARIES[24].0.into();
    h2.complaints.send_reply(ack).await.expect("acknowledge");
    supervisor
        .complaints
        .escalate_complaint(pb::EscalateComplaintRequest {
            request_id: rid(),
            complaint_id: case.clone(),
            expected_version: None,
            to: pb::SignerCapacity::Committee as i32,
            reason: text("ComplaintEscalated", "reason"),
        })
        .await
        .expect("escalate");
    // R-P2: a newer material supersedes the filing's attachment, with the reason.
    h2.complaints
        .add_material(pb::AddMaterialRequest {
            request_id: rid(),
            complaint_id: case.clone(),
            expected_version: None,
            reference: text("MaterialAdded", "reference"),
            media_type: "application/pdf".into(),
            size_bytes: 4_096,
            sha256: text("MaterialAdded", "sha256"),
            supersedes: 1,
            reason: text("MaterialAdded", "reason"),
        })
        .await
        .expect("add material");
    decide_and_close(app, &case, 0).await;
    supervisor
        .complaints
        .reopen_complaint(pb::ReopenComplaintRequest {
            request_id: rid(),
            complaint_id: case.clone(),
            expected_version: None,
            cause: text("ComplaintReopened", "cause"),
        })
        .await
        .expect("reopen");
    decide_and_close(app, &case, 1).await;
    // R-P14: a dissatisfied callback reopens, quoting the comment as the cause (R-C8).
    let mut dissatisfied = complaint_callback(customer, &case, CANARIES[28].0);
    dissatisfied.outcome = pb::CallbackOutcome::Dissatisfied as i32;
    // Complaint callbacks are the customer's own agent's (R-P15, R-C3): a2 by now.
    let mut own_agent = app.clients(Some("a2")).await;
    let logged = own_agent.callbacks.log_callback(dissatisfied).await.expect("callback");
    assert!(logged.into_inner().reopened, "the dissatisfied callback reopens the case");
    decide_and_close(app, &case, 2).await;
    // R-P15: the callback after the last close; only then is handling over (R-P12).
    let satisfied = complaint_callback(customer, &case, CANARIES[30].0);
    own_agent.callbacks.log_callback(satisfied).await.expect("satisfied callback");
    let year = u32::try_from(chrono::Datelike::year(&chrono::Utc::now())).expect("year");
    let archived = supervisor
        .complaints
        .archive_cases(pb::ArchiveCasesRequest { request_id: rid(), year })
        .await
        .expect("archive")
        .into_inner();
    assert_eq!(archived.archived.len(), 1);
    case
}

/// Every event as compliance (cleared for secret, reading complaint details) reads it.
async fn log_as_compliance(compliance: &mut Clients) -> Vec<pb::Event> {
    let request = pb::ReadAllRequest { from_position: 1, limit: 1_000, categories: Vec::new() };
    compliance.events.read_all(request).await.expect("read all").into_inner().events
}

async fn forgetting_erases_every_copy_of_every_free_text(app: &TestApp) {
    standard_staff(app).await;
    let (customer, case) = live_through_every_event_type(app).await;
    let mut compliance = app.clients(Some("co1")).await;

    // Every event type of both aggregates happened (the erasure itself comes next).
    let before = log_as_compliance(&mut compliance).await;
    let happened: BTreeSet<&str> = before.iter().map(|e| e.event_type.as_str()).collect();
    let every: BTreeSet<&str> = kefu_domain::customer::CustomerEvent::TYPES
        .iter()
        .chain(kefu_domain::complaint::ComplaintEvent::TYPES)
        .copied()
        .filter(|t| *t != "CustomerForgotten")
        .collect();
    assert_eq!(every.difference(&happened).collect::<Vec<_>>(), Vec::<&&str>::new());
    // Before the erasure the log opens for compliance: the scan below can see canaries.
    let opened = format!("{before:?}");
    for canary in personal_canaries() {
        assert!(opened.contains(canary), "{canary:?} is readable before the erasure");
    }
    let reopened = before.iter().find(|e| {
        e.event_type == "ComplaintReopened" && e.payload_json.contains("\"by_callback\":true")
    });
    let reopened = reopened.expect("reopened by the callback");
    assert!(reopened.payload_json.contains(CANARIES[28].0), "the copy: {reopened:?}");

    let forgotten = compliance
        .customers
        .forget_customer(pb::ForgetCustomerRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            reason: text("CustomerForgotten", "reason"),
        })
        .await
        .expect("forget")
        .into_inner()
        .result
        .expect("result");
    // The read models have applied (and scrubbed for) the erasure.
    compliance
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            min_position: forgotten.position,
            ..Default::default()
        })
        .await
        .expect("caught up");

    let after = format!("{:?}", log_as_compliance(&mut compliance).await);
    let personal = personal_canaries();
    for canary in &personal {
        assert!(!after.contains(canary), "{canary:?} still in ReadAll after the erasure");
    }
    db::assert_absent(&app.db, &personal, "after the erasure").await;
    if let Some(files) = db::raw_files(&app.db).await {
        let files = String::from_utf8_lossy(&files);
        for canary in &personal {
            assert!(!files.contains(canary), "{canary:?} still in the database files");
        }
        // What is kept in clear by design is found, so the scan reads the right files.
        for (canary, event_type, field) in CANARIES {
            if personal::kind(event_type, field) != FieldKind::Personal {
                assert!(files.contains(canary), "{canary:?} ({event_type}.{field}) is kept");
            }
        }
    }
    let verified = compliance
        .audit
        .verify_case(pb::VerifyCaseRequest { complaint: case })
        .await
        .expect("verify")
        .into_inner();
    assert!(verified.intact, "the erasure changed no event: {verified:?}");
}

/// What an attacker holding the database computes from a guessed request: its unkeyed
/// SHA-256 (what an unkeyed fingerprint would hold), in the forms it could be stored in.
fn unkeyed(rpc: &str, request: &impl Message) -> [String; 2] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(request.encode_to_vec());
    [format!("{rpc}:{}", hex::encode(&digest[..16])), hex::encode(digest)]
}

/// Whether some recorded fingerprint confirms the guessed `request`, for an attacker who
/// holds the database (every key still in `data_keys`) and follows the documented
/// construction (docs/compliance.md): F = HMAC-SHA256(key, "kefu-digest-v1\nrequest-
/// fingerprint"), then the first 16 bytes of HMAC-SHA256(F, rpc ‖ "\n" ‖ SHA-256(the
/// request's protobuf encoding)), in hex.
fn confirmed(rpc: &str, request: &impl Message, keys: &[Vec<u8>], recorded: &[String]) -> bool {
    use hmac::Mac;
    use sha2::Digest;
    type HmacSha256 = hmac::Hmac<sha2::Sha256>;
    let digest = sha2::Sha256::digest(request.encode_to_vec());
    keys.iter().any(|key| {
        let mut derive = HmacSha256::new_from_slice(key).expect("any key length");
        derive.update(b"kefu-digest-v1\nrequest-fingerprint");
        let fingerprint_key = derive.finalize().into_bytes();
        let mut mac = HmacSha256::new_from_slice(&fingerprint_key).expect("any key length");
        mac.update(format!("{rpc}\n").as_bytes());
        mac.update(&digest);
        let tag = format!(":{}", hex::encode(&mac.finalize().into_bytes()[..16]));
        recorded.iter().any(|fingerprint| fingerprint.ends_with(&tag))
    })
}

/// R-C8 and issue 15's REQUEST_ID_REUSED together: every write records a fingerprint of
/// its request so a reused key is caught, but the fingerprint is keyed with the data
/// subject's key. Holding the whole database, an attacker confirms a guessed request
/// (name, phone, note) while that key lives, and never once it is destroyed; the unkeyed
/// hash of the request is stored nowhere, before or after.
async fn a_request_fingerprint_confirms_no_guess_after_the_erasure(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let mut registering = customer_request("FpName Guessable", pb::Confidentiality::Internal, "a1");
    registering.contacts = Some(pb::Contacts {
        phones: vec!["+86 139 0303 4242".into()],
        emails: Vec::new(),
        address: String::new(),
    });
    let registered = agent.customers.register_customer(registering.clone()).await;
    let customer = registered.expect("register").into_inner().result.expect("result").id;
    let contact = pb::RecordContactRequest {
        request_id: rid(),
        customer_id: customer.clone(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        note: "FpNote spoke about the overcharge".into(),
        contacted_at: None,
    };
    let first = agent.customers.record_contact(contact.clone()).await.expect("contact");
    let first = first.into_inner().result.expect("result");
    // Detection works with keyed fingerprints: a retry gets its first answer, another
    // command under the same key is refused.
    let again = agent.customers.record_contact(contact.clone()).await.expect("retry");
    assert_eq!(again.into_inner().result.expect("result"), first);
    let grade = pb::GradeCustomerRequest {
        request_id: contact.request_id.clone(),
        customer_id: customer.clone(),
        expected_version: None,
        tier: pb::Tier::Vip as i32,
        stars: 0,
        reason: "reused key".into(),
    };
    let reused = agent.customers.grade_customer(grade.clone()).await;
    refused(reused, Code::AlreadyExists, "REQUEST_ID_REUSED");
    let other_note = pb::RecordContactRequest { note: "FpNote another".into(), ..contact.clone() };
    let reused = agent.customers.record_contact(other_note).await;
    refused(reused, Code::AlreadyExists, "REQUEST_ID_REUSED");

    let url = app.db.url();
    let recorded = db::recorded_fingerprints(url).await;
    let stored = db::events_text(url).await;
    let unkeyed_forms =
        [unkeyed("RegisterCustomer", &registering), unkeyed("RecordContact", &contact)].concat();
    for form in &unkeyed_forms {
        assert!(!stored.contains(form.as_str()), "an unkeyed fingerprint is stored: {form}");
    }
    // The attacker's procedure is right: with the subject's key it confirms both guesses.
    let keys = db::live_data_keys(url).await;
    assert!(confirmed("RegisterCustomer", &registering, &keys, &recorded), "{recorded:?}");
    assert!(confirmed("RecordContact", &contact, &keys, &recorded), "{recorded:?}");

    let forget = pb::ForgetCustomerRequest {
        request_id: rid(),
        customer_id: customer.clone(),
        reason: "asked to be forgotten".into(),
    };
    let forgotten = compliance.customers.forget_customer(forget.clone()).await.expect("forget");
    let forgotten = forgotten.into_inner().result.expect("result");
    let recorded = db::recorded_fingerprints(url).await;
    let keys = db::live_data_keys(url).await;
    assert!(!keys.is_empty(), "keys that remain (the installation's) are tried too");
    assert!(!confirmed("RegisterCustomer", &registering, &keys, &recorded));
    assert!(!confirmed("RecordContact", &contact, &keys, &recorded));
    let stored = db::events_text(url).await;
    let files = db::raw_files(&app.db).await.map(|f| String::from_utf8_lossy(&f).into_owned());
    for form in &unkeyed_forms {
        assert!(!stored.contains(form.as_str()), "an unkeyed fingerprint is stored: {form}");
        assert!(!files.as_ref().is_some_and(|f| f.contains(form.as_str())), "{form} in the files");
    }

    // After the erasure nothing can tell what a request about the person said
    // (docs/compliance.md), so their request ids fail closed: not even a true retry is
    // answered (it might be another request), another RPC under the same key is still
    // refused as reused, and the erasure's own retry (keyed with the installation's
    // key) gets its first answer.
    let retried = compliance.customers.forget_customer(forget).await.expect("retry the erasure");
    assert_eq!(retried.into_inner().result.expect("result"), forgotten);
    let again = agent.customers.record_contact(contact).await;
    refused(again, Code::FailedPrecondition, "REQUEST_SUBJECT_ERASED");
    let reused = agent.customers.grade_customer(grade).await;
    refused(reused, Code::AlreadyExists, "REQUEST_ID_REUSED");
}

/// Fourth attack, finding 2 (R-C8): `source_channel` took 8,000 characters of prose (a
/// referrer's name and phone) and, being a classification label kept in clear for
/// reports, outlived the erasure in `GetCustomer`, `ReadAll` and the raw files. It is a
/// code now, like a complaint's category: prose is refused and never echoed.
async fn a_source_channel_is_a_code_that_can_carry_no_one(app: &TestApp) {
    use kefu_tests::refusals::refused_quietly;
    standard_staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let prose = "referred by 王小明 +8613912345678";
    let mut request = customer_request("Source Prose Person", pb::Confidentiality::Internal, "a1");
    request.source_channel = prose.into();
    let refused = refused_quietly(
        app,
        admin.customers.register_customer(request.clone()),
        Code::InvalidArgument,
        &["王小明", "13912345678"],
    )
    .await;
    assert_eq!(kefu_tests::violated_fields(&refused), ["source_channel"], "{refused:?}");
    request.request_id = rid();
    request.source_channel = "referral".into();
    let id = admin.customers.register_customer(request).await.expect("a code").into_inner();
    let id = id.result.expect("result").id;
    let got = admin
        .customers
        .get_customer(pb::GetCustomerRequest { customer_id: id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.customer.expect("customer").source_channel, "referral");
}
