//! Per-loop counters (issue 17 item 4): [`LoopMetrics`], what
//! [`Handle::metrics`](crate::Handle::metrics) returns.
//!
//! This module owns the counters' two homes. The loop counts in plain
//! `Cell`s of its `Core` ([`Counters`]: no atomic read-modify-write on the
//! hot path, and task polls are counted per tick, not per poll); each park
//! copies them into the runtime's `Shared` ([`Published`], relaxed atomic
//! stores), where any thread can read them; so does the end of each
//! `block_on`. A reader therefore sees the loop as of its last park (or
//! `block_on`'s return), or, on the loop thread itself, as of now
//! (`Handle::metrics` publishes first there).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A snapshot of one event loop's counters, from
/// [`Handle::metrics`](crate::Handle::metrics). Counts are totals since the
/// runtime was built.
///
/// ```
/// let rt = coil::Runtime::new().unwrap();
/// rt.block_on(async {
///     coil::spawn(async {}).await.unwrap();
///     let m = coil::Handle::current().metrics();
///     assert!(m.tasks_spawned >= 1 && m.polls >= 1);
/// });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopMetrics {
    /// Task polls (the `block_on` future's polls are not counted).
    pub polls: u64,
    /// I/O operations handed to the driver (including those it finished at
    /// once, as epoll does when the fd is ready).
    pub ops_submitted: u64,
    /// I/O operations whose result came back (at once or later), including
    /// those whose future had been dropped.
    pub ops_completed: u64,
    /// Cancellations sent to the driver for ops dropped in flight.
    pub ops_cancelled: u64,
    /// Times the loop polled its driver for events (blocking or not).
    pub parks: u64,
    /// Time spent blocked in the driver waiting for events (parks with a
    /// zero timeout, taken between busy ticks, are not timed).
    pub park_time: Duration,
    /// Timers put on the wheel (sleeps, timeouts, intervals).
    pub timers_armed: u64,
    /// Tasks in the run queue when the snapshot was published.
    pub run_queue_depth: u64,
    /// Most tasks seen in the run queue at the start of a tick.
    pub run_queue_max: u64,
    /// Tasks spawned onto this loop, from it or from other threads.
    pub tasks_spawned: u64,
    /// Tasks spawned and not yet completed, when the snapshot was published.
    pub tasks_live: u64,
}

/// The loop thread's counters (in `Core`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) polls: Cell<u64>,
    pub(crate) ops_submitted: Cell<u64>,
    pub(crate) ops_completed: Cell<u64>,
    pub(crate) ops_cancelled: Cell<u64>,
    pub(crate) parks: Cell<u64>,
    pub(crate) park_nanos: Cell<u64>,
    pub(crate) timers_armed: Cell<u64>,
    pub(crate) run_queue_max: Cell<u64>,
    pub(crate) tasks_spawned: Cell<u64>,
}

/// `cell += n`.
#[inline(always)]
pub(crate) fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

/// The published copy (in `Shared`), one relaxed atomic per field: each is
/// a total on its own, no reader needs two of them to agree.
#[derive(Debug, Default)]
pub(crate) struct Published {
    polls: AtomicU64,
    ops_submitted: AtomicU64,
    ops_completed: AtomicU64,
    ops_cancelled: AtomicU64,
    parks: AtomicU64,
    park_nanos: AtomicU64,
    timers_armed: AtomicU64,
    run_queue_depth: AtomicU64,
    run_queue_max: AtomicU64,
    tasks_spawned: AtomicU64,
    tasks_live: AtomicU64,
}

impl Published {
    /// Copy the loop's counters, with the queue depth and live task count
    /// of this moment.
    pub(crate) fn publish(&self, c: &Counters, run_queue_depth: usize, tasks_live: usize) {
        self.polls.store(c.polls.get(), Relaxed);
        self.ops_submitted.store(c.ops_submitted.get(), Relaxed);
        self.ops_completed.store(c.ops_completed.get(), Relaxed);
        self.ops_cancelled.store(c.ops_cancelled.get(), Relaxed);
        self.parks.store(c.parks.get(), Relaxed);
        self.park_nanos.store(c.park_nanos.get(), Relaxed);
        self.timers_armed.store(c.timers_armed.get(), Relaxed);
        self.run_queue_depth.store(run_queue_depth as u64, Relaxed);
        self.run_queue_max.store(c.run_queue_max.get(), Relaxed);
        self.tasks_spawned.store(c.tasks_spawned.get(), Relaxed);
        self.tasks_live.store(tasks_live as u64, Relaxed);
    }

    /// The last published values.
    pub(crate) fn read(&self) -> LoopMetrics {
        LoopMetrics {
            polls: self.polls.load(Relaxed),
            ops_submitted: self.ops_submitted.load(Relaxed),
            ops_completed: self.ops_completed.load(Relaxed),
            ops_cancelled: self.ops_cancelled.load(Relaxed),
            parks: self.parks.load(Relaxed),
            park_time: Duration::from_nanos(self.park_nanos.load(Relaxed)),
            timers_armed: self.timers_armed.load(Relaxed),
            run_queue_depth: self.run_queue_depth.load(Relaxed),
            run_queue_max: self.run_queue_max.load(Relaxed),
            tasks_spawned: self.tasks_spawned.load(Relaxed),
            tasks_live: self.tasks_live.load(Relaxed),
        }
    }
}
