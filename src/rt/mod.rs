//! The event loop: runtime, builder, handle, run queues and the thread-local
//! context that ties wakers and `spawn` to the loop running on this thread.
//!
//! What lives where: this file has [`Shared`] and the remote wake protocol,
//! `CURRENT` and [`with_core`] (how the rest of the crate reaches the loop
//! running here), [`schedule`] and [`spawn_local`]. `core.rs` has the `Core`
//! struct, `block_on` and the tick; `timers.rs` its timers, over the wheel of
//! `wheel.rs`; `io.rs` its side of I/O (park, op submission, completion
//! dispatch); `shutdown.rs` its teardown; `sim.rs` the simulator's half.
//! `runtime.rs`, `builder.rs` and `handle.rs` are the public faces,
//! `budget.rs` the coop budget. The loop imports only `task`, `op` and
//! `loom`; the modules above it reach it through `with_core` (the allowed
//! back edges are listed in `tests/module_graph.rs`).
//!
//! Two halves:
//! - [`Core`](core::Core), owned by the [`Runtime`] and touched only on the
//!   thread running the loop: the local run queue, the owned task list, the
//!   timing wheel, the driver, the coop budget. Reached through the
//!   thread-local `CURRENT` pointer while the loop runs.
//! - [`Shared`], behind an `Arc` that every task also holds: the remote queue
//!   (wakes and spawns from other threads), the main future's wake flag, and
//!   the driver's [`Unparker`](coil_arch::Unparker).
//!
//! # Remote wake protocol
//!
//! How a wake from another thread reaches a loop that may be about to park,
//! and why it is never lost. The parts, all in [`Shared`]:
//! - `remote`, a mutex over the `woken` and `spawned` vectors and `closed`;
//! - `remote_pending`, stored `true` by a pusher **inside** the lock after
//!   its push, and `false` by the loop inside the lock as it takes the
//!   vectors; so whoever holds the lock sees it `true` exactly when a vector
//!   is non-empty (or the queue was closed with nothing in it: `false`);
//! - `main_woken`, stored `true` by [`Shared::wake_main`] and swapped back to
//!   `false` by the loop ([`Shared::take_main_wake`]) just before it polls
//!   the `block_on` future;
//! - the unparker: an eventfd write (`crate::loom` states its contract U1–U3
//!   and `arch/src/unpark.rs` how the drivers meet it).
//!
//! Waker side: **W1** publish (push and store `remote_pending`, or store
//! `main_woken`; SeqCst), **W2** then unpark (after the lock is released, so
//! the woken loop does not run into a held lock). `wake_main` on the loop
//! thread itself skips W2: the loop is not parked while it runs code.
//!
//! Loop side (`core.rs`, one tick): **L1** if `remote_pending`, take the
//! vectors; poll; **L2** park only if the run queue is empty and
//! [`Shared::wake_pending`] is false (it loads both flags, SeqCst); **L3**
//! park; after every return from park, back to L1.
//!
//! Why no wake is lost: all flag accesses are SeqCst, so W1's store and L2's
//! load are ordered in one total order. If W1 comes first, L2 sees the flag
//! (only the loop clears it, in L1, and a clear that follows W1 happened
//! under the lock after the push, so that L1 took the task), and the loop
//! does not park. If L2 comes first, W2 follows W1 and so happens either
//! while the loop is parked (U1) or before it parks (U2): the park returns
//! and the next L1 sees the flag. The loom models in `rt::remote_loom`
//! check this with the real `Shared`, tasks and wakers. Each of these
//! mistakes makes one of them fail: storing the flag after the unpark (the
//! loop consumes the unpark, sees nothing and parks for good; a model shows
//! loom catching it), clearing `remote_pending` after the lock is released
//! (a push in between is never taken), pushing without checking `closed`
//! (the task leaks).
//!
//! Shutdown (rule 8 in `task/mod.rs`): [`Shared::close_remote`] sets
//! `closed` under the lock and takes what is queued; a push that takes the
//! lock later sees `closed` and gives the task back (`push_spawned`, whose
//! caller finishes it) or releases the queue reference itself
//! (`push_remote`). So each pushed task is handled by exactly one side.

pub(crate) mod budget;
mod builder;
pub(crate) mod core;
pub(crate) mod debug;
mod dump;
mod handle;
mod io;
mod metrics;
#[cfg(all(test, loom))]
mod remote_loom;
mod runtime;
mod shutdown;
pub(crate) mod sim;
mod spin;
mod timers;
mod trace;
// `pub` items, re-exported by `crate::fuzz` under `cfg(fuzzing)`.
#[cfg_attr(not(fuzzing), allow(unreachable_pub))]
pub(crate) mod wheel;

