//! asyncio's `wait`, `as_completed`, `gather` of tasks and `shield`, as
//! CPython's test_tasks checks them (issue 19 item 6): every task finished in
//! the same iteration is in `done`; as_completed's awaitables in any order and
//! with a timeout; a failing gather of tasks leaves the others running, a
//! cancelled one cancels them; a shielded task stays ours to await or cancel.

use crate::support;
use support::flag;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use coil::task::yield_now;
use coil::time::{sleep, timeout};
use coil::{TaskError, WaitFor, spawn};
use support::panic_msg;

async fn yields(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

driver_test! {
    // CPython test_wait_really_done: `a` finishes one iteration before `b`,
    // yet asyncio.wait(FIRST_COMPLETED) reports both.
    fn wait_reports_every_task_done_in_the_same_iteration(rt) {
        rt.block_on(async {
            let a = spawn(yields(1));
            let b = spawn(yields(2));
            let (ida, idb) = (a.id(), b.id());
            let (done, pending) = coil::wait([b, a], WaitFor::FirstCompleted, None).await;
            let ids: Vec<_> = done.iter().map(|c| c.id).collect();
            assert_eq!(ids, [idb, ida], "both done, in input order");
            assert_eq!(done.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 1]);
            assert!(pending.is_empty());
        });
    }

    fn wait_first_completed_still_leaves_later_tasks_pending(rt) {
        rt.block_on(async {
            let quick = spawn(yields(1));
            let slow = spawn(sleep(Duration::from_secs(3600)));
            let (done, pending) = coil::wait([slow, quick], WaitFor::FirstCompleted, None).await;
            assert_eq!(done.len(), 1);
            assert_eq!(done[0].index, 1);
            assert_eq!(pending.len(), 1);
            assert!(!pending[0].is_finished(), "wait cancels nothing");
            pending[0].cancel();
        });
    }

    // CPython test_as_completed_concurrent: the awaitables are awaited at
    // once, each in a task of its own, and give both results.
    fn as_completed_awaitables_run_concurrently_in_tasks(rt) {
        rt.block_on(async {
            let tasks = ["a", "b"].map(|v| spawn(async move {
                sleep(Duration::from_millis(5)).await;
                v
            }));
            let nexts: Vec<_> = coil::as_completed_tasks(tasks, None).map(spawn).collect();
            assert_eq!(nexts.len(), 2);
            let mut got: Vec<&str> = coil::gather_all(nexts)
                .await
                .into_iter()
                .map(|r| r.unwrap().unwrap().result.unwrap())
                .collect();
            got.sort();
            assert_eq!(got, ["a", "b"]);
        });
    }

    // Any order: the last awaitable, awaited first, gives the first result.
    fn as_completed_awaitables_in_any_order(rt) {
        rt.block_on(async {
            let tasks = [20u64, 1, 10].map(|ms| spawn(async move {
                sleep(Duration::from_millis(ms)).await;
                ms
            }));
            let mut nexts: Vec<_> = coil::as_completed_tasks(tasks, None).collect();
            let mut order = Vec::new();
            while let Some(next) = nexts.pop() {
                let c = next.await.unwrap();
                order.push((c.index, c.result.unwrap()));
            }
            assert_eq!(order, [(1, 1), (2, 10), (0, 20)]);
        });
    }

    // CPython test_as_completed_with_timeout: the first result comes, the
    // second awaitable raises TimeoutError; the slow task is not cancelled.
    fn as_completed_timeout_errors_and_cancels_nothing(rt) {
        rt.block_on(async {
            let (stopped, guard) = flag();
            let quick = spawn(async { sleep(Duration::from_millis(1)).await; "quick" });
            let slow = spawn(async move {
                let _guard = guard;
                sleep(Duration::from_secs(3600)).await;
                "slow"
            });
            let mut it = coil::as_completed_tasks([slow, quick], Duration::from_millis(100));
            assert_eq!(it.len(), 2);
            assert_eq!(it.next().unwrap().await.unwrap().result.unwrap(), "quick");
            assert!(it.next().unwrap().await.is_err(), "the deadline passed");
            assert!(it.next().is_none());
            drop(it);
            yields(2).await;
            assert!(!stopped.get(), "the slow task runs on, detached");
        });
    }

    // The awaitable whose waker the tasks hold goes away while another
    // waits: the other must take over, not hang (the watchdog fails a hang).
    fn as_completed_dropped_waiter_hands_over(rt) {
        rt.block_on(async {
            let (tx, rx) = coil::sync::oneshot::channel::<u32>();
            let a = spawn(async move { rx.await.unwrap() });
            let b = spawn(async {
                sleep(Duration::from_secs(3600)).await;
                0
            });
            let mut it = coil::as_completed_tasks([a, b], None);
            let x = spawn(it.next().unwrap());
            yields(2).await; // x registered with both tasks
            let y = spawn(it.next().unwrap());
            yields(2).await; // y's waker replaced x's in both tasks
            y.cancel(); // y goes away without a result
            yields(2).await;
            tx.send(5).unwrap();
            let got = timeout(Duration::from_secs(30), x).await;
            assert_eq!(got.unwrap().unwrap().unwrap().result.unwrap(), 5, "x got a's result");
        });
    }

    // CPython test_one_exception (gather): the first failure propagates,
    // the other children are not cancelled.
    fn gather_tasks_failure_leaves_the_others_running(rt) {
        rt.block_on(async {
            let (tx, rx) = coil::sync::oneshot::channel::<u32>();
            let finished = Rc::new(Cell::new(None));
            let f = finished.clone();
            let other = spawn(async move {
                let v = rx.await.unwrap();
                f.set(Some(v));
                v
            });
            let bad = spawn(async { panic!("boom") });
            let err = coil::gather_tasks([other, bad]).await.unwrap_err();
            assert_eq!(panic_msg(&*err.into_panic()), "boom");
            tx.send(3).unwrap();
            yields(2).await;
            assert_eq!(finished.get(), Some(3), "the sibling ran on to its end");
        });
    }

    // CPython test_cancel_gather_*: cancelling the gather cancels every
    // child not done; the finished ones keep their results.
    fn gather_tasks_cancelled_cancels_the_tasks(rt) {
        rt.block_on(async {
            let (s1, g1) = flag();
            let (s2, g2) = flag();
            let t1 = spawn(async move { let _g = g1; sleep(Duration::from_secs(3600)).await; });
            let t2 = spawn(async move { let _g = g2; sleep(Duration::from_secs(3600)).await; });
            let done = spawn(async {});
            let r = timeout(Duration::from_millis(5), coil::gather_tasks([t1, done, t2])).await;
            assert!(r.is_err());
            yields(2).await;
            assert!(s1.get() && s2.get(), "both sleepers were cancelled with the gather");
        });
    }

    fn gather_tasks_settled_is_return_exceptions(rt) {
        rt.block_on(async {
            let cancelled = spawn(sleep(Duration::from_secs(3600)));
            cancelled.cancel();
            let tasks = vec![
                spawn(async { 1 }),
                spawn(async { panic!("two") }),
                spawn(async { sleep(Duration::from_millis(2)).await; 3 }),
            ];
            let out = coil::gather_tasks(tasks).settled().await;
            assert_eq!(out.len(), 3);
            assert_eq!(out[0].as_ref().ok(), Some(&1));
            assert!(out[1].as_ref().is_err_and(TaskError::is_panic));
            assert_eq!(out[2].as_ref().ok(), Some(&3));
            let out = coil::gather_tasks([cancelled]).await;
            assert!(matches!(out, Err(TaskError::Cancelled(_))), "a cancelled child fails gather");
        });
    }

    // CPython test_shield_result / test_shield_cancel_outer: the outer
    // await gives up; the inner task runs on and is still ours.
    fn shield_by_reference_keeps_the_task_to_await_later(rt) {
        rt.block_on(async {
            let log = Rc::new(RefCell::new(Vec::new()));
            let l = log.clone();
            let mut task = spawn(async move {
                sleep(Duration::from_millis(20)).await;
                l.borrow_mut().push("inner done");
                42
            });
            let r = timeout(Duration::from_millis(1), coil::shield(&mut task)).await;
            assert!(r.is_err(), "the outer await timed out");
            assert!(!task.is_finished());
            assert_eq!(task.await.unwrap(), 42, "awaited later, after the shield gave up");
            assert_eq!(*log.borrow(), ["inner done"]);
        });
    }

    fn shield_by_reference_keeps_the_task_to_cancel_later(rt) {
        rt.block_on(async {
            let (stopped, guard) = flag();
            let mut task = spawn(async move {
                let _g = guard;
                sleep(Duration::from_secs(3600)).await;
            });
            let r = timeout(Duration::from_millis(1), coil::shield(&mut task)).await;
            assert!(r.is_err());
            assert!(!stopped.get(), "the shield did not cancel it");
            assert!(task.cancel(), "but its handle still can");
            assert!(matches!(task.await, Err(TaskError::Cancelled(_))));
            assert!(stopped.get());
        });
    }
}

