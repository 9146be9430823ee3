//! `complaints` projection → `rm_complaints` (one row per case), `rm_callbacks` (one
//! row per callback, with the case's handler, channel and category at that moment) and
//! the monthly aggregates of both (`report_aggregates`), open cases per handler
//! (`live_counts`) and the quality metrics' aggregates (`quality`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use kefu_domain::complaint::{stage, CaseStatus, ComplaintEvent, StageFacts};
use kefu_domain::customer::CustomerEvent;
use kefu_domain::{taxonomy, CallbackLogged, ReplyKind};

use chrono_tz::Tz;
use kefu_domain::calendar::business_month;

use super::live_counts::{self, CaseCounts};
use super::quality::{self, QualityCase, QualityDeltas};
use super::report_aggregates::{self, Deltas};
use super::{decode, insert_rows, load_rows, stream_key, upsert_rows, Decoded};
use crate::error::{to_sql, ProjectionError};
use crate::event::Event;
use crate::params;
use crate::runner::Projection;
use crate::sql::{DbRow, DbTx, Param};

pub const TABLE: &str = "rm_complaints";
pub const CALLBACKS_TABLE: &str = "rm_callbacks";

const COLUMNS: &[&str] = &[
    "complaint_id",
    "case_number",
    "year",
    "customer_id",
    "category",
    "cause",
    "severity",
    "channel",
    "status",
    "stage",
    "handler",
    "respondent",
    "specialist",
    "escalated_to",
    "signer",
    "signer_capacity",
    "received_at",
    "filed_at",
    "filed_month",
    "first_response_at",
    "first_response_seconds",
    "signed_at",
    "final_reply_at",
    "first_closed_at",
    "close_seconds",
    "closed_at",
    "callback_pending",
    "callbacks",
    "last_callback_at",
    "last_callback_outcome",
    "reopen_count",
    "archived_at",
    "round_investigations",
    "round_drafted",
    "round_signed",
    "round_final_reply",
    "last_position",
    "policy_version",
    "first_response_due_at",
    "first_response_at_risk_at",
    "resolution_due_at",
    "resolution_at_risk_at",
    "callback_due_at",
    "callback_at_risk_at",
    "contacts",
    "closes",
];

const CALLBACK_COLUMNS: &[&str] = &[
    "position",
    "customer_id",
    "complaint_id",
    "kind",
    "channel",
    "party",
    "outcome",
    "score",
    "by_staff",
    "called_at",
    "month",
    "handler",
    "intake_channel",
    "category",
];

/// A row of `rm_complaints`.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplaintRow {
    pub complaint_id: String,
    pub case_number: String,
    pub year: i64,
    pub customer_id: String,
    pub category: String,
    pub cause: String,
    pub severity: String,
    pub channel: String,
    /// `open`, `closed` or `archived`.
    pub status: String,
    /// Finer than status: `filed`, `assigned`, `investigating`, `drafted`, `escalated`,
    /// `signed`, `replied`, `closed`, `archived`.
    pub stage: String,
    pub handler: Option<String>,
    pub respondent: Option<String>,
    pub specialist: Option<String>,
    pub escalated_to: Option<String>,
    pub signer: Option<String>,
    pub signer_capacity: Option<String>,
    pub received_at: DateTime<Utc>,
    pub filed_at: DateTime<Utc>,
    pub filed_month: String,
    pub first_response_at: Option<DateTime<Utc>>,
    /// From receipt to first response (R-P7).
    pub first_response_seconds: Option<i64>,
    pub signed_at: Option<DateTime<Utc>>,
    pub final_reply_at: Option<DateTime<Utc>>,
    pub first_closed_at: Option<DateTime<Utc>>,
    /// From receipt to first closure.
    pub close_seconds: Option<i64>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Closed and not yet called back since (R-P15).
    pub callback_pending: bool,
    pub callbacks: i64,
    pub last_callback_at: Option<DateTime<Utc>>,
    pub last_callback_outcome: Option<String>,
    pub reopen_count: i64,
    pub archived_at: Option<DateTime<Utc>>,
    pub round_investigations: i64,
    pub round_drafted: bool,
    pub round_signed: bool,
    pub round_final_reply: bool,
    pub last_position: i64,
    /// R-T3: the policy version the case is held to.
    pub policy_version: i64,
    /// R-P7 under the case's policy: when the first response is due.
    pub first_response_due_at: DateTime<Utc>,
    /// R-T5: when the first response is at risk.
    pub first_response_at_risk_at: DateTime<Utc>,
    /// When the case should be closed, under its policy.
    pub resolution_due_at: DateTime<Utc>,
    /// R-T5: when the resolution is at risk.
    pub resolution_at_risk_at: DateTime<Utc>,
    /// R-P15 under the case's policy: when the callback after the latest closure is due.
    pub callback_due_at: Option<DateTime<Utc>>,
    /// R-T5: when that callback is at risk.
    pub callback_at_risk_at: Option<DateTime<Utc>>,
    /// How often the complainant was reached: `ComplainantContacted` and `ReplySent`.
    pub contacts: i64,
    /// How often the case was closed.
    pub closes: i64,
}

