//! `StaffService`: registration, departures with balanced reassignment (R-C3), listing.

use kefu_domain::balance::{self, CaseToHand, CustomerToHand};
use kefu_domain::complaint::{AssignHandler, Case, Complaint, ComplaintCommand};
use kefu_domain::customer::{AssignAgent, Customer, CustomerCommand};
use kefu_domain::staff::*;
use kefu_domain::{ComplaintId, CustomerId, DomainError, StaffId, StaffRole, Text};
use kefu_event_store::Direction;
use kefu_projection::confidentiality_rank;
use kefu_projection::queries::RowAccess;
use tonic::{Request, Response, Status};

use super::handover::Candidates;
use super::Ctx;
use crate::access::{authorize, Access, Rpc};
use crate::auth::{principal, Principal};
use crate::commands::{self, decode, stream, Fingerprint};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;
use crate::pb::staff_service_server::StaffService;

#[derive(Debug, Clone)]
pub struct StaffDirectory {
    pub ctx: Ctx,
}

type Reply<T> = Result<Response<T>, Status>;

impl StaffDirectory {
    /// R-C3: the whole plan for the leaver's customers and open cases, from the read
    /// models (caught up by the caller) and each case's own stream (who it bars, R-P4);
    /// refused, naming what nobody can take, before anything is recorded.
    async fn plan(
        &self,
        access: &Access,
        leaver: &StaffId,
        candidates: &Candidates,
    ) -> Result<balance::DeparturePlan, ApiError> {
        let customers: Vec<CustomerId> = self
            .ctx
            .models
            .customers_of(leaver.as_str())
            .await?
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect();
        let customers = self.customers_to_hand(&customers, candidates).await?;
        let mut cases = Vec::new();
        for id in self.ctx.models.open_cases_of(leaver.as_str()).await? {
            let Ok(complaint_id) = id.parse::<ComplaintId>() else { continue };
            let case_stream = stream(complaint_id.stream_name())?;
            let (case, _, _) = self.ctx.commands.load_unopened::<Complaint>(&case_stream).await?;
            let Some(case) = case else { continue };
            let mut barred = case.recused.clone();
            barred.extend(case.respondent.clone());
            // R-C6: nor anyone not cleared for the case's customer.
            let customer = self.ctx.customer_standing(case.customer_id).await?;
            barred.extend(
                candidates
                    .handlers
                    .keys()
                    .filter(|handler| !self.ctx.cleared(handler, &customer))
                    .cloned(),
            );
            // R-C6, R-P4: a refusal names only cases the caller may see.
            let label = if self.case_shown(access, &case).await? {
                case.case_number.to_string()
            } else {
                UNSEEN_CASE.to_owned()
            };
            cases.push(CaseToHand { complaint_id, label, barred });
        }
        balance::plan_departure(
            leaver,
            &customers,
            &cases,
            &candidates.agents,
            &candidates.handlers,
        )
        .map_err(|error| match error {
            DomainError::DepartureUnassignable(why) => {
                DomainError::DepartureUnassignable(unseen_reasons_withheld(&why)).into()
            }
            other => other.into(),
        })
    }

    /// Whether the caller may see `case`: within clearance for its customer (a merged
    /// duplicate's survivor's level governs) and not a case against them (R-C6, R-P4).
    async fn case_shown(&self, access: &Access, case: &Case) -> Result<bool, ApiError> {
        let level = self.ctx.customer_level(case.customer_id).await?;
        Ok(access.sees(&RowAccess {
            level_rank: confidentiality_rank(level),
            respondent: case.respondent.as_ref().map(ToString::to_string),
            last_position: 0,
        }))
    }

    /// Whether the caller may see the departure's item `id`, a case or a customer.
    async fn item_shown(&self, access: &Access, id: &str) -> Result<bool, ApiError> {
        if let Ok(complaint_id) = id.parse::<ComplaintId>() {
            let case_stream = stream(complaint_id.stream_name())?;
            let (case, _, _) = self.ctx.commands.load_unopened::<Complaint>(&case_stream).await?;
            if let Some(case) = case {
                return self.case_shown(access, &case).await;
            }
        }
        match id.parse::<CustomerId>() {
            Ok(customer_id) => {
                Ok(self.ctx.customer_level(customer_id).await? <= access.max_level())
            }
            Err(_) => Ok(false),
        }
    }

