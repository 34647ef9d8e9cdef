//! What the code written by `#[coil::main]` and `#[coil::test]` (crate
//! `coil-macros`, `macros/`) calls: build the runtime an attribute asks for
//! and run the body on it; and what `select!` needs from coil-macros
//! ([`select_pattern!`]). Not API: hidden from the docs, it changes with the
//! macros.

use std::future::Future;
use std::process::{ExitCode, Termination};

use crate::Runtime;
use crate::runtime::DriverChoice;

/// A `select!` branch's pattern without `ref`, `mut` and `&`, to test a
/// reference to the branch's output (coil-macros, `pattern.rs`).
pub use coil_macros::__select_pattern as select_pattern;

/// Runs `future` on a new runtime with `driver`, or, for `None`, as
/// [`crate::run`] does (`COIL_DRIVER`, else auto).
///
/// # Panics
///
/// If the driver cannot start (a forced driver never falls back), and with
/// the future's panic.
#[track_caller]
pub fn run<F: Future>(driver: Option<DriverChoice>, future: F) -> F::Output {
    let Some(choice) = driver else {
        return crate::run(future);
    };
    let rt = Runtime::builder()
        .driver(choice)
        .build()
        .unwrap_or_else(|e| {
            panic!(
                "coil: the {} driver the attribute asks for could not start: {e}",
                name(choice)
            )
        });
    rt.block_on(future)
}

/// Runs `future` in a simulation (`coil::sim`), with `seed` if given.
///
/// # Panics
///
/// As [`crate::sim::Builder::run`].
#[track_caller]
pub fn run_sim<F: Future>(seed: Option<u64>, future: F) -> F::Output {
    let mut sim = crate::sim::Builder::new();
    if let Some(seed) = seed {
        sim = sim.seed(seed);
    }
    sim.run(future)
}

/// The io_uring test of `#[coil::test(drivers = "all")]`: runs the body on an
/// io_uring runtime, or, when io_uring cannot start here, says so on stderr
/// and skips (the test passes without running). Under `COIL_DRIVER=uring` a
/// missing io_uring fails the test instead.
///
/// # Panics
///
/// With the body's panic, and as said above.
#[track_caller]
pub fn run_uring_or_skip<F: Future>(test: &str, body: impl FnOnce() -> F) -> Outcome<F::Output> {
    match Runtime::builder().driver(DriverChoice::Uring).build() {
        Ok(rt) => Outcome::Ran(rt.block_on(body())),
        Err(e) if DriverChoice::from_env() == Ok(Some(DriverChoice::Uring)) => {
            panic!("{test}: io_uring could not start ({e}) and COIL_DRIVER=uring requires it")
        }
        Err(e) => {
            eprintln!(
                "{test}: skipped, io_uring could not start here ({e}); \
                 COIL_DRIVER=uring makes this a failure"
            );
            Outcome::Skipped
        }
    }
}

/// [`run_uring_or_skip`] for a `#[should_panic]` test: where io_uring cannot
/// start, the skip is a panic whose message holds `expected` (the
/// attribute's `expected` text, or empty), since a `should_panic` test that
/// returns fails.
///
/// # Panics
///
/// With the body's panic; with `expected` when skipping; as
/// [`run_uring_or_skip`] under `COIL_DRIVER=uring`.
#[track_caller]
pub fn run_uring_or_panic_skip<F: Future<Output = ()>>(
    test: &str,
    body: impl FnOnce() -> F,
    expected: &str,
) {
    if let Outcome::Skipped = run_uring_or_skip(test, body) {
        panic!("{expected} (skipped: io_uring could not start here, the body did not run)");
    }
}

/// What a skippable test returns: its own result, or a skip (success).
#[derive(Debug)]
pub enum Outcome<T> {
    /// The body ran and returned this.
    Ran(T),
    /// The driver is not available here; the body did not run.
    Skipped,
}

impl<T: Termination> Termination for Outcome<T> {
    fn report(self) -> ExitCode {
        match self {
            Outcome::Ran(result) => result.report(),
            Outcome::Skipped => ExitCode::SUCCESS,
        }
    }
}

fn name(choice: DriverChoice) -> &'static str {
    match choice {
        DriverChoice::Auto => "auto",
        DriverChoice::Uring => "io_uring",
        DriverChoice::Epoll => "epoll",
    }
}

/// `gather!`/`join!` and `select!`: one poll of the macro's futures inside
/// the await tree's node `what` (debug mode's `Handle::dump`; nothing when
/// it is off).
#[inline(always)]
pub fn await_node<T>(
    what: &'static str,
    poll: impl FnOnce() -> std::task::Poll<T>,
) -> std::task::Poll<T> {
    crate::rt::debug::within(|| crate::rt::Awaiting::Combinator(what), poll)
}
