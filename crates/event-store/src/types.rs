//! The vocabulary of the log: stream ids, expectations, events going in and envelopes coming out.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::limits::Limits;

/// A stream's name, `<category>-<id>` by convention (`complaint-0193…`).
///
/// The store only requires a non-empty name of printable ASCII without whitespace,
/// no longer than [`Limits::max_stream_id_len`]; the category is the part before the
/// first `-` (or the whole name when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// Longest stream id any store accepts, whatever its configured limits.
    pub const MAX_LEN: usize = 200;

    pub fn new(name: impl Into<String>) -> Result<Self, StoreError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StoreError::InvalidStreamId { stream_id: name, reason: "is empty" });
        }
        if name.len() > Self::MAX_LEN {
            return Err(StoreError::LimitExceeded {
                what: "stream id bytes",
                limit: Self::MAX_LEN,
                actual: name.len(),
            });
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StoreError::InvalidStreamId {
                stream_id: name,
                reason: "must be printable ASCII without whitespace",
            });
        }
        Ok(StreamId(name))
    }

    /// Builds `<category>-<id>`.
    pub fn of(category: &str, id: impl fmt::Display) -> Result<Self, StoreError> {
        Self::new(format!("{category}-{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-`.
    pub fn category(&self) -> &str {
        category_of(&self.0)
    }
}

/// The category of a raw stream name: the part before the first `-`.
pub fn category_of(stream_id: &str) -> &str {
    stream_id.split_once('-').map_or(stream_id, |(category, _)| category)
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamId {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        StreamId::new(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

/// What the writer believes about the stream before its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds (still atomic, still ordered).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last version must be exactly this (1-based).
    Exact(u64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// Who did what, on whose behalf: stored with every event of one append.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The capacity the actor acted in (handler, director, committee…), when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    /// The caller's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What the request under `request_id` was (its RPC and a digest of its content,
    /// keyed with the data subject's key: docs/compliance.md), so a key reused for a
    /// different request is told from a retry. Absent on events written before it was
    /// recorded; never on the event feed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_fingerprint: Option<String>,
    /// The caller's `x-correlation-id`, or a new UUID: one business flow across
    /// services (docs/operations.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// What caused this append: the caller's `x-causation-id` (say, the event a service
    /// reacts to), or else the command's own `request_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The W3C trace the call belonged to (the caller's `traceparent`, or a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// An event offered to [`crate::EventStore::append`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique in the whole store; re-sending the same id is how retries stay harmless.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: serde_json::Value,
}

impl NewEvent {
    pub fn new(
        event_id: Uuid,
        event_type: impl Into<String>,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Self {
        NewEvent { event_id, event_type: event_type.into(), schema_version, payload }
    }
}

/// One stored event with everything the log knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global, 1-based, gap-free, strictly increasing in commit order.
    pub position: u64,
    pub stream_id: String,
    /// 1-based, gap-free within the stream.
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: serde_json::Value,
    pub metadata: Metadata,
    /// When the store recorded it, UTC, microsecond precision.
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl RecordedEvent {
    pub fn category(&self) -> &str {
        category_of(&self.stream_id)
    }
}

/// A stored event as a reader of whole stretches of the log takes it (the projections,
/// [`crate::EventStore::read_range`]): its place, its type and its payload as stored JSON
/// text, which the reader decodes once into what it needs. No metadata, hashes or
/// timestamps: no such reader uses them, and a rebuild reads millions of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Global, 1-based, gap-free, strictly increasing in commit order.
    pub position: u64,
    pub stream_id: String,
    pub event_type: String,
    pub schema_version: u32,
    /// The payload's JSON text as stored (sealed fields still sealed).
    pub payload: String,
}

impl LoggedEvent {
    pub fn category(&self) -> &str {
        category_of(&self.stream_id)
    }
}

/// What a successful append (or its idempotent repeat) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Version of the first event written by this append.
    pub first_version: u64,
    /// The stream's version after the append: the version of its last event.
    pub last_version: u64,
    /// Global position of the first event written.
    pub first_position: u64,
    /// Global position of the last event written.
    pub last_position: u64,
    /// True when the events were stored already (a retried append, answered with
    /// where they are): nothing was written now.
    pub repeated: bool,
}

/// One append of a group (see [`crate::EventStore::submit_group`]).
#[derive(Debug, Clone)]
pub struct Append {
    pub stream_id: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub metadata: Metadata,
    pub conditions: Vec<Condition>,
}

/// A condition an append is written under, checked with its batch under the write lock,
/// after the idempotency check (a retry of a stored append still gets its result).
/// What a command read from other streams stays true until it commits, without a read
/// of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The stream is still at this version (0: it does not exist).
    StreamAt { stream_id: StreamId, version: u64 },
    /// None of these events is stored, nor written earlier in the batch.
    Absent(Vec<Uuid>),
    /// The stream's last event (stored, or written earlier in the batch) is not of this
    /// type; true of a stream that does not exist. For an event that ends its stream
    /// (after which its aggregate writes nothing more, e.g. a customer's erasure) this
    /// says it has not happened, whatever else was written meanwhile: a command that
    /// depends only on that does not conflict with every other change to the stream.
    LastNot { stream_id: StreamId, event_type: String },
    /// No event of these types was stored on the stream after `version` (nor is written
    /// earlier in the batch). What a command read at `version` that only events of
    /// these types change (a customer's level: their updates, merges and erasure) stays
    /// true, while other changes to the stream (a contact, a callback) do not conflict.
    NoneSince { stream_id: StreamId, version: u64, event_types: Vec<String> },
}

impl Condition {
    /// The one stream the condition is about, if it is about one.
    pub fn stream_id(&self) -> Option<&StreamId> {
        match self {
            Condition::StreamAt { stream_id, .. }
            | Condition::LastNot { stream_id, .. }
            | Condition::NoneSince { stream_id, .. } => Some(stream_id),
            Condition::Absent(_) => None,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::StreamAt { stream_id, version } => {
                write!(f, "{stream_id} is still at version {version}")
            }
            Condition::Absent(ids) => write!(f, "none of {} events is stored", ids.len()),
            Condition::LastNot { stream_id, event_type } => {
                write!(f, "{stream_id} does not end with {event_type}")
            }
            Condition::NoneSince { stream_id, version, event_types } => {
                write!(
                    f,
                    "{stream_id} has none of {} after version {version}",
                    event_types.join(", ")
                )
            }
        }
    }
}

/// Which way [`crate::EventStore::read_stream`] walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Versions `from, from+1, …`.
    Forward,
    /// Versions `from, from-1, …`; pass `u64::MAX` to start at the end.
    Backward,
}

/// The outcome of checking a stream's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every event's hash matches; `head_hash` is the last event's (zeros for an empty stream).
    Intact { events: u64, head_hash: [u8; 32] },
    /// The first version whose stored data does not match the chain.
    Broken { version: u64, reason: BrokenReason },
}

/// Why a stream fails verification at a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenReason {
    /// The versions are not 1, 2, 3…: an event is missing or duplicated.
    VersionGap,
    /// The stored `prev_hash` is not the previous event's hash.
    PrevHashMismatch,
    /// The event's content does not hash to its stored hash: it was altered.
    HashMismatch,
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrokenReason::VersionGap => "versions are not consecutive",
            BrokenReason::PrevHashMismatch => "prev_hash does not match the previous event's hash",
            BrokenReason::HashMismatch => "content does not match its hash",
        })
    }
}

/// Settings for [`crate::EventStore::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub limits: Limits,
    /// Connections of a PostgreSQL pool (SQLite has its own fixed pools; 0 counts as 1).
    /// Fewer than clients on purpose: on a 2-core host 8–12 backends gave 10–25 % more
    /// appends than 32, which spent their time switching between PostgreSQL processes;
    /// 16 leaves headroom for read RPCs next to the writer and the runner.
    pub postgres_connections: u32,
    /// Test hook: sleep this long after inserting and before committing, to make
    /// transactions commit late on purpose. Never set outside tests.
    #[doc(hidden)]
    pub commit_delay: Option<std::time::Duration>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { limits: Limits::default(), postgres_connections: 16, commit_delay: None }
    }
}
