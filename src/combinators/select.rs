//! [`select`] and [`race`]: the first future to finish wins, the others are
//! dropped.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

/// One of two values: the output of [`select`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Either<L, R> {
    /// The first (left) future won.
    Left(L),
    /// The second (right) future won.
    Right(R),
}

impl<L, R> Either<L, R> {
    /// The left value, if any.
    pub fn left(self) -> Option<L> {
        match self {
            Either::Left(l) => Some(l),
            Either::Right(_) => None,
        }
    }

    /// The right value, if any.
    pub fn right(self) -> Option<R> {
        match self {
            Either::Left(_) => None,
            Either::Right(r) => Some(r),
        }
    }

    /// True for `Left`.
    pub fn is_left(&self) -> bool {
        matches!(self, Either::Left(_))
    }

    /// True for `Right`.
    pub fn is_right(&self) -> bool {
        matches!(self, Either::Right(_))
    }
}

impl<T> Either<T, T> {
    /// The value, whichever side it came from.
    pub fn into_inner(self) -> T {
        match self {
            Either::Left(v) | Either::Right(v) => v,
        }
    }
}

/// Runs two futures in the current task until the first finishes; the other
/// is dropped (cancelled). `asyncio.wait({a, b}, return_when=FIRST_COMPLETED)`
/// followed by cancelling the loser.
///
/// On each wake `a` is polled before `b`, so if both are ready at once, `a`
/// wins. Both futures are boxed (one allocation each) so that `Select` is
/// `Unpin` without unsafe code. Dropping a [`Task`](crate::Task) handle
/// detaches the task rather than cancelling it: race tasks only if that is
/// what you want, or cancel the loser yourself. For more than two futures, a
/// handler per future, patterns or fairness, see [`select!`](crate::select!).
///
/// ```
/// use std::time::Duration;
/// use coil::{Either, time::sleep};
///
/// coil::run(async {
///     let fast = async { sleep(Duration::from_millis(5)).await; "fast" };
///     let slow = async { sleep(Duration::from_secs(3600)).await; 0 };
///     assert_eq!(coil::select(fast, slow).await, Either::Left("fast"));
/// });
/// ```
pub fn select<A, B>(a: A, b: B) -> Select<A::IntoFuture, B::IntoFuture>
where
    A: IntoFuture,
    B: IntoFuture,
{
    Select {
        inner: Some((Box::pin(a.into_future()), Box::pin(b.into_future()))),
    }
}

/// The future returned by [`select`].
#[must_use = "futures do nothing unless awaited"]
pub struct Select<A, B> {
    /// `None` once finished (the loser has been dropped).
    inner: Option<Pair<A, B>>,
}

type Pair<A, B> = (Pin<Box<A>>, Pin<Box<B>>);

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = || crate::rt::Awaiting::Combinator("select");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<A: Future, B: Future> Select<A, B> {
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Either<A::Output, B::Output>> {
        let (a, b) = self.inner.as_mut().expect("Select polled after completion");
        let out = if let Poll::Ready(v) = a.as_mut().poll(cx) {
            Either::Left(v)
        } else if let Poll::Ready(v) = b.as_mut().poll(cx) {
            Either::Right(v)
        } else {
            return Poll::Pending;
        };
        self.inner = None; // drop the loser now
        Poll::Ready(out)
    }
}

impl<A, B> fmt::Debug for Select<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("finished", &self.inner.is_none())
            .finish()
    }
}

/// Runs every future of `iter` in the current task until the first one
/// finishes and returns its output; the others are dropped (cancelled).
///
/// Futures are polled in input order on each wake, so among futures ready
/// at the same time the earliest wins. See [`select`] for what dropping a
/// [`Task`](crate::Task) handle means.
///
/// # Panics
///
/// Panics if `iter` is empty: a race with no runners would never finish.
///
/// ```
/// use std::time::Duration;
/// coil::run(async {
///     // 100 ms apart, so a loaded machine that stalls between the first
///     // polls of the three still keeps their order.
///     let winner = coil::race([300u64, 100, 200].map(|ms| async move {
///         coil::time::sleep(Duration::from_millis(ms)).await;
///         ms
///     }))
///     .await;
///     assert_eq!(winner, 100);
/// });
/// ```
#[track_caller]
pub fn race<I>(iter: I) -> Race<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    let futures: Vec<_> = iter
        .into_iter()
        .map(|f| Box::pin(f.into_future()))
        .collect();
    assert!(
        !futures.is_empty(),
        "coil::race needs at least one future: a race with no runners never finishes"
    );
    Race { futures }
}

/// The future returned by [`race`].
#[must_use = "futures do nothing unless awaited"]
pub struct Race<F> {
    futures: Vec<Pin<Box<F>>>,
}

impl<F: Future> Future for Race<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let what = || crate::rt::Awaiting::Combinator("race");
        crate::rt::debug::within(what, || self.poll_combined(cx))
    }
}

impl<F: Future> Race<F> {
    /// `poll`, inside its node of the await tree (`Handle::dump`).
    fn poll_combined(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        assert!(!self.futures.is_empty(), "Race polled after completion");
        for f in &mut self.futures {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                self.futures.clear(); // drop the losers now
                return Poll::Ready(v);
            }
        }
        Poll::Pending
    }
}

impl<F> fmt::Debug for Race<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field("runners", &self.futures.len())
            .finish()
    }
}
