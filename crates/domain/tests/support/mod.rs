//! Given/when/then for aggregates, and builders for the people and cases of the tests.
#![allow(dead_code)] // each test binary uses its own part of the kit

use chrono::{DateTime, TimeZone, Utc};
use kefu_domain::{Aggregate, DomainError, StaffId, Text};

/// A fixed clock: 2026-03-10 09:00 UTC plus `hours`.
pub fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap() + chrono::TimeDelta::hours(hours)
}

pub fn staff(code: &str) -> StaffId {
    StaffId::new(code).unwrap()
}

pub fn text(value: &str) -> Text {
    Text::new("text", value).unwrap()
}

/// Starts a scenario from the events already in the stream.
pub fn given<A: Aggregate>(history: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let history: Vec<A::Event> = history.into_iter().collect();
    Given { state: A::fold(&history), now: at(1) }
}

pub struct Given<A: Aggregate> {
    state: A::State,
    now: DateTime<Utc>,
}

impl<A: Aggregate> Given<A> {
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    pub fn when(self, command: A::Command) -> Then<A> {
        let result = A::decide(&self.state, command, self.now);
        Then { state: self.state, result }
    }
}

pub struct Then<A: Aggregate> {
    state: A::State,
    result: Result<Vec<A::Event>, DomainError>,
}

impl<A: Aggregate> Then<A>
where
    A::Event: PartialEq,
{
    #[track_caller]
    pub fn then(self, expected: Vec<A::Event>) -> A::State {
        let events = self.result.unwrap_or_else(|error| panic!("refused: {error}"));
        assert_eq!(events, expected);
        events.iter().fold(self.state, A::evolve)
    }

    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        match self.result {
            Ok(events) => panic!("expected {expected:?}, got events {events:?}"),
            Err(error) => assert_eq!(error, expected),
        }
    }

    /// The events, for assertions on a part of them; the state after them.
    #[track_caller]
    pub fn events(self) -> (Vec<A::Event>, A::State) {
        let events = self.result.unwrap_or_else(|error| panic!("refused: {error}"));
        let state = events.iter().fold(self.state, A::evolve);
        (events, state)
    }
}
