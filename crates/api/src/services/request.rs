//! `RequestService`: service requests (咨询, 售后申请) from receipt to resolution, each call
//! through the access table: a request is visible to its agent, supervisors, the
//! director and compliance, within clearance (R-C6, and R-P11's analogue).

use std::collections::BTreeMap;

use kefu_domain::complaint::Complaint;
use kefu_domain::customer::{Customer, CustomerForgotten};
use kefu_domain::request::*;
use kefu_domain::{
    balance, taxonomy, Aggregate, ComplaintId, Confidentiality, CustomerId, DomainError,
    RequestKind, ServiceRequest, ServiceRequestId, StaffId, StaffRole,
};
use kefu_event_store::{Condition, Direction};
use kefu_projection::queries::RequestFilter;
use kefu_projection::{Page, RequestRow};
use tonic::{Request, Response, Status};

use super::Ctx;
use crate::access::{authorize, Access, Relation, Rpc};
use crate::auth::{principal, Principal};
use crate::commands::{self, decode, stream, Fingerprint};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;
use crate::pb::request_service_server::RequestService;

#[derive(Debug, Clone)]
pub struct Requests {
    pub ctx: Ctx,
}

type Reply<T> = Result<Response<T>, Status>;

/// A request's customer as a write relies on them: their governing level, and what
/// holds it (and their not being erased) until the write commits.
pub(super) struct Holder {
    pub(super) level: Confidentiality,
    pub(super) held: Vec<Condition>,
    pub(super) forgotten: bool,
}

impl Requests {
    /// The customer of a request as access checks it (R-C6), held like a case's.
    pub(super) async fn holder(&self, customer_id: CustomerId) -> Result<Holder, ApiError> {
        let customer = self.ctx.customer_standing(customer_id).await?;
        let mut held = customer.held.clone();
        if let Some(customer_stream) = customer.held.first().and_then(Condition::stream_id) {
            held.push(Condition::LastNot {
                stream_id: customer_stream.clone(),
                event_type: CustomerForgotten::EVENT_TYPE.to_owned(),
            });
        }
        Ok(Holder { level: customer.level, held, forgotten: customer.forgotten })
    }

    /// The request's customer, from its first event (`NOT_FOUND` without one).
    pub(super) async fn customer_of(
        &self,
        request_id: ServiceRequestId,
    ) -> Result<CustomerId, ApiError> {
        let first = self
            .ctx
            .commands
            .store()
            .read_stream(&stream(request_id.stream_name())?, 1, Direction::Forward, 1)
            .await?;
        first
            .first()
            .and_then(|event| event.payload.get("customer_id")?.as_str()?.parse().ok())
            .ok_or_else(|| ApiError::NotFound { what: "request", id: request_id.to_string() })
    }

    /// Runs one command on a request once the access table passes on it as it stands:
    /// its customer's level first (above clearance is not found), then the caller's
    /// relationship (its agent), with the customer held as read until the commit.
    async fn run(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        request_id: ServiceRequestId,
        command: impl Fn(&RequestRecord) -> Result<RequestCommand, ApiError>,
    ) -> Result<commands::Written, ApiError> {
        let customer_id = self.customer_of(request_id).await?;
        let holder = self.holder(customer_id).await?;
        access.hide(holder.level, "request", &request_id)?;
        let written = self
            .ctx
            .commands
            .execute_if::<ServiceRequest>(
                &stream(request_id.stream_name())?,
                request,
                holder.held.clone(),
                |state| {
                    let Some(record) = state else {
                        return Err(ApiError::NotFound {
                            what: "request",
                            id: request_id.to_string(),
                        });
                    };
                    access.on_request(record.agent.as_ref())?;
                    // R-C8: nothing new once the customer is erased.
                    if holder.forgotten {
                        return Err(DomainError::CustomerForgotten.into());
                    }
                    command(record)
                },
            )
            .await;
        match written {
            Err(error) => Err(self.told(request.principal, request_id, error).await?),
            written => written,
        }
    }

