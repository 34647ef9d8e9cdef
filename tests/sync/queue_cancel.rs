//! Dropping a pending `get`/`put` at every point loses no item and no wakeup.

use crate::support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use coil::queue::Queue;
use coil::spawn;
use coil::task::yield_now;
use support::{DropCounter, counting_waker};

fn poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let (w, _) = counting_waker();
    f.poll(&mut Context::from_waker(&w))
}

#[test]
fn dropped_before_first_poll_leaves_no_trace() {
    let q: Queue<u8> = Queue::new(1);
    drop(q.get());
    drop(q.put(1));
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.unfinished_tasks(), 0);
    q.put_nowait(2).unwrap();
    assert_eq!(q.get_nowait(), Ok(2));
}

#[test]
fn queued_getter_dropped_is_skipped() {
    let q = Queue::new(0);
    let (wa, ca) = counting_waker();
    let (wb, cb) = counting_waker();
    let mut a = Box::pin(q.get());
    let mut b = Box::pin(q.get());
    assert!(a.as_mut().poll(&mut Context::from_waker(&wa)).is_pending());
    assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
    drop(a);
    q.put_nowait(7).unwrap();
    assert_eq!(ca.wakes.load(Ordering::SeqCst), 0);
    assert_eq!(cb.wakes.load(Ordering::SeqCst), 1, "the wakeup went to b");
    assert_eq!(
        b.as_mut().poll(&mut Context::from_waker(&wb)),
        Poll::Ready(Ok(7))
    );
}

#[test]
fn notified_getter_dropped_passes_the_wakeup_on() {
    let q = Queue::new(0);
    let (wa, ca) = counting_waker();
    let (wb, cb) = counting_waker();
    let mut a = Box::pin(q.get());
    let mut b = Box::pin(q.get());
    assert!(a.as_mut().poll(&mut Context::from_waker(&wa)).is_pending());
    assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
    q.put_nowait(7).unwrap();
    assert_eq!(ca.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(cb.wakes.load(Ordering::SeqCst), 0);
    drop(a); // woken, never ran: cancelled
    assert_eq!(cb.wakes.load(Ordering::SeqCst), 1, "b inherits the wakeup");
    assert_eq!(
        b.as_mut().poll(&mut Context::from_waker(&wb)),
        Poll::Ready(Ok(7))
    );
    assert_eq!(q.qsize(), 0);
}

#[test]
fn notified_putter_dropped_passes_the_slot_on() {
    let q = Queue::new(1);
    q.put_nowait(0).unwrap();
    let (wa, _) = counting_waker();
    let (wb, cb) = counting_waker();
    let mut a = Box::pin(q.put(1));
    let mut b = Box::pin(q.put(2));
    assert!(a.as_mut().poll(&mut Context::from_waker(&wa)).is_pending());
    assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
    assert_eq!(q.get_nowait(), Ok(0));
    drop(a);
    assert_eq!(cb.wakes.load(Ordering::SeqCst), 1);
    assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_ready());
    assert_eq!(q.get_nowait(), Ok(2));
    assert_eq!(q.unfinished_tasks(), 2, "0 and 2 were put; 1 never was");
}

#[test]
fn a_dropped_put_drops_its_item_and_counts_nothing() {
    let drops = Arc::new(AtomicUsize::new(0));
    let q = Queue::new(1);
    q.put_nowait(DropCounter(drops.clone())).unwrap();
    let mut p = Box::pin(q.put(DropCounter(drops.clone())));
    assert!(poll(p.as_mut()).is_pending());
    drop(p);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.unfinished_tasks(), 1);
}

#[test]
fn cancel_every_getter_at_every_point_loses_no_item() {
    // For k in 0..N: N getters wait, k items arrive, then getter j is dropped
    // at one of three points; every item must still reach a live getter.
    const N: usize = 5;
    for k in 1..=N {
        for victim in 0..N {
            for point in 0..3 {
                let q = Queue::new(0);
                let mut gets: Vec<_> = (0..N).map(|_| Some(Box::pin(q.get()))).collect();
                for g in gets.iter_mut() {
                    assert!(poll(g.as_mut().unwrap().as_mut()).is_pending());
                }
                if point == 0 {
                    gets[victim] = None; // queued, never notified
                }
                for i in 0..k {
                    q.put_nowait(i).unwrap();
                }
                if point == 1 {
                    gets[victim] = None; // maybe notified, never ran
                }
                let mut got = Vec::new();
                for (j, g) in gets.iter_mut().enumerate() {
                    if let Some(f) = g
                        && let Poll::Ready(r) = poll(f.as_mut())
                    {
                        got.push(r.unwrap());
                        *g = None;
                    }
                    if point == 2 && j == victim {
                        *g = None; // dropped after its turn came (or not)
                    }
                }
                // Poll the rest again (wakeups passed along by drops).
                for g in gets.iter_mut() {
                    if let Some(f) = g
                        && let Poll::Ready(r) = poll(f.as_mut())
                    {
                        got.push(r.unwrap());
                        *g = None;
                    }
                }
                // Every live getter that could be served was; what is left
                // stays queued for the next getter.
                let live = gets.iter().filter(|g| g.is_some()).count();
                assert!(
                    live == 0 || q.qsize() == 0,
                    "a live getter waits beside an item"
                );
                while let Ok(v) = q.get_nowait() {
                    got.push(v);
                }
                got.sort();
                let want: Vec<_> = (0..k).collect();
                assert_eq!(got, want, "k={k} victim={victim} point={point}");
            }
        }
    }
}

driver_test! {
    fn cancelled_consumer_tasks_lose_no_item(rt) {
        let got = rt.block_on(async {
            let q = Queue::new(0);
            let consumers: Vec<_> = (0..8)
                .map(|_| {
                    let q = q.clone();
                    spawn(async move { q.get().await.unwrap() })
                })
                .collect();
            yield_now().await; // all eight wait
            for i in 0..8 {
                q.put_nowait(i).unwrap();
            }
            // Cancel every other consumer after they were notified but
            // before they ran.
            for c in consumers.iter().step_by(2) {
                c.cancel();
            }
            let mut got = Vec::new();
            for (i, c) in consumers.into_iter().enumerate() {
                match c.await {
                    Ok(v) => got.push(v),
                    Err(e) => assert!(e.is_cancelled() && i % 2 == 0),
                }
            }
            while let Ok(v) = q.get_nowait() {
                got.push(v);
            }
            got.sort();
            got
        });
        assert_eq!(got, (0..8).collect::<Vec<_>>());
    }

    fn timeout_on_get_then_get_again(rt) {
        rt.block_on(async {
            let q = Queue::new(0);
            let r = coil::time::timeout(std::time::Duration::from_millis(1), q.get()).await;
            assert!(r.is_err());
            q.put_nowait(5).unwrap();
            assert_eq!(q.get().await, Ok(5));
        });
    }
}
