//! The task allocation: header, stage, and the per-type vtable.
//!
//! Layout (`#[repr(C)]`, header first so a `*Header` is a `*Cell<F>`):
//!
//! ```text
//! Cell<F> ┌ Header ─ state word │ vtable │ shared │ owned-list links │ join waker │ id │ name
//!         └ Stage<F> ─ Running(F) | Finished(Result<F::Output, TaskError>) | Consumed
//! ```
//!
//! # `TaskRef` and where the unsafe boundary is
//!
//! A [`TaskRef`] is a pointer to a task that is alive: its type guarantees
//! it, so [`TaskRef::header`] and the other accessors are safe. The pointer
//! is private to this module and a `TaskRef` comes only from something that
//! owns a reference (the list in `task/mod.rs`):
//!
//! - [`allocate`] / [`allocate_cancelled`]: a new task and its initial
//!   references (owned list, handle and queue; or the handle alone);
//! - [`TaskRef::clone_ref`]: a new reference, counted at once (waker clone);
//! - [`TaskRef::from_raw`] (`unsafe`): a waker's data pointer, whose
//!   reference the waker holds;
//! - a copy of one of these. `TaskRef` is `Copy`, and a copy stands for the
//!   reference it was copied from (a queue entry, an owned-list link, the
//!   handle's field): copying costs no refcount traffic on the hot path.
//!
//! The invariant "every `TaskRef` safe code can reach points to a live
//! allocation" therefore holds as long as no allocation is freed while a copy
//! is still in use. Only two operations free one, and both are `unsafe`:
//! [`TaskRef::release`] and [`TaskRef::wake_by_val`] (their `# Safety` says
//! the caller owns the references it gives up, and that no copy is used
//! afterwards unless another reference keeps the task alive). So are the
//! operations that *transfer* a reference into something that will later
//! release or poll it without looking (`rt::schedule`, `Core::push_local`,
//! `Shared::push_spawned`, `OwnedList::push`, `Task::from_raw`,
//! `rt::core::adopt`), `OwnedList::remove` (it trusts that the task is in
//! that list), and the ones that touch loop-thread-only parts of the task
//! ([`TaskRef::poll`], [`TaskRef::shutdown`], the vtable). The containers of
//! queue entries (run queues, the remote queue's vectors, the simulator's
//! batch) are private to `rt`, which fills them only through those.
//!
//! The header's fields are private to the `task` module: outside it, safe
//! code reaches only state-word operations that give up no reference
//! ([`TaskRef::snapshot`], [`TaskRef::wake_by_ref`], [`TaskRef::clone_ref`];
//! at worst they leak a task) and immutable fields ([`TaskRef::id`],
//! [`TaskRef::shared`]), all of them thread-safe, which is why a `TaskRef`
//! may be `Send`. Inside the module, the state word's transitions are the
//! protocol of `task/mod.rs` and are trusted like the rest of its code.

use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::TaskError;
use super::TaskId;
use super::list::Links;
use super::state::{
    JOIN_INTEREST, JOIN_WAKER, Notify, Release, Snapshot, State, ToIdle, ToRunning,
};
use crate::rt::Shared;

/// The type-erased part of every task. See rule list in `task/mod.rs`.
/// Its fields are private to the `task` module (see the module docs).
#[repr(C)]
pub(crate) struct Header {
    /// Flags and refcount (`state.rs`).
    pub(super) state: State,
    /// Functions that know the concrete future type.
    pub(super) vtable: &'static Vtable,
    /// The runtime this task belongs to: where wakes are delivered. Kept alive
    /// by the task so that a waker outliving the loop can still find the
    /// (closed) remote queue.
    shared: Arc<Shared>,
    /// Owned-list links: loop thread only (rule 1).
    pub(super) links: Links,
    /// The join waker: see rule 6.
    join_waker: UnsafeCell<Option<Waker>>,
    /// Process-unique id.
    pub(super) id: TaskId,
    /// Optional name from `Builder::name`.
    pub(super) name: Option<Box<str>>,
}

