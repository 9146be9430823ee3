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
mod sqlite;
mod sqlite_batch;
pub mod sqlite_time;
mod store;
mod types;
mod vault;

pub use chain::{verify_links, StoredLink, GENESIS};
pub use error::StoreError;
pub use limits::Limits;
pub use store::{Database, EventLocation, EventStore, PendingAppend, PendingGroup};
pub use types::{
    category_of, Append, AppendResult, BrokenReason, Condition, Direction, ExpectedVersion,
    Metadata, NewEvent, RecordedEvent, StoreOptions, StreamId, Verification,
};
pub use vault::{show_erased, DataKey, KeyState, INSTALLATION_SUBJECT};
