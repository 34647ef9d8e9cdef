//! A cancellation raised again goes to the enclosing scope (decision 0010,
//! "Raising to an enclosing scope"), and a timeout in a task that answers
//! requests is asyncio's `timeout()`: on expiry it sends its task a request,
//! lets the body clean up with awaits, and turns the cancellation that comes
//! back into `Elapsed`. The shapes are CPython's test_timeouts /
//! test_taskgroups cases that need async cleanup.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coil::task::{Builder, cancellable, current, yield_now};
use coil::time::{Elapsed, Instant, sleep, timeout, timeout_at};
use coil::{TaskGroup, task_group};

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

const LONG: Duration = Duration::from_secs(3600);
const SHORT: Duration = Duration::from_millis(5);

/// try: await sleep(LONG) except CancelledError: await cleanup; raise
async fn sleeper(log: Log, name: &'static str) {
    if let Err(c) = cancellable(sleep(LONG)).await {
        sleep(Duration::from_millis(1)).await;
        yield_now().await;
        push(&log, format!("{name} cleaned up"));
        c.reraise::<()>().await;
    }
}

driver_test! {
    // try: (try: await sleep except CancelledError: await a; raise)
    // except CancelledError: await b; raise -- both cleanups run, inner first.
    fn a_reraise_is_caught_by_the_enclosing_scope(rt) {
        rt.block_on(async {
            let log = Log::default();
            let l = log.clone();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                match cancellable(sleeper(l.clone(), "inner")).await {
                    Ok(()) => unreachable!("an hour passed"),
                    Err(c) => {
                        yield_now().await;
                        push(&l, format!("outer caught {:?}", c.message()));
                        c.reraise::<u8>().await
                    }
                }
            });
            yield_now().await;
            assert!(t.cancel_with("bye"));
            let err = t.await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert_eq!(entries(&log), ["inner cleaned up", "outer caught Some(\"bye\")"]);
        });
    }
}

driver_test! {
    // async with timeout(t): try: await sleep except CancelledError: await
    // cleanup; raise -> TimeoutError after the cleanup, and the task goes on
    // with no request left.
    fn a_timeout_lets_its_body_clean_up(rt) {
        rt.block_on(async {
            let log = Log::default();
            let l = log.clone();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                let r = timeout(SHORT, sleeper(l.clone(), "body")).await;
                push(&l, "after the timeout");
                let me = current().unwrap();
                // No request is left over: the next scope that waits waits.
                let next = cancellable(sleep(Duration::from_millis(1))).await;
                (r, me.cancelling(), next.is_ok())
            });
            let (r, cancelling, next_waited) = t.await.unwrap();
            assert!(matches!(r, Err(Elapsed { .. })), "{r:?}");
            assert_eq!(cancelling, 0);
            assert!(next_waited);
            assert_eq!(entries(&log), ["body cleaned up", "after the timeout"]);
        });
    }
}

driver_test! {
    // A body with no scope of its own: the timeout delivers the request
    // itself, as asyncio's cancel reaches whatever await the task is at.
    fn a_timeout_without_a_scope_inside_still_fires(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let r = timeout(SHORT, sleep(LONG)).await;
                let me = current().unwrap();
                let after = cancellable(yield_now()).await;
                (r.is_err(), me.cancelling(), after.is_ok())
            });
            assert_eq!(t.await.unwrap(), (true, 0, true));
        });
    }
}

driver_test! {
    // The body catches the request and returns a value: the timeout returns
    // it (asyncio: no exception leaves the block) and takes its request back.
    fn a_body_that_swallows_the_request_returns_its_value(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let r = timeout(SHORT, async {
                    let caught = cancellable(sleep(LONG)).await.is_err();
                    yield_now().await;
                    caught
                })
                .await;
                (r, current().unwrap().cancelling())
            });
            assert_eq!(t.await.unwrap(), (Ok(true), 0));
        });
    }
}

