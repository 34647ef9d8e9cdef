//! Tasks seen from anywhere on their loop: [`current`] (asyncio's
//! `current_task()`), [`all_tasks`] and the untyped [`TaskHandle`] both
//! return.

use std::fmt;
use std::sync::Arc;

use super::TaskId;
use super::raw::TaskRef;

/// An untyped, counted handle to a task: its id and name, whether it has
/// finished, and cancelling it. It cannot take the task's output; only the
/// [`Task<T>`](super::Task) returned by `spawn` can. Returned by
/// [`current`] and [`all_tasks`].
///
/// Holding one keeps the task's allocation (not the task) alive: dropping
/// it never cancels or detaches anything. `Send + Sync`, like a waker.
///
/// A [`Task<T>`](super::Task) dereferences to its `TaskHandle`, so these
/// methods are the `Task`'s too.
#[repr(transparent)]
pub struct TaskHandle {
    /// Stands for a reference taken by `clone_ref` and released on drop;
    /// or, behind a `&TaskHandle` from [`TaskHandle::borrowed`], for the
    /// reference of whoever lent it.
    raw: TaskRef,
}

// SAFETY: a `TaskHandle` holds a counted reference, like a `Waker` (which is
// `Send + Sync`); through `&TaskHandle` it reaches only the atomic state
// word, the task's cancel-table entry (found under the table's mutex;
// atomics and a mutex inside; the name in it is written before the task
// is published, then only read) and the immutable
// header field `id`, and its drop releases the reference, which any
// thread may do (rule 7 of `task/mod.rs`).
unsafe impl Send for TaskHandle {}
// SAFETY: as for `Send`: every method takes `&self` and is thread-safe.
unsafe impl Sync for TaskHandle {}

impl TaskHandle {
    /// `raw` seen as a handle, for as long as it is borrowed: a `Task`'s
    /// `Deref`. No reference is taken, and none is released (a
    /// `&TaskHandle` is never dropped).
    pub(super) fn borrowed(raw: &TaskRef) -> &TaskHandle {
        // The result borrows `raw`, whose holder keeps the task alive for the
        // borrow (the `Task`'s reference), and a shared reference never runs
        // `Drop`, so the handle releases nothing it did not take.
        // SAFETY: `TaskHandle` is `repr(transparent)` over `TaskRef` (same layout and alignment).
        unsafe { &*std::ptr::from_ref(raw).cast::<TaskHandle>() }
    }

    /// Wraps `raw` with a new reference of its own.
    fn new(raw: TaskRef) -> TaskHandle {
        TaskHandle {
            raw: raw.clone_ref(),
        }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.raw.id()
    }

    /// The task's name, if it was spawned with [`Builder::name`](super::Builder::name).
    pub fn name(&self) -> Option<&str> {
        self.raw.name()
    }

    /// Whether the task has finished (with a value, a panic, or cancelled).
    pub fn is_finished(&self) -> bool {
        super::raw::is_complete(self.raw)
    }

    /// Requests cancellation, like asyncio's `Task.cancel()`.
    ///
    /// For most tasks this is a drop: the future is dropped the next time
    /// the loop gets to the task, and awaiting its [`Task`] then gives
    /// `Err(TaskError::Cancelled(_))`. Returns `false` if the task had
    /// already finished (its result stays available) or cancellation was
    /// already requested.
    ///
    /// For a task spawned with
    /// [`Builder::cooperative_cancel`](super::Builder::cooperative_cancel) it
    /// is a *request* the task answers, as in asyncio: the task is woken, its
    /// next [`cancellable`](super::cancellable) scope that would wait gives
    /// `Err(Cancelled)`, and the task may clean up with `.await`s and then
    /// finish cancelled ([`Cancelled::reraise`](super::Cancelled::reraise)),
    /// or carry on. Every request counts ([`cancelling`](Self::cancelling))
    /// and returns `true` unless the task has finished.
    /// [`abort`](Self::abort) is the drop for every task.
    ///
    /// May be called from any thread.
    ///
    /// [`Task`]: super::Task
    pub fn cancel(&self) -> bool {
        self.raw.cancel(None)
    }