impl ComplaintRow {
    pub(crate) fn from_row(row: &DbRow) -> Result<Self, ProjectionError> {
        Ok(ComplaintRow {
            complaint_id: row.text("complaint_id")?,
            case_number: row.text("case_number")?,
            year: row.int("year")?,
            customer_id: row.text("customer_id")?,
            category: row.text("category")?,
            cause: row.text("cause")?,
            severity: row.text("severity")?,
            channel: row.text("channel")?,
            status: row.text("status")?,
            stage: row.text("stage")?,
            handler: row.opt_text("handler")?,
            respondent: row.opt_text("respondent")?,
            specialist: row.opt_text("specialist")?,
            escalated_to: row.opt_text("escalated_to")?,
            signer: row.opt_text("signer")?,
            signer_capacity: row.opt_text("signer_capacity")?,
            received_at: row.time("received_at")?,
            filed_at: row.time("filed_at")?,
            filed_month: row.text("filed_month")?,
            first_response_at: row.opt_time("first_response_at")?,
            first_response_seconds: row.opt_int("first_response_seconds")?,
            signed_at: row.opt_time("signed_at")?,
            final_reply_at: row.opt_time("final_reply_at")?,
            first_closed_at: row.opt_time("first_closed_at")?,
            close_seconds: row.opt_int("close_seconds")?,
            closed_at: row.opt_time("closed_at")?,
            callback_pending: row.bool("callback_pending")?,
            callbacks: row.int("callbacks")?,
            last_callback_at: row.opt_time("last_callback_at")?,
            last_callback_outcome: row.opt_text("last_callback_outcome")?,
            reopen_count: row.int("reopen_count")?,
            archived_at: row.opt_time("archived_at")?,
            round_investigations: row.int("round_investigations")?,
            round_drafted: row.bool("round_drafted")?,
            round_signed: row.bool("round_signed")?,
            round_final_reply: row.bool("round_final_reply")?,
            last_position: row.int("last_position")?,
            policy_version: row.int("policy_version")?,
            first_response_due_at: row.time("first_response_due_at")?,
            first_response_at_risk_at: row.time("first_response_at_risk_at")?,
            resolution_due_at: row.time("resolution_due_at")?,
            resolution_at_risk_at: row.time("resolution_at_risk_at")?,
            callback_due_at: row.opt_time("callback_due_at")?,
            callback_at_risk_at: row.opt_time("callback_at_risk_at")?,
            contacts: row.int("contacts")?,
            closes: row.int("closes")?,
        })
    }

