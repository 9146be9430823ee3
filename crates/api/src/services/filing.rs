//! `FileComplaint`: a filing validated, given its case number (R-P1) and filed.
//!
//! The case number and the case are one append group: written in one transaction, both
//! or neither, so a refused filing takes no number. A filing is almost always new, so
//! it is first tried as new, with no read of its own; what reads used to check, the
//! writer checks in the group's batch:
//! - the request id was not used for another request: none of the ids that request
//!   would have written is stored (a condition on the number);
//! - the customer is registered and not forgotten: known from customers this process
//!   saw live, on condition that their stream does not end with their erasure (on the
//!   case). Only the erasure, which ends the stream, conflicts: a contact or a callback
//!   logged meanwhile does not (conditioned on the stream's version, filings for a
//!   customer being contacted in a loop kept losing until their deadline);
//! - the filer is cleared for the customer's level (R-C6): the level read at a stream
//!   version (or cached with it, trusted while the stream is still there), held to the
//!   commit by the condition that no event that changes a level
//!   (`customer::LEVEL_EVENT_TYPES`: an update, a merge, the erasure) follows that
//!   version. A raise between the read and the commit refuses the group and the filing
//!   reads the customer again (`NOT_FOUND` once above the filer); a contact or a callback
//!   meanwhile does not conflict.
//!
//! When the number turns out to be a repeat, or anything fails, the filing is tried
//! again carefully: look up what the request id already wrote, answer a finished filing
//! with its first answer, finish a half-done one (filed before numbers and cases were
//! written together) with the number it was given, else read the customer and file.
//!
//! One instant per filing: taken once when the filing arrives, it is the filing's time,
//! the number's, and (by `case_register::case_year`) the year of the register it is
//! numbered in, however long the filing waits or retries: a filing straddling midnight
//! on 31 December is numbered in the year it arrived, in that year's register.
//!
//! Contention a filing did not cause is not its caller's problem: a lost race for the
//! number (another filing, another node, a failed group ahead in the queue) is retried
//! inside the caller's deadline ([`deadline`]), re-reading what changed.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Utc};
use kefu_domain::case_register::{self, CaseRegister, CaseRegisterEvent, IssueCaseNumber};
use kefu_domain::complaint::*;
use kefu_domain::customer::{Customer, LEVEL_EVENT_TYPES};
use kefu_domain::{
    Aggregate, Attachment, CaseNumber, ComplaintId, Confidentiality, CustomerId, DomainError,
};
use kefu_domain::{Tier, Versioned};
use kefu_event_store::{Condition, Direction, StoreError, StreamId};

use super::complaint::Complaints;
use crate::access::{authorize, Access, Rpc};
use crate::auth::Principal;
use crate::commands::{self, decode, stream};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;

/// Customer streams this process saw registered and not forgotten, with the version
/// seen and the tier at that version: a filing relies on it only on condition that the
/// stream is still at that version.
#[derive(Debug, Default)]
pub struct LiveCustomers(std::sync::Mutex<HashMap<String, Seen>>);

/// A customer as a filing relies on them: the stream version read, the level access
/// checks (R-C6) and the tier that chooses the case's targets (R-T2).
#[derive(Debug, Clone, Copy)]
struct Seen {
    version: u64,
    level: Confidentiality,
    tier: Tier,
}

/// Customers remembered per process; the map is emptied when full (it is only a cache).
const LIVE_CUSTOMERS: usize = 100_000;

impl LiveCustomers {
    /// The version, level and tier a customer had when last read.
    fn version(&self, stream: &StreamId) -> Option<Seen> {
        self.0.lock().ok()?.get(stream.as_str()).copied()
    }

    fn remember(&self, stream: &StreamId, seen: Seen) {
        if let Ok(mut live) = self.0.lock() {
            if live.len() >= LIVE_CUSTOMERS {
                live.clear();
            }
            live.insert(stream.to_string(), seen);
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
    /// The command, for a customer of `tier`, under the policy in force `policy`.
    fn command(
        &self,
        complaint_id: ComplaintId,
        case_number: CaseNumber,
        tier: Tier,
        policy: &Versioned,
    ) -> FileComplaint {
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
            policy: policy.clone(),
            tier,
            from_request: None,
        }
    }
}

/// A filing's number and case on their way to the writer: one outcome each.
type PendingFiling = std::pin::Pin<
    Box<dyn std::future::Future<Output = Vec<Result<commands::Written, StoreError>>> + Send>,
>;

/// What every try of one filing shares: its year, register, ids and instant.
struct Numbering<'a> {
    year: i32,
    register: StreamId,
    register_request: commands::Request<'a>,
    case_request: commands::Request<'a>,
    unused: Vec<Condition>,
    complaint_id: ComplaintId,
    case: StreamId,
    /// On condition that no level event followed the version read (the erasure, a
    /// reclassification, a merge): the case is refused then, and the customer read again.
    customer: StreamId,
    filing: &'a Filing,
    at: DateTime<Utc>,
    /// R-T3: the policy in force when the filing arrived, the case's for good.
    policy: Versioned,
}

