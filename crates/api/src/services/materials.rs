//! `ComplaintService.AddMaterial` (R-P2) and `RecordImplementation` (R-P9), and how a
//! case shows both: materials by reference (kefu keeps no document, only where it is,
//! its media type, size and SHA-256), and the record of how a signed opinion was carried
//! out.

use kefu_domain::complaint::{
    AddMaterial, Case, ComplaintCommand, Implementation, Material, MaterialRef,
    RecordImplementation,
};
use tonic::{Request, Response, Status};

use super::complaint::Complaints;
use crate::access::{authorize, Rpc};
use crate::auth::principal;
use crate::commands::Fingerprint;
use crate::convert::{self as cv, present, Fields};
use crate::pb;

impl Complaints {
    /// R-P2: a material by reference, by someone who may write the case (never its
    /// respondent, R-P4), at any stage before archiving.
    pub(super) async fn add_material_rpc(
        &self,
        request: Request<pb::AddMaterialRequest>,
    ) -> Result<Response<pb::AddMaterialResponse>, Status> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::AddMaterial)?;
        let me = who.staff_id()?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let material = match MaterialRef::checked(
            &req.reference,
            &req.media_type,
            req.size_bytes,
            &req.sha256,
        ) {
            Ok(material) => Some(material),
            Err(errors) => {
                for error in errors {
                    f.violation(error.field, error.reason);
                }
                None
            }
        };
        let supersedes = (req.supersedes != 0).then_some(req.supersedes);
        let reason = f.opt_text("reason", &req.reason);
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("AddMaterial", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::AddMaterial(AddMaterial {
                        by: me.clone(),
                        material: present(material.clone())?,
                        supersedes,
                        reason: present(reason.clone())?,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::AddMaterialResponse { result: Some(result) }))
    }

    /// R-P9: the specialist's record of how the signed opinion was carried out.
    pub(super) async fn record_implementation_rpc(
        &self,
        request: Request<pb::RecordImplementationRequest>,
    ) -> Result<Response<pb::RecordImplementationResponse>, Status> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::RecordImplementation)?;
        let me = who.staff_id()?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let summary = f.text("summary", &req.summary);
        let now = self.ctx.commands.now();
        let at = f.time_or_now("implemented_at", req.implemented_at.as_ref(), now);
        let result = self
            .run(
                &who,
                &access,
                Fingerprint::of("RecordImplementation", &req),
                &req.request_id,
                req.expected_version,
                &req.complaint_id,
                f,
                None,
                |_, _| {
                    Ok(ComplaintCommand::RecordImplementation(RecordImplementation {
                        by: me.clone(),
                        summary: present(summary.clone())?,
                        implemented_at: present(at)?,
                    }))
                },
            )
            .await?;
        Ok(Response::new(pb::RecordImplementationResponse { result: Some(result) }))
    }
}

/// R-P2: a case's materials as the API shows them.
pub(crate) fn materials_out(case: &Case) -> Vec<pb::CaseMaterial> {
    case.materials.iter().map(material_out).collect()
}

fn material_out(material: &Material) -> pb::CaseMaterial {
    pb::CaseMaterial {
        number: material.number,
        reference: material.reference.clone(),
        media_type: material.media_type.clone().unwrap_or_default(),
        size_bytes: material.size_bytes,
        sha256: material.sha256.clone().unwrap_or_default(),
        added_by: material.added_by.as_ref().map(ToString::to_string).unwrap_or_default(),
        added_at: Some(cv::timestamp(material.added_at)),
        supersedes: material.supersedes.unwrap_or_default(),
        reason: material.reason.as_ref().map(ToString::to_string).unwrap_or_default(),
        superseded_by: material.superseded_by.unwrap_or_default(),
    }
}

/// R-P9: the current round's implementation records.
pub(crate) fn implementations_out(case: &Case) -> Vec<pb::Implementation> {
    case.round.implementations.iter().map(implementation_out).collect()
}

fn implementation_out(implementation: &Implementation) -> pb::Implementation {
    pb::Implementation {
        by: implementation.by.to_string(),
        summary: implementation.summary.to_string(),
        implemented_at: Some(cv::timestamp(implementation.implemented_at)),
        recorded_at: Some(cv::timestamp(implementation.recorded_at)),
    }
}
