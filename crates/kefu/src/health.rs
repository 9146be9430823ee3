//! `grpc.health.v1` for kefu: readiness and liveness decided from a few signals.
//!
//! Readiness is answered under `""` (the node) and under every kefu service's name.
//! The node is not ready while the server drains, when the database cannot be reached
//! or when the group-commit writer is dead; then no service is. A stopped projection
//! takes the readiness of the services that read the read models (all but
//! [`kefu_api::describe::EVENT_LOG_SERVICES`]) and its own name,
//! `kefu.projection.NAME`, but not the node's: every node shares the stopped
//! checkpoint, so taking nodes out of the balancer would stop filings and the event
//! feed everywhere for one event a projection cannot apply. Liveness, under
//! [`LIVENESS`], fails only when restarting the process is the cure: a writer its
//! supervisor gave up on. (A database outage or a stopped projection is not cured by a
//! restart; draining is the restart.)
//!
//! One place decides every status: [`Health::update`], from all the signals at once.
//! The signals come from [`Probes`] (the database, the supervised writer, the projection
//! runner's stops, the replica), polled every health interval, and from the shutdown
//! (draining), which no probe clears.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kefu_api::describe::EVENT_LOG_SERVICES;
use tokio::sync::Mutex;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The health service name for liveness probes.
pub const LIVENESS: &str = "kefu.liveness";
/// The prefix of each projection's own health service name.
pub const PROJECTION_PREFIX: &str = "kefu.projection.";
/// The service whose reads a read replica answers.
const REPORTING: &str = "kefu.v1.ReportingService";
/// A probe that has not answered in this long has failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What health is decided from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signals {
    /// Shutting down: new calls are refused.
    pub draining: bool,
    pub database_reachable: bool,
    /// The group-commit writer takes appends.
    pub writer_alive: bool,
    /// Projections that stopped on an event they could not apply (see
    /// `kefu_projection::ProjectionStatus::stopped`).
    pub stopped_projections: BTreeSet<String>,
    /// Whether the read replica answers; `None` without one.
    pub replica_reachable: Option<bool>,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            draining: false,
            database_reachable: true,
            writer_alive: true,
            stopped_projections: BTreeSet::new(),
            replica_reachable: None,
        }
    }
}

impl Signals {
    /// Why the node is not ready (`""`); empty when it is. A stopped projection is not
    /// among the reasons: it takes only its readers (see [`Signals::statuses`]).
    pub fn not_ready_because(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.draining {
            reasons.push("draining".to_owned());
        }
        if !self.database_reachable {
            reasons.push("database unreachable".to_owned());
        }
        if !self.writer_alive {
            reasons.push("writer dead".to_owned());
        }
        reasons
    }

    /// The status of every health service name: `""`, each of `services`,
    /// [`LIVENESS`] and each of `projections` under [`PROJECTION_PREFIX`].
    pub fn statuses(&self, services: &[String], projections: &[String]) -> Statuses {
        let status = |up: bool| if up { ServingStatus::Serving } else { ServingStatus::NotServing };
        let ready = self.not_ready_because().is_empty();
        let read_models_ready = self.stopped_projections.is_empty();
        let mut statuses = vec![(String::new(), status(ready))];
        for service in services {
            let reads_log_only = EVENT_LOG_SERVICES.contains(&service.as_str());
            let up = ready
                && (read_models_ready || reads_log_only)
                && (service != REPORTING || self.replica_reachable != Some(false));
            statuses.push((service.clone(), status(up)));
        }
        statuses.push((LIVENESS.to_owned(), status(self.writer_alive)));
        for projection in projections {
            let up = !self.stopped_projections.contains(projection);
            statuses.push((format!("{PROJECTION_PREFIX}{projection}"), status(up)));
        }
        statuses
    }
}

/// A check that answers later.
pub type Probe<T> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = T> + Send>> + Send + Sync>;

/// Where the signals come from.
pub struct Probes {
    /// Whether the database answers a query.
    pub database: Probe<bool>,
    /// Whether the group-commit writer is alive (`EventStore::writer_alive`).
    pub writer_alive: Box<dyn Fn() -> bool + Send + Sync>,
    /// The projections that have stopped (`None` when that cannot be read now: the
    /// signal is left as it was).
    pub stopped_projections: Probe<Option<BTreeSet<String>>>,
    /// Whether the read replica answers, when there is one.
    pub replica: Option<Probe<bool>>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes").field("replica", &self.replica.is_some()).finish_non_exhaustive()
    }
}

