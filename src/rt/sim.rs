//! The simulator's half of the loop: virtual time, seeded task order, and the
//! event trace. Only a core built by `coil::sim::Builder` has one; the real
//! drivers never touch this file's code beyond one `Option` check per tick.
//!
//! Owns [`SimState`], the `impl Core` hooks that poll a tick's batch in seeded
//! order and move the virtual clock when the loop is idle, and the trace
//! types [`TraceEvent`] and [`EventKind`] (public as `coil::sim::TraceEvent`
//! and `coil::sim::EventKind`; `crate::sim`, the public builder, sits on top
//! of this file and re-exports them).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use coil_arch::sim::SplitMix64;

use super::core::Core;
use crate::task::raw::TaskRef;

/// Virtual cost of one task poll: tasks that spin (yield in a loop while they
/// wait for a deadline) still see the clock move.
pub(crate) const POLL_COST: Duration = Duration::from_micros(1);

/// Per-simulation state of a core.
pub(crate) struct SimState {
    pub(crate) seed: u64,
    /// Virtual time since the core's origin.
    pub(crate) now: Cell<Duration>,
    rng: RefCell<SplitMix64>,
    /// Scratch for the tick's batch of tasks, shuffled.
    pub(super) batch: RefCell<Vec<TaskRef>>,
    /// Task ids in order of first appearance: stable across runs (process task
    /// ids are not).
    ids: RefCell<HashMap<u64, u32>>,
    hash: Cell<u64>,
    events: Cell<u64>,
    record: bool,
    trace: RefCell<Vec<TraceEvent>>,
}

impl SimState {
    pub(crate) fn new(seed: u64, record: bool) -> SimState {
        SimState {
            seed,
            now: Cell::new(Duration::ZERO),
            rng: RefCell::new(SplitMix64::new(seed)),
            batch: RefCell::new(Vec::new()),
            ids: RefCell::new(HashMap::new()),
            hash: Cell::new(0xCBF2_9CE4_8422_2325),
            events: Cell::new(0),
            record,
            trace: RefCell::new(Vec::new()),
        }
    }

    /// Fisher-Yates with the scheduling stream.
    pub(crate) fn shuffle(&self, tasks: &mut [TaskRef]) {
        let mut rng = self.rng.borrow_mut();
        for i in (1..tasks.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            tasks.swap(i, j);
        }
    }

    /// The simulation-local number of a task (1, 2, ... in order of first
    /// appearance in the trace).
    pub(crate) fn local_id(&self, task: TaskRef) -> u32 {
        let id = task.id().as_u64();
        let mut ids = self.ids.borrow_mut();
        let next = ids.len() as u32 + 1;
        *ids.entry(id).or_insert(next)
    }

    pub(crate) fn record(&self, task: u32, kind: EventKind) {
        let at = self.now.get();
        let mut h = self.hash.get();
        for word in [at.as_nanos() as u64, u64::from(task), kind.code()] {
            h = (h ^ word).wrapping_mul(0x0000_0100_0000_01B3);
            h ^= h >> 29;
        }
        self.hash.set(h);
        self.events.set(self.events.get() + 1);
        if self.record {
            self.trace.borrow_mut().push(TraceEvent { at, task, kind });
        }
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash.get()
    }

    pub(crate) fn events(&self) -> u64 {
        self.events.get()
    }

    pub(crate) fn take_trace(&self) -> Vec<TraceEvent> {
        std::mem::take(&mut *self.trace.borrow_mut())
    }
}

