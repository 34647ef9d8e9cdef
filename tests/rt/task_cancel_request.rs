//! Cancellation a task can answer (issue 19 item 8, decision 0010): a task
//! spawned with `Builder::cooperative_cancel` gets `Task::cancel` as a
//! request, sees it as `Err(Cancelled)` from a `cancellable` scope, awaits
//! its cleanup and finishes cancelled with `Cancelled::reraise`. The asyncio
//! patterns, and CPython's `test_cancelling` / `test_uncancel_*` shapes.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coil::task::{Builder, cancellable, cancelled, current, yield_now};
use coil::time::{sleep, wait_for};
use coil::{TaskGroup, task_group};

type Log = Rc<RefCell<Vec<String>>>;

/// A log and a second handle to it, for the task.
fn new_log() -> (Log, Log) {
    let log: Log = Rc::default();
    (log.clone(), log)
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

const LONG: Duration = Duration::from_secs(3600);

driver_test! {
    // try: await sleep(long) except CancelledError: await cleanup(); raise
    fn except_cancelled_await_cleanup_then_raise(rt) {
        rt.block_on(async {
            let (log, l) = new_log();
            let t = Builder::new().name("worker").cooperative_cancel().spawn(async move {
                match cancellable(sleep(LONG)).await {
                    Ok(()) => unreachable!("an hour passed"),
                    Err(c) => {
                        push(&l, format!("caught {:?}", c.message()));
                        // The cleanup awaits: a timer and a yield.
                        sleep(Duration::from_millis(1)).await;
                        yield_now().await;
                        push(&l, "cleaned up");
                        c.reraise::<u32>().await
                    }
                }
            });
            yield_now().await;
            assert!(t.cancel_with("bye"));
            let err = t.await.unwrap_err();
            assert!(err.is_cancelled());
            assert_eq!(err.to_string(), r#"task "worker" was cancelled: bye"#);
            assert_eq!(entries(&log), ["caught Some(\"bye\")", "cleaned up"]);
        });
    }
}

driver_test! {
    // Without the opt-in, a cancel is still a drop: no cleanup code runs.
    fn without_the_opt_in_cancel_still_drops(rt) {
        rt.block_on(async {
            let (log, l) = new_log();
            let t = coil::spawn(async move {
                if let Err(_c) = cancellable(sleep(LONG)).await {
                    push(&l, "cleanup ran");
                }
            });
            yield_now().await;
            assert!(t.cancel());
            assert!(!t.cancel(), "a second hard cancel does nothing");
            assert_eq!(t.cancelling(), 1);
            assert!(t.await.unwrap_err().is_cancelled());
            assert!(entries(&log).is_empty());
        });
    }
}

driver_test! {
    // A task may swallow the request and carry on (asyncio: "does not
    // guarantee that the Task will be cancelled"); `uncancel` takes it back.
    fn a_task_may_answer_by_carrying_on(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let first = cancellable(sleep(LONG)).await.is_err();
                let me = current().unwrap();
                let counted = me.cancelling();
                let left = me.uncancel();
                // A ready result wins over nothing: the scope works again.
                let after = cancellable(async { 7 }).await.unwrap();
                (first, counted, left, after)
            });
            yield_now().await;
            assert!(t.cancel());
            assert_eq!(t.await.unwrap(), (true, 1, 0, 7));
        });
    }
}

driver_test! {
    // A ready result is never lost to a request that arrives with it.
    fn a_ready_result_wins_over_a_request(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let me = current().unwrap();
                me.cancel();
                // Ready at once: the value, and the request stays pending ...
                let v = cancellable(async { "value" }).await;
                // ... for the next scope that would wait.
                let w = cancellable(yield_now()).await;
                (v.ok(), w.is_err())
            });
            assert_eq!(t.await.unwrap(), (Some("value"), true));
        });
    }
}

