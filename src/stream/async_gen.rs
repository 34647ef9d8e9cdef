//! [`async_gen`]: async generators that take a value at each yield, can have
//! an error thrown in, and are closed with async cleanup: asyncio's `asend`,
//! `athrow` and `aclose`.
//!
//! # Why a type of its own, next to [`generate`](super::generate)
//!
//! [`generate`](super::generate) makes a [`Stream`](super::Stream): values
//! flow one way, the consumer only pulls, and dropping the stream is the
//! only way to stop it. A generator that is *talked to* needs more than
//! `poll_next` can carry: each resume brings an input (a value, an error, or
//! "close"), and each answer is one of four things (a value yielded, the end,
//! an error raised, or, for a close, a generator that would not stop). So
//! [`AsyncGen`] is not a stream: it is driven by awaiting its methods, as an
//! asyncio async generator is by awaiting `asend`/`athrow`/`aclose`, and the
//! yield inside the body evaluates to what the consumer sent. `generate` stays
//! as it was for the common one-way case, where its `Stream` adapters fit.
//!
//! The asyncio mapping, the states and what each operation does in each, and
//! what cancelling and dropping do, are in the docs of [`AsyncGen`] (this
//! module is private; those docs are public).
//!
//! # How it works
//!
//! The body and the [`AsyncGen`] share two slots: *out* (the value the body
//! yielded) and *in* (what the consumer resumes it with: nothing, a value, an
//! error, or close). An operation puts its input in the *in* slot and polls
//! the body. `co.yield_(y)` puts `y` in *out* and returns `Pending` once,
//! which suspends the body at that yield without registering a wake-up; the
//! operation sees the filled *out* slot and answers `Ok(Some(y))` at once. The
//! next operation's poll of the body finds the `yield_` future's input in the
//! *in* slot and completes it: with `Ok(None)` after [`next`](AsyncGen::next),
//! `Ok(Some(v))` after [`send`](AsyncGen::send), `Err(Thrown::Error(e))` after
//! [`throw`](AsyncGen::throw), `Err(Thrown::Exit)` after
//! [`close`](AsyncGen::close). Any other `Pending` of the body (a timer, a
//! socket) is an ordinary one: the operation's future is `Pending` too, and
//! the body's leaf woke the task when it is worth polling again.
//!
//! The body returns `Result<(), Thrown<E>>`. `Ok(())` is the end of the
//! generator (asyncio: `StopAsyncIteration`); `Err(Thrown::Error(e))` raises
//! `e` out of the operation that resumed it and ends the generator;
//! `Err(Thrown::Exit)` (what `?` does with a close) ends it as `Ok(())` does.
//! `Thrown<E>` converts from `E`, so `?` works on the body's own errors too.
//!
//! # Invariants (what the body must respect)
//!
//! Those of `generate`: yield only through the body's own [`Yielder`], from
//! inside the body, and await each `yield_` before starting the next (two
//! pending yields panic, saying so).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

mod step;

use step::Step;
pub use step::{Close, Resume};

/// What a suspended body is resumed with.
enum Input<S, E> {
    /// `next()`: the yield evaluates to `Ok(None)`.
    Next,
    /// `send(v)`: `Ok(Some(v))`.
    Send(S),
    /// `throw(e)`: `Err(Thrown::Error(e))`.
    Throw(E),
    /// `close()`: `Err(Thrown::Exit)`.
    Close,
}

/// The slots the body and its generator share.
struct Slots<Y, S, E> {
    /// The value the body yielded, until the operation takes it.
    out: Cell<Option<Y>>,
    /// The input of the operation resuming the body, until its `yield_`
    /// future takes it.
    input: Cell<Option<Input<S, E>>>,
}

/// What the body raises at a yield, or returns with: an error thrown in by
/// [`AsyncGen::throw`] (or raised by the body itself), or the generator's
/// exit, thrown in by [`AsyncGen::close`] (asyncio's `GeneratorExit`).
///
/// The body's future returns `Result<(), Thrown<E>>`, so `?` on a yield
/// propagates what was thrown in, and `?` on a `Result<_, E>` raises `E`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thrown<E> {
    /// An error: thrown in by [`AsyncGen::throw`] when it arrives at a yield;
    /// raised out of the generator when the body returns it.
    Error(E),
    /// The generator is being closed ([`AsyncGen::close`]): run the cleanup
    /// and return, without yielding again. Returning it ends the generator
    /// as `Ok(())` does.
    Exit,
}

