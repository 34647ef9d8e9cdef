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

use crate::support;

use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

use coil::queue::Queue;
use coil::spawn;
use coil::sync::{Condition, Event, Mutex, RwLock, Semaphore, mpsc};
use coil::task::yield_now;
use support::Probe;

/// Where a woken waiter's future is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    Unpolled,
    BudgetSpent,
    Relocking,
    LockHanded,
}

/// The points every waiter has (the condition adds two).
const POINTS: [Point; 2] = [Point::Unpolled, Point::BudgetSpent];
const CONDITION_POINTS: [Point; 4] = [
    Point::Unpolled,
    Point::BudgetSpent,
    Point::Relocking,
    Point::LockHanded,
];

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
            Notify::One => assert_eq!(cond.notify(g.as_ref().unwrap(), 1), 1),
            Notify::All => assert_eq!(cond.notify_all(g.as_ref().unwrap()), 3),
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
                assert_eq!(cond.notify(&m.try_lock().unwrap(), 1), 1);
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
        assert_eq!(cond.notify(&g, 1), 1);
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
        let mut g = m.lock().await;
        *g = -1;
        assert_eq!(cond.notify_all(&g), 1);
        drop(g);
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

// ---------------------------------------------------------------- Semaphore

/// How the semaphore case asks for permits.
#[derive(Debug, Clone, Copy)]
enum SemCase {
    /// a, b, c ask for one permit each; one is released.
    One,
    /// a asks for two, b and c for one, d for two; two are released.
    Many,
    /// Like `One` with `acquire_owned`.
    Owned,
    /// a is granted one, then the semaphore closes, then a is dropped.
    Closed,
}

fn semaphore_case(rt: &coil::Runtime, point: Point, case: SemCase) {
    rt.block_on(async {
        let tag = format!("{point:?} {case:?}");
        let sem = Rc::new(Semaphore::new(0));
        match case {
            SemCase::One | SemCase::Closed => {
                let mut a = Probe::new(sem.acquire());
                let mut b = Probe::new(sem.acquire());
                let mut c = Probe::new(sem.acquire());
                for w in [&mut a, &mut b, &mut c] {
                    assert!(w.poll().is_pending());
                }
                sem.add_permits(1);
                assert_eq!(a.wakes(), 1);
                assert_eq!(sem.available_permits(), 0, "{tag}: granted to a");
                if let SemCase::Closed = case {
                    sem.close();
                    drop_at(&mut a, point).await;
                    assert_eq!(sem.available_permits(), 1, "{tag}: a's permit came back");
                    assert!(matches!(b.poll(), Poll::Ready(Err(_))));
                    assert!(matches!(c.poll(), Poll::Ready(Err(_))));
                    return;
                }
                drop_at(&mut a, point).await;
                assert_eq!(b.wakes(), 1, "{tag}: b got a's permit");
                assert_eq!(c.wakes(), 0, "{tag}: one permit, one waiter");
                assert_eq!(sem.available_permits(), 0);
                let Poll::Ready(Ok(pb)) = b.poll() else {
                    panic!("{tag}: b")
                };
                assert!(c.poll().is_pending());
                drop(pb);
                assert_eq!(c.wakes(), 1);
                let Poll::Ready(Ok(pc)) = c.poll() else {
                    panic!("{tag}: c")
                };
                assert_eq!(sem.available_permits(), 0);
                drop(pc);
            }
            SemCase::Owned => {
                let mut a = Probe::new(sem.clone().acquire_owned());
                let mut b = Probe::new(sem.clone().acquire_owned());
                let mut c = Probe::new(sem.clone().acquire_owned());
                for w in [&mut a, &mut b, &mut c] {
                    assert!(w.poll().is_pending());
                }
                sem.add_permits(1);
                assert_eq!(a.wakes(), 1);
                drop_at(&mut a, point).await;
                assert_eq!(b.wakes(), 1, "{tag}: b got a's permit");
                assert_eq!(c.wakes(), 0, "{tag}: one permit, one waiter");
                let Poll::Ready(Ok(pb)) = b.poll() else {
                    panic!("{tag}: b")
                };
                assert_eq!(sem.available_permits(), 0);
                drop(pb);
                let Poll::Ready(Ok(pc)) = c.poll() else {
                    panic!("{tag}: c")
                };
                drop(pc);
            }
            SemCase::Many => {
                let mut a = Probe::new(sem.acquire_many(2));
                let mut b = Probe::new(sem.acquire());
                let mut c = Probe::new(sem.acquire());
                let mut d = Probe::new(sem.acquire_many(2));
                for w in [&mut a, &mut b, &mut c, &mut d] {
                    assert!(w.poll().is_pending());
                }
                sem.add_permits(2);
                assert_eq!((a.wakes(), b.wakes()), (1, 0), "{tag}: FIFO");
                drop_at(&mut a, point).await;
                assert_eq!((b.wakes(), c.wakes()), (1, 1), "{tag}: a's two permits");
                assert_eq!(d.wakes(), 0);
                assert_eq!(sem.available_permits(), 0);
                let Poll::Ready(Ok(pb)) = b.poll() else {
                    panic!("{tag}: b")
                };
                let Poll::Ready(Ok(pc)) = c.poll() else {
                    panic!("{tag}: c")
                };
                drop(pb);
                assert_eq!(d.wakes(), 0, "{tag}: d needs two");
                assert_eq!(sem.available_permits(), 1);
                drop(pc);
                assert_eq!(d.wakes(), 1);
                assert_eq!(sem.available_permits(), 0);
                let Poll::Ready(Ok(pd)) = d.poll() else {
                    panic!("{tag}: d")
                };
                assert_eq!(pd.num_permits(), 2);
                drop(pd);
            }
        }
        let total = match case {
            SemCase::Many => 2,
            _ => 1,
        };
        assert_eq!(
            sem.available_permits(),
            total,
            "{tag}: every permit is back"
        );
    });
}

