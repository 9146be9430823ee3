//! `EscalateToComplaint`: a dissatisfied requester becomes a complainant (issue 22).
//!
//! The case number (R-P1), the complaint (naming the request, received when the
//! request was, so its R-P7 clocks run from the request's receipt) and the request's
//! `RequestEscalated` (naming the complaint) are one append group: all or none. The
//! request's append expects the version its escalation was decided on, so one request
//! never files two complaints: a second escalation (another key, another supervisor at
//! the same time) loses the race, decides again and is refused
//! (`REQUEST_ALREADY_ESCALATED`); a retry under the same key finds what its ids wrote
//! and gets its first answer.

use chrono::{DateTime, Utc};
use kefu_domain::case_register::{self, CaseRegister, CaseRegisterEvent, IssueCaseNumber};
use kefu_domain::complaint::{Complaint, ComplaintCommand, FileComplaint, FromRequest};
use kefu_domain::customer::Customer;
use kefu_domain::request::*;
use kefu_domain::{
    taxonomy, Aggregate, CaseNumber, ComplaintId, DomainError, ServiceRequest, ServiceRequestId,
};
use kefu_event_store::{Condition, StoreError, StreamId};

use super::filing::register_head;
use super::request::Requests;
use crate::access::{authorize, Access, Rpc};
use crate::auth::Principal;
use crate::commands::{self, decode, stream, Fingerprint, Written};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;

/// How often an escalation that lost a race it did not cause is decided again.
const RACES: usize = 8;

/// What the caller asked, checked.
struct Asked {
    request_id: ServiceRequestId,
    cause: kefu_domain::Text,
    severity: kefu_domain::Severity,
    respondent: Option<kefu_domain::StaffId>,
    reason: kefu_domain::Text,
}

/// What one try of the group came to.
enum Tried {
    Filed(pb::EscalateToComplaintResponse),
    /// This key's ids are stored already: answer from them.
    Repeated,
    /// Another writer moved the register, the request or the customer: try again.
    Lost(ApiError),
}

impl Requests {
    pub(super) async fn escalate(
        &self,
        who: Principal,
        req: pb::EscalateToComplaintRequest,
    ) -> Result<pb::EscalateToComplaintResponse, ApiError> {
        let access = authorize(&who, Rpc::EscalateToComplaint)?;
        let mut f = Fields::new();
        let request_id = f.service_request_id("service_request_id", &req.service_request_id);
        let cause = f.code("cause", &req.cause, taxonomy::cause);
        let severity = f.required("severity", cv::severity(req.severity));
        let respondent = f.opt_staff("respondent", &req.respondent);
        let reason = f.text("reason", &req.reason);
        f.finish()?;
        let asked = Asked {
            request_id: present(request_id)?,
            cause: present(cause)?,
            severity: present(severity)?,
            respondent: present(respondent)?,
            reason: present(reason)?,
        };
        let fingerprint = Fingerprint::of("EscalateToComplaint", &req);
        let call =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let escalation = call.tagged("escalated");
        if let Some(earlier) = self.ctx.commands.earlier(&escalation).await? {
            return self.escalated_answer(&earlier).await;
        }
        // The escalation's one instant: the filing's time and its register's year.
        let at = self.ctx.commands.now();
        let mut lost = None;
        for _ in 0..RACES {
            match self.try_escalate(&access, &call, &asked, at).await? {
                Tried::Filed(answer) => return Ok(answer),
                Tried::Repeated => break,
                Tried::Lost(error) => lost = Some(error),
            }
        }
        match self.ctx.commands.earlier(&escalation).await? {
            Some(earlier) => self.escalated_answer(&earlier).await,
            None => {
                Err(lost.unwrap_or(ApiError::Contended { stream: asked.request_id.to_string() }))
            }
        }
    }

