//! [`sleep`] and [`sleep_until`]: wait for a deadline on the timing wheel.

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Instant;
use crate::rt::Awaiting;
use crate::rt::core::Core;
use crate::rt::wheel::Key;

/// Waits until `duration` has elapsed, like `asyncio.sleep`.
///
/// Like `asyncio.sleep` (a coroutine, whose body runs when it is awaited),
/// the sleep starts when it is first polled, not when it is created; the
/// loop then counts `duration` from its next look at the clock, at the end
/// of the loop tick the sleep started in (one clock read per tick instead
/// of one per sleep). So it never completes before `duration` has passed
/// since any instant the task read before sleeping (never early), and
/// completes within a fraction of a millisecond after that when the loop is
/// not busy. Like `asyncio.sleep(0)`, `sleep(Duration::ZERO)` still suspends
/// the task once: every other ready task runs before it resumes. No timer is
/// filed for it.
///
/// For a sleep fixed to a given instant, [`sleep_until`]`(Instant::now() + d)`.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: Deadline::After(duration),
        registration: None,
        yielded: false,
    }
}

/// Waits until `deadline`. A deadline in the past completes at once.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline: Deadline::At(deadline),
        registration: None,
        yielded: false,
    }
}

/// When a [`Sleep`] completes.
#[derive(Clone, Copy, Debug)]
enum Deadline {
    /// At this instant ([`sleep_until`], or a [`Sleep::reset`]).
    At(Instant),
    /// This long after the loop's first clock read following the first poll
    /// ([`sleep`]); the loop knows the instant once it has filed the timer.
    After(Duration),
}

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// Registers a timer on the first poll; dropping it cancels the timer.
/// `Sleep` is `Send` and `Unpin`: it may be moved between tasks and runtimes
/// (it re-registers with whichever loop polls it; a started [`sleep`] moved to
/// another loop counts its duration again from there).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Deadline,
    /// The loop the timer is filed with (its core id, which is never 0:
    /// the niche keeps this at two words) and the timer key. A started
    /// [`sleep`] moved to another loop starts again there (the first loop
    /// knows its deadline, the second cannot ask it).
    registration: Option<(NonZeroU64, Key)>,
    /// The deadline was already due when polled, and the task was sent round
    /// the loop once (asyncio.sleep(0)); the next poll completes.
    yielded: bool,
}

impl Sleep {
    /// The instant this sleep completes at.
    ///
    /// For a [`sleep`] that has not started (not polled yet), the instant it
    /// would complete at if it started now: `Instant::now() + duration`. Once
    /// it started on a loop, the instant its timer is filed for there (at most
    /// one wheel tick, 125 µs, after `duration` from its start). Once it has
    /// completed, an instant that has passed.
    pub fn deadline(&self) -> Instant {
        match self.deadline {
            Deadline::At(at) => at,
            Deadline::After(after) => self
                .started_deadline()
                .unwrap_or_else(|| Instant::now() + after),
        }
    }

    /// The deadline of a started [`sleep`] whose timer was filed with the
    /// loop of this thread: its tick's start while it is live; once it has
    /// fired (not polled since), the start of the tick the wheel is in, an
    /// instant that has passed and not before the timer's (as the poll that
    /// sees it fired fixes it).
    fn started_deadline(&self) -> Option<Instant> {
        let (core_id, key) = self.registration?;
        crate::rt::with_core(|core| {
            let core = core.filter(|c| c.id() == core_id.get())?;
            // `None`: fired. A removed timer's key is not kept (`deregister`
            // takes it), and a live relative timer's instant is
            // representable (its tick is at most 584 years from the loop's
            // start, `timers.rs`).
            let at = core
                .timer_deadline(key)
                .unwrap_or_else(|| core.timers_elapsed());
            Some(Instant::from_std(at))
        })
    }

    /// Whether the deadline has passed (a [`sleep`] that has not started:
    /// whether its duration is zero).
    pub fn is_elapsed(&self) -> bool {
        match (self.deadline, self.started_deadline()) {
            (Deadline::At(at), _) | (Deadline::After(_), Some(at)) => Instant::now() >= at,
            (Deadline::After(after), None) => after.is_zero(),
        }
    }

