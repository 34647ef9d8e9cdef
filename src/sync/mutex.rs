//! `Mutex<T>`: a fair async lock for one event loop.
//!
//! Also what [`RwLock`](super::RwLock) shares with it: the permit
//! [`Release`] of a guard, [`try_hold`], the `Debug` of a lock, and the
//! macros that write the lock futures and the guards' `Deref` impls.

use std::cell::{RefCell, RefMut};
use std::fmt;

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
            lock: self,
            w: Waiting::new(1),
        }
    }

    /// Takes the lock if it is free and nobody waits for it.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        try_hold(&self.sem, 1).map(|()| self.guard())
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
        debug_lock(f, "Mutex", &self.value, "<locked>")
    }
}

/// `Debug` of a lock named `name`: its value, or `held` while a guard
/// borrows it mutably.
pub(crate) fn debug_lock<T: ?Sized + fmt::Debug>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    value: &RefCell<T>,
    held: &str,
) -> fmt::Result {
    let mut d = f.debug_struct(name);
    match value.try_borrow() {
        Ok(v) => d.field("data", &&*v),
        Err(_) => d.field("data", &format_args!("{held}")),
    };
    d.finish()
}

/// Takes `n` permits of a lock's semaphore for a guard, if they are free
/// and nobody waits for them (`try_lock`, `try_read`, `try_write`).
pub(crate) fn try_hold(sem: &Semaphore, n: usize) -> Result<(), TryLockError> {
    match sem.try_acquire_many(n) {
        Ok(p) => {
            p.forget();
            Ok(())
        }
        Err(_) => Err(TryLockError(())),
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

/// Defines the future of a lock method: it waits (FIFO) for its permits of
/// the lock's semaphore (`sem`, a `Waiting` made by the method), then returns
/// the guard the lock's `$make` method builds. Dropped while queued, it
/// leaves the queue without losing a turn for anyone (`Waiting::cancel`).
macro_rules! lock_future {
    ($(#[$doc:meta])* $name:ident: $lock:ident => $guard:ident, $make:ident) => {
        $(#[$doc])*
        #[must_use = "futures do nothing unless awaited"]
        pub struct $name<'a, T: ?Sized> {
            lock: &'a $lock<T>,
            w: $crate::sync::semaphore::Waiting,
        }

        impl<'a, T: ?Sized> std::future::Future for $name<'a, T> {
            type Output = $guard<'a, T>;

            fn poll(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Self::Output> {
                let this = self.get_mut();
                let lock = this.lock;
                // The semaphore of a lock is never closed.
                let res = this.w.poll(&lock.sem, cx);
                let lock_wait = || $crate::rt::Awaiting::Sync("lock");
                let _ = std::task::ready!($crate::rt::debug::note(res, lock_wait));
                std::task::Poll::Ready(lock.$make())
            }
        }

        impl<T: ?Sized> Drop for $name<'_, T> {
            fn drop(&mut self) {
                self.w.cancel(&self.lock.sem);
            }
        }

        impl<T: ?Sized> std::fmt::Debug for $name<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("waiting", &self.w)
                    .finish()
            }
        }
    };
}

/// `Deref` (and with `mut`, `DerefMut`) to the guarded value, and `Debug`
/// as the value's, for a lock guard whose `value` field is the borrow.
macro_rules! guard_deref {
    ($guard:ident) => {
        impl<T: ?Sized> std::ops::Deref for $guard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                &self.value
            }
        }

        impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for $guard<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&*self.value, f)
            }
        }
    };
    ($guard:ident, mut) => {
        $crate::sync::mutex::guard_deref!($guard);

        impl<T: ?Sized> std::ops::DerefMut for $guard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                &mut self.value
            }
        }
    };
}

pub(crate) use {guard_deref, lock_future};

lock_future! {
    /// The future of [`Mutex::lock`].
    Lock: Mutex => MutexGuard, guard
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

guard_deref!(MutexGuard, mut);

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.value, f)
    }
}
