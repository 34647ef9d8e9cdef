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
//! back edges are listed in `tests/rt/module_graph.rs`).
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
//! How a wake from another thread reaches a loop that may be about to park
//! or is spinning, and why it is never lost. The parts, all in [`Shared`]:
//! - `hot`, one cache line holding the **flag word** `flags` and the
//!   one-entry **slot**;
//! - `remote`, a mutex over the `woken` and `spawned` vectors and `closed`;
//! - the unparker: an eventfd write or a MSG_RING (`crate::loom` states its
//!   contract U1–U3 and `arch/src/unpark.rs` how the drivers meet it).
//!
//! The flag word's bits, and who sets and clears each (every access is an
//! atomic RMW or load on the one word, `SeqCst`):
//! - `PENDING`: something was pushed (slot or vectors) since the loop last
//!   drained. Set by every push *after* it published its task; cleared only
//!   by the loop, *before* it looks at the slot and the vectors.
//! - `MAIN`: the `block_on` future was woken. Set by [`Shared::wake_main`],
//!   cleared by the loop ([`Shared::take_main_wake`]) just before it polls
//!   that future.
//! - `SPINNING`: the loop is busy-polling its flags instead of parking
//!   (`spin.rs`). Set and cleared only by the loop. A push or `wake_main`
//!   that finds it in the value its own `fetch_or` returned skips the
//!   unpark: the loop will see the flag without one.
//! - `VEC`: the vectors are not empty. Set and cleared only under the lock
//!   (by a pusher with its push, by the loop with its take), so whoever holds
//!   the lock sees it exactly when a vector holds a task.
//!
//! The slot holds a woken task's entry (a [`Woken`]: a `TaskRef` pointer,
//! tagged when the entry is a waker's reference, below), `EMPTY`, or
//! `CLOSED`. Who may write it: a pusher only by a
//! compare-exchange `EMPTY → task`; the loop only from a task to `EMPTY`
//! (nobody else changes a slot that holds a task) and, at shutdown, from
//! anything to `CLOSED` (under the lock). Spawns always take the vectors
//! (the loop binds them first; they are not the hot path).
//!
//! Waker side ([`Shared::push_remote`]):
//! - **W1** publish: if `VEC` is clear and the slot's compare-exchange from
//!   `EMPTY` succeeds, the task is in the slot (no lock, no buffer);
//!   otherwise, under the lock, push it on `woken` (or release it if
//!   `closed`) and set `VEC`.
//! - **W2** `prev = flags.fetch_or(PENDING)` (with `VEC` in the same RMW on
//!   the locked path).
//! - **W3** unpark, unless `prev` had `SPINNING` (the loop is spinning and
//!   will see `PENDING`) or `PENDING` (an earlier push's W2 came first and
//!   the loop has not cleared it since, so that push's W3, or the loop's
//!   own look, covers this one). On the locked path after the lock is
//!   released. `wake_main` is the same with `MAIN` and no W1, and skips W3
//!   on the loop's own thread.
//!
//! Loop side (`core.rs`, one tick): **L1** if `PENDING`, drain: clear
//! `PENDING` (`fetch_and`), then take the slot, then, if `VEC` is set, take
//! under the lock the slot again and the vectors and clear `VEC`; poll;
//! **L2** park only if the run queue is empty and [`Shared::wake_pending`]
//! (a load of `PENDING | MAIN`) is false; **L3** park; after every return,
//! back to L1. Spinning (`spin.rs`): **S1** `fetch_or(SPINNING)`; if the
//! value it returned has `PENDING | MAIN`, stop at once; **S2** spin on
//! loads of the word; **S3** `prev = fetch_and(!SPINNING)`, and park only
//! if `prev` has neither `PENDING` nor `MAIN` (the re-check after clearing
//! `SPINNING`).
//!
//! Why no wake is lost: W2 and every loop access are RMWs or loads on one
//! location, so they sit in its one modification order. If W2 comes before
//! L1's clear, the clear reads it (and so synchronises with the pusher: the
//! slot load and the lock after it see the published task). If W2 comes
//! after the clear, `PENDING` stays set until the next L1. The loop parks
//! only after a load (L2) or a `fetch_and` (S3) that saw `PENDING` clear: a
//! W2 after that point in the order read `SPINNING` clear (S3 cleared it, or
//! the loop never set it) and either unparks (U1: the park returns, U2: the
//! next one does) or read `PENDING` set by an earlier W2 that is itself
//! after the loop's look, which applies the same argument to that push. A
//! W2 before it left `PENDING` set, which the look would have seen. And a
//! push that skips W3 because `SPINNING` was set: its W2 precedes S3's
//! `fetch_and`, which therefore returns `PENDING`, so the loop does not park.
//!
//! Why order is kept (a thread that wakes A then B gets A polled first):
//! `VEC` is set before B's push returns if B took the vectors, and only a
//! drain that took B clears it; so a push after B sees `VEC` (or the slot
//! full) and takes the vectors too, or B has been taken already. And a task
//! in the slot was put there when `VEC` was clear, so every vector entry
//! beside it came later; the drain takes the slot before the vectors, and
//! the locked take re-reads the slot under the lock (a push that put A in
//! the slot after the lock-free take, then B in the vectors, is found then,
//! still ahead of B).
//!
//! The loom models in `rt::remote_loom` check this with the real `Shared`,
//! tasks and wakers, and show that they catch these mistakes: an unpark
//! before W1 (the loop consumes it, sees nothing, parks for good); a spin
//! that parks without S3's re-check; a push that skips the unpark because of
//! `PENDING` read before it published; a drain that takes the vectors
//! without looking at the slot again (order). Clearing `PENDING` after the
//! take (a push in between is never taken) or pushing without checking
//! `closed` (the task leaks) are the older ones.
//!
//! # Two kinds of woken entry: a queue reference, or a waker's
//!
//! A `woken` entry (slot or vector) is a [`Woken`], one of:
//! - **queued**: the task's queue reference (rule 2). The waker did the
//!   state transition (`SCHEDULED` set) on its own thread, then pushed
//!   (`rt::schedule`): `wake_by_ref`, `cancel`/`abort`, the join waker.
//! - **wake**: a `Waker::wake` (by value), on a loop thread, of a task of
//!   another runtime that this thread remembers (`task::raw::last_foreign`:
//!   the foreign task it woke twice in a row): the waker's own reference,
//!   pushed as it is, **without touching the task's header** ([`push_wake`],
//!   with the `Shared` remembered beside the task). The loop does the
//!   transition the waker skipped when it drains the entry
//!   (`TaskRef::wake_drained`, the same `transition_to_notified_by_val`):
//!   the reference becomes the queue reference and the task is queued, or,
//!   if the task is already queued, running while queued or complete, it
//!   is released there (possibly the last one: the task is freed on the
//!   loop thread).
//!
//! Why: the state word shares its cache line with the vtable pointer the
//! loop reads to poll. A foreign wake's RMW on it pulled that line to the
//! waking core exclusive, and the loop's poll pulled it straight back: two
//! transfers on a spinning round trip's critical path (docs/multicore.md,
//! "Where a spinning round trip's time goes"). Done by the loop, the
//! transition finds the line in its own cache, **provided the waker does
//! not read that line either**: it needs the header's `shared` to find the
//! queue, and a read fetches the line, which the loop's RMW must then take
//! back from the reader. Hence the memory: a loop thread remembers the
//! foreign task it woke twice in a row, with its `Shared`, holding a
//! reference of its own so that the address cannot be reused while
//! remembered (`task::raw::last_foreign`), and a stream of wakes from one
//! loop to a task of another reads no header line at all. Measured on the
//! development VM (AMD EPYC, KVM; docs/multicore.md), W8b's spinning round
//! trip: about 1.46× the old one with wake entries for every foreign wake
//! but the header still read (the read costs more than the RMW it
//! replaced), about 0.53× with the memory. Which is also why every other
//! foreign wake by value (a plain thread's, or a loop's of a task it does
//! not remember) keeps the queued kind: read for read, the RMW on the
//! waking side is the cheaper.
//!
//! Why the rules of `task/mod.rs` still hold with wake entries:
//! - *No lost wake.* The entry is published by the push (W1), so the drain
//!   that takes it happens after everything the waker wrote before waking
//!   (the same synchronisation that carries a queued entry). The drain's
//!   transition on the loop thread then finds the task idle (queue it: its
//!   next poll sees the data), queued or running while queued (its pending
//!   poll comes after the drain, on this thread, so it sees the data; for
//!   running while queued the transition sets `SCHEDULED`, which
//!   `start_poll` clears, as for any wake while queued), or complete
//!   (nothing to do). A wake that arrives while the loop is *polling* the
//!   task no longer sets `SCHEDULED` during that poll: the poll may end
//!   idle, and the next tick's drain (the loop does not park with `PENDING`
//!   set, L2) queues it again. So the poll after the wake is the drain's,
//!   where it was the poll's end's: same number of polls.
//! - *No double poll.* A wake entry is not a queue entry: only the drain's
//!   transition turns it into one, and only if it set `SCHEDULED` from
//!   clear (rule 2: one queue entry at most).
//! - *Complete or cancelled.* The transition finds `COMPLETE` and
//!   releases the reference; a cancelled, not yet complete task is queued
//!   or running (the cancel queued it), so the reference is released too.
//! - *References.* One per entry, the waker's; each is either the queue
//!   reference after the drain or released by it, exactly once.
//! - *Waker outliving its loop.* A closed queue releases the entry's
//!   reference on the waking thread (`push_remote`), for both kinds (each
//!   is one reference); shutdown's `close_remote` hands the loop what was
//!   queued, which `adopt` treats as any drain (transition, then the owned
//!   tasks are cancelled and the queue entries released, rule 8). The
//!   release happens after the push returned, not inside it: it may free
//!   the task and with it the last `Arc` of the `Shared` the push borrows
//!   (Miri's Stacked Borrows caught that in `waker_outlives_runtime`).
//! - *`wake_by_ref` from a foreign thread* keeps the queued kind: it holds
//!   no reference to push, and must take one, which writes the word anyway.
//!   So do `cancel` and the join waker (woken by reference).
//! - *The task's own loop thread* keeps the local path (`wake_by_val`
//!   does the transition and pushes on the local queue): no remote queue is
//!   involved, and W1/W2's code is what it was (a loop never remembers its
//!   own tasks; the memory is cleared when a loop starts on the thread). So
//!   a task woken through a wake entry is `SCHEDULED` only once its loop
//!   drained the wake, where one woken on its own thread is at once;
//!   between the push and the drain its state word looks idle
//!   (`Handle::dump`, the task state's `SCHEDULED`) and its reference count
//!   includes the entry.
//! - *The remembered task* (`last_foreign`) is one more reference, held
//!   by a loop thread's thread-local, released when another task is
//!   remembered, when a loop starts or stops on the thread (`Enter`) and at
//!   thread exit; it keeps the task's cell and its runtime's `Shared` (its
//!   unparker's fds) alive meanwhile, never its future or output (rules 4,
//!   5). A wake of a remembered task uses the `Shared` remembered with it,
//!   the task's own (it cannot change), so it reaches the same queue.
//! - *Counters.* No metric counts wakes; `polls` counts the run queue's
//!   entries at each tick, which a wake entry joins only after its
//!   transition.
//!
//! Shutdown (rule 8 in `task/mod.rs`): [`Shared::close_remote`] sets
//! `closed` and the slot's `CLOSED` under the lock and takes what is queued;
//! a push whose compare-exchange finds `CLOSED` takes the lock, sees
//! `closed` and hands the reference back to its caller, which releases it
//! (`push_remote`, `schedule`, `push_wake`);
//! `push_spawned` gives its task back (its caller finishes it). So each
//! pushed task is handled by exactly one side. The loom model
//! `remote_loom::wake_entry_vs_poll_and_complete` checks the wake entries
//! against a poll, a completion and a second wake.
//!
//! **What keeps the `Shared` alive during a push.** A push uses its
//! `Shared` after it published the entry: W2's `fetch_or`, W3's unpark
//! (the unparker's descriptor). From the publish on, the loop may take the
//! entry (a drain, or shutdown's `close_remote`) and release its
//! reference, freeing the task and with it the slab chunk or box that held
//! the runtime's `Arc<Shared>`; if the runtime is being dropped, that was
//! the last one. So the entry's own reference never keeps the `Shared`
//! alive past the publish; the pusher must hold something else until
//! `push_remote` returns: a `Handle` (`push_spawned`), a waker that keeps
//! its reference (`wake_by_ref`, a join waker), the cancelling handle
//! (`cancel`), the remembered task's reference (`push_wake`: its entry is
//! the waker's reference, but `last_foreign` holds one more), or, for a
//! `Waker::wake` by value whose waker's reference *is* the entry's
//! ([`schedule_by_val`]), a clone of the `Arc<Shared>` taken for the push.
//! The unit test `shutdown::tests::a_push_keeps_its_runtime_alive_after_publishing`
//! drops the runtime between a push's W1 and W2 (a test hook,
//! `push_hook`) and checks the `Shared` is still there.

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