impl<E> From<E> for Thrown<E> {
    fn from(error: E) -> Self {
        Thrown::Error(error)
    }
}

impl<E: fmt::Display> fmt::Display for Thrown<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Thrown::Error(e) => e.fmt(f),
            Thrown::Exit => f.write_str("the async generator is being closed"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Thrown<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Thrown::Error(e) => Some(e),
            Thrown::Exit => None,
        }
    }
}

/// Why [`AsyncGen::close`] failed. Either way the generator is finished.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseError<E> {
    /// The body yielded a value after it was told to close (asyncio:
    /// `RuntimeError: async generator ignored GeneratorExit`). The value is
    /// dropped, and so is the body, where it yielded.
    IgnoredExit,
    /// The body's cleanup raised this error.
    Raised(E),
}

impl<E: fmt::Display> fmt::Display for CloseError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::IgnoredExit => f.write_str("async generator ignored its close (yielded)"),
            CloseError::Raised(e) => write!(f, "async generator raised while closing: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CloseError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CloseError::IgnoredExit => None,
            CloseError::Raised(e) => Some(e),
        }
    }
}

/// Builds an async generator that can be sent values, have errors thrown
/// in, and be closed with async cleanup: asyncio's `asend`, `athrow` and
/// `aclose` (see [`AsyncGen`] for the whole mapping).
///
/// The body gets a [`Yielder`]; `co.yield_(y).await` yields `y` and
/// evaluates to what the consumer resumes it with: `Ok(Some(v))` after
/// `send(v)`, `Ok(None)` after `next()`, `Err(Thrown::Error(e))` after
/// `throw(e)`, `Err(Thrown::Exit)` after `close()`. Nothing runs before the
/// first resume.
///
/// ```
/// use coil::stream::{AsyncGen, Thrown, async_gen};
///
/// #[derive(Debug, PartialEq)]
/// struct Reset;
///
/// coil::run(async {
///     // A running total: send numbers in, get the total back; throwing
///     // `Reset` in starts again from zero.
///     let mut total: AsyncGen<u64, u64, Reset, _> = async_gen(|co| async move {
///         let mut sum = 0;
///         loop {
///             match co.yield_(sum).await {
///                 Ok(n) => sum += n.unwrap_or(0),
///                 Err(Thrown::Error(Reset)) => sum = 0,
///                 Err(exit) => return Err(exit),
///             }
///         }
///     });
///     assert_eq!(total.next().await, Ok(Some(0))); // runs to the first yield
///     assert_eq!(total.send(5).await, Ok(Some(5)));
///     assert_eq!(total.send(7).await, Ok(Some(12)));
///     assert_eq!(total.throw(Reset).await, Ok(Some(0))); // caught: goes on
///     assert_eq!(total.send(1).await, Ok(Some(1)));
///     assert_eq!(total.close().await, Ok(()));
///     assert_eq!(total.next().await, Ok(None)); // finished
/// });
/// ```
///
/// The body future is boxed, so the generator can be moved while suspended.
pub fn async_gen<Y, S, E, F, Fut>(body: F) -> AsyncGen<Y, S, E, Fut>
where
    F: FnOnce(Yielder<Y, S, E>) -> Fut,
    Fut: Future<Output = Result<(), Thrown<E>>>,
{
    let slots = Rc::new(Slots {
        out: Cell::new(None),
        input: Cell::new(None),
    });
    let body = body(Yielder {
        slots: slots.clone(),
    });
    AsyncGen {
        slots,
        body: Some(Box::pin(body)),
        started: false,
        stepping: false,
    }
}

/// The yielding side of an [`async_gen`] body: `Y` is what it yields, `S`
/// what it can be sent, `E` what can be thrown in.
pub struct Yielder<Y, S, E> {
    slots: Rc<Slots<Y, S, E>>,
}

impl<Y, S, E> Yielder<Y, S, E> {
    /// Yields `value` to the consumer and suspends; completes when the
    /// generator is resumed, with what it is resumed with (asyncio's
    /// `x = yield value`). Await it before calling `yield_` again.
    pub fn yield_(&self, value: Y) -> Suspend<'_, Y, S, E> {
        Suspend {
            slots: &self.slots,
            value: Some(value),
        }
    }
}

impl<Y, S, E> fmt::Debug for Yielder<Y, S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Yielder { .. }")
    }
}

