//! [`iter`]: a stream over an iterator.

use std::pin::Pin;
use std::task::{Context, Poll};

use super::Stream;

/// Turns an iterator into a stream that is always ready.
///
/// Each item takes one unit of the task's cooperative budget, so draining a
/// long iterator still lets other tasks run.
///
/// ```
/// use coil::stream::{self, StreamExt};
/// coil::run(async {
///     let v: Vec<i32> = stream::iter(1..=3).map(|x| x * 10).collect().await;
///     assert_eq!(v, [10, 20, 30]);
/// });
/// ```
pub fn iter<I: IntoIterator>(iterable: I) -> Iter<I::IntoIter> {
    Iter {
        iter: iterable.into_iter(),
    }
}

/// The stream returned by [`iter`].
#[derive(Debug, Clone)]
#[must_use = "streams do nothing unless polled"]
pub struct Iter<I> {
    iter: I,
}

impl<I> Unpin for Iter<I> {}

impl<I: Iterator> Stream for Iter<I> {
    type Item = I::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        let coop = std::task::ready!(crate::rt::budget::poll_proceed(cx));
        coop.made_progress();
        Poll::Ready(self.iter.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}
