//! Timeouts behave as asyncio's: CPython's `test_timeouts.py` and
//! `test_waitfor.py`, translated case by case (issue 13 item 3, issue 19
//! item 5). Each case runs under every driver (`driver_test!`) and, where
//! the timing matters, under the simulator's virtual clock.

use crate::support;
use support::flag;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use coil::TaskError;
use coil::sim::Builder;
use coil::task::yield_now;
use coil::time::{
    Instant, RescheduleError, sleep, timeout, timeout_at, timeout_scope, wait_for, wait_for_at,
};

/// A task that sleeps for `d`; the flag is set once it has stopped.
fn sleeper(d: Duration) -> (Rc<Cell<bool>>, coil::Task<()>) {
    let (stopped, guard) = flag();
    let task = coil::spawn(async move {
        let _guard = guard;
        sleep(d).await;
    });
    (stopped, task)
}

/// test_waitfor `test_wait_for` and `test_wait_for_waits_for_task_cancellation`:
/// on expiry the task is cancelled, and `wait_for` returns only once it has
/// stopped (its future dropped); `shield` keeps it running.
fn wait_for_cancels_the_task_and_waits_for_it(rt: &coil::Runtime) {
    rt.block_on(async {
        let (stopped, task) = sleeper(Duration::from_secs(3600));
        let t0 = Instant::now();
        let r = wait_for(Duration::from_millis(5), task).await;
        assert!(r.is_err(), "{r:?}");
        assert!(t0.elapsed() >= Duration::from_millis(5));
        assert!(stopped.get(), "the task had stopped when wait_for returned");

        // A task that finishes first gives its value, and is not cancelled.
        let task = coil::spawn(async { 7 });
        assert_eq!(
            wait_for(Duration::from_secs(3600), task)
                .await
                .unwrap()
                .unwrap(),
            7
        );

        // shield(task) under a timeout: the task runs on (asyncio's way to
        // keep it), and its handle can still be awaited.
        let (done, guard) = flag();
        let task = coil::spawn(async move {
            sleep(Duration::from_millis(10)).await;
            drop(guard);
            1
        });
        let shielded = coil::shield(task);
        let mut shielded = std::pin::pin!(shielded);
        assert!(
            timeout(Duration::from_millis(1), shielded.as_mut())
                .await
                .is_err()
        );
        assert!(!done.get());
        assert_eq!(shielded.await.unwrap(), 1);
        assert!(done.get());
    });
}

/// test_waitfor `test_cancel_wait_for`: cancelling the task that waits
/// cancels the task waited for.
fn cancelling_the_waiter_cancels_the_task(rt: &coil::Runtime) {
    rt.block_on(async {
        let (stopped, inner) = sleeper(Duration::from_secs(3600));
        let outer = coil::spawn(wait_for(Duration::from_secs(3600), inner));
        yield_now().await; // outer starts waiting
        outer.cancel();
        assert!(outer.await.unwrap_err().is_cancelled());
        // The inner task stops when the loop next gets to it.
        let s = stopped.clone();
        assert!(
            support::yield_until(move || s.get(), 3).await,
            "the inner task was cancelled with its waiter"
        );
    });
}

/// test_waitfor `test_wait_for_timeout_less_then_0_or_0_future_done`,
/// `..._coroutine_do_not_started` and `test_wait_for_timeout_less_then_0_or_0`:
/// a zero or past deadline does not start a future that has not started,
/// returns a finished task's result, and cancels an unfinished task.
fn zero_or_past_deadline_does_not_start_the_future(rt: &coil::Runtime) {
    rt.block_on(async {
        let past = Instant::now();
        sleep(Duration::from_millis(1)).await;
        // The loop held for 3 ms: its timer wheel now lags the clock by more
        // than a tick (a loaded machine does this), and a past deadline must
        // still count as passed. The blocking sleep is what is tested here.
        std::thread::sleep(Duration::from_millis(3));
        for deadline in [None, Some(past)] {
            let started = Rc::new(Cell::new(false));
            let s = started.clone();
            let body = async move {
                s.set(true);
                1
            };
            let r = match deadline {
                None => timeout(Duration::ZERO, body).await,
                Some(d) => timeout_at(d, body).await,
            };
            assert!(r.is_err(), "{r:?}");
            assert!(!started.get(), "the body never ran");

            // A task not started yet is cancelled before it runs.
            let started = Rc::new(Cell::new(false));
            let s = started.clone();
            let task = coil::spawn(async move { s.set(true) });
            let r = match deadline {
                None => wait_for(Duration::ZERO, task).await,
                Some(d) => wait_for_at(d, task).await,
            };
            assert!(r.is_err(), "{r:?}");
            assert!(!started.get(), "the task never ran");

            // A finished task gives its result.
            let task = coil::spawn(async { 2 });
            while !task.is_finished() {
                yield_now().await;
            }
            let r = match deadline {
                None => wait_for(Duration::ZERO, task).await,
                Some(d) => wait_for_at(d, task).await,
            };
            assert_eq!(r.unwrap().unwrap(), 2);

            // A running task is cancelled and waited for.
            let (stopped, task) = sleeper(Duration::from_secs(3600));
            yield_now().await;
            assert!(wait_for(Duration::ZERO, task).await.is_err());
            assert!(stopped.get());
        }
    });
}