    /// One try: the request and its customer read as they stand, checked, and the group
    /// queued under the register's lock and awaited outside it.
    async fn try_escalate(
        &self,
        access: &Access,
        call: &commands::Request<'_>,
        asked: &Asked,
        at: DateTime<Utc>,
    ) -> Result<Tried, ApiError> {
        let commands = &self.ctx.commands;
        let request_stream = stream(asked.request_id.stream_name())?;
        let customer_id = self.customer_of(asked.request_id).await?;
        let standing = self.ctx.customer_standing(customer_id).await?;
        access.hide(standing.level, "request", &asked.request_id)?;
        let (state, version, _) = commands.load::<ServiceRequest>(&request_stream).await?;
        let Some(record) = state.as_ref() else {
            return Err(ApiError::NotFound { what: "request", id: asked.request_id.to_string() });
        };
        access.on_request(record.agent.as_ref())?;
        if standing.forgotten {
            return Err(DomainError::CustomerForgotten.into());
        }
        if let Some(expected) = call.expected_version.filter(|expected| *expected != version) {
            return Err(ApiError::Conflict {
                stream: request_stream.to_string(),
                expected: format!("version {expected}"),
                actual: version,
            });
        }
        let customer_stream = stream(customer_id.stream_name())?;
        let (customer, _, _) = commands.load_unopened::<Customer>(&customer_stream).await?;
        // As for a filing: a merged duplicate takes no new case, its survivor does.
        if customer.as_ref().is_some_and(|customer| customer.merged_into.is_some()) {
            return Err(DomainError::CustomerMerged.into());
        }
        let tier = customer
            .map(|customer| customer.tier)
            .ok_or_else(|| ApiError::NotFound { what: "customer", id: customer_id.to_string() })?;
        // Sealing the complaint needs the customer's key: fetched now, not under the lock.
        commands.store().data_key(&customer_id.to_string()).await?;
        let policy = self.ctx.policies.current();
        let year = case_register::case_year(at, policy.policy.time_zone);
        let register = stream(case_register::stream_name(year))?;
        let complaint_id = ComplaintId::generate();
        let mut head = self.ctx.register.lock().await;
        let (last, register_version) = register_head(commands, &head, year, &register).await?;
        let zone = policy.policy.time_zone;
        let numbered =
            CaseRegister::decide(&last, IssueCaseNumber { complaint_id, year, zone }, at)?;
        let Some(CaseRegisterEvent::CaseNumberIssued(issued)) = numbered.first().cloned() else {
            return Err(ApiError::Internal("the register issued nothing".into()));
        };
        let case_number = issued.case_number;
        let me = call.principal.staff_id()?;
        let escalated = ServiceRequest::decide(
            &state,
            RequestCommand::Escalate(EscalateRequest {
                by: me,
                complaint_id,
                case_number,
                reason: asked.reason.clone(),
            }),
            at,
        )?;
        let filed = Complaint::decide(
            &None,
            ComplaintCommand::File(FileComplaint {
                complaint_id,
                case_number,
                customer_id,
                category: record.category.clone(),
                cause: asked.cause.clone(),
                severity: asked.severity,
                channel: record.channel,
                description: record.description.clone(),
                respondent: asked.respondent.clone(),
                attachments: Vec::new(),
                // The complaint's clocks run from the request's receipt.
                received_at: record.received_at,
                policy,
                tier,
                from_request: Some(FromRequest {
                    id: asked.request_id,
                    // In time only: a late answer just before escalating buys nothing.
                    answered: record
                        .first_response_at
                        .is_some_and(|at| at <= record.terms.first_response_due_at),
                }),
            }),
            at,
        )?;
        let register_call = call.tagged("register");
        let unused = vec![Condition::Absent(register_call.unrelated_ids())];
        let number = commands
            .prepare::<CaseRegister>(
                &register,
                &register_call,
                &last,
                &numbered,
                register_version,
                unused,
            )
            .await?;
        let case = stream(complaint_id.stream_name())?;
        let case = commands
            .prepare::<Complaint>(&case, &call.tagged("complaint"), &None, &filed, 0, Vec::new())
            .await?;
        let marked = commands
            .prepare::<ServiceRequest>(
                &request_stream,
                &call.tagged("escalated"),
                &state,
                &escalated,
                version,
                standing.held,
            )
            .await?;
        let pending = commands.submit_group(vec![number, case, marked])?;
        let version = register_version + 1;
        *head = Some(super::RegisterHead { year, last: Some(case_number), version });
        drop(head);
        let outcomes = pending.await;
        if let [Ok(number), Ok(_), Ok(marked)] = outcomes.as_slice() {
            if !number.repeated && !marked.repeated {
                return Ok(Tried::Filed(answer(complaint_id, case_number, marked)));
            }
        }
        // Whatever happened, the head we cached is not known to be stored.
        *self.ctx.register.lock().await = None;
        tried(outcomes, call, &request_stream)
    }

    /// A retried escalation's first answer: the complaint its request names.
    async fn escalated_answer(
        &self,
        earlier: &Written,
    ) -> Result<pb::EscalateToComplaintResponse, ApiError> {
        let recorded = self
            .ctx
            .commands
            .read(
                &stream(earlier.stream.clone())?,
                earlier.version,
                kefu_event_store::Direction::Forward,
                1,
            )
            .await?;
        match decode::<RequestEvent>(&recorded)?.into_iter().next() {
            Some(RequestEvent::RequestEscalated(e)) => {
                Ok(answer(e.complaint_id, e.case_number, earlier))
            }
            _ => Err(ApiError::RequestIdReused("request id was used for another request".into())),
        }
    }
}

fn answer(
    complaint_id: ComplaintId,
    case_number: CaseNumber,
    written: &Written,
) -> pb::EscalateToComplaintResponse {
    pb::EscalateToComplaintResponse {
        result: Some(cv::write_result(
            written.stream.trim_start_matches("request-").to_owned(),
            written,
        )),
        complaint_id: complaint_id.to_string(),
        case_number: case_number.to_string(),
    }
}

/// What a group that was not written calls for: its outcomes are (number, complaint,
/// request). The request moved under a caller's expectation is that caller's conflict;
/// any other lost race is tried again; a refusal is final.
fn tried(
    outcomes: Vec<Result<Written, StoreError>>,
    call: &commands::Request<'_>,
    request_stream: &StreamId,
) -> Result<Tried, ApiError> {
    if outcomes.iter().any(|outcome| outcome.as_ref().is_ok_and(|written| written.repeated)) {
        return Ok(Tried::Repeated);
    }
    let refused = outcomes
        .into_iter()
        .filter_map(Result::err)
        .find(|error| !matches!(error, StoreError::GroupIncomplete))
        .unwrap_or_else(|| StoreError::CommitFailed("an escalation went unanswered".into()));
    let request_moved = matches!(
        &refused,
        StoreError::WrongExpectedVersion { stream_id, .. } if stream_id == request_stream.as_str()
    );
    if request_moved && call.expected_version.is_some() {
        return Err(refused.into());
    }
    if refused.is_conflict() {
        return Ok(Tried::Lost(refused.into()));
    }
    Err(refused.into())
}
