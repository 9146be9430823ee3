//! What happens to a complaint: the events of a `complaint-<uuid>` stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::callback::CallbackLogged;
use crate::codec::event_enum;
use crate::ids::{CaseNumber, ComplaintId, CustomerId, ServiceRequestId, StaffId};
use crate::policy::{Policy, SlaRule};
use crate::values::{
    Attachment, ContactChannel, IntakeChannel, ReplyKind, Severity, SignerCapacity, Text, Tier,
};

/// R-P1/R-P3: the register entry of a complaint.
///
/// Schema v2 added `received_at` (SLA clocks start at receipt, which may precede filing);
/// v1 payloads are upcast with `received_at = filed_at`, what v1 clocks measured from.
/// Schema v3 added `terms` (R-T3): the policy version the case is held to and the
/// deadlines it gave; v2 payloads are upcast to version 0 ([`Policy::version_zero`])
/// and its deadlines, what the code of their time computed.
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
    pub terms: CaseTerms,
    /// The service request a dissatisfied requester escalated (`EscalateToComplaint`);
    /// absent for a complaint filed directly, and in events from before the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_request: Option<ServiceRequestId>,
}

/// R-T3: what a case is held to, fixed at filing: a later policy change never moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseTerms {
    /// The version of the policy in force at filing (0: before policies were recorded).
    pub policy_version: u64,
    /// The customer's tier at filing, which chose the tier's targets (`None`: not known,
    /// a case filed before tiers chose targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// R-P7: when the first response is due.
    pub first_response_due_at: DateTime<Utc>,
    /// R-T5: when the first response is at risk.
    pub first_response_at_risk_at: DateTime<Utc>,
    /// When the case should be decided and closed.
    pub resolution_due_at: DateTime<Utc>,
    /// R-T5: when the resolution is at risk.
    pub resolution_at_risk_at: DateTime<Utc>,
}

impl CaseTerms {
    /// The terms `policy` (of `version`) gives a case of `severity` for a customer of
    /// `tier`, received at `received_at`.
    pub fn under(
        version: u64,
        policy: &Policy,
        received_at: DateTime<Utc>,
        severity: Severity,
        tier: Option<Tier>,
    ) -> Self {
        let deadline = |rule| policy.deadline(rule, received_at, Some(severity), tier);
        let (first_response, resolution) =
            (deadline(SlaRule::FirstResponse), deadline(SlaRule::Resolution));
        CaseTerms {
            policy_version: version,
            tier,
            first_response_due_at: first_response.due,
            first_response_at_risk_at: first_response.at_risk,
            resolution_due_at: resolution.due,
            resolution_at_risk_at: resolution.at_risk,
        }
    }
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
/// Schema v2 added `callback_due_at` (R-P15 under the case's policy, R-T3); v1 payloads
/// are upcast with version 0's callback target.
pub struct ComplaintClosed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Text>,
    pub closed_at: DateTime<Utc>,
    pub callback_due_at: DateTime<Utc>,
    /// R-T5: when the callback is at risk.
    pub callback_at_risk_at: DateTime<Utc>,
}

/// R-P14: handling resumes, with its cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintReopened {
    pub cause: Text,
    /// True when a dissatisfied callback reopened the case in the same decision.
    pub by_callback: bool,
    pub reopened_at: DateTime<Utc>,
}

/// R-P2: a material received after filing, by reference (kefu keeps no document), or a
/// newer one superseding an earlier material with the reason; never altered or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaterialAdded {
    /// Its number in the case (the filing's attachments are numbered first).
    pub number: u32,
    pub reference: String,
    pub media_type: String,
    pub size_bytes: u64,
    /// SHA-256 of the document's bytes, 64 lowercase hex digits.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
    pub by: StaffId,
    pub added_at: DateTime<Utc>,
}

/// R-P9: how the signed opinion was carried out, recorded by the specialist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImplementationRecorded {
    pub by: StaffId,
    /// What was done.
    pub summary: Text,
    /// When it was done: not before the signature, not in the future (R-T4).
    pub implemented_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
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
        ComplaintFiled = 3,
        HandlerAssigned = 1,
        HandlerRecused = 1,
        ComplainantContacted = 1,
        InvestigationRecorded = 1,
        OpinionDrafted = 1,
        ComplaintEscalated = 1,
        OpinionSigned = 2,
        ReplySent = 1,
        ComplaintClosed = 2,
        ComplaintReopened = 1,
        CallbackLogged = 1,
        CaseArchived = 1,
        MaterialAdded = 1,
        ImplementationRecorded = 1,
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
        ("ComplaintFiled", 2, Value::Object(mut fields)) => {
            let field = |name: &str| -> Result<Value, String> {
                fields.get(name).cloned().ok_or_else(|| format!("v2 ComplaintFiled lacks {name}"))
            };
            let received_at: DateTime<Utc> =
                serde_json::from_value(field("received_at")?).map_err(|e| e.to_string())?;
            let severity: Severity =
                serde_json::from_value(field("severity")?).map_err(|e| e.to_string())?;
            let terms = CaseTerms::under(0, &Policy::version_zero(), received_at, severity, None);
            fields.insert("terms".into(), serde_json::to_value(terms).map_err(|e| e.to_string())?);
            Ok(Value::Object(fields))
        }
        ("ComplaintClosed", 1, Value::Object(mut fields)) => {
            let closed_at =
                fields.get("closed_at").cloned().ok_or("v1 ComplaintClosed lacks closed_at")?;
            let closed_at: DateTime<Utc> =
                serde_json::from_value(closed_at).map_err(|e| e.to_string())?;
            let deadline = Policy::version_zero().deadline(
                SlaRule::CallbackAfterClosure,
                closed_at,
                None,
                None,
            );
            let json = |at: DateTime<Utc>| serde_json::to_value(at).map_err(|e| e.to_string());
            fields.insert("callback_due_at".into(), json(deadline.due)?);
            fields.insert("callback_at_risk_at".into(), json(deadline.at_risk)?);
            Ok(Value::Object(fields))
        }
        // v2 only added the optional `meeting`: a v1 signature had none.
        ("OpinionSigned", 1, payload @ Value::Object(_)) => Ok(payload),
        (event_type, from_version, _) => {
            Err(format!("no upcaster from {event_type} v{from_version}"))
        }
    }
}
