//! `Mutex<T>`: a fair async lock for one event loop.

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::semaphore::{Semaphore, Waiting};

/// An async mutual-exclusion lock around a value: `asyncio.Lock`, with the
/// data inside it as Rust prefers.
///
/// [`lock`](Mutex::lock) waits for the lock and returns a [`MutexGuard`]
/// that derefs to the value and unlocks when dropped: the guard *is*
/// `async with lock:`. The lock is **fair**: waiters get it in the order
/// they asked, handed over directly on unlock, so a task that unlocks and
/// locks again goes behind those already waiting. A waiter dropped while
/// queued leaves the queue; if the lock was already handed to it, it passes
/// to the next waiter.
///
/// It is built for one loop: the guard may be held across `.await`, and
/// the mutex is `Send` (when `T` is) but not `Sync`. To share it between
/// tasks, borrow it or put it in an `Rc`.
///
/// ```
/// use std::rc::Rc;
/// use coil::sync::Mutex;
///
/// let total = coil::run(async {
///     let m = Rc::new(Mutex::new(0));
///     let tasks: Vec<_> = (0..10)
///         .map(|_| {
///             let m = m.clone();
///             coil::spawn(async move {
///                 let mut g = m.lock().await;
///                 let v = *g;
///                 coil::task::yield_now().await; // others wait meanwhile
///                 *g = v + 1;
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     let n = *m.lock().await;
///     n
/// });
/// assert_eq!(total, 10);
/// ```
pub struct Mutex<T: ?Sized> {
    sem: Semaphore,
    value: RefCell<T>,
}

/// The error of [`Mutex::try_lock`]: the lock is held or others wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLockError(pub(crate) ());

crate::macros::error_impls!(TryLockError => "the lock is held or contended");

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            sem: Semaphore::new(1),
            value: RefCell::new(value),
        }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock (FIFO) and returns its guard.
    ///
    /// Cancel safe: a dropped `lock()` future never holds or loses the lock.
    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            w: Waiting::new(1),
        }
    }

    /// Takes the lock if it is free and nobody waits for it.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire() {
            Ok(p) => {
                p.forget();
                Ok(self.guard())
            }
            Err(_) => Err(TryLockError(())),
        }
    }

    /// Whether the lock is held right now.
    pub fn is_locked(&self) -> bool {
        self.sem.available_permits() == 0
    }

    /// The value, through `&mut self` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            // The semaphore admits one holder, so this borrow never fails.
            value: self.value.borrow_mut(),
            mutex: self,
            _release: Release(&self.sem, 1),
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.value.try_borrow() {
            Ok(v) => d.field("data", &&*v),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Gives `n` permits back to a semaphore when dropped; declared after the
/// borrow in every guard so that the borrow ends first.
#[derive(Debug)]
pub(crate) struct Release<'a>(pub(crate) &'a Semaphore, pub(crate) usize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// The future of [`Mutex::lock`].
#[must_use = "futures do nothing unless awaited"]
pub struct Lock<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    w: Waiting,
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mutex = this.mutex;
        // The semaphore of a mutex is never closed.
        let _ = ready!(this.w.poll(&mutex.sem, cx));
        Poll::Ready(mutex.guard())
    }
}

impl<T: ?Sized> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        self.w.cancel(&self.mutex.sem);
    }
}

impl<T: ?Sized> fmt::Debug for Lock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("waiting", &self.w).finish()
    }
}

/// Access to a locked [`Mutex`]'s value; unlocks on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    value: RefMut<'a, T>,
    mutex: &'a Mutex<T>,
    _release: Release<'a>,
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for [`Condition`](super::Condition)).
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.value, f)
    }
}