    fn params(&self) -> Vec<Param> {
        Vec::from(params![
            self.complaint_id.as_str(),
            self.case_number.as_str(),
            self.year,
            self.customer_id.as_str(),
            self.category.as_str(),
            self.cause.as_str(),
            self.severity.as_str(),
            self.channel.as_str(),
            self.status.as_str(),
            self.stage.as_str(),
            self.handler.clone(),
            self.respondent.clone(),
            self.specialist.clone(),
            self.escalated_to.clone(),
            self.signer.clone(),
            self.signer_capacity.clone(),
            self.received_at,
            self.filed_at,
            self.filed_month.as_str(),
            self.first_response_at,
            self.first_response_seconds,
            self.signed_at,
            self.final_reply_at,
            self.first_closed_at,
            self.close_seconds,
            self.closed_at,
            self.callback_pending,
            self.callbacks,
            self.last_callback_at,
            self.last_callback_outcome.clone(),
            self.reopen_count,
            self.archived_at,
            self.round_investigations,
            self.round_drafted,
            self.round_signed,
            self.round_final_reply,
            self.last_position,
            self.policy_version,
            self.first_response_due_at,
            self.first_response_at_risk_at,
            self.resolution_due_at,
            self.resolution_at_risk_at,
            self.callback_due_at,
            self.callback_at_risk_at,
            self.contacts,
            self.closes,
        ])
    }

    fn stage(&self) -> &'static str {
        let status = match self.status.as_str() {
            "archived" => CaseStatus::Archived,
            "closed" => CaseStatus::Closed,
            _ => CaseStatus::Open,
        };
        stage(StageFacts {
            status,
            final_reply_sent: self.round_final_reply,
            signed: self.round_signed,
            escalated: self.escalated_to.is_some(),
            drafted: self.round_drafted,
            investigated: self.round_investigations > 0,
            has_handler: self.handler.is_some(),
        })
    }
}

/// The `complaints` projection; months are counted in `zone`, the business time zone
/// (R-T1).
#[derive(Debug, Clone, Copy)]
pub struct Complaints {
    pub zone: Tz,
}

impl Default for Complaints {
    fn default() -> Self {
        Complaints { zone: kefu_domain::Policy::default().time_zone }
    }
}

/// The shape and meaning of the rows; bumped when they change. 2: the deadlines of the
/// case's terms (R-T3). 3: also categories and causes outside the taxonomy read as
/// `unlisted` (R-P3). 4: the monthly aggregates of the reports (issue 18). 5: open
/// cases per handler (issue 18). 6: contacts and closes per case, and the quality
/// metrics' aggregates (issue 22).
const SCHEMA_VERSION: u32 = 6;

impl Projection for Complaints {
    fn name(&self) -> &'static str {
        "complaints"
    }

    /// The rows' schema and the zone their months are counted in: configuring another
    /// zone rebuilds the months from the log on start, like a schema change.
    fn version(&self) -> u32 {
        // FNV-1a of the zone's name, folded below a million.
        let fingerprint =
            self.zone.name().bytes().fold(2_166_136_261u32, |hash, byte| {
                (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
            });
        SCHEMA_VERSION * 1_000_000 + fingerprint % 1_000_000
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            "ComplaintFiled",
            "HandlerAssigned",
            "HandlerRecused",
            "ComplainantContacted",
            "InvestigationRecorded",
            "OpinionDrafted",
            "ComplaintEscalated",
            "OpinionSigned",
            "ReplySent",
            "ComplaintClosed",
            "ComplaintReopened",
            "CallbackLogged",
            "CaseArchived",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            TABLE,
            CALLBACKS_TABLE,
            report_aggregates::COMPLAINTS_MONTHLY,
            report_aggregates::DURATIONS_MONTHLY,
            report_aggregates::SATISFACTION_MONTHLY,
            live_counts::HANDLER_OPEN_CASES,
        ]
    }

    /// The quality metrics' complaint rows: service requests keep theirs in the same
    /// tables (the `requests` projection).
    fn shared_tables(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (quality::QUALITY_MONTHLY, "kind = 'complaint'"),
            (quality::QUALITY_DURATIONS_MONTHLY, "kind = 'complaint'"),
        ]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut DbTx,
        events: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(tx, events, self.zone))
    }
}

