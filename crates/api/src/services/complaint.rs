//! `ComplaintService`: the complaint lifecycle (R-P1..R-P14), each call through the
//! access table: who acts on a case (R-P4, R-P5), who reads it (R-P11, R-C6).

use kefu_domain::complaint::*;
use kefu_domain::staff::Staff;
use kefu_domain::taxonomy;
use kefu_domain::Aggregate;
use kefu_domain::{Confidentiality, DomainError, SignerCapacity, StaffId, StaffRole};
use kefu_event_store::Direction;
use kefu_projection::queries::ComplaintFilter;
use kefu_projection::{ComplaintRow, Page};
use tonic::{Request, Response, Status};

use super::Ctx;
use crate::access::{
    assignee_cleared, authorize, duty_clearance, Access, CaseCustomer, Duty, Relation, Rpc,
};
use crate::auth::{principal, Principal};
use crate::commands::{self, decode, stream, Fingerprint};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::feed::Reader;
use crate::pb;
use crate::pb::complaint_service_server::ComplaintService;
use crate::withheld::list_rows;

#[derive(Debug, Clone)]
pub struct Complaints {
    pub ctx: Ctx,
}

type Reply<T> = Result<Response<T>, Status>;

impl Complaints {
    /// Runs one handling command on a case, as the caller, once the access table's
    /// check of the case as it stands passes (`access`: R-P4, R-P5).
    // Every handling RPC has exactly these parts; a struct for them would only be unpacked here.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run(
        &self,
        who: &Principal,
        access: &Access,
        fingerprint: Fingerprint,
        request_id: &str,
        expected_version: Option<u64>,
        complaint_id: &str,
        fields: Fields,
        capacity: Option<SignerCapacity>,
        command: impl Fn(&Option<Case>, &CaseCustomer) -> Result<ComplaintCommand, ApiError>,
    ) -> Result<pb::WriteResult, ApiError> {
        let mut fields = fields;
        let complaint_id = fields.complaint_id("complaint_id", complaint_id);
        fields.finish()?;
        let complaint_id = present(complaint_id)?;
        let mut request = commands::Request::new(who, fingerprint, request_id, expected_version)?;
        request.capacity = capacity.map(|capacity| capacity.to_string());
        // A committee's members are checked against the customer's level (R-C6).
        let hold = capacity == Some(SignerCapacity::Committee);
        let written =
            self.ctx.execute_on_case(access, &request, complaint_id, hold, command).await?;
        Ok(cv::write_result(complaint_id.to_string(), &written))
    }

    async fn get(
        &self,
        who: Principal,
        req: pb::GetComplaintRequest,
    ) -> Result<pb::Complaint, ApiError> {
        let access = authorize(&who, Rpc::GetComplaint)?;
        let complaint_id = self.ctx.resolve_complaint(&req.complaint).await?;
        let case_stream = stream(complaint_id.stream_name())?;
        let events =
            self.ctx.commands.read(&case_stream, 1, Direction::Forward, usize::MAX).await?;
        let case = Complaint::fold(&decode::<ComplaintEvent>(&events)?).ok_or_else(|| {
            ApiError::NotFound { what: "complaint", id: complaint_id.to_string() }
        })?;
        let version = events.last().map_or(0, |event| event.stream_version);
        let standing = self.ctx.customer_standing(case.customer_id).await?;
        access.on_case(&case, &standing).map_err(|error| error.naming(&req.complaint))?;
        // R-C6, R-P4, R-P11: what the feed withholds of the case's events from this caller.
        let handles = case.handler.as_ref().is_some_and(|handler| handler.as_str() == who.id);
        let withheld = crate::withheld::withheld(&self.ctx, &who, handles, &events).await?;
        let mut shown = view(&case, version);
        withheld.view(&mut shown);
        Ok(shown)
    }

    async fn list(
        &self,
        who: Principal,
        req: pb::ListComplaintsRequest,
    ) -> Result<pb::ListComplaintsResponse, ApiError> {
        let access = authorize(&who, Rpc::ListComplaints)?;
        let mut f = Fields::new();
        let after = if req.page_token.is_empty() {
            Some(None)
        } else {
            Some(f.complaint_id("page_token", &req.page_token).map(|id| id.to_string()))
        };
        let handler = f.opt_staff("handler", &req.handler);
        let customer = f.opt_customer_id("customer_id", &req.customer_id);
        let status = match pb::ComplaintStatus::try_from(req.status) {
            Ok(pb::ComplaintStatus::Unspecified) => None,
            Ok(pb::ComplaintStatus::Open) => Some("open"),
            Ok(pb::ComplaintStatus::Closed) => Some("closed"),
            Ok(pb::ComplaintStatus::Archived) => Some("archived"),
            Err(_) => {
                f.violation("status", "is not a complaint status");
                None
            }
        };
        let severity = if req.severity == 0 {
            None
        } else {
            f.required("severity", cv::severity(req.severity))
        };
        f.finish()?;
        let mut handler = present(handler)?.map(|h| h.to_string());
        if access.relation() == Some(Relation::OwnRows) {
            // R-P11: a handler lists only their own cases.
            let me = who.staff_id()?.to_string();
            if handler.as_ref().is_some_and(|h| h != &me) {
                return Err(ApiError::forbidden("handlers may list only their own cases (R-P11)"));
            }
            handler = Some(me);
        }
        self.ctx.caught_up_in(req.min_position, "complaints").await?;
        let filter = ComplaintFilter {
            status: status.map(str::to_owned),
            stage: None,
            severity: severity.map(|s| s.to_string()),
            handler,
            customer_id: present(customer)?.map(|id| id.to_string()),
            category: (!req.category.trim().is_empty()).then(|| req.category.trim().to_owned()),
            year: (req.year != 0).then_some(i64::from(req.year)),
            max_confidentiality_rank: Some(kefu_projection::confidentiality_rank(
                access.max_level(),
            )),
            // R-P4: a list is a read path too; nobody lists the cases against themself.
            not_respondent: Some(who.id.clone()),
        };
        let page = Page { after: present(after)?, size: req.page_size };
        let paged = self.ctx.models.complaints(&filter, &page).await?;
        let mut complaints: Vec<pb::Complaint> = paged.rows.into_iter().map(listed).collect();
        // R-C6: a row shows what its filing recorded, withheld as the feed withholds it
        // (the query filters by the customer's level in the read model; the feed's reader
        // also sees a raise the read model has not reached). Nothing is read above the
        // highest level.
        if access.max_level() < Confidentiality::Secret {
            let mut reader = Reader::new(self.ctx.clone(), who.clone());
            let by_category = filter.category.is_some();
            complaints =
                list_rows(&self.ctx, &mut reader, &who.id, complaints, by_category).await?;
        }
        Ok(pb::ListComplaintsResponse {
            complaints,
            next_page_token: paged.next.unwrap_or_default(),
        })
    }
}

