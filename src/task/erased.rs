//! Type-erased polling: a future's poll behind `&mut dyn ErasedPoll`, so that
//! the logic around a poll (catching a panic, a cancel scope's catch frame,
//! a timeout's rules) is compiled once in coil instead of once per future
//! type in every crate that uses it. The generic shell left in each wrapper
//! builds a [`PollSlot`], passes it down, and takes the output back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One poll of a future whose type the caller does not know.
pub(crate) trait ErasedPoll {
    /// Polls the future once and returns whether it is ready; a ready
    /// future's output is kept aside for the generic caller.
    fn poll_erased(&mut self, cx: &mut Context<'_>) -> bool;

    /// Drops the output a ready poll kept aside (the caller discards it,
    /// as when a raise wins over a ready value).
    fn discard(&mut self);
}

/// A pinned future and the output of its last ready poll.
pub(crate) struct PollSlot<'a, F: Future> {
    future: Pin<&'a mut F>,
    output: Option<F::Output>,
}

impl<'a, F: Future> PollSlot<'a, F> {
    pub(crate) fn new(future: Pin<&'a mut F>) -> Self {
        PollSlot {
            future,
            output: None,
        }
    }

    /// The output of the ready poll (`None` if there was none, or it was
    /// discarded), ending the slot's borrow of the future.
    pub(crate) fn into_output(self) -> Option<F::Output> {
        self.output
    }
}

impl<F: Future> ErasedPoll for PollSlot<'_, F> {
    fn poll_erased(&mut self, cx: &mut Context<'_>) -> bool {
        match self.future.as_mut().poll(cx) {
            Poll::Ready(v) => {
                self.output = Some(v);
                true
            }
            Poll::Pending => false,
        }
    }

    fn discard(&mut self) {
        self.output = None;
    }
}

/// The output of a poll that [`ErasedPoll::poll_erased`] reported ready.
#[track_caller]
pub(crate) fn ready<T>(output: Option<T>) -> T {
    match output {
        Some(v) => v,
        None => unreachable!("a ready poll keeps its output"),
    }
}
