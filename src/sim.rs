//! The deterministic simulator: run a program on a virtual clock, with a
//! seeded task order (and, for I/O, an in-memory network with injectable
//! faults), so that a failure found once can be replayed exactly.
//!
//! ```
//! use std::time::Duration;
//! use coil::time::{sleep, Instant};
//!
//! let out = coil::sim::Builder::new().seed(7).run(async {
//!     let start = Instant::now();
//!     sleep(Duration::from_secs(3 * 3600)).await; // takes microseconds of real time
//!     start.elapsed()
//! });
//! assert!(out >= Duration::from_secs(3 * 3600));
//! ```
//!
//! # What is simulated
//!
//! - **Time.** Inside a simulation [`crate::time::Instant::now`] is the virtual
//!   time. It only moves when every task is idle (it then jumps straight to
//!   the next timer deadline or I/O event) and by one microsecond per task
//!   poll (so a task that spins on `yield_now` waiting for a deadline still
//!   gets there). Hours of timeouts take milliseconds.
//! - **Scheduling.** Each tick, the tasks queued when the tick began are
//!   polled in an order drawn from a SplitMix64 stream seeded with the seed;
//!   each is still polled at most once per tick.
//! - **Deadlock.** When no task is runnable, no timer is pending and no I/O
//!   can complete, but the main future has not finished, the simulation
//!   panics with a message naming the seed (after waiting 250 ms of real
//!   time for a wake from another thread, such as the blocking pool).
//! - **Trace.** Every poll, task completion, I/O completion and clock jump is
//!   hashed into [`Report::hash`] (and kept in [`Report::trace`] with
//!   [`Builder::record_trace`]). Same seed, same program: same trace.
//!
//! # Replaying a seed
//!
//! When the future given to [`Builder::run`] panics (an assertion failed, a
//! deadlock was found), the simulation prints
//! `coil::sim: failed with seed N; replay with COIL_SIM_SEED=N` on stderr.
//! Setting `COIL_SIM_SEED` overrides the seed of every simulation the process
//! builds ([`Builder::effective_seed`]), so rerunning the failing test with
//! it reproduces the same run, poll for poll.
//!
//! # Limits
//!
//! Only what runs on the loop's thread is deterministic: work on other
//! threads (the blocking pool, `Handle::spawn`) arrives whenever it arrives.
//! The in-memory network covers TCP and UDP over IP addresses; other fds
//! (files, Unix sockets) are not simulated.
//!
//! This module is the public side (the [`Builder`], the [`Report`], the seed
//! and its environment variable); the loop's half (virtual clock, seeded order, trace recording) lives with
//! the loop.

use std::future::Future;
use std::time::Duration;

use coil_arch::Driver;
pub use coil_arch::sim::Faults;
use coil_arch::sim::SimConfig;

use crate::rt::Runtime;
use crate::rt::core::Core;
use crate::rt::sim::SimState;
pub use crate::rt::sim::{EventKind, TraceEvent};

/// The environment variable that overrides every simulation's seed.
pub const SEED_ENV: &str = "COIL_SIM_SEED";

/// Builds and runs a simulation. See the [module docs](self).
#[derive(Debug, Clone)]
#[must_use = "a sim Builder does nothing until `run` is called"]
pub struct Builder {
    seed: u64,
    faults: Faults,
    min_latency: Duration,
    max_latency: Duration,
    record: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Seed 0, no faults, I/O latencies between 5 µs and 500 µs, trace hashed
    /// but not recorded.
    pub fn new() -> Builder {
        let d = SimConfig::default();
        Builder {
            seed: 0,
            faults: Faults::default(),
            min_latency: d.min_latency,
            max_latency: d.max_latency,
            record: false,
        }
    }

    /// The seed of every random choice (task order, latencies, faults).
    /// `COIL_SIM_SEED` overrides it.
    pub fn seed(mut self, seed: u64) -> Builder {
        self.seed = seed;
        self
    }

    /// Faults the in-memory network injects.
    pub fn faults(mut self, faults: Faults) -> Builder {
        self.faults = faults;
        self
    }

    /// The range I/O latencies are drawn from (uniformly).
    pub fn latency(mut self, min: Duration, max: Duration) -> Builder {
        self.min_latency = min;
        self.max_latency = max.max(min);
        self
    }

