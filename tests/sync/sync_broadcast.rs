//! broadcast: every receiver sees every value, lagging, closing, values freed
//! once received, threads, and a `recv` dropped at every point.

use crate::support;

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use coil::spawn;
use coil::sync::broadcast::{self, RecvError, SendError, TryRecvError};
use coil::task::yield_now;
use support::{Probe, drop_one_waiter, panic_message_of};

#[test]
fn every_receiver_sees_every_value_sent_after_it_subscribed() {
    let (tx, mut a) = broadcast::channel(8);
    assert_eq!(tx.send(1), Ok(1));
    let mut b = tx.subscribe();
    assert_eq!(tx.receiver_count(), 2);
    assert_eq!(tx.send(2), Ok(2));
    assert_eq!(a.try_recv(), Ok(1));
    assert_eq!(a.try_recv(), Ok(2));
    assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(b.try_recv(), Ok(2), "1 was sent before b subscribed");
    let mut c = b.resubscribe();
    assert_eq!(tx.send(3), Ok(3));
    for rx in [&mut a, &mut b, &mut c] {
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.try_recv(), Ok(3));
        assert!(rx.is_empty());
    }
}

/// tokio's lagging example: capacity 2, three sends; the receiver learns it
/// missed one, then goes on from the oldest value kept.
#[test]
fn a_lagging_receiver_gets_lagged_then_the_oldest_kept_value() {
    let (tx, mut rx) = broadcast::channel(2);
    for v in [10, 20, 30] {
        tx.send(v).unwrap();
    }
    assert_eq!(tx.len(), 2, "memory stays bounded by the capacity");
    assert_eq!(rx.len(), 3, "len counts the missed value");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(1)));
    assert_eq!(rx.try_recv(), Ok(20));
    assert_eq!(rx.try_recv(), Ok(30));
    for v in 0..10 {
        tx.send(v).unwrap();
    }
    let mut rx2 = rx.resubscribe();
    assert_eq!(
        Probe::new(rx.recv()).poll(),
        Poll::Ready(Err(RecvError::Lagged(8)))
    );
    assert_eq!(rx.try_recv(), Ok(8));
    assert_eq!(rx.try_recv(), Ok(9));
    assert_eq!(rx2.try_recv(), Err(TryRecvError::Empty));
    assert!(rx.is_empty());
}