    /// `error` as `who` may be told it: R-P4 (F5), the complaint a request became is not
    /// named to its respondent, in a refusal either.
    pub(super) async fn told(
        &self,
        who: &Principal,
        request_id: ServiceRequestId,
        error: ApiError,
    ) -> Result<ApiError, ApiError> {
        let ApiError::Domain(DomainError::RequestAlreadyEscalated { complaint: named }) = error
        else {
            return Ok(error);
        };
        let events = self
            .ctx
            .commands
            .read(&stream(request_id.stream_name())?, 1, Direction::Forward, usize::MAX)
            .await?;
        let complaint = ServiceRequest::fold(&decode::<RequestEvent>(&events)?)
            .and_then(|record| record.complaint)
            .map(|(id, _)| id.to_string())
            .unwrap_or_default();
        let against = self.names_a_case_against(who, &complaint, &mut BTreeMap::new()).await?;
        let complaint = if against { "a complaint you may not see".to_owned() } else { named };
        Ok(DomainError::RequestAlreadyEscalated { complaint }.into())
    }

    /// R-C3 with R-C6: the active agent with the fewest open requests among those
    /// cleared for `level`, as customers are balanced on registration.
    pub(super) async fn least_loaded_agent(
        &self,
        level: Confidentiality,
    ) -> Result<StaffId, ApiError> {
        let open: BTreeMap<String, i64> =
            self.ctx.models.open_requests_by_agent().await?.into_iter().collect();
        let agents: Vec<StaffId> = self
            .ctx
            .models
            .workload()
            .await?
            .into_iter()
            .filter(|load| {
                load.active && load.roles.iter().any(|role| role == StaffRole::Agent.as_str())
            })
            .filter_map(|load| StaffId::new(&load.staff_id).ok())
            .collect();
        if agents.is_empty() {
            return Err(ApiError::field("agent", "no active agent is registered to take it"));
        }
        let cleared: BTreeMap<StaffId, usize> = agents
            .into_iter()
            .filter(|agent| self.ctx.agent_clearance(agent).is_some_and(|c| level <= c))
            .map(|agent| {
                let load = open.get(agent.as_str()).copied().unwrap_or(0);
                (agent, usize::try_from(load).unwrap_or(usize::MAX))
            })
            .collect();
        balance::least_loaded(&cleared).ok_or_else(|| DomainError::AgentNotCleared.into())
    }

    async fn receive(
        &self,
        who: Principal,
        req: pb::ReceiveRequestRequest,
    ) -> Result<pb::ReceiveRequestResponse, ApiError> {
        let access = authorize(&who, Rpc::ReceiveRequest)?;
        let fingerprint = Fingerprint::of("ReceiveRequest", &req);
        let request = commands::Request::new(&who, fingerprint, &req.request_id, None)?;
        if let Some(earlier) = self.ctx.commands.earlier(&request).await? {
            return self.received_answer(earlier).await;
        }
        let now = self.ctx.commands.now();
        let mut f = Fields::new();
        let customer_id = f.customer_id("customer_id", &req.customer_id);
        let kind = f.required("kind", request_kind(req.kind));
        let channel = f.required("channel", cv::intake_channel(req.channel));
        let category = f.code("category", &req.category, taxonomy::category);
        let description = f.text("description", &req.description);
        let received_at = f.time_or_now("received_at", req.received_at.as_ref(), now);
        let agent = f.opt_staff("agent", &req.agent);
        f.finish()?;
        let customer_id = present(customer_id)?;
        let customer_stream = stream(customer_id.stream_name())?;
        let (record, _, _) = self.ctx.commands.load_unopened::<Customer>(&customer_stream).await?;
        let holder = self.holder(customer_id).await?;
        let Some(record) = record else {
            return Err(ApiError::NotFound { what: "customer", id: customer_id.to_string() });
        };
        access.hide(holder.level, "customer", &customer_id)?;
        if holder.forgotten {
            return Err(DomainError::CustomerForgotten.into());
        }
        // As for a filing: a merged duplicate takes nothing new, its survivor does.
        if record.merged_into.is_some() {
            return Err(DomainError::CustomerMerged.into());
        }
        let agent = match present(agent)? {
            Some(agent) => agent,
            None => self.least_loaded_agent(holder.level).await?,
        };
        let agent_cleared =
            self.ctx.agent_clearance(&agent).is_some_and(|clearance| holder.level <= clearance);
        let request_id = ServiceRequestId::generate();
        let command = ReceiveRequest {
            request_id,
            customer_id,
            kind: present(kind)?,
            channel: present(channel)?,
            category: present(category)?,
            description: present(description)?,
            received_at: present(received_at)?,
            policy: self.ctx.policies.current(),
            tier: record.tier,
            agent: agent.clone(),
            agent_cleared,
        };
        let written = self
            .ctx
            .assign_if::<ServiceRequest>(
                &stream(request_id.stream_name())?,
                &request,
                &agent,
                holder.held,
                |_| Ok(RequestCommand::Receive(command.clone())),
            )
            .await?;
        Ok(pb::ReceiveRequestResponse {
            result: Some(cv::write_result(request_id.to_string(), &written)),
            agent: agent.to_string(),
        })
    }