/// test_timeouts `test_nested_timeouts`: two nested scopes with the same
/// deadline: the outer one fires, the inner body sees cancellation (in coil:
/// it is dropped, never seeing its own timeout's `Elapsed`).
fn nested_timeouts_with_one_deadline_the_outer_fires(rt: &coil::Runtime) {
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_millis(10);
        let inner_saw_elapsed = Rc::new(Cell::new(false));
        let saw = inner_saw_elapsed.clone();
        let (inner_dropped, guard) = flag();
        let outer = timeout_at(deadline, async move {
            let _guard = guard;
            let r = timeout_at(deadline, sleep(Duration::from_secs(10))).await;
            saw.set(r.is_err());
            r
        })
        .await;
        assert!(outer.is_err(), "the outer timeout fired: {outer:?}");
        assert!(
            !inner_saw_elapsed.get(),
            "the inner body saw cancellation, not its timeout"
        );
        assert!(inner_dropped.get());
    });
}

/// test_timeouts `test_timeout_disabled`, `test_timeout_at_disabled` and
/// `test_reschedule`: a `None` deadline never fires, and can be set later;
/// `when()` and `expired()` report the state.
fn disabled_timeout_can_be_set_later(rt: &coil::Runtime) {
    rt.block_on(async {
        let r = timeout(None, async {
            sleep(Duration::from_millis(5)).await;
            1
        })
        .await;
        assert_eq!(r, Ok(1));
        let t = timeout_at(None, std::future::ready(2));
        assert_eq!(t.when(), None);
        assert!(!t.expired());
        assert_eq!(t.await, Ok(2));

        // Rescheduled from inside the body (asyncio: `cm.reschedule(..)`).
        let when = Rc::new(Cell::new(None));
        let w = when.clone();
        let r = timeout_scope(None, |cm| async move {
            assert_eq!(cm.when(), None);
            let deadline = Instant::now() + Duration::from_millis(5);
            cm.reschedule(Some(deadline)).unwrap();
            w.set(cm.when());
            sleep(Duration::from_secs(3600)).await;
        })
        .await;
        assert!(r.is_err(), "the rescheduled timeout fired");
        assert!(when.get().is_some());

        // Rescheduled on the future itself; disabled again.
        let mut t = std::pin::pin!(timeout(
            Duration::from_millis(1),
            sleep(Duration::from_millis(5))
        ));
        t.as_mut().reschedule(None).unwrap();
        assert_eq!(t.when(), None);
        assert_eq!(t.as_mut().await, Ok(()));
        assert!(!t.expired());
    });
}

driver_test! {
    fn wait_for_cancels(rt) { wait_for_cancels_the_task_and_waits_for_it(rt) }
    fn wait_for_cancelled_waiter(rt) { cancelling_the_waiter_cancels_the_task(rt) }
    fn zero_deadline(rt) { zero_or_past_deadline_does_not_start_the_future(rt) }
    fn nested_same_deadline(rt) { nested_timeouts_with_one_deadline_the_outer_fires(rt) }
    fn disabled_then_set(rt) { disabled_timeout_can_be_set_later(rt) }
}