    /// The answer as the caller may read it: every item was handed over (or named to
    /// those who may see it), but only what they may see is listed (R-C6, R-P4).
    async fn answer_for(
        &self,
        access: &Access,
        answer: Answer,
        result: pb::WriteResult,
    ) -> Result<pb::RecordDepartureResponse, ApiError> {
        let mut response = answer.into_response(result);
        let mut shown = Vec::new();
        for moved in std::mem::take(&mut response.customers) {
            if self.item_shown(access, &moved.id).await? {
                shown.push(moved);
            }
        }
        response.customers = shown;
        let mut shown = Vec::new();
        for moved in std::mem::take(&mut response.cases) {
            if self.item_shown(access, &moved.id).await? {
                shown.push(moved);
            }
        }
        response.cases = shown;
        let mut shown = Vec::new();
        for item in std::mem::take(&mut response.unassigned) {
            if self.item_shown(access, &item.id).await? {
                shown.push(item);
            }
        }
        response.unassigned = shown;
        Ok(response)
    }

    /// R-C6: each of `customers` with the candidate agents not cleared for their level
    /// (a merged duplicate's survivor's governs), whom the plan skips.
    async fn customers_to_hand(
        &self,
        customers: &[CustomerId],
        candidates: &Candidates,
    ) -> Result<Vec<CustomerToHand>, ApiError> {
        let mut to_hand = Vec::with_capacity(customers.len());
        for customer_id in customers {
            let customer = self.ctx.customer_standing(*customer_id).await?;
            let uncleared = candidates
                .agents
                .keys()
                .filter(|agent| !self.ctx.cleared(agent, &customer))
                .cloned()
                .collect();
            to_hand.push(CustomerToHand { customer_id: *customer_id, uncleared });
        }
        Ok(to_hand)
    }

    /// The departure as recorded (recording it, with its plan, if needed), and the
    /// answer's write result. A departure recorded before is resumed whoever recorded
    /// it; a request id used for another request on this stream is refused.
    async fn departure(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        leaver: &StaffId,
        reason: Option<Text>,
        candidates: &Candidates,
    ) -> Result<(StaffDeparted, pb::WriteResult), ApiError> {
        let staff_stream = stream(leaver.stream_name())?;
        let (member, _, _) = self.ctx.commands.load::<Staff>(&staff_stream).await?;
        let written = match member {
            None => return Err(DomainError::StaffNotRegistered.into()),
            Some(member) if member.is_active() => {
                let (customers, open_cases) = self.plan(access, leaver, candidates).await?;
                // Nobody planned to take over may leave before the plan is recorded.
                let mut conditions = Vec::new();
                let owners =
                    customers.iter().map(|h| &h.to).chain(open_cases.iter().map(|h| &h.to));
                for owner in owners.collect::<std::collections::BTreeSet<_>>() {
                    conditions.push(self.ctx.active_staff(owner).await?.1);
                }
                let departure = RecordDeparture { reason, customers, open_cases };
                let outcome = self
                    .ctx
                    .commands
                    .execute_if::<Staff>(&staff_stream, request, conditions, |_| {
                        Ok(StaffCommand::RecordDeparture(departure.clone()))
                    })
                    .await;
                match outcome {
                    // Departed by a concurrent call: resume from what it recorded.
                    Err(ApiError::Domain(DomainError::StaffDeparted)) => None,
                    other => Some(other?),
                }
            }
            Some(_) => self.ctx.commands.repeated(&staff_stream, request).await?,
        };
        let recorded = self
            .ctx
            .commands
            .read(&staff_stream, u64::MAX, Direction::Backward, usize::MAX)
            .await?;
        let events: Vec<StaffEvent> = decode(&recorded)?;
        let (index, departed) = events
            .into_iter()
            .enumerate()
            .find_map(|(index, event)| match event {
                StaffEvent::StaffDeparted(departed) => Some((index, departed)),
                StaffEvent::StaffRegistered(_) => None,
            })
            .ok_or_else(|| ApiError::RequestIdReused(request.request_id.to_owned()))?;
        let result = match written {
            Some(written) => cv::write_result(leaver.to_string(), &written),
            None => pb::WriteResult {
                id: leaver.to_string(),
                version: recorded.get(index).map_or(0, |e| e.stream_version),
                position: recorded.get(index).map_or(0, |e| e.position),
            },
        };
        Ok((departed, result))
    }