/// kefu's health: the signals, and the statuses published from them.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    services: Arc<Vec<String>>,
    projections: Arc<Vec<String>>,
    /// The signals, and the statuses last published from them.
    state: Arc<Mutex<(Signals, Statuses)>>,
}

/// A status per health service name.
type Statuses = Vec<(String, ServingStatus)>;

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").field("services", &self.services).finish_non_exhaustive()
    }
}

impl Health {
    /// Health for `services` and `projections`, all serving until a signal says not.
    pub async fn new(
        reporter: HealthReporter,
        services: Vec<String>,
        projections: Vec<String>,
    ) -> Health {
        let signals = Signals::default();
        let statuses = signals.statuses(&services, &projections);
        for (name, status) in &statuses {
            reporter.set_service_status(name, *status).await;
        }
        let health = Health {
            reporter,
            services: Arc::new(services),
            projections: Arc::new(projections),
            state: Arc::new(Mutex::new((signals, statuses))),
        };
        health.publish_metrics(&Signals::default());
        health
    }

    /// Changes the signals and publishes the statuses that changed.
    pub async fn update(&self, change: impl FnOnce(&mut Signals)) {
        let mut state = self.state.lock().await;
        let (signals, published) = &mut *state;
        let before = (signals.not_ready_because(), signals.stopped_projections.clone());
        change(signals);
        let after = signals.not_ready_because();
        if after != before.0 {
            if after.is_empty() {
                tracing::info!("ready: serving again");
            } else {
                tracing::warn!(reasons = %after.join(", "), "not ready");
            }
        }
        if signals.stopped_projections != before.1 {
            let stopped: Vec<&str> =
                signals.stopped_projections.iter().map(String::as_str).collect();
            if stopped.is_empty() {
                tracing::info!("no projection is stopped: the services reading them serve again");
            } else {
                tracing::warn!(projections = %stopped.join(", "), "projections stopped: the services reading them are not ready");
            }
        }
        let statuses = signals.statuses(&self.services, &self.projections);
        for (name, status) in &statuses {
            if !published.contains(&(name.clone(), *status)) {
                self.reporter.set_service_status(name, *status).await;
            }
        }
        *published = statuses;
        self.publish_metrics(signals);
    }

    /// Marks the node as draining: every readiness name turns NOT_SERVING.
    pub async fn drain(&self) {
        self.update(|signals| signals.draining = true).await;
    }

    /// The signals as they stand.
    pub async fn signals(&self) -> Signals {
        self.state.lock().await.0.clone()
    }

    fn publish_metrics(&self, signals: &Signals) {
        let ready = if signals.not_ready_because().is_empty() { 1.0 } else { 0.0 };
        metrics::gauge!(crate::metrics::READY).set(ready);
        // The one publisher of this gauge, from the same signal as the health names.
        for projection in self.projections.iter() {
            let stopped = if signals.stopped_projections.contains(projection) { 1.0 } else { 0.0 };
            metrics::gauge!(crate::metrics::PROJECTION_STOPPED, "projection" => projection.clone())
                .set(stopped);
        }
    }