use crate::loom::{AtomicPtr, AtomicUsize, Mutex, MutexGuard, Unparker};

use self::core::Core;
use crate::task::Task;
use crate::task::raw::TaskRef;

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
        // A new loop: nothing remembered from another (`last_foreign`).
        crate::task::raw::last_foreign::forget();
        let prev = CURRENT.with(|c| c.replace(core));
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
        // The loop stops: keep no foreign task alive past it.
        crate::task::raw::last_foreign::forget();
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

/// Test hook of the unit tests: code to run on a pushing thread between
/// its publish (W1) and its W2, where the loop may already have taken the
/// entry (module docs, "What keeps the `Shared` alive during a push").
#[cfg(all(test, not(loom)))]
pub(crate) mod push_hook {
    use std::cell::RefCell;

    std::thread_local! {
        static AFTER_PUBLISH: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
    }

    /// Runs `f` after every lock-free publish of this thread's pushes.
    pub(crate) fn set(f: impl FnMut() + 'static) {
        AFTER_PUBLISH.with(|h| *h.borrow_mut() = Some(Box::new(f)));
    }

    pub(super) fn after_publish() {
        let _ = AFTER_PUBLISH.try_with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f();
            }
        });
    }
}

/// Whether a loop is running on this thread.
pub(crate) fn in_runtime() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