driver_test! {
    // A request from outside arrives while the expired timeout's body cleans
    // up: it is not the timeout's, so the cancellation goes on and the task
    // ends cancelled (asyncio's `timeout` re-raises CancelledError when
    // `uncancel()` leaves more requests than at entry).
    fn an_outside_request_during_the_cleanup_is_not_turned_into_elapsed(rt) {
        rt.block_on(async {
            let cleaning = Rc::new(coil::sync::Event::new());
            let go_on = Rc::new(coil::sync::Event::new());
            let (c2, g2) = (cleaning.clone(), go_on.clone());
            let log = Log::default();
            let l = log.clone();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                let r = timeout(SHORT, async {
                    if let Err(c) = cancellable(sleep(LONG)).await {
                        c2.set();
                        g2.wait().await;
                        c.reraise::<()>().await;
                    }
                })
                .await;
                push(&l, format!("timeout returned {r:?}"));
            });
            cleaning.wait().await;
            assert!(t.cancel_with("from outside"));
            go_on.set();
            let err = t.await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            assert!(entries(&log).is_empty(), "{:?}", entries(&log));
        });
    }
}

driver_test! {
    // async with timeout(t): async with TaskGroup() as tg: ... -- the
    // children clean up, the group raises, the timeout turns it into
    // TimeoutError, and the task carries on.
    fn a_timeout_around_a_task_group_in_the_task_itself(rt) {
        rt.block_on(async {
            let log = Log::default();
            let l = log.clone();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                let r = timeout(SHORT, task_group(|tg: TaskGroup| {
                    let l = l.clone();
                    async move {
                        for name in ["a", "b"] {
                            drop(tg.builder().cooperative_cancel().spawn(sleeper(l.clone(), name)).unwrap());
                        }
                        sleeper(l, "body").await;
                        Ok(())
                    }
                }))
                .await;
                (r.is_err(), current().unwrap().cancelling())
            });
            assert_eq!(t.await.unwrap(), (true, 0));
            let mut got = entries(&log);
            got.sort();
            assert_eq!(got, ["a cleaned up", "b cleaned up", "body cleaned up"]);
        });
    }
}

driver_test! {
    // Without the opt-in, a timeout still drops its body: no cleanup runs.
    fn a_timeout_in_a_plain_task_drops_its_body(rt) {
        rt.block_on(async {
            let log = Log::default();
            let l = log.clone();
            let t = coil::spawn(async move { timeout(SHORT, sleeper(l, "body")).await.is_err() });
            assert!(t.await.unwrap());
            assert!(entries(&log).is_empty());
        });
    }
}

/// Two nested timeouts with the same deadline in a cooperative task: the
/// outer one fires (both send a request; the inner one's `uncancel` leaves
/// one, so it raises on) and the inner body's cleanup runs once.
#[test]
fn nested_timeouts_with_one_deadline_the_outer_fires() {
    coil::sim::Builder::new().seed(5).run(async {
        let log = Log::default();
        let l = log.clone();
        let t = Builder::new().cooperative_cancel().spawn(async move {
            let deadline = Instant::now() + SHORT;
            let outer = timeout_at(deadline, async {
                let inner = timeout_at(deadline, sleeper(l.clone(), "body")).await;
                push(&l, format!("inner returned {inner:?}"));
            })
            .await;
            (outer.is_err(), current().unwrap().cancelling())
        });
        assert_eq!(t.await.unwrap(), (true, 0));
        assert_eq!(entries(&log), ["body cleaned up"]);
    });
}

/// Under the simulator the deadline is exact: the timeout returns after the
/// body's 1 ms cleanup, not at the deadline and not an hour later.
#[test]
fn a_timeout_returns_after_the_cleanup_sim() {
    coil::sim::Builder::new().seed(6).run(async {
        let log = Log::default();
        let l = log.clone();
        let start = Instant::now();
        let t = Builder::new()
            .cooperative_cancel()
            .spawn(async move { timeout(Duration::from_millis(20), sleeper(l, "body")).await });
        assert!(t.await.unwrap().is_err());
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(21) && took < Duration::from_millis(25),
            "{took:?}"
        );
        assert_eq!(entries(&log), ["body cleaned up"]);
    });
}