// The header stays small: it is paid by every task (W1/W7 benchmarks).
static_assertions::const_assert!(std::mem::size_of::<Header>() <= 88);

/// The functions that need the concrete type.
pub(crate) struct Vtable {
    /// Loop thread: poll (or cancel) the future once.
    poll: unsafe fn(TaskRef) -> PollOutcome,
    /// Loop thread: rule 8; drop the future and store `Cancelled`.
    shutdown: unsafe fn(TaskRef),
    /// Handle: if complete, move the output into `*dst` (a
    /// `*mut Poll<Result<T, TaskError>>`), else register `waker`.
    pub(super) try_read_output: unsafe fn(TaskRef, *mut (), Option<&Waker>),
    /// Drop a stored output; returns the panic payload if it was one.
    pub(super) drop_output: unsafe fn(TaskRef) -> Option<Box<dyn Any + Send>>,
    /// Free the allocation (last reference).
    dealloc: unsafe fn(TaskRef),
}

/// What the loop must do after [`Vtable::poll`].
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PollOutcome {
    /// Pending and idle; nothing to do.
    Idle,
    /// Woken during the poll: push it on the local queue (the queue reference
    /// is the poller's).
    Reschedule,
    /// Completed: remove it from the owned list and release two references
    /// (the poller's queue reference and the owned list's).
    Complete,
}

/// The allocation for a future of type `F`.
#[repr(C)]
struct Cell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, TaskError>),
    Consumed,
}

