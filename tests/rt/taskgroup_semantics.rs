//! TaskGroup: asyncio 3.11 semantics, rule by rule (see src/task/group.rs).

use crate::support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coil::task::yield_now;
use coil::time::{Instant, sleep};
use coil::{Failure, GroupClosed, TaskGroup, spawn, task_group};
use support::{DropCounter, panic_message_of, panic_msg};

const HOUR: Duration = Duration::from_secs(3600);

driver_test! {
    fn leaving_waits_for_all_children_results_in_spawn_order(rt) {
        let start = Instant::now();
        let out = rt.block_on(async {
            let handles = task_group(|tg: TaskGroup| async move {
                let handles = [30u64, 10, 20]
                    .map(|ms| tg.spawn(async move {
                        sleep(Duration::from_millis(ms)).await;
                        ms
                    }));
                Ok(handles)
            })
            .await
            .unwrap();
            handles.map(|mut h| {
                assert!(h.is_finished() && h.is_success());
                h.take().unwrap()
            })
        });
        assert_eq!(out, [30, 10, 20]);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    fn first_error_cancels_siblings_and_waits(rt) {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let err = rt.block_on(async move {
            let d2 = d.clone();
            let r = task_group(|tg: TaskGroup<&'static str>| async move {
                let d = d2;
                for _ in 0..3 {
                    let g = DropCounter(d.clone());
                    tg.spawn(async move {
                        let _g = g;
                        sleep(HOUR).await;
                    });
                }
                tg.try_spawn(async {
                    sleep(Duration::from_millis(2)).await;
                    Err::<(), _>("bad")
                });
                Ok(())
            })
            .await;
            assert_eq!(d.load(Ordering::SeqCst), 3, "siblings dropped before the group returned");
            r.unwrap_err()
        });
        assert_eq!(err.cancelled(), [0, 1, 2]);
        assert_eq!(err.failures().len(), 1);
        assert!(matches!(err.failures()[0], (3, Failure::Error("bad"))));
        assert!(err.to_string().contains("child 3 returned an error: bad"), "{err}");
    }
}

#[test]
fn a_panicking_child_fails_the_group() {
    let err = coil::run(task_group(|tg: TaskGroup| async move {
        tg.spawn(async { sleep(HOUR).await });
        tg.spawn(async {
            yield_now().await;
            panic!("child blew up")
        });
        Ok(())
    }))
    .unwrap_err();
    match err.first() {
        Failure::Panicked(p) => assert_eq!(p.message(), Some("child blew up")),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.cancelled(), [0]);
}

#[test]
fn the_body_is_cancelled_at_its_await_on_failure() {
    let reached = Rc::new(Cell::new(false));
    let r = reached.clone();
    let out = coil::run(task_group(|tg: TaskGroup<u8>| async move {
        tg.try_spawn(async { Err::<(), _>(7) });
        sleep(HOUR).await;
        r.set(true);
        Ok(())
    }));
    assert!(out.is_err());
    assert!(!reached.get(), "the body never got past its await");
}