/// The future returned by [`Yielder::yield_`]: the body's suspension point.
#[must_use = "a yield_ that is not awaited yields nothing"]
pub struct Suspend<'a, Y, S, E> {
    slots: &'a Slots<Y, S, E>,
    value: Option<Y>,
}

// Never pinned structurally: `value` is moved out by `take`, never borrowed
// across polls.
impl<Y, S, E> Unpin for Suspend<'_, Y, S, E> {}

impl<Y, S, E> Future for Suspend<'_, Y, S, E> {
    type Output = Result<Option<S>, Thrown<E>>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(value) = self.value.take() else {
            // Resumed: the operation that polls us left its input.
            return match self.slots.input.take() {
                Some(Input::Next) => Poll::Ready(Ok(None)),
                Some(Input::Send(v)) => Poll::Ready(Ok(Some(v))),
                Some(Input::Throw(e)) => Poll::Ready(Err(Thrown::Error(e))),
                Some(Input::Close) => Poll::Ready(Err(Thrown::Exit)),
                None => Poll::Pending,
            };
        };
        if let Some(previous) = self.slots.out.replace(Some(value)) {
            self.slots.out.set(Some(previous));
            panic!(
                "coil::stream::async_gen: yield_ while an earlier yield_ is still pending; \
                 await each co.yield_(..) before starting the next"
            );
        }
        // No wake: the operation polling the body answers with the value now.
        Poll::Pending
    }
}

impl<Y, S, E> fmt::Debug for Suspend<'_, Y, S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suspend")
            .field("yielded", &self.value.is_none())
            .finish()
    }
}

/// An async generator with send, throw and close, made by [`async_gen`].
///
/// Drive it by awaiting [`next`](Self::next), [`send`](Self::send),
/// [`throw`](Self::throw) and [`close`](Self::close); each borrows the
/// generator until its future is done, so two can never run at once.
/// `while let Some(x) = g.next().await? { .. }` is `async for x in g`.
/// Dropping it drops the body where it is suspended (no async cleanup; see
/// below).
///
/// # asyncio's names
///
/// | asyncio | coil |
/// |---|---|
/// | `x = yield y` | `let x = co.yield_(y).await?;` (`x: Option<S>`: `None` after `next`) |
/// | `await anext(g)`, `await g.__anext__()`, `await g.asend(None)` | `g.next().await` |
/// | `await g.asend(v)` | `g.send(v).await` |
/// | `await g.athrow(e)` | `g.throw(e).await` |
/// | `await g.aclose()` | `g.close().await` |
/// | `StopAsyncIteration` | `Ok(None)` |
/// | `GeneratorExit` | [`Thrown::Exit`] |
/// | `RuntimeError: async generator ignored GeneratorExit` | [`CloseError::IgnoredExit`] |
/// | `RuntimeError: asend(): asynchronous generator is already running` | cannot happen: each method borrows the generator mutably until its future is done |
///
/// # States, and operations in each
///
/// | state | `next()` | `send(v)` | `throw(e)` | `close()` |
/// |---|---|---|---|---|
/// | fresh (never resumed) | runs the body to its first yield | panics (asyncio: `TypeError`) | ends it unrun; `Err(e)` | ends it unrun; `Ok(())` |
/// | suspended at a yield | yield gives `Ok(None)` | yield gives `Ok(Some(v))` | yield gives `Err(Thrown::Error(e))` | yield gives `Err(Thrown::Exit)` |
/// | finished | `Ok(None)` | `Ok(None)`, `v` dropped | `Ok(None)`, `e` dropped | `Ok(())` |
///
/// After a resume of a suspended generator the body runs until it yields
/// again (`Ok(Some(y))`; for a close, [`CloseError::IgnoredExit`] and the
/// generator is finished), returns (`Ok(None)`; `Ok(())` for a close), or
/// raises (`Err(e)`; [`CloseError::Raised`] for a close).
///
/// # Cancellation and drop
///
/// Cancelling is dropping, as everywhere in coil. **Dropping an operation's
/// future while the body is between two yields** (awaiting a timer, say: the
/// future lost a `select`, or a `timeout` expired) drops the body there: its
/// destructors run and the generator is finished. asyncio throws
/// `CancelledError` in at that await instead; a body that does not catch it
/// ends the same way. A future dropped before its first poll changes nothing.
///
/// **Dropping the generator** drops the body where it is suspended: its
/// destructors run (a guard held across the yield is released), but no async
/// cleanup code after the yield runs, since Rust has no async drop. asyncio
/// schedules `aclose()` on the loop for a generator that is garbage collected
/// unfinished; in coil, await [`close`](AsyncGen::close) when the cleanup has
/// to await something.
#[must_use = "an async generator does nothing unless resumed"]
pub struct AsyncGen<Y, S, E, Fut> {
    slots: Rc<Slots<Y, S, E>>,
    /// `None` once finished.
    body: Option<Pin<Box<Fut>>>,
    /// Resumed at least once (or finished unrun).
    started: bool,
    /// An operation is between delivering its input and the body's next
    /// yield or return. Still set at the start of an operation only if the
    /// previous one's future was leaked (`mem::forget`): that step is then
    /// abandoned, like a dropped one.
    stepping: bool,
}

