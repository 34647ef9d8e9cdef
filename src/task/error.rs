//! [`TaskError`]: why a task produced no value.

use std::any::Any;
use std::fmt;

/// Why awaiting a [`Task`](super::Task) gave no value.
///
/// asyncio raises `CancelledError` or re-raises the task's exception; coil
/// returns this error instead. A panic's payload is kept so that it can be
/// inspected or re-raised with [`std::panic::resume_unwind`].
pub enum TaskError {
    /// The task was cancelled with [`Task::cancel`](super::Task::cancel), or
    /// its runtime shut down before it finished.
    Cancelled,
    /// The task's future panicked; this is the payload.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl TaskError {
    /// True for [`TaskError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }

    /// True for [`TaskError::Panicked`].
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }

    /// The panic payload, if the task panicked; otherwise the error back.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, TaskError> {
        match self {
            TaskError::Panicked(p) => Ok(p),
            other => Err(other),
        }
    }

    /// The panic payload.
    ///
    /// # Panics
    ///
    /// Panics if the task was cancelled rather than panicking; check with
    /// [`TaskError::is_panic`] or use [`TaskError::try_into_panic`].
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("TaskError::into_panic called on a cancelled task; use try_into_panic to handle both cases")
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("Cancelled"),
            TaskError::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_message(&**p))
                .finish(),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("task was cancelled"),
            TaskError::Panicked(p) => write!(f, "task panicked: {}", panic_message(&**p)),
        }
    }
}

impl std::error::Error for TaskError {}

impl From<TaskError> for std::io::Error {
    fn from(e: TaskError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}
