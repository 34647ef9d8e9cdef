//! The task's functions, in two halves (issue 18: per-type code is paid
//! in build time and binary size by every spawned future type):
//!
//! - **per type**, the entries of [`Vtable`] that must know the future type
//!   `F`: the poll's hot path ([`poll`]: the state word's `start_poll` and
//!   `transition_to_idle`, the future's `poll` inlined, the one
//!   `catch_unwind`, and on `Ready` the future dropped in place and the
//!   output written); dropping the future ([`drop_future`]); storing a
//!   failure ([`store_failed`]); emptying the stage of a completed task
//!   ([`drop_output_of`]); moving the result to the handle
//!   ([`take_output`]); and the cell's [`Layout`] and where it
//!   came from, for deallocation. Apart
//!   from `poll`, each is a few lines with no state-word transition, no
//!   `catch_unwind` and no formatting.
//! - **shared by every type**: the cold branches of the poll (cancel,
//!   panic), shutdown and `allocate_cancelled`, the `catch_unwind` around
//!   every other per-type call that may run user code (a future's or an
//!   output's destructor), the errors of a cancelled or panicked task,
//!   completion and the join waker (rules 4 to 8 of `task/mod.rs`),
//!   reading the output for the handle, and deallocation. They call the
//!   per-type entries through the header's vtable pointer.
//!
//! Measured (issue 18; callgrind, `coil-benches <w> peer=coil/uring
//! n=100000`; `cargo llvm-lines --test rt -p coil`): W1 (`spawn`) 47.90 M
//! to 46.91 M instructions, W2 (`yield`) 135.17 M to 128.18 M (the hot
//! path is smaller with its cold branches outlined); the `tests/rt`
//! binary's LLVM lines 1 517 044 to 1 322 218, of which the per-type task
//! functions 359 631 to 239 728 (about 1 290 to 860 per future type).
//! Why the hot path stays per type: with `poll` shared and only the
//! future's poll behind the vtable (one more indirect call and one more
//! frame per poll), W2 took 160.3 M instructions and W1 56.5 M (+18 %), far
//! over what the smaller code pays back; a shared header-writing half of
//! `into_task` cost W1 +4.5 % and was dropped too.
//!
//! A panic from user code in a per-type function unwinds to the caller's
//! `catch_unwind`, which knows from the call it made what the stage holds
//! (each per-type function's docs say what it leaves behind when it
//! unwinds).
//!
//! The layout and [`TaskRef`] are in the parent module, whose docs say
//! where the unsafe boundary is; this module is inside it.

use std::alloc::Layout;
use std::any::Any;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::{Cell, Header, PollOutcome, Stage, TaskRef, Vtable};
use crate::rt::Shared;
use crate::task::TaskError;
use crate::task::list::OwnedList;
use crate::task::state::{
    DropJoin, FAILED, JOIN_INTEREST, JOIN_WAKER, Snapshot, ToIdle, ToRunning,
};

/// The vtable of tasks whose future is an `F`, in a slab cell if `SLAB`
/// and the cell fits (`Cell::FROM_SLAB`), else boxed.
pub(super) fn vtable<F: Future + 'static, const SLAB: bool>() -> &'static Vtable {
    // A constant, so that the reference is promoted to a static.
    &VtableOf::<F, SLAB>::VTABLE
}

/// Holds the vtable of `F` as an associated constant.
struct VtableOf<F, const SLAB: bool>(std::marker::PhantomData<F>);

impl<F: Future + 'static, const SLAB: bool> VtableOf<F, SLAB> {
    const VTABLE: Vtable = Vtable {
        poll: poll::<F>,
        drop_future: drop_future::<F>,
        store_failed: store_failed::<F>,
        drop_output: drop_output_of::<F>,
        stage_offset: std::mem::offset_of!(Cell<F>, stage),
        layout: Layout::new::<Cell<F>>(),
        from_slab: SLAB && Cell::<F>::FROM_SLAB,
    };
}

// ---- per type ---------------------------------------------------------

/// # Safety
/// `task` was allocated by `allocate::<F>` and is alive.
#[inline(always)]
unsafe fn stage<F: Future>(task: TaskRef) -> *mut Stage<F> {
    // SAFETY: header first in a repr(C) Cell<F> (caller's promise about F).
    let cell = unsafe { task.0.cast::<Cell<F>>().as_ref() };
    cell.stage.get()
}

