//! `Semaphore`: a fair (FIFO) counting semaphore for one event loop.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use super::waiters::{Key, Removed, WaitList, Wakers, debug_state};
use crate::rt::budget::poll_proceed;

/// A counting semaphore: `asyncio.Semaphore`, fair and single-loop.
///
/// [`acquire`](Semaphore::acquire) waits until a permit is free and returns a
/// [`SemaphorePermit`] that gives it back when dropped (the `async with sem:`
/// block). Waiters are served strictly in arrival order: a request for many
/// permits at the front of the queue holds back the smaller requests behind
/// it, so nobody starves. No barging: permits released while tasks wait are
/// handed to them, and while a waiter has been handed permits but has not
/// run yet, a new `acquire` (or `try_acquire`) queues behind it even if
/// permits are free, as asyncio's Semaphore does (CPython
/// `test_acquire_fifo_order_2`). A waiter whose future is dropped leaves the queue;
/// if permits had already been handed to it, they pass to the next waiter.
///
/// The semaphore lives on one loop: it is `!Send` and `!Sync`. Share it
/// between tasks with `&` borrows or an [`Rc`]; across threads use
/// [`mpsc`](crate::sync::mpsc).
///
/// ```
/// use std::rc::Rc;
/// use coil::sync::Semaphore;
///
/// coil::run(async {
///     let sem = Rc::new(Semaphore::new(2));
///     let tasks: Vec<_> = (0..5)
///         .map(|i| {
///             let sem = sem.clone();
///             coil::spawn(async move {
///                 let _permit = sem.acquire().await.unwrap();
///                 // at most two tasks are here at a time
///                 coil::task::yield_now().await;
///                 i
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(sem.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    state: RefCell<State>,
}

/// A waiter's request: how many permits, and whether they were granted (a
/// waiter notified without a grant was woken by `close`).
#[derive(Debug, Default)]
struct Req {
    n: usize,
    granted: bool,
}

#[derive(Debug)]
struct State {
    permits: usize,
    closed: bool,
    waiters: WaitList<Req>,
    /// Waiters handed permits that have not taken them yet (not yet polled):
    /// while there are any, new requests queue (no barging).
    unclaimed: usize,
}

impl State {
    /// Hands permits to the waiters at the front while they fit (FIFO).
    fn grant(&mut self, wakers: &mut Wakers) {
        while let Some(req) = self.waiters.front_mut() {
            if req.n > self.permits {
                break;
            }
            self.permits -= req.n;
            req.granted = true;
            self.unclaimed += 1;
            wakers.push(self.waiters.notify_front());
        }
    }
}

/// The error of [`Semaphore::acquire`]: the semaphore was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireError(());

crate::macros::error_impls!(AcquireError => "semaphore closed");

/// The error of [`Semaphore::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAcquireError {
    /// The semaphore was closed.
    Closed,
    /// Not enough permits are free, or other tasks are queued before this one.
    NoPermits,
}

crate::macros::error_impls!(TryAcquireError {
    Closed => "semaphore closed",
    NoPermits => "no permits available",
});