// ---------------------------------------------------------------- Mutex, RwLock

/// The lock is handed to a on unlock; a is dropped: b gets it, c waits.
fn mutex_case(rt: &coil::Runtime, point: Point) {
    rt.block_on(async {
        let m = Mutex::new(0);
        let g = m.try_lock().unwrap();
        let mut a = Probe::new(m.lock());
        let mut b = Probe::new(m.lock());
        let mut c = Probe::new(m.lock());
        for w in [&mut a, &mut b, &mut c] {
            assert!(w.poll().is_pending());
        }
        drop(g);
        assert_eq!(a.wakes(), 1);
        assert!(m.is_locked(), "handed to a");
        drop_at(&mut a, point).await;
        assert_eq!(
            (b.wakes(), c.wakes()),
            (1, 0),
            "{point:?}: passed to b only"
        );
        assert!(m.is_locked(), "{point:?}: handed to b");
        let Poll::Ready(mut gb) = b.poll() else {
            panic!("{point:?}: b")
        };
        *gb += 1;
        drop(gb);
        let Poll::Ready(gc) = c.poll() else {
            panic!("{point:?}: c")
        };
        assert_eq!(*gc, 1);
        drop(gc);
        assert!(!m.is_locked());
        assert!(m.try_lock().is_ok());
    });
}

/// The read-write cases: who holds the lock, and who is handed it.
#[derive(Debug, Clone, Copy)]
enum RwCase {
    /// A writer unlocks; writer a is handed the lock; readers b, c wait.
    WriterToWriter,
    /// A writer unlocks; readers a, b are handed it; writer c waits.
    WriterToReaders,
    /// A reader unlocks; writer a is handed the lock; reader b waits.
    ReaderToWriter,
}

fn rwlock_case(rt: &coil::Runtime, point: Point, case: RwCase) {
    rt.block_on(async {
        let tag = format!("{point:?} {case:?}");
        let l = RwLock::new(0);
        match case {
            RwCase::WriterToWriter => {
                let w0 = l.try_write().unwrap();
                let mut a = Probe::new(l.write());
                let mut b = Probe::new(l.read());
                let mut c = Probe::new(l.read());
                assert!(a.poll().is_pending());
                assert!(b.poll().is_pending());
                assert!(c.poll().is_pending());
                drop(w0);
                assert_eq!((a.wakes(), b.wakes()), (1, 0));
                drop_at(&mut a, point).await;
                assert_eq!((b.wakes(), c.wakes()), (1, 1), "{tag}: readers get it");
                let (Poll::Ready(rb), Poll::Ready(rc)) = (b.poll(), c.poll()) else {
                    panic!("{tag}: readers")
                };
                assert!(l.try_write().is_err());
                drop((rb, rc));
            }
            RwCase::WriterToReaders => {
                let w0 = l.try_write().unwrap();
                let mut a = Probe::new(l.read());
                let mut b = Probe::new(l.read());
                let mut c = Probe::new(l.write());
                assert!(a.poll().is_pending());
                assert!(b.poll().is_pending());
                assert!(c.poll().is_pending());
                drop(w0);
                assert_eq!((a.wakes(), b.wakes(), c.wakes()), (1, 1, 0));
                drop_at(&mut a, point).await;
                assert_eq!(c.wakes(), 0, "{tag}: b still reads");
                let Poll::Ready(rb) = b.poll() else {
                    panic!("{tag}: b")
                };
                assert!(c.poll().is_pending());
                drop(rb);
                assert_eq!(c.wakes(), 1, "{tag}: the writer is next");
                let Poll::Ready(wc) = c.poll() else {
                    panic!("{tag}: c")
                };
                assert!(l.try_read().is_err());
                drop(wc);
            }
            RwCase::ReaderToWriter => {
                let r0 = l.try_read().unwrap();
                let mut a = Probe::new(l.write());
                let mut b = Probe::new(l.read());
                assert!(a.poll().is_pending());
                assert!(b.poll().is_pending());
                drop(r0);
                assert_eq!((a.wakes(), b.wakes()), (1, 0));
                drop_at(&mut a, point).await;
                assert_eq!(b.wakes(), 1, "{tag}: b reads");
                let Poll::Ready(rb) = b.poll() else {
                    panic!("{tag}: b")
                };
                drop(rb);
            }
        }
        assert!(l.try_write().is_ok(), "{tag}: free at the end");
    });
}