/// One event of a simulation's trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceEvent {
    /// Virtual time.
    pub at: Duration,
    /// The task, numbered from 1 in order of first poll within this
    /// simulation (0: none, for I/O and clock events).
    pub task: u32,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of [`TraceEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// The task was polled.
    Poll,
    /// The task finished (returned, panicked or was cancelled).
    Complete,
    /// An I/O completion was delivered: (op key, result).
    Io(u64, i32),
    /// The clock jumped (nothing was runnable).
    Advance,
}

impl EventKind {
    pub(crate) fn code(self) -> u64 {
        match self {
            EventKind::Poll => 1,
            EventKind::Complete => 2,
            EventKind::Io(ud, res) => 3 ^ ud.rotate_left(8) ^ (u64::from(res as u32) << 40),
            EventKind::Advance => 4,
        }
    }
}

/// Runs `f` on the simulator driver of the loop running on this thread;
/// `None` when there is none (no loop, or a real driver). For the
/// simulator's own API (`coil::sim::open_sockets`) and its fuzz hooks only:
/// `net` and `op` never ask which driver runs (they reach it through
/// `rt::with_driver` and `coil_arch::sock`).
pub(crate) fn with_driver<R>(f: impl FnOnce(&mut coil_arch::sim::SimDriver) -> R) -> Option<R> {
    super::with_core(|c| c.and_then(|c| c.with_sim_driver(f)))
}

/// The simulator hooks of the loop.
impl Core {
    /// Makes this a simulator core (its driver must be the sim driver).
    pub(crate) fn with_sim(mut self, sim: SimState) -> Core {
        self.sim = Some(Box::new(sim));
        self
    }

    /// Runs `f` on the simulator driver; `None` for a real core.
    pub(crate) fn with_sim_driver<R>(
        &self,
        f: impl FnOnce(&mut coil_arch::sim::SimDriver) -> R,
    ) -> Option<R> {
        self.sim.as_ref()?;
        self.driver.borrow_mut().as_sim().map(f)
    }

    /// The virtual time of a simulator core; `None` for a real one.
    #[inline]
    pub(crate) fn virtual_now(&self) -> Option<std::time::Instant> {
        self.sim.as_ref().map(|sim| self.origin + sim.now.get())
    }

    /// The tick's first `n` queued tasks, polled in a seeded random order
    /// (each still at most once per tick).
    #[cold]
    pub(super) fn sim_poll_batch(&self, sim: &SimState, n: usize) {
        let mut batch = std::mem::take(&mut *sim.batch.borrow_mut());
        batch.extend(std::iter::from_fn(|| self.run_queue.pop_front()).take(n));
        sim.shuffle(&mut batch);
        for task in batch.drain(..) {
            let id = sim.local_id(task);
            sim.record(id, EventKind::Poll);
            if self.run_task(task) {
                sim.record(id, EventKind::Complete);
            }
        }
        *sim.batch.borrow_mut() = batch;
        // One more for the tick itself (the main future may be what spins).
        sim.now.set(sim.now.get() + POLL_COST * (n as u32 + 1));
        if let Some(d) = self.driver.borrow_mut().as_sim() {
            d.advance_to(sim.now.get());
        }
    }

    /// Nothing is runnable: deliver due I/O, else jump the virtual clock to
    /// the next timer or I/O event, else (after a real-time grace period for
    /// wakes from other threads) report the deadlock.
    #[cold]
    pub(super) fn sim_idle(&self, sim: &SimState) {
        // Relative timers started this tick are filed at the current
        // virtual time before the clock may jump (rt/timers.rs).
        self.file_pending_timers();
        self.park(Some(Duration::ZERO));
        if self.has_work() {
            return;
        }
        let timer = self
            .wheel
            .borrow()
            .next_expiration()
            .map(super::timers::tick_offset);
        let io = self
            .driver
            .borrow_mut()
            .as_sim()
            .and_then(|d| d.next_event());
        let next = match (timer, io) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = next {
            let t = t.max(sim.now.get());
            sim.now.set(t);
            if let Some(d) = self.driver.borrow_mut().as_sim() {
                d.advance_to(t);
            }
            sim.record(0, EventKind::Advance);
            return;
        }
        // Only another thread (the blocking pool, a Handle) can help now.
        const GRACE: Duration = Duration::from_millis(250);
        self.park(Some(GRACE));
        if self.has_work() {
            return;
        }
        panic!(
            "coil::sim: deadlock at virtual time {:?}: no task is runnable, no timer is pending \
             and no I/O can complete, but the main future has not finished ({} tasks alive, \
             {} I/O ops waiting); seed {} (replay with COIL_SIM_SEED={})",
            sim.now.get(),
            self.owned.len(),
            self.home.in_flight(),
            sim.seed,
            sim.seed
        );
    }
}
