//! `RwLock<T>`: a fair reader-writer lock for one event loop.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::mutex::{Release, TryLockError};
use super::semaphore::{Semaphore, Waiting};

/// Permits of the underlying semaphore: a reader takes one, a writer all.
const MAX_READS: usize = (u32::MAX >> 3) as usize;

/// An async reader-writer lock: many readers or one writer.
///
/// It is **fair**: requests are served in arrival order, so a writer that
/// waits blocks the readers that arrive after it (no writer starvation),
/// and the readers queued behind a writer get in together once it is done.
/// A request dropped while queued leaves the queue without losing a turn
/// for anyone. Single-loop like [`Mutex`](super::Mutex): `Send` when `T`
/// is, never `Sync`.
///
/// ```
/// use coil::sync::RwLock;
///
/// coil::run(async {
///     let lock = RwLock::new(vec![1]);
///     {
///         let a = lock.read().await;
///         let b = lock.read().await; // readers share
///         assert_eq!(a.len() + b.len(), 2);
///     }
///     lock.write().await.push(2);
///     assert_eq!(*lock.read().await, [1, 2]);
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    sem: Semaphore,
    value: RefCell<T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            sem: Semaphore::new(MAX_READS),
            value: RefCell::new(value),
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for shared access (behind any earlier queued writer).
    pub fn read(&self) -> Read<'_, T> {
        Read {
            lock: self,
            w: Waiting::new(1),
        }
    }

    /// Waits for exclusive access.
    pub fn write(&self) -> Write<'_, T> {
        Write {
            lock: self,
            w: Waiting::new(MAX_READS),
        }
    }

    /// Shared access if no writer holds or waits for the lock.
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire() {
            Ok(p) => {
                p.forget();
                Ok(self.read_guard())
            }
            Err(_) => Err(TryLockError(())),
        }
    }

    /// Exclusive access if nobody holds or waits for the lock.
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire_many(MAX_READS) {
            Ok(p) => {
                p.forget();
                Ok(self.write_guard())
            }
            Err(_) => Err(TryLockError(())),
        }
    }

    /// The value, through `&mut self` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            // Readers hold no write borrow, so this never fails.
            value: self.value.borrow(),
            _release: Release(&self.sem, 1),
        }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            // A writer holds every permit, so nobody else borrows.
            value: self.value.borrow_mut(),
            _release: Release(&self.sem, MAX_READS),
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.value.try_borrow() {
            Ok(v) => d.field("data", &&*v),
            Err(_) => d.field("data", &format_args!("<write-locked>")),
        };
        d.finish()
    }
}

/// The future of [`RwLock::read`].
#[must_use = "futures do nothing unless awaited"]
pub struct Read<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    w: Waiting,
}

impl<'a, T: ?Sized> Future for Read<'a, T> {
    type Output = RwLockReadGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.lock;
        let _ = ready!(this.w.poll(&lock.sem, cx));
        Poll::Ready(lock.read_guard())
    }
}

impl<T: ?Sized> Drop for Read<'_, T> {
    fn drop(&mut self) {
        self.w.cancel(&self.lock.sem);
    }
}

impl<T: ?Sized> fmt::Debug for Read<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Read").field("waiting", &self.w).finish()
    }
}

/// The future of [`RwLock::write`].
#[must_use = "futures do nothing unless awaited"]
pub struct Write<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    w: Waiting,
}

impl<'a, T: ?Sized> Future for Write<'a, T> {
    type Output = RwLockWriteGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.lock;
        let _ = ready!(this.w.poll(&lock.sem, cx));
        Poll::Ready(lock.write_guard())
    }
}

impl<T: ?Sized> Drop for Write<'_, T> {
    fn drop(&mut self) {
        self.w.cancel(&self.lock.sem);
    }
}

impl<T: ?Sized> fmt::Debug for Write<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Write").field("waiting", &self.w).finish()
    }
}

/// Shared access to an [`RwLock`]'s value; released on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    value: Ref<'a, T>,
    _release: Release<'a>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

/// Exclusive access to an [`RwLock`]'s value; released on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    value: RefMut<'a, T>,
    _release: Release<'a>,
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}
