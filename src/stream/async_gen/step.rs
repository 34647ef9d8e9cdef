//! One resume of an [`AsyncGen`]: the [`Step`] that delivers an input to the
//! body and reads what it did, and the two operation futures built on it,
//! [`Resume`] (`next`/`send`/`throw`) and [`Close`]. The slots and states it
//! works on are described in the parent module.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{AsyncGen, CloseError, Input, Thrown};

/// How one resume of the body ended.
enum Outcome<Y, E> {
    /// It yielded this value and is suspended.
    Yielded(Y),
    /// It returned `Ok(())` or `Err(Thrown::Exit)`, or was finished already.
    Finished,
    /// It raised this error (or had it thrown in before starting).
    Raised(E),
}

/// One resume of the body: the machinery shared by [`Resume`] and [`Close`].
pub(super) struct Step<'a, Y, S, E, Fut> {
    owner: &'a mut AsyncGen<Y, S, E, Fut>,
    /// `Some` until delivered to the body.
    input: Option<Input<S, E>>,
    /// The input was delivered and the body has not yielded or returned
    /// since: dropping the step now cancels the body.
    in_body: bool,
}

impl<'a, Y, S, E, Fut> Step<'a, Y, S, E, Fut>
where
    Fut: Future<Output = Result<(), Thrown<E>>>,
{
    pub(super) fn new(owner: &'a mut AsyncGen<Y, S, E, Fut>, input: Input<S, E>) -> Self {
        Step {
            owner,
            input: Some(input),
            in_body: false,
        }
    }

    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Outcome<Y, E>> {
        assert!(
            self.input.is_some() || self.in_body,
            "coil::stream::AsyncGen: an operation's future polled after it completed"
        );
        // A body that yields without awaiting anything else would be ready
        // forever: take a budget unit per step, before the input goes in (so
        // a step refused here can be dropped without harm).
        let coop = std::task::ready!(crate::rt::budget::poll_proceed(cx));
        if let Some(input) = self.input.take() {
            if self.owner.stepping {
                // The previous operation's future was leaked mid-step.
                self.owner.finish();
            }
            if let Some(answer) = self.deliver(input) {
                coop.made_progress();
                return Poll::Ready(answer);
            }
        }
        let owner = &mut *self.owner;
        let body = owner
            .body
            .as_mut()
            .expect("a step in the body has a body: only the step can finish it");
        let returned = match body.as_mut().poll(cx) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        };
        let outcome = match (returned, owner.slots.out.take()) {
            (None, None) => return Poll::Pending,
            (None, Some(y)) => {
                owner.stepping = false;
                Outcome::Yielded(y)
            }
            (Some(result), _) => {
                owner.finish();
                match result {
                    Ok(()) | Err(Thrown::Exit) => Outcome::Finished,
                    Err(Thrown::Error(e)) => Outcome::Raised(e),
                }
            }
        };
        self.in_body = false;
        coop.made_progress();
        Poll::Ready(outcome)
    }

    /// Hands `input` to the body (or answers at once, for a generator that
    /// is finished or not started). `Some` is the answer; `None` means poll
    /// the body.
    fn deliver(&mut self, input: Input<S, E>) -> Option<Outcome<Y, E>> {
        let owner = &mut *self.owner;
        if owner.body.is_none() {
            return Some(Outcome::Finished);
        }
        if !owner.started {
            match input {
                Input::Next => {}
                Input::Throw(e) => {
                    owner.finish();
                    return Some(Outcome::Raised(e));
                }
                Input::Close => {
                    owner.finish();
                    return Some(Outcome::Finished);
                }
                Input::Send(_) => unreachable!("send checks that the generator has started"),
            }
        } else {
            owner.slots.input.set(Some(input));
        }
        owner.started = true;
        owner.stepping = true;
        self.in_body = true;
        None
    }
}

impl<Y, S, E, Fut> Step<'_, Y, S, E, Fut> {
    /// The `Debug` of the operation futures, named `name`.
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("in_body", &self.in_body)
            .finish()
    }
}

impl<Y, S, E, Fut> Drop for Step<'_, Y, S, E, Fut> {
    fn drop(&mut self) {
        if self.in_body {
            // Cancelled between two yields: the body goes, as a dropped
            // task's future does.
            self.owner.finish();
        }
    }
}

/// The future of [`AsyncGen::next`], [`send`](AsyncGen::send) and
/// [`throw`](AsyncGen::throw): `Ok(Some(y))` when the body yields `y`,
/// `Ok(None)` when it has finished, `Err(e)` when it raises `e`.
///
/// Dropping it while the body runs between two yields drops the body (see
/// [`AsyncGen`]).
#[must_use = "futures do nothing unless awaited"]
pub struct Resume<'a, Y, S, E, Fut>(pub(super) Step<'a, Y, S, E, Fut>);

// The step holds a reference to the generator (whose body is boxed) and an
// input that is moved, never borrowed across polls.
impl<Y, S, E, Fut> Unpin for Resume<'_, Y, S, E, Fut> {}

impl<Y, S, E, Fut> Future for Resume<'_, Y, S, E, Fut>
where
    Fut: Future<Output = Result<(), Thrown<E>>>,
{
    type Output = Result<Option<Y>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_step(cx).map(|outcome| match outcome {
            Outcome::Yielded(y) => Ok(Some(y)),
            Outcome::Finished => Ok(None),
            Outcome::Raised(e) => Err(e),
        })
    }
}

impl<Y, S, E, Fut> fmt::Debug for Resume<'_, Y, S, E, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Resume", f)
    }
}

/// The future of [`AsyncGen::close`]: `Ok(())` when the body has finished
/// its cleanup, a [`CloseError`] when it raised or yielded instead.
///
/// Dropping it while the cleanup runs drops the body there.
#[must_use = "futures do nothing unless awaited"]
pub struct Close<'a, Y, S, E, Fut>(pub(super) Step<'a, Y, S, E, Fut>);

// As for `Resume`.
impl<Y, S, E, Fut> Unpin for Close<'_, Y, S, E, Fut> {}

impl<Y, S, E, Fut> Future for Close<'_, Y, S, E, Fut>
where
    Fut: Future<Output = Result<(), Thrown<E>>>,
{
    type Output = Result<(), CloseError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_step(cx).map(|outcome| match outcome {
            Outcome::Finished => Ok(()),
            Outcome::Raised(e) => Err(CloseError::Raised(e)),
            Outcome::Yielded(_) => {
                // asyncio: "async generator ignored GeneratorExit".
                self.0.owner.finish();
                Err(CloseError::IgnoredExit)
            }
        })
    }
}

impl<Y, S, E, Fut> fmt::Debug for Close<'_, Y, S, E, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Close", f)
    }
}