/// Poll (or cancel) the task once (`TaskRef::poll`): the loop's hot path,
/// per type so that the future's `poll` is inlined into it, with every
/// cold branch (cancel, panic) in a shared function. `woke_self` is the
/// loop's self-wake flag, clear when the poll starts: set during it if the
/// task woke itself (`Core::note_self_wake`); a `Pending` poll then keeps
/// `RUNNING` and asks to be queued again, running while queued
/// (`state.rs`).
///
/// On `Ready` the future is dropped in place and the stage then holds the
/// output, also when the future's destructor unwinds (the guard below
/// writes it during the unwind). A panic of the future's `poll` (the stage
/// still holds the future) or of its destructor (the stage holds the
/// output: `output_live`) is caught here and handed to [`poll_panicked`],
/// which empties the stage either way.
///
/// # Safety
/// Loop thread; `task` popped from a run queue with its queue reference.
#[inline]
unsafe fn poll<F: Future>(
    task: TaskRef,
    woke_self: &std::cell::Cell<bool>,
    owned: &OwnedList,
) -> PollOutcome {
    let header = task.header();
    if header.state.start_poll() == ToRunning::Cancel {
        // SAFETY: RUNNING is ours, the stage holds the future (rule 4);
        // the task is in `owned` (caller's promise).
        return unsafe { poll_cancelled(task, owned) };
    }
    // SAFETY: the caller owns the queue reference until we return.
    let waker = unsafe { borrowed_waker(task) };
    let mut cx = Context::from_waker(&waker);
    let stage = unsafe_stage::<F>(task);
    // Set just before the future is dropped after `Ready`: from then on the
    // stage holds the output, also if the future's destructor unwinds.
    let mut output_live = false;
    let res = catch_unwind(AssertUnwindSafe(|| {
        // The future is borrowed here, inside the closure, and not
        // captured by it: a captured `&mut` would be a protected argument
        // of the closure call and outlive the `drop_in_place` below
        // (Miri, Stacked Borrows).
        // The future lives in the heap cell and is never moved until it is
        // dropped in place (so pinning it is sound).
        // SAFETY: RUNNING: only this thread touches the stage (rule 1); before
        // `COMPLETE` (`start_poll` checked) its live field is the future.
        let fut = unsafe { Pin::new_unchecked(&mut *(&raw mut (*stage).future).cast::<F>()) };
        let Poll::Ready(v) = fut.poll(&mut cx) else {
            return false;
        };
        let done = WriteDone::<F> {
            stage,
            v: ManuallyDrop::new(v),
        };
        output_live = true;
        // The guard `done` then writes the output over the stage.
        // SAFETY: the stage holds the future (its borrow ended with the
        // poll); dropped in place (pinned: never moved), once.
        unsafe { ManuallyDrop::drop(&mut (*stage).future) };
        drop(done);
        true
    }));
    match res {
        Ok(false) => {
            if woke_self.get() {
                // Running while queued: RUNNING stays set and the poller's
                // reference becomes the queue entry's.
                return PollOutcome::Reschedule;
            }
            match header.state.transition_to_idle() {
                ToIdle::Idle => PollOutcome::Idle,
                ToIdle::Reschedule => PollOutcome::Reschedule,
            }
        }
        // SAFETY: still RUNNING on the loop thread; the stage holds the
        // output; the task is in `owned` (caller's promise).
        Ok(true) => unsafe { finish_polled(task, owned) },
        // SAFETY: still RUNNING on the loop thread; in `owned` (as above).
        Err(payload) => unsafe { poll_panicked(task, payload, output_live, owned) },
    }
}

/// Writes the output `v` over a stage whose future was just dropped, also
/// when the future's destructor unwinds.
struct WriteDone<F: Future> {
    stage: *mut Stage<F>,
    v: ManuallyDrop<F::Output>,
}

impl<F: Future> Drop for WriteDone<F> {
    fn drop(&mut self) {
        // SAFETY: the future in the stage was dropped (or its destructor
        // unwound: it is gone either way), so the stage is dead memory of
        // the right type; `v` is taken once, here.
        unsafe {
            ptr::write(
                self.stage,
                Stage {
                    output: ManuallyDrop::new(ManuallyDrop::take(&mut self.v)),
                },
            )
        }
    }
}

