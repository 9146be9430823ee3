//! `baseline`: one event per transaction through plain sqlx, no kefu code — the limit
//! kefu's own appends are measured against.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Postgres, Sqlite};
use uuid::Uuid;

use crate::seed::sample_payload;
use crate::stats::{per_second, Latencies};
use crate::{Common, Target};

const SQLITE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS bench_events (position INTEGER PRIMARY KEY, \
    stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL, event_id TEXT NOT NULL UNIQUE, \
    event_type TEXT NOT NULL, payload TEXT NOT NULL, recorded_at TEXT NOT NULL, \
    UNIQUE (stream_id, stream_version))";
const PG_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_events (position BIGSERIAL PRIMARY KEY, \
    stream_id TEXT NOT NULL, stream_version BIGINT NOT NULL, event_id UUID NOT NULL UNIQUE, \
    event_type TEXT NOT NULL, payload JSON NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, \
    UNIQUE (stream_id, stream_version))";

enum Db {
    Sqlite(Pool<Sqlite>),
    Postgres(Pool<Postgres>),
}

pub async fn run(target: &Target, common: &Common) -> anyhow::Result<serde_json::Value> {
    let concurrency = common.concurrency.max(1);
    let db = if target.backend() == "sqlite" {
        let options: SqliteConnectOptions = target.url.parse()?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(u32::try_from(concurrency)?)
            .connect_with(options)
            .await?;
        sqlx::query(SQLITE_TABLE).execute(&pool).await?;
        Db::Sqlite(pool)
    } else {
        let pool = PgPoolOptions::new()
            .max_connections(u32::try_from(concurrency)?)
            .connect(&target.url)
            .await?;
        sqlx::query(PG_TABLE).execute(&pool).await?;
        Db::Postgres(pool)
    };
    let db = std::sync::Arc::new(db);
    let payload = sample_payload().to_string();
    let deadline = Instant::now() + common.duration();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let (db, payload) = (db.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let stream_id = format!("complaint-{}", Uuid::now_v7());
            let mut version = 0i64;
            while Instant::now() < deadline {
                version += 1;
                let began = Instant::now();
                insert(&db, &stream_id, version, &payload).await?;
                latencies.record(began.elapsed());
            }
            let _ = client;
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Latencies::default();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let events = u64::try_from(latencies.len())?;
    Ok(json!({
        "mode": "baseline",
        "backend": target.backend(),
        "concurrency": concurrency,
        "duration_s": elapsed.as_secs_f64(),
        "events": events,
        "events_per_s": per_second(events, elapsed),
        "commands_per_s": per_second(events, elapsed),
        "p50_ms": latencies.percentile_ms(50),
        "p99_ms": latencies.percentile_ms(99),
        "payload_bytes": payload.len(),
    }))
}

async fn insert(db: &Db, stream_id: &str, version: i64, payload: &str) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            sqlx::query(
                "INSERT INTO bench_events (stream_id, stream_version, event_id, event_type, payload, recorded_at) \
                 VALUES (?, ?, ?, 'ComplaintFiled', ?, ?)",
            )
            .bind(stream_id)
            .bind(version)
            .bind(Uuid::now_v7().to_string())
            .bind(payload)
            .bind(now.to_rfc3339())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO bench_events (stream_id, stream_version, event_id, event_type, payload, recorded_at) \
                 VALUES ($1, $2, $3, 'ComplaintFiled', $4::json, $5)",
            )
            .bind(stream_id)
            .bind(version)
            .bind(Uuid::now_v7())
            .bind(payload)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
    }
    Ok(())
}