driver_test! {
    // Cancellation during `finally`: a second request reaches a cancellable
    // scope in the cleanup; cleanup outside any scope is not interrupted
    // (delivery is edge-triggered, as asyncio's).
    fn a_second_request_during_cleanup(rt) {
        rt.block_on(async {
            let (log, l) = new_log();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                let c = cancellable(sleep(LONG)).await.unwrap_err();
                push(&l, "first");
                // Plain await in cleanup: the second request does not cut it.
                sleep(Duration::from_millis(2)).await;
                push(&l, format!("plain cleanup done, cancelling={}", current().unwrap().cancelling()));
                // A cancellable step in cleanup takes the pending request.
                match cancellable(sleep(LONG)).await {
                    Ok(()) => unreachable!(),
                    Err(second) => push(&l, format!("second: {:?}", second.message())),
                }
                c.reraise::<()>().await
            });
            yield_now().await;
            assert!(t.cancel_with("one"));
            // Let the task take the first request and start its cleanup.
            while entries(&log).is_empty() {
                yield_now().await;
            }
            assert!(t.cancel_with("two"));
            assert_eq!(t.cancelling(), 2);
            let err = t.await.unwrap_err();
            assert_eq!(err.cancelled().unwrap().message(), Some("two"));
            assert_eq!(
                entries(&log),
                ["first", "plain cleanup done, cancelling=2", r#"second: Some("two")"#]
            );
        });
    }
}

driver_test! {
    // CPython test_cancelling: every request counts; uncancel counts down.
    fn cancelling_counts_requests(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let _ = cancelled().await;
                let me = current().unwrap();
                let seen = me.cancelling();
                // Wait for the main future's third request.
                while me.cancelling() < 3 {
                    yield_now().await;
                }
                let left = (me.uncancel(), me.uncancel(), me.uncancel(), me.uncancel());
                (seen, left)
            });
            assert_eq!(t.cancelling(), 0);
            assert!(t.cancel());
            assert!(t.cancel(), "a request to a running task counts again");
            assert_eq!(t.cancelling(), 2);
            yield_now().await;
            assert!(t.cancel());
            let (seen, left) = t.await.unwrap();
            assert!(seen >= 2, "{seen}");
            assert_eq!(left, (2, 1, 0, 0), "never below zero");
        });
    }
}

driver_test! {
    // CPython test_uncancel_basic / 3.13's rule: uncancel to zero withdraws
    // a request that was not delivered yet.
    fn uncancel_to_zero_withdraws_an_undelivered_request(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let me = current().unwrap();
                me.cancel();
                assert_eq!(me.uncancel(), 0);
                // Nothing is delivered: the sleep runs to its end.
                cancellable(sleep(Duration::from_millis(1))).await.is_ok()
            });
            assert!(t.await.unwrap());

            // Not at zero: the request stays.
            let t = Builder::new().cooperative_cancel().spawn(async {
                let me = current().unwrap();
                me.cancel();
                me.cancel();
                assert_eq!(me.uncancel(), 1);
                cancellable(sleep(LONG)).await.is_err()
            });
            assert!(t.await.unwrap());
        });
    }
}

driver_test! {
    // abort() is the drop for every task: a cooperative one runs no cleanup.
    fn abort_drops_a_cooperative_task(rt) {
        rt.block_on(async {
            let (log, l) = new_log();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                if cancellable(sleep(LONG)).await.is_err() {
                    push(&l, "cleanup");
                }
            });
            yield_now().await;
            assert!(t.abort());
            assert!(!t.abort());
            // Found by review: a request to an aborted task is not one.
            let before = t.cancelling();
            assert!(!t.cancel(), "cancel after abort requests nothing");
            assert!(!t.cancel_with("late"), "nor with a message");
            assert_eq!(t.cancelling(), before, "refused requests are not counted");
            let err = t.await.unwrap_err();
            assert!(err.is_cancelled());
            assert_eq!(err.cancelled().and_then(|c| c.message()), None, "no message replaced the abort's");
            assert!(entries(&log).is_empty());
        });
    }
}

/// A child that answers a cancel: awaits its cleanup, logs, re-raises.
async fn child(log: Log, name: &'static str) {
    if let Err(c) = cancellable(sleep(LONG)).await {
        sleep(Duration::from_millis(1)).await;
        push(&log, format!("{name} cleaned up"));
        c.reraise::<()>().await;
    }
}

