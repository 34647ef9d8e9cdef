//! Property suite: TaskGroup cancellation semantics under random failures.
//!
//! A random group of children, each of which succeeds, returns an error or
//! panics after `k` yields, or is itself a nested group. After the group:
//! - every child's future has been dropped (all drop counters ran);
//! - with no failure: `Ok`, and each handle holds its child's value, in
//!   spawn order;
//! - with failures: `Err` listing exactly the failures that happened (as
//!   logged by the children themselves) and, as cancelled, exactly the
//!   children that did not finish; none of those completed;
//! - for flat groups of leaves, the failures are the ones the scheduling
//!   model predicts (all children start on the same tick; child `i` finishes
//!   on poll `k_i + 1`; within a tick, spawn order; the group cancels the
//!   rest when its owner runs: the block_on future after the tick, a task
//!   queued behind the children polled before the first failure): every
//!   child that fails before the owner runs is reported, in the order they
//!   failed; the children that finished are exactly those that finish
//!   before the owner runs.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coil::task::yield_now;
use coil::{Failure, GroupTask, TaskGroup, task_group};
use proptest::prelude::*;
use support::DropCounter;

#[derive(Debug, Clone)]
enum Child {
    Succeed(u8),
    Fail(u8),
    Panic(u8),
    Group(Vec<Child>),
}

fn child() -> impl Strategy<Value = Child> {
    let leaf = prop_oneof![
        6 => (0u8..6).prop_map(Child::Succeed),
        2 => (0u8..6).prop_map(Child::Fail),
        1 => (0u8..6).prop_map(Child::Panic),
    ];
    leaf.prop_recursive(2, 24, 6, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(Child::Group)
    })
}

/// What each child reports when it finishes (not when cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Err,
    Panic,
}

type Log = Rc<RefCell<Vec<(usize, Outcome)>>>;

fn silence_planned_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|s| s.starts_with("planned"));
            if !planned {
                prev(info);
            }
        }));
    });
}

