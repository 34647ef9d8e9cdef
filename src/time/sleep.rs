//! [`sleep`] and [`sleep_until`]: wait for a deadline on the timing wheel.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Instant;
use crate::rt::Awaiting;
use crate::rt::wheel::Key;

/// Waits until `duration` has elapsed, like `asyncio.sleep`.
///
/// Never completes early; completes within a fraction of a millisecond after the
/// deadline when the loop is not busy. Like `asyncio.sleep(0)`, a sleep whose
/// deadline has already passed (`Duration::ZERO` included) still suspends the
/// task once: every other ready task runs before it resumes. No timer is
/// filed for it.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Waits until `deadline`. A deadline in the past completes at once.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registration: None,
        yielded: false,
    }
}

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// Registers a timer on the first poll; dropping it cancels the timer.
/// `Sleep` is `Send` and `Unpin`: it may be moved between tasks and runtimes
/// (it re-registers with whichever loop polls it).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The loop the timer is filed with (its core id) and the timer key.
    registration: Option<(u64, Key)>,
    /// The deadline was already due when polled, and the task was sent round
    /// the loop once (asyncio.sleep(0)); the next poll completes.
    yielded: bool,
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (earlier or later); the sleep is pending again
    /// until the new deadline.
    pub fn reset(&mut self, deadline: Instant) {
        self.deregister();
        self.deadline = deadline;
        self.yielded = false;
    }

    fn deregister(&mut self) {
        if let Some((core_id, key)) = self.registration.take() {
            crate::rt::with_core(|core| {
                if let Some(core) = core.filter(|c| c.id() == core_id) {
                    core.timer_remove(key);
                }
                // Otherwise the timer lives in another (or a dead) loop; it
                // fires there once and wakes a stale waker, harmlessly.
            });
        }
    }

    /// Poll without consuming coop budget (used by `Timeout`).
    pub(crate) fn poll_unbudgeted(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        crate::rt::with_core(|core| {
            let Some(core) = core else {
                panic!(
                    "a coil timer was polled outside a coil runtime; await it inside coil::run(...) or a task"
                )
            };
            if let Some((core_id, key)) = self.registration {
                if core_id == core.id() {
                    if core.timer_poll(key, cx.waker()) {
                        return Poll::Pending;
                    }
                    self.registration = None;
                    return Poll::Ready(());
                }
                self.registration = None;
            }
            match core.timer_insert(self.deadline.into_std(), cx.waker()) {
                None => Poll::Ready(()),
                Some(key) => {
                    self.registration = Some((core.id(), key));
                    Poll::Pending
                }
            }
        })
    }

    /// Polls with coop budget, completing at once when the deadline is due
    /// (`Interval`'s ticks: a missed tick does not cost a loop turn).
    pub(crate) fn poll_budgeted(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let coop = std::task::ready!(crate::rt::budget::poll_proceed(cx));
        let res = self.poll_unbudgeted(cx);
        if res.is_ready() {
            coop.made_progress();
        }
        let deadline = self.deadline.into_std();
        crate::rt::debug::note(res, || Awaiting::Sleep { deadline })
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let was_filed = self.registration.is_some();
        let res = self.poll_budgeted(cx);
        // Due at its first poll (nothing was filed): go round the loop once,
        // as asyncio.sleep does for a zero or past delay.
        if res.is_ready() && !was_filed && !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        res
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.deregister();
    }
}