/// The acting staff member, stepping in when the table lets them act by overseeing (R-P4).
fn actor(me: &StaffId, access: &Access) -> Actor {
    Actor { staff: me.clone(), stepping_in: access.oversees() }
}

impl Complaints {
    /// R-P5: where each member named at a committee meeting stands on the staff, from
    /// their own streams (the list is bounded by the request's validation), and their
    /// clearance (their tokens' highest), for R-C6 once the case's customer is read.
    async fn committee_standing(
        &self,
        members: &[StaffId],
    ) -> Result<Vec<(StaffId, MemberStanding, Option<Confidentiality>)>, ApiError> {
        let mut standing = Vec::with_capacity(members.len());
        for member in members {
            let (found, _, _) =
                self.ctx.commands.load::<Staff>(&stream(member.stream_name())?).await?;
            let of = match found {
                Some(found) if found.is_active() => {
                    if found.roles.contains(&StaffRole::Committee) {
                        MemberStanding::Member
                    } else {
                        MemberStanding::NotOnCommittee
                    }
                }
                Some(_) | None => MemberStanding::NotOnStaff,
            };
            standing.push((
                member.clone(),
                of,
                duty_clearance(&self.ctx.tokens, member.as_str(), Duty::SitOnCommittee),
            ));
        }
        Ok(standing)
    }
}

