//! `requests` projection → `rm_requests`: one row per service request (咨询, 售后申请)
//! with what the SLA lists and the quality metrics read: receipt, channel, category,
//! agent, first response against its deadline (R-P7), resolution and whether it was the
//! first answer, the after-sales callback due (R-P15) and when a customer callback of
//! kind `after_sale` settled it, and the complaint it was escalated to. No personal
//! text: what was asked and answered stays sealed in the request's stream.
//!
//! It also keeps the requests' share of the quality metrics (kind `request` rows of
//! `rm_quality_monthly` and `rm_quality_durations_monthly`, tables it shares with the
//! `complaints` projection and scopes its rebuilds to): each batch takes back what its
//! requests counted for before and adds what they count for after, in the same
//! transaction (see [`super::quality`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use kefu_domain::calendar::business_month;
use kefu_domain::customer::CustomerEvent;
use kefu_domain::request::RequestEvent;
use kefu_domain::{taxonomy, CallbackKind};

use super::quality::{self, QualityCase, QualityDeltas};
use super::{decode, load_rows, stream_key, Decoded};
use crate::error::{to_sql, ProjectionError};
use crate::event::Event;
use crate::params;
use crate::runner::Projection;
use crate::sql::{DbRow, DbTx};

pub const TABLE: &str = "rm_requests";

/// The `requests` projection; months of receipt are counted in `zone` (R-T1).
#[derive(Debug, Clone, Copy)]
pub struct Requests {
    pub zone: Tz,
}

impl Default for Requests {
    fn default() -> Self {
        Requests { zone: kefu_domain::Policy::default().time_zone }
    }
}

/// The shape and meaning of the rows; bumped when they change.
/// 2: durations stored, and the quality metrics' request rows kept.
const SCHEMA_VERSION: u32 = 2;

