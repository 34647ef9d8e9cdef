//! Timers: never early, extremes, cancellation, timeouts, intervals
//! (docs/reliability.md, checks 17, 19).

use std::future::Future as _;
use std::time::Duration;

use crate::support;

use coil::spawn;
use coil::time::{self, Instant, MissedTickBehavior, sleep, sleep_until, timeout};

driver_test! {
    fn sleeps_never_early(rt) {
        rt.block_on(async {
            for ms in [0u64, 1, 2, 3, 7, 15] {
                for extra_us in [0u64, 300, 999] {
                    let d = Duration::from_millis(ms) + Duration::from_micros(extra_us);
                    let start = Instant::now();
                    sleep(d).await;
                    let took = start.elapsed();
                    assert!(took >= d, "slept {took:?} < {d:?}");
                }
            }
        });
    }

    fn sleep_after_a_long_poll_in_the_same_tick_is_not_early(rt) {
        // `sleep(d)` costs no clock read of its own: the loop files it at its
        // next clock read. A "now" cached at the start of the loop tick
        // instead would be stale by the busy task's 5 ms poll, which runs
        // first in the same tick: the 2 ms sleep would be filed ~3 ms in
        // the past and complete at once.
        rt.block_on(async {
            let busy = spawn(async {
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_millis(5) {
                    std::hint::spin_loop();
                }
            });
            let sleeper = spawn(async {
                let start = std::time::Instant::now();
                sleep(Duration::from_millis(2)).await;
                start.elapsed()
            });
            busy.await.unwrap();
            let slept = sleeper.await.unwrap();
            assert!(slept >= Duration::from_millis(2), "slept {slept:?} < 2 ms");
        });
    }

    fn concurrent_sleeps_overlap(rt) {
        // Two 30 ms sleeps in two tasks wait at the same time (both timers
        // are filed before either fires), so they take ~30 ms, not 60. No
        // upper bound on the wall clock: a loaded machine may stall the loop.
        rt.block_on(async {
            let start = Instant::now();
            let a = spawn(sleep(Duration::from_millis(30)));
            let b = spawn(sleep(Duration::from_millis(30)));
            coil::task::yield_now().await;
            assert_eq!(coil::runtime::stats().unwrap().timers, 2, "both wait at once");
            a.await.unwrap();
            b.await.unwrap();
            assert!(start.elapsed() >= Duration::from_millis(30));
        });
    }

    fn past_and_zero_deadlines_file_no_timer(rt) {
        rt.block_on(async {
            sleep(Duration::ZERO).await;
            sleep_until(Instant::now() - Duration::from_secs(1)).await;
            let s = sleep(Duration::ZERO);
            assert!(s.is_elapsed());
            s.await;
            assert_eq!(coil::runtime::stats().unwrap().timers, 0, "nothing was filed");
        });
    }

    fn zero_and_past_sleeps_yield_once(rt) {
        // asyncio.sleep(0): the task is suspended once, every task that is
        // ready runs, then it resumes (it does not wait for a timer tick).
        rt.block_on(async { zero_sleep_yields().await });
    }

    fn equal_deadlines_wake_in_scheduling_order(rt) {
        // asyncio's timer heap breaks ties by sequence: eight tasks sleeping
        // to one deadline wake in the order they went to sleep.
        rt.block_on(async { equal_deadlines_in_order(Duration::from_millis(20)).await });
    }

    fn equal_sleeps_started_in_order_wake_in_order(rt) {
        // The asyncio docs' two "sleep(3)" tasks, shortened: started 1 then
        // 2, they wake 1 then 2.
        rt.block_on(async { equal_sleeps_in_order(Duration::from_millis(30)).await });
    }

    fn duration_max_does_not_overflow(rt) {
        rt.block_on(async {
            let r = timeout(Duration::from_millis(3), sleep(Duration::MAX)).await;
            assert!(r.is_err());
            let far = Instant::now() + Duration::MAX;
            assert!(far > Instant::now() + Duration::from_secs(86_400 * 365 * 10));
            let r = timeout(Duration::from_millis(1), sleep_until(far)).await;
            assert!(r.is_err());
            let r = timeout(Duration::MAX, async { 3 }).await;
            assert_eq!(r, Ok(3));
            assert_eq!(coil::runtime::stats().unwrap().timers, 0);
        });
    }

    fn dropping_sleep_removes_timer(rt) {
        rt.block_on(async {
            let sleeps: Vec<_> = (0..1000).map(|i| spawn(sleep(Duration::from_secs(10 + i)))).collect();
            // Ticks are bounded (256 polls), so give every task its first poll.
            for _ in 0..4 {
                coil::task::yield_now().await;
            }
            assert_eq!(coil::runtime::stats().unwrap().timers, 1000);
            for t in &sleeps {
                t.cancel();
            }
            for t in sleeps {
                assert!(t.await.unwrap_err().is_cancelled());
            }
            assert_eq!(coil::runtime::stats().unwrap().timers, 0);
        });
    }

    fn many_timers_half_cancelled(rt) {
        // Item 17, scaled for debug builds: 20k timers over 0–200 ms, half
        // cancelled first; the rest fire, none early; the wheel empties.
        rt.block_on(async {
            let mut seed = 0x5EED_u64;
            let mut tasks = Vec::new();
            for i in 0..20_000u64 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let d = Duration::from_micros((seed >> 33) % 200_000);
                let t = spawn(async move {
                    let start = Instant::now();
                    sleep(d).await;
                    start.elapsed() >= d
                });
                tasks.push((i, t));
            }
            coil::task::yield_now().await;
            let mut fired = 0;
            for (i, t) in tasks {
                if i % 2 == 0 {
                    t.cancel();
                    match t.await {
                        Err(e) => assert!(e.is_cancelled()),
                        Ok(not_early) => assert!(not_early, "fired before the cancel, and early"),
                    }
                } else {
                    assert!(t.await.unwrap(), "a timer fired early");
                    fired += 1;
                }
            }
            assert_eq!(fired, 10_000);
            assert_eq!(coil::runtime::stats().unwrap().timers, 0);
        });
    }

    fn timeout_value_or_elapsed(rt) {
        rt.block_on(async {
            assert_eq!(timeout(Duration::from_millis(50), async { 1 }).await, Ok(1));
            let slow = timeout(Duration::from_millis(5), sleep(Duration::from_secs(5))).await;
            assert_eq!(slow.unwrap_err().to_string(), "deadline has elapsed");
            let io: std::io::Error = slow.unwrap_err().into();
            assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
            // A future ready at the same poll as the deadline still wins.
            let deadline = Instant::now() + Duration::from_millis(3);
            let r = time::timeout_at(deadline, sleep_until(deadline)).await;
            assert_eq!(r, Ok(()));
            // The timeout's own timer is removed when it completes.
            assert_eq!(coil::runtime::stats().unwrap().timers, 0);
        });
    }

    fn interval_ticks_on_schedule(rt) {
        rt.block_on(async {
            let start = Instant::now();
            let period = Duration::from_millis(3);
            let mut iv = time::interval_at(start, period);
            for k in 0..5u32 {
                let at = iv.tick().await;
                assert_eq!(at, start + period * k);
                assert!(Instant::now() >= at, "tick early");
            }
        });
    }

    fn interval_missed_tick_behaviours(rt) {
        rt.block_on(async {
            let period = Duration::from_millis(10);
            for behavior in [MissedTickBehavior::Burst, MissedTickBehavior::Delay, MissedTickBehavior::Skip] {
                let start = Instant::now();
                let mut iv = time::interval_at(start, period);
                iv.set_missed_tick_behavior(behavior);
                assert_eq!(iv.tick().await, start);
                if Instant::now() > start + period {
                    // The machine stalled us past the next tick already: the
                    // "missed" situation below cannot be set up this time.
                    continue;
                }
                // Block the loop for 5 periods.
                std::thread::sleep(period * 5);
                let second = iv.tick().await;
                assert_eq!(second, start + period, "the missed tick is reported first");
                let third = iv.tick().await;
                match behavior {
                    MissedTickBehavior::Burst => assert_eq!(third, start + period * 2),
                    MissedTickBehavior::Skip => {
                        assert!(third >= start + period * 5);
                        assert_eq!((third - start).as_nanos() % period.as_nanos(), 0, "stays on the grid");
                    }
                    MissedTickBehavior::Delay => assert!(third >= start + period * 6),
                }
                assert!(Instant::now() >= third);
            }
        });
    }

    fn sleep_reset_and_move_between_tasks(rt) {
        rt.block_on(async {
            let mut s = sleep(Duration::from_secs(3600));
            let r = timeout(Duration::from_millis(2), &mut s).await;
            assert!(r.is_err());
            let target = Instant::now() + Duration::from_millis(4);
            s.reset(target);
            // Sleep is Send + Unpin: finish it in another task.
            spawn(s).await.unwrap();
            assert!(Instant::now() >= target);
            assert_eq!(coil::runtime::stats().unwrap().timers, 0);
        });
    }
}

