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
//!
//! # Design: the receiver drains in batches
//!
//! Senders push under the channel's mutex. The receiver does not lock per
//! value: when its own batch (`Receiver::local`) is empty it takes the lock
//! once and swaps the whole shared buffer into the batch, then hands the
//! batch's values out without the lock. A freed slot must still be seen by
//! the senders at once (a `send` waits only while `cap` values are buffered)
//! and still go to the first blocked sender, so the batch's length is
//! published in one atomic word, `Chan::taken`, that the senders read under
//! the lock. The protocol (checked by the loom model `sync::mpsc_loom`):
//!
//! 1. *The word.* `taken = n * ONE | WAITING`: `n` is the number of values in
//!    the receiver's batch (taken out of `buf`, not yet returned by `recv`),
//!    `WAITING` says that senders may be queued. Only the receiver changes
//!    `n`: it adds the batch's size under the lock when it refills (the batch
//!    was empty, so `n` was 0), and subtracts one with an RMW outside the
//!    lock each time it returns a value. `WAITING` is set and cleared only
//!    under the lock.
//! 2. *Room.* Under the lock, a slot is free when
//!    `buf.len() + n + reserved < cap`. A sender's plain load of `n` may be
//!    stale, but only too high (the receiver only lowers it outside the
//!    lock), so a stale load can only make a sender think it must wait.
//! 3. *No lost slot.* A sender that finds no room sets `WAITING` with an RMW
//!    and re-checks the room with the `n` that RMW returned, still under the
//!    lock, before it queues. The receiver's decrement is an RMW on the same
//!    word, so one of the two comes first: either the sender's RMW sees the
//!    freed slot (and it sends), or the receiver's decrement returns
//!    `WAITING` and the receiver takes the lock, which it gets only after the
//!    sender has queued, and grants the freed room (FIFO, `State::grant`).
//! 4. *`WAITING` covers the queue.* While a sender is queued `WAITING` is
//!    set; the receiver clears it (under the lock) when a grant leaves the
//!    queue empty. A stale `WAITING` costs the receiver one lock, nothing
//!    more.
//!
//! Unbounded channels never wait, so their receiver does not keep `n`.
//!
//! # Layout: one line for a value in flight
//!
//! The common cross-loop case (W8b: a value at a time, the receiver parked
//! on another loop) moves the channel between two cores at each hand-off.
//! Everything such a hand-off writes sits on one cache line: `Chan` is
//! aligned to 64 bytes (so the `Arc`'s counts are not on it), the mutex's
//! word comes first (`std`'s `Mutex<T>` keeps its data last), and `State` is
//! `repr(C)` with the fields a hand-off writes first: the receiver's waker
//! and `head`, the oldest buffered value, held inline. The rest (the
//! `VecDeque` header and its heap buffer, the senders' queue, the counts) is
//! only read on that path, so both cores keep a shared copy of it.
//!
//! 5. *The head.* `head` is the oldest value not yet in the receiver's
//!    batch; `buf` holds the ones after it. So `head` is `None` only when
//!    `buf` is empty: a push fills `head` first, a refill takes `head` and
//!    the whole of `buf` together. A value buffered counts once for the
//!    room whether it is in `head` or in `buf`.
//!
//! Before, each value went through the `VecDeque`'s heap buffer (one more
//! line to each side) and the state spanned the `Arc`'s line and the next.

use std::collections::VecDeque;
use std::task::Waker;

use super::waiters::{WaitList, Wakers, wake};
use crate::loom::{AtomicUsize, Mutex, MutexGuard, Ordering};
use std::sync::Arc;

mod error;
mod receiver;
mod sender;

pub use error::{SendError, TryRecvError, TrySendError};
pub use receiver::{Receiver, Recv};
pub use sender::{SendFuture, Sender, UnboundedSender};

#[cfg(all(test, loom))]
mod mpsc_loom;

/// `Chan::taken`: senders may be queued (design rule 4).
const WAITING: usize = 1;
/// `Chan::taken`: one value in the receiver's batch (design rule 1).
const ONE: usize = 2;

/// The channel shared by every handle; `repr(C)` and aligned so that the
/// mutex's word and `State`'s first fields share one line (the layout above).
#[repr(C, align(64))]
struct Chan<T> {
    state: Mutex<State<T>>,
    /// The receiver's batch size and the `WAITING` flag (design rule 1).
    taken: AtomicUsize,
    /// `usize::MAX` for unbounded channels.
    cap: usize,
}

