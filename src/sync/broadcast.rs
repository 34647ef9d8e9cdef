//! A multi-producer, multi-consumer broadcast channel: every receiver sees
//! every value sent after it subscribed, between tasks, loops and threads.
//!
//! [`channel(capacity)`](channel) returns a [`Sender`] and a first
//! [`Receiver`]; more receivers come from [`Sender::subscribe`] (or
//! [`Receiver::resubscribe`]), more senders from `Sender::clone`. Each value
//! sent is cloned out to each receiver (`T: Clone`), and is dropped once
//! every receiver that was subscribed when it was sent has received it.
//!
//! The channel keeps at most `capacity` values. Sending never waits: when
//! the buffer is full, the oldest value goes to make room, and a receiver
//! that had not received it yet has *lagged*: its next
//! [`recv`](Receiver::recv) returns [`RecvError::Lagged(n)`](RecvError::Lagged),
//! `n` the number of values it missed, and the one after that continues
//! from the oldest value still kept. So a slow receiver never holds the
//! others back, and memory stays bounded by `capacity`.
//!
//! * [`Sender::send`] fails, giving the value back, when there is no
//!   receiver; it returns how many receivers will see the value otherwise.
//! * [`recv`](Receiver::recv) returns [`RecvError::Closed`] once every
//!   sender is gone and the receiver has received everything sent before.
//!
//! Senders and receivers are `Send + Sync` (when `T: Send`), like those of
//! [`mpsc`](super::mpsc): a wake from another thread reaches the receiver's
//! loop through its remote queue. Plain threads use
//! [`Receiver::blocking_recv`]. There is no asyncio counterpart; this is the
//! channel tokio users know as `tokio::sync::broadcast`, with the same names.
//!
//! ```
//! use coil::sync::broadcast::{self, error::RecvError};
//!
//! coil::run(async {
//!     let (tx, mut rx1) = broadcast::channel(2);
//!     let mut rx2 = tx.subscribe();
//!     tx.send(1).unwrap();
//!     tx.send(2).unwrap();
//!     assert_eq!(rx1.recv().await, Ok(1));
//!     assert_eq!(rx1.recv().await, Ok(2));
//!
//!     tx.send(3).unwrap(); // the buffer holds 2 values: 1 goes
//!     assert_eq!(rx2.recv().await, Err(RecvError::Lagged(1)));
//!     assert_eq!(rx2.recv().await, Ok(2));
//!     assert_eq!(rx2.recv().await, Ok(3));
//!
//!     drop(tx);
//!     assert_eq!(rx1.recv().await, Ok(3));
//!     assert_eq!(rx1.recv().await, Err(RecvError::Closed));
//! });
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use super::waiters::{Key, WaitList, counted_sender};
use crate::rt::budget::poll_proceed;

pub mod error;

pub use error::{RecvError, SendError, TryRecvError};

/// Creates a broadcast channel that keeps at most `capacity` values.
///
/// # Panics
///
/// If `capacity` is 0: the channel must keep at least the newest value.
#[track_caller]
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "broadcast::channel needs a capacity of at least 1"
    );
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: VecDeque::with_capacity(capacity.min(1024)),
            head: 0,
            tx_count: 1,
            rx_count: 1,
            waiters: WaitList::new(),
        }),
        cap: capacity,
    });
    let rx = Receiver {
        shared: shared.clone(),
        next: 0,
    };
    (Sender { shared }, rx)
}

/// The channel every handle shares.
struct Shared<T> {
    state: Mutex<State<T>>,
    cap: usize,
}

struct State<T> {
    /// The values kept, oldest first; at most `cap`.
    buf: VecDeque<Slot<T>>,
    /// The position (count of values ever kept before it) of `buf[0]`.
    head: u64,
    tx_count: usize,
    rx_count: usize,
    /// Receivers waiting for a value; every send notifies them all, so a
    /// dropped waiter owes nothing to the others.
    waiters: WaitList<()>,
}

struct Slot<T> {
    value: T,
    /// Receivers subscribed when it was sent that have not received it.
    rem: usize,
}

impl<T> State<T> {
    /// The position the next value sent will have.
    fn tail(&self) -> u64 {
        self.head + self.buf.len() as u64
    }

    /// Takes the oldest value every receiver has received (only ever at the
    /// front: receivers read in order), to be dropped after the lock.
    fn pop_received(&mut self) -> Option<T> {
        if self.buf.front()?.rem != 0 {
            return None;
        }
        self.head += 1;
        self.buf.pop_front().map(|s| s.value)
    }
}

