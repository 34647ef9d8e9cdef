//! [`wait_for`] and [`wait_for_at`]: a timeout on a [`Task`] that cancels
//! the task on expiry and waits for it to stop, as `asyncio.wait_for` does.
//! Why this is a function of its own, and not what [`timeout`](super::timeout)
//! does with a `Task`, is decision 0009 (`docs/decisions/`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{Elapsed, Instant, Timeout};
use crate::task::{Task, TaskError};

/// Awaits `task` for at most `duration`; on expiry **cancels the task and
/// waits until it has stopped**: `asyncio.wait_for(task, timeout)`.
///
/// - `Ok(result)`: the task finished first (with `result`, what awaiting
///   the task gives), or it finished before the cancellation reached it.
/// - `Err(Elapsed)`: the deadline passed; the task has been cancelled and
///   its future dropped (its destructors have run) when this returns.
///
/// A deadline already passed returns a finished task's result and
/// otherwise cancels the task, which has then not run at all if it had not
/// started. `None` waits without a limit. Dropping the returned future
/// (for instance because the task awaiting it is cancelled) cancels the
/// task too, as cancelling `wait_for` does in asyncio, but cannot wait for
/// it. To keep the task running past the deadline, use
/// `timeout(d, shield(task))`: dropping a handle only detaches.
///
/// ```
/// use std::time::Duration;
/// use coil::time::{sleep, wait_for};
///
/// coil::run(async {
///     let slow = coil::spawn(sleep(Duration::from_secs(3600)));
///     assert!(wait_for(Duration::from_millis(5), slow).await.is_err());
///     // The task has been cancelled and has stopped.
///     let fast = coil::spawn(async { 7 });
///     assert_eq!(wait_for(Duration::from_secs(1), fast).await.unwrap().unwrap(), 7);
/// });
/// ```
pub fn wait_for<T>(duration: impl Into<Option<Duration>>, task: Task<T>) -> TaskTimeout<T> {
    wait_for_at(duration.into().map(|d| Instant::now() + d), task)
}

/// Like [`wait_for`], with an absolute deadline; `None` disables it.
pub fn wait_for_at<T>(deadline: impl Into<Option<Instant>>, task: Task<T>) -> TaskTimeout<T> {
    TaskTimeout {
        state: State::Waiting(super::timeout::timeout_dropping(deadline.into(), task)),
    }
}

/// The future returned by [`wait_for`] and [`wait_for_at`].
#[must_use = "futures do nothing unless awaited; dropping this cancels the task"]
pub struct TaskTimeout<T> {
    state: State<T>,
}

enum State<T> {
    /// Awaiting the task under the deadline.
    Waiting(Timeout<Task<T>>),
    /// The deadline passed; `cancelled` says whether this cancelled the task
    /// (rather than finding it finished or already cancelled).
    Cancelling {
        task: Task<T>,
        cancelled: bool,
    },
    Done,
}

impl<T> TaskTimeout<T> {
    /// The deadline, or `None` if there is none.
    pub fn when(&self) -> Option<Instant> {
        match &self.state {
            State::Waiting(t) => t.when(),
            State::Cancelling { .. } | State::Done => None,
        }
    }
}

impl<T> Future for TaskTimeout<T> {
    type Output = Result<Result<T, TaskError>, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let State::Waiting(timeout) = &mut self.state {
            match Pin::new(timeout).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(result)) => {
                    self.state = State::Done;
                    return Poll::Ready(Ok(result));
                }
                Poll::Ready(Err(_)) => {
                    let State::Waiting(t) = std::mem::replace(&mut self.state, State::Done) else {
                        unreachable!()
                    };
                    let task = t.into_inner();
                    let cancelled = task.cancel();
                    self.state = State::Cancelling { task, cancelled };
                }
            }
        }
        let State::Cancelling { task, cancelled } = &mut self.state else {
            panic!("TaskTimeout polled after it completed");
        };
        let result = std::task::ready!(Pin::new(task).poll(cx));
        let ours = *cancelled && result.as_ref().is_err_and(TaskError::is_cancelled);
        self.state = State::Done;
        Poll::Ready(if ours {
            Err(Elapsed::new())
        } else {
            Ok(result)
        })
    }
}

impl<T> Drop for TaskTimeout<T> {
    fn drop(&mut self) {
        if let State::Waiting(t) = &self.state {
            t.get_ref().cancel();
        }
    }
}

impl<T> fmt::Debug for TaskTimeout<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (phase, task) = match &self.state {
            State::Waiting(t) => ("waiting", Some(t.get_ref())),
            State::Cancelling { task, .. } => ("cancelling", Some(task)),
            State::Done => ("done", None),
        };
        f.debug_struct("TaskTimeout")
            .field("phase", &phase)
            .field("task", &task)
            .finish()
    }
}