/// `stage::<F>` for a live task, as a raw pointer (no reference is made).
#[inline(always)]
fn unsafe_stage<F: Future>(task: TaskRef) -> *mut Stage<F> {
    // SAFETY: every caller is a vtable entry of `F`'s vtable, so the task
    // was allocated by `allocate::<F>`, and a `TaskRef` is alive.
    unsafe { stage::<F>(task) }
}

/// Drop the future. Unwinds if its destructor panics; the future is gone
/// all the same.
///
/// # Safety
/// The loop thread with `RUNNING` before `COMPLETE` (rule 1), or a task
/// not yet published; the stage holds the future, which is not used again.
unsafe fn drop_future<F: Future>(task: TaskRef) {
    // SAFETY: caller's promise: the future is the live field, dropped once.
    unsafe { ManuallyDrop::drop(&mut (*unsafe_stage::<F>(task)).future) };
}

/// Store the failure of a task whose future is gone.
///
/// # Safety
/// Loop thread with `RUNNING`, before `COMPLETE`, the future dropped; or a
/// task not yet published, its future dropped.
unsafe fn store_failed<F: Future>(task: TaskRef, err: Box<TaskError>) {
    // SAFETY: caller's promise; the stage holds nothing live, overwritten.
    unsafe {
        ptr::write(
            unsafe_stage::<F>(task),
            Stage {
                failed: ManuallyDrop::new(err),
            },
        )
    };
}

/// Empty the stage of a completed task: a failure (`failed`: `FAILED` is
/// set) is returned, an output dropped. Unwinds if the output's destructor
/// panics; the output is gone all the same.
///
/// # Safety
/// `COMPLETE` is set, `failed` is whether `FAILED` is, and the caller owns
/// the result (rule 5), which is still in the stage and not used again.
unsafe fn drop_output_of<F: Future>(task: TaskRef, failed: bool) -> Option<Box<TaskError>> {
    let stage = unsafe_stage::<F>(task);
    if failed {
        // SAFETY: caller's promise: `FAILED`, so the error is the live field.
        return Some(unsafe { ManuallyDrop::take(&mut (*stage).failed) });
    }
    // SAFETY: caller's promise: the output is the live field, dropped once
    // (not pinned: dropped in place like any value).
    unsafe { ManuallyDrop::drop(&mut (*stage).output) };
    None
}

// ---- shared by every type ---------------------------------------------

/// Loop thread: drop the future through the vtable, catching a panic from
/// its destructor.
///
/// # Safety
/// As for [`drop_future`].
unsafe fn drop_future_caught(task: TaskRef) -> Option<Box<dyn Any + Send>> {
    let drop_future = task.header().vtable.drop_future;
    // SAFETY: caller's promise.
    catch_unwind(AssertUnwindSafe(|| unsafe { drop_future(task) })).err()
}

/// `poll`'s cold branch for a task whose `CANCELLED` it saw: drop the
/// future, store the error and complete the task, unlinked from `owned`.
///
/// # Safety
/// Loop thread, `RUNNING` held, the stage holds the future (rule 4); the
/// task is in `owned`.
#[cold]
#[inline(never)]
unsafe fn poll_cancelled(task: TaskRef, owned: &OwnedList) -> PollOutcome {
    // SAFETY: caller's promise.
    unsafe { fail(task, drop_future_caught(task)) };
    // SAFETY: caller's promise; the poller's reference keeps it alive.
    unsafe { owned.remove(task) };
    PollOutcome::Complete
}

/// `poll`'s cold branch for a panic caught around the future's `poll`: the
/// poll panicked (the stage holds the future), or the future's destructor
/// did after `Ready` (the stage holds the output: `output_live`). Drop
/// either (the output's destructor may panic too: contained and not
/// reported, the first panic is the task's error), store the error and
/// complete.
///
/// # Safety
/// Loop thread, `RUNNING` held, the stage as described.
#[cold]
#[inline(never)]
unsafe fn poll_panicked(
    task: TaskRef,
    payload: Box<dyn Any + Send>,
    output_live: bool,
    owned: &OwnedList,
) -> PollOutcome {
    let _second = if output_live {
        let drop_output = task.header().vtable.drop_output;
        // SAFETY: caller's promise: RUNNING, the output is the live field
        // and nobody else can reach it before COMPLETE.
        catch_unwind(AssertUnwindSafe(|| unsafe { drop_output(task, false) })).err()
    } else {
        // SAFETY: caller's promise: RUNNING, the future is the live field.
        unsafe { drop_future_caught(task) }
    };
    // SAFETY: as above; the stage now holds nothing live.
    unsafe { fail(task, Some(payload)) };
    // SAFETY: caller's promise; the poller's reference keeps it alive.
    unsafe { owned.remove(task) };
    PollOutcome::Complete
}