    /// Polls `probes` every `interval` and updates the signals, until `stop` resolves.
    pub async fn watch(
        self,
        probes: Probes,
        interval: Duration,
        stop: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(stop);
        loop {
            let timed = |probe: Pin<Box<dyn Future<Output = bool> + Send>>| async move {
                tokio::time::timeout(PROBE_TIMEOUT, probe).await.unwrap_or(false)
            };
            let database = timed((probes.database)()).await;
            let writer_alive = (probes.writer_alive)();
            let stopped = tokio::time::timeout(PROBE_TIMEOUT, (probes.stopped_projections)()).await;
            let replica = match &probes.replica {
                Some(probe) => Some(timed(probe()).await),
                None => None,
            };
            self.update(|signals| {
                signals.database_reachable = database;
                signals.writer_alive = writer_alive;
                // A probe that did not answer changes nothing it did not see.
                if let Ok(Some(stopped)) = stopped {
                    signals.stopped_projections = stopped;
                }
                signals.replica_reachable = replica;
            })
            .await;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = &mut stop => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(statuses: &[(String, ServingStatus)], name: &str) -> ServingStatus {
        statuses.iter().find(|(n, _)| n == name).map(|(_, s)| *s).expect(name)
    }

    const EVENTS: &str = "kefu.v1.EventService";

    #[test]
    fn every_failing_signal_takes_readiness_and_only_a_dead_writer_liveness() {
        let services: Vec<String> = ["kefu.v1.ComplaintService", REPORTING, EVENTS]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let projections = vec!["customers".to_owned(), "complaints".to_owned()];
        let all_up = Signals::default().statuses(&services, &projections);
        assert!(all_up.iter().all(|(_, status)| *status == ServingStatus::Serving));
        assert_eq!(all_up.len(), 1 + 3 + 1 + 2, "\"\", services, liveness, projections");

        type Failure = (&'static str, fn(&mut Signals));
        let node_failures: [Failure; 3] = [
            ("draining", |s| s.draining = true),
            ("database", |s| s.database_reachable = false),
            ("writer", |s| s.writer_alive = false),
        ];
        for (what, fail) in node_failures {
            let mut signals = Signals::default();
            fail(&mut signals);
            let statuses = signals.statuses(&services, &projections);
            for name in ["", "kefu.v1.ComplaintService", REPORTING, EVENTS] {
                assert_eq!(status_of(&statuses, name), ServingStatus::NotServing, "{what}: {name}");
            }
            let live =
                if what == "writer" { ServingStatus::NotServing } else { ServingStatus::Serving };
            assert_eq!(status_of(&statuses, LIVENESS), live, "{what}: liveness");
            assert_eq!(signals.not_ready_because().len(), 1, "{what}");
        }

        // A stopped projection takes its own name and the services reading the read
        // models; the node, the event feed and liveness stay.
        let mut stopped = Signals::default();
        stopped.stopped_projections.insert("complaints".into());
        let statuses = stopped.statuses(&services, &projections);
        assert_eq!(status_of(&statuses, "kefu.projection.complaints"), ServingStatus::NotServing);
        assert_eq!(status_of(&statuses, "kefu.projection.customers"), ServingStatus::Serving);
        for name in ["kefu.v1.ComplaintService", REPORTING] {
            assert_eq!(status_of(&statuses, name), ServingStatus::NotServing, "{name}");
        }
        for name in ["", EVENTS, LIVENESS] {
            assert_eq!(status_of(&statuses, name), ServingStatus::Serving, "{name:?}");
        }
        assert!(stopped.not_ready_because().is_empty());

        let replica_down = Signals { replica_reachable: Some(false), ..Signals::default() };
        let statuses = replica_down.statuses(&services, &projections);
        assert_eq!(status_of(&statuses, REPORTING), ServingStatus::NotServing);
        assert_eq!(status_of(&statuses, ""), ServingStatus::Serving, "commands go on");
    }

    /// Draining is a signal no probe clears: probes that keep finding everything well
    /// do not turn a draining node SERVING again (the statuses come from one place).
    #[tokio::test]
    async fn probes_never_undo_draining() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (reporter, _service) = tonic_health::server::health_reporter();
        let services = vec!["kefu.v1.ComplaintService".to_owned(), EVENTS.to_owned()];
        let health = Health::new(reporter, services, vec!["complaints".to_owned()]).await;
        health.drain().await;
        let looks = Arc::new(AtomicUsize::new(0));
        let counted = looks.clone();
        let probes = Probes {
            database: Box::new(|| Box::pin(async { true })),
            writer_alive: Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                true
            }),
            stopped_projections: Box::new(|| Box::pin(async { Some(BTreeSet::new()) })),
            replica: None,
        };
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let watching = tokio::spawn(health.clone().watch(probes, Duration::ZERO, async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }));
        while looks.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        let _ = stop_tx.send(true);
        watching.await.unwrap();
        let published = health.state.lock().await.1.clone();
        for name in ["", "kefu.v1.ComplaintService", EVENTS] {
            assert_eq!(status_of(&published, name), ServingStatus::NotServing, "{name:?}");
        }
        assert_eq!(status_of(&published, LIVENESS), ServingStatus::Serving);
    }
}
