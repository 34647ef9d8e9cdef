//! [`shield`]: await a task without being able to cancel it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::task::{Task, TaskError};

/// Awaits `task` in a way that cannot cancel it: `asyncio.shield`.
///
/// The returned [`Shield`] gives the task's result like the task itself, but
/// has no `cancel` method, and dropping it (for instance because the task
/// awaiting it was cancelled, or a [`timeout`](crate::time::timeout) around
/// it expired) only detaches: **the task keeps running to completion**, and
/// its output is dropped when nobody is left to take it. Only the task being
/// cancelled itself (by someone holding another route to it, or by runtime
/// shutdown) makes the shield report `Err(TaskError::Cancelled(_))`.
///
/// In coil every [`Task`] handle already behaves this way when dropped (it
/// detaches); `shield` makes the intent explicit and removes `cancel` from
/// the awaiter's reach. ([`wait_for`](crate::time::wait_for) is the timeout
/// that cancels its task, as `asyncio.wait_for` does.) To shield a plain future, spawn it first:
/// `coil::shield(coil::spawn(fut))`.
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// use coil::time::{sleep, timeout};
///
/// coil::run(async {
///     let saved = Rc::new(Cell::new(false));
///     let s = saved.clone();
///     let write = coil::spawn(async move {
///         sleep(Duration::from_millis(20)).await;
///         s.set(true); // must not be interrupted half-way
///     });
///     // The caller gives up after 1 ms...
///     let r = timeout(Duration::from_millis(1), coil::shield(write)).await;
///     assert!(r.is_err());
///     // ...but the write carries on and completes.
///     sleep(Duration::from_millis(40)).await;
///     assert!(saved.get());
/// });
/// ```
pub fn shield<T>(task: Task<T>) -> Shield<T> {
    Shield { task }
}

/// The future returned by [`shield`].
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<T> {
    task: Task<T>,
}

impl<T> Shield<T> {
    /// Whether the shielded task has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// The task handle back (with its `cancel`).
    pub fn into_task(self) -> Task<T> {
        self.task
    }
}

impl<T> Future for Shield<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task).poll(cx)
    }
}

impl<T> fmt::Debug for Shield<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Shield").field(&self.task).finish()
    }
}