/// The flag word's bits (module docs, "Remote wake protocol").
mod flag {
    /// A push since the loop's last drain.
    pub(super) const PENDING: usize = 1;
    /// The `block_on` future was woken.
    pub(super) const MAIN: usize = 2;
    /// The loop is spinning: pushes skip the unpark.
    pub(super) const SPINNING: usize = 4;
    /// The vectors hold a task (changed only under the lock).
    pub(super) const VEC: usize = 8;
    /// What makes the loop run instead of parking.
    pub(super) const WORK: usize = PENDING | MAIN;
}

/// The slot's "no task" value.
const EMPTY: *mut () = std::ptr::null_mut();

/// The slot's value once the queue is closed (never a task's address: a
/// task header is aligned to more than one byte).
fn closed_mark() -> *mut () {
    std::ptr::without_provenance_mut(1)
}

/// The bit that marks a slot value as a [`Woken::Wake`] entry (a task
/// header is aligned to 8; `CLOSED` is 1).
const WAKE_TAG: usize = 2;

/// An entry of the remote queue's `woken` side (module docs, "Two kinds of
/// woken entry"): a task pointer, tagged with [`WAKE_TAG`] for a waker's
/// reference. Either way the entry owns one reference to the task.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Woken(std::ptr::NonNull<()>);

