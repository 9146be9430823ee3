//! `AuditService`: replay, point-in-time state, verification and export of a case,
//! through the access table (compliance; the case's customer within clearance, or its
//! fields redacted in a replay), each call recorded before anything is returned (see
//! `casefile`).

use kefu_domain::complaint::ComplaintEvent;
use kefu_event_store::{Direction, Verification};
use tonic::{Request, Response};

use super::events::{event_out, EventStream, Reply};
use super::Ctx;
use crate::access::{authorize, Access, Rpc};
use crate::auth::{principal, Principal};
use crate::casefile::{CaseFiles, Inspector, Point};
use crate::commands::{decode, stream};
use crate::convert as cv;
use crate::error::ApiError;
use crate::feed::Reader;
use crate::inproc::source_of;
use crate::pb;
use crate::pb::audit_service_server::AuditService;

#[derive(Debug, Clone)]
pub struct Audit {
    pub ctx: Ctx,
}

impl Audit {
    fn files(&self) -> CaseFiles {
        CaseFiles::new(self.ctx.commands.clone())
    }

    /// Refuses, before anything is read or recorded, a case whose customer is above
    /// the caller's clearance (R-C6: not found, named as the caller named it, so a case
    /// number tells nothing more), then a case against the caller (R-P4).
    async fn check_target(&self, access: &Access, complaint: &str) -> Result<(), ApiError> {
        self.check_case(access, complaint).await.map_err(|error| error.naming(complaint))
    }

    async fn check_case(&self, access: &Access, complaint: &str) -> Result<(), ApiError> {
        let id = self.ctx.resolve_complaint(complaint).await?;
        let mut first = self
            .ctx
            .commands
            .store()
            .read_stream(&stream(id.stream_name())?, 1, Direction::Forward, 1)
            .await?;
        // Only the customer id is wanted: no key is looked up.
        kefu_event_store::show_erased(&mut first);
        let filed = decode::<ComplaintEvent>(&first)?.into_iter().find_map(|event| match event {
            ComplaintEvent::ComplaintFiled(filed) => Some(filed),
            _ => None,
        });
        let Some(filed) = filed else {
            return Err(ApiError::NotFound { what: "complaint", id: id.to_string() });
        };
        access.hide(self.ctx.customer_level(filed.customer_id).await?, "complaint", &id)?;
        access.not_respondent(filed.respondent.as_ref())
    }
}

/// The access table says who may inspect cases; the caller becomes the recorded inspector.
/// The inspection is recorded with the request's source (`grpc`, or `console`).
fn inspector(
    who: &Principal,
    rpc: Rpc,
    source: &'static str,
) -> Result<(Access, Inspector), ApiError> {
    let access = authorize(who, rpc)?;
    Ok((access, Inspector { actor: who.id.clone(), roles: who.role_names(), source }))
}

fn verification_out(verification: &Verification) -> pb::VerifyCaseResponse {
    match verification {
        Verification::Intact { events, head_hash } => pb::VerifyCaseResponse {
            intact: true,
            events: *events,
            head_hash: hex::encode(head_hash),
            first_bad_version: 0,
            reason: String::new(),
        },
        Verification::Broken { version, reason } => pb::VerifyCaseResponse {
            intact: false,
            events: version.saturating_sub(1),
            head_hash: String::new(),
            first_bad_version: *version,
            reason: reason.to_string(),
        },
    }
}

#[tonic::async_trait]
impl AuditService for Audit {
    type ReplayCaseStream = EventStream<pb::ReplayCaseResponse>;

    async fn replay_case(
        &self,
        request: Request<pb::ReplayCaseRequest>,
    ) -> Reply<Self::ReplayCaseStream> {
        let caller = principal(&request)?;
        let (access, who) = inspector(&caller, Rpc::ReplayCase, source_of(&request))?;
        let complaint = request.into_inner().complaint;
        self.check_target(&access, &complaint).await?;
        let history = self.files().replay(&complaint, &who).await?;
        // Field by field, as on the event feed.
        let shown = Reader::new(self.ctx.clone(), caller).show(history).await?;
        let messages = shown
            .into_iter()
            .map(|event| Ok(pb::ReplayCaseResponse { event: Some(event_out(event)) }));
        Ok(Response::new(Box::pin(futures::stream::iter(messages))))
    }

    async fn get_case_as_of(
        &self,
        request: Request<pb::GetCaseAsOfRequest>,
    ) -> Reply<pb::GetCaseAsOfResponse> {
        let caller = principal(&request)?;
        let (access, who) = inspector(&caller, Rpc::GetCaseAsOf, source_of(&request))?;
        let req = request.into_inner();
        self.check_target(&access, &req.complaint).await?;
        let point = match req.point {
            Some(pb::get_case_as_of_request::Point::Version(version)) => Point::Version(version),
            Some(pb::get_case_as_of_request::Point::AsOf(at)) => {
                let mut f = cv::Fields::new();
                let at = f.as_of("as_of", Some(&at), self.ctx.commands.now());
                f.finish()?;
                Point::Time(cv::present(at)?)
            }
            None => return Err(ApiError::field("point", "set as_of or version").into()),
        };
        let state = self.files().as_of(&req.complaint, point, &who).await?;
        // Field by field, as on the event feed (compliance reads as no case's handler).
        let withheld = crate::withheld::withheld(&self.ctx, &caller, false, &state.events).await?;
        let mut complaint = super::complaint::view(&state.case, state.version);
        withheld.view(&mut complaint);
        Ok(Response::new(pb::GetCaseAsOfResponse {
            complaint: Some(complaint),
            version: state.version,
            recorded_at: Some(cv::timestamp(state.recorded_at)),
        }))
    }

    async fn verify_case(
        &self,
        request: Request<pb::VerifyCaseRequest>,
    ) -> Reply<pb::VerifyCaseResponse> {
        let (access, who) = inspector(&principal(&request)?, Rpc::VerifyCase, source_of(&request))?;
        let complaint = request.into_inner().complaint;
        self.check_target(&access, &complaint).await?;
        let verification = self.files().verify(&complaint, &who).await?;
        Ok(Response::new(verification_out(&verification)))
    }

    async fn export_case(
        &self,
        request: Request<pb::ExportCaseRequest>,
    ) -> Reply<pb::ExportCaseResponse> {
        let caller = principal(&request)?;
        let (access, who) = inspector(&caller, Rpc::ExportCase, source_of(&request))?;
        let complaint = request.into_inner().complaint;
        self.check_target(&access, &complaint).await?;
        // Field by field, as on the event feed.
        let mut reader = Reader::new(self.ctx.clone(), caller);
        let dossier = self.files().export_as(&complaint, &who, Some(&mut reader)).await?;
        let dossier_json = serde_json::to_string(&dossier)
            .map_err(|error| ApiError::Internal(format!("dossier does not serialize: {error}")))?;
        Ok(Response::new(pb::ExportCaseResponse {
            dossier_json,
            intact: dossier.verification.intact,
            head_hash: dossier.verification.head_hash.unwrap_or_default(),
        }))
    }
}
