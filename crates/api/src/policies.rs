//! R-T3: the policies this process knows, read from the `policy` stream, and recording
//! the configured one at start.
//!
//! At start, [`Policies::record`] appends a `PolicyChanged` when the configured policy
//! differs from the last recorded one (its hash), then reads the whole stream: every
//! version is kept, because a case is held to the version it was filed under for good.
//! Filings take the current version; a closure takes its case's own version, reading
//! the stream again first when that version was recorded by another node since.

use std::sync::{Arc, RwLock};

use kefu_domain::policy_log::{PolicyEvent, PolicyLog, RecordPolicy, Recorded, STREAM};
use kefu_domain::{Aggregate, DomainError, Policy, PolicyBook, Versioned};
use kefu_event_store::Direction;

use crate::auth::Principal;
use crate::commands::{decode, stream, Commands, Fingerprint, Request};
use crate::error::ApiError;

/// Every recorded policy version, shared by the services.
#[derive(Debug, Default)]
pub struct Policies {
    book: RwLock<PolicyBook>,
}

/// How often recording retries when other nodes record at the same moment.
const RECORD_TRIES: u32 = 5;

impl Policies {
    /// Records `configured` as the policy in force unless it already is (the actor in
    /// the event's metadata is `actor`: the operator, or `system`), and loads every
    /// version. Returns the version in force.
    pub async fn record(
        commands: &Commands,
        configured: &Policy,
        actor: &str,
    ) -> Result<(Arc<Policies>, u64), ApiError> {
        let principal = Principal {
            id: actor.to_owned(),
            roles: Vec::new(),
            clearance: kefu_domain::Confidentiality::Public,
        };
        let hash = configured.hash();
        let stream_id = stream(STREAM.to_owned())?;
        for _ in 0..RECORD_TRIES {
            let (book, recorded) = Self::read(commands).await?;
            let events = PolicyLog::decide(
                &recorded,
                RecordPolicy { policy: configured.clone() },
                commands.now(),
            )?;
            if events.is_empty() {
                let current = book.latest_version();
                return Ok((Arc::new(Policies { book: RwLock::new(book) }), current));
            }
            // Nodes recording the same policy as the same version derive the same event
            // ids (the store keeps one); going back to an earlier policy is a new version.
            let request_id = format!("policy-v{}-{hash}", recorded.version + 1);
            let request = Request::derived(
                &principal,
                Fingerprint::internal("RecordPolicy"),
                &request_id,
                Some(recorded.version),
            );
            let pending = commands
                .submit::<PolicyLog>(&stream_id, &request, &recorded, &events, recorded.version)
                .await?;
            match pending.await {
                Ok(_) => {
                    tracing::info!(
                        version = recorded.version + 1,
                        actor,
                        "the configured policy was recorded (PolicyChanged)"
                    );
                }
                // Another node recorded first: read again and decide again.
                Err(ApiError::Conflict { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        let (book, _) = Self::read(commands).await?;
        let current = book.latest_version();
        Ok((Arc::new(Policies { book: RwLock::new(book) }), current))
    }

    /// A book of version 0 only (no store): for tests of code that takes a book.
    pub fn version_zero() -> Arc<Policies> {
        Arc::new(Policies::default())
    }

    /// Every version in the stream, and the stream's last state.
    async fn read(commands: &Commands) -> Result<(PolicyBook, Recorded), ApiError> {
        let stream_id = stream(STREAM.to_owned())?;
        let recorded = commands.read(&stream_id, 1, Direction::Forward, usize::MAX).await?;
        let events: Vec<PolicyEvent> = decode(&recorded)?;
        let mut book = PolicyBook::new();
        for PolicyEvent::PolicyChanged(changed) in &events {
            book.record(changed);
        }
        let state = PolicyLog::fold(&events);
        Ok((book, state))
    }

    /// The policy in force: the latest recorded version.
    pub fn current(&self) -> Versioned {
        self.book
            .read()
            .map(|book| book.current())
            .unwrap_or_else(|poisoned| poisoned.into_inner().current())
    }

    /// The policy of `version`, reading the stream again if another node recorded it
    /// since this process read it; `POLICY_VERSION_UNKNOWN` if it is not recorded.
    pub async fn version(&self, commands: &Commands, version: u64) -> Result<Versioned, ApiError> {
        if let Some(known) = self.known(version) {
            return Ok(known);
        }
        let (book, _) = Self::read(commands).await?;
        let found = book.get(version);
        match self.book.write() {
            Ok(mut mine) => *mine = book,
            Err(poisoned) => *poisoned.into_inner() = book,
        }
        found.ok_or_else(|| DomainError::PolicyVersionUnknown { version }.into())
    }

    /// Reads the stream again if another node recorded a version since this process
    /// read it (one read of the stream's last event when nothing changed).
    pub async fn refresh(&self, commands: &Commands) -> Result<(), ApiError> {
        let stream_id = stream(STREAM.to_owned())?;
        let last = commands.read(&stream_id, u64::MAX, Direction::Backward, 1).await?;
        let head = last.first().map_or(0, |event| event.stream_version);
        if head > self.current().version {
            let (book, _) = Self::read(commands).await?;
            match self.book.write() {
                Ok(mut mine) => *mine = book,
                Err(poisoned) => *poisoned.into_inner() = book,
            }
        }
        Ok(())
    }

    /// The policy of `version` if this process has read it.
    pub fn known(&self, version: u64) -> Option<Versioned> {
        match self.book.read() {
            Ok(book) => book.get(version),
            Err(poisoned) => poisoned.into_inner().get(version),
        }
    }
}