fn status_out(status: CaseStatus) -> i32 {
    match status {
        CaseStatus::Open => pb::ComplaintStatus::Open as i32,
        CaseStatus::Closed => pb::ComplaintStatus::Closed as i32,
        CaseStatus::Archived => pb::ComplaintStatus::Archived as i32,
    }
}

pub(crate) fn view(case: &Case, version: u64) -> pb::Complaint {
    pb::Complaint {
        complaint_id: case.id.to_string(),
        case_number: case.case_number.to_string(),
        customer_id: case.customer_id.to_string(),
        category: taxonomy::category_label(case.category.as_str()).to_owned(),
        cause: taxonomy::cause_label(case.cause.as_str()).to_owned(),
        severity: cv::severity_out(case.severity),
        channel: cv::intake_channel_out(case.channel),
        description: case.description.to_string(),
        respondent: case.respondent.as_ref().map(ToString::to_string).unwrap_or_default(),
        status: status_out(case.status),
        stage: case.stage().to_owned(),
        handler: case.handler.as_ref().map(ToString::to_string).unwrap_or_default(),
        escalated_to: case.escalated_to.map_or(0, cv::signer_capacity_out),
        signer: case.round.signature.as_ref().map(|s| s.signer.to_string()).unwrap_or_default(),
        signer_capacity: case
            .round
            .signature
            .as_ref()
            .map_or(0, |s| cv::signer_capacity_out(s.capacity)),
        received_at: Some(cv::timestamp(case.received_at)),
        filed_at: Some(cv::timestamp(case.filed_at)),
        first_response_at: cv::opt_timestamp(case.first_response_at),
        first_response_due_at: Some(cv::timestamp(case.first_response_due())),
        closed_at: cv::opt_timestamp(case.closed_at),
        reopen_count: case.reopen_count,
        recused: case.recused.iter().map(ToString::to_string).collect(),
        version,
        archived_at: cv::opt_timestamp(case.archived_at),
        meeting: case
            .round
            .signature
            .as_ref()
            .and_then(|s| s.meeting.as_ref())
            .map(cv::meeting_out),
        policy_version: case.terms.policy_version,
        resolution_due_at: Some(cv::timestamp(case.terms.resolution_due_at)),
        callback_due_at: cv::opt_timestamp(case.callback_due()),
        redacted_fields: Vec::new(),
        materials: super::materials::materials_out(case),
        implementations: super::materials::implementations_out(case),
        remedy_promised: case.round.signature.as_ref().is_some_and(|s| s.remedy_promised),
        from_request: case.from_request.map(|id| id.to_string()).unwrap_or_default(),
    }
}

