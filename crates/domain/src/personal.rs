//! R-C8 and R-C6: what every payload field of an event about a customer is, declared
//! once per event type, and what a reader sees once a sealed field is erased.
//!
//! Each field is one of three kinds ([`FieldKind`]):
//! - **personal** data is sealed with the data subject's key before it is appended (the
//!   subject of customer and complaint events is the customer, see
//!   [`Aggregate::data_subject`]); forgetting the customer destroys the key. Every free
//!   text a person or a member of staff writes about the person's affairs is personal,
//!   including text copied from another personal field (a callback comment quoted as the
//!   cause of a reopen), since R-C8 erases every copy;
//! - **restricted** facts stay in clear for statistics (tier, category, cause,
//!   respondent, a callback's outcome) but are still about the person or the case: a
//!   reader needs the customer's clearance (R-C6) and, for a complaint, one of R-P11's
//!   roles, exactly as for personal fields;
//! - **plain** fields say nothing about the person or the substance of a case: ids,
//!   dates, kinds, statuses and the staff who acted.
//!
//! Classifications, dates and staff ids stay in clear, so statistics and the record of
//! who handled a case, when and in which capacity survive an erasure. The access policy
//! that reads these kinds lives in the API (`kefu_api::access`).
//!
//! [`Aggregate::data_subject`]: crate::Aggregate::data_subject

use serde_json::{json, Value};

/// What an erased text field reads as (a valid [`crate::Text`]).
pub const ERASED_TEXT: &str = "[erased]";

/// What a payload field holds, for sealing (R-C8) and for access (R-C6, R-P11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldKind {
    /// Ids, dates, kinds, statuses, acting staff: readable by every reader of the event.
    Plain,
    /// About the person or the case, kept in clear for statistics.
    Restricted,
    /// Personal data: sealed with the subject's key, erased with it.
    Personal,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Plain => "plain",
            FieldKind::Restricted => "restricted",
            FieldKind::Personal => "personal",
        }
    }
}

use FieldKind::{Personal as S, Plain as P, Restricted as R};

