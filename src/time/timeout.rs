//! [`timeout`], [`timeout_at`] and [`timeout_scope`]: give up on a future
//! after a deadline (asyncio's `wait_for`, `timeout`, `timeout_at`), and the
//! deadline's rules: a deadline already passed does not start the future,
//! `None` disables the timeout, a deadline can be moved
//! ([`Timeout::reschedule`], [`TimeoutHandle::reschedule`]), and of nested
//! timeouts that expire together the outermost one fires.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{Instant, Sleep, sleep_until};

mod request;

use request::OwedRequest;

use crate::task::erased::{self, ErasedPoll, PollSlot};

/// Runs `future` but gives up after `duration`, like `asyncio.wait_for` (and
/// `async with asyncio.timeout(..)`).
///
/// Returns `Ok(output)` if the future finished first, or `Err(Elapsed)` if the
/// deadline passed first; the future is then dropped (cancelled). The rules,
/// asyncio's:
///
/// - A future that is ready when the deadline passes still delivers its
///   value (it is polled before the deadline is acted on).
/// - A deadline that has passed (`Duration::ZERO` included) when the timeout
///   is first polled does not start the future: it is never polled, and the
///   result is `Err(Elapsed)` (`asyncio.wait_for(coro, 0)`).
/// - `None` disables the timeout (`asyncio.timeout(None)`); it can be set
///   later with [`Timeout::reschedule`].
/// - Of nested timeouts that expire together (the same deadline, or both
///   due when the loop gets to them), the outermost fires: the inner ones
///   are dropped with the body instead of returning their own `Elapsed`.
///
/// **In a task that answers cancel requests**
/// ([`Builder::cooperative_cancel`](crate::task::Builder::cooperative_cancel)),
/// a timeout is asyncio's `timeout()` instead of a drop: on expiry it sends
/// the task a cancel request and keeps polling the body, so a
/// [`cancellable`](crate::task::cancellable) scope in it sees the request,
/// cleans up with `.await`s and [`reraise`](crate::task::Cancelled::reraise)s;
/// the timeout then returns `Err(Elapsed)`. When nothing in the body would
/// take the request, the timeout takes it itself and drops the body. A body
/// that catches the request and returns normally gives `Ok(value)` (the
/// request is taken back with `uncancel`). If another request came too (a
/// `Task::cancel` from outside), the cancellation is raised on to the
/// enclosing scope, or finishes the task, rather than turned into `Elapsed`:
/// asyncio's rule of comparing `uncancel()` with `cancelling()` at entry,
/// which also makes the outer of two timeouts that expire together fire.
/// An expired timeout dropped before it finished (a `select!` took another
/// branch) takes its request back with `uncancel` too, as leaving asyncio's
/// `async with timeout()` always does.
///
/// **Given a [`Task`](crate::Task) handle, a timeout only detaches it** on
/// expiry (dropping a handle detaches); to cancel the task and wait for it
/// to stop, as `asyncio.wait_for(task, t)` does, use
/// [`wait_for`](super::wait_for).
///
/// ```
/// use std::time::Duration;
/// coil::run(async {
///     let fast = coil::time::timeout(Duration::from_secs(1), async { 5 }).await;
///     assert_eq!(fast, Ok(5));
///     let never = coil::time::timeout(None, async { 6 }).await;
///     assert_eq!(never, Ok(6));
/// });
/// ```
pub fn timeout<F: Future>(duration: impl Into<Option<Duration>>, future: F) -> Timeout<F> {
    timeout_at(duration.into().map(|d| Instant::now() + d), future)
}

/// Like [`timeout`], with an absolute deadline (`asyncio.timeout_at`); `None`
/// disables it.
pub fn timeout_at<F: Future>(deadline: impl Into<Option<Instant>>, future: F) -> Timeout<F> {
    Timeout {
        future,
        state: TimeoutState {
            sleep: deadline.into().map(sleep_until),
            started: false,
            expired: false,
            finished: false,
            mode: Mode::Undecided,
            scope: None,
            owed: OwedRequest::default(),
        },
    }
}

/// A timeout that drops its future on expiry in every task: for coil's own
/// timed waits (`wait_for`, `Condition::wait_timeout`, `connect_timeout`),
/// whose inner future is a leaf that a drop cancels losslessly, and which
/// must not send their task a request of their own.
pub(crate) fn timeout_dropping<F: Future>(deadline: Option<Instant>, future: F) -> Timeout<F> {
    let mut t = timeout_at(deadline, future);
    t.state.mode = Mode::Drop;
    t
}

