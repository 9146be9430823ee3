//! `rebuild`: seeds N events, then rebuilds every projection from zero (events/s).

use std::time::Instant;

use kefu_event_store::{EventStore, StoreOptions};
use kefu_projection::{all_projections, Runner};
use serde_json::json;

use crate::seed::seed;
use crate::server::{reset_rss_peak, rss_mib};
use crate::stats::per_second;
use crate::Target;

pub async fn run(
    target: &Target,
    events: u64,
    reuse: bool,
    whole_only: bool,
    batch_size: Option<usize>,
) -> anyhow::Result<serde_json::Value> {
    let store = EventStore::open(&target.url, StoreOptions::default()).await?;
    let seeded_started = Instant::now();
    let seeded = seeded(&store, target, events, reuse).await?;
    let seed_elapsed = seeded_started.elapsed();
    let (seed_rss_peak, _) = rss_mib();
    let head = store.head_position().await?;

    // How fast the log itself can be scanned: the ceiling for any rebuild.
    let scan_started = Instant::now();
    let mut from = 1;
    while from <= head {
        let to = head.min(from + 4_999);
        store.read_range(from, to, &[]).await?;
        from = to + 1;
    }
    let scan_elapsed = scan_started.elapsed();

    let mut runner = Runner::new(store.clone(), all_projections());
    if let Some(batch_size) = batch_size {
        runner = runner.with_rebuild_batch_size(batch_size);
    }
    runner.prepare().await?;
    let mut per_projection = serde_json::Map::new();
    for name in runner.names().into_iter().filter(|_| !whole_only) {
        let began = Instant::now();
        runner.rebuild(name, |_, _| {}).await?;
        per_projection.insert(name.to_owned(), json!(per_second(head, began.elapsed())));
    }
    // The figure that counts: everything rebuilt in one pass over the log, with its own
    // memory peak (bounded memory is the other half of the promise).
    reset_rss_peak();
    let started = Instant::now();
    runner.rebuild_all(|_, _| {}).await?;
    let elapsed = started.elapsed();
    let (rebuild_rss_peak, rss_end) = rss_mib();
    Ok(json!({
        "mode": "rebuild",
        "backend": target.backend(),
        "concurrency": 1,
        "events": head,
        "seeded_events": seeded,
        "seed_events_per_s": per_second(seeded, seed_elapsed),
        "scan_events_per_s": per_second(head, scan_elapsed),
        "duration_s": elapsed.as_secs_f64(),
        // Log events per second to rebuild every projection together.
        "events_per_s": per_second(head, elapsed),
        "batch_size": batch_size,
        "commands_per_s": 0.0,
        "p50_ms": 0.0,
        "p99_ms": 0.0,
        "per_projection_events_per_s": per_projection,
        "seed_rss_peak_mib": seed_rss_peak,
        "rss_peak_mib": rebuild_rss_peak,
        "rss_end_mib": rss_end,
    }))
}

/// Seeds `events` events and brings every projection up to date (for `query`); with
/// `reuse`, times the log an earlier run seeded there instead (seeding 10M takes a while).
pub async fn seed_and_project(target: &Target, events: u64, reuse: bool) -> anyhow::Result<u64> {
    let store = EventStore::open(&target.url, StoreOptions::default()).await?;
    let seeded = seeded(&store, target, events, reuse).await?;
    Runner::new(store, all_projections()).catch_up().await?;
    // The queries' own peak, not the seeding's.
    reset_rss_peak();
    Ok(seeded)
}

/// Seeds `events` events, or with `reuse` counts those an earlier run seeded there.
async fn seeded(
    store: &EventStore,
    target: &Target,
    events: u64,
    reuse: bool,
) -> anyhow::Result<u64> {
    if !reuse {
        return seed(store, events).await;
    }
    let head = store.head_position().await?;
    anyhow::ensure!(head > 0, "--reuse: {} holds no seeded log", target.url);
    Ok(head)
}
