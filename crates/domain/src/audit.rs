//! The record of compliance reads: who looked at which case, how, and when (R-P11).
//!
//! Every replay, point-in-time read, verification and export of a case appends a
//! `CaseInspected` to the case's `caseaudit-<complaint uuid>` stream before the data is
//! handed out, so looking at a case leaves the same immutable trace as changing it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::{event_enum, no_upcasters};
use crate::ids::{CaseNumber, ComplaintId};

/// The stream category of inspection records.
pub const CATEGORY: &str = "caseaudit";

/// The inspection stream of a case.
pub fn stream_name(complaint_id: ComplaintId) -> String {
    format!("{CATEGORY}-{complaint_id}")
}

/// How a case was inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inspection {
    Replay,
    AsOf,
    Verify,
    Export,
}

impl Inspection {
    pub fn as_str(self) -> &'static str {
        match self {
            Inspection::Replay => "replay",
            Inspection::AsOf => "as_of",
            Inspection::Verify => "verify",
            Inspection::Export => "export",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseInspected {
    pub complaint_id: ComplaintId,
    /// Absent only when the case's filing no longer decodes (a tampered log must still
    /// be verifiable, and the look at it still recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_number: Option<CaseNumber>,
    pub inspection: Inspection,
    /// What exactly was asked (e.g. `version 7` or an instant), when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub inspected_at: DateTime<Utc>,
}

event_enum!(
    /// Everything that happens in a `caseaudit-<uuid>` stream.
    AuditEvent, upcast = no_upcasters, {
        CaseInspected = 1,
    }
);
