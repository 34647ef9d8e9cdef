//! The simulator's half of the loop: virtual time, seeded task order, and the
//! event trace. Only a core built by `coil::sim::Builder` has one; the real
//! drivers never touch this file's code beyond one `Option` check per tick.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use coil_arch::sim::SplitMix64;

use crate::task::raw::TaskRef;

/// What happened, in a [`TraceEvent`](crate::sim::TraceEvent).
pub(crate) use crate::sim::EventKind;
use crate::sim::TraceEvent;

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

/// Runs `f` on the simulator driver of the loop running on this thread;
/// `None` when there is none (no loop, or a real driver).
pub(crate) fn with_driver<R>(f: impl FnOnce(&mut coil_arch::sim::SimDriver) -> R) -> Option<R> {
    super::with_core(|c| c.and_then(|c| c.with_sim_driver(f)))
}

/// A socket call on a virtual fd: `EBADF` when no simulation runs here (the
/// fd outlived its simulation).
pub(crate) fn socket_call<R>(
    f: impl FnOnce(&mut coil_arch::sim::SimDriver) -> std::io::Result<R>,
) -> std::io::Result<R> {
    with_driver(f).unwrap_or_else(|| Err(std::io::Error::from_raw_os_error(libc::EBADF)))
}
