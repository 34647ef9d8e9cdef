//! [`StreamExt`]: adapters and consuming futures for every [`Stream`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::Stream;

/// Adapters (`map`, `filter`, `then`, …) and consuming futures (`next`,
/// `collect`, `fold`, …) for every [`Stream`]; implemented for all of them.
///
/// All of them need `Self: Unpin` (see the [module docs](super)).
///
/// ```
/// use coil::stream::{self, StreamExt};
///
/// coil::run(async {
///     let mut s = stream::iter(1..=10)
///         .filter(|x| x % 2 == 0)
///         .map(|x| x * x)
///         .skip(1)
///         .take(3)
///         .enumerate();
///     assert_eq!(s.next().await, Some((0, 16)));
///     assert_eq!(s.collect::<Vec<_>>().await, [(1, 36), (2, 64)]);
/// });
/// ```
pub trait StreamExt: Stream {
    /// The next item, or `None` at the end: one step of `async for`.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// coil::run(async {
    ///     let mut s = stream::iter(["a", "b"]);
    ///     assert_eq!(s.next().await, Some("a"));
    ///     assert_eq!(s.next().await, Some("b"));
    ///     assert_eq!(s.next().await, None);
    /// });
    /// ```
    fn next(&mut self) -> Next<'_, Self>
    where
        Self: Unpin,
    {
        Next { stream: self }
    }

    /// Applies `f` to each item.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// let v: Vec<String> = coil::run(stream::iter(1..=2).map(|x| x.to_string()).collect());
    /// assert_eq!(v, ["1", "2"]);
    /// ```
    fn map<U, F>(self, f: F) -> Map<Self, F>
    where
        Self: Sized + Unpin,
        F: FnMut(Self::Item) -> U,
    {
        Map { stream: self, f }
    }

    /// Keeps the items for which `pred` is true.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// let v: Vec<i32> = coil::run(stream::iter(1..=6).filter(|x| x % 3 == 0).collect());
    /// assert_eq!(v, [3, 6]);
    /// ```
    fn filter<F>(self, pred: F) -> Filter<Self, F>
    where
        Self: Sized + Unpin,
        F: FnMut(&Self::Item) -> bool,
    {
        Filter { stream: self, pred }
    }

    /// Maps and filters in one step: keeps the `Some` results of `f`.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// let v: Vec<i32> =
    ///     coil::run(stream::iter(["1", "x", "3"]).filter_map(|s| s.parse().ok()).collect());
    /// assert_eq!(v, [1, 3]);
    /// ```
    fn filter_map<U, F>(self, f: F) -> FilterMap<Self, F>
    where
        Self: Sized + Unpin,
        F: FnMut(Self::Item) -> Option<U>,
    {
        FilterMap { stream: self, f }
    }

    /// Async map: runs the future `f(item)` to completion for each item, one
    /// at a time, and yields its output. Each future is boxed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use coil::stream::{self, StreamExt};
    /// let v: Vec<u64> = coil::run(
    ///     stream::iter([2u64, 1])
    ///         .then(|ms| async move {
    ///             coil::time::sleep(Duration::from_millis(ms)).await;
    ///             ms * 10
    ///         })
    ///         .collect(),
    /// );
    /// assert_eq!(v, [20, 10]);
    /// ```
    fn then<Fut, F>(self, f: F) -> Then<Self, F, Fut>
    where
        Self: Sized + Unpin,
        F: FnMut(Self::Item) -> Fut,
        Fut: Future,
    {
        Then {
            stream: self,
            f,
            pending: None,
        }
    }

    /// The first `n` items, then the end (the rest is never pulled).
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// let v: Vec<u32> = coil::run(stream::iter(0..).take(3).collect());
    /// assert_eq!(v, [0, 1, 2]);
    /// ```
    fn take(self, n: usize) -> Take<Self>
    where
        Self: Sized + Unpin,
    {
        Take {
            stream: self,
            left: n,
        }
    }

    /// Drops the first `n` items.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// let v: Vec<u32> = coil::run(stream::iter(0..5).skip(3).collect());
    /// assert_eq!(v, [3, 4]);
    /// ```
    fn skip(self, n: usize) -> Skip<Self>
    where
        Self: Sized + Unpin,
    {
        Skip {
            stream: self,
            left: n,
        }
    }

