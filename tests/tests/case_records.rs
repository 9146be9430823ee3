//! Issue 22 over the wire, on SQLite and PostgreSQL: case materials (R-P2: added by
//! reference at any stage before archiving, superseded but never altered or removed,
//! listed by `GetComplaint`, the dossier with each digest, the replay and the read model)
//! and the implementation of a signed opinion (R-P9: after the signature, by the
//! specialist, required before closing a case whose opinion promised a remedy).

use futures::StreamExt;
use kefu_api::casefile::Dossier;
use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::refusals::{denied, refused_quietly};
use kefu_tests::{db, reason, rid, violated_fields, Clients, TestApp};
use tonic::Code;

kefu_tests::on_both_backends!(
    materials_are_superseded_never_altered_and_listed_everywhere,
    bad_materials_are_refused_field_by_field_and_change_nothing,
    a_promised_remedy_is_implemented_before_the_case_closes,
);

const D2: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const D3: &str = "60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752";
const D4: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn material(complaint_id: &str, reference: &str, sha256: &str) -> pb::AddMaterialRequest {
    pb::AddMaterialRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        reference: reference.to_owned(),
        media_type: "application/pdf".into(),
        size_bytes: 2_048,
        sha256: sha256.to_owned(),
        supersedes: 0,
        reason: String::new(),
    }
}

