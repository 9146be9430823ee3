//! The monthly summary (R-R1, months of receipt in the business time zone): counts by
//! category, cause, channel and severity, resolution times, the top causes with their
//! trend over six months, and the same numbers as CSV.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Datelike;
use kefu_api::pb;
use kefu_api::pb::reporting_service_server::ReportingService;
use maud::{html, Markup};
use serde::Deserialize;
use tonic::Status;

use crate::i18n::Texts;
use crate::layout;
use crate::web::{hours, percent, refusal, Signed, REPORTS};
use crate::Shared;

/// Months in a cause's trend (the month shown and the five before it).
const TREND_MONTHS: u32 = 6;
/// Causes shown with their trend.
const TOP_CAUSES: usize = 5;

#[derive(Debug, Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

/// The month asked for, else the current business month (R-T1).
fn month_of(state: &Shared, query: MonthQuery) -> String {
    query.month.filter(|m| !m.is_empty()).unwrap_or_else(|| {
        let now = (state.config.clock)().with_timezone(&state.config.time_zone);
        format!("{:04}-{:02}", now.year(), now.month())
    })
}

/// The `n` months before `month` (`YYYY-MM`), oldest first; none if it is no month.
fn months_before(month: &str, n: u32) -> Vec<String> {
    let Some((year, number)) = month.split_once('-') else { return Vec::new() };
    let (Ok(year), Ok(number)) = (year.parse::<i32>(), number.parse::<u32>()) else {
        return Vec::new();
    };
    if !(1..=12).contains(&number) {
        return Vec::new();
    }
    let index = i64::from(year) * 12 + i64::from(number) - 1;
    (1..=i64::from(n))
        .rev()
        .filter_map(|back| {
            let i = index - back;
            let year = i32::try_from(i.div_euclid(12)).ok()?;
            let number = i.rem_euclid(12) + 1;
            (year >= 0).then(|| format!("{year:04}-{number:02}"))
        })
        .collect()
}

async fn summary(
    state: &Shared,
    signed: &Signed,
    month: &str,
) -> Result<pb::GetMonthlySummaryResponse, Status> {
    let request = pb::GetMonthlySummaryRequest { month: month.to_owned(), ..Default::default() };
    let reports = state.services.reporting();
    let answer = reports.get_monthly_summary(signed.request(request));
    Ok(signed.call(state, REPORTS, answer).await?.into_inner())
}