// SAFETY: an entry is a `TaskRef` (which is `Send`) with a tag bit.
unsafe impl Send for Woken {}

impl Woken {
    /// A queue reference (the waker set `SCHEDULED`).
    fn queued(task: TaskRef) -> Woken {
        // SAFETY: a task pointer is never null.
        Woken(unsafe { std::ptr::NonNull::new_unchecked(task.into_raw().cast_mut()) })
    }

    /// A waker's reference, the state word untouched.
    fn wake(task: TaskRef) -> Woken {
        let p = task.into_raw().cast_mut().map_addr(|a| a | WAKE_TAG);
        // SAFETY: a task pointer with a bit set is not null.
        Woken(unsafe { std::ptr::NonNull::new_unchecked(p) })
    }

    /// Back from [`Woken::into_raw`].
    ///
    /// # Safety
    /// `p` came from `into_raw` and the entry's reference moves with it.
    unsafe fn from_raw(p: *mut ()) -> Woken {
        // SAFETY: `into_raw` of an entry is never null.
        Woken(unsafe { std::ptr::NonNull::new_unchecked(p) })
    }

    fn into_raw(self) -> *mut () {
        self.0.as_ptr()
    }

    /// Whether this is a waker's reference (the loop must do the
    /// transition: `TaskRef::wake_drained`).
    pub(crate) fn is_wake(self) -> bool {
        self.0.as_ptr().addr() & WAKE_TAG != 0
    }

