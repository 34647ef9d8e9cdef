//! mpsc: cross-thread producers, closing rules, back-pressure, cancellation.

use crate::support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use coil::spawn;
use coil::sync::mpsc::{self, TryRecvError, TrySendError};
use coil::task::yield_now;
use support::{DropCounter, counting_waker, panic_message_of};

fn poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let (w, _) = counting_waker();
    f.poll(&mut Context::from_waker(&w))
}

/// Two plain threads × `n` messages into a loop; checks per-producer order
/// and the total.
fn two_producer_threads(rt: &coil::Runtime, bounded: bool) {
    let n = support::scaled(100_000) as u64;
    let (sum, count) = rt.block_on(async move {
        let mut rx;
        let mut threads = Vec::new();
        if bounded {
            let (tx, r) = mpsc::channel::<(u64, u64)>(64);
            rx = r;
            for t in 0..2 {
                let tx = tx.clone();
                threads.push(std::thread::spawn(move || {
                    for i in 0..n {
                        tx.blocking_send((t, i)).unwrap();
                    }
                }));
            }
        } else {
            let (tx, r) = mpsc::unbounded_channel::<(u64, u64)>();
            rx = r;
            for t in 0..2 {
                let tx = tx.clone();
                threads.push(std::thread::spawn(move || {
                    for i in 0..n {
                        tx.send((t, i)).unwrap();
                    }
                }));
            }
        }
        let mut next = [0u64; 2];
        let (mut sum, mut count) = (0u64, 0u64);
        while let Some((t, i)) = rx.recv().await {
            assert_eq!(i, next[t as usize], "per-producer FIFO");
            next[t as usize] += 1;
            sum += i;
            count += 1;
        }
        for th in threads {
            th.join().unwrap();
        }
        (sum, count)
    });
    assert_eq!(count, 2 * n);
    assert_eq!(sum, n * (n - 1));
}

driver_test! {
    fn two_threads_100k_bounded(rt) {
        two_producer_threads(rt, true);
    }

    fn two_threads_100k_unbounded(rt) {
        two_producer_threads(rt, false);
    }

    fn tasks_on_one_loop(rt) {
        let got = rt.block_on(async {
            let (tx, mut rx) = mpsc::channel(4);
            let producers: Vec<_> = (0..3u32)
                .map(|p| {
                    let tx = tx.clone();
                    spawn(async move {
                        for i in 0..50 {
                            tx.send(p * 100 + i).await.unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let mut v = Vec::new();
            while let Some(x) = rx.recv().await {
                v.push(x);
                if v.len() % 7 == 0 {
                    yield_now().await;
                }
            }
            for p in producers {
                p.await.unwrap();
            }
            v.sort();
            v
        });
        let want: Vec<u32> = (0..3).flat_map(|p| (0..50).map(move |i| p * 100 + i)).collect();
        assert_eq!(got, want);
    }

    fn loop_to_plain_thread_with_blocking_recv(rt) {
        let (tx, mut rx) = mpsc::channel(2);
        let th = std::thread::spawn(move || {
            let mut v = Vec::new();
            while let Some(x) = rx.blocking_recv() {
                v.push(x);
            }
            v
        });
        rt.block_on(async move {
            for i in 0..100 {
                tx.send(i).await.unwrap();
            }
        });
        assert_eq!(th.join().unwrap(), (0..100).collect::<Vec<_>>());
    }

    fn receiver_dropped_with_a_panicking_value_still_wakes_waiting_senders(rt) {
        // The receiver's drop closes the channel, drops what is buffered
        // (its batch, the inline head, the buffer) and wakes the senders
        // waiting for room. A value whose destructor panics must not keep
        // those senders asleep: they wake with the error, their value back.
        struct Val(bool, Arc<AtomicUsize>);
        impl Drop for Val {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::SeqCst);
                if self.0 {
                    panic!("value destructor panics");
                }
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            let (tx, mut rx) = mpsc::channel::<Val>(2);
            tx.try_send(Val(false, d.clone())).ok().unwrap();
            tx.try_send(Val(true, d.clone())).ok().unwrap();
            // Takes the first value; the panicking one moves to the batch.
            drop(rx.recv().await.unwrap());
            tx.try_send(Val(false, d.clone())).ok().unwrap();
            // Full (one buffered, one in the batch): this send waits.
            let d2 = d.clone();
            let waiting = spawn(async move {
                match tx.send(Val(false, d2)).await {
                    Err(e) => {
                        drop(e.into_inner());
                        true
                    }
                    Ok(()) => false,
                }
            });
            for _ in 0..3 {
                yield_now().await;
            }
            assert!(!waiting.is_finished(), "the send waits for room");
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(rx)));
            assert!(r.is_err(), "the value's panic reaches the dropper");
            for _ in 0..5 {
                yield_now().await;
            }
            assert!(waiting.is_finished(), "the waiting sender was not woken");
            assert!(waiting.await.unwrap(), "the send fails: the receiver is gone");
        });
        assert_eq!(drops.load(Ordering::SeqCst), 4, "each value dropped once");
    }

    fn blocking_calls_inside_the_loop_panic(rt) {
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel::<u8>(1);
            let m = panic_message_of(|| tx.blocking_send(1));
            assert!(m.contains("inside a running coil event loop"), "{m}");
            let m = panic_message_of(|| rx.blocking_recv());
            assert!(m.contains("blocking_recv"), "{m}");
        });
    }
}

