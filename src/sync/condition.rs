//! `Condition`: wait for a notification while holding a [`Mutex`].
//!
//! Owns the queue of waiting tasks and which mutex they wait with. As in
//! asyncio, a condition belongs to its lock: [`Condition::notify`] takes the
//! guard (notifying without the lock is a compile error, where asyncio raises
//! `RuntimeError`), and [`Condition::wait`] / [`Condition::wait_timeout`]
//! return the guard on every path that returns, so the caller's code after a
//! wait, a timeout included, runs holding the lock. A `wait` future that is
//! dropped (its task cancelled, an enclosing `timeout` elapsed) cannot hand
//! a guard to anyone: the lock is not held afterwards, and the code that
//! runs then is the dropped future's own destructors.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::mutex::{Mutex, MutexGuard};
use super::waiters::{Key, Removed, WaitList, debug_state};

/// A condition variable: `asyncio.Condition`, split the Rust way into the
/// [`Mutex`] holding the data and the `Condition` tasks wait on.
///
/// [`wait`](Condition::wait) takes the guard, releases the lock, waits for
/// [`notify`](Condition::notify) or [`notify_all`](Condition::notify_all),
/// then locks again and returns the guard. Waiters are woken in FIFO order.
///
/// A notification from [`notify`](Condition::notify) is never lost to a
/// cancelled task: a waiter whose `wait` future is dropped after `notify`
/// chose it, at any point before `wait` returns (before it ran, or while it
/// waits to lock the mutex again), passes the notification on to the next
/// waiter, as asyncio does when a notified `wait()` is cancelled. A
/// notification from [`notify_all`](Condition::notify_all) is not passed on:
/// every waiter queued at that time received one (asyncio passes it on
/// anyway, a spurious wakeup). As with every condition variable, re-check
/// the condition after waking, or use [`wait_for`](Condition::wait_for).
///
/// A condition belongs to one mutex at a time, as an `asyncio.Condition`
/// to its lock: [`notify`](Condition::notify) and
/// [`notify_all`](Condition::notify_all) take that mutex's guard, so they
/// cannot be called without the lock, and panic if given the guard of a
/// mutex other than the one the queued waiters use; a `wait` with a second
/// mutex while waiters of the first are queued panics too. With no waiter
/// queued, the next `wait` may use another mutex.
///
/// `wait` always returns the guard, locked again; for a wait with a time
/// limit use [`wait_timeout`](Condition::wait_timeout), which also returns
/// it when the time runs out (asyncio's `wait_for(cond.wait(), t)` re-acquires
/// the lock before raising `TimeoutError`). Wrapping `wait` in
/// [`timeout`](crate::time::timeout) drops it on expiry and the lock is not
/// held afterwards.
///
/// Single-loop: `Send`, not `Sync`.
///
/// ```
/// use std::rc::Rc;
/// use coil::sync::{Condition, Mutex};
///
/// coil::run(async {
///     let state = Rc::new((Mutex::new(Vec::<u32>::new()), Condition::new()));
///     let consumer = coil::spawn({
///         let state = state.clone();
///         async move {
///             let (m, cond) = &*state;
///             let mut items = cond.wait_for(m.lock().await, |v| !v.is_empty()).await;
///             items.pop().unwrap()
///         }
///     });
///     coil::task::yield_now().await;
///     let (m, cond) = &*state;
///     let mut items = m.lock().await;
///     items.push(7);
///     cond.notify(&items, 1);
///     drop(items);
///     assert_eq!(consumer.await.unwrap(), 7);
/// });
/// ```
pub struct Condition {
    /// `true` in an entry notified by `notify` (one notification, passed on
    /// if unused); `false` while queued and when notified by `notify_all`.
    waiters: RefCell<WaitList<bool>>,
    /// The address of the mutex the queued waiters use (meaningful while
    /// `waiters` is not empty).
    mutex: Cell<usize>,
}

