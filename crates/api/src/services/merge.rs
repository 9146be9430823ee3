//! `MergeCustomers` (issue 20): a duplicate merged into a survivor, as one append group
//! on both streams; and where a merged duplicate now lives, for reads of it.
//!
//! Merging an internal record into a secret one reclassifies the internal record's data
//! (it is read as the survivor from then on), and the other way round declassifies: so
//! R-C6's rule for classifying applies. The caller must be cleared for both records'
//! levels, and a record above the caller's clearance is answered exactly like one that
//! does not exist, so a refused merge tells nobody it is there.

use kefu_domain::customer::{Absorb, Customer, CustomerCommand, CustomerRecord, MergeInto};
use kefu_domain::{Aggregate, CustomerId, Text};
use kefu_event_store::{Condition, StoreError, StreamId};

use super::customer::Customers;
use super::Ctx;
use crate::access::{authorize, Access, Rpc};
use crate::auth::Principal;
use crate::commands::{self, stream, Fingerprint, Written};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::pb;

/// How many merges deep a duplicate's survivor is followed in the log (each merge of a
/// survivor adds one); past that, the read model's one-level merges name the last one.
const MAX_CHAIN: usize = 32;
/// Times a merge is decided again after losing a race, without an expected version.
const RETRIES: usize = 8;

/// A customer record and where its stream is.
struct Loaded {
    stream: StreamId,
    record: CustomerRecord,
    version: u64,
}

/// A merge request, checked.
struct Merge {
    duplicate: CustomerId,
    survivor: CustomerId,
    reason: Text,
    /// The versions the caller expects the two streams at, if any.
    expected: (Option<u64>, Option<u64>),
}

fn validate(req: &pb::MergeCustomersRequest) -> Result<Merge, ApiError> {
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
    Ok(Merge {
        duplicate: present(duplicate)?,
        survivor: present(survivor)?,
        reason: present(reason)?,
        expected: (req.duplicate_expected_version, req.survivor_expected_version),
    })
}

impl Customers {
    pub(super) async fn merge(
        &self,
        who: &Principal,
        req: pb::MergeCustomersRequest,
    ) -> Result<pb::MergeCustomersResponse, ApiError> {
        // The access table: a supervisor cleared for both records' levels (R-C6: only
        // someone cleared for both levels may classify; nobody may change a record they
        // may not read); a record the caller is not cleared for is "not found".
        let access = authorize(who, Rpc::MergeCustomers)?;
        let fingerprint = Fingerprint::of("MergeCustomers", &req);
        let request = commands::Request::new(who, fingerprint, &req.request_id, None)?;
        let merge = validate(&req)?;
        let (merged, absorbed) = (request.tagged("merged"), request.tagged("absorbed"));
        if let Some(answer) = self.merged_before(&merged, &absorbed).await? {
            return Ok(answer);
        }
        for _ in 0..RETRIES {
            match self.try_merge(who, &access, &merge, &merged, &absorbed).await {
                // A lost race, with no expectation of the caller's: decide again.
                Err(StoreError::WrongExpectedVersion { .. }) if merge.expected == (None, None) => {}
                Err(refusal) => {
                    // Perhaps this very request was written meanwhile (a retry racing it).
                    if let Ok(Some(answer)) = self.merged_before(&merged, &absorbed).await {
                        return Ok(answer);
                    }
                    return Err(refusal.into());
                }
                Ok(answer) => {
                    let answer = answer?;
                    // What was given out for the duplicate's old level meanwhile.
                    self.ctx.sweep_open_work(who, &req.request_id, merge.survivor).await;
                    return Ok(answer);
                }
            }
        }
        Err(ApiError::Contended { stream: merge.duplicate.stream_name() })
    }