    /// A retried receipt's first answer: the request it wrote and its agent then.
    async fn received_answer(
        &self,
        earlier: commands::Written,
    ) -> Result<pb::ReceiveRequestResponse, ApiError> {
        let request_stream = stream(earlier.stream.clone())?;
        let (state, _, _) =
            self.ctx.commands.load_unopened::<ServiceRequest>(&request_stream).await?;
        let id = earlier.stream.trim_start_matches("request-").to_owned();
        Ok(pb::ReceiveRequestResponse {
            result: Some(cv::write_result(id, &earlier)),
            agent: state.and_then(|record| record.agent).map(|a| a.to_string()).unwrap_or_default(),
        })
    }

    async fn get(
        &self,
        who: Principal,
        req: pb::GetRequestRequest,
    ) -> Result<pb::ServiceRequest, ApiError> {
        let access = authorize(&who, Rpc::GetRequest)?;
        let mut f = Fields::new();
        let request_id = f.service_request_id("service_request_id", &req.service_request_id);
        f.finish()?;
        let request_id = present(request_id)?;
        let events = self
            .ctx
            .commands
            .read(&stream(request_id.stream_name())?, 1, Direction::Forward, usize::MAX)
            .await?;
        let record = ServiceRequest::fold(&decode::<RequestEvent>(&events)?)
            .ok_or_else(|| ApiError::NotFound { what: "request", id: request_id.to_string() })?;
        let holder = self.holder(record.customer_id).await?;
        access.hide(holder.level, "request", &request_id)?;
        access.on_request(record.agent.as_ref())?;
        let version = events.last().map_or(0, |event| event.stream_version);
        let called_back = self
            .ctx
            .models
            .requests(
                &RequestFilter {
                    customer_id: Some(record.customer_id.to_string()),
                    ..RequestFilter::default()
                },
                &Page { after: None, size: kefu_projection::queries::MAX_PAGE_SIZE },
            )
            .await?
            .rows
            .into_iter()
            .find(|row| row.request_id == request_id.to_string())
            .is_some_and(|row| row.called_back_at.is_some());
        let mut shown = view(&record, version, called_back);
        // R-C6, R-C8: what the event feed withholds from the caller, withheld here too.
        let handles = record.agent.as_ref().is_some_and(|agent| agent.as_str() == who.id);
        let mut reader = crate::feed::Reader::new(self.ctx.clone(), who.clone()).handling(handles);
        for event in reader.show(events).await? {
            for field in &event.redacted {
                match (event.event.event_type.as_str(), field.as_str()) {
                    ("RequestReceived", "category") => shown.category.clear(),
                    ("RequestReceived", "description") => shown.description.clear(),
                    ("RequestResolved", "summary") => shown.resolution.clear(),
                    _ => continue,
                }
                shown.redacted_fields.push(format!("{}.{field}", event.event.event_type));
            }
        }
        if self.names_a_case_against(&who, &shown.complaint_id, &mut BTreeMap::new()).await? {
            unlink(&mut shown);
            shown.redacted_fields.push("RequestEscalated.complaint_id".into());
            shown.redacted_fields.push("RequestEscalated.case_number".into());
        }
        shown.redacted_fields.sort();
        shown.redacted_fields.dedup();
        Ok(shown)
    }

    /// R-P4 (issue 22 F5): whether `complaint_id` (a request's escalation, if any) is a
    /// complaint against the reader, who must not learn of it from the request either
    /// (`GetComplaint` refuses them). `seen` keeps the answers of one call.
    async fn names_a_case_against(
        &self,
        who: &Principal,
        complaint_id: &str,
        seen: &mut BTreeMap<String, bool>,
    ) -> Result<bool, ApiError> {
        let (Ok(me), Ok(complaint)) = (who.staff_id(), complaint_id.parse::<ComplaintId>()) else {
            return Ok(false);
        };
        if let Some(against) = seen.get(complaint_id) {
            return Ok(*against);
        }
        let case_stream = stream(complaint.stream_name())?;
        let (case, _, _) = self.ctx.commands.load_unopened::<Complaint>(&case_stream).await?;
        let against = case.is_some_and(|case| case.respondent.as_ref() == Some(&me));
        seen.insert(complaint_id.to_owned(), against);
        Ok(against)
    }