#[test]
#[should_panic(expected = "non-zero period")]
fn zero_interval_panics() {
    let _ = time::interval(Duration::ZERO);
}

#[test]
fn instant_arithmetic_saturates() {
    let now = Instant::now();
    assert_eq!(now - (now + Duration::from_secs(1)), Duration::ZERO);
    assert!(now.checked_add(Duration::MAX).is_none());
    assert_eq!(
        (now + Duration::from_millis(5)) - now,
        Duration::from_millis(5)
    );
    let std_now: std::time::Instant = now.into();
    assert_eq!(Instant::from_std(std_now), now);
}

async fn zero_sleep_yields() {
    use std::cell::Cell;
    use std::rc::Rc;
    for past in [false, true] {
        let ran = Rc::new(Cell::new(0));
        let r = ran.clone();
        let other = spawn(async move { r.set(r.get() + 1) });
        if past {
            sleep_until(Instant::now() - Duration::from_millis(5)).await;
        } else {
            sleep(Duration::ZERO).await;
        }
        assert_eq!(
            ran.get(),
            1,
            "the ready task ran while sleep(0) was suspended (past: {past})"
        );
        other.await.unwrap();
    }
    // Exactly one suspension: a task polled once per turn sees it.
    let mut polls = 0;
    let mut s = std::pin::pin!(sleep(Duration::ZERO));
    std::future::poll_fn(|cx| {
        polls += 1;
        match s.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(()),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
    .await;
    assert_eq!(polls, 2, "sleep(0) is pending exactly once");
}

async fn equal_deadlines_in_order(d: Duration) {
    use std::cell::RefCell;
    use std::rc::Rc;
    let order = Rc::new(RefCell::new(Vec::new()));
    let deadline = Instant::now() + d;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let order = order.clone();
            spawn(async move {
                sleep_until(deadline).await;
                order.borrow_mut().push(i);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.borrow(), (0..8).collect::<Vec<_>>());
}

async fn equal_sleeps_in_order(d: Duration) {
    use std::cell::RefCell;
    use std::rc::Rc;
    let order = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = (1..=2)
        .map(|i| {
            let order = order.clone();
            spawn(async move {
                sleep(d).await;
                order.borrow_mut().push(i);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.borrow(), vec![1, 2]);
}

/// Under the simulator the virtual clock makes the deadlines exact; the
/// wake order of one tick is the seed's (the simulator explores orders on
/// purpose), so only the instant is checked there, and `sleep(0)` still
/// lets a ready task run first.
#[test]
fn sim_zero_sleep_yields_and_equal_deadlines_wake_together() {
    coil::sim::Builder::new().seed(3).run(async {
        zero_sleep_yields().await;
        let deadline = Instant::now() + Duration::from_secs(3);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                spawn(async move {
                    sleep_until(deadline).await;
                    Instant::now()
                })
            })
            .collect();
        for t in tasks {
            let woke = t.await.unwrap();
            assert!(
                woke >= deadline && woke < deadline + Duration::from_millis(2),
                "{woke:?}"
            );
        }
    });
}

/// `sleep(d)` starts at its first poll, like `asyncio.sleep` (a coroutine:
/// its body runs when awaited), not when it is created; its deadline is
/// fixed once the loop files it, and a completed sleep stays complete.
#[test]
fn sim_sleep_starts_at_its_first_poll() {
    coil::sim::Builder::new().seed(4).run(async {
        let d = Duration::from_millis(10);
        let start = Instant::now();
        let mut s = sleep(d);
        sleep(Duration::from_millis(50)).await;
        // Not started: where it would end if it started now.
        let unstarted = s.deadline();
        assert!(
            unstarted >= start + Duration::from_millis(60)
                && unstarted < start + Duration::from_millis(61),
            "{:?}",
            unstarted - start
        );
        // Started (filed at this virtual instant), not yet due.
        let started = Instant::now();
        assert!(timeout(Duration::from_millis(1), &mut s).await.is_err());
        let deadline = s.deadline();
        assert!(
            deadline >= started + d && deadline < started + d + Duration::from_millis(1),
            "{deadline:?} for a sleep started at {started:?}"
        );
        assert!(!s.is_elapsed());
        (&mut s).await;
        let woke = Instant::now();
        assert!(woke >= started + d, "woke {woke:?}, started {started:?}");
        assert!(s.is_elapsed());
        assert!(s.deadline() <= woke);
        // Complete stays complete: polled again, it files no timer and is
        // ready without waiting for one (not `d` later).
        let again = Instant::now();
        (&mut s).await;
        assert!(Instant::now() < again + d, "{:?}", Instant::now() - again);
        assert_eq!(coil::runtime::stats().unwrap().timers, 0);
    });
}

/// Polls `s` once (its first poll files it as pending: `rt/timers.rs`).
async fn poll_once(s: &mut time::Sleep) -> bool {
    let mut s = std::pin::Pin::new(s);
    std::future::poll_fn(|cx| std::task::Poll::Ready(s.as_mut().poll(cx).is_ready())).await
}

driver_test! {
    fn a_pending_sleep_reset_or_dropped_before_the_loop_files_it(rt) {
        // A `sleep(d)` polled once is pending (not filed) until the loop's
        // next clock read; reset or dropped before that read, it leaves no
        // timer behind, and its reset deadline holds.
        rt.block_on(async {
            let mut s = sleep(Duration::from_secs(3600));
            assert!(!poll_once(&mut s).await);
            assert_eq!(coil::runtime::stats().unwrap().timers, 1);
            let target = Instant::now() + Duration::from_millis(3);
            s.reset(target);
            assert_eq!(s.deadline(), target);
            s.await;
            assert!(Instant::now() >= target);
            assert_eq!(coil::runtime::stats().unwrap().timers, 0);

            let mut s = sleep(Duration::from_secs(3600));
            assert!(!poll_once(&mut s).await);
            drop(s);
            assert_eq!(coil::runtime::stats().unwrap().timers, 0);
        });
    }

    fn a_pending_sleeps_deadline_files_it_and_holds(rt) {
        // `deadline()` of a started, not yet filed sleep files the pending
        // timers at that clock read: after `d` from any instant read
        // before, and the sleep completes not before it.
        rt.block_on(async {
            let d = Duration::from_millis(4);
            let before = Instant::now();
            let mut s = sleep(d);
            assert!(!poll_once(&mut s).await);
            assert!(!s.is_elapsed());
            let deadline = s.deadline();
            assert!(deadline >= before + d, "{:?} < {d:?}", deadline - before);
            assert!(deadline <= Instant::now() + d + Duration::from_millis(1));
            assert_eq!(s.deadline(), deadline, "filed once, fixed");
            s.await;
            assert!(Instant::now() >= deadline);
        });
    }

    fn a_fired_sleep_is_elapsed_before_it_is_polled_again(rt) {
        // A `sleep(d)` whose timer fired while its task waited on something
        // else: `is_elapsed()` is true and `deadline()` has passed before the
        // sleep is polled again (not "`d` from now", as if never started).
        rt.block_on(async {
            let d = Duration::from_millis(2);
            let before = Instant::now();
            let mut s = sleep(d);
            assert!(!poll_once(&mut s).await);
            sleep(Duration::from_millis(10)).await;
            assert_eq!(coil::runtime::stats().unwrap().timers, 0, "its timer fired");
            assert!(s.is_elapsed(), "a fired sleep is elapsed");
            let deadline = s.deadline();
            assert!(deadline >= before + d, "{:?}", deadline - before);
            assert!(deadline <= Instant::now(), "a fired sleep's deadline is in the future");
            assert!(poll_once(&mut s).await);
            assert_eq!(s.deadline(), deadline, "fixed at completion, the same instant");
        });
    }

    fn a_due_interval_tick_is_ready_at_once_beside_a_pending_sleep(rt) {
        // An empty wheel lags the clock (`fire_timers` skips it), and
        // `timer_insert` catches it up only when it is empty. A pending
        // `sleep(d)` makes it non-empty without catching it up: a due tick
        // 2 ms in the past must still be recognised as due at once
        // (`Interval`: a missed tick costs no loop turn).
        rt.block_on(async {
            for with_pending in [false, true] {
                // The wheel was last brought up to date before this spin
                // (the previous round's insert, or the runtime's start);
                // the tick is due, and more than one wheel tick after that.
                let spin = |d: Duration| {
                    let t = Instant::now();
                    while t.elapsed() < d {
                        std::hint::spin_loop();
                    }
                };
                spin(Duration::from_millis(2));
                let start = Instant::now();
                spin(Duration::from_millis(2));
                let mut s = sleep(Duration::from_secs(3600));
                if with_pending {
                    assert!(!poll_once(&mut s).await);
                }
                let mut iv = time::interval_at(start, Duration::from_secs(3600));
                let ready = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(iv.poll_tick(cx).is_ready())
                })
                .await;
                assert!(ready, "a tick 2 ms past is due at once (pending sleep: {with_pending})");
                drop(iv);
                drop(s);
                assert_eq!(coil::runtime::stats().unwrap().timers, 0);
            }
        });
    }

    fn a_started_sleep_moved_to_another_loop_counts_again_there(rt) {
        // Started (pending) on one runtime, finished on another: the
        // second counts the whole duration from its own start, and the
        // first keeps a stale timer that fires harmlessly.
        let d = Duration::from_millis(3);
        let mut s = sleep(d);
        rt.block_on(async { assert!(!poll_once(&mut s).await) });
        let other = support::runtime_with(support::choice_like(rt));
        let start = Instant::now();
        other.block_on(s);
        assert!(start.elapsed() >= d, "{:?}", start.elapsed());
        drop(other);
        rt.block_on(async {
            sleep(d).await;
            sleep(d).await;
            assert_eq!(coil::runtime::stats().unwrap().timers, 0, "the stale one fired");
        });
    }
}
