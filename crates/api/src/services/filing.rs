//! `FileComplaint`: a filing validated, given its case number (R-P1) and filed.
//!
//! The case number and the case are one append group: written in one transaction, both
//! or neither, so a refused filing takes no number. A filing is almost always new, so
//! it is first tried as new, with no read of its own; what reads used to check, the
//! writer checks in the group's batch:
//! - the request id was not used for another request: none of the ids that request
//!   would have written is stored (a condition on the number);
//! - the customer is registered and not forgotten: known from customers this process
//!   saw live, on condition that their stream is still at the version seen (on the
//!   case; a change since, say a logged callback, costs a careful retry).
//!
//! When the number turns out to be a repeat, or anything fails, the filing is tried
//! again carefully: look up what the request id already wrote, answer a finished filing
//! with its first answer, finish a half-done one (filed before numbers and cases were
//! written together) with the number it was given, else read the customer and file.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kefu_domain::case_register::{self, CaseRegister, CaseRegisterEvent, IssueCaseNumber};
use kefu_domain::complaint::*;
use kefu_domain::customer::Customer;
use kefu_domain::{Aggregate, Attachment, CaseNumber, ComplaintId, CustomerId, DomainError};
use kefu_event_store::{Condition, Direction, StoreError, StreamId};

use super::complaint::Complaints;
use crate::auth::{Principal, Role};
use crate::commands::{self, decode, stream};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;

/// Customer streams this process saw registered and not forgotten, with the version
/// seen: a filing relies on it only on condition that the stream is still there.
#[derive(Debug, Default)]
pub struct LiveCustomers(std::sync::Mutex<HashMap<String, u64>>);

/// Customers remembered per process; the map is emptied when full (it is only a cache).
const LIVE_CUSTOMERS: usize = 100_000;

impl LiveCustomers {
    fn version(&self, stream: &StreamId) -> Option<u64> {
        self.0.lock().ok()?.get(stream.as_str()).copied()
    }

    fn remember(&self, stream: &StreamId, version: u64) {
        if let Ok(mut live) = self.0.lock() {
            if live.len() >= LIVE_CUSTOMERS {
                live.clear();
            }
            live.insert(stream.to_string(), version);
        }
    }

    fn forget(&self, stream: &StreamId) {
        if let Ok(mut live) = self.0.lock() {
            live.remove(stream.as_str());
        }
    }
}

/// A valid filing, before its case number.
#[derive(Clone)]
struct Filing {
    customer_id: CustomerId,
    category: kefu_domain::Text,
    cause: kefu_domain::Text,
    severity: kefu_domain::Severity,
    channel: kefu_domain::IntakeChannel,
    description: kefu_domain::Text,
    respondent: Option<kefu_domain::StaffId>,
    attachments: Vec<Attachment>,
    received_at: DateTime<Utc>,
}

impl Filing {
    fn command(&self, complaint_id: ComplaintId, case_number: CaseNumber) -> FileComplaint {
        let filing = self.clone();
        FileComplaint {
            complaint_id,
            case_number,
            customer_id: filing.customer_id,
            category: filing.category,
            cause: filing.cause,
            severity: filing.severity,
            channel: filing.channel,
            description: filing.description,
            respondent: filing.respondent,
            attachments: filing.attachments,
            received_at: filing.received_at,
        }
    }
}

fn answer(
    complaint_id: ComplaintId,
    case_number: CaseNumber,
    written: &commands::Written,
) -> pb::FileComplaintResponse {
    pb::FileComplaintResponse {
        result: Some(cv::write_result(complaint_id.to_string(), written)),
        case_number: case_number.to_string(),
    }
}

fn validate(req: &pb::FileComplaintRequest, now: DateTime<Utc>) -> Result<Filing, ApiError> {
    let mut f = Fields::new();
    let customer_id = f.customer_id("customer_id", &req.customer_id);
    let category = f.text("category", &req.category);
    let cause = f.text("cause", &req.cause);
    let severity = f.required("severity", cv::severity(req.severity));
    let channel = f.required("channel", cv::intake_channel(req.channel));
    let description = f.text("description", &req.description);
    let respondent = f.opt_staff("respondent", &req.respondent);
    let received_at = f.time_or_now("received_at", req.received_at.as_ref(), now);
    let mut attachments = Vec::with_capacity(req.attachments.len());
    if req.attachments.len() > 100 {
        f.violation("attachments", "at most 100 attachments");
    }
    for (i, attachment) in req.attachments.iter().take(100).enumerate() {
        let sha = (!attachment.sha256.is_empty()).then_some(attachment.sha256.as_str());
        match Attachment::new(&attachment.reference, sha) {
            Ok(attachment) => attachments.push(attachment),
            Err(error) => f.violation(&format!("attachments[{i}]"), error.reason),
        }
    }
    f.finish()?;
    let received_at = present(received_at)?;
    if received_at > now {
        return Err(DomainError::ReceivedInFuture.into());
    }
    Ok(Filing {
        customer_id: present(customer_id)?,
        category: present(category)?,
        cause: present(cause)?,
        severity: present(severity)?,
        channel: present(channel)?,
        description: present(description)?,
        respondent: present(respondent)?,
        attachments,
        received_at,
    })
}