    /// Pairs each item with its index, from 0.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// let v: Vec<(usize, char)> = coil::run(stream::iter(['a', 'b']).enumerate().collect());
    /// assert_eq!(v, [(0, 'a'), (1, 'b')]);
    /// ```
    fn enumerate(self) -> Enumerate<Self>
    where
        Self: Sized + Unpin,
    {
        Enumerate {
            stream: self,
            next: 0,
        }
    }

    /// This stream's items, then `other`'s.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// let v: Vec<i32> = coil::run(stream::iter([1, 2]).chain(stream::iter([3])).collect());
    /// assert_eq!(v, [1, 2, 3]);
    /// ```
    fn chain<S2>(self, other: S2) -> Chain<Self, S2>
    where
        Self: Sized + Unpin,
        S2: Stream<Item = Self::Item> + Unpin,
    {
        Chain {
            first: Some(self),
            second: other,
        }
    }

    /// Collects every item into any `FromIterator` collection: an async
    /// comprehension, `[x async for x in s]`.
    ///
    /// Items are buffered in a `Vec` and handed to `C::from_iter` at the end,
    /// so any `FromIterator` works (`Vec`, `String`, `HashMap`,
    /// `Result<Vec<_>, E>`, …).
    ///
    /// ```
    /// use std::collections::BTreeSet;
    /// use coil::stream::{self, StreamExt};
    /// coil::run(async {
    ///     let v = stream::iter([3, 1, 3]).collect::<Vec<_>>().await;
    ///     assert_eq!(v, [3, 1, 3]);
    ///     let set = stream::iter([3, 1, 3]).collect::<BTreeSet<_>>().await;
    ///     assert_eq!(set.into_iter().collect::<Vec<_>>(), [1, 3]);
    ///     let s: String = stream::iter(['h', 'i']).collect().await;
    ///     assert_eq!(s, "hi");
    /// });
    /// ```
    fn collect<C>(self) -> Collect<Self, C>
    where
        Self: Sized + Unpin,
        C: FromIterator<Self::Item>,
    {
        Collect {
            stream: self,
            items: Vec::new(),
            _into: std::marker::PhantomData,
        }
    }

    /// Calls `f` on every item; completes at the end of the stream.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// let mut seen = Vec::new();
    /// coil::run(stream::iter(1..=3).for_each(|x| seen.push(x)));
    /// assert_eq!(seen, [1, 2, 3]);
    /// ```
    fn for_each<F>(self, f: F) -> ForEach<Self, F>
    where
        Self: Sized + Unpin,
        F: FnMut(Self::Item),
    {
        ForEach { stream: self, f }
    }

    /// Folds every item into an accumulator.
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// assert_eq!(coil::run(stream::iter(1..=4).fold(0, |acc, x| acc + x)), 10);
    /// ```
    fn fold<Acc, F>(self, init: Acc, f: F) -> Fold<Self, Acc, F>
    where
        Self: Sized + Unpin,
        F: FnMut(Acc, Self::Item) -> Acc,
    {
        Fold {
            stream: self,
            acc: Some(init),
            f,
        }
    }

    /// The number of items (consumes the stream).
    ///
    /// ```
    /// use coil::stream::{self, StreamExt};
    /// assert_eq!(coil::run(stream::iter("abc".chars()).count()), 3);
    /// ```
    fn count(self) -> Count<Self>
    where
        Self: Sized + Unpin,
    {
        Count { stream: self, n: 0 }
    }
}

impl<S: Stream + ?Sized> StreamExt for S {}

/// Implements `Debug` for an adapter by naming it and showing its stream.
macro_rules! debug_stream {
    ($name:ident < $($g:ident),* >) => {
        impl<$($g),*> fmt::Debug for $name<$($g),*>
        where
            S: fmt::Debug,
        {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("stream", &self.stream)
                    .finish_non_exhaustive()
            }
        }
    };
}

/// The future returned by [`StreamExt::next`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Next<'a, S: ?Sized> {
    stream: &'a mut S,
}

