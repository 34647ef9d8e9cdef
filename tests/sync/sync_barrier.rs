//! Barrier: arrival indices, `abort`/`reset` and `BrokenBarrier` (CPython's
//! `BarrierTests` shapes), and a `wait` dropped at every point.

use crate::support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

use coil::spawn;
use coil::sync::{Barrier, BarrierWait, BarrierWaitResult, BrokenBarrier};
use coil::task::yield_now;
use support::{Probe, drop_one_waiter};

/// CPython's `N`.
const N: usize = 5;

/// Spawns `n` copies of `f(i)` and awaits them all, in order.
async fn gather<F, Fut>(n: usize, f: F) -> Vec<Fut::Output>
where
    F: Fn(usize) -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| spawn(f(i))).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn ready_index(p: &mut Probe<BarrierWait<'_>>) -> usize {
    match p.poll() {
        Poll::Ready(Ok(r)) => r.index(),
        other => panic!("expected a released waiter, got {other:?}"),
    }
}

#[test]
fn indices_are_arrival_order_and_the_leader_is_last() {
    let b = Barrier::new(3);
    let mut w: Vec<_> = (0..2).map(|_| Probe::new(b.wait())).collect();
    for p in &mut w {
        assert!(p.poll().is_pending());
    }
    assert_eq!(b.n_waiting(), 2);
    let mut leader = Probe::new(b.wait());
    let Poll::Ready(Ok(r)) = leader.poll() else {
        panic!("the third arrival is released at once")
    };
    assert_eq!((r.index(), r.is_leader()), (2, true));
    assert_eq!(b.n_waiting(), 0);
    for (i, p) in w.iter_mut().enumerate() {
        assert_eq!(p.wakes(), 1);
        assert_eq!(ready_index(p), i);
    }
}

/// CPython `test_abort_barrier`: `abort` breaks the barrier for later
/// waiters, `n_waiting` is 0.
#[test]
fn cpython_abort_barrier() {
    let b = Barrier::new(1);
    assert!(!b.is_broken());
    b.abort();
    assert!(b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    let mut w = Probe::new(b.wait());
    assert_eq!(w.poll(), Poll::Ready(Err(broken())));
    assert!(b.is_broken(), "only reset mends it");
    assert!(format!("{b:?}").contains("broken: true"));
}

/// CPython `test_reset_barrier`: reset of an idle barrier leaves it empty
/// and unbroken; reset mends an aborted one.
#[test]
fn cpython_reset_barrier() {
    let b = Barrier::new(1);
    b.reset();
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.is_broken());
    b.abort();
    b.reset();
    assert!(!b.is_broken());
    let mut w = Probe::new(b.wait());
    assert!(matches!(w.poll(), Poll::Ready(Ok(r)) if r.is_leader() && r.index() == 0));
}

/// A waiter already queued when `abort` comes is woken with the error, as
/// is one that arrives later.
#[test]
fn abort_wakes_the_waiters_with_broken_barrier() {
    let b = Barrier::new(3);
    let mut w: Vec<_> = (0..2).map(|_| Probe::new(b.wait())).collect();
    for p in &mut w {
        assert!(p.poll().is_pending());
    }
    b.abort();
    assert_eq!(b.n_waiting(), 0);
    for p in &mut w {
        assert_eq!(p.wakes(), 1);
        assert!(matches!(p.poll(), Poll::Ready(Err(_))));
    }
    let mut late = Probe::new(b.wait());
    assert!(matches!(late.poll(), Poll::Ready(Err(_))));
    assert_eq!(late.wakes(), 0);
}

/// A round that filled up is released for good: an `abort` or `reset`
/// before its waiters run does not take their index away (coil's choice;
/// see the asyncio mapping table).
#[test]
fn abort_or_reset_after_the_release_leaves_the_round_released() {
    for abort in [true, false] {
        let b = Barrier::new(2);
        let mut w = Probe::new(b.wait());
        assert!(w.poll().is_pending());
        assert!(Probe::new(b.wait()).poll().is_ready());
        if abort {
            b.abort();
        } else {
            b.reset();
        }
        assert_eq!(ready_index(&mut w), 0);
        assert_eq!(b.is_broken(), abort);
    }
}

#[test]
fn broken_barrier_is_a_std_error_with_a_sentence() {
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(broken());
    assert_eq!(e.to_string(), "the barrier is broken (aborted or reset)");
}

/// A `BrokenBarrier`, got the only way a user can: from a broken barrier.
fn broken() -> BrokenBarrier {
    let b = Barrier::new(1);
    b.abort();
    let mut w = Probe::new(b.wait());
    match w.poll() {
        Poll::Ready(Err(e)) => e,
        other => panic!("{other:?}"),
    }
}

/// How a round ends in [`drop_a_waiter_at_every_point_loses_nothing`].
#[derive(Debug, Clone, Copy)]
enum Ending {
    Release,
    Abort,
    Reset,
}

