//! Compliance over the wire, on SQLite and PostgreSQL: replay, point-in-time state,
//! tamper evidence, export, the record of every inspection, erasure that keeps history
//! (R-C8, crypto-shredding), and the yearly archive (R-P12).

use futures::StreamExt;
use kefu_api::casefile::Dossier;
use kefu_api::pb;
use kefu_event_store::{BrokenReason, Verification};
use kefu_tests::flows::*;
use kefu_tests::{reason, rid, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    replay_as_of_verify_and_export_tell_the_same_history,
    a_tampered_case_fails_verification_at_the_altered_version,
    forgetting_a_customer_leaves_no_plaintext_and_history_verifies,
    closed_cases_are_archived_by_year,
);

async fn replay(clients: &mut Clients, complaint: &str) -> Vec<pb::Event> {
    let mut stream = clients
        .audit
        .replay_case(pb::ReplayCaseRequest { complaint: complaint.to_owned() })
        .await
        .expect("replay")
        .into_inner();
    let mut events = Vec::new();
    while let Some(message) = stream.next().await {
        events.push(message.expect("replayed event").event.expect("event"));
    }
    events
}

async fn as_of_version(clients: &mut Clients, complaint: &str, version: u64) -> pb::Complaint {
    clients
        .audit
        .get_case_as_of(pb::GetCaseAsOfRequest {
            complaint: complaint.to_owned(),
            point: Some(pb::get_case_as_of_request::Point::Version(version)),
        })
        .await
        .expect("as of version")
        .into_inner()
        .complaint
        .expect("complaint")
}

async fn verify(clients: &mut Clients, complaint: &str) -> pb::VerifyCaseResponse {
    clients
        .audit
        .verify_case(pb::VerifyCaseRequest { complaint: complaint.to_owned() })
        .await
        .expect("verify")
        .into_inner()
}

async fn export(clients: &mut Clients, complaint: &str) -> Dossier {
    let exported = clients
        .audit
        .export_case(pb::ExportCaseRequest { complaint: complaint.to_owned() })
        .await
        .expect("export")
        .into_inner();
    serde_json::from_str(&exported.dossier_json).expect("dossier is JSON")
}

