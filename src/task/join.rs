//! [`Task<T>`]: the handle returned by `spawn`; awaiting it joins the task.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::raw::{self, TaskRef};
use super::state::{COMPLETE, DropJoin, JOIN_INTEREST, JOIN_WAKER};
use super::{TaskError, TaskHandle};

/// A handle to a spawned task; awaiting it gives the task's result.
///
/// Like asyncio's `Task`: the task runs whether or not the handle is awaited.
/// `task.await` returns `Ok(value)`, or `Err(TaskError::Cancelled(_))` if the task
/// was cancelled, or `Err(TaskError::Panicked(payload))` if it panicked.
///
/// **Dropping a `Task` detaches it**: the task keeps running and its output is
/// dropped when it finishes. Call [`Task::cancel`](TaskHandle::cancel) to stop it.
///
/// `Task<T>` is `Send` and `Sync` when `T: Send`, so a handle from
/// [`Handle::spawn`](crate::Handle::spawn) can be awaited on another thread.
#[must_use = "dropping a Task detaches it; await it, or call .cancel() to stop it"]
pub struct Task<T> {
    raw: TaskRef,
    _marker: PhantomData<T>,
}

// SAFETY: the handle touches only the atomic state word, the join-waker field
// (under rule 6) and the output once COMPLETE (rule 5); the output is moved or
// dropped on the handle's thread, hence `T: Send`.
unsafe impl<T: Send> Send for Task<T> {}
// SAFETY: `&Task` allows only the `TaskHandle` methods (through `Deref`),
// which touch atomics, the task's cancel-table entry (under the table's
// mutex; atomics and a mutex inside) and immutable header fields.
unsafe impl<T: Send> Sync for Task<T> {}

impl<T> Unpin for Task<T> {}

/// A `Task` is a [`TaskHandle`] that also owns the output: `id`, `name`,
/// `is_finished`, `cancel`, `cancel_with`, `abort`, `cancelling` and
/// `uncancel` are the handle's, and `(*task).clone()` gives an untyped
/// `TaskHandle` that outlives the `Task`.
impl<T> Deref for Task<T> {
    type Target = TaskHandle;

    fn deref(&self) -> &TaskHandle {
        TaskHandle::borrowed(&self.raw)
    }
}

impl<T> Task<T> {
    /// Wrap a task pointer; the handle's reference is transferred.
    ///
    /// # Safety
    /// The caller owns the handle's reference to `raw` (the one
    /// `JOIN_INTEREST` stands for, at most one handle per task) and hands it
    /// over; the task's future has `Output = T`.
    pub(crate) unsafe fn from_raw(raw: TaskRef) -> Task<T> {
        Task {
            raw,
            _marker: PhantomData,
        }
    }

    /// The task pointer, for `Builder::spawn`.
    pub(super) fn raw(&self) -> TaskRef {
        self.raw
    }