async fn apply(tx: &mut DbTx, events: &[&Event], zone: Tz) -> Result<(), ProjectionError> {
    let mut decoded = Vec::with_capacity(events.len());
    for event in events {
        match decode(event)? {
            Decoded::Complaint(change) => {
                decoded.push((
                    event.position,
                    Some(stream_key(event).to_owned()),
                    Change::Complaint(change),
                ));
            }
            Decoded::Customer(CustomerEvent::CallbackLogged(callback)) => {
                decoded.push((event.position, None, Change::CustomerCallback(callback)));
            }
            Decoded::Customer(_) | Decoded::Staff(_) | Decoded::Request(_) | Decoded::Other => {}
        }
    }
    let mut keys: Vec<String> = decoded.iter().filter_map(|(_, id, _)| id.clone()).collect();
    keys.sort();
    keys.dedup();
    let mut rows: HashMap<String, ComplaintRow> = HashMap::with_capacity(keys.len());
    for row in load_rows(tx, TABLE, "complaint_id", &keys).await? {
        let row = ComplaintRow::from_row(&row)?;
        rows.insert(row.complaint_id.clone(), row);
    }
    // The cases as the aggregates count them now: what changes is taken back from there.
    let before = rows.clone();
    let mut deltas = Deltas::default();
    let mut counts = CaseCounts::default();
    let mut quality = QualityDeltas::default();

    let mut dirty: Vec<String> = Vec::new();
    let mut filed: Vec<String> = Vec::new();
    let mut callbacks: Vec<Vec<Param>> = Vec::new();
    for (position, complaint_id, change) in decoded {
        let position = to_sql("position", position)?;
        match (change, complaint_id) {
            (Change::CustomerCallback(callback), _) => {
                callbacks.push(callback_params(position, &callback, None, zone));
                deltas.callback(&callback, None, zone);
            }
            (Change::Complaint(ComplaintEvent::ComplaintFiled(e)), Some(complaint_id)) => {
                if rows.contains_key(&complaint_id) {
                    continue;
                }
                let row = ComplaintRow {
                    complaint_id: complaint_id.clone(),
                    case_number: e.case_number.to_string(),
                    year: i64::from(e.case_number.year()),
                    customer_id: e.customer_id.to_string(),
                    // Prose in a legacy event is shown as `unlisted`, never as a label.
                    category: taxonomy::category_label(e.category.as_str()).to_owned(),
                    cause: taxonomy::cause_label(e.cause.as_str()).to_owned(),
                    severity: e.severity.to_string(),
                    channel: e.channel.to_string(),
                    status: "open".into(),
                    stage: "filed".into(),
                    handler: None,
                    respondent: e.respondent.map(|r| r.to_string()),
                    specialist: None,
                    escalated_to: None,
                    signer: None,
                    signer_capacity: None,
                    received_at: e.received_at,
                    filed_at: e.filed_at,
                    // R-R1: months of receipt, business-local (R-T1).
                    filed_month: business_month(e.received_at, zone),
                    first_response_at: None,
                    first_response_seconds: None,
                    signed_at: None,
                    final_reply_at: None,
                    first_closed_at: None,
                    close_seconds: None,
                    closed_at: None,
                    callback_pending: false,
                    callbacks: 0,
                    last_callback_at: None,
                    last_callback_outcome: None,
                    reopen_count: 0,
                    archived_at: None,
                    round_investigations: 0,
                    round_drafted: false,
                    round_signed: false,
                    round_final_reply: false,
                    last_position: position,
                    policy_version: to_sql("policy_version", e.terms.policy_version)?,
                    first_response_due_at: e.terms.first_response_due_at,
                    first_response_at_risk_at: e.terms.first_response_at_risk_at,
                    resolution_due_at: e.terms.resolution_due_at,
                    resolution_at_risk_at: e.terms.resolution_at_risk_at,
                    callback_due_at: None,
                    callback_at_risk_at: None,
                    contacts: 0,
                    closes: 0,
                };
                rows.insert(complaint_id.clone(), row);
                filed.push(complaint_id.clone());
                dirty.push(complaint_id);
            }
            (Change::Complaint(event), Some(complaint_id)) => {
                let Some(row) = rows.get_mut(&complaint_id) else { continue };
                if let ComplaintEvent::CallbackLogged(callback) = &event {
                    callbacks.push(callback_params(position, callback, Some(row), zone));
                    deltas.callback(callback, Some(row), zone);
                }
                apply_change(row, event);
                row.stage = row.stage().to_owned();
                row.last_position = position;
                dirty.push(complaint_id);
            }
            (Change::Complaint(_), None) => {}
        }
    }
    mark_reissued_numbers(tx, &mut rows, &filed).await?;
    dirty.sort();
    dirty.dedup();
    for id in &dirty {
        if let Some(row) = before.get(id) {
            deltas.case(row, -1);
            counts.case(row, -1);
            quality.case(&QualityCase::complaint(row), -1);
        }
        if let Some(row) = rows.get(id) {
            deltas.case(row, 1);
            counts.case(row, 1);
            quality.case(&QualityCase::complaint(row), 1);
        }
    }
    deltas.write(tx).await?;
    counts.write(tx).await?;
    quality.write(tx).await?;
    let changed = dirty.iter().filter_map(|id| rows.get(id)).map(ComplaintRow::params).collect();
    upsert_rows(tx, TABLE, "complaint_id", COLUMNS, changed).await?;
    insert_rows(
        tx,
        CALLBACKS_TABLE,
        CALLBACK_COLUMNS,
        "ON CONFLICT (position) DO NOTHING",
        callbacks,
    )
    .await
}

