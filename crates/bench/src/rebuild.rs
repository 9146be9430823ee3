//! `rebuild`: seeds N events, then rebuilds every projection from zero (events/s).

use std::time::Instant;

use kefu_event_store::{EventStore, StoreOptions};
use kefu_projection::{all_projections, Runner};
use serde_json::json;

use crate::seed::seed;
use crate::stats::per_second;
use crate::Target;

pub async fn run(target: &Target, events: u64) -> anyhow::Result<serde_json::Value> {
    let store = EventStore::open(&target.url, StoreOptions::default()).await?;
    let seeded_started = Instant::now();
    let seeded = seed(&store, events).await?;
    let seed_elapsed = seeded_started.elapsed();
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

    let runner = Runner::new(store.clone(), all_projections());
    runner.prepare().await?;
    let mut per_projection = serde_json::Map::new();
    for name in runner.names() {
        let began = Instant::now();
        runner.rebuild(name, |_, _| {}).await?;
        per_projection.insert(name.to_owned(), json!(per_second(head, began.elapsed())));
    }
    // The figure that counts: everything rebuilt in one pass over the log.
    let started = Instant::now();
    runner.rebuild_all(|_, _| {}).await?;
    let elapsed = started.elapsed();
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
        "commands_per_s": 0.0,
        "p50_ms": 0.0,
        "p99_ms": 0.0,
        "per_projection_events_per_s": per_projection,
    }))
}

/// Seeds `events` events and brings every projection up to date (for `query`).
pub async fn seed_and_project(target: &Target, events: u64) -> anyhow::Result<u64> {
    let store = EventStore::open(&target.url, StoreOptions::default()).await?;
    let seeded = seed(&store, events).await?;
    Runner::new(store, all_projections()).catch_up().await?;
    Ok(seeded)
}
