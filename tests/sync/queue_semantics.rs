//! Queue, LifoQueue, PriorityQueue: asyncio's semantics, errors, task_done/join.

use crate::support;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use coil::queue::{GetNowaitError, LifoQueue, PriorityQueue, PutNowaitError, Queue, QueueShutDown};
use coil::spawn;
use coil::task::yield_now;
use support::counting_waker;

fn poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let (w, _) = counting_waker();
    f.poll(&mut Context::from_waker(&w))
}

#[test]
fn fifo_lifo_priority_orders() {
    let q = Queue::new(0);
    let l = LifoQueue::new(0);
    let p = PriorityQueue::new(0);
    for x in [5, 1, 4, 2, 3] {
        q.put_nowait(x).unwrap();
        l.put_nowait(x).unwrap();
        p.put_nowait(x).unwrap();
    }
    let drain = |f: &dyn Fn() -> Result<i32, GetNowaitError>| {
        std::iter::from_fn(|| f().ok()).collect::<Vec<_>>()
    };
    assert_eq!(drain(&|| q.get_nowait()), [5, 1, 4, 2, 3]);
    assert_eq!(drain(&|| l.get_nowait()), [3, 2, 4, 1, 5]);
    assert_eq!(drain(&|| p.get_nowait()), [1, 2, 3, 4, 5]);
}

#[test]
fn nowait_errors_give_the_item_back() {
    let q = Queue::new(1);
    assert_eq!(q.maxsize(), 1);
    assert!(q.empty() && !q.full());
    q.put_nowait("a").unwrap();
    assert!(q.full());
    let e = q.put_nowait("b").unwrap_err();
    assert!(e.is_full());
    assert_eq!(e.to_string(), "the queue is full");
    assert_eq!(e.into_inner(), "b");
    assert_eq!(q.get_nowait(), Ok("a"));
    assert_eq!(q.get_nowait(), Err(GetNowaitError::Empty));
    q.shutdown(false);
    assert!(matches!(
        q.put_nowait("c"),
        Err(PutNowaitError::ShutDown("c"))
    ));
    assert_eq!(q.get_nowait(), Err(GetNowaitError::ShutDown));
    let e: Box<dyn std::error::Error> = Box::new(QueueShutDown(()));
    assert_eq!(e.to_string(), "the queue was shut down");
}

#[test]
fn unbounded_is_never_full() {
    let q = Queue::new(0);
    for i in 0..10_000 {
        q.put_nowait(i).unwrap();
    }
    assert!(!q.full());
    assert_eq!(q.qsize(), 10_000);
}

/// asyncio: `task_done()` called too many times raises ValueError (CPython
/// `test_task_done_underflow`); coil returns an error and changes nothing.
#[test]
fn task_done_too_often_is_an_error() {
    let q: Queue<u8> = Queue::new(0);
    assert_eq!(
        q.task_done(),
        Err(coil::queue::TaskDoneError),
        "nothing was put"
    );
    q.put_nowait(1).unwrap();
    q.get_nowait().unwrap();
    assert_eq!(q.task_done(), Ok(()));
    let err = q.task_done().unwrap_err();
    assert!(
        err.to_string()
            .contains("task_done() called more times than items were put"),
        "{err}"
    );
    assert_eq!(q.unfinished_tasks(), 0, "the failed call changed nothing");
    q.put_nowait(2).unwrap();
    assert_eq!(q.unfinished_tasks(), 1);
    let _: &dyn std::error::Error = &err;
}

#[test]
fn join_waits_for_every_task_done() {
    let q = Queue::new(0);
    let mut join = pin!(q.join());
    assert!(
        poll(join.as_mut()).is_ready(),
        "nothing put: join returns at once"
    );
    q.put_nowait(1).unwrap();
    q.put_nowait(2).unwrap();
    let mut join = pin!(q.join());
    assert!(poll(join.as_mut()).is_pending());
    q.get_nowait().unwrap();
    q.task_done().unwrap();
    assert!(poll(join.as_mut()).is_pending());
    q.get_nowait().unwrap();
    q.task_done().unwrap();
    assert!(poll(join.as_mut()).is_ready());
    assert_eq!(q.unfinished_tasks(), 0);
}

