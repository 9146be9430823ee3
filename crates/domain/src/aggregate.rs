//! The aggregate contract: `decide` refuses or returns events, `evolve` folds them into state.

use std::fmt::Debug;

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::ids::CustomerId;

/// One consistency boundary, written as two pure functions.
///
/// `decide` never mutates and never does IO: the caller loads the state by folding the
/// stream, resolves time, ids and lookups into the command, and appends the returned
/// events with the stream's version as the expectation. `evolve` must accept every
/// event `decide` ever produced, so state is only ever built by folding events.
pub trait Aggregate {
    /// `Default` is the state of a stream with no events.
    type State: Default + Clone + PartialEq + Debug;
    type Command;
    type Event: Clone + Debug;

    /// True when `evolve` ignores the state it is given, so a stream's last event alone
    /// determines the state and loaders may read just that (the yearly case register,
    /// which grows with every filing, relies on this).
    const STATE_FROM_LAST_EVENT: bool = false;

    fn decide(
        state: &Self::State,
        command: Self::Command,
        now: DateTime<Utc>,
    ) -> Result<Vec<Self::Event>, DomainError>;

    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Whose personal data `events`, about to be appended to a stream in `state`, carry
    /// (R-C8): their fields listed in [`crate::personal::fields`] are sealed with that
    /// customer's key. `None` for aggregates that hold no customer's data.
    fn data_subject(_state: &Self::State, _events: &[Self::Event]) -> Option<CustomerId> {
        None
    }

    /// The state after all `events`, from scratch.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::State::default(), Self::evolve)
    }
}
