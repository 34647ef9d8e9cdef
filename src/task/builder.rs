//! [`Builder`]: spawn a task with options (a name).

use std::future::Future;
use std::sync::Arc;

use super::Task;

/// Spawns a task with options.
///
/// ```
/// coil::run(async {
///     let t = coil::task::Builder::new().name("worker-1").spawn(async { 7 });
///     assert_eq!(t.name(), Some("worker-1"));
///     assert_eq!(t.await.unwrap(), 7);
/// });
/// ```
#[derive(Debug, Default, Clone)]
#[must_use = "a Builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<Arc<str>>,
    cooperative: bool,
}

impl Builder {
    /// A builder with no options set.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task; the name appears in panic reports and in `Debug` output.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Makes [`Task::cancel`](super::TaskHandle::cancel) a request this task answers instead of a drop
    /// (asyncio's cancellation; decision 0010). The request shows up as
    /// `Err(Cancelled)` from the task's next [`cancellable`](super::cancellable)
    /// scope that would wait (or [`cancelled`](super::cancelled)); the task
    /// can then `.await` its cleanup and finish cancelled with
    /// [`Cancelled::reraise`](super::Cancelled::reraise), or carry on.
    /// [`Task::abort`](super::TaskHandle::abort) and runtime shutdown still drop it.
    ///
    /// ```
    /// use coil::task::{Builder, cancellable};
    /// use std::time::Duration;
    ///
    /// coil::run(async {
    ///     let t = Builder::new().cooperative_cancel().spawn(async {
    ///         match cancellable(coil::time::sleep(Duration::from_secs(60))).await {
    ///             Ok(()) => "slept",
    ///             Err(c) => {
    ///                 coil::task::yield_now().await; // async cleanup
    ///                 c.reraise().await
    ///             }
    ///         }
    ///     });
    ///     coil::task::yield_now().await;
    ///     t.cancel_with("stop");
    ///     let err = t.await.unwrap_err();
    ///     assert_eq!(err.cancelled().unwrap().message(), Some("stop"));
    /// });
    /// ```
    pub fn cooperative_cancel(mut self) -> Builder {
        self.cooperative = true;
        self
    }

    /// Spawns `future` on the current event loop, like [`crate::spawn`].
    ///
    /// # Panics
    ///
    /// Panics if called outside a coil runtime.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let task = crate::rt::spawn_local(future, self.name);
        if self.cooperative {
            // Before the handle is returned: no `cancel` can come first.
            task.raw().set_cooperative();
        }
        task
    }
}
