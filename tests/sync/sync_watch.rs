//! watch: the latest value, seen versions, `changed` and closing, threads,
//! and a `changed` dropped at every point.

use crate::support;

use std::task::Poll;
use std::time::Duration;

use coil::spawn;
use coil::sync::watch::{self, SendError};
use coil::task::yield_now;
use support::{Probe, drop_one_waiter};

#[test]
fn the_initial_value_counts_as_seen() {
    let (tx, mut rx) = watch::channel(1);
    assert_eq!(*rx.borrow(), 1);
    assert!(!rx.borrow().has_changed());
    assert_eq!(rx.has_changed(), Ok(false));
    assert!(Probe::new(rx.changed()).poll().is_pending());
    assert_eq!(*tx.borrow(), 1);
}

#[test]
fn borrow_does_not_mark_seen_borrow_and_update_does() {
    let (tx, mut rx) = watch::channel(0);
    tx.send(1).unwrap();
    tx.send(2).unwrap(); // two sends: one change to a receiver
    assert_eq!(rx.has_changed(), Ok(true));
    let r = rx.borrow();
    assert_eq!((*r, r.has_changed()), (2, true));
    drop(r);
    assert_eq!(rx.has_changed(), Ok(true));
    let r = rx.borrow_and_update();
    assert_eq!((*r, r.has_changed()), (2, true));
    drop(r);
    assert_eq!(rx.has_changed(), Ok(false));
    assert!(!rx.borrow_and_update().has_changed());
}

#[test]
fn changed_returns_at_once_for_an_unseen_value_and_marks_it() {
    let (tx, mut rx) = watch::channel("a");
    tx.send("b").unwrap();
    assert_eq!(Probe::new(rx.changed()).poll(), Poll::Ready(Ok(())));
    assert_eq!(*rx.borrow(), "b");
    let mut c = Probe::new(rx.changed());
    assert!(c.poll().is_pending());
    tx.send_modify(|v| *v = "c");
    assert_eq!(c.wakes(), 1);
    assert_eq!(c.poll(), Poll::Ready(Ok(())));
    drop(c);
    assert_eq!(*rx.borrow(), "c");
}

#[test]
fn changed_fails_once_the_senders_are_gone_and_the_newest_is_seen() {
    let (tx, mut rx) = watch::channel(0);
    let tx2 = tx.clone();
    assert_eq!(tx.sender_count(), 2);
    {
        let mut c = Probe::new(rx.changed());
        assert!(c.poll().is_pending());
        drop(tx);
        assert_eq!(c.wakes(), 0, "a sender remains");
        tx2.send(1).unwrap();
        drop(tx2);
        assert_eq!(c.poll(), Poll::Ready(Ok(())), "a value sent before leaving");
    }
    assert_eq!(
        rx.has_changed().map_err(|e| e.to_string()),
        Err("the watch channel's senders are gone".into())
    );
    assert!(matches!(
        Probe::new(rx.changed()).poll(),
        Poll::Ready(Err(_))
    ));
    assert_eq!(*rx.borrow(), 1, "the last value stays readable");
    rx.mark_changed();
    assert_eq!(Probe::new(rx.changed()).poll(), Poll::Ready(Ok(())));

    // A receiver waiting when the last sender goes is woken with the error.
    let (tx, mut rx) = watch::channel(0);
    let mut c = Probe::new(rx.changed());
    assert!(c.poll().is_pending());
    drop(tx);
    assert_eq!(c.wakes(), 1);
    assert!(matches!(c.poll(), Poll::Ready(Err(_))));
}

#[test]
fn send_needs_a_receiver_send_replace_and_modify_do_not() {
    let (tx, rx) = watch::channel(String::from("a"));
    drop(rx);
    assert!(tx.is_closed());
    let Err(SendError(v)) = tx.send("b".into()) else {
        panic!("no receiver: the send must fail")
    };
    assert_eq!(v, "b");
    assert_eq!(*tx.borrow(), "a", "a failed send changes nothing");
    assert_eq!(tx.send_replace("c".into()), "a");
    tx.send_modify(|v| v.push('!'));
    assert!(!tx.send_if_modified(|_| false));
    let mut rx = tx.subscribe();
    assert_eq!(*rx.borrow_and_update(), "c!");
    assert_eq!(
        rx.has_changed(),
        Ok(false),
        "subscribe counts the value as seen"
    );
    assert!(tx.send_if_modified(|v| {
        v.clear();
        true
    }));
    assert_eq!(rx.has_changed(), Ok(true));
}

#[test]
fn a_cloned_receiver_has_seen_what_the_original_had() {
    let (tx, mut rx) = watch::channel(0);
    tx.send(1).unwrap();
    let mut copy = rx.clone();
    assert_eq!(tx.receiver_count(), 2);
    assert_eq!(copy.has_changed(), Ok(true));
    rx.mark_unchanged();
    let mut copy2 = rx.clone();
    assert_eq!(copy2.has_changed(), Ok(false));
    assert!(copy.borrow_and_update().has_changed());
    assert!(Probe::new(copy2.changed()).poll().is_pending());
    assert!(rx.same_channel(&copy));
}

