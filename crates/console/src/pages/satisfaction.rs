//! Satisfaction (R-R2): rate, average score and dissatisfaction by month as line
//! charts, by handler, channel and category as bar charts, each with its table; and
//! callback coverage against the targets of R-C5.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kefu_api::pb;
use kefu_api::pb::reporting_service_server::ReportingService;
use maud::{html, Markup};

use crate::charts::{self, Series};
use crate::i18n::Texts;
use crate::layout;
use crate::web::{percent, refusal, Signed, REPORTS};
use crate::Shared;

/// `GET /satisfaction`.
pub async fn page(State(state): State<Shared>, signed: Signed) -> Response {
    let t = signed.lang.texts();
    let reports = state.services.reporting();
    let mut by = Vec::new();
    let mut coverage = Vec::new();
    let mut handlers_withheld = false;
    for grouping in [
        pb::SatisfactionGrouping::Month,
        pb::SatisfactionGrouping::Handler,
        pb::SatisfactionGrouping::Channel,
        pb::SatisfactionGrouping::Category,
    ] {
        let request =
            pb::GetSatisfactionMetricsRequest { group_by: grouping.into(), ..Default::default() };
        let metrics = reports.get_satisfaction_metrics(signed.request(request));
        match signed.call(&state, REPORTS, metrics).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                handlers_withheld |= answer.handler_groups_withheld;
                by.push(answer.groups);
                coverage = answer.coverage;
            }
            Err(status) => return refusal(signed.lang, Some(&signed), &status),
        }
    }
    let [months, handlers, channels, categories] = <[_; 4]>::try_from(by).unwrap_or_default();
    let labels: Vec<String> = months.iter().map(|g| g.key.clone()).collect();
    let rates = vec![
        Series {
            name: t.satisfaction_rate,
            class: "s1",
            values: months.iter().map(|g| Some(g.satisfaction_rate)).collect(),
        },
        Series {
            name: t.dissatisfaction_rate,
            class: "s2",
            values: months.iter().map(|g| Some(g.dissatisfaction_rate)).collect(),
        },
    ];
    let scores = vec![Series {
        name: t.average_score,
        class: "s3",
        values: months.iter().map(|g| g.average_score).collect(),
    }];
    let body = html! {
        h1 { (t.satisfaction) }
        section {
            h2 { (t.by_month) }
            (charts::line("chart-month-rates", &labels, &rates, 1.0, percent))
            (charts::line("chart-month-score", &labels, &scores, 5.0, |v| format!("{v:.1}")))
            (groups_table(t, "month", &months))
        }
        @for (key, title, groups) in [("handler", t.by_handler, &handlers), ("channel", t.by_channel, &channels), ("category", t.by_category, &categories)] {
            section {
                h2 { (title) }
                @if key == "handler" && handlers_withheld {
                    p.note #handler-withheld { (t.workload_withheld) }
                }
                (charts::bars(&format!("chart-{key}"), &groups.iter().map(|g| (g.key.clone(), g.satisfaction_rate)).collect::<Vec<_>>(), 1.0, percent))
                (groups_table(t, key, groups))
            }
        }
        section {
            h2 { (t.coverage) }
            table #coverage {
                thead { tr {
                    th { (t.group) } th.num { (t.customers) } th.num { (t.covered) }
                    th.num { (t.rate) } th.num { (t.target) }
                } }
                tbody {
                    @for c in &coverage {
                        tr data-coverage=(c.group) {
                            td { (c.group) } td.num.customers { (c.customers) }
                            td.num.covered { (c.covered) }
                            td.num.rate { (percent(c.rate)) }
                            td.num.target { (percent(c.target)) }
                        }
                    }
                }
            }
        }
    };
    layout::page(signed.lang, Some(&signed), t.satisfaction, body).into_response()
}

fn groups_table(t: &Texts, key: &str, groups: &[pb::SatisfactionGroup]) -> Markup {
    html! {
        table id=(format!("by-{key}")) {
            thead { tr {
                th { (t.group) } th.num { (t.responses) } th.num { (t.satisfaction_rate) }
                th.num { (t.dissatisfaction_rate) } th.num { (t.average_score) }
            } }
            tbody {
                @for g in groups {
                    tr data-group=(format!("{key}:{}", g.key)) {
                        td { (g.key) } td.num.responses { (g.responses) }
                        td.num.rate { (percent(g.satisfaction_rate)) }
                        td.num.dissatisfaction { (percent(g.dissatisfaction_rate)) }
                        td.num.score { @match g.average_score { Some(s) => (format!("{s:.2}")), None => (layout::dash()) } }
                    }
                }
            }
        }
    }
}