/// `GET /summary?month=YYYY-MM`.
pub async fn page(
    State(state): State<Shared>,
    signed: Signed,
    Query(query): Query<MonthQuery>,
) -> Response {
    let t = signed.lang.texts();
    let month = month_of(&state, query);
    let shown = match summary(&state, &signed, &month).await {
        Ok(shown) => shown,
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let mut before = Vec::new();
    for earlier in months_before(&month, TREND_MONTHS - 1) {
        match summary(&state, &signed, &earlier).await {
            Ok(summary) => before.push(summary),
            Err(status) => return refusal(signed.lang, Some(&signed), &status),
        }
    }
    let mut causes = shown.by_cause.clone();
    causes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    causes.truncate(TOP_CAUSES);
    let body = html! {
        h1 { (t.summary) " " span #month { (shown.month) } }
        form.inline method="get" action="/summary" {
            label for="month-input" { (t.month) }
            input #month-input type="month" name="month" value=(shown.month);
            button type="submit" { (t.show) }
            a.button #csv href=(format!("/summary.csv?month={}", shown.month)) { (t.download_csv) }
        }
        section.counters {
            div.counter { span.label { (t.complaints) } span.big #complaints { (shown.complaints) } }
            div.counter { span.label { (t.reopened) } span.big #reopened { (shown.reopened) " (" (percent(shown.reopened_share)) ")" } }
        }
        section.grid {
            (counts(t.by_category, "category", &shown.by_category, t))
            (counts(t.by_cause, "cause", &shown.by_cause, t))
            (counts(t.by_channel, "channel", &shown.by_channel, t))
            (counts(t.by_severity, "severity", &shown.by_severity, t))
        }
        section {
            h2 { (t.resolution_times) " (" (t.hours) ")" }
            table #resolution {
                tbody {
                    tr { td { (t.first_response_median) } td.num #first-response-median { (hours(shown.first_response_median_seconds)) } }
                    tr { td { (t.first_response_p90) } td.num #first-response-p90 { (hours(shown.first_response_p90_seconds)) } }
                    tr { td { (t.close_median) } td.num #close-median { (hours(shown.close_median_seconds)) } }
                    tr { td { (t.close_p90) } td.num #close-p90 { (hours(shown.close_p90_seconds)) } }
                }
            }
        }
        section {
            h2 { (t.top_causes) }
            table #top-causes {
                thead { tr {
                    th { (t.by_cause) }
                    @for s in &before { th.num { (s.month) } }
                    th.num { (shown.month) }
                } }
                tbody {
                    @for cause in &causes {
                        tr data-cause=(cause.label) {
                            td { (cause.label) }
                            @for s in &before { td.num { (count_of(&s.by_cause, &cause.label)) } }
                            td.num.now { (cause.count) }
                        }
                    }
                }
            }
        }
    };
    layout::page(signed.lang, Some(&signed), t.summary, body).into_response()
}

fn count_of(counts: &[pb::LabelCount], label: &str) -> u64 {
    counts.iter().find(|c| c.label == label).map_or(0, |c| c.count)
}

fn counts(title: &str, key: &str, rows: &[pb::LabelCount], t: &Texts) -> Markup {
    html! {
        table id=(format!("by-{key}")) {
            caption { (title) }
            thead { tr { th { (title) } th.num { (t.count) } } }
            tbody {
                @for row in rows {
                    tr { td { (row.label) } td.num data-count=(format!("{key}:{}", row.label)) { (row.count) } }
                }
            }
        }
    }
}

/// `GET /summary.csv?month=YYYY-MM`: `section,label,value` rows.
pub async fn csv(
    State(state): State<Shared>,
    signed: Signed,
    Query(query): Query<MonthQuery>,
) -> Response {
    let month = month_of(&state, query);
    let summary = match summary(&state, &signed, &month).await {
        Ok(summary) => summary,
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let mut out = String::from("section,label,value\r\n");
    let mut row = |section: &str, label: &str, value: String| {
        out.push_str(&format!("{},{},{}\r\n", field(section), field(label), field(&value)));
    };
    row("month", "", summary.month.clone());
    row("complaints", "", summary.complaints.to_string());
    for (section, counts) in [
        ("category", &summary.by_category),
        ("cause", &summary.by_cause),
        ("channel", &summary.by_channel),
        ("severity", &summary.by_severity),
    ] {
        for count in counts {
            row(section, &count.label, count.count.to_string());
        }
    }
    for (label, value) in [
        ("first_response_median_seconds", summary.first_response_median_seconds),
        ("first_response_p90_seconds", summary.first_response_p90_seconds),
        ("close_median_seconds", summary.close_median_seconds),
        ("close_p90_seconds", summary.close_p90_seconds),
    ] {
        row("resolution", label, value.map(|v| v.to_string()).unwrap_or_default());
    }
    row("reopened", "", summary.reopened.to_string());
    row("reopened_share", "", summary.reopened_share.to_string());
    let disposition = format!("attachment; filename=\"kefu-summary-{}.csv\"", summary.month);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        out,
    )
        .into_response()
}

/// A CSV field: quoted when it must be, and never read as a formula by a spreadsheet,
/// even one that splits on `;` (the separator where `,` is the decimal mark): a `;`
/// inside an unquoted field would start a new cell there, formula and all.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', ';', '"', '\n', '\r', '\t']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_before_cross_years_and_refuse_nonsense() {
        assert_eq!(months_before("2026-02", 3), ["2025-11", "2025-12", "2026-01"]);
        assert_eq!(months_before("0000-01", 2), Vec::<String>::new());
        assert!(months_before("2026-13", 2).is_empty() && months_before("x", 2).is_empty());
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(field("billing"), "billing");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("=1+1"), "'=1+1");
        assert_eq!(field("say \"x\", y"), "\"say \"\"x\"\", y\"");
        assert_eq!(field("a;=cmd|' /C calc'!A0"), "\"a;=cmd|' /C calc'!A0\"");
        assert_eq!(field("\n=1+1"), "\"'\n=1+1\"");
    }
}
