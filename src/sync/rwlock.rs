//! `RwLock<T>`: a fair reader-writer lock for one event loop.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;

use super::mutex::{Release, TryLockError, debug_lock, guard_deref, lock_future, try_hold};
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
        try_hold(&self.sem, 1).map(|()| self.read_guard())
    }

    /// Exclusive access if nobody holds or waits for the lock.
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        try_hold(&self.sem, MAX_READS).map(|()| self.write_guard())
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
        debug_lock(f, "RwLock", &self.value, "<write-locked>")
    }
}

lock_future! {
    /// The future of [`RwLock::read`].
    Read: RwLock => RwLockReadGuard, read_guard
}

lock_future! {
    /// The future of [`RwLock::write`].
    Write: RwLock => RwLockWriteGuard, write_guard
}

/// Shared access to an [`RwLock`]'s value; released on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    value: Ref<'a, T>,
    _release: Release<'a>,
}

guard_deref!(RwLockReadGuard);

/// Exclusive access to an [`RwLock`]'s value; released on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    value: RefMut<'a, T>,
    _release: Release<'a>,
}

guard_deref!(RwLockWriteGuard, mut);
