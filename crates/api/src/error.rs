//! Errors of the API layer and their one, exhaustive mapping to gRPC status codes.

use std::collections::HashMap;

use kefu_domain::{DomainError, ErrorKind};
use kefu_event_store::StoreError;
use kefu_projection::ProjectionError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo` domain of every kefu error.
pub const ERROR_DOMAIN: &str = "kefu.v1";

/// Everything an RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Fields of the request are malformed: each violation names its field.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<(String, String)>),
    /// A business rule refused the command.
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// The duplicate policy refuses a new customer whose phone or email (`field`) an
    /// existing customer the caller may see already has: that one is `existing`.
    #[error("customer {existing} already has this {field}")]
    DuplicateContact { existing: String, field: &'static str },
    /// The caller's `expected_version` did not match: reload and decide again.
    #[error("{stream} is at version {actual}, not {expected}")]
    Conflict { stream: String, expected: String, actual: u64 },
    /// Concurrent writers kept winning; the command was not applied. Retry later.
    #[error("too many concurrent changes to {stream}; not applied")]
    Contended { stream: String },
    /// The request id was already used for a different request.
    #[error("request id {0:?} was already used for a different request")]
    RequestIdReused(String),
    /// The request id was used for a request about a customer since forgotten: nothing
    /// can tell any more what that request said (R-C8), so it is answered for no
    /// request (fail closed). Use a new request id.
    #[error("request id {0:?} was used for a request about a forgotten customer; it cannot be verified, use a new request id")]
    RequestSubjectErased(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A size or count limit was exceeded.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The read models did not reach `min_position` before the deadline.
    #[error("read models are at position {reached}, not yet at {wanted}")]
    NotCaughtUp { wanted: u64, reached: u64 },
    /// A projection the read stopped on an event it cannot apply: the read models will
    /// not reach `min_position` until an operator fixes or rebuilds it.
    #[error("read model {projection} stopped at position {position}; it will not catch up until fixed or rebuilt")]
    ProjectionStopped { projection: String, position: u64, event_type: String },
    /// The database is unavailable for a moment: retry (the same request id is safe).
    #[error("temporarily unavailable, retry")]
    Unavailable(String),
    /// Infrastructure failed; the detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

fn describe(violations: &[(String, String)]) -> String {
    violations.iter().map(|(field, why)| format!("{field}: {why}")).collect::<Vec<_>>().join("; ")
}

impl ApiError {
    /// A `NOT_FOUND` named by `key`, the name the caller used (a case number rather
    /// than the id it resolved to, which would tell that it exists); others as they are.
    pub fn naming(self, key: &str) -> Self {
        match self {
            ApiError::NotFound { what, .. } => ApiError::NotFound { what, id: key.to_owned() },
            other => other,
        }
    }

    pub fn field(field: &str, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(vec![(field.to_owned(), description.into())])
    }

    pub fn forbidden(description: impl Into<String>) -> Self {
        ApiError::PermissionDenied(description.into())
    }
}

impl From<kefu_domain::ValueError> for ApiError {
    fn from(error: kefu_domain::ValueError) -> Self {
        ApiError::Domain(DomainError::InvalidValue(error))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::WrongExpectedVersion { stream_id, expected, actual } => {
                ApiError::Conflict { stream: stream_id, expected: expected.to_string(), actual }
            }
            StoreError::IdempotencyMismatch { event_id, .. } => {
                ApiError::RequestIdReused(event_id.to_string())
            }
            StoreError::LimitExceeded { what, limit, actual } => ApiError::ResourceExhausted(
                format!("{what} is {actual}, above the limit of {limit}"),
            ),
            StoreError::OutOfRange { what, value } => {
                ApiError::field(what, format!("{value} is out of range"))
            }
            StoreError::KeyDestroyed(_) => ApiError::Domain(DomainError::CustomerForgotten),
            // What the command read changed before it committed: like a lost race.
            StoreError::ConditionFailed(condition) => ApiError::Contended {
                stream: condition
                    .stream_id()
                    .map_or_else(|| "the log".to_owned(), |s| s.to_string()),
            },
            // Transient: the caller may retry the same request.
            StoreError::Unavailable(reason) => ApiError::Unavailable(reason),
            StoreError::Storage(error) if kefu_event_store::is_transient(&error) => {
                ApiError::Unavailable(error.to_string())
            }
            // The rest are ours to prevent: a caller cannot cause them (a group's
            // incomplete member is answered with the member that was refused).
            error @ (StoreError::EmptyAppend
            | StoreError::GroupIncomplete
            | StoreError::DuplicateEventId { .. }
            | StoreError::InvalidStreamId { .. }
            | StoreError::InvalidEventType { .. }
            | StoreError::UnsupportedUrl(_)
            | StoreError::Unsupported(_)
            | StoreError::Corrupt { .. }
            | StoreError::Storage(_)
            | StoreError::CommitFailed(_)
            | StoreError::Migrate(_)) => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<ProjectionError> for ApiError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::InvalidArgument { field, reason } => ApiError::field(field, reason),
            ProjectionError::NotCaughtUp { wanted, reached } => {
                ApiError::NotCaughtUp { wanted, reached }
            }
            ProjectionError::Stopped { projection, position, event_type } => {
                ApiError::ProjectionStopped { projection, position, event_type }
            }
            error if error.is_transient() => ApiError::Unavailable(error.to_string()),
            error @ (ProjectionError::Storage(_)
            | ProjectionError::Store(_)
            | ProjectionError::Decode { .. }
            | ProjectionError::Corrupt(_)
            | ProjectionError::UnknownProjection(_)) => ApiError::Internal(error.to_string()),
        }
    }
}

fn error_info(reason: &str, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

/// Status messages and details travel in HTTP/2 headers: an error that echoes a huge
/// input must not become a header the client refuses. Cut at a char boundary.
fn bounded(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let message = bounded(&error.to_string(), 512);
        match error {
            ApiError::InvalidArgument(violations) => {
                let violations: Vec<FieldViolation> = violations
                    .into_iter()
                    .take(32)
                    .map(|(field, why)| {
                        FieldViolation::new(bounded(&field, 64), bounded(&why, 160))
                    })
                    .collect();
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            ApiError::Domain(error) => domain_status(&error, message),
            ApiError::NotFound { what, id } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info(what, bounded(&id, 128), "", "no such record"),
            ),
            ApiError::DuplicateContact { existing, field } => Status::with_error_details(
                Code::AlreadyExists,
                message,
                error_info(
                    "DUPLICATE_CONTACT",
                    HashMap::from([
                        ("customer_id".into(), existing),
                        ("field".into(), field.to_owned()),
                    ]),
                ),
            ),
            ApiError::Conflict { stream, actual, .. } => Status::with_error_details(
                Code::Aborted,
                message,
                error_info(
                    "WRONG_EXPECTED_VERSION",
                    HashMap::from([
                        ("stream".into(), stream),
                        ("actual_version".into(), actual.to_string()),
                    ]),
                ),
            ),
            ApiError::Contended { stream } => Status::with_error_details(
                Code::Aborted,
                message,
                error_info("CONTENDED", HashMap::from([("stream".into(), stream)])),
            ),
            ApiError::RequestIdReused(_) => Status::with_error_details(
                Code::AlreadyExists,
                message,
                error_info("REQUEST_ID_REUSED", HashMap::new()),
            ),
            ApiError::RequestSubjectErased(_) => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                error_info(
                    "REQUEST_SUBJECT_ERASED",
                    HashMap::from([("rule".into(), "R-C8".into())]),
                ),
            ),
            ApiError::Unauthenticated(_) => Status::new(Code::Unauthenticated, message),
            ApiError::PermissionDenied(_) => Status::new(Code::PermissionDenied, message),
            ApiError::ResourceExhausted(_) => Status::new(Code::ResourceExhausted, message),
            ApiError::NotCaughtUp { .. } => Status::with_error_details(
                Code::DeadlineExceeded,
                message,
                error_info("READ_MODEL_BEHIND", HashMap::new()),
            ),
            ApiError::ProjectionStopped { projection, position, event_type } => {
                Status::with_error_details(
                    Code::FailedPrecondition,
                    message,
                    error_info(
                        "PROJECTION_STOPPED",
                        HashMap::from([
                            ("projection".into(), projection),
                            ("position".into(), position.to_string()),
                            ("event_type".into(), event_type),
                        ]),
                    ),
                )
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable; the caller may retry");
                Status::new(Code::Unavailable, message)
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::new(Code::Internal, "internal error")
            }
        }
    }
}

fn domain_status(error: &DomainError, message: String) -> Status {
    let mut metadata = HashMap::new();
    if let Some(rule) = error.rule() {
        metadata.insert("rule".to_owned(), rule.to_owned());
    }
    let code = match error.kind() {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
    };
    let mut details = error_info(error.code(), metadata);
    if let DomainError::InvalidValue(value) = error {
        details.add_bad_request_violation(value.field, bounded(&value.reason, 160));
    } else if let Some(field) = error.field() {
        details.add_bad_request_violation(field, message.clone());
    } else if code == Code::InvalidArgument {
        details.add_bad_request_violation("request", message.clone());
    }
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Transient database failures are UNAVAILABLE (retry), never INTERNAL; a stopped
    /// projection is FAILED_PRECONDITION naming it.
    #[test]
    fn transient_failures_and_stopped_projections_have_their_own_codes() {
        // (Which database errors are transient is tested against real databases in
        // kefu-event-store's `commit_failures`.)
        let unavailable = StoreError::Unavailable("the writer failed before answering".into());
        let status = Status::from(ApiError::from(unavailable));
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        let transient = ProjectionError::Store(StoreError::Unavailable("busy".into()));
        assert_eq!(Status::from(ApiError::from(transient)).code(), Code::Unavailable);
        let stopped = ProjectionError::Stopped {
            projection: "complaints".into(),
            position: 42,
            event_type: "ComplaintFiled".into(),
        };
        let status = Status::from(ApiError::from(stopped));
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "PROJECTION_STOPPED");
        assert_eq!(info.metadata.get("position").map(String::as_str), Some("42"));
        // A failure that is not transient stays INTERNAL, its detail kept out of the answer.
        let corrupt = StoreError::Corrupt { position: 1, reason: "bad row".into() };
        let status = Status::from(ApiError::from(corrupt));
        assert_eq!((status.code(), status.message()), (Code::Internal, "internal error"));
    }
}
