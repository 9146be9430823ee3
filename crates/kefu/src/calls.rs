//! The layer every call passes first: refused while draining or over the limits, then
//! run in a span joined to the caller's trace with its cross-system ids, and measured
//! from its first byte to its last, whether it ends, fails, times out or is cancelled.
//!
//! Server streams are followed to their end: their body carries the measurement, and
//! when the server starts draining it ends them with `UNAVAILABLE` ("server shutting
//! down"), after delivering what was ready, so no stream holds a shutdown up.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::Frame;
use kefu_api::call::{grpc_timeout, CallContext};
use kefu_api::describe::Method;
use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::{Code, Status};
use tracing::Instrument;

use crate::limits::{self, Limiter};
use crate::metrics::{RPC_HANDLED, RPC_SECONDS, RPC_SHED, RPC_STARTED};
use crate::telemetry;

/// The message of every call refused or ended by a shutdown.
pub const SHUTTING_DOWN: &str = "server shutting down";
/// Calls to these go on while draining (probes must see NOT_SERVING) and are never shed.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// What the layer knows about the served methods, and the server's state.
#[derive(Debug)]
struct Shared {
    methods: HashMap<String, Method>,
    limiter: Limiter,
    draining: watch::Receiver<bool>,
    /// Spans are exported: name them the OpenTelemetry way.
    exports_spans: bool,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct CallLayer {
    shared: Arc<Shared>,
}

impl CallLayer {
    pub fn new(
        methods: Vec<Method>,
        limiter: Limiter,
        draining: watch::Receiver<bool>,
        exports_spans: bool,
    ) -> Self {
        let methods = methods.into_iter().map(|method| (method.path.clone(), method)).collect();
        CallLayer { shared: Arc::new(Shared { methods, limiter, draining, exports_spans }) }
    }
}

impl<S> tower::Layer<S> for CallLayer {
    type Service = Calls<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Calls { inner, shared: self.shared.clone() }
    }
}

#[derive(Debug, Clone)]
pub struct Calls<S> {
    inner: S,
    shared: Arc<Shared>,
}

type CallFuture<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Calls<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = CallFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let shared = &self.shared;
        let method = shared.methods.get(request.uri().path());
        let mut record = Record::start(method, request.headers());
        let refuse = |record: &mut Record, status: Status| -> Self::Future {
            record.finish(status.code());
            Box::pin(std::future::ready(Ok(status.into_http())))
        };
        let service = method.map_or("", |m| m.service.as_str());
        if *shared.draining.borrow() && service != HEALTH_SERVICE {
            return refuse(&mut record, Status::unavailable(SHUTTING_DOWN));
        }
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        // Probes are never shed: an overloaded node is busy, not dead.
        let admission = (service != HEALTH_SERVICE)
            .then(|| shared.limiter.admit(service, header("authorization")))
            .transpose();
        let admitted = match admission {
            Ok(admitted) => admitted,
            Err(refused) => {
                metrics::counter!(RPC_SHED, "reason" => refused.reason).increment(1);
                tracing::debug!(reason = refused.reason, method = %request.uri().path(), "call shed");
                return refuse(&mut record, refused.status());
            }
        };
        let (span, context) =
            call_span(request.uri().path(), request.headers(), shared.exports_spans);
        record.span = Some(span.clone());
        let streams = method.is_some_and(|m| m.server_streaming);
        let draining = streams.then(|| shared.draining.clone());
        let timeout =
            request.headers().get("grpc-timeout").and_then(|v| grpc_timeout(v.as_bytes()));
        let call = kefu_api::call::scope(context, self.inner.call(request)).instrument(span);
        Box::pin(async move {
            // Held until the handler answered, then (fewer) until the body ends; a
            // dropped future drops both, and the record counts the call as cancelled
            // (or past its deadline).
            let admitted = admitted;
            let answered = match timeout {
                None => call.await,
                // tonic ends a call at its deadline too, but answers CANCELLED; this
                // ends it a millisecond (one timer tick) before, as DEADLINE_EXCEEDED.
                Some(timeout) => {
                    let early = timeout.saturating_sub(Duration::from_millis(1));
                    match tokio::time::timeout(early, call).await {
                        Ok(answered) => answered,
                        Err(_) => {
                            record.finish(Code::DeadlineExceeded);
                            return Ok(Status::deadline_exceeded("deadline exceeded").into_http());
                        }
                    }
                }
            };
            match answered {
                Ok(response) => {
                    let held = admitted.map(limits::Admitted::answered);
                    Ok(follow(response, record, draining, held))
                }
                Err(error) => {
                    record.finish(Code::Unknown);
                    Err(error)
                }
            }
        })
    }
}