#[test]
fn getters_are_served_fifo() {
    let q = Queue::new(0);
    let mut a = pin!(q.get());
    let mut b = pin!(q.get());
    let mut c = pin!(q.get());
    assert!(poll(a.as_mut()).is_pending());
    assert!(poll(b.as_mut()).is_pending());
    assert!(poll(c.as_mut()).is_pending());
    q.put_nowait(1).unwrap();
    q.put_nowait(2).unwrap();
    // Only the first two were notified; c still waits even if polled.
    assert!(poll(c.as_mut()).is_pending());
    assert_eq!(
        poll(b.as_mut()),
        Poll::Ready(Ok(1)),
        "b runs first and takes the head"
    );
    assert_eq!(poll(a.as_mut()), Poll::Ready(Ok(2)));
    q.put_nowait(3).unwrap();
    assert_eq!(poll(c.as_mut()), Poll::Ready(Ok(3)));
}

#[test]
fn putters_are_served_fifo() {
    let q = Queue::new(1);
    q.put_nowait(0).unwrap();
    let mut a = pin!(q.put(1));
    let mut b = pin!(q.put(2));
    assert!(poll(a.as_mut()).is_pending());
    assert!(poll(b.as_mut()).is_pending());
    assert_eq!(q.get_nowait(), Ok(0));
    assert!(poll(b.as_mut()).is_pending(), "b is behind a");
    assert!(poll(a.as_mut()).is_ready());
    assert_eq!(q.get_nowait(), Ok(1));
    assert!(poll(b.as_mut()).is_ready());
    assert_eq!(q.get_nowait(), Ok(2));
}

#[test]
fn a_stolen_item_keeps_the_getters_turn() {
    let q = Queue::new(0);
    let mut a = pin!(q.get());
    let mut b = pin!(q.get());
    assert!(poll(a.as_mut()).is_pending());
    assert!(poll(b.as_mut()).is_pending());
    q.put_nowait(1).unwrap(); // notifies a
    assert_eq!(q.get_nowait(), Ok(1)); // but someone else takes it
    assert!(poll(a.as_mut()).is_pending()); // a goes back to the front
    q.put_nowait(2).unwrap();
    assert!(poll(b.as_mut()).is_pending(), "b must not overtake a");
    assert_eq!(poll(a.as_mut()), Poll::Ready(Ok(2)));
}

driver_test! {
    fn put_waits_while_full_and_get_while_empty(rt) {
        let log = rt.block_on(async {
            let q = Queue::new(2);
            let prod = spawn({
                let q = q.clone();
                async move {
                    for i in 0..6 {
                        q.put(i).await.unwrap();
                        assert!(q.qsize() <= 2);
                    }
                }
            });
            let mut got = Vec::new();
            for _ in 0..6 {
                got.push(q.get().await.unwrap());
                yield_now().await;
            }
            prod.await.unwrap();
            got
        });
        assert_eq!(log, [0, 1, 2, 3, 4, 5]);
    }

    fn priority_queue_with_tuples(rt) {
        let out = rt.block_on(async {
            let q = PriorityQueue::new(0);
            for (p, s) in [(2, "b"), (0, "z"), (1, "a"), (0, "y")] {
                q.put((p, s)).await.unwrap();
            }
            let mut v = Vec::new();
            while let Ok(x) = q.get_nowait() {
                v.push(x);
            }
            v
        });
        assert_eq!(out, [(0, "y"), (0, "z"), (1, "a"), (2, "b")]);
    }

    fn many_items_through_a_small_queue_yield_to_others(rt) {
        let n = support::scaled(100_000) as u64;
        let sum = rt.block_on(async move {
            let q = Queue::new(16);
            let c = spawn({
                let q = q.clone();
                async move {
                    let mut s = 0u64;
                    while let Ok(x) = q.get().await {
                        s += x;
                    }
                    s
                }
            });
            for i in 0..n {
                q.put(i).await.unwrap();
            }
            q.shutdown(false);
            c.await.unwrap()
        });
        assert_eq!(sum, n * (n - 1) / 2);
    }
}
