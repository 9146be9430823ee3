//! Plans a group-commit batch in memory: every append's idempotency check, head and
//! expectation, decided from one or two reads for the whole batch instead of two per
//! append.
//!
//! The backend reads what the database holds of the batch's event ids and the heads of
//! its streams (under its write lock), then [`plan`] walks the appends in queue order,
//! as if each were written before the next is checked: a later append to the same
//! stream chains onto the earlier one, and a retry queued behind its own original sees
//! it as stored.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;
use crate::prepare::{from_sql, idempotent_result, ChainedAppend, EncodedAppend, StoredPlace};
use crate::types::{AppendResult, Condition};

/// What the checks decided for one append of a batch.
#[derive(Debug)]
pub(crate) enum Planned {
    /// Already stored before this batch: its original result.
    Repeat(AppendResult),
    /// The very events of an earlier append of this batch (by index), which writes them.
    RepeatOf(usize),
    /// Refused (expectation or idempotency); writes nothing.
    Refused(StoreError),
    /// To be written: its rows, numbered and hashed after its stream's head.
    Write(ChainedAppend),
}

/// Where an event planned earlier in the batch goes, for the idempotency check of a
/// later append that names it.
struct PlannedPlace {
    append: usize,
    stream_id: String,
    stream_version: u64,
    event_type: String,
}

/// A stream's last `(version, hash)`.
type Head = (u64, [u8; 32]);

/// Decides every append of a batch, in order, group by group: a group's appends are
/// written all or none (see [`settle_group`]). One plan per append, in queue order.
///
/// `stored`: the places the database already holds among the batch's event ids.
/// `heads`: each stream's last `(version, hash)` in the database (absent = new stream).
pub(crate) fn plan<'a>(
    groups: impl IntoIterator<Item = &'a [EncodedAppend]>,
    stored: &[StoredPlace],
    mut heads: HashMap<String, (u64, [u8; 32])>,
    now: DateTime<Utc>,
) -> Vec<Planned> {
    let mut planned_ids: HashMap<Uuid, PlannedPlace> = HashMap::new();
    let mut plans = Vec::new();
    for group in groups {
        // The heads a group of several may have to restore: only its own streams move.
        let before: Vec<(&str, Option<Head>)> = if group.len() > 1 {
            group
                .iter()
                .map(|a| (a.stream_id.as_str(), heads.get(a.stream_id.as_str()).copied()))
                .collect()
        } else {
            Vec::new()
        };
        let first = plans.len();
        for append in group {
            let index = plans.len();
            plans.push(plan_one(index, append, stored, &mut heads, &mut planned_ids, now));
        }
        if group.len() > 1 && settle_group(&mut plans[first..]) {
            take_back(&before, first, &mut heads, &mut planned_ids);
        }
    }
    plans
}

/// Undoes what a taken-back group planned: its streams' heads as they were before it
/// (restored last to first, so a stream it wrote twice gets its first head back), and
/// the event ids its appends (from index `first` on) claimed.
fn take_back(
    before: &[(&str, Option<Head>)],
    first: usize,
    heads: &mut HashMap<String, (u64, [u8; 32])>,
    planned_ids: &mut HashMap<Uuid, PlannedPlace>,
) {
    for (stream, head) in before.iter().rev() {
        match head {
            Some(head) => heads.insert((*stream).to_owned(), *head),
            None => heads.remove(*stream),
        };
    }
    planned_ids.retain(|_, place| place.append < first);
}

/// A group is written only if every append of it is: otherwise what would have been
/// written (or repeated from within the batch) becomes [`StoreError::GroupIncomplete`],
/// while refusals and repeats of stored appends keep their own answer. Returns whether
/// the group was taken back.
fn settle_group(plans: &mut [Planned]) -> bool {
    if plans.iter().all(|plan| matches!(plan, Planned::Write(_))) {
        return false;
    }
    for plan in plans.iter_mut() {
        if matches!(plan, Planned::Write(_) | Planned::RepeatOf(_)) {
            *plan = Planned::Refused(StoreError::GroupIncomplete);
        }
    }
    true
}

