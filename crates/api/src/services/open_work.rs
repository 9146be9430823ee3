//! R-C6 with R-C3: who holds a customer's open work, for the check on a change of the
//! customer's level (a case's handler or a request's agent not cleared for the new level
//! holds it up, as the customer's own agent does).

use kefu_domain::complaint::{CaseStatus, Complaint};
use kefu_domain::customer::OpenWork;
use kefu_domain::request::{RequestStatus, ServiceRequest};
use kefu_domain::CustomerId;
use kefu_event_store::Condition;

use super::Ctx;
use crate::access::{duty_clearance, Duty};
use crate::commands::stream;
use crate::error::ApiError;

/// The read models that know a customer's open work.
const PROJECTIONS: [&str; 3] = ["customers", "complaints", "requests"];

/// A customer's open work as a change of level relies on it, and what holds it so.
pub(crate) struct OpenWorkHeld {
    pub work: Vec<OpenWork>,
    /// Each open case or request still has the holder read when the change commits:
    /// no assignment was stored on it since (one is `ABORTED`, and a retry reads again).
    pub held: Vec<Condition>,
}

impl Ctx {
    /// The open cases and requests of `customer_id` (and of records merged into it), read
    /// from the read models caught up to the log's head: an assignment acknowledged
    /// before the call is seen.
    pub(crate) async fn open_work(
        &self,
        customer_id: CustomerId,
    ) -> Result<OpenWorkHeld, ApiError> {
        let head = self.commands.store().head_position().await?;
        for projection in PROJECTIONS {
            self.caught_up_in(head, projection).await?;
        }
        let mut work = Vec::new();
        let mut held = Vec::new();
        // The read models list the open work; each holder is read from its own stream,
        // with the version the hold names, so the two cannot disagree.
        for item in self.models.open_work_of(&customer_id.to_string()).await? {
            let (stream_id, holder, label, duty, assigned) = match item.kind {
                "complaint" => {
                    let stream_id = stream(format!("complaint-{}", item.id))?;
                    let (case, version, _) =
                        self.commands.load_unopened::<Complaint>(&stream_id).await?;
                    let Some(case) = case.filter(|case| case.status == CaseStatus::Open) else {
                        continue;
                    };
                    let label = format!("case {}", case.case_number);
                    (stream_id, (case.handler, version), label, Duty::HandleCase, "HandlerAssigned")
                }
                _ => {
                    let stream_id = stream(format!("request-{}", item.id))?;
                    let (request, version, _) =
                        self.commands.load_unopened::<ServiceRequest>(&stream_id).await?;
                    let Some(request) =
                        request.filter(|request| request.status == RequestStatus::Open)
                    else {
                        continue;
                    };
                    let label = format!("request {}", item.id);
                    (
                        stream_id,
                        (request.agent, version),
                        label,
                        Duty::OwnCustomer,
                        "RequestAssigned",
                    )
                }
            };
            let (holder, version) = holder;
            held.push(Condition::NoneSince {
                stream_id,
                version,
                event_types: vec![assigned.to_owned()],
            });
            if let Some(holder) = holder {
                let clearance = duty_clearance(&self.tokens, holder.as_str(), duty);
                work.push(OpenWork { label, holder, clearance });
            }
        }
        Ok(OpenWorkHeld { work, held })
    }
}