    async fn record_departure_inner(
        &self,
        who: Principal,
        req: pb::RecordDepartureRequest,
    ) -> Result<pb::RecordDepartureResponse, ApiError> {
        let access = authorize(&who, Rpc::RecordDeparture)?;
        let mut f = Fields::new();
        let leaver = f.staff("staff_id", &req.staff_id);
        let reason = f.opt_text("reason", &req.reason);
        f.finish()?;
        let leaver = present(leaver)?;
        let fingerprint = Fingerprint::of("RecordDeparture", &req);
        let request = commands::Request::new(&who, fingerprint, &req.request_id, None)?;
        // The candidates and the leaver's lists come from the read models: make them
        // current first (an earlier departure must not leave its leaver a candidate).
        let head = self.ctx.commands.store().head_position().await?;
        self.ctx.caught_up(head).await?;
        let candidates = self.ctx.candidates(&leaver).await?;
        let (departed, result) =
            self.departure(&access, &request, &leaver, present(reason)?, &candidates).await?;
        let (customers, cases) = if departed.customer_handovers.len()
            == departed.customers_to_reassign.len()
            && departed.case_handovers.len() == departed.cases_to_reassign.len()
        {
            (departed.customer_handovers, departed.case_handovers)
        } else {
            // Recorded before departures recorded their plan: plan what it listed now
            // (a customer nobody is cleared for is left to the sweep, which names it).
            let to_hand =
                self.customers_to_hand(&departed.customers_to_reassign, &candidates).await?;
            let (customers, _) = balance::plan_customers(&leaver, &to_hand, &candidates.agents);
            let order = balance::plan_reassignment(
                &leaver,
                &departed.cases_to_reassign,
                &candidates.handlers,
            );
            (customers, order.into_iter().map(|(id, to)| Handover { id, to }).collect())
        };
        let mut answer = Answer::default();
        self.hand_over_all(&who, &leaver, customers, cases, &candidates, &mut answer).await?;
        self.sweep(&who, &leaver, &mut answer).await?;
        self.hand_over_requests(&who, &leaver, &mut answer).await?;
        self.answer_for(&access, answer, result).await
    }

    /// Carries out handovers, each under a key derived from the leaver and the item (a
    /// retry repeats none); one that nobody can take any more is named in the answer.
    async fn hand_over_all(
        &self,
        who: &Principal,
        leaver: &StaffId,
        customers: Vec<Handover<CustomerId>>,
        cases: Vec<Handover<ComplaintId>>,
        candidates: &Candidates,
        answer: &mut Answer,
    ) -> Result<(), ApiError> {
        for handover in customers {
            let id = handover.id.to_string();
            let backups = candidates.agents.keys().cloned().collect();
            let outcome = self.hand_over_customer(who, leaver, handover, backups).await;
            settle(outcome, id, &mut answer.customers, &mut answer.unassigned)?;
        }
        for handover in cases {
            let id = handover.id.to_string();
            let backups = candidates.handlers.keys().cloned().collect();
            let outcome = self.hand_over_case(who, leaver, handover, backups).await;
            settle(outcome, id, &mut answer.cases, &mut answer.unassigned)?;
        }
        Ok(())
    }

    /// R-C3 against the race with assignments: an assignment to the leaver commits
    /// before the departure or not at all (it is conditioned on their staff stream,
    /// which the departure moves), but one can commit after the departure's planning
    /// read. So, with the departure recorded, the read models are caught up to the
    /// head and whatever the leaver still owns is handed over too, balanced among the
    /// candidates as they are now. Every call does this, so a retry also completes a
    /// sweep that an earlier call could not finish; the swept moves are not listed in
    /// the answer (a retry's answer is the first's), what nobody may take is.
    async fn sweep(
        &self,
        who: &Principal,
        leaver: &StaffId,
        answer: &mut Answer,
    ) -> Result<(), ApiError> {
        let head = self.ctx.commands.store().head_position().await?;
        self.ctx.caught_up(head).await?;
        let customers: Vec<CustomerId> = (self.ctx.models.customers_of(leaver.as_str()).await?)
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect();
        let cases: Vec<ComplaintId> = (self.ctx.models.open_cases_of(leaver.as_str()).await?)
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect();
        if customers.is_empty() && cases.is_empty() {
            return Ok(());
        }
        let candidates = self.ctx.candidates(leaver).await?;
        let to_hand = self.customers_to_hand(&customers, &candidates).await?;
        let (planned_customers, uncleared) =
            balance::plan_customers(leaver, &to_hand, &candidates.agents);
        let planned_cases = balance::plan_reassignment(leaver, &cases, &candidates.handlers);
        // R-C6 over R-C3: a customer no active agent is cleared for stays with the
        // leaver, named, until a supervisor assigns a cleared agent; with no candidate
        // at all, nothing is planned.
        let reason = if candidates.agents.is_empty() { NO_AGENT } else { NO_CLEARED_AGENT };
        for id in uncleared {
            answer.unassigned.push(unassigned(id.to_string(), reason));
        }
        for id in cases.iter().skip(planned_cases.len()) {
            answer.unassigned.push(unassigned(id.to_string(), "no other active handler"));
        }
        let customers = planned_customers.into_iter();
        let cases = planned_cases.into_iter().map(|(id, to)| Handover { id, to });
        // The answer names the recorded plan and what nobody may take, so that a retry,
        // which finds nothing left to sweep, answers the same; the swept moves are in
        // the reads before the answer goes (caught up past them).
        let mut swept = Answer::default();
        self.hand_over_all(
            who,
            leaver,
            customers.collect(),
            cases.collect(),
            &candidates,
            &mut swept,
        )
        .await?;
        let moved = swept.customers.iter().chain(&swept.cases).map(|(_, position)| *position);
        self.ctx.caught_up(moved.max().unwrap_or(0)).await?;
        answer.unassigned.extend(swept.unassigned);
        Ok(())
    }

