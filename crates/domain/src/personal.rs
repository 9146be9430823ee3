//! R-C8: which event fields hold personal data, and what a reader sees once it is erased.
//!
//! The API seals these fields with the data subject's key before appending (the subject
//! of customer and complaint events is the customer, see [`Aggregate::data_subject`]);
//! forgetting the customer destroys the key. Names, contacts and the free texts that
//! describe the person's affairs are personal; classifications, dates, staff ids and
//! the institution's own decisions are not, so statistics and the legal record of how a
//! case was handled survive an erasure.
//!
//! [`Aggregate::data_subject`]: crate::Aggregate::data_subject

use serde_json::{json, Value};

/// What an erased text field reads as (a valid [`crate::Text`]).
pub const ERASED_TEXT: &str = "[erased]";

/// The personal fields of `event_type`'s payload.
pub fn fields(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "CustomerRegistered" | "CustomerUpdated" => &["name", "contacts"],
        "CustomerContacted" => &["note"],
        // Why two records are one person may quote their contacts.
        "CustomerMerged" | "CustomerAbsorbed" => &["reason"],
        "CallbackLogged" => &["comment"],
        "ComplaintFiled" => &["description"],
        "ComplainantContacted" | "ReplySent" => &["summary"],
        "InvestigationRecorded" => &["findings"],
        _ => &[],
    }
}

/// The value an erased `field` decodes as: empty contacts, or [`ERASED_TEXT`].
pub fn erased(field: &str) -> Value {
    match field {
        "contacts" => json!({}),
        _ => json!(ERASED_TEXT),
    }
}
