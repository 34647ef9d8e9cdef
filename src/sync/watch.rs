//! A channel that holds one value, the latest, and tells receivers when it
//! changed: configuration, a status, a shutdown flag; between tasks, loops
//! and threads.
//!
//! [`channel(init)`](channel) returns a [`Sender`] and a first [`Receiver`].
//! The sender replaces the value ([`send`](Sender::send),
//! [`send_replace`](Sender::send_replace)) or changes it in place
//! ([`send_modify`](Sender::send_modify)); each receiver reads it
//! ([`borrow`](Receiver::borrow)) and waits for the next change
//! ([`changed`](Receiver::changed)). A receiver does not see every value,
//! only the latest: two sends before it looks are one change to it.
//!
//! Each receiver remembers which version it has seen. The value it was
//! created with (by [`channel`], [`Sender::subscribe`] or `clone`) counts as
//! seen; [`borrow_and_update`](Receiver::borrow_and_update) and a
//! `changed().await` that returns mark the newest as seen. `changed` returns
//! at once if the newest is not seen yet, and fails with [`RecvError`] once
//! every sender is gone and the newest is seen: no change can come any more.
//!
//! Senders and receivers are `Send + Sync` (when `T: Send + Sync`), like
//! those of [`mpsc`](super::mpsc): a wake from another thread reaches the
//! receiver's loop through its remote queue. There is no asyncio
//! counterpart (asyncio programs pair a variable with an `Event`); this is
//! the channel tokio users know as `tokio::sync::watch`, with the same names.
//!
//! ```
//! use coil::sync::watch;
//!
//! coil::run(async {
//!     let (tx, mut rx) = watch::channel("starting");
//!     let reader = coil::spawn(async move {
//!         let mut seen = vec![*rx.borrow()];
//!         while rx.changed().await.is_ok() {
//!             seen.push(*rx.borrow_and_update());
//!         }
//!         seen // the sender is gone
//!     });
//!     coil::task::yield_now().await;
//!     tx.send("running").unwrap();
//!     coil::task::yield_now().await;
//!     tx.send_replace("stopping");
//!     drop(tx);
//!     assert_eq!(reader.await.unwrap(), ["starting", "running", "stopping"]);
//! });
//! ```
//!
//! A [`Ref`] (from `borrow`) holds a read lock on the value: keep it short,
//! and never across an `.await` or a send from the same thread, which would
//! wait for it forever.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::task::{Context, Poll, Waker, ready};

use super::waiters::{Key, WaitList, count_out, counted_sender};
use crate::rt::budget::poll_proceed;

/// Creates a watch channel holding `init`, which the first receiver counts
/// as seen.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(init),
        state: Mutex::new(State {
            version: 0,
            tx_count: 1,
            rx_count: 1,
            changed: WaitList::new(),
            closed: WaitList::new(),
        }),
    });
    let rx = Receiver {
        shared: shared.clone(),
        seen: 0,
    };
    (Sender { shared }, rx)
}

/// The channel every handle shares. Lock order: `value`, then `state`; the
/// version is bumped under both, so a reader holding `value` reads the
/// version of the value it sees.
struct Shared<T> {
    value: RwLock<T>,
    state: Mutex<State>,
}

struct State {
    /// Bumped by every send.
    version: u64,
    tx_count: usize,
    rx_count: usize,
    /// Receivers waiting in `changed`; every send notifies them all.
    changed: WaitList<()>,
    /// Senders waiting in `closed`; notified when the last receiver goes.
    closed: WaitList<()>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing that can panic runs under the lock; recover anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, T> {
        // A `send_modify` whose closure panicked leaves the value as it
        // left it; readers see that.
        self.value.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the value and its version.
    fn read_versioned(&self) -> (RwLockReadGuard<'_, T>, u64) {
        let value = self.read();
        let version = self.lock().version;
        (value, version)
    }

    fn subscribe(self: &Arc<Self>) -> Receiver<T> {
        let mut st = self.lock();
        st.rx_count += 1;
        Receiver {
            shared: self.clone(),
            seen: st.version,
        }
    }

    fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let mut value = self.value.write().unwrap_or_else(|e| e.into_inner());
        if !modify(&mut value) {
            return false;
        }
        let wakers = {
            let mut st = self.lock();
            st.version += 1;
            st.changed.notify_all()
        };
        drop(value);
        wakers.into_iter().for_each(Waker::wake);
        true
    }
}

/// A shared view of the value, from `borrow`: holds a read lock on it.
pub struct Ref<'a, T> {
    value: RwLockReadGuard<'a, T>,
    has_changed: bool,
}

