//! A hand-off given to a waiter whose future is then dropped reaches the next
//! waiter: a `Condition` notification, `Semaphore` permits, the `Mutex` and
//! `RwLock` lock, a `Queue` item or free slot, an `mpsc` slot, an `Event`
//! broadcast. Each test wakes a waiter (notify, release, unlock, put, get,
//! recv, set), drops the woken waiter's future at every point it can be
//! dropped, and checks that the next waiter is woken and served and that the
//! counts (free permits, queue length) are exact afterwards.
//!
//! The points ([`Point`]) at which a woken waiter is dropped:
//! * `Unpolled`: before it is polled again;
//! * `BudgetSpent`: after one poll that answered `Pending` because the task's
//!   cooperative budget was spent, so it took nothing of what it was handed;
//! * for `Condition::wait`, which locks the mutex again after the
//!   notification: `Relocking` (it saw the notification and waits for the
//!   lock) and `LockHanded` (the lock was then handed to it, not yet polled).
//!
//! Everything is driven by hand (futures polled with counting wakers inside
//! `block_on`, or tasks and `yield_now`): no sleeps, no timing.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use coil::spawn;
use coil::sync::{Condition, Mutex};
use coil::task::{consume_budget, yield_now};
use support::{CountingWaker, counting_waker};

/// Where a woken waiter's future is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    Unpolled,
    BudgetSpent,
    Relocking,
    LockHanded,
}

const CONDITION_POINTS: [Point; 4] = [
    Point::Unpolled,
    Point::BudgetSpent,
    Point::Relocking,
    Point::LockHanded,
];

/// A future polled by hand with its own counting waker.
struct Probe<F: Future> {
    fut: Option<Pin<Box<F>>>,
    waker: Waker,
    count: Arc<CountingWaker>,
}

impl<F: Future> Probe<F> {
    fn new(f: F) -> Self {
        let (waker, count) = counting_waker();
        Probe {
            fut: Some(Box::pin(f)),
            waker,
            count,
        }
    }

    fn poll(&mut self) -> Poll<F::Output> {
        let fut = self.fut.as_mut().expect("polled after drop");
        let r = fut.as_mut().poll(&mut Context::from_waker(&self.waker));
        if r.is_ready() {
            self.fut = None;
        }
        r
    }

    /// Polls once with the task's cooperative budget spent (must be called
    /// inside `block_on`): a leaf that checks the budget answers `Pending`.
    /// The poll's budget wake is not counted.
    async fn poll_with_budget_spent(&mut self) -> Poll<F::Output> {
        let r = std::future::poll_fn(|cx| {
            let mut spent = 0;
            while Pin::new(&mut consume_budget()).poll(cx).is_ready() {
                spent += 1;
                assert!(spent <= 10_000, "the budget never ran out");
            }
            let before = self.wakes();
            let r = self.poll();
            self.count.wakes.store(before, Ordering::SeqCst);
            Poll::Ready(r)
        })
        .await;
        // Start the next step with a full budget.
        yield_now().await;
        r
    }

    fn wakes(&self) -> usize {
        self.count.wakes.load(Ordering::SeqCst)
    }

    /// Drops the future (cancels the waiter).
    fn cancel(&mut self) {
        assert!(self.fut.take().is_some(), "already gone");
    }
}

/// Brings the woken waiter `victim` to `point` (its wake already happened)
/// and drops it (the condition's own points are handled by its test).
async fn drop_at<F: Future>(victim: &mut Probe<F>, point: Point) {
    match point {
        Point::Unpolled => {}
        Point::BudgetSpent => {
            assert!(
                victim.poll_with_budget_spent().await.is_pending(),
                "{point:?}: the spent budget must stop it"
            );
        }
        Point::Relocking | Point::LockHanded => unreachable!("condition only"),
    }
    victim.cancel();
}

// ---------------------------------------------------------------- Condition

#[derive(Debug, Clone, Copy)]
enum Notify {
    One,
    All,
}

