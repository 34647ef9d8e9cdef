//! race, select, wait, as_completed, shield.

use crate::support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coil::stream::StreamExt;
use coil::task::yield_now;
use coil::time::{sleep, sleep_until, timeout};
use coil::{Either, TaskError, WaitFor, spawn};
use support::{DropCounter, panic_message_of};

async fn after(ms: u64, v: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    v
}

#[test]
fn race_first_wins_losers_dropped_at_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let winner = coil::run(async move {
        let futs = [40u64, 5, 20].map(|ms| {
            let g = DropCounter(d.clone());
            async move {
                let _g = g;
                after(ms, ms).await
            }
        });
        let w = coil::race(futs).await;
        assert_eq!(
            d.load(Ordering::SeqCst),
            3,
            "losers dropped before race returns"
        );
        w
    });
    assert_eq!(winner, 5);
}

#[test]
fn race_of_nothing_panics_with_advice() {
    let msg = panic_message_of(|| coil::race(Vec::<std::future::Ready<()>>::new()));
    assert!(msg.contains("at least one future"), "{msg}");
}

#[test]
fn race_ties_go_to_the_earliest() {
    assert_eq!(coil::run(coil::race([1, 2].map(std::future::ready))), 1);
}

#[test]
fn select_left_biased_and_right_can_win() {
    coil::run(async {
        assert_eq!(
            coil::select(async { 1 }, async { 'x' }).await,
            Either::Left(1)
        );
        let r = coil::select(after(50, 0), async { "now" }).await;
        assert_eq!(r, Either::Right("now"));
        assert_eq!(r.right(), Some("now"));
        assert_eq!(Either::<u8, u8>::Left(3).into_inner(), 3);
    });
}

#[test]
fn wait_first_completed_leaves_the_rest_running() {
    coil::run(async {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let tasks = vec![
            spawn(async move {
                sleep(Duration::from_millis(20)).await;
                r.set(true);
                1
            }),
            spawn(async { 2 }),
        ];
        let (done, pending) = coil::wait(tasks, WaitFor::FirstCompleted, None).await;
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].index, 1);
        assert_eq!(done[0].result.as_ref().ok(), Some(&2));
        assert_eq!(pending.len(), 1);
        let (done, pending) = coil::wait(pending, WaitFor::AllCompleted, None).await;
        assert!(pending.is_empty());
        assert_eq!(done[0].result.as_ref().ok(), Some(&1));
        assert!(ran.get());
    });
}

#[test]
fn wait_first_error_returns_on_a_panic_not_a_cancel() {
    coil::run(async {
        let cancelled = spawn(async { sleep(Duration::from_secs(3600)).await });
        cancelled.cancel();
        let tasks = vec![
            cancelled,
            spawn(async {
                sleep(Duration::from_millis(5)).await;
                panic!("bad");
            }),
            spawn(async { sleep(Duration::from_secs(3600)).await }),
        ];
        let (done, pending) = coil::wait(tasks, WaitFor::FirstError, None).await;
        assert_eq!(done.len(), 2);
        assert!(done[0].result.as_ref().is_err_and(TaskError::is_cancelled));
        assert!(done[1].result.as_ref().is_err_and(TaskError::is_panic));
        assert_eq!(pending.len(), 1);
        pending[0].cancel();

        // No panics: same as AllCompleted.
        let (done, pending) = coil::wait(
            (0..3).map(|i| spawn(async move { i })),
            WaitFor::FirstError,
            None,
        )
        .await;
        assert_eq!((done.len(), pending.len()), (3, 0));
    });
}

#[test]
fn wait_timeout_cancels_nothing() {
    coil::run(async {
        let t = spawn(after(30, 9));
        let (done, mut pending) =
            coil::wait([t], WaitFor::AllCompleted, Some(Duration::from_millis(2))).await;
        assert!(done.is_empty());
        let t = pending.pop().unwrap();
        assert_eq!(
            t.await.unwrap(),
            9,
            "the task kept running after the timeout"
        );
    });
}

/// On the simulator's virtual clock: on the real one, a stall of the loop
/// longer than the 10 ms between two deadlines (a loaded machine) made both
/// sleeps ready in one tick, and the order was then the polling order.
#[test]
fn as_completed_yields_in_completion_order() {
    let order: Vec<u64> = coil::sim::Builder::new()
        .seed(1)
        .run(coil::as_completed([30u64, 0, 20, 10].map(|ms| after(ms, ms))).collect());
    assert_eq!(order, [0, 10, 20, 30]);
}

#[test]
fn as_completed_over_tasks_and_dropping_it_drops_the_rest() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    coil::run(async move {
        let mut s = coil::as_completed((0..3u64).map(|i| {
            let g = DropCounter(d.clone());
            async move {
                let _g = g;
                after(i * 20, i).await
            }
        }));
        assert_eq!(s.next().await, Some(0));
        drop(s);
        assert_eq!(d.load(Ordering::SeqCst), 3);

        // One start for all three deadlines (10, 5 and 0 ms after it), not
        // each task's first poll: a stall between two first polls on a
        // loaded machine (5 ms once, under CI's load) moved the deadlines
        // past each other. Due together, they still fire in deadline order.
        let start = coil::time::Instant::now();
        let tasks = (0..3u64).map(|i| {
            spawn(async move {
                sleep_until(start + Duration::from_millis(10 - i * 5)).await;
                i
            })
        });
        let got: Vec<u64> = coil::as_completed(tasks)
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(got, [2, 1, 0]);
    });
}

#[test]
fn shield_survives_the_cancellation_of_its_awaiter() {
    coil::run(async {
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        let inner = spawn(async move {
            sleep(Duration::from_millis(10)).await;
            d.set(true);
            5
        });
        let outer = spawn(async move { coil::shield(inner).await });
        yield_now().await;
        assert!(outer.cancel());
        assert!(outer.await.unwrap_err().is_cancelled());
        sleep(Duration::from_millis(30)).await;
        assert!(done.get(), "the shielded task ran to completion");

        // Awaited normally it gives the result; the timeout drops only the shield.
        let t = spawn(after(5, 6));
        let s = coil::shield(t);
        assert!(!s.is_finished());
        assert_eq!(
            timeout(Duration::from_secs(5), s).await.unwrap().unwrap(),
            6
        );
    });
}

/// asyncio.wait on an empty set raises ValueError (CPython
/// `test_wait_errors`); coil refuses it with a sentence.
#[test]
fn wait_on_no_tasks_is_refused() {
    coil::run(async {
        let msg = panic_message_of(|| {
            coil::wait(Vec::<coil::Task<()>>::new(), WaitFor::AllCompleted, None)
        });
        assert!(msg.contains("coil::wait was given no tasks"), "{msg}");
    });
}
