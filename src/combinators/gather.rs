//! [`gather!`](crate::gather) (also as [`join!`](crate::join)),
//! [`try_join!`](crate::try_join), [`gather_all`], [`try_gather_all`] and
//! [`gather_settled`]: run many futures at once and keep every output in
//! argument order. (Gathers of [`Task`](crate::Task) handles that cancel: `gather_tasks.rs`.)
//!
//! None of these spawn. The futures are polled **inside the task that awaits
//! the combinator**, each time that task is woken, so they may borrow local
//! variables and need not be `'static` or `Send`. Each wake polls every
//! future that has not finished yet (O(n) per wake); for thousands of
//! long-lived futures, spawn them and gather the [`Task`](crate::Task) handles instead.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::maybe_done::MaybeDone;
use crate::task::TaskError;
use crate::task::catch_unwind::CatchUnwind;

/// Runs futures concurrently in the current task and returns their outputs
/// as a tuple, in argument order: `asyncio.gather(a, b, c)`.
///
/// `gather!(a, b, c)` evaluates the argument expressions at once (creating
/// the futures, which do nothing yet) and returns a future; awaiting it polls
/// all of them until every one has finished, then gives `(a_out, b_out,
/// c_out)`. Any number of arguments works; one argument gives a 1-tuple.
/// Nothing is spawned, so the futures may borrow locals. A panic in one of
/// them unwinds through the awaiting task, like any panic in its code.
///
/// ```
/// use std::time::Duration;
/// use coil::time::{sleep, Instant};
///
/// async fn count(n: u64) -> u64 {
///     sleep(Duration::from_millis(10 * n)).await;
///     n
/// }
///
/// coil::run(async {
///     let start = Instant::now();
///     // count(3) finishes last but comes first: argument order.
///     let out = coil::gather!(count(3), count(2), count(1), async { "four" }).await;
///     assert_eq!(out, (3, 2, 1, "four"));
///     assert!(start.elapsed() < Duration::from_millis(60), "ran concurrently");
/// });
/// ```
#[macro_export]
macro_rules! gather {
    () => {
        async {}
    };
    ($($fut:expr),+ $(,)?) => {
        $crate::__join!(@munch all {} () $($fut,)+)
    };
}

/// [`gather!`](crate::gather) under the name tokio and futures users know:
/// `join!(a, b)` is `gather!(a, b)`, a future of the tuple of outputs.
///
/// One difference from tokio's `join!`: coil's is a future to `.await`
/// (like asyncio's `await asyncio.gather(a, b)`), not a statement that
/// awaits by itself, so it can also be handed to
/// [`timeout`](crate::time::timeout) or spawned. The futures run in the
/// awaiting task (nothing is spawned) and may borrow locals.
///
/// ```
/// coil::run(async {
///     let (n, s, ()) = coil::join!(async { 1 }, async { "two" }, async {}).await;
///     assert_eq!((n, s), (1, "two"));
/// });
/// ```
#[macro_export]
macro_rules! join {
    ($($fut:expr),* $(,)?) => {
        $crate::gather!($($fut),*)
    };
}

/// Runs futures that return `Result` concurrently in the current task:
/// `Ok` of the tuple of their values once all succeeded, or the first `Err`
/// at once, the other futures dropped first. tokio's `try_join!`; asyncio's
/// `gather(a, b)` raising the first exception.
///
/// Every future must have the same error type `E`; `try_join!(a, b)` is a
/// future of `Result<(A, B), E>` (like [`join!`](crate::join), a future to
/// `.await`, not a statement that awaits by itself). On each wake the
/// futures still running are polled in argument order; the first one seen
/// to return `Err` ends the join: the others, finished or not, are dropped
/// (a plain future stops at the `.await` it was suspended on, and with
/// coil's lossless I/O nothing it had read is lost: see
/// [`combinators`](crate::combinators)) before the error is returned. For
/// any number of futures in a `Vec`, use
/// [`try_gather_all`](crate::try_gather_all).
///
/// ```
/// use std::time::Duration;
/// use coil::time::sleep;
///
/// coil::run(async {
///     let ok = coil::try_join!(async { Ok::<_, String>(1) }, async { Ok(2.5) }).await;
///     assert_eq!(ok, Ok((1, 2.5)));
///
///     // The slow future never finishes: the error ends the join at once.
///     let slow = async {
///         sleep(Duration::from_secs(3600)).await;
///         Ok::<u8, String>(0)
///     };
///     let failing = async { Err::<u8, _>("bad".to_string()) };
///     assert_eq!(coil::try_join!(slow, failing).await, Err("bad".to_string()));
/// });
/// ```
#[macro_export]
macro_rules! try_join {
    () => {
        async { ::core::result::Result::Ok(()) }
    };
    ($($fut:expr),+ $(,)?) => {
        $crate::__join!(@munch try {} () $($fut,)+)
    };
}

