//! `kefu-bench`: measures kefu against the raw-SQL limit; every mode prints one JSON line last.

mod baseline;
mod rebuild;
mod seed;
mod stats;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

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
    /// Seed N events of complaint lifecycles, then rebuild every projection from zero.
    Rebuild {
        #[command(flatten)]
        common: Common,
        /// Events to seed before rebuilding.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
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
}

impl Common {
    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration.max(0.1))
    }
}

/// A database URL, and the temp dir that holds it when we made one.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    fn new(url: Option<&str>) -> anyhow::Result<Self> {
        match url {
            Some(url) => Ok(Target { url: url.to_owned(), _dir: None }),
            None => {
                let dir =
                    tempfile::Builder::new().prefix("kefu-bench-").tempdir().context("temp dir")?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(Target { url, _dir: Some(dir) })
            }
        }
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
    let result = match Cli::parse().mode {
        Mode::Baseline(common) => {
            let target = Target::new(common.database_url.as_deref())?;
            baseline::run(&target, &common).await?
        }
        Mode::Rebuild { common, events } => {
            let target = Target::new(common.database_url.as_deref())?;
            rebuild::run(&target, events).await?
        }
    };
    println!("{result}");
    Ok(())
}