    async fn list(
        &self,
        who: Principal,
        req: pb::ListRequestsRequest,
    ) -> Result<pb::ListRequestsResponse, ApiError> {
        let access = authorize(&who, Rpc::ListRequests)?;
        let mut f = Fields::new();
        let after = if req.page_token.is_empty() {
            Some(None)
        } else {
            f.service_request_id("page_token", &req.page_token).map(|id| Some(id.to_string()))
        };
        let agent = f.opt_staff("agent", &req.agent);
        let customer = f.opt_customer_id("customer_id", &req.customer_id);
        let status = match pb::RequestStatus::try_from(req.status) {
            Ok(pb::RequestStatus::Unspecified) => None,
            Ok(pb::RequestStatus::Open) => Some(RequestStatus::Open),
            Ok(pb::RequestStatus::Resolved) => Some(RequestStatus::Resolved),
            Ok(pb::RequestStatus::Escalated) => Some(RequestStatus::Escalated),
            Err(_) => {
                f.violation("status", "is not a request status");
                None
            }
        };
        let kind = if req.kind == 0 { None } else { f.required("kind", request_kind(req.kind)) };
        if req.page_size > kefu_projection::queries::MAX_PAGE_SIZE {
            f.violation("page_size", "at most 500");
        }
        f.finish()?;
        let mut agent = present(agent)?.map(|a| a.to_string());
        if access.relation() == Some(Relation::OwnRows) {
            let me = who.staff_id()?.to_string();
            if agent.as_ref().is_some_and(|a| a != &me) {
                return Err(ApiError::forbidden("agents may list only their own requests"));
            }
            agent = Some(me);
        }
        self.ctx.caught_up_in(req.min_position, "requests").await?;
        let filter = RequestFilter {
            status: status.map(|s| s.as_str().to_owned()),
            kind: kind.map(|k| k.as_str().to_owned()),
            agent,
            customer_id: present(customer)?.map(|id| id.to_string()),
            max_confidentiality_rank: Some(kefu_projection::confidentiality_rank(
                access.max_level(),
            )),
        };
        let page = Page { after: present(after)?, size: req.page_size };
        let paged = self.ctx.models.requests(&filter, &page).await?;
        let mut requests = Vec::with_capacity(paged.rows.len());
        // R-C6 at once: a row whose customer was raised above the caller since the read
        // model's query is left out (the feed's reader reads the customer's stream).
        let mut reader = (access.max_level() < Confidentiality::Secret)
            .then(|| crate::feed::Reader::new(self.ctx.clone(), who.clone()));
        let mut seen = BTreeMap::new();
        for row in &paged.rows {
            if let (Some(reader), Ok(customer)) = (reader.as_mut(), row.customer_id.parse()) {
                if !reader.cleared_for(customer).await? {
                    continue;
                }
            }
            let mut shown = listed(row);
            if self.names_a_case_against(&who, &shown.complaint_id, &mut seen).await? {
                unlink(&mut shown);
            }
            requests.push(shown);
        }
        Ok(pb::ListRequestsResponse { requests, next_page_token: paged.next.unwrap_or_default() })
    }
}

/// The acting staff member, stepping in when the table lets them act by overseeing.
fn actor(me: &StaffId, access: &Access) -> RequestActor {
    RequestActor { staff: me.clone(), stepping_in: access.oversees() }
}

fn request_kind(value: i32) -> Option<RequestKind> {
    match pb::RequestKind::try_from(value).ok()? {
        pb::RequestKind::Inquiry => Some(RequestKind::Inquiry),
        pb::RequestKind::AfterSale => Some(RequestKind::AfterSale),
        pb::RequestKind::Unspecified => None,
    }
}

fn kind_out(kind: RequestKind) -> i32 {
    match kind {
        RequestKind::Inquiry => pb::RequestKind::Inquiry as i32,
        RequestKind::AfterSale => pb::RequestKind::AfterSale as i32,
    }
}

fn status_out(status: RequestStatus) -> i32 {
    match status {
        RequestStatus::Open => pb::RequestStatus::Open as i32,
        RequestStatus::Resolved => pb::RequestStatus::Resolved as i32,
        RequestStatus::Escalated => pb::RequestStatus::Escalated as i32,
    }
}