/// Waiters a, b, c wait; the producer, holding the lock, sets the state and
/// notifies (one, or all); a is dropped at `point`. With `notify(1)`, b gets
/// the notification a did not use and c stays queued; with `notify_all`, b
/// and c were notified anyway. Everyone notified returns with the lock.
fn condition_case(rt: &coil::Runtime, point: Point, how: Notify) {
    rt.block_on(async {
        let m = Mutex::new(0u32);
        let cond = Condition::new();
        let mut a = Probe::new(cond.wait(m.try_lock().unwrap()));
        assert!(a.poll().is_pending());
        let mut b = Probe::new(cond.wait(m.try_lock().unwrap()));
        assert!(b.poll().is_pending());
        let mut c = Probe::new(cond.wait(m.try_lock().unwrap()));
        assert!(c.poll().is_pending());
        assert_eq!(cond.waiters(), 3);

        let mut g = Some(m.try_lock().unwrap());
        **g.as_mut().unwrap() += 1;
        match how {
            Notify::One => assert_eq!(cond.notify(1), 1),
            Notify::All => assert_eq!(cond.notify_all(), 3),
        }
        assert_eq!(a.wakes(), 1);
        match point {
            Point::Unpolled | Point::BudgetSpent => {
                if point == Point::BudgetSpent {
                    g = None; // the lock is free: only the budget stops a
                }
                drop_at(&mut a, point).await;
            }
            Point::Relocking => {
                assert!(a.poll().is_pending(), "a waits for the lock we hold");
                a.cancel();
            }
            Point::LockHanded => {
                assert!(a.poll().is_pending(), "a waits for the lock we hold");
                g = None; // handed to a
                assert_eq!(a.wakes(), 2, "the lock was handed to a");
                assert!(m.is_locked(), "a owns the lock now");
                a.cancel();
            }
        }
        drop(g);
        let tag = format!("{point:?} {how:?}");
        assert_eq!(b.wakes(), 1, "{tag}: b received the notification");
        let Poll::Ready(gb) = b.poll() else {
            panic!("{tag}: b was woken but cannot finish")
        };
        assert_eq!(*gb, 1);
        drop(gb);
        match how {
            Notify::One => {
                assert_eq!(c.wakes(), 0, "{tag}: one notification, one waiter");
                assert_eq!(cond.waiters(), 1);
                assert!(c.poll().is_pending());
                assert_eq!(cond.notify(1), 1);
            }
            Notify::All => assert_eq!(cond.waiters(), 0),
        }
        assert!(c.poll().is_ready(), "{tag}: c");
        assert_eq!(cond.waiters(), 0);
        assert!(!m.is_locked(), "{tag}: the lock is free at the end");
    });
}

/// CPython's `test_cancelled_wakeup` (`relock = false`: cancelled after
/// `notify(1)`, before it ran) and `test_cancelled_wakeup_relock` (`true`:
/// cancelled while it waits to lock again), with tasks. CPython ends with
/// `wait_for(state == 0)` under a 10 ms timeout; here the producer releases
/// the lock and lets the loop run a bounded number of ticks.
fn cpython_cancelled_wakeup(rt: &coil::Runtime, relock: bool) {
    rt.block_on(async {
        let st = Rc::new((Mutex::new(0i32), Condition::new()));
        let consumer = |st: Rc<(Mutex<i32>, Condition)>| async move {
            let (m, cond) = &*st;
            let mut g = m.lock().await;
            loop {
                g = cond.wait_for(g, |s| *s != 0).await;
                if *g < 0 {
                    return;
                }
                *g -= 1;
            }
        };
        let c0 = spawn(consumer(st.clone()));
        let c1 = spawn(consumer(st.clone()));
        yield_now().await; // both consumers wait
        let (m, cond) = &*st;
        assert_eq!(cond.waiters(), 2);
        let mut g = m.lock().await;
        *g += 1;
        assert_eq!(cond.notify(1), 1);
        if relock {
            // c0 runs, takes the notification and waits for our lock.
            yield_now().await;
            assert_eq!(cond.waiters(), 1, "c0 left the condition");
            assert!(!c0.is_finished());
        }
        assert!(c0.cancel());
        drop(g);
        let mut ticks = 0;
        while !(*m.lock().await == 0 && cond.waiters() == 1 && c0.is_finished()) {
            ticks += 1;
            assert!(ticks < 16, "the notification did not reach c1");
            yield_now().await;
        }
        assert!(c0.await.unwrap_err().is_cancelled());
        *m.lock().await = -1;
        assert_eq!(cond.notify_all(), 1);
        c1.await.unwrap();
        assert_eq!(*m.lock().await, -1);
    });
}

driver_test! {
    fn condition_woken_waiter_dropped_at_every_point(rt) {
        for point in CONDITION_POINTS {
            for how in [Notify::One, Notify::All] {
                condition_case(rt, point, how);
            }
        }
    }

    fn condition_cpython_cancelled_wakeup(rt) {
        cpython_cancelled_wakeup(rt, false);
    }

    fn condition_cpython_cancelled_wakeup_relock(rt) {
        cpython_cancelled_wakeup(rt, true);
    }
}
