//! Errors of the projection runner and the read-model queries.

use kefu_domain::DecodeError;
use kefu_event_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed; the batch was rolled back and will be retried.
    #[error("read-model storage failure: {0}")]
    Storage(#[from] sqlx::Error),
    /// Reading the log failed.
    #[error("event store failure: {0}")]
    Store(#[from] StoreError),
    /// A stored event does not decode; the projection stops here rather than skip it.
    #[error("event at position {position} does not decode: {error}")]
    Decode { position: u64, error: DecodeError },
    /// A read-model row does not hold what its schema promises.
    #[error("read model is corrupt: {0}")]
    Corrupt(String),
    /// No projection has this name.
    #[error("no projection is named {0:?}")]
    UnknownProjection(String),
    /// The read models did not reach the requested position in time.
    #[error("read models are at position {reached}, not yet at {wanted}")]
    NotCaughtUp { wanted: u64, reached: u64 },
    /// A projection stopped on an event it cannot apply: the read models will not reach
    /// a position past it until it is fixed (a new binary) or rebuilt.
    #[error("projection {projection} stopped at position {position} ({event_type})")]
    Stopped { projection: String, position: u64, event_type: String },
    /// A caller-supplied argument (page token, filter) is not acceptable.
    #[error("invalid argument {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
}

impl ProjectionError {
    /// True for a failure that says nothing about the events (the connection, a busy
    /// or locked database, a serialization failure): retry the batch, do not stop.
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectionError::Storage(error) => kefu_event_store::is_transient(error),
            ProjectionError::Store(error) => error.is_transient(),
            ProjectionError::Decode { .. }
            | ProjectionError::Corrupt(_)
            | ProjectionError::UnknownProjection(_)
            | ProjectionError::NotCaughtUp { .. }
            | ProjectionError::Stopped { .. }
            | ProjectionError::InvalidArgument { .. } => false,
        }
    }
}

/// Converts a count or position from SQL, treating a negative number as corruption.
pub(crate) fn non_negative(what: &str, value: i64) -> Result<u64, ProjectionError> {
    u64::try_from(value)
        .map_err(|_| ProjectionError::Corrupt(format!("{what} is negative: {value}")))
}

/// Converts a position into SQL's range.
pub(crate) fn to_sql(what: &'static str, value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value).map_err(|_| ProjectionError::InvalidArgument {
        field: what,
        reason: format!("{value} is out of range"),
    })
}
