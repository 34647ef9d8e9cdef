//! The queue errors: asyncio's `QueueFull`, `QueueEmpty` and `QueueShutDown`.

/// The queue was shut down: `asyncio.QueueShutDown`.
///
/// `put(item).await` hands the item back in it (`QueueShutDown<T>`);
/// `get().await` returns `QueueShutDown<()>` once the queue is shut down
/// and empty.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueShutDown<T = ()>(pub T);

impl<T> QueueShutDown<T> {
    /// The item a `put` could not deliver.
    pub fn into_inner(self) -> T {
        self.0
    }
}

crate::macros::error_impls!(<T> QueueShutDown(..) => "the queue was shut down");

/// The error of `put_nowait`; the item comes back in either variant.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutNowaitError<T> {
    /// The queue holds `maxsize` items: `asyncio.QueueFull`.
    Full(T),
    /// The queue was shut down: `asyncio.QueueShutDown`.
    ShutDown(T),
}

impl<T> PutNowaitError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutNowaitError::Full(t) | PutNowaitError::ShutDown(t) => t,
        }
    }

    /// Whether the queue was full (not shut down).
    pub fn is_full(&self) -> bool {
        matches!(self, PutNowaitError::Full(_))
    }
}

crate::macros::error_impls!(<T> PutNowaitError {
    Full(..) => "the queue is full",
    ShutDown(..) => "the queue was shut down",
});

/// `task_done` was called more times than items were put in the queue:
/// asyncio's `ValueError('task_done() called too many times')`. Nothing
/// changed: the count of unfinished items stays at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

crate::macros::error_impls!(TaskDoneError => "task_done() called more times than items were put in the queue; call it once per item taken with get");

/// The error of `get_nowait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetNowaitError {
    /// No item is queued: `asyncio.QueueEmpty`.
    Empty,
    /// No item is queued and the queue was shut down: `asyncio.QueueShutDown`.
    ShutDown,
}

crate::macros::error_impls!(GetNowaitError {
    Empty => "the queue is empty",
    ShutDown => "the queue is empty and was shut down",
});