    /// The result if the task has finished, without waiting; `None` otherwise.
    ///
    /// # Panics
    ///
    /// Panics if the result was already taken (by this method or by `.await`).
    pub fn try_take(&mut self) -> Option<Result<T, TaskError>> {
        // SAFETY: we are the handle, of a task whose output is a `T`.
        match unsafe { raw::try_read_output::<T>(self.raw, None) } {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    // Always inlined: out of line (as rustc chose for W1's main future after
    // the vtable split), the copy of `out` into the return slot loads 16
    // bytes over the two 8-byte stores `take_output` has just made, a
    // store-forwarding stall of ~7 ns per join (W1 3-7 % slower). Inlined,
    // the caller reads the tag and the value as they were written.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = std::task::ready!(crate::rt::budget::poll_proceed(cx));
        // SAFETY: we are the handle, of a task whose output is a `T`.
        let out = unsafe { raw::try_read_output::<T>(self.raw, Some(cx.waker())) };
        if out.is_ready() {
            coop.made_progress();
        } else {
            let id = || crate::rt::Awaiting::Task {
                id: self.raw.id().as_u64(),
            };
            crate::rt::debug::awaiting(id);
        }
        out
    }
}

impl<T> Task<T> {
    /// The handle's part of a completed task: drop the output (rule 5)
    /// unless it was taken and, if `may_drop_waker`, the join waker (rule 6).
    ///
    /// # Safety
    /// The handle saw `COMPLETE` with `JOIN_INTEREST`, and `may_drop_waker`
    /// only if the runtime is done with the join-waker field (`JOIN_WAKER`
    /// clear after `COMPLETE`).
    ///
    /// Always inlined: out of line (as rustc chose once `forget_spawn`'s
    /// runtime lookup grew a branch, `task/raw.rs`) it cost W1 ~19
    /// instructions a task.
    #[inline(always)]
    unsafe fn drop_completed(&self, may_drop_waker: bool) {
        // The taken marker is written only into a field that is the
        // handle's for good (`try_read_output`), so with `!may_drop_waker`
        // (JOIN_WAKER still set when the handle looked) it cannot be there.
        // SAFETY: rule 6: with `may_drop_waker` the field is ours.
        let taken = may_drop_waker && unsafe { raw::output_taken(self.raw) };
        if !taken {
            // SAFETY: rule 5: COMPLETE seen by the handle with its interest
            // still set, and not taken: the output is ours.
            if let Some(p) = unsafe { raw::drop_output(self.raw) } {
                raw::report_detached_panic(self.raw, p);
            }
        }
        self.forget_spawn();
        if may_drop_waker {
            // SAFETY: rule 6: the runtime is done with the field (caller's promise).
            unsafe { raw::drop_join_waker(self.raw) };
        }
    }
}

impl<T> Task<T> {
    /// Debug mode: the handle outlived the task, so the spawn location's
    /// entry is its to remove (`rt/debug.rs`).
    fn forget_spawn(&self) {
        if let Some(checks) = &self.raw.shared().debug {
            checks.forget(self.raw.id().as_u64());
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        let header = self.raw.header();
        let snap = header.state.load();
        if !snap.is(JOIN_INTEREST) {
            // The handle took the result while the loop was still waking
            // the join waker, and gave up its interest then
            // (`try_read_output`): the output and the field are handled;
            // only the reference is left.
            self.forget_spawn();
            // SAFETY: the handle's reference (`from_raw`'s contract), given
            // up here; the handle is not used again.
            unsafe { self.raw.release(1) };
            return;
        }
        if snap.is(COMPLETE) && !snap.is(JOIN_WAKER) {
            // The commonest end, a joined task whose handle is its last
            // reference: the output was taken and the field holds only the
            // taken marker (rules 5 and 6), and the handle is alone with the
            // task (rule 7: a count of one, read with `Acquire`, stays one):
            // nothing is left to drop but the cell, no write to the word.
            // SAFETY: COMPLETE seen with JOIN_WAKER clear: the field is ours.
            if snap.refs() == 1 && unsafe { raw::output_taken(self.raw) } {
                self.forget_spawn();
                // SAFETY: the handle's is the last reference (above); the
                // handle is not used again.
                unsafe { self.raw.dealloc_alone(snap) };
                return;
            }
            // The common case, a joined task: neither bit can change any
            // more, so the output and the join waker are ours (rules 5 and
            // 6), and join interest and our reference go in one step.
            // SAFETY: COMPLETE seen, JOIN_WAKER clear; then the handle's
            // reference is given up and the handle is not used again.
            unsafe {
                self.drop_completed(true);
                self.raw.release_join_complete();
            }
            return;
        }
        match header.state.drop_join_interest() {
            DropJoin::Pending { had_waker } => {
                if had_waker {
                    // SAFETY: rule 6: JOIN_WAKER was cleared by us before COMPLETE.
                    unsafe { raw::drop_join_waker(self.raw) };
                }
            }
            // SAFETY: COMPLETE seen by `drop_join_interest`, which says
            // whether the runtime is done with the waker field.
            DropJoin::Complete { may_drop_waker } => unsafe { self.drop_completed(may_drop_waker) },
        }
        // SAFETY: the handle's reference (`from_raw`'s contract), given up
        // here; the handle is not used again.
        unsafe { self.raw.release(1) };
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.debug_as("Task", f)
    }
}
