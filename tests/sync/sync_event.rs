//! Event, Condition and Barrier.

use crate::support;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use coil::spawn;
use coil::sync::{Barrier, Condition, Event, Mutex};
use coil::task::yield_now;
use support::counting_waker;

fn poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let (w, _) = counting_waker();
    f.poll(&mut Context::from_waker(&w))
}

#[test]
fn event_set_wakes_all_and_clear_blocks_again() {
    let ev = Event::new();
    let mut a = Box::pin(ev.wait());
    let (wb, cb) = counting_waker();
    let mut b = Box::pin(ev.wait());
    assert!(poll(a.as_mut()).is_pending());
    assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
    ev.set();
    ev.clear(); // woken waiters still return, as in asyncio
    assert_eq!(cb.wakes.load(Ordering::SeqCst), 1);
    assert!(poll(a.as_mut()).is_ready());
    assert!(poll(b.as_mut()).is_ready());
    let mut c = Box::pin(ev.wait());
    assert!(poll(c.as_mut()).is_pending());
    ev.set();
    assert!(
        Box::pin(ev.wait())
            .as_mut()
            .poll(&mut Context::from_waker(&wb))
            .is_ready()
    );
}

#[test]
fn notify_skips_dropped_waiters_and_passes_on_a_consumed_one() {
    let m = Mutex::new(0);
    let cond = Condition::new();
    let mut a = Box::pin(cond.wait(m.try_lock().unwrap()));
    assert!(poll(a.as_mut()).is_pending());
    let mut b = Box::pin(cond.wait(m.try_lock().unwrap()));
    assert!(poll(b.as_mut()).is_pending());
    let mut c = Box::pin(cond.wait(m.try_lock().unwrap()));
    assert!(poll(c.as_mut()).is_pending());
    assert!(!m.is_locked(), "waiting releases the lock");
    assert_eq!(cond.waiters(), 3);
    drop(a); // queued, not notified: just leaves
    assert_eq!(cond.notify(&m.try_lock().unwrap(), 1), 1); // notifies b
    drop(b); // notified, never ran: the notification passes to c
    assert!(poll(c.as_mut()).is_ready());
    assert_eq!(cond.waiters(), 0);
}

#[test]
fn barrier_dropped_waiter_leaves_the_round() {
    let b = Barrier::new(3);
    let mut x = Box::pin(b.wait());
    let mut y = Box::pin(b.wait());
    assert!(poll(x.as_mut()).is_pending());
    assert!(poll(y.as_mut()).is_pending());
    assert_eq!(b.n_waiting(), 2);
    drop(y);
    assert_eq!(b.n_waiting(), 1);
    let mut z = Box::pin(b.wait());
    assert!(
        poll(z.as_mut()).is_pending(),
        "only two present: no release"
    );
    let mut w = Box::pin(b.wait());
    let Poll::Ready(Ok(r)) = poll(w.as_mut()) else {
        panic!()
    };
    assert!(r.is_leader());
    assert_eq!(r.index(), 2);
    let Poll::Ready(Ok(rx)) = poll(x.as_mut()) else {
        panic!()
    };
    assert!(!rx.is_leader());
    assert_eq!(rx.index(), 0);
    assert!(matches!(poll(z.as_mut()), Poll::Ready(Ok(r)) if r.index() == 1));
    assert_eq!(b.n_waiting(), 0);
}

/// A condition belongs to one mutex (asyncio: a `Condition` and its lock).
/// `notify` takes a guard, so calling it without the lock does not compile
/// (asyncio raises `RuntimeError`, CPython `test_notify`); the guard of
/// another mutex than the waiters' is refused at the caller's line.
#[test]
fn notify_with_another_mutexs_guard_is_refused() {
    let (m, other) = (Mutex::new(0), Mutex::new(0));
    let cond = Condition::new();
    // No waiter yet: nothing to check against, nothing woken.
    assert_eq!(cond.notify(&other.try_lock().unwrap(), 1), 0);
    let mut w = Box::pin(cond.wait(m.try_lock().unwrap()));
    assert!(poll(w.as_mut()).is_pending());
    let g = other.try_lock().unwrap();
    let msg = support::panic_message_of(|| cond.notify(&g, 1));
    assert!(
        msg.contains("other than the one its waiters wait with"),
        "{msg}"
    );
    let msg = support::panic_message_of(|| cond.notify_all(&g));
    assert!(
        msg.contains("other than the one its waiters wait with"),
        "{msg}"
    );
    assert_eq!(cond.waiters(), 1, "the refused calls woke nobody");
    // A second mutex for a wait while the first one's waiters are queued.
    let mut w2 = Box::pin(cond.wait(g));
    let msg = support::panic_message_of(move || poll(w2.as_mut()).is_ready());
    assert!(
        msg.contains("other than the one its queued waiters"),
        "{msg}"
    );
    assert!(!other.is_locked(), "the refused wait released its guard");
    assert_eq!(cond.notify(&m.try_lock().unwrap(), 1), 1);
    assert!(poll(w.as_mut()).is_ready());
    // No waiter queued: the condition may be used with another mutex now.
    let mut w3 = Box::pin(cond.wait(other.try_lock().unwrap()));
    assert!(poll(w3.as_mut()).is_pending());
    assert_eq!(cond.notify_all(&other.try_lock().unwrap()), 1);
    assert!(poll(w3.as_mut()).is_ready());
}