/// Four parties; three waiters, one of which (`victim`) is dropped before
/// its first poll (point 0), while queued (1) or after the round ended and
/// woke it, before it ran (2). The others each get what the ending owes
/// them, woken once; the barrier stays consistent and usable.
#[test]
fn drop_a_waiter_at_every_point_loses_nothing() {
    for ending in [Ending::Release, Ending::Abort, Ending::Reset] {
        for victim in 0..3 {
            for point in 0..3 {
                let case = format!("{ending:?} victim={victim} point={point}");
                let b = Barrier::new(4);
                let mut w: Vec<_> = (0..3).map(|_| Probe::new(b.wait())).collect();
                let queued = if point == 2 { 3 } else { 2 };
                let mut extra = Probe::new(b.wait());
                drop_one_waiter(&mut w, victim, point, || {
                    assert_eq!(b.n_waiting(), queued, "{case}");
                    // Fill the round (one more waiter if one left), or end it.
                    match ending {
                        Ending::Release => {
                            if queued == 2 {
                                assert!(extra.poll().is_pending(), "{case}");
                            }
                            let leader = Probe::new(b.wait()).poll();
                            assert!(matches!(leader, Poll::Ready(Ok(r)) if r.index() == 3));
                        }
                        Ending::Abort => b.abort(),
                        Ending::Reset => b.reset(),
                    }
                });
                let mut indices = Vec::new();
                for p in w.iter_mut().filter(|p| p.is_live()) {
                    assert_eq!(p.wakes(), 1, "{case}");
                    match (ending, p.poll()) {
                        (Ending::Release, Poll::Ready(Ok(r))) => indices.push(r.index()),
                        (Ending::Abort | Ending::Reset, Poll::Ready(Err(_))) => {}
                        (_, other) => panic!("{case}: {other:?}"),
                    }
                }
                if let (Ending::Release, 2) = (ending, queued) {
                    assert_eq!(extra.wakes(), 1, "{case}");
                    indices.push(ready_index(&mut extra));
                }
                if let Ending::Release = ending {
                    indices.sort();
                    let mut want: Vec<_> = (0..3).collect();
                    if point == 2 {
                        want.remove(victim); // its index went with it
                    }
                    assert_eq!(indices, want, "{case}");
                }
                assert_eq!(b.n_waiting(), 0, "{case}");
                assert_eq!(b.is_broken(), matches!(ending, Ending::Abort), "{case}");
                // The next round works (after a reset if aborted).
                b.reset();
                let mut next: Vec<_> = (0..4).map(|_| Probe::new(b.wait())).collect();
                let polled: Vec<_> = next.iter_mut().map(Probe::poll).collect();
                assert!(polled[..3].iter().all(Poll::is_pending), "{case}");
                assert!(polled[3].is_ready(), "{case}");
            }
        }
    }
}

