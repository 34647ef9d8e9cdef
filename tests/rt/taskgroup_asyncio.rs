//! TaskGroup against CPython's own tests (Lib/test/test_asyncio/
//! test_taskgroups.py), case by case where the case means something in
//! coil; each test names the CPython case it translates. The rules are in
//! the docs of `coil::task_group`.

use crate::support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coil::task::yield_now;
use coil::time::sleep;
use coil::{Failure, GroupClosed, GroupTask, GroupTaskError, TaskGroup, task_group};
use support::{DropCounter, panic_message_of};

const HOUR: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);

/// A child that sleeps for an hour holding `guard`.
fn sleeper<E: 'static>(tg: &TaskGroup<E>, drops: &Arc<AtomicUsize>) -> GroupTask<()> {
    let guard = DropCounter(drops.clone());
    tg.spawn(async move {
        let _guard = guard;
        sleep(HOUR).await;
    })
}

driver_test! {
    /// test_taskgroup_09: the body raises (`?`) after spawning two children
    /// and awaiting: both children are cancelled, the group waits for them,
    /// and the body's error is reported.
    fn taskgroup_09_body_error_cancels_children_and_waits(rt) {
        rt.block_on(async {
            let drops = Arc::new(AtomicUsize::new(0));
            let handles = Rc::new(RefCell::new(Vec::new()));
            let (d, h) = (drops.clone(), handles.clone());
            let err = task_group(|tg: TaskGroup<&'static str>| async move {
                h.borrow_mut().push(sleeper(&tg, &d));
                h.borrow_mut().push(sleeper(&tg, &d));
                sleep(MS).await;
                Err::<(), _>("1 / 0")?;
                Ok(())
            })
            .await
            .unwrap_err();
            assert_eq!(drops.load(Ordering::SeqCst), 2, "children stopped before the group returned");
            assert_eq!(err.body_error(), Some(&"1 / 0"));
            assert!(err.failures().is_empty(), "{err:?}");
            assert_eq!(err.cancelled(), [0, 1]);
            assert!(handles.borrow().iter().all(GroupTask::is_cancelled));
            assert!(err.to_string().contains("body returned an error: 1 / 0"), "{err}");
        });
    }

    /// test_taskgroup_10: the body raises before awaiting anything: the
    /// children never run.
    fn taskgroup_10_body_error_before_children_start(rt) {
        rt.block_on(async {
            let ran = Rc::new(Cell::new(false));
            let r = ran.clone();
            let err = task_group(|tg: TaskGroup<String>| async move {
                for _ in 0..2 {
                    let r = r.clone();
                    tg.spawn(async move { r.set(true) });
                }
                Err::<(), _>("early".to_string())
            })
            .await
            .unwrap_err();
            assert_eq!(err.body_error().map(String::as_str), Some("early"));
            assert_eq!(err.cancelled(), [0, 1]);
            assert!(!ran.get());
        });
    }

    /// test_cancel_children_on_child_error with the three failing children
    /// failing on the same loop iteration: every one of them is reported,
    /// as in asyncio's ExceptionGroup, and the sleeper is cancelled.
    fn failures_in_the_same_tick_are_all_reported(rt) {
        rt.block_on(async {
            let drops = Arc::new(AtomicUsize::new(0));
            let d = drops.clone();
            let err = task_group(|tg: TaskGroup<String>| async move {
                sleeper(&tg, &d);
                for i in 1..4 {
                    tg.try_spawn(async move { Err::<(), _>(format!("child {i}")) });
                }
                sleep(HOUR).await;
                Ok(())
            })
            .await
            .unwrap_err();
            let failed: Vec<_> = err
                .failures()
                .iter()
                .map(|(i, f)| (*i, f.error().cloned()))
                .collect();
            assert_eq!(
                failed,
                [1, 2, 3].map(|i| (i, Some(format!("child {i}")))),
                "every failure of the first tick, in order"
            );
            assert_eq!(err.cancelled(), [0]);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            assert!(err.to_string().starts_with("task group failed (3 failures, 1 cancelled)"), "{err}");
        });
    }

    /// CPython's create_task on an aborting group raises RuntimeError("...
    /// is shutting down"): a sibling that runs after the failure, before the
    /// group has cancelled it, is told so.
    fn spawn_on_a_failing_group_is_refused(rt) {
        rt.block_on(async {
            let seen = Rc::new(RefCell::new(None));
            let s = seen.clone();
            let err = task_group(|tg: TaskGroup<()>| async move {
                tg.try_spawn(async { Err::<(), _>(()) });
                let tg2 = tg.clone();
                tg.spawn(async move {
                    // Runs on the same tick as the failure above.
                    assert!(tg2.is_shutting_down());
                    *s.borrow_mut() = Some(tg2.builder().spawn(async {}).map(|_| ()));
                });
                Ok(())
            })
            .await
            .unwrap_err();
            let refused = seen.borrow_mut().take().expect("the sibling ran");
            assert_eq!(refused, Err(GroupClosed::ShuttingDown));
            assert_eq!(refused.unwrap_err().to_string(), "TaskGroup is shutting down");
            assert_eq!(err.failures().len(), 1);
            assert_eq!(err.cancelled(), [] as [usize; 0], "nothing was started for the refused spawn");
        });
    }

    /// `TaskGroup::spawn` on an aborting group panics at the caller's line,
    /// and saying why: the panic is the calling child's failure.
    fn spawn_panics_on_a_failing_group(rt) {
        rt.block_on(async {
            let err = task_group(|tg: TaskGroup<()>| async move {
                tg.try_spawn(async { Err::<(), _>(()) });
                let tg2 = tg.clone();
                tg.spawn(async move {
                    tg2.spawn(async {});
                });
                Ok(())
            })
            .await
            .unwrap_err();
            match err.failures() {
                [(0, Failure::Error(())), (1, Failure::Panicked(p))] => {
                    let msg = p.message().unwrap_or_default();
                    assert!(msg.contains("TaskGroup is shutting down"), "{msg}");
                }
                other => panic!("{other:?}"),
            }
        });
    }

    /// test_coro_closed_when_tg_closed: create_task after the group has
    /// finished raises RuntimeError("... is finished").
    fn spawn_after_the_group_finished_is_refused(rt) {
        rt.block_on(async {
            let leaked = task_group(|tg: TaskGroup| async move { Ok(tg.clone()) })
                .await
                .unwrap();
            assert!(leaked.is_shutting_down());
            let refused = leaked.builder().spawn(async {}).map(|_| ());
            assert_eq!(refused, Err(GroupClosed::Finished));
            assert_eq!(refused.unwrap_err().to_string(), "TaskGroup is finished");
            let msg = panic_message_of(|| leaked.spawn(async {}));
            assert!(msg.starts_with("TaskGroup is finished"), "{msg}");
        });
    }

    /// test_taskgroup_03: cancelling a child through its handle does not
    /// fail the group; the other children go on.
    fn taskgroup_03_cancelling_a_child_does_not_fail_the_group(rt) {
        rt.block_on(async {
            let handles = Rc::new(RefCell::new(None));
            let h = handles.clone();
            task_group(|tg: TaskGroup| async move {
                let t1 = tg.spawn(async {
                    sleep(HOUR).await;
                    42
                });
                sleep(MS).await;
                assert!(t1.cancel(), "t1 was running");
                let t2 = tg.spawn(async {
                    sleep(MS).await;
                    11
                });
                *h.borrow_mut() = Some((t1, t2));
                Ok(())
            })
            .await
            .expect("a cancelled child is not a failure");
            let (t1, mut t2) = handles.borrow_mut().take().unwrap();
            assert!(t1.is_cancelled());
            assert!(!t1.cancel(), "already finished");
            assert_eq!(t2.take(), Some(11));
        });
    }

    /// A child's handle is awaitable, like a task: its value, or why it
    /// has none.
    fn a_child_handle_can_be_awaited(rt) {
        rt.block_on(async {
            let out = task_group(|tg: TaskGroup| async move {
                let t1 = tg.spawn(async {
                    sleep(MS).await;
                    42
                });
                let t2 = tg.spawn(async {
                    sleep(HOUR).await;
                    11
                });
                let v = t1.await.unwrap();
                t2.cancel();
                Ok((v, t2.await))
            })
            .await
            .unwrap();
            assert_eq!(out, (42, Err(GroupTaskError::Cancelled)));
        });
    }

    /// test_taskgroup_task_name: create_task(coro, name="yolo").
    fn taskgroup_task_name(rt) {
        rt.block_on(async {
            task_group(|tg: TaskGroup| async move {
                let t = tg.builder().name("yolo").spawn(yield_now()).expect("the group is open");
                assert_eq!(t.name(), Some("yolo"));
                assert_eq!(tg.spawn(async {}).name(), None);
                Ok(())
            })
            .await
            .unwrap();
        });
    }
}

