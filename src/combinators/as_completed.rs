//! [`as_completed`] (a stream of outputs in completion order) and
//! [`as_completed_tasks`] (asyncio's form: awaitables, with a timeout).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::wait::Completed;
use crate::stream::Stream;
use crate::task::Task;
use crate::time::{Elapsed, Instant, Sleep, sleep_until};

/// A stream of the outputs of `iter`'s futures in the order they finish:
/// `asyncio.as_completed`.
///
/// The futures run in the task that polls the stream (nothing is spawned),
/// each time it is woken. Unlike asyncio, which yields awaitables, this
/// yields the outputs themselves; the stream ends after the last one.
/// Dropping the stream drops (cancels) the futures that have not finished
/// (given [`Task`] handles, that detaches the tasks, which run on).
/// Given [`Task`] handles, it yields each `Result<T, TaskError>` as the task
/// finishes.
///
/// ```
/// use std::time::Duration;
/// use coil::stream::StreamExt;
///
/// coil::run(async {
///     // 100 ms apart, so even a loaded machine that stalls between the
///     // first polls of the three keeps their order.
///     let order: Vec<u64> = coil::as_completed([300u64, 100, 200].map(|ms| async move {
///         coil::time::sleep(Duration::from_millis(ms)).await;
///         ms
///     }))
///     .collect()
///     .await;
///     assert_eq!(order, [100, 200, 300]);
/// });
/// ```
pub fn as_completed<I>(iter: I) -> AsCompleted<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    AsCompleted {
        futures: iter
            .into_iter()
            .map(|f| Box::pin(f.into_future()))
            .collect(),
    }
}

/// The stream returned by [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<F> {
    futures: Vec<Pin<Box<F>>>,
}

impl<F: Future> Stream for AsCompleted<F> {
    type Item = F::Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        if self.futures.is_empty() {
            return Poll::Ready(None);
        }
        for i in 0..self.futures.len() {
            if let Poll::Ready(v) = self.futures[i].as_mut().poll(cx) {
                // `remove`, not `swap_remove`: keep input order among the
                // rest, so simultaneous finishers come out in input order.
                self.futures.remove(i);
                return Poll::Ready(Some(v));
            }
        }
        Poll::Pending
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.futures.len(), Some(self.futures.len()))
    }
}

impl<F> fmt::Debug for AsCompleted<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.futures.len())
            .finish()
    }
}

/// The tasks' results in the order they finish, as `n` awaitables that can be
/// awaited in any order: `asyncio.as_completed(tasks, timeout=)`.
///
/// The iterator yields exactly as many [`NextCompleted`] futures as there are
/// tasks. Whichever of them is awaited (in a loop, all at once in a
/// [`gather_all`](super::gather_all), or each in a task of its own) gives the
/// **next** result to finish, as a [`Completed`] (the task's input index, id
/// and result); none is tied to a particular task. With a `timeout`, every
/// awaitable that has no result yet when it passes gives `Err(Elapsed)`
/// (asyncio raises `TimeoutError`), and so does every one awaited after it,
/// except for results seen before the deadline, which still come first. A
/// result is seen when an awaitable is polled after its task finished: while
/// one of them is being awaited, that is as soon as the task finishes; a task
/// that finished while none was awaited, and is first looked at after the
/// deadline, counts as late.
///
/// Nothing is cancelled, on timeout or otherwise: when the iterator and all
/// its awaitables are dropped, the tasks that have not finished run on
/// (their handles are dropped, which detaches them), as asyncio leaves them.
/// Cancel them through [`wait`](super::wait) or a
/// [`TaskGroup`](crate::TaskGroup) if they must stop.
///
/// Each wake polls every unfinished task (O(n)); an awaitable that finishes
/// wakes the others still waiting, so one of them takes over the polling.
///
/// ```
/// use std::time::Duration;
/// use coil::time::sleep;
///
/// coil::run(async {
///     let tasks = [30u64, 10, 20].map(|ms| coil::spawn(async move {
///         sleep(Duration::from_millis(ms)).await;
///         ms
///     }));
///     let mut order = Vec::new();
///     for next in coil::as_completed_tasks(tasks, Duration::from_secs(5)) {
///         order.push(next.await.unwrap().result.unwrap());
///     }
///     assert_eq!(order, [10, 20, 30]);
///
///     // With a timeout: the slow one is not waited for (and keeps running).
///     let tasks = [1u64, 3_600_000].map(|ms| coil::spawn(sleep(Duration::from_millis(ms))));
///     let mut it = coil::as_completed_tasks(tasks, Duration::from_millis(50));
///     assert!(it.next().unwrap().await.is_ok());
///     assert!(it.next().unwrap().await.is_err(), "Elapsed");
/// });
/// ```
pub fn as_completed_tasks<I, T>(
    tasks: I,
    timeout: impl Into<Option<Duration>>,
) -> AsCompletedTasks<T>
where
    I: IntoIterator<Item = Task<T>>,
{
    let deadline = timeout.into().map(|d| Instant::now() + d);
    let tasks: Vec<_> = tasks.into_iter().map(Some).collect();
    let remaining = tasks.len();
    AsCompletedTasks {
        shared: Rc::new(RefCell::new(Shared {
            tasks,
            ready: VecDeque::new(),
            waiters: Vec::new(),
            expired: false,
        })),
        deadline,
        remaining,
        next_key: 0,
    }
}

