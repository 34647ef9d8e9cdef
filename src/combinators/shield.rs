//! [`shield`]: await a task without being able to cancel it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::task::{Task, TaskError};

/// Awaits a task in a way that cannot cancel it: `asyncio.shield`.
///
/// `task` is a [`Task`] or a `&mut Task`. The returned [`Shield`] gives the
/// task's result like the task itself, but has no `cancel` method, and
/// dropping it (for instance because the task awaiting it was cancelled, or a
/// [`timeout`](crate::time::timeout) around it expired) never touches the
/// task: **it keeps running to completion**. Only the task being cancelled
/// itself (through its handle, or by runtime shutdown) makes the shield report
/// `Err(TaskError::Cancelled(_))`.
///
/// asyncio's pattern, where the caller keeps the task and may still await or
/// cancel it after the shield gave up, is `shield(&mut task)`:
///
/// ```
/// use std::time::Duration;
/// use coil::{sync::oneshot, time::timeout};
///
/// coil::run(async {
///     let (disk_done, done) = oneshot::channel::<()>();
///     let mut write = coil::spawn(async move {
///         done.await.unwrap(); // a slow write, which
///         "saved" // must not be interrupted half-way
///     });
///     // The caller gives up after 1 ms...
///     let r = timeout(Duration::from_millis(1), coil::shield(&mut write)).await;
///     assert!(r.is_err());
///     // ...but the write carries on, and its handle is still ours: await it
///     // later (or `write.cancel()` after all).
///     disk_done.send(()).unwrap();
///     assert_eq!(write.await.unwrap(), "saved");
/// });
/// ```
///
/// Given the handle itself (`shield(task)`), a dropped shield detaches the
/// task, which runs on with its output dropped when nobody is left to take it
/// ([`Shield::into_task`] gives the handle back while the shield is alive).
/// In coil every [`Task`] handle already detaches when dropped; `shield` makes
/// the intent explicit and removes `cancel` from the awaiter's reach.
/// ([`wait_for`](crate::time::wait_for) is the timeout that cancels its task,
/// as `asyncio.wait_for` does.) To shield a plain future, spawn it first:
/// `coil::shield(coil::spawn(fut))`.
///
/// Awaiting a `Task` whose result a shield already returned panics, as any
/// second await of a finished task does.
pub fn shield<H: Shielded>(task: H) -> Shield<H> {
    Shield { task }
}

/// What [`shield`] accepts: a [`Task`] or a `&mut Task`.
///
/// Sealed: implemented only for those two.
pub trait Shielded: sealed::Sealed + Unpin {
    /// The task's output type.
    type Output;

    #[doc(hidden)]
    fn task(&mut self) -> &mut Task<Self::Output>;

    #[doc(hidden)]
    fn task_ref(&self) -> &Task<Self::Output>;
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for crate::task::Task<T> {}
    impl<T> Sealed for &mut crate::task::Task<T> {}
}

impl<T> Shielded for Task<T> {
    type Output = T;

    fn task(&mut self) -> &mut Task<T> {
        self
    }

    fn task_ref(&self) -> &Task<T> {
        self
    }
}

impl<T> Shielded for &mut Task<T> {
    type Output = T;

    fn task(&mut self) -> &mut Task<T> {
        self
    }

    fn task_ref(&self) -> &Task<T> {
        self
    }
}

/// The future returned by [`shield`].
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<H> {
    task: H,
}

impl<H: Shielded> Shield<H> {
    /// Whether the shielded task has finished.
    pub fn is_finished(&self) -> bool {
        self.task.task_ref().is_finished()
    }
}

impl<T> Shield<Task<T>> {
    /// The task handle back (with its `cancel`).
    pub fn into_task(self) -> Task<T> {
        self.task
    }
}

impl<H: Shielded> Future for Shield<H> {
    type Output = Result<H::Output, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(self.task.task()).poll(cx)
    }
}

impl<H: Shielded> fmt::Debug for Shield<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Shield").field(self.task.task_ref()).finish()
    }
}
