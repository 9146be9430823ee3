//! `ReportingService`: the R-R1..R-R4 reports over the read models, read-your-writes,
//! through the access table: analysts get aggregates only, names only within clearance;
//! answered by the read replica when one is configured (`ApiConfig::read_replica`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use kefu_domain::CustomerId;
use kefu_projection::queries::{
    self, is_month, GroupBy, QualityDimension, QualityFilter, SatisfactionFilter,
};
use tonic::{Request, Response, Status};

use super::Ctx;
use crate::access::{authorize, Access, Rpc};
use crate::auth::{principal, Principal};
use crate::convert::{self as cv, Fields};
use crate::error::ApiError;
use crate::feed::Reader;
use crate::pb;
use crate::pb::reporting_service_server::ReportingService;
use crate::withheld::customer::record_withheld;
use kefu_projection::projections::quality;
use kefu_projection::projections::report_aggregates::NONE;

#[derive(Debug, Clone)]
pub struct Reports {
    pub ctx: Ctx,
}

type Reply<T> = Result<Response<T>, Status>;

/// How far before the server's clock a satisfaction report's `as_of` may be: a caller's
/// clock and the call's transit, not a look into the past.
const COVERAGE_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(1);

impl Reports {
    /// Checks the access table, waits for `min_position` and resolves `as_of`.
    async fn prepare(
        &self,
        who: &Principal,
        rpc: Rpc,
        min_position: u64,
        as_of: Option<&prost_types::Timestamp>,
    ) -> Result<(Access, DateTime<Utc>), ApiError> {
        let access = authorize(who, rpc)?;
        let mut f = Fields::new();
        let as_of = f.as_of("as_of", as_of, self.ctx.commands.now());
        f.finish()?;
        self.ctx.within_head(min_position).await?;
        self.ctx.reports.wait_for(min_position, self.ctx.read_wait).await?;
        Ok((access, cv::present(as_of)?))
    }
}

fn load_out(load: queries::HandlerLoad) -> pb::HandlerLoad {
    pb::HandlerLoad {
        staff_id: load.staff_id,
        active: load.active,
        open_cases: load.open_cases,
        open_major_cases: load.open_major_cases,
        customers: load.customers,
    }
}

/// The filter and grouping of a quality request, every field checked.
fn quality_request(
    req: &pb::GetQualityMetricsRequest,
) -> Result<(QualityFilter, Vec<QualityDimension>), ApiError> {
    let mut f = Fields::new();
    let mut group_by = Vec::with_capacity(req.group_by.len());
    for dimension in &req.group_by {
        match pb::QualityDimension::try_from(*dimension) {
            Ok(pb::QualityDimension::Month) => group_by.push(QualityDimension::Month),
            Ok(pb::QualityDimension::Kind) => group_by.push(QualityDimension::Kind),
            Ok(pb::QualityDimension::Channel) => group_by.push(QualityDimension::Channel),
            Ok(pb::QualityDimension::Handler) => group_by.push(QualityDimension::Handler),
            Ok(pb::QualityDimension::Unspecified) | Err(_) => {
                f.violation("group_by", "is not a dimension (month, kind, channel, handler)");
            }
        }
    }
    check_months(&mut f, &req.from_month, &req.to_month);
    let kinds = [quality::COMPLAINT, quality::REQUEST];
    if !req.kind.is_empty() && !kinds.contains(&req.kind.as_str()) {
        f.violation("kind", "must be complaint or request");
    }
    if !req.channel.is_empty() && req.channel.parse::<kefu_domain::IntakeChannel>().is_err() {
        f.violation("channel", "is not an intake channel");
    }
    let handler = match req.handler.as_str() {
        "" => None,
        NONE => Some(NONE.to_owned()),
        handler => match kefu_domain::StaffId::new(handler) {
            Ok(staff) => Some(staff.as_str().to_owned()),
            Err(_) => {
                f.violation("handler", "must be a staff id or none");
                None
            }
        },
    };
    f.finish()?;
    let given = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let filter = QualityFilter {
        from_month: given(&req.from_month),
        to_month: given(&req.to_month),
        kind: given(&req.kind),
        channel: given(&req.channel),
        handler,
    };
    Ok((filter, group_by))
}

