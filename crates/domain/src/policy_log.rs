//! R-T3: the policy is part of the record. The `policy` stream holds one `PolicyChanged`
//! per change of the configured policy, with the whole policy and its hash; the
//! stream's version is the policy's version. Each filing records the version it was
//! filed under, and a case's deadlines follow that version for good.
//!
//! Version 0 is [`Policy::version_zero`]: what cases filed before policies were recorded
//! (their `ComplaintFiled` lacks a version) were held to.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::{event_enum, no_upcasters};
use crate::error::DomainError;
use crate::policy::Policy;

/// The policy stream's name (one stream for the whole business).
pub const STREAM: &str = "policy";

/// The configured policy differed from the last recorded one: this is the new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyChanged {
    /// The policy's version: the stream version this event is stored at.
    pub version: u64,
    /// [`Policy::hash`] of `policy`, as computed by the build that recorded it.
    pub hash: String,
    pub policy: Policy,
    pub changed_at: DateTime<Utc>,
}

event_enum!(
    /// Everything that happens in the `policy` stream.
    PolicyEvent, upcast = no_upcasters, {
        PolicyChanged = 1,
    }
);

/// Record `policy` as the one in force, unless it already is.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPolicy {
    pub policy: Policy,
}

/// The last recorded version and hash, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub version: u64,
    pub hash: Option<String>,
}

/// The `policy` stream's aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyLog;

impl Aggregate for PolicyLog {
    type State = Recorded;
    type Command = RecordPolicy;
    type Event = PolicyEvent;

    const STATE_FROM_LAST_EVENT: bool = true;

    /// A `PolicyChanged` when the policy differs from the last recorded one; nothing
    /// when it is the same (every start of every node records the configured policy).
    fn decide(
        last: &Recorded,
        command: RecordPolicy,
        now: DateTime<Utc>,
    ) -> Result<Vec<PolicyEvent>, DomainError> {
        let hash = command.policy.hash();
        if last.hash.as_deref() == Some(hash.as_str()) {
            return Ok(vec![]);
        }
        Ok(vec![PolicyChanged {
            version: last.version + 1,
            hash,
            policy: command.policy,
            changed_at: now,
        }
        .into()])
    }

    fn evolve(_: Recorded, event: &PolicyEvent) -> Recorded {
        let PolicyEvent::PolicyChanged(changed) = event;
        Recorded { version: changed.version, hash: Some(changed.hash.clone()) }
    }
}

/// Every recorded policy by version, version 0 included, and which one is in force.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyBook {
    versions: BTreeMap<u64, Arc<Policy>>,
    current: u64,
}

impl Default for PolicyBook {
    fn default() -> Self {
        PolicyBook::new()
    }
}

/// One policy version, as a command carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub version: u64,
    pub policy: Arc<Policy>,
}

impl PolicyBook {
    /// A book holding version 0 only, in force.
    pub fn new() -> Self {
        PolicyBook { versions: [(0, Arc::new(Policy::version_zero()))].into(), current: 0 }
    }

    /// Adds a recorded version; the highest version is the one in force.
    pub fn record(&mut self, changed: &PolicyChanged) {
        self.versions.insert(changed.version, Arc::new(changed.policy.clone()));
        self.current = self.current.max(changed.version);
    }

    /// The policy of `version`, if recorded.
    pub fn get(&self, version: u64) -> Option<Versioned> {
        self.versions.get(&version).map(|policy| Versioned { version, policy: policy.clone() })
    }

    /// The policy in force.
    pub fn current(&self) -> Versioned {
        self.get(self.current)
            .unwrap_or_else(|| Versioned { version: 0, policy: Arc::new(Policy::version_zero()) })
    }

    /// The highest recorded version.
    pub fn latest_version(&self) -> u64 {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Target, Targets, Unit};

    #[test]
    fn only_a_change_is_recorded_with_the_next_version() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let policy = Policy::default();
        let first =
            PolicyLog::decide(&Recorded::default(), RecordPolicy { policy: policy.clone() }, now)
                .unwrap();
        let state = PolicyLog::fold(&first);
        assert_eq!(state, Recorded { version: 1, hash: Some(policy.hash()) });
        assert_eq!(
            PolicyLog::decide(&state, RecordPolicy { policy: policy.clone() }, now),
            Ok(vec![])
        );
        let faster = Policy {
            targets: Targets { first_response: Target::new(4, Unit::Hours), ..Targets::default() },
            ..policy
        };
        let second =
            PolicyLog::decide(&state, RecordPolicy { policy: faster.clone() }, now).unwrap();
        let PolicyEvent::PolicyChanged(changed) = &second[0];
        assert_eq!((changed.version, &changed.policy), (2, &faster));
        let mut book = PolicyBook::new();
        assert_eq!(book.current().version, 0);
        book.record(changed);
        assert_eq!(book.current().policy.as_ref(), &faster);
        assert_eq!(book.get(0).unwrap().policy.as_ref(), &Policy::version_zero());
        assert!(book.get(1).is_none());
    }
}