impl<Y, S, E, Fut> AsyncGen<Y, S, E, Fut>
where
    Fut: Future<Output = Result<(), Thrown<E>>>,
{
    /// Resumes the generator without a value: asyncio's `anext(g)` /
    /// `asend(None)`. The first resume runs the body to its first yield;
    /// later ones make the pending yield evaluate to `Ok(None)`.
    ///
    /// `Ok(Some(y))`: the body yielded `y`; `Ok(None)`: it has finished (or
    /// had before); `Err(e)`: it raised `e` and is finished.
    // Named like `StreamExt::next`, the other async pull; it returns a
    // future, so it cannot be `Iterator::next`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Resume<'_, Y, S, E, Fut> {
        Resume(Step::new(self, Input::Next))
    }

    /// Resumes the generator with `value`, which its pending yield evaluates
    /// to (`Ok(Some(value))`): asyncio's `asend(value)`. Answers as
    /// [`next`](Self::next) does; on a finished generator, `Ok(None)` and
    /// `value` is dropped.
    ///
    /// # Panics
    ///
    /// If the generator was never resumed: there is no yield yet to receive
    /// the value (asyncio raises `TypeError: can't send non-None value to a
    /// just-started async generator`). Start it with `next()`.
    #[track_caller]
    pub fn send(&mut self, value: S) -> Resume<'_, Y, S, E, Fut> {
        assert!(
            self.started,
            "coil::stream::AsyncGen::send: the generator has not started, so no yield \
             can receive the value; resume it with next() first"
        );
        Resume(Step::new(self, Input::Send(value)))
    }

    /// Throws `error` in at the pending yield, which evaluates to
    /// `Err(Thrown::Error(error))`: asyncio's `athrow(error)`. The body may
    /// handle it and yield again (`Ok(Some(y))`), return (`Ok(None)`), or
    /// let it propagate (`Err(error)`; the generator is finished).
    ///
    /// On a generator never resumed, the error is raised before the body
    /// runs: `Err(error)`, and the generator is finished without having run.
    /// On a finished generator: `Ok(None)`, and `error` is dropped (asyncio:
    /// `StopAsyncIteration`).
    pub fn throw(&mut self, error: E) -> Resume<'_, Y, S, E, Fut> {
        Resume(Step::new(self, Input::Throw(error)))
    }

    /// Closes the generator: asyncio's `aclose()`. The pending yield
    /// evaluates to `Err(Thrown::Exit)`; the body runs its cleanup (which
    /// may await) and returns. `Ok(())` when it returns `Ok(())` or
    /// `Err(Thrown::Exit)`; [`CloseError::Raised`] when the cleanup raises;
    /// [`CloseError::IgnoredExit`] when the body yields instead (the value
    /// and the body are dropped). Either way the generator is then finished.
    ///
    /// On a generator never resumed, or finished: `Ok(())` at once, and the
    /// body (if any) is dropped unrun.
    pub fn close(&mut self) -> Close<'_, Y, S, E, Fut> {
        Close(Step::new(self, Input::Close))
    }

    /// `true` once the body has returned, raised, been closed or been
    /// dropped by a cancelled operation: every operation now answers at
    /// once without running anything.
    pub fn is_finished(&self) -> bool {
        self.body.is_none()
    }
}

impl<Y, S, E, Fut> AsyncGen<Y, S, E, Fut> {
    /// Drops the body where it is and forgets any value or input in flight.
    fn finish(&mut self) {
        self.body = None;
        self.started = true;
        self.stepping = false;
        self.slots.out.set(None);
        self.slots.input.set(None);
    }
}

impl<Y, S, E, Fut> fmt::Debug for AsyncGen<Y, S, E, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncGen")
            .field("started", &self.started)
            .field("finished", &self.body.is_none())
            .finish()
    }
}