/// The call's span, joined to the caller's trace, and its cross-system ids.
fn call_span(
    path: &str,
    headers: &http::HeaderMap,
    exports_spans: bool,
) -> (tracing::Span, CallContext) {
    use tracing::field::Empty;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = if exports_spans {
        // OpenTelemetry's RPC conventions: named `package.Service/Method`, kind server.
        let name = path.trim_start_matches('/');
        tracing::info_span!("rpc", method = %path, otel.name = %name, otel.kind = "server",
            trace_id = Empty, correlation_id = Empty, principal = Empty, request_id = Empty)
    } else {
        tracing::info_span!("rpc", method = %path,
            trace_id = Empty, correlation_id = Empty, principal = Empty, request_id = Empty)
    };
    let caller = telemetry::caller_context(headers);
    // Without an exporting layer there is no OpenTelemetry span to join: nothing lost.
    let _ = span.set_parent(caller.clone());
    let trace_id = telemetry::trace_id(&span, &caller);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let context = CallContext::from_caller(
        Some(trace_id),
        header("x-correlation-id"),
        header("x-causation-id"),
    );
    span.record("trace_id", context.trace_id.as_deref());
    span.record("correlation_id", context.correlation_id.as_deref());
    (span, context)
}

/// The answer, measured: at once for a trailers-only answer (an error, or a refusal),
/// else when its body ends.
fn follow(
    response: http::Response<Body>,
    mut record: Record,
    draining: Option<watch::Receiver<bool>>,
    held: Option<limits::Held>,
) -> http::Response<Body> {
    let (parts, body) = response.into_parts();
    if let Some(code) = parts.headers.get("grpc-status").and_then(|v| code_of(v.as_bytes())) {
        record.finish(code);
        return http::Response::from_parts(parts, body);
    }
    let drain = draining.map(|mut draining| -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let _ = draining.wait_for(|draining| *draining).await;
        })
    });
    let body = CallBody { inner: body, record, drain, state: BodyState::Open, _held: held };
    http::Response::from_parts(parts, Body::new(body))
}

/// A response body that measures the call when it ends and, for a server stream, ends
/// it when the server drains.
struct CallBody {
    inner: Body,
    record: Record,
    drain: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    state: BodyState,
    /// The call's slots, given back when the body (a stream: the call) ends.
    _held: Option<limits::Held>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Open,
    /// Draining: one more poll of the stream (what is ready goes out), then the end.
    Draining {
        polled: bool,
    },
    Ended,
}

impl CallBody {
    fn shutdown_trailers(&mut self) -> Poll<Option<Result<Frame<bytes::Bytes>, Status>>> {
        self.state = BodyState::Ended;
        self.record.finish(Code::Unavailable);
        let mut trailers = http::HeaderMap::new();
        match Status::unavailable(SHUTTING_DOWN).add_header(&mut trailers) {
            Ok(()) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Err(status) => Poll::Ready(Some(Err(status))),
        }
    }
}

