//! Tasks: spawning, joining, cancelling, and the invariants that keep them sound.
//!
//! A task is a future the event loop drives to completion on its own, like
//! `asyncio.create_task`. [`spawn`] returns a [`Task<T>`] handle that is itself a
//! future resolving to `Result<T, TaskError>`.
//!
//! ```
//! let sum = coil::run(async {
//!     let a = coil::spawn(async { 1 + 1 });
//!     let b = coil::task::Builder::new().name("answer").spawn(async { 40 });
//!     a.await.unwrap() + b.await.unwrap()
//! });
//! assert_eq!(sum, 42);
//! ```
//!
//! [`current`] is the task running the calling code and [`all_tasks`] every
//! unfinished task of the loop, as [`TaskHandle`]s (id, name, cancel).
//!
//! A task spawned with [`Builder::cooperative_cancel`] answers
//! [`Task::cancel`](TaskHandle::cancel) instead of being dropped: [`cancellable`] scopes turn the
//! request into `Err(Cancelled)`, the task awaits its cleanup and finishes
//! with [`Cancelled::reraise`] (asyncio's `except CancelledError: ...;
//! raise`; decision 0010).
//!
//! # The one lifetime rule
//!
//! **Dropping a [`Task`] detaches the task; it keeps running.** To stop it, call
//! [`Task::cancel`](TaskHandle::cancel). A detached task that panics reports the panic on stderr
//! once, since nobody else can observe it.
//!
//! # Implementation spec
//!
//! This module owns the task itself: its allocation and `TaskRef`
//! (`raw.rs`, with the task's functions in `raw/vtable.rs`: per-type vtable
//! entries that only touch the stage, and the type-independent rest), the
//! state word (`state.rs`), the waker vtable (`waker.rs`), the owned list
//! (`list.rs`), the cancel message and requests (`cancel.rs`) and the
//! task's side of a request (`answer.rs`), the handle ([`Task`],
//! `join.rs`), [`current`]/[`all_tasks`] (`current.rs`), and what is built directly
//! on tasks: [`TaskGroup`](crate::TaskGroup) (`group.rs`, re-exported at the
//! crate root) and [`Failure`](crate::Failure) (`failure.rs`). The loop that
//! runs tasks is `rt`.
//!
//! A task is **one heap allocation**: a `#[repr(C)]` `Header` (`raw.rs`) followed by
//! the *stage*, which holds the future, later its output, then nothing (a
//! union: the state word and rule 5 say which is live). The
//! state word is described bit by bit in `state.rs`. The rules below are what
//! every `// SAFETY:` comment in this module refers to. The rest of the crate
//! holds tasks as `TaskRef`s, pointers to a live task whose unsafe boundary
//! (which operations are `unsafe`, and why the rest need not be) is described
//! in `raw.rs`'s module docs.
//!
//! **References.** The allocation is freed when the reference count in the
//! state word drops to zero. References are held by:
//! - the *owned list* of its runtime, from spawn until the task completes
//!   (or is shut down). A poll that returns `Ready` unlinks the task just
//!   before `COMPLETE` and, when the join side needs nothing, gives the
//!   list's and the queue's references up in the same write that sets it
//!   (`vtable.rs` `finish_polled`, `State::transition_to_complete_releasing`);
//! - the `Task<T>` handle, while it lives (`JOIN_INTEREST` mirrors it);
//! - the *queue reference*, which exists exactly while `SCHEDULED` is set or
//!   the task is running while queued (rule 2);
//! - every `Waker` clone. Borrowed wakers handed to `poll` hold none: the
//!   poller holds the queue reference for the duration of the poll.
//!
//! **Rules.**
//! 1. *Thread confinement.* The future, the output written by the loop and
//!    the owned-list membership (a slab cell's bound bit and its chunk's
//!    place in the registry, a boxed cell's links: `list.rs`) are touched
//!    only on the loop thread that owns the task, except for a
//!    `Handle::spawn`ed task before it is bound (handed over under the
//!    remote-queue mutex), and except for the output once `COMPLETE` is set
//!    (rule 5).
//! 2. *Scheduling.* `SCHEDULED` is set by whoever takes a queue reference
//!    (waker or `cancel`) and cleared only by the loop thread when it pops the
//!    task to poll it (`transition_to_running`). A task with `SCHEDULED` set is
//!    in at most one queue. `RUNNING` and a queue entry coexist only for a
//!    task that woke itself during its poll and was queued again without a
//!    write to the state word (*running while queued*, `state.rs`; its entry
//!    holds the poller's reference), and at shutdown, when
//!    `transition_to_shutdown` claims a task that is still queued (rule 8).
//! 3. *Wake while running.* A wake that finds `RUNNING` only sets `SCHEDULED`;
//!    the poller then turns its own reference into the queue reference (a
//!    wake of the task by itself, on its loop thread, sets no bit: the loop
//!    notes it and queues the task running while queued, `state.rs`). A
//!    task is therefore polled at most once per tick and never re-entrantly,
//!    and `wake()` never polls inline.
//! 4. *Completion.* Only the loop thread sets `COMPLETE`, after it dropped the
//!    future and wrote the output. After `COMPLETE` no queue entry is created
//!    and the future is never touched again.
//! 5. *Output.* After `COMPLETE`, the output belongs to the handle if
//!    `JOIN_INTEREST` was still set when the runtime looked (the runtime reads
//!    the snapshot returned by `transition_to_complete`); otherwise the
//!    runtime drops it. `drop_join_interest` makes the two sides agree: the
//!    handle drops the output iff it saw `COMPLETE`. A handle that sees
//!    `COMPLETE` with `JOIN_WAKER` clear (the joined case) may instead drop the
//!    output first and then give up its interest and its reference in one step
//!    (`drop_join_interest_and_ref`): the runtime decided from a snapshot in
//!    which the interest was still set, so the output is the handle's.
//!    Once the handle took the output it records that itself (the stage has
//!    no tag, `raw.rs`): with the taken marker in the join-waker field if
//!    that is its own (rule 6), else by giving up `JOIN_INTEREST` at once
//!    (`drop_join_interest`: the handle lives on without interest, holding
//!    only its reference, and reads nothing more).
//! 6. *Join waker.* The handle may write the join-waker field only while
//!    `JOIN_WAKER` is clear; the runtime may read it only while `JOIN_WAKER` is
//!    set and `COMPLETE` is set. After waking it, the runtime clears
//!    `JOIN_WAKER`; whichever side observes "no `JOIN_WAKER` and no
//!    `JOIN_INTEREST`" last drops the waker (so two tasks awaiting each other
//!    do not leak through their join wakers). Once `COMPLETE` is set and
//!    `JOIN_WAKER` clear, the field is the handle's for good (only the
//!    handle sets `JOIN_WAKER`, and never after `COMPLETE`): it may then
//!    hold the handle's taken marker (rule 5), which the runtime never sees.
//! 7. *Deallocation* may happen on any thread (the last waker may live
//!    anywhere). By rules 1 and 4 the future is already gone by then, and by
//!    rule 5 so is any output the runtime could not hand over. Every access
//!    to a task is made under a counted reference: the accessor's own, or
//!    one whose holder lends it for the duration (the poller's, behind the
//!    borrowed waker and `Core::current`); a thread that released a
//!    reference that was not the last touches the task no more. So a
//!    holder that reads a count of one (`Acquire`) is alone with the task
//!    and may free it without a write (the handle's drop,
//!    `TaskRef::release_join_complete`).
//! 8. *Shutdown.* When a runtime shuts down it claims every task still in its
//!    owned list (`transition_to_shutdown`), drops the future, stores
//!    `Cancelled` and completes it (which clears `SCHEDULED` even if a queue
//!    entry remains), then releases the references held by its queue entries
//!    without consulting the bit. A remote queue that is closed releases the references pushed
//!    to it instead of storing them, so waking after the runtime is gone is a
//!    no-op.

