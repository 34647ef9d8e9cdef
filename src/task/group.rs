//! [`TaskGroup`] and [`task_group`]: structured concurrency with asyncio
//! 3.11's `TaskGroup` semantics.
//!
//! ```
//! use coil::{TaskGroup, task_group};
//!
//! let (a, b) = coil::run(async {
//!     let (mut a, mut b) = task_group(|tg: TaskGroup| async move {
//!         let a = tg.spawn(async { 1 });
//!         let b = tg.spawn(async { "two" });
//!         (a, b)
//!     })
//!     .await
//!     .expect("no child failed");
//!     // Leaving the group waited for both children.
//!     (a.take().unwrap(), b.take().unwrap())
//! });
//! assert_eq!((a, b), (1, "two"));
//! ```
//!
//! The rules are documented on [`task_group`].

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use super::catch_unwind::CatchUnwind;
use super::failure::Failure;

mod state;

use self::state::{AbortOnDrop, Child, Inner, LiveGuard, Phase, State, Status};

/// Runs `body` with a new [`TaskGroup`], then waits for all of the group's
/// children: asyncio's `async with asyncio.TaskGroup() as tg:`.
///
/// Returns the body's output once every child has finished, or the
/// aggregated failures if any child failed (after cancelling and awaiting
/// the others). The exact rules are below.
///
/// The group's error type `E` (for children started with
/// [`TaskGroup::try_spawn`]) is usually given by annotating the closure's
/// parameter: `|tg: TaskGroup<MyError>|`, or `|tg: TaskGroup|` when no child
/// returns errors (`E` then defaults to `Infallible`).
///
/// ```
/// use std::time::Duration;
/// use coil::{Failure, TaskGroup, task_group, time::sleep};
///
/// coil::run(async {
///     let err = task_group(|tg: TaskGroup<String>| async move {
///         tg.spawn(async { sleep(Duration::from_secs(3600)).await });
///         tg.try_spawn(async { Err::<(), _>("no such user".to_string()) });
///     })
///     .await
///     .unwrap_err();
///     // The hour-long sibling was cancelled, not waited for.
///     assert_eq!(err.cancelled(), [0]);
///     assert!(matches!(&err.failures()[..], [(1, Failure::Error(e))] if e == "no such user"));
/// });
/// ```
///
/// # Semantics, precisely
///
/// `task_group(body)` creates a group, calls `body` with a [`TaskGroup`]
/// handle and awaits the future it returns (the *body*) **in the current
/// task**. Children spawned with [`TaskGroup::spawn`] / [`try_spawn`] are
/// real tasks on the current loop; they start on the loop's next tick.
///
/// 1. **Leaving waits for all.** When the body finishes, `task_group` keeps
///    waiting until every child has finished, then returns
///    `Ok(body_output)`. Each child's value is in its [`GroupTask`] handle.
/// 2. **The first failure cancels the rest.** A child *fails* if it panics,
///    or, when spawned with [`try_spawn`], returns `Err`. At that moment,
///    inside the failing child's poll, the group requests cancellation of
///    every other child ([`Task::cancel`]), so none of them runs again; the
///    body is dropped the next time the owner is polled (it stops at the
///    `.await` it was suspended on). `task_group` then waits until every
///    cancelled child's future has been dropped (their destructors have run)
///    and returns `Err(TaskGroupError)`.
/// 3. **Failures are aggregated**, like `ExceptionGroup`: the error lists each
///    failure with the child's spawn index. Because the cancellation is
///    requested synchronously at the first failure, later failures cannot
///    happen, so the list normally holds exactly one failure; it holds
///    every failure that happened before the cancellation took effect. The
///    error also lists which children the group cancelled. A child that
///    finished successfully keeps its value even when the group fails.
/// 4. **Spawning while the group is shutting down** (after a failure) does
///    not start the child: its future is dropped at once and its handle
///    reports it as cancelled. **Spawning after the group has finished**
///    panics: a handle cloned out of the body outlived its group.
/// 5. **Dropping the owner** (the future `task_group` returned, for instance
///    because the task awaiting it was cancelled) cancels every child that
///    is still running. Drop cannot wait, so the children's futures are
///    dropped when the loop next gets to them (the next tick), not before
///    the drop returns.
/// 6. **A panic in the body** cancels the children, waits for them like a
///    failure does, and then resumes the panic in the awaiting task.
///    An `Err` *returned* by the body is just its output: it does not
///    cancel anything (unlike an exception in asyncio's `async with` block).
///
/// The handle is an `Rc`, so children may capture a clone and spawn
/// siblings, as in asyncio. Cancelling a child from outside (with a task
/// handle you do not have; the group keeps them) is not possible: a child
/// that wants to stop returns.
///
/// [`try_spawn`]: TaskGroup::try_spawn
/// [`Task::cancel`]: crate::Task::cancel
pub async fn task_group<E, F, Fut>(body: F) -> Result<Fut::Output, TaskGroupError<E>>
where
    E: 'static,
    F: FnOnce(TaskGroup<E>) -> Fut,
    Fut: Future,
{
    let group = TaskGroup {
        inner: Rc::new(Inner {
            state: RefCell::new(State {
                phase: Phase::Open,
                children: Vec::new(),
                failures: Vec::new(),
                live: 0,
                owner: None,
            }),
        }),
    };
    let inner = group.inner.clone();
    let _abort_on_drop = AbortOnDrop(inner.clone());

    // Run the body until it finishes or a child fails.
    let mut body = Some(CatchUnwind::new(body(group)));
    let outcome = poll_fn(|cx| {
        if inner.state.borrow().phase != Phase::Open {
            return Poll::Ready(None);
        }
        inner.set_owner(cx.waker());
        let body = body.as_mut().expect("polled only until it finishes");
        Pin::new(body).poll(cx).map(Some)
    })
    .await;
    drop(body); // a body still running is cancelled here (rule 2)

    let output = match outcome {
        Some(Ok(output)) => Some(output),
        Some(Err(panic)) => {
            inner.abort(None);
            inner.wait_for_children().await;
            inner.state.borrow_mut().phase = Phase::Closed;
            std::panic::resume_unwind(panic);
        }
        None => None,
    };

    inner.wait_for_children().await;
    let mut st = inner.state.borrow_mut();
    st.phase = Phase::Closed;
    if st.failures.is_empty() {
        Ok(output.expect("the body is dropped only after a failure"))
    } else {
        let cancelled = st
            .children
            .iter()
            .enumerate()
            .filter(|(_, c)| c.status.get() == Status::Cancelled)
            .map(|(i, _)| i)
            .collect();
        Err(TaskGroupError {
            failures: std::mem::take(&mut st.failures),
            cancelled,
        })
    }
}