/// The `CaseInspected` records of the log, as `(actor, inspection, case_number)`.
async fn inspections(clients: &mut Clients) -> Vec<(String, String, String)> {
    let page = clients
        .events
        .read_all(pb::ReadAllRequest {
            from_position: 1,
            limit: 1_000,
            categories: vec!["caseaudit".into()],
        })
        .await
        .expect("read audit records")
        .into_inner();
    page.events
        .into_iter()
        .map(|event| {
            let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap();
            (
                event.metadata.expect("metadata").actor,
                payload["inspection"].as_str().unwrap_or_default().to_owned(),
                payload["case_number"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn get(clients: &mut Clients, complaint: &str) -> pb::Complaint {
    clients
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: complaint.to_owned() })
        .await
        .expect("get complaint")
        .into_inner()
        .complaint
        .expect("complaint")
}

async fn replay_as_of_verify_and_export_tell_the_same_history(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let customer = register_customer(&mut agent, "Qian Bo").await;
    let (complaint_id, case_number) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    // The state after every step, as the live API showed it at that moment.
    let mut seen = vec![get(&mut supervisor, &complaint_id).await];
    supervisor.complaints.assign_handler(assign(&complaint_id, "h1")).await.expect("assign");
    seen.push(get(&mut supervisor, &complaint_id).await);
    let mut h1 = app.clients(Some("h1")).await;
    h1.complaints
        .send_reply(reply(&complaint_id, pb::ReplyKind::Acknowledgement, pb::ContactChannel::Sms))
        .await
        .expect("acknowledge");
    seen.push(get(&mut supervisor, &complaint_id).await);
    handle_to_close_from_assigned(app, &complaint_id).await;
    seen.push(get(&mut supervisor, &complaint_id).await);
    let last = seen.last().unwrap().version;

    // Replay: every event once, in order, with who did it and under which request.
    let events = replay(&mut compliance, &case_number).await;
    assert_eq!(events.len() as u64, last);
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=last).collect::<Vec<_>>());
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    assert!(events.windows(2).all(|w| w[1].prev_hash == w[0].hash), "chained");
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types[..3], ["ComplaintFiled", "HandlerAssigned", "ReplySent"]);
    assert_eq!(types.last(), Some(&"ComplaintClosed"));
    let actors: Vec<String> =
        events.iter().map(|e| e.metadata.clone().expect("metadata").actor).collect();
    assert_eq!(actors[..3], ["a1", "s1", "h1"]);
    assert!(events.iter().all(|e| !e.metadata.as_ref().unwrap().request_id.is_empty()));
    let filed: serde_json::Value = serde_json::from_str(&events[0].payload_json).unwrap();
    assert_eq!(filed["description"], "the front desk was rude", "opened for compliance");

    // As of a version, and as of the instant that version was recorded: the state then.
    for state in &seen {
        let then = as_of_version(&mut compliance, &complaint_id, state.version).await;
        assert_eq!(&then, state, "as of version {}", state.version);
        let recorded_at = events[usize::try_from(state.version).unwrap() - 1].recorded_at;
        let at_time = compliance
            .audit
            .get_case_as_of(pb::GetCaseAsOfRequest {
                complaint: case_number.clone(),
                point: Some(pb::get_case_as_of_request::Point::AsOf(recorded_at.unwrap())),
            })
            .await
            .expect("as of time")
            .into_inner();
        assert_eq!(at_time.version, state.version);
        assert_eq!(at_time.complaint.as_ref(), Some(state));
    }
    let before_filing = compliance
        .audit
        .get_case_as_of(pb::GetCaseAsOfRequest {
            complaint: complaint_id.clone(),
            // The earliest instant the as-of window takes (kefu_domain::time::floor).
            point: Some(pb::get_case_as_of_request::Point::AsOf(prost_types::Timestamp {
                seconds: 946_684_800,
                nanos: 0,
            })),
        })
        .await
        .expect_err("nothing in 2000");
    assert_eq!(before_filing.code(), Code::NotFound);
    let beyond = compliance
        .audit
        .get_case_as_of(pb::GetCaseAsOfRequest {
            complaint: complaint_id.clone(),
            point: Some(pb::get_case_as_of_request::Point::Version(last + 1)),
        })
        .await
        .expect_err("no such version");
    assert_eq!(beyond.code(), Code::InvalidArgument);

    // Verification and export agree with the replay; the dossier re-verifies on its own.
    let verified = verify(&mut compliance, &case_number).await;
    assert!(verified.intact, "{verified:?}");
    assert_eq!(verified.events, last);
    assert_eq!(verified.head_hash, events.last().unwrap().hash);
    let dossier = export(&mut compliance, &complaint_id).await;
    assert_eq!(dossier.case_number, case_number);
    assert_eq!(dossier.entries.len() as u64, last);
    assert_eq!(dossier.verification.head_hash.as_deref(), Some(verified.head_hash.as_str()));
    match dossier.verify() {
        Verification::Intact { events: n, head_hash } => {
            assert_eq!(n, last);
            assert_eq!(hex_of(&head_hash), verified.head_hash);
        }
        broken => panic!("the exported chain must verify: {broken:?}"),
    }
    assert_eq!(dossier.entries[1].state_after["handler"], "h1");
    assert_eq!(dossier.entries.last().unwrap().state_after["status"], "closed");
    let mut altered = dossier.clone();
    altered.entries[1].stored.payload = altered.entries[1].stored.payload.replace("h1", "h2");
    assert_eq!(
        altered.verify(),
        Verification::Broken { version: 2, reason: BrokenReason::HashMismatch },
        "an edited dossier is detected"
    );

    // Only compliance (and admin) may look, and every look is on the record.
    for principal in ["s1", "d1", "h1", "an1", "svc-web"] {
        let mut other = app.clients(Some(principal)).await;
        let denied = [
            other
                .audit
                .replay_case(pb::ReplayCaseRequest { complaint: complaint_id.clone() })
                .await
                .map(drop),
            other
                .audit
                .get_case_as_of(pb::GetCaseAsOfRequest {
                    complaint: complaint_id.clone(),
                    point: Some(pb::get_case_as_of_request::Point::Version(1)),
                })
                .await
                .map(drop),
            other
                .audit
                .verify_case(pb::VerifyCaseRequest { complaint: complaint_id.clone() })
                .await
                .map(drop),
            other
                .audit
                .export_case(pb::ExportCaseRequest { complaint: complaint_id.clone() })
                .await
                .map(drop),
        ];
        for result in denied {
            assert_eq!(result.unwrap_err().code(), Code::PermissionDenied, "{principal}");
        }
    }
    let mut admin = app.clients(Some("admin")).await;
    verify(&mut admin, &complaint_id).await;
    let records = inspections(&mut compliance).await;
    let expected_as_of = 2 * seen.len();
    let count = |actor: &str, kind: &str| {
        records.iter().filter(|(a, k, c)| a == actor && k == kind && *c == case_number).count()
    };
    assert_eq!(count("co1", "replay"), 1, "{records:?}");
    // The refused as-of calls (before the filing, beyond the last version) handed
    // nothing out and are not inspections.
    assert_eq!(count("co1", "as_of"), expected_as_of, "{records:?}");
    assert_eq!(count("co1", "verify"), 1, "{records:?}");
    assert_eq!(count("co1", "export"), 1, "{records:?}");
    assert_eq!(count("admin", "verify"), 1, "{records:?}");
    assert_eq!(records.len(), expected_as_of + 4, "denied calls leave no record: {records:?}");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn a_tampered_case_fails_verification_at_the_altered_version(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let customer = register_customer(&mut agent, "Sun Li").await;
    let (victim, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    let (bystander, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    for case in [&victim, &bystander] {
        supervisor.complaints.assign_handler(assign(case, "h1")).await.expect("assign");
        supervisor.complaints.assign_handler(assign(case, "h2")).await.expect("reassign");
    }
    assert!(verify(&mut compliance, &victim).await.intact);

    // Behind kefu's back, as a database superuser could: lift the guard, rewrite version 2.
    let rewrite = |payload: &str| {
        format!(
            "UPDATE events SET payload = {payload} \
             WHERE stream_id = 'complaint-{victim}' AND stream_version = 2"
        )
    };
    let statements = if app.db.url().starts_with("sqlite") {
        vec![
            "DROP TRIGGER events_reject_update".to_owned(),
            rewrite("replace(payload, 'h1', 'h2')"),
        ]
    } else {
        vec![
            "ALTER TABLE events DISABLE TRIGGER events_reject_update".to_owned(),
            rewrite("replace(payload::text, 'h1', 'h2')::json"),
        ]
    };
    kefu_tests::db::execute(app.db.url(), &statements).await;

    let broken = verify(&mut compliance, &victim).await;
    assert!(!broken.intact);
    assert_eq!(broken.first_bad_version, 2, "{broken:?}");
    assert_eq!(broken.events, 1);
    assert!(broken.reason.contains("does not match its hash"), "{broken:?}");
    assert!(verify(&mut compliance, &bystander).await.intact, "untouched cases still verify");
    let dossier = export(&mut compliance, &victim).await;
    assert!(!dossier.verification.intact);
    assert_eq!(dossier.verification.first_bad_version, Some(2));
    assert!(matches!(dossier.verify(), Verification::Broken { version: 2, .. }));
}

/// Personal data of one customer, each string unique in the whole database.
const NAME: &str = "Zhou Xinyue QX7";
const PHONE: &str = "+86 139 5555 0713";
const EMAIL: &str = "zhou.qx7@example.cn";
const ADDRESS: &str = "88 Huaihai Road QX7";
const DESCRIPTION: &str = "lost 1,234 yuan at the branch on Huaihai Road QX7";
const NOTE: &str = "prefers calls after six QX7";
const RENAMED: &str = "Zhou Xinyue-Li QX7";
const NEW_PHONE: &str = "+86 139 5555 0714";
const COMMENT: &str = "grateful for the refund QX7";

async fn forgetting_a_customer_leaves_no_plaintext_and_history_verifies(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let mut request = customer_request(NAME, pb::Confidentiality::Internal, "a1");
    request.contacts = Some(pb::Contacts {
        phones: vec![PHONE.into()],
        emails: vec![EMAIL.into()],
        address: ADDRESS.into(),
    });
    let customer = agent.customers.register_customer(request).await.expect("register").into_inner();
    let customer = customer.result.expect("result").id;
    let bystander = register_customer(&mut agent, "Kept Person QX8").await;
    // A later change of name and contacts is personal data too (CustomerUpdated).
    agent
        .customers
        .update_customer(pb::UpdateCustomerRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            expected_version: None,
            name: Some(RENAMED.into()),
            contacts: Some(pb::Contacts { phones: vec![NEW_PHONE.into()], ..Default::default() }),
            confidentiality: 0,
        })
        .await
        .expect("update");
    agent
        .customers
        .record_contact(pb::RecordContactRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            expected_version: None,
            channel: pb::ContactChannel::Phone as i32,
            note: NOTE.into(),
            contacted_at: None,
        })
        .await
        .expect("contact");
    let mut filing = file_request(&customer, pb::Severity::Normal, "");
    filing.description = DESCRIPTION.into();
    let filed = agent.complaints.file_complaint(filing).await.expect("file").into_inner();
    let complaint_id = filed.result.expect("result").id;
    let closed_at = handle_to_close(app, &complaint_id).await;
    agent
        .callbacks
        .log_callback(complaint_callback(&customer, &complaint_id, COMMENT))
        .await
        .expect("callback");
    // The free texts of `handle_to_close` belong to this one case, so they count too.
    let handling =
        ["we called to arrange handling", "the account shows the fault", "about your complaint"];
    let personal = [
        NAME,
        RENAMED,
        PHONE,
        NEW_PHONE,
        EMAIL,
        ADDRESS,
        DESCRIPTION,
        NOTE,
        COMMENT,
        handling[0],
        handling[1],
        handling[2],
    ];
    let scan = kefu_tests::db::scan(&app.db).await;
    let in_events = kefu_tests::db::events_text(app.db.url()).await;
    for text in personal {
        assert!(!in_events.contains(text), "{text:?} is sealed in the log");
    }
    assert!(scan.contains(RENAMED), "the scan sees the read model's copy before erasure");

    let forgotten = compliance
        .customers
        .forget_customer(pb::ForgetCustomerRequest {
            request_id: rid(),
            customer_id: customer.clone(),
            reason: "erasure request of 2026-11-22".into(),
        })
        .await
        .expect("forget")
        .into_inner()
        .result
        .expect("result");
    // Wait for the read models to apply the erasure, then look at every byte.
    let listed = compliance
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            customer_id: customer.clone(),
            min_position: forgotten.position,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.complaints.len(), 1, "the case still counts");
    kefu_tests::db::assert_absent(&app.db, &personal, "after the erasure").await;
    assert!(kefu_tests::db::scan(&app.db).await.contains("Kept Person QX8"), "others untouched");

    // History is intact and complete; the person reads as erased.
    assert!(verify(&mut compliance, &complaint_id).await.intact);
    let events = replay(&mut compliance, &complaint_id).await;
    let filed: serde_json::Value = serde_json::from_str(&events[0].payload_json).unwrap();
    assert_eq!(filed["description"], "[erased]");
    let dossier = export(&mut compliance, &complaint_id).await;
    assert!(dossier.verification.intact && matches!(dossier.verify(), Verification::Intact { .. }));
    assert!(!serde_json::to_string(&dossier).unwrap().contains("QX7"));
    let mut supervisor = app.clients(Some("s1")).await;
    let satisfaction = supervisor
        .reports
        .get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest::default())
        .await
        .expect("satisfaction")
        .into_inner();
    let responses: u64 = satisfaction.groups.iter().map(|g| g.responses).sum();
    assert_eq!(responses, 1, "metrics still count the forgotten customer's callback");
    let shown = compliance
        .customers
        .get_customer(pb::GetCustomerRequest { customer_id: customer.clone() })
        .await
        .expect("get forgotten customer")
        .into_inner()
        .customer
        .expect("customer");
    assert!(shown.name.is_empty() && shown.forgotten, "{shown:?}");

    // Nothing new is recorded for the person; a rebuild brings no copy back.
    let refused = agent
        .complaints
        .file_complaint(file_request(&customer, pb::Severity::Normal, ""))
        .await
        .expect_err("forgotten");
    assert_eq!(reason(&refused).as_deref(), Some("CUSTOMER_FORGOTTEN"));
    kefu_tests::db::rebuild_projections(app.db.url()).await;
    kefu_tests::db::assert_absent(&app.db, &personal, "after a rebuild").await;
    let _ = (bystander, closed_at);
}

