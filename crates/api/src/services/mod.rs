//! The gRPC services, one file each, sharing one context.

pub mod archive;
pub mod audit;
pub mod callback;
mod case_write;
pub mod complaint;
pub mod customer;
mod escalation;
pub mod events;
pub mod filing;
mod handover;
pub mod lookup;
mod materials;
pub mod merge;
mod open_work;
pub mod reporting;
pub mod request;
mod request_handover;
pub mod staff;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use kefu_domain::staff::{Staff, StaffMember};
use kefu_domain::{Policy, StaffId};
use kefu_event_store::Condition;
use kefu_projection::ReadModels;

use crate::commands::{stream, Commands};
use crate::error::ApiError;

/// What every service needs.
#[derive(Clone)]
pub struct Ctx {
    pub commands: Commands,
    pub models: ReadModels,
    /// The read models reports are answered from: `models`, or the same on a read
    /// replica (BI load kept off the primary).
    pub reports: ReadModels,
    /// Every recorded policy version (R-T3); reports use the one in force.
    pub policies: Arc<crate::policies::Policies>,
    /// The head of this year's case register as this process last wrote it: filings
    /// take numbers one at a time under this lock, but wait for their commit outside
    /// it; across nodes the register's expected version keeps numbers unique.
    pub register: Arc<tokio::sync::Mutex<Option<RegisterHead>>>,
    /// Customers seen live, for filings (see [`filing`]).
    pub live_customers: Arc<filing::LiveCustomers>,
    /// How long a read waits for `min_position` before giving up.
    pub read_wait: Duration,
    /// How often a `WatchSla` stream looks at the clock and the deadlines.
    pub sla_watch_interval: Duration,
    /// How contacts are normalised and de-duplicated.
    pub contacts: ContactPolicy,
    /// Who holds which clearance, for assignments (R-C6: a case goes only to someone
    /// cleared for its customer).
    pub tokens: crate::auth::Tokens,
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
    /// The policy in force (the latest recorded version).
    pub fn policy(&self) -> Arc<Policy> {
        self.policies.current().policy
    }

    /// Waits until the read models include `min_position` (0: no wait).
    pub async fn caught_up(&self, min_position: u64) -> Result<(), ApiError> {
        self.within_head(min_position).await?;
        Ok(self.models.wait_for(min_position, self.read_wait).await?)
    }

    /// Waits until the read model of one projection includes `min_position` (0: no
    /// wait); another projection that stopped neither delays nor fails it.
    pub async fn caught_up_in(&self, min_position: u64, projection: &str) -> Result<(), ApiError> {
        self.within_head(min_position).await?;
        let only = [projection];
        Ok(self.models.wait_for_in(min_position, self.read_wait, Some(&only)).await?)
    }

    /// A read's `min_position` is a position the caller was given by an acknowledged
    /// write, so it is at most the log's head (the primary's: a replica only lags). One
    /// beyond is refused at once, not waited for: waiting would hold a call slot for
    /// the whole read wait, and a flood of such reads would starve everyone else.
    pub async fn within_head(&self, min_position: u64) -> Result<(), ApiError> {
        // Applied here means written to the log: no need to read its head.
        if min_position <= self.models.applied() {
            return Ok(());
        }
        let head = self.commands.store().head_position().await?;
        if min_position > head {
            return Err(ApiError::field(
                "min_position",
                format!("is beyond the log's head ({head}): use a position a write answered"),
            ));
        }
        Ok(())
    }

    /// A complaint named by its id or its case number (`YYYY-NNNNNN`).
    pub async fn resolve_complaint(&self, key: &str) -> Result<kefu_domain::ComplaintId, ApiError> {
        crate::casefile::resolve(&self.commands, key).await
    }

    /// R-C6: the current confidentiality of a customer, from their stream (personal
    /// fields left sealed): a merged duplicate's is its survivor's. An unknown customer
    /// reads as `secret`: unknown is not shown.
    pub async fn customer_level(
        &self,
        customer_id: kefu_domain::CustomerId,
    ) -> Result<kefu_domain::Confidentiality, ApiError> {
        let (record, _, _) = self
            .commands
            .load_unopened::<kefu_domain::Customer>(&stream(customer_id.stream_name())?)
            .await?;
        match record {
            Some(record) => self.governing_level(&record).await,
            None => Ok(kefu_domain::Confidentiality::Secret),
        }
    }

    /// R-C6: the level that governs a customer's record now: its own, or once merged
    /// its survivor's (merging classifies the duplicate's data at the survivor's level).
    pub async fn governing_level(
        &self,
        record: &kefu_domain::customer::CustomerRecord,
    ) -> Result<kefu_domain::Confidentiality, ApiError> {
        Ok(self
            .survivor_of(record)
            .await?
            .map_or(record.confidentiality, |survivor| survivor.confidentiality))
    }

