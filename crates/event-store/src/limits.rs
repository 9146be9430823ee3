//! Size limits that keep one append from hurting everyone else.

use crate::error::StoreError;
use crate::types::NewEvent;

/// Bounds checked before anything is written; exceeding one is
/// [`StoreError::LimitExceeded`], never a partial write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events in one atomic append.
    pub max_events_per_append: usize,
    /// Bytes of one event's JSON payload.
    pub max_payload_bytes: usize,
    /// Bytes of one append's JSON metadata.
    pub max_metadata_bytes: usize,
    /// Bytes of an event type name.
    pub max_event_type_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events_per_append: 1_000,
            max_payload_bytes: 1 << 20,
            max_metadata_bytes: 16 << 10,
            max_event_type_len: 100,
        }
    }
}

impl Limits {
    /// Checks the shape of an append; the serialized sizes are checked by the caller
    /// once the JSON is rendered.
    pub(crate) fn check_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        exceeds("events per append", self.max_events_per_append, events.len())?;
        for event in events {
            if event.event_type.is_empty()
                || !event.event_type.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(StoreError::InvalidEventType { event_type: event.event_type.clone() });
            }
            exceeds("event type bytes", self.max_event_type_len, event.event_type.len())?;
        }
        Ok(())
    }

    pub(crate) fn check_payload(&self, payload: &str) -> Result<(), StoreError> {
        exceeds("payload bytes", self.max_payload_bytes, payload.len())
    }

    pub(crate) fn check_metadata(&self, metadata: &str) -> Result<(), StoreError> {
        exceeds("metadata bytes", self.max_metadata_bytes, metadata.len())
    }
}

fn exceeds(what: &'static str, limit: usize, actual: usize) -> Result<(), StoreError> {
    if actual > limit {
        return Err(StoreError::LimitExceeded { what, limit, actual });
    }
    Ok(())
}
