//! Semaphore: FIFO grants, many-permit requests, cancellation hand-off, close.

use crate::support;

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use coil::spawn;
use coil::sync::{AcquireError, Semaphore, TryAcquireError};
use coil::task::yield_now;
use support::counting_waker;

fn poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let (w, _) = counting_waker();
    f.poll(&mut Context::from_waker(&w))
}

#[test]
fn permits_come_back_on_drop() {
    let s = Semaphore::new(3);
    let a = s.try_acquire().unwrap();
    let b = s.try_acquire_many(2).unwrap();
    assert_eq!(b.num_permits(), 2);
    assert_eq!(s.available_permits(), 0);
    assert_eq!(s.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(a);
    assert_eq!(s.available_permits(), 1);
    b.forget();
    assert_eq!(s.available_permits(), 1, "forgotten permits are gone");
    s.add_permits(4);
    assert_eq!(s.available_permits(), 5);
}

#[test]
fn big_request_at_the_front_holds_back_small_ones() {
    let s = Semaphore::new(1);
    let held = s.try_acquire().unwrap();
    let mut big = Box::pin(s.acquire_many(2));
    let mut small = Box::pin(s.acquire());
    assert!(poll(big.as_mut()).is_pending());
    assert!(poll(small.as_mut()).is_pending());
    s.add_permits(1); // 1 free, big needs 2: nobody passes
    assert!(poll(small.as_mut()).is_pending());
    assert_eq!(
        s.try_acquire().unwrap_err(),
        TryAcquireError::NoPermits,
        "fair: waiters first"
    );
    drop(held); // 2 free
    let Poll::Ready(Ok(bp)) = poll(big.as_mut()) else {
        panic!("big must be granted")
    };
    assert!(poll(small.as_mut()).is_pending());
    drop(bp);
    assert!(poll(small.as_mut()).is_ready());
}

#[test]
fn dropping_the_front_waiter_lets_the_next_through() {
    let s = Semaphore::new(1);
    let mut big = Box::pin(s.acquire_many(5));
    let (w, c) = counting_waker();
    let mut small = Box::pin(s.acquire());
    assert!(poll(big.as_mut()).is_pending());
    assert!(
        small
            .as_mut()
            .poll(&mut Context::from_waker(&w))
            .is_pending()
    );
    drop(big);
    assert_eq!(c.wakes.load(Ordering::SeqCst), 1);
    assert!(poll(small.as_mut()).is_ready());
}

#[test]
fn granted_but_dropped_permits_pass_on() {
    let s = Semaphore::new(1);
    let p = s.try_acquire().unwrap();
    let mut a = Box::pin(s.acquire());
    let (wb, cb) = counting_waker();
    let mut b = Box::pin(s.acquire());
    assert!(poll(a.as_mut()).is_pending());
    assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
    drop(p); // granted to a
    assert_eq!(s.available_permits(), 0);
    drop(a); // a never ran
    assert_eq!(
        cb.wakes.load(Ordering::SeqCst),
        1,
        "b was handed the permit"
    );
    let Poll::Ready(Ok(pb)) = poll(b.as_mut()) else {
        panic!()
    };
    drop(pb);
    assert_eq!(s.available_permits(), 1);
}

#[test]
fn close_fails_waiters_and_new_acquires() {
    let s = Semaphore::new(0);
    let mut a = Box::pin(s.acquire());
    assert!(poll(a.as_mut()).is_pending());
    s.close();
    assert!(s.is_closed());
    assert!(matches!(
        poll(a.as_mut()),
        Poll::Ready(Err(AcquireError { .. }))
    ));
    assert_eq!(s.try_acquire().unwrap_err(), TryAcquireError::Closed);
    let mut b = Box::pin(s.acquire());
    assert!(matches!(poll(b.as_mut()), Poll::Ready(Err(_))));
    assert_eq!(
        AcquireError::clone(&poll_err(&s)).to_string(),
        "semaphore closed"
    );
}

fn poll_err(s: &Semaphore) -> AcquireError {
    let mut f = Box::pin(s.acquire());
    match poll(f.as_mut()) {
        Poll::Ready(Err(e)) => e,
        _ => panic!("closed"),
    }
}

driver_test! {
    fn fifo_order_of_grants(rt) {
        let order = rt.block_on(async {
            let s = Rc::new(Semaphore::new(1));
            let log = Rc::new(std::cell::RefCell::new(Vec::new()));
            let first = s.clone().acquire_owned().await.unwrap();
            let tasks: Vec<_> = (0..5)
                .map(|i| {
                    let (s, log) = (s.clone(), log.clone());
                    spawn(async move {
                        let _p = s.acquire().await.unwrap();
                        log.borrow_mut().push(i);
                        yield_now().await;
                    })
                })
                .collect();
            yield_now().await;
            drop(first);
            for t in tasks {
                t.await.unwrap();
            }
            log.take()
        });
        assert_eq!(order, [0, 1, 2, 3, 4]);
    }

    fn owned_permits_move_into_tasks(rt) {
        rt.block_on(async {
            let s = Rc::new(Semaphore::new(2));
            let mut tasks = Vec::new();
            for _ in 0..6 {
                let p = s.clone().acquire_owned().await.unwrap();
                tasks.push(spawn(async move {
                    yield_now().await;
                    assert!(p.semaphore().available_permits() <= 1);
                    drop(p);
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(s.available_permits(), 2);
        });
    }

    fn cancelled_acquiring_tasks_lose_no_permit(rt) {
        rt.block_on(async {
            let s = Rc::new(Semaphore::new(0));
            let tasks: Vec<_> = (0..10)
                .map(|_| {
                    let s = s.clone();
                    spawn(async move {
                        let _p = s.acquire().await.unwrap();
                        yield_now().await;
                    })
                })
                .collect();
            yield_now().await;
            s.add_permits(3); // granted to tasks 0..3, which have not run
            for t in &tasks[..5] {
                t.cancel();
            }
            for t in tasks {
                let _ = t.await;
            }
            assert_eq!(s.available_permits(), 3);
        });
    }
}

/// CPython `test_acquire_fifo_order_2`: permits released while tasks wait go
/// to them in order, and a task that releases and re-acquires queues behind
/// a waiter that was granted a permit but has not run yet (no barging):
/// the appends come 1, 2, 3, 4.
#[test]
fn acquire_fifo_order_no_barging() {
    use std::cell::RefCell;
    coil::run(async {
        let sem = Rc::new(Semaphore::new(1));
        let result = Rc::new(RefCell::new(Vec::new()));
        let c1 = {
            let (sem, result) = (sem.clone(), result.clone());
            spawn(async move {
                sem.acquire().await.unwrap().forget();
                result.borrow_mut().push(1);
            })
        };
        let c2 = {
            let (sem, result) = (sem.clone(), result.clone());
            spawn(async move {
                let p = sem.acquire().await.unwrap();
                result.borrow_mut().push(2);
                drop(p);
                sem.acquire().await.unwrap().forget();
                result.borrow_mut().push(4);
            })
        };
        let c3 = {
            let (sem, result) = (sem.clone(), result.clone());
            spawn(async move {
                sem.acquire().await.unwrap().forget();
                result.borrow_mut().push(3);
            })
        };
        yield_now().await;
        sem.add_permits(1);
        sem.add_permits(1);
        c1.await.unwrap();
        c2.await.unwrap();
        c3.await.unwrap();
        assert_eq!(*result.borrow(), [1, 2, 3, 4]);
    });
}
