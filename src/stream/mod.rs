//! Streams: asynchronous iterators, `async for`, and async generators
//! (one-way ones that are streams, and ones that take `send`, `throw` and
//! `close`).
//!
//! A [`Stream`] is to `Iterator` what a `Future` is to a plain value: its
//! [`poll_next`](Stream::poll_next) gives `Ready(Some(item))`, `Ready(None)`
//! at the end, or `Pending` after arranging for a wake-up. It is asyncio's
//! async iterator (`__anext__`). [`StreamExt`] adds the adapters (`map`,
//! `filter`, `take`, `then`, …) and the consuming futures (`next`,
//! `collect`, `for_each`, `fold`, `count`).
//!
//! | asyncio | coil |
//! |---|---|
//! | `async for x in s: ...` | `while let Some(x) = s.next().await { ... }` |
//! | `[x async for x in s]` | `s.collect::<Vec<_>>().await` |
//! | `[f(x) async for x in s if p(x)]` | `s.filter(p).map(f).collect::<Vec<_>>().await` |
//! | `async def gen(): yield x` | [`generate(\|co\| async move { co.yield_(x).await; })`](generate) |
//! | `v = yield x`; `asend`, `athrow`, `aclose` | [`async_gen`]: [`AsyncGen::send`], [`throw`](AsyncGen::throw), [`close`](AsyncGen::close) |
//!
//! ```
//! use std::time::Duration;
//! use coil::stream::{self, StreamExt};
//!
//! // The asyncio notes' `mygen`: powers of two, a short sleep between each.
//! fn mygen(u: u32) -> impl stream::Stream<Item = u64> {
//!     stream::generate(move |co| async move {
//!         let mut i = 0;
//!         while i < u {
//!             co.yield_(2u64.pow(i)).await;
//!             i += 1;
//!             coil::time::sleep(Duration::from_millis(1)).await;
//!         }
//!     })
//! }
//!
//! coil::run(async {
//!     let g: Vec<u64> = mygen(10).collect().await;
//!     assert_eq!(g, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
//!     let f: Vec<u64> = mygen(10).filter(|j| j / 3 % 5 == 0).collect().await;
//!     assert_eq!(f, [1, 2, 16, 32, 256, 512]);
//! });
//! ```
//!
//! # Pinning: adapters need `Unpin` streams
//!
//! The adapters and consuming futures here hold their stream by value and
//! poll it through `Pin::new`, so they require `Self: Unpin`, and this
//! module contains no `unsafe` code. Every stream coil makes is `Unpin`
//! ([`iter`], [`generate`], [`as_completed`](crate::as_completed), and every
//! adapter of an `Unpin` stream). A `!Unpin` stream of your own can be
//! pinned first: `Box::pin(s)` (owned) or `std::pin::pin!(s)` (borrowed),
//! both of which are `Unpin` streams. [`StreamExt::then`] boxes each future
//! its closure returns, for the same reason.

mod adapters;
mod async_gen;
mod ext;
mod generate;
mod iter;

pub use adapters::{
    Chain, Collect, Count, Enumerate, Filter, FilterMap, Fold, ForEach, Map, Next, Skip, Take, Then,
};
pub use async_gen::{AsyncGen, Close, CloseError, Resume, Suspend, Thrown, Yielder, async_gen};
pub use ext::StreamExt;
pub use generate::{Co, Generate, Yield, generate};
pub use iter::{Iter, iter};

use std::ops::DerefMut;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An asynchronous sequence of values: asyncio's async iterator.
///
/// Implement `poll_next` like `Future::poll`: return `Ready(Some(item))` for
/// the next item, `Ready(None)` when the stream has ended, or `Pending` after
/// arranging for `cx`'s waker to be woken when an item may be available.
/// After `Ready(None)` a stream should keep returning `Ready(None)`; the
/// streams in this module all do.
pub trait Stream {
    /// The type of the items.
    type Item;

    /// Attempts to produce the next item.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>>;

    /// Bounds on the number of items left, like `Iterator::size_hint`.
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

impl<S: Stream + Unpin + ?Sized> Stream for &mut S {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut **self).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (**self).size_hint()
    }
}

impl<S: Stream + Unpin + ?Sized> Stream for Box<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut **self).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (**self).size_hint()
    }
}

impl<P> Stream for Pin<P>
where
    P: DerefMut<Target: Stream> + Unpin,
{
    type Item = <P::Target as Stream>::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (**self).size_hint()
    }
}