    /// The customer of a complaint as the access table checks it (`None`: no such
    /// complaint). A complaint's customer never changes: its first event names them.
    pub async fn case_customer(
        &self,
        complaint_id: kefu_domain::ComplaintId,
    ) -> Result<Option<crate::access::CaseCustomer>, ApiError> {
        let case_stream = stream(complaint_id.stream_name())?;
        let first = self
            .commands
            .store()
            .read_stream(&case_stream, 1, kefu_event_store::Direction::Forward, 1)
            .await?;
        let Some(filed) = first.first() else { return Ok(None) };
        let customer_id: Option<kefu_domain::CustomerId> =
            filed.payload.get("customer_id").and_then(|id| id.as_str()?.parse().ok());
        let Some(customer_id) = customer_id else {
            return Err(ApiError::Internal(format!("{case_stream} names no customer")));
        };
        Ok(Some(self.customer_standing(customer_id).await?))
    }

    /// A customer's level and agent, for the access table (R-C6, R-C3); one the log does
    /// not have reads as `secret` with no agent.
    pub async fn customer_standing(
        &self,
        customer_id: kefu_domain::CustomerId,
    ) -> Result<crate::access::CaseCustomer, ApiError> {
        let customer = stream(customer_id.stream_name())?;
        let (record, version, _) =
            self.commands.load_unopened::<kefu_domain::Customer>(&customer).await?;
        let mut held = vec![Condition::StreamAt { stream_id: customer, version }];
        Ok(match record {
            Some(record) => {
                let forgotten = record.forgotten_at.is_some();
                // A merged duplicate's cases are its survivor's: its level and agent,
                // held like the duplicate's own.
                let record = match self.survivor_of(&record).await? {
                    Some(survivor) => {
                        // Read again with its version: the level and the hold agree.
                        let survivor_stream = stream(survivor.id.stream_name())?;
                        let (fresh, version, _) = self
                            .commands
                            .load_unopened::<kefu_domain::Customer>(&survivor_stream)
                            .await?;
                        held.push(Condition::StreamAt { stream_id: survivor_stream, version });
                        fresh.unwrap_or(survivor)
                    }
                    None => record,
                };
                crate::access::CaseCustomer {
                    level: record.confidentiality,
                    agent: Some(record.agent),
                    held,
                    forgotten: forgotten || record.forgotten_at.is_some(),
                }
            }
            None => crate::access::CaseCustomer {
                level: kefu_domain::Confidentiality::Secret,
                agent: None,
                held,
                forgotten: false,
            },
        })
    }

    /// A staff member who can take work now (registered, not departed), and the
    /// condition that keeps it so until an assignment commits: their stream is still
    /// at the version read (a staff stream changes only when its person leaves).
    pub async fn active_staff(
        &self,
        staff_id: &StaffId,
    ) -> Result<(StaffMember, Condition), ApiError> {
        let staff_stream = stream(staff_id.stream_name())?;
        let (member, version, _) = self.commands.load::<Staff>(&staff_stream).await?;
        match member {
            None => Err(kefu_domain::DomainError::StaffNotRegistered.into()),
            Some(member) if !member.is_active() => {
                Err(kefu_domain::DomainError::StaffDeparted.into())
            }
            Some(member) => Ok((member, Condition::StreamAt { stream_id: staff_stream, version })),
        }
    }

    /// Runs an assignment to `assignee` on condition they are still active when it
    /// commits: one who left meanwhile gets nothing (`STAFF_DEPARTED`, R-C3), except
    /// the retry of an assignment stored before they left, which gets its first answer.
    pub async fn assign<A>(
        &self,
        target: &kefu_event_store::StreamId,
        request: &crate::commands::Request<'_>,
        assignee: &StaffId,
        command: impl Fn(&A::State) -> Result<A::Command, ApiError>,
    ) -> Result<crate::commands::Written, ApiError>
    where
        A: kefu_domain::Aggregate,
        A::Event: kefu_domain::DomainEvent,
        A::State: Send + Sync + 'static,
    {
        self.assign_if::<A>(target, request, assignee, Vec::new(), command).await
    }

    /// [`Ctx::assign`], also conditioned on `also` (what else the command read).
    pub async fn assign_if<A>(
        &self,
        target: &kefu_event_store::StreamId,
        request: &crate::commands::Request<'_>,
        assignee: &StaffId,
        also: Vec<Condition>,
        command: impl Fn(&A::State) -> Result<A::Command, ApiError>,
    ) -> Result<crate::commands::Written, ApiError>
    where
        A: kefu_domain::Aggregate,
        A::Event: kefu_domain::DomainEvent,
        A::State: Send + Sync + 'static,
    {
        let active = match self.active_staff(assignee).await {
            Ok((_, active)) => active,
            // A retry of an assignment made before they left gets its first answer.
            Err(refused) => {
                return match self.commands.repeated(target, request).await? {
                    Some(written) => Ok(written),
                    None => Err(refused),
                }
            }
        };
        let conditions = std::iter::once(active).chain(also).collect();
        let outcome = self.commands.execute_if::<A>(target, request, conditions, &command).await;
        match outcome {
            // The assignee's stream moved: they left between the check and the commit.
            Err(ApiError::Contended { stream: changed })
                if changed == stream(assignee.stream_name())?.as_str() =>
            {
                self.active_staff(assignee).await?;
                Err(ApiError::Contended { stream: changed })
            }
            other => other,
        }
    }
}