/// A handle to spawn children into a running [`task_group`].
///
/// Cloning it is cheap (an `Rc`); every clone spawns into the same group.
/// `E` is the error type of children started with [`TaskGroup::try_spawn`].
pub struct TaskGroup<E = Infallible> {
    inner: Rc<Inner<E>>,
}

impl<E> Clone for TaskGroup<E> {
    fn clone(&self) -> Self {
        TaskGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E: 'static> TaskGroup<E> {
    /// Spawns a child whose failure can only be a panic:
    /// `tg.create_task(coro)`.
    ///
    /// The child starts on the loop's next tick. Its value will be in the
    /// returned [`GroupTask`] once it finishes.
    ///
    /// # Panics
    ///
    /// Panics if the group has already finished (rule 4 of [`task_group`]),
    /// or outside a coil runtime.
    #[track_caller]
    pub fn spawn<T, F>(&self, future: F) -> GroupTask<T>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.try_spawn(async move { Ok(future.await) })
    }

    /// Spawns a child that fails the group if it returns `Err`.
    ///
    /// # Panics
    ///
    /// As [`TaskGroup::spawn`].
    #[track_caller]
    pub fn try_spawn<T, F>(&self, future: F) -> GroupTask<T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        let status = Rc::new(Cell::new(Status::Running));
        let value = Rc::new(RefCell::new(None));
        let handle = GroupTask {
            status: status.clone(),
            value: value.clone(),
            index: 0,
        };
        let index = {
            let mut st = self.inner.state.borrow_mut();
            match st.phase {
                Phase::Closed => panic!(
                    "TaskGroup::spawn on a group that has already finished; \
                     spawn only while task_group(..) is still being awaited"
                ),
                Phase::Aborting => status.set(Status::Cancelled),
                Phase::Open => st.live += 1,
            }
            st.children.push(Child {
                task: None,
                status: status.clone(),
            });
            st.children.len() - 1
        };
        if status.get() == Status::Cancelled {
            return GroupTask { index, ..handle };
        }
        // Created before the task so that a child cancelled before its first
        // poll still reports in when its (never polled) future is dropped.
        let guard = LiveGuard {
            group: self.inner.clone(),
            status,
        };
        let task = super::spawn(async move {
            let guard = guard;
            match CatchUnwind::new(future).await {
                Ok(Ok(v)) => {
                    *value.borrow_mut() = Some(v);
                    guard.status.set(Status::Succeeded);
                }
                Ok(Err(e)) => guard.group.fail(index, Failure::Error(e)),
                Err(panic) => guard.group.fail(index, Failure::Panicked(panic.into())),
            }
        });
        self.inner.state.borrow_mut().children[index].task = Some(task);
        GroupTask { index, ..handle }
    }

    /// How many children have been spawned into the group so far.
    pub fn len(&self) -> usize {
        self.inner.state.borrow().children.len()
    }

    /// True if no child has been spawned yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once a child has failed and the group is cancelling the others
    /// (or the group has finished).
    pub fn is_shutting_down(&self) -> bool {
        self.inner.state.borrow().phase != Phase::Open
    }
}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state.borrow();
        f.debug_struct("TaskGroup")
            .field("phase", &st.phase)
            .field("children", &st.children.len())
            .field("running", &st.live)
            .field("failures", &st.failures.len())
            .finish()
    }
}

