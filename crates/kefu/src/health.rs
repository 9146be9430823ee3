//! `grpc.health.v1` for kefu: readiness and liveness decided from a few signals.
//!
//! Readiness is answered under `""` and under every kefu service's name: NOT_SERVING
//! while the server drains, when the database cannot be reached, when the
//! group-commit writer is dead or when a projection has stopped. Liveness, under
//! [`LIVENESS`], fails only when restarting the process is the cure: a dead writer.
//! (A database outage or a stopped projection is not cured by a restart; draining is
//! the restart.) Each projection also has a name of its own, `kefu.projection.NAME`.
//!
//! The signals come from [`Probes`], polled every health interval, and from the
//! shutdown (draining); whoever knows more (the projection runner) plugs in a probe.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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
    /// Projections that stopped on an event they could not apply.
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
    /// Why the node is not ready; empty when it is.
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
        for projection in &self.stopped_projections {
            reasons.push(format!("projection {projection} stopped"));
        }
        reasons
    }

    /// The status of every health service name: `""`, each of `services`,
    /// [`LIVENESS`] and each of `projections` under [`PROJECTION_PREFIX`].
    pub fn statuses(&self, services: &[String], projections: &[String]) -> Statuses {
        let status = |up: bool| if up { ServingStatus::Serving } else { ServingStatus::NotServing };
        let ready = self.not_ready_because().is_empty();
        let mut statuses = vec![(String::new(), status(ready))];
        for service in services {
            let up = ready && (service != REPORTING || self.replica_reachable != Some(false));
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
    /// The projections that have stopped.
    pub stopped_projections: Probe<BTreeSet<String>>,
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
        let before = signals.not_ready_because();
        change(signals);
        let after = signals.not_ready_because();
        if after != before {
            if after.is_empty() {
                tracing::info!("ready: serving again");
            } else {
                tracing::warn!(reasons = %after.join(", "), "not ready");
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
        metrics::gauge!("kefu_ready").set(ready);
        for projection in self.projections.iter() {
            let stopped = if signals.stopped_projections.contains(projection) { 1.0 } else { 0.0 };
            metrics::gauge!("kefu_projection_stopped", "projection" => projection.clone())
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
                if let Ok(stopped) = stopped {
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

    #[test]
    fn every_failing_signal_takes_readiness_and_only_a_dead_writer_liveness() {
        let services: Vec<String> =
            ["kefu.v1.ComplaintService", REPORTING].iter().map(|s| (*s).to_owned()).collect();
        let projections = vec!["customers".to_owned(), "complaints".to_owned()];
        let all_up = Signals::default().statuses(&services, &projections);
        assert!(all_up.iter().all(|(_, status)| *status == ServingStatus::Serving));
        assert_eq!(all_up.len(), 1 + 2 + 1 + 2, "\"\", services, liveness, projections");

        type Failure = (&'static str, fn(&mut Signals));
        let failures: [Failure; 4] = [
            ("draining", |s| s.draining = true),
            ("database", |s| s.database_reachable = false),
            ("writer", |s| s.writer_alive = false),
            ("projection", |s| {
                s.stopped_projections.insert("complaints".into());
            }),
        ];
        for (what, fail) in failures {
            let mut signals = Signals::default();
            fail(&mut signals);
            let statuses = signals.statuses(&services, &projections);
            for name in ["", "kefu.v1.ComplaintService", REPORTING] {
                assert_eq!(status_of(&statuses, name), ServingStatus::NotServing, "{what}: {name}");
            }
            let live =
                if what == "writer" { ServingStatus::NotServing } else { ServingStatus::Serving };
            assert_eq!(status_of(&statuses, LIVENESS), live, "{what}: liveness");
            assert_eq!(signals.not_ready_because().len(), 1, "{what}");
        }
        let mut stopped = Signals::default();
        stopped.stopped_projections.insert("complaints".into());
        let statuses = stopped.statuses(&services, &projections);
        assert_eq!(status_of(&statuses, "kefu.projection.complaints"), ServingStatus::NotServing);
        assert_eq!(status_of(&statuses, "kefu.projection.customers"), ServingStatus::Serving);

        let replica_down = Signals { replica_reachable: Some(false), ..Signals::default() };
        let statuses = replica_down.statuses(&services, &projections);
        assert_eq!(status_of(&statuses, REPORTING), ServingStatus::NotServing);
        assert_eq!(status_of(&statuses, ""), ServingStatus::Serving, "commands go on");
    }
}