    /// Requests cancellation with a message, like asyncio's
    /// `Task.cancel(msg)`: as [`cancel`](Self::cancel), and the message
    /// reaches the [`Cancelled`](super::Cancelled) error the awaiter gets
    /// (`TaskError`'s `Display` shows it). For a hard cancel, if
    /// cancellation was already requested this returns `false` and the
    /// first request's message (or none) stays; a request to a cooperative
    /// task replaces the message, as asyncio does.
    pub fn cancel_with(&self, message: impl Into<Arc<str>>) -> bool {
        self.raw.cancel(Some(message.into()))
    }

    /// Cancels by dropping, for every task (the hard cancel; what
    /// [`cancel`](Self::cancel) does for a task that does not answer
    /// requests): the future is dropped at the loop's next turn, without
    /// running any more of its code. Returns `false` if the task had
    /// finished or was aborted before.
    pub fn abort(&self) -> bool {
        self.raw.abort(None)
    }

    /// For a task that answers requests, whether a request waits to be
    /// delivered (`Some(true)`) or was taken (`Some(false)`); `None` for any
    /// other task.
    pub(crate) fn request_state(&self) -> Option<bool> {
        self.raw.request_state().map(|(_, pending)| pending)
    }

    /// asyncio's `Task.cancelling()`: the number of cancel requests not
    /// taken back with [`uncancel`](Self::uncancel) (a task that does not
    /// answer requests: 1 once cancelled, else 0).
    pub fn cancelling(&self) -> usize {
        self.raw.cancelling()
    }

    /// asyncio's `Task.uncancel()`: takes one request back and returns the
    /// requests left; at zero a request not yet delivered is withdrawn (as
    /// in Python 3.13). A hard cancel cannot be taken back.
    pub fn uncancel(&self) -> usize {
        self.raw.uncancel()
    }
}

impl Clone for TaskHandle {
    fn clone(&self) -> TaskHandle {
        TaskHandle::new(self.raw)
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `new`, given up once, here.
        unsafe { self.raw.release(1) };
    }
}

impl PartialEq for TaskHandle {
    fn eq(&self, other: &TaskHandle) -> bool {
        self.raw == other.raw
    }
}

impl Eq for TaskHandle {}

impl fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.debug_as("TaskHandle", f)
    }
}

impl TaskHandle {
    /// `Debug` output as a struct called `type_name` (a `Task` uses it too).
    pub(super) fn debug_as(&self, type_name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(type_name)
            .field("id", &self.id())
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The task running this code, like asyncio's `current_task()`.
///
/// `None` outside a task: on a thread with no coil loop, in the future given
/// to `coil::run` / `block_on` (which is not a task, where asyncio's main
/// coroutine is one), and in a destructor run at shutdown. Cost: one
/// thread-local read and a reference count increment.
///
/// ```
/// coil::run(async {
///     assert!(coil::task::current().is_none()); // the main future is not a task
///     let t = coil::task::Builder::new().name("worker").spawn(async {
///         let me = coil::task::current().unwrap();
///         me.name().map(str::to_owned)
///     });
///     assert_eq!(t.await.unwrap().as_deref(), Some("worker"));
/// });
/// ```
pub fn current() -> Option<TaskHandle> {
    crate::rt::with_core(|core| core?.current_task().map(TaskHandle::new))
}

/// Every task of the running loop that has not finished, like asyncio's
/// `all_tasks()`: spawned on this loop (or handed to it by
/// [`Handle::spawn`](crate::Handle::spawn) and taken in by the loop, which it
/// does at its next tick), and neither completed nor cancelled to the end;
/// the calling task included, in no particular order (the loop's task
/// table as it is laid out: `task/list.rs`).
///
/// Cost: O(number of live tasks); a walk of the loop's task list and one
/// reference count increment per task, plus the `Vec`. Meant for debugging
/// and shutdown code, not for every tick.
///
/// # Panics
///
/// Panics if called outside a coil runtime (asyncio raises `RuntimeError`).
///
/// ```
/// coil::run(async {
///     let a = coil::task::Builder::new().name("a").spawn(std::future::pending::<()>());
///     let names: Vec<_> = coil::task::all_tasks()
///         .iter()
///         .map(|t| t.name().map(str::to_owned))
///         .collect();
///     assert_eq!(names, [Some("a".to_owned())]);
///     a.cancel();
/// });
/// ```
#[track_caller]
pub fn all_tasks() -> Vec<TaskHandle> {
    let Some(live) = crate::rt::with_core(|core| core.map(|c| c.live_tasks())) else {
        panic!("coil::task::all_tasks was called outside a coil runtime");
    };
    live.into_iter().map(|raw| TaskHandle { raw }).collect()
}
