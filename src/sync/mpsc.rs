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
//!
//! This file holds the channel core every handle shares; the handles live in
//! `sender.rs` and `receiver.rs`, the errors in `error.rs`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use super::waiters::{WaitList, wake};

mod error;
mod receiver;
mod sender;

pub use error::{SendError, TryRecvError, TrySendError};
pub use receiver::{Receiver, Recv};
pub use sender::{SendFuture, Sender, UnboundedSender};

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

    /// Buffers `value`; returns the receiver's waker, to wake after the lock.
    #[inline]
    fn push(&mut self, value: T) -> Option<Waker> {
        self.buf.push_back(value);
        self.rx_waker.take()
    }

    /// Takes the oldest value and reserves the room it frees for the first
    /// waiting sender; returns that sender's waker with the value.
    #[inline]
    fn pop(&mut self, cap: usize) -> Option<(T, Option<Waker>)> {
        let v = self.buf.pop_front()?;
        Some((v, self.grant(cap)))
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
        let w = st.push(value);
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