/// A task outside the group awaiting a child that fails learns that it
/// failed (the failure itself is in the group's error).
#[test]
fn awaiting_a_failed_child_reports_it_failed() {
    coil::run(async {
        let watcher = Rc::new(RefCell::new(None));
        let w = watcher.clone();
        let err = task_group(|tg: TaskGroup<u8>| async move {
            let failing = tg.try_spawn(async {
                yield_now().await;
                Err::<(), _>(7)
            });
            *w.borrow_mut() = Some(coil::spawn(failing));
            Ok(())
        })
        .await
        .unwrap_err();
        let watcher = watcher.borrow_mut().take().unwrap();
        assert_eq!(watcher.await.unwrap(), Err(GroupTaskError::Failed));
        assert_eq!(err.failures().len(), 1);
    });
}

/// test_taskgroup_07/09 in virtual time: the body fails at 100 ms while its
/// children would run for 1 s and 2 s; the group returns at 100 ms, for
/// every seed of the simulator's task order.
#[test]
fn sim_body_error_returns_without_waiting_for_children() {
    for seed in 0..16 {
        let (elapsed, ran) = coil::sim::Builder::new().seed(seed).run(async {
            let ran = Rc::new(Cell::new(0));
            let r = ran.clone();
            let err = task_group(|tg: TaskGroup<&'static str>| async move {
                for secs in [1, 2] {
                    let r = r.clone();
                    tg.spawn(async move {
                        sleep(Duration::from_secs(secs)).await;
                        r.set(r.get() + 1);
                    });
                }
                sleep(Duration::from_millis(100)).await;
                Err::<(), _>("body")
            })
            .await
            .unwrap_err();
            assert_eq!(err.body_error(), Some(&"body"));
            (coil::sim::elapsed().unwrap(), ran.get())
        });
        assert!(
            elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(1),
            "seed {seed}: {elapsed:?}"
        );
        assert_eq!(ran, 0, "seed {seed}");
    }
}

/// Two children whose timers fire on the same virtual instant both fail in
/// that tick: both are reported, whatever order the seed polls them in.
#[test]
fn sim_failures_on_the_same_instant_are_all_reported() {
    for seed in 0..16 {
        coil::sim::Builder::new().seed(seed).run(async move {
            let err = task_group(|tg: TaskGroup<usize>| async move {
                tg.spawn(async { sleep(HOUR).await });
                for i in 1..3 {
                    tg.try_spawn(async move {
                        sleep(Duration::from_millis(10)).await;
                        Err::<(), _>(i)
                    });
                }
                Ok(())
            })
            .await
            .unwrap_err();
            let mut failed: Vec<usize> = err.failures().iter().map(|(i, _)| *i).collect();
            failed.sort_unstable();
            assert_eq!(failed, [1, 2], "seed {seed}");
            assert_eq!(err.cancelled(), [0], "seed {seed}");
            let elapsed = coil::sim::elapsed().unwrap();
            assert!(elapsed < Duration::from_secs(1), "seed {seed}: {elapsed:?}");
        });
    }
}