    /// R-C3 for service requests: with the departure recorded (the leaver no longer
    /// active, so never chosen), each open request the leaver holds goes to the
    /// least-loaded agent cleared for its customer; like the sweep's moves they are in
    /// the reads before the answer, and one nobody may take is named in it.
    async fn hand_over_requests(
        &self,
        who: &Principal,
        leaver: &StaffId,
        answer: &mut Answer,
    ) -> Result<(), ApiError> {
        let requests = super::request::Requests { ctx: self.ctx.clone() };
        let mut moved = 0;
        for id in self.ctx.models.open_requests_of(leaver.as_str()).await? {
            let Ok(request_id) = id.parse() else { continue };
            match requests.hand_over(who, leaver, request_id).await {
                Ok(Some((_, position))) => moved = moved.max(position),
                Ok(None) => {}
                Err(ApiError::Domain(DomainError::AgentNotCleared)) => {
                    answer.unassigned.push(unassigned(id, NO_CLEARED_AGENT));
                }
                // `least_loaded_agent`'s answer when no active agent is left at all.
                Err(ApiError::InvalidArgument(_)) => {
                    answer.unassigned.push(unassigned(id, NO_AGENT))
                }
                Err(error) => return Err(error),
            }
        }
        self.ctx.caught_up(moved).await
    }

    /// One customer to their planned agent, on condition the agent is still active;
    /// one who left since the plan was recorded, or is not cleared for the customer's
    /// level now (R-C6: raised since), is replaced by the next candidate. `None` when
    /// the customer needs no new owner any more (forgotten); `AGENT_NOT_CLEARED` when no
    /// active candidate is cleared for them.
    async fn hand_over_customer(
        &self,
        who: &Principal,
        leaver: &StaffId,
        handover: Handover<CustomerId>,
        backups: Vec<StaffId>,
    ) -> Result<Option<(pb::Reassignment, u64)>, ApiError> {
        let customer_stream = stream(handover.id.stream_name())?;
        let key = format!("departure/{leaver}/{}", handover.id);
        let request = commands::Request::derived(who, handover_fingerprint(), &key, None);
        let reason = Some(Text::new("reason", "staff departure (R-C3)")?);
        let owners = std::iter::once(handover.to.clone()).chain(backups);
        let mut departed = false;
        for owner in owners {
            let written = self
                .ctx
                .assign::<Customer>(&customer_stream, &request, &owner, |state| {
                    // Someone else may have moved it already; then leave it where it is.
                    let current = state.as_ref().map(|record| record.agent.clone());
                    let agent = match current {
                        Some(current) if &current != leaver => current,
                        _ => owner.clone(),
                    };
                    Ok(CustomerCommand::AssignAgent(AssignAgent {
                        agent_clearance: self.ctx.agent_clearance(&agent),
                        agent,
                        reason: reason.clone(),
                    }))
                })
                .await;
            match written {
                Ok(written) => {
                    let moved = pb::Reassignment {
                        id: handover.id.to_string(),
                        new_owner: owner.to_string(),
                    };
                    return Ok(Some((moved, written.position)));
                }
                Err(ApiError::Domain(DomainError::StaffDeparted)) => departed = true,
                Err(ApiError::Domain(DomainError::AgentNotCleared)) => {}
                Err(ApiError::Domain(
                    DomainError::CustomerForgotten | DomainError::CustomerNotRegistered,
                )) => return Ok(None),
                Err(error) => return Err(error),
            }
        }
        if departed {
            return Err(
                DomainError::DepartureUnassignable(format!("customer {}", handover.id)).into()
            );
        }
        Err(DomainError::AgentNotCleared.into())
    }

