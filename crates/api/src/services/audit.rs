//! `AuditService`: replay, point-in-time state, verification and export of a case, for
//! compliance only, each call recorded before anything is returned (see `casefile`).

use kefu_event_store::Verification;
use tonic::{Request, Response};

use super::events::{event_out, EventStream, Reply};
use super::Ctx;
use crate::auth::{principal, Principal, Role};
use crate::casefile::{CaseFiles, Inspector, Point};
use crate::convert as cv;
use crate::error::ApiError;
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
}

/// Only compliance (and admin) may inspect cases; the caller becomes the recorded inspector.
fn inspector(who: &Principal, action: &str) -> Result<Inspector, ApiError> {
    who.require_any(&[Role::Compliance], action)?;
    Ok(Inspector {
        actor: who.id.clone(),
        roles: who.roles.iter().map(|role| format!("{role:?}").to_lowercase()).collect(),
        source: "grpc",
    })
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
        let who = inspector(&principal(&request)?, "replay cases")?;
        let history = self.files().replay(&request.into_inner().complaint, &who).await?;
        let messages = history
            .into_iter()
            .map(|event| Ok(pb::ReplayCaseResponse { event: Some(event_out(event)) }));
        Ok(Response::new(Box::pin(futures::stream::iter(messages))))
    }

    async fn get_case_as_of(
        &self,
        request: Request<pb::GetCaseAsOfRequest>,
    ) -> Reply<pb::GetCaseAsOfResponse> {
        let who = inspector(&principal(&request)?, "read cases as of a moment")?;
        let req = request.into_inner();
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
        Ok(Response::new(pb::GetCaseAsOfResponse {
            complaint: Some(super::complaint::view(&state.case, state.version, &self.ctx.policy)),
            version: state.version,
            recorded_at: Some(cv::timestamp(state.recorded_at)),
        }))
    }

    async fn verify_case(
        &self,
        request: Request<pb::VerifyCaseRequest>,
    ) -> Reply<pb::VerifyCaseResponse> {
        let who = inspector(&principal(&request)?, "verify cases")?;
        let verification = self.files().verify(&request.into_inner().complaint, &who).await?;
        Ok(Response::new(verification_out(&verification)))
    }

    async fn export_case(
        &self,
        request: Request<pb::ExportCaseRequest>,
    ) -> Reply<pb::ExportCaseResponse> {
        let who = inspector(&principal(&request)?, "export cases")?;
        let dossier = self.files().export(&request.into_inner().complaint, &who).await?;
        let dossier_json = serde_json::to_string(&dossier)
            .map_err(|error| ApiError::Internal(format!("dossier does not serialize: {error}")))?;
        Ok(Response::new(pb::ExportCaseResponse {
            dossier_json,
            intact: dossier.verification.intact,
            head_hash: dossier.verification.head_hash.unwrap_or_default(),
        }))
    }
}
