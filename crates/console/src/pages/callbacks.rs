//! Due callbacks (R-C4, R-C5, R-P15; the caller's own rows or all, as the access table
//! says) and the referral report (R-R4, referrers within clearance).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kefu_api::pb;
use kefu_api::pb::callback_service_server::CallbackService;
use kefu_api::pb::reporting_service_server::ReportingService;
use maud::html;
use tonic::Code;

use crate::layout;
use crate::web::{refusal, when, Signed, CALLBACKS, REPORTS};
use crate::Shared;

/// How far ahead due callbacks are listed.
const HORIZON_HOURS: u32 = 7 * 24;

/// `GET /callbacks`.
pub async fn page(State(state): State<Shared>, signed: Signed) -> Response {
    let t = signed.lang.texts();
    let request =
        pb::ListDueCallbacksRequest { horizon_hours: HORIZON_HOURS, ..Default::default() };
    let callbacks = state.services.callbacks();
    let listed = callbacks.list_due_callbacks(signed.request(request));
    let due = match signed.call(&state, CALLBACKS, listed).await {
        Ok(answer) => Some(answer.into_inner().due),
        Err(status) if status.code() == Code::PermissionDenied => None,
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let reports = state.services.reporting();
    let report =
        reports.get_referral_report(signed.request(pb::GetReferralReportRequest::default()));
    let referrals = match signed.call(&state, REPORTS, report).await {
        Ok(answer) => Some(answer.into_inner().referrals),
        Err(status) if status.code() == Code::PermissionDenied => None,
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let zone = state.config.time_zone;
    let body = html! {
        h1 { (t.callbacks) }
        section {
            h2 { (t.due_callbacks) }
            @match &due {
                None => p.note #due-refused { (t.refused) },
                Some(due) => {
                    table #due-callbacks {
                        thead { tr { th { (t.kind) } th { (t.case_number) } th { (t.owner) } th { (t.due_at) } th { (t.overdue) } } }
                        tbody {
                            @for d in due {
                                tr data-due=(format!("{}:{}", d.customer_id, d.complaint_id)) data-overdue=(d.overdue) {
                                    td { (pb::DueKind::try_from(d.kind).map_or_else(|_| String::new(), |k| k.as_str_name().trim_start_matches("DUE_KIND_").to_ascii_lowercase())) }
                                    td { @if d.case_number.is_empty() { (layout::dash()) } @else { a href=(format!("/cases/{}", d.case_number)) { (d.case_number) } } }
                                    td { (d.owner) }
                                    td { (when(zone, d.due_at.as_ref())) }
                                    td { @if d.overdue { "✓" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { (t.referrals) }
            @match &referrals {
                None => p.note #referrals-refused { (t.refused) },
                Some(referrals) => {
                    table #referrals {
                        thead { tr { th { (t.referrer) } th.num { (t.referred) } th.num { (t.still_customers) } th.num { (t.contacted) } } }
                        tbody {
                            @for r in referrals {
                                tr data-referrer=(r.referrer_id) {
                                    td { @if r.referrer_name_redacted { em { (t.redacted) } } @else { (r.referrer_name) } }
                                    td.num.referred { (r.referred) }
                                    td.num.still { (r.still_customers) }
                                    td.num.contacted { (r.contacted) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(signed.lang, Some(&signed), t.callbacks, body).into_response()
}