/// Store the error of a task whose future was dropped (`panic`: the
/// payload if the future, or its destructor, panicked; otherwise it was
/// cancelled) and complete it.
///
/// # Safety
/// Loop thread, `RUNNING` held, the future dropped (nothing live in the
/// stage); `finish`'s contract.
unsafe fn fail(task: TaskRef, panic: Option<Box<dyn Any + Send>>) {
    let out = match panic {
        Some(p) => task.panicked_error(p),
        None => task.cancelled_error(),
    };
    // SAFETY: caller's promise.
    unsafe { (task.header().vtable.store_failed)(task, Box::new(out)) };
    // SAFETY: caller's promise; the stage holds the error.
    unsafe { finish(task, true) };
}

/// Rule 8 (`TaskRef::shutdown`): claim the task, drop its future, store
/// `Cancelled` (or the destructor's panic) and complete it.
///
/// # Safety
/// Loop thread, shutdown (rule 8): the task is in the owned list and not
/// being polled (`RUNNING` may be set: running while queued).
pub(super) unsafe fn shutdown(task: TaskRef) {
    task.header().state.transition_to_shutdown();
    // SAFETY: we hold RUNNING now; the stage holds the future (rule 4).
    unsafe { fail(task, drop_future_caught(task)) };
}

/// A task for a runtime that is shutting down (`allocate_cancelled`): drop
/// its future at once and store `Cancelled` (or the destructor's panic).
///
/// # Safety
/// `task` was just allocated with its future and `State::new_complete`, and
/// is not published yet (nobody else can reach it).
pub(super) unsafe fn cancel_unpublished(task: TaskRef) {
    // SAFETY: caller's promise: the stage and the task are ours alone.
    let panic = unsafe { drop_future_caught(task) };
    let out = match panic {
        Some(p) => task.panicked_error(p),
        None => task.cancelled_error(),
    };
    // SAFETY: as above; the future is gone (`new_complete` set `FAILED`).
    unsafe { (task.header().vtable.store_failed)(task, Box::new(out)) };
}

/// Set COMPLETE (and FAILED if `failed`) and notify the join side (rules
/// 4–6), the result written.
///
/// # Safety
/// Loop thread, RUNNING held, the stage holds the result: the error if
/// `failed`, else the output.
#[inline]
unsafe fn finish(task: TaskRef, failed: bool) {
    let snap = task.header().state.transition_to_complete(failed);
    // SAFETY: loop thread (caller's promise), the snapshot just returned.
    unsafe { complete_join(task, snap) };
}

/// Completion of a poll that returned `Ready`, the output in the stage:
/// unlink the task from `owned`, then complete it and, when the join side
/// needs nothing (the common case: a live handle that published no waker),
/// release the poller's and the list's references in the same
/// read-modify-write (`transition_to_complete_releasing`; issue 18, W1).
///
/// The task leaves `owned` before `COMPLETE`, not after as the other
/// completions do: the list's reference must be the poller's to give
/// away in that write, after which the handle may free the task at any
/// moment. No code runs between the unlink and that write; when it
/// released nothing, the user code that `complete_join` then runs (the
/// join waker's wake, or a detached task's output drop) sees a task that
/// is complete and no longer in `owned`, which `all_tasks` omits and
/// shutdown does not visit, while the poller's two references keep it.
///
/// # Safety
/// Loop thread, `RUNNING` held, the stage holds the output; the task is in
/// `owned`.
#[inline]
unsafe fn finish_polled(task: TaskRef, owned: &OwnedList) -> PollOutcome {
    // SAFETY: caller's promise; the poller's reference keeps it alive, and
    // the list's is now the poller's too.
    unsafe { owned.remove(task) };
    let (snap, released) = task.header().state.transition_to_complete_releasing();
    if released {
        // Not touched again: the handle may be freeing it now.
        return PollOutcome::Released;
    }
    // SAFETY: loop thread (caller's promise), the snapshot just returned;
    // the poller still holds its two references.
    unsafe { complete_join(task, snap) };
    PollOutcome::Complete
}

