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
    /// A caller-supplied argument (page token, filter) is not acceptable.
    #[error("invalid argument {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
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