driver_test! {
    /// CPython `test_filling_tasks_check_return_value`: every task of a
    /// round gets a distinct index, `0..N`.
    fn cpython_filling_tasks_check_return_value(rt) {
        rt.block_on(async {
            let b = Rc::new(Barrier::new(N));
            let res = gather(N, |_| {
                let b = b.clone();
                async move {
                    b.wait().await.unwrap();
                    b.wait().await.unwrap().index()
                }
            })
            .await;
            assert_eq!(res.iter().sum::<usize>(), (0..N).sum());
        });
    }

    /// CPython `test_reset_barrier_while_tasks_waiting`: `N - 1` tasks wait,
    /// a reset wakes each with `BrokenBarrier`; the barrier ends empty and
    /// unbroken.
    fn cpython_reset_barrier_while_tasks_waiting(rt) {
        rt.block_on(async {
            let b = Rc::new(Barrier::new(N));
            let tasks: Vec<_> = (0..N - 1)
                .map(|_| {
                    let b = b.clone();
                    spawn(async move { b.wait().await.is_err() })
                })
                .collect();
            yield_now().await;
            assert_eq!(b.n_waiting(), N - 1);
            let reset = spawn({
                let b = b.clone();
                async move { b.reset() }
            });
            for t in tasks {
                assert!(t.await.unwrap(), "woken with BrokenBarrier");
            }
            reset.await.unwrap();
            assert_eq!(b.n_waiting(), 0);
            assert!(!b.is_broken());
        });
    }

    /// CPython `test_reset_barrier_while_tasks_waiting_and_waiting_again`:
    /// the reset tasks wait again and, with one more arrival, pass.
    fn cpython_reset_barrier_while_tasks_waiting_and_waiting_again(rt) {
        rt.block_on(async {
            let b = Rc::new(Barrier::new(N));
            let (r1, r2) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
            let tasks: Vec<_> = (0..N - 1)
                .map(|_| {
                    let (b, r1, r2) = (b.clone(), r1.clone(), r2.clone());
                    spawn(async move {
                        if b.wait().await.is_err() {
                            r1.set(r1.get() + 1);
                        }
                        b.wait().await.unwrap();
                        r2.set(r2.get() + 1);
                    })
                })
                .collect();
            yield_now().await;
            b.reset();
            yield_now().await;
            let last = spawn({
                let b = b.clone();
                async move { b.wait().await.unwrap() }
            });
            for t in tasks {
                t.await.unwrap();
            }
            assert!(last.await.unwrap().is_leader());
            assert!(!b.is_broken());
            assert_eq!((r1.get(), r2.get()), (N - 1, N - 1));
            assert_eq!(b.n_waiting(), 0);
        });
    }

    /// CPython `test_abort_barrier_when_tasks_half_draining_half_blocking`:
    /// after a full round, the first `N / 2` tasks to run wait again; the
    /// next aborts, and they get `BrokenBarrier`.
    fn cpython_abort_barrier_when_tasks_half_draining_half_blocking(rt) {
        rt.block_on(async {
            let b = Rc::new(Barrier::new(N));
            let blocking = N / 2;
            let count = Rc::new(Cell::new(0));
            let results = Rc::new(RefCell::new((0, 0)));
            gather(N, |_| {
                let (b, count, results) = (b.clone(), count.clone(), results.clone());
                async move {
                    if b.wait().await.is_err() {
                        results.borrow_mut().0 += 1;
                        return;
                    }
                    count.set(count.get() + 1);
                    if count.get() > blocking {
                        b.abort();
                    } else if b.wait().await.is_err() {
                        results.borrow_mut().1 += 1;
                    }
                }
            })
            .await;
            assert!(b.is_broken());
            assert_eq!(*results.borrow(), (0, blocking));
        });
    }

    /// CPython `test_abort_barrier_when_exception`: the task with index
    /// `N / 2` fails and aborts; the others, waiting in the next round, get
    /// `BrokenBarrier`.
    fn cpython_abort_barrier_when_exception(rt) {
        rt.block_on(async {
            let b = Rc::new(Barrier::new(N));
            let broken = gather(N, |_| {
                let b = b.clone();
                async move {
                    let r: Result<bool, BrokenBarrier> = async {
                        if b.wait().await?.index() == N / 2 {
                            b.abort(); // asyncio: raise, then abort in `except`
                            return Ok(false);
                        }
                        b.wait().await?;
                        Ok(true)
                    }
                    .await;
                    r.is_err()
                }
            })
            .await;
            assert!(b.is_broken());
            assert_eq!(broken.iter().filter(|&&x| x).count(), N - 1);
        });
    }

    /// CPython `test_abort_barrier_when_exception_then_resetting` (named
    /// `test_abort_and_reset` in threading's tests): after the abort, a
    /// second barrier lets every task leave the first, one task resets it,
    /// and then all `N` pass it again.
    fn cpython_abort_and_reset(rt) {
        rt.block_on(async {
            let b1 = Rc::new(Barrier::new(N));
            let b2 = Rc::new(Barrier::new(N));
            let out = gather(N, |_| {
                let (b1, b2) = (b1.clone(), b2.clone());
                async move {
                    let (mut passed, mut broken) = (false, false);
                    match b1.wait().await {
                        Ok(r) if r.index() == N / 2 => b1.abort(),
                        Ok(_) => match b1.wait().await {
                            Ok(_) => passed = true,
                            Err(_) => broken = true,
                        },
                        Err(_) => broken = true,
                    }
                    if b2.wait().await.unwrap().index() == N / 2 {
                        b1.reset();
                    }
                    b2.wait().await.unwrap();
                    let again: BarrierWaitResult = b1.wait().await.unwrap();
                    (passed, broken, again.index())
                }
            })
            .await;
            assert!(!b1.is_broken());
            assert_eq!(out.iter().filter(|o| o.0).count(), 0);
            assert_eq!(out.iter().filter(|o| o.1).count(), N - 1);
            let mut again: Vec<_> = out.iter().map(|o| o.2).collect();
            again.sort();
            assert_eq!(again, (0..N).collect::<Vec<_>>());
        });
    }

    /// Tasks woken by the round and cancelled before they ran take nothing
    /// from the others; cancelled while queued, they leave the round.
    fn cancelled_waiting_tasks_lose_nothing(rt) {
        rt.block_on(async {
            let b = Rc::new(Barrier::new(4));
            let spawn_waiter = || {
                let b = b.clone();
                spawn(async move { b.wait().await.unwrap().index() })
            };
            let mut tasks: Vec<_> = (0..3).map(|_| spawn_waiter()).collect();
            yield_now().await;
            tasks[1].cancel(); // queued: leaves the round
            assert!(tasks.remove(1).await.unwrap_err().is_cancelled());
            assert_eq!(b.n_waiting(), 2);
            tasks.push(spawn_waiter());
            yield_now().await;
            assert_eq!(b.n_waiting(), 3);
            let leader = b.wait().await.unwrap();
            assert_eq!(leader.index(), 3);
            tasks[0].cancel(); // woken, cancelled before it ran
            let mut got = Vec::new();
            for (i, t) in tasks.into_iter().enumerate() {
                match t.await {
                    Ok(index) => got.push(index),
                    Err(e) => assert!(e.is_cancelled() && i == 0),
                }
            }
            assert_eq!(got, [1, 2]);
            assert_eq!(b.n_waiting(), 0);
        });
    }
}