/// Type-independent part of completion: join waker or output drop.
///
/// # Safety
/// Loop thread; `snap` is what `transition_to_complete` returned for `task`.
unsafe fn complete_join(task: TaskRef, snap: Snapshot) {
    if !snap.is(JOIN_INTEREST) {
        // Rule 5: nobody will read it; drop it here (on the loop thread).
        // SAFETY: COMPLETE is set and no handle exists.
        let panic = unsafe { drop_output(task) };
        if let Some(p) = panic {
            report_detached_panic(task, p);
        }
        // Debug mode: the spawn location's entry is the loop's to remove
        // when no handle is left to do it (`rt/debug.rs`).
        if let Some(checks) = &task.shared().debug {
            checks.forget(task.id().as_u64());
        }
    } else if snap.is(JOIN_WAKER) {
        // SAFETY: rule 6: JOIN_WAKER and COMPLETE are set, the field is ours
        // to read (caller's promise: the snapshot of the completing write).
        unsafe { wake_join_waker(task) };
    }
}

/// Completion's wake of the handle's waker (rule 6), and its drop if the
/// handle went away meanwhile.
///
/// A waker is user code: the handle may be awaited outside coil, under a
/// foreign executor whose waker can panic in `wake_by_ref` or in its drop.
/// Such a panic is caught here, the bookkeeping finished, and the panic
/// reported (stderr, or the debug sink), and the loop carries on, as
/// asyncio's loop reports an exception raised by a callback and goes on
/// with the next one. Unwinding into the loop instead would skip the
/// release of the poller's references (the task leaked) and leave
/// `Core::current` naming the task after its poll: with every user call of
/// the poll caught (the future's poll and drop, the output's drop, this),
/// a task's poll never unwinds into the loop.
///
/// # Safety
/// Loop thread; `COMPLETE` and `JOIN_WAKER` are set (rule 6: the field is
/// ours to read); the poller's references keep the task alive.
#[inline(never)]
unsafe fn wake_join_waker(task: TaskRef) {
    let header = task.header();
    // SAFETY: caller's promise (rule 6). `wake_by_ref` leaves the field as
    // it was, also when it unwinds.
    let woke = catch_unwind(AssertUnwindSafe(|| unsafe {
        header.join_waker.wake_by_ref()
    }));
    let after = header.state.unset_join_waker_after_complete();
    let dropped = if after.is(JOIN_INTEREST) {
        None
    } else {
        // SAFETY: rule 6: the handle is gone and saw JOIN_WAKER set, so it
        // left the field to us. `clear` empties the word before it drops
        // the waker, so an unwinding drop leaves no second owner.
        catch_unwind(AssertUnwindSafe(|| unsafe { header.join_waker.clear() })).err()
    };
    for payload in woke.err().into_iter().chain(dropped) {
        report_waker_panic(task, payload);
    }
}

/// Report a panic of the handle's waker, caught at completion
/// ([`wake_join_waker`]).
#[cold]
fn report_waker_panic(task: TaskRef, payload: Box<dyn Any + Send>) {
    report_task_panic(task, payload, |who, msg, _| {
        format!(
            "the waker of the Task handle awaiting {who} panicked when the task completed (the \
             panic was caught and the loop went on; the handle still holds the result): {msg}"
        )
    });
}

/// Report a panic nobody can observe, once: on stderr, or in debug mode
/// through the sink with the task's spawn location (asyncio's "Task
/// exception was never retrieved").
pub(crate) fn report_detached_panic(task: TaskRef, payload: Box<dyn Any + Send>) {
    report_task_panic(task, payload, |who, msg, debug| {
        let dropped = if debug {
            " (its Task handle was dropped)"
        } else {
            ""
        };
        format!("{who} panicked and nobody awaited it{dropped}: {msg}")
    });
}