/// Why a filing's group was not written, when trying again may succeed.
enum Retry {
    /// The number was this request's already: answer through the lookup.
    Repeated,
    /// Another filing took the number first (or a group ahead of it failed).
    Number,
    /// The customer was forgotten, reclassified or merged since they were read.
    Customer,
}

impl Retry {
    /// What the group's outcomes (number, case) call for; `Err` when retrying would not
    /// help (the refusal, as the store gave it).
    fn of(
        outcomes: Vec<Result<commands::Written, StoreError>>,
        customer: &StreamId,
    ) -> Result<Retry, ApiError> {
        let mut outcomes = outcomes.into_iter();
        let number = outcomes.next();
        let case = outcomes.next();
        match (number, case) {
            (Some(Ok(number)), _) if number.repeated => Ok(Retry::Repeated),
            (Some(Err(StoreError::WrongExpectedVersion { .. })), _) => Ok(Retry::Number),
            (
                _,
                Some(Err(StoreError::ConditionFailed(
                    Condition::LastNot { stream_id, .. } | Condition::NoneSince { stream_id, .. },
                ))),
            ) if &stream_id == customer => Ok(Retry::Customer),
            // The refused append says why; its partner only that it went unwritten.
            (Some(Err(error)), _) if !matches!(error, StoreError::GroupIncomplete) => {
                Err(error.into())
            }
            (_, Some(Err(error))) => Err(error.into()),
            _ => Err(StoreError::CommitFailed("a filing went unanswered".into()).into()),
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
    let category = f.code("category", &req.category, kefu_domain::taxonomy::category);
    let cause = f.code("cause", &req.cause, kefu_domain::taxonomy::cause);
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

/// How long a filing keeps retrying contention it did not cause when the caller set no
/// deadline; with one (`grpc-timeout`), until shortly before it.
const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(10);
/// What is left of the caller's deadline for the last try and the answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// Until when a filing may retry: the caller's `grpc-timeout` less a margin, else
/// [`DEFAULT_RETRY_BUDGET`] from now. The server's call layer ends the call at the
/// `grpc-timeout` itself (`DEADLINE_EXCEEDED`); stopping [`DEADLINE_MARGIN`] before it
/// leaves the last try room to answer `ABORTED` `CONTENDED` first.
pub(super) fn deadline(metadata: &tonic::metadata::MetadataMap) -> Instant {
    let budget = metadata
        .get("grpc-timeout")
        .and_then(|value| crate::call::grpc_timeout(value.as_bytes()))
        .map_or(DEFAULT_RETRY_BUDGET, |timeout| timeout.saturating_sub(DEADLINE_MARGIN));
    Instant::now() + budget
}

/// The last number of `year`'s register and the version holding it: the head this
/// process last wrote (`head`, held under `Ctx::register`), else as stored.
pub(super) async fn register_head(
    commands: &commands::Commands,
    head: &Option<super::RegisterHead>,
    year: i32,
    register: &StreamId,
) -> Result<(Option<CaseNumber>, u64), ApiError> {
    Ok(match *head {
        Some(known) if known.year == year => (known.last, known.version),
        _ => {
            let (last, version, _) = commands.load::<CaseRegister>(register).await?;
            (last, version)
        }
    })
}

impl Complaints {
    pub(super) async fn file(
        &self,
        who: Principal,
        req: pb::FileComplaintRequest,
        deadline: Instant,
    ) -> Result<pb::FileComplaintResponse, ApiError> {
        let access = authorize(&who, Rpc::FileComplaint)?;
        let fingerprint = commands::Fingerprint::of("FileComplaint", &req);
        let request = commands::Request::new(&who, fingerprint, &req.request_id, None)?;
        // The filing's one instant (see the module's documentation).
        let at = self.ctx.commands.now();
        match self.file_as_new(&access, &request, &req, at, deadline).await {
            Ok(Some(answer)) => return Ok(answer),
            Ok(None) => {}
            Err(error) => tracing::debug!(%error, "filing as new failed; filing carefully"),
        }
        self.file_carefully(&access, &request, &req, at, deadline).await
    }

    /// The filing as a new request; `None` when the request id turns out to have
    /// taken a case number before.
    async fn file_as_new(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        req: &pb::FileComplaintRequest,
        at: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<Option<pb::FileComplaintResponse>, ApiError> {
        let filing = validate(req, at)?;
        let customer = stream(filing.customer_id.stream_name())?;
        // R-C6: nobody writes to the record of a customer they may not read. What was
        // cached (level, and the tier choosing the targets) is trusted while the stream
        // has not moved (one indexed read), so a reclassification anywhere is seen; the
        // window left is that read to the commit.
        let now = self.ctx.commands.store().stream_version(&customer).await?;
        let seen = match self.ctx.live_customers.version(&customer) {
            Some(seen) if seen.version == now => seen,
            _ => self.check_customer(access, &customer, &filing.customer_id).await?,
        };
        access.hide(seen.level, "customer", &filing.customer_id)?;
        let filed = self.issue_and_file(access, request, &filing, seen, at, deadline).await;
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
        access: &Access,
        request: &commands::Request<'_>,
        req: &pb::FileComplaintRequest,
        at: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<pb::FileComplaintResponse, ApiError> {
        let complaint_request = request.tagged("complaint");
        let register_request = request.tagged("register");
        // One lookup answers both parts of a retried filing.
        let lookup = self.ctx.commands.lookup(&complaint_request).await?;
        if let Some(earlier) = lookup.written("complaint", &complaint_request)? {
            earlier.log_repeat();
            return self.filed_answer(&earlier).await;
        }
        let issued_before = lookup.written("register", &register_request)?;
        let filing = validate(req, at)?;
        let customer = stream(filing.customer_id.stream_name())?;
        let seen = self.check_customer(access, &customer, &filing.customer_id).await?;
        access.hide(seen.level, "customer", &filing.customer_id)?;
        if let Some(issued) = issued_before {
            return self.file_numbered(&complaint_request, &filing, &issued, seen.tier).await;
        }
        let filed = self.issue_and_file(access, request, &filing, seen, at, deadline).await?;
        // `None`: another try of this very request took the number since the lookup.
        filed.ok_or_else(|| ApiError::Contended { stream: register_request.request_id.to_owned() })
    }

    /// Reads the customer: registered and not forgotten, or the reason not; remembers
    /// a live one and returns the version read and the level at it. A merged
    /// duplicate is checked at its survivor's level (R-C6) before it is said merged.
    async fn check_customer(
        &self,
        access: &Access,
        customer: &StreamId,
        customer_id: &CustomerId,
    ) -> Result<Seen, ApiError> {
        let (record, version, _) = self.ctx.commands.load_unopened::<Customer>(customer).await?;
        if let Some(record) = record.as_ref().filter(|record| record.merged_into.is_some()) {
            access.hide(self.ctx.governing_level(record).await?, "customer", customer_id)?;
        }
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
            Some(record) => {
                let seen = Seen { version, level: record.confidentiality, tier: record.tier };
                self.ctx.live_customers.remember(customer, seen);
                Ok(seen)
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
        tier: Tier,
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
        // Filed under the policy in force now, in the year its number was issued in.
        let policy = self.ctx.policies.current();
        let command = filing.command(issued.complaint_id, issued.case_number, tier, &policy);
        let events = Complaint::decide(&None, ComplaintCommand::File(command), commands.now())?;
        let case = stream(issued.complaint_id.stream_name())?;
        let written =
            commands.submit::<Complaint>(&case, request, &None, &events, 0).await?.await?;
        Ok(answer(issued.complaint_id, issued.case_number, &written))
    }

    /// R-P1 and the filing: the next number of the register of the filing's year and the
    /// case filed under it, as one append group. `None` when the number turns out to be
    /// a repeat: this request took its number before.
    ///
    /// Numbers are taken one at a time under `ctx.register`, from the head this process
    /// last wrote (loaded from the log when unknown); the group is queued under the
    /// lock but its commit is awaited outside it, so concurrent filings share commits.
    /// The number's append expects the version it was decided on: number N only ever
    /// lands at version N, so a lost race (another node, or a failed group ahead in the
    /// queue) is a conflict that reloads the head and tries again, as is a change to
    /// the customer's stream since it was read; until `deadline`. `seen`: the customer as
    /// the access check read them, held so until the commit.
    async fn issue_and_file(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        filing: &Filing,
        seen: Seen,
        at: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<Option<pb::FileComplaintResponse>, ApiError> {
        let policy = self.ctx.policies.current();
        // R-P1, R-T1: the business-local year of the filing's instant.
        let year = case_register::case_year(at, policy.policy.time_zone);
        let register_request = request.tagged("register");
        let complaint_id = ComplaintId::generate();
        let numbering = Numbering {
            year,
            register: stream(case_register::stream_name(year))?,
            // The number is refused if the key served another request.
            unused: vec![Condition::Absent(register_request.unrelated_ids())],
            register_request,
            case_request: request.tagged("complaint"),
            complaint_id,
            case: stream(complaint_id.stream_name())?,
            customer: stream(filing.customer_id.stream_name())?,
            filing,
            at,
            policy,
        };
        let mut seen = seen;
        // Sealing the case needs the customer's key: fetched now, not under the lock.
        self.ctx.commands.store().data_key(&filing.customer_id.to_string()).await?;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let (pending, case_number) = self.queue_numbered(&numbering, seen).await?;
            let outcomes = pending.await;
            if let [Ok(number), Ok(filed)] = outcomes.as_slice() {
                if !number.repeated {
                    return Ok(Some(answer(complaint_id, case_number, filed)));
                }
            }
            // Whatever happened, the head we cached is not known to be stored.
            *self.ctx.register.lock().await = None;
            let retry = Retry::of(outcomes, &numbering.customer)?;
            if matches!(retry, Retry::Repeated) {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                tracing::warn!(tries, "a filing kept losing races until its deadline");
                return Err(ApiError::Contended { stream: numbering.register.to_string() });
            }
            if matches!(retry, Retry::Customer) {
                // Forgotten, merged or reclassified since read: reading them again says
                // so (CUSTOMER_FORGOTTEN, CUSTOMER_MERGED, or NOT_FOUND once above the
                // filer, R-C6), else the filing is held to the new read.
                let customer = &numbering.customer;
                seen = self.check_customer(access, customer, &filing.customer_id).await?;
                access.hide(seen.level, "customer", &filing.customer_id)?;
            }
            if tries > 4 {
                // Let the queue ahead of us drain before taking yet another number.
                tokio::time::sleep(Duration::from_millis(u64::from(tries.min(20)))).await;
            }
        }
    }

    /// Takes the next number of the register (under `ctx.register`) and queues it with
    /// the case, on condition that the customer has not been forgotten, reclassified nor
    /// merged since `seen` was read. The commit is awaited by the caller, outside the lock.
    async fn queue_numbered(
        &self,
        numbering: &Numbering<'_>,
        seen: Seen,
    ) -> Result<(PendingFiling, CaseNumber), ApiError> {
        let commands = &self.ctx.commands;
        let Numbering { year, register, complaint_id, at, .. } = numbering;
        let mut head = self.ctx.register.lock().await;
        let (last, version) = register_head(commands, &head, *year, register).await?;
        let zone = numbering.policy.policy.time_zone;
        let command = IssueCaseNumber { complaint_id: *complaint_id, year: *year, zone };
        let events = CaseRegister::decide(&last, command, *at)?;
        let Some(CaseRegisterEvent::CaseNumberIssued(issued)) = events.first().cloned() else {
            return Err(ApiError::Internal("the register issued nothing".into()));
        };
        let request = &numbering.register_request;
        let unused = numbering.unused.clone();
        let number = commands
            .prepare::<CaseRegister>(register, request, &last, &events, version, unused)
            .await?;
        let case_number = issued.case_number;
        let command = ComplaintCommand::File(numbering.filing.command(
            *complaint_id,
            case_number,
            seen.tier,
            &numbering.policy,
        ));
        let filed = Complaint::decide(&None, command, *at)?;
        let live = vec![Condition::NoneSince {
            stream_id: numbering.customer.clone(),
            version: seen.version,
            event_types: LEVEL_EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        }];
        let (case, request) = (&numbering.case, &numbering.case_request);
        let filed = commands.prepare::<Complaint>(case, request, &None, &filed, 0, live).await?;
        let pending = commands.submit_group(vec![number, filed])?;
        *head = Some(super::RegisterHead {
            year: *year,
            last: Some(case_number),
            version: version + 1,
        });
        // Queued in order (each backend has one writer per process): the next filing may
        // take the next number while this one waits for its commit.
        Ok((Box::pin(pending), case_number))
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
