//! Callbacks (回访): the survey event shared by customer and complaint streams (R-P13, R-P15).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{ComplaintId, CustomerId, StaffId};
use crate::values::{CallbackChannel, CallbackKind, CallbackOutcome, CallbackParty, Score, Text};

/// R-P15: a callback and its complete result. Stored in the customer's stream, or in the
/// complaint's stream for kind `complaint` (where a dissatisfied outcome reopens, R-P14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackLogged {
    pub customer_id: CustomerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_id: Option<ComplaintId>,
    pub kind: CallbackKind,
    pub channel: CallbackChannel,
    /// For complaint callbacks: whom we surveyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<CallbackParty>,
    pub outcome: CallbackOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Text>,
    pub by: StaffId,
    pub called_at: DateTime<Utc>,
}

/// Log a callback's result.
#[derive(Debug, Clone, PartialEq)]
pub struct LogCallback {
    pub kind: CallbackKind,
    pub channel: CallbackChannel,
    pub party: Option<CallbackParty>,
    pub outcome: CallbackOutcome,
    pub score: Option<Score>,
    pub comment: Option<Text>,
    pub by: StaffId,
    pub called_at: DateTime<Utc>,
}

impl LogCallback {
    /// The event, once `called_at` is a valid stated time (R-T4) and not before
    /// `follows`, what the callback follows (else `out_of_order`).
    pub(crate) fn into_event(
        self,
        customer_id: CustomerId,
        complaint_id: Option<ComplaintId>,
        now: DateTime<Utc>,
        follows: DateTime<Utc>,
        out_of_order: DomainError,
    ) -> Result<CallbackLogged, DomainError> {
        let called_at = crate::time::given("called_at", self.called_at, now)?;
        if called_at < follows {
            return Err(out_of_order);
        }
        Ok(CallbackLogged {
            customer_id,
            complaint_id,
            kind: self.kind,
            channel: self.channel,
            party: self.party,
            outcome: self.outcome,
            score: self.score,
            comment: self.comment,
            by: self.by,
            called_at: self.called_at,
        })
    }
}