impl<S: Stream + Unpin + ?Sized> Future for Next<'_, S> {
    type Output = Option<S::Item>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut *self.stream).poll_next(cx)
    }
}

/// The stream returned by [`StreamExt::map`].
#[must_use = "streams do nothing unless polled"]
pub struct Map<S, F> {
    stream: S,
    f: F,
}
debug_stream!(Map<S, F>);
impl<S: Unpin, F> Unpin for Map<S, F> {}

impl<S: Stream + Unpin, U, F: FnMut(S::Item) -> U> Stream for Map<S, F> {
    type Item = U;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        let item = ready!(Pin::new(&mut self.stream).poll_next(cx));
        Poll::Ready(item.map(&mut self.f))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

/// The stream returned by [`StreamExt::filter`].
#[must_use = "streams do nothing unless polled"]
pub struct Filter<S, F> {
    stream: S,
    pred: F,
}
debug_stream!(Filter<S, F>);
impl<S: Unpin, F> Unpin for Filter<S, F> {}

impl<S: Stream + Unpin, F: FnMut(&S::Item) -> bool> Stream for Filter<S, F> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        loop {
            match ready!(Pin::new(&mut this.stream).poll_next(cx)) {
                Some(item) if !(this.pred)(&item) => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.stream.size_hint().1)
    }
}

/// The stream returned by [`StreamExt::filter_map`].
#[must_use = "streams do nothing unless polled"]
pub struct FilterMap<S, F> {
    stream: S,
    f: F,
}
debug_stream!(FilterMap<S, F>);
impl<S: Unpin, F> Unpin for FilterMap<S, F> {}

impl<S: Stream + Unpin, U, F: FnMut(S::Item) -> Option<U>> Stream for FilterMap<S, F> {
    type Item = U;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        let this = &mut *self;
        loop {
            match ready!(Pin::new(&mut this.stream).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(item) => {
                    if let Some(u) = (this.f)(item) {
                        return Poll::Ready(Some(u));
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.stream.size_hint().1)
    }
}

/// The stream returned by [`StreamExt::then`].
#[must_use = "streams do nothing unless polled"]
pub struct Then<S, F, Fut> {
    stream: S,
    f: F,
    pending: Option<Pin<Box<Fut>>>,
}

impl<S: fmt::Debug, F, Fut> fmt::Debug for Then<S, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Then")
            .field("stream", &self.stream)
            .field("running", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Unpin, F, Fut> Unpin for Then<S, F, Fut> {}

impl<S, F, Fut> Stream for Then<S, F, Fut>
where
    S: Stream + Unpin,
    F: FnMut(S::Item) -> Fut,
    Fut: Future,
{
    type Item = Fut::Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match ready!(Pin::new(&mut this.stream).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(item) => this.pending = Some(Box::pin((this.f)(item))),
            }
        }
        let fut = this.pending.as_mut().expect("set just above");
        let out = ready!(fut.as_mut().poll(cx));
        this.pending = None;
        Poll::Ready(Some(out))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let extra = usize::from(self.pending.is_some());
        let (lo, hi) = self.stream.size_hint();
        (
            lo.saturating_add(extra),
            hi.and_then(|h| h.checked_add(extra)),
        )
    }
}

/// The stream returned by [`StreamExt::take`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Take<S> {
    stream: S,
    left: usize,
}

impl<S: Stream + Unpin> Stream for Take<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let item = ready!(Pin::new(&mut self.stream).poll_next(cx));
        self.left = if item.is_some() { self.left - 1 } else { 0 };
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lo, hi) = self.stream.size_hint();
        (
            lo.min(self.left),
            Some(hi.map_or(self.left, |h| h.min(self.left))),
        )
    }
}

/// The stream returned by [`StreamExt::skip`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Skip<S> {
    stream: S,
    left: usize,
}

impl<S: Stream + Unpin> Stream for Skip<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        while self.left > 0 {
            match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(_) => self.left -= 1,
            }
        }
        Pin::new(&mut self.stream).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lo, hi) = self.stream.size_hint();
        (
            lo.saturating_sub(self.left),
            hi.map(|h| h.saturating_sub(self.left)),
        )
    }
}

