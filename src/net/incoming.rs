//! [`Incoming`]: a listener's connections as a [`Stream`].

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::stream::Stream;

type Accept<'a, S> = Pin<Box<dyn Future<Output = io::Result<S>> + 'a>>;

/// The connections of a listener, as a never-ending [`Stream`] of
/// `io::Result` items: from [`TcpListener::incoming`](super::TcpListener::incoming)
/// (`S` = [`TcpStream`](super::TcpStream)) or
/// [`UnixListener::incoming`](super::UnixListener::incoming)
/// (`S` = [`UnixStream`](super::UnixStream)).
///
/// Each item is one `accept`. **Errors are items, not the end**: after an
/// `Err` the next poll accepts again, so `EMFILE`/`ENFILE` (out of fds),
/// `ECONNABORTED` and the like never end the stream. The stream never yields
/// `None`. A loop that meets `EMFILE` should back off (sleep, or close
/// something) before the next item, or it will spin on the same error.
///
/// Dropping the stream (or the future of `next`) while an accept is in
/// flight loses no connection: it is kept for the listener's next accept
/// (see [`TcpListener::accept`](super::TcpListener::accept)).
pub struct Incoming<'a, S> {
    start: Box<dyn Fn() -> Accept<'a, S> + 'a>,
    pending: Option<Accept<'a, S>>,
}

impl<'a, S> Incoming<'a, S> {
    /// A stream whose items come from calling `start` and awaiting the future.
    pub(crate) fn new<F, Fut>(start: F) -> Incoming<'a, S>
    where
        F: Fn() -> Fut + 'a,
        Fut: Future<Output = io::Result<S>> + 'a,
    {
        Incoming {
            start: Box::new(move || Box::pin(start())),
            pending: None,
        }
    }
}

impl<S> Stream for Incoming<'_, S> {
    type Item = io::Result<S>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let fut = this.pending.get_or_insert_with(|| (this.start)());
        let res = std::task::ready!(fut.as_mut().poll(cx));
        this.pending = None;
        Poll::Ready(Some(res))
    }
}

impl<S> fmt::Debug for Incoming<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("accepting", &self.pending.is_some())
            .finish()
    }
}
