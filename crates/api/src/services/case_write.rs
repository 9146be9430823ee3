//! R-C6 at the commit of a case write: the customer's level the access check read stays
//! true until the write commits. For a caller who could lose clearance (anyone below the
//! highest level) the write is conditioned on the customer's stream being still as read;
//! when it moved meanwhile the write reads it again, so a raise since is seen.

use kefu_domain::complaint::{Case, Complaint, ComplaintCommand};
use kefu_domain::customer::CustomerForgotten;
use kefu_domain::{ComplaintId, DomainError};
use kefu_event_store::Condition;

use super::Ctx;
use crate::access::{Access, CaseCustomer};
use crate::commands::{self, stream};
use crate::error::ApiError;

/// How often a write reads the customer again before giving up (`ABORTED`).
pub(crate) const TRIES: u32 = 5;

/// A case's customer as a write read it, and what holds it so until the commit.
pub(crate) struct Standing {
    pub customer: CaseCustomer,
    pub held: Vec<Condition>,
}

impl Standing {
    /// Whether `error` says the customer changed before the commit (worth a new read).
    pub fn moved(&self, error: &ApiError) -> bool {
        let ApiError::Contended { stream } = error else { return false };
        self.held.iter().filter_map(Condition::stream_id).any(|held| held.as_str() == stream)
    }
}

impl Ctx {
    /// The case's customer as a write relies on it: with `hold`, the write is to be
    /// conditioned on the customer's stream being still as read. `NOT_FOUND` for no case.
    pub(crate) async fn standing(
        &self,
        complaint_id: ComplaintId,
        hold: bool,
    ) -> Result<Standing, ApiError> {
        let customer = self.case_customer(complaint_id).await?.ok_or_else(|| {
            ApiError::NotFound { what: "complaint", id: complaint_id.to_string() }
        })?;
        let mut held: Vec<Condition> = customer.held.iter().filter(|_| hold).cloned().collect();
        // R-C8: nothing new on the case of someone erased, even racing the erasure.
        if let Some(customer_stream) = customer.held.first().and_then(Condition::stream_id) {
            held.push(Condition::LastNot {
                stream_id: customer_stream.clone(),
                event_type: CustomerForgotten::EVENT_TYPE.to_owned(),
            });
        }
        Ok(Standing { customer, held })
    }

    /// Runs `command` on the case once `access` passes on it as it stands (level first,
    /// then the respondent and the relationship), with the customer held as read: always
    /// with `hold` (the command relies on the level for others than the caller, e.g. a
    /// committee's members), else while the caller could lose clearance.
    pub(crate) async fn execute_on_case(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        complaint_id: ComplaintId,
        hold: bool,
        command: impl Fn(&Option<Case>, &CaseCustomer) -> Result<ComplaintCommand, ApiError>,
    ) -> Result<commands::Written, ApiError> {
        let case = stream(complaint_id.stream_name())?;
        let mut tries = 0;
        loop {
            tries += 1;
            let hold = hold || access.may_lose_clearance();
            let standing = self.standing(complaint_id, hold).await?;
            // Level first (an uncleared caller learns nothing).
            access.hide(standing.customer.level, "complaint", &complaint_id)?;
            let written = self
                .commands
                .execute_if::<Complaint>(&case, request, standing.held.clone(), |state| {
                    let Some(case) = state else {
                        return Err(ApiError::NotFound {
                            what: "complaint",
                            id: complaint_id.to_string(),
                        });
                    };
                    access.on_case(case, &standing.customer)?;
                    // R-C8: nothing new once erased; in the command, so that a retry of
                    // an earlier request is still looked up (and fails closed).
                    if standing.customer.forgotten {
                        return Err(DomainError::CustomerForgotten.into());
                    }
                    command(state, &standing.customer)
                })
                .await;
            match written {
                Err(error) if tries < TRIES && standing.moved(&error) => {}
                written => return written,
            }
        }
    }
}