#[test]
fn closed_waits_for_the_last_receiver() {
    let (tx, rx) = watch::channel(());
    let rx2 = rx.clone();
    let mut closed = Probe::new(tx.closed());
    assert!(closed.poll().is_pending());
    drop(rx);
    assert_eq!(closed.wakes(), 0);
    drop(rx2);
    assert_eq!(closed.wakes(), 1);
    assert_eq!(closed.poll(), Poll::Ready(()));
    assert!(Probe::new(tx.closed()).poll().is_ready());
}

/// Two receivers wait in `changed`; one (the victim) is dropped before its
/// first poll (point 0), while queued (1), or after a send woke it, before
/// it ran (2). The other sees the change, woken once; the victim's receiver
/// has not marked the value seen, so its next `changed` returns at once.
#[test]
fn drop_a_changed_at_every_point_loses_nothing() {
    for victim in 0..2 {
        for point in 0..3 {
            let case = format!("victim={victim} point={point}");
            let (tx, rx0) = watch::channel(0);
            let mut rxs = [rx0, tx.subscribe()];
            let [r0, r1] = &mut rxs;
            let mut waits = [Probe::new(r0.changed()), Probe::new(r1.changed())];
            drop_one_waiter(&mut waits, victim, point, || {
                tx.send(7).unwrap();
            });
            let other = &mut waits[1 - victim];
            assert_eq!(other.wakes(), 1, "{case}");
            assert_eq!(other.poll(), Poll::Ready(Ok(())), "{case}");
            drop(waits);
            assert_eq!(rxs[victim].has_changed(), Ok(true), "{case}");
            assert_eq!(rxs[1 - victim].has_changed(), Ok(false), "{case}");
            assert_eq!(
                Probe::new(rxs[victim].changed()).poll(),
                Poll::Ready(Ok(())),
                "{case}"
            );
        }
    }
}

driver_test! {
    /// Each waiting task sees the last value before it looks; after the
    /// sender is gone, `changed` ends every loop.
    fn waiting_tasks_see_the_newest_value_then_the_end(rt) {
        rt.block_on(async {
            let (tx, rx) = watch::channel(0);
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let mut rx = rx.clone();
                    spawn(async move {
                        let mut seen = Vec::new();
                        while rx.changed().await.is_ok() {
                            seen.push(*rx.borrow_and_update());
                        }
                        seen
                    })
                })
                .collect();
            drop(rx);
            yield_now().await;
            tx.send(1).unwrap();
            tx.send(2).unwrap(); // before anyone ran: one change, 2
            yield_now().await;
            tx.send_modify(|v| *v += 1);
            yield_now().await;
            drop(tx);
            for t in tasks {
                assert_eq!(t.await.unwrap(), [2, 3]);
            }
        });
    }

    /// A sender on a plain thread, a receiver on the loop: it ends on the
    /// last value.
    fn a_sender_on_another_thread(rt) {
        let n = support::scaled(10_000) as u64;
        rt.block_on(async move {
            let (tx, mut rx) = watch::channel(0u64);
            let writer = std::thread::spawn(move || {
                for i in 1..=n {
                    tx.send_replace(i);
                }
            });
            let mut last = 0;
            while rx.changed().await.is_ok() {
                let v = *rx.borrow_and_update();
                assert!(v > last, "values only grow: {last} then {v}");
                last = v;
            }
            writer.join().unwrap();
            assert_eq!(last, n);
        });
    }

    /// Tasks woken by a send and cancelled before they ran take nothing
    /// from the others.
    fn cancelled_watching_tasks_lose_nothing(rt) {
        rt.block_on(async {
            let (tx, rx) = watch::channel(0);
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let mut rx = rx.clone();
                    spawn(async move {
                        rx.changed().await.unwrap();
                        *rx.borrow_and_update()
                    })
                })
                .collect();
            yield_now().await;
            tx.send(9).unwrap();
            tasks[2].cancel();
            for (i, t) in tasks.into_iter().enumerate() {
                match t.await {
                    Ok(v) => assert_eq!(v, 9),
                    Err(e) => assert!(e.is_cancelled() && i == 2),
                }
            }
            assert_eq!(tx.receiver_count(), 1, "only rx is left");
            assert_eq!(rx.has_changed(), Ok(true));
        });
    }
}

/// Under the simulator (virtual time, so the timing is exact): a value set
/// every 10 ms, watched by a task that needs 25 ms per look, is seen in
/// order, with the ones sent while it was busy folded into the newest.
#[test]
fn a_slow_watcher_sees_the_newest_value_in_virtual_time() {
    let seen = coil::sim::Builder::new().seed(3).run(async {
        let (tx, mut rx) = watch::channel(0u32);
        let producer = spawn(async move {
            for i in 1..=20 {
                coil::time::sleep(Duration::from_millis(10)).await;
                tx.send(i).unwrap();
            }
        });
        let mut seen = Vec::new();
        while rx.changed().await.is_ok() {
            seen.push(*rx.borrow_and_update());
            coil::time::sleep(Duration::from_millis(25)).await;
        }
        producer.await.unwrap();
        seen
    });
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen.len() < 20, "some were folded: {seen:?}");
    assert_eq!(seen.last(), Some(&20), "the newest is never missed");
}
