//! `kefu-bench`: measures kefu against the raw-SQL limit; every mode prints one JSON line last.

mod baseline;
mod find;
mod load;
mod rebuild;
mod requests;
mod seed;
mod server;
mod stats;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

/// mimalloc, not glibc's malloc: a rebuild allocates and frees millions of small
/// values across threads, and glibc spent a quarter of the CPU consolidating its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "kefu-bench", about = "Benchmarks for kefu; the last line of output is JSON")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Raw SQL appends, one event per transaction, into an events-shaped table: the limit.
    Baseline(Common),
    /// `FileComplaint` through gRPC clients against a real server (two events each).
    Append(Common),
    /// Handling commands on cases that already hold `--history` events.
    Lifecycle {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 100)]
        history: u64,
    },
    /// Seed N events of complaint lifecycles, then rebuild every projection from zero.
    Rebuild {
        #[command(flatten)]
        common: Common,
        /// Events to seed before rebuilding.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// The database (`--database-url`) already holds a seeded log: rebuild it again.
        #[arg(long)]
        reuse: bool,
        /// Time only the rebuild of every projection in one pass, not each one alone too
        /// (at 10M events each pass takes minutes).
        #[arg(long)]
        whole_only: bool,
        /// Events per rebuild batch (default: the runner's own).
        #[arg(long)]
        batch_size: Option<usize>,
    },
    /// Append→visible-in-read-model latency under a steady load of `--rate` filings/s.
    Lag {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1_000.0)]
        rate: f64,
    },
    /// `ReplayCase` of a case holding `--history` events.
    Replay {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1_000)]
        history: u64,
    },
    /// Every reporting RPC in a supervisor's mix over a log seeded with `--events` events.
    Query {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// The database (`--database-url`) already holds the log of an earlier `query` run:
        /// time the reports on it again without seeding.
        #[arg(long)]
        reuse: bool,
    },
    /// Service requests through their lifecycle from every client: received, answered,
    /// then resolved, or every fifth escalated to a complaint (issue 22).
    Requests(Common),
    /// `FindCustomers` by phone, name, pinyin and one character, over `--customers`
    /// seeded customers; each kind of lookup runs for `--duration`.
    Find {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1_000_000)]
        customers: u64,
        /// The database already holds the `--customers` of an earlier `find` run (seeding
        /// a million takes most of an hour on PostgreSQL): time the lookups on it again.
        #[arg(long)]
        reuse: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Common {
    /// `sqlite://FILE` or `postgres://…`; by default a fresh SQLite file in a temp dir.
    #[arg(long)]
    database_url: Option<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// How long to drive load, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Drive a kefu already running here (e.g. `http://127.0.0.1:50051`) instead of
    /// starting one in this process; needs `--token`, and its tokens file must give
    /// staff `a1` (who owns the customers the modes register) an agent token cleared
    /// for `internal` (R-C6).
    #[arg(long)]
    endpoint: Option<String>,
    /// An admin bearer token of `--endpoint`.
    #[arg(long, env = "KEFU_BENCH_TOKEN")]
    token: Option<String>,
}

impl Common {
    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration.max(0.1))
    }
}

/// A database URL, and a scratch dir (holding the SQLite file when we made one).
#[derive(Debug)]
pub struct Target {
    pub url: String,
    dir: tempfile::TempDir,
}

impl Target {
    fn new(url: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("kefu-bench-").tempdir().context("temp dir")?;
        let url = match url {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        Ok(Target { url, dir })
    }

    pub fn scratch_dir(&self) -> anyhow::Result<&std::path::Path> {
        Ok(self.dir.path())
    }

    pub fn backend(&self) -> &'static str {
        if self.url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mode = Cli::parse().mode;
    let common = match &mode {
        Mode::Baseline(common) | Mode::Append(common) | Mode::Requests(common) => common,
        Mode::Lifecycle { common, .. }
        | Mode::Rebuild { common, .. }
        | Mode::Lag { common, .. }
        | Mode::Replay { common, .. }
        | Mode::Query { common, .. }
        | Mode::Find { common, .. } => common,
    }
    .clone();
    let target = Target::new(common.database_url.as_deref())?;
    let backend = target.backend();
    let serve = || server::start(&target, common.endpoint.as_deref(), common.token.as_deref());
    let result = match mode {
        Mode::Baseline(_) => baseline::run(&target, &common).await?,
        Mode::Append(_) => load::append(&serve().await?, &common, backend).await?,
        Mode::Lifecycle { history, .. } => {
            load::lifecycle(&serve().await?, &common, backend, history).await?
        }
        Mode::Rebuild { events, reuse, whole_only, batch_size, .. } => {
            rebuild::run(&target, events, reuse, whole_only, batch_size).await?
        }
        Mode::Lag { rate, .. } => load::lag(&serve().await?, &common, backend, rate).await?,
        Mode::Requests(_) => requests::run(&serve().await?, &common, backend).await?,
        Mode::Replay { history, .. } => {
            load::replay(&serve().await?, &common, backend, history).await?
        }
        Mode::Query { events, reuse, .. } => {
            let seeded = rebuild::seed_and_project(&target, events, reuse).await?;
            load::query(&serve().await?, &common, backend, seeded).await?
        }
        Mode::Find { customers, reuse, .. } => {
            find::run(&target, &common, customers, reuse).await?
        }
    };
    println!("{result}");
    Ok(())
}
