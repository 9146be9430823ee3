//! What happens to a complaint: the events of a `complaint-<uuid>` stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::callback::CallbackLogged;
use crate::codec::event_enum;
use crate::ids::{CaseNumber, ComplaintId, CustomerId, StaffId};
use crate::values::{
    Attachment, ContactChannel, IntakeChannel, ReplyKind, Severity, SignerCapacity, Text,
};

/// R-P1/R-P3: the register entry of a complaint.
///
/// Schema v2 added `received_at` (SLA clocks start at receipt, which may precede filing);
/// v1 payloads are upcast with `received_at = filed_at`, what v1 clocks measured from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintFiled {
    pub complaint_id: ComplaintId,
    pub case_number: CaseNumber,
    pub customer_id: CustomerId,
    pub category: Text,
    pub cause: Text,
    pub severity: Severity,
    pub channel: IntakeChannel,
    /// What happened, in the complainant's words.
    pub description: Text,
    /// The staff member complained about (被投诉人), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respondent: Option<StaffId>,
    /// R-P2: references to the original materials, never altered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    pub received_at: DateTime<Utc>,
    pub filed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerAssigned {
    pub handler: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<StaffId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
    pub assigned_at: DateTime<Utc>,
}

/// R-P4: the handler stepped aside, with the reason; they never return to this case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerRecused {
    pub handler: StaffId,
    pub reason: Text,
    pub recused_at: DateTime<Utc>,
}

/// R-P7: the complainant was told how handling is arranged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplainantContacted {
    pub by: StaffId,
    pub channel: ContactChannel,
    pub summary: Text,
    pub contacted_at: DateTime<Utc>,
}

/// R-P6: the handler's inquiry into the facts and materials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvestigationRecorded {
    pub by: StaffId,
    pub findings: Text,
    pub investigated_at: DateTime<Utc>,
}

/// R-P5: the specialist's written opinion, which precedes the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpinionDrafted {
    pub specialist: StaffId,
    pub opinion: Text,
    pub drafted_at: DateTime<Utc>,
}

/// R-P5: the case goes to the director or the committee for decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintEscalated {
    pub to: SignerCapacity,
    pub reason: Text,
    pub escalated_at: DateTime<Utc>,
}

/// R-P5: the committee meeting (所务会议 / 合伙人会议) that decided an escalated case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeMeeting {
    /// When the meeting was held.
    pub held_at: DateTime<Utc>,
    /// The members present, at least the configured quorum, the signer among them.
    pub members_present: Vec<StaffId>,
    /// Whether the matter is reported to an authority (是否向相关管理部门通报).
    pub reported_to_authority: bool,
}

/// R-P9: the signed handling opinion: decision, remedy, who signed, in which capacity.
///
/// Schema v2 added `meeting` (R-P5: a committee decision names its meeting); v1
/// payloads have none and load unchanged, committee signatures of v1 included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpinionSigned {
    pub signer: StaffId,
    pub capacity: SignerCapacity,
    pub decision: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting: Option<CommitteeMeeting>,
    pub signed_at: DateTime<Utc>,
}

/// R-P8/R-P10: a message to the complainant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplySent {
    pub by: StaffId,
    pub kind: ReplyKind,
    pub channel: ContactChannel,
    pub summary: Text,
    pub sent_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintClosed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Text>,
    pub closed_at: DateTime<Utc>,
}

/// R-P14: handling resumes, with its cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintReopened {
    pub cause: Text,
    /// True when a dissatisfied callback reopened the case in the same decision.
    pub by_callback: bool,
    pub reopened_at: DateTime<Utc>,
}

/// R-P12: the closed case's materials are archived under its year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseArchived {
    pub year: i32,
    pub archived_at: DateTime<Utc>,
}

event_enum!(
    /// Everything that happens in a `complaint-<uuid>` stream.
    ComplaintEvent, upcast = upcast, {
        ComplaintFiled = 2,
        HandlerAssigned = 1,
        HandlerRecused = 1,
        ComplainantContacted = 1,
        InvestigationRecorded = 1,
        OpinionDrafted = 1,
        ComplaintEscalated = 1,
        OpinionSigned = 2,
        ReplySent = 1,
        ComplaintClosed = 1,
        ComplaintReopened = 1,
        CallbackLogged = 1,
        CaseArchived = 1,
    }
);

/// One step up for payloads of older schema versions.
fn upcast(event_type: &str, from_version: u32, payload: Value) -> Result<Value, String> {
    match (event_type, from_version, payload) {
        ("ComplaintFiled", 1, Value::Object(mut fields)) => {
            let filed_at =
                fields.get("filed_at").cloned().ok_or("v1 ComplaintFiled lacks filed_at")?;
            fields.entry("received_at").or_insert(filed_at);
            Ok(Value::Object(fields))
        }
        // v2 only added the optional `meeting`: a v1 signature had none.
        ("OpinionSigned", 1, payload @ Value::Object(_)) => Ok(payload),
        (event_type, from_version, _) => {
            Err(format!("no upcaster from {event_type} v{from_version}"))
        }
    }
}