/// The stream returned by [`StreamExt::enumerate`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Enumerate<S> {
    stream: S,
    next: usize,
}

impl<S: Stream + Unpin> Stream for Enumerate<S> {
    type Item = (usize, S::Item);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(item) = ready!(Pin::new(&mut self.stream).poll_next(cx)) else {
            return Poll::Ready(None);
        };
        let i = self.next;
        self.next += 1;
        Poll::Ready(Some((i, item)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

/// The stream returned by [`StreamExt::chain`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Chain<S1, S2> {
    /// `None` once the first stream has ended (and been dropped).
    first: Option<S1>,
    second: S2,
}

impl<S1, S2> Stream for Chain<S1, S2>
where
    S1: Stream + Unpin,
    S2: Stream<Item = S1::Item> + Unpin,
{
    type Item = S1::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S1::Item>> {
        if let Some(first) = self.first.as_mut() {
            match ready!(Pin::new(first).poll_next(cx)) {
                Some(item) => return Poll::Ready(Some(item)),
                None => self.first = None,
            }
        }
        Pin::new(&mut self.second).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lo2, hi2) = self.second.size_hint();
        match &self.first {
            None => (lo2, hi2),
            Some(first) => {
                let (lo1, hi1) = first.size_hint();
                let hi = match (hi1, hi2) {
                    (Some(a), Some(b)) => a.checked_add(b),
                    _ => None,
                };
                (lo1.saturating_add(lo2), hi)
            }
        }
    }
}

/// The future returned by [`StreamExt::collect`].
#[must_use = "futures do nothing unless awaited"]
pub struct Collect<S: Stream, C> {
    stream: S,
    items: Vec<S::Item>,
    _into: std::marker::PhantomData<fn() -> C>,
}

impl<S: Stream + fmt::Debug, C> fmt::Debug for Collect<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collect")
            .field("stream", &self.stream)
            .field("collected", &self.items.len())
            .finish()
    }
}

impl<S: Stream + Unpin, C> Unpin for Collect<S, C> {}

impl<S: Stream + Unpin, C: FromIterator<S::Item>> Future for Collect<S, C> {
    type Output = C;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C> {
        let this = &mut *self;
        while let Some(item) = ready!(Pin::new(&mut this.stream).poll_next(cx)) {
            this.items.push(item);
        }
        Poll::Ready(std::mem::take(&mut this.items).into_iter().collect())
    }
}

/// The future returned by [`StreamExt::for_each`].
#[must_use = "futures do nothing unless awaited"]
pub struct ForEach<S, F> {
    stream: S,
    f: F,
}
debug_stream!(ForEach<S, F>);
impl<S: Unpin, F> Unpin for ForEach<S, F> {}

impl<S: Stream + Unpin, F: FnMut(S::Item)> Future for ForEach<S, F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        while let Some(item) = ready!(Pin::new(&mut this.stream).poll_next(cx)) {
            (this.f)(item);
        }
        Poll::Ready(())
    }
}

/// The future returned by [`StreamExt::fold`].
#[must_use = "futures do nothing unless awaited"]
pub struct Fold<S, Acc, F> {
    stream: S,
    acc: Option<Acc>,
    f: F,
}
debug_stream!(Fold<S, Acc, F>);

impl<S: Stream + Unpin, Acc, F: FnMut(Acc, S::Item) -> Acc> Future for Fold<S, Acc, F> {
    type Output = Acc;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Acc> {
        let this = &mut *self;
        while let Some(item) = ready!(Pin::new(&mut this.stream).poll_next(cx)) {
            let acc = this.acc.take().expect("Fold polled after completion");
            this.acc = Some((this.f)(acc, item));
        }
        Poll::Ready(this.acc.take().expect("Fold polled after completion"))
    }
}

impl<S: Unpin, Acc, F> Unpin for Fold<S, Acc, F> {}

/// The future returned by [`StreamExt::count`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Count<S> {
    stream: S,
    n: usize,
}

impl<S: Stream + Unpin> Future for Count<S> {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        while ready!(Pin::new(&mut self.stream).poll_next(cx)).is_some() {
            self.n += 1;
        }
        Poll::Ready(self.n)
    }
}