#[test]
fn recv_none_after_all_senders_drop_and_drain() {
    let (tx, mut rx) = mpsc::channel(8);
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx2.try_send(2).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    let mut r = Box::pin(rx.recv());
    assert_eq!(poll(r.as_mut()), Poll::Ready(None));
}

#[test]
fn close_keeps_buffered_values_and_fails_senders() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (w, c) = counting_waker();
    let mut blocked = Box::pin(tx.send(2));
    assert!(
        blocked
            .as_mut()
            .poll(&mut Context::from_waker(&w))
            .is_pending()
    );
    rx.close();
    assert_eq!(c.wakes.load(Ordering::SeqCst), 1);
    let Poll::Ready(Err(e)) = poll(blocked.as_mut()) else {
        panic!()
    };
    assert_eq!(e.into_inner(), 2);
    assert!(tx.is_closed());
    assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn dropping_the_receiver_drops_buffered_values() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    for _ in 0..3 {
        tx.send(DropCounter(drops.clone())).unwrap();
    }
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    assert!(tx.send(DropCounter(drops.clone())).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn blocked_senders_are_served_fifo_and_pass_on_a_dropped_slot() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let mut a = Box::pin(tx.send(1));
    let (wb, cb) = counting_waker();
    let mut b = Box::pin(tx.send(2));
    assert!(poll(a.as_mut()).is_pending());
    assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
    assert!(
        matches!(tx.try_send(9), Err(TrySendError::Full(9))),
        "waiters first"
    );
    assert_eq!(rx.try_recv(), Ok(0)); // the slot is reserved for a
    assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
    drop(a); // a never used it: b gets it
    assert_eq!(cb.wakes.load(Ordering::SeqCst), 1);
    assert!(matches!(poll(b.as_mut()), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

/// The receiver takes the buffer in batches (`mpsc.rs`, design); a value
/// it returns from a batch frees its slot at once: `try_send` finds it, a
/// blocked sender is woken for it (the first in line), and `len` counts
/// the batch's values as buffered.
#[test]
fn a_value_returned_from_the_receivers_batch_frees_its_slot_at_once() {
    let (tx, mut rx) = mpsc::channel(3);
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.try_recv(), Ok(0)); // takes 1 and 2 into the batch
    assert_eq!(rx.len(), 2);
    tx.try_send(3).unwrap();
    assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
    assert_eq!(rx.len(), 3);
    let (wa, ca) = counting_waker();
    let (wb, cb) = counting_waker();
    let mut a = Box::pin(tx.send(4));
    let mut b = Box::pin(tx.send(5));
    assert!(a.as_mut().poll(&mut Context::from_waker(&wa)).is_pending());
    assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
    assert_eq!(rx.try_recv(), Ok(1)); // from the batch: the slot goes to a
    assert_eq!(ca.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(cb.wakes.load(Ordering::SeqCst), 0);
    assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
    assert_eq!(rx.try_recv(), Ok(2)); // the next one to b
    assert_eq!(cb.wakes.load(Ordering::SeqCst), 1);
    assert!(matches!(poll(b.as_mut()), Poll::Ready(Ok(()))));
    assert!(matches!(poll(a.as_mut()), Poll::Ready(Ok(()))));
    assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
    let rest: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(rest, [3, 5, 4]);
    drop((a, b));
    tx.try_send(6).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(6));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

/// Values left in the receiver's batch are dropped with the receiver.
#[test]
fn dropping_the_receiver_drops_its_batch() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel(4);
    for _ in 0..3 {
        tx.try_send(DropCounter(drops.clone())).unwrap();
    }
    drop(rx.try_recv().unwrap()); // the other two go into the batch
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    tx.try_send(DropCounter(drops.clone())).unwrap();
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

/// The oldest buffered value is held inline, the rest in the buffer behind
/// it (`mpsc.rs`, design rule 5): every interleaving of sends and receives
/// of a seeded walk gives the values back in order, `len` and the room count
/// both, and a dropped receiver drops what is left oldest first.
#[test]
fn the_inline_head_and_the_buffer_behind_it_keep_fifo_order() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    struct Noted(u32, Arc<std::sync::Mutex<Vec<u32>>>);
    impl Drop for Noted {
        fn drop(&mut self) {
            self.1.lock().unwrap().push(self.0);
        }
    }
    let (tx, mut rx) = mpsc::channel::<Noted>(4);
    let mut model = std::collections::VecDeque::new();
    let (mut next, mut seed) = (0u32, 0x9e37_79b9_u32);
    for _ in 0..2_000 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        if seed % 3 != 0 {
            match tx.try_send(Noted(next, order.clone())) {
                Ok(()) => model.push_back(next),
                Err(TrySendError::Full(v)) => {
                    assert_eq!(model.len(), 4, "full with room left");
                    std::mem::forget(v);
                }
                Err(TrySendError::Closed(_)) => unreachable!(),
            }
            next += 1;
        } else {
            let got = rx.try_recv().ok().map(|v| {
                let n = v.0;
                std::mem::forget(v);
                n
            });
            assert_eq!(got, model.pop_front());
        }
        assert_eq!(rx.len(), model.len());
    }
    assert!(model.len() >= 2, "the walk ends with a backlog: {model:?}");
    drop(rx);
    assert_eq!(*order.lock().unwrap(), Vec::from(model));
}

#[test]
#[should_panic(expected = "capacity of at least 1")]
fn zero_capacity_panics() {
    let _ = mpsc::channel::<u8>(0);
}
