//! The per-stream SHA-256 hash chain that makes tampering evident.
//!
//! `hash_v = SHA-256(hash_(v-1) ‖ canonical bytes of event v)`, with `hash_0` = 32 zero
//! bytes. The canonical bytes are the envelope without its hash and without its global
//! position (the position is assigned at commit and belongs to the log, not the stream):
//! a domain tag, then each field length-prefixed so no two envelopes share an encoding.
//! Payload and metadata are hashed as the exact JSON text stored, so verification never
//! depends on re-serialising JSON the same way.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::types::{BrokenReason, Verification};

/// The hash before a stream's first event.
pub const GENESIS: [u8; 32] = [0; 32];

const DOMAIN_TAG: &[u8] = b"kefu-event-v1";

/// The hashed fields of one event, as stored.
#[derive(Debug, Clone)]
pub(crate) struct ChainInput<'a> {
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: &'a str,
    pub metadata: &'a str,
    /// Microseconds since the Unix epoch.
    pub recorded_at_micros: i64,
}

pub(crate) fn event_hash(prev_hash: &[u8; 32], input: &ChainInput<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    field(&mut hasher, DOMAIN_TAG);
    field(&mut hasher, input.stream_id.as_bytes());
    field(&mut hasher, &input.stream_version.to_be_bytes());
    field(&mut hasher, input.event_id.as_bytes());
    field(&mut hasher, input.event_type.as_bytes());
    field(&mut hasher, &input.schema_version.to_be_bytes());
    field(&mut hasher, input.payload.as_bytes());
    field(&mut hasher, input.metadata.as_bytes());
    field(&mut hasher, &input.recorded_at_micros.to_be_bytes());
    hasher.finalize().into()
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// One stored row as verification reads it: raw text, no decoding that could hide a change.
/// Exported in case dossiers, so anyone can re-check a chain with [`verify_links`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredLink {
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: String,
    pub metadata: String,
    pub recorded_at_micros: i64,
    #[serde(with = "hex::serde")]
    pub prev_hash: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub hash: Vec<u8>,
}

/// Walks a stream's rows in version order and names the first one that breaks the chain.
pub fn verify_links(stream_id: &str, links: &[StoredLink]) -> Verification {
    let mut expected_prev = GENESIS;
    let mut n_events = 0u64;
    for link in links {
        let version = n_events + 1;
        if link.stream_version != version {
            return Verification::Broken { version, reason: BrokenReason::VersionGap };
        }
        if link.prev_hash.as_slice() != expected_prev.as_slice() {
            return Verification::Broken { version, reason: BrokenReason::PrevHashMismatch };
        }
        let computed = event_hash(
            &expected_prev,
            &ChainInput {
                stream_id,
                stream_version: link.stream_version,
                event_id: link.event_id,
                event_type: &link.event_type,
                schema_version: link.schema_version,
                payload: &link.payload,
                metadata: &link.metadata,
                recorded_at_micros: link.recorded_at_micros,
            },
        );
        if link.hash.as_slice() != computed.as_slice() {
            return Verification::Broken { version, reason: BrokenReason::HashMismatch };
        }
        expected_prev = computed;
        n_events = version;
    }
    Verification::Intact { events: n_events, head_hash: expected_prev }
}

/// Converts a stored hash column into the fixed array, refusing wrong lengths.
pub(crate) fn to_hash(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(payload: &str) -> ChainInput<'_> {
        ChainInput {
            stream_id: "complaint-1",
            stream_version: 1,
            event_id: Uuid::nil(),
            event_type: "ComplaintFiled",
            schema_version: 1,
            payload,
            metadata: "{}",
            recorded_at_micros: 0,
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = event_hash(&GENESIS, &input("{}"));
        assert_ne!(base, event_hash(&GENESIS, &input("{ }")));
        assert_ne!(base, event_hash(&[1; 32], &input("{}")));
        let moved = ChainInput { recorded_at_micros: 1, ..input("{}") };
        assert_ne!(base, event_hash(&GENESIS, &moved));
        let renumbered = ChainInput { stream_version: 2, ..input("{}") };
        assert_ne!(base, event_hash(&GENESIS, &renumbered));
    }

    #[test]
    fn length_prefixes_keep_field_boundaries() {
        // Moving a byte from one field to the next must not produce the same hash.
        let a = ChainInput { event_type: "ab", payload: "c", ..input("") };
        let b = ChainInput { event_type: "a", payload: "bc", ..input("") };
        assert_ne!(event_hash(&GENESIS, &a), event_hash(&GENESIS, &b));
    }
}