fn listed(row: ComplaintRow) -> pb::Complaint {
    let status = match row.status.as_str() {
        "open" => pb::ComplaintStatus::Open,
        "closed" => pb::ComplaintStatus::Closed,
        "archived" => pb::ComplaintStatus::Archived,
        _ => pb::ComplaintStatus::Unspecified,
    };
    pb::Complaint {
        complaint_id: row.complaint_id,
        case_number: row.case_number,
        customer_id: row.customer_id,
        category: row.category,
        cause: row.cause,
        severity: cv::word_to(&row.severity, cv::severity_out),
        channel: cv::word_to(&row.channel, cv::intake_channel_out),
        description: String::new(),
        respondent: row.respondent.unwrap_or_default(),
        status: status as i32,
        stage: row.stage,
        handler: row.handler.unwrap_or_default(),
        escalated_to: row
            .escalated_to
            .as_deref()
            .map_or(0, |w| cv::word_to(w, cv::signer_capacity_out)),
        signer: row.signer.unwrap_or_default(),
        signer_capacity: row
            .signer_capacity
            .as_deref()
            .map_or(0, |w| cv::word_to(w, cv::signer_capacity_out)),
        received_at: Some(cv::timestamp(row.received_at)),
        filed_at: Some(cv::timestamp(row.filed_at)),
        first_response_at: cv::opt_timestamp(row.first_response_at),
        first_response_due_at: Some(cv::timestamp(row.first_response_due_at)),
        closed_at: cv::opt_timestamp(row.closed_at),
        reopen_count: u32::try_from(row.reopen_count).unwrap_or(u32::MAX),
        recused: Vec::new(),
        version: 0,
        archived_at: cv::opt_timestamp(row.archived_at),
        meeting: None,
        policy_version: u64::try_from(row.policy_version).unwrap_or_default(),
        resolution_due_at: Some(cv::timestamp(row.resolution_due_at)),
        callback_due_at: cv::opt_timestamp(row.callback_due_at.filter(|_| row.callback_pending)),
        redacted_fields: Vec::new(),
        materials: Vec::new(),
        implementations: Vec::new(),
        remedy_promised: false,
        from_request: String::new(),
    }
}

