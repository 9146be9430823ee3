//! R-T5: SLA items, breached and at risk, as `ListSlaBreaches` lists them and as
//! `WatchSla` pushes them while time passes.
//!
//! A watch looks at the clock (the injected one) and the stored deadlines every
//! `sla_watch_interval`, and pushes each item whose state changed since it last
//! looked: an item becomes at risk, then breached, by time alone, with no write to
//! wake anyone. Each item carries `changed_at` (when it reached its state, from its
//! deadline, not from when the watch noticed), so a client that reconnects passes the
//! last `changed_at` it saw and gets only what changed after it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use kefu_projection::queries::{SlaBreach, SlaKind};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::Ctx;
use crate::access::Access;
use crate::convert as cv;
use crate::error::ApiError;
use crate::pb;

/// Messages a slow watcher may fall behind by before the watch waits for it.
const WATCH_BUFFER: usize = 64;

fn rule_out(kind: SlaKind) -> pb::SlaRule {
    match kind {
        SlaKind::FirstResponse => pb::SlaRule::FirstResponse,
        SlaKind::ResolutionOverdue => pb::SlaRule::ResolutionOverdue,
        SlaKind::CallbackOverdue => pb::SlaRule::CallbackOverdue,
        SlaKind::NewCustomerNotContacted => pb::SlaRule::NewCustomerNotContacted,
        // A request's first response is R-P7's rule and its callback R-P15's; `subject`
        // tells them from a case's.
        SlaKind::RequestFirstResponse => pb::SlaRule::FirstResponse,
        SlaKind::RequestCallbackOverdue => pb::SlaRule::CallbackOverdue,
    }
}

fn subject_out(kind: SlaKind) -> i32 {
    let subject = match kind {
        SlaKind::FirstResponse | SlaKind::ResolutionOverdue | SlaKind::CallbackOverdue => {
            pb::SlaSubject::Complaint
        }
        SlaKind::NewCustomerNotContacted => pb::SlaSubject::Customer,
        SlaKind::RequestFirstResponse | SlaKind::RequestCallbackOverdue => {
            pb::SlaSubject::ServiceRequest
        }
    };
    subject as i32
}

/// A breach as listed; its warning point is not part of the breach listing.
fn breached_out(breach: SlaBreach) -> pb::SlaBreach {
    pb::SlaBreach {
        rule: rule_out(breach.kind) as i32,
        subject_id: breach.subject_id,
        case_number: breach.case_number.unwrap_or_default(),
        owner: breach.owner.unwrap_or_default(),
        due_at: Some(cv::timestamp(breach.due_at)),
        overdue_seconds: breach.overdue_seconds,
        state: pb::SlaState::Breached as i32,
        at_risk_from: None,
        changed_at: Some(cv::timestamp(breach.due_at)),
        subject: subject_out(breach.kind),
    }
}

impl Ctx {
    /// The items of `ListSlaBreaches` as of `now` that `viewer` may see: every breach,
    /// then (with `include_at_risk`) every item at risk, each with its state and the
    /// log position its case or customer last changed at.
    pub(crate) async fn sla_items(
        &self,
        now: DateTime<Utc>,
        include_at_risk: bool,
        viewer: &Access,
    ) -> Result<Vec<(pb::SlaBreach, u64)>, ApiError> {
        let policy = self.policy();
        let breaches = self.reports.sla_breaches(now, &policy).await?;
        let breaches = breaches.into_iter().filter(|item| viewer.sees(&item.access));
        let mut items: Vec<(pb::SlaBreach, u64)> = breaches
            .map(|item| {
                let position = item.access.last_position;
                (breached_out(item), position)
            })
            .collect();
        if include_at_risk {
            let at_risk = self.reports.sla_at_risk(now, &policy).await?;
            let at_risk = at_risk.into_iter().filter(|item| viewer.sees(&item.access));
            items.extend(at_risk.map(|item| {
                (
                    pb::SlaBreach {
                        rule: rule_out(item.kind) as i32,
                        subject_id: item.subject_id,
                        case_number: item.case_number.unwrap_or_default(),
                        owner: item.owner.unwrap_or_default(),
                        due_at: Some(cv::timestamp(item.due_at)),
                        overdue_seconds: -(item.due_at - now).num_seconds(),
                        state: pb::SlaState::AtRisk as i32,
                        at_risk_from: Some(cv::timestamp(item.at_risk_from)),
                        changed_at: Some(cv::timestamp(item.at_risk_from)),
                        subject: subject_out(item.kind),
                    },
                    item.access.last_position,
                )
            }));
        }
        Ok(items)
    }
}