fn view(record: &RequestRecord, version: u64, called_back: bool) -> pb::ServiceRequest {
    let (complaint_id, case_number) = record
        .complaint
        .map(|(id, number)| (id.to_string(), number.to_string()))
        .unwrap_or_default();
    pb::ServiceRequest {
        service_request_id: record.id.to_string(),
        customer_id: record.customer_id.to_string(),
        kind: kind_out(record.kind),
        channel: cv::intake_channel_out(record.channel),
        category: taxonomy::category_label(record.category.as_str()).to_owned(),
        description: record.description.as_str().to_owned(),
        status: status_out(record.status),
        agent: record.agent.as_ref().map(ToString::to_string).unwrap_or_default(),
        received_at: Some(cv::timestamp(record.received_at)),
        recorded_at: Some(cv::timestamp(record.recorded_at)),
        policy_version: record.terms.policy_version,
        first_response_due_at: Some(cv::timestamp(record.terms.first_response_due_at)),
        first_response_at: cv::opt_timestamp(record.first_response_at),
        resolved_at: cv::opt_timestamp(record.resolved_at),
        resolution: record.resolution.as_ref().map(|t| t.as_str().to_owned()).unwrap_or_default(),
        first_contact: record.resolved_at.is_some() && record.responses == 0,
        callback_due_at: cv::opt_timestamp(record.callback_due_at),
        called_back,
        complaint_id,
        case_number,
        version,
        redacted_fields: Vec::new(),
    }
}

/// A request as read by the respondent of the complaint it became: escalated, to nothing
/// they may be told of (R-P4).
fn unlink(shown: &mut pb::ServiceRequest) {
    shown.complaint_id.clear();
    shown.case_number.clear();
}

fn listed(row: &RequestRow) -> pb::ServiceRequest {
    pb::ServiceRequest {
        service_request_id: row.request_id.clone(),
        customer_id: row.customer_id.clone(),
        kind: cv::word_to(&row.kind, kind_out),
        channel: cv::word_to(&row.channel, cv::intake_channel_out),
        category: row.category.clone(),
        description: String::new(),
        status: match row.status.as_str() {
            "open" => pb::RequestStatus::Open as i32,
            "resolved" => pb::RequestStatus::Resolved as i32,
            "escalated" => pb::RequestStatus::Escalated as i32,
            _ => pb::RequestStatus::Unspecified as i32,
        },
        agent: row.agent.clone().unwrap_or_default(),
        received_at: Some(cv::timestamp(row.received_at)),
        recorded_at: Some(cv::timestamp(row.recorded_at)),
        policy_version: u64::try_from(row.policy_version).unwrap_or(0),
        first_response_due_at: Some(cv::timestamp(row.first_response_due_at)),
        first_response_at: cv::opt_timestamp(row.first_response_at),
        resolved_at: cv::opt_timestamp(row.resolved_at),
        resolution: String::new(),
        first_contact: row.first_contact,
        callback_due_at: cv::opt_timestamp(row.callback_due_at),
        called_back: row.called_back_at.is_some(),
        complaint_id: row.complaint_id.clone().unwrap_or_default(),
        case_number: row.case_number.clone().unwrap_or_default(),
        version: 0,
        redacted_fields: Vec::new(),
    }
}

