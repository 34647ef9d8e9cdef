//! `Condition`: wait for a notification while holding a [`Mutex`].

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

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
/// Any mutex works with any condition; use one mutex per condition.
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
///     m.lock().await.push(7);
///     cond.notify(1);
///     assert_eq!(consumer.await.unwrap(), 7);
/// });
/// ```
pub struct Condition {
    /// `true` in an entry notified by `notify` (one notification, passed on
    /// if unused); `false` while queued and when notified by `notify_all`.
    waiters: RefCell<WaitList<bool>>,
}

impl Condition {
    /// A condition with no waiters.
    pub const fn new() -> Condition {
        Condition {
            waiters: RefCell::new(WaitList::new()),
        }
    }

    /// Wakes up to `n` waiters (FIFO). Returns how many were woken.
    pub fn notify(&self, n: usize) -> usize {
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

    /// Wakes every waiter. Returns how many were woken.
    pub fn notify_all(&self) -> usize {
        let wakers = self.waiters.borrow_mut().notify_all();
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
    /// sent by whoever takes the lock next is not missed. Cancel safe: if
    /// the future is dropped, the lock is not held, and a notification from
    /// `notify` that it had received (whether or not it had started to lock
    /// the mutex again) goes to the next waiter.
    pub async fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex: &'a Mutex<T> = MutexGuard::mutex(&guard);
        let mut notified = Notified {
            cond: self,
            key: None,
        };
        notified.register(Waker::noop());
        drop(guard);
        let owed = notified.await;
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
            self.cond.notify(1);
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
            self.cond.notify(1);
        }
    }
}
