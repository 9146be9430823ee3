//! A stateful, model-based property test of issue 15's promises ("prove the class"):
//! random sequences of commands, hostile and valid-extreme inputs included, drive a real
//! server over a real socket on a real SQLite file and a real PostgreSQL database, and
//! after every step and at the end check what must hold whatever the sequence:
//! - no call panics the server or ends in a code a caller never gets; a refusal leaves
//!   the log where it was; a stated time outside the time domain is INVALID_ARGUMENT
//!   naming its field (R-T4);
//! - no projection stops, and at the end the read models equal a rebuild from the log,
//!   with rebuilds racing the writes on the way;
//! - a retried request gets its first answer and writes nothing; its key with another
//!   body is ALREADY_EXISTS `REQUEST_ID_REUSED`;
//! - every acknowledged write is in the log at its position under its key and in the
//!   reads at `min_position` (after the racing rebuilds end: docs/security.md);
//! - case numbers are unique and in the case year of their filing, across New Year on
//!   the injected clock (R-P1); every hash chain verifies;
//! - a departure, alone or racing an assignment to the leaver, leaves the leaver owning
//!   nothing, and nothing is assigned to someone who has left (R-C3).
//!
//! The model is minimal: what exists, who left, what was acknowledged; it predicts
//! only what must be refused, never what the domain decides.
//!
//! Bounded for CI: `KEFU_STATEFUL_CASES` sequences (default 5) of up to
//! `KEFU_STATEFUL_STEPS` steps (default 40) per backend; e.g.
//! `KEFU_STATEFUL_CASES=500 cargo test -p kefu-tests --test integrity stateful` for a
//! long run (docs/security.md). A failure shrinks to a short sequence of readable steps.

mod calls;
mod checks;
mod play;
mod steps;
mod world;

use kefu_testkit::Backend;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn setting(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run(backend: Backend) {
    let cases = setting("KEFU_STATEFUL_CASES", 5);
    let steps = usize::try_from(setting("KEFU_STATEFUL_STEPS", 40)).expect("a step count");
    let config =
        Config { cases, failure_persistence: None, max_shrink_iters: 256, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let sequences = proptest::collection::vec(steps::step(), 1..=steps);
    let outcome = runner.run(&sequences, |sequence| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        runtime.block_on(async {
            let Some(mut world) = world::World::new(backend).await else { return };
            world.seed().await;
            for (n, step) in sequence.iter().enumerate() {
                world.step = n;
                world.play(step).await;
            }
            world.final_checks().await;
            eprintln!("{}", world.summary());
            world.app.stop().await;
        });
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[test]
fn sqlite_random_command_sequences_keep_every_promise() {
    run(Backend::Sqlite);
}

#[test]
fn postgres_random_command_sequences_keep_every_promise() {
    run(Backend::Postgres);
}
