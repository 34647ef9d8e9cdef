//! Cross-loop tasks: [`PoolHandle::spawn_on`] and the [`RemoteTask`] it
//! returns.
//!
//! A `RemoteTask` is a [`Task`] plus the core it runs on and a cancel on
//! drop. It has no synchronisation of its own: the result, the join waker and
//! the cancel flag cross threads through the task's state word and the target
//! loop's remote queue (rules 5–7 of `task/mod.rs`, checked by the loom
//! models of `task::state_loom` and `rt::remote_loom`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::stop::Work;
use super::{CoreId, PoolHandle};
use crate::task::{PanicPayload, Task, TaskError};

impl PoolHandle {
    /// Spawns a `Send` future on loop `core`, from any thread or loop.
    ///
    /// The returned [`RemoteTask`] can be awaited on any loop (the pool's
    /// or another runtime's) or waited for on a plain thread
    /// ([`RemoteTask::wait`]); dropping it, or [`RemoteTask::cancel`],
    /// cancels the task. The task counts as its loop's work until it
    /// finishes: a shutdown lets it finish within the drain deadline. Work
    /// sent after a shutdown request may find its loop already drained and
    /// stopping; then, as on a stopped loop, the future is dropped and the
    /// task reports it was cancelled.
    ///
    /// # Panics
    ///
    /// If `core` is not one of the pool's.
    #[track_caller]
    pub fn spawn_on<F>(&self, core: CoreId, future: F) -> RemoteTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let work = Work::new(self, core);
        let task = self.slot(core).handle.spawn(async move {
            let _work = work;
            future.await
        });
        RemoteTask {
            task: Some(task),
            core,
        }
    }
}

impl PoolHandle {
    /// Runs `make()` on loop `core` and spawns the future it returns there:
    /// for work that must be built on its loop (it holds `Rc`s, or the loop's
    /// sockets, as a connection handed over from another loop does). Only
    /// `make` and the output cross threads.
    ///
    /// Otherwise as [`spawn_on`](PoolHandle::spawn_on): await the
    /// [`RemoteTask`] anywhere, dropping it cancels the work, a panic (of
    /// `make` or of the future) comes back with the core.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use coil::pool::{CoreId, Pool};
    ///
    /// let pool = Pool::builder().loops(2).build()?;
    /// let t = pool.spawn_on_with(CoreId::new(1), || {
    ///     let local = Rc::new(20); // not Send: made on loop 1
    ///     async move { *local + 1 }
    /// });
    /// assert_eq!(t.wait().unwrap(), 21);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `core` is not one of the pool's.
    #[track_caller]
    pub fn spawn_on_with<M, Fut>(&self, core: CoreId, make: M) -> RemoteTask<Fut::Output>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_on(core, async move {
            // The local task holds the !Send future; this Send one waits for
            // it, and cancels it if it is itself cancelled.
            let mut local = CancelOnDrop(crate::task::spawn(async move { make().await }));
            match local.await_result().await {
                Ok(v) => v,
                Err(TaskError::Panicked(p)) => std::panic::resume_unwind(p.into_inner()),
                // Only the loop's shutdown cancels the local task (nothing
                // else has its handle), and it cancels this task as well.
                Err(TaskError::Cancelled(_)) => std::future::pending().await,
            }
        })
    }
}

/// A local task that is cancelled if its awaiter is dropped.
pub(super) struct CancelOnDrop<T>(pub(super) Task<T>);

impl<T> CancelOnDrop<T> {
    pub(super) async fn await_result(&mut self) -> Result<T, TaskError> {
        (&mut self.0).await
    }
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A task running on one loop of a [`Pool`](super::Pool), awaited from
/// another loop or thread: [`PoolHandle::spawn_on`].
///
/// `.await` gives the task's output, or a [`RemoteTaskError`] naming the core
/// if it panicked or was cancelled. Unlike [`Task`], **dropping it cancels the
/// task**; [`detach`](RemoteTask::detach) to let it run on.
#[must_use = "dropping a RemoteTask cancels the task"]
pub struct RemoteTask<T> {
    /// `None` only after [`RemoteTask::detach`] took it.
    task: Option<Task<T>>,
    core: CoreId,
}

impl<T> RemoteTask<T> {
    /// The core the task runs on.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.task().is_finished()
    }

    fn task(&self) -> &Task<T> {
        self.task
            .as_ref()
            .expect("a RemoteTask's task is taken only by detach")
    }

    /// Requests cancellation, as [`TaskHandle::cancel`](crate::task::TaskHandle::cancel)
    /// (the task is cancelled on its own loop, at that loop's next turn).
    pub fn cancel(&self) -> bool {
        self.task().cancel()
    }

    /// The plain [`Task`], which detaches (does not cancel) when dropped.
    pub fn detach(mut self) -> Task<T> {
        self.task
            .take()
            .expect("a RemoteTask's task is taken only by detach")
    }

    /// Blocks this thread until the task finishes (for a plain thread; on a
    /// loop, `.await` it).
    ///
    /// # Panics
    ///
    /// Inside a running event loop, which it would block.
    #[track_caller]
    pub fn wait(self) -> Result<T, RemoteTaskError> {
        crate::sync::block::block_on("RemoteTask::wait", self)
    }
}

impl<T> Future for RemoteTask<T> {
    type Output = Result<T, RemoteTaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let core = self.core;
        let task = self
            .task
            .as_mut()
            .expect("a RemoteTask's task is taken only by detach");
        Pin::new(task)
            .poll(cx)
            .map(|r| r.map_err(|error| RemoteTaskError { core, error }))
    }
}

impl<T> Drop for RemoteTask<T> {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.cancel();
        }
    }
}

impl<T> fmt::Debug for RemoteTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteTask")
            .field("core", &self.core)
            .field("task", &self.task)
            .finish()
    }
}

/// A [`RemoteTask`] panicked or was cancelled: the [`TaskError`] and the core
/// it ran on.
#[derive(Debug)]
pub struct RemoteTaskError {
    core: CoreId,
    error: TaskError,
}

impl RemoteTaskError {
    /// The core the task ran on.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// What happened to the task.
    pub fn error(&self) -> &TaskError {
        &self.error
    }

    /// The [`TaskError`], without the core.
    pub fn into_error(self) -> TaskError {
        self.error
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        self.error.is_panic()
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.error.is_cancelled()
    }

    /// The panic payload, if the task panicked.
    pub fn panic(&self) -> Option<&PanicPayload> {
        self.error.panic()
    }
}

impl fmt::Display for RemoteTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "on {}: {}", self.core, self.error)
    }
}

impl std::error::Error for RemoteTaskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