fn plan_one(
    index: usize,
    append: &EncodedAppend,
    stored: &[StoredPlace],
    heads: &mut HashMap<String, (u64, [u8; 32])>,
    planned_ids: &mut HashMap<Uuid, PlannedPlace>,
    now: DateTime<Utc>,
) -> Planned {
    if append.events.iter().any(|event| planned_ids.contains_key(&event.event_id)) {
        return match repeat_of(append, planned_ids) {
            Ok(original) => Planned::RepeatOf(original),
            Err(refused) => Planned::Refused(refused),
        };
    }
    let mine: Vec<StoredPlace> = stored
        .iter()
        .filter(|place| append.events.iter().any(|event| event.event_id == place.event_id))
        .cloned()
        .collect();
    match idempotent_result(append, mine) {
        Ok(Some(original)) => return Planned::Repeat(original),
        Ok(None) => {}
        Err(refused) => return Planned::Refused(refused),
    }
    if let Some(failed) =
        append.conditions.iter().find(|condition| !holds(condition, stored, heads, planned_ids))
    {
        return Planned::Refused(StoreError::ConditionFailed(failed.clone()));
    }
    let stream = append.stream_id.as_str();
    let (head_version, head_hash) =
        heads.get(stream).copied().unwrap_or((0, crate::chain::GENESIS));
    if let Err(refused) = append.check_expected(head_version) {
        return Planned::Refused(refused);
    }
    let chained = append.chain(head_version, head_hash, now);
    for (event, row) in append.events.iter().zip(&chained.rows) {
        planned_ids.insert(
            event.event_id,
            PlannedPlace {
                append: index,
                stream_id: stream.to_owned(),
                stream_version: row.stream_version,
                event_type: event.event_type.clone(),
            },
        );
    }
    if let Some(last) = chained.rows.last() {
        heads.insert(stream.to_owned(), (last.stream_version, last.hash));
    }
    Planned::Write(chained)
}

/// Whether a condition holds against the database as read and the appends planned
/// before this one in the batch.
fn holds(
    condition: &Condition,
    stored: &[StoredPlace],
    heads: &HashMap<String, (u64, [u8; 32])>,
    planned_ids: &HashMap<Uuid, PlannedPlace>,
) -> bool {
    match condition {
        Condition::StreamAt { stream_id, version } => {
            heads.get(stream_id.as_str()).map_or(0, |(head, _)| *head) == *version
        }
        Condition::Absent(ids) => ids.iter().all(|id| {
            !planned_ids.contains_key(id) && !stored.iter().any(|place| place.event_id == *id)
        }),
        Condition::LastNot { stream_id, event_type } => {
            let stream = stream_id.as_str();
            let planned_last = planned_ids
                .values()
                .filter(|place| place.stream_id == stream)
                .max_by_key(|place| place.stream_version);
            match planned_last {
                Some(place) => place.event_type != *event_type,
                // The stored head: read with the heads, as a stored place.
                None => {
                    let head = heads.get(stream).map(|(version, _)| *version);
                    !stored.iter().any(|place| {
                        place.stream_id == stream
                            && Some(place.stream_version) == head
                            && place.event_type == *event_type
                    })
                }
            }
        }
        Condition::NoneSince { stream_id, version, event_types } => {
            let stream = stream_id.as_str();
            let after = |place_stream: &str, place_version: u64, place_type: &String| {
                place_stream == stream
                    && place_version > *version
                    && event_types.contains(place_type)
            };
            // The stored events after `version` were read with the heads (`since`).
            !planned_ids
                .values()
                .any(|place| after(&place.stream_id, place.stream_version, &place.event_type))
                && !stored
                    .iter()
                    .any(|place| after(&place.stream_id, place.stream_version, &place.event_type))
        }
    }
}

/// An append naming events an earlier append of the batch writes: a repeat of it if it
/// is that append exactly (same stream, same events in the same order), else a reused id.
fn repeat_of(
    append: &EncodedAppend,
    planned_ids: &HashMap<Uuid, PlannedPlace>,
) -> Result<usize, StoreError> {
    let first = &append.events[0];
    let Some(original) = planned_ids.get(&first.event_id) else {
        return Err(StoreError::IdempotencyMismatch {
            event_id: first.event_id,
            reason: "while other events of this append are not (partial overlap)",
        });
    };
    for (expected_version, event) in (original.stream_version..).zip(&append.events) {
        let same = planned_ids.get(&event.event_id).is_some_and(|place| {
            place.append == original.append
                && place.stream_id == append.stream_id.as_str()
                && place.stream_version == expected_version
                && place.event_type == event.event_type
        });
        if !same {
            return Err(StoreError::IdempotencyMismatch {
                event_id: event.event_id,
                reason: "at another place or with another type",
            });
        }
    }
    let whole = planned_ids.values().filter(|place| place.append == original.append).count();
    if whole != append.events.len() {
        return Err(StoreError::IdempotencyMismatch {
            event_id: first.event_id,
            reason: "while other events of this append are not (partial overlap)",
        });
    }
    Ok(original.append)
}