driver_test! {
    // A request reaching a task_group inside a `cancellable` scope is raised
    // to that scope once the children stopped: its output is Err(Cancelled).
    fn a_group_raises_to_the_enclosing_scope(rt) {
        rt.block_on(async {
            let log = Log::default();
            let l = log.clone();
            let t = Builder::new().cooperative_cancel().spawn(async move {
                let r = cancellable(task_group(|tg: TaskGroup| {
                    let l = l.clone();
                    async move {
                        drop(tg.builder().cooperative_cancel().spawn(sleeper(l, "child")).unwrap());
                        sleep(LONG).await;
                        Ok(())
                    }
                }))
                .await;
                r.map(|_| ()).map_err(|c| c.message().map(str::to_owned))
            });
            yield_now().await;
            assert!(t.cancel_with("stop"));
            assert_eq!(t.await.unwrap(), Err(Some("stop".to_owned())));
            assert_eq!(entries(&log), ["child cleaned up"]);
        });
    }
}

driver_test! {
    // A request made before the timeout and not yet delivered survives the
    // timeout's own request: the timeout answers Elapsed, and the older
    // request still reaches the next scope that waits.
    fn an_undelivered_older_request_survives_a_timeout(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let me = current().unwrap();
                me.cancel_with("older");
                let r = timeout(SHORT, sleep(LONG)).await;
                let counted = me.cancelling();
                let next = cancellable(sleep(LONG)).await;
                (r.is_err(), counted, next.map_err(|c| c.message().map(str::to_owned)))
            });
            assert_eq!(t.await.unwrap(), (true, 1, Err(Some("older".to_owned()))));
        });
    }
}

/// A runtime of the same driver as `rt`, to drop inside the test.
fn same_driver(rt: &coil::Runtime) -> coil::Runtime {
    use coil::runtime::{DriverChoice, DriverKind};
    let choice = match rt.driver().kind() {
        DriverKind::Uring => DriverChoice::Uring,
        _ => DriverChoice::Epoll,
    };
    coil::Runtime::builder().driver(choice).build().unwrap()
}

driver_test! {
    // asyncio.run cancels the tasks left and runs the loop until they have
    // finished: a cooperative task's cleanup awaits during the drop; a task
    // that does not answer requests is dropped without running again, and
    // so is a cooperative one whose request no scope takes.
    fn a_dropped_runtime_lets_cooperative_tasks_clean_up(rt) {
        let own = same_driver(rt);
        let log = Log::default();
        let (l, l2, l3) = (log.clone(), log.clone(), log.clone());
        own.block_on(async move {
            drop(Builder::new().cooperative_cancel().spawn(sleeper(l, "cooperative")));
            drop(coil::spawn(async move {
                sleep(LONG).await;
                push(&l2, "plain task ran on");
            }));
            drop(Builder::new().cooperative_cancel().spawn(async move {
                sleep(LONG).await; // no scope: never takes a request
                push(&l3, "deaf task ran on");
            }));
            yield_now().await;
        });
        assert!(entries(&log).is_empty());
        drop(own);
        assert_eq!(entries(&log), ["cooperative cleaned up"]);
    }
}

/// The cleanup wait is bounded: a task that takes the request and carries
/// on forever is dropped after the limit (5 s of the simulator's clock).
#[test]
fn a_task_that_never_finishes_its_cleanup_is_dropped_after_the_limit() {
    let flag = Rc::new(std::cell::Cell::new(0u32));
    let f = flag.clone();
    coil::sim::Builder::new().seed(7).run(async move {
        drop(Builder::new().cooperative_cancel().spawn(async move {
            let _ = cancellable(sleep(LONG)).await;
            current().unwrap().uncancel();
            loop {
                sleep(Duration::from_millis(100)).await;
                f.set(f.get() + 1);
            }
        }));
        yield_now().await;
    });
    // 100 ms ticks for 5 s of cleanup time, give or take the first and last.
    assert!((48..=51).contains(&flag.get()), "{}", flag.get());
}

