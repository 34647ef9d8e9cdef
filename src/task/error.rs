//! [`TaskError`]: why a task produced no value.

use std::any::Any;
use std::fmt;

use super::PanicPayload;

/// Why awaiting a [`Task`](super::Task) gave no value.
///
/// asyncio raises `CancelledError` or re-raises the task's exception; coil
/// returns this error instead. A panic's payload is kept so that it can be
/// inspected or re-raised ([`PanicPayload::resume`]).
///
/// `Send + Sync` (it can cross threads and sit in `Box<dyn Error + Send +
/// Sync>`, `anyhow::Error` and the like) and `#[non_exhaustive]`: match it
/// with a `_` arm, or use [`is_cancelled`](TaskError::is_cancelled) and
/// [`is_panic`](TaskError::is_panic).
#[non_exhaustive]
pub enum TaskError {
    /// The task was cancelled with [`Task::cancel`](super::Task::cancel), or
    /// its runtime shut down before it finished.
    Cancelled,
    /// The task's future panicked; this is the payload.
    Panicked(PanicPayload),
}

static_assertions::assert_impl_all!(TaskError: Send, Sync, std::error::Error);

impl TaskError {
    /// True for [`TaskError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }

    /// True for [`TaskError::Panicked`].
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }

    /// The panic's payload, if the task panicked.
    pub fn panic(&self) -> Option<&PanicPayload> {
        match self {
            TaskError::Panicked(p) => Some(p),
            _ => None,
        }
    }

    /// The panic payload, if the task panicked; otherwise the error back.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, TaskError> {
        match self {
            TaskError::Panicked(p) => Ok(p.into_inner()),
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

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("Cancelled"),
            TaskError::Panicked(p) => f.debug_tuple("Panicked").field(p).finish(),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("task was cancelled"),
            TaskError::Panicked(p) => write!(f, "task panicked: {p}"),
        }
    }
}

impl std::error::Error for TaskError {}

impl From<TaskError> for std::io::Error {
    fn from(e: TaskError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}