    /// One case to its planned handler, like [`StaffDirectory::hand_over_customer`];
    /// `None` when the case needs no new handler any more (closed since).
    async fn hand_over_case(
        &self,
        who: &Principal,
        leaver: &StaffId,
        handover: Handover<ComplaintId>,
        backups: Vec<StaffId>,
    ) -> Result<Option<(pb::Reassignment, u64)>, ApiError> {
        let case_stream = stream(handover.id.stream_name())?;
        let key = format!("departure/{leaver}/{}", handover.id);
        let request = commands::Request::derived(who, handover_fingerprint(), &key, None);
        let reason = Some(Text::new("reason", "staff departure (R-C3)")?);
        let Some(customer) = self.ctx.case_customer(handover.id).await? else { return Ok(None) };
        let owners = std::iter::once(handover.to.clone()).chain(backups);
        for owner in owners {
            let written = self
                .ctx
                .assign::<Complaint>(&case_stream, &request, &owner, |state| {
                    let current = state.as_ref().and_then(|case| case.handler.clone());
                    let handler = match current {
                        Some(current) if &current != leaver => current,
                        _ => owner.clone(),
                    };
                    Ok(ComplaintCommand::AssignHandler(AssignHandler {
                        handler_cleared: self.ctx.cleared(&handler, &customer),
                        handler,
                        reason: reason.clone(),
                    }))
                })
                .await;
            match written {
                Ok(written) => {
                    let moved = pb::Reassignment {
                        id: handover.id.to_string(),
                        new_owner: owner.to_string(),
                    };
                    return Ok(Some((moved, written.position)));
                }
                // The planned handler left, or the case changed since it was planned.
                Err(ApiError::Domain(
                    DomainError::StaffDeparted
                    | DomainError::RespondentCannotHandle
                    | DomainError::RecusedCannotReturn
                    | DomainError::HandlerNotCleared,
                )) => continue,
                Err(ApiError::Domain(
                    DomainError::ComplaintClosed
                    | DomainError::ComplaintArchived
                    | DomainError::ComplaintNotFiled,
                )) => return Ok(None),
                Err(error) => return Err(error),
            }
        }
        Err(DomainError::DepartureUnassignable(format!("case {}", handover.id)).into())
    }
}

/// A departure's answer as it is built.
#[derive(Default)]
struct Answer {
    /// Items moved, with the position of their move.
    customers: Vec<(pb::Reassignment, u64)>,
    cases: Vec<(pb::Reassignment, u64)>,
    unassigned: Vec<pb::UnassignedItem>,
}

impl Answer {
    fn into_response(mut self, mut result: pb::WriteResult) -> pb::RecordDepartureResponse {
        // The plan and the sweep may both find an item nobody may take: named once.
        let mut named = std::collections::HashSet::new();
        self.unassigned.retain(|item| named.insert(item.id.clone()));
        let moves = self.customers.iter().chain(&self.cases);
        result.position = moves.map(|(_, position)| *position).fold(result.position, u64::max);
        pb::RecordDepartureResponse {
            result: Some(result),
            customers: self.customers.into_iter().map(|(moved, _)| moved).collect(),
            cases: self.cases.into_iter().map(|(moved, _)| moved).collect(),
            unassigned: self.unassigned,
        }
    }
}

/// One handover's outcome into the answer: moved, no longer needed, or nobody can take it.
fn settle(
    outcome: Result<Option<(pb::Reassignment, u64)>, ApiError>,
    id: String,
    moved: &mut Vec<(pb::Reassignment, u64)>,
    left: &mut Vec<pb::UnassignedItem>,
) -> Result<(), ApiError> {
    match outcome {
        Ok(Some(done)) => moved.push(done),
        Ok(None) => {}
        // R-C8 over R-C3: the case of an erased customer takes no more changes, not
        // even a new handler; the answer names it.
        Err(ApiError::Domain(DomainError::CustomerForgotten)) => {
            left.push(unassigned(id, "its customer was erased: it takes no more changes (R-C8)"));
        }
        Err(ApiError::Domain(DomainError::DepartureUnassignable(_))) => {
            left.push(unassigned(id, "every candidate has left or is barred from it (R-P4)"));
        }
        Err(ApiError::Domain(DomainError::AgentNotCleared)) => {
            left.push(unassigned(id, NO_CLEARED_AGENT));
        }
        Err(error) => return Err(error),
    }
    Ok(())
}