mod answer;
mod builder;
pub(crate) mod cancel;
pub(crate) mod catch_unwind;
mod current;
pub(crate) mod erased;
mod error;
pub(crate) mod failure;
pub(crate) mod group;
mod join;
pub(crate) mod list;
mod panic;
pub(crate) mod raw;
// `pub` items, re-exported by `crate::fuzz` under `cfg(fuzzing)`.
#[cfg_attr(not(fuzzing), allow(unreachable_pub))]
pub(crate) mod state;
#[cfg(all(test, loom))]
mod state_loom;
pub(crate) mod waker;
mod yield_now;

pub use answer::{Cancellable, Reraise, cancellable, cancelled};
pub(crate) use answer::{
    CatchFrame, catching, own_requests, raise, repend_own, request_own_cancel, take_own_request,
};
pub use builder::Builder;
pub use current::{TaskHandle, all_tasks, current};
pub use error::{Cancelled, TaskError};
pub use join::Task;
pub use panic::PanicPayload;
pub use yield_now::{YieldNow, yield_now};

pub use crate::rt::budget::{ConsumeBudget, consume_budget};

use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;

/// Spawns a future onto the current event loop and returns a handle to it.
///
/// This is `asyncio.create_task`: the future starts running on the loop's next
/// tick, whether or not the returned [`Task`] is awaited. The future need not
/// be `Send`; it always runs on the loop's thread. Dropping the handle detaches
/// the task (it keeps running); [`Task::cancel`](TaskHandle::cancel) stops it.
///
/// # Panics
///
/// Panics if called outside a coil runtime (outside [`crate::run`],
/// [`crate::Runtime::block_on`] or a task). From another thread, use
/// [`crate::Handle::spawn`].
///
/// ```
/// coil::run(async {
///     let task = coil::spawn(async { "done" });
///     assert_eq!(task.await.unwrap(), "done");
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    // `Builder::new().spawn(future)` without the builder: no name to move
    // and drop, no `cooperative` test (W1: -20 instructions a spawn).
    crate::rt::spawn_local(future, None)
}

