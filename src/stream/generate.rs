//! [`generate`]: async generators on stable Rust.
//!
//! # How it works
//!
//! `generate(|co| async move { ... })` calls the closure once, with a [`Co`],
//! and keeps the returned future (the *body*). The [`Generate`] stream and
//! the `Co` share one slot, an `Rc<Cell<Option<T>>>`. Polling the stream
//! polls the body; `co.yield_(x).await` puts `x` in the slot and returns
//! `Pending` once, which suspends the body right there. The stream sees the
//! filled slot, takes the value and returns `Ready(Some(x))`. The next poll
//! of the stream polls the body again: the `yield_` future finds the slot
//! empty, completes, and the body runs on to its next `yield_` (or `.await`
//! on a timer, which suspends it, and the stream, the ordinary way). When the
//! body returns, the stream ends.
//!
//! The suspension that `yield_` causes never reaches the event loop: the
//! stream answers `Ready` at once, so no wake-up is needed or registered.
//!
//! # Invariants (what the body must respect)
//!
//! 1. **Yield only through the body's own `Co`**, from inside the body. A
//!    `Co` moved elsewhere (into a spawned task, into another generator)
//!    puts values in the slot that the stream returns whenever it is next
//!    polled: memory-safe, but the order is then meaningless.
//! 2. **Await each `yield_` before creating the next.** A second `yield_`
//!    polled while a value still sits in the slot panics with a message
//!    saying so (that would mean two yields racing, e.g. inside
//!    `gather!`). A `yield_` future that is never awaited yields nothing.
//! 3. The body must not poll the stream it belongs to (it cannot name it).
//!
//! The stream polls the body only from `poll_next`, so the body runs exactly
//! as far as the consumer pulls: like a Python generator, it is lazy.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::Stream;

/// Builds a stream from an async block that yields through a [`Co`]: an
/// async generator.
///
/// ```
/// use std::time::Duration;
/// use coil::stream::{self, StreamExt};
///
/// let squares = stream::generate(|co| async move {
///     for i in 1..=4u32 {
///         co.yield_(i * i).await;
///         coil::time::sleep(Duration::from_millis(1)).await;
///     }
/// });
/// let v: Vec<u32> = coil::run(squares.collect());
/// assert_eq!(v, [1, 4, 9, 16]);
/// ```
///
/// The body and the stream share one slot: `co.yield_(x).await` stores `x`
/// and suspends the body once; the stream hands `x` to its consumer. The
/// body runs only as far as the consumer pulls, and dropping the stream
/// drops the body. Two rules: **yield only through the body's own `Co`**,
/// and **await each `yield_` before starting the next** (two pending yields
/// panic, saying so). The body future is boxed, so `Generate` is `Unpin`.
pub fn generate<T, F, Fut>(body: F) -> Generate<T, Fut>
where
    F: FnOnce(Co<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    let slot = Rc::new(Cell::new(None));
    let body = body(Co { slot: slot.clone() });
    Generate {
        slot,
        body: Some(Box::pin(body)),
    }
}

/// The yielding side of a [`generate`] body.
pub struct Co<T> {
    slot: Rc<Cell<Option<T>>>,
}

impl<T> Co<T> {
    /// Yields `value` to the stream's consumer; completes when the consumer
    /// asks for the next item. Like Python's `yield value`.
    ///
    /// Await it before calling `yield_` again (see the module invariants).
    pub fn yield_(&self, value: T) -> Yield<'_, T> {
        Yield {
            slot: &self.slot,
            value: Some(value),
        }
    }
}

impl<T> fmt::Debug for Co<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Co { .. }")
    }
}

/// The future returned by [`Co::yield_`].
#[must_use = "a yield_ that is not awaited yields nothing"]
pub struct Yield<'a, T> {
    slot: &'a Rc<Cell<Option<T>>>,
    value: Option<T>,
}

impl<T> Unpin for Yield<'_, T> {}

impl<T> Future for Yield<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let Some(value) = self.value.take() else {
            // Second poll: done once the consumer has taken the value.
            return match self.slot.take() {
                None => Poll::Ready(()),
                Some(v) => {
                    self.slot.set(Some(v));
                    Poll::Pending
                }
            };
        };
        if let Some(previous) = self.slot.replace(Some(value)) {
            // Put it back so that the earlier value is not lost, then fail.
            self.slot.set(Some(previous));
            panic!(
                "coil::stream::generate: yield_ while an earlier yield_ is still pending; \
                 await each co.yield_(..) before starting the next"
            );
        }
        // No wake: the stream returns the value to its consumer right away.
        Poll::Pending
    }
}

impl<T> fmt::Debug for Yield<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yield")
            .field("yielded", &self.value.is_none())
            .finish()
    }
}

/// The stream returned by [`generate`].
#[must_use = "streams do nothing unless polled"]
pub struct Generate<T, Fut> {
    slot: Rc<Cell<Option<T>>>,
    /// `None` once the body has returned.
    body: Option<Pin<Box<Fut>>>,
}

impl<T, Fut: Future<Output = ()>> Stream for Generate<T, Fut> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        // A body that yields without ever awaiting anything else would be
        // ready forever: take a budget unit per item.
        let coop = std::task::ready!(crate::rt::budget::poll_proceed(cx));
        let finished = body.as_mut().poll(cx).is_ready();
        if finished {
            self.body = None;
        }
        match self.slot.take() {
            Some(v) => {
                coop.made_progress();
                Poll::Ready(Some(v))
            }
            None if finished => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl<T, Fut> fmt::Debug for Generate<T, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generate")
            .field("finished", &self.body.is_none())
            .finish()
    }
}
