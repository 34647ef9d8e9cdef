//! Mutex and RwLock: fairness, guards, cancellation.

use crate::support;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll};

use coil::spawn;
use coil::sync::{Mutex, RwLock};
use coil::task::yield_now;
use support::counting_waker;

fn poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let (w, _) = counting_waker();
    f.poll(&mut Context::from_waker(&w))
}

#[test]
fn try_lock_and_guard_release() {
    let m = Mutex::new(1);
    {
        let mut g = m.try_lock().unwrap();
        *g += 1;
        assert!(m.is_locked());
        assert!(m.try_lock().is_err());
    }
    assert!(!m.is_locked());
    assert_eq!(m.into_inner(), 2);
}

#[test]
fn unlock_hands_the_lock_to_the_first_waiter() {
    let m = Mutex::new(());
    let g = m.try_lock().unwrap();
    let mut a = Box::pin(m.lock());
    assert!(poll(a.as_mut()).is_pending());
    drop(g);
    assert!(
        m.try_lock().is_err(),
        "handed to a, not free for a newcomer"
    );
    assert!(poll(a.as_mut()).is_ready());
}

#[test]
fn dropped_lock_future_at_every_point_never_loses_the_lock() {
    for point in 0..3 {
        let m = Mutex::new(0);
        let g = m.try_lock().unwrap();
        let mut a = Box::pin(m.lock());
        let mut b = Box::pin(m.lock());
        if point > 0 {
            assert!(poll(a.as_mut()).is_pending());
        }
        assert!(poll(b.as_mut()).is_pending());
        if point == 1 {
            drop(a);
            drop(g);
        } else {
            drop(g); // a (if queued) was handed the lock
            drop(a);
        }
        let Poll::Ready(mut gb) = poll(b.as_mut()) else {
            panic!("point {point}: b starved")
        };
        *gb += 1;
        drop(gb);
        assert!(!m.is_locked());
    }
}

#[test]
fn waiting_writer_blocks_new_readers() {
    let l = RwLock::new(0);
    let r1 = l.try_read().unwrap();
    let mut w = Box::pin(l.write());
    assert!(poll(w.as_mut()).is_pending());
    assert!(
        l.try_read().is_err(),
        "a writer waits: new readers queue behind it"
    );
    let mut r2 = Box::pin(l.read());
    assert!(poll(r2.as_mut()).is_pending());
    drop(r1);
    let Poll::Ready(mut wg) = poll(w.as_mut()) else {
        panic!()
    };
    *wg = 5;
    assert!(poll(r2.as_mut()).is_pending());
    drop(wg);
    let Poll::Ready(rg) = poll(r2.as_mut()) else {
        panic!()
    };
    assert_eq!(*rg, 5);
}

#[test]
fn readers_behind_a_writer_enter_together() {
    let l = RwLock::new(());
    let w0 = l.try_write().unwrap();
    let mut rs: Vec<_> = (0..3).map(|_| Box::pin(l.read())).collect();
    let mut w1 = Box::pin(l.write());
    for r in rs.iter_mut() {
        assert!(poll(r.as_mut()).is_pending());
    }
    assert!(poll(w1.as_mut()).is_pending());
    drop(w0);
    let guards: Vec<_> = rs
        .iter_mut()
        .map(|r| match poll(r.as_mut()) {
            Poll::Ready(g) => g,
            Poll::Pending => panic!("readers enter together"),
        })
        .collect();
    assert!(poll(w1.as_mut()).is_pending());
    drop(guards);
    assert!(poll(w1.as_mut()).is_ready());
}

#[test]
fn dropped_write_request_lets_readers_in() {
    let l = RwLock::new(());
    let r = l.try_read().unwrap();
    let mut w = Box::pin(l.write());
    assert!(poll(w.as_mut()).is_pending());
    let mut r2 = Box::pin(l.read());
    assert!(poll(r2.as_mut()).is_pending());
    drop(w);
    assert!(poll(r2.as_mut()).is_ready());
    drop(r);
}

driver_test! {
    fn lock_is_fair_fifo_across_tasks(rt) {
        let order = rt.block_on(async {
            let m = Rc::new(Mutex::new(Vec::new()));
            let g = m.lock().await;
            let tasks: Vec<_> = (0..5)
                .map(|i| {
                    let m = m.clone();
                    spawn(async move {
                        for _ in 0..2 {
                            m.lock().await.push(i);
                            yield_now().await;
                        }
                    })
                })
                .collect();
            yield_now().await;
            drop(g);
            for t in tasks {
                t.await.unwrap();
            }
            m.lock().await.clone()
        });
        assert_eq!(order, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    }

    fn guard_held_across_await_excludes_others(rt) {
        rt.block_on(async {
            let m = Rc::new(Mutex::new(0));
            let inside = Rc::new(RefCell::new(0));
            let tasks: Vec<_> = (0..20)
                .map(|_| {
                    let (m, inside) = (m.clone(), inside.clone());
                    spawn(async move {
                        let mut g = m.lock().await;
                        *inside.borrow_mut() += 1;
                        assert_eq!(*inside.borrow(), 1);
                        yield_now().await;
                        *g += 1;
                        *inside.borrow_mut() -= 1;
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(*m.lock().await, 20);
        });
    }

    fn cancelled_lockers_do_not_wedge_the_mutex(rt) {
        rt.block_on(async {
            let m = Rc::new(Mutex::new(0));
            let g = m.lock().await;
            let tasks: Vec<_> = (0..6)
                .map(|_| {
                    let m = m.clone();
                    spawn(async move { *m.lock().await += 1 })
                })
                .collect();
            yield_now().await;
            drop(g); // handed to task 0, which has not run
            tasks[0].cancel();
            tasks[3].cancel();
            let mut ok = 0;
            for t in tasks {
                ok += t.await.is_ok() as i32;
            }
            assert_eq!(ok, 4);
            assert_eq!(*m.lock().await, 4);
        });
    }
}
