//! kefu's projections: the runner that turns the log into `rm_*` read-model tables,
//! exactly once, and the queries reports and BI read them with.
//!
//! Projections ([`Customers`], [`Complaints`], [`StaffDirectory`], [`CaseRecords`],
//! [`Requests`]) each
//! own their tables and a checkpoint; the [`Runner`] applies batches of events and the
//! new checkpoint in one transaction. [`ReadModels`] answers queries, optionally after waiting until the
//! projections reached a position the caller has seen (read-your-writes).

mod dump;
mod error;
mod event;
pub mod projections;
pub mod queries;
mod runner;
pub mod sql;

use std::sync::Arc;

pub use error::ProjectionError;
pub use event::Event;
pub use projections::case_records::CaseRecords;
pub use projections::complaints::{ComplaintRow, Complaints};
pub use projections::customers::{confidentiality_rank, CustomerRow, Customers};
pub use projections::requests::{RequestRow, Requests};
pub use projections::staff::StaffDirectory;
pub use queries::{Page, Paged, ReadModels};
pub use runner::{Projection, ProjectionStatus, Runner, Stopped};

/// Every projection kefu runs, with months in the default business zone and old phone
/// numbers read in the default region (tests, tools).
pub fn all_projections() -> Vec<Arc<dyn Projection>> {
    projections_in(kefu_domain::Policy::default().time_zone, kefu_domain::PhoneRegion::default())
}

/// Every projection kefu runs, with months counted in the business zone `zone` (R-T1);
/// phone numbers stored as typed, without a country code, are read in `region` (the
/// `customers` search index).
pub fn projections_in(
    zone: chrono_tz::Tz,
    region: kefu_domain::PhoneRegion,
) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(Customers { region }),
        Arc::new(Complaints { zone }),
        Arc::new(StaffDirectory),
        Arc::new(CaseRecords),
        Arc::new(Requests { zone }),
    ]
}