/// A pointer to a live task (see the module docs): it points to a task
/// allocation that is kept alive by a reference this `TaskRef`, or the one it
/// was copied from, stands for. `Copy`: the code that holds one knows which
/// reference that is (queue entry, owned-list link, handle, waker).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: what safe code can do with a TaskRef on any thread touches only the
// atomic state word (reference-neutral transitions) and immutable header
// fields (`id`, `name`, `shared`: an `Arc` of a `Sync` type). Everything that
// is not thread-safe (owned-list links, stage, join waker, `release`) sits
// behind `unsafe` functions whose contracts include the thread rules of
// task/mod.rs (rule 1: loop thread; the handle's side under rules 5 and 6).
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// The header. Safe: a `TaskRef` points to a live task (type invariant).
    /// The fields are private to the `task` module.
    #[inline]
    pub(super) fn header(&self) -> &Header {
        // SAFETY: type invariant: the allocation is alive while any copy of
        // this TaskRef is in use (only `release` and `wake_by_val`, both
        // unsafe, can end it, and their callers promise no copy is used after).
        unsafe { self.0.as_ref() }
    }

    /// Rebuild a `TaskRef` from a pointer returned by [`TaskRef::into_raw`]
    /// (a waker's data pointer).
    ///
    /// # Safety
    /// `ptr` came from `into_raw` of a task, and a reference to that task is
    /// held (the waker's own, or the poller's for a borrowed waker) for as
    /// long as the returned `TaskRef` and its copies are used.
    #[inline]
    pub(crate) unsafe fn from_raw(ptr: *const ()) -> TaskRef {
        // SAFETY: the caller's promise: a pointer from `into_raw`, never null.
        TaskRef(unsafe { NonNull::new_unchecked(ptr.cast_mut().cast()) })
    }

    /// The header pointer, for a waker's data pointer. The reference this
    /// `TaskRef` stands for is not released: [`TaskRef::from_raw`] gives it back.
    #[inline]
    pub(crate) fn into_raw(self) -> *const () {
        self.0.as_ptr().cast_const().cast()
    }

    /// Take one more reference (a waker clone) and return it as a `TaskRef`
    /// that stands for it. Safe: forgetting it only leaks the task.
    #[inline]
    pub(crate) fn clone_ref(self) -> TaskRef {
        self.header().state.ref_inc();
        self
    }

    /// Release `n` references, freeing the task if they were the last.
    ///
    /// # Safety
    /// The caller owns `n` references to this task (task/mod.rs says who holds
    /// them) and gives them up. The task may be freed here: afterwards, this
    /// `TaskRef`, every copy of it and anything borrowed through them (the
    /// header, `shared()`) may be used only where another reference is known
    /// to keep the task alive.
    #[inline]
    pub(crate) unsafe fn release(self, n: usize) {
        if self.header().state.ref_dec(n) == Release::Dealloc {
            // SAFETY: that was the last reference (rule 7); the caller promised
            // not to use a copy without another reference, and none is left.
            unsafe { (self.header().vtable.dealloc)(self) }
        }
    }

    /// `Waker::wake`: the caller's reference becomes the queue reference, or
    /// is released (possibly the last: then the task is freed).
    ///
    /// # Safety
    /// As for `release(1)`: the caller owns one reference and gives it up.
    #[inline]
    pub(crate) unsafe fn wake_by_val(self) {
        match self.header().state.transition_to_notified_by_val() {
            // SAFETY: the transition set SCHEDULED: the caller's reference is
            // now the queue reference (rule 2), handed to the queue.
            Notify::Submit => unsafe { crate::rt::schedule(self) },
            Notify::Nothing => {}
            // SAFETY: the caller's was the last reference (rule 7), and the
            // caller promised not to use a copy without another one.
            Notify::Dealloc => unsafe { (self.header().vtable.dealloc)(self) },
        }
    }

    /// `Waker::wake_by_ref`: queue the task if it must be, with a new queue
    /// reference taken by the transition. Safe: no reference is given up.
    #[inline]
    pub(crate) fn wake_by_ref(self) {
        match self.header().state.transition_to_notified_by_ref() {
            // SAFETY: the transition set SCHEDULED and took a new reference:
            // the queue reference (rule 2), handed to the queue.
            Notify::Submit => unsafe { crate::rt::schedule(self) },
            Notify::Nothing | Notify::Dealloc => {}
        }
    }

    /// Poll (or cancel) the future once; see [`PollOutcome`] for what the
    /// caller then does with the queue reference.
    ///
    /// # Safety
    /// The loop thread of the task's runtime (rule 1); the caller popped
    /// `self` from a run queue and owns its queue reference (rule 2).
    #[inline]
    pub(crate) unsafe fn poll(self) -> PollOutcome {
        // SAFETY: the caller's promise is the vtable function's contract.
        unsafe { (self.header().vtable.poll)(self) }
    }

    /// Rule 8: claim the task, drop its future, store `Cancelled` and
    /// complete it. No reference is released.
    ///
    /// # Safety
    /// The loop thread, not inside a poll; the task is bound to this loop and
    /// neither running nor complete (it was in the owned list), or it was
    /// never published (a `Handle::spawn` that found the runtime closed).
    #[inline]
    pub(crate) unsafe fn shutdown(self) {
        // SAFETY: the caller's promise is the vtable function's contract.
        unsafe { (self.header().vtable.shutdown)(self) }
    }

    /// The task's id.
    #[inline]
    pub(crate) fn id(&self) -> TaskId {
        self.header().id
    }

    /// The runtime the task belongs to.
    #[inline]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.header().shared
    }

    /// The state word, for checks (`Acquire` load).
    #[inline]
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.header().state.load()
    }

    /// The name given with `Builder::name`, for messages.
    pub(crate) fn describe(&self) -> String {
        let h = self.header();
        match &h.name {
            Some(n) => format!("task {} ({n:?})", h.id),
            None => format!("task {}", h.id),
        }
    }
}

/// Allocate a task for `future`, scheduled, with three references: the owned
/// list's, the handle's and the queue's (`State::new_spawned`). The returned
/// `TaskRef` stands for all three; the caller hands each to its holder
/// (`OwnedList::push`, `Task::from_raw`, a run queue).
pub(crate) fn allocate<F>(
    future: F,
    shared: Arc<Shared>,
    id: TaskId,
    name: Option<Box<str>>,
) -> TaskRef
where
    F: Future + 'static,
{
    let cell = Box::new(Cell::<F> {
        header: Header {
            state: State::new_spawned(),
            vtable: vtable::<F>(),
            shared,
            links: Links::new(),
            join_waker: UnsafeCell::new(None),
            id,
            name,
        },
        stage: UnsafeCell::new(Stage::Running(future)),
    });
    // SAFETY: Box::into_raw is never null; Cell is repr(C) with the header first.
    TaskRef(unsafe { NonNull::new_unchecked(Box::into_raw(cell).cast::<Header>()) })
}