// ---------------------------------------------------------------- Event

/// `set` wakes a and b; a is dropped: b returns (even after `clear`, as in
/// asyncio), and nothing is owed to a later waiter.
fn event_case(rt: &coil::Runtime, point: Point, clear: bool) {
    rt.block_on(async {
        let ev = Event::new();
        let mut a = Probe::new(ev.wait());
        let mut b = Probe::new(ev.wait());
        assert!(a.poll().is_pending());
        assert!(b.poll().is_pending());
        ev.set();
        if clear {
            ev.clear();
        }
        assert_eq!((a.wakes(), b.wakes()), (1, 1));
        drop_at(&mut a, point).await;
        assert!(b.poll().is_ready(), "{point:?}: b");
        let mut c = Probe::new(ev.wait());
        assert_eq!(c.poll().is_ready(), !clear);
        if clear {
            assert_eq!(c.wakes(), 0);
            ev.set();
            assert_eq!(c.wakes(), 1);
            assert!(c.poll().is_ready());
        }
    });
}

// ---------------------------------------------------------------- Queue

/// Getters a, b, c wait; one item is put (a is notified); a is dropped: b
/// takes the item, c still waits.
fn queue_getter_case(rt: &coil::Runtime, point: Point) {
    rt.block_on(async {
        let q = Queue::new(0);
        let mut a = Probe::new(q.get());
        let mut b = Probe::new(q.get());
        let mut c = Probe::new(q.get());
        for w in [&mut a, &mut b, &mut c] {
            assert!(w.poll().is_pending());
        }
        q.put_nowait(7).unwrap();
        assert_eq!(a.wakes(), 1);
        drop_at(&mut a, point).await;
        assert_eq!((b.wakes(), c.wakes()), (1, 0), "{point:?}: b is next");
        assert_eq!(b.poll(), Poll::Ready(Ok(7)));
        assert_eq!((q.qsize(), q.unfinished_tasks()), (0, 1));
        assert!(c.poll().is_pending());
        q.put_nowait(8).unwrap();
        assert_eq!(c.poll(), Poll::Ready(Ok(8)));
        assert_eq!((q.qsize(), q.unfinished_tasks()), (0, 2));
    });
}

/// The queue is full; putters a, b, c wait; one item is taken (a is told
/// there is room); a is dropped: b puts, c still waits, a's item was not put.
fn queue_putter_case(rt: &coil::Runtime, point: Point) {
    rt.block_on(async {
        let q = Queue::new(1);
        q.put_nowait(0).unwrap();
        let mut a = Probe::new(q.put(1));
        let mut b = Probe::new(q.put(2));
        let mut c = Probe::new(q.put(3));
        for w in [&mut a, &mut b, &mut c] {
            assert!(w.poll().is_pending());
        }
        assert_eq!(q.get_nowait(), Ok(0));
        assert_eq!(a.wakes(), 1);
        drop_at(&mut a, point).await;
        assert_eq!((b.wakes(), c.wakes()), (1, 0), "{point:?}: b is next");
        assert!(matches!(b.poll(), Poll::Ready(Ok(()))));
        assert!(c.poll().is_pending());
        assert_eq!((q.qsize(), q.unfinished_tasks()), (1, 2));
        assert_eq!(q.get_nowait(), Ok(2));
        assert_eq!(c.wakes(), 1);
        assert!(matches!(c.poll(), Poll::Ready(Ok(()))));
        assert_eq!(q.get_nowait(), Ok(3));
        assert_eq!((q.qsize(), q.unfinished_tasks()), (0, 3));
    });
}