#[tonic::async_trait]
impl ComplaintService for Complaints {
    async fn archive_cases(
        &self,
        request: Request<pb::ArchiveCasesRequest>,
    ) -> Reply<pb::ArchiveCasesResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.archive(who, request.into_inner()).await?))
    }

    async fn file_complaint(
        &self,
        request: Request<pb::FileComplaintRequest>,
    ) -> Reply<pb::FileComplaintResponse> {
        let who = principal(&request)?;
        let deadline = super::filing::deadline(request.metadata());
        Ok(Response::new(self.file(who, request.into_inner(), deadline).await?))
    }

    async fn assign_handler(
        &self,
        request: Request<pb::AssignHandlerRequest>,
    ) -> Reply<pb::AssignHandlerResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::AssignHandler)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let handler = f.staff("handler", &req.handler);
        let reason = f.opt_text("reason", &req.reason);
        let complaint_id = f.complaint_id("complaint_id", &req.complaint_id);
        f.finish()?;
        let (complaint_id, handler) = (present(complaint_id)?, present(handler)?);
        let fingerprint = Fingerprint::of("AssignHandler", &req);
        let request =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let reason = present(reason)?;
        // R-C3: conditioned on the handler still being active when it commits; R-C6: on
        // the customer's level as read (the caller's clearance and the handler's).
        let case_stream = stream(complaint_id.stream_name())?;
        let mut tries = 0;
        let written = loop {
            tries += 1;
            let standing = self.ctx.standing(complaint_id, true).await?;
            // The case's level before anything about the handler is told (R-C6).
            access.hide(standing.customer.level, "complaint", &complaint_id)?;
            let assign = AssignHandler {
                handler: handler.clone(),
                reason: reason.clone(),
                handler_cleared: assignee_cleared(
                    duty_clearance(&self.ctx.tokens, handler.as_str(), Duty::HandleCase),
                    &standing.customer,
                ),
            };
            let held = standing.held.clone();
            let written = self
                .ctx
                .assign_if::<Complaint>(&case_stream, &request, &handler, held, |case| {
                    let Some(case) = case else {
                        return Err(ApiError::NotFound {
                            what: "complaint",
                            id: complaint_id.to_string(),
                        });
                    };
                    access.on_case(case, &standing.customer)?;
                    Ok(ComplaintCommand::AssignHandler(assign.clone()))
                })
                .await;
            match written {
                Err(error) if tries < super::case_write::TRIES && standing.moved(&error) => {}
                written => break written?,
            }
        };
        let result = cv::write_result(complaint_id.to_string(), &written);
        Ok(Response::new(pb::AssignHandlerResponse { result: Some(result) }))
    }

    async fn recuse_handler(
        &self,
        request: Request<pb::RecuseHandlerRequest>,
    ) -> Reply<pb::RecuseHandlerResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::RecuseHandler)?;
        let me = who.staff_id()?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let reason = f.opt_text("reason", &req.reason);
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("RecuseHandler", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::RecuseHandler(RecuseHandler {
                        handler: me.clone(),
                        reason: present(reason.clone())?,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::RecuseHandlerResponse { result: Some(result) }))
    }

    async fn contact_complainant(
        &self,
        request: Request<pb::ContactComplainantRequest>,
    ) -> Reply<pb::ContactComplainantResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::ContactComplainant)?;
        let me = who.staff_id()?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let channel = f.required("channel", cv::contact_channel(req.channel));
        let summary = f.text("summary", &req.summary);
        let at = f.time_or_now("contacted_at", req.contacted_at.as_ref(), self.ctx.commands.now());
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("ContactComplainant", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::ContactComplainant(ContactComplainant {
                        by: actor(&me, &access),
                        channel: present(channel)?,
                        summary: present(summary.clone())?,
                        contacted_at: present(at)?,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::ContactComplainantResponse { result: Some(result) }))
    }

    async fn record_investigation(
        &self,
        request: Request<pb::RecordInvestigationRequest>,
    ) -> Reply<pb::RecordInvestigationResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::RecordInvestigation)?;
        let me = who.staff_id()?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let findings = f.text("findings", &req.findings);
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("RecordInvestigation", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::RecordInvestigation(RecordInvestigation {
                        by: actor(&me, &access),
                        findings: present(findings.clone())?,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::RecordInvestigationResponse { result: Some(result) }))
    }

    async fn draft_opinion(
        &self,
        request: Request<pb::DraftOpinionRequest>,
    ) -> Reply<pb::DraftOpinionResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::DraftOpinion)?;
        let me = who.staff_id()?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let opinion = f.text("opinion", &req.opinion);
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("DraftOpinion", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::DraftOpinion(DraftOpinion {
                        specialist: me.clone(),
                        opinion: present(opinion.clone())?,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::DraftOpinionResponse { result: Some(result) }))
    }

    async fn escalate_complaint(
        &self,
        request: Request<pb::EscalateComplaintRequest>,
    ) -> Reply<pb::EscalateComplaintResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::EscalateComplaint)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let to = f.required("to", cv::signer_capacity(req.to));
        let reason = f.text("reason", &req.reason);
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("EscalateComplaint", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::Escalate(EscalateComplaint {
                        to: present(to)?,
                        reason: present(reason.clone())?,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::EscalateComplaintResponse { result: Some(result) }))
    }

    async fn sign_opinion(
        &self,
        request: Request<pb::SignOpinionRequest>,
    ) -> Reply<pb::SignOpinionResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let capacity = f.required("capacity", cv::signer_capacity(req.capacity));
        let access = authorize(
            &who,
            match capacity {
                Some(SignerCapacity::Director) => Rpc::SignOpinionAsDirector,
                Some(SignerCapacity::Committee) => Rpc::SignOpinionAsCommittee,
                // An unknown capacity is refused below; ask as the least a signer needs.
                Some(SignerCapacity::Handler) | None => Rpc::SignOpinionAsHandler,
            },
        )?;
        let me = who.staff_id()?;
        let decision = f.text("decision", &req.decision);
        let remedy = f.opt_text("remedy", &req.remedy);
        let meeting = cv::committee_meeting(&mut f, req.meeting.as_ref(), capacity);
        let quorum = usize::from(self.ctx.policy().committee_quorum);
        let members = match meeting.as_ref().and_then(Option::as_ref) {
            Some(meeting) => self.committee_standing(&meeting.members_present).await?,
            None => Vec::new(),
        };
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("SignOpinion", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                capacity,
                |_, customer| {
                    // R-C6: a member below the customer's level, as held, is not counted.
                    let members = members
                        .iter()
                        .map(|(member, standing, clearance)| match standing {
                            MemberStanding::Member if !assignee_cleared(*clearance, customer) => {
                                (member.clone(), MemberStanding::NotCleared)
                            }
                            _ => (member.clone(), *standing),
                        })
                        .collect();
                    Ok(ComplaintCommand::SignOpinion(SignOpinion {
                        signer: me.clone(),
                        capacity: present(capacity)?,
                        decision: present(decision.clone())?,
                        remedy: present(remedy.clone())?,
                        meeting: present(meeting.clone())?,
                        members,
                        committee_quorum: quorum,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::SignOpinionResponse { result: Some(result) }))
    }

    async fn send_reply(
        &self,
        request: Request<pb::SendReplyRequest>,
    ) -> Reply<pb::SendReplyResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::SendReply)?;
        let me = who.staff_id()?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let kind = f.required("kind", cv::reply_kind(req.kind));
        let channel = f.required("channel", cv::contact_channel(req.channel));
        let summary = f.text("summary", &req.summary);
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("SendReply", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::SendReply(SendReply {
                        by: actor(&me, &access),
                        kind: present(kind)?,
                        channel: present(channel)?,
                        summary: present(summary.clone())?,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::SendReplyResponse { result: Some(result) }))
    }

    async fn close_complaint(
        &self,
        request: Request<pb::CloseComplaintRequest>,
    ) -> Reply<pb::CloseComplaintResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::CloseComplaint)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let summary = f.opt_text("summary", &req.summary);
        let me = who.staff_id()?;
        // R-T3: the case's own policy sets its callback deadline; a version another node
        // recorded since this process read the stream is read now.
        self.ctx.policies.refresh(&self.ctx.commands).await?;
        let policies = self.ctx.policies.clone();
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("CloseComplaint", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |case: &Option<Case>, _: &CaseCustomer| {
                    let version = case.as_ref().map_or(0, |case| case.terms.policy_version);
                    let policy = policies
                        .known(version)
                        .ok_or(DomainError::PolicyVersionUnknown { version })?;
                    Ok(ComplaintCommand::Close(CloseComplaint {
                        by: actor(&me, &access),
                        summary: present(summary.clone())?,
                        policy,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::CloseComplaintResponse { result: Some(result) }))
    }

    async fn reopen_complaint(
        &self,
        request: Request<pb::ReopenComplaintRequest>,
    ) -> Reply<pb::ReopenComplaintResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::ReopenComplaint)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let cause = f.opt_text("cause", &req.cause);
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("ReopenComplaint", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::Reopen(ReopenComplaint { cause: present(cause.clone())? }))
                },
            )
            .await?;
        // R-C3: a reopened case whose handler left goes to someone active; the answer
        // comes when the reads include it.
        let complaint_id =
            result.id.parse().map_err(|_| ApiError::Internal("bad id in a write result".into()))?;
        let handover = self.ctx.hand_over_reopened(&who, &req.request_id, complaint_id);
        if let Some(position) = handover.await? {
            self.ctx.caught_up(position).await?;
        }
        Ok(Response::new(pb::ReopenComplaintResponse { result: Some(result) }))
    }

    async fn get_complaint(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Reply<pb::GetComplaintResponse> {
        let who = principal(&request)?;
        let complaint = self.get(who, request.into_inner()).await?;
        Ok(Response::new(pb::GetComplaintResponse { complaint: Some(complaint) }))
    }

    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Reply<pb::ListComplaintsResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.list(who, request.into_inner()).await?))
    }

    async fn add_material(
        &self,
        request: Request<pb::AddMaterialRequest>,
    ) -> Reply<pb::AddMaterialResponse> {
        self.add_material_rpc(request).await
    }

    async fn record_implementation(
        &self,
        request: Request<pb::RecordImplementationRequest>,
    ) -> Reply<pb::RecordImplementationResponse> {
        self.record_implementation_rpc(request).await
    }
}
