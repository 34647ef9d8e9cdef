//! gather!, gather_all, try_gather_all, try_gather_tasks, gather_settled.

use crate::support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coil::task::yield_now;
use coil::time::{Instant, sleep};
use coil::{Failure, TaskError, spawn};
use support::{DropCounter, panic_msg, run_watched};

async fn after(ms: u64, v: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    v
}

/// That the three sleeps ran concurrently is checked on the simulator's
/// virtual clock: on the real one, a wall-clock bound failed under load (a
/// stalled loop, not a sequential gather).
#[test]
fn gather_macro_runs_its_arguments_concurrently() {
    let took = coil::sim::Builder::new().seed(1).run(async {
        let start = Instant::now();
        let out = coil::gather!(after(30, 3), after(20, 2), after(10, 1)).await;
        assert_eq!(out, (3, 2, 1));
        start.elapsed()
    });
    assert!(
        took >= Duration::from_millis(30),
        "timers never early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(32),
        "the three ran concurrently: {took:?}"
    );
}

driver_test! {
    fn gather_macro_keeps_argument_order(rt) {
        let start = Instant::now();
        let out = rt.block_on(async { coil::gather!(after(30, 3), after(20, 2), after(10, 1)).await });
        assert_eq!(out, (3, 2, 1));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(30), "timers never early: {took:?}");
    }

    fn gather_all_keeps_input_order(rt) {
        let out = rt.block_on(coil::gather_all([30, 0, 20, 10].map(|ms| after(ms, ms))));
        assert_eq!(out, [30, 0, 20, 10]);
    }

    fn gather_all_of_tasks_is_return_exceptions(rt) {
        let out = rt.block_on(async {
            let tasks = vec![
                spawn(async { 1 }),
                spawn(async { panic!("boom") }),
                spawn(async { 3 }),
            ];
            coil::gather_all(tasks).await
        });
        assert_eq!(out[0].as_ref().ok(), Some(&1));
        assert_eq!(panic_msg(&*out.into_iter().nth(1).unwrap().unwrap_err().into_panic()), "boom");
    }
}

#[test]
fn gather_macro_any_arity_and_mixed_types() {
    let out = coil::run(async {
        coil::gather!(
            async { 1u8 },
            async { "two" },
            after(1, 3),
            async { 4.0f32 },
            async { '5' },
            async { vec![6] },
            async { 7i64 },
            async { Some(8) },
            async { (9,) },
            async { 10u16 },
            async { [11] },
            async { "twelve".to_string() },
            async { 13usize },
        )
        .await
    });
    assert_eq!(out.0, 1);
    assert_eq!(out.1, "two");
    assert_eq!(out.2, 3);
    assert_eq!(out.11, "twelve");
    assert_eq!(out.12, 13);
}

#[test]
fn gather_macro_single_and_empty() {
    coil::run(async {
        let (one,) = coil::gather!(async { 1 }).await;
        assert_eq!(one, 1);
        #[allow(clippy::let_unit_value)]
        let () = coil::gather!().await;
        let (a, b) = coil::gather!(async { 1 }, async { 2 },).await; // trailing comma
        assert_eq!((a, b), (1, 2));
    });
}

#[test]
fn gather_macro_futures_may_borrow_locals_and_run_in_this_task() {
    let out = coil::run(async {
        let log = RefCell::new(Vec::new());
        let (log_a, log_b) = (&log, &log);
        let (a, b) = coil::gather!(
            async move {
                log_a.borrow_mut().push("a1");
                yield_now().await;
                log_a.borrow_mut().push("a2");
                'a'
            },
            async move {
                log_b.borrow_mut().push("b1");
                yield_now().await;
                log_b.borrow_mut().push("b2");
                'b'
            }
        )
        .await;
        assert_eq!((a, b), ('a', 'b'));
        log.into_inner()
    });
    assert_eq!(
        out,
        ["a1", "b1", "a2", "b2"],
        "interleaved, polled in argument order"
    );
}

#[test]
fn gather_macro_creates_futures_eagerly_but_runs_them_lazily() {
    let ran = Rc::new(RefCell::new(0));
    coil::run({
        let ran = ran.clone();
        async move {
            let r = ran.clone();
            let g = coil::gather!(async move { *r.borrow_mut() += 1 });
            yield_now().await;
            assert_eq!(*ran.borrow(), 0, "nothing runs before the await");
            g.await;
            assert_eq!(*ran.borrow(), 1);
        }
    });
}

#[test]
fn gather_all_empty_is_ready() {
    let out: Vec<u8> = coil::run(coil::gather_all(Vec::<std::future::Ready<u8>>::new()));
    assert!(out.is_empty());
}

