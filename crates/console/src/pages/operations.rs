//! The operations dashboard (R-R3): open cases by stage and severity, ageing, handler
//! workload, SLA breach counts, and the items at risk and breached (R-T5), which
//! `live.js` keeps current from the SLA watch.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kefu_api::pb;
use kefu_api::pb::reporting_service_server::ReportingService;
use maud::{html, Markup};
use tonic::Code;

use crate::i18n::Texts;
use crate::layout;
use crate::web::{refusal, when, Signed, REPORTS};
use crate::Shared;

/// `GET /operations`.
pub async fn page(State(state): State<Shared>, signed: Signed) -> Response {
    let t = signed.lang.texts();
    let reports = state.services.reporting();
    let request = signed.request(pb::GetDashboardRequest::default());
    let dashboard = match signed.call(&state, REPORTS, reports.get_dashboard(request)).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let request = pb::ListSlaBreachesRequest { include_at_risk: true, ..Default::default() };
    let listed = reports.list_sla_breaches(signed.request(request));
    let items = match signed.call(&state, REPORTS, listed).await {
        Ok(answer) => Some(answer.into_inner().breaches),
        // The table may give a role the counts but not the rows (analysts).
        Err(status) if status.code() == Code::PermissionDenied => None,
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let zone = state.config.time_zone;
    let body = html! {
        h1 { (t.operations) }
        (breach_counts(t, dashboard.breaches.unwrap_or_default()))
        section {
            h2 { (t.open_by_stage) }
            table #open-by-stage {
                thead { tr { th { (t.stage) } th { (t.severity) } th.num { (t.count) } } }
                tbody {
                    @for row in &dashboard.open_by_stage {
                        tr {
                            td { (row.stage) } td { (row.severity) }
                            td.num data-open=(format!("{}/{}", row.stage, row.severity)) { (row.count) }
                        }
                    }
                }
            }
        }
        section {
            h2 { (t.ageing) }
            table #ageing {
                tbody {
                    @for row in &dashboard.ageing {
                        tr { td { (row.label) } td.num data-ageing=(row.label) { (row.count) } }
                    }
                }
            }
        }
        section {
            h2 { (t.workload) }
            @if dashboard.workload_withheld {
                p.note #workload-withheld { (t.workload_withheld) }
            } @else {
                table #workload {
                    thead { tr {
                        th { (t.staff) } th { (t.active) } th.num { (t.open_cases) }
                        th.num { (t.open_major_cases) } th.num { (t.customers_held) }
                    } }
                    tbody {
                        @for load in &dashboard.workload {
                            tr data-staff=(load.staff_id) {
                                td { (load.staff_id) }
                                td { @if load.active { "✓" } @else { "—" } }
                                td.num.open { (load.open_cases) }
                                td.num.major { (load.open_major_cases) }
                                td.num.customers { (load.customers) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { (t.sla_items) " " span #live-status data-live="off" { } }
            @match &items {
                None => { p.note #sla-items-refused { (t.sla_items_refused) } },
                Some(items) => {
                    table #sla-items data-live-url="/operations/live" {
                        thead { tr {
                            th { (t.rule) } th { (t.state) } th { (t.case_number) }
                            th { (t.owner) } th { (t.due_at) }
                        } }
                        tbody #sla-rows {
                            @for item in items { (item_row(t, zone, item)) }
                        }
                    }
                    script src="/static/live.js" {}
                }
            }
        }
    };
    layout::page(signed.lang, Some(&signed), t.operations, body).into_response()
}

fn breach_counts(t: &Texts, breaches: pb::SlaBreachCounts) -> Markup {
    html! {
        section.counters #breaches {
            h2 { (t.breaches) }
            div.counter { span.label { (t.first_response) } span.big #breach-first-response { (breaches.first_response) } }
            div.counter { span.label { (t.callback_overdue) } span.big #breach-callback-overdue { (breaches.callback_overdue) } }
            div.counter { span.label { (t.new_customer_not_contacted) } span.big #breach-new-customer { (breaches.new_customer_not_contacted) } }
            div.counter { span.label { (t.resolution_overdue) } span.big #breach-resolution { (breaches.resolution_overdue) } }
            div.counter { span.label { (t.request_first_response) } span.big #breach-request-first-response { (breaches.request_first_response) } }
            div.counter { span.label { (t.request_callback_overdue) } span.big #breach-request-callback { (breaches.request_callback_overdue) } }
        }
    }
}

/// The rule's name as shown and as keyed.
pub fn rule_name(t: &Texts, rule: i32) -> (&'static str, &'static str) {
    match pb::SlaRule::try_from(rule) {
        Ok(pb::SlaRule::FirstResponse) => ("first_response", t.first_response),
        Ok(pb::SlaRule::CallbackOverdue) => ("callback_overdue", t.callback_overdue),
        Ok(pb::SlaRule::NewCustomerNotContacted) => {
            ("new_customer_not_contacted", t.new_customer_not_contacted)
        }
        Ok(pb::SlaRule::ResolutionOverdue) => ("resolution_overdue", t.resolution_overdue),
        Ok(pb::SlaRule::Unspecified) | Err(_) => ("unspecified", "—"),
    }
}

/// The state's name as shown and as keyed.
pub fn state_name(t: &Texts, state: i32) -> (&'static str, &'static str) {
    match pb::SlaState::try_from(state) {
        Ok(pb::SlaState::AtRisk) => ("at_risk", t.at_risk),
        Ok(pb::SlaState::Breached) => ("breached", t.breached),
        Ok(pb::SlaState::Unspecified) | Err(_) => ("unspecified", "—"),
    }
}

/// One item's row; `live.js` writes rows of the same shape.
pub fn item_row(t: &Texts, zone: chrono_tz::Tz, item: &pb::SlaBreach) -> Markup {
    let (rule_key, rule) = rule_name(t, item.rule);
    let (state_key, state) = state_name(t, item.state);
    html! {
        tr data-key=(format!("{rule_key}:{}", item.subject_id)) data-state=(state_key) {
            td { (rule) } td.state { (state) }
            td { @if item.case_number.is_empty() { (layout::dash()) } @else {
                a href=(format!("/cases/{}", item.case_number)) { (item.case_number) }
            } }
            td { (item.owner) } td { (when(zone, item.due_at.as_ref())) }
        }
    }
}