/// Every append's outcome once its batch committed; `written[i]` is what append `i`
/// wrote (`None` when it wrote nothing).
pub(crate) fn outcomes(
    plans: Vec<Planned>,
    written: &[Option<AppendResult>],
) -> Vec<Result<AppendResult, StoreError>> {
    plans.into_iter().enumerate().map(|(index, plan)| resolve(index, plan, written)).collect()
}

fn resolve(
    index: usize,
    plan: Planned,
    written: &[Option<AppendResult>],
) -> Result<AppendResult, StoreError> {
    let unwritten = || StoreError::Corrupt { position: 0, reason: "append left unwritten".into() };
    let wrote = |index: usize| written.get(index).cloned().flatten().ok_or_else(unwritten);
    match plan {
        Planned::Repeat(original) => Ok(original),
        Planned::Refused(refused) => Err(refused),
        Planned::RepeatOf(original) => Ok(AppendResult { repeated: true, ..wrote(original)? }),
        Planned::Write(_) => wrote(index),
    }
}

/// Streams' heads from `(stream_id, last version, last hash)` rows.
pub(crate) fn heads(
    rows: Vec<(String, i64, Vec<u8>)>,
) -> Result<HashMap<String, (u64, [u8; 32])>, StoreError> {
    let mut heads = HashMap::with_capacity(rows.len());
    for (stream_id, version, hash) in rows {
        let hash = crate::chain::to_hash(&hash).ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: format!("head hash of {stream_id} has the wrong length"),
        })?;
        heads.insert(stream_id, (from_sql(0, version)?, hash));
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::types::{Condition, ExpectedVersion, Metadata, NewEvent, StreamId};

    fn append(stream: &str, expected: ExpectedVersion, ids: &[Uuid]) -> EncodedAppend {
        let events: Vec<NewEvent> = ids
            .iter()
            .map(|id| NewEvent::new(*id, "Happened", 1, serde_json::json!({"n": 1})))
            .collect();
        let stream = StreamId::new(stream).unwrap();
        EncodedAppend::new(&stream, expected, &events, &Metadata::default(), &Limits::default())
            .unwrap()
    }

    fn singles<const N: usize>(appends: [&EncodedAppend; N]) -> Vec<&[EncodedAppend]> {
        appends.into_iter().map(std::slice::from_ref).collect()
    }

    fn written(plan: &Planned) -> (u64, u64) {
        match plan {
            Planned::Write(chained) => (
                chained.rows[0].stream_version,
                chained.rows[chained.rows.len() - 1].stream_version,
            ),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn appends_to_one_stream_chain_onto_each_other_in_queue_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let first = append("s", ExpectedVersion::Exact(3), &[a]);
        let second = append("s", ExpectedVersion::Exact(4), &[b]);
        let heads = HashMap::from([("s".to_owned(), (3, [7; 32]))]);
        let plans = plan(singles([&first, &second]), &[], heads, Utc::now());
        assert_eq!(written(&plans[0]), (4, 4));
        assert_eq!(written(&plans[1]), (5, 5));
        let (Planned::Write(one), Planned::Write(two)) = (&plans[0], &plans[1]) else {
            unreachable!()
        };
        assert_eq!(one.rows[0].prev_hash, [7; 32]);
        assert_eq!(two.rows[0].prev_hash, one.rows[0].hash);
    }

    #[test]
    fn an_expectation_sees_the_appends_queued_before_it() {
        let first = append("s", ExpectedVersion::NoStream, &[Uuid::now_v7()]);
        let racer = append("s", ExpectedVersion::NoStream, &[Uuid::now_v7()]);
        let other = append("t", ExpectedVersion::NoStream, &[Uuid::now_v7()]);
        let plans = plan(singles([&first, &racer, &other]), &[], HashMap::new(), Utc::now());
        assert_eq!(written(&plans[0]), (1, 1));
        assert!(matches!(
            plans[1],
            Planned::Refused(StoreError::WrongExpectedVersion { actual: 1, .. })
        ));
        // A refused append leaves no trace: the next stream still starts at 1.
        assert_eq!(written(&plans[2]), (1, 1));
    }

    #[test]
    fn a_retry_queued_behind_its_original_repeats_it() {
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let original = append("s", ExpectedVersion::NoStream, &ids);
        let retry = append("s", ExpectedVersion::NoStream, &ids);
        let plans = plan(singles([&original, &retry]), &[], HashMap::new(), Utc::now());
        assert_eq!(written(&plans[0]), (1, 2));
        assert!(matches!(plans[1], Planned::RepeatOf(0)));
    }

    #[test]
    fn reusing_queued_ids_elsewhere_or_in_part_is_refused() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let original = append("s", ExpectedVersion::Any, &[a, b]);
        let elsewhere = append("t", ExpectedVersion::Any, &[a, b]);
        let partial = append("s", ExpectedVersion::Any, &[a]);
        let mixed = append("s", ExpectedVersion::Any, &[a, Uuid::now_v7()]);
        let plans = plan(
            singles([&original, &elsewhere, &partial, &mixed]),
            &[],
            HashMap::new(),
            Utc::now(),
        );
        assert_eq!(written(&plans[0]), (1, 2));
        for refused in &plans[1..] {
            assert!(
                matches!(refused, Planned::Refused(StoreError::IdempotencyMismatch { .. })),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn an_append_stored_before_the_batch_gets_its_original_result() {
        let id = Uuid::now_v7();
        let again = append("s", ExpectedVersion::NoStream, &[id]);
        let stored = [StoredPlace {
            event_id: id,
            stream_id: "s".into(),
            stream_version: 1,
            position: 42,
            event_type: "Happened".into(),
            request_fingerprint: None,
        }];
        let heads = HashMap::from([("s".to_owned(), (1, [1; 32]))]);
        let plans = plan(singles([&again]), &stored, heads, Utc::now());
        let Planned::Repeat(original) = &plans[0] else { panic!("{:?}", plans[0]) };
        assert_eq!((original.first_position, original.last_version), (42, 1));
    }

    #[test]
    fn last_not_holds_whatever_else_was_written_until_the_ending_event() {
        let customer = || StreamId::new("customer-1").unwrap();
        let not_forgotten =
            || Condition::LastNot { stream_id: customer(), event_type: "CustomerForgotten".into() };
        let head = |event_type: &str| StoredPlace {
            event_id: Uuid::now_v7(),
            stream_id: "customer-1".into(),
            stream_version: 7,
            position: 70,
            event_type: event_type.into(),
            request_fingerprint: None,
        };
        let heads = || HashMap::from([("customer-1".to_owned(), (7, [1; 32]))]);
        let filing = || {
            append("case", ExpectedVersion::NoStream, &[Uuid::now_v7()])
                .with_conditions(vec![not_forgotten()])
        };
        // Other changes to the stream since it was read do not matter.
        let plans = plan(singles([&filing()]), &[head("CustomerContacted")], heads(), Utc::now());
        assert!(matches!(plans[0], Planned::Write(_)), "{:?}", plans[0]);
        let plans = plan(singles([&filing()]), &[], HashMap::new(), Utc::now());
        assert!(matches!(plans[0], Planned::Write(_)), "no stream: {:?}", plans[0]);
        // Ended in the database, or earlier in the batch: refused.
        let plans = plan(singles([&filing()]), &[head("CustomerForgotten")], heads(), Utc::now());
        assert!(matches!(plans[0], Planned::Refused(StoreError::ConditionFailed(_))));
        let events = [NewEvent::new(Uuid::now_v7(), "CustomerForgotten", 1, serde_json::json!({}))];
        let forget = EncodedAppend::new(
            &customer(),
            ExpectedVersion::Any,
            &events,
            &Metadata::default(),
            &Limits::default(),
        )
        .unwrap();
        let after = filing();
        let plans =
            plan(singles([&forget, &after]), &[head("CustomerContacted")], heads(), Utc::now());
        assert!(matches!(plans[0], Planned::Write(_)));
        assert!(matches!(plans[1], Planned::Refused(StoreError::ConditionFailed(_))));
    }

    #[test]
    fn conditions_see_the_appends_queued_before_them() {
        let read = StreamId::new("read").unwrap();
        let (lead_id, other_id) = (Uuid::now_v7(), Uuid::now_v7());
        let change = append("read", ExpectedVersion::Exact(2), &[lead_id]);
        let stale = append("s", ExpectedVersion::Any, &[Uuid::now_v7()])
            .with_conditions(vec![Condition::StreamAt { stream_id: read.clone(), version: 2 }]);
        let current = append("s", ExpectedVersion::Any, &[Uuid::now_v7()])
            .with_conditions(vec![Condition::StreamAt { stream_id: read, version: 3 }]);
        let absent = append("t", ExpectedVersion::Any, &[Uuid::now_v7()])
            .with_conditions(vec![Condition::Absent(vec![other_id, lead_id])]);
        let heads = HashMap::from([("read".to_owned(), (2, [1; 32]))]);
        let plans = plan(singles([&change, &stale, &current, &absent]), &[], heads, Utc::now());
        assert_eq!(written(&plans[0]), (3, 3));
        assert!(matches!(plans[1], Planned::Refused(StoreError::ConditionFailed(_))));
        assert_eq!(written(&plans[2]), (1, 1));
        assert!(matches!(plans[3], Planned::Refused(StoreError::ConditionFailed(_))));
    }

    #[test]
    fn a_group_is_written_whole_or_taken_back() {
        let heads = HashMap::from([("register".to_owned(), (5, [5; 32]))]);
        let group = |case_expected| {
            vec![
                append("register", ExpectedVersion::Exact(5), &[Uuid::now_v7()]),
                append("case-1", case_expected, &[Uuid::now_v7()]),
            ]
        };
        let whole = group(ExpectedVersion::NoStream);
        let after = append("register", ExpectedVersion::Exact(6), &[Uuid::now_v7()]);
        let plans =
            plan([whole.as_slice(), std::slice::from_ref(&after)], &[], heads.clone(), Utc::now());
        assert_eq!((written(&plans[0]), written(&plans[1])), ((6, 6), (1, 1)));
        assert_eq!(written(&plans[2]), (7, 7));

        // The second append is refused: the first is taken back, and the next append
        // to its stream chains onto the head as it was.
        let broken = group(ExpectedVersion::Exact(3));
        let after = append("register", ExpectedVersion::Exact(5), &[Uuid::now_v7()]);
        // Its ids are free again too: a later append naming them is no repeat.
        let again = append("register", ExpectedVersion::Exact(6), &[broken[0].events[0].event_id]);
        let plans = plan(
            [broken.as_slice(), std::slice::from_ref(&after), std::slice::from_ref(&again)],
            &[],
            heads,
            Utc::now(),
        );
        assert!(matches!(plans[0], Planned::Refused(StoreError::GroupIncomplete)));
        assert!(matches!(plans[1], Planned::Refused(StoreError::WrongExpectedVersion { .. })));
        let Planned::Write(chained) = &plans[2] else { panic!("{:?}", plans[2]) };
        assert_eq!((chained.rows[0].stream_version, chained.rows[0].prev_hash), (6, [5; 32]));
        assert_eq!(written(&plans[3]), (7, 7));
    }

    #[test]
    fn a_group_whose_first_append_is_stored_writes_nothing_and_says_so() {
        let id = Uuid::now_v7();
        let stored = [StoredPlace {
            event_id: id,
            stream_id: "register".into(),
            stream_version: 2,
            position: 9,
            event_type: "Happened".into(),
            request_fingerprint: None,
        }];
        let heads = HashMap::from([("register".to_owned(), (5, [5; 32]))]);
        let group = vec![
            append("register", ExpectedVersion::Exact(5), &[id]),
            append("case-2", ExpectedVersion::NoStream, &[Uuid::now_v7()]),
        ];
        let plans = plan([group.as_slice()], &stored, heads, Utc::now());
        assert!(
            matches!(&plans[0], Planned::Repeat(result) if result.repeated && result.last_version == 2)
        );
        assert!(matches!(plans[1], Planned::Refused(StoreError::GroupIncomplete)));
    }
}