/// Allocate a task for a runtime that is shutting down: the future is dropped
/// at once (its destructor runs here) and the handle sees `Cancelled`. The
/// returned `TaskRef` stands for the one reference, the handle's.
pub(crate) fn allocate_cancelled<F>(
    future: F,
    shared: Arc<Shared>,
    id: TaskId,
    name: Option<Box<str>>,
) -> TaskRef
where
    F: Future + 'static,
{
    let out = match catch_unwind(AssertUnwindSafe(move || drop(future))) {
        Ok(()) => TaskError::Cancelled,
        Err(p) => TaskError::Panicked(p),
    };
    let cell = Box::new(Cell::<F> {
        header: Header {
            state: State::new_complete(),
            vtable: vtable::<F>(),
            shared,
            links: Links::new(),
            join_waker: UnsafeCell::new(None),
            id,
            name,
        },
        stage: UnsafeCell::new(Stage::Finished(Err(out))),
    });
    // SAFETY: as in `allocate`.
    TaskRef(unsafe { NonNull::new_unchecked(Box::into_raw(cell).cast::<Header>()) })
}

fn vtable<F: Future + 'static>() -> &'static Vtable {
    &Vtable {
        poll: poll::<F>,
        shutdown: shutdown::<F>,
        try_read_output: try_read_output::<F>,
        drop_output: drop_output::<F>,
        dealloc: dealloc::<F>,
    }
}

/// # Safety
/// `task` was allocated by `allocate::<F>` and is alive.
unsafe fn stage<F: Future>(task: TaskRef) -> *mut Stage<F> {
    // SAFETY: header first in a repr(C) Cell<F> (caller's promise about F).
    let cell = unsafe { task.0.cast::<Cell<F>>().as_ref() };
    cell.stage.get()
}

/// Drop the future in place, catching a panic from its destructor.
///
/// # Safety
/// Loop thread, stage is `Running`, no other reference to the stage.
unsafe fn drop_future<F: Future>(task: TaskRef) -> Option<Box<dyn Any + Send>> {
    // SAFETY: caller's promise (rule 1). Replacing the stage drops the future.
    let stage = unsafe { &mut *stage::<F>(task) };
    catch_unwind(AssertUnwindSafe(|| *stage = Stage::Consumed)).err()
}

/// # Safety
/// Loop thread; `task` popped from a run queue with its queue reference.
unsafe fn poll<F: Future>(task: TaskRef) -> PollOutcome {
    let header = task.header();
    match header.state.transition_to_running() {
        ToRunning::Cancel => {
            // SAFETY: RUNNING is ours, the stage holds the future (rule 4).
            let panic = unsafe { drop_future::<F>(task) };
            let out = match panic {
                Some(p) => TaskError::Panicked(p),
                None => TaskError::Cancelled,
            };
            // SAFETY: as above.
            unsafe { finish::<F>(task, Err(out)) };
            PollOutcome::Complete
        }
        ToRunning::Poll => {
            // SAFETY: the caller owns the queue reference until we return.
            let waker = unsafe { borrowed_waker(task) };
            let mut cx = Context::from_waker(&waker);
            // SAFETY: RUNNING: only this thread touches the stage (rule 1).
            let stage = unsafe { &mut *stage::<F>(task) };
            let Stage::Running(fut) = stage else {
                unreachable!("a task was polled after completing: {}", task.describe())
            };
            // SAFETY: the future lives in the heap cell and is never moved
            // until it is dropped in place.
            let fut = unsafe { Pin::new_unchecked(fut) };
            let res = catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx)));
            let out = match res {
                Ok(Poll::Pending) => {
                    return match header.state.transition_to_idle() {
                        ToIdle::Idle => PollOutcome::Idle,
                        ToIdle::Reschedule => PollOutcome::Reschedule,
                    };
                }
                Ok(Poll::Ready(v)) => {
                    // SAFETY: still RUNNING on the loop thread.
                    match unsafe { drop_future::<F>(task) } {
                        None => Ok(v),
                        Some(p) => {
                            // The output's destructor may panic too; contain
                            // it, or it would unwind out of the loop with the
                            // task still RUNNING (and abort at shutdown).
                            let _ = catch_unwind(AssertUnwindSafe(move || drop(v)));
                            Err(TaskError::Panicked(p))
                        }
                    }
                }
                Err(payload) => {
                    // SAFETY: still RUNNING on the loop thread.
                    let _second = unsafe { drop_future::<F>(task) };
                    Err(TaskError::Panicked(payload))
                }
            };
            // SAFETY: still RUNNING on the loop thread, future dropped.
            unsafe { finish::<F>(task, out) };
            PollOutcome::Complete
        }
    }
}