#[test]
fn closed_once_every_sender_is_gone_and_everything_was_received() {
    let (tx, mut rx) = broadcast::channel(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed());
    tx2.send(2).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(Probe::new(rx.recv()).poll(), Poll::Ready(Ok(2)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        Probe::new(rx.recv()).poll(),
        Poll::Ready(Err(RecvError::Closed))
    );

    // A receiver waiting when the last sender goes is woken with `Closed`.
    let (tx, mut rx) = broadcast::channel::<u8>(4);
    let mut r = Probe::new(rx.recv());
    assert!(r.poll().is_pending());
    drop(tx);
    assert_eq!(r.wakes(), 1);
    assert_eq!(r.poll(), Poll::Ready(Err(RecvError::Closed)));
}

#[test]
fn send_without_receivers_gives_the_value_back() {
    let (tx, rx) = broadcast::channel::<String>(4);
    drop(rx);
    assert_eq!(tx.receiver_count(), 0);
    let Err(SendError(v)) = tx.send("lost".to_string()) else {
        panic!("no receiver: the send must fail")
    };
    assert_eq!(v, "lost");
    assert!(tx.is_empty(), "nothing kept for later subscribers");
    let mut rx = tx.subscribe();
    assert_eq!(tx.send("kept".into()), Ok(1));
    assert_eq!(rx.try_recv().as_deref(), Ok("kept"));
}

#[test]
fn a_value_is_freed_once_every_receiver_has_it() {
    let (tx, mut a) = broadcast::channel(4);
    let mut b = tx.subscribe();
    let mut c = tx.subscribe();
    let v = Arc::new(());
    tx.send(v.clone()).unwrap();
    let got_a = a.try_recv().unwrap();
    assert_eq!(tx.len(), 1);
    drop(c.try_recv().unwrap());
    let got_b = b.try_recv().unwrap();
    assert_eq!(tx.len(), 0, "the last receiver took the value");
    assert_eq!(Arc::strong_count(&v), 3, "v, got_a, got_b");
    drop((got_a, got_b));
    // A dropped receiver lets go of what it had not received.
    tx.send(v.clone()).unwrap();
    tx.send(v.clone()).unwrap();
    assert_eq!(a.try_recv().map(drop), Ok(()));
    drop(b);
    drop(c);
    assert_eq!(tx.len(), 1, "a has not received the second");
    drop(a);
    assert_eq!(tx.len(), 0);
    assert_eq!(Arc::strong_count(&v), 1);
}

#[test]
fn capacity_zero_is_refused() {
    let msg = panic_message_of(|| broadcast::channel::<u8>(0));
    assert!(msg.contains("capacity of at least 1"), "{msg}");
}

#[test]
fn errors_say_what_happened() {
    assert_eq!(
        RecvError::Lagged(3).to_string(),
        "the receiver lagged behind by 3 values"
    );
    assert_eq!(
        TryRecvError::Closed.to_string(),
        "the broadcast channel is closed"
    );
    assert_eq!(format!("{:?}", SendError(1)), "SendError(..)");
}

/// Two waiting receivers, one `recv` (the victim's) dropped before its first
/// poll (point 0), while queued (1), or after a send woke it, before it ran
/// (2). The other gets the value, woken once; the victim's receiver still
/// has it for its next `recv`: nothing is lost.
#[test]
fn drop_a_recv_at_every_point_loses_nothing() {
    for victim in 0..2 {
        for point in 0..3 {
            let case = format!("victim={victim} point={point}");
            let (tx, rx0) = broadcast::channel(4);
            let mut rxs = [rx0, tx.subscribe()];
            let [r0, r1] = &mut rxs;
            let mut recvs = [Probe::new(r0.recv()), Probe::new(r1.recv())];
            drop_one_waiter(&mut recvs, victim, point, || {
                tx.send(7).unwrap();
            });
            let other = &mut recvs[1 - victim];
            assert_eq!(other.wakes(), 1, "{case}");
            assert_eq!(other.poll(), Poll::Ready(Ok(7)), "{case}");
            drop(recvs);
            assert_eq!(rxs[victim].try_recv(), Ok(7), "{case}");
            assert_eq!(rxs[1 - victim].try_recv(), Err(TryRecvError::Empty));
            assert!(tx.is_empty(), "{case}");
        }
    }
}

driver_test! {
    fn waiting_tasks_each_get_every_value_then_closed(rt) {
        rt.block_on(async {
            let (tx, rx) = broadcast::channel(16);
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let mut rx = rx.resubscribe();
                    spawn(async move {
                        let mut got = Vec::new();
                        loop {
                            match rx.recv().await {
                                Ok(v) => got.push(v),
                                Err(RecvError::Closed) => return got,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    })
                })
                .collect();
            drop(rx);
            yield_now().await; // all four wait
            for i in 0..10 {
                assert_eq!(tx.send(i), Ok(4));
                if i % 3 == 0 {
                    yield_now().await;
                }
            }
            drop(tx);
            for t in tasks {
                assert_eq!(t.await.unwrap(), (0..10).collect::<Vec<_>>());
            }
        });
    }

    /// Senders on plain threads, receivers on the loop and on a thread.
    fn senders_and_receivers_across_threads(rt) {
        let n = support::scaled(10_000) as u64;
        rt.block_on(async move {
            let (tx, mut rx) = broadcast::channel(n as usize * 2);
            let mut rx_thread = tx.subscribe();
            let reader = std::thread::spawn(move || {
                let mut sum = 0;
                while let Ok(v) = rx_thread.blocking_recv() {
                    sum += v;
                }
                sum
            });
            let writers: Vec<_> = (0..2)
                .map(|_| {
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        for i in 0..n {
                            tx.send(i).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let mut sum = 0;
            loop {
                match rx.recv().await {
                    Ok(v) => sum += v,
                    Err(RecvError::Closed) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            for w in writers {
                w.join().unwrap();
            }
            assert_eq!(sum, n * (n - 1));
            assert_eq!(reader.join().unwrap(), n * (n - 1));
        });
    }

    /// Tasks woken by a send and cancelled before they ran take nothing: the
    /// others get the value, and the cancelled one's receiver, dropped with
    /// its task, lets go of it.
    fn cancelled_receiving_tasks_lose_nothing(rt) {
        rt.block_on(async {
            let (tx, rx) = broadcast::channel(4);
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let mut rx = rx.resubscribe();
                    spawn(async move { rx.recv().await.unwrap() })
                })
                .collect();
            drop(rx);
            yield_now().await;
            tx.send(Arc::new(5)).unwrap();
            tasks[1].cancel();
            for (i, t) in tasks.into_iter().enumerate() {
                match t.await {
                    Ok(v) => assert_eq!(*v, 5),
                    Err(e) => assert!(e.is_cancelled() && i == 1),
                }
            }
            assert_eq!(tx.receiver_count(), 0);
            assert!(tx.is_empty());
        });
    }
}

/// Under the simulator (virtual time, so the timing is exact): a producer
/// sends every 10 ms, a consumer takes 35 ms per value through a channel of
/// 2; it lags, learns by how much, and always resumes at the oldest value
/// kept, so what it gets plus what it missed is everything sent.
#[test]
fn a_slow_consumer_lags_by_what_it_missed_in_virtual_time() {
    let (got, missed) = coil::sim::Builder::new().seed(7).run(async {
        let (tx, mut rx) = broadcast::channel(2);
        let producer = spawn(async move {
            for i in 0..40u32 {
                tx.send(i).unwrap();
                coil::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let (mut got, mut missed) = (Vec::new(), 0);
        loop {
            match rx.recv().await {
                Ok(v) => {
                    got.push(v);
                    coil::time::sleep(Duration::from_millis(35)).await;
                }
                Err(RecvError::Lagged(n)) => missed += n,
                Err(RecvError::Closed) => break,
            }
        }
        producer.await.unwrap();
        (got, missed)
    });
    assert!(missed > 0, "a consumer 3.5 times slower must lag");
    assert_eq!(got.len() as u64 + missed, 40, "{got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    assert_eq!(got.last(), Some(&39), "the newest is never lost");
}
