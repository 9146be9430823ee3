//! Names tonic's own decoding refusals as the caller's mistakes they are.
//!
//! tonic rejects an oversized message with `OUT_OF_RANGE` and an undecodable one with
//! `INTERNAL` before any kefu code runs. Both are the caller's doing, and kefu promises
//! `RESOURCE_EXHAUSTED` for limits and never `INTERNAL` for a caller's mistake, so this
//! layer rewrites those two trailers-only answers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http::{self, HeaderValue};

#[derive(Debug, Clone, Copy, Default)]
pub struct CallerErrorsLayer;

impl<S> tower::Layer<S> for CallerErrorsLayer {
    type Service = CallerErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallerErrors { inner }
    }
}

#[derive(Debug, Clone)]
pub struct CallerErrors<S> {
    inner: S,
}

/// The new code for a tonic decoding refusal, if this is one.
fn rewritten(code: &str, message: &str) -> Option<&'static str> {
    match code {
        // OUT_OF_RANGE → RESOURCE_EXHAUSTED
        "11" if message.contains("message length too large") => Some("8"),
        // INTERNAL → INVALID_ARGUMENT
        "13" if message.contains("failed to decode")
            || message.contains("invalid compression flag") =>
        {
            Some("3")
        }
        _ => None,
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for CallerErrors<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            let headers = response.headers();
            let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("");
            let message = headers.get("grpc-message").and_then(|v| v.to_str().ok()).unwrap_or("");
            let decoded = percent_decode(message);
            if let Some(new_code) = rewritten(code, &decoded) {
                response.headers_mut().insert("grpc-status", HeaderValue::from_static(new_code));
            }
            Ok(response)
        })
    }
}

/// grpc-message is percent-encoded; enough decoding to match our phrases.
fn percent_decode(text: &str) -> String {
    text.replace("%20", " ").replace("%2C", ",").replace("%3A", ":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_decoding_refusals_are_rewritten() {
        assert_eq!(rewritten("11", "Error, decoded message length too large: found 5"), Some("8"));
        assert_eq!(
            rewritten("13", "failed to decode Protobuf message: buffer underflow"),
            Some("3")
        );
        assert_eq!(rewritten("13", "internal error"), None);
        assert_eq!(rewritten("11", "out of range"), None);
        assert_eq!(rewritten("0", ""), None);
    }
}