/// The expansion of [`gather!`](crate::gather) (mode `all`) and
/// [`try_join!`](crate::try_join) (mode `try`). Not API.
#[doc(hidden)]
#[macro_export]
macro_rules! __join {
    // Every future now carries a list of `_` as long as its index: the
    // pattern `( $($skip,)* fut, .. )` picks exactly that tuple field.
    (@munch $mode:ident { $( ( $($skip:tt)* ) $fut:expr , )* } ( $($count:tt)* ) ) => {{
        let futures = ( $( $crate::combinators::MaybeDone::new(
            ::core::future::IntoFuture::into_future($fut)
        ), )* );
        async move {
            // Move each field out of the tuple and pin it in this async
            // block's (pinned) frame: no unsafe projection needed.
            let mut futures = ( $( ::core::pin::pin!({
                let ( $($skip,)* fut, .. ) = futures;
                fut
            }), )* );
            ::core::future::poll_fn(move |cx| $crate::__macro_support::await_node("gather", || {
                let mut all_done = true;
                $( {
                    let ( $($skip,)* fut, .. ) = &mut futures;
                    all_done &= fut.as_mut().poll_done(cx);
                    $crate::__join!(@failed $mode fut);
                } )*
                if !all_done {
                    return ::core::task::Poll::Pending;
                }
                ::core::task::Poll::Ready($crate::__join!(@wrap $mode ( $( {
                    let ( $($skip,)* fut, .. ) = &mut futures;
                    $crate::__join!(@take $mode fut)
                }, )* )))
            }))
            .await
        }
    }};
    (@munch $mode:ident { $($acc:tt)* } ( $($count:tt)* ) $head:expr, $($tail:expr,)* ) => {
        $crate::__join!(@munch $mode { $($acc)* ( $($count)* ) $head , } ( $($count)* _ ) $($tail,)*)
    };
    // `try`: an `Err` returns at once; leaving the async block drops the
    // other futures before the caller sees the error.
    (@failed all $fut:ident) => {};
    (@failed try $fut:ident) => {
        if let ::core::option::Option::Some(e) = $fut.as_mut().take_err() {
            return ::core::task::Poll::Ready(::core::result::Result::Err(e));
        }
    };
    (@take all $fut:ident) => {
        $fut.as_mut()
            .take_output()
            .expect("gather!: output already taken (polled after completion)")
    };
    (@take try $fut:ident) => {
        match $fut.as_mut().take_output() {
            ::core::option::Option::Some(::core::result::Result::Ok(v)) => v,
            _ => ::core::unreachable!("try_join!: output already taken (polled after completion)"),
        }
    };
    (@wrap all $out:expr) => { $out };
    (@wrap try $out:expr) => { ::core::result::Result::Ok($out) };
}

/// Runs every future of `iter` concurrently in the current task and returns
/// their outputs in input order: `asyncio.gather(*aws)`.
///
/// Nothing is spawned: the futures run inside the awaiting task, each wake
/// polling those not finished yet (see [`combinators`](crate::combinators)). Given [`Task`](crate::Task) handles,
/// it joins them, and each output is the task's `Result<T, TaskError>`: that
/// is already asyncio's `return_exceptions=True`.
///
/// ```
/// use std::time::Duration;
/// coil::run(async {
///     let delays = [30u64, 10, 20];
///     let out = coil::gather_all(delays.iter().map(|&ms| async move {
///         coil::time::sleep(Duration::from_millis(ms)).await;
///         ms
///     }))
///     .await;
///     assert_eq!(out, [30, 10, 20]);
/// });
/// ```
pub fn gather_all<I>(iter: I) -> GatherAll<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    GatherAll {
        elems: iter
            .into_iter()
            .map(|f| MaybeDone::new(f.into_future()))
            .collect::<Box<[_]>>()
            .into(),
    }
}

/// The future returned by [`gather_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct GatherAll<F: Future> {
    elems: Pin<Box<[MaybeDone<F>]>>,
}

/// Pinned references to each element of a pinned boxed slice.
fn pinned_elems<T>(elems: &mut Pin<Box<[T]>>) -> impl Iterator<Item = Pin<&mut T>> {
    // SAFETY: the elements of a boxed slice never move while the box lives,
    // and each is handed out only as `Pin<&mut T>`; the slice itself is only
    // ever replaced as a whole (which drops the elements in place).
    unsafe { elems.as_mut().get_unchecked_mut() }
        .iter_mut()
        // SAFETY: as above, every element is pinned along with the slice.
        .map(|e| unsafe { Pin::new_unchecked(e) })
}

impl<F: Future> Future for GatherAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        let what = || crate::rt::Awaiting::Combinator("gather");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<F: Future> GatherAll<F> {
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        let mut all_done = true;
        for elem in pinned_elems(&mut self.elems) {
            all_done &= elem.poll_done(cx);
        }
        if !all_done {
            return Poll::Pending;
        }
        let out = pinned_elems(&mut self.elems)
            .map(|e| e.take_output().expect("GatherAll polled after completion"))
            .collect();
        self.elems = Box::<[MaybeDone<F>]>::default().into();
        Poll::Ready(out)
    }
}