impl Complaints {
    pub(super) async fn file(
        &self,
        who: Principal,
        req: pb::FileComplaintRequest,
    ) -> Result<pb::FileComplaintResponse, ApiError> {
        who.require_any(&[Role::Agent, Role::Supervisor, Role::Service], "file complaints")?;
        let request = commands::Request::new(&who, &req.request_id, None)?;
        match self.file_as_new(&request, &req).await {
            Ok(Some(answer)) => return Ok(answer),
            Ok(None) => {}
            Err(error) => tracing::debug!(%error, "filing as new failed; filing carefully"),
        }
        self.file_carefully(&request, &req).await
    }

    /// The filing as a new request; `None` when the request id turns out to have
    /// taken a case number before.
    async fn file_as_new(
        &self,
        request: &commands::Request<'_>,
        req: &pb::FileComplaintRequest,
    ) -> Result<Option<pb::FileComplaintResponse>, ApiError> {
        let filing = validate(req, self.ctx.commands.now())?;
        let customer = stream(filing.customer_id.stream_name())?;
        let version = match self.ctx.live_customers.version(&customer) {
            Some(version) => version,
            None => self.check_customer(&customer, &filing.customer_id).await?,
        };
        let filed = self.issue_and_file(request, &filing, version).await;
        if filed.is_err() {
            // Maybe the customer changed: the careful retry reads them again.
            self.ctx.live_customers.forget(&customer);
        }
        filed
    }

    /// The filing, after looking up what its request id already wrote: a retried
    /// filing gets its first answer even where filing anew would now be refused.
    async fn file_carefully(
        &self,
        request: &commands::Request<'_>,
        req: &pb::FileComplaintRequest,
    ) -> Result<pb::FileComplaintResponse, ApiError> {
        let complaint_request = request.tagged("complaint");
        let register_request = request.tagged("register");
        // One lookup answers both parts of a retried filing.
        let lookup = self.ctx.commands.lookup(&complaint_request).await?;
        if let Some(earlier) = lookup.written("complaint", &complaint_request)? {
            return self.filed_answer(&earlier).await;
        }
        let issued_before = lookup.written("register", &register_request)?;
        let filing = validate(req, self.ctx.commands.now())?;
        let customer = stream(filing.customer_id.stream_name())?;
        let version = self.check_customer(&customer, &filing.customer_id).await?;
        if let Some(issued) = issued_before {
            return self.file_numbered(&complaint_request, &filing, &issued).await;
        }
        self.issue_and_file(request, &filing, version).await?.ok_or_else(|| {
            // Another try of this very request took the number since the lookup.
            ApiError::Contended { stream: register_request.request_id.to_owned() }
        })
    }

    /// Reads the customer: registered and not forgotten, or the reason not; remembers
    /// a live one and returns the version read.
    async fn check_customer(
        &self,
        customer: &StreamId,
        customer_id: &CustomerId,
    ) -> Result<u64, ApiError> {
        let (record, version, _) = self.ctx.commands.load_unopened::<Customer>(customer).await?;
        match record {
            None => Err(ApiError::NotFound { what: "customer", id: customer_id.to_string() }),
            Some(record) if record.forgotten_at.is_some() => {
                self.ctx.live_customers.forget(customer);
                Err(DomainError::CustomerForgotten.into())
            }
            // A merged duplicate takes no new cases: they are filed for the survivor.
            Some(record) if record.merged_into.is_some() => {
                self.ctx.live_customers.forget(customer);
                Err(DomainError::CustomerMerged.into())
            }
            Some(_) => {
                self.ctx.live_customers.remember(customer, version);
                Ok(version)
            }
        }
    }

