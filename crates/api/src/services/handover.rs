//! Who takes over a leaver's work (R-C3): the candidates and their loads, shared by
//! departures and by cases reopened after their handler left.

use std::collections::BTreeMap;

use kefu_domain::balance::{self, CaseToHand};
use kefu_domain::complaint::{AssignHandler, Complaint, ComplaintCommand};
use kefu_domain::{ComplaintId, DomainError, StaffId, StaffRole, Text};

use super::Ctx;
use crate::access::{assignee_cleared, duty_clearance, CaseCustomer, Duty};
use crate::auth::Principal;
use crate::commands::{self, stream, Fingerprint};
use crate::error::ApiError;

/// Loads of the people who may take over, by role.
pub(crate) struct Candidates {
    pub agents: BTreeMap<StaffId, usize>,
    pub handlers: BTreeMap<StaffId, usize>,
}

impl Ctx {
    /// R-C6: the highest clearance among `staff`'s tokens (`None`: cleared for nothing),
    /// which bounds what may be given to them to own or handle.
    pub(crate) fn agent_clearance(&self, staff: &StaffId) -> Option<kefu_domain::Confidentiality> {
        duty_clearance(&self.tokens, staff.as_str(), Duty::OwnCustomer)
    }

    /// R-C6: whether `handler` may be given a case of `customer`.
    pub(crate) fn cleared(&self, handler: &StaffId, customer: &CaseCustomer) -> bool {
        assignee_cleared(duty_clearance(&self.tokens, handler.as_str(), Duty::HandleCase), customer)
    }

    /// The active agents (by customers) and handlers (by open cases) other than `leaver`.
    pub(crate) async fn candidates(&self, leaver: &StaffId) -> Result<Candidates, ApiError> {
        let mut agents = BTreeMap::new();
        let mut handlers = BTreeMap::new();
        for load in self.models.workload().await? {
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

    /// R-C3 with R-P14: a case reopened (by `request_id` of `who`) while its handler has
    /// left, or is no longer cleared for its customer (R-C6: a raise while the case was
    /// closed), goes to the least-loaded active handler it accepts, as a departure would
    /// have handed it over had it been open, under a key derived from the reopening
    /// request (a retry repeats it). Left where it is, and logged, when nobody can take
    /// it. The position of the handover, if one was written now or before.
    pub(crate) async fn hand_over_reopened(
        &self,
        who: &Principal,
        request_id: &str,
        complaint_id: ComplaintId,
    ) -> Result<Option<u64>, ApiError> {
        let key = format!("reopen/{request_id}/{complaint_id}");
        self.hand_over_from_unfit(who, &key, "ReopenComplaint/handover", complaint_id).await
    }

    /// Hands the case to the least-loaded active handler it accepts when its handler has
    /// left (R-C3) or is not cleared for its customer now (R-C6), under `key` (derived
    /// from the request that found it so, which `fingerprint` names).
    pub(crate) async fn hand_over_from_unfit(
        &self,
        who: &Principal,
        key: &str,
        fingerprint: &'static str,
        complaint_id: ComplaintId,
    ) -> Result<Option<u64>, ApiError> {
        let case_stream = stream(complaint_id.stream_name())?;
        let (case, _, _) = self.commands.load_unopened::<Complaint>(&case_stream).await?;
        let Some(case) = case else { return Ok(None) };
        let Some(leaver) = case.handler.clone() else { return Ok(None) };
        let customer = self.customer_standing(case.customer_id).await?;
        let why = match self.active_staff(&leaver).await {
            Err(ApiError::Domain(DomainError::StaffDeparted)) => "handler departed (R-C3)",
            Ok(_) if !self.cleared(&leaver, &customer) => {
                "handler not cleared for the customer's level (R-C6)"
            }
            other => return other.map(|_| None),
        };
        self.caught_up(self.commands.store().head_position().await?).await?;
        let candidates = self.candidates(&leaver).await?;
        let mut barred = case.recused.clone();
        barred.extend(case.respondent.clone());
        // R-C6: nor anyone not cleared for the case's customer.
        barred.extend(candidates.handlers.keys().filter(|h| !self.cleared(h, &customer)).cloned());
        let label = case.case_number.to_string();
        let to_hand = CaseToHand { complaint_id, label, barred: barred.clone() };
        let planned = balance::plan_departure(
            &leaver,
            &[],
            &[to_hand],
            &BTreeMap::new(),
            &candidates.handlers,
        );
        let Ok((_, planned)) = planned else {
            tracing::warn!(case = %case.case_number, handler = %leaver, why, "a case's handler must hand it over, and nobody can take it");
            return Ok(None);
        };
        let request =
            commands::Request::derived(who, Fingerprint::internal(fingerprint), key, None);
        let reason = Some(Text::new("reason", why)?);
        let backups = candidates.handlers.keys().filter(|id| !barred.contains(id)).cloned();
        let owners = planned.into_iter().map(|handover| handover.to).chain(backups);
        for owner in owners {
            let assign = AssignHandler {
                handler_cleared: self.cleared(&owner, &customer),
                handler: owner.clone(),
                reason: reason.clone(),
            };
            let written = self
                .assign::<Complaint>(&case_stream, &request, &owner, |_| {
                    Ok(ComplaintCommand::AssignHandler(assign.clone()))
                })
                .await;
            match written {
                Ok(written) => return Ok(Some(written.position)),
                Err(ApiError::Domain(
                    DomainError::StaffDeparted
                    | DomainError::RespondentCannotHandle
                    | DomainError::RecusedCannotReturn
                    | DomainError::HandlerNotCleared,
                )) => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }
}