/// `repr(C)`: what a hand-off writes first (the layout above).
#[repr(C)]
struct State<T> {
    rx_waker: Option<Waker>,
    /// The oldest value sent and not yet taken into the receiver's batch
    /// (design rule 5).
    head: Option<T>,
    /// Values sent after `head` and not yet taken into the receiver's batch.
    buf: VecDeque<T>,
    /// Slots promised to notified senders that have not used them yet.
    reserved: usize,
    /// Senders waiting for a slot; notified = a slot is reserved for them
    /// (or the channel closed: they check `rx_closed`).
    senders: WaitList<()>,
    tx_count: usize,
    rx_closed: bool,
}

impl<T> State<T> {
    /// Whether a slot is free (design rule 2); `taken` is a value of
    /// `Chan::taken`.
    #[inline]
    fn has_room(&self, cap: usize, taken: usize) -> bool {
        self.buffered() + taken / ONE + self.reserved < cap
    }

    /// Values buffered: `head` and `buf` (design rule 5).
    #[inline]
    fn buffered(&self) -> usize {
        // `buf` is empty when `head` is: no branch needed.
        usize::from(self.head.is_some()) + self.buf.len()
    }

    /// Buffers `value` (in `head` if it is free: rule 5); returns the
    /// receiver's waker, to wake after the lock.
    #[inline]
    fn push(&mut self, value: T) -> Option<Waker> {
        if self.head.is_none() {
            debug_assert!(self.buf.is_empty());
            self.head = Some(value);
        } else {
            self.push_back(value);
        }
        self.rx_waker.take()
    }

    /// A value behind `head`.
    #[inline(always)]
    fn push_back(&mut self, value: T) {
        self.buf.push_back(value);
    }
}

impl<T> Chan<T> {
    fn new(cap: usize) -> Arc<Chan<T>> {
        Arc::new(Chan {
            state: Mutex::new(State {
                rx_waker: None,
                head: None,
                buf: VecDeque::new(),
                reserved: 0,
                senders: WaitList::new(),
                tx_count: 1,
                rx_closed: false,
            }),
            taken: AtomicUsize::new(0),
            cap,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing that can panic runs under the lock; recover anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bounded(&self) -> bool {
        self.cap != usize::MAX
    }

    /// Whether a sender that is not queued may buffer a value now: nobody
    /// queued before it and a slot is free. Called under the lock; sets
    /// `WAITING` before it answers `false` (design rule 3), so the caller
    /// must then queue or undo it with [`Chan::grant`].
    fn may_send(&self, st: &State<T>) -> bool {
        if !st.senders.is_empty() {
            return false;
        }
        if st.has_room(self.cap, self.taken.load(Ordering::Acquire)) {
            return true;
        }
        let t = self.taken.fetch_or(WAITING, Ordering::AcqRel);
        if st.has_room(self.cap, t) {
            // The receiver freed a slot meanwhile: nobody queued, so the
            // flag goes again (rule 4).
            self.taken.fetch_and(!WAITING, Ordering::AcqRel);
            return true;
        }
        false
    }

    /// Reserves free room for the waiting senders, first come first served
    /// (FIFO hand-off), and clears `WAITING` once none is queued (rule 4).
    /// Called under the lock; the wakers go to `out`.
    fn grant(&self, st: &mut State<T>, out: &mut Wakers) {
        if !st.rx_closed {
            while !st.senders.is_empty()
                && st.has_room(self.cap, self.taken.load(Ordering::Acquire))
            {
                st.reserved += 1;
                out.push(st.senders.notify_front());
            }
        }
        if st.senders.is_empty() && self.taken.load(Ordering::Relaxed) & WAITING != 0 {
            self.taken.fetch_and(!WAITING, Ordering::AcqRel);
        }
    }

    /// The receiver returned a value of its batch: `n` drops by one, and if
    /// senders wait, the freed slot is granted (rule 3).
    #[inline]
    fn returned_one(&self) {
        if self.bounded() && self.taken.fetch_sub(ONE, Ordering::AcqRel) & WAITING != 0 {
            self.grant_freed();
        }
    }

    #[inline(never)]
    fn grant_freed(&self) {
        let mut wakers = Wakers::default();
        let mut st = self.lock();
        self.grant(&mut st, &mut wakers);
        drop(st);
        wakers.wake();
    }

    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = self.lock();
        if st.rx_closed {
            return Err(TrySendError::Closed(value));
        }
        if !self.may_send(&st) {
            let mut wakers = Wakers::default();
            self.grant(&mut st, &mut wakers); // clears the flag set above
            drop(st);
            wakers.wake();
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
    (Sender { chan: chan.clone() }, Receiver::new(chan))
}

/// Creates a channel without a bound: sending never waits.
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, Receiver<T>) {
    let chan = Chan::new(usize::MAX);
    (UnboundedSender { chan: chan.clone() }, Receiver::new(chan))
}
