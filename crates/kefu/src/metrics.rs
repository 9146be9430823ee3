//! Prometheus metrics, served by axum at `GET /metrics` on the metrics address.
//!
//! Latencies are histograms with explicit buckets, so they aggregate across nodes.
//! RPCs follow the names of the Go and Java gRPC exporters (`grpc_server_*`, labels
//! `grpc_type`, `grpc_service`, `grpc_method`, `grpc_code`); kefu's own are
//! `kefu_*`. The list with meanings is in docs/operations.md.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use kefu_api::Clock;
use kefu_domain::Policy;
use kefu_projection::{ReadModels, Runner};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// RPCs started (`grpc_type`, `grpc_service`, `grpc_method`).
pub const RPC_STARTED: &str = "grpc_server_started_total";
/// RPCs ended, by code (cancelled and timed-out calls too).
pub const RPC_HANDLED: &str = "grpc_server_handled_total";
/// RPC latency, first byte to last (a stream's whole life), by code.
pub const RPC_SECONDS: &str = "grpc_server_handling_seconds";
/// Calls refused by the limits before any work (`reason`: overloaded, principal_limit,
/// rate_limited).
pub const RPC_SHED: &str = "kefu_calls_shed_total";
/// Events a command appended.
const EVENTS_APPENDED: &str = "kefu_events_appended_total";
/// From an append's submission to its commit.
const APPEND_SECONDS: &str = "kefu_append_duration_seconds";
/// Appends per group-commit turn of the writer.
const APPEND_BATCH: &str = "kefu_append_batch_size";
/// Events not yet applied, per projection.
const PROJECTION_LAG: &str = "kefu_projection_lag_events";
/// Obligations past their deadline unmet, by `rule`.
const SLA_BREACHED: &str = "kefu_sla_breached";
/// Obligations at risk (R-T5): past their policy's share of their time, not yet due.
const SLA_AT_RISK: &str = "kefu_sla_at_risk";
/// 1 while the projection (`projection`) is stopped; published by health, from the
/// signal its `kefu.projection.NAME` status follows.
pub(crate) const PROJECTION_STOPPED: &str = "kefu_projection_stopped";
/// 1 while the node is ready (health `""`).
pub(crate) const READY: &str = "kefu_ready";

/// Latency buckets (seconds): sub-millisecond commands up to five-minute streams.
const LATENCY_BUCKETS: [f64; 17] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];
/// Batch-size buckets: the writer takes at most 128 appends per turn.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// Every metric kefu exports, for the docs test and operators.
pub const NAMES: [&str; 13] = [
    RPC_STARTED,
    RPC_HANDLED,
    RPC_SECONDS,
    RPC_SHED,
    EVENTS_APPENDED,
    APPEND_SECONDS,
    APPEND_BATCH,
    PROJECTION_LAG,
    SLA_AT_RISK,
    PROJECTION_STOPPED,
    SLA_BREACHED,
    READY,
    "kefu_build_info",
];

/// The process-wide recorder (metrics are global by nature); installed once.
pub fn handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .context("latency buckets")?
        .set_buckets_for_metric(Matcher::Full(APPEND_BATCH.to_owned()), &BATCH_BUCKETS)
        .context("batch buckets")?
        .install_recorder()
        .context("install the metrics recorder")?;
    metrics::gauge!("kefu_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Shown at zero from the start, so an alert on their rate has a series to watch.
    for reason in ["overloaded", "principal_limit", "rate_limited"] {
        metrics::counter!(RPC_SHED, "reason" => reason).increment(0);
    }
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Serves `GET /metrics` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    use axum::http::header::CONTENT_TYPE;
    let render = move || {
        let handle = handle.clone();
        async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()) }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(render));
    if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::warn!(%error, "the metrics server failed");
    }
}

/// What the periodic gauges are computed from.
#[derive(Clone)]
pub struct Gauges {
    pub runner: Runner,
    pub models: ReadModels,
    pub policy: Arc<Policy>,
    pub clock: Clock,
    pub handle: PrometheusHandle,
}

impl std::fmt::Debug for Gauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauges").finish_non_exhaustive()
    }
}

impl Gauges {
    /// Refreshes the gauges that cost a query every `interval` until `stop` resolves:
    /// projection lag, and SLA breaches by rule (three counts, whatever the history).
    pub async fn publish(self, interval: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            self.refresh().await;
            self.handle.run_upkeep();
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = &mut stop => return,
            }
        }
    }

    async fn refresh(&self) {
        match self.runner.status().await {
            Ok(statuses) => {
                for status in statuses {
                    let lag = u32::try_from(status.lag).map_or(f64::from(u32::MAX), f64::from);
                    metrics::gauge!(PROJECTION_LAG, "projection" => status.name).set(lag);
                }
            }
            Err(error) => tracing::debug!(%error, "projection lag not measured"),
        }
        match self.models.sla_breach_counts((self.clock)(), &self.policy).await {
            Ok(counts) => {
                for (rule, count) in [
                    ("first_response", counts.first_response),
                    ("resolution_overdue", counts.resolution_overdue),
                    ("callback_overdue", counts.callback_overdue),
                    ("new_customer_not_contacted", counts.new_customer_not_contacted),
                    ("request_first_response", counts.request_first_response),
                    ("request_callback_overdue", counts.request_callback_overdue),
                ] {
                    let count = u32::try_from(count).map_or(f64::from(u32::MAX), f64::from);
                    metrics::gauge!(SLA_BREACHED, "rule" => rule).set(count);
                }
            }
            Err(error) => tracing::debug!(%error, "SLA breaches not counted"),
        }
        match self.models.sla_at_risk_counts((self.clock)(), &self.policy).await {
            Ok(counts) => {
                for (kind, count) in counts {
                    let count = u32::try_from(count).map_or(f64::from(u32::MAX), f64::from);
                    metrics::gauge!(SLA_AT_RISK, "rule" => rule_name(kind)).set(count);
                }
            }
            Err(error) => tracing::debug!(%error, "SLA items at risk not counted"),
        }
    }
}

/// The `rule` label of an SLA gauge, the words of `kefu_sla_breached`.
fn rule_name(kind: kefu_projection::queries::SlaKind) -> &'static str {
    use kefu_projection::queries::SlaKind;
    match kind {
        SlaKind::FirstResponse => "first_response",
        SlaKind::ResolutionOverdue => "resolution_overdue",
        SlaKind::CallbackOverdue => "callback_overdue",
        SlaKind::NewCustomerNotContacted => "new_customer_not_contacted",
        SlaKind::RequestFirstResponse => "request_first_response",
        SlaKind::RequestCallbackOverdue => "request_callback_overdue",
    }
}
