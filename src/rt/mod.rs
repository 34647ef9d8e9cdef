//! The event loop: runtime, builder, handle, run queues and the thread-local
//! context that ties wakers and `spawn` to the loop running on this thread.
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
//! Remote wake protocol (the no-lost-wakeup argument): a remote waker pushes
//! under the mutex, stores `remote_pending = true` (SeqCst), then unparks.
//! The loop, before parking, loads `remote_pending` (SeqCst) and only parks
//! if it is false; the driver clears its own `notified` flag (SeqCst) before
//! `park` returns. Either the loop sees the flag, or the unpark happens after
//! the loop's check and the eventfd write makes the park return.

pub(crate) mod budget;
mod builder;
pub(crate) mod core;
mod handle;
mod runtime;
pub(crate) mod sim;

pub use builder::Builder;
pub use handle::{Handle, TryCurrentError};
pub use runtime::{DriverInfo, Runtime, Stats, run, stats};

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use self::core::Core;
use crate::task::raw::TaskRef;
use crate::task::{Task, TaskId};

thread_local! {
    /// The core of the loop running on this thread, or null.
    static CURRENT: Cell<*const Core> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with the current thread's running loop, if any.
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
    unparker: coil_arch::Unparker,
    /// Same as the core's id.
    pub(crate) core_id: u64,
}

#[derive(Default)]
pub(crate) struct Remote {
    /// Closed at shutdown: pushes then release their reference (rule 8).
    pub(crate) closed: bool,
    /// Tasks woken from other threads (each entry is a queue reference).
    pub(crate) woken: Vec<TaskRef>,
    /// Tasks spawned from other threads, not yet in the owned list.
    pub(crate) spawned: Vec<TaskRef>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("core_id", &self.core_id)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(unparker: coil_arch::Unparker, core_id: u64) -> Shared {
        Shared {
            remote: Mutex::new(Remote::default()),
            remote_pending: AtomicBool::new(false),
            main_woken: AtomicBool::new(false),
            unparker,
            core_id,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Remote> {
        // A panic while holding this lock cannot leave the Vecs inconsistent.
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Push a woken task from another thread (its queue reference moves in).
    fn push_remote(&self, task: TaskRef) {
        let mut remote = self.lock();
        if remote.closed {
            drop(remote);
            task.release(1);
            return;
        }
        remote.woken.push(task);
        self.remote_pending.store(true, Ordering::SeqCst);
        drop(remote);
        self.unparker.unpark();
    }

    /// Hand a new task to the loop from another thread. Returns the task
    /// back if the runtime is shut down.
    pub(crate) fn push_spawned(&self, task: TaskRef) -> Result<(), TaskRef> {
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

    pub(crate) fn remote_pending(&self) -> bool {
        self.remote_pending.load(Ordering::SeqCst)
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

    /// Wake the `block_on` future.
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
pub(crate) fn schedule(task: TaskRef) {
    let shared = &task.header().shared;
    let local = with_core(|core| match core {
        Some(core) if Arc::ptr_eq(&core.shared, shared) => {
            core.push_local(task);
            true
        }
        _ => false,
    });
    if !local {
        shared.push_remote(task);
    }
}

/// `coil::spawn` and `Builder::spawn`.
#[track_caller]
pub(crate) fn spawn_local<F>(future: F, name: Option<Box<str>>) -> Task<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    with_core(|core| match core {
        Some(core) => core.spawn(future, name),
        None => panic!(
            "coil::spawn was called outside a coil runtime; call it from code running inside \
             coil::run(...) or Runtime::block_on(...), or use Handle::spawn from other threads"
        ),
    })
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