/// A timeout whose body can see and move its deadline, as with
/// `async with asyncio.timeout(when) as cm:` and `cm.reschedule(..)`.
///
/// `body` is called with a [`TimeoutHandle`] for this timeout and returns
/// the future to run. The handle can be cloned and sent to other tasks; a
/// reschedule from anywhere takes effect at once (an earlier deadline that
/// has already passed fires on the next loop turn).
///
/// ```
/// use std::time::Duration;
/// use coil::time::{Instant, sleep, timeout_scope};
///
/// coil::run(async {
///     let r = timeout_scope(None, |cm| async move {
///         // Decide the deadline once the work is known.
///         cm.reschedule(Some(Instant::now() + Duration::from_millis(5))).unwrap();
///         sleep(Duration::from_secs(3600)).await;
///     })
///     .await;
///     assert!(r.is_err());
/// });
/// ```
pub fn timeout_scope<B, F>(deadline: impl Into<Option<Instant>>, body: B) -> Timeout<F>
where
    B: FnOnce(TimeoutHandle) -> F,
    F: Future,
{
    let deadline = deadline.into();
    let shared = Arc::new(Mutex::new(Shared {
        when: deadline,
        changed: false,
        expired: false,
        finished: false,
        waker: None,
    }));
    let mut t = timeout_at(deadline, body(TimeoutHandle(shared.clone())));
    t.state.scope = Some(shared);
    t
}

/// The future returned by [`timeout`], [`timeout_at`] and [`timeout_scope`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: F,
    /// Everything but the future: what the poll does around the future's
    /// poll does not depend on `F`, and is compiled once (`TimeoutState`).
    state: TimeoutState,
}

/// A [`Timeout`]'s deadline and rules, apart from its future.
struct TimeoutState {
    /// The deadline's timer; `None` when the timeout is disabled.
    sleep: Option<Sleep>,
    /// The future has been polled once.
    started: bool,
    /// The deadline passed while the future was pending.
    expired: bool,
    /// The timeout answered `Ready` (its body finished, or it expired).
    finished: bool,
    /// Drop or request mode, decided by the first poll.
    mode: Mode,
    /// The state a [`TimeoutHandle`] shares, for [`timeout_scope`].
    scope: Option<Arc<Mutex<Shared>>>,
    /// In request mode, once expired: the request to take back.
    owed: OwedRequest,
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The wrapped future, by value (the timer is dropped).
    pub fn into_inner(self) -> F {
        self.future
    }

    /// The deadline, or `None` if the timeout is disabled: asyncio's
    /// `Timeout.when()`.
    pub fn when(&self) -> Option<Instant> {
        self.state.when()
    }

    /// Whether the deadline passed before the future finished: asyncio's
    /// `Timeout.expired()`.
    pub fn expired(&self) -> bool {
        self.state.expired
    }

    /// Moves the deadline, earlier or later, or disables the timeout with
    /// `None`: asyncio's `Timeout.reschedule(when)`. A deadline that has
    /// already passed fires at the next poll.
    ///
    /// # Errors
    ///
    /// Once the deadline has passed ([`RescheduleError::Expired`], also while
    /// a task that answers cancel requests is still cleaning up after it) or
    /// the timeout has finished ([`RescheduleError::Finished`]), the deadline
    /// stays as it is and the call says so, as asyncio raises
    /// `RuntimeError("Cannot change state of expired Timeout")`.
    pub fn reschedule(
        self: Pin<&mut Self>,
        deadline: Option<Instant>,
    ) -> Result<(), RescheduleError> {
        // SAFETY: `sleep` and `scope` are not structurally pinned; nothing
        // here moves `future`.
        let this = unsafe { self.get_unchecked_mut() };
        this.state.reschedule(deadline)
    }
}

impl TimeoutState {
    fn when(&self) -> Option<Instant> {
        self.sleep.as_ref().map(Sleep::deadline)
    }

    /// [`Timeout::reschedule`].
    fn reschedule(&mut self, deadline: Option<Instant>) -> Result<(), RescheduleError> {
        if self.expired {
            return Err(RescheduleError::Expired);
        }
        if self.finished {
            return Err(RescheduleError::Finished);
        }
        self.set_deadline(deadline);
        if let Some(scope) = &self.scope {
            let mut s = lock(scope);
            s.when = deadline;
            // This call is the latest word: an older handle reschedule not
            // applied yet must not override it.
            s.changed = false;
        }
        Ok(())
    }

    /// The body rescheduled through its handle: apply it on the next poll.
    fn wake_if_rescheduled(&self, cx: &Context<'_>) {
        if self.scope.as_ref().is_some_and(|s| lock(s).changed) {
            cx.waker().wake_by_ref();
        }
    }

