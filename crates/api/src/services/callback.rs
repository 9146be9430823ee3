//! `CallbackService`: callbacks on customers and on closed complaints (R-P13..R-P15),
//! and what is due (R-C4, R-C5, R-P15).

use chrono::TimeDelta;
use kefu_domain::complaint::ComplaintCommand;
use kefu_domain::customer::{Customer, CustomerCommand};
use kefu_domain::{CallbackKind, LogCallback};
use kefu_projection::queries::DueKind;
use tonic::{Request, Response, Status};

use super::Ctx;
use crate::access::{authorize, Relation, Rpc};
use crate::auth::{principal, Principal};
use crate::commands::{self, stream};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;
use crate::pb::callback_service_server::CallbackService;

#[derive(Debug, Clone)]
pub struct Callbacks {
    pub ctx: Ctx,
}

type Reply<T> = Result<Response<T>, Status>;

impl Callbacks {
    /// Whether the callback `written` reopened its case (R-P14): the events written now,
    /// or for a retry the last one its first call wrote, so a retry answers the same.
    async fn reopened(&self, written: &commands::Written) -> Result<bool, ApiError> {
        const REOPENED: &str = "ComplaintReopened";
        if !written.repeated {
            return Ok(written.event_types.contains(&REOPENED));
        }
        let case_stream = stream(written.stream.clone())?;
        let last = self
            .ctx
            .commands
            .read(&case_stream, written.version, kefu_event_store::Direction::Forward, 1)
            .await?;
        Ok(last.first().is_some_and(|event| event.event_type == REOPENED))
    }

    async fn log(
        &self,
        who: Principal,
        req: pb::LogCallbackRequest,
    ) -> Result<pb::LogCallbackResponse, ApiError> {
        let kind = cv::callback_kind(req.kind);
        let access = authorize(
            &who,
            match kind {
                Some(CallbackKind::Complaint) => Rpc::LogComplaintCallback,
                // An unknown kind is refused below; ask as for the stricter customer kind.
                _ => Rpc::LogCustomerCallback,
            },
        )?;
        let by = who.staff_id()?;
        let mut f = Fields::new();
        let kind = f.required("kind", kind);
        let channel = f.required("channel", cv::callback_channel(req.channel));
        let outcome = f.required("outcome", cv::callback_outcome(req.outcome));
        let party = if req.party == 0 {
            Some(None)
        } else {
            f.required("party", cv::callback_party(req.party)).map(Some)
        };
        let score = f.score("score", req.score);
        let comment = f.opt_text("comment", &req.comment);
        let called_at = f.time_or_now("called_at", req.called_at.as_ref(), self.ctx.commands.now());
        let about_complaint = kind == Some(CallbackKind::Complaint);
        let complaint_id = if about_complaint {
            f.complaint_id("complaint_id", &req.complaint_id).map(Some)
        } else {
            Some(None)
        };
        let customer_id = if about_complaint {
            Some(None)
        } else {
            f.customer_id("customer_id", &req.customer_id).map(Some)
        };
        f.finish()?;
        let callback = LogCallback {
            kind: present(kind)?,
            channel: present(channel)?,
            party: present(party)?,
            outcome: present(outcome)?,
            score: present(score)?,
            comment: present(comment)?,
            by,
            called_at: present(called_at)?,
        };
        let fingerprint = commands::Fingerprint::of("LogCallback", &req);
        let request =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        if let Some(complaint_id) = present(complaint_id)? {
            let written = self
                .ctx
                .execute_on_case(&access, &request, complaint_id, false, |_, _| {
                    Ok(ComplaintCommand::LogCallback(callback.clone()))
                })
                .await?;
            let reopened = self.reopened(&written).await?;
            if reopened {
                // R-C3: a reopened case whose handler left goes to someone active; the
                // answer comes when the reads include it.
                let handover = self.ctx.hand_over_reopened(&who, &req.request_id, complaint_id);
                if let Some(position) = handover.await? {
                    self.ctx.caught_up(position).await?;
                }
            }
            return Ok(pb::LogCallbackResponse {
                result: Some(cv::write_result(complaint_id.to_string(), &written)),
                reopened,
            });
        }
        let customer_id = present(present(customer_id)?)?;
        let governing = self.ctx.customer_level(customer_id).await?;
        let written = self
            .ctx
            .commands
            .execute::<Customer>(&stream(customer_id.stream_name())?, &request, |record| {
                access.on_customer_state(record.as_ref(), governing, &customer_id)?;
                Ok(CustomerCommand::LogCallback(callback.clone()))
            })
            .await?;
        Ok(pb::LogCallbackResponse {
            result: Some(cv::write_result(customer_id.to_string(), &written)),
            reopened: false,
        })
    }
}

#[tonic::async_trait]
impl CallbackService for Callbacks {
    async fn log_callback(
        &self,
        request: Request<pb::LogCallbackRequest>,
    ) -> Reply<pb::LogCallbackResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.log(who, request.into_inner()).await?))
    }

    async fn list_due_callbacks(
        &self,
        request: Request<pb::ListDueCallbacksRequest>,
    ) -> Reply<pb::ListDueCallbacksResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::ListDueCallbacks)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let owner = f.opt_staff("owner", &req.owner);
        let as_of = f.as_of("as_of", req.as_of.as_ref(), self.ctx.commands.now());
        if req.horizon_hours > 24 * 366 {
            f.violation("horizon_hours", "at most one year");
        }
        f.finish()?;
        let mut owner = present(owner)?.map(|o| o.to_string());
        let as_of = present(as_of)?;
        if access.relation() == Some(Relation::OwnRows) {
            let me = who.staff_id()?.to_string();
            if owner.as_ref().is_some_and(|o| o != &me) {
                return Err(ApiError::forbidden("agents list only their own due callbacks").into());
            }
            owner = Some(me);
        }
        self.ctx.caught_up(req.min_position).await?;
        let due = self
            .ctx
            .models
            .due_callbacks(
                as_of,
                TimeDelta::hours(i64::from(req.horizon_hours)),
                &self.ctx.policy(),
            )
            .await
            .map_err(ApiError::from)?;
        let due = due
            .into_iter()
            .filter(|item| owner.is_none() || item.owner == owner)
            .filter(|item| access.sees(&item.access))
            .map(|item| pb::DueCallback {
                kind: match item.kind {
                    DueKind::ComplaintCallback => pb::DueKind::ComplaintCallback,
                    DueKind::NewCustomerContact => pb::DueKind::NewCustomerContact,
                    DueKind::RoutineCallback => pb::DueKind::RoutineCallback,
                    DueKind::RequestCallback => pb::DueKind::RequestCallback,
                } as i32,
                customer_id: item.customer_id,
                complaint_id: item.complaint_id.unwrap_or_default(),
                case_number: item.case_number.unwrap_or_default(),
                request_id: item.request_id.unwrap_or_default(),
                owner: item.owner.unwrap_or_default(),
                due_at: Some(cv::timestamp(item.due_at)),
                overdue: item.overdue,
            })
            .collect();
        Ok(Response::new(pb::ListDueCallbacksResponse { due }))
    }
}
