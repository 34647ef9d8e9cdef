//! Multi-producer, single-consumer channels between tasks, loops and threads.
//!
//! [`channel(cap)`](channel) is bounded: [`Sender::send`] waits while `cap`
//! values are buffered, which pushes back on fast producers.
//! [`unbounded_channel`] never waits: [`UnboundedSender::send`] is a plain
//! call. Senders are `Clone + Send + Sync`, so producers may run on any
//! thread (plain threads use [`Sender::blocking_send`]); the [`Receiver`] is
//! `Send` and is awaited on one loop. A wake from another thread reaches the
//! receiver's loop through its remote queue.
//!
//! * `recv()` returns `None` once every sender is gone and the buffer is
//!   drained, or after [`Receiver::close`] once the buffer is drained.
//! * Dropping the receiver closes the channel: sends fail and give the value
//!   back, buffered values are dropped.
//! * Senders blocked on a full channel are served in FIFO order: a freed
//!   slot is reserved for the first of them, and if that sender's future is
//!   dropped the slot passes to the next one.
//!
//! ```
//! use coil::sync::mpsc;
//!
//! let sum = coil::run(async {
//!     let (tx, mut rx) = mpsc::channel(16);
//!     for t in 0..2u64 {
//!         let tx = tx.clone();
//!         std::thread::spawn(move || {
//!             for i in 0..100 {
//!                 tx.blocking_send(t * 1000 + i).unwrap();
//!             }
//!         });
//!     }
//!     drop(tx); // recv returns None once both threads are done
//!     let mut sum = 0;
//!     while let Some(v) = rx.recv().await {
//!         sum += v;
//!     }
//!     sum
//! });
//! assert_eq!(sum, 2 * 4950 + 100_000);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use super::waiters::{Key, Polled, Removed, WaitList};
use crate::rt::budget::poll_proceed;

/// The channel shared by every handle.
struct Chan<T> {
    state: Mutex<State<T>>,
    /// `usize::MAX` for unbounded channels.
    cap: usize,
}

struct State<T> {
    buf: VecDeque<T>,
    /// Slots promised to notified senders that have not used them yet.
    reserved: usize,
    rx_waker: Option<Waker>,
    /// Senders waiting for a slot; notified = a slot is reserved for them
    /// (or the channel closed: they check `rx_closed`).
    senders: WaitList<()>,
    tx_count: usize,
    rx_closed: bool,
}

impl<T> State<T> {
    fn has_room(&self, cap: usize) -> bool {
        self.buf.len() + self.reserved < cap
    }

    /// Reserves freed room for the first waiting sender (FIFO hand-off).
    fn grant(&mut self, cap: usize) -> Option<Waker> {
        if !self.senders.is_empty() && self.has_room(cap) && !self.rx_closed {
            self.reserved += 1;
            self.senders.notify_front()
        } else {
            None
        }
    }
}

fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<T> Chan<T> {
    fn new(cap: usize) -> Arc<Chan<T>> {
        Arc::new(Chan {
            state: Mutex::new(State {
                buf: VecDeque::new(),
                reserved: 0,
                rx_waker: None,
                senders: WaitList::new(),
                tx_count: 1,
                rx_closed: false,
            }),
            cap,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing that can panic runs under the lock; recover anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = self.lock();
        if st.rx_closed {
            return Err(TrySendError::Closed(value));
        }
        if !st.senders.is_empty() || !st.has_room(self.cap) {
            return Err(TrySendError::Full(value));
        }
        st.buf.push_back(value);
        let w = st.rx_waker.take();
        drop(st);
        wake(w);
        Ok(())
    }

    fn add_sender(&self) {
        self.lock().tx_count += 1;
    }

    fn drop_sender(&self) {
        let mut st = self.lock();
        st.tx_count -= 1;
        let w = if st.tx_count == 0 {
            st.rx_waker.take()
        } else {
            None
        };
        drop(st);
        wake(w);
    }

    fn is_closed(&self) -> bool {
        self.lock().rx_closed
    }

    fn len(&self) -> usize {
        self.lock().buf.len()
    }
}

/// Creates a bounded channel holding at most `cap` values.
///
/// # Panics
///
/// If `cap` is 0 (a rendezvous channel is not supported).
#[track_caller]
pub fn channel<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    assert!(cap > 0, "mpsc::channel needs a capacity of at least 1");
    let chan = Chan::new(cap);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Creates a channel without a bound: sending never waits.
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, Receiver<T>) {
    let chan = Chan::new(usize::MAX);
    (UnboundedSender { chan: chan.clone() }, Receiver { chan })
}

/// The sending half of a bounded channel. Clone it for more producers.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The sending half of an unbounded channel. Clone it for more producers.
pub struct UnboundedSender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half of either kind of channel.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
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
        super::block::block_on("mpsc::Sender::blocking_send", self.send(value))
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
        match st.buf.pop_front() {
            Some(v) => {
                let w = st.grant(self.chan.cap);
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
        super::block::block_on("mpsc::Receiver::blocking_recv", self.recv())
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

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let coop = ready!(poll_proceed(cx));
        let mut st = self.chan.lock();
        if let Some(v) = st.buf.pop_front() {
            let w = st.grant(self.chan.cap);
            drop(st);
            wake(w);
            coop.made_progress();
            return Poll::Ready(Some(v));
        }
        if st.tx_count == 0 || st.rx_closed {
            coop.made_progress();
            return Poll::Ready(None);
        }
        match &st.rx_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.rx_waker = Some(cx.waker().clone()),
        }
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

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}

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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let chan = this.chan;
        let mut st = chan.lock();
        let value = match this.key {
            Some(key) => match st.senders.poll(key, cx.waker()) {
                Polled::Pending => return Poll::Pending,
                Polled::Notified(()) => {
                    this.key = None;
                    let v = this
                        .value
                        .take()
                        .expect("SendFuture polled after completion");
                    if st.rx_closed {
                        coop.made_progress();
                        return Poll::Ready(Err(SendError(v)));
                    }
                    // A slot was reserved for us.
                    st.reserved -= 1;
                    v
                }
            },
            None => {
                let v = this
                    .value
                    .take()
                    .expect("SendFuture polled after completion");
                if st.rx_closed {
                    coop.made_progress();
                    return Poll::Ready(Err(SendError(v)));
                }
                if !st.senders.is_empty() || !st.has_room(chan.cap) {
                    this.value = Some(v);
                    this.key = Some(st.senders.push_back((), cx.waker().clone()));
                    return Poll::Pending;
                }
                v
            }
        };
        st.buf.push_back(value);
        let w = st.rx_waker.take();
        drop(st);
        wake(w);
        coop.made_progress();
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut st = self.chan.lock();
        if let Removed::Notified(()) = st.senders.remove(key)
            && !st.rx_closed
        {
            // waiters.rs rule 3: give the reserved slot to the next sender.
            st.reserved -= 1;
            let w = st.grant(self.chan.cap);
            drop(st);
            wake(w);
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

/// The receiver is gone: the value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the channel's receiver is closed")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// The error of [`Sender::try_send`]; the value comes back in either case.
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

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the channel is full"),
            TrySendError::Closed(_) => f.write_str("the channel's receiver is closed"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing buffered; senders remain.
    Empty,
    /// Nothing buffered, and no value can come any more.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("the channel is empty"),
            TryRecvError::Disconnected => f.write_str("the channel is empty and closed"),
        }
    }
}

impl std::error::Error for TryRecvError {}
