//! `MergeCustomers` (issue 20): a duplicate merged into a survivor, as one append group
//! on both streams; and where a merged duplicate now lives, for reads of it.
//!
//! Merging an internal record into a secret one reclassifies the internal record's data
//! (it is read as the survivor from then on), and the other way round declassifies: so
//! R-C6's rule for classifying applies. The caller must be cleared for both records'
//! levels, and a record above the caller's clearance is answered exactly like one that
//! does not exist, so a refused merge tells nobody it is there.

use kefu_domain::customer::{Absorb, Customer, CustomerCommand, CustomerRecord, MergeInto};
use kefu_domain::{Aggregate, Confidentiality, CustomerId};
use kefu_event_store::{Condition, StoreError, StreamId};

use super::customer::Customers;
use crate::auth::{Principal, Role};
use crate::commands::{self, stream, Written};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;

/// How many merges deep a duplicate's survivor is followed (each merge adds at most one).
const MAX_CHAIN: usize = 32;
/// Times a merge is decided again after losing a race, without an expected version.
const RETRIES: usize = 8;

/// Who may merge: a supervisor (admin holds every role) cleared for both records' levels
/// (R-C6: only someone cleared for both levels may classify; nobody may change a record
/// they may not read). A record the caller is not cleared for is "not found".
fn may_merge(who: &Principal) -> Result<(), ApiError> {
    who.require_any(&[Role::Supervisor], "merge customers")
}

fn visible_to(who: &Principal, level: Confidentiality) -> bool {
    level <= who.clearance
}

/// A customer record and where its stream is.
struct Loaded {
    stream: StreamId,
    record: CustomerRecord,
    version: u64,
}

impl Customers {
    pub(super) async fn merge(
        &self,
        who: &Principal,
        req: pb::MergeCustomersRequest,
    ) -> Result<pb::MergeCustomersResponse, ApiError> {
        may_merge(who)?;
        let request = commands::Request::new(who, &req.request_id, None)?;
        let mut f = Fields::new();
        let duplicate = f.customer_id("duplicate_id", &req.duplicate_id);
        let survivor = f.customer_id("survivor_id", &req.survivor_id);
        let reason = f.text("reason", &req.reason);
        for (field, version) in [
            ("duplicate_expected_version", req.duplicate_expected_version),
            ("survivor_expected_version", req.survivor_expected_version),
        ] {
            if version.is_some_and(|version| i64::try_from(version).is_err()) {
                f.violation(field, "is beyond any stream's version");
            }
        }
        f.finish()?;
        let (duplicate, survivor, reason) =
            (present(duplicate)?, present(survivor)?, present(reason)?);
        let (merged, absorbed) = (request.tagged("merged"), request.tagged("absorbed"));
        if let Some(answer) = self.merged_before(&merged, &absorbed).await? {
            return Ok(answer);
        }
        let expected = (req.duplicate_expected_version, req.survivor_expected_version);
        for _ in 0..RETRIES {
            let dup = self.load_visible(who, duplicate).await?;
            let kept = self.load_visible(who, survivor).await?;
            for (loaded, expected) in [(&dup, expected.0), (&kept, expected.1)] {
                if expected.is_some_and(|expected| expected != loaded.version) {
                    return Err(ApiError::Conflict {
                        stream: loaded.stream.to_string(),
                        expected: format!("version {}", expected.unwrap_or_default()),
                        actual: loaded.version,
                    });
                }
            }
            let now = self.ctx.commands.now();
            let state = |loaded: &Loaded| Some(loaded.record.clone());
            let merge = MergeInto { survivor, reason: reason.clone() };
            let dup_events =
                Customer::decide(&state(&dup), CustomerCommand::MergeInto(merge), now)?;
            let absorb =
                Absorb { duplicate, also: dup.record.absorbed.clone(), reason: reason.clone() };
            let kept_events =
                Customer::decide(&state(&kept), CustomerCommand::Absorb(absorb), now)?;
            let commands = &self.ctx.commands;
            let unused = vec![Condition::Absent(merged.unrelated_ids())];
            let first = commands
                .prepare::<Customer>(
                    &dup.stream,
                    &merged,
                    &state(&dup),
                    &dup_events,
                    dup.version,
                    unused,
                )
                .await?;
            let second = commands
                .prepare::<Customer>(
                    &kept.stream,
                    &absorbed,
                    &state(&kept),
                    &kept_events,
                    kept.version,
                    vec![],
                )
                .await?;
            let outcomes = commands.submit_group(vec![first, second])?.await;
            let mut outcomes = outcomes.into_iter();
            match (outcomes.next(), outcomes.next()) {
                (Some(Ok(dup)), Some(Ok(kept))) => {
                    return Ok(answer(duplicate, survivor, &dup, &kept))
                }
                (Some(Err(StoreError::WrongExpectedVersion { .. })), _)
                | (_, Some(Err(StoreError::WrongExpectedVersion { .. })))
                    if expected == (None, None) =>
                {
                    continue
                }
                (first, second) => {
                    // The refused member says why; its partner only that it went unwritten.
                    let refusal = [first, second]
                        .into_iter()
                        .flatten()
                        .filter_map(Result::err)
                        .find(|error| !matches!(error, StoreError::GroupIncomplete));
                    if let Ok(Some(answer)) = self.merged_before(&merged, &absorbed).await {
                        return Ok(answer);
                    }
                    return Err(refusal
                        .unwrap_or_else(|| {
                            StoreError::CommitFailed("a merge went unanswered".into())
                        })
                        .into());
                }
            }
        }
        Err(ApiError::Contended { stream: duplicate.stream_name() })
    }