/// The key of an item: its rule and subject (one deadline per rule and subject).
fn key(item: &pb::SlaBreach) -> (i32, String) {
    (item.rule, item.subject_id.clone())
}

fn changed_at(item: &pb::SlaBreach) -> (i64, i32) {
    item.changed_at.as_ref().map_or((0, 0), |at| (at.seconds, at.nanos))
}

/// Where a reconnecting watch left off: the `observed_at` and `observed_position` of
/// the last message it received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resume {
    pub after: DateTime<Utc>,
    pub position: u64,
}

impl Resume {
    /// Whether the earlier watch surely sent `item` already: it reached its state
    /// before that watch's last look (ties are sent again), and its case or customer
    /// has not been written since (else it may have been entered late, or reopened).
    fn sent(&self, item: &pb::SlaBreach, last_position: u64) -> bool {
        let (seconds, nanos) = changed_at(item);
        let after = (self.after.timestamp(), i64::from(self.after.timestamp_subsec_nanos()));
        (seconds, i64::from(nanos)) < after && last_position <= self.position
    }
}

/// `WatchSla`: the items of the moment (less those a resumed watch surely had), a
/// `caught_up` message, then every change of state as the clock moves. Ends when the
/// client hangs up, on an error (sent first), or when the server drains (the call layer
/// ends it).
pub(crate) fn watch(
    ctx: Ctx,
    resume: Option<Resume>,
    viewer: Access,
) -> ReceiverStream<Result<pb::WatchSlaResponse, Status>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(WATCH_BUFFER);
    tokio::spawn(async move {
        let mut sent: HashMap<(i32, String), i32> = HashMap::new();
        let mut caught_up = false;
        // (A zero period would panic: the configuration refuses one, and so does this.)
        let period = ctx.sla_watch_interval.max(std::time::Duration::from_millis(1));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = sender.closed() => return,
            }
            let now = ctx.commands.now();
            // Read before the items: the reads include at least this position.
            let observed_position = ctx.reports.applied_lower_bound();
            let mut items = match ctx.sla_items(now, true, &viewer).await {
                Ok(items) => items,
                Err(error) => {
                    let _ = sender.send(Err(Status::from(error))).await;
                    return;
                }
            };
            items.sort_by_key(|(item, _)| changed_at(item));
            let present: HashSet<(i32, String)> = items.iter().map(|(item, _)| key(item)).collect();
            let observed_at = Some(cv::timestamp(now));
            for (item, last_position) in items {
                let key = key(&item);
                if sent.get(&key) == Some(&item.state) {
                    continue;
                }
                sent.insert(key, item.state);
                if !caught_up && resume.is_some_and(|resume| resume.sent(&item, last_position)) {
                    continue;
                }
                let message = pb::WatchSlaResponse {
                    item: Some(item),
                    caught_up: false,
                    observed_at,
                    observed_position,
                };
                if sender.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            // Met or gone: forgotten, so a reopened case's new deadline is news again.
            sent.retain(|key, _| present.contains(key));
            if !caught_up {
                caught_up = true;
                let message = pb::WatchSlaResponse {
                    item: None,
                    caught_up: true,
                    observed_at,
                    observed_position,
                };
                if sender.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        }
    });
    ReceiverStream::new(receiver)
}