/// A child of a [`TaskGroup`]: where its value lands once it finishes.
///
/// Unlike a [`Task`](super::Task), this is not a future and does not join: the group
/// does the joining. Read the value after the group, or poll
/// [`GroupTask::is_finished`] inside it. Dropping it changes nothing.
pub struct GroupTask<T> {
    status: Rc<Cell<Status>>,
    value: Rc<RefCell<Option<T>>>,
    index: usize,
}

impl<T> GroupTask<T> {
    /// The child's spawn index in its group (0, 1, …): the index that
    /// [`TaskGroupError::failures`] and [`TaskGroupError::cancelled`] use.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether the child has finished: succeeded, failed, or was cancelled.
    pub fn is_finished(&self) -> bool {
        self.status.get() != Status::Running
    }

    /// Whether the child finished successfully.
    pub fn is_success(&self) -> bool {
        self.status.get() == Status::Succeeded
    }

    /// Whether the group cancelled the child (or never started it).
    pub fn is_cancelled(&self) -> bool {
        self.status.get() == Status::Cancelled
    }

    /// The child's value, if it finished successfully and the value was not
    /// taken yet.
    pub fn take(&mut self) -> Option<T> {
        self.value.borrow_mut().take()
    }
}

impl<T> fmt::Debug for GroupTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupTask")
            .field("index", &self.index)
            .field("status", &self.status.get())
            .finish()
    }
}

/// Why a [`task_group`] failed: every child failure, like asyncio's
/// `ExceptionGroup`, and which children the group cancelled.
pub struct TaskGroupError<E> {
    failures: Vec<(usize, Failure<E>)>,
    cancelled: Vec<usize>,
}

impl<E> TaskGroupError<E> {
    /// Each failure with the failing child's spawn index, in the order they
    /// happened (never empty).
    pub fn failures(&self) -> &[(usize, Failure<E>)] {
        &self.failures
    }

    /// The failures by value.
    pub fn into_failures(self) -> Vec<(usize, Failure<E>)> {
        self.failures
    }

    /// The first failure: the one that made the group cancel the others.
    pub fn first(&self) -> &Failure<E> {
        &self.failures[0].1
    }

    /// Spawn indices of the children the group cancelled (ascending); they
    /// had not finished, and their futures have been dropped.
    pub fn cancelled(&self) -> &[usize] {
        &self.cancelled
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupError")
            .field("failures", &self.failures)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.failures.len();
        write!(
            f,
            "task group failed ({n} failure{}, {} cancelled):",
            if n == 1 { "" } else { "s" },
            self.cancelled.len()
        )?;
        for (i, failure) in &self.failures {
            write!(f, " child {i} {failure};")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskGroupError<E> {}