/// A notified getter whose item was taken by `get_nowait` goes back to the
/// front of the line; dropped there it owes nothing, and the next item goes
/// to b.
fn queue_getter_requeued_then_dropped(rt: &coil::Runtime) {
    rt.block_on(async {
        let q = Queue::new(0);
        let mut a = Probe::new(q.get());
        let mut b = Probe::new(q.get());
        assert!(a.poll().is_pending());
        assert!(b.poll().is_pending());
        q.put_nowait(1).unwrap();
        assert_eq!(q.get_nowait(), Ok(1), "a newcomer takes it first");
        assert!(a.poll().is_pending(), "a is back in line, at the front");
        q.put_nowait(2).unwrap();
        assert_eq!((a.wakes(), b.wakes()), (2, 0), "a kept its turn");
        drop_at(&mut a, Point::Unpolled).await;
        assert_eq!(b.wakes(), 1);
        assert_eq!(b.poll(), Poll::Ready(Ok(2)));
        assert_eq!(q.qsize(), 0);
    });
}

// ---------------------------------------------------------------- mpsc

/// A bounded channel is full; senders a, b, c wait; one value is received
/// (a slot is reserved for a); a is dropped: b sends, c waits, and the
/// reservations add up (a `try_send` fits exactly when a slot is free).
fn mpsc_sender_case(rt: &coil::Runtime, point: Point) {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel(1);
        tx.try_send(0).unwrap();
        let mut a = Probe::new(tx.send(1));
        let mut b = Probe::new(tx.send(2));
        let mut c = Probe::new(tx.send(3));
        for w in [&mut a, &mut b, &mut c] {
            assert!(w.poll().is_pending());
        }
        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(a.wakes(), 1);
        assert!(tx.try_send(9).is_err(), "the slot is a's");
        drop_at(&mut a, point).await;
        assert_eq!((b.wakes(), c.wakes()), (1, 0), "{point:?}: b is next");
        assert!(tx.try_send(9).is_err(), "the slot is b's");
        assert!(matches!(b.poll(), Poll::Ready(Ok(()))));
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(c.wakes(), 1);
        assert!(matches!(c.poll(), Poll::Ready(Ok(()))));
        assert_eq!(rx.try_recv(), Ok(3));
        assert!(rx.is_empty());
        tx.try_send(4).unwrap();
        assert!(tx.try_send(5).is_err(), "capacity 1, nothing reserved");
        assert_eq!(rx.try_recv(), Ok(4));
    });
}

/// A value wakes a pending `recv`; the `recv` future is dropped: the value
/// stays buffered for the next `recv` (the receiver has no one to hand off
/// to, it must just not take the value).
fn mpsc_receiver_case(rt: &coil::Runtime, point: Point) {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut r = Probe::new(rx.recv());
            assert!(r.poll().is_pending());
            tx.send(1).unwrap();
            assert_eq!(r.wakes(), 1);
            drop_at(&mut r, point).await;
        }
        assert_eq!(rx.len(), 1, "{point:?}");
        assert_eq!(rx.recv().await, Some(1));
    });
}

driver_test! {
    fn semaphore_woken_waiter_dropped_at_every_point(rt) {
        for point in POINTS {
            for case in [SemCase::One, SemCase::Many, SemCase::Owned, SemCase::Closed] {
                semaphore_case(rt, point, case);
            }
        }
    }

    fn mutex_woken_waiter_dropped_at_every_point(rt) {
        for point in POINTS {
            mutex_case(rt, point);
        }
    }

    fn rwlock_woken_waiter_dropped_at_every_point(rt) {
        for point in POINTS {
            for case in [RwCase::WriterToWriter, RwCase::WriterToReaders, RwCase::ReaderToWriter] {
                rwlock_case(rt, point, case);
            }
        }
    }

    fn event_woken_waiter_dropped_at_every_point(rt) {
        for point in POINTS {
            event_case(rt, point, false);
            event_case(rt, point, true);
        }
    }

    fn queue_woken_getter_dropped_at_every_point(rt) {
        for point in POINTS {
            queue_getter_case(rt, point);
        }
        queue_getter_requeued_then_dropped(rt);
    }

    fn queue_woken_putter_dropped_at_every_point(rt) {
        for point in POINTS {
            queue_putter_case(rt, point);
        }
    }

    fn mpsc_woken_sender_dropped_at_every_point(rt) {
        for point in POINTS {
            mpsc_sender_case(rt, point);
        }
    }

    fn mpsc_woken_receiver_dropped_at_every_point(rt) {
        for point in POINTS {
            mpsc_receiver_case(rt, point);
        }
    }
}