#[tonic::async_trait]
impl RequestService for Requests {
    async fn receive_request(
        &self,
        request: Request<pb::ReceiveRequestRequest>,
    ) -> Reply<pb::ReceiveRequestResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.receive(who, request.into_inner()).await?))
    }

    async fn assign_request(
        &self,
        request: Request<pb::AssignRequestRequest>,
    ) -> Reply<pb::AssignRequestResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::AssignRequest)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let request_id = f.service_request_id("service_request_id", &req.service_request_id);
        let agent = f.staff("agent", &req.agent);
        let reason = f.opt_text("reason", &req.reason);
        f.finish()?;
        let (request_id, agent, reason) = (present(request_id)?, present(agent)?, present(reason)?);
        let fingerprint = Fingerprint::of("AssignRequest", &req);
        let call =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let customer_id = self.customer_of(request_id).await?;
        let holder = self.holder(customer_id).await?;
        access.hide(holder.level, "request", &request_id)?;
        let agent_cleared =
            self.ctx.agent_clearance(&agent).is_some_and(|clearance| holder.level <= clearance);
        let written = self
            .ctx
            .assign_if::<ServiceRequest>(
                &stream(request_id.stream_name())?,
                &call,
                &agent,
                holder.held.clone(),
                |state| {
                    if state.is_none() {
                        return Err(ApiError::NotFound {
                            what: "request",
                            id: request_id.to_string(),
                        });
                    }
                    if holder.forgotten {
                        return Err(DomainError::CustomerForgotten.into());
                    }
                    Ok(RequestCommand::Assign(AssignRequest {
                        agent: agent.clone(),
                        reason: reason.clone(),
                        agent_cleared,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::AssignRequestResponse {
            result: Some(cv::write_result(request_id.to_string(), &written)),
        }))
    }

    async fn respond_to_request(
        &self,
        request: Request<pb::RespondToRequestRequest>,
    ) -> Reply<pb::RespondToRequestResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::RespondToRequest)?;
        let req = request.into_inner();
        let me = who.staff_id()?;
        let now = self.ctx.commands.now();
        let mut f = Fields::new();
        let request_id = f.service_request_id("service_request_id", &req.service_request_id);
        let channel = f.required("channel", cv::contact_channel(req.channel));
        let summary = f.text("summary", &req.summary);
        let responded_at = f.time_or_now("responded_at", req.responded_at.as_ref(), now);
        f.finish()?;
        let request_id = present(request_id)?;
        let command = RespondToRequest {
            by: actor(&me, &access),
            channel: present(channel)?,
            summary: present(summary)?,
            responded_at: present(responded_at)?,
        };
        let fingerprint = Fingerprint::of("RespondToRequest", &req);
        let call =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let written = self
            .run(&access, &call, request_id, |_| Ok(RequestCommand::Respond(command.clone())))
            .await?;
        Ok(Response::new(pb::RespondToRequestResponse {
            result: Some(cv::write_result(request_id.to_string(), &written)),
        }))
    }

    async fn resolve_request(
        &self,
        request: Request<pb::ResolveRequestRequest>,
    ) -> Reply<pb::ResolveRequestResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::ResolveRequest)?;
        let req = request.into_inner();
        let me = who.staff_id()?;
        let mut f = Fields::new();
        let request_id = f.service_request_id("service_request_id", &req.service_request_id);
        let summary = f.text("summary", &req.summary);
        f.finish()?;
        let (request_id, summary) = (present(request_id)?, present(summary)?);
        // R-T3: the request's own policy sets its callback deadline; a version another
        // node recorded since this process read the stream is read now.
        self.ctx.policies.refresh(&self.ctx.commands).await?;
        let policies = self.ctx.policies.clone();
        let fingerprint = Fingerprint::of("ResolveRequest", &req);
        let call =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let written = self
            .run(&access, &call, request_id, |record| {
                let version = record.terms.policy_version;
                let policy =
                    policies.known(version).ok_or(DomainError::PolicyVersionUnknown { version })?;
                Ok(RequestCommand::Resolve(ResolveRequest {
                    by: actor(&me, &access),
                    summary: summary.clone(),
                    policy,
                }))
            })
            .await?;
        let (state, _, _) = self
            .ctx
            .commands
            .load_unopened::<ServiceRequest>(&stream(request_id.stream_name())?)
            .await?;
        Ok(Response::new(pb::ResolveRequestResponse {
            result: Some(cv::write_result(request_id.to_string(), &written)),
            callback_due_at: cv::opt_timestamp(state.and_then(|record| record.callback_due_at)),
        }))
    }

    async fn escalate_to_complaint(
        &self,
        request: Request<pb::EscalateToComplaintRequest>,
    ) -> Reply<pb::EscalateToComplaintResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        match self.escalate(who.clone(), req.clone()).await {
            Ok(answer) => Ok(Response::new(answer)),
            Err(error) => match req.service_request_id.parse::<ServiceRequestId>() {
                Ok(id) => Err(self.told(&who, id, error).await?.into()),
                Err(_) => Err(error.into()),
            },
        }
    }

    async fn get_request(
        &self,
        request: Request<pb::GetRequestRequest>,
    ) -> Reply<pb::GetRequestResponse> {
        let who = principal(&request)?;
        let shown = self.get(who, request.into_inner()).await?;
        Ok(Response::new(pb::GetRequestResponse { request: Some(shown) }))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Reply<pb::ListRequestsResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.list(who, request.into_inner()).await?))
    }
}