impl<T> Ref<'_, T> {
    /// Whether the value was not yet seen by the receiver that borrowed it,
    /// when it borrowed (always `false` from [`Sender::borrow`]).
    pub fn has_changed(&self) -> bool {
        self.has_changed
    }
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// The sending half. Clone it for more senders; receivers see the channel
/// closed once every sender is gone.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Replaces the value and notifies every receiver. Fails, giving the
    /// value back and changing nothing, if there is no receiver
    /// ([`send_replace`](Sender::send_replace) stores it anyway, for
    /// receivers subscribed later).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.lock().rx_count == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value, with or without receivers, notifies every
    /// receiver, and returns the old value.
    pub fn send_replace(&self, value: T) -> T {
        let mut value = Some(value);
        let mut old = None;
        self.shared.send_if_modified(|v| {
            old = Some(std::mem::replace(v, value.take().expect("called once")));
            true
        });
        old.expect("the value was replaced")
    }

    /// Changes the value in place, with or without receivers, and notifies
    /// every receiver.
    ///
    /// If `modify` panics, the panic goes on to the caller, receivers are
    /// not notified, and the value is left as `modify` left it.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.shared.send_if_modified(|v| {
            modify(v);
            true
        });
    }

    /// Lets `modify` change the value in place; notifies every receiver if
    /// it returns `true` (it says whether it changed anything), and returns
    /// that.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        self.shared.send_if_modified(modify)
    }

    /// Reads the value (see [`Ref`]: release it before sending).
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            value: self.shared.read(),
            has_changed: false,
        }
    }

    /// A new receiver, which counts the value now as seen.
    pub fn subscribe(&self) -> Receiver<T> {
        self.shared.subscribe()
    }

    /// The receivers alive now.
    pub fn receiver_count(&self) -> usize {
        self.shared.lock().rx_count
    }

    /// The senders alive now (this one included).
    pub fn sender_count(&self) -> usize {
        self.shared.lock().tx_count
    }

    /// Whether there is no receiver: [`send`](Sender::send) would fail.
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }

    /// Waits until there is no receiver (to stop producing values nobody
    /// reads). Cancel safe.
    pub fn closed(&self) -> Closed<'_, T> {
        Closed {
            tx: self,
            key: None,
        }
    }
}

counted_sender!(changed);

impl<T: fmt::Debug> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Sender")
            .field("value", &*self.borrow())
            .finish_non_exhaustive()
    }
}

/// A receiving half. Clone it for another receiver that has seen what this
/// one has.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver has seen.
    seen: u64,
}

impl<T> Receiver<T> {
    /// Reads the value, without marking it seen (see [`Ref`]).
    /// [`Ref::has_changed`] says whether it was new to this receiver.
    pub fn borrow(&self) -> Ref<'_, T> {
        let (value, version) = self.shared.read_versioned();
        Ref {
            value,
            has_changed: version != self.seen,
        }
    }

    /// Reads the value and marks it seen: a later
    /// [`changed`](Receiver::changed) waits for the next send.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let (value, version) = self.shared.read_versioned();
        let has_changed = version != self.seen;
        self.seen = version;
        Ref { value, has_changed }
    }

    /// Whether the newest value is not seen yet; [`RecvError`] if it is and
    /// every sender is gone (what `changed` would return now, without
    /// waiting). Unlike tokio's, which fails once the senders are gone, a
    /// value sent before they went still counts as a change here.
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let st = self.shared.lock();
        match (st.version != self.seen, st.tx_count) {
            (false, 0) => Err(RecvError(())),
            (changed, _) => Ok(changed),
        }
    }

    /// Marks the newest value seen, without reading it.
    pub fn mark_unchanged(&mut self) {
        self.seen = self.shared.lock().version;
    }

    /// Marks the value not seen: the next `changed` returns at once (if a
    /// sender remains or not).
    pub fn mark_changed(&mut self) {
        // Versions only grow: an older one never matches again.
        self.seen = self.shared.lock().version.wrapping_sub(1);
    }

    /// Waits until the value is newer than the one seen, then marks it seen.
    ///
    /// Returns at once if the newest value is not seen yet. Fails with
    /// [`RecvError`] once every sender is gone and the newest value is
    /// seen.
    ///
    /// Cancel safe: a dropped `changed` marked nothing seen.
    pub fn changed(&mut self) -> Changed<'_, T> {
        Changed {
            rx: self,
            key: None,
        }
    }

    /// Whether both receivers watch the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.lock().rx_count += 1;
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let wakers = {
            let st = &mut *self.shared.lock();
            count_out(&mut st.rx_count, &mut st.closed)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Receiver")
            .field("value", &*self.borrow())
            .finish_non_exhaustive()
    }
}

/// The future of [`Receiver::changed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Changed<'a, T> {
    rx: &'a mut Receiver<T>,
    key: Option<Key>,
}

impl<T> Future for Changed<'_, T> {
    type Output = Result<(), RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let rx = &mut *this.rx;
        let mut st = rx.shared.lock();
        // Queued: no send since (each notifies every waiter).
        ready!(st.changed.poll_key(&mut this.key, cx.waker()));
        let r = if st.version != rx.seen {
            rx.seen = st.version;
            Ok(())
        } else if st.tx_count == 0 {
            Err(RecvError(()))
        } else {
            this.key = Some(st.changed.push_back((), cx.waker().clone()));
            return Poll::Pending;
        };
        coop.made_progress();
        Poll::Ready(r)
    }
}

impl<T> Drop for Changed<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // Every waiter was notified: nothing to pass on.
            let _ = self.rx.shared.lock().changed.remove(key);
        }
    }
}

impl<T> fmt::Debug for Changed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changed")
            .field("queued", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// The future of [`Sender::closed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Closed<'a, T> {
    tx: &'a Sender<T>,
    key: Option<Key>,
}

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut st = this.tx.shared.lock();
        ready!(st.closed.poll_key(&mut this.key, cx.waker()));
        if st.rx_count == 0 {
            return Poll::Ready(());
        }
        // Notified, then a receiver was subscribed again: wait on.
        this.key = Some(st.closed.push_back((), cx.waker().clone()));
        Poll::Pending
    }
}

impl<T> Drop for Closed<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let _ = self.tx.shared.lock().closed.remove(key);
        }
    }
}

impl<T> fmt::Debug for Closed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed")
            .field("queued", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// The value of a failed [`Sender::send`]: there is no receiver.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

crate::macros::error_impls!(<T> SendError(..) => "the watch channel has no receiver");

/// The error of [`Receiver::changed`]: every sender is gone and the newest
/// value is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError(());

crate::macros::error_impls!(RecvError => "the watch channel's senders are gone");
