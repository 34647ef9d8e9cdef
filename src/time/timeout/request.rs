//! A [`Timeout`](super::Timeout) in a task that answers cancel requests: asyncio's
//! `timeout()`, which asks its task to cancel on expiry instead of dropping
//! the body (decision 0010). The body runs inside a catch frame from then on
//! (`task/answer.rs`), and the cancellation that comes back is `Elapsed`
//! unless a request from elsewhere came too.

use std::task::{Context, Poll};

use super::{Elapsed, Mode, RequestMode, TimeoutState};
use crate::task::TaskHandle;
use crate::task::erased::ErasedPoll;

/// The request an expired timeout sent its task, counted until the timeout
/// takes it back with `uncancel`: when it finishes, or when it is dropped
/// before that (by a `select`, an enclosing scope or timeout), as leaving
/// asyncio's `async with timeout()` always does.
#[derive(Debug, Default)]
pub(super) struct OwedRequest(Option<TaskHandle>);

impl OwedRequest {
    /// `uncancel()` on the task, once; the requests left.
    fn settle(&mut self) -> usize {
        self.0.take().map_or(0, |task| task.uncancel())
    }
}

impl Drop for OwedRequest {
    fn drop(&mut self) {
        self.settle();
    }
}

impl TimeoutState {
    /// The poll of a timeout in a task that answers cancel requests
    /// (asyncio's `timeout()`): on expiry the task gets a request and the
    /// body goes on being polled, so a `cancellable` scope in it can clean
    /// up; the cancellation that comes back (raised by the body, or taken
    /// here when nothing in the body would take it) is `Elapsed` if the
    /// requests left after `uncancel` are no more than on entry, and is
    /// raised on otherwise (another request came too).
    pub(super) fn poll_request_mode(
        &mut self,
        due: bool,
        future: &mut dyn ErasedPoll,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Elapsed>> {
        if due && !self.started {
            // Never started: nothing to ask, asyncio.wait_for(coro, 0).
            self.set_expired();
            return Poll::Ready(Err(Elapsed(())));
        }
        self.started = true;
        let Mode::Request(mode) = &mut self.mode else {
            unreachable!("called in request mode only")
        };
        let first_expiry = due && !mode.requested;
        mode.requested |= due;
        let RequestMode {
            at_enter,
            pending_at_enter,
            requested,
        } = *mode;
        // Whether a request was undelivered before this timeout's own: if
        // the flag is still set after a ready body, the timeout's request
        // was never delivered and is withdrawn with the uncancel below.
        let mut pending_before = true;
        if first_expiry {
            pending_before = crate::task::own_requests().is_some_and(|(_, p)| p);
            crate::task::request_own_cancel();
            self.owed = OwedRequest(crate::task::current());
            self.set_expired();
        }
        let frame = requested.then(crate::task::CatchFrame::enter);
        // A timed wait inside that drops its future (`Condition::
        // wait_timeout`, `wait_for`) and expires in this same poll leaves
        // the firing to this timeout, as nested timeouts do.
        let _mark = first_expiry.then(super::ExpiredMark::enter);
        let ready = future.poll_erased(cx);
        let raised = frame.and_then(crate::task::CatchFrame::leave);
        let cancelled = match (raised, ready) {
            (Some(c), _) => c,
            (None, true) => {
                if requested {
                    // The body finished anyway (it caught the request and
                    // carried on, or was done): the request is taken back,
                    // and if nothing took it (the body was ready in the
                    // poll that sent it), it is not delivered later either.
                    if !pending_before {
                        crate::task::take_own_request();
                    }
                    self.owed.settle();
                }
                return Poll::Ready(Ok(()));
            }
            (None, false) => {
                match requested.then(crate::task::take_own_request).flatten() {
                    // Nothing in the body took the request: this timeout
                    // is the scope that delivers it.
                    Some(c) => c,
                    None => {
                        self.wake_if_rescheduled(cx);
                        return Poll::Pending;
                    }
                }
            }
        };
        // A value the body was ready with lost to the raise: dropped here.
        future.discard();
        if requested && self.owed.settle() <= at_enter {
            if pending_at_enter {
                // A request from before the timeout had not been delivered
                // yet; taking this timeout's request took its delivery too:
                // it stays due for the next scope that waits.
                crate::task::repend_own();
            }
            return Poll::Ready(Err(Elapsed(())));
        }
        // Not (only) this timeout's request: the cancellation goes on to
        // the enclosing scope, or finishes the task.
        crate::task::raise(cancelled);
        Poll::Pending
    }
}
