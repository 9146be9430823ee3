//! Queries over the read models, with read-your-writes: every query can first wait until
//! the projections have reached a position the caller has seen.

mod lookup;
mod metrics;
mod operations;
mod records;

use std::time::Duration;

pub use lookup::{Duplicate, Found, Lookup, MAX_DUPLICATES};
pub use metrics::{
    is_month, CallbackCoverage, Count, GroupBy, MonthlySummary, ReferralRow, SatisfactionFilter,
    SatisfactionRow,
};
pub use operations::{
    Dashboard, DueCallback, DueKind, HandlerLoad, SlaBreach, SlaBreachCounts, SlaKind,
};
pub use records::{ComplaintFilter, CustomerFilter};

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
}

impl ReadModels {
    pub fn new(runner: Runner) -> Self {
        ReadModels { runner }
    }

    pub(crate) fn db(&self) -> &Db {
        self.runner.db()
    }

    /// Waits until every projection has applied `min_position`, at most `timeout`.
    /// Fails with [`ProjectionError::NotCaughtUp`] when the deadline passes first.
    ///
    /// The checkpoints are read once, then again only every 25 ms (runners on other
    /// nodes do not signal us); in between, each batch this process commits announces
    /// the position every projection has reached, which costs waiters no query.
    pub async fn wait_for(
        &self,
        min_position: u64,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        if min_position == 0 {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut progress = self.runner.progress();
        progress.borrow_and_update();
        let mut reached = self.runner.low_water_mark().await?;
        while reached < min_position {
            if tokio::time::Instant::now() >= deadline {
                return Err(ProjectionError::NotCaughtUp { wanted: min_position, reached });
            }
            let next_check =
                (tokio::time::Instant::now() + Duration::from_millis(25)).min(deadline);
            tokio::select! {
                changed = progress.changed() => {
                    if changed.is_ok() {
                        reached = reached.max(*progress.borrow_and_update());
                    }
                }
                () = tokio::time::sleep_until(next_check) => {
                    reached = self.runner.low_water_mark().await?;
                }
            }
        }
        Ok(())
    }
}