/// Reports a caught panic about `task` that no caller will see, as the
/// line `coil: {says(who, message, debug)}`: on stderr (a failed write
/// ignored), or in debug mode through the sink, where `who` also names the
/// spawn location. Runs on the loop, inside a poll: nothing here unwinds
/// (the payload's drop is caught too).
fn report_task_panic(
    task: TaskRef,
    payload: Box<dyn Any + Send>,
    says: impl FnOnce(&str, &str, bool) -> String,
) {
    let payload = crate::task::PanicPayload::new(payload);
    let msg = payload.message().unwrap_or("Box<dyn Any>");
    match &task.shared().debug {
        None => crate::rt::debug::report_on_stderr(format_args!(
            "coil: {}",
            says(&task.describe(), msg, false)
        )),
        Some(checks) => checks.report(&format!("coil: {}", says(&checks.who(task), msg, true))),
    }
    // Dropping a payload can itself panic; never let that unwind into the loop.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

/// The handle's read: if the task is complete, move the result out (read
/// in place at the stage's start, `read_result`: no call through the
/// vtable), else register `waker` (rule 6) and return `Pending`.
///
/// The stage has no tag (`Stage`), so the handle remembers that it took
/// the result (rule 5 makes it the result's only reader):
///
/// - the common case, `JOIN_WAKER` clear after `COMPLETE`: the join-waker
///   field is the handle's for good (rule 6: `JOIN_WAKER` is never set
///   again), so the handle replaces its waker with the *taken marker*, a
///   value of the field that is no waker (`join_waker.rs`) and that the
///   loop never reads. No write to the state word.
/// - `JOIN_WAKER` still set (the loop is waking the join waker at this
///   moment, on another thread): the field is not the handle's; it takes
///   the result and gives up join interest at once
///   (`drop_join_interest`). `COMPLETE` without `JOIN_INTEREST`, seen by
///   the handle itself, then means "taken", and whichever side sees both
///   bits clear last drops the waker, as for a handle dropped then.
///
/// # Panics
/// If the result was already taken (a `Task` awaited again after it
/// returned).
///
/// # Safety
/// The caller is the task's handle (rules 5 and 6) and `T` is the output
/// type of the task's future.
#[inline(always)]
pub(crate) unsafe fn try_read_output<T>(
    task: TaskRef,
    waker: Option<&Waker>,
) -> Poll<Result<T, TaskError>> {
    let header = task.header();
    // SAFETY: the caller is the handle (rule 6).
    let Some(snap) = (unsafe { can_read_output(header, waker) }) else {
        return Poll::Pending;
    };
    if !snap.is(JOIN_INTEREST) {
        // Only the handle clears it, and while it lives only here.
        output_taken_twice()
    }
    // `failed` is the snapshot's FAILED, set with COMPLETE.
    let failed = snap.is(FAILED);
    if !snap.is(JOIN_WAKER) {
        // SAFETY: rule 6: COMPLETE is set and JOIN_WAKER clear, so the
        // field is the handle's and stays so.
        if unsafe { header.join_waker.is_taken() } {
            output_taken_twice()
        }
        // SAFETY: COMPLETE observed with Acquire; rule 5 gives the result to
        // the handle, not taken before (no marker); `T` is the output type
        // (the caller's promise).
        let out = unsafe { read_result::<T>(task, failed) };
        // Then the marker, over the handle's waker (dropped here: its
        // destructor may be foreign code, and the output is out already).
        // SAFETY: the field is the handle's for good (above).
        unsafe { header.join_waker.mark_taken() };
        Poll::Ready(out)
    } else {
        // SAFETY: as above (the result is still there: JOIN_INTEREST set).
        let out = unsafe { read_result::<T>(task, failed) };
        // SAFETY: the handle, after taking the result with JOIN_WAKER set.
        unsafe { give_up_interest_after_read(task) };
        Poll::Ready(out)
    }
}

/// Moves the result out of the stage, in place: the error if `failed`,
/// else the output, read as a `T` (the stage is a `repr(C)` union whose
/// fields all start at `stage_offset`).
///
/// # Safety
/// The handle after it saw `COMPLETE` (rule 5), `failed` whether `FAILED`
/// is set, the result still in the stage (not taken before; not used
/// again), and `T` the task's output type.
#[inline(always)]
unsafe fn read_result<T>(task: TaskRef, failed: bool) -> Result<T, TaskError> {
    // SAFETY: the stage lies `stage_offset` bytes into the live cell.
    let stage = unsafe { task.0.cast::<u8>().add(task.header().vtable.stage_offset) };
    // SAFETY: the caller's promise: `failed` says which field is live, each
    // at the stage's start with its type (`Box<TaskError>` or `T`), and it
    // is moved out once.
    unsafe {
        if failed {
            Err(*stage.cast::<Box<TaskError>>().read())
        } else {
            Ok(stage.cast::<T>().read())
        }
    }
}

/// `try_read_output`'s rare branch: the handle took the result while the
/// loop still held the join-waker field (`JOIN_WAKER` set): give up join
/// interest now, and drop the waker if the loop is done with it.
///
/// # Safety
/// The handle, which just took the result after seeing `COMPLETE` with
/// `JOIN_WAKER` set.
#[cold]
#[inline(never)]
unsafe fn give_up_interest_after_read(task: TaskRef) {
    let DropJoin::Complete { may_drop_waker } = task.header().state.drop_join_interest() else {
        unreachable!("COMPLETE was seen")
    };
    if may_drop_waker {
        // SAFETY: rule 6: the loop cleared JOIN_WAKER meanwhile and saw
        // JOIN_INTEREST set, so the field is the handle's to drop.
        unsafe { drop_join_waker(task) };
    }
}

/// Handle support: whether the handle took the result already, as
/// `try_read_output` records it in the join-waker field.
///
/// # Safety
/// The caller is the handle and the field is its own (rule 6).
pub(crate) unsafe fn output_taken(task: TaskRef) -> bool {
    // SAFETY: caller's promise.
    unsafe { task.header().join_waker.is_taken() }
}

#[cold]
#[inline(never)]
fn output_taken_twice() -> ! {
    panic!(
        "a coil Task was polled again after it returned its output; a Task can be awaited only once"
    )
}

/// Handle side of rule 6: the snapshot in which it saw `COMPLETE`, when
/// the result can be read now.
///
/// # Safety
/// The caller is the task's handle (the join-waker field is its own while
/// `JOIN_WAKER` is clear, rule 6).
#[inline(always)]
unsafe fn can_read_output(header: &Header, waker: Option<&Waker>) -> Option<Snapshot> {
    use crate::task::state::COMPLETE;
    let snap = header.state.load();
    if snap.is(COMPLETE) {
        return Some(snap);
    }
    // SAFETY: the caller's promise.
    unsafe { register_join_waker(header, snap, waker?) }
}

/// `can_read_output` for a task not complete when the handle looked:
/// register `waker` (rule 6), or return the snapshot if the task completed
/// meanwhile.
///
/// # Safety
/// As for `can_read_output`; `snap` is the handle's latest load.
#[inline(never)]
unsafe fn register_join_waker(header: &Header, snap: Snapshot, waker: &Waker) -> Option<Snapshot> {
    if snap.is(JOIN_WAKER) {
        // SAFETY: rule 6: the runtime only reads this field after COMPLETE,
        // which is not set; a shared read by us is fine either way.
        if unsafe { header.join_waker.will_wake(waker) } {
            return None;
        }
        if let Err(snap) = header.state.unset_join_waker() {
            return Some(snap);
        }
    }
    // SAFETY: JOIN_WAKER is clear: the field is the handle's (rule 6).
    unsafe { header.join_waker.set(waker) };
    header.state.set_join_waker().err()
}

/// Drop a stored result; returns the panic payload if the task had
/// panicked. A panic of the output's destructor is contained.
///
/// # Safety
/// COMPLETE is set and the caller owns the result (rule 5), which is
/// still in the stage (not taken) and is not used again.
pub(crate) unsafe fn drop_output(task: TaskRef) -> Option<Box<dyn Any + Send>> {
    let drop_output = task.header().vtable.drop_output;
    // FAILED was set with COMPLETE, which the caller saw: it is in this
    // load too.
    let failed = task.snapshot().is(FAILED);
    // SAFETY: caller's promise; `failed` says which field is live.
    match catch_unwind(AssertUnwindSafe(|| unsafe { drop_output(task, failed) })) {
        Ok(Some(e)) => match *e {
            TaskError::Panicked(p) => Some(p.into_inner()),
            TaskError::Cancelled(_) => None,
        },
        Ok(None) | Err(_) => None,
    }
}

/// Free the allocation: drop the header, then give the cell back to the
/// slab or the allocator, as the vtable records (`into_task` allocated it
/// the same way, from the same layout). The stage is not dropped: by
/// rules 4, 5 and 7 nothing in it is live by now (the future was dropped
/// before `COMPLETE`, and the result was taken or dropped by its owner
/// before the owner's reference went).
///
/// # Safety
/// The last reference was just released (rule 7).
pub(super) unsafe fn dealloc(task: TaskRef) {
    let snap = task.snapshot();
    // SAFETY: the caller's promise.
    unsafe { forget_cancel_entry(task, snap) };
    // The vtable is a `&'static`, copied out before the header goes.
    let vt = task.header().vtable;
    let header = task.0.as_ptr();
    // SAFETY: no reference remains: the header is ours to drop, once
    // (`vt` is a copy; nothing reads the header after this).
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { ptr::drop_in_place(header) }));
    // SAFETY: the caller's promise; the header is dropped (above).
    unsafe { free_memory(task, vt) }
}

