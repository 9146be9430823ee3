//! What `grpc.health.v1.Health` reports beyond "the server is up": the overall service
//! is NOT_SERVING once the event store's writer is gone (no append can succeed), and
//! each projection has a service of its own, `kefu.projection.<name>`, NOT_SERVING
//! while it is stopped on an event it cannot apply.

use std::future::Future;
use std::time::Duration;

use kefu_event_store::EventStore;
use kefu_projection::Runner;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The services whose status follows the writer's.
pub const SERVICES: [&str; 4] = [
    "kefu.v1.CustomerService",
    "kefu.v1.StaffService",
    "kefu.v1.ComplaintService",
    "kefu.v1.CallbackService",
];

/// How often the writer and the projections are looked at.
const EVERY: Duration = Duration::from_secs(1);

/// The health service name of a projection.
pub fn projection_service(name: &str) -> String {
    format!("kefu.projection.{name}")
}

/// Keeps the reporter in step with the writer and the projections until `stop` resolves.
pub async fn watch(
    reporter: HealthReporter,
    store: EventStore,
    runner: Runner,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let writer = serving(store.writer_alive());
        reporter.set_service_status("", writer).await;
        for service in SERVICES {
            reporter.set_service_status(service, writer).await;
        }
        match runner.status().await {
            Ok(statuses) => {
                for status in statuses {
                    let service = projection_service(status.name);
                    reporter.set_service_status(service, serving(status.stopped.is_none())).await;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the projections' status"),
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = &mut stop => return,
        }
    }
}

fn serving(up: bool) -> ServingStatus {
    if up {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}