impl Semaphore {
    /// The largest number of permits a semaphore may hold (`usize::MAX >> 3`).
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` free permits.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`Semaphore::MAX_PERMITS`].
    pub const fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= Self::MAX_PERMITS,
            "a semaphore holds at most Semaphore::MAX_PERMITS permits"
        );
        Semaphore {
            state: RefCell::new(State {
                permits,
                closed: false,
                waiters: WaitList::new(),
                unclaimed: 0,
            }),
        }
    }

    /// Permits free right now.
    pub fn available_permits(&self) -> usize {
        self.state.borrow().permits
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }

    /// Adds `n` permits and hands them to waiters in FIFO order.
    ///
    /// # Panics
    ///
    /// If the total would exceed [`Semaphore::MAX_PERMITS`].
    pub fn add_permits(&self, n: usize) {
        let mut wakers = Wakers::default();
        {
            let mut st = self.state.borrow_mut();
            st.permits = st
                .permits
                .checked_add(n)
                .filter(|&p| p <= Self::MAX_PERMITS)
                .expect("a semaphore holds at most Semaphore::MAX_PERMITS permits");
            st.grant(&mut wakers);
        }
        wakers.wake();
    }

    /// Closes the semaphore: every queued and future `acquire` fails with
    /// [`AcquireError`]. Permits already held stay valid.
    pub fn close(&self) {
        let wakers = {
            let mut st = self.state.borrow_mut();
            st.closed = true;
            st.waiters.notify_all()
        };
        wakers.into_iter().for_each(std::task::Waker::wake);
    }

    /// Waits for one permit.
    ///
    /// Cancel safe: dropping the future leaves the queue, and a permit
    /// already handed to it goes to the next waiter.
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits at once (FIFO with everyone else).
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        Acquire {
            sem: self,
            w: Waiting::new(n),
        }
    }

    /// Like [`acquire`](Semaphore::acquire), but the permit keeps the
    /// semaphore alive through an [`Rc`] instead of a borrow, so it can move
    /// into a spawned task.
    pub fn acquire_owned(self: Rc<Self>) -> AcquireOwned {
        self.acquire_many_owned(1)
    }

    /// [`acquire_many`](Semaphore::acquire_many) with an owned permit.
    pub fn acquire_many_owned(self: Rc<Self>, n: usize) -> AcquireOwned {
        AcquireOwned {
            sem: Some(self),
            w: Waiting::new(n),
        }
    }

    /// Takes one permit if one is free and nobody is queued before us.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is queued before us.
    pub fn try_acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take(n)?;
        Ok(SemaphorePermit { sem: self, n })
    }

    /// [`try_acquire`](Semaphore::try_acquire) with an owned permit.
    pub fn try_acquire_owned(self: Rc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take(1)?;
        Ok(OwnedSemaphorePermit { sem: self, n: 1 })
    }

    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut st = self.state.borrow_mut();
        if st.closed {
            Err(TryAcquireError::Closed)
        } else if st.waiters.is_empty() && st.unclaimed == 0 && st.permits >= n {
            st.permits -= n;
            Ok(())
        } else {
            Err(TryAcquireError::NoPermits)
        }
    }

    /// Returns `n` permits: used by permits on drop and by the lock guards.
    pub(crate) fn release(&self, n: usize) {
        self.add_permits(n);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_state(f, "Semaphore", &self.state, |d, st| {
            d.field("permits", &st.permits)
                .field("waiters", &st.waiters.len())
                .field("closed", &st.closed);
        })
    }
}

/// The state machine shared by [`Acquire`] and [`AcquireOwned`].
#[derive(Debug)]
pub(crate) struct Waiting {
    n: usize,
    key: Option<Key>,
}

impl Waiting {
    pub(crate) fn new(n: usize) -> Waiting {
        Waiting { n, key: None }
    }

    pub(crate) fn poll(
        &mut self,
        sem: &Semaphore,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        let coop = ready!(poll_proceed(cx));
        let mut wakers = Wakers::default();
        let mut st = sem.state.borrow_mut();
        let r = match ready!(st.waiters.poll_key(&mut self.key, cx.waker())) {
            Some(req) if req.granted => {
                // The last handed-over request is taken: requests that queued
                // behind it while permits were free can have them now.
                st.unclaimed -= 1;
                if st.unclaimed == 0 && !st.closed {
                    st.grant(&mut wakers);
                }
                Ok(())
            }
            // Notified without permits: the semaphore was closed.
            Some(_) => Err(AcquireError(())),
            None if st.closed => Err(AcquireError(())),
            None if st.waiters.is_empty() && st.unclaimed == 0 && st.permits >= self.n => {
                st.permits -= self.n;
                Ok(())
            }
            None => {
                let req = Req {
                    n: self.n,
                    granted: false,
                };
                self.key = Some(st.waiters.push_back(req, cx.waker().clone()));
                return Poll::Pending;
            }
        };
        drop(st);
        wakers.wake();
        coop.made_progress();
        Poll::Ready(r)
    }

    /// Leaves the queue; permits granted but not taken go to the next waiter
    /// (waiters.rs rule 3). Removing a queued front waiter may also let the
    /// smaller requests behind it through.
    pub(crate) fn cancel(&mut self, sem: &Semaphore) {
        let Some(key) = self.key.take() else { return };
        let mut wakers = Wakers::default();
        {
            let mut st = sem.state.borrow_mut();
            match st.waiters.remove(key) {
                Removed::Notified(req) if req.granted => {
                    st.permits += req.n;
                    st.unclaimed -= 1;
                }
                _ => {}
            }
            if !st.closed {
                st.grant(&mut wakers);
            }
        }
        wakers.wake();
    }
}

/// A semaphore's wait, in the await tree (`Handle::dump`).
#[inline(always)]
fn note_acquire<T>(res: Poll<T>) -> Poll<T> {
    crate::rt::debug::note(res, || crate::rt::Awaiting::Sync("semaphore"))
}

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    w: Waiting,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sem = this.sem;
        ready!(note_acquire(this.w.poll(sem, cx)))?;
        Poll::Ready(Ok(SemaphorePermit { sem, n: this.w.n }))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.w.cancel(self.sem);
    }
}

/// The future of [`Semaphore::acquire_owned`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct AcquireOwned {
    sem: Option<Rc<Semaphore>>,
    w: Waiting,
}

impl Future for AcquireOwned {
    type Output = Result<OwnedSemaphorePermit, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sem = this
            .sem
            .as_ref()
            .expect("AcquireOwned polled after completion");
        ready!(note_acquire(this.w.poll(sem, cx)))?;
        let sem = this.sem.take().expect("checked above");
        Poll::Ready(Ok(OwnedSemaphorePermit { sem, n: this.w.n }))
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        if let Some(sem) = &self.sem {
            self.w.cancel(sem);
        }
    }
}

/// Permits borrowed from a [`Semaphore`]; dropping it gives them back.
#[must_use = "the permit is released at once if not kept"]
#[derive(Debug)]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.n
    }

    /// Keeps the permits taken for good (the semaphore shrinks).
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.release(self.n);
        }
    }
}

/// Permits from a [`Semaphore`] in an [`Rc`]; dropping it gives them back.
#[must_use = "the permit is released at once if not kept"]
#[derive(Debug)]
pub struct OwnedSemaphorePermit {
    sem: Rc<Semaphore>,
    n: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.n
    }

    /// The semaphore the permits came from.
    pub fn semaphore(&self) -> &Rc<Semaphore> {
        &self.sem
    }

    /// Keeps the permits taken for good (the semaphore shrinks).
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.release(self.n);
        }
    }
}
