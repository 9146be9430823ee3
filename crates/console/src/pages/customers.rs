//! Customers: the search (`FindCustomers`, rows within the caller's clearance, R-C6),
//! and a customer's record with their cases and callbacks, each as the service
//! answers the signed-in person.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use kefu_api::pb;
use kefu_api::pb::complaint_service_server::ComplaintService;
use kefu_api::pb::customer_service_server::CustomerService;
use maud::html;
use serde::Deserialize;
use tonic::Code;

use crate::layout;
use crate::web::{refusal, when, Signed, COMPLAINTS, CUSTOMERS};
use crate::Shared;

/// Matches shown per search.
const PAGE: u32 = 50;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    by: Option<String>,
}

fn lower_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_ascii_lowercase()
}

/// `GET /customers?q=…&by=phone|email|name`.
pub async fn search(
    State(state): State<Shared>,
    signed: Signed,
    Query(query): Query<SearchQuery>,
) -> Response {
    let t = signed.lang.texts();
    let text = query.q.unwrap_or_default();
    let by = match query.by.as_deref() {
        Some("phone") => pb::FindBy::Phone,
        Some("email") => pb::FindBy::Email,
        Some("name") => pb::FindBy::Name,
        _ => pb::FindBy::Unspecified,
    };
    let matches = if text.trim().is_empty() {
        None
    } else {
        let request = pb::FindCustomersRequest {
            query: text.clone(),
            by: by.into(),
            page_size: PAGE,
            ..Default::default()
        };
        let customers = state.services.customers();
        match signed
            .call(&state, CUSTOMERS, customers.find_customers(signed.request(request)))
            .await
        {
            Ok(answer) => Some(answer.into_inner().matches),
            Err(status) => return refusal(signed.lang, Some(&signed), &status),
        }
    };
    let body = html! {
        h1 { (t.customers) }
        form.inline method="get" action="/customers" {
            input #customer-query type="search" name="q" value=(text) required;
            label for="customer-by" { (t.search_by) }
            select #customer-by name="by" {
                @for (value, label, chosen) in [("", t.by_any, by == pb::FindBy::Unspecified), ("phone", t.by_phone, by == pb::FindBy::Phone), ("email", t.by_email, by == pb::FindBy::Email), ("name", t.by_name, by == pb::FindBy::Name)] {
                    option value=(value) selected[chosen] { (label) }
                }
            }
            button #customer-search type="submit" { (t.search) }
        }
        @if let Some(matches) = matches {
            @if matches.is_empty() { p.note #no-matches { (t.none) } }
            @else {
                table #matches {
                    thead { tr { th { (t.name) } th { (t.tier) } th { (t.agent) } th { (t.matched) } } }
                    tbody {
                        @for m in &matches {
                            @if let Some(c) = &m.customer {
                                tr data-customer=(c.customer_id) {
                                    td { a href=(format!("/customers/{}", c.customer_id)) { (c.name) } }
                                    td { (pb::Tier::try_from(c.tier).map_or_else(|_| String::new(), |v| lower_name(v.as_str_name(), "TIER_"))) }
                                    td { (c.agent) }
                                    td { (pb::MatchKind::try_from(m.matched).map_or_else(|_| String::new(), |v| lower_name(v.as_str_name(), "MATCH_KIND_"))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(signed.lang, Some(&signed), t.customers, body).into_response()
}

/// `GET /customers/{id}`.
pub async fn customer(
    State(state): State<Shared>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let t = signed.lang.texts();
    let request = pb::GetCustomerRequest { customer_id: id.clone() };
    let customers = state.services.customers();
    let read = customers.get_customer(signed.request(request));
    let customer = match signed.call(&state, CUSTOMERS, read).await {
        Ok(answer) => answer.into_inner().customer.unwrap_or_default(),
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let request =
        pb::ListComplaintsRequest { customer_id: id, page_size: 500, ..Default::default() };
    let complaints = state.services.complaints();
    let listed = complaints.list_complaints(signed.request(request));
    let cases = match signed.call(&state, COMPLAINTS, listed).await {
        Ok(answer) => Some(answer.into_inner().complaints),
        Err(status) if status.code() == Code::PermissionDenied => None,
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let zone = state.config.time_zone;
    let contacts = customer.contacts.clone().unwrap_or_default();
    let body = html! {
        h1 { (t.customer) " " span #customer-name { (customer.name) } }
        table #customer {
            tbody {
                tr { th { (t.tier) } td { (pb::Tier::try_from(customer.tier).map_or_else(|_| String::new(), |v| lower_name(v.as_str_name(), "TIER_"))) @if customer.stars > 0 { " " (customer.stars) "★" } } }
                tr { th { (t.agent) } td { (customer.agent) } }
                tr { th { (t.by_phone) } td { (contacts.phones.join(", ")) } }
                tr { th { (t.by_email) } td { (contacts.emails.join(", ")) } }
                tr { th { (t.registered_at) } td { (when(zone, customer.registered_at.as_ref())) } }
                tr { th { (t.contacted) } td { (when(zone, customer.first_contact_at.as_ref())) } }
                tr { th { (t.last_callback) } td { (when(zone, customer.last_callback_at.as_ref())) } }
                tr { th { (t.callbacks) } td #customer-callbacks { (customer.callbacks) } }
            }
        }
        section {
            h2 { (t.cases_of_customer) }
            @match cases {
                None => p.note #cases-refused { (t.refused) },
                Some(cases) => {
                    table #customer-cases {
                        thead { tr { th { (t.case_number) } th { (t.status) } th { (t.stage) } th { (t.handler) } th { (t.received_at) } } }
                        tbody {
                            @for c in &cases {
                                tr data-case=(c.case_number) {
                                    td { a href=(format!("/cases/{}", c.case_number)) { (c.case_number) } }
                                    td { (pb::ComplaintStatus::try_from(c.status).map_or_else(|_| String::new(), |v| lower_name(v.as_str_name(), "COMPLAINT_STATUS_"))) }
                                    td { (c.stage) } td { (c.handler) }
                                    td { (when(zone, c.received_at.as_ref())) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(signed.lang, Some(&signed), t.customers, body).into_response()
}
