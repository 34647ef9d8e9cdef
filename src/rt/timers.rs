//! The loop's timers: filing, polling and cancelling a timer in the wheel
//! for `Sleep`, firing the due ones each tick (their tasks go to the front
//! of the run queue), and how long an idle loop may park before the next
//! deadline.
//!
//! The wheel counts 1 ms ticks from the core's `origin`; a deadline is
//! rounded up to its tick, and a tick fires only once the clock has passed
//! it, so a timer never fires early.

use std::task::Waker;
use std::time::{Duration, Instant};

use super::core::Core;
use super::wheel::Key;

impl Core {
    /// Number of pending timers.
    pub(crate) fn timer_count(&self) -> usize {
        self.wheel.borrow().len()
    }

    fn now_tick(&self) -> u64 {
        let ms = match &self.sim {
            None => Instant::now().saturating_duration_since(self.origin),
            Some(sim) => sim.now.get(),
        }
        .as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// The wheel tick of `deadline`, rounded up.
    fn deadline_tick(&self, deadline: Instant) -> u64 {
        let nanos = deadline
            .saturating_duration_since(self.origin)
            .as_nanos()
            .div_ceil(1_000_000);
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    pub(super) fn park_timeout(&self) -> Option<Duration> {
        let next = self.wheel.borrow().next_expiration()?;
        let at = self
            .origin
            .checked_add(Duration::from_millis(next))
            .unwrap_or_else(|| self.origin + Duration::from_secs(86_400 * 365 * 30));
        Some(at.saturating_duration_since(Instant::now()))
    }

    pub(super) fn fire_timers(&self) {
        let mut wheel = self.wheel.borrow_mut();
        let Some(next) = wheel.next_expiration() else {
            return;
        };
        let now = self.now_tick();
        if next > now {
            return;
        }
        let mut fired = std::mem::take(&mut *self.fired.borrow_mut());
        wheel.advance(now, &mut fired);
        drop(wheel);
        if let Some(t) = &self.trace {
            t.timers(fired.len());
        }
        // Wakers of coil tasks on this loop land in `front` (see push_local);
        // foreign wakers do whatever they do.
        self.wake_to_front(&mut fired);
        *self.fired.borrow_mut() = fired;
    }

    /// File a timer for `deadline` (a `time::Instant`, as a std instant);
    /// `None` if it is already due.
    pub(crate) fn timer_insert(&self, deadline: Instant, waker: &Waker) -> Option<Key> {
        let tick = self.deadline_tick(deadline);
        let mut wheel = self.wheel.borrow_mut();
        // The wheel's `elapsed` tick has passed on the clock, so a deadline at
        // or before it is due (never early: the tick was rounded up).
        if tick <= wheel.elapsed() {
            return None;
        }
        // Due within the current millisecond: the clock decides (so a zero or
        // already-past deadline completes at once instead of a tick later).
        if tick == wheel.elapsed() + 1 && deadline <= clock_now() {
            return None;
        }
        super::metrics::add(&self.counters.timers_armed, 1);
        Some(wheel.insert(tick, waker.clone()))
    }

    /// Whether the timer is still pending (and re-arm its waker).
    pub(crate) fn timer_poll(&self, key: Key, waker: &Waker) -> bool {
        self.wheel.borrow_mut().poll(key, waker)
    }

    /// Cancel a timer.
    pub(crate) fn timer_remove(&self, key: Key) {
        self.wheel.borrow_mut().remove(key);
    }
}

/// What `time::Instant::now` reads, as a std instant: the virtual time when
/// a simulator loop runs on this thread, the monotonic clock otherwise.
#[inline]
pub(super) fn clock_now() -> Instant {
    match super::virtual_now() {
        Some(t) => t,
        None => Instant::now(),
    }
}
