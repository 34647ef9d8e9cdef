//! The receiving half, [`Receiver`], and the future of [`Receiver::recv`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use super::{Chan, TryRecvError};
use crate::rt::budget::poll_proceed;
use crate::sync::waiters::{register, wake};

/// The receiving half of either kind of channel.
pub struct Receiver<T> {
    pub(super) chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next value, waiting for one; `None` once the channel is
    /// closed (every sender dropped, or [`close`](Receiver::close)d) and
    /// drained. Cancel safe: a dropped `recv` took nothing.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { rx: self }
    }

    /// Receives a value if one is buffered.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.chan.lock();
        match st.pop(self.chan.cap) {
            Some((v, w)) => {
                drop(st);
                wake(w);
                Ok(v)
            }
            None if st.tx_count == 0 || st.rx_closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Receives on a plain thread, blocking it until a value arrives.
    ///
    /// # Panics
    ///
    /// If called inside a running coil loop (it would block the loop).
    #[track_caller]
    pub fn blocking_recv(&mut self) -> Option<T> {
        crate::sync::block::block_on("mpsc::Receiver::blocking_recv", self.recv())
    }

    /// Closes the channel for senders: further sends fail, waiting senders
    /// wake with the error. Values already buffered can still be received.
    pub fn close(&mut self) {
        let wakers = {
            let mut st = self.chan.lock();
            st.rx_closed = true;
            st.senders.notify_all()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Whether the channel is closed: the receiver called
    /// [`close`](Receiver::close), or every sender is gone.
    pub fn is_closed(&self) -> bool {
        let st = self.chan.lock();
        st.rx_closed || st.tx_count == 0
    }

    /// Values buffered right now.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let coop = ready!(poll_proceed(cx));
        let mut st = self.chan.lock();
        if let Some((v, w)) = st.pop(self.chan.cap) {
            drop(st);
            wake(w);
            coop.made_progress();
            return Poll::Ready(Some(v));
        }
        if st.tx_count == 0 || st.rx_closed {
            coop.made_progress();
            return Poll::Ready(None);
        }
        register(&mut st.rx_waker, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (buf, wakers) = {
            let mut st = self.chan.lock();
            st.rx_closed = true;
            st.rx_waker = None;
            (std::mem::take(&mut st.buf), st.senders.notify_all())
        };
        drop(buf); // outside the lock: destructors may use the channel
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Receiver")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}