async fn get(clients: &mut Clients, complaint: &str) -> pb::Complaint {
    let answer = clients
        .complaints
        .get_complaint(pb::GetComplaintRequest { complaint: complaint.to_owned() })
        .await
        .expect("get complaint");
    answer.into_inner().complaint.expect("complaint")
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

async fn replayed_types(clients: &mut Clients, complaint: &str) -> Vec<String> {
    let request = pb::ReplayCaseRequest { complaint: complaint.to_owned() };
    let mut stream = clients.audit.replay_case(request).await.expect("replay").into_inner();
    let mut types = Vec::new();
    while let Some(message) = stream.next().await {
        types.push(message.expect("replayed").event.expect("event").event_type);
    }
    types
}

/// Waits until every projection includes `position` (read-your-writes through an RPC
/// that waits for all of them).
async fn caught_up(app: &TestApp, position: u64) {
    let mut supervisor = app.clients(Some("s1")).await;
    supervisor
        .callbacks
        .list_due_callbacks(pb::ListDueCallbacksRequest {
            horizon_hours: 1,
            owner: String::new(),
            min_position: position,
            as_of: None,
        })
        .await
        .expect("read models catch up");
}

async fn materials_are_superseded_never_altered_and_listed_everywhere(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut h1 = app.clients(Some("h1")).await;
    let mut specialist = app.clients(Some("sp1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let customer = register_customer(&mut agent, "Zhou Min").await;
    // Filed with one attachment (material 1) against s1, who may otherwise write any case.
    let (case, case_number) = file(&mut agent, &customer, pb::Severity::Normal, "s1").await;
    let mut admin = app.clients(Some("admin")).await;
    admin.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");

    // R-P4: the respondent adds nothing to their own complaint, even as a supervisor;
    // an agent who is not the handler writes nothing to the case.
    denied(app, supervisor.complaints.add_material(material(&case, "doc://m", D2)), &[]).await;
    denied(app, agent.complaints.add_material(material(&case, "doc://m", D2)), &[]).await;

    // The handler adds material 2; a retry answers the same and writes nothing more.
    let first = material(&case, "doc://scans/receipt-2", D2);
    let added = h1.complaints.add_material(first.clone()).await.expect("add").into_inner();
    let retried = h1.complaints.add_material(first).await.expect("retry").into_inner();
    assert_eq!(added, retried);

    // The specialist supersedes material 2 with a reason (R-P2); 2 stays, naming 3.
    let mut newer = material(&case, "doc://scans/receipt-2-signed", D3);
    newer.supersedes = 2;
    newer.reason = "the signed original arrived".into();
    specialist.complaints.add_material(newer.clone()).await.expect("supersede");
    newer.request_id = rid();
    newer.reason = "again".into();
    let status = refused_quietly(
        app,
        specialist.complaints.add_material(newer.clone()),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("MATERIAL_ALREADY_SUPERSEDED"));
    newer.supersedes = 99;
    let status =
        refused_quietly(app, h1.complaints.add_material(newer.clone()), Code::InvalidArgument, &[])
            .await;
    assert_eq!(reason(&status).as_deref(), Some("MATERIAL_NOT_FOUND"));
    assert_eq!(violated_fields(&status), ["supersedes"]);
    newer.supersedes = 1;
    newer.reason = String::new();
    let status =
        refused_quietly(app, h1.complaints.add_material(newer), Code::InvalidArgument, &[]).await;
    assert_eq!(reason(&status).as_deref(), Some("SUPERSEDING_NEEDS_REASON"));

    let shown = get(&mut admin, &case).await.materials;
    let numbers: Vec<(u32, u32, u32)> =
        shown.iter().map(|m| (m.number, m.supersedes, m.superseded_by)).collect();
    assert_eq!(numbers, [(1, 0, 0), (2, 0, 3), (3, 2, 0)]);
    assert_eq!(shown[0].reference, "doc://letters/1");
    assert_eq!((shown[1].sha256.as_str(), shown[1].added_by.as_str()), (D2, "h1"));
    // Stated in upper case, kept in the one spelling an auditor's sha256sum prints.
    assert_eq!(shown[2].sha256, D3.to_ascii_lowercase());
    assert_eq!(shown[2].reason, "the signed original arrived");
    assert_eq!(
        (shown[2].media_type.as_str(), shown[2].size_bytes),
        ("application/pdf", Some(2_048))
    );

    // Materials arrive after closing too (R-P2: any stage before archiving).
    handle_to_close_from_assigned(app, &case).await;
    let late = material(&case, "doc://scans/late-statement", D4);
    let late = h1.complaints.add_material(late).await.expect("after closing").into_inner();

    // The dossier states every material with its digest, and the implementation.
    let dossier = export(&mut compliance, &case).await;
    let digests: Vec<(u32, Option<&str>)> =
        dossier.materials.iter().map(|m| (m.number, m.sha256.as_deref())).collect();
    assert_eq!(
        digests,
        [(1, None), (2, Some(D2)), (3, Some(D3.to_ascii_lowercase().as_str())), (4, Some(D4))]
    );
    assert_eq!(dossier.materials[1].superseded_by, Some(3));
    assert_eq!(dossier.implementations.len(), 1, "{:?}", dossier.implementations);
    assert_eq!(dossier.implementations[0].by.as_str(), "sp1");
    let replayed = replayed_types(&mut compliance, &case).await;
    assert_eq!(replayed.iter().filter(|t| *t == "MaterialAdded").count(), 3, "{replayed:?}");

    // The read model: one row per added material, superseded ones marked, no reference.
    caught_up(app, late.result.expect("result").position).await;
    let rows = db::rows(
        app.db.url(),
        &format!(
            "SELECT CAST(number AS TEXT), media_type, CAST(size_bytes AS TEXT), added_by, \
             CAST(superseded_by AS TEXT) FROM rm_case_materials WHERE complaint_id = '{case}' \
             ORDER BY number"
        ),
    )
    .await;
    assert_eq!(
        rows,
        [
            "2|application/pdf|2048|h1|3",
            "3|application/pdf|2048|sp1|",
            "4|application/pdf|2048|h1|"
        ]
    );

    // Archived (after its callback), the case takes no more materials (R-P12).
    let mut callback = complaint_callback(&customer, &case, "");
    callback.comment = String::new();
    agent.callbacks.log_callback(callback).await.expect("callback");
    let year: u32 = case_number[..4].parse().unwrap();
    let archive = pb::ArchiveCasesRequest { request_id: rid(), year };
    let archived = admin.complaints.archive_cases(archive).await.expect("archive");
    assert_eq!(archived.into_inner().archived, [case_number]);
    let status = refused_quietly(
        app,
        h1.complaints.add_material(material(&case, "doc://too-late", D2)),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("COMPLAINT_ARCHIVED"));
}

async fn bad_materials_are_refused_field_by_field_and_change_nothing(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut h1 = app.clients(Some("h1")).await;
    let customer = register_customer(&mut agent, "Wu Lan").await;
    let (case, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    let mut admin = app.clients(Some("admin")).await;
    admin.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");

    let mut bad = material(&case, "", "not a digest");
    bad.media_type = "pdf".into();
    bad.size_bytes = (1 << 40) + 1;
    let status =
        refused_quietly(app, h1.complaints.add_material(bad), Code::InvalidArgument, &[]).await;
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["media_type", "reference", "sha256", "size_bytes"]);

    // Valid extremes pass: size 0 and the bound, a 1000-byte reference, a long type.
    let mut edge = material(&case, &"r".repeat(1_000), D2);
    edge.size_bytes = 0;
    edge.media_type = format!("application/{}", "x".repeat(120));
    h1.complaints.add_material(edge.clone()).await.expect("size 0, longest reference");
    edge.request_id = rid();
    edge.size_bytes = 1 << 40;
    h1.complaints.add_material(edge.clone()).await.expect("the largest size");
    edge.request_id = rid();
    edge.reference = "r".repeat(1_001);
    let status =
        refused_quietly(app, h1.complaints.add_material(edge), Code::InvalidArgument, &[]).await;
    assert_eq!(violated_fields(&status), ["reference"]);
    // A reason without a material it supersedes is refused too.
    let mut reasoned = material(&case, "doc://x", D2);
    reasoned.reason = "why".into();
    let status =
        refused_quietly(app, h1.complaints.add_material(reasoned), Code::InvalidArgument, &[])
            .await;
    assert_eq!(reason(&status).as_deref(), Some("REASON_WITHOUT_SUPERSEDING"));
    let mut supervisor = app.clients(Some("s1")).await;
    assert_eq!(get(&mut supervisor, &case).await.materials.len(), 3);
}

async fn a_promised_remedy_is_implemented_before_the_case_closes(app: &TestApp) {
    standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut h1 = app.clients(Some("h1")).await;
    let mut specialist = app.clients(Some("sp1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let customer = register_customer(&mut agent, "Sun Jie").await;
    let (case, _) = file(&mut agent, &customer, pb::Severity::Normal, "r1").await;
    supervisor.complaints.assign_handler(assign(&case, "h1")).await.expect("assign");
    h1.complaints
        .record_investigation(pb::RecordInvestigationRequest {
            request_id: rid(),
            complaint_id: case.clone(),
            expected_version: None,
            findings: "the fee was charged twice".into(),
        })
        .await
        .expect("investigate");
    specialist
        .complaints
        .draft_opinion(pb::DraftOpinionRequest {
            request_id: rid(),
            complaint_id: case.clone(),
            expected_version: None,
            opinion: "refund the fee".into(),
        })
        .await
        .expect("draft");

    // R-P9: nothing to implement before the opinion is signed.
    let status = refused_quietly(
        app,
        specialist.complaints.record_implementation(implement(&case)),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("IMPLEMENTATION_BEFORE_SIGNATURE"));
    h1.complaints.sign_opinion(sign(&case, pb::SignerCapacity::Handler)).await.expect("sign");
    assert!(get(&mut supervisor, &case).await.remedy_promised);
    h1.complaints
        .send_reply(reply(&case, pb::ReplyKind::Final, pb::ContactChannel::Letter))
        .await
        .expect("final reply");

    // Closing a promised remedy needs its implementation (FAILED_PRECONDITION, R-P9).
    let close = || pb::CloseComplaintRequest {
        request_id: rid(),
        complaint_id: case.clone(),
        expected_version: None,
        summary: String::new(),
    };
    let status =
        refused_quietly(app, h1.complaints.close_complaint(close()), Code::FailedPrecondition, &[])
            .await;
    assert_eq!(reason(&status).as_deref(), Some("CLOSE_NEEDS_IMPLEMENTATION"));
    let rule = tonic_types::StatusExt::get_details_error_info(&status).expect("error info");
    assert_eq!(rule.metadata.get("rule").map(String::as_str), Some("R-P9"));

    // Only the specialist records it (not the handler), never dated before the
    // signature, nor in the future.
    denied(app, h1.complaints.record_implementation(implement(&case)), &[]).await;
    let mut early = implement(&case);
    early.implemented_at = Some(prost_types::Timestamp { seconds: 1_000_000_000, nanos: 0 });
    let status = refused_quietly(
        app,
        specialist.complaints.record_implementation(early),
        Code::InvalidArgument,
        &[],
    )
    .await;
    assert_eq!(reason(&status).as_deref(), Some("IMPLEMENTED_BEFORE_SIGNING"));
    assert_eq!(violated_fields(&status), ["implemented_at"]);
    let mut future = implement(&case);
    let tomorrow = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
    future.implemented_at = Some(prost_types::Timestamp::from(tomorrow));
    let status = refused_quietly(
        app,
        specialist.complaints.record_implementation(future),
        Code::InvalidArgument,
        &[],
    )
    .await;
    assert_eq!(violated_fields(&status), ["implemented_at"]);

    let recorded = specialist.complaints.record_implementation(implement(&case)).await;
    let recorded = recorded.expect("implement").into_inner().result.expect("result");
    h1.complaints.close_complaint(close()).await.expect("closes once implemented");
    let shown = get(&mut supervisor, &case).await;
    assert_eq!(shown.implementations.len(), 1);
    assert_eq!(shown.implementations[0].by, "sp1");
    assert_eq!(shown.implementations[0].summary, "the apology letter was sent");
    let dossier = export(&mut compliance, &case).await;
    assert_eq!(dossier.implementations.len(), 1);
    assert_eq!(dossier.implementations[0].summary.as_str(), "the apology letter was sent");
    caught_up(app, recorded.position).await;
    let rows = db::rows(
        app.db.url(),
        &format!("SELECT by_staff FROM rm_case_implementations WHERE complaint_id = '{case}'"),
    )
    .await;
    assert_eq!(rows, ["sp1"]);

    // An opinion without a remedy closes without an implementation record.
    let (plain, _) = file(&mut agent, &customer, pb::Severity::Normal, "").await;
    supervisor.complaints.assign_handler(assign(&plain, "h1")).await.expect("assign");
    h1.complaints
        .record_investigation(pb::RecordInvestigationRequest {
            request_id: rid(),
            complaint_id: plain.clone(),
            expected_version: None,
            findings: "no fault found".into(),
        })
        .await
        .expect("investigate");
    specialist
        .complaints
        .draft_opinion(pb::DraftOpinionRequest {
            request_id: rid(),
            complaint_id: plain.clone(),
            expected_version: None,
            opinion: "explain the fee".into(),
        })
        .await
        .expect("draft");
    let mut no_remedy = sign(&plain, pb::SignerCapacity::Handler);
    no_remedy.remedy = String::new();
    h1.complaints.sign_opinion(no_remedy).await.expect("sign");
    h1.complaints
        .send_reply(reply(&plain, pb::ReplyKind::Final, pb::ContactChannel::Email))
        .await
        .expect("final reply");
    let close_plain = pb::CloseComplaintRequest { complaint_id: plain.clone(), ..close() };
    h1.complaints.close_complaint(close_plain).await.expect("no remedy, no implementation");
}