/// A case number issued twice keeps the number on its first case; each later case gets
/// it with `/2`, `/3`… (`2027-000001/2`), in log order, so `case_number` stays unique and
/// the projection goes on. Case numbers are unique by construction since the register
/// of a year only issues that year's numbers (R-P1), but a log written before then may
/// hold a number issued twice by a filing that straddled midnight: the log cannot be
/// rewritten, and stopping the read models on it would stop them for good.
async fn mark_reissued_numbers(
    tx: &mut DbTx,
    rows: &mut HashMap<String, ComplaintRow>,
    filed: &[String],
) -> Result<(), ProjectionError> {
    if filed.is_empty() {
        return Ok(());
    }
    let numbers: Vec<String> =
        filed.iter().filter_map(|id| rows.get(id)).map(|row| row.case_number.clone()).collect();
    // Usually none is taken: one query for the batch finds out.
    let taken = load_rows(tx, TABLE, "case_number", &numbers).await?;
    let mut holders: HashMap<String, usize> = HashMap::new();
    for row in &taken {
        let number = row.text("case_number")?;
        let suffixed = tx
            .fetch_all(
                "SELECT COUNT(*) AS n FROM rm_complaints WHERE case_number LIKE $1",
                &params![format!("{number}/%")],
            )
            .await?;
        let later = suffixed.first().map_or(Ok(0), |row| row.int("n"))?;
        let later = usize::try_from(later).map_err(|_| ProjectionError::Corrupt("count".into()))?;
        holders.insert(number, 1 + later);
    }
    for complaint_id in filed {
        let Some(row) = rows.get_mut(complaint_id) else { continue };
        let held = holders.entry(row.case_number.clone()).or_insert(0);
        *held += 1;
        if *held > 1 {
            tracing::warn!(
                case_number = %row.case_number,
                complaint_id = %complaint_id,
                "a case number was issued twice (before R-P1 was enforced by construction); the later case is listed as {}/{}",
                row.case_number,
                held
            );
            row.case_number = format!("{}/{held}", row.case_number);
        }
    }
    Ok(())
}