impl<T: Clone> State<T> {
    /// The step of `recv` and `try_recv` for the receiver at `next`: the
    /// next value, or why not.
    fn take(&mut self, next: &mut u64) -> Result<T, TryRecvError> {
        if *next < self.head {
            let missed = self.head - *next;
            *next = self.head;
            return Err(TryRecvError::Lagged(missed));
        }
        let at = (*next - self.head) as usize;
        let Some(slot) = self.buf.get_mut(at) else {
            return Err(if self.tx_count == 0 {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            });
        };
        *next += 1;
        slot.rem -= 1;
        if slot.rem == 0 && at == 0 {
            // The last receiver to see it takes the value itself.
            return Ok(self.pop_received().expect("the front slot was received"));
        }
        Ok(slot.value.clone())
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing that can panic runs under the lock; recover anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscribe(self: &Arc<Self>) -> Receiver<T> {
        let mut st = self.lock();
        st.rx_count += 1;
        Receiver {
            shared: self.clone(),
            next: st.tail(),
        }
    }
}

/// The sending half. Clone it for more producers; subscribe from it for more
/// receivers.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Sends `value` to every receiver subscribed now, without waiting;
    /// returns how many there are.
    ///
    /// If the buffer is full, the oldest value is dropped to make room (the
    /// receivers that had not received it lag). Fails, giving the value
    /// back, if there is no receiver: nobody could ever see it.
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let mut st = self.shared.lock();
        if st.rx_count == 0 {
            return Err(SendError(value));
        }
        let evicted = if st.buf.len() == self.shared.cap {
            st.head += 1;
            st.buf.pop_front()
        } else {
            None
        };
        let rem = st.rx_count;
        st.buf.push_back(Slot { value, rem });
        let wakers = st.waiters.notify_all();
        drop(st);
        drop(evicted); // outside the lock: a destructor may use the channel
        wakers.into_iter().for_each(Waker::wake);
        Ok(rem)
    }

    /// A new receiver, which will see the values sent from now on.
    pub fn subscribe(&self) -> Receiver<T> {
        self.shared.subscribe()
    }

    /// The receivers alive now.
    pub fn receiver_count(&self) -> usize {
        self.shared.lock().rx_count
    }

    /// The values kept, waiting for a receiver that has not received them.
    pub fn len(&self) -> usize {
        self.shared.lock().buf.len()
    }

    /// Whether every kept value has been received by every receiver.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

counted_sender!(waiters);

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Sender")
            .field("receivers", &self.receiver_count())
            .finish_non_exhaustive()
    }
}

/// A receiving half: sees every value sent after it was subscribed.
/// Not `Clone`: [`resubscribe`](Receiver::resubscribe) makes another one.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The position of the next value to receive.
    next: u64,
}

impl<T> Receiver<T> {
    /// A new receiver on the same channel, which will see the values sent
    /// from now on (not the ones this one has yet to receive).
    pub fn resubscribe(&self) -> Receiver<T> {
        self.shared.subscribe()
    }

    /// The values sent that this receiver has yet to receive (counting the
    /// ones it lagged behind on).
    pub fn len(&self) -> usize {
        let st = self.shared.lock();
        usize::try_from(st.tail() - self.next).unwrap_or(usize::MAX)
    }

    /// Whether this receiver has received everything sent so far.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every sender is gone (values kept may remain to receive).
    pub fn is_closed(&self) -> bool {
        self.shared.lock().tx_count == 0
    }

    /// Whether both receivers listen to the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T: Clone> Receiver<T> {
    /// Receives the next value, waiting for one.
    ///
    /// Returns [`RecvError::Lagged(n)`](RecvError::Lagged) if `n` values
    /// this receiver had not received were dropped to make room; the next
    /// call returns the oldest value kept. Returns [`RecvError::Closed`] once
    /// every sender is gone and every value sent has been received.
    ///
    /// Cancel safe: a dropped `recv` took nothing; the value stays for the
    /// next call.
    ///
    /// The value is cloned under the channel's lock (the last receiver to
    /// take it gets the value itself, not a clone): a `Clone` impl must not
    /// use the channel.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv {
            rx: self,
            key: None,
        }
    }

    /// Receives the next value if one is there, without waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.shared.lock().take(&mut self.next)
    }

    /// Receives on a plain thread, blocking it until a value arrives.
    ///
    /// # Panics
    ///
    /// If called inside a running coil loop (it would block the loop).
    #[track_caller]
    pub fn blocking_recv(&mut self) -> Result<T, RecvError> {
        crate::sync::block::block_on("broadcast::Receiver::blocking_recv", self.recv())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.rx_count -= 1;
        let from = self.next.saturating_sub(st.head) as usize;
        for slot in st.buf.iter_mut().skip(from) {
            slot.rem -= 1;
        }
        let mut received = Vec::new();
        while let Some(v) = st.pop_received() {
            received.push(v);
        }
        drop(st);
        drop(received); // outside the lock: destructors may use the channel
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Receiver")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
    key: Option<Key>,
}

impl<T: Clone> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let rx = &mut *this.rx;
        let mut st = rx.shared.lock();
        // Queued: no send since (each notifies every waiter).
        ready!(st.waiters.poll_key(&mut this.key, cx.waker()));
        let r = match st.take(&mut rx.next) {
            Ok(v) => Ok(v),
            Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
            Err(TryRecvError::Empty) => {
                this.key = Some(st.waiters.push_back((), cx.waker().clone()));
                return Poll::Pending;
            }
        };
        drop(st);
        coop.made_progress();
        Poll::Ready(r)
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // A send notifies every waiter: nothing to pass on, and the
            // value stays kept for this receiver's next call.
            let _ = self.rx.shared.lock().waiters.remove(key);
        }
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("queued", &self.key.is_some())
            .finish_non_exhaustive()
    }
}
