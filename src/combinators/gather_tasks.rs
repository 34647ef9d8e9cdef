//! Gathers of [`Task`] handles that own their tasks: [`gather_tasks`]
//! (`asyncio.gather(*tasks)`, cancelling them if the gather is cancelled) and
//! [`try_gather_tasks`] (fail fast, cancel the siblings and wait for them).
//!
//! [`gather_all`](super::gather_all) also accepts `Task` handles, but as any
//! future it only drops them when it is dropped, and a dropped handle
//! detaches its task. These two hold the handles as tasks: a gather that is
//! dropped before it finished cancels the tasks it still waits for, as
//! asyncio's cancelled `gather` cancels its children.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::task::failure::Failure;
use crate::task::{Task, TaskError};

/// Joins tasks and returns their values in input order:
/// `asyncio.gather(*tasks)`.
///
/// - **Every task succeeds**: `Ok(values)`, in input order.
/// - **A task fails** (panics, or is cancelled by someone else): that
///   [`TaskError`] is returned at once, and **the other tasks keep running**,
///   as in asyncio, where the first exception propagates and the other
///   children are left alone. Their handles are dropped (detached); to keep
///   them awaitable, use [`wait`](super::wait) with
///   [`WaitFor::FirstError`](super::WaitFor::FirstError), which returns the
///   pending handles; to stop them, [`try_gather_tasks`] or a
///   [`TaskGroup`](crate::TaskGroup).
/// - **The gather is cancelled** (dropped before it finished, e.g. by a
///   [`timeout`](crate::time::timeout) or a cancelled caller): every task it
///   still waits for is cancelled.
/// - [`GatherTasks::settled`] is `return_exceptions=True`: every task's
///   `Result`, in input order, and no early return.
///
/// Plain futures (not tasks) cannot keep running once the gather that polls
/// them is dropped: [`gather_all`](super::gather_all) and
/// [`try_gather_all`](super::try_gather_all) drop (cancel) them with it.
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// use coil::time::{sleep, timeout};
///
/// coil::run(async {
///     let out = coil::gather_tasks([1, 2, 3].map(|i| coil::spawn(async move { i * 10 }))).await;
///     assert_eq!(out.unwrap(), [10, 20, 30]);
///
///     // Cancelling the gather cancels the tasks.
///     struct SetOnDrop(Rc<Cell<bool>>);
///     impl Drop for SetOnDrop {
///         fn drop(&mut self) { self.0.set(true) }
///     }
///     let stopped = Rc::new(Cell::new(false));
///     let guard = SetOnDrop(stopped.clone());
///     let slow = coil::spawn(async move {
///         let _guard = guard;
///         sleep(Duration::from_secs(3600)).await;
///     });
///     let r = timeout(Duration::from_millis(5), coil::gather_tasks([slow])).await;
///     assert!(r.is_err());
///     coil::task::yield_now().await; // the loop gets to the cancelled task
///     assert!(stopped.get(), "the hour-long task was cancelled with the gather");
/// });
/// ```
pub fn gather_tasks<I, T>(tasks: I) -> GatherTasks<T>
where
    I: IntoIterator<Item = Task<T>>,
{
    let tasks: Vec<_> = tasks.into_iter().map(Some).collect();
    GatherTasks {
        outputs: tasks.iter().map(|_| None).collect(),
        tasks,
        settled: false,
        finished: false,
    }
}

/// The future returned by [`gather_tasks`].
///
/// Dropping it before it finished cancels every task it still waits for.
#[must_use = "futures do nothing unless awaited"]
pub struct GatherTasks<T> {
    tasks: Vec<Option<Task<T>>>,
    outputs: Vec<Option<Result<T, TaskError>>>,
    settled: bool,
    /// It returned its output (polling again panics).
    finished: bool,
}

impl<T> GatherTasks<T> {
    /// Waits for every task and returns each one's result, in input order:
    /// `asyncio.gather(*tasks, return_exceptions=True)`. Dropping the future
    /// before it finished still cancels the tasks not yet finished.
    pub fn settled(mut self) -> GatherTasksSettled<T> {
        self.settled = true;
        GatherTasksSettled(self)
    }

    /// Polls every task not finished yet; `Some(e)` if one failed and this
    /// gather fails fast.
    fn poll_tasks(&mut self, cx: &mut Context<'_>) -> Option<TaskError> {
        assert!(
            !self.finished,
            "a gather_tasks future polled after completion"
        );
        for (slot, out) in self.tasks.iter_mut().zip(&mut self.outputs) {
            let Some(task) = slot else { continue };
            let Poll::Ready(result) = super::poll_task(task, cx) else {
                continue;
            };
            *slot = None;
            match result {
                Err(e) if !self.settled => {
                    // The others run on, detached (asyncio leaves them be).
                    self.tasks.clear();
                    self.outputs.clear();
                    self.finished = true;
                    return Some(e);
                }
                r => *out = Some(r),
            }
        }
        None
    }

    /// Whether every task has finished; if so, the gather is finished too.
    fn all_done(&mut self) -> bool {
        self.finished = self.tasks.iter().all(Option::is_none);
        self.finished
    }
}

impl<T> Unpin for GatherTasks<T> {}