/// Every payload field of every event type that carries a customer's data. The test
/// `every_payload_field_is_declared` builds each event type with all its fields set and
/// checks that this list and the payload agree, so a new field cannot slip through as
/// plain by omission.
const DECLARED: &[(&str, &[(&str, FieldKind)])] = &[
    (
        "CustomerRegistered",
        &[
            ("customer_id", P),
            ("name", S),
            ("kind", R),
            ("contacts", S),
            ("tier", R),
            ("stars", R),
            ("source_channel", R),
            ("referred_by", R),
            ("confidentiality", P),
            ("agent", P),
            ("registered_at", P),
        ],
    ),
    ("CustomerUpdated", &[("name", S), ("contacts", S), ("confidentiality", P), ("updated_at", P)]),
    (
        "CustomerGraded",
        &[
            ("from_tier", R),
            ("to_tier", R),
            ("from_stars", R),
            ("to_stars", R),
            ("reason", S),
            ("graded_at", P),
        ],
    ),
    ("AgentAssigned", &[("previous", P), ("agent", P), ("reason", S), ("assigned_at", P)]),
    ("CustomerContacted", &[("by", P), ("channel", P), ("note", S), ("contacted_at", P)]),
    (
        "CallbackLogged",
        &[
            ("customer_id", P),
            ("complaint_id", P),
            ("kind", P),
            ("channel", P),
            ("party", P),
            ("outcome", R),
            ("score", R),
            ("comment", S),
            ("by", P),
            ("called_at", P),
        ],
    ),
    // The erasure's own record, which must outlive the key it destroys: never sealed.
    ("CustomerForgotten", &[("reason", R), ("forgotten_at", P)]),
    // That two records are one person is a fact about the person, like a referral; why
    // may quote their contacts, so it is sealed with the record's key.
    ("CustomerMerged", &[("into", R), ("reason", S), ("merged_at", P)]),
    ("CustomerAbsorbed", &[("duplicate", R), ("also", R), ("reason", S), ("absorbed_at", P)]),
    (
        "ComplaintFiled",
        &[
            ("complaint_id", P),
            ("case_number", P),
            ("customer_id", P),
            ("category", R),
            ("cause", R),
            ("severity", P),
            ("channel", P),
            ("description", S),
            ("respondent", R),
            ("attachments", S),
            ("received_at", P),
            ("filed_at", P),
            ("terms", P),
        ],
    ),
    ("HandlerAssigned", &[("handler", P), ("previous", P), ("reason", S), ("assigned_at", P)]),
    ("HandlerRecused", &[("handler", P), ("reason", S), ("recused_at", P)]),
    ("ComplainantContacted", &[("by", P), ("channel", P), ("summary", S), ("contacted_at", P)]),
    ("InvestigationRecorded", &[("by", P), ("findings", S), ("investigated_at", P)]),
    ("OpinionDrafted", &[("specialist", P), ("opinion", S), ("drafted_at", P)]),
    ("ComplaintEscalated", &[("to", P), ("reason", S), ("escalated_at", P)]),
    (
        "OpinionSigned",
        &[
            ("signer", P),
            ("capacity", P),
            ("decision", S),
            ("remedy", S),
            ("meeting", R),
            ("signed_at", P),
        ],
    ),
    ("ReplySent", &[("by", P), ("kind", P), ("channel", P), ("summary", S), ("sent_at", P)]),
    (
        "ComplaintClosed",
        &[("summary", S), ("closed_at", P), ("callback_due_at", P), ("callback_at_risk_at", P)],
    ),
    ("ComplaintReopened", &[("cause", S), ("by_callback", R), ("reopened_at", P)]),
    ("CaseArchived", &[("year", P), ("archived_at", P)]),
    // R-P2: where a document about the person is kept and its digest (which proves, so
    // identifies, its contents) go with the person; its kind and size are facts of the
    // case, the number and who added it when are the record of handling.
    (
        "MaterialAdded",
        &[
            ("number", P),
            ("reference", S),
            ("media_type", R),
            ("size_bytes", R),
            ("sha256", S),
            ("supersedes", P),
            ("reason", S),
            ("by", P),
            ("added_at", P),
        ],
    ),
    (
        "ImplementationRecorded",
        &[("by", P), ("summary", S), ("implemented_at", P), ("recorded_at", P)],
    ),
    // Service requests: like a complaint's, the category is a restricted label, the
    // texts are personal, and who acted when stays plain for the quality metrics.
    (
        "RequestReceived",
        &[
            ("request_id", P),
            ("customer_id", P),
            ("kind", P),
            ("channel", P),
            ("category", R),
            ("description", S),
            ("received_at", P),
            ("recorded_at", P),
            ("terms", P),
        ],
    ),
    ("RequestAssigned", &[("agent", P), ("previous", P), ("reason", S), ("assigned_at", P)]),
    ("RequestResponded", &[("by", P), ("channel", P), ("summary", S), ("responded_at", P)]),
    (
        "RequestResolved",
        &[
            ("by", P),
            ("summary", S),
            ("resolved_at", P),
            ("first_contact", P),
            ("callback_due_at", P),
            ("callback_at_risk_at", P),
        ],
    ),
    (
        "RequestEscalated",
        &[("complaint_id", P), ("case_number", P), ("by", P), ("reason", S), ("escalated_at", P)],
    ),
];

/// The restricted texts that are classification labels: free text kept in clear so
/// reports can count by it (R-R1: by category and cause). Row by row they are restricted
/// like any fact about the person or the case; as the group keys of aggregate reports
/// they are shown to every reader of those reports.
pub const LABELS: &[(&str, &str)] = &[
    ("CustomerRegistered", "source_channel"),
    ("ComplaintFiled", "category"),
    ("ComplaintFiled", "cause"),
    ("RequestReceived", "category"),
];

/// The declared fields of `event_type`, or `None` for an event type that holds no
/// customer's data (staff, case register, audit and policy events).
pub fn declared(event_type: &str) -> Option<&'static [(&'static str, FieldKind)]> {
    DECLARED.iter().find(|(name, _)| *name == event_type).map(|(_, fields)| *fields)
}

/// The event types that carry a customer's data.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    DECLARED.iter().map(|(name, _)| *name)
}

/// What `field` of an `event_type` payload holds. A field missing from a declared event
/// type is restricted: unknown means not shown, never shown by mistake.
pub fn kind(event_type: &str, field: &str) -> FieldKind {
    match declared(event_type) {
        None => FieldKind::Plain,
        Some(fields) => fields
            .iter()
            .find(|(name, _)| *name == field)
            .map_or(FieldKind::Restricted, |(_, kind)| *kind),
    }
}

/// The personal fields of `event_type`'s payload: sealed before appending.
pub fn fields(event_type: &str) -> Vec<&'static str> {
    declared(event_type)
        .unwrap_or_default()
        .iter()
        .filter(|(_, kind)| *kind == FieldKind::Personal)
        .map(|(name, _)| *name)
        .collect()
}

/// The value an erased `field` decodes as: empty contacts or attachments, or [`ERASED_TEXT`].
pub fn erased(field: &str) -> Value {
    match field {
        "contacts" => json!({}),
        "attachments" => json!([]),
        _ => json!(ERASED_TEXT),
    }
}