/// [`dealloc`] for a task whose join-waker field holds nothing to drop (the
/// handle's taken marker), the caller's snapshot in hand.
///
/// # Safety
/// As for `dealloc`; the join-waker field is empty or holds the taken
/// marker, and `snap` is a load of the state word after the last release.
#[inline]
pub(super) unsafe fn dealloc_taken(task: TaskRef, snap: Snapshot) {
    // SAFETY: the caller's promise.
    unsafe { forget_cancel_entry(task, snap) };
    let vt = task.header().vtable;
    // The join-waker field holds nothing (the caller's promise); the rest
    // of the header is dropped as `dealloc` drops it (the state word: a
    // no-op but under loom, whose atomics are tracked).
    // SAFETY: no reference remains; dropped once, not read after.
    unsafe { ptr::drop_in_place(&raw mut (*task.0.as_ptr()).state) };
    // SAFETY: the caller's promise; the header holds nothing more to drop.
    unsafe { free_memory(task, vt) }
}

/// A deallocation's first step: the task's cancel-table entry, if
/// `CANCEL_STATE` (in `snap`) says it has one.
///
/// # Safety
/// As for [`dealloc`]; `snap` a load of the state word after the last
/// release; the header is not dropped yet.
#[inline(always)]
unsafe fn forget_cancel_entry(task: TaskRef, snap: Snapshot) {
    debug_assert!(
        snap.is(crate::task::state::COMPLETE),
        "a task was freed with its future alive"
    );
    if snap.is(crate::task::state::CANCEL_STATE) {
        // SAFETY: the last reference is gone (no `&CancelState` of the
        // task is left); the cell, its key, is not given back yet.
        unsafe { (task.shared().cancels).remove(task.cell().addr().get()) };
    }
}