impl<T> Future for GatherTasks<T> {
    type Output = Result<Vec<T>, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = || crate::rt::Awaiting::Combinator("gather_tasks");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<T> GatherTasks<T> {
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Vec<T>, TaskError>> {
        if let Some(e) = self.poll_tasks(cx) {
            return Poll::Ready(Err(e));
        }
        if !self.all_done() {
            return Poll::Pending;
        }
        let outputs = std::mem::take(&mut self.outputs);
        self.tasks.clear();
        Poll::Ready(Ok(outputs
            .into_iter()
            .map(|o| match o.expect("GatherTasks polled after completion") {
                Ok(v) => v,
                Err(_) => unreachable!("a failure returns early"),
            })
            .collect()))
    }
}

impl<T> Drop for GatherTasks<T> {
    fn drop(&mut self) {
        // Dropped before it finished: the gather was cancelled, so are the
        // tasks it still waits for (after it finished, `tasks` is empty).
        for task in self.tasks.iter().flatten() {
            task.cancel();
        }
    }
}

impl<T> fmt::Debug for GatherTasks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatherTasks")
            .field("running", &self.tasks.iter().flatten().count())
            .field("settled", &self.settled)
            .finish()
    }
}

/// The future returned by [`GatherTasks::settled`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct GatherTasksSettled<T>(GatherTasks<T>);

impl<T> Future for GatherTasksSettled<T> {
    type Output = Vec<Result<T, TaskError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = || crate::rt::Awaiting::Combinator("gather_tasks");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<T> GatherTasksSettled<T> {
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Vec<Result<T, TaskError>>> {
        let inner = &mut self.0;
        let failed = inner.poll_tasks(cx);
        debug_assert!(failed.is_none(), "a settled gather never fails fast");
        if !inner.all_done() {
            return Poll::Pending;
        }
        let outputs = std::mem::take(&mut inner.outputs);
        inner.tasks.clear();
        Poll::Ready(
            outputs
                .into_iter()
                .map(|o| o.expect("GatherTasksSettled polled after completion"))
                .collect(),
        )
    }
}

/// Joins tasks that return `Result`, failing fast: the first failure cancels
/// every other task **and waits until they have all finished** before
/// returning it.
///
/// A failure is a task returning `Err(e)` ([`Failure::Error`]), panicking
/// ([`Failure::Panicked`]) or being cancelled by someone else
/// ([`Failure::Cancelled`]). Cancelled siblings have had their futures
/// dropped by the time this returns, so none of them is still running. A
/// sibling that finished anyway (it completed before the cancellation took
/// effect) has its output dropped. With no failure, the values come back in
/// input order.
///
/// ```
/// use std::time::Duration;
/// use coil::Failure;
///
/// coil::run(async {
///     let slow = coil::spawn(async {
///         coil::time::sleep(Duration::from_secs(3600)).await;
///         Ok(1)
///     });
///     let bad = coil::spawn(async { Err::<i32, _>("bad input") });
///     let out = coil::try_gather_tasks([slow, bad]).await;
///     assert!(matches!(out, Err(Failure::Error("bad input"))));
///     // `slow` was cancelled and has stopped: the hour was not waited for.
/// });
/// ```
pub fn try_gather_tasks<I, T, E>(tasks: I) -> TryGatherTasks<T, E>
where
    I: IntoIterator<Item = Task<Result<T, E>>>,
{
    let tasks: Vec<_> = tasks.into_iter().map(Some).collect();
    TryGatherTasks {
        outputs: tasks.iter().map(|_| None).collect(),
        tasks,
        failure: None,
        finished: false,
    }
}

/// The future returned by [`try_gather_tasks`].
#[must_use = "futures do nothing unless awaited"]
pub struct TryGatherTasks<T, E> {
    tasks: Vec<Option<Task<Result<T, E>>>>,
    outputs: Vec<Option<T>>,
    failure: Option<Failure<E>>,
    /// It returned its output (polling again panics).
    finished: bool,
}

impl<T, E> Unpin for TryGatherTasks<T, E> {}

impl<T, E> Future for TryGatherTasks<T, E> {
    type Output = Result<Vec<T>, Failure<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = || crate::rt::Awaiting::Combinator("gather_tasks");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<T, E> TryGatherTasks<T, E> {
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Vec<T>, Failure<E>>> {
        let this = &mut *self;
        assert!(
            !this.finished,
            "a try_gather_tasks future polled after completion"
        );
        let mut pending = false;
        for (slot, out) in this.tasks.iter_mut().zip(&mut this.outputs) {
            let Some(task) = slot else { continue };
            let result = match super::poll_task(task, cx) {
                Poll::Pending => {
                    pending = true;
                    continue;
                }
                Poll::Ready(r) => r,
            };
            *slot = None;
            let failure = match result {
                Ok(Ok(v)) => {
                    *out = Some(v);
                    continue;
                }
                Ok(Err(e)) => Failure::Error(e),
                Err(e) => Failure::from(e),
            };
            if this.failure.is_none() {
                this.failure = Some(failure);
                for t in this.tasks.iter().flatten() {
                    t.cancel();
                }
                // Everything not finished is now cancelled; keep polling the
                // handles (next wake) until every task has stopped.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if pending {
            return Poll::Pending;
        }
        this.finished = true;
        match this.failure.take() {
            Some(f) => {
                this.outputs.clear();
                Poll::Ready(Err(f))
            }
            None => Poll::Ready(Ok(this
                .outputs
                .drain(..)
                .map(|o| o.expect("TryGatherTasks polled after completion"))
                .collect())),
        }
    }
}

impl<T, E> Drop for TryGatherTasks<T, E> {
    fn drop(&mut self) {
        // Dropped before it finished (a timeout, a cancelled caller): the
        // tasks it still holds are cancelled, as `GatherTasks` does. After a
        // failure they were cancelled already; after it finished none is left.
        for task in self.tasks.iter().flatten() {
            task.cancel();
        }
    }
}

impl<T, E> fmt::Debug for TryGatherTasks<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryGatherTasks")
            .field("running", &self.tasks.iter().flatten().count())
            .field("failed", &self.failure.is_some())
            .finish()
    }
}
