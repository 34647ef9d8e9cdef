//! A channel for one value, between tasks or threads: asyncio's `Future`
//! as a (writer, reader) pair.
//!
//! [`channel`] returns a [`Sender`] that can [`send`](Sender::send) once and
//! a [`Receiver`] that is itself a future of `Result<T, RecvError>`: the
//! value, or an error if the sender was dropped without sending. Both halves
//! are `Send` and `Sync` (when `T: Send`), so either may live on another
//! thread or loop.
//!
//! ```
//! use coil::sync::oneshot;
//!
//! coil::run(async {
//!     let (tx, rx) = oneshot::channel();
//!     std::thread::spawn(move || {
//!         tx.send(6 * 7).unwrap();
//!     });
//!     assert_eq!(rx.await, Ok(42));
//!
//!     let (tx, rx) = oneshot::channel::<u8>();
//!     drop(tx);
//!     assert!(rx.await.is_err());
//! });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::waiters::{register, wake};

/// Creates a one-value channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            value: None,
            rx_waker: None,
            tx_waker: None,
            tx_gone: false,
            rx_closed: false,
        }),
    });
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner },
    )
}

struct Inner<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Option<T>,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
    /// The sender sent or was dropped.
    tx_gone: bool,
    /// The receiver was closed or dropped.
    rx_closed: bool,
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; recover anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending half; [`send`](Sender::send) consumes it.
pub struct Sender<T> {
    inner: Option<Arc<Inner<T>>>,
}

/// The receiving half; await it for the value.
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

/// The sender was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError(());

crate::macros::error_impls!(RecvError => "the oneshot sender was dropped without sending");

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No value yet; the sender is still alive.
    Empty,
    /// The sender was dropped without sending, or the value was taken.
    Closed,
}

crate::macros::error_impls!(TryRecvError {
    Empty => "no value sent yet",
    Closed => "the oneshot channel is closed",
});

impl<T> Sender<T> {
    /// Sends the value. Fails, giving it back, if the receiver was dropped
    /// or closed.
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self
            .inner
            .take()
            .expect("a Sender holds its channel until send");
        let waker = {
            let mut st = inner.lock();
            if st.rx_closed {
                return Err(value);
            }
            st.value = Some(value);
            st.tx_gone = true;
            st.rx_waker.take()
        };
        wake(waker);
        Ok(())
    }

    /// Whether the receiver was dropped or closed: sending would fail.
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.lock().rx_closed)
    }

    /// Waits until the receiver is dropped or closed (to stop computing a
    /// value nobody wants).
    pub fn closed(&mut self) -> Closed<'_, T> {
        Closed { tx: self }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let waker = {
            let mut st = inner.lock();
            st.tx_gone = true;
            st.tx_waker = None;
            st.rx_waker.take()
        };
        wake(waker);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").finish_non_exhaustive()
    }
}

/// The future of [`Sender::closed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Closed<'a, T> {
    tx: &'a mut Sender<T>,
}

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(inner) = &self.tx.inner else {
            return Poll::Ready(());
        };
        let mut st = inner.lock();
        if st.rx_closed {
            return Poll::Ready(());
        }
        register(&mut st.tx_waker, cx.waker());
        Poll::Pending
    }
}

impl<T> fmt::Debug for Closed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Takes the value if it was sent, without waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.inner.lock();
        match st.value.take() {
            Some(v) => Ok(v),
            None if st.tx_gone || st.rx_closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Refuses the value: a later `send` fails, [`Sender::closed`] returns.
    /// A value sent before `close` can still be received.
    pub fn close(&mut self) {
        let waker = {
            let mut st = self.inner.lock();
            st.rx_closed = true;
            st.tx_waker.take()
        };
        wake(waker);
    }

    /// Waits for the value on a plain thread.
    ///
    /// # Panics
    ///
    /// If called inside a running coil loop (it would block the loop).
    #[track_caller]
    pub fn blocking_recv(self) -> Result<T, RecvError> {
        super::block::block_on("oneshot::Receiver::blocking_recv", self)
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.inner.lock();
        if let Some(v) = st.value.take() {
            return Poll::Ready(Ok(v));
        }
        if st.tx_gone || st.rx_closed {
            return Poll::Ready(Err(RecvError(())));
        }
        register(&mut st.rx_waker, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (value, waker) = {
            let mut st = self.inner.lock();
            st.rx_closed = true;
            (st.value.take(), st.tx_waker.take())
        };
        drop(value);
        wake(waker);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}