    /// Loads both records, decides both sides and appends them as one group. The outer
    /// error is the store's refusal of the group (to retry or report); the inner result
    /// the answer, or a refusal before anything was submitted.
    async fn try_merge(
        &self,
        who: &Principal,
        access: &Access,
        merge: &Merge,
        merged: &commands::Request<'_>,
        absorbed: &commands::Request<'_>,
    ) -> Result<Result<pb::MergeCustomersResponse, ApiError>, StoreError> {
        let decided = async {
            let dup = self.load_visible(access, merge.duplicate).await?;
            let kept = self.load_visible(access, merge.survivor).await?;
            for (loaded, expected) in [(&dup, merge.expected.0), (&kept, merge.expected.1)] {
                if let Some(expected) = expected.filter(|expected| *expected != loaded.version) {
                    return Err(ApiError::Conflict {
                        stream: loaded.stream.to_string(),
                        expected: format!("version {expected}"),
                        actual: loaded.version,
                    });
                }
            }
            let now = self.ctx.commands.now();
            let reason = merge.reason.clone();
            let into = MergeInto { survivor: merge.survivor, reason: reason.clone() };
            let dup_state = Some(dup.record.clone());
            let dup_events = Customer::decide(&dup_state, CustomerCommand::MergeInto(into), now)?;
            let also = dup.record.absorbed.clone();
            // R-C6: the duplicate's own level (it is not merged: that was refused above).
            let duplicate_level = dup.record.confidentiality;
            // R-C6 with R-C3: merged into a higher survivor, the duplicate's work is read
            // at its level: within its holders' clearance, held as read until the commit.
            let (duplicate_work, held) = if duplicate_level == kept.record.confidentiality {
                (Vec::new(), Vec::new())
            } else {
                let open = self.ctx.open_work(who, merge.duplicate).await?;
                (open.work, open.held)
            };
            let absorb =
                Absorb { duplicate: merge.duplicate, also, duplicate_level, duplicate_work };
            let kept_state = Some(kept.record.clone());
            let kept_events = Customer::decide(&kept_state, CustomerCommand::Absorb(absorb), now)?;
            let commands = &self.ctx.commands;
            let mut unused = vec![Condition::Absent(merged.unrelated_ids())];
            unused.extend(held);
            let (dup_stream, kept_stream) = (&dup.stream, &kept.stream);
            let first = commands
                .prepare::<Customer>(
                    dup_stream,
                    merged,
                    &dup_state,
                    &dup_events,
                    dup.version,
                    unused,
                )
                .await?;
            let second = commands
                .prepare::<Customer>(
                    kept_stream,
                    absorbed,
                    &kept_state,
                    &kept_events,
                    kept.version,
                    vec![],
                )
                .await?;
            commands.submit_group(vec![first, second])
        };
        let pending = match decided.await {
            Ok(pending) => pending,
            Err(refused) => return Ok(Err(refused)),
        };
        let mut outcomes = pending.await.into_iter();
        match (outcomes.next(), outcomes.next()) {
            (Some(Ok(dup)), Some(Ok(kept))) => {
                Ok(Ok(answer(merge.duplicate, merge.survivor, &dup, &kept)))
            }
            (first, second) => {
                // The refused member says why; its partner only that it went unwritten.
                let mut errors = [first, second].into_iter().flatten().filter_map(Result::err);
                Err(errors
                    .find(|error| !matches!(error, StoreError::GroupIncomplete))
                    .unwrap_or_else(|| StoreError::CommitFailed("a merge went unanswered".into())))
            }
        }
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

    /// A registered customer the caller may merge, at the level that governs it now;
    /// anything else is "not found", whether absent or above the caller's clearance
    /// (the access table hides MergeCustomers' targets).
    async fn load_visible(&self, access: &Access, id: CustomerId) -> Result<Loaded, ApiError> {
        let stream = stream(id.stream_name())?;
        let (record, version, _) = self.ctx.commands.load_unopened::<Customer>(&stream).await?;
        let record =
            record.ok_or_else(|| ApiError::NotFound { what: "customer", id: id.to_string() })?;
        access.on_customer_at(&record, self.ctx.governing_level(&record).await?)?;
        Ok(Loaded { stream, record, version })
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

impl Ctx {
    /// Where a merged duplicate lives now: the end of its chain of merges (`None` for a
    /// customer not merged).
    pub async fn survivor_of(
        &self,
        record: &CustomerRecord,
    ) -> Result<Option<CustomerRecord>, ApiError> {
        let mut next = record.merged_into;
        let mut survivor = None;
        for hop in 0.. {
            let Some(mut id) = next else { return Ok(survivor) };
            if hop == MAX_CHAIN {
                // Merged away again and again: the read model keeps merges one level
                // deep, so it names the last survivor in one step (as of its position).
                let row = self.models.customer(&record.id.to_string()).await?;
                let flattened = row.and_then(|row| row.merged_into?.parse().ok());
                id = flattened.unwrap_or(id);
            }
            let (found, _, _) =
                self.commands.load_unopened::<Customer>(&stream(id.stream_name())?).await?;
            let found = found
                .ok_or_else(|| ApiError::Internal(format!("survivor {id} is not registered")))?;
            next = found.merged_into.filter(|_| hop < MAX_CHAIN);
            survivor = Some(found);
        }
        Ok(survivor)
    }
}