/// What the awaitables of one [`as_completed_tasks`] share.
struct Shared<T> {
    /// The handles, in input order; `None` once the task's result was taken.
    tasks: Vec<Option<Task<T>>>,
    /// Results taken from finished tasks, not yet given to an awaitable.
    ready: VecDeque<Completed<T>>,
    /// The awaitables waiting for a result: `(key, waker)`.
    waiters: Vec<(usize, Waker)>,
    /// The timeout passed: results not taken from the tasks by then are not
    /// taken (every awaitable without one gives `Elapsed`).
    expired: bool,
}

impl<T> Shared<T> {
    /// Polls every unfinished task with `cx`, moving results to `ready`.
    fn collect(&mut self, cx: &mut Context<'_>) {
        for (index, slot) in self.tasks.iter_mut().enumerate() {
            let Some(task) = slot else { continue };
            if let Poll::Ready(result) = super::poll_task(task, cx) {
                let id = task.id();
                *slot = None;
                self.ready.push_back(Completed { index, id, result });
            }
        }
    }

    /// Removes `key` from the waiters and wakes the others: one of them
    /// must poll the tasks again, since the tasks may hold only `key`'s waker.
    fn leave(&mut self, key: usize) {
        self.waiters.retain(|(k, _)| *k != key);
        for (_, w) in &self.waiters {
            w.wake_by_ref();
        }
    }
}

/// The iterator returned by [`as_completed_tasks`]: yields one
/// [`NextCompleted`] per task.
#[must_use = "iterators do nothing unless their items are awaited"]
pub struct AsCompletedTasks<T> {
    shared: Rc<RefCell<Shared<T>>>,
    deadline: Option<Instant>,
    remaining: usize,
    next_key: usize,
}

impl<T> Iterator for AsCompletedTasks<T> {
    type Item = NextCompleted<T>;

    fn next(&mut self) -> Option<NextCompleted<T>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let key = self.next_key;
        self.next_key += 1;
        Some(NextCompleted {
            shared: Some(self.shared.clone()),
            key,
            deadline: self.deadline,
            timer: None,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for AsCompletedTasks<T> {}

impl<T> fmt::Debug for AsCompletedTasks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompletedTasks")
            .field("remaining", &self.remaining)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// One awaitable of [`as_completed_tasks`]: gives the next task to finish.
#[must_use = "futures do nothing unless awaited"]
pub struct NextCompleted<T> {
    /// `None` once this awaitable has given its result.
    shared: Option<Rc<RefCell<Shared<T>>>>,
    key: usize,
    deadline: Option<Instant>,
    timer: Option<Sleep>,
}

impl<T> Unpin for NextCompleted<T> {}

impl<T> Future for NextCompleted<T> {
    type Output = Result<Completed<T>, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = || crate::rt::Awaiting::Combinator("as_completed");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<T> NextCompleted<T> {
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Completed<T>, Elapsed>> {
        let this = &mut *self;
        let shared_rc = this
            .shared
            .clone()
            .expect("NextCompleted polled after it gave its result");
        let mut shared = shared_rc.borrow_mut();
        if !shared.expired {
            // The clock decides, not only the timer: a `Sleep` made after
            // its deadline still suspends once (as `sleep(ZERO)` does).
            let passed = this.deadline.is_some_and(|d| {
                Instant::now() >= d
                    || Pin::new(this.timer.get_or_insert_with(|| sleep_until(d)))
                        .poll(cx)
                        .is_ready()
            });
            if passed {
                // From now on no result counts (asyncio stops listening to
                // the tasks at the timeout); those taken before still do.
                shared.expired = true;
            } else {
                shared.collect(cx);
            }
        }
        let out = match shared.ready.pop_front() {
            Some(done) => Ok(done),
            None if shared.expired => Err(Elapsed::new()),
            None => {
                match shared.waiters.iter_mut().find(|(k, _)| *k == this.key) {
                    Some((_, w)) => w.clone_from(cx.waker()),
                    None => shared.waiters.push((this.key, cx.waker().clone())),
                }
                return Poll::Pending;
            }
        };
        shared.leave(this.key);
        drop(shared);
        this.shared = None;
        Poll::Ready(out)
    }
}

impl<T> Drop for NextCompleted<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            // Waiting, or never polled: let another awaitable take over.
            if let Ok(mut s) = shared.try_borrow_mut() {
                s.leave(self.key);
            }
        }
    }
}

impl<T> fmt::Debug for NextCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextCompleted")
            .field("key", &self.key)
            .field("deadline", &self.deadline)
            .field("done", &self.shared.is_none())
            .finish()
    }
}
