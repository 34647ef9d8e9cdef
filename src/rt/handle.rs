//! [`Handle`]: reach a loop from any thread.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::Shared;
use crate::task::Task;
use crate::task::raw;

/// A cloneable, `Send + Sync` reference to an event loop, for spawning onto it
/// from other threads (asyncio's `run_coroutine_threadsafe`).
///
/// ```
/// let rt = coil::Runtime::new()?;
/// let handle = rt.handle();
/// let task = std::thread::spawn(move || handle.spawn(async { 2 + 2 }))
///     .join()
///     .unwrap();
/// assert_eq!(rt.block_on(task).unwrap(), 4);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Handle {
        Handle { shared }
    }

    /// The handle of the loop running on this thread.
    ///
    /// # Panics
    ///
    /// Panics outside a coil runtime; see [`Handle::try_current`].
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    }

    /// The handle of the loop running on this thread, or an error outside one.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        super::with_core(|core| match core {
            Some(core) => Ok(Handle::from_shared(core.shared.clone())),
            None => Err(TryCurrentError(())),
        })
    }

    /// Spawns a `Send` future onto this loop from any thread.
    ///
    /// The task runs on the loop's thread; the returned [`Task`] can be
    /// awaited anywhere. If the runtime has shut down, the future is dropped
    /// at once and awaiting the task gives `Err(TaskError::Cancelled(_))`.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.shared.is_current() {
            return super::spawn_local(future, None);
        }
        self.spawn_remote(future)
    }

    #[track_caller]
    fn spawn_remote<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let t = raw::allocate_remote(future, &self.shared);
        // The id is the allocation's (`task/raw.rs`): recorded after it,
        // before the task is published.
        if let Some(checks) = &self.shared.debug {
            checks.record_spawn(t.id().as_u64(), std::panic::Location::caller(), None);
        }
        // SAFETY: a new task of this runtime, in no list or queue: its
        // list and queue references go to the remote queue.
        match unsafe { self.shared.push_spawned(t) } {
            // SAFETY: the third reference is the handle's; Output matches.
            Ok(()) => unsafe { Task::from_raw(t) },
            Err(t) => {
                // Shut down: never ran, never bound; finish it here (its future
                // is Send, so dropping it on this thread is fine) and release
                // the list and queue references.
                // SAFETY: the task is ours alone (not published anywhere), and
                // its three references came back to us; the handle keeps one.
                unsafe {
                    t.shutdown();
                    t.release(2);
                    Task::from_raw(t)
                }
            }
        }
    }

    /// The loop's counters ([`LoopMetrics`](super::LoopMetrics)), from any
    /// thread: as of the loop's last park or the end of its last
    /// `block_on`, or as of now when called on the loop's own thread. Always on (the loop counts in plain cells and
    /// publishes them with relaxed stores when it parks).
    pub fn metrics(&self) -> super::LoopMetrics {
        if self.shared.is_current() {
            super::with_core(|core| {
                if let Some(core) = core {
                    core.publish_metrics();
                }
            });
        }
        self.shared.metrics.read()
    }

    /// Every unfinished task of the loop with what it waits on, as a tree
    /// (asyncio's `ps` and `pstree`), from any thread; `Display` prints it.
    /// The `block_on` future is listed too, as id 0.
    ///
    /// Needs debug mode (`COIL_DEBUG=1` or
    /// [`Builder::debug`](super::Builder::debug)); without it the dump
    /// says so and lists no task. The loop itself does not answer: each of
    /// its task polls leaves the task's await tree in debug mode's table,
    /// which this reads. So a dump works while the loop is blocked (the
    /// task that blocks it shows as running since its poll started), and
    /// shows each task as of its last poll. See docs/observability.md.
    pub fn dump(&self) -> super::TaskDump {
        match &self.shared.debug {
            Some(checks) => checks.dump(self.shared.core_id),
            None => super::TaskDump::new(
                self.shared.core_id,
                std::time::Instant::now(),
                false,
                Vec::new(),
            ),
        }
    }

    /// Whether the loop behind this handle has shut down.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("runtime", &self.shared.core_id)
            .finish()
    }
}

/// Error of [`Handle::try_current`] outside a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "there is no coil event loop running on this thread; call this from inside \
             coil::run(...) or Runtime::block_on(...), or keep a Handle from Runtime::handle()",
        )
    }
}

impl std::error::Error for TryCurrentError {}
