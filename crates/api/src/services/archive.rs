//! `ComplaintService.ArchiveCases` (R-P12): a year's closed cases into the archive, only
//! those the caller may act on (R-C6: within clearance; R-P4: not a case against them).
//! The others are left untouched and unmentioned, so the answer tells nothing of them.

use kefu_domain::complaint::{ArchiveCase, Complaint, ComplaintCommand};
use kefu_domain::{ComplaintId, DomainError};
use kefu_projection::queries::ComplaintFilter;
use kefu_projection::{ComplaintRow, Page};

use super::case_write::TRIES;
use super::complaint::Complaints;
use crate::access::{authorize, Access, Rpc};
use crate::auth::Principal;
use crate::commands::{self, stream, Fingerprint};
use crate::convert as cv;
use crate::error::ApiError;
use crate::pb;

/// What one case of the call came to.
enum Outcome {
    Counted,
    /// Above the caller's clearance or against the caller: not theirs to act on.
    NotTheirs,
}

impl Complaints {
    /// R-P12: every closed case of `year` the caller may act on into the archive, one
    /// command per case, each under its own key derived from the request's, so a retry
    /// archives only the rest.
    pub(super) async fn archive(
        &self,
        who: Principal,
        req: pb::ArchiveCasesRequest,
    ) -> Result<pb::ArchiveCasesResponse, ApiError> {
        use chrono::Datelike;
        let access = authorize(&who, Rpc::ArchiveCases)?;
        let request = commands::Request::new(
            &who,
            Fingerprint::internal("ArchiveCases/case"),
            &req.request_id,
            None,
        )?;
        let this_year = self.ctx.commands.now().year();
        let year = i32::try_from(req.year).ok().filter(|year| (2000..=this_year).contains(year));
        let Some(year) = year else {
            return Err(ApiError::field("year", format!("must be from 2000 to {this_year}")));
        };
        // The read model only finds candidates, as a list would show them to the caller;
        // each case's own stream decides, with its customer's level held until the write.
        self.ctx.caught_up(self.ctx.commands.store().head_position().await?).await?;
        let filter = ComplaintFilter {
            year: Some(i64::from(year)),
            max_confidentiality_rank: Some(kefu_projection::confidentiality_rank(
                access.max_level(),
            )),
            not_respondent: Some(who.id.clone()),
            ..ComplaintFilter::default()
        };
        let mut answer = pb::ArchiveCasesResponse::default();
        let mut page = Page { after: None, size: 500 };
        loop {
            let paged = self.ctx.models.complaints(&filter, &page).await?;
            for row in paged.rows {
                self.archive_row(&access, &request, year, row, &mut answer).await?;
            }
            match paged.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        tracing::info!(
            year,
            archived = answer.archived.len(),
            skipped = answer.skipped.len(),
            "cases archived"
        );
        Ok(answer)
    }

    /// One case of an `ArchiveCases` call, under a key derived from the request's and
    /// the case number, counted in `answer` unless it is not the caller's to act on.
    async fn archive_row(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        year: i32,
        row: ComplaintRow,
        answer: &mut pb::ArchiveCasesResponse,
    ) -> Result<(), ApiError> {
        let id: ComplaintId = row
            .complaint_id
            .parse()
            .map_err(|_| ApiError::Internal("bad complaint id in read model".into()))?;
        let mut tries = 0;
        loop {
            tries += 1;
            let standing = self.ctx.standing(id, access.may_lose_clearance()).await?;
            // R-C6: raised above the caller's clearance since the read model saw it.
            if standing.customer.level > access.max_level() {
                return Ok(());
            }
            // Held as read (a raise before the commit fails it), not refused once the
            // customer is erased: archiving tells nothing new of them.
            let held = if access.may_lose_clearance() {
                standing.customer.held.clone()
            } else {
                Vec::new()
            };
            match self.archive_one(access, request, year, id, &row, held, answer).await {
                Ok(Outcome::Counted | Outcome::NotTheirs) => return Ok(()),
                Err(error) if tries < TRIES && standing.moved(&error) => {}
                Err(error) => return Err(error),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn archive_one(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        year: i32,
        id: ComplaintId,
        row: &ComplaintRow,
        held: Vec<kefu_event_store::Condition>,
        answer: &mut pb::ArchiveCasesResponse,
    ) -> Result<Outcome, ApiError> {
        let key = format!("{}/{}", request.request_id, row.case_number);
        let per_case = commands::Request { request_id: &key, ..request.clone() };
        let case_stream = stream(id.stream_name())?;
        if row.status == "open" {
            answer.still_open += 1;
            return Ok(Outcome::Counted);
        }
        // Archived by this request (a retry): named again, at its position.
        if row.status == "archived" {
            match self.ctx.commands.repeated(&case_stream, &per_case).await? {
                Some(written) => {
                    answer.position = answer.position.max(written.position);
                    answer.archived.push(row.case_number.clone());
                }
                None => answer.already_archived += 1,
            }
            return Ok(Outcome::Counted);
        }
        let outcome = self
            .ctx
            .commands
            .execute_if::<Complaint>(&case_stream, &per_case, held, |state| {
                // R-P4 on the case as it stands: never the caller's own complaint.
                if let Some(case) = state {
                    access.not_respondent(case.respondent.as_ref())?;
                }
                Ok(ComplaintCommand::Archive(ArchiveCase { year }))
            })
            .await;
        match outcome {
            Ok(written) => {
                answer.position = answer.position.max(written.position);
                answer.archived.push(row.case_number.clone());
            }
            Err(ApiError::PermissionDenied(_)) => return Ok(Outcome::NotTheirs),
            // Reopened since the read model saw it closed.
            Err(ApiError::Domain(DomainError::ComplaintNotClosed)) => answer.still_open += 1,
            Err(ApiError::Domain(DomainError::ComplaintArchived)) => answer.already_archived += 1,
            // R-P15: the callback is still owed; archived on a later call.
            Err(ApiError::Domain(error @ DomainError::CallbackWindowOpen { .. })) => {
                answer.skipped.push(pb::SkippedCase {
                    case_number: row.case_number.clone(),
                    reason: error.code().to_owned(),
                    archivable_after: cv::opt_timestamp(row.callback_due_at),
                });
            }
            Err(error) => return Err(error),
        }
        Ok(Outcome::Counted)
    }
}