impl<F: Future> fmt::Debug for GatherAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = self.elems.iter().filter(|e| e.is_done()).count();
        f.debug_struct("GatherAll")
            .field("len", &self.elems.len())
            .field("done", &done)
            .finish()
    }
}

/// Like [`gather_all`] for futures that return `Result`: the first `Err`
/// ends the gather early and the other futures are **dropped**.
///
/// Returns `Ok(values)` in input order if every future succeeded. For plain
/// futures (which this runs inside the current task) dropping *is*
/// cancelling: each stops at the `.await` it was suspended on and its locals
/// are dropped, before the `Err` is returned. [`Task`](crate::Task) handles are different:
/// dropping one detaches the task, which keeps running. To cancel tasks on
/// the first failure and wait until they have stopped, use
/// [`try_gather_tasks`](super::try_gather_tasks) or a [`TaskGroup`](crate::TaskGroup).
///
/// ```
/// coil::run(async {
///     let ok = coil::try_gather_all((1..=3).map(|i| async move { Ok::<_, String>(i) })).await;
///     assert_eq!(ok, Ok(vec![1, 2, 3]));
///
///     let err = coil::try_gather_all((1..=3).map(|i| async move {
///         if i == 2 { Err(format!("{i} failed")) } else { Ok(i) }
///     }))
///     .await;
///     assert_eq!(err, Err("2 failed".to_string()));
/// });
/// ```
pub fn try_gather_all<I, F, T, E>(iter: I) -> TryGatherAll<F>
where
    I: IntoIterator,
    I::Item: IntoFuture<IntoFuture = F>,
    F: Future<Output = Result<T, E>>,
{
    TryGatherAll {
        inner: gather_all(iter),
    }
}

/// The future returned by [`try_gather_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct TryGatherAll<F: Future> {
    inner: GatherAll<F>,
}

impl<F, T, E> Future for TryGatherAll<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<Vec<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = || crate::rt::Awaiting::Combinator("gather");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<F, T, E> TryGatherAll<F>
where
    F: Future<Output = Result<T, E>>,
{
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Vec<T>, E>> {
        let elems = &mut self.inner.elems;
        let mut all_done = true;
        let mut failed = None;
        for mut elem in pinned_elems(elems) {
            all_done &= elem.as_mut().poll_done(cx);
            failed = elem.take_err();
            if failed.is_some() {
                break;
            }
        }
        if let Some(e) = failed {
            // Drop (cancel) everything else before reporting.
            *elems = Box::<[MaybeDone<F>]>::default().into();
            return Poll::Ready(Err(e));
        }
        if !all_done {
            return Poll::Pending;
        }
        let out = pinned_elems(elems)
            .map(|e| match e.take_output() {
                Some(Ok(v)) => v,
                _ => unreachable!("TryGatherAll polled after completion"),
            })
            .collect();
        *elems = Box::<[MaybeDone<F>]>::default().into();
        Poll::Ready(Ok(out))
    }
}

impl<F: Future> fmt::Debug for TryGatherAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TryGatherAll").field(&self.inner).finish()
    }
}

/// Runs every future concurrently in the current task and returns every
/// outcome in input order, panics included: `asyncio.gather(*aws,
/// return_exceptions=True)`.
///
/// Each poll of each future runs inside [`std::panic::catch_unwind`]; a
/// future that panics is dropped at once and its slot becomes
/// `Err(TaskError::Panicked(payload))`, while the others carry on. (The
/// panic hook still prints the panic, as it does for a panicking task.)
/// `TaskError::Cancelled(_)` never appears here: nothing cancels these futures
/// but dropping the whole gather.
///
/// ```
/// coil::run(async {
///     let out = coil::gather_settled([1, 2, 3].map(|i| async move {
///         if i == 2 { panic!("two") }
///         i
///     }))
///     .await;
///     assert_eq!(out[0].as_ref().ok(), Some(&1));
///     assert!(out[1].as_ref().is_err_and(|e| e.is_panic()));
///     assert_eq!(out[2].as_ref().ok(), Some(&3));
/// });
/// ```
pub fn gather_settled<I>(iter: I) -> GatherSettled<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    GatherSettled {
        inner: gather_all(iter.into_iter().map(|f| CatchUnwind::new(f.into_future()))),
    }
}

/// The future returned by [`gather_settled`].
#[must_use = "futures do nothing unless awaited"]
pub struct GatherSettled<F: Future> {
    inner: GatherAll<CatchUnwind<F>>,
}

impl<F: Future> Future for GatherSettled<F> {
    type Output = Vec<Result<F::Output, TaskError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.inner).poll(cx).map(|v| {
            v.into_iter()
                .map(|r| r.map_err(|p| TaskError::Panicked(p.into())))
                .collect()
        })
    }
}

impl<F: Future> fmt::Debug for GatherSettled<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GatherSettled").field(&self.inner).finish()
    }
}
