//! kefu's append-only event log on SQLite and PostgreSQL.
//!
//! The log knows streams and envelopes, nothing about customers or complaints. Its
//! contract (DESIGN.md, "The event store"):
//!
//! - [`EventStore::append`] writes all events of one call or none, checks an
//!   [`ExpectedVersion`], and is idempotent by event id: re-sending an append that is
//!   already stored returns the original [`AppendResult`] and writes nothing.
//! - Positions are global, 1-based, gap-free and increase in commit order, so
//!   [`EventStore::read_all`] and [`EventStore::subscribe`] never skip an event that
//!   commits late and never deliver one twice (see the `postgres` module for why this
//!   holds with concurrent writers).
//! - The database itself refuses `UPDATE`, `DELETE` and (PostgreSQL) `TRUNCATE` of the
//!   events table.
//! - Each stream carries a SHA-256 hash chain; [`EventStore::verify_stream`] names the
//!   first version that was altered.
//! - Limits on events per append, payload, metadata, stream id and event type sizes
//!   fail with [`StoreError::LimitExceeded`] before anything is written.
//! - Personal fields can be sealed with a per-subject key kept outside the log
//!   ([`EventStore::data_key`], [`EventStore::open_sealed`]); destroying the key erases
//!   the person without touching an event (crypto-shredding, see the `vault` module).

mod batch;
mod chain;
mod error;
mod limits;
mod postgres;
mod prepare;
mod sealed_text;
mod sqlite;
mod sqlite_batch;
pub mod sqlite_time;
mod store;
#[cfg(test)]
mod supervision_tests;
mod types;
mod vault;

/// Fault injection for kefu's end-to-end tests (feature `test-hooks`, which only the
/// kefu-tests crate enables): the real writer thread of a real store panics, and its
/// real supervisor handles it, so a test can watch a full server lose its writer.
#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    /// An append to this stream makes the writer of the store it is sent to panic before
    /// writing its batch (the append fails `Unavailable`).
    pub use crate::prepare::test_hooks::PANIC_STREAM;
    /// Panics within a minute after which the supervisor gives the writer up.
    pub const GIVE_UP_AFTER: usize = crate::prepare::MAX_RESTARTS + 1;
}

pub use chain::{verify_links, StoredLink, GENESIS};
pub use error::{is_transient, StoreError};
pub use limits::Limits;
pub use sealed_text::{OpenedFields, PayloadFields};
pub use store::{Database, EventLocation, EventStore, PendingAppend, PendingGroup};
pub use types::{
    category_of, Append, AppendResult, BrokenReason, Condition, Direction, ExpectedVersion,
    LoggedEvent, Metadata, NewEvent, RecordedEvent, StoreOptions, StreamId, Verification,
};
pub use vault::{
    sealed_subjects, show_erased, show_erased_payload, DataKey, KeyState, LiveKeys,
    INSTALLATION_SUBJECT,
};