/// # Safety
/// Loop thread, shutdown (rule 8): the task is in the owned list and not running.
unsafe fn shutdown<F: Future>(task: TaskRef) {
    task.header().state.transition_to_shutdown();
    // SAFETY: we hold RUNNING now.
    let out = match unsafe { drop_future::<F>(task) } {
        Some(p) => TaskError::Panicked(p),
        None => TaskError::Cancelled,
    };
    // SAFETY: as above.
    unsafe { finish::<F>(task, Err(out)) };
}

/// Write the output, set COMPLETE, notify the join side (rules 4–6).
///
/// # Safety
/// Loop thread, RUNNING held, stage is `Consumed`.
unsafe fn finish<F: Future>(task: TaskRef, out: Result<F::Output, TaskError>) {
    // SAFETY: caller's promise; nobody else reads the stage before COMPLETE.
    unsafe { *stage::<F>(task) = Stage::Finished(out) };
    let header = task.header();
    let snap = header.state.transition_to_complete();
    // SAFETY: loop thread (caller's promise), the snapshot just returned.
    unsafe { complete_join(task, snap) };
}

/// Type-independent part of completion: join waker or output drop.
///
/// # Safety
/// Loop thread; `snap` is what `transition_to_complete` returned for `task`.
unsafe fn complete_join(task: TaskRef, snap: Snapshot) {
    let header = task.header();
    if !snap.is(JOIN_INTEREST) {
        // Rule 5: nobody will read it; drop it here (on the loop thread).
        // SAFETY: COMPLETE is set and no handle exists.
        let panic = unsafe { (header.vtable.drop_output)(task) };
        if let Some(p) = panic {
            report_detached_panic(task, p);
        }
    } else if snap.is(JOIN_WAKER) {
        // SAFETY: rule 6: JOIN_WAKER and COMPLETE are set, the field is ours to read.
        let waker = unsafe { &*header.join_waker.get() };
        if let Some(w) = waker {
            w.wake_by_ref();
        }
        let after = header.state.unset_join_waker_after_complete();
        if !after.is(JOIN_INTEREST) {
            // SAFETY: rule 6: the handle is gone and saw JOIN_WAKER set, so it
            // left the field to us.
            drop(unsafe { (*header.join_waker.get()).take() });
        }
    }
}

