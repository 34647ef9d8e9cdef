//! Event, Condition and Barrier.

use crate::support;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

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
    assert_eq!(cond.notify(1), 1); // notifies b
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
    let Poll::Ready(r) = poll(w.as_mut()) else {
        panic!()
    };
    assert!(r.is_leader());
    let Poll::Ready(rx) = poll(x.as_mut()) else {
        panic!()
    };
    assert!(!rx.is_leader());
    assert!(poll(z.as_mut()).is_ready());
    assert_eq!(b.n_waiting(), 0);
}

driver_test! {
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
                m.lock().await.push(i);
                cond.notify(1);
                if i % 7 == 0 {
                    yield_now().await;
                }
            }
            m.lock().await.extend([-1, -1, -1]);
            cond.notify_all();
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
            assert_eq!(st.1.notify(1), 1);
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
                            leads += b.wait().await.is_leader() as usize;
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
