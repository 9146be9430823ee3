//! The case file, for the roles the access table lets inspect cases (R-P11): the
//! case as it stands (stage, handler, recusals, signer, the policy version and its
//! deadlines), its timeline replayed event by event (opinions and signatures, replies,
//! callbacks among them, fields redacted as for the caller), the hash-chain badge and
//! the dossier export. The replay, the verification and the export are the audit
//! calls: each is recorded as an inspection, with `console` as its source.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use futures::StreamExt;
use kefu_api::pb;
use kefu_api::pb::audit_service_server::AuditService;
use kefu_api::pb::complaint_service_server::ComplaintService;
use maud::{html, Markup};
use serde::Deserialize;

use crate::i18n::Texts;
use crate::layout;
use crate::web::{refusal, when, Signed, AUDIT, COMPLAINTS};
use crate::Shared;

/// Event types listed apart from the timeline, with what they are.
const HIGHLIGHTS: &[&str] =
    &["HandlerRecused", "OpinionDrafted", "OpinionSigned", "ReplySent", "CallbackLogged"];

#[derive(Debug, Deserialize)]
pub struct CaseQuery {
    case: Option<String>,
}

/// `GET /cases`: a form to open a case by number (or id).
pub async fn open(signed: Signed, Query(query): Query<CaseQuery>) -> Response {
    if let Some(case) = query.case.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()) {
        let path: String =
            case.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        return Redirect::to(&format!("/cases/{path}")).into_response();
    }
    let t = signed.lang.texts();
    let body = html! {
        h1 { (t.case_file) }
        form.inline method="get" action="/cases" {
            label for="case-input" { (t.case_number) }
            input #case-input type="text" name="case" placeholder="2026-000001" required;
            button type="submit" { (t.open_case) }
        }
    };
    layout::page(signed.lang, Some(&signed), t.case_file, body).into_response()
}