    /// The task; the entry's reference stays with whoever owns the entry.
    pub(crate) fn task(self) -> TaskRef {
        let p = self.0.as_ptr().map_addr(|a| a & !WAKE_TAG);
        // SAFETY: an entry owns a reference to a task (the type's
        // invariant), from `into_raw`.
        unsafe { TaskRef::from_raw(p.cast_const()) }
    }
}

/// The flag word and the one-entry slot, alone on their cache line: a push
/// that finds the slot empty touches this line and nothing else of `Shared`.
#[repr(align(64))]
struct Hot {
    flags: AtomicUsize,
    slot: AtomicPtr<()>,
}

/// The cross-thread half of a runtime.
pub(crate) struct Shared {
    /// Flag word and slot (module docs).
    hot: Hot,
    remote: Mutex<Remote>,
    /// The driver's unparker (a loom token in the models: `crate::loom`).
    unparker: Unparker,
    /// Same as the core's id.
    pub(crate) core_id: u64,
    /// Debug mode's checks (the core's), `None` when it is off: reached from
    /// any thread through a task's `Shared` (remote spawns, handle drops).
    pub(crate) debug: Option<Arc<debug::DebugChecks>>,
    /// The loop's counters as of its last park (`metrics.rs`).
    pub(crate) metrics: metrics::Published,
    /// The names, cancel messages and requests of this runtime's tasks
    /// that have any (`task/cancel.rs`).
    pub(crate) cancels: crate::task::cancel::CancelTable,
}

