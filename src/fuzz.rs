//! Fuzzing hooks, compiled only under `cfg(fuzzing)` and hidden from the
//! docs: **not API**, free to change with the fuzz crate.
//!
//! The harnesses (byte decoding, the models, the comparisons) live in the
//! fuzz crate (`fuzz/src/`); this module only exposes what they cannot reach
//! through coil's public API, like tokio's `fuzz` hooks: the internal
//! structures a target drives directly (the timer wheel, the task state
//! word, the owned task list, the waiter list) and a few handles on a
//! running loop (its scheduling and the simulator's "kernel", driven by
//! hand). No hook holds a model or decodes input.

use std::any::Any;
use std::os::fd::RawFd;
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::Duration;

use crate::rt::{Runtime, with_core};
use crate::sim::{Builder, Report};

/// The timer wheel (`rt/wheel.rs`) and its invariant walk
/// (`Wheel::check_invariants`), for the `timer_wheel` target.
pub mod wheel {
    pub use crate::rt::wheel::{Key, MAX_DURATION, Wheel};
}

/// The task state word (`task/state.rs`): its flags, transitions and their
/// outcomes, for the `task_state` target.
pub mod state {
    pub use crate::task::state::*;
}

/// The owned task list (`task/list.rs`) threaded through real task
/// allocations, for the `intrusive_list` target.
pub mod owned_list {
    use std::sync::Arc;

    use crate::rt::Shared;
    use crate::task::list::OwnedList;
    use crate::task::raw::{self, TaskRef};

    thread_local! {
        /// The runtime half every task header points to. The list never
        /// touches it; one per thread keeps a target from opening an epoll
        /// per input.
        static SHARED: Arc<Shared> = crate::rt::Runtime::builder()
            .driver(coil_arch::DriverChoice::Epoll)
            .build()
            .expect("an epoll runtime for the fuzz hooks")
            .core()
            .shared
            .clone();
    }

    /// A real task allocation in no list, with one reference: a completed,
    /// never-run task (boxed, as every task under `cfg(fuzzing)`) whose
    /// prefix holds the links the list threads through.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct Task(TaskRef);

    impl Task {
        /// Allocates one.
        pub fn new() -> Task {
            SHARED.with(|shared| {
                Task(raw::allocate_cancelled(
                    std::future::ready(()),
                    shared,
                    None,
                ))
            })
        }

        /// Drops its output, as a handle does, and releases its one
        /// reference (frees it).
        ///
        /// # Safety
        /// In no list; called once per [`Task::new`], and no copy is used after.
        pub unsafe fn release(self) {
            // Rule 7 of `task/mod.rs`: the cell may be freed only once its
            // output is gone (`dealloc` does not drop the stage).
            // SAFETY: allocated complete (`allocate_cancelled`) and this is
            // its handle's one reference: the output is ours (rule 5).
            unsafe { drop(raw::drop_output(self.0)) };
            // SAFETY: the caller's one reference, released once.
            unsafe { self.0.release(1) }
        }
    }

    /// `OwnedList`: push at the head, remove anywhere, pop the head.
    #[derive(Debug, Default)]
    pub struct List(OwnedList);

    impl List {
        /// Links `t` at the head.
        ///
        /// # Safety
        /// `t` is alive, in no list, and this thread's.
        pub unsafe fn push(&self, t: Task) {
            // SAFETY: forwarded from the caller.
            unsafe { self.0.push(t.0) }
        }

        /// Unlinks `t`.
        ///
        /// # Safety
        /// `t` is in this list.
        pub unsafe fn remove(&self, t: Task) {
            // SAFETY: forwarded from the caller.
            unsafe { self.0.remove(t.0) }
        }

        /// Unlinks and returns the head.
        pub fn pop(&self) -> Option<Task> {
            self.0.pop().map(Task)
        }

        /// How many tasks are linked.
        pub fn len(&self) -> usize {
            self.0.len()
        }
    }
}

/// The waiter list of every `sync` primitive (`sync/waiters.rs`), with
/// `u32` data, for the `intrusive_list` target.
pub mod wait_list {
    use std::task::Waker;

    use crate::sync::waiters;

    /// Names one waiter.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Key(waiters::Key);

    /// What [`WaitList::poll`] found (`waiters::Polled`).
    #[derive(Debug, PartialEq, Eq)]
    pub enum Polled {
        /// Still queued; the waker was updated.
        Pending,
        /// Notified (or a stale key: `0`); the data handed back.
        Notified(u32),
    }

    /// What [`WaitList::remove`] found (`waiters::Removed`).
    #[derive(Debug, PartialEq, Eq)]
    pub enum Removed {
        /// It was still queued.
        Queued(u32),
        /// It had been notified but never looked.
        Notified(u32),
        /// The key was stale.
        Gone,
    }

