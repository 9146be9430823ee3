//! Errors of the event store: a refused append is kept apart from a failed database.

use uuid::Uuid;

use crate::types::ExpectedVersion;

/// Everything that can go wrong in the store.
///
/// [`StoreError::is_conflict`] tells an optimistic-concurrency conflict (reload and retry)
/// from a caller's mistake (fix the request) and from infrastructure failure (retry later).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the version the writer expected; reload it and decide again.
    #[error("wrong expected version on stream {stream_id}: expected {expected}, actual {actual}")]
    WrongExpectedVersion {
        stream_id: String,
        expected: ExpectedVersion,
        /// The stream's last version now; 0 when it does not exist.
        actual: u64,
    },
    /// Some of the append's event ids are already stored, but not as this exact append:
    /// the caller reused an id for different events. Use fresh ids.
    #[error("event {event_id} is already stored {reason}")]
    IdempotencyMismatch { event_id: Uuid, reason: &'static str },
    /// A condition the append was made under no longer holds; nothing was written.
    /// Re-read what the condition was about and decide again.
    #[error("condition no longer holds: {0}")]
    ConditionFailed(crate::types::Condition),
    /// Not written because another append of its group was not (see
    /// [`crate::EventStore::submit_group`]); that one's outcome says why.
    #[error("not written: another append of its group was not written")]
    GroupIncomplete,
    /// The same event id appears twice in one append.
    #[error("event id {event_id} appears more than once in the append")]
    DuplicateEventId { event_id: Uuid },
    /// An append must carry at least one event.
    #[error("an append must carry at least one event")]
    EmptyAppend,
    /// The request is larger than the store accepts; split or shrink it.
    #[error("{what} is {actual}, above the limit of {limit}")]
    LimitExceeded { what: &'static str, limit: usize, actual: usize },
    /// The stream id is not acceptable; fix the name.
    #[error("stream id {stream_id:?} {reason}")]
    InvalidStreamId { stream_id: String, reason: &'static str },
    /// Event types are non-empty printable ASCII without whitespace.
    #[error("event type {event_type:?} must be non-empty printable ASCII without whitespace")]
    InvalidEventType { event_type: String },
    /// A number from the caller does not fit the store's range (positions and versions are i64 in SQL).
    #[error("{what} {value} is out of range")]
    OutOfRange { what: &'static str, value: u64 },
    /// The subject's data key was destroyed (the person was forgotten); nothing new is
    /// sealed for them.
    #[error("the data key of {0} was destroyed")]
    KeyDestroyed(String),
    /// The operation does not exist for this backend.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// The database URL names no backend we support.
    #[error("unsupported database url {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// A stored row does not decode: the database was altered outside the store.
    #[error("stored event at position {position} is corrupt: {reason}")]
    Corrupt { position: i64, reason: String },
    /// The transaction carrying this append (with others, group-committed) failed, so
    /// nothing of it was stored; retry later.
    #[error("commit failed, nothing stored: {0}")]
    CommitFailed(String),
    /// The database is unavailable for now (connection lost, busy or locked, a
    /// serialization failure) or the writer failed while this append was in flight:
    /// retry the same request (appends are idempotent, so a retry of one that was in
    /// fact stored gets its first result).
    #[error("database unavailable, retry: {0}")]
    Unavailable(String),
    /// The database failed; retry later. Details are for the log, not for callers.
    #[error("storage failure: {0}")]
    Storage(#[from] sqlx::Error),
    /// Running the schema migrations failed.
    #[error("migration failure: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True for an optimistic-concurrency conflict: reload, decide again, retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::WrongExpectedVersion { .. } | StoreError::ConditionFailed(_))
    }

    /// True when the database (not the request) failed.
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            StoreError::Storage(_)
                | StoreError::CommitFailed(_)
                | StoreError::Unavailable(_)
                | StoreError::Migrate(_)
                | StoreError::Corrupt { .. }
        )
    }

    /// True for a failure that a retry of the same request may not meet: the database
    /// was unavailable for a moment, or the writer failed while the append was in flight.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Storage(error) => is_transient(error),
            _ => false,
        }
    }
}

/// Whether a database error is transient: the connection or pool failed, SQLite was busy
/// or locked, PostgreSQL could not serialize, deadlocked, ran out of resources or is
/// shutting down. Constraint violations and bad data are not: retrying would fail again.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => {
            let Some(code) = error.code() else { return false };
            if error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_transient(&code)
            } else {
                postgres_transient(&code)
            }
        }
        _ => false,
    }
}

/// SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_IOERR (10), SQLITE_PROTOCOL (15) and their
/// extended codes (the primary code is the low byte).
fn sqlite_transient(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|number| matches!(number & 0xff, 5 | 6 | 10 | 15))
}

/// SQLSTATE: connection exception (08…), serialization failure, deadlock, insufficient
/// resources (53…, 53300 too many connections included), operator intervention
/// (57P01-57P03: the server is shutting down, crashed or not yet accepting connections;
/// 57P05: an idle session was ended), and 55000 object not in prerequisite state, which
/// is what a connection attempt gets while the database is closed to connections
/// (`ALTER DATABASE … ALLOW_CONNECTIONS false`, "database is not currently accepting
/// connections"): kefu's statements use nothing else that raises it (no sequences'
/// `currval`, no prepared transactions), so it is the connection's, and passes.
fn postgres_transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "40001" | "40P01" | "55000" | "57P01" | "57P02" | "57P03" | "57P05")
}
