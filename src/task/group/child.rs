//! A group's children as the user holds them: [`GroupTask`] (the handle
//! `spawn` returns: awaitable, cancellable, named), [`GroupTaskError`] (why
//! awaiting it gave no value) and [`GroupTaskBuilder`] (spawn with a name,
//! or get a refusal as an `Err` instead of a panic).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::state::{ChildCell, Status};
use super::{GroupClosed, TaskGroup};
use crate::task::TaskId;

/// A child of a [`TaskGroup`]: a task handle, like the `Task` asyncio's
/// `TaskGroup.create_task` returns.
///
/// Await it for the child's value; [`cancel`](GroupTask::cancel) it to stop
/// that child alone, which does not fail the group (asyncio does not count
/// a child's `CancelledError` as an error). After the group, read the value
/// with [`take`](GroupTask::take). Dropping the handle changes nothing: the
/// group still runs and waits for the child.
pub struct GroupTask<T> {
    pub(super) child: Rc<ChildCell>,
    pub(super) value: Rc<RefCell<Option<T>>>,
    pub(super) index: usize,
}

impl<T> GroupTask<T> {
    /// The child's spawn index in its group (0, 1, …): the index that
    /// [`TaskGroupError::failures`](super::TaskGroupError::failures) and
    /// [`TaskGroupError::cancelled`](super::TaskGroupError::cancelled) use.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The child task's id.
    pub fn id(&self) -> TaskId {
        self.task().id()
    }

    /// The child's name, if it was spawned with [`GroupTaskBuilder::name`]
    /// (asyncio's `create_task(coro, name=...)`).
    pub fn name(&self) -> Option<&str> {
        self.task().name()
    }

    /// Requests cancellation of this child alone (asyncio's `task.cancel()`):
    /// its future is dropped when the loop next gets to it, at the `.await`
    /// it is suspended on. The group goes on; the child then counts as
    /// cancelled. Returns `false` if the child had already finished.
    pub fn cancel(&self) -> bool {
        self.child.status() == Status::Running && self.task().cancel()
    }

    /// Whether the child has finished: succeeded, failed, or was cancelled.
    pub fn is_finished(&self) -> bool {
        self.child.status() != Status::Running
    }

    /// Whether the child finished successfully.
    pub fn is_success(&self) -> bool {
        self.child.status() == Status::Succeeded
    }

    /// Whether the child was cancelled, by its group or through
    /// [`cancel`](GroupTask::cancel).
    pub fn is_cancelled(&self) -> bool {
        self.child.status() == Status::Cancelled
    }

    /// The child's value, if it finished successfully and the value was not
    /// taken yet (by this or by awaiting the handle).
    pub fn take(&mut self) -> Option<T> {
        self.value.borrow_mut().take()
    }

    fn task(&self) -> &crate::Task<()> {
        self.child
            .task
            .get()
            .expect("a GroupTask exists only for a spawned child")
    }
}

/// Waits for the child: its value, or why there is none.
///
/// # Panics
///
/// Polling after the value was taken with [`GroupTask::take`] panics.
impl<T> Future for GroupTask<T> {
    type Output = Result<T, GroupTaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match self.child.status() {
            Status::Running => {
                self.child.set_waiter(cx.waker());
                return Poll::Pending;
            }
            Status::Succeeded => Ok(self
                .value
                .borrow_mut()
                .take()
                .expect("GroupTask awaited after its value was taken")),
            Status::Failed => Err(GroupTaskError::Failed),
            Status::Cancelled => Err(GroupTaskError::Cancelled),
        })
    }
}

impl<T> fmt::Debug for GroupTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupTask")
            .field("index", &self.index)
            .field("name", &self.name())
            .field("status", &self.child.status())
            .finish()
    }
}

/// Why awaiting a [`GroupTask`] gave no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupTaskError {
    /// The child was cancelled, by its group or through
    /// [`GroupTask::cancel`].
    Cancelled,
    /// The child returned an error or panicked. The failure itself (the
    /// error value or panic payload) is reported once, by the group, in its
    /// [`TaskGroupError`](super::TaskGroupError).
    Failed,
}

impl fmt::Display for GroupTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupTaskError::Cancelled => "the group's child was cancelled",
            GroupTaskError::Failed => "the group's child failed (its group reports the failure)",
        })
    }
}

impl std::error::Error for GroupTaskError {}

/// Spawns a child into a [`TaskGroup`] with options, from
/// [`TaskGroup::builder`]; its `spawn` returns an `Err` where
/// [`TaskGroup::spawn`] panics (as `std::thread::Builder::spawn` does next
/// to `std::thread::spawn`).
///
/// ```
/// use coil::{TaskGroup, task_group};
///
/// coil::run(async {
///     task_group(|tg: TaskGroup| async move {
///         let t = tg.builder().name("fetch").spawn(async { 7 }).expect("open");
///         assert_eq!(t.name(), Some("fetch"));
///         assert_eq!(t.await, Ok(7));
///         Ok(())
///     })
///     .await
///     .unwrap();
/// });
/// ```
#[must_use = "a GroupTaskBuilder does nothing until `spawn` is called"]
pub struct GroupTaskBuilder<'a, E> {
    pub(super) group: &'a TaskGroup<E>,
    pub(super) task: crate::task::Builder,
}

impl<E: 'static> GroupTaskBuilder<'_, E> {
    /// Names the child; the name is its task's name ([`GroupTask::name`],
    /// panic reports, `Debug` output).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.task = self.task.name(name);
        self
    }

    /// Makes the group's cancellation of this child (and
    /// [`GroupTask::cancel`]) a request the child answers, as
    /// [`Builder::cooperative_cancel`](crate::task::Builder::cooperative_cancel):
    /// its cleanup can `.await`, and the group waits for it.
    pub fn cooperative_cancel(mut self) -> Self {
        self.task = self.task.cooperative_cancel();
        self
    }

    /// As [`TaskGroup::spawn`], but a group that is shutting down or
    /// finished is an `Err` instead of a panic; nothing is started then.
    ///
    /// # Panics
    ///
    /// Outside a coil runtime.
    #[track_caller]
    pub fn spawn<T, F>(self, future: F) -> Result<GroupTask<T>, GroupClosed>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.try_spawn(async move { Ok(future.await) })
    }

    /// As [`TaskGroup::try_spawn`], but a group that is shutting down or
    /// finished is an `Err` instead of a panic; nothing is started then.
    ///
    /// # Panics
    ///
    /// Outside a coil runtime.
    #[track_caller]
    pub fn try_spawn<T, F>(self, future: F) -> Result<GroupTask<T>, GroupClosed>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        self.group.start(self.task, future)
    }
}

impl<E> fmt::Debug for GroupTaskBuilder<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupTaskBuilder")
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}
