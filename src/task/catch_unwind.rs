//! [`CatchUnwind`]: poll a future inside `catch_unwind`.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::erased::{self, ErasedPoll, PollSlot};

/// Polls `F` inside `catch_unwind`; a panic becomes `Err(payload)`.
///
/// The future is boxed so that this wrapper is `Unpin` without unsafe code.
/// After a panic the future is dropped at once (a panicked `async fn` must
/// not be polled again).
pub(crate) struct CatchUnwind<F> {
    future: Option<Pin<Box<F>>>,
}

impl<F: Future> CatchUnwind<F> {
    pub(crate) fn new(future: F) -> CatchUnwind<F> {
        CatchUnwind {
            future: Some(Box::pin(future)),
        }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.future.as_mut() else {
            polled_after_completion()
        };
        let mut slot = PollSlot::new(fut.as_mut());
        match poll_catching(&mut slot, cx) {
            Ok(false) => Poll::Pending,
            Ok(true) => {
                let v = erased::ready(slot.into_output());
                self.future = None;
                Poll::Ready(Ok(v))
            }
            Err(payload) => {
                drop(slot); // holds no output: the poll unwound
                self.future = None;
                Poll::Ready(Err(payload))
            }
        }
    }
}

/// The poll of [`CatchUnwind`], compiled once: whether the future is ready,
/// or the payload of its panic.
fn poll_catching(
    future: &mut dyn ErasedPoll,
    cx: &mut Context<'_>,
) -> Result<bool, Box<dyn Any + Send>> {
    // Unwind safety: after a panic the future is never polled again; its
    // captured state is dropped by the caller, which is all it can observe.
    catch_unwind(AssertUnwindSafe(|| future.poll_erased(cx)))
}

#[cold]
#[track_caller]
fn polled_after_completion() -> ! {
    panic!("CatchUnwind polled after it completed")
}
