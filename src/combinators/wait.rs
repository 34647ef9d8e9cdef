//! [`wait`] (asyncio.wait).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::task::{Task, TaskError, TaskId};
use crate::time::{Sleep, sleep};

/// When [`wait`] returns: asyncio's `return_when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitFor {
    /// As soon as any task has finished (`FIRST_COMPLETED`).
    FirstCompleted,
    /// As soon as any task has panicked (`FIRST_EXCEPTION`); if none does,
    /// when all have finished. A cancelled task is not an error here, as in
    /// asyncio, and neither is a task whose value is an `Err` (that is a
    /// value; use [`try_gather_tasks`](crate::try_gather_tasks) to fail fast
    /// on it).
    FirstError,
    /// When every task has finished (`ALL_COMPLETED`).
    AllCompleted,
}

/// A task that [`wait`] saw finish, with its result.
#[derive(Debug)]
pub struct Completed<T> {
    /// The task's position in the input of [`wait`].
    pub index: usize,
    /// The task's id.
    pub id: TaskId,
    /// What awaiting the task gave.
    pub result: Result<T, TaskError>,
}

/// Waits for tasks until `when` is met or `timeout` passes, and returns
/// `(done, pending)`: `asyncio.wait(tasks, timeout=, return_when=)`.
///
/// `done` holds the finished tasks' results in input order (with their input
/// index and id): every task that finished before `wait` returned, not only
/// the first (like asyncio, which resumes `wait` a loop iteration after the
/// first completion, `wait` takes one more turn of the run queue once
/// `when` is met, so tasks that finish in the same iteration are all in
/// `done`); `pending` holds the handles of the others, in input order,
/// **still running**: like asyncio, `wait` never cancels anything, not even
/// on timeout. Pass `pending` to `wait` again, cancel the tasks, or drop the
/// handles to detach them.
///
/// # Panics
///
/// If `tasks` is empty (asyncio raises `ValueError`).
///
/// ```
/// use std::time::Duration;
/// use coil::{WaitFor, time::sleep};
///
/// coil::run(async {
///     let tasks = [10u64, 3600_000].map(|ms| coil::spawn(async move {
///         sleep(Duration::from_millis(ms)).await;
///         ms
///     }));
///     let (done, pending) = coil::wait(tasks, WaitFor::FirstCompleted, None).await;
///     assert_eq!(done.len(), 1);
///     assert_eq!(done[0].result.as_ref().ok(), Some(&10));
///     assert_eq!(pending.len(), 1);
///     pending[0].cancel();
///
///     let slow = coil::spawn(sleep(Duration::from_secs(3600)));
///     let (done, pending) =
///         coil::wait([slow], WaitFor::AllCompleted, Some(Duration::from_millis(5))).await;
///     assert!(done.is_empty() && pending.len() == 1, "timed out, nothing cancelled");
/// });
/// ```
#[track_caller]
pub fn wait<T, I>(tasks: I, when: WaitFor, timeout: Option<Duration>) -> Wait<T>
where
    I: IntoIterator<Item = Task<T>>,
{
    let tasks: Vec<_> = tasks.into_iter().map(Some).collect();
    assert!(
        !tasks.is_empty(),
        "coil::wait was given no tasks (asyncio raises ValueError: the set of tasks is empty); \
         check for an empty set before waiting"
    );
    Wait {
        tasks,
        done: Vec::new(),
        when,
        timer: timeout.map(sleep),
        settling: false,
    }
}

/// The future returned by [`wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<T> {
    tasks: Vec<Option<Task<T>>>,
    done: Vec<Completed<T>>,
    when: WaitFor,
    timer: Option<Sleep>,
    /// The condition was met one poll ago; the next poll returns.
    settling: bool,
}

impl<T> Unpin for Wait<T> {}

impl<T> Future for Wait<T> {
    type Output = (Vec<Completed<T>>, Vec<Task<T>>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = || crate::rt::Awaiting::Combinator("wait");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<T> Wait<T> {
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<<Self as Future>::Output> {
        let this = &mut *self;
        assert!(!this.tasks.is_empty(), "Wait polled after completion");
        let mut finish = false;
        for (index, slot) in this.tasks.iter_mut().enumerate() {
            let Some(task) = slot else { continue };
            if let Poll::Ready(result) = super::poll_task(task, cx) {
                let id = task.id();
                *slot = None;
                finish |= match this.when {
                    WaitFor::FirstCompleted => true,
                    WaitFor::FirstError => result.as_ref().is_err_and(TaskError::is_panic),
                    WaitFor::AllCompleted => false,
                };
                this.done.push(Completed { index, id, result });
            }
        }
        let all_done = this.tasks.iter().all(Option::is_none);
        let mut timed_out = || {
            this.timer
                .as_mut()
                .is_some_and(|t| Pin::new(t).poll(cx).is_ready())
        };
        if finish && !all_done && !this.settling {
            // asyncio resumes `wait` a loop iteration after the first task
            // finished (its done-callbacks run first), so tasks finishing
            // in the same iteration are all in `done`
            // (`test_wait_really_done`). One more turn of the run queue does
            // the same here: every task queued before this one runs, then
            // the tasks are polled again.
            this.settling = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if finish || all_done || this.settling || timed_out() {
            let pending = this.tasks.drain(..).flatten().collect();
            let mut done = std::mem::take(&mut this.done);
            done.sort_by_key(|c| c.index);
            return Poll::Ready((done, pending));
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("when", &self.when)
            .field("running", &self.tasks.iter().flatten().count())
            .field("done", &self.done.len())
            .finish()
    }
}
