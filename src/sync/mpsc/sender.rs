//! The sending halves, [`Sender`] and [`UnboundedSender`], and the future of
//! [`Sender::send`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::{Chan, SendError, State, TrySendError};
use crate::loom::MutexGuard;
use crate::rt::budget::Coop;
use crate::rt::budget::poll_proceed;
use crate::sync::waiters::{Key, Removed, Wakers, wake};

/// The sending half of a bounded channel. Clone it for more producers.
pub struct Sender<T> {
    pub(super) chan: Arc<Chan<T>>,
}

/// The sending half of an unbounded channel. Clone it for more producers.
pub struct UnboundedSender<T> {
    pub(super) chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full.
    ///
    /// Fails, giving the value back, if the receiver is closed or dropped.
    /// Cancel safe: a dropped `send` sent nothing (its value is dropped with
    /// it) and passes a reserved slot on to the next waiting sender.
    pub fn send(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            chan: &self.chan,
            value: Some(value),
            key: None,
        }
    }

    /// Sends `value` if there is room right now.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Sends from a plain thread, blocking it while the channel is full.
    ///
    /// # Panics
    ///
    /// If called inside a running coil loop (it would block the loop).
    #[track_caller]
    pub fn blocking_send(&self, value: T) -> Result<(), SendError<T>> {
        crate::sync::block::block_on("mpsc::Sender::blocking_send", self.send(value))
    }

    /// Whether the receiver was closed or dropped.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// The channel's capacity.
    pub fn max_capacity(&self) -> usize {
        self.chan.cap
    }

    /// Whether both senders feed the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> UnboundedSender<T> {
    /// Sends `value`; fails, giving it back, if the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan
            .try_send(value)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Whether the receiver was closed or dropped.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Whether both senders feed the same channel.
    pub fn same_channel(&self, other: &UnboundedSender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

macro_rules! sender_common {
    ($name:ident) => {
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                self.chan.add_sender();
                $name {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for $name<T> {
            fn drop(&mut self) {
                self.chan.drop_sender();
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(concat!("mpsc::", stringify!($name)))
                    .finish_non_exhaustive()
            }
        }
    };
}

sender_common!(Sender);
sender_common!(UnboundedSender);

/// The future of [`Sender::send`].
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    key: Option<Key>,
}

impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    /// The common case, a first poll that finds room, is inlined into the
    /// caller's poll; the rest is `SendFuture::poll_locked`.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let chan = this.chan;
        let mut st = chan.lock();
        if this.key.is_none() && !st.rx_closed && chan.may_send(&st) {
            let value = this
                .value
                .take()
                .expect("SendFuture polled after completion");
            let w = st.push(value);
            drop(st);
            wake(w);
            coop.made_progress();
            return Poll::Ready(Ok(()));
        }
        this.poll_locked(st, coop, cx)
    }
}

impl<T> SendFuture<'_, T> {
    /// `poll` past the common case, under the lock `st`: a queued sender, a
    /// closed channel, or no room (`may_send` may have set `WAITING`, which
    /// this sets again before queueing: design rule 3 in `mpsc.rs`).
    #[inline(never)]
    fn poll_locked(
        &mut self,
        mut st: MutexGuard<'_, State<T>>,
        coop: Coop,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let chan = self.chan;
        let notified = ready!(st.senders.poll_key(&mut self.key, cx.waker())).is_some();
        let value = self
            .value
            .take()
            .expect("SendFuture polled after completion");
        if st.rx_closed {
            coop.made_progress();
            return Poll::Ready(Err(SendError(value)));
        }
        if notified {
            // A slot was reserved for us.
            st.reserved -= 1;
        } else if !chan.may_send(&st) {
            // `may_send` set `WAITING` (design rule 3): queue.
            self.value = Some(value);
            self.key = Some(st.senders.push_back((), cx.waker().clone()));
            return Poll::Pending;
        }
        let w = st.push(value);
        drop(st);
        wake(w);
        coop.made_progress();
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for SendFuture<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.leave(key);
        }
    }
}

impl<T> SendFuture<'_, T> {
    /// A sender dropped while queued leaves the list (out of line: the
    /// common drop, after a completed send, only checks the key).
    #[inline(never)]
    fn leave(&mut self, key: Key) {
        let mut st = self.chan.lock();
        if let Removed::Notified(()) = st.senders.remove(key)
            && !st.rx_closed
        {
            // waiters.rs rule 3: give the reserved slot to the next sender.
            st.reserved -= 1;
            let mut wakers = Wakers::default();
            self.chan.grant(&mut st, &mut wakers);
            drop(st);
            wakers.wake();
        }
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("queued", &self.key.is_some())
            .finish_non_exhaustive()
    }
}