driver_test! {
    // await shield(inner) in a task that is cancelled: the outer wait ends
    // with the cancellation, the inner task runs on and is awaited later.
    fn a_request_ends_a_shielded_wait_and_the_inner_task_runs_on(rt) {
        rt.block_on(async {
            let gate = Rc::new(coil::sync::Event::new());
            let g = gate.clone();
            let mut inner = coil::spawn(async move {
                g.wait().await;
                "inner done"
            });
            let outer = Builder::new().cooperative_cancel().spawn(async move {
                let r = cancellable(coil::shield(&mut inner)).await;
                (r.is_err(), inner)
            });
            yield_now().await;
            assert!(outer.cancel());
            let (cancelled, inner) = outer.await.unwrap();
            assert!(cancelled);
            assert!(!inner.is_finished());
            gate.set();
            assert_eq!(inner.await.unwrap(), "inner done");
        });
    }
}

/// Review: a task already cancelling (an outer request taken, cleanup under
/// way) runs a timeout whose body is ready at the deadline: the ready value
/// wins, and the timeout's own request must be withdrawn with it. It was
/// left undelivered (`uncancel` keeps `pending` while requests remain), so
/// the next scope that waits got a cancellation nobody made.
#[test]
fn a_ready_body_at_the_deadline_leaves_no_request_behind() {
    coil::sim::Builder::new().seed(8).run(async {
        let t = Builder::new().cooperative_cancel().spawn(async {
            let me = current().unwrap();
            me.cancel_with("outer");
            let outer = cancellable(sleep(LONG)).await;
            // Cleanup of the outer request, bounded by a timeout whose body
            // finishes exactly at the deadline.
            let deadline = Instant::now() + SHORT;
            let r = timeout_at(deadline, coil::time::sleep_until(deadline)).await;
            let counted = me.cancelling();
            let next = cancellable(sleep(Duration::from_millis(1))).await;
            (outer.is_err(), r, counted, next.is_ok())
        });
        assert_eq!(t.await.unwrap(), (true, Ok(()), 1, true));
    });
}

/// Review: an expired timeout whose body is cleaning up (it took the
/// timeout's request) and that is then dropped by its caller (a select
/// whose other branch won) must take its request back, as leaving the
/// `async with` does in asyncio; otherwise `cancelling()` stays one too
/// high for the rest of the task.
#[test]
fn a_dropped_expired_timeout_takes_its_request_back() {
    use std::future::Future;
    use std::task::Poll;
    coil::sim::Builder::new().seed(9).run(async {
        let log = Log::default();
        let t = Builder::new().cooperative_cancel().spawn(async move {
            let me = current().unwrap();
            let mut t = Box::pin(timeout(SHORT, sleeper(log.clone(), "body")));
            // Poll until it has expired (its body now sleeps in its cleanup),
            // then drop it as a select would.
            std::future::poll_fn(|cx| {
                let polled = t.as_mut().poll(cx);
                assert!(polled.is_pending(), "the cleanup takes 1 ms");
                if t.expired() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            drop(t);
            (me.cancelling(), entries(&log))
        });
        assert_eq!(t.await.unwrap(), (0, Vec::<String>::new()));
    });
}

driver_test! {
    // Review: a child whose cleanup fails while the owner is cancelled. asyncio's
    // TaskGroup raises the children's errors then (an ExceptionGroup, not
    // CancelledError), and outside any scope coil's task_group returns them
    // in its TaskGroupError. Inside a `cancellable` scope the group raised
    // the bare cancellation instead, and the failure was lost.
    fn a_group_raising_to_a_scope_keeps_its_failures(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async move {
                let r = cancellable(task_group(|tg: TaskGroup<String>| async move {
                    drop(tg.builder().cooperative_cancel().try_spawn(async {
                        let _ = cancellable(sleep(LONG)).await;
                        Err::<(), _>("cleanup failed".to_owned())
                    }));
                    sleep(LONG).await;
                    Ok(())
                }))
                .await;
                match r {
                    Ok(Err(e)) => e.failures().iter().filter_map(|(_, f)| f.error().cloned()).collect(),
                    _ => Vec::new(),
                }
            });
            yield_now().await;
            assert!(t.cancel());
            assert_eq!(t.await.unwrap(), ["cleanup failed"]);
        });
    }
}

