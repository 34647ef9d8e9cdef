//! The types [`StreamExt`](super::StreamExt)'s methods return: the adapter
//! streams ([`Map`], [`Filter`], [`Then`], [`Take`], [`Chain`], …) and the
//! consuming futures ([`Next`], [`Collect`], [`ForEach`], [`Fold`],
//! [`Count`]). Their fields are set by `ext.rs`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::Stream;

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

/// The future returned by [`StreamExt::next`](super::StreamExt::next).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Next<'a, S: ?Sized> {
    pub(super) stream: &'a mut S,
}

impl<S: Stream + Unpin + ?Sized> Future for Next<'_, S> {
    type Output = Option<S::Item>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut *self.stream).poll_next(cx)
    }
}

/// The stream returned by [`StreamExt::map`](super::StreamExt::map).
#[must_use = "streams do nothing unless polled"]
pub struct Map<S, F> {
    pub(super) stream: S,
    pub(super) f: F,
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

/// The stream returned by [`StreamExt::filter`](super::StreamExt::filter).
#[must_use = "streams do nothing unless polled"]
pub struct Filter<S, F> {
    pub(super) stream: S,
    pub(super) pred: F,
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

/// The stream returned by [`StreamExt::filter_map`](super::StreamExt::filter_map).
#[must_use = "streams do nothing unless polled"]
pub struct FilterMap<S, F> {
    pub(super) stream: S,
    pub(super) f: F,
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

/// The stream returned by [`StreamExt::then`](super::StreamExt::then).
#[must_use = "streams do nothing unless polled"]
pub struct Then<S, F, Fut> {
    pub(super) stream: S,
    pub(super) f: F,
    pub(super) pending: Option<Pin<Box<Fut>>>,
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

/// The stream returned by [`StreamExt::take`](super::StreamExt::take).
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Take<S> {
    pub(super) stream: S,
    pub(super) left: usize,
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

/// The stream returned by [`StreamExt::skip`](super::StreamExt::skip).
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Skip<S> {
    pub(super) stream: S,
    pub(super) left: usize,
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

/// The stream returned by [`StreamExt::enumerate`](super::StreamExt::enumerate).
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Enumerate<S> {
    pub(super) stream: S,
    pub(super) next: usize,
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

/// The stream returned by [`StreamExt::chain`](super::StreamExt::chain).
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Chain<S1, S2> {
    /// `None` once the first stream has ended (and been dropped).
    pub(super) first: Option<S1>,
    pub(super) second: S2,
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

/// The future returned by [`StreamExt::collect`](super::StreamExt::collect).
#[must_use = "futures do nothing unless awaited"]
pub struct Collect<S: Stream, C> {
    pub(super) stream: S,
    pub(super) items: Vec<S::Item>,
    pub(super) _into: std::marker::PhantomData<fn() -> C>,
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

/// The future returned by [`StreamExt::for_each`](super::StreamExt::for_each).
#[must_use = "futures do nothing unless awaited"]
pub struct ForEach<S, F> {
    pub(super) stream: S,
    pub(super) f: F,
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

/// The future returned by [`StreamExt::fold`](super::StreamExt::fold).
#[must_use = "futures do nothing unless awaited"]
pub struct Fold<S, Acc, F> {
    pub(super) stream: S,
    pub(super) acc: Option<Acc>,
    pub(super) f: F,
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

/// The future returned by [`StreamExt::count`](super::StreamExt::count).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Count<S> {
    pub(super) stream: S,
    pub(super) n: usize,
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
