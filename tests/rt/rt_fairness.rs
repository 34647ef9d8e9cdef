//! Fairness: one poll per task per tick, the coop budget, I/O and timers are
//! not starved by busy tasks (docs/reliability.md, checks 13, 14).

use crate::support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coil::spawn;
use coil::task::{consume_budget, yield_now};

driver_test! {
    fn woken_during_tick_runs_next_tick(rt) {
        // Three tasks yield in a loop; the trace must be strict rotation:
        // no task is polled twice in one tick.
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        rt.block_on(async move {
            let tasks: Vec<_> = (0..3)
                .map(|i| {
                    let l = l.clone();
                    spawn(async move {
                        for _ in 0..4 {
                            l.borrow_mut().push(i);
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let want: Vec<i32> = (0..4).flat_map(|_| 0..3).collect();
        assert_eq!(*log.borrow(), want);
    }

    fn always_ready_loop_yields_by_budget(rt) {
        // Item 14: a task that never sees Pending on its own (it only calls
        // consume_budget) still lets another task run within one budget window.
        rt.block_on(async {
            let other_ran = Rc::new(Cell::new(false));
            let o = other_ran.clone();
            let other = spawn(async move { o.set(true) });
            let busy = spawn({
                let o = other_ran.clone();
                async move {
                    let mut spins = 0u32;
                    while !o.get() {
                        consume_budget().await;
                        spins += 1;
                        assert!(spins <= 128 * 2, "the budget never forced a yield");
                    }
                    spins
                }
            });
            other.await.unwrap();
            busy.await.unwrap();
        });
    }

    fn sleeps_take_budget_only_when_they_complete(rt) {
        // A timer's poll takes a unit of budget when it completes (an
        // interval whose ticks are all due must still let another task
        // run), and none while it waits: 1 000 pending sleeps leave the
        // budget whole (`time/sleep.rs`, `poll_budgeted`).
        rt.block_on(async {
            let flag = Rc::new(Cell::new(false));
            let f = flag.clone();
            let observer = spawn(async move { f.set(true) });
            let mut pending: Vec<_> = (0..1000)
                .map(|_| coil::time::sleep(Duration::from_secs(3600)))
                .collect();
            for s in &mut pending {
                let mut s = std::pin::Pin::new(s);
                let ready = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(s.as_mut().poll(cx).is_ready())
                })
                .await;
                assert!(!ready);
            }
            for _ in 0..100 {
                consume_budget().await;
            }
            assert!(!flag.get(), "pending sleeps took budget: the observer ran");
            drop(pending);
            observer.await.unwrap();

            let mut ticks = coil::time::interval(Duration::from_micros(1));
            ticks.set_missed_tick_behavior(coil::time::MissedTickBehavior::Burst);
            coil::time::sleep(Duration::from_millis(2)).await;
            // Every tick is due now.
            let flag = Rc::new(Cell::new(false));
            let f = flag.clone();
            let observer = spawn(async move { f.set(true) });
            let mut seen_at = None;
            for i in 0..1000 {
                ticks.tick().await;
                if flag.get() {
                    seen_at = Some(i);
                    break;
                }
            }
            observer.await.unwrap();
            assert!(seen_at.is_some_and(|i| i <= 129), "observer ran only at {seen_at:?}");
        });
    }

    fn joining_finished_tasks_consumes_budget(rt) {
        // Awaiting an always-ready Task handle counts against the budget too.
        rt.block_on(async {
            let flag = Rc::new(Cell::new(false));
            let f = flag.clone();
            let done: Vec<_> = (0..1000).map(|_| spawn(async {})).collect();
            while !done.iter().all(|t| t.is_finished()) {
                yield_now().await;
            }
            let observer = spawn(async move { f.set(true) });
            let mut seen_at = None;
            for (i, t) in done.into_iter().enumerate() {
                t.await.unwrap();
                if flag.get() && seen_at.is_none() {
                    seen_at = Some(i);
                }
            }
            observer.await.unwrap();
            assert!(seen_at.is_some_and(|i| i <= 129), "observer ran only at {seen_at:?}");
        });
    }

    fn io_that_never_waits_yields_by_budget(rt) {
        // Under epoll a send on a socket with room finishes during the submit
        // (no trip through the run queue), so a send loop never sees Pending
        // on its own: the op layer must take budget for it. (io_uring ops
        // always wait for their completion, so there the other task runs
        // after the first send.)
        rt.block_on(async {
            let a = coil::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = b.local_addr().unwrap();
            let flag = Rc::new(Cell::new(false));
            let f = flag.clone();
            let observer = spawn(async move { f.set(true) });
            let mut seen_at = None;
            for i in 0..1000 {
                let coil::io::BufResult(r, _) = a.send_to(&b"x"[..], to).await;
                r.unwrap();
                if flag.get() && seen_at.is_none() {
                    seen_at = Some(i);
                }
            }
            observer.await.unwrap();
            assert!(seen_at.is_some_and(|i| i <= 129), "observer ran only at {seen_at:?}");
        });
    }

    fn timer_fires_while_a_task_yields_forever(rt) {
        // Item 13: a yield_now() loop does not starve a 10 ms timer.
        rt.block_on(async {
            let stop = Rc::new(Cell::new(false));
            let s = stop.clone();
            let spinner = spawn(async move {
                let mut n = 0u64;
                while !s.get() {
                    yield_now().await;
                    n += 1;
                }
                n
            });
            let start = coil::time::Instant::now();
            coil::time::sleep(Duration::from_millis(10)).await;
            assert!(start.elapsed() >= Duration::from_millis(10));
            stop.set(true);
            assert!(spinner.await.unwrap() > 0);
        });
    }

    fn a_timer_waker_that_panics_leaves_the_queue_working(rt) {
        // A fired timer's waker runs inside the loop's "wake to the front"
        // step; one that panics unwinds out of block_on. The loop must not
        // stay in that step: a task spawned by the next block_on runs at
        // the next tick (it used to wait, staged for the front, until some
        // later timer fired).
        struct PanicWake;
        impl std::task::Wake for PanicWake {
            fn wake(self: Arc<Self>) {
                panic!("this waker panics");
            }
        }
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                let w = std::task::Waker::from(Arc::new(PanicWake));
                let mut s = std::pin::pin!(coil::time::sleep(Duration::from_millis(1)));
                let mut cx = std::task::Context::from_waker(&w);
                assert!(std::future::Future::poll(s.as_mut(), &mut cx).is_pending());
                // The loop fires the 1 ms timer (and panics) first.
                coil::time::sleep(Duration::from_secs(30)).await;
            })
        }));
        assert!(first.is_err(), "the waker's panic reaches block_on's caller");
        rt.block_on(async {
            let ran = Rc::new(Cell::new(false));
            let r = ran.clone();
            let t = spawn(async move { r.set(true) });
            // No timer is filed now: only the queue can run the task.
            for _ in 0..3 {
                yield_now().await;
            }
            assert!(ran.get(), "a task spawned after the panic did not run");
            t.await.unwrap();
        });
    }

    fn bursts_past_the_shrink_size_keep_fifo_order(rt) {
        // The run queue ring (src/rt/core/run_queue.rs) grows by doubling
        // from 256 slots past 8192 (wrapped entries moved at each growth)
        // and is given back once a tick leaves it empty; a second burst
        // grows it again. Tasks run once each, in spawn order, and tasks
        // spawned by a poll (a push while the loop pops) go behind the
        // burst: checked over two rounds.
        rt.block_on(async {
            for round in 0..2u32 {
                let log = Rc::new(RefCell::new(Vec::new()));
                // A few tasks queued first and popped, so the head is not
                // at slot 0 when the burst grows the ring.
                for i in 0..37u32 {
                    let l = log.clone();
                    spawn(async move { l.borrow_mut().push(1_000_000 + i) }).await.unwrap();
                }
                log.borrow_mut().clear();
                const N: u32 = 20_000;
                let tasks: Vec<_> = (0..N)
                    .map(|i| {
                        let l = log.clone();
                        spawn(async move {
                            l.borrow_mut().push(i);
                            if i % 1000 == 0 {
                                let l = l.clone();
                                drop(spawn(async move { l.borrow_mut().push(100_000 + i) }));
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                // The children were queued behind the burst: let them run.
                for _ in 0..10 {
                    yield_now().await;
                }
                let want: Vec<u32> =
                    (0..N).chain((0..N).step_by(1000).map(|i| 100_000 + i)).collect();
                assert_eq!(*log.borrow(), want, "round {round}");
            }
        });
    }

    fn a_panicking_timer_waker_loses_no_other_timer_of_its_batch(rt) {
        // Two timers due at the same tick, fired in one batch: a foreign
        // waker that panics first, then a coil task's. The panic unwinds
        // out of block_on; the task's wake-up must not be lost with it.
        struct PanicWake;
        impl std::task::Wake for PanicWake {
            fn wake(self: Arc<Self>) {
                panic!("this waker panics");
            }
        }
        let handle = RefCell::new(None);
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                *handle.borrow_mut() = Some(spawn(async {
                    let w = std::task::Waker::from(Arc::new(PanicWake));
                    let mut cx = std::task::Context::from_waker(&w);
                    // Filed in the same poll, from the same clock read:
                    // the same tick, the panicking one first.
                    let mut s = Box::pin(coil::time::sleep(Duration::from_millis(1)));
                    assert!(std::future::Future::poll(s.as_mut(), &mut cx).is_pending());
                    coil::time::sleep(Duration::from_millis(1)).await;
                    drop(s);
                }));
                coil::time::sleep(Duration::from_secs(30)).await;
            })
        }));
        assert!(first.is_err(), "the waker's panic reaches block_on's caller");
        let t = handle.borrow_mut().take().unwrap();
        rt.block_on(async {
            let r = coil::time::timeout(Duration::from_secs(5), t).await;
            assert!(r.is_ok(), "the task's timer fired in the panicking batch was lost");
        });
    }

    fn remote_spawn_runs_while_a_task_yields_forever(rt) {
        // Item 13: cross-thread injected work runs although the local queue is
        // never empty (the loop drains the remote queue every tick).
        let handle = rt.handle();
        rt.block_on(async move {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let spinner = spawn(async move {
                while !s.load(Ordering::SeqCst) {
                    yield_now().await;
                }
            });
            let s2 = stop.clone();
            let th = std::thread::spawn(move || {
                handle.spawn(async move { s2.store(true, Ordering::SeqCst) })
            });
            spinner.await.unwrap();
            th.join().unwrap().await.unwrap();
        });
    }
}

#[test]
fn event_interval_polls_driver_when_busy() {
    // With event_interval(1) the driver is polled every tick even though the
    // queue is never empty; the loop keeps working and a cross-thread wake
    // during the busy phase is delivered.
    support::run_watched(|| {
        let rt = coil::Runtime::builder().event_interval(1).build().unwrap();
        let n = rt.block_on(async {
            let t = spawn(async {
                let mut n = 0;
                for _ in 0..10_000 {
                    yield_now().await;
                    n += 1;
                }
                n
            });
            t.await.unwrap()
        });
        assert_eq!(n, 10_000);
    });
}