/// Review: of nested timeouts that expire together the outermost fires
/// (`time::timeout`'s docs), also when the inner one is coil's own timed
/// wait (`Condition::wait_timeout`, a dropping timeout inside). In a task
/// that does not answer requests it did; in one that does, the request-mode
/// outer timeout set no "expired" mark, so the inner wait reported its own
/// time-out, the body went on and returned, and the outer timeout answered
/// `Ok` although it had expired (fixed: the mark is set on expiry).
#[test]
fn an_inner_timed_wait_expiring_with_the_outer_timeout_leaves_the_firing_to_it() {
    use coil::sync::{Condition, Mutex};
    async fn nested() -> Result<bool, Elapsed> {
        let (m, cond) = (Mutex::new(()), Condition::new());
        let deadline = Instant::now() + SHORT;
        timeout_at(deadline, async {
            let (_g, timed_out) = cond.wait_timeout(m.lock().await, SHORT).await;
            timed_out
        })
        .await
    }
    coil::sim::Builder::new().seed(10).run(async {
        let plain = coil::spawn(nested()).await.unwrap();
        let cooperative = Builder::new()
            .cooperative_cancel()
            .spawn(nested())
            .await
            .unwrap();
        assert_eq!(
            (plain.is_err(), cooperative.is_err()),
            (true, true),
            "{cooperative:?}"
        );
    });
}

driver_test! {
    // Review: a task already cleaning up after an earlier request when the
    // runtime is dropped is waited for (a second request, only pending,
    // made it look deaf and it was dropped mid-cleanup).
    fn a_task_cleaning_up_when_the_runtime_drops_finishes_its_cleanup(rt) {
        let own = same_driver(rt);
        let log = Log::default();
        let l = log.clone();
        own.block_on(async move {
            let t = Builder::new().cooperative_cancel().spawn(async move {
                if let Err(c) = cancellable(sleep(LONG)).await {
                    push(&l, "cleaning");
                    sleep(Duration::from_millis(20)).await;
                    push(&l, "cleaned up");
                    c.reraise::<()>().await;
                }
            });
            yield_now().await;
            t.cancel();
            yield_now().await;
            yield_now().await;
        });
        assert_eq!(entries(&log), ["cleaning"]);
        drop(own);
        assert_eq!(entries(&log), ["cleaning", "cleaned up"]);
    }
}

/// Polls `fut`, turning a panic out of its poll into `Err(())`, as a user's
/// own catch_unwind combinator would.
async fn catching<F: std::future::Future>(fut: F) -> Result<F::Output, ()> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::task::Poll;
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        },
    )
    .await
}

/// Waits for a request with a scope, then raises it with none around.
async fn raise_at_top() {
    match cancellable(sleep(LONG)).await {
        Ok(()) => unreachable!("an hour passed"),
        Err(c) => c.reraise::<()>().await,
    }
}

driver_test! {
    // A panic unwinding out of a `cancellable` scope takes its catch frame
    // with it: a raise later in the same task, or in the next task on the
    // loop, still finishes its task (a frame left counted would catch it and
    // the task would hang).
    fn a_panic_through_a_scope_leaves_no_frame_behind(rt) {
        rt.block_on(async {
            let t = Builder::new().cooperative_cancel().spawn(async {
                let r = catching(cancellable(async {
                    yield_now().await;
                    panic!("boom inside a scope (expected by the test)");
                }))
                .await;
                assert!(r.is_err(), "the panic was caught");
                raise_at_top().await
            });
            let panicked = Builder::new().cooperative_cancel().spawn(async {
                let _ = cancellable(async {
                    yield_now().await;
                    panic!("boom out of a task (expected by the test)");
                })
                .await;
            });
            let after = Builder::new().cooperative_cancel().spawn(raise_at_top());
            assert!(panicked.await.unwrap_err().is_panic());
            for _ in 0..3 {
                yield_now().await;
            }
            assert!(t.cancel() && after.cancel());
            let bound = Duration::from_secs(5);
            let t = timeout(bound, t).await.expect("the raise in the same task hung");
            assert!(t.unwrap_err().is_cancelled());
            let after = timeout(bound, after).await.expect("the raise in the next task hung");
            assert!(after.unwrap_err().is_cancelled());
        });
    }
}