/// Runs a group of `children`; checks the invariants; returns whether it
/// failed (for the parent, which sees it as an `Err`).
async fn run_group(
    children: Vec<Child>,
    drops: Arc<AtomicUsize>,
    owner_is_task: bool,
) -> Result<Vec<u32>, String> {
    let n = children.len();
    let flat = children.iter().all(|c| !matches!(c, Child::Group(_)));
    let log: Log = Rc::default();
    let mine = Arc::new(AtomicUsize::new(0));
    let plan = children.clone();
    let (l, m, d) = (log.clone(), mine.clone(), drops.clone());
    let result = task_group(move |tg: TaskGroup<String>| async move {
        let mut handles: Vec<GroupTask<u32>> = Vec::new();
        for (i, c) in children.into_iter().enumerate() {
            let (log, guard, guard_all, drops) = (
                l.clone(),
                DropCounter(m.clone()),
                DropCounter(d.clone()),
                d.clone(),
            );
            handles.push(tg.try_spawn(async move {
                let _g = (guard, guard_all);
                let k = match &c {
                    Child::Succeed(k) | Child::Fail(k) | Child::Panic(k) => *k,
                    Child::Group(_) => 0,
                };
                for _ in 0..k {
                    yield_now().await;
                }
                match c {
                    Child::Succeed(_) => {
                        log.borrow_mut().push((i, Outcome::Ok));
                        Ok(i as u32 * 10)
                    }
                    Child::Fail(_) => {
                        log.borrow_mut().push((i, Outcome::Err));
                        Err(format!("child {i}"))
                    }
                    Child::Panic(_) => {
                        log.borrow_mut().push((i, Outcome::Panic));
                        panic!("planned panic {i}");
                    }
                    Child::Group(grandchildren) => {
                        let r = Box::pin(run_group(grandchildren, drops, true)).await;
                        log.borrow_mut()
                            .push((i, if r.is_ok() { Outcome::Ok } else { Outcome::Err }));
                        r.map(|_| i as u32 * 10)
                    }
                }
            }));
        }
        Ok(handles)
    })
    .await;

    assert_eq!(
        mine.load(Ordering::SeqCst),
        n,
        "every child dropped when the group returns"
    );
    let log = log.borrow().clone();
    let finished: Vec<usize> = {
        let mut f: Vec<usize> = log.iter().map(|(i, _)| *i).collect();
        f.sort_unstable();
        f
    };
    let failed: Vec<(usize, Outcome)> = log
        .iter()
        .copied()
        .filter(|(_, o)| *o != Outcome::Ok)
        .collect();

    match result {
        Ok(handles) => {
            assert!(failed.is_empty(), "Ok although {failed:?} failed");
            let values: Vec<u32> = handles
                .into_iter()
                .map(|mut h| h.take().expect("a value"))
                .collect();
            assert_eq!(values, (0..n as u32).map(|i| i * 10).collect::<Vec<_>>());
            Ok(values)
        }
        Err(err) => {
            let reported: Vec<(usize, Outcome)> = err
                .failures()
                .iter()
                .map(|(i, f)| {
                    (
                        *i,
                        match f {
                            Failure::Error(_) => Outcome::Err,
                            Failure::Panicked(_) => Outcome::Panic,
                            Failure::Cancelled => {
                                panic!("a group never reports its own cancellations")
                            }
                        },
                    )
                })
                .collect();
            assert_eq!(
                reported, failed,
                "exactly the failures that happened, in order"
            );
            let not_finished: Vec<usize> = (0..n).filter(|i| !finished.contains(i)).collect();
            assert_eq!(
                err.cancelled(),
                &not_finished[..],
                "exactly the unfinished are cancelled"
            );
            if flat {
                let key = |i: usize| match &plan[i] {
                    Child::Succeed(k) | Child::Fail(k) | Child::Panic(k) => (*k, i),
                    Child::Group(_) => unreachable!(),
                };
                let first_tick = (0..n)
                    .filter(|&i| !matches!(plan[i], Child::Succeed(_)))
                    .map(|i| key(i).0)
                    .min()
                    .expect("a failing child exists");
                let first_fail = (0..n)
                    .find(|&i| !matches!(plan[i], Child::Succeed(_)) && key(i).0 == first_tick)
                    .expect("a failing child exists");
                // A task owner is queued behind the children polled before
                // the first failure, which get one more poll.
                let finishes = |i: usize| {
                    let k = key(i).0;
                    k <= first_tick || (owner_is_task && k == first_tick + 1 && i < first_fail)
                };
                let mut expected: Vec<usize> = (0..n)
                    .filter(|&i| !matches!(plan[i], Child::Succeed(_)) && finishes(i))
                    .collect();
                expected.sort_by_key(|&i| key(i));
                let reported_at: Vec<usize> = reported.iter().map(|(i, _)| *i).collect();
                assert_eq!(
                    reported_at, expected,
                    "the model's failures: all before the owner ran, in the order they happened"
                );
                let ahead: Vec<usize> = (0..n).filter(|&i| finishes(i)).collect();
                assert_eq!(
                    finished, ahead,
                    "finished exactly those polled to the end before the owner ran"
                );
            }
            Err(err.to_string())
        }
    }
}

fn count(children: &[Child]) -> usize {
    children
        .iter()
        .map(|c| match c {
            Child::Group(g) => 1 + count(g),
            _ => 1,
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn taskgroup_cancellation_semantics(children in prop::collection::vec(child(), 0..10)) {
        silence_planned_panics();
        let total = count(&children);
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        coil::run(async move {
            let _ = run_group(children, d, false).await;
        });
        // Nested children that were never spawned (their group was cancelled
        // before the body ran) never had a drop counter: count only spawned.
        prop_assert!(drops.load(Ordering::SeqCst) <= total);
    }
}