impl http_body::Body for CallBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match this.state {
            BodyState::Ended => return Poll::Ready(None),
            BodyState::Draining { polled: true } => return this.shutdown_trailers(),
            BodyState::Open => {
                if let Some(drain) = this.drain.as_mut() {
                    if drain.as_mut().poll(cx).is_ready() {
                        this.drain = None;
                        this.state = BodyState::Draining { polled: false };
                    }
                }
            }
            BodyState::Draining { polled: false } => {}
        }
        let draining = this.state != BodyState::Open;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers.get("grpc-status").and_then(|v| code_of(v.as_bytes()));
                    this.record.finish(code.unwrap_or(Code::Unknown));
                    this.state = BodyState::Ended;
                } else if draining {
                    this.state = BodyState::Draining { polled: true };
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(status))) => {
                this.record.finish(status.code());
                this.state = BodyState::Ended;
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) if draining => this.shutdown_trailers(),
            Poll::Ready(None) => {
                this.record.finish(Code::Unknown);
                this.state = BodyState::Ended;
                Poll::Ready(None)
            }
            Poll::Pending if draining => this.shutdown_trailers(),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == BodyState::Ended
    }
}

/// One call's measurement; a call dropped before it ended is counted as cancelled, or
/// as past its deadline when the caller's `grpc-timeout` has run out.
struct Record {
    /// `grpc_type`, `grpc_service`, `grpc_method`; unknown paths share one label set,
    /// so a caller cannot grow the metrics.
    labels: (&'static str, String, String),
    started: Instant,
    deadline: Option<Instant>,
    span: Option<tracing::Span>,
    finished: bool,
}

impl Record {
    fn start(method: Option<&Method>, headers: &http::HeaderMap) -> Record {
        let labels = match method {
            Some(method) => (method.kind(), method.service.clone(), method.name.clone()),
            None => ("unary", "unknown".to_owned(), "unknown".to_owned()),
        };
        metrics::counter!(RPC_STARTED, "grpc_type" => labels.0, "grpc_service" => labels.1.clone(),
            "grpc_method" => labels.2.clone())
        .increment(1);
        let started = Instant::now();
        let deadline = headers
            .get("grpc-timeout")
            .and_then(|value| grpc_timeout(value.as_bytes()))
            .and_then(|timeout| started.checked_add(timeout));
        Record { labels, started, deadline, span: None, finished: false }
    }

    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let (kind, service, method) = &self.labels;
        let code_name = code_name(code);
        let labels = [
            ("grpc_type", (*kind).to_owned()),
            ("grpc_service", service.clone()),
            ("grpc_method", method.clone()),
            ("grpc_code", code_name.to_owned()),
        ];
        let seconds = self.started.elapsed().as_secs_f64();
        metrics::counter!(RPC_HANDLED, &labels).increment(1);
        metrics::histogram!(RPC_SECONDS, &labels).record(seconds);
        if let Some(span) = &self.span {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            span.set_attribute("rpc.grpc.status_code", i64::from(i32::from(code)));
            if is_server_error(code) {
                span.set_status(opentelemetry::trace::Status::error(code_name));
            }
            span.in_scope(|| tracing::debug!(code = code_name, seconds, "call ended"));
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.finished {
            let late = self.deadline.is_some_and(|deadline| Instant::now() >= deadline);
            self.finish(if late { Code::DeadlineExceeded } else { Code::Cancelled });
        }
    }
}

/// OpenTelemetry marks a server span as failed for these codes only.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// The status code of a `grpc-status` value.
fn code_of(value: &[u8]) -> Option<Code> {
    std::str::from_utf8(value).ok()?.parse::<i32>().ok().map(Code::from_i32)
}

/// Codes as Prometheus' gRPC conventions spell them (`grpc_code="InvalidArgument"`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_are_read_as_the_protocol_writes_them() {
        assert_eq!(code_of(b"3"), Some(Code::InvalidArgument));
        assert_eq!(code_of(b"x"), None);
        assert_eq!(code_name(Code::Cancelled), "Canceled");
    }
}