    /// `waiters::WaitList<u32>`.
    #[derive(Debug, Default)]
    pub struct WaitList(waiters::WaitList<u32>);

    impl WaitList {
        /// Queues a waiter at the back.
        pub fn push_back(&mut self, data: u32, waker: Waker) -> Key {
            Key(self.0.push_back(data, waker))
        }
        /// Queues a waiter at the front (a notified waiter keeping its turn).
        pub fn push_front(&mut self, data: u32, waker: Waker) -> Key {
            Key(self.0.push_front(data, waker))
        }
        /// Notifies the front waiter; returns its waker.
        pub fn notify_front(&mut self) -> Option<Waker> {
            self.0.notify_front()
        }
        /// Notifies every queued waiter; returns their wakers in order.
        pub fn notify_all(&mut self) -> Vec<Waker> {
            self.0.notify_all()
        }
        /// The owner looks at its entry.
        pub fn poll(&mut self, key: Key, waker: &Waker) -> Polled {
            match self.0.poll(key.0, waker) {
                waiters::Polled::Pending => Polled::Pending,
                waiters::Polled::Notified(d) => Polled::Notified(d),
            }
        }
        /// The owner gives up its entry.
        pub fn remove(&mut self, key: Key) -> Removed {
            match self.0.remove(key.0) {
                waiters::Removed::Queued(d) => Removed::Queued(d),
                waiters::Removed::Notified(d) => Removed::Notified(d),
                waiters::Removed::Gone => Removed::Gone,
            }
        }
        /// Queued waiters.
        pub fn len(&self) -> usize {
            self.0.len()
        }
        /// The front waiter's data.
        pub fn front(&mut self) -> Option<u32> {
            self.0.front_mut().copied()
        }
        /// Checks the list's invariant (rule 1 of `sync/waiters.rs`).
        pub fn check(&self) {
            self.0.check();
        }
    }
}

/// Most tasks one loop tick polls (`rt/core.rs`).
pub const MAX_TICK: usize = crate::rt::core::MAX_TICK;

/// Runs `f` as if on a thread without a loop, so that wakes and spawns take
/// the remote path: the `run_queue` target drives both paths from one thread.
pub fn outside_loop<R>(f: impl FnOnce() -> R) -> R {
    crate::rt::outside_loop(f)
}

/// Wakes `wakers` the way the running loop wakes fired timers and I/O
/// completions (to the front of its queue), for the `run_queue` target,
/// which has neither.
///
/// # Panics
/// Outside a loop.
pub fn wake_to_front(wakers: &mut Vec<Waker>) {
    with_core(|c| c.expect("inside a loop").wake_to_front(wakers));
}

/// A weak reference to `rt`'s cross-thread half: its strong count is one
/// per holder (the loop, each `Handle`, each live task allocation).
pub fn runtime_refs(rt: &Runtime) -> Weak<dyn Any + Send + Sync> {
    let shared: Arc<dyn Any + Send + Sync> = rt.core().shared.clone();
    Arc::downgrade(&shared)
}

/// The simulator runtime `b.run` would use, to be entered by several
/// `block_on` calls (the `op_lifecycle` target).
pub fn sim_runtime(b: &Builder) -> Runtime {
    b.runtime().0
}

/// The report of a runtime from [`sim_runtime`], before dropping it.
pub fn sim_report(rt: &Runtime) -> Report {
    crate::sim::report(rt)
}

/// The simulator "kernel" decides every op that can complete now, but hands
/// no completion over (they wait, decided, for the next [`park`]). `None`
/// for a real runtime.
pub fn sim_decide(rt: &Runtime) -> Option<()> {
    rt.core().with_sim_driver(|d| d.fuzz_decide())
}

/// `bytes` arrive on the simulated stream `fd` as if its peer had sent
/// them; `Some(false)` (and dropped) if `fd` is not an open connected stream.
pub fn sim_arrive(rt: &Runtime, fd: RawFd, bytes: &[u8]) -> Option<bool> {
    rt.core().with_sim_driver(|d| d.fuzz_arrive(fd, bytes))
}

/// The `user_data` of every op the simulator holds (undecided, or decided
/// and not handed over), sorted.
pub fn sim_in_flight(rt: &Runtime) -> Option<Vec<u64>> {
    rt.core().with_sim_driver(|d| d.fuzz_in_flight())
}

/// The running loop does its chores and hands every due completion to its
/// op (waking the future, or finishing the orphan), without running a task
/// or moving the clock.
///
/// # Panics
/// Outside a loop.
pub fn park() {
    with_core(|c| c.expect("inside a loop").park(Some(Duration::ZERO)));
}
