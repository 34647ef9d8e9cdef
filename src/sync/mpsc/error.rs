//! The errors of sending and receiving.

/// The receiver is gone: the value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

crate::macros::error_impls!(<T> SendError(..) => "the channel's receiver is closed");

/// The error of [`Sender::try_send`](super::Sender::try_send); the value comes back in either case.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full (or other senders are waiting for room).
    Full(T),
    /// The receiver is closed or dropped.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

crate::macros::error_impls!(<T> TrySendError {
    Full(..) => "the channel is full",
    Closed(..) => "the channel's receiver is closed",
});

/// The error of [`Receiver::try_recv`](super::Receiver::try_recv).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing buffered; senders remain.
    Empty,
    /// Nothing buffered, and no value can come any more.
    Disconnected,
}

crate::macros::error_impls!(TryRecvError {
    Empty => "the channel is empty",
    Disconnected => "the channel is empty and closed",
});
