//! The gRPC services, one file each, sharing one context.

pub mod audit;
pub mod callback;
pub mod complaint;
pub mod customer;
pub mod events;
pub mod filing;
pub mod lookup;
pub mod merge;
pub mod reporting;
pub mod staff;

use std::sync::Arc;
use std::time::Duration;

use kefu_domain::staff::{Staff, StaffMember};
use kefu_domain::{Policy, StaffId};
use kefu_projection::ReadModels;

use crate::commands::{stream, Commands};
use crate::error::ApiError;

/// What every service needs.
#[derive(Clone)]
pub struct Ctx {
    pub commands: Commands,
    pub models: ReadModels,
    pub policy: Arc<Policy>,
    /// The head of this year's case register as this process last wrote it: filings
    /// take numbers one at a time under this lock, but wait for their commit outside
    /// it; across nodes the register's expected version keeps numbers unique.
    pub register: Arc<tokio::sync::Mutex<Option<RegisterHead>>>,
    /// Customers seen live, for filings (see [`filing`]).
    pub live_customers: Arc<filing::LiveCustomers>,
    /// How long a read waits for `min_position` before giving up.
    pub read_wait: Duration,
    /// How contacts are normalised and de-duplicated.
    pub contacts: ContactPolicy,
}

/// How new contacts are read, and whether a duplicate one is refused (issue 20).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContactPolicy {
    /// The region of phone numbers written without a country code.
    pub phone_region: kefu_domain::PhoneRegion,
    /// Refuse a registration whose phone or email a customer the caller may see has.
    pub refuse_duplicates: bool,
}

/// The last case number issued and the register version holding it.
#[derive(Debug, Clone, Copy)]
pub struct RegisterHead {
    pub year: i32,
    pub last: Option<kefu_domain::CaseNumber>,
    pub version: u64,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}

impl Ctx {
    /// Waits until the read models include `min_position` (0: no wait).
    pub async fn caught_up(&self, min_position: u64) -> Result<(), ApiError> {
        Ok(self.models.wait_for(min_position, self.read_wait).await?)
    }

    /// A complaint named by its id or its case number (`YYYY-NNNNNN`).
    pub async fn resolve_complaint(&self, key: &str) -> Result<kefu_domain::ComplaintId, ApiError> {
        crate::casefile::resolve(&self.commands, key).await
    }

    /// A staff member who can take work now (registered, not departed).
    pub async fn active_staff(&self, staff_id: &StaffId) -> Result<StaffMember, ApiError> {
        let (member, _, _) = self.commands.load::<Staff>(&stream(staff_id.stream_name())?).await?;
        match member {
            None => Err(kefu_domain::DomainError::StaffNotRegistered.into()),
            Some(member) if !member.is_active() => {
                Err(kefu_domain::DomainError::StaffDeparted.into())
            }
            Some(member) => Ok(member),
        }
    }
}
