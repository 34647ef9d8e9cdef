//! stream::async_gen: send, throw and close, in the shapes of CPython's
//! test_asyncgen cases for `asend`, `athrow` and `aclose` (each test names
//! the asyncio behaviour it checks), under every driver.

use crate::support;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use coil::stream::{AsyncGen, CloseError, Thrown, async_gen};
use coil::time::{sleep, timeout};
use support::{DropCounter, panic_message_of};

/// The short pause the CPython cases take between steps (`sleep(0.01)`).
const PAUSE: Duration = Duration::from_millis(1);

/// The error thrown in (CPython's `FooEr`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FooEr(u32);

impl std::fmt::Display for FooEr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FooEr({})", self.0)
    }
}

/// Yields 1, then sleeps an hour before yielding 2; holds a [`DropCounter`]
/// on `drops` for as long as the body lives.
fn yields_then_sleeps_an_hour(
    drops: Arc<AtomicUsize>,
) -> AsyncGen<u32, (), FooEr, impl Future<Output = Result<(), Thrown<FooEr>>>> {
    async_gen(|co| async move {
        let _guard = DropCounter(drops);
        co.yield_(1).await?;
        sleep(Duration::from_secs(3600)).await;
        co.yield_(2).await?;
        Ok(())
    })
}

driver_test! {
    /// asend_01: `v = yield 1; yield v * 2`: the sent value is what the
    /// yield evaluates to; after the body returns, `asend` answers
    /// StopAsyncIteration (`Ok(None)`).
    fn sent_values_are_echoed(rt) {
        rt.block_on(async {
            let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
                sleep(PAUSE).await;
                let v = co.yield_(1).await?;
                sleep(PAUSE).await;
                co.yield_(v.expect("sent a value") * 2).await?;
                sleep(PAUSE).await;
                Ok(())
            });
            assert_eq!(g.next().await, Ok(Some(1)));
            assert_eq!(g.send(100).await, Ok(Some(200)));
            assert!(!g.is_finished());
            assert_eq!(g.send(1000).await, Ok(None));
            assert!(g.is_finished());
        });
    }

    /// athrow_02: the body catches the thrown error at its yield, awaits,
    /// and yields again; the next resume runs it to the end.
    fn thrown_error_caught_and_generator_continues(rt) {
        rt.block_on(async {
            let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
                let v = match co.yield_(1).await {
                    Ok(v) => v.unwrap_or(0),
                    Err(Thrown::Error(FooEr(n))) => {
                        sleep(PAUSE).await;
                        1000 + n
                    }
                    Err(exit) => return Err(exit),
                };
                co.yield_(v * 2).await?;
                sleep(PAUSE).await;
                Ok(())
            });
            assert_eq!(g.next().await, Ok(Some(1)));
            assert_eq!(g.throw(FooEr(1)).await, Ok(Some(2002)));
            assert_eq!(g.next().await, Ok(None));
        });
    }

    /// athrow_01: an error the body does not catch propagates out of
    /// `athrow` after the body's (async) cleanup ran, and finishes the
    /// generator.
    fn thrown_error_uncaught_propagates_and_finishes(rt) {
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        rt.block_on(async move {
            let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
                // try: ... finally: await sleep; DONE = 1
                let result = async {
                    sleep(PAUSE).await;
                    let v = co.yield_(1).await?;
                    co.yield_(v.unwrap_or(0) * 2).await?;
                    Ok(())
                }
                .await;
                sleep(PAUSE).await;
                d.set(true);
                result
            });
            assert_eq!(g.next().await, Ok(Some(1)));
            assert_eq!(g.throw(FooEr(7)).await, Err(FooEr(7)));
            assert!(done.get(), "the cleanup ran before athrow returned");
            assert!(g.is_finished());
            assert_eq!(g.next().await, Ok(None), "StopAsyncIteration afterwards");
        });
    }

    /// aclose_07: `aclose` at a yield makes it evaluate to GeneratorExit;
    /// the cleanup awaits twice, then the generator is closed.
    fn close_runs_async_cleanup(rt) {
        let cleaned = Rc::new(Cell::new(0));
        let c = cleaned.clone();
        rt.block_on(async move {
            let mut g: AsyncGen<u32, (), FooEr, _> = async_gen(|co| async move {
                let exit = co.yield_(1).await;
                assert_eq!(exit, Err(Thrown::Exit));
                sleep(PAUSE).await;
                c.set(c.get() + 1);
                sleep(PAUSE).await;
                c.set(c.get() + 1);
                exit.map(drop)
            });
            assert_eq!(g.next().await, Ok(Some(1)));
            assert_eq!(g.close().await, Ok(()));
            assert_eq!(cleaned.get(), 2);
            assert!(g.is_finished());
            assert_eq!(g.close().await, Ok(()), "a second aclose is a no-op");
        });
    }

    /// aclose_06: a body that yields again after being told to close: asyncio
    /// raises "async generator ignored GeneratorExit"; coil answers
    /// `CloseError::IgnoredExit` and drops the body where it yielded.
    fn close_of_a_generator_that_yields_in_cleanup_errors(rt) {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            let mut g: AsyncGen<u32, (), FooEr, _> = async_gen(|co| async move {
                let _guard = DropCounter(d);
                let _ = co.yield_(1).await; // ignores the exit...
                sleep(PAUSE).await;
                co.yield_(12).await?; // ...and yields in its cleanup
                Ok(())
            });
            assert_eq!(g.next().await, Ok(Some(1)));
            assert_eq!(g.close().await, Err(CloseError::IgnoredExit));
            assert_eq!(drops.load(Ordering::SeqCst), 1, "the body was dropped");
            assert!(g.is_finished());
            assert_eq!(g.next().await, Ok(None));
        });
    }

    /// A cleanup that raises: `aclose` propagates that error.
    fn close_propagates_an_error_raised_in_cleanup(rt) {
        rt.block_on(async {
            let mut g: AsyncGen<u32, (), FooEr, _> = async_gen(|co| async move {
                if co.yield_(1).await == Err(Thrown::Exit) {
                    sleep(PAUSE).await;
                    return Err(FooEr(3).into());
                }
                Ok(())
            });
            assert_eq!(g.next().await, Ok(Some(1)));
            let err = g.close().await.unwrap_err();
            assert_eq!(err, CloseError::Raised(FooEr(3)));
            assert_eq!(err.to_string(), "async generator raised while closing: FooEr(3)");
            assert!(g.is_finished());
        });
    }

    /// Cancelling the await of an operation (here a timeout) while the body
    /// is between two yields drops the body there, and the generator is
    /// finished (asyncio throws CancelledError in at that await).
    fn dropping_an_operation_mid_await_drops_the_body(rt) {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            let mut g = yields_then_sleeps_an_hour(d);
            assert_eq!(g.next().await, Ok(Some(1)));
            assert!(timeout(PAUSE, g.next()).await.is_err(), "the hour-long sleep lost");
            assert_eq!(drops.load(Ordering::SeqCst), 1, "the body was dropped");
            assert!(g.is_finished());
            assert_eq!(g.next().await, Ok(None));
            assert_eq!(g.close().await, Ok(()));
        });
    }
}

