//! The queue errors: asyncio's `QueueFull`, `QueueEmpty` and `QueueShutDown`.

use std::fmt;

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

impl<T> fmt::Debug for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueShutDown(..)")
    }
}

impl<T> fmt::Display for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue was shut down")
    }
}

impl<T> std::error::Error for QueueShutDown<T> {}

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

impl<T> fmt::Debug for PutNowaitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutNowaitError::Full(_) => f.write_str("Full(..)"),
            PutNowaitError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for PutNowaitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutNowaitError::Full(_) => f.write_str("the queue is full"),
            PutNowaitError::ShutDown(_) => f.write_str("the queue was shut down"),
        }
    }
}

impl<T> std::error::Error for PutNowaitError<T> {}

/// The error of `get_nowait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetNowaitError {
    /// No item is queued: `asyncio.QueueEmpty`.
    Empty,
    /// No item is queued and the queue was shut down: `asyncio.QueueShutDown`.
    ShutDown,
}

impl fmt::Display for GetNowaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetNowaitError::Empty => f.write_str("the queue is empty"),
            GetNowaitError::ShutDown => f.write_str("the queue is empty and was shut down"),
        }
    }
}

impl std::error::Error for GetNowaitError {}