    /// Moves the deadline (earlier or later); the sleep is pending again
    /// until the new deadline.
    pub fn reset(&mut self, deadline: Instant) {
        self.deregister();
        self.deadline = Deadline::At(deadline);
        self.yielded = false;
    }

    fn deregister(&mut self) {
        if let Some((core_id, key)) = self.registration.take() {
            crate::rt::with_core(|core| {
                if let Some(core) = core.filter(|c| c.id() == core_id.get()) {
                    core.timer_remove(key);
                }
                // Otherwise the timer lives in another (or a dead) loop; it
                // fires there once and wakes a stale waker, harmlessly.
            });
        }
    }

    /// Poll without consuming coop budget (used by `Timeout`).
    pub(crate) fn poll_unbudgeted(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        crate::rt::with_core(|core| self.poll_on(in_runtime(core), cx))
    }

    /// Polls with coop budget, completing at once when the deadline is due
    /// (`Interval`'s ticks: a missed tick does not cost a loop turn).
    ///
    /// The budget as ops take it (`op/mod.rs`): a spent budget yields
    /// before the timer is looked at, and only a poll that completes takes a
    /// unit. That is what taking a unit up front and giving it back on
    /// `Pending` (`budget::poll_proceed`) amounts to, in one look at the
    /// loop instead of three (W4: every one of 100 000 sleeps is pending
    /// once).
    pub(crate) fn poll_budgeted(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let res = crate::rt::with_core(|core| {
            let core = in_runtime(core);
            if crate::rt::budget::spent(core, cx) {
                return None;
            }
            let res = self.poll_on(core, cx);
            if res.is_ready() {
                crate::rt::budget::take(core);
            }
            Some(res)
        });
        // A spent budget is not a wait for the deadline: nothing to note.
        let Some(res) = res else {
            return Poll::Pending;
        };
        crate::rt::debug::note(res, || Awaiting::Sleep {
            deadline: self.deadline().into_std(),
        })
    }

    /// The poll proper, on the loop `core` of this thread.
    #[inline]
    fn poll_on(&mut self, core: &Core, cx: &mut Context<'_>) -> Poll<()> {
        if let Some((core_id, key)) = self.registration {
            if core_id.get() == core.id() {
                if core.timer_poll(key, cx.waker()) {
                    return Poll::Pending;
                }
                self.registration = None;
                if let Deadline::After(_) = self.deadline {
                    // Fixed now, so that the sleep stays complete: the
                    // wheel's tick has passed, and so has the timer's.
                    self.deadline = Deadline::At(Instant::from_std(core.timers_elapsed()));
                }
                return Poll::Ready(());
            }
            self.registration = None;
        }
        let key = match self.deadline {
            Deadline::At(at) => core.timer_insert(at.into_std(), cx.waker()),
            Deadline::After(after) => core.timer_insert_after(after, cx.waker()),
        };
        match key {
            None => Poll::Ready(()),
            Some(key) => {
                let id = NonZeroU64::new(core.id()).expect("loop ids start at 1");
                self.registration = Some((id, key));
                Poll::Pending
            }
        }
    }
}

/// The loop of this thread, for a timer's poll.
fn in_runtime(core: Option<&Core>) -> &Core {
    match core {
        Some(core) => core,
        None => panic!(
            "a coil timer was polled outside a coil runtime; await it inside coil::run(...) or a task"
        ),
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
    /// Inlined down to the test: a completed sleep (W4: every one) holds
    /// no registration and needs no call.
    #[inline]
    fn drop(&mut self) {
        if self.registration.is_some() {
            self.deregister();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Sleep` lives in every sleeping task's future: the lazy deadline
    /// (two variants) must not grow it past the six words it had with an
    /// eager one (the core id's niche pays for the variant tag's word).
    #[test]
    fn sleep_stays_six_words() {
        assert!(
            size_of::<Sleep>() <= 48,
            "Sleep is {} bytes",
            size_of::<Sleep>()
        );
    }
}