    fn set_deadline(&mut self, deadline: Option<Instant>) {
        match (&mut self.sleep, deadline) {
            (Some(sleep), Some(d)) => sleep.reset(d),
            (slot, d) => *slot = d.map(sleep_until),
        }
    }

    /// Applies a reschedule made through a [`TimeoutHandle`] and leaves the
    /// handle a waker to ask for the next poll with.
    fn sync_scope(&mut self, cx: &Context<'_>) {
        let Some(scope) = &self.scope else { return };
        let mut s = lock(scope);
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        if std::mem::take(&mut s.changed) {
            let when = s.when;
            drop(s);
            self.set_deadline(when);
        }
    }

    /// Whether the deadline is due (registering the timer if not).
    fn poll_due(&mut self, cx: &mut Context<'_>) -> bool {
        self.sleep
            .as_mut()
            .is_some_and(|s| s.poll_unbudgeted(cx).is_ready())
    }

    fn set_expired(&mut self) {
        self.expired = true;
        if let Some(scope) = &self.scope {
            lock(scope).expired = true;
        }
    }

    /// The timeout is over (answered, or dropped): its handles' reschedules
    /// are refused from now on.
    fn set_finished(&mut self) {
        self.finished = true;
        if let Some(scope) = &self.scope {
            lock(scope).finished = true;
        }
    }
}

impl Drop for TimeoutState {
    /// A scope dropped before it finished (its task cancelled, or
    /// [`Timeout::into_inner`]) is over for its handles too.
    fn drop(&mut self) {
        if let Some(scope) = &self.scope {
            lock(scope).finished = true;
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("future", &self.future)
            .field("when", &self.when())
            .field("expired", &self.state.expired)
            .finish()
    }
}

thread_local! {
    /// How many timeouts that are polling their future on this thread have
    /// expired: a timeout that expires while this is non-zero leaves the
    /// firing to the enclosing one.
    static ENCLOSING_EXPIRED: Cell<usize> = const { Cell::new(0) };
}

/// Marks, while alive, that an expired timeout is polling its future.
struct ExpiredMark;

impl ExpiredMark {
    fn enter() -> ExpiredMark {
        ENCLOSING_EXPIRED.with(|n| n.set(n.get() + 1));
        ExpiredMark
    }
}

impl Drop for ExpiredMark {
    fn drop(&mut self) {
        ENCLOSING_EXPIRED.with(|n| n.set(n.get() - 1));
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `future` only: it is never moved out
        // while pinned (`into_inner` takes `self` by value, so it cannot be
        // called on a pinned Timeout); the other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above, `future` stays where it is until `this` drops.
        let mut future = PollSlot::new(unsafe { Pin::new_unchecked(&mut this.future) });
        let res = this.state.poll(&mut future, cx);
        res.map(|r| r.map(|()| erased::ready(future.into_output())))
    }
}

impl TimeoutState {
    /// The poll of a [`Timeout`], compiled once: `Ready(Ok(()))` when
    /// `future` is ready (its output kept in the caller's slot).
    fn poll(
        &mut self,
        future: &mut dyn ErasedPoll,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Elapsed>> {
        let frame = crate::rt::debug::enter(|| match &self.sleep {
            Some(s) => crate::rt::Awaiting::Timeout {
                deadline: s.deadline().into_std(),
            },
            None => crate::rt::Awaiting::Combinator("timeout (disabled)"),
        });
        let res = self.poll_timeout(future, cx);
        frame.done(&res);
        if res.is_ready() {
            self.set_finished();
        }
        res
    }

    fn poll_timeout(
        &mut self,
        future: &mut dyn ErasedPoll,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Elapsed>> {
        self.sync_scope(cx);
        // A deadline already passed when the timeout starts is due even if
        // the loop's wheel lags the clock by more than a tick (a loaded
        // machine): the future must not start (`wait_for(coro, 0)`).
        let due = self.poll_due(cx)
            || (!self.started
                && self
                    .sleep
                    .as_ref()
                    .is_some_and(|s| s.deadline() <= Instant::now()));
        if let Mode::Undecided = self.mode {
            self.mode = match crate::task::own_requests() {
                Some((at_enter, pending_at_enter)) => Mode::Request(RequestMode {
                    at_enter,
                    pending_at_enter,
                    requested: false,
                }),
                None => Mode::Drop,
            };
        }
        if let Mode::Request(_) = self.mode {
            return self.poll_request_mode(due, future, cx);
        }
        // An enclosing timeout that expired too fires instead of this one:
        // it returns `Elapsed` from this same poll and drops this body, so
        // answering `Pending` without a registered waker is safe here.
        let enclosing_expired = due && ENCLOSING_EXPIRED.with(Cell::get) > 0;
        if due {
            self.set_expired();
            if !self.started {
                // Never started: asyncio.wait_for(coro, 0) does not run it.
                return expired_poll(enclosing_expired, cx);
            }
        }
        self.started = true;
        let ready = {
            let _mark = due.then(ExpiredMark::enter);
            future.poll_erased(cx)
        };
        if ready {
            return Poll::Ready(Ok(()));
        }
        if due {
            return expired_poll(enclosing_expired, cx);
        }
        self.wake_if_rescheduled(cx);
        Poll::Pending
    }
}

/// How a timeout acts on expiry.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Not polled yet: request mode if the polling task answers requests.
    Undecided,
    /// The future is dropped (every task that does not answer requests).
    Drop,
    /// asyncio's `timeout()`: the task gets a request.
    Request(RequestMode),
}

/// A timeout's state in a task that answers cancel requests.
#[derive(Debug, Clone, Copy)]
struct RequestMode {
    /// The task's `cancelling()` when the timeout started.
    at_enter: usize,
    /// A request was waiting to be delivered when the timeout started.
    pending_at_enter: bool,
    /// The deadline passed and the task was sent its request.
    requested: bool,
}

/// What an expired timeout answers: `Elapsed`, unless an enclosing timeout
/// expired too and fires instead (it drops this one in the same poll, or,
/// for one in a task that answers requests, whatever takes its request
/// does; the wake makes sure this one is polled again if it is kept).
fn expired_poll(enclosing_expired: bool, cx: &Context<'_>) -> Poll<Result<(), Elapsed>> {
    if enclosing_expired {
        cx.waker().wake_by_ref();
        Poll::Pending
    } else {
        Poll::Ready(Err(Elapsed(())))
    }
}

/// The state a [`Timeout`] shares with its [`TimeoutHandle`]s.
#[derive(Debug)]
struct Shared {
    when: Option<Instant>,
    /// `when` was set through a handle and the timeout has not applied it.
    changed: bool,
    expired: bool,
    /// The timeout answered or was dropped.
    finished: bool,
    /// Wakes the task polling the timeout after a reschedule.
    waker: Option<Waker>,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A handle to a [`timeout_scope`]'s deadline: asyncio's `Timeout` object
/// (the `cm` of `async with asyncio.timeout(..) as cm`).
///
/// Cheap to clone; `Send` and `Sync`. It outlives the timeout harmlessly.
#[derive(Clone)]
pub struct TimeoutHandle(Arc<Mutex<Shared>>);

impl TimeoutHandle {
    /// The deadline, or `None` if the timeout is disabled.
    pub fn when(&self) -> Option<Instant> {
        lock(&self.0).when
    }

