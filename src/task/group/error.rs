//! What a group reports: [`TaskGroupError`] (asyncio's `ExceptionGroup`
//! from a `TaskGroup`) and [`GroupClosed`] (asyncio's `RuntimeError` from
//! `create_task` on a group that no longer takes children).

use std::fmt;

use crate::task::failure::Failure;

/// Why a [`task_group`](super::task_group) failed: the body's error and
/// every child failure, like asyncio's `ExceptionGroup`, and which children
/// were cancelled.
pub struct TaskGroupError<E> {
    /// `Failure::Error`: the error the body returned; `Failure::Cancelled`:
    /// the owner's cancel request (then `owner_cancelled` holds it).
    pub(super) body: Option<Failure<E>>,
    /// Boxed: most groups never have one, and the error stays small.
    pub(super) owner_cancelled: Option<Box<crate::task::Cancelled>>,
    pub(super) failures: Vec<(usize, Failure<E>)>,
    pub(super) cancelled: Vec<usize>,
}

impl<E> TaskGroupError<E> {
    /// Each child failure with the failing child's spawn index, in the
    /// order they happened. Empty when only the body failed.
    pub fn failures(&self) -> &[(usize, Failure<E>)] {
        &self.failures
    }

    /// The child failures by value.
    pub fn into_failures(self) -> Vec<(usize, Failure<E>)> {
        self.failures
    }

    /// The error the body returned (`?` inside it), if that is what made
    /// the group cancel its children.
    pub fn body_error(&self) -> Option<&E> {
        self.body.as_ref().and_then(Failure::error)
    }

    /// The body's error by value.
    pub fn into_body_error(self) -> Option<E> {
        self.body.and_then(Failure::into_error)
    }

    /// The cancel request of the task awaiting the group, if that is what
    /// made it cancel its children (rule 9 of
    /// [`task_group`](super::task_group)): the group has waited for them,
    /// and the caller usually finishes cancelled too
    /// (`c.reraise().await`). Otherwise the error back.
    pub fn into_cancelled(self) -> Result<crate::task::Cancelled, TaskGroupError<E>> {
        match self.owner_cancelled {
            Some(c) => Ok(*c),
            None => Err(self),
        }
    }

    /// Whether the group stopped because the task awaiting it was asked
    /// to cancel (see [`into_cancelled`](Self::into_cancelled)).
    pub fn is_owner_cancelled(&self) -> bool {
        self.owner_cancelled.is_some()
    }

    /// The first failure: the one that made the group cancel the others
    /// (the body's error if it returned one).
    pub fn first(&self) -> &Failure<E> {
        match &self.body {
            Some(body) => body,
            None => &self.failures[0].1,
        }
    }

    /// Spawn indices of the children that were cancelled (ascending), by
    /// the group or through their handle; their futures have been dropped.
    pub fn cancelled(&self) -> &[usize] {
        &self.cancelled
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupError")
            .field("body", &self.body)
            .field("failures", &self.failures)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.failures.len() + usize::from(self.body.is_some());
        write!(
            f,
            "task group failed ({n} failure{}, {} cancelled):",
            if n == 1 { "" } else { "s" },
            self.cancelled.len()
        )?;
        if let Some(body) = &self.body {
            write!(f, " body {body};")?;
        }
        for (i, failure) in &self.failures {
            write!(f, " child {i} {failure};")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskGroupError<E> {}

/// Why a [`TaskGroup`](super::TaskGroup) started no child: asyncio's
/// `create_task` raises `RuntimeError` in the same two cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupClosed {
    /// A child failed, or the body returned an error or panicked: the group
    /// is cancelling its children and starts no new one.
    ShuttingDown,
    /// The group's `task_group(..)` has returned (or its future was
    /// dropped): a handle kept past it spawns nothing.
    Finished,
}

impl GroupClosed {
    /// What the caller of a panicking spawn can do instead.
    pub(super) fn advice(self) -> &'static str {
        match self {
            GroupClosed::ShuttingDown => {
                "a child failed and the group is cancelling the others, so it starts no new \
                 child; check `tg.is_shutting_down()` first, or spawn with \
                 `tg.builder().spawn(..)`, which returns this as an Err"
            }
            GroupClosed::Finished => {
                "its task_group(..) has already finished; spawn only while the group is \
                 being awaited (keep TaskGroup handles inside the body and its children)"
            }
        }
    }
}

impl fmt::Display for GroupClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupClosed::ShuttingDown => "TaskGroup is shutting down",
            GroupClosed::Finished => "TaskGroup is finished",
        })
    }
}

impl std::error::Error for GroupClosed {}
