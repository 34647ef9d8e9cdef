//! [`MaybeDone`]: a future, then its output, then nothing.
//!
//! The building block of every "poll many, keep each output" combinator
//! ([`gather!`](crate::gather), [`gather_all`](super::gather_all)). A
//! finished future is dropped at once and its output kept until taken, so a
//! join never polls a future after it returned `Ready`.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future being driven, or its output once it finished.
///
/// Public because [`gather!`](crate::gather) expands to code that uses it;
/// most programs never name it.
///
/// **Pinning.** The `Future` variant's payload is structurally pinned: once a
/// `MaybeDone` is pinned, the future inside is never moved, only dropped in
/// place (by [`Pin::set`]). The `Done` variant's output is not pinned and is
/// moved out by [`MaybeDone::take_output`].
pub enum MaybeDone<F: Future> {
    /// Still running.
    Future(F),
    /// Finished; the output waits to be taken.
    Done(F::Output),
    /// The output was taken.
    Gone,
}

impl<F: Future> MaybeDone<F> {
    /// Wraps a future that has not run yet.
    pub fn new(future: F) -> MaybeDone<F> {
        MaybeDone::Future(future)
    }

    /// Polls the future if it is still running; `true` once it has finished
    /// (now or earlier).
    pub fn poll_done(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        // SAFETY: the `Future` payload is structurally pinned (type doc): it
        // is only polled through a fresh `Pin` here and dropped in place by
        // `Pin::set` below; nothing moves it.
        let output = match unsafe { self.as_mut().get_unchecked_mut() } {
            // SAFETY: as above; `f` lives inside the pinned `self`.
            MaybeDone::Future(f) => match unsafe { Pin::new_unchecked(f) }.poll(cx) {
                Poll::Ready(v) => v,
                Poll::Pending => return false,
            },
            MaybeDone::Done(_) | MaybeDone::Gone => return true,
        };
        self.set(MaybeDone::Done(output));
        true
    }

    /// Whether the future has finished.
    pub fn is_done(&self) -> bool {
        !matches!(self, MaybeDone::Future(_))
    }

    /// Moves the output out if the future finished and it was not taken yet.
    pub fn take_output(self: Pin<&mut Self>) -> Option<F::Output> {
        // SAFETY: only the `Done` variant is moved out of (by `mem::replace`),
        // and its payload is not pinned; a `Future` payload is left alone.
        let this = unsafe { self.get_unchecked_mut() };
        match this {
            MaybeDone::Done(_) => match mem::replace(this, MaybeDone::Gone) {
                MaybeDone::Done(v) => Some(v),
                _ => unreachable!("checked to be Done just above"),
            },
            MaybeDone::Future(_) | MaybeDone::Gone => None,
        }
    }
}

impl<F, T, E> MaybeDone<F>
where
    F: Future<Output = Result<T, E>>,
{
    /// Moves the error out if the future finished with `Err` (the output is
    /// then gone); an `Ok` output, or a future still running, is left alone.
    pub fn take_err(self: Pin<&mut Self>) -> Option<E> {
        if matches!(&*self, MaybeDone::Done(Err(_))) {
            self.take_output().and_then(Result::err)
        } else {
            None
        }
    }
}

impl<F: Future> fmt::Debug for MaybeDone<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MaybeDone::Future(_) => "MaybeDone::Future(..)",
            MaybeDone::Done(_) => "MaybeDone::Done(..)",
            MaybeDone::Gone => "MaybeDone::Gone",
        })
    }
}