/// The same cases on the simulator's virtual clock, where the deadlines are
/// exact.
#[test]
fn on_the_simulator() {
    let sim = Builder::new().seed(7);
    let ms = Duration::from_millis;
    sim.run(async {
        // test_waitfor `test_wait_for`: the task sleeps 100 ms, wait_for gives
        // up after 50 ms (virtual), having cancelled it.
        let (stopped, task) = sleeper(ms(100));
        let t0 = Instant::now();
        assert!(wait_for(ms(50), task).await.is_err());
        let took = t0.elapsed();
        assert!(took >= ms(50) && took < ms(52), "{took:?}");
        assert!(stopped.get());

        // test_timeouts `test_nested_timeouts`.
        let deadline = Instant::now() + ms(10);
        let r = timeout_at(deadline, async move {
            let r = timeout_at(deadline, sleep(ms(1000))).await;
            unreachable!("the inner timeout fired: {r:?}");
        })
        .await;
        assert!(r.is_err());
        assert!(Instant::now() - deadline < ms(1), "fired at the deadline");

        // `test_reschedule`: a later deadline lets a slower body finish; an
        // earlier one cuts it short.
        let t0 = Instant::now();
        let r = timeout_scope(Some(t0 + ms(5)), |cm| async move {
            cm.reschedule(Some(t0 + ms(30))).unwrap();
            sleep(ms(20)).await;
            cm.expired()
        })
        .await;
        assert_eq!(r, Ok(false));
        let t0 = Instant::now();
        let r = timeout_scope(None, |cm| async move {
            let c = cm.clone();
            coil::spawn(async move {
                sleep(ms(3)).await;
                c.reschedule(Some(Instant::now() + ms(2))).unwrap();
            })
            .await
            .unwrap();
            sleep(ms(1000)).await;
        })
        .await;
        assert!(r.is_err());
        let took = Instant::now() - t0;
        assert!(
            took >= ms(5) && took < ms(7),
            "rescheduled from another task: {took:?}"
        );

        // test_timeouts `test_reschedule` (the RuntimeError half): an expired
        // timeout, and one whose body finished or that was dropped, refuse
        // a new deadline and keep theirs.
        let kept = Rc::new(RefCell::new(None));
        let k = kept.clone();
        let r = timeout_scope(Some(Instant::now() + ms(5)), |cm| async move {
            *k.borrow_mut() = Some(cm);
            sleep(ms(1000)).await;
        })
        .await;
        assert!(r.is_err());
        let cm = kept.borrow_mut().take().unwrap();
        let when = cm.when();
        assert_eq!(cm.reschedule(None), Err(RescheduleError::Expired));
        assert_eq!(cm.when(), when, "an expired timeout keeps its deadline");
        let r = timeout_scope(Some(Instant::now() + ms(50)), |cm| async move { cm }).await;
        let cm = r.unwrap();
        assert_eq!(cm.reschedule(None), Err(RescheduleError::Finished));
        assert!(!cm.expired());
        let scope = timeout_scope(Some(Instant::now() + ms(50)), |cm| {
            *kept.borrow_mut() = Some(cm);
            sleep(ms(1))
        });
        drop(scope);
        let cm = kept.borrow_mut().take().unwrap();
        assert_eq!(cm.reschedule(None), Err(RescheduleError::Finished));
        // The future itself, after it answered.
        let mut t = std::pin::pin!(timeout(ms(5), sleep(ms(1000))));
        assert!(t.as_mut().await.is_err());
        assert_eq!(t.as_mut().reschedule(None), Err(RescheduleError::Expired));
        let mut t = std::pin::pin!(timeout(ms(50), std::future::ready(1)));
        assert_eq!(t.as_mut().await, Ok(1));
        assert_eq!(t.as_mut().reschedule(None), Err(RescheduleError::Finished));
        assert_eq!(
            RescheduleError::Expired.to_string(),
            "cannot reschedule a timeout whose deadline has passed: it has expired"
        );

        // test_waitfor `test_wait_for_race_condition`: the task finishes
        // before the deadline and its value is returned.
        let task = coil::spawn(async move {
            sleep(ms(10)).await;
            3
        });
        let r = wait_for(ms(20), task).await;
        assert_eq!(r.unwrap().map_err(|e: TaskError| e.to_string()), Ok(3));
    });
}