fn quality_out(row: queries::QualityRow) -> pb::QualityGroup {
    pb::QualityGroup {
        month: row.month.unwrap_or_default(),
        kind: row.kind.unwrap_or_default(),
        channel: row.channel.unwrap_or_default(),
        handler: row.handler.unwrap_or_default(),
        cases: row.cases,
        responded: row.responded,
        responded_in_time: row.responded_in_time,
        closed: row.closed,
        resolved_first_contact: row.resolved_first_contact,
        first_contact_resolution_rate: row.first_contact_resolution_rate,
        reopened: row.reopened,
        reopens: row.reopens,
        closes: row.closes,
        reopen_rate: row.reopen_rate,
        first_response_median_seconds: row.first_response_median_s,
        first_response_p90_seconds: row.first_response_p90_s,
        resolution_median_seconds: row.resolution_median_s,
        resolution_p90_seconds: row.resolution_p90_s,
    }
}

fn counts(values: Vec<queries::Count>) -> Vec<pb::LabelCount> {
    values.into_iter().map(|(label, count)| pb::LabelCount { label, count }).collect()
}

#[tonic::async_trait]
impl ReportingService for Reports {
    async fn get_dashboard(
        &self,
        request: Request<pb::GetDashboardRequest>,
    ) -> Reply<pb::GetDashboardResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        let (access, as_of) =
            self.prepare(&who, Rpc::GetDashboard, req.min_position, req.as_of.as_ref()).await?;
        let dashboard =
            self.ctx.reports.dashboard(as_of, &self.ctx.policy()).await.map_err(ApiError::from)?;
        let withheld = access.withholds_per_staff();
        let workload = if withheld { Vec::new() } else { dashboard.workload };
        Ok(Response::new(pb::GetDashboardResponse {
            open_by_stage: dashboard
                .open_by_stage
                .into_iter()
                .map(|(stage, severity, count)| pb::StageCount { stage, severity, count })
                .collect(),
            ageing: dashboard
                .ageing
                .into_iter()
                .map(|(label, count)| pb::LabelCount { label: label.to_owned(), count })
                .collect(),
            workload: workload.into_iter().map(load_out).collect(),
            workload_withheld: withheld,
            breaches: Some(pb::SlaBreachCounts {
                first_response: dashboard.breaches.first_response,
                callback_overdue: dashboard.breaches.callback_overdue,
                new_customer_not_contacted: dashboard.breaches.new_customer_not_contacted,
                resolution_overdue: dashboard.breaches.resolution_overdue,
                request_first_response: dashboard.breaches.request_first_response,
                request_callback_overdue: dashboard.breaches.request_callback_overdue,
            }),
        }))
    }

    async fn get_satisfaction_metrics(
        &self,
        request: Request<pb::GetSatisfactionMetricsRequest>,
    ) -> Reply<pb::GetSatisfactionMetricsResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let group_by = match pb::SatisfactionGrouping::try_from(req.group_by) {
            Ok(pb::SatisfactionGrouping::Unspecified | pb::SatisfactionGrouping::Total) => {
                Some(GroupBy::Total)
            }
            Ok(pb::SatisfactionGrouping::Handler) => Some(GroupBy::Handler),
            Ok(pb::SatisfactionGrouping::Channel) => Some(GroupBy::Channel),
            Ok(pb::SatisfactionGrouping::Category) => Some(GroupBy::Category),
            Ok(pb::SatisfactionGrouping::Month) => Some(GroupBy::Month),
            Err(_) => {
                f.violation("group_by", "is not a grouping");
                None
            }
        };
        check_months(&mut f, &req.from_month, &req.to_month);
        if !req.kind.is_empty() && req.kind.parse::<kefu_domain::CallbackKind>().is_err() {
            f.violation("kind", "is not a callback kind");
        }
        f.finish()?;
        let (access, as_of) = self
            .prepare(&who, Rpc::GetSatisfactionMetrics, req.min_position, req.as_of.as_ref())
            .await?;
        // Coverage (R-C5) is kept for the present: the read model holds each customer's
        // last callback and grade now, so a coverage at an earlier instant cannot be
        // exact (sixth attack, F8). Now and ahead are exact; a caller's clock may lag.
        if as_of < kefu_domain::time::earlier(self.ctx.commands.now(), COVERAGE_CLOCK_SKEW) {
            return Err(ApiError::field(
                "as_of",
                "coverage is answered for now or later only: the read models keep each \
                 customer's last callback, not their history",
            )
            .into());
        }
        let filter = SatisfactionFilter {
            from_month: (!req.from_month.is_empty()).then(|| req.from_month.clone()),
            to_month: (!req.to_month.is_empty()).then(|| req.to_month.clone()),
            kind: (!req.kind.is_empty()).then(|| req.kind.clone()),
        };
        let group_by = group_by.unwrap_or(GroupBy::Total);
        let withheld = group_by == GroupBy::Handler && access.withholds_per_staff();
        let groups = if withheld {
            Vec::new()
        } else {
            self.ctx.reports.satisfaction(&filter, group_by).await.map_err(ApiError::from)?
        };
        let coverage = self
            .ctx
            .models
            .callback_coverage(as_of, &self.ctx.policy())
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GetSatisfactionMetricsResponse {
            groups: groups
                .into_iter()
                .map(|g| pb::SatisfactionGroup {
                    key: g.key,
                    responses: g.responses,
                    satisfied: g.satisfied,
                    neutral: g.neutral,
                    dissatisfied: g.dissatisfied,
                    scored: g.scored,
                    satisfaction_rate: g.satisfaction_rate,
                    dissatisfaction_rate: g.dissatisfaction_rate,
                    average_score: g.average_score,
                })
                .collect(),
            coverage: coverage
                .into_iter()
                .map(|c| pb::CoverageGroup {
                    group: c.group.to_owned(),
                    customers: c.customers,
                    covered: c.covered,
                    rate: c.rate,
                    target: c.target,
                })
                .collect(),
            handler_groups_withheld: withheld,
        }))
    }

    async fn get_monthly_summary(
        &self,
        request: Request<pb::GetMonthlySummaryRequest>,
    ) -> Reply<pb::GetMonthlySummaryResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        if !is_month(&req.month) {
            return Err(ApiError::field("month", "must be YYYY-MM").into());
        }
        self.prepare(&who, Rpc::GetMonthlySummary, req.min_position, None).await?;
        let summary = self.ctx.reports.monthly_summary(&req.month).await.map_err(ApiError::from)?;
        Ok(Response::new(pb::GetMonthlySummaryResponse {
            month: summary.month,
            complaints: summary.complaints,
            by_category: counts(summary.by_category),
            by_cause: counts(summary.by_cause),
            by_channel: counts(summary.by_channel),
            by_severity: counts(summary.by_severity),
            first_response_median_seconds: summary.first_response_median_s,
            first_response_p90_seconds: summary.first_response_p90_s,
            close_median_seconds: summary.close_median_s,
            close_p90_seconds: summary.close_p90_s,
            reopened: summary.reopened,
            reopened_share: summary.reopened_share,
        }))
    }

    async fn list_sla_breaches(
        &self,
        request: Request<pb::ListSlaBreachesRequest>,
    ) -> Reply<pb::ListSlaBreachesResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        let (access, as_of) =
            self.prepare(&who, Rpc::ListSlaBreaches, req.min_position, req.as_of.as_ref()).await?;
        let items = self.ctx.sla_items(as_of, req.include_at_risk, &access).await?;
        let breaches = items.into_iter().map(|(item, _)| item).collect();
        Ok(Response::new(pb::ListSlaBreachesResponse { breaches }))
    }

    type WatchSlaStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::WatchSlaResponse, Status>> + Send>,
    >;

    async fn watch_sla(
        &self,
        request: Request<pb::WatchSlaRequest>,
    ) -> Reply<Self::WatchSlaStream> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::WatchSla)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let resume_after = req
            .resume_after
            .as_ref()
            .map(|at| f.as_of("resume_after", Some(at), self.ctx.commands.now()));
        f.finish()?;
        let resume_after = resume_after.map(cv::present).transpose()?;
        self.ctx.within_head(req.min_position).await?;
        self.ctx
            .reports
            .wait_for(req.min_position, self.ctx.read_wait)
            .await
            .map_err(ApiError::from)?;
        let resume =
            resume_after.map(|after| super::watch::Resume { after, position: req.resume_position });
        let stream = super::watch::watch(self.ctx.clone(), resume, access);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_handler_workload(
        &self,
        request: Request<pb::GetHandlerWorkloadRequest>,
    ) -> Reply<pb::GetHandlerWorkloadResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        self.prepare(&who, Rpc::GetHandlerWorkload, req.min_position, None).await?;
        let workload = self.ctx.reports.workload().await.map_err(ApiError::from)?;
        Ok(Response::new(pb::GetHandlerWorkloadResponse {
            workload: workload.into_iter().map(load_out).collect(),
        }))
    }

    async fn get_quality_metrics(
        &self,
        request: Request<pb::GetQualityMetricsRequest>,
    ) -> Reply<pb::GetQualityMetricsResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        let (filter, group_by) = quality_request(&req)?;
        let (access, _) =
            self.prepare(&who, Rpc::GetQualityMetrics, req.min_position, None).await?;
        let per_staff = group_by.contains(&QualityDimension::Handler)
            || filter.handler.as_deref().is_some_and(|handler| handler != NONE);
        let withheld = per_staff && access.withholds_per_staff();
        let groups = if withheld {
            Vec::new()
        } else {
            self.ctx.reports.quality(&filter, &group_by).await.map_err(ApiError::from)?
        };
        Ok(Response::new(pb::GetQualityMetricsResponse {
            groups: groups.into_iter().map(quality_out).collect(),
            handler_groups_withheld: withheld,
        }))
    }

    async fn get_referral_report(
        &self,
        request: Request<pb::GetReferralReportRequest>,
    ) -> Reply<pb::GetReferralReportResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        let (access, _) =
            self.prepare(&who, Rpc::GetReferralReport, req.min_position, None).await?;
        // R-C6: only referrers within the caller's clearance are rows; a forgotten one
        // (no level any more) is a row without a name.
        let cleared = kefu_projection::confidentiality_rank(access.max_level());
        let after = (!req.page_token.is_empty()).then_some(req.page_token);
        let page = queries::Page { after, size: req.page_size };
        let referrals =
            self.ctx.reports.referral_report(&page, cleared).await.map_err(ApiError::from)?;
        // A name the referrer's record holds from a time the caller was not cleared for
        // is withheld as on GetCustomer (the feed's one decision).
        let mut reader = Reader::new(self.ctx.clone(), who.clone());
        let mut withheld_names = HashSet::new();
        for row in referrals.rows.iter().filter(|row| row.referrer_rank.is_some()) {
            let Ok(id) = row.referrer_id.parse::<CustomerId>() else { continue };
            let record = record_withheld(&self.ctx, &mut reader, access.max_level(), id).await?;
            if record.holds("name") {
                withheld_names.insert(row.referrer_id.clone());
            }
        }
        Ok(Response::new(pb::GetReferralReportResponse {
            referrals: referrals
                .rows
                .into_iter()
                .map(|r| {
                    let shown =
                        r.referrer_rank.is_some() && !withheld_names.contains(&r.referrer_id);
                    pb::Referral {
                        referrer_id: r.referrer_id,
                        referrer_name: if shown {
                            r.referrer_name.unwrap_or_default()
                        } else {
                            String::new()
                        },
                        referrer_name_redacted: !shown,
                        referred: r.referred,
                        still_customers: r.still_customers,
                        contacted: r.contacted,
                    }
                })
                .collect(),
            next_page_token: referrals.next.unwrap_or_default(),
        }))
    }
}

/// A report's month range: each bound `YYYY-MM` or empty (open), and not reversed (an
/// empty answer to a reversed range would read as "nothing happened").
fn check_months(f: &mut Fields, from: &str, to: &str) {
    for (field, month) in [("from_month", from), ("to_month", to)] {
        if !month.is_empty() && !is_month(month) {
            f.violation(field, "must be YYYY-MM");
        }
    }
    if is_month(from) && is_month(to) && from > to {
        f.violation("to_month", "is before from_month");
    }
}
