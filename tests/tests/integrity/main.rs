//! Integrity (issue 15) over a real socket on both backends: `storage`, races and
//! failures (case numbers across midnight on 31 December, filings beside a busy customer,
//! a projection that stops alone); `domain`, what callers state (times in one time
//! domain, `as_of` at the edges, reused request ids, archiving and callbacks, erasure
//! never half-done); `departures`, departures planned whole and leaving the leaver
//! nothing; and `stateful`, random sequences of commands checking every promise after
//! each step (the class, not the instances).

mod departures;
mod domain;
mod stateful;
mod storage;
