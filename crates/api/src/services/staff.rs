//! `StaffService`: registration, departures with balanced reassignment (R-C3), listing.

use std::collections::BTreeMap;

use kefu_domain::complaint::{AssignHandler, Complaint, ComplaintCommand};
use kefu_domain::customer::{AssignAgent, Customer, CustomerCommand};
use kefu_domain::staff::*;
use kefu_domain::{balance, ComplaintId, CustomerId, DomainError, StaffId, StaffRole, Text};
use kefu_event_store::Direction;
use tonic::{Request, Response, Status};

use super::Ctx;
use crate::access::{authorize, Rpc};
use crate::auth::{principal, Principal};
use crate::commands::{self, decode, stream};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;
use crate::pb::staff_service_server::StaffService;

#[derive(Debug, Clone)]
pub struct StaffDirectory {
    pub ctx: Ctx,
}

type Reply<T> = Result<Response<T>, Status>;

/// Loads of the people who may take over, by role.
struct Candidates {
    agents: BTreeMap<StaffId, usize>,
    handlers: BTreeMap<StaffId, usize>,
}

impl StaffDirectory {
    async fn candidates(&self, leaver: &StaffId) -> Result<Candidates, ApiError> {
        let mut agents = BTreeMap::new();
        let mut handlers = BTreeMap::new();
        for load in self.ctx.models.workload().await? {
            let Ok(id) = StaffId::new(&load.staff_id) else { continue };
            if !load.active || &id == leaver {
                continue;
            }
            if load.roles.iter().any(|r| r == StaffRole::Agent.as_str()) {
                agents.insert(id.clone(), usize::try_from(load.customers).unwrap_or(usize::MAX));
            }
            if load.roles.iter().any(|r| r == StaffRole::Handler.as_str()) {
                handlers.insert(id, usize::try_from(load.open_cases).unwrap_or(usize::MAX));
            }
        }
        Ok(Candidates { agents, handlers })
    }

    /// The departure as recorded (recording it first if needed): what must move.
    async fn departure(
        &self,
        who: &Principal,
        req: &pb::RecordDepartureRequest,
        leaver: &StaffId,
        reason: Option<Text>,
    ) -> Result<(StaffDeparted, pb::WriteResult), ApiError> {
        let staff_stream = stream(leaver.stream_name())?;
        let request = commands::Request::new(who, &req.request_id, None)?;
        // The lists come from the read models, which the caller has just caught up.
        let customers: Vec<CustomerId> = self
            .ctx
            .models
            .customers_of(leaver.as_str())
            .await?
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect();
        let open_cases: Vec<ComplaintId> = self
            .ctx
            .models
            .open_cases_of(leaver.as_str())
            .await?
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect();
        let departure = RecordDeparture { reason, customers, open_cases };
        let written = match self
            .ctx
            .commands
            .execute::<Staff>(&staff_stream, &request, |_| {
                Ok(StaffCommand::RecordDeparture(departure.clone()))
            })
            .await
        {
            // Departed by an earlier, interrupted call: resume from its recorded lists.
            Err(ApiError::Domain(DomainError::StaffDeparted)) => None,
            other => Some(other?),
        };
        let recorded = self
            .ctx
            .commands
            .read(&staff_stream, u64::MAX, Direction::Backward, usize::MAX)
            .await?;
        let events: Vec<StaffEvent> = decode(&recorded)?;
        let departed = events
            .into_iter()
            .find_map(|event| match event {
                StaffEvent::StaffDeparted(departed) => Some(departed),
                StaffEvent::StaffRegistered(_) => None,
            })
            // The request id answered with an earlier, different command on this stream.
            .ok_or_else(|| ApiError::RequestIdReused(req.request_id.clone()))?;
        let version = recorded.first().map_or(0, |e| e.stream_version);
        let position = recorded.first().map_or(0, |e| e.position);
        let result = match written {
            Some(written) => cv::write_result(leaver.to_string(), &written),
            None => pb::WriteResult { id: leaver.to_string(), version, position },
        };
        Ok((departed, result))
    }

