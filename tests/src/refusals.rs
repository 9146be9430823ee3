//! How a test checks a refusal as an attacker would read it: the code, nothing written,
//! and nothing secret anywhere in the status (message, details, metadata).

use tonic::{Code, Status};

use crate::{db, TestApp};

/// Everything a status carries: message, details and metadata.
pub fn status_bytes(status: &Status) -> Vec<u8> {
    let mut bytes = status.message().as_bytes().to_vec();
    bytes.extend_from_slice(status.details());
    for entry in status.metadata().iter() {
        if let tonic::metadata::KeyAndValueRef::Ascii(_, value) = entry {
            bytes.extend_from_slice(value.as_encoded_bytes());
        }
    }
    bytes
}

/// Whether `secret` is anywhere in what `status` carries.
pub fn tells(status: &Status, secret: &str) -> bool {
    contains(&status_bytes(status), secret)
}

/// Whether `needle` is anywhere in `haystack` (an encoded answer, a status).
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// Refused with `code`, nothing written, nothing of `secrets` anywhere in the status.
pub async fn refused_quietly<T: std::fmt::Debug>(
    app: &TestApp,
    call: impl std::future::Future<Output = Result<T, Status>>,
    code: Code,
    secrets: &[&str],
) -> Status {
    let before = db::head(app.db.url()).await;
    let status = call.await.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(db::head(app.db.url()).await, before, "a refusal writes nothing: {status:?}");
    for secret in secrets {
        assert!(!tells(&status, secret), "{status:?} tells {secret}");
    }
    status
}

/// `PERMISSION_DENIED`, nothing written, nothing of `secrets` told.
pub async fn denied<T: std::fmt::Debug>(
    app: &TestApp,
    call: impl std::future::Future<Output = Result<T, Status>>,
    secrets: &[&str],
) -> Status {
    refused_quietly(app, call, Code::PermissionDenied, secrets).await
}

/// `NOT_FOUND`, nothing written, nothing of `secrets` told: R-C6 hides a record above
/// the caller's clearance as if it did not exist.
pub async fn hidden<T: std::fmt::Debug>(
    app: &TestApp,
    call: impl std::future::Future<Output = Result<T, Status>>,
    secrets: &[&str],
) -> Status {
    refused_quietly(app, call, Code::NotFound, secrets).await
}