pub use builder::Builder;
pub use dump::{AwaitNode, Awaiting, TaskDump, TaskInfo, TaskState};
pub use handle::{Handle, TryCurrentError};
pub(crate) use io::with_driver;
pub use metrics::LoopMetrics;
pub(crate) use runtime::assert_not_in_loop;
pub use runtime::{DriverInfo, Runtime, Stats, run, stats};

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::loom::{AtomicBool, Mutex, MutexGuard, Unparker};

use self::core::Core;
use crate::task::raw::TaskRef;
use crate::task::{Task, TaskId};

thread_local! {
    /// The core of the loop running on this thread, or null.
    static CURRENT: Cell<*const Core> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with the current thread's running loop, if any.
#[inline(always)]
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    let ptr = CURRENT.with(Cell::get);
    // SAFETY: CURRENT is non-null only while `Enter` guards a live, pinned
    // (boxed) Core on this thread; it is reset before the Core can be dropped.
    f(unsafe { ptr.as_ref() })
}

/// The virtual time when a simulator loop runs on this thread (one TLS read
/// and a branch otherwise).
#[inline]
pub(crate) fn virtual_now() -> Option<std::time::Instant> {
    let ptr = CURRENT.with(Cell::get);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: as in `with_core`.
    unsafe { &*ptr }.virtual_now()
}

/// Sets `CURRENT` for a scope and restores the previous value on drop (also
/// when unwinding).
pub(crate) struct Enter {
    prev: *const Core,
}