driver_test! {
    // asyncio: `async with timeout(t): async with TaskGroup() as tg: ...`
    // whose children clean up with awaits. coil: wait_for on a cooperative
    // task whose group has cooperative children. The timeout returns only
    // after every child's cleanup has run.
    fn a_timeout_around_a_task_group_waits_for_cleanup(rt) {
        rt.block_on(async {
            let (log, l) = new_log();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                let r = task_group(|tg: TaskGroup| {
                    let l = l.clone();
                    async move {
                        for name in ["a", "b"] {
                            drop(tg.builder().cooperative_cancel().spawn(child(l.clone(), name)).unwrap());
                        }
                        sleep(LONG).await;
                        Ok(())
                    }
                })
                .await;
                let err = r.unwrap_err();
                assert!(err.is_owner_cancelled());
                assert_eq!(err.cancelled(), [0, 1], "both children ended cancelled");
                push(&l, "group returned");
                err.into_cancelled().unwrap().reraise::<()>().await
            });
            let r = wait_for(Duration::from_millis(20), t).await;
            assert!(r.is_err(), "elapsed: {r:?}");
            let mut got = entries(&log);
            got[..2].sort();
            assert_eq!(got, ["a cleaned up", "b cleaned up", "group returned"]);
        });
    }
}

/// The same under the simulator, where the deadline is exact: the timeout
/// fires at 20 ms and returns after the children's 1 ms cleanup.
#[test]
fn a_timeout_around_a_task_group_sim() {
    coil::sim::Builder::new().seed(3).run(async {
        let (log, l) = new_log();
        let start = coil::time::Instant::now();
        let t = Builder::new().cooperative_cancel().spawn(async move {
            let r = task_group(|tg: TaskGroup| async move {
                drop(
                    tg.builder()
                        .cooperative_cancel()
                        .spawn(child(l, "only"))
                        .unwrap(),
                );
                sleep(LONG).await;
                Ok(())
            })
            .await;
            r.unwrap_err()
                .into_cancelled()
                .unwrap()
                .reraise::<()>()
                .await
        });
        assert!(wait_for(Duration::from_millis(20), t).await.is_err());
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(21) && took < Duration::from_millis(25),
            "{took:?}"
        );
        assert_eq!(entries(&log), ["only cleaned up"]);
    });
}

driver_test! {
    // The request arrives after the body returned, while the group waits
    // for its children: they are cancelled and waited for all the same.
    fn a_request_while_the_group_waits_for_children(rt) {
        rt.block_on(async {
            let (log, l) = new_log();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                let r = task_group(|tg: TaskGroup| async move {
                    drop(tg.builder().cooperative_cancel().spawn(child(l, "late")).unwrap());
                    Ok("body done")
                })
                .await;
                r.unwrap_err().into_cancelled().map(|c| c.message().map(str::to_owned))
            });
            yield_now().await;
            yield_now().await;
            assert!(t.cancel_with("stop"));
            let got = t.await.unwrap().map_err(|_| "not the owner's request");
            assert_eq!(got, Ok(Some("stop".to_owned())));
            assert_eq!(entries(&log), ["late cleaned up"]);
        });
    }
}

driver_test! {
    // A group child cancelled through its handle answers too, and its
    // cancellation does not fail the group.
    fn a_cooperative_group_child_cancelled_alone(rt) {
        rt.block_on(async {
            let (log, l) = new_log();
            let r = task_group(|tg: TaskGroup| async move {
                let c = tg.builder().cooperative_cancel().spawn(child(l, "c")).unwrap();
                yield_now().await;
                assert!(c.cancel());
                Ok(())
            })
            .await;
            assert!(r.is_ok());
            assert_eq!(entries(&log), ["c cleaned up"]);
        });
    }
}

driver_test! {
    // A request from another thread reaches the task (the handle is Send).
    fn a_request_from_another_thread(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let c = cancelled().await;
                format!("answered {:?}", c.message())
            });
            yield_now().await;
            let t = std::thread::spawn(move || {
                assert!(t.cancel_with("remote"));
                t
            })
            .join()
            .unwrap();
            assert_eq!(t.await.unwrap(), "answered Some(\"remote\")");
        });
    }
}

#[test]
fn outside_a_task_cancellable_is_the_future() {
    coil::sim::Builder::new().seed(1).run(async {
        assert_eq!(cancellable(async { 3 }).await.unwrap(), 3);
    });
}
