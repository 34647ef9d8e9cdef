//! The receiving half, [`Receiver`], and the future of [`Receiver::recv`].

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use super::{Chan, ONE, TryRecvError};
use crate::loom::Ordering;
use crate::rt::budget::poll_proceed;
use crate::sync::waiters::{Wakers, register};

/// The receiving half of either kind of channel.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// The batch: values taken out of the shared buffer and not yet returned
    /// (the design in `mpsc.rs`; its length is `n` of `Chan::taken`).
    local: Batch<T>,
}

/// The receiver's batch. Only `&mut Receiver` reaches its values; through
/// `&Receiver` only its length is read.
struct Batch<T>(VecDeque<T>);

// SAFETY: a `&Batch<T>` only gives its length (no `&T` is reachable through
// a shared `Receiver`: every method that touches a value takes `&mut self`),
// so sharing it between threads shares no `T`; moving the values to another
// thread is what `T: Send` allows. This keeps `Receiver<T>: Sync` for
// `T: Send`, as before the batch existed.
unsafe impl<T: Send> Sync for Batch<T> {}

impl<T> Receiver<T> {
    pub(super) fn new(chan: Arc<Chan<T>>) -> Receiver<T> {
        Receiver {
            chan,
            local: Batch(VecDeque::new()),
        }
    }

    /// Receives the next value, waiting for one; `None` once the channel is
    /// closed (every sender dropped, or [`close`](Receiver::close)d) and
    /// drained. Cancel safe: a dropped `recv` took nothing.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { rx: self }
    }

    /// Receives a value if one is buffered.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        match self.local.0.pop_front() {
            Some(v) => {
                self.chan.returned_one();
                Ok(v)
            }
            None => self.refill(None),
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
        self.local.0.len() + self.chan.lock().buffered()
    }

    /// Whether no value is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch is empty: under the lock, returns the oldest buffered value
    /// (`head`) and takes the others into the batch (granting the returned
    /// value's slot to a waiting sender), or reports the channel empty
    /// (registering `waker`, if given) or closed.
    #[inline(never)]
    fn refill(&mut self, waker: Option<&Waker>) -> Result<T, TryRecvError> {
        debug_assert!(self.local.0.is_empty());
        let chan = &*self.chan;
        let mut st = chan.lock();
        // `head` is `None` only when `buf` is empty too (design rule 5).
        let Some(v) = st.head.take() else {
            debug_assert!(st.buf.is_empty());
            if st.tx_count == 0 || st.rx_closed {
                return Err(TryRecvError::Disconnected);
            }
            if let Some(waker) = waker {
                register(&mut st.rx_waker, waker);
            }
            return Err(TryRecvError::Empty);
        };
        // The batch was empty, so `n` is 0 (design rule 1); the shared buffer
        // gets the batch's spare capacity back. Only a backlog touches the
        // `VecDeque`s (the layout in `mpsc.rs`).
        if !st.buf.is_empty() {
            std::mem::swap(&mut st.buf, &mut self.local.0);
        }
        let mut wakers = Wakers::default();
        if chan.bounded() {
            if !self.local.0.is_empty() {
                chan.taken
                    .fetch_add(self.local.0.len() * ONE, Ordering::AcqRel);
            }
            // `v` leaves now: its slot goes to the first waiting sender.
            chan.grant(&mut st, &mut wakers);
        }
        drop(st);
        wakers.wake();
        Ok(v)
    }

    /// Inlined into the caller's poll: the batch path is a few instructions,
    /// less than a call's prologue and epilogue (W3's profile).
    #[inline(always)]
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let coop = ready!(poll_proceed(cx));
        let v = match self.local.0.pop_front() {
            Some(v) => {
                self.chan.returned_one();
                v
            }
            None => match self.refill(Some(cx.waker())) {
                Ok(v) => v,
                Err(TryRecvError::Disconnected) => {
                    coop.made_progress();
                    return Poll::Ready(None);
                }
                Err(TryRecvError::Empty) => return Poll::Pending,
            },
        };
        coop.made_progress();
        Poll::Ready(Some(v))
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (buf, wakers) = {
            let mut st = self.chan.lock();
            st.rx_closed = true;
            st.rx_waker = None;
            let head = st.head.take();
            ((head, std::mem::take(&mut st.buf)), st.senders.notify_all())
        };
        // Outside the lock: destructors may use the channel. The waiting
        // senders are woken first: a value's destructor may panic, and they
        // must not stay asleep then. Then the values, oldest first: the
        // batch, `head`, the buffer behind it (dropped during the unwind
        // if one before them panics).
        wakers.into_iter().for_each(Waker::wake);
        drop(std::mem::take(&mut self.local.0));
        drop(buf);
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

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}