impl Enter {
    pub(crate) fn new(core: &Core) -> Enter {
        let prev = CURRENT.with(|c| c.replace(core));
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// Runs `f` as if on a thread without a loop, so that wakes and spawns take
/// the remote path: the `run_queue` fuzz target drives both paths from one
/// thread.
#[cfg(fuzzing)]
pub(crate) fn outside_loop<R>(f: impl FnOnce() -> R) -> R {
    let _restore = Enter {
        prev: CURRENT.with(|c| c.replace(std::ptr::null())),
    };
    f()
}

/// Whether a loop is running on this thread.
pub(crate) fn in_runtime() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

/// The cross-thread half of a runtime.
pub(crate) struct Shared {
    remote: Mutex<Remote>,
    /// Something was pushed to `remote` since the loop last drained it.
    remote_pending: AtomicBool,
    /// The future passed to `block_on` was woken.
    pub(crate) main_woken: AtomicBool,
    /// The driver's unparker (a loom token in the models: `crate::loom`).
    unparker: Unparker,
    /// Same as the core's id.
    pub(crate) core_id: u64,
    /// Debug mode's checks (the core's), `None` when it is off: reached from
    /// any thread through a task's `Shared` (remote spawns, handle drops).
    pub(crate) debug: Option<Arc<debug::DebugChecks>>,
    /// The loop's counters as of its last park (`metrics.rs`).
    pub(crate) metrics: metrics::Published,
}

#[derive(Default)]
pub(crate) struct Remote {
    /// Closed at shutdown: pushes then release their reference (rule 8).
    pub(crate) closed: bool,
    /// Tasks woken from other threads (each entry is a queue reference).
    pub(super) woken: Vec<TaskRef>,
    /// Tasks spawned from other threads, not yet in the owned list (each
    /// entry carries the owned list's and the queue's references).
    pub(super) spawned: Vec<TaskRef>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("core_id", &self.core_id)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(unparker: impl Into<Unparker>, core_id: u64) -> Shared {
        Shared {
            remote: Mutex::new(Remote::default()),
            remote_pending: AtomicBool::new(false),
            main_woken: AtomicBool::new(false),
            unparker: unparker.into(),
            core_id,
            debug: None,
            metrics: metrics::Published::default(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Remote> {
        // A panic while holding this lock cannot leave the Vecs inconsistent.
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Push a woken task from another thread (its queue reference moves in).
    /// Steps W1 and W2 of the protocol (module docs).
    ///
    /// # Safety
    /// The caller owns `task`'s queue reference (it set `SCHEDULED`, rule 2)
    /// and hands it over; `task` belongs to this runtime.
    unsafe fn push_remote(&self, task: TaskRef) {
        let mut remote = self.lock();
        if remote.closed {
            drop(remote);
            // SAFETY: the queue reference is ours (caller's promise); a closed
            // queue releases instead of storing it (rule 8).
            unsafe { task.release(1) };
            return;
        }
        remote.woken.push(task);
        self.remote_pending.store(true, Ordering::SeqCst);
        drop(remote);
        self.unparker.unpark();
    }

    /// Hand a new task to the loop from another thread. Returns the task
    /// back (with its references) if the runtime is shut down.
    ///
    /// # Safety
    /// `task` is a new, unbound task of this runtime (from `raw::allocate`
    /// with `self`), in no list and no queue; the caller hands over its
    /// owned-list and queue references.
    pub(crate) unsafe fn push_spawned(&self, task: TaskRef) -> Result<(), TaskRef> {
        let mut remote = self.lock();
        if remote.closed {
            return Err(task);
        }
        remote.spawned.push(task);
        self.remote_pending.store(true, Ordering::SeqCst);
        drop(remote);
        self.unparker.unpark();
        Ok(())
    }

    /// The unparker, for the loop's own spin-before-park (`spin.rs`), which
    /// holds it while it spins.
    pub(super) fn unparker_for_spin(&self) -> &Unparker {
        &self.unparker
    }

    pub(crate) fn remote_pending(&self) -> bool {
        self.remote_pending.load(Ordering::SeqCst)
    }

    /// Step L2 of the protocol (module docs): whether a remote push or a
    /// main-future wake happened that the loop has not taken yet. The loop
    /// may park only when this is false (and its run queue is empty), and
    /// must decide that *after* taking the remote queue.
    pub(crate) fn wake_pending(&self) -> bool {
        self.main_woken.load(Ordering::SeqCst) || self.remote_pending.load(Ordering::SeqCst)
    }

    /// Loop thread, before polling the `block_on` future: whether it was
    /// woken since the last call (and clear the flag).
    pub(crate) fn take_main_wake(&self) -> bool {
        self.main_woken.load(Ordering::SeqCst) && self.main_woken.swap(false, Ordering::SeqCst)
    }

    /// Take everything pushed remotely.
    pub(crate) fn take_remote(&self, woken: &mut Vec<TaskRef>, spawned: &mut Vec<TaskRef>) {
        let mut remote = self.lock();
        self.remote_pending.store(false, Ordering::SeqCst);
        woken.append(&mut remote.woken);
        spawned.append(&mut remote.spawned);
    }

    /// Close the remote queue (shutdown) and take what is left in it.
    pub(crate) fn close_remote(&self) -> (Vec<TaskRef>, Vec<TaskRef>) {
        let mut remote = self.lock();
        remote.closed = true;
        self.remote_pending.store(false, Ordering::SeqCst);
        (
            std::mem::take(&mut remote.woken),
            std::mem::take(&mut remote.spawned),
        )
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Wake the `block_on` future (steps W1, W2).
    pub(crate) fn wake_main(&self) {
        self.main_woken.store(true, Ordering::SeqCst);
        if !self.is_current() {
            self.unparker.unpark();
        }
    }

    /// Whether this runtime's loop is running on the current thread.
    pub(crate) fn is_current(&self) -> bool {
        with_core(|core| core.is_some_and(|c| std::ptr::eq(&*c.shared, self)))
    }
}

/// Put a task that holds a fresh queue reference on a run queue: the local one
/// if its loop runs on this thread, the remote one otherwise.
///
/// # Safety
/// The caller owns `task`'s queue reference (its transition set `SCHEDULED`,
/// rule 2) and hands it over.
#[inline]
pub(crate) unsafe fn schedule(task: TaskRef) {
    let shared = task.shared();
    let local = with_core(|core| match core {
        Some(core) if Arc::ptr_eq(&core.shared, shared) => {
            // SAFETY: the caller's queue reference; this thread runs the
            // task's loop (same `Shared`).
            unsafe { core.push_local(task) };
            true
        }
        _ => false,
    });
    if !local {
        // SAFETY: the caller's queue reference, for the task's own runtime.
        unsafe { shared.push_remote(task) };
    }
}

/// `coil::spawn` and `Builder::spawn`.
#[track_caller]
#[inline]
pub(crate) fn spawn_local<F>(future: F, name: Option<Arc<str>>) -> Task<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    // The panic is raised out here, not in the closure, so that it points at
    // the caller's line (closures do not forward `#[track_caller]`; the
    // location for debug mode is taken here for the same reason).
    let at = std::panic::Location::caller();
    match with_core(|core| core.map(|core| core.spawn(future, name, at))) {
        Some(task) => task,
        None => panic!(
            "coil::spawn was called outside a coil runtime; call it from code running inside \
             coil::run(...) or Runtime::block_on(...), or use Handle::spawn from other threads"
        ),
    }
}

/// Process-unique task ids, handed out in blocks so the hot path is a
/// thread-local increment.
pub(crate) fn next_task_id() -> TaskId {
    use std::sync::atomic::AtomicU64;
    const BLOCK: u64 = 1024;
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        ids.set((next + 1, end));
        TaskId(std::num::NonZeroU64::new(next).expect("task ids start at 1"))
    })
}

/// Process-unique runtime ids.
pub(crate) fn next_core_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