driver_test! {
    /// `wait_timeout` returns the guard when the time runs out, locked
    /// again, so the caller's cleanup holds the lock (CPython
    /// `test_timeout_in_block`: `wait_for(cond.wait(), t)` re-acquires the
    /// lock before raising `TimeoutError`), waiting for a holder that kept
    /// the lock past the deadline; notified in time, it says so.
    fn condition_wait_timeout_returns_the_guard(rt) {
        rt.block_on(async {
            let st = Rc::new((Mutex::new(0), Condition::new()));
            let (m, cond) = &*st;
            let (mut g, timed_out) = cond.wait_timeout(m.lock().await, Duration::from_millis(1)).await;
            assert!(timed_out);
            assert!(m.is_locked());
            *g += 1;
            drop(g);
            assert_eq!(cond.waiters(), 0, "the timed-out waiter left the queue");

            let timed = spawn({
                let st = st.clone();
                async move {
                    let (m, cond) = &*st;
                    let (mut g, timed_out) =
                        cond.wait_timeout(m.lock().await, Duration::from_millis(1)).await;
                    *g += 10; // cleanup, holding the lock
                    (timed_out, *g)
                }
            });
            yield_now().await;
            assert_eq!(cond.waiters(), 1);
            let mut g = m.lock().await;
            // Hold the lock past the waiter's deadline.
            coil::time::sleep(Duration::from_millis(5)).await;
            yield_now().await;
            assert_eq!(cond.waiters(), 0, "timed out");
            assert!(!timed.is_finished(), "the timed-out waiter waits for the lock");
            *g += 100;
            drop(g);
            assert_eq!(timed.await.unwrap(), (true, 111));

            let notified = spawn({
                let st = st.clone();
                async move {
                    let (m, cond) = &*st;
                    let (g, timed_out) =
                        cond.wait_timeout(m.lock().await, Duration::from_secs(3600)).await;
                    (timed_out, *g)
                }
            });
            yield_now().await;
            let mut g = m.lock().await;
            *g = 7;
            assert_eq!(cond.notify(&g, 1), 1);
            drop(g);
            assert_eq!(notified.await.unwrap(), (false, 7));
        });
    }

    fn condition_producer_consumer(rt) {
        let got = rt.block_on(async {
            let st = Rc::new((Mutex::new(Vec::new()), Condition::new()));
            let consumers: Vec<_> = (0..3)
                .map(|_| {
                    let st = st.clone();
                    spawn(async move {
                        let (m, cond) = &*st;
                        let mut mine = Vec::new();
                        loop {
                            let mut g = cond.wait_for(m.lock().await, |v| !v.is_empty()).await;
                            let x: i32 = g.remove(0);
                            drop(g);
                            if x < 0 {
                                return mine;
                            }
                            mine.push(x);
                        }
                    })
                })
                .collect();
            yield_now().await;
            let (m, cond) = &*st;
            for i in 0..30 {
                let mut g = m.lock().await;
                g.push(i);
                cond.notify(&g, 1);
                drop(g);
                if i % 7 == 0 {
                    yield_now().await;
                }
            }
            let mut g = m.lock().await;
            g.extend([-1, -1, -1]);
            cond.notify_all(&g);
            drop(g);
            let mut all = Vec::new();
            for c in consumers {
                all.extend(c.await.unwrap());
            }
            all.sort();
            all
        });
        assert_eq!(got, (0..30).collect::<Vec<_>>());
    }

    fn cancelled_condition_waiter_does_not_swallow_notify(rt) {
        rt.block_on(async {
            let st = Rc::new((Mutex::new(false), Condition::new()));
            let woke = Rc::new(RefCell::new(0));
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let (st, woke) = (st.clone(), woke.clone());
                    spawn(async move {
                        let (m, cond) = &*st;
                        let _g = cond.wait(m.lock().await).await;
                        *woke.borrow_mut() += 1;
                    })
                })
                .collect();
            yield_now().await;
            assert_eq!(st.1.notify(&st.0.lock().await, 1), 1);
            tasks[0].cancel(); // notified, cancelled before it ran
            let mut ok = 0;
            for t in tasks {
                ok += t.await.is_ok() as usize;
            }
            assert_eq!(ok, 1);
            assert_eq!(*woke.borrow(), 1, "task 1 received the passed-on notification");
        });
    }

    fn barrier_rounds_with_one_leader_each(rt) {
        rt.block_on(async {
            let b = Rc::new(Barrier::new(4));
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let b = b.clone();
                    spawn(async move {
                        let mut leads = 0;
                        for _ in 0..5 {
                            leads += b.wait().await.unwrap().is_leader() as usize;
                            yield_now().await;
                        }
                        leads
                    })
                })
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            assert_eq!(total, 5);
        });
    }

    fn event_releases_many_tasks(rt) {
        rt.block_on(async {
            let ev = Rc::new(Event::new());
            let tasks: Vec<_> = (0..100)
                .map(|i| {
                    let ev = ev.clone();
                    spawn(async move {
                        ev.wait().await;
                        i
                    })
                })
                .collect();
            yield_now().await;
            ev.set();
            let mut s = 0;
            for t in tasks {
                s += t.await.unwrap();
            }
            assert_eq!(s, 4950);
        });
    }
}

/// asyncio's `Barrier(0)` raises ValueError (CPython `test_barrier_parties`);
/// coil refuses it at the caller's line instead of treating it as 1.
#[test]
fn barrier_of_zero_parties_is_refused() {
    let msg = support::panic_message_of(|| Barrier::new(0));
    assert!(msg.contains("at least one party"), "{msg}");
    assert_eq!(Barrier::new(1).parties(), 1);
}