    /// Keep every trace event in [`Report::trace`] (the hash is always kept).
    pub fn record_trace(mut self, on: bool) -> Builder {
        self.record = on;
        self
    }

    /// The seed a run will use: `COIL_SIM_SEED` (decimal, or hex with `0x`)
    /// if set, else the one given to [`Builder::seed`].
    ///
    /// # Panics
    ///
    /// If `COIL_SIM_SEED` is set but is not a number.
    pub fn effective_seed(&self) -> u64 {
        env_seed().unwrap_or(self.seed)
    }

    /// Runs `future` to completion in a new simulation and returns its output.
    ///
    /// # Panics
    ///
    /// Resumes a panic of `future` (after printing the seed), panics on a
    /// deadlock, and if called inside a running loop.
    #[track_caller]
    pub fn run<F: Future>(&self, future: F) -> F::Output {
        self.run_traced(future).0
    }

    /// Like [`Builder::run`], also returning the [`Report`] of the run.
    ///
    /// # Panics
    ///
    /// As [`Builder::run`].
    #[track_caller]
    pub fn run_traced<F: Future>(&self, future: F) -> (F::Output, Report) {
        let (rt, seed) = self.runtime();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(future))) {
            Ok(out) => {
                let report = report(&rt);
                drop(rt);
                (out, report)
            }
            Err(panic) => {
                eprintln!("coil::sim: failed with seed {seed}; replay with {SEED_ENV}={seed}");
                drop(rt);
                std::panic::resume_unwind(panic)
            }
        }
    }
}

impl Builder {
    /// The simulator runtime a run uses, and its seed.
    #[track_caller]
    pub(crate) fn runtime(&self) -> (Runtime, u64) {
        let seed = self.effective_seed();
        let config = SimConfig {
            seed,
            faults: self.faults,
            min_latency: self.min_latency,
            max_latency: self.max_latency,
        };
        let driver = match Driver::sim(config) {
            Ok(d) => d,
            Err(e) => panic!("coil::sim could not start: {e}"),
        };
        let info = crate::rt::DriverInfo {
            kind: driver.kind(),
            fallback: None,
        };
        let core = Core::new(driver, 61).with_sim(SimState::new(seed, self.record));
        (Runtime::from_parts(core, info), seed)
    }
}

/// The report of a simulator runtime's run so far.
pub(crate) fn report(rt: &Runtime) -> Report {
    let sim = rt.core().sim.as_ref().expect("a simulator runtime");
    Report {
        seed: sim.seed,
        hash: sim.hash(),
        events: sim.events(),
        elapsed: sim.now.get(),
        trace: sim.take_trace(),
    }
}

fn env_seed() -> Option<u64> {
    let v = std::env::var(SEED_ENV).ok()?;
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    match parsed {
        Ok(s) => Some(s),
        Err(e) => panic!("{SEED_ENV}={v:?} is not a seed (a u64, decimal or 0x-hex): {e}"),
    }
}

/// What a simulation did: its seed, trace hash and virtual duration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The seed used (after `COIL_SIM_SEED`).
    pub seed: u64,
    /// A hash of every trace event: equal for two runs of the same program
    /// with the same seed.
    pub hash: u64,
    /// How many trace events there were.
    pub events: u64,
    /// Virtual time when the main future finished.
    pub elapsed: Duration,
    /// The events themselves, if [`Builder::record_trace`] was on.
    pub trace: Vec<TraceEvent>,
}

/// Virtual time since the simulation running on this thread started; `None`
/// outside a simulation.
pub fn elapsed() -> Option<Duration> {
    crate::rt::with_core(|c| c.and_then(|c| c.sim.as_ref().map(|s| s.now.get())))
}

/// The seed of the simulation running on this thread; `None` outside one.
pub fn seed() -> Option<u64> {
    crate::rt::with_core(|c| c.and_then(|c| c.sim.as_ref().map(|s| s.seed)))
}

/// Virtual sockets still open in the simulation running on this thread
/// (closed sockets are released when the loop next goes idle, so check after
/// a `sleep`); `None` outside a simulation. For leak checks.
pub fn open_sockets() -> Option<usize> {
    crate::rt::sim::with_driver(|d| d.open_sockets())
}
