//! [`TaskError`]: why a task produced no value, and [`Cancelled`], the
//! cancellation it carries (with the message of [`Task::cancel_with`]).
//!
//! [`Task::cancel_with`]: super::Task::cancel_with

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{PanicPayload, TaskId};

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
    /// The task was cancelled with [`Task::cancel`](super::TaskHandle::cancel) or
    /// [`cancel_with`](super::TaskHandle::cancel_with), or its runtime shut down
    /// before it finished. asyncio's `CancelledError`: the message, if any,
    /// is [`Cancelled::message`].
    Cancelled(Cancelled),
    /// The task's future panicked; this is the payload.
    Panicked(PanicPayload),
}

static_assertions::assert_impl_all!(TaskError: Send, Sync, std::error::Error);

impl TaskError {
    /// True for [`TaskError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled(_))
    }

    /// The cancellation, if the task was cancelled: its message and task.
    pub fn cancelled(&self) -> Option<&Cancelled> {
        match self {
            TaskError::Cancelled(c) => Some(c),
            _ => None,
        }
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
            TaskError::Cancelled(c) => f.debug_tuple("Cancelled").field(c).finish(),
            TaskError::Panicked(p) => f.debug_tuple("Panicked").field(p).finish(),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled(c) => fmt::Display::fmt(c, f),
            TaskError::Panicked(p) => {
                write!(f, "{} panicked: {p}", Subject(p.task.as_ref()))
            }
        }
    }
}

impl std::error::Error for TaskError {}

impl From<TaskError> for std::io::Error {
    fn from(e: TaskError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

/// Which task an error is about: its id and, if it was given one, its name.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TaskLabel {
    pub(crate) id: TaskId,
    pub(crate) name: Option<Arc<str>>,
}

impl fmt::Debug for TaskLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{} {n:?}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// The subject of an error sentence: `task` or `task "name"` (the id is
/// left out so that messages stay the same from run to run).
struct Subject<'a>(Option<&'a TaskLabel>);

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.and_then(|l| l.name.as_deref()) {
            Some(n) => write!(f, "task {n:?}"),
            None => f.write_str("task"),
        }
    }
}

/// A cancellation: asyncio's `CancelledError`, with its message.
///
/// Carried by [`TaskError::Cancelled`] when a task ended cancelled. The
/// message is the one given to [`Task::cancel_with`](super::TaskHandle::cancel_with)
/// (none for [`Task::cancel`](super::TaskHandle::cancel) or a runtime shutdown), and
/// `Display` shows it with the task's name:
///
/// ```
/// coil::run(async {
///     let t = coil::task::Builder::new()
///         .name("worker")
///         .spawn(std::future::pending::<()>());
///     t.cancel_with("shutting down");
///     let err = t.await.unwrap_err();
///     assert_eq!(err.cancelled().and_then(|c| c.message()), Some("shutting down"));
///     assert_eq!(err.to_string(), r#"task "worker" was cancelled: shutting down"#);
/// });
/// ```
#[derive(Clone, Default)]
pub struct Cancelled {
    pub(crate) task: Option<TaskLabel>,
    pub(crate) message: Option<Arc<str>>,
}

impl Cancelled {
    /// The message given to [`Task::cancel_with`](super::TaskHandle::cancel_with), if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The id of the cancelled task, when the error comes from one.
    pub fn task_id(&self) -> Option<TaskId> {
        self.task.as_ref().map(|l| l.id)
    }

    /// The name of the cancelled task, if it was given one at spawn.
    pub fn task_name(&self) -> Option<&str> {
        self.task.as_ref().and_then(|l| l.name.as_deref())
    }
}

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled")
            .field("task", &self.task)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} was cancelled", Subject(self.task.as_ref()))?;
        match &self.message {
            Some(m) => write!(f, ": {m}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Cancelled {}