/// The identity of a mutex, for checking that a condition's waiters and
/// notifiers use the same one.
fn addr<T: ?Sized>(mutex: &Mutex<T>) -> usize {
    (mutex as *const Mutex<T>).cast::<()>() as usize
}

impl Condition {
    /// A condition with no waiters.
    pub const fn new() -> Condition {
        Condition {
            waiters: RefCell::new(WaitList::new()),
            mutex: Cell::new(0),
        }
    }

    /// Wakes up to `n` waiters (FIFO). Returns how many were woken.
    ///
    /// `guard` is the lock this condition's waiters wait with, held by the
    /// caller (asyncio: `notify` on an un-acquired lock raises
    /// `RuntimeError`). Panics if it locks another mutex than the queued
    /// waiters'.
    #[track_caller]
    pub fn notify<T: ?Sized>(&self, guard: &MutexGuard<'_, T>, n: usize) -> usize {
        self.check_lock(guard);
        self.notify_n(n)
    }

    /// Wakes every waiter. Returns how many were woken. `guard` as for
    /// [`notify`](Condition::notify).
    #[track_caller]
    pub fn notify_all<T: ?Sized>(&self, guard: &MutexGuard<'_, T>) -> usize {
        self.check_lock(guard);
        let wakers = self.waiters.borrow_mut().notify_all();
        let k = wakers.len();
        wakers.into_iter().for_each(Waker::wake);
        k
    }

    /// Panics unless `guard` locks the mutex of the queued waiters (if any).
    #[track_caller]
    fn check_lock<T: ?Sized>(&self, guard: &MutexGuard<'_, T>) {
        if !self.belongs_to(addr(MutexGuard::mutex(guard))) {
            panic!(
                "Condition notified with the guard of a mutex other than the one its waiters wait with (a condition belongs to one mutex)"
            );
        }
    }

    /// Whether the mutex at `m` may be used with this condition now: no
    /// waiter is queued, or they wait with it.
    fn belongs_to(&self, m: usize) -> bool {
        self.waiters.borrow().is_empty() || self.mutex.get() == m
    }

    /// Wakes up to `n` waiters (FIFO); no lock check (a notification passed
    /// on by a waiter that went away).
    fn notify_n(&self, n: usize) -> usize {
        let mut wakers = Vec::new();
        {
            let mut list = self.waiters.borrow_mut();
            for _ in 0..n {
                let Some(owed) = list.front_mut() else { break };
                *owed = true;
                wakers.extend(list.notify_front());
            }
        }
        let k = wakers.len();
        wakers.into_iter().for_each(Waker::wake);
        k
    }

    /// Tasks waiting for a notification.
    pub fn waiters(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Releases the lock, waits for a notification, locks again.
    ///
    /// The waiter is queued before the lock is released, so a notification
    /// sent by whoever takes the lock next is not missed. Returns the guard,
    /// locked again. Cancel safe: if the future is dropped, the lock is not
    /// held, and a notification from `notify` that it had received (whether
    /// or not it had started to lock the mutex again) goes to the next
    /// waiter.
    ///
    /// Panics if waiters using another mutex are queued.
    pub async fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let (mutex, notified) = self.enqueue(guard);
        let owed = notified.await;
        self.relock(mutex, owed).await
    }