#[test]
fn gather_all_many_ready_tasks_respects_the_budget() {
    // 1000 finished tasks: joining them takes budget, so another task still
    // gets to run in between.
    run_watched(|| {
        let n = coil::run(async {
            let tasks: Vec<_> = (0..1000u32).map(|i| spawn(async move { i })).collect();
            for _ in 0..2 {
                yield_now().await;
            }
            let other = spawn(async { 7 });
            let all = coil::gather_all(tasks).await;
            assert_eq!(other.await.unwrap(), 7);
            all.into_iter().map(Result::unwrap).sum::<u32>()
        });
        assert_eq!(n, (0..1000).sum());
    });
}

#[test]
fn try_gather_all_ok_in_order() {
    let out = coil::run(coil::try_gather_all(
        [20u64, 10, 0].map(|ms| async move { Ok::<_, ()>(after(ms, ms).await) }),
    ));
    assert_eq!(out, Ok(vec![20, 10, 0]));
}

#[test]
fn try_gather_all_first_err_drops_the_rest_before_returning() {
    let drops = Arc::new(AtomicUsize::new(0));
    let finished = Rc::new(RefCell::new(0));
    let (d, f) = (drops.clone(), finished.clone());
    let out = coil::run(async move {
        let futs = (0..5u64).map(|i| {
            let guard = DropCounter(d.clone());
            let f = f.clone();
            async move {
                let _guard = guard;
                if i == 2 {
                    sleep(Duration::from_millis(5)).await;
                    return Err(format!("child {i}"));
                }
                sleep(Duration::from_secs(3600)).await;
                *f.borrow_mut() += 1;
                Ok(i)
            }
        });
        let r = coil::try_gather_all(futs).await;
        assert_eq!(
            d.load(Ordering::SeqCst),
            5,
            "all five dropped by the time it returns"
        );
        r
    });
    assert_eq!(out, Err("child 2".to_string()));
    assert_eq!(*finished.borrow(), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

#[test]
fn try_gather_tasks_cancels_and_waits_for_the_others() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let out = coil::run(async move {
        let mut tasks = Vec::new();
        for i in 0..4u32 {
            let guard = DropCounter(d.clone());
            tasks.push(spawn(async move {
                let _guard = guard;
                if i == 3 {
                    yield_now().await;
                    return Err(i);
                }
                sleep(Duration::from_secs(3600)).await;
                Ok(i)
            }));
        }
        let r = coil::try_gather_tasks(tasks).await;
        assert_eq!(
            d.load(Ordering::SeqCst),
            4,
            "every task stopped before the error returned"
        );
        r
    });
    assert!(matches!(out, Err(Failure::Error(3))));
}

#[test]
fn try_gather_tasks_reports_panics_and_outside_cancellation() {
    coil::run(async {
        let p = coil::try_gather_tasks([
            spawn(async { Ok::<u8, ()>(1) }),
            spawn(async { panic!("kaput") }),
        ])
        .await;
        match p {
            Err(Failure::Panicked(payload)) => {
                assert_eq!(panic_msg(&*payload.into_inner()), "kaput")
            }
            other => panic!("expected a panic failure, got {other:?}"),
        }

        let slow = spawn(async {
            sleep(Duration::from_secs(3600)).await;
            Ok::<u8, ()>(1)
        });
        slow.cancel();
        let c = coil::try_gather_tasks([slow]).await;
        assert!(matches!(c, Err(Failure::Cancelled)));

        let ok =
            coil::try_gather_tasks((0..3u8).map(|i| spawn(async move { Ok::<_, ()>(i) }))).await;
        assert_eq!(ok.unwrap(), [0, 1, 2]);
    });
}

#[test]
fn gather_settled_returns_every_outcome_in_order() {
    let out = coil::run(coil::gather_settled((0..5u64).map(|i| async move {
        sleep(Duration::from_millis(5 - i)).await;
        if i % 2 == 1 {
            panic!("odd {i}");
        }
        i
    })));
    assert_eq!(out.len(), 5);
    for (i, r) in out.into_iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(v, i as u64),
            Err(TaskError::Panicked(p)) => {
                assert_eq!(panic_msg(&*p.into_inner()), format!("odd {i}"))
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

#[test]
fn gather_settled_drops_a_panicked_future_at_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    coil::run(async move {
        let guard = DropCounter(d.clone());
        let fut_a = async move {
            let _g = guard;
            panic!("early");
        };
        let fut_b = async {
            yield_now().await;
            // By now the panicked future has been dropped.
            d.load(Ordering::SeqCst)
        };
        let out = coil::gather_settled([
            Box::pin(async move {
                fut_a.await;
                0usize
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = usize>>>,
            Box::pin(fut_b),
        ])
        .await;
        assert!(out[0].is_err());
        assert_eq!(*out[1].as_ref().unwrap(), 1);
    });
}
