//! The per-type half of a task: the functions of its [`Vtable`], which know
//! the concrete future type `F` (poll, shutdown, reading and dropping the
//! output, deallocation), and the completion steps they share with the join
//! side (rules 4 to 8 of `task/mod.rs`). The layout and [`TaskRef`] are in
//! the parent module, whose docs say where the unsafe boundary is; this
//! module is inside it.

use std::any::Any;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll, Waker};

use super::{Cell, Header, PollOutcome, Stage, TaskRef, Vtable};
use crate::task::TaskError;
use crate::task::state::{JOIN_INTEREST, JOIN_WAKER, Snapshot, ToIdle, ToRunning};

/// The vtable of tasks whose future is an `F`.
pub(super) fn vtable<F: Future + 'static>() -> &'static Vtable {
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

/// `woke_self` is the loop's self-wake flag, clear when the poll starts: set
/// during it if the task woke itself (`Core::note_self_wake`); a `Pending`
/// poll then keeps `RUNNING` and asks to be queued again, running while
/// queued (`state.rs`).
///
/// # Safety
/// Loop thread; `task` popped from a run queue with its queue reference.
unsafe fn poll<F: Future>(task: TaskRef, woke_self: &std::cell::Cell<bool>) -> PollOutcome {
    let header = task.header();
    match header.state.start_poll() {
        ToRunning::Cancel => {
            // SAFETY: RUNNING is ours, the stage holds the future (rule 4).
            let panic = unsafe { drop_future::<F>(task) };
            let out = match panic {
                Some(p) => task.panicked_error(p),
                None => task.cancelled_error(),
            };
            // SAFETY: as above.
            unsafe { finish::<F>(task, Stage::Failed(Box::new(out))) };
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
                    if woke_self.get() {
                        // Running while queued: RUNNING stays set and the
                        // poller's reference becomes the queue entry's.
                        return PollOutcome::Reschedule;
                    }
                    return match header.state.transition_to_idle() {
                        ToIdle::Idle => PollOutcome::Idle,
                        ToIdle::Reschedule => PollOutcome::Reschedule,
                    };
                }
                Ok(Poll::Ready(v)) => {
                    // SAFETY: still RUNNING on the loop thread.
                    match unsafe { drop_future::<F>(task) } {
                        None => Stage::Done(v),
                        Some(p) => {
                            // The output's destructor may panic too; contain
                            // it, or it would unwind out of the loop with the
                            // task still RUNNING (and abort at shutdown).
                            let _ = catch_unwind(AssertUnwindSafe(move || drop(v)));
                            Stage::Failed(Box::new(task.panicked_error(p)))
                        }
                    }
                }
                Err(payload) => {
                    // SAFETY: still RUNNING on the loop thread.
                    let _second = unsafe { drop_future::<F>(task) };
                    Stage::Failed(Box::new(task.panicked_error(payload)))
                }
            };
            // SAFETY: still RUNNING on the loop thread, future dropped.
            unsafe { finish::<F>(task, out) };
            PollOutcome::Complete
        }
    }
}

/// # Safety
/// Loop thread, shutdown (rule 8): the task is in the owned list and not
/// being polled (`RUNNING` may be set: running while queued).
unsafe fn shutdown<F: Future>(task: TaskRef) {
    task.header().state.transition_to_shutdown();
    // SAFETY: we hold RUNNING now.
    let out = match unsafe { drop_future::<F>(task) } {
        Some(p) => task.panicked_error(p),
        None => task.cancelled_error(),
    };
    // SAFETY: as above.
    unsafe { finish::<F>(task, Stage::Failed(Box::new(out))) };
}

/// Write the result (`Done` or `Failed`), set COMPLETE, notify the join
/// side (rules 4–6).
///
/// # Safety
/// Loop thread, RUNNING held, stage is `Consumed`.
#[inline(always)]
unsafe fn finish<F: Future>(task: TaskRef, out: Stage<F>) {
    // SAFETY: caller's promise; nobody else reads the stage before COMPLETE.
    unsafe { *stage::<F>(task) = out };
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
        // Debug mode: the spawn location's entry is the loop's to remove
        // when no handle is left to do it (`rt/debug.rs`).
        if let Some(checks) = &header.shared.debug {
            checks.forget(header.id.as_u64());
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

/// Report a panic nobody can observe, once: on stderr, or in debug mode
/// through the sink with the task's spawn location (asyncio's "Task
/// exception was never retrieved").
pub(crate) fn report_detached_panic(task: TaskRef, payload: Box<dyn Any + Send>) {
    let payload = crate::task::PanicPayload::new(payload);
    let msg = payload.message().unwrap_or("Box<dyn Any>");
    match &task.shared().debug {
        None => eprintln!(
            "coil: {} panicked and nobody awaited it: {msg}",
            task.describe()
        ),
        Some(checks) => checks.report(&format!(
            "coil: {} panicked and nobody awaited it (its Task handle was dropped): {msg}",
            checks.who(task)
        )),
    }
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
    let out = match std::mem::replace(stage, Stage::Consumed) {
        Stage::Done(v) => Ok(v),
        Stage::Failed(e) => Err(*e),
        _ => panic!(
            "a coil Task was polled again after it returned its output; a Task can be awaited only once"
        ),
    };
    // SAFETY: caller's promise about the type behind dst.
    unsafe { *dst.cast::<Poll<Result<F::Output, TaskError>>>() = Poll::Ready(out) };
}

/// Handle side of rule 6. Returns true when the output can be read now.
///
/// # Safety
/// The caller is the task's handle (the join-waker field is its own while
/// `JOIN_WAKER` is clear, rule 6).
unsafe fn can_read_output(header: &Header, waker: Option<&Waker>) -> bool {
    use crate::task::state::COMPLETE;
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
        Stage::Failed(e) => match *e {
            TaskError::Panicked(p) => Some(p.into_inner()),
            TaskError::Cancelled(_) => None,
        },
        Stage::Done(v) => {
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
    let cell = task.0.cast::<Cell<F>>();
    debug_assert!(
        !matches!(
            // SAFETY: we own the cell (no reference remains).
            unsafe { &*cell.as_ref().stage.get() },
            Stage::Running(_)
        ),
        "a task was freed with its future alive"
    );
    if Cell::<F>::FROM_SLAB {
        // SAFETY: no reference remains: the cell is ours to drop, once.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            ptr::drop_in_place(cell.as_ptr())
        }));
        // SAFETY: allocated by `slab::allocate` in `into_task` (FROM_SLAB),
        // its contents dropped just above, not used again.
        unsafe { super::slab::free(cell.cast()) };
    } else {
        // SAFETY: allocated as Box<Cell<F>> in `into_task`, no reference remains.
        let cell = unsafe { Box::from_raw(cell.as_ptr()) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(cell)));
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
    drop(unsafe { (*task.header().join_waker.get()).take() });
}