    /// The first answer of a merge this request already made.
    async fn merged_before(
        &self,
        merged: &commands::Request<'_>,
        absorbed: &commands::Request<'_>,
    ) -> Result<Option<pb::MergeCustomersResponse>, ApiError> {
        let lookup = self.ctx.commands.lookup(merged).await?;
        let (Some(dup), Some(kept)) =
            (lookup.written("merged", merged)?, lookup.written("absorbed", absorbed)?)
        else {
            return Ok(None);
        };
        let id = |written: &Written| -> Result<CustomerId, ApiError> {
            let id = written.stream.trim_start_matches("customer-");
            id.parse().map_err(|_| ApiError::Internal(format!("merge wrote {}", written.stream)))
        };
        Ok(Some(answer(id(&dup)?, id(&kept)?, &dup, &kept)))
    }

    /// A registered customer the caller may read (at the level that governs it now);
    /// anything else is "not found", whether absent or above the caller's clearance.
    async fn load_visible(&self, who: &Principal, id: CustomerId) -> Result<Loaded, ApiError> {
        let stream = stream(id.stream_name())?;
        let (record, version, _) = self.ctx.commands.load_unopened::<Customer>(&stream).await?;
        let not_found = || ApiError::NotFound { what: "customer", id: id.to_string() };
        let record = record.ok_or_else(not_found)?;
        let level =
            self.survivor_of(&record).await?.map_or(record.confidentiality, |s| s.confidentiality);
        if !visible_to(who, level) {
            return Err(not_found());
        }
        Ok(Loaded { stream, record, version })
    }

    /// Where a merged duplicate lives now: the end of its chain of merges (`None` for a
    /// customer not merged).
    pub(super) async fn survivor_of(
        &self,
        record: &CustomerRecord,
    ) -> Result<Option<CustomerRecord>, ApiError> {
        let mut next = record.merged_into;
        let mut survivor = None;
        for _ in 0..MAX_CHAIN {
            let Some(id) = next else { return Ok(survivor) };
            let (found, _, _) =
                self.ctx.commands.load_unopened::<Customer>(&stream(id.stream_name())?).await?;
            let found = found
                .ok_or_else(|| ApiError::Internal(format!("survivor {id} is not registered")))?;
            next = found.merged_into;
            survivor = Some(found);
        }
        Err(ApiError::Internal(format!(
            "customer {} is merged more than {MAX_CHAIN} deep",
            record.id
        )))
    }
}

fn answer(
    duplicate: CustomerId,
    survivor: CustomerId,
    dup: &Written,
    kept: &Written,
) -> pb::MergeCustomersResponse {
    pb::MergeCustomersResponse {
        duplicate: Some(cv::write_result(duplicate.to_string(), dup)),
        survivor: Some(cv::write_result(survivor.to_string(), kept)),
    }
}
