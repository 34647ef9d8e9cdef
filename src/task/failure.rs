//! [`Failure`]: why a child of a group (or a fail-fast gather) did not
//! produce a value.

use std::fmt;

use super::{PanicPayload, TaskError};

/// How a task failed: it returned an error, panicked, or was cancelled.
///
/// The element type of [`TaskGroupError`](crate::TaskGroupError) and the
/// error of [`try_gather_tasks`](crate::try_gather_tasks). asyncio has one
/// exception hierarchy for all three; Rust keeps a returned `Err` apart from
/// a panic.
pub enum Failure<E> {
    /// The task returned `Err(e)`.
    Error(E),
    /// The task panicked; this is the payload (re-raise it with
    /// [`PanicPayload::resume`]).
    Panicked(PanicPayload),
    /// The task was cancelled by someone else (a [`TaskGroup`](crate::TaskGroup)
    /// never reports the cancellations it made itself).
    Cancelled,
}

impl<E> Failure<E> {
    /// The error, if the task returned one.
    pub fn error(&self) -> Option<&E> {
        match self {
            Failure::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The error by value, if the task returned one.
    pub fn into_error(self) -> Option<E> {
        match self {
            Failure::Error(e) => Some(e),
            _ => None,
        }
    }

    /// True for [`Failure::Panicked`].
    pub fn is_panic(&self) -> bool {
        matches!(self, Failure::Panicked(_))
    }

    /// True for [`Failure::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Failure::Cancelled)
    }
}

impl<E> From<TaskError> for Failure<E> {
    fn from(e: TaskError) -> Failure<E> {
        match e {
            TaskError::Cancelled(_) => Failure::Cancelled,
            TaskError::Panicked(p) => Failure::Panicked(p),
            // (TaskError is non_exhaustive for users; this crate sees every variant.)
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => f.debug_tuple("Error").field(e).finish(),
            Failure::Panicked(p) => f.debug_tuple("Panicked").field(p).finish(),
            Failure::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => write!(f, "returned an error: {e}"),
            Failure::Panicked(p) => write!(f, "panicked: {p}"),
            Failure::Cancelled => f.write_str("was cancelled"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Failure<E> {}