    /// Whether the deadline passed before the body finished.
    pub fn expired(&self) -> bool {
        lock(&self.0).expired
    }

    /// Moves the deadline, or disables the timeout with `None`; see
    /// [`Timeout::reschedule`].
    ///
    /// # Errors
    ///
    /// [`RescheduleError::Expired`] once the deadline has passed,
    /// [`RescheduleError::Finished`] once the scope's body has finished or
    /// the scope was dropped: the deadline is not moved (asyncio raises
    /// `RuntimeError` for both).
    pub fn reschedule(&self, deadline: Option<Instant>) -> Result<(), RescheduleError> {
        let waker = {
            let mut s = lock(&self.0);
            if s.expired {
                return Err(RescheduleError::Expired);
            }
            if s.finished {
                return Err(RescheduleError::Finished);
            }
            s.when = deadline;
            s.changed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

/// Why [`Timeout::reschedule`] or [`TimeoutHandle::reschedule`] left the
/// deadline as it was: asyncio's `RuntimeError("Cannot change state of
/// expired Timeout")` and `("... of exited Timeout")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RescheduleError {
    /// The deadline has passed: the timeout fired (or, in a task that
    /// answers cancel requests, is firing while the body cleans up).
    Expired,
    /// The timeout finished before its deadline, or was dropped.
    Finished,
}

impl fmt::Display for RescheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RescheduleError::Expired => {
                "cannot reschedule a timeout whose deadline has passed: it has expired"
            }
            RescheduleError::Finished => {
                "cannot reschedule a timeout that has finished or was dropped"
            }
        })
    }
}

impl std::error::Error for RescheduleError {}

impl fmt::Debug for TimeoutHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.0);
        f.debug_struct("TimeoutHandle")
            .field("when", &s.when)
            .field("expired", &s.expired)
            .finish()
    }
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl Elapsed {
    pub(crate) fn new() -> Elapsed {
        Elapsed(())
    }
}

crate::macros::error_impls!(Elapsed => "deadline has elapsed");

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::ErrorKind::TimedOut.into()
    }
}
