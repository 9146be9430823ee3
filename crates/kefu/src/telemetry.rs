//! Logs and traces: log lines as text or JSON, and OpenTelemetry spans joined to the
//! caller's trace (W3C `traceparent`), exported over OTLP when an endpoint is set.
//!
//! Logs carry ids, never personal data (tests/tests/logs.rs checks both formats).

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::settings::LogFormat;

/// The log filter when `RUST_LOG` says nothing.
const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// The layer that writes log lines in `format` to `writer`. JSON lines hold the
/// event's fields at the top level and each enclosing span's fields once, under
/// `spans`; text lines print span fields once, before the message.
pub fn log_layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => {
            tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi).boxed()
        }
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    }
}

/// The layer that turns kefu's spans into OpenTelemetry spans of `provider`'s tracer.
/// Only kefu's own spans (the per-RPC span and what happens inside it) are exported.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let kefu_only = Targets::new()
        .with_target("kefu", tracing::Level::INFO)
        .with_target("kefu_api", tracing::Level::INFO);
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("kefu"))
        .with_filter(kefu_only)
        .boxed()
}

/// A tracer provider exporting over OTLP/gRPC to `endpoint` in batches. Must be built
/// inside the Tokio runtime (the exporter is a tonic client).
pub fn otlp_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .with_context(|| format!("set up OTLP export to {endpoint}"))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("kefu").build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// The process's logging and tracing; flush it before exiting.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the process-wide subscriber: log lines on standard error in `format`
    /// (filtered by `RUST_LOG`), and spans exported to `otlp_endpoint` when set.
    pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_FILTER.into());
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let provider = otlp_endpoint.map(otlp_provider).transpose()?;
        tracing_subscriber::registry()
            .with(filter)
            // Standard output is for what an operator asked for (a replay, a dossier).
            .with(log_layer(format, std::io::stderr, ansi))
            .with(provider.as_ref().map(otel_layer))
            .try_init()
            .context("install the log subscriber")?;
        if let Some(endpoint) = otlp_endpoint {
            tracing::info!(endpoint, "exporting spans over OTLP");
        }
        Ok(Telemetry { provider })
    }

    /// Sends the spans still buffered.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "could not flush the last spans");
            }
        }
    }
}

/// Reads W3C trace context (`traceparent`, `tracestate`) from a call's headers (gRPC
/// metadata travels as HTTP/2 headers).
pub fn caller_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The trace id a call's events carry: the one its span joined (the caller's trace,
/// or a new one when spans are exported), else the caller's, else a new one.
pub fn trace_id(span: &tracing::Span, caller: &opentelemetry::Context) -> String {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let own = span.context().span().span_context().trace_id();
    let callers = caller.span().span_context().trace_id();
    let id = [own, callers]
        .into_iter()
        .find(|id| *id != TraceId::INVALID)
        .unwrap_or_else(|| TraceId::from_bytes(uuid::Uuid::new_v4().into_bytes()));
    id.to_string()
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_callers_trace_is_joined_and_a_missing_one_is_made() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let caller = caller_context(&headers(&[("traceparent", parent)]));
        let span = tracing::Span::none();
        assert_eq!(trace_id(&span, &caller), "4bf92f3577b34da6a3ce929d0e0e4736");

        for bad in ["", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
            let caller = caller_context(&headers(&[("traceparent", bad)]));
            let made = trace_id(&span, &caller);
            assert_eq!(made.len(), 32, "{made}");
            assert!(made.bytes().all(|b| b.is_ascii_hexdigit()) && made != "0".repeat(32));
        }
        let none = caller_context(&http::HeaderMap::new());
        assert_ne!(trace_id(&span, &none), trace_id(&span, &none), "a new trace per call");
    }
}