/// Print a panic nobody can observe, once.
pub(crate) fn report_detached_panic(task: TaskRef, payload: Box<dyn Any + Send>) {
    let msg = super::error::panic_message(&*payload);
    eprintln!(
        "coil: {} panicked and nobody awaited it: {msg}",
        task.describe()
    );
    // Dropping a payload can itself panic; never let that unwind into the loop.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

/// # Safety
/// The caller is the task's handle (rule 6) and `dst` points to a
/// `Poll<Result<F::Output, TaskError>>`.
unsafe fn try_read_output<F: Future>(task: TaskRef, dst: *mut (), waker: Option<&Waker>) {
    let header = task.header();
    // SAFETY: the caller is the handle (rule 6).
    if !unsafe { can_read_output(header, waker) } {
        return;
    }
    // SAFETY: COMPLETE observed with Acquire; rule 5 gives the output to us.
    let stage = unsafe { &mut *stage::<F>(task) };
    match std::mem::replace(stage, Stage::Consumed) {
        Stage::Finished(out) => {
            // SAFETY: caller's promise about the type behind dst.
            unsafe { *dst.cast::<Poll<Result<F::Output, TaskError>>>() = Poll::Ready(out) };
        }
        _ => panic!(
            "a coil Task was polled again after it returned its output; a Task can be awaited only once"
        ),
    }
}

/// Handle side of rule 6. Returns true when the output can be read now.
///
/// # Safety
/// The caller is the task's handle (the join-waker field is its own while
/// `JOIN_WAKER` is clear, rule 6).
unsafe fn can_read_output(header: &Header, waker: Option<&Waker>) -> bool {
    use super::state::COMPLETE;
    let snap = header.state.load();
    if snap.is(COMPLETE) {
        return true;
    }
    let Some(waker) = waker else { return false };
    if snap.is(JOIN_WAKER) {
        // SAFETY: rule 6: the runtime only reads this field after COMPLETE,
        // which is not set; a shared read by us is fine either way.
        let same =
            unsafe { (*header.join_waker.get()).as_ref() }.is_some_and(|w| w.will_wake(waker));
        if same {
            return false;
        }
        if header.state.unset_join_waker().is_err() {
            return true;
        }
    }
    // SAFETY: JOIN_WAKER is clear: the field is the handle's (rule 6).
    unsafe { *header.join_waker.get() = Some(waker.clone()) };
    header.state.set_join_waker().is_err()
}

/// # Safety
/// COMPLETE is set and the caller owns the output (rule 5).
unsafe fn drop_output<F: Future>(task: TaskRef) -> Option<Box<dyn Any + Send>> {
    // SAFETY: caller's promise.
    let stage = unsafe { &mut *stage::<F>(task) };
    match std::mem::replace(stage, Stage::Consumed) {
        Stage::Finished(Err(TaskError::Panicked(p))) => Some(p),
        Stage::Finished(Ok(v)) => {
            // The output's destructor may panic; contain it.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(v)));
            None
        }
        _ => None,
    }
}

/// # Safety
/// The last reference was just released (rule 7).
unsafe fn dealloc<F: Future>(task: TaskRef) {
    // SAFETY: allocated as Box<Cell<F>> in `allocate`, no reference remains.
    let cell = unsafe { Box::from_raw(task.0.cast::<Cell<F>>().as_ptr()) };
    debug_assert!(
        !matches!(
            // SAFETY: we own the cell.
            unsafe { &*cell.stage.get() },
            Stage::Running(_)
        ),
        "a task was freed with its future alive"
    );
    let _ = catch_unwind(AssertUnwindSafe(move || drop(cell)));
}

/// A waker for `task` that borrows the poller's reference (no refcount
/// traffic). Valid for the duration of the poll.
///
/// # Safety
/// The caller holds a reference to `task` for as long as the waker is used,
/// and never drops the waker (it owns no reference).
unsafe fn borrowed_waker(task: TaskRef) -> ManuallyDrop<Waker> {
    // SAFETY: the caller's promise; ManuallyDrop keeps us from releasing a
    // reference we do not own.
    ManuallyDrop::new(unsafe { super::waker::waker_from_raw(task) })
}

/// Handle support: whether the task completed.
pub(crate) fn is_complete(task: TaskRef) -> bool {
    task.snapshot().is(super::state::COMPLETE)
}

/// Handle support: drop the join waker field (caller owns it per rule 6).
///
/// # Safety
/// The caller owns the field per rule 6.
pub(crate) unsafe fn drop_join_waker(task: TaskRef) {
    // SAFETY: caller's promise.
    drop(unsafe { (*task.header().join_waker.get()).take() });
}
