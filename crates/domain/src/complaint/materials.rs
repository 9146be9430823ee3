//! R-P2 case materials and R-P9 implementation, as a case holds them: references to
//! documents kept elsewhere (kefu never stores a document, only where it is, what it is
//! and its SHA-256, so an auditor can check the copy held elsewhere), never altered or
//! removed, only superseded by a newer one with a reason; and the record of how a signed
//! opinion was carried out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValueError;
use crate::ids::StaffId;
use crate::values::{Attachment, Text};

/// The most materials one case takes (filing attachments included): a hostile caller
/// cannot grow a case without bound.
pub const MAX_MATERIALS: usize = 1_000;

/// The largest document size a material may state: 1 TiB (bytes). Sizes are stated,
/// not measured; the bound keeps them exact in every reader (`i64` in SQL, doubles in JSON
/// clients up to 2^53).
pub const MAX_SIZE_BYTES: u64 = 1 << 40;

/// The longest media type (RFC 6838 allows 127 characters on each side of the slash).
const MAX_MEDIA_TYPE: usize = 255;

/// What a caller states about a document: where it is kept, its media type, its size
/// and the SHA-256 of its bytes, each checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialRef {
    pub reference: String,
    pub media_type: String,
    pub size_bytes: u64,
    pub sha256: String,
}

impl MaterialRef {
    /// The material, or the first field that is wrong.
    pub fn new(
        reference: &str,
        media_type: &str,
        size_bytes: u64,
        sha256: &str,
    ) -> Result<Self, ValueError> {
        Self::checked(reference, media_type, size_bytes, sha256)
            .map_err(|mut errors| errors.remove(0))
    }

    /// The material, or every field that is wrong (at least one), each named.
    pub fn checked(
        reference: &str,
        media_type: &str,
        size_bytes: u64,
        sha256: &str,
    ) -> Result<Self, Vec<ValueError>> {
        let (reference, media_type, size_bytes, sha256) = (
            reference_of(reference),
            media_type_of(media_type),
            size_of(size_bytes),
            sha256_of(sha256),
        );
        match (reference, media_type, size_bytes, sha256) {
            (Ok(reference), Ok(media_type), Ok(size_bytes), Ok(sha256)) => {
                Ok(MaterialRef { reference, media_type, size_bytes, sha256 })
            }
            (reference, media_type, size_bytes, sha256) => {
                Err([reference.err(), media_type.err(), size_bytes.err(), sha256.err()]
                    .into_iter()
                    .flatten()
                    .collect())
            }
        }
    }
}

/// The same reference rule as a filing's attachments, without control characters.
fn reference_of(value: &str) -> Result<String, ValueError> {
    let reference = Attachment::new(value, None)
        .map_err(|_| ValueError::new("reference", "must be 1 to 1000 bytes"))?
        .reference;
    if reference.chars().any(char::is_control) {
        return Err(ValueError::new("reference", "contains control characters"));
    }
    Ok(reference)
}

/// RFC 6838 `type/subtype` (restricted-name characters, no parameters), lowercased.
fn media_type_of(value: &str) -> Result<String, ValueError> {
    let refuse = || ValueError::new("media_type", "must be a media type such as application/pdf");
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_MEDIA_TYPE {
        return Err(refuse());
    }
    let (kind, subtype) = value.split_once('/').ok_or_else(refuse)?;
    let restricted = |name: &str| {
        name.bytes().next().is_some_and(|first| first.is_ascii_alphanumeric())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !restricted(kind) || !restricted(subtype) {
        return Err(refuse());
    }
    Ok(value.to_ascii_lowercase())
}

fn size_of(size_bytes: u64) -> Result<u64, ValueError> {
    if size_bytes > MAX_SIZE_BYTES {
        return Err(ValueError::new("size_bytes", format!("must be at most {MAX_SIZE_BYTES}")));
    }
    Ok(size_bytes)
}

/// 64 hex digits, lowercased.
fn sha256_of(value: &str) -> Result<String, ValueError> {
    let value = value.trim();
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ValueError::new("sha256", "must be 64 hex digits"));
    }
    Ok(value.to_ascii_lowercase())
}

/// One material of a case, numbered from 1 in the order the case received them: the
/// filing's attachments first, then each `MaterialAdded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Material {
    pub number: u32,
    pub reference: String,
    /// Not stated for a filing's attachment.
    pub media_type: Option<String>,
    /// Not stated for a filing's attachment.
    pub size_bytes: Option<u64>,
    /// Optional for a filing's attachment, always stated for an added material.
    pub sha256: Option<String>,
    /// Who added it (`None`: attached at filing).
    pub added_by: Option<StaffId>,
    pub added_at: DateTime<Utc>,
    /// The material this one replaces, and why.
    pub supersedes: Option<u32>,
    pub reason: Option<Text>,
    /// The newer material that replaced this one, if any.
    pub superseded_by: Option<u32>,
}

/// R-P9: how a signed opinion was carried out, as the specialist recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Implementation {
    pub by: StaffId,
    pub summary: Text,
    pub implemented_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";

    #[test]
    fn a_reference_is_checked_and_normalised() {
        let material = MaterialRef::new(" doc://a ", "Application/PDF", 0, DIGEST).unwrap();
        assert_eq!(material.reference, "doc://a");
        assert_eq!(material.media_type, "application/pdf");
        assert_eq!(material.sha256, DIGEST.to_ascii_lowercase());
        assert_eq!(
            MaterialRef::new("d", "a/b", MAX_SIZE_BYTES, DIGEST).unwrap().size_bytes,
            1 << 40
        );
    }

    #[test]
    fn each_field_names_its_refusal() {
        let field = |r: Result<MaterialRef, ValueError>| r.unwrap_err().field;
        assert_eq!(field(MaterialRef::new("", "a/b", 1, DIGEST)), "reference");
        assert_eq!(field(MaterialRef::new(&"x".repeat(1_001), "a/b", 1, DIGEST)), "reference");
        assert_eq!(field(MaterialRef::new("d\u{7}", "a/b", 1, DIGEST)), "reference");
        for bad in ["", "pdf", "a/", "/b", "a/b; charset=utf-8", "a/b/c", "é/b", "-a/b"] {
            assert_eq!(field(MaterialRef::new("d", bad, 1, DIGEST)), "media_type", "{bad:?}");
        }
        let long = format!("a/{}", "b".repeat(254));
        assert_eq!(field(MaterialRef::new("d", &long, 1, DIGEST)), "media_type");
        assert_eq!(field(MaterialRef::new("d", "a/b", MAX_SIZE_BYTES + 1, DIGEST)), "size_bytes");
        assert_eq!(field(MaterialRef::new("d", "a/b", u64::MAX, DIGEST)), "size_bytes");
        for bad in ["", &DIGEST[1..], &format!("{DIGEST}0"), &DIGEST.replace('F', "g")] {
            assert_eq!(field(MaterialRef::new("d", "a/b", 1, bad)), "sha256", "{bad:?}");
        }
    }
}