#[test]
fn finished_children_keep_their_values_when_the_group_fails() {
    coil::run(async {
        let keep = Rc::new(RefCell::new(None));
        let k = keep.clone();
        let err = task_group(|tg: TaskGroup<()>| async move {
            *k.borrow_mut() = Some(tg.spawn(async { 5 }));
            tg.try_spawn(async {
                yield_now().await;
                yield_now().await;
                Err::<(), ()>(())
            });
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.cancelled().is_empty());
        let mut h = keep.borrow_mut().take().unwrap();
        assert!(h.is_success());
        assert_eq!(h.take(), Some(5));
        assert_eq!(h.take(), None, "taken once");
    });
}

#[test]
fn children_can_spawn_siblings() {
    let n = coil::run(async {
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        task_group(|tg: TaskGroup| async move {
            let tg2 = tg.clone();
            tg.spawn(async move {
                for _ in 0..3 {
                    let c = c.clone();
                    tg2.spawn(async move {
                        yield_now().await;
                        c.set(c.get() + 1);
                    });
                }
            });
            Ok(())
        })
        .await
        .unwrap();
        count.get()
    });
    assert_eq!(n, 3, "the group waited for grandchildren spawned into it");
}

#[test]
fn spawning_after_the_group_finished_panics() {
    let msg = panic_message_of(|| {
        coil::run(async {
            let leaked = task_group(|tg: TaskGroup| async move { Ok(tg.clone()) })
                .await
                .unwrap();
            leaked.spawn(async {});
        })
    });
    assert!(msg.contains("already finished"), "{msg}");
}

#[test]
fn spawning_while_shutting_down_starts_nothing() {
    coil::run(async {
        let late = Rc::new(RefCell::new(None));
        let l = late.clone();
        let err = task_group(|tg: TaskGroup<()>| async move {
            let tg2 = tg.clone();
            tg.spawn(async move {
                // When the failing sibling cancels this child, its future is
                // dropped while the group is shutting down: spawn from there.
                struct SpawnOnDrop(TaskGroup<()>, Rc<RefCell<Option<Result<(), GroupClosed>>>>);
                impl Drop for SpawnOnDrop {
                    fn drop(&mut self) {
                        assert!(self.0.is_shutting_down());
                        let r = self.0.builder().spawn(async {}).map(|_| ());
                        *self.1.borrow_mut() = Some(r);
                    }
                }
                let _s = SpawnOnDrop(tg2, l);
                sleep(HOUR).await;
            });
            tg.try_spawn(async {
                yield_now().await;
                Err::<(), ()>(())
            });
            Ok(())
        })
        .await
        .unwrap_err();
        // Before asyncio's RuntimeError was matched, the late child was
        // started cancelled and counted here; now nothing is started.
        assert_eq!(err.cancelled(), [0]);
        assert_eq!(err.failures().len(), 1);
        assert_eq!(
            late.borrow_mut().take(),
            Some(Err(GroupClosed::ShuttingDown))
        );
    });
}

#[test]
fn dropping_the_owner_cancels_the_children() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    coil::run(async move {
        let owner = spawn(task_group(move |tg: TaskGroup| async move {
            for _ in 0..4 {
                let g = DropCounter(d.clone());
                tg.spawn(async move {
                    let _g = g;
                    sleep(HOUR).await;
                });
            }
            sleep(HOUR).await;
            Ok(())
        }));
        yield_now().await;
        yield_now().await;
        owner.cancel();
        assert!(owner.await.unwrap_err().is_cancelled());
        yield_now().await; // the children's cancellation lands on the next tick
    });
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn a_panic_in_the_body_cancels_children_then_resumes() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let r = coil::run(async move {
        let d2 = d.clone();
        let owner = spawn(task_group(move |tg: TaskGroup| async move {
            let g = DropCounter(d2);
            tg.spawn(async move {
                let _g = g;
                sleep(HOUR).await;
            });
            yield_now().await;
            if !tg.is_empty() {
                panic!("body failed");
            }
            Ok(())
        }));
        let r = owner.await;
        assert_eq!(
            d.load(Ordering::SeqCst),
            1,
            "child dropped before the panic resumed"
        );
        r
    });
    assert_eq!(panic_msg(&*r.unwrap_err().into_panic()), "body failed");
}

#[test]
fn nested_groups_propagate_failures_up() {
    let err = coil::run(task_group(|outer: TaskGroup<String>| async move {
        outer.spawn(async { sleep(HOUR).await });
        outer.try_spawn(async {
            task_group(|inner: TaskGroup<String>| async move {
                inner.spawn(async { sleep(HOUR).await });
                inner.try_spawn(async { Err::<(), _>("deep".to_string()) });
                Ok(())
            })
            .await
            .map_err(|e| format!("inner: {}", e.first()))
        });
        Ok(())
    }))
    .unwrap_err();
    assert_eq!(err.cancelled(), [0]);
    assert_eq!(
        err.first().error().map(String::as_str),
        Some("inner: returned an error: deep")
    );
}

#[test]
fn empty_group_and_body_output() {
    let out = coil::run(task_group(|tg: TaskGroup| async move {
        assert!(tg.is_empty());
        Ok("body value")
    }));
    assert_eq!(out.unwrap(), "body value");
}
