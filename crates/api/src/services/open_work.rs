//! R-C6 with R-C3: who holds a customer's open work, for the check on a change of the
//! customer's level (a case's handler or a request's agent not cleared for the new level
//! holds it up, as the customer's own agent does), and the sweep after the change that
//! hands over what was given out in the moment between that check and the commit.

use kefu_domain::complaint::{CaseStatus, Complaint};
use kefu_domain::customer::OpenWork;
use kefu_domain::request::{RequestStatus, ServiceRequest};
use kefu_domain::{ComplaintId, CustomerId, ServiceRequestId};
use kefu_event_store::Condition;

use super::request::Requests;
use super::request_handover::Handover;
use super::Ctx;
use crate::access::{duty_clearance, Duty};
use crate::auth::Principal;
use crate::commands::stream;
use crate::error::ApiError;

/// How often the sweep tries to hand one piece of work over.
const SWEEP_TRIES: u32 = 3;

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
        who: &Principal,
        customer_id: CustomerId,
    ) -> Result<OpenWorkHeld, ApiError> {
        let me = who.staff_id().ok();
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
                    // R-P4: a case against the caller is not named to them.
                    let against_caller = me.is_some() && case.respondent == me;
                    let label = (!against_caller).then(|| format!("case {}", case.case_number));
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
                    let label = Some(format!("request {}", item.id));
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

    /// After a change of `customer_id`'s level (or a merge into a higher survivor)
    /// committed under `request_id`: open work held by someone not cleared for the level
    /// now goes to the least-loaded cleared colleague, under keys derived from the change
    /// (a retry repeats nothing). The check before the change refuses what it can see;
    /// this catches a case or request created or assigned for the old level between that
    /// check's read and the commit (work created after the commit reads the new level).
    /// The change is committed, so nothing here fails its answer: a handover that cannot
    /// be made (nobody cleared, read models that cannot catch up) is logged.
    pub(crate) async fn sweep_open_work(
        &self,
        who: &Principal,
        request_id: &str,
        customer_id: CustomerId,
    ) {
        if let Err(error) = self.sweep(who, request_id, customer_id).await {
            tracing::warn!(%customer_id, %error, "the sweep of open work after a change of level stopped: work given out in the race stays until reassigned");
        }
    }

    async fn sweep(
        &self,
        who: &Principal,
        request_id: &str,
        customer_id: CustomerId,
    ) -> Result<(), ApiError> {
        let head = self.commands.store().head_position().await?;
        for projection in PROJECTIONS {
            self.caught_up_in(head, projection).await?;
        }
        for item in self.models.open_work_of(&customer_id.to_string()).await? {
            let key = format!("classify/{request_id}/{}", item.id);
            // A colleague chosen who leaves meanwhile, or a write that lost a race: the
            // next try chooses again under the same key (nothing was written under it).
            let mut tries = 0;
            loop {
                tries += 1;
                match self.sweep_one(who, &key, item.kind, &item.id).await {
                    Err(error) if tries < SWEEP_TRIES => {
                        tracing::debug!(%error, item = %item.id, "sweep: trying again");
                    }
                    Err(error) => {
                        tracing::warn!(%error, item = %item.id, "sweep: open work stays with someone not cleared for its customer");
                        break;
                    }
                    Ok(()) => break,
                }
            }
        }
        Ok(())
    }

    /// One item of [`Self::sweep`]: handed over if its holder may no longer hold it.
    async fn sweep_one(
        &self,
        who: &Principal,
        key: &str,
        kind: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        if kind == "complaint" {
            let Ok(id) = id.parse::<ComplaintId>() else { return Ok(()) };
            self.hand_over_from_unfit(who, key, "UpdateCustomer/handover", id).await?;
            return Ok(());
        }
        let Ok(id) = id.parse::<ServiceRequestId>() else { return Ok(()) };
        let request_stream = stream(id.stream_name())?;
        let (request, _, _) =
            self.commands.load_unopened::<ServiceRequest>(&request_stream).await?;
        let Some(request) = request.filter(|r| r.status == RequestStatus::Open) else {
            return Ok(());
        };
        let Some(agent) = request.agent else { return Ok(()) };
        let level = self.customer_standing(request.customer_id).await?.level;
        if self.agent_clearance(&agent).is_some_and(|clearance| level <= clearance) {
            return Ok(());
        }
        let how = Handover {
            fingerprint: "UpdateCustomer/request",
            reason: "agent not cleared for the customer's level (R-C6)",
        };
        let requests = Requests { ctx: self.clone() };
        requests.hand_over_from(who, &agent, id, key, how).await?;
        Ok(())
    }
}