impl Projection for Requests {
    fn name(&self) -> &'static str {
        "requests"
    }

    /// The rows' schema and the zone their months are counted in (as `complaints`).
    fn version(&self) -> u32 {
        let fingerprint =
            self.zone.name().bytes().fold(2_166_136_261u32, |hash, byte| {
                (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
            });
        SCHEMA_VERSION * 1_000_000 + fingerprint % 1_000_000
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            "RequestReceived",
            "RequestAssigned",
            "RequestResponded",
            "RequestResolved",
            "RequestEscalated",
            // R-P15: a customer's after-sales callback settles their requests' callbacks.
            "CallbackLogged",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[TABLE]
    }

    fn shared_tables(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (quality::QUALITY_MONTHLY, "kind = 'request'"),
            (quality::QUALITY_DURATIONS_MONTHLY, "kind = 'request'"),
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
    // The requests this batch changes, as the quality metrics count them now.
    let mut keys: Vec<String> = events
        .iter()
        .filter(|event| event.event_type.starts_with("Request"))
        .map(|event| stream_key(event).to_owned())
        .collect();
    keys.sort();
    keys.dedup();
    let before = rows(tx, &keys).await?;
    apply_events(tx, events, zone).await?;
    let mut deltas = QualityDeltas::default();
    for row in &before {
        deltas.case(&QualityCase::request(row), -1);
    }
    for row in rows(tx, &keys).await? {
        let case = QualityCase::request(&row);
        tx.execute(
            "UPDATE rm_requests SET first_response_seconds = $1, resolution_seconds = $2 \
             WHERE request_id = $3",
            &params![case.first_response_seconds, case.resolution_seconds, row.request_id],
        )
        .await?;
        deltas.case(&case, 1);
    }
    deltas.write(tx).await
}

async fn rows(tx: &mut DbTx, keys: &[String]) -> Result<Vec<RequestRow>, ProjectionError> {
    load_rows(tx, TABLE, "request_id", keys).await?.iter().map(RequestRow::from_row).collect()
}

async fn apply_events(tx: &mut DbTx, events: &[&Event], zone: Tz) -> Result<(), ProjectionError> {
    for event in events {
        let position = to_sql("position", event.position)?;
        match decode(event)? {
            Decoded::Request(change) => {
                apply_request(tx, stream_key(event), change, position, zone).await?;
            }
            Decoded::Customer(CustomerEvent::CallbackLogged(callback))
                if callback.kind == CallbackKind::AfterSale =>
            {
                // R-P15: the callback follows the service it surveys.
                tx.execute(
                    "UPDATE rm_requests SET called_back_at = $1, last_position = $2 \
                     WHERE customer_id = $3 AND callback_due_at IS NOT NULL \
                     AND called_back_at IS NULL AND resolved_at <= $4",
                    &params![callback.called_at, position, stream_key(event), callback.called_at],
                )
                .await?;
            }
            Decoded::Customer(_) | Decoded::Complaint(_) | Decoded::Staff(_) | Decoded::Other => {}
        }
    }
    Ok(())
}

async fn apply_request(
    tx: &mut DbTx,
    request_id: &str,
    change: RequestEvent,
    position: i64,
    zone: Tz,
) -> Result<(), ProjectionError> {
    match change {
        RequestEvent::RequestReceived(e) => {
            let version = to_sql("policy_version", e.terms.policy_version)?;
            tx.execute(
                "INSERT INTO rm_requests (request_id, customer_id, kind, channel, category, \
                 status, agent, received_at, recorded_at, received_month, policy_version, \
                 first_response_due_at, first_response_at_risk_at, responses, first_contact, \
                 last_position) \
                 VALUES ($1, $2, $3, $4, $5, 'open', NULL, $6, $7, $8, $9, $10, $11, 0, $12, $13) \
                 ON CONFLICT (request_id) DO NOTHING",
                &params![
                    request_id,
                    e.customer_id.to_string(),
                    e.kind.as_str(),
                    e.channel.as_str(),
                    taxonomy::category_label(e.category.as_str()),
                    e.received_at,
                    e.recorded_at,
                    business_month(e.received_at, zone),
                    version,
                    e.terms.first_response_due_at,
                    e.terms.first_response_at_risk_at,
                    false,
                    position
                ],
            )
            .await?;
        }
        RequestEvent::RequestAssigned(e) => {
            tx.execute(
                "UPDATE rm_requests SET agent = $1, last_position = $2 WHERE request_id = $3",
                &params![e.agent.to_string(), position, request_id],
            )
            .await?;
        }
        RequestEvent::RequestResponded(e) => {
            // R-P7: the earliest answer is the first response, whatever order they come in.
            tx.execute(
                "UPDATE rm_requests SET responses = responses + 1, \
                 first_response_at = CASE WHEN first_response_at IS NULL \
                 OR first_response_at > $1 THEN $2 ELSE first_response_at END, \
                 last_position = $3 WHERE request_id = $4",
                &params![e.responded_at, e.responded_at, position, request_id],
            )
            .await?;
        }
        RequestEvent::RequestResolved(e) => {
            tx.execute(
                "UPDATE rm_requests SET status = 'resolved', resolved_at = $1, resolved_by = $2, \
                 first_contact = $3, callback_due_at = $4, callback_at_risk_at = $5, \
                 first_response_at = CASE WHEN first_response_at IS NULL \
                 OR first_response_at > $6 THEN $7 ELSE first_response_at END, \
                 last_position = $8 WHERE request_id = $9",
                &params![
                    e.resolved_at,
                    e.by.to_string(),
                    e.first_contact,
                    e.callback_due_at,
                    e.callback_at_risk_at,
                    e.resolved_at,
                    e.resolved_at,
                    position,
                    request_id
                ],
            )
            .await?;
        }
        RequestEvent::RequestEscalated(e) => {
            tx.execute(
                "UPDATE rm_requests SET status = 'escalated', complaint_id = $1, \
                 case_number = $2, escalated_at = $3, last_position = $4 WHERE request_id = $5",
                &params![
                    e.complaint_id.to_string(),
                    e.case_number.to_string(),
                    e.escalated_at,
                    position,
                    request_id
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// One row of `rm_requests`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RequestRow {
    pub request_id: String,
    pub customer_id: String,
    pub kind: String,
    pub channel: String,
    pub category: String,
    pub status: String,
    pub agent: Option<String>,
    pub received_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub received_month: String,
    pub policy_version: i64,
    pub first_response_due_at: DateTime<Utc>,
    pub first_response_at_risk_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub responses: i64,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    /// Resolved at the first answer (false until resolved).
    pub first_contact: bool,
    pub callback_due_at: Option<DateTime<Utc>>,
    pub called_back_at: Option<DateTime<Utc>>,
    pub complaint_id: Option<String>,
    pub case_number: Option<String>,
    pub last_position: i64,
    /// Receipt to first response and to resolution, wall-clock seconds (what the
    /// quality metrics bucket).
    pub first_response_seconds: Option<i64>,
    pub resolution_seconds: Option<i64>,
}

impl RequestRow {
    pub(crate) fn from_row(row: &DbRow) -> Result<Self, ProjectionError> {
        Ok(RequestRow {
            request_id: row.text("request_id")?,
            customer_id: row.text("customer_id")?,
            kind: row.text("kind")?,
            channel: row.text("channel")?,
            category: row.text("category")?,
            status: row.text("status")?,
            agent: row.opt_text("agent")?,
            received_at: row.time("received_at")?,
            recorded_at: row.time("recorded_at")?,
            received_month: row.text("received_month")?,
            policy_version: row.int("policy_version")?,
            first_response_due_at: row.time("first_response_due_at")?,
            first_response_at_risk_at: row.time("first_response_at_risk_at")?,
            first_response_at: row.opt_time("first_response_at")?,
            responses: row.int("responses")?,
            resolved_at: row.opt_time("resolved_at")?,
            resolved_by: row.opt_text("resolved_by")?,
            first_contact: row.bool("first_contact")?,
            callback_due_at: row.opt_time("callback_due_at")?,
            called_back_at: row.opt_time("called_back_at")?,
            complaint_id: row.opt_text("complaint_id")?,
            case_number: row.opt_text("case_number")?,
            last_position: row.int("last_position")?,
            first_response_seconds: row.opt_int("first_response_seconds")?,
            resolution_seconds: row.opt_int("resolution_seconds")?,
        })
    }
}