/// test_close_a_fully_consumed_async_generator and the
/// post-StopAsyncIteration edges: every operation on a finished generator
/// answers at once and runs nothing.
#[test]
fn operations_on_a_finished_generator() {
    coil::run(async {
        let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
            co.yield_(1).await?;
            Ok(())
        });
        assert_eq!(g.next().await, Ok(Some(1)));
        assert_eq!(g.next().await, Ok(None));
        assert_eq!(g.next().await, Ok(None), "StopAsyncIteration again");
        assert_eq!(g.send(5).await, Ok(None));
        assert_eq!(
            g.throw(FooEr(1)).await,
            Ok(None),
            "athrow: StopAsyncIteration"
        );
        assert_eq!(g.close().await, Ok(()));
        assert_eq!(g.close().await, Ok(()));
    });
}

/// athrow and aclose on a generator that never ran: the error is raised
/// before the body's first line; the close just marks it finished.
#[test]
fn throw_and_close_before_the_first_resume() {
    coil::run(async {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
            r.set(true);
            co.yield_(1).await?;
            Ok(())
        });
        assert_eq!(g.throw(FooEr(9)).await, Err(FooEr(9)));
        assert!(g.is_finished());
        assert_eq!(g.next().await, Ok(None));

        let r = ran.clone();
        let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
            r.set(true);
            co.yield_(1).await?;
            Ok(())
        });
        assert_eq!(g.close().await, Ok(()));
        assert_eq!(g.next().await, Ok(None));
        assert!(!ran.get(), "neither body ran");
    });
}

/// asend(non-None) on a just-started generator is asyncio's TypeError; in
/// coil a panic at the call, naming the fix.
#[test]
fn send_before_the_first_resume_panics_with_advice() {
    let msg = panic_message_of(|| {
        coil::run(async {
            let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
                co.yield_(1).await?;
                Ok(())
            });
            let _ = g.send(1).await;
        })
    });
    assert!(msg.contains("next() first"), "{msg}");
}

