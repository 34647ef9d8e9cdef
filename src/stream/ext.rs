//! [`StreamExt`]: adapters and consuming futures for every [`Stream`]; the
//! types its methods return are in `adapters.rs`.

use std::future::Future;

use super::Stream;
use super::adapters::{
    Chain, Collect, Count, Enumerate, Filter, FilterMap, Fold, ForEach, Map, Next, Skip, Take, Then,
};

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
