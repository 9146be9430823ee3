//! R-C3 for service requests: a departure hands the leaver's open requests to the
//! active agents cleared for each request's customer (R-C6), balanced by open requests,
//! as it hands over customers and cases.

use kefu_domain::request::{AssignRequest, RequestCommand, RequestStatus, ServiceRequest};
use kefu_domain::{DomainError, ServiceRequestId, StaffId, Text};

use super::request::Requests;
use crate::auth::Principal;
use crate::commands::{self, stream, Fingerprint};
use crate::error::ApiError;

/// Why a request changes hands: what its derived request is called, and the reason.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handover {
    pub fingerprint: &'static str,
    pub reason: &'static str,
}

impl Requests {
    /// Hands `id` from `leaver` to the least-loaded active agent cleared for its
    /// customer, under a key derived from the leaver and the request (a retry repeats
    /// nothing). `Ok(None)`: nothing to move (no longer the leaver's, not open, or its
    /// customer erased); `AGENT_NOT_CLEARED`: no active agent may take it.
    pub(crate) async fn hand_over(
        &self,
        who: &Principal,
        leaver: &StaffId,
        id: ServiceRequestId,
    ) -> Result<Option<(StaffId, u64)>, ApiError> {
        let key = format!("departure/{leaver}/{id}");
        let how =
            Handover { fingerprint: "RecordDeparture/request", reason: "staff departure (R-C3)" };
        self.hand_over_from(who, leaver, id, &key, how).await
    }

    /// Hands `id` from `holder` as [`Self::hand_over`] does, under `key`, for the reason
    /// `how` names (a departure, or a holder no longer cleared for the customer).
    pub(crate) async fn hand_over_from(
        &self,
        who: &Principal,
        leaver: &StaffId,
        id: ServiceRequestId,
        key: &str,
        how: Handover,
    ) -> Result<Option<(StaffId, u64)>, ApiError> {
        let request =
            commands::Request::derived(who, Fingerprint::internal(how.fingerprint), key, None);
        let holder = self.holder(self.customer_of(id).await?).await?;
        if holder.forgotten {
            return Ok(None);
        }
        let agent = self.least_loaded_agent(holder.level).await?;
        let reason = Some(Text::new("reason", how.reason)?);
        let written = self
            .ctx
            .assign_if::<ServiceRequest>(
                &stream(id.stream_name())?,
                &request,
                &agent,
                holder.held,
                |state| {
                    let still_the_leavers = state.as_ref().is_some_and(|record| {
                        record.status == RequestStatus::Open
                            && record.agent.as_ref() == Some(leaver)
                    });
                    // Moved, settled or escalated since the sweep read it: the command
                    // names the agent it has, which writes nothing.
                    let agent = match state.as_ref().and_then(|record| record.agent.clone()) {
                        Some(current) if !still_the_leavers => current,
                        _ => agent.clone(),
                    };
                    Ok(RequestCommand::Assign(AssignRequest {
                        agent,
                        reason: reason.clone(),
                        agent_cleared: true,
                    }))
                },
            )
            .await;
        match written {
            Ok(written) if !written.event_types.is_empty() => Ok(Some((agent, written.position))),
            Ok(_) => Ok(None),
            Err(ApiError::Domain(
                DomainError::RequestAlreadyResolved | DomainError::RequestAlreadyEscalated { .. },
            )) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