async fn closed_cases_are_archived_by_year(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let customer = register_customer(&mut agent, "Zhao Lan").await;
    let (closed, closed_number) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    let (open, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    handle_to_close(app, &closed).await;
    // R-P15: archived once its callback is logged (or its window has passed).
    agent
        .callbacks
        .log_callback(complaint_callback(&customer, &closed, "settled"))
        .await
        .expect("callback");
    let year: u32 = closed_number[..4].parse().unwrap();

    let request_id = rid();
    let archive = |year| pb::ArchiveCasesRequest { request_id: request_id.clone(), year };
    let denied = agent.complaints.archive_cases(archive(year)).await.expect_err("agents may not");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let bad = supervisor.complaints.archive_cases(archive(1999)).await.expect_err("bad year");
    assert_eq!(bad.code(), Code::InvalidArgument);

    let first = supervisor.complaints.archive_cases(archive(year)).await.expect("archive");
    let first = first.into_inner();
    assert_eq!(first.archived, std::slice::from_ref(&closed_number));
    assert_eq!((first.already_archived, first.still_open), (0, 1));
    // A retry (the same request id) gets its first answer; another request finds the
    // case archived already.
    let retried = supervisor.complaints.archive_cases(archive(year)).await.expect("retry");
    assert_eq!(retried.into_inner(), first);
    let another = pb::ArchiveCasesRequest { request_id: rid(), year };
    let again = supervisor.complaints.archive_cases(another).await.expect("again");
    let again = again.into_inner();
    assert!(again.archived.is_empty());
    assert_eq!((again.already_archived, again.still_open), (1, 1));

    let listed = supervisor
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            status: pb::ComplaintStatus::Archived as i32,
            year,
            min_position: first.position,
            ..Default::default()
        })
        .await
        .expect("archive listing")
        .into_inner();
    let numbers: Vec<&str> = listed.complaints.iter().map(|c| c.case_number.as_str()).collect();
    assert_eq!(numbers, [closed_number.as_str()]);
    assert!(listed.complaints[0].archived_at.is_some());
    assert_eq!(listed.complaints[0].stage, "archived");
    let refused = supervisor
        .complaints
        .reopen_complaint(pb::ReopenComplaintRequest {
            request_id: rid(),
            complaint_id: closed.clone(),
            expected_version: None,
            cause: "new facts".into(),
        })
        .await
        .expect_err("archived");
    assert_eq!(reason(&refused).as_deref(), Some("COMPLAINT_ARCHIVED"));
    let _ = open;
}
