//! [`CatchUnwind`]: poll a future inside `catch_unwind`.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

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
        let fut = self
            .future
            .as_mut()
            .expect("CatchUnwind polled after it completed");
        // Unwind safety: after a panic the future is never polled again; its
        // captured state is dropped below, which is all a caller can observe.
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                self.future = None;
                Poll::Ready(Ok(v))
            }
            Err(payload) => {
                self.future = None;
                Poll::Ready(Err(payload))
            }
        }
    }
}
