//! The deterministic simulator backend: a virtual clock, a seeded random
//! source, and (see [`net`]) an in-memory network.
//!
//! Chosen only by `coil::sim::Builder` (never by `COIL_DRIVER`): built with
//! [`Driver::sim`](crate::Driver::sim) and reached with
//! [`Driver::as_sim`](crate::Driver::as_sim).
//!
//! # Time
//!
//! The driver never reads a real clock. It keeps a virtual time ([`SimDriver::now`],
//! a [`Duration`] since the simulation started) that only the runtime moves, with
//! [`SimDriver::advance_to`]. Every completion is scheduled at a virtual instant
//! (now plus a seeded latency); `park` hands over the ones that are due and never
//! blocks on them. [`SimDriver::next_event`] tells the runtime when the next one is
//! due, so that when every task is idle it can jump the clock straight there.
//!
//! # Determinism
//!
//! Every random choice (latencies, faults, ports) comes from one SplitMix64 stream
//! seeded by [`SimConfig::seed`]; nothing depends on addresses, hash order or the
//! real clock. Two drivers built with the same configuration and fed the same calls
//! produce the same completions at the same virtual times.
//!
//! # Drop
//!
//! The simulator touches an op's memory only inside `submit`, `park` and
//! `cancel` (the in-memory network copies into and out of it there), so ops
//! still pending when the driver is dropped are forgotten and nothing writes
//! them afterwards.
//!
//! # Remote wakes
//!
//! The unpark eventfd is real: other threads (the blocking pool, a `Handle`) can
//! still wake the loop. `park` with a non-zero timeout waits for it in real time;
//! the runtime only does that when nothing in the simulation can make progress.
//!
//! # Files
//!
//! - `mod.rs`: the driver's state and the fuzzing hooks.
//! - `config.rs`: [`SimConfig`] and [`Faults`]; `rng.rs`: [`SplitMix64`].
//! - `clock.rs`: the virtual clock and the queues of what is due when.
//! - `driver.rs`: what [`Driver`](crate::Driver) calls: submit, cancel, park, drain.
//! - `model.rs`: the network model: what each operation does to the sockets of [`net`].
//! - `api.rs`: the socket calls (`socket`, `bind`, `listen`, ...) the runtime makes on
//!   virtual fds.

use std::collections::BTreeMap;
use std::io;
#[cfg(fuzzing)]
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::op::{Completion, OpPtr};
use crate::unpark;

mod api;
mod clock;
mod config;
mod driver;
mod model;
pub mod net;
mod rng;
use net::{Event, Net};

pub use config::{Faults, SimConfig};
pub use rng::SplitMix64;

/// The first virtual fd number. Real fd numbers never reach it (the kernel caps
/// `RLIMIT_NOFILE` at `fs.nr_open`, at most `2^30 - 8`), so a virtual fd can never
/// alias a real one.
pub const VIRTUAL_FD_BASE: i32 = 1 << 30;

/// Whether `fd` is a simulator socket rather than a kernel fd.
#[inline]
pub fn is_virtual_fd(fd: std::os::fd::RawFd) -> bool {
    fd >= VIRTUAL_FD_BASE
}

/// The simulator backend. See the module docs.
pub struct SimDriver {
    config: SimConfig,
    now: Duration,
    rng: SplitMix64,
    /// Tie-breaker for events due at the same instant: scheduling order.
    seq: u64,
    /// Completions decided, keyed by (due time, seq).
    due: BTreeMap<(Duration, u64), Completion>,
    /// Network events, keyed by (time, seq).
    events: BTreeMap<(Duration, u64), Event>,
    /// Submitted ops not yet decided, in submission order: seq -> op.
    pending: BTreeMap<u64, Pending>,
    /// user_data -> its key in `pending`.
    by_key: BTreeMap<u64, u64>,
    net: Net,
    shared: Arc<unpark::Shared>,
}

struct Pending {
    user_data: u64,
    op: OpPtr,
    /// Not tried before this time (an injected EAGAIN).
    not_before: Duration,
}

/// What trying an op gave.
enum Attempt {
    Done(i32),
    Blocked,
}

fn err(e: i32) -> Attempt {
    Attempt::Done(-e)
}

fn io_err(e: &io::Error) -> Attempt {
    err(e.raw_os_error().unwrap_or(libc::EIO))
}

impl std::fmt::Debug for SimDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDriver")
            .field("now", &self.now)
            .field("due", &self.due.len())
            .field("pending", &self.pending.len())
            .field("sockets", &self.net.sockets.len())
            .finish_non_exhaustive()
    }
}

/// Hooks for coil's op-lifecycle fuzz target (`fuzz/src/op_lifecycle.rs`,
/// through `coil::fuzz`), which decides when the "kernel" acts instead of
/// letting `park` do it all at once.
#[cfg(fuzzing)]
impl SimDriver {
    /// Decides every op that can complete now (what `park` does first), but
    /// hands no completion over: they wait, decided, for the next `park`.
    pub fn fuzz_decide(&mut self) {
        self.step();
    }

    /// `bytes` arrive on stream `fd` now, as if its peer had sent them.
    /// Returns false (and drops them) if `fd` is not an open, connected stream.
    pub fn fuzz_arrive(&mut self, fd: RawFd, bytes: &[u8]) -> bool {
        match self.net.stream(fd) {
            Some(s) if !s.reset => {
                s.rx.extend(bytes);
                true
            }
            _ => false,
        }
    }

    /// The `user_data` of every op submitted and not yet handed over by
    /// `park` (undecided, or decided and waiting), sorted.
    pub fn fuzz_in_flight(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = self.pending.values().map(|p| p.user_data).collect();
        keys.extend(self.due.values().map(|c| c.user_data));
        keys.sort_unstable();
        keys
    }
}