    async fn record_departure_inner(
        &self,
        who: Principal,
        req: pb::RecordDepartureRequest,
    ) -> Result<pb::RecordDepartureResponse, ApiError> {
        authorize(&who, Rpc::RecordDeparture)?;
        let mut f = Fields::new();
        let leaver = f.staff("staff_id", &req.staff_id);
        let reason = f.opt_text("reason", &req.reason);
        f.finish()?;
        let leaver = present(leaver)?;
        let (member, _, _) =
            self.ctx.commands.load::<Staff>(&stream(leaver.stream_name())?).await?;
        if member.is_none() {
            return Err(DomainError::StaffNotRegistered.into());
        }
        // The candidates and the leaver's lists come from the read models: make them
        // current first (an earlier departure must not leave its leaver a candidate).
        let head = self.ctx.commands.store().head_position().await?;
        self.ctx.caught_up(head).await?;
        let mut candidates = self.candidates(&leaver).await?;
        let (departed, mut result) = self.departure(&who, &req, &leaver, present(reason)?).await?;
        if (!departed.customers_to_reassign.is_empty() && candidates.agents.is_empty())
            || (!departed.cases_to_reassign.is_empty() && candidates.handlers.is_empty())
        {
            return Err(ApiError::field(
                "staff_id",
                "no other active agent or handler can take over the leaver's work (R-C3)",
            ));
        }

        let mut moved_customers = Vec::new();
        let plan = balance::plan_reassignment(
            &leaver,
            &departed.customers_to_reassign,
            &candidates.agents,
        );
        for (customer_id, owner) in plan {
            let customer_stream = stream(customer_id.stream_name())?;
            let item_request_id = format!("departure/{leaver}/{customer_id}");
            let request = commands::Request::new(&who, &item_request_id, None)?;
            let assign = AssignAgent {
                agent: owner.clone(),
                reason: Some(Text::new("reason", "staff departure (R-C3)")?),
            };
            let written = self
                .ctx
                .commands
                .execute::<Customer>(&customer_stream, &request, |state| {
                    // Someone else may have moved it already; then leave it where it is.
                    let current = state.as_ref().map(|record| record.agent.clone());
                    let agent = if current.as_ref() == Some(&leaver) {
                        owner.clone()
                    } else {
                        current.unwrap_or_else(|| owner.clone())
                    };
                    Ok(CustomerCommand::AssignAgent(AssignAgent { agent, ..assign.clone() }))
                })
                .await;
            match written {
                Ok(written) => result.position = result.position.max(written.position),
                Err(ApiError::Domain(
                    DomainError::CustomerForgotten | DomainError::CustomerNotRegistered,
                )) => continue,
                Err(error) => return Err(error),
            }
            *candidates.agents.entry(owner.clone()).or_default() += 1;
            moved_customers.push(pb::Reassignment {
                id: customer_id.to_string(),
                new_owner: owner.to_string(),
            });
        }

        let mut moved_cases = Vec::new();
        for complaint_id in &departed.cases_to_reassign {
            let case_stream = stream(complaint_id.stream_name())?;
            // Least-loaded first; skip anyone the case refuses (respondent, recused: R-P4).
            let mut order: Vec<(usize, StaffId)> =
                candidates.handlers.iter().map(|(id, load)| (*load, id.clone())).collect();
            order.sort();
            let item_request_id = format!("departure/{leaver}/{complaint_id}");
            let request = commands::Request::new(&who, &item_request_id, None)?;
            let mut assigned = None;
            for (_, owner) in order {
                let command = AssignHandler {
                    handler: owner.clone(),
                    reason: Some(Text::new("reason", "staff departure (R-C3)")?),
                };
                let written = self
                    .ctx
                    .commands
                    .execute::<Complaint>(&case_stream, &request, |state| {
                        let still_leavers = state
                            .as_ref()
                            .is_some_and(|case| case.handler.as_ref() == Some(&leaver));
                        let handler = if still_leavers {
                            owner.clone()
                        } else {
                            state
                                .as_ref()
                                .and_then(|case| case.handler.clone())
                                .unwrap_or_else(|| owner.clone())
                        };
                        Ok(ComplaintCommand::AssignHandler(AssignHandler {
                            handler,
                            ..command.clone()
                        }))
                    })
                    .await;
                match written {
                    Ok(written) => {
                        result.position = result.position.max(written.position);
                        assigned = Some(owner);
                        break;
                    }
                    Err(ApiError::Domain(
                        DomainError::RespondentCannotHandle | DomainError::RecusedCannotReturn,
                    )) => continue,
                    Err(ApiError::Domain(
                        DomainError::ComplaintClosed
                        | DomainError::ComplaintArchived
                        | DomainError::ComplaintNotFiled,
                    )) => break,
                    Err(error) => return Err(error),
                }
            }
            if let Some(owner) = assigned {
                *candidates.handlers.entry(owner.clone()).or_default() += 1;
                moved_cases.push(pb::Reassignment {
                    id: complaint_id.to_string(),
                    new_owner: owner.to_string(),
                });
            }
        }
        Ok(pb::RecordDepartureResponse {
            result: Some(result),
            customers: moved_customers,
            cases: moved_cases,
        })
    }
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
        let request = commands::Request::new(&who, &req.request_id, None)?;
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
        self.ctx.caught_up(req.min_position).await?;
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