/// A deallocation's last step: the cell back to the slab or the
/// allocator, as the vtable `vt` records (`into_task` allocated it the
/// same way, from the same layout).
///
/// # Safety
/// As for [`dealloc`], the header dropped (not read again: `vt` is its
/// vtable, copied before).
#[inline(always)]
unsafe fn free_memory(task: TaskRef, vt: &'static Vtable) {
    let header = task.0.as_ptr();
    if vt.from_slab {
        // SAFETY: `into_task` took the cell from `slab::allocate` (the same
        // `FROM_SLAB`), its contents were dropped just above, and it is not
        // used again.
        unsafe { super::slab::free(task.0.cast()) };
    } else {
        // `allocate_cell` allocated it with `alloc` of `boxed_layout` (not
        // `from_slab`), the cell `offset` bytes in, its runtime in the word
        // two before the cell (moved out here, once, dropped after the memory).
        // SAFETY: that allocation and word (above); contents dropped, unused after.
        let shared = unsafe {
            let (whole, offset) = super::boxed_layout(vt.layout);
            let shared = header.cast::<Arc<Shared>>().sub(2).read();
            std::alloc::dealloc(header.cast::<u8>().sub(offset), whole);
            shared
        };
        drop(shared);
    }
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
    ManuallyDrop::new(unsafe { crate::task::waker::waker_from_raw(task) })
}

/// Handle support: whether the task completed.
pub(crate) fn is_complete(task: TaskRef) -> bool {
    task.snapshot().is(crate::task::state::COMPLETE)
}

/// Handle support: drop the join waker field (caller owns it per rule 6).
///
/// # Safety
/// The caller owns the field per rule 6.
pub(crate) unsafe fn drop_join_waker(task: TaskRef) {
    // SAFETY: caller's promise.
    unsafe { task.header().join_waker.clear() };
}
