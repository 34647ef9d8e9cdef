//! `futures-core`: [`futures_core::Stream`] for coil's streams, and
//! [`StreamCompat`], which turns a stream of either trait into one of the
//! other.

use std::pin::Pin;
use std::task::{Context, Poll};

use crate::stream::Stream;

/// Implements [`futures_core::Stream`] for coil stream types by forwarding
/// to their [`Stream`] impl (`where Self: Stream` keeps each type's own
/// bounds without repeating them).
macro_rules! futures_stream {
    ($([$($gen:tt)*] $ty:ty),* $(,)?) => {$(
        impl<$($gen)*> futures_core::Stream for $ty
        where
            $ty: Stream,
        {
            type Item = <$ty as Stream>::Item;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                Stream::poll_next(self, cx)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                Stream::size_hint(self)
            }
        }
    )*};
}

futures_stream!(
    [I] crate::stream::Iter<I>,
    [T, Fut] crate::stream::Generate<T, Fut>,
    [S, F] crate::stream::Map<S, F>,
    [S, F] crate::stream::Filter<S, F>,
    [S, F] crate::stream::FilterMap<S, F>,
    [S, F, Fut] crate::stream::Then<S, F, Fut>,
    [S] crate::stream::Take<S>,
    [S] crate::stream::Skip<S>,
    [S] crate::stream::Enumerate<S>,
    [S1, S2] crate::stream::Chain<S1, S2>,
    [F] crate::combinators::AsCompleted<F>,
    [R] crate::io::Lines<R>,
    ['a, S] crate::net::Incoming<'a, S>,
    [] crate::signal::Signal,
);

/// A stream seen through the other trait: wraps a coil [`Stream`] to give a
/// [`futures_core::Stream`], or a [`futures_core::Stream`] to give a coil
/// [`Stream`] (so [`StreamExt`](crate::stream::StreamExt)'s adapters work on
/// a stream from another crate).
///
/// coil's own stream types implement both traits already; this is for the
/// rest: a stream of your own written against one trait, or one from a crate
/// written against `futures_core`. The wrapper adds nothing per item: each
/// `poll_next` is the inner stream's.
///
/// ```
/// use coil::compat::StreamCompat;
/// use coil::stream::{self, StreamExt};
///
/// // A futures_core stream made elsewhere: here, coil's own seen through it.
/// fn from_elsewhere() -> impl futures_core::Stream<Item = u32> + Unpin {
///     StreamCompat::new(stream::iter(1..=3))
/// }
///
/// let v: Vec<u32> = coil::run(StreamCompat::new(from_elsewhere()).map(|x| x * 10).collect());
/// assert_eq!(v, [10, 20, 30]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[must_use = "streams do nothing unless polled"]
pub struct StreamCompat<S> {
    inner: S,
}

impl<S> StreamCompat<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> StreamCompat<S> {
        StreamCompat { inner }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The pinned wrapped stream (the wrapper pins it structurally).
    fn inner(self: Pin<&mut Self>) -> Pin<&mut S> {
        // SAFETY: `inner` is pinned structurally: it is never moved out of a
        // pinned `StreamCompat` (no method takes it out through `Pin`, there
        // is no `Drop` impl, and `StreamCompat` is `Unpin` only when `S` is).
        unsafe { self.map_unchecked_mut(|s| &mut s.inner) }
    }
}

impl<S: Stream> futures_core::Stream for StreamCompat<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Stream::poll_next(self.inner(), cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        Stream::size_hint(&self.inner)
    }
}

impl<S: futures_core::Stream> Stream for StreamCompat<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        futures_core::Stream::poll_next(self.inner(), cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        futures_core::Stream::size_hint(&self.inner)
    }
}