#[derive(Default)]
pub(crate) struct Remote {
    /// Closed at shutdown: pushes then release their reference (rule 8).
    pub(crate) closed: bool,
    /// Tasks woken from other threads (each entry carries one reference,
    /// of the kind it says: module docs).
    pub(super) woken: Vec<Woken>,
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
            hot: Hot {
                flags: AtomicUsize::new(0),
                slot: AtomicPtr::new(EMPTY),
            },
            remote: Mutex::new(Remote::default()),
            unparker: unparker.into(),
            core_id,
            debug: None,
            metrics: metrics::Published::default(),
            cancels: Default::default(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Remote> {
        // A panic while holding this lock cannot leave the Vecs inconsistent.
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step W3 (module docs): unpark unless `prev`, the flag word as the
    /// push's own W2 found it, says the loop is spinning or an earlier push
    /// is still pending.
    #[inline]
    fn unpark_after(&self, prev: usize, bit: usize) {
        if prev & (flag::SPINNING | bit) == 0 {
            self.unparker.unpark();
        }
    }

    /// Push a woken task from another thread (its entry's reference moves
    /// in). Steps W1–W3 of the protocol (module docs). Returns the task if
    /// the queue is closed (rule 8): the caller releases the entry's
    /// reference, once it no longer borrows this `Shared` (the release may
    /// free the task, and with it the last `Arc` of this `Shared`).
    ///
    /// # Safety
    /// The caller owns the entry's reference (a queue reference, for which
    /// it set `SCHEDULED`, rule 2; or a waker's, for a wake entry) and hands
    /// it over; the task belongs to this runtime.
    #[must_use]
    unsafe fn push_remote(&self, entry: Woken) -> Option<TaskRef> {
        let flags = &self.hot.flags;
        // W1, lock-free: only while no vector entry is ahead of it (order).
        if flags.load(Ordering::SeqCst) & flag::VEC == 0
            && self
                .hot
                .slot
                .compare_exchange(EMPTY, entry.into_raw(), Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            // The loop may take the entry from here on (module docs, "What
            // keeps the `Shared` alive during a push").
            #[cfg(all(test, not(loom)))]
            push_hook::after_publish();
            // W2.
            let prev = flags.fetch_or(flag::PENDING, Ordering::SeqCst);
            self.unpark_after(prev, flag::PENDING);
            return None;
        }
        let mut remote = self.lock();
        if remote.closed {
            // A closed queue does not store it: the caller releases it.
            return Some(entry.task());
        }
        remote.woken.push(entry);
        // W2, with `VEC` under the lock.
        let prev = flags.fetch_or(flag::PENDING | flag::VEC, Ordering::SeqCst);
        drop(remote);
        self.unpark_after(prev, flag::PENDING);
        None
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
        let prev = self
            .hot
            .flags
            .fetch_or(flag::PENDING | flag::VEC, Ordering::SeqCst);
        drop(remote);
        self.unpark_after(prev, flag::PENDING);
        Ok(())
    }

    /// Step L1's test: whether a push happened since the last drain.
    #[inline]
    pub(crate) fn remote_pending(&self) -> bool {
        self.hot.flags.load(Ordering::SeqCst) & flag::PENDING != 0
    }

    /// Step L2 of the protocol (module docs): whether a remote push or a
    /// main-future wake happened that the loop has not taken yet. The loop
    /// may park only when this is false (and its run queue is empty), and
    /// must decide that *after* taking the remote queue.
    #[inline]
    pub(crate) fn wake_pending(&self) -> bool {
        self.hot.flags.load(Ordering::SeqCst) & flag::WORK != 0
    }

    /// Step S1 (loop thread): mark the loop spinning, so that pushes skip
    /// their unpark. Returns `false` if work is already pending (then the
    /// mark is taken back and the loop should not spin).
    pub(super) fn start_spinning(&self) -> bool {
        let prev = self.hot.flags.fetch_or(flag::SPINNING, Ordering::SeqCst);
        if prev & flag::WORK != 0 {
            self.hot.flags.fetch_and(!flag::SPINNING, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Step S3 (loop thread): the spin ends. Returns whether work is pending
    /// (as the clearing RMW read the word): when it is not, the loop may
    /// park, and every push after this unparks.
    pub(super) fn stop_spinning(&self) -> bool {
        self.hot.flags.fetch_and(!flag::SPINNING, Ordering::SeqCst) & flag::WORK != 0
    }

    /// The loop's `block_on` starts: its future is to be polled once.
    pub(crate) fn set_main_woken(&self) {
        self.hot.flags.fetch_or(flag::MAIN, Ordering::SeqCst);
    }

    /// Loop thread, before polling the `block_on` future: whether it was
    /// woken since the last call (and clear the flag).
    #[inline]
    pub(crate) fn take_main_wake(&self) -> bool {
        let flags = &self.hot.flags;
        flags.load(Ordering::SeqCst) & flag::MAIN != 0
            && flags.fetch_and(!flag::MAIN, Ordering::SeqCst) & flag::MAIN != 0
    }

    /// Take everything pushed remotely, in push order (step L1).
    pub(crate) fn take_remote(&self, woken: &mut Vec<Woken>, spawned: &mut Vec<TaskRef>) {
        let flags = &self.hot.flags;
        flags.fetch_and(!flag::PENDING, Ordering::SeqCst);
        self.take_slot(woken);
        if flags.load(Ordering::SeqCst) & flag::VEC != 0 {
            let mut remote = self.lock();
            // Again under the lock: a task put in the slot after the take
            // above is ahead of the vector entries pushed after it.
            self.take_slot(woken);
            flags.fetch_and(!flag::VEC, Ordering::SeqCst);
            woken.append(&mut remote.woken);
            spawned.append(&mut remote.spawned);
        }
    }

    /// Loop thread: move the slot's task, if any, to `woken`.
    #[inline]
    fn take_slot(&self, woken: &mut Vec<Woken>) {
        let slot = &self.hot.slot;
        let p = slot.load(Ordering::SeqCst);
        if p != EMPTY && p != closed_mark() {
            // Only the loop changes a slot holding a task (module docs), so a
            // store is enough; the next push's compare-exchange reads it.
            slot.store(EMPTY, Ordering::SeqCst);
            // SAFETY: a value other than the two marks is an entry that a
            // push stored with its reference, now ours.
            woken.push(unsafe { Woken::from_raw(p) });
        }
    }

    /// Close the remote queue (shutdown) and take what is left in it.
    pub(crate) fn close_remote(&self) -> (Vec<Woken>, Vec<TaskRef>) {
        let mut remote = self.lock();
        remote.closed = true;
        self.hot
            .flags
            .fetch_and(!(flag::PENDING | flag::VEC), Ordering::SeqCst);
        let mut woken = Vec::new();
        let p = self.hot.slot.swap(closed_mark(), Ordering::SeqCst);
        if p != EMPTY && p != closed_mark() {
            // SAFETY: as in `take_slot`.
            woken.push(unsafe { Woken::from_raw(p) });
        }
        woken.append(&mut remote.woken);
        (woken, std::mem::take(&mut remote.spawned))
    }

    /// The slot's entry, if it holds one (the loom models' entry count).
    #[cfg(all(test, loom))]
    pub(crate) fn slot_entry(&self) -> Option<Woken> {
        let p = self.hot.slot.load(Ordering::SeqCst);
        // SAFETY: not a mark: an entry (only looked at, not taken).
        (p != EMPTY && p != closed_mark()).then(|| unsafe { Woken::from_raw(p) })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Wake the `block_on` future (steps W2, W3 with `MAIN`).
    pub(crate) fn wake_main(&self) {
        let prev = self.hot.flags.fetch_or(flag::MAIN, Ordering::SeqCst);
        if !self.is_current() {
            self.unpark_after(prev, flag::MAIN);
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
/// rule 2) and hands it over, and holds another reference to the task until
/// this returns (its waker's, its handle's: module docs, "What keeps the
/// `Shared` alive during a push"; a `Waker::wake` by value has none and
/// takes [`schedule_by_val`]).
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
        if let Some(t) = unsafe { shared.push_remote(Woken::queued(task)) } {
            // SAFETY: the queue reference, which the closed queue did not
            // take (rule 8); `shared` is not used again.
            unsafe { t.release(1) };
        }
    }
}

/// `Waker::wake` (by value) of a task from a thread that is not its loop's,
/// once the waking thread's transition set `SCHEDULED` (the task is not
/// one it remembers, `task::raw::last_foreign`): the waker's reference,
/// now the queue reference, is pushed onto the remote queue. That was the
/// waking thread's only reference, so the push holds a clone of the
/// runtime's `Arc<Shared>` until it returns (module docs, "What keeps the
/// `Shared` alive during a push"): two uncontended reference-count RMWs on
/// the `Arc`'s own line, which the loop never writes.
///
/// # Safety
/// The caller owns `task`'s queue reference (its transition set
/// `SCHEDULED`, rule 2) and hands it over; no loop of the task's runtime
/// runs on this thread.
#[inline]
pub(crate) unsafe fn schedule_by_val(task: TaskRef) {
    let shared = Arc::clone(task.shared());
    // SAFETY: the caller's queue reference, for the task's own runtime,
    // whose `Shared` the clone keeps alive for the whole push.
    if let Some(t) = unsafe { shared.push_remote(Woken::queued(task)) } {
        // SAFETY: the queue reference, which the closed queue did not
        // take (rule 8).
        unsafe { t.release(1) };
    }
    // Possibly the last `Arc` (the runtime was dropped meanwhile): the
    // `Shared` goes here, on the waking thread, as with a waker that
    // outlives its runtime.
    drop(shared);
}

/// `Waker::wake` (by value) of a task from a thread that is not its loop's:
/// push the waker's reference as a wake entry, the state word untouched
/// (module docs, "Two kinds of woken entry"); the loop does the transition
/// when it drains the entry.
///
/// # Safety
/// The caller owns one reference to `task` (the waker's) and hands it over;
/// `shared` is the task's runtime's (alive while the task is), and
/// something other than that reference keeps it alive until this returns
/// (the remembered task's reference, `last_foreign`: the entry's may be
/// released by the loop as soon as it is published, module docs, "What
/// keeps the `Shared` alive during a push"); this thread is not running
/// that loop.
#[inline]
pub(crate) unsafe fn push_wake(shared: *const Shared, task: TaskRef) {
    // SAFETY: the caller's reference, for the task's own runtime, whose
    // `Shared` the caller keeps alive for the call by other means.
    if let Some(t) = unsafe { (*shared).push_remote(Woken::wake(task)) } {
        // SAFETY: the waker's reference, which the closed queue did not
        // take (rule 8); the borrow of `shared` has ended.
        unsafe { t.release(1) };
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

/// Process-unique runtime ids.
pub(crate) fn next_core_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