/// How a refusal labels a case the caller may not see (R-C6, R-P4).
const UNSEEN_CASE: &str = "(not yours to see)";

/// A plan's refusal with every item about a case the caller may not see told only as
/// such: not which case, nor who bars it (a respondent must stay unknown, R-P4).
fn unseen_reasons_withheld(why: &str) -> String {
    let mut told: Vec<&str> = Vec::new();
    for item in why.split("; ") {
        let item = if item.contains(UNSEEN_CASE) {
            "an open case you may not see that no active handler may take: a supervisor cleared for it must reassign it first"
        } else {
            item
        };
        if !told.contains(&item) {
            told.push(item);
        }
    }
    told.join("; ")
}

/// Why a leaver's customer stays theirs: nobody else is an active agent.
const NO_AGENT: &str = "no other active agent";
/// Why a leaver's customer stays theirs: no active agent may read them (R-C6 over R-C3).
const NO_CLEARED_AGENT: &str =
    "no active agent is cleared for the customer's level: left with the leaver until a cleared agent is assigned (R-C6 over R-C3)";

fn unassigned(id: String, reason: &str) -> pb::UnassignedItem {
    pb::UnassignedItem { id, reason: reason.to_owned() }
}

/// The handovers a departure issues under keys derived from the leaver and the item:
/// what they are is in the key, whichever request carries them out.
fn handover_fingerprint() -> Fingerprint {
    Fingerprint::internal("RecordDeparture/handover")
}

#[tonic::async_trait]
impl StaffService for StaffDirectory {
    async fn register_staff(
        &self,
        request: Request<pb::RegisterStaffRequest>,
    ) -> Reply<pb::RegisterStaffResponse> {
        let who = principal(&request)?;
        authorize(&who, Rpc::RegisterStaff)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let staff_id = f.staff("staff_id", &req.staff_id);
        let name = f.text("name", &req.name);
        let mut roles = Vec::new();
        for (i, role) in req.roles.iter().enumerate() {
            match cv::staff_role(*role) {
                Some(role) => roles.push(role),
                None => f.violation(&format!("roles[{i}]"), "is not a staff role"),
            }
        }
        if roles.is_empty() && req.roles.is_empty() {
            f.violation("roles", "at least one role is required");
        }
        f.finish()?;
        let staff_id = present(staff_id)?;
        let register = RegisterStaff { staff_id: staff_id.clone(), name: present(name)?, roles };
        let fingerprint = Fingerprint::of("RegisterStaff", &req);
        let request = commands::Request::new(&who, fingerprint, &req.request_id, None)?;
        let written = self
            .ctx
            .commands
            .execute::<Staff>(&stream(staff_id.stream_name())?, &request, |_| {
                Ok(StaffCommand::Register(register.clone()))
            })
            .await?;
        Ok(Response::new(pb::RegisterStaffResponse {
            result: Some(cv::write_result(staff_id.to_string(), &written)),
        }))
    }

    async fn record_departure(
        &self,
        request: Request<pb::RecordDepartureRequest>,
    ) -> Reply<pb::RecordDepartureResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.record_departure_inner(who, request.into_inner()).await?))
    }

    async fn list_staff(
        &self,
        request: Request<pb::ListStaffRequest>,
    ) -> Reply<pb::ListStaffResponse> {
        let who = principal(&request)?;
        authorize(&who, Rpc::ListStaff)?;
        let req = request.into_inner();
        self.ctx.caught_up_in(req.min_position, "staff").await?;
        let staff = self
            .ctx
            .models
            .workload()
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .filter(|load| load.name.is_some() && (load.active || req.include_departed))
            .map(|load| pb::StaffMember {
                staff_id: load.staff_id,
                name: load.name.unwrap_or_default(),
                roles: load
                    .roles
                    .iter()
                    .filter_map(|r| r.parse::<StaffRole>().ok())
                    .map(cv::staff_role_out)
                    .collect(),
                active: load.active,
                departed_at: None,
                open_cases: u32::try_from(load.open_cases).unwrap_or(u32::MAX),
                customers: u32::try_from(load.customers).unwrap_or(u32::MAX),
            })
            .collect();
        Ok(Response::new(pb::ListStaffResponse { staff }))
    }
}
