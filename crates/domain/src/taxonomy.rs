//! R-P3, R-R1: a complaint's category and cause, and a customer's source channel, are codes
//! from one taxonomy, not prose.
//!
//! Reports count by them and show them to every reader of an aggregate, and they stay
//! in clear through an erasure (R-C8), so they must never carry a person's data: free
//! text about what happened goes in the sealed `description`. Intake refuses a code not
//! listed here; events written before codes existed may hold prose, which every read
//! model and report shows as [`UNLISTED`] instead.

use crate::error::ValueError;
use crate::values::Text;

/// What a category or cause outside the taxonomy (a legacy event's prose) reads as.
pub const UNLISTED: &str = "unlisted";

/// What a complaint is about.
pub const CATEGORIES: &[&str] =
    &["billing", "service", "quality", "delay", "conduct", "privacy", "product", "other"];

/// Why it happened, as far as intake can tell.
pub const CAUSES: &[&str] = &[
    "overcharge",
    "double_charge",
    "rude_staff",
    "late_delivery",
    "wrong_item",
    "no_response",
    "missed_deadline",
    "poor_communication",
    "data_error",
    "misinformation",
    "other",
];

/// Where a customer came from (R-C1: the customer record keeps its source channel).
pub const SOURCE_CHANNELS: &[&str] = &[
    "phone",
    "web",
    "email",
    "walk_in",
    "referral",
    "exhibition",
    "advert",
    "partner",
    "social_media",
    "other",
];

/// `code` as a category, or a refusal naming the field (and never repeating the input).
pub fn category(code: &str) -> Result<Text, ValueError> {
    listed("category", CATEGORIES, code)
}

/// `code` as a cause, or a refusal naming the field.
pub fn cause(code: &str) -> Result<Text, ValueError> {
    listed("cause", CAUSES, code)
}

/// `code` as a source channel, or a refusal naming the field.
pub fn source_channel(code: &str) -> Result<Text, ValueError> {
    listed("source_channel", SOURCE_CHANNELS, code)
}

/// A stored source channel as read models show it: itself when listed, else [`UNLISTED`].
pub fn source_channel_label(stored: &str) -> &str {
    label(SOURCE_CHANNELS, stored)
}

/// A stored category as reports show it: itself when listed, else [`UNLISTED`].
pub fn category_label(stored: &str) -> &str {
    label(CATEGORIES, stored)
}

/// A stored cause as reports show it: itself when listed, else [`UNLISTED`].
pub fn cause_label(stored: &str) -> &str {
    label(CAUSES, stored)
}

fn listed(field: &'static str, codes: &[&str], code: &str) -> Result<Text, ValueError> {
    let code = code.trim();
    if !codes.contains(&code) {
        return Err(ValueError::new(
            field,
            format!("is not a {field} code (one of {}; docs/read-models.md)", codes.join(", ")),
        ));
    }
    Text::new(field, code)
}

fn label<'a>(codes: &[&str], stored: &'a str) -> &'a str {
    if codes.contains(&stored) {
        stored
    } else {
        UNLISTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_short_words_that_carry_no_one() {
        for code in CATEGORIES.iter().chain(CAUSES).chain(SOURCE_CHANNELS) {
            assert!(code.len() <= 32 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_ne!(*code, UNLISTED);
        }
        assert_eq!(category("billing").unwrap().as_str(), "billing");
        assert_eq!(cause(" rude_staff ").unwrap().as_str(), "rude_staff");
        let refused = cause("Staff leaked Zhang San's file").unwrap_err();
        assert_eq!(refused.field, "cause");
        assert!(!refused.reason.contains("Zhang"));
        assert_eq!(category_label("Zhang San, +86 138 0013 8000"), UNLISTED);
        assert_eq!(cause_label("overcharge"), "overcharge");
        assert_eq!(source_channel("referral").unwrap().as_str(), "referral");
        let refused = source_channel("referred by 王小明 +8613912345678").unwrap_err();
        assert_eq!(refused.field, "source_channel");
        assert!(!refused.reason.contains("王小明"));
        assert_eq!(source_channel_label("referred by 王小明"), UNLISTED);
    }
}
