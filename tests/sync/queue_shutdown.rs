//! `shutdown(immediate)` with asyncio 3.13's rules.

use crate::support;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use coil::queue::{GetNowaitError, PutNowaitError, Queue, QueueShutDown};
use coil::spawn;
use coil::task::yield_now;
use support::{DropCounter, counting_waker};

fn poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let (w, _) = counting_waker();
    f.poll(&mut Context::from_waker(&w))
}

#[test]
fn graceful_shutdown_lets_getters_drain_then_fails() {
    let q = Queue::new(0);
    q.put_nowait(1).unwrap();
    q.put_nowait(2).unwrap();
    q.shutdown(false);
    assert!(q.is_shutdown());
    assert!(matches!(q.put_nowait(3), Err(PutNowaitError::ShutDown(3))));
    let mut put = pin!(q.put(4));
    assert!(matches!(
        poll(put.as_mut()),
        Poll::Ready(Err(QueueShutDown(4)))
    ));
    let mut g = pin!(q.get());
    assert_eq!(poll(g.as_mut()), Poll::Ready(Ok(1)));
    assert_eq!(q.get_nowait(), Ok(2));
    let mut g = pin!(q.get());
    assert_eq!(poll(g.as_mut()), Poll::Ready(Err(QueueShutDown(()))));
    assert_eq!(q.get_nowait(), Err(GetNowaitError::ShutDown));
    assert_eq!(
        q.unfinished_tasks(),
        2,
        "graceful shutdown does not mark items done"
    );
}

#[test]
fn immediate_shutdown_drains_and_unblocks_join() {
    let drops = Arc::new(AtomicUsize::new(0));
    let q = Queue::new(0);
    for _ in 0..3 {
        q.put_nowait(DropCounter(drops.clone())).unwrap();
    }
    drop(q.get_nowait().unwrap()); // taken, not yet done
    let mut join = pin!(q.join());
    assert!(poll(join.as_mut()).is_pending());
    q.shutdown(true);
    assert_eq!(drops.load(Ordering::SeqCst), 3, "queued items are dropped");
    assert_eq!(q.qsize(), 0);
    assert_eq!(
        q.unfinished_tasks(),
        1,
        "the taken item is still unfinished"
    );
    assert!(poll(join.as_mut()).is_pending());
    q.task_done().unwrap();
    assert!(poll(join.as_mut()).is_ready());
}

#[test]
fn blocked_getters_and_putters_wake_with_the_error() {
    let empty: Queue<u8> = Queue::new(1);
    let (wg, cg) = counting_waker();
    let mut g = Box::pin(empty.get());
    assert!(g.as_mut().poll(&mut Context::from_waker(&wg)).is_pending());

    let full = Queue::new(1);
    full.put_nowait(0).unwrap();
    let (wp, cp) = counting_waker();
    let mut p = Box::pin(full.put(1));
    assert!(p.as_mut().poll(&mut Context::from_waker(&wp)).is_pending());

    empty.shutdown(false);
    full.shutdown(false);
    assert_eq!(cg.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(cp.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(
        g.as_mut().poll(&mut Context::from_waker(&wg)),
        Poll::Ready(Err(QueueShutDown(())))
    );
    assert!(matches!(
        p.as_mut().poll(&mut Context::from_waker(&wp)),
        Poll::Ready(Err(QueueShutDown(1)))
    ));
    // The queued item is still there after a graceful shutdown.
    assert_eq!(full.get_nowait(), Ok(0));
}

#[test]
fn shutdown_twice_and_immediate_after_graceful() {
    let q = Queue::new(0);
    q.put_nowait(1).unwrap();
    q.shutdown(false);
    q.shutdown(false);
    assert_eq!(q.qsize(), 1);
    q.shutdown(true);
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.unfinished_tasks(), 0);
}

driver_test! {
    fn consumers_exit_on_shutdown(rt) {
        let counts = rt.block_on(async {
            let q = Queue::new(4);
            let consumers: Vec<_> = (0..3)
                .map(|_| {
                    let q = q.clone();
                    spawn(async move {
                        let mut n = 0;
                        while q.get().await.is_ok() {
                            n += 1;
                            q.task_done().unwrap();
                            yield_now().await;
                        }
                        n
                    })
                })
                .collect();
            for i in 0..100 {
                q.put(i).await.unwrap();
            }
            q.join().await;
            q.shutdown(false);
            let mut total = 0;
            for c in consumers {
                total += c.await.unwrap();
            }
            total
        });
        assert_eq!(counts, 100);
    }

    fn immediate_shutdown_releases_a_joiner_task(rt) {
        rt.block_on(async {
            let q = Queue::new(0);
            for i in 0..10 {
                q.put_nowait(i).unwrap();
            }
            let joiner = spawn({
                let q = q.clone();
                async move { q.join().await }
            });
            yield_now().await;
            assert!(!joiner.is_finished());
            q.shutdown(true);
            joiner.await.unwrap();
        });
    }
}
