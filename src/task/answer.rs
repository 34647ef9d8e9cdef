//! The task's side of a cancel request (decision 0010): [`cancellable`]
//! turns a request into `Err(Cancelled)` where the task would wait,
//! [`cancelled`] waits for one, and [`Cancelled::reraise`] finishes the task
//! as cancelled once its cleanup is done. Only tasks spawned with
//! [`Builder::cooperative_cancel`](super::Builder::cooperative_cancel) get
//! requests; elsewhere these scopes never fire.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Cancelled;
use super::raw::TaskRef;

/// The task being polled on this thread's loop.
fn running_task() -> Option<TaskRef> {
    crate::rt::with_core(|core| core?.current_task())
}

/// Runs `future` unless the running task is asked to cancel: asyncio's
/// `try: await future except CancelledError`.
///
/// Each poll polls `future` first: a result that is ready wins (nothing is
/// lost to a request that came at the same time). When `future` would wait
/// and a cancel request has not been delivered yet, the request is taken
/// (so a later scope does not see it again: delivery is edge-triggered, as
/// in asyncio), `future` is dropped, and the output is `Err(Cancelled)` with
/// the request's message. `cancel` wakes the task, so a scope that is
/// waiting sees the request at once.
///
/// Outside a task, or in a task that does not answer requests, this is
/// `future` with `Ok` around its output.
pub fn cancellable<F: Future>(future: F) -> Cancellable<F> {
    Cancellable {
        future: Some(future),
    }
}

/// The future of [`cancellable`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Cancellable<F> {
    future: Option<F>,
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is pinned with `self` and never moved: it is
        // polled in place and dropped in place (set to `None`).
        let this = unsafe { self.get_unchecked_mut() };
        let Some(fut) = this.future.as_mut() else {
            panic!("a coil::task::cancellable future was polled after it finished");
        };
        // SAFETY: as above, the inner future stays where it is.
        if let Poll::Ready(v) = unsafe { Pin::new_unchecked(fut) }.poll(cx) {
            this.future = None;
            return Poll::Ready(Ok(v));
        }
        match running_task().and_then(TaskRef::take_request) {
            Some(c) => {
                this.future = None;
                Poll::Ready(Err(c))
            }
            None => Poll::Pending,
        }
    }
}

/// Waits until the running task is asked to cancel, and takes the request:
/// `cancellable(pending())`. For a `select` against work that must not be
/// dropped half-way. Never resolves outside a task that answers requests.
pub async fn cancelled() -> Cancelled {
    match cancellable(std::future::pending::<()>()).await {
        Ok(()) => unreachable!("pending() never finishes"),
        Err(c) => c,
    }
}

impl Cancelled {
    /// Finishes the running task as cancelled: asyncio's `raise` at the end
    /// of `except CancelledError:`. The future never resolves; the loop
    /// drops the task's future at its next turn (destructors run then) and
    /// the awaiter gets `Err(TaskError::Cancelled(_))` with the latest
    /// request's message. Generic in its output so that it fits any arm:
    /// `Err(c) => { cleanup().await; c.reraise().await }`.
    ///
    /// # Panics
    ///
    /// When polled outside a task (the `block_on` future is not one).
    pub fn reraise<T>(self) -> Reraise<T> {
        Reraise {
            _cancelled: self,
            _output: PhantomData,
        }
    }
}

/// The future of [`Cancelled::reraise`]: never ready.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Reraise<T> {
    _cancelled: Cancelled,
    _output: PhantomData<fn() -> T>,
}

impl<T> Future for Reraise<T> {
    type Output = T;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let Some(task) = running_task() else {
            panic!("Cancelled::reraise was awaited outside a coil task");
        };
        // The task is RUNNING: the abort marks it and the loop queues it
        // again when this poll returns; its next turn drops the future.
        task.abort(None);
        Poll::Pending
    }
}
