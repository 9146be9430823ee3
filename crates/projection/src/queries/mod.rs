//! Queries over the read models, with read-your-writes: every query can first wait until
//! the projections have reached a position the caller has seen.

mod lookup;
mod metrics;
mod operations;
mod quality;
mod records;
mod requests;
mod row_access;
mod sla;

use std::time::Duration;

pub use lookup::{Duplicate, Found, Lookup, MAX_DUPLICATES};
pub use metrics::{
    is_month, CallbackCoverage, Count, GroupBy, MonthlySummary, ReferralRow, SatisfactionFilter,
    SatisfactionRow,
};
pub use operations::{
    Dashboard, DueCallback, DueKind, HandlerLoad, SlaBreach, SlaBreachCounts, SlaKind,
};
pub use quality::{QualityDimension, QualityFilter, QualityRow};
pub use records::{ComplaintFilter, CustomerFilter, Holding, OpenWork};
pub use requests::RequestFilter;
pub use row_access::RowAccess;
pub use sla::AtRisk;

use crate::error::ProjectionError;
use crate::runner::Runner;
use crate::sql::Db;

/// The longest page any list query returns.
pub const MAX_PAGE_SIZE: u32 = 500;
/// The page size when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// A keyset page: rows after `after` (an opaque token from the previous page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub after: Option<String>,
    /// 0 means the default; above [`MAX_PAGE_SIZE`] is refused.
    pub size: u32,
}

impl Page {
    pub(crate) fn limit(&self) -> Result<i64, ProjectionError> {
        match self.size {
            0 => Ok(i64::from(DEFAULT_PAGE_SIZE)),
            size if size <= MAX_PAGE_SIZE => Ok(i64::from(size)),
            size => Err(ProjectionError::InvalidArgument {
                field: "page_size",
                reason: format!("{size} is above the maximum of {MAX_PAGE_SIZE}"),
            }),
        }
    }
}

/// A page of rows and the token for the next one (`None` at the end).
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    pub rows: Vec<T>,
    pub next: Option<String>,
}

/// Read access to every read model.
#[derive(Debug, Clone)]
pub struct ReadModels {
    runner: Runner,
    /// A hot standby of the database that answers instead of it (see
    /// [`ReadModels::on_replica`]).
    replica: Option<Db>,
}

/// How often a wait for `min_position` reads checkpoints no local runner announces.
const CHECKPOINT_POLL: Duration = Duration::from_millis(25);

impl ReadModels {
    pub fn new(runner: Runner) -> Self {
        ReadModels { runner, replica: None }
    }

    /// These read models answered by a read replica of the database (a PostgreSQL hot
    /// standby, for BI): queries go to `replica`, and a wait for `min_position` reads
    /// the replica's own projection checkpoints. A standby replays each projection
    /// batch with its checkpoint in one transaction, so a position its checkpoints
    /// show is a position its tables include: read-your-writes holds there too.
    pub fn on_replica(&self, replica: Db) -> Self {
        ReadModels { runner: self.runner.clone(), replica: Some(replica) }
    }

    /// The position this process's projections have applied (see [`Runner::applied`]).
    pub fn applied(&self) -> u64 {
        self.runner.applied()
    }

    /// A position these read models surely include: what this process applied, or 0
    /// on a replica (which may lag behind it).
    pub fn applied_lower_bound(&self) -> u64 {
        if self.replica.is_some() {
            0
        } else {
            self.runner.applied()
        }
    }

    /// Whether these read models are answered by a replica.
    pub fn is_replica(&self) -> bool {
        self.replica.is_some()
    }

    pub(crate) fn db(&self) -> &Db {
        self.replica.as_ref().unwrap_or_else(|| self.runner.db())
    }

    /// Whether the database these read models are answered by responds.
    pub async fn reachable(&self) -> bool {
        self.db().fetch_all("SELECT 1 AS one", &[]).await.is_ok()
    }

    /// Waits until every projection has applied `min_position`, at most `timeout`.
    /// Fails with [`ProjectionError::NotCaughtUp`] when the deadline passes first, and at
    /// once with [`ProjectionError::Stopped`] when a projection stopped below it (it will
    /// not get there before it is fixed or rebuilt).
    ///
    /// The checkpoints are read once, then again only every 25 ms (runners on other
    /// nodes do not signal us); in between, each batch this process commits announces
    /// the position every projection has reached, which costs waiters no query.
    pub async fn wait_for(
        &self,
        min_position: u64,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        self.wait_for_in(min_position, timeout, None).await
    }

    /// [`ReadModels::wait_for`] of only the projections named (all when `None`): a read
    /// of one read model neither waits for nor fails on another that stopped.
    pub async fn wait_for_in(
        &self,
        min_position: u64,
        timeout: Duration,
        projections: Option<&[&str]>,
    ) -> Result<(), ProjectionError> {
        if min_position == 0 {
            return Ok(());
        }
        if self.replica.is_some() {
            return self.wait_on_replica(min_position, timeout, projections).await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut progress = self.runner.progress();
        progress.borrow_and_update();
        let mut reached = self.reached(min_position, projections).await?;
        while reached < min_position {
            if tokio::time::Instant::now() >= deadline {
                return Err(ProjectionError::NotCaughtUp { wanted: min_position, reached });
            }
            let next_check = (tokio::time::Instant::now() + CHECKPOINT_POLL).min(deadline);
            tokio::select! {
                changed = progress.changed() => {
                    if changed.is_ok() {
                        reached = reached.max(*progress.borrow_and_update());
                    }
                }
                () = tokio::time::sleep_until(next_check) => {
                    reached = self.reached(min_position, projections).await?;
                }
            }
        }
        Ok(())
    }

    /// The low-water mark in the database these read models answer from (the primary
    /// or the replica), or the stop that keeps it from reaching `min_position`.
    async fn reached(
        &self,
        min_position: u64,
        projections: Option<&[&str]>,
    ) -> Result<u64, ProjectionError> {
        let reach = self.runner.reach_in(self.db(), projections).await?;
        if reach.low_water_mark < min_position {
            if let Some(stopped) = reach.blocking(min_position) {
                return Err(stopped);
            }
        }
        Ok(reach.low_water_mark)
    }

    /// [`ReadModels::wait_for_in`] on a replica: nothing announces its replay, so its
    /// checkpoints are read every [`CHECKPOINT_POLL`] until they reach `min_position`;
    /// a stop it has replayed fails the wait at once, as on the primary.
    async fn wait_on_replica(
        &self,
        min_position: u64,
        timeout: Duration,
        projections: Option<&[&str]>,
    ) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let reached = self.reached(min_position, projections).await?;
            if reached >= min_position {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProjectionError::NotCaughtUp { wanted: min_position, reached });
            }
            tokio::time::sleep_until((tokio::time::Instant::now() + CHECKPOINT_POLL).min(deadline))
                .await;
        }
    }
}