/// `GET /cases/{case}`.
pub async fn page(
    State(state): State<Shared>,
    signed: Signed,
    Path(case): Path<String>,
) -> Response {
    let t = signed.lang.texts();
    let audit = state.services.audit();
    let replay = pb::ReplayCaseRequest { complaint: case.clone() };
    // The replay streams: its slots are held until the last event is read, as over gRPC.
    let pass = match signed.admit(&state, AUDIT) {
        Ok(pass) => pass,
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let mut stream = match audit.replay_case(signed.request(replay)).await {
        Ok(answer) => Box::pin(answer.into_inner()),
        // R-P11 lets supervisors and the director read a complaint's details, but the
        // audit calls are compliance's: they get the case as it stands.
        Err(status) if status.code() == tonic::Code::PermissionDenied => {
            drop(pass);
            return state_only(&state, &signed, &case).await;
        }
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let mut events = Vec::new();
    while let Some(next) = stream.next().await {
        match next {
            Ok(message) => events.extend(message.event),
            Err(status) => return refusal(signed.lang, Some(&signed), &status),
        }
    }
    drop(pass);
    let verify =
        audit.verify_case(signed.request(pb::VerifyCaseRequest { complaint: case.clone() }));
    let verification = match signed.call(&state, AUDIT, verify).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let complaints = state.services.complaints();
    let read = complaints
        .get_complaint(signed.request(pb::GetComplaintRequest { complaint: case.clone() }));
    let current = match signed.call(&state, COMPLAINTS, read).await {
        Ok(answer) => answer.into_inner().complaint.unwrap_or_default(),
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let zone = state.config.time_zone;
    let body = html! {
        h1 { (t.case_file) " " span #case-number { (current.case_number) } }
        p.note #inspection-recorded { (t.recorded_as_inspection) }
        (badge(t, &verification))
        p { a.button #dossier href=(format!("/cases/{}/dossier.json", current.case_number)) { (t.dossier) } }
        (summary(t, zone, &current))
        @for kind in HIGHLIGHTS {
            @let chosen: Vec<&pb::Event> = events.iter().filter(|e| e.event_type == *kind).collect();
            @if !chosen.is_empty() {
                section.highlight data-kind=(kind) {
                    h2 { (kind) " (" (chosen.len()) ")" }
                    ul { @for e in chosen { li { "v" (e.stream_version) " · " (when(zone, e.recorded_at.as_ref())) " · " (actor(e)) } } }
                }
            }
        }
        section {
            h2 { (t.timeline) }
            table #timeline {
                thead { tr { th { (t.version) } th { (t.recorded_at) } th { (t.event) } th { (t.actor) } th { (t.details) } } }
                tbody {
                    @for e in &events {
                        tr data-version=(e.stream_version) data-type=(e.event_type) {
                            td.num { (e.stream_version) }
                            td { (when(zone, e.recorded_at.as_ref())) }
                            td.type { (e.event_type) }
                            td { (actor(e)) }
                            td {
                                @if !e.redacted_fields.is_empty() {
                                    p.redacted { (t.redacted) ": " (e.redacted_fields.join(", ")) }
                                }
                                pre { (pretty(&e.payload_json)) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(signed.lang, Some(&signed), t.case_file, body).into_response()
}

/// The case file of a caller who may read the case (`GetComplaint`) but not replay or
/// verify it: its current state and deadlines, without the timeline, the chain badge or
/// the dossier. Refused like `GetComplaint` when that is refused too.
async fn state_only(state: &Shared, signed: &Signed, case: &str) -> Response {
    let t = signed.lang.texts();
    let complaints = state.services.complaints();
    let read = complaints
        .get_complaint(signed.request(pb::GetComplaintRequest { complaint: case.to_owned() }));
    let current = match signed.call(state, COMPLAINTS, read).await {
        Ok(answer) => answer.into_inner().complaint.unwrap_or_default(),
        Err(status) => return refusal(signed.lang, Some(signed), &status),
    };
    let body = html! {
        h1 { (t.case_file) " " span #case-number { (current.case_number) } }
        p.note #state-only { (t.state_only) }
        (summary(t, state.config.time_zone, &current))
    };
    layout::page(signed.lang, Some(signed), t.case_file, body).into_response()
}

fn actor(event: &pb::Event) -> &str {
    event.metadata.as_ref().map_or("", |m| m.actor.as_str())
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| json.to_owned())
}

fn badge(t: &Texts, verification: &pb::VerifyCaseResponse) -> Markup {
    html! {
        @if verification.intact {
            p.badge.intact #verification data-intact="true" {
                (t.verification) ": " (t.intact) " · " (t.events) " " span #verified-events { (verification.events) }
                " · " (t.head_hash) " " code { (verification.head_hash) }
            }
        } @else {
            p.badge.broken #verification data-intact="false" {
                (t.verification) ": " (t.broken) " · v" (verification.first_bad_version) " · " (verification.reason)
            }
        }
    }
}

/// The `SNAKE` name of a generated enum value, as lowercase words without its prefix.
fn name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_ascii_lowercase()
}

fn summary(t: &Texts, zone: chrono_tz::Tz, c: &pb::Complaint) -> Markup {
    let status = pb::ComplaintStatus::try_from(c.status)
        .map_or_else(|_| String::new(), |s| name(s.as_str_name(), "COMPLAINT_STATUS_"));
    let severity = pb::Severity::try_from(c.severity)
        .map_or_else(|_| String::new(), |s| name(s.as_str_name(), "SEVERITY_"));
    let capacity = pb::SignerCapacity::try_from(c.signer_capacity)
        .map_or_else(|_| String::new(), |s| name(s.as_str_name(), "SIGNER_CAPACITY_"));
    html! {
        table #case-summary {
            tbody {
                tr { th { (t.status) } td #case-status { (status) " · " (c.stage) } }
                tr { th { (t.severity) } td { (severity) } }
                tr { th { (t.handler) } td #case-handler { (c.handler) } }
                tr { th { (t.respondent) } td { (c.respondent) } }
                tr { th { (t.recused) } td #case-recused { (c.recused.join(", ")) } }
                tr { th { (t.signer) } td { (c.signer) @if !c.signer.is_empty() { " (" (capacity) ")" } } }
                tr { th { (t.policy_version) } td #policy-version { (c.policy_version) } }
                tr { th { (t.received_at) } td { (when(zone, c.received_at.as_ref())) } }
                tr { th { (t.first_response_due) } td { (when(zone, c.first_response_due_at.as_ref())) } }
                tr { th { (t.resolution_due) } td { (when(zone, c.resolution_due_at.as_ref())) } }
                tr { th { (t.callback_due) } td { (when(zone, c.callback_due_at.as_ref())) } }
                tr { th { (t.closed_at) } td { (when(zone, c.closed_at.as_ref())) } }
            }
        }
    }
}

/// `GET /cases/{case}/dossier.json`: the export, recorded as an inspection.
pub async fn dossier(
    State(state): State<Shared>,
    signed: Signed,
    Path(case): Path<String>,
) -> Response {
    let request = pb::ExportCaseRequest { complaint: case };
    let audit = state.services.audit();
    match signed.call(&state, AUDIT, audit.export_case(signed.request(request))).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            let file: String = answer.dossier_json;
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"kefu-dossier.json\"".to_owned(),
                    ),
                ],
                file,
            )
                .into_response()
        }
        Err(status) => refusal(signed.lang, Some(&signed), &status),
    }
}