    /// Files the case under the number an earlier try of this request was given (a
    /// filing interrupted between the two appends, before they were one group).
    async fn file_numbered(
        &self,
        request: &commands::Request<'_>,
        filing: &Filing,
        issued: &commands::Written,
    ) -> Result<pb::FileComplaintResponse, ApiError> {
        let commands = &self.ctx.commands;
        // Read back what is stored: a retried request gets the number it was first given.
        let stored = commands
            .read(&stream(issued.stream.clone())?, issued.version, Direction::Forward, 1)
            .await?;
        let events: Vec<CaseRegisterEvent> = decode(&stored)?;
        let CaseRegisterEvent::CaseNumberIssued(issued) = events
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Internal("issued case number not found".into()))?;
        let events = Complaint::decide(
            &None,
            ComplaintCommand::File(filing.command(issued.complaint_id, issued.case_number)),
            commands.now(),
        )?;
        let case = stream(issued.complaint_id.stream_name())?;
        let written =
            commands.submit::<Complaint>(&case, request, &None, &events, 0).await?.await?;
        Ok(answer(issued.complaint_id, issued.case_number, &written))
    }

    /// R-P1 and the filing: the next number of this year's register and the case filed
    /// under it, as one append group. `None` when the number turns out to be a repeat:
    /// this request took its number before.
    ///
    /// Numbers are taken one at a time under `ctx.register`, from the head this process
    /// last wrote (loaded from the log when unknown); the group is queued under the
    /// lock but its commit is awaited outside it, so concurrent filings share commits.
    /// The number's append expects the version it was decided on: number N only ever
    /// lands at version N, so a lost race (another node, or a failed group ahead in the
    /// queue) is a conflict that reloads the head and tries again.
    async fn issue_and_file(
        &self,
        request: &commands::Request<'_>,
        filing: &Filing,
        customer_version: u64,
    ) -> Result<Option<pb::FileComplaintResponse>, ApiError> {
        use chrono::Datelike;
        let commands = &self.ctx.commands;
        let year = commands.now().year();
        let register = stream(case_register::stream_name(year))?;
        let (register_request, case_request) =
            (request.tagged("register"), request.tagged("complaint"));
        let complaint_id = ComplaintId::generate();
        let case = stream(complaint_id.stream_name())?;
        // The number is refused if the key served another request; the case (and with
        // it the number) if the customer changed since they were seen live.
        let unused = vec![Condition::Absent(register_request.unrelated_ids())];
        let customer = stream(filing.customer_id.stream_name())?;
        let live = vec![Condition::StreamAt { stream_id: customer, version: customer_version }];
        // Sealing the case needs the customer's key: fetched now, not under the lock.
        commands.store().data_key(&filing.customer_id.to_string()).await?;
        for _ in 0..16 {
            let mut head = self.ctx.register.lock().await;
            let (last, version) = match *head {
                Some(known) if known.year == year => (known.last, known.version),
                _ => {
                    let (last, version, _) = commands.load::<CaseRegister>(&register).await?;
                    (last, version)
                }
            };
            let now = commands.now();
            let events = CaseRegister::decide(&last, IssueCaseNumber { complaint_id }, now)?;
            let Some(CaseRegisterEvent::CaseNumberIssued(issued)) = events.first().cloned() else {
                return Err(ApiError::Internal("the register issued nothing".into()));
            };
            let number = commands
                .prepare::<CaseRegister>(
                    &register,
                    &register_request,
                    &last,
                    &events,
                    version,
                    unused.clone(),
                )
                .await?;
            let command = ComplaintCommand::File(filing.command(complaint_id, issued.case_number));
            let filed = Complaint::decide(&None, command, now)?;
            let filed = commands
                .prepare::<Complaint>(&case, &case_request, &None, &filed, 0, live.clone())
                .await?;
            let pending = commands.submit_group(vec![number, filed])?;
            *head = Some(super::RegisterHead {
                year,
                last: Some(issued.case_number),
                version: version + 1,
            });
            // Queued in order (each backend has one writer per process): the next filing
            // may take the next number while this one waits for its commit.
            drop(head);
            let outcomes = pending.await;
            if let [Ok(number), Ok(filed)] = outcomes.as_slice() {
                if !number.repeated {
                    return Ok(Some(answer(complaint_id, issued.case_number, filed)));
                }
            }
            // Whatever happened, the head we cached is not known to be stored.
            *self.ctx.register.lock().await = None;
            let mut outcomes = outcomes.into_iter();
            match outcomes.next() {
                Some(Ok(number)) if number.repeated => return Ok(None),
                // A lost race for the number: reload the head and take the next one.
                Some(Err(StoreError::WrongExpectedVersion { .. })) => continue,
                // The refused append says why; its partner only that it went unwritten.
                Some(Err(error)) if !matches!(error, StoreError::GroupIncomplete) => {
                    return Err(error.into())
                }
                _ => {}
            }
            let refusal = outcomes.find_map(Result::err);
            return Err(refusal
                .unwrap_or_else(|| StoreError::CommitFailed("a filing went unanswered".into()))
                .into());
        }
        Err(ApiError::Contended { stream: register.to_string() })
    }

    async fn filed_answer(
        &self,
        earlier: &commands::Written,
    ) -> Result<pb::FileComplaintResponse, ApiError> {
        let recorded = self
            .ctx
            .commands
            .read(&stream(earlier.stream.clone())?, 1, Direction::Forward, 1)
            .await?;
        let events: Vec<ComplaintEvent> = decode(&recorded)?;
        let Some(ComplaintEvent::ComplaintFiled(filed)) = events.into_iter().next() else {
            return Err(ApiError::RequestIdReused(
                "request id was used for another request".into(),
            ));
        };
        Ok(pb::FileComplaintResponse {
            result: Some(cv::write_result(filed.complaint_id.to_string(), earlier)),
            case_number: filed.case_number.to_string(),
        })
    }
}