// Found by review: each failed before its fix.

// The module doc of gather_tasks.rs says of gather_tasks and try_gather_tasks:
// "These two hold the handles as tasks: a gather that is dropped before it
// finished cancels the tasks it still waits for". TryGatherTasks has no Drop:
// a timed-out try_gather_tasks leaves its tasks running, detached.
#[test]
fn try_gather_tasks_dropped_cancels_its_tasks() {
    coil::run(async {
        let (stopped, guard) = flag();
        let slow = spawn(async move {
            let _guard = guard;
            sleep(Duration::from_secs(3600)).await;
            Ok::<u8, ()>(1)
        });
        let r = timeout(Duration::from_millis(5), coil::try_gather_tasks([slow])).await;
        assert!(r.is_err());
        yields(3).await;
        assert!(
            stopped.get(),
            "a dropped try_gather_tasks should cancel the tasks it waits for, as gather_tasks does"
        );
    });
}

// as_completed_tasks' doc: "With a timeout, every awaitable that has no result
// yet when it passes gives Err(Elapsed) ..., and so does every one awaited
// after it" (asyncio: after the timeout every remaining awaitable raises
// TimeoutError). An awaitable first awaited after the deadline still gets a
// task that finished after the deadline.
#[test]
fn as_completed_tasks_awaitable_after_the_deadline_is_elapsed() {
    coil::run(async {
        let quick = spawn(async { "quick" });
        let late = spawn(async {
            sleep(Duration::from_millis(40)).await;
            "late"
        });
        let mut it = coil::as_completed_tasks([quick, late], Duration::from_millis(10));
        assert_eq!(it.next().unwrap().await.unwrap().result.unwrap(), "quick");
        sleep(Duration::from_millis(80)).await; // past the deadline, and `late` is done
        let second = it.next().unwrap().await;
        assert!(
            second.is_err(),
            "the deadline passed before this awaitable had a result; got Ok({:?})",
            second.map(|c| c.result.unwrap())
        );
    });
}

// wait's doc: `done` holds "every task that finished before `wait` returned".
// Task::poll takes a unit of the coop budget (128 per task poll) per ready
// result, so with more finished tasks than two polls' budget, the settling
// poll returns with finished tasks in `pending`.
#[test]
fn wait_first_completed_reports_every_finished_task_past_the_budget() {
    coil::run(async {
        let tasks: Vec<_> = (0..300u32).map(|i| spawn(async move { i })).collect();
        yields(2).await; // every task has finished
        assert!(tasks.iter().all(|t| t.is_finished()));
        let (done, pending) = coil::wait(tasks, WaitFor::FirstCompleted, None).await;
        let finished_but_pending = pending.iter().filter(|t| t.is_finished()).count();
        assert_eq!(
            (done.len(), finished_but_pending),
            (300, 0),
            "finished tasks were reported pending"
        );
    });
}