    /// Like [`wait`](Condition::wait), giving up on the notification after
    /// `duration`; returns the guard, locked again, in both cases, with
    /// `true` if the time ran out (asyncio's `wait_for(cond.wait(), t)`,
    /// which re-acquires the lock before raising `TimeoutError`; std's
    /// `Condvar::wait_timeout`). The time limit covers the wait for a
    /// notification, not the locking again afterwards. A notification that
    /// arrives as the time runs out counts as received; one from `notify`
    /// that had chosen this waiter is passed on if this wait timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use coil::sync::{Condition, Mutex};
    ///
    /// coil::run(async {
    ///     let (m, cond) = (Mutex::new(0), Condition::new());
    ///     let (mut g, timed_out) = cond.wait_timeout(m.lock().await, Duration::from_millis(1)).await;
    ///     assert!(timed_out);
    ///     *g += 1; // cleanup, holding the lock
    /// });
    /// ```
    pub async fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        duration: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let (mutex, notified) = self.enqueue(guard);
        // On expiry `timeout` drops `notified`, which leaves the queue (and
        // passes on a notification from `notify` it had been given).
        let deadline = crate::time::Instant::now() + duration;
        match crate::time::timeout_dropping(Some(deadline), notified).await {
            Ok(owed) => (self.relock(mutex, owed).await, false),
            Err(_) => (mutex.lock().await, true),
        }
    }

    /// Queues a waiter for a notification, then releases `guard`.
    fn enqueue<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> (&'a Mutex<T>, Notified<'_>) {
        let mutex: &'a Mutex<T> = MutexGuard::mutex(&guard);
        let m = addr(mutex);
        if !self.belongs_to(m) {
            panic!(
                "Condition::wait with a mutex other than the one its queued waiters wait with (a condition belongs to one mutex)"
            );
        }
        self.mutex.set(m);
        let mut notified = Notified {
            cond: self,
            key: None,
        };
        notified.register(Waker::noop());
        drop(guard);
        (mutex, notified)
    }

    /// Locks `mutex` again after a notification (`owed`: from `notify`).
    async fn relock<'a, T: ?Sized>(&self, mutex: &'a Mutex<T>, owed: bool) -> MutexGuard<'a, T> {
        // The notification is used only once the guard is returned: dropped
        // while locking again, this future passes it on (waiters.rs rule 3).
        let pass_on = PassOn { cond: self, owed };
        let guard = mutex.lock().await;
        pass_on.disarm();
        guard
    }

    /// Waits until `pred` holds for the locked value, checking it first and
    /// after every notification; returns the guard with `pred` true.
    pub async fn wait_for<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut pred: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while !pred(&mut guard) {
            guard = self.wait(guard).await;
        }
        guard
    }
}

impl Default for Condition {
    fn default() -> Self {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_state(f, "Condition", &self.waiters, |d, w| {
            d.field("waiters", &w.len());
        })
    }
}

/// One queued wait for a notification.
struct Notified<'a> {
    cond: &'a Condition,
    key: Option<Key>,
}

impl Notified<'_> {
    fn register(&mut self, waker: &Waker) {
        let key = self
            .cond
            .waiters
            .borrow_mut()
            .push_back(false, waker.clone());
        self.key = Some(key);
    }
}

impl Future for Notified<'_> {
    /// Whether the notification came from `notify` (and is passed on if the
    /// waiter goes away before using it).
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let res = self.poll_leaf(cx);
        crate::rt::debug::note(res, || crate::rt::Awaiting::Sync("condition wait"))
    }
}

impl Notified<'_> {
    /// `poll`; a `Pending` is noted in the await tree (`Handle::dump`).
    fn poll_leaf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        // Not queued (never registered): nothing is owed.
        let mut waiters = this.cond.waiters.borrow_mut();
        waiters
            .poll_key(&mut this.key, cx.waker())
            .map(|owed| owed.unwrap_or(false))
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let removed = self.cond.waiters.borrow_mut().remove(key);
        if let Removed::Notified(true) = removed {
            // waiters.rs rule 3: the notification passes to the next waiter.
            self.cond.notify_n(1);
        }
    }
}

/// Held by `wait` between taking a notification and returning the guard:
/// dropped on the way (the `wait` future was dropped while locking the
/// mutex again), it passes a `notify` notification to the next waiter.
struct PassOn<'a> {
    cond: &'a Condition,
    owed: bool,
}

impl PassOn<'_> {
    /// The notification was used: `wait` returns the guard.
    fn disarm(mut self) {
        self.owed = false;
    }
}

impl Drop for PassOn<'_> {
    fn drop(&mut self) {
        if self.owed {
            self.cond.notify_n(1);
        }
    }
}