/// Dropping a suspended generator without `close` drops its body there:
/// destructors run, async cleanup after the yield does not.
#[test]
fn dropping_the_generator_runs_destructors_not_cleanup() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cleanup = Rc::new(Cell::new(false));
    let (d, c) = (drops.clone(), cleanup.clone());
    coil::run(async move {
        let mut g: AsyncGen<u32, (), FooEr, _> = async_gen(|co| async move {
            let _guard = DropCounter(d);
            let r = co.yield_(1).await;
            sleep(PAUSE).await;
            c.set(true);
            r.map(drop)
        });
        assert_eq!(g.next().await, Ok(Some(1)));
        drop(g);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(!cleanup.get(), "no async drop: the cleanup needs close()");
}

/// A body's own error, raised with `?`, ends the generator with that error;
/// a caught throw that then returns answers StopAsyncIteration.
#[test]
fn raising_and_returning_after_a_throw() {
    coil::run(async {
        let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
            let v = co.yield_(1).await?;
            let checked: Result<u32, FooEr> = v.ok_or(FooEr(0));
            co.yield_(checked?).await?;
            Ok(())
        });
        assert_eq!(g.next().await, Ok(Some(1)));
        assert_eq!(g.next().await, Err(FooEr(0)), "None sent: the body raised");
        assert!(g.is_finished());

        let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
            if let Err(Thrown::Error(_)) = co.yield_(1).await {
                return Ok(()); // caught, and return
            }
            co.yield_(2).await?;
            Ok(())
        });
        assert_eq!(g.next().await, Ok(Some(1)));
        assert_eq!(g.throw(FooEr(1)).await, Ok(None));
    });
}

/// `async for x in g` is `while let Some(x) = g.next().await?`; the yields
/// see `None`, as Python's do under `__anext__`.
#[test]
fn async_for_over_next() {
    let got = coil::run(async {
        let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
            for i in 0..4 {
                let sent = co.yield_(i).await?;
                assert_eq!(sent, None);
            }
            Ok(())
        });
        let mut got = Vec::new();
        while let Some(x) = g.next().await? {
            got.push(x);
        }
        Ok::<_, FooEr>(got)
    });
    assert_eq!(got, Ok(vec![0, 1, 2, 3]));
}

/// A leaked operation (`mem::forget` after a poll) cannot leave the body
/// half-resumed: the next operation finds the step abandoned and treats it
/// as a cancelled one.
#[test]
fn a_leaked_operation_abandons_its_step() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    coil::run(async move {
        let mut g = yields_then_sleeps_an_hour(d);
        assert_eq!(g.next().await, Ok(Some(1)));
        let mut step = g.next();
        std::future::poll_fn(|cx| {
            assert!(Pin::new(&mut step).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        std::mem::forget(step);
        assert_eq!(g.next().await, Ok(None));
        assert!(g.is_finished());
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// Two pending yields panic, as for `generate`.
#[test]
fn two_racing_yields_panic_with_advice() {
    let msg = panic_message_of(|| {
        coil::run(async {
            let mut g: AsyncGen<u32, (), FooEr, _> = async_gen(|co| async move {
                let (a, b) = coil::gather!(co.yield_(1), co.yield_(2)).await;
                a.and(b).map(drop)
            });
            let _ = g.next().await;
        })
    });
    assert!(msg.contains("await each co.yield_"), "{msg}");
}

/// A body that only yields is resumed under the coop budget: other tasks
/// run while a consumer drives it in a tight loop.
#[test]
fn a_hot_generator_does_not_starve_other_tasks() {
    coil::run(async {
        let (flag, other) = support::spawn_flag_setter();
        let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
            let mut x = 0;
            for _ in 0..10_000 {
                x = co.yield_(x).await?.unwrap_or(0) + 1;
            }
            Ok(())
        });
        let mut seen_flag_at = None;
        let mut last = g.next().await.unwrap();
        while let Some(x) = last {
            if seen_flag_at.is_none() && flag.get() {
                seen_flag_at = Some(x);
            }
            last = g.send(x).await.unwrap();
        }
        other.await.unwrap();
        let at = seen_flag_at.expect("the other task ran during the loop");
        assert!(at <= 200, "other task waited {at} steps");
    });
}

/// A body that panics while resumed: the panic reaches whoever polled the
/// operation, and the generator is finished (its body dropped) once that
/// future is gone.
#[test]
fn a_panicking_body_finishes_the_generator() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    coil::run(async move {
        let mut g: AsyncGen<u32, u32, FooEr, _> = async_gen(|co| async move {
            let _guard = DropCounter(d);
            co.yield_(1).await?;
            panic!("boom in the body");
        });
        assert_eq!(g.next().await, Ok(Some(1)));
        let mut step = g.next();
        let caught = std::future::poll_fn(|cx| {
            let poll = std::panic::AssertUnwindSafe(|| Pin::new(&mut step).poll(cx));
            Poll::Ready(std::panic::catch_unwind(poll))
        })
        .await;
        assert!(caught.is_err(), "the panic came out of the poll");
        drop(step);
        assert!(g.is_finished());
        assert_eq!(g.next().await, Ok(None));
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
