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
        crate::rt::spawn_local(future, self.name)
    }
}