/// Test support for `tests/rt_fork.rs` (docs/reliability.md, check 33); not
/// API, hidden from the docs, may change at any time.
///
/// Takes the process-wide lock of the memory task cells come from (the page
/// pool of `task/raw/slab/pages.rs`, taken about once per hundred spawns),
/// calls `held` with it held, and holds it until another thread waits for
/// it (a `fork()` on another thread waits for it in the pool's
/// `pthread_atfork` *prepare* handler) or `release` returns true, yielding
/// the CPU between checks. No task may be spawned or freed on this thread
/// meanwhile (it would wait for itself).
#[doc(hidden)]
pub fn __hold_task_memory_lock(held: impl FnOnce(), release: impl FnMut() -> bool) {
    raw::hold_pool_lock(held, release);
}

/// A task's identifier: unique among all tasks of the process, never reused.
///
/// Ids are not in spawn order in general. Each thread takes ids in blocks
/// of 1 024 from one process-wide counter (a spawn costs no atomic
/// operation for its id), and a task's id is not stored in it but given by
/// its memory: tasks are allocated in chunks, per size of their future,
/// and a chunk reserves one id per slot when it is created. So among tasks
/// spawned on one thread whose futures have the same size (rounded to 8
/// bytes) ids increase in spawn order; between futures of different sizes,
/// or across threads, they need not.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub(crate) NonZeroU64);

impl TaskId {
    /// The raw number, for logs.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Process-unique task ids, handed out in blocks of 1 024 per thread so
/// that taking some is a thread-local increment: `n` consecutive ids (1 to
/// 1 024), of which the first is returned. A task in a slab chunk takes its id from its
/// chunk's reservation (`task/raw/slab.rs`), a boxed task one of its own.
/// The thread-local has no destructor, so this works at thread exit too.
#[inline]
pub(crate) fn reserve_task_ids(n: u64) -> u64 {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    const BLOCK: u64 = 1024;
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    assert!(
        (1..=BLOCK).contains(&n),
        "task ids are reserved 1 to {BLOCK} at a time"
    );
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if end - next < n {
            next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        ids.set((next + n, end));
        next
    })
}