enum Change {
    Complaint(ComplaintEvent),
    CustomerCallback(CallbackLogged),
}

fn callback_params(
    position: i64,
    callback: &CallbackLogged,
    case: Option<&ComplaintRow>,
    zone: Tz,
) -> Vec<Param> {
    Vec::from(params![
        position,
        callback.customer_id.to_string(),
        callback.complaint_id.map(|id| id.to_string()),
        callback.kind.as_str(),
        callback.channel.as_str(),
        callback.party.map(|party| party.as_str()),
        callback.outcome.as_str(),
        callback.score.map(|score| i64::from(score.get())),
        callback.by.as_str(),
        callback.called_at,
        business_month(callback.called_at, zone),
        case.and_then(|case| case.handler.clone()),
        case.map(|case| case.channel.clone()),
        case.map(|case| case.category.clone()),
    ])
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds().max(0)
}

fn record_response(row: &mut ComplaintRow, at: DateTime<Utc>) {
    if row.first_response_at.is_none_or(|first| at < first) {
        row.first_response_at = Some(at);
        row.first_response_seconds = Some(seconds_between(row.received_at, at));
    }
}

fn apply_change(row: &mut ComplaintRow, event: ComplaintEvent) {
    match event {
        ComplaintEvent::ComplaintFiled(_) => {}
        ComplaintEvent::HandlerAssigned(e) => row.handler = Some(e.handler.to_string()),
        ComplaintEvent::HandlerRecused(e) => {
            if row.handler.as_deref() == Some(e.handler.as_str()) {
                row.handler = None;
            }
        }
        ComplaintEvent::ComplainantContacted(e) => {
            row.contacts += 1;
            record_response(row, e.contacted_at);
        }
        ComplaintEvent::InvestigationRecorded(_) => row.round_investigations += 1,
        ComplaintEvent::OpinionDrafted(e) => {
            row.specialist = Some(e.specialist.to_string());
            row.round_drafted = true;
        }
        ComplaintEvent::ComplaintEscalated(e) => row.escalated_to = Some(e.to.to_string()),
        ComplaintEvent::OpinionSigned(e) => {
            row.signer = Some(e.signer.to_string());
            row.signer_capacity = Some(e.capacity.to_string());
            row.signed_at = Some(e.signed_at);
            row.round_signed = true;
        }
        ComplaintEvent::ReplySent(e) => {
            row.contacts += 1;
            record_response(row, e.sent_at);
            if e.kind == ReplyKind::Final {
                row.final_reply_at = Some(e.sent_at);
                row.round_final_reply = true;
            }
        }
        ComplaintEvent::ComplaintClosed(e) => {
            row.status = "closed".into();
            row.closes += 1;
            row.closed_at = Some(e.closed_at);
            if row.first_closed_at.is_none() {
                row.first_closed_at = Some(e.closed_at);
                row.close_seconds = Some(seconds_between(row.received_at, e.closed_at));
            }
            row.callback_pending = true;
            row.callback_due_at = Some(e.callback_due_at);
            row.callback_at_risk_at = Some(e.callback_at_risk_at);
        }
        ComplaintEvent::ComplaintReopened(_) => {
            row.status = "open".into();
            row.reopen_count += 1;
            row.callback_pending = false;
            row.round_investigations = 0;
            row.round_drafted = false;
            row.round_signed = false;
            row.round_final_reply = false;
        }
        ComplaintEvent::CallbackLogged(e) => {
            row.callbacks += 1;
            row.last_callback_at = row.last_callback_at.max(Some(e.called_at));
            row.last_callback_outcome = Some(e.outcome.to_string());
            row.callback_pending = false;
        }
        ComplaintEvent::CaseArchived(e) => {
            row.status = "archived".into();
            row.archived_at = Some(e.archived_at);
        }
        // Kept by the `case_records` projection, not read here.
        ComplaintEvent::MaterialAdded(_) | ComplaintEvent::ImplementationRecorded(_) => {}
    }
}
