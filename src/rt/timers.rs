//! The loop's timers: filing, polling and cancelling a timer in the wheel
//! for `Sleep`, firing the due ones each tick (their tasks go to the front
//! of the run queue), and how long an idle loop may park before the next
//! deadline.
//!
//! The wheel counts [`TICK`]s (125 µs) from the core's `origin`; a deadline
//! is rounded up to its tick, and a tick fires only once the clock has
//! passed it, so a timer never fires early, and at most a tick plus the
//! park's wake-up latency late. The tick is short so that timers due in the
//! same millisecond do not all fire at its end (W4: lateness p99 under
//! 0.5 ms); level 0 of the wheel still spans 4096 ticks (512 ms), so the
//! common sleeps and timeouts are filed once and never cascade.
//!
//! The wheel's `elapsed` follows the clock: every `fire_timers` advances it
//! to the current tick (not only when a timer is due), and a timer filed
//! into a wheel with no filed timer (empty, or holding only pending ones,
//! below) first brings it up to date. So a deadline that has
//! already passed is recognised as due at once instead of being filed for a
//! tick the clock has already reached (which made it fire a tick late).
//!
//! **The wheel's instant.** `Core::timers_at` is the start of the tick
//! the wheel's `elapsed` names, as an instant: every sleep that completes
//! fixes its deadline there (`time/sleep.rs`), so it is kept by the one
//! function that advances the wheel (`Core::advance`, once per advance)
//! instead of computed per sleep (an instant addition each; W4 completes
//! 100 000). `timers_elapsed` checks it against the computed value in
//! debug builds.
//!
//! **Relative timers** (`sleep(d)`, [`Core::timer_insert_after`]) cost no
//! clock read of their own: the first poll files the timer as *pending*
//! (`wheel.rs`), and the loop's next clock read (the one `fire_timers` makes
//! at the start of the next tick, or the one before a park) files it at
//! `that read + d`, rounded up to its tick. That read happens after the
//! poll on the same thread, so the deadline is never earlier than `d` after
//! any clock read the task made before it slept (never early); the price is
//! that the sleep counts from the end of the loop tick it started in, not
//! from the poll itself (a fraction of a millisecond in a busy loop: the
//! same tick that timers are only checked once per anyway). One clock read
//! per tick instead of one per `sleep` is what W4 (100 000 sleeps started
//! in one burst) measured: about 60 ns per read on the benchmark VM.

use std::task::Waker;
use std::time::{Duration, Instant};

use super::core::Core;
use super::wheel::{Key, Wheel};

/// The length of one wheel tick.
pub(super) const TICK: Duration = Duration::from_micros(125);
/// Ticks per second (TICK divides a second).
const TICKS_PER_SEC: u64 = 1_000_000_000 / TICK.as_nanos() as u64;
const TICK_NANOS: u32 = TICK.as_nanos() as u32;
/// `fire_timers` keeps its wakers buffer while it holds at most this many
/// (64 KiB).
const FIRED_KEEP: usize = 4096;

/// The number of whole ticks in `d`, rounded down (`up == false`) or up.
fn ticks(d: Duration, up: bool) -> u64 {
    let sub = d.subsec_nanos();
    let part = if up {
        sub.div_ceil(TICK_NANOS)
    } else {
        sub / TICK_NANOS
    };
    d.as_secs()
        .saturating_mul(TICKS_PER_SEC)
        .saturating_add(u64::from(part))
}

/// The time from the origin to tick `tick`.
pub(super) fn tick_offset(tick: u64) -> Duration {
    Duration::new(
        tick / TICKS_PER_SEC,
        (tick % TICKS_PER_SEC) as u32 * TICK_NANOS,
    )
}

impl Core {
    /// Number of pending timers.
    pub(crate) fn timer_count(&self) -> usize {
        self.wheel.borrow().len()
    }

    /// The tick the clock is in (it has passed every tick up to this one).
    fn now_tick(&self) -> u64 {
        ticks(self.now_since(), false)
    }

    /// The clock (virtual in a simulation) as time since the origin.
    fn now_since(&self) -> Duration {
        match &self.sim {
            None => Instant::now().saturating_duration_since(self.origin),
            Some(sim) => sim.now.get(),
        }
    }

    /// Files the pending relative timers (module docs) against the clock
    /// reading `since`; due ones (none in practice: a pending timer's
    /// duration is not zero) are pushed onto `fired`.
    fn file_pending(wheel: &mut Wheel, since: Duration, fired: &mut Vec<Waker>) {
        // In nanoseconds (u64: 584 years from the origin, then saturating):
        // a pending timer's value is its duration in nanoseconds.
        let since = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        wheel.file_pending(
            |after| since.saturating_add(after).div_ceil(u64::from(TICK_NANOS)),
            fired,
        );
    }

    /// Files the pending relative timers now (one clock read), before the
    /// loop asks when the next timer is due (`sim_idle`, `park_timeout`).
    pub(super) fn file_pending_timers(&self) {
        let mut wheel = self.wheel.borrow_mut();
        if !wheel.has_pending() {
            return;
        }
        let since = self.now_since();
        let mut fired = Vec::new();
        Self::file_pending(&mut wheel, since, &mut fired);
        drop(wheel);
        if !fired.is_empty() {
            self.wake_to_front(&mut fired);
        }
    }

    /// The wheel tick of `deadline`, rounded up.
    fn deadline_tick(&self, deadline: Instant) -> u64 {
        ticks(deadline.saturating_duration_since(self.origin), true)
    }

    /// How long an idle loop may park: until the start of the next tick that
    /// holds a timer, to the nanosecond (both drivers wait with nanosecond
    /// timeouts: io_uring's enter timespec, `epoll_pwait2`).
    pub(super) fn park_timeout(&self) -> Option<Duration> {
        self.file_pending_timers();
        if self.has_work() {
            return Some(Duration::ZERO);
        }
        let mut wheel = self.wheel.borrow_mut();
        // Idle: the time to give a burst's slab back (`wheel.rs` docs).
        wheel.shrink_if_empty();
        let next = wheel.next_expiration()?;
        drop(wheel);
        let at = self
            .origin
            .checked_add(tick_offset(next))
            .unwrap_or_else(|| self.origin + Duration::from_secs(86_400 * 365 * 30));
        Some(at.saturating_duration_since(Instant::now()))
    }

    /// Fires the due timers (their tasks go to the front of the run queue)
    /// and brings the wheel's `elapsed` up to the clock (module docs).
    pub(super) fn fire_timers(&self) {
        let mut wheel = self.wheel.borrow_mut();
        if wheel.len() == 0 {
            return;
        }
        let since = self.now_since();
        let mut fired = std::mem::take(&mut *self.fired.borrow_mut());
        self.advance(&mut wheel, ticks(since, false), &mut fired);
        // After the advance: filed against an up-to-date `elapsed`, a
        // pending timer lands on level 0 instead of cascading down.
        if wheel.has_pending() {
            Self::file_pending(&mut wheel, since, &mut fired);
        }
        drop(wheel);
        if !fired.is_empty() {
            if let Some(t) = &self.trace {
                t.timers(fired.len());
            }
            // Wakers of coil tasks on this loop land in `front` (see
            // push_local); foreign wakers do whatever they do.
            self.wake_to_front(&mut fired);
        }
        // Reused every tick, so the steady state does not allocate; a burst
        // that fired many timers at once gives its buffer back (the wheel's
        // rule, `wheel.rs` module docs).
        if fired.capacity() <= FIRED_KEEP {
            *self.fired.borrow_mut() = fired;
        }
    }

    /// File a timer for `deadline` (a `time::Instant`, as a std instant);
    /// `None` if it is already due.
    pub(crate) fn timer_insert(&self, deadline: Instant, waker: &Waker) -> Option<Key> {
        let tick = self.deadline_tick(deadline);
        let mut wheel = self.wheel.borrow_mut();
        if wheel.filed_len() == 0 {
            // A wheel with no filed timer is not advanced by `fire_timers`
            // (if it is empty), or may not have been since the clock moved
            // on (if it holds only pending timers, which are not in its
            // slots): catch it up with the clock first (module docs),
            // firing nothing.
            self.advance(&mut wheel, self.now_tick(), &mut Vec::new());
        }
        // The wheel's `elapsed` tick has passed on the clock, so a deadline at
        // or before it is due (never early: the tick was rounded up).
        if tick <= wheel.elapsed() {
            return None;
        }
        // Due within the current tick: the clock decides (so a zero or
        // already-past deadline completes at once instead of a tick later).
        if tick == wheel.elapsed() + 1 && deadline <= clock_now() {
            return None;
        }
        super::metrics::add(&self.counters.timers_armed, 1);
        Some(wheel.insert(tick, waker.clone()))
    }

    /// File a timer for `after` from the loop's next clock read (module
    /// docs), costing no clock read now; `None` if `after` is zero (due).
    pub(crate) fn timer_insert_after(&self, after: Duration, waker: &Waker) -> Option<Key> {
        if after.is_zero() {
            return None;
        }
        let nanos = after
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(after.subsec_nanos()));
        super::metrics::add(&self.counters.timers_armed, 1);
        Some(self.wheel.borrow_mut().insert_pending(nanos, waker.clone()))
    }

    /// The instant a live timer is due at (the start of its tick), filing
    /// the pending timers first if it is one of them; `None` if it fired or
    /// was removed.
    pub(crate) fn timer_deadline(&self, key: Key) -> Option<Instant> {
        self.file_pending_timers();
        let tick = self.wheel.borrow().deadline(key)?;
        self.origin.checked_add(tick_offset(tick))
    }

    /// The start of the tick the wheel has advanced to: an instant the clock
    /// has passed, and not before any timer that has fired.
    ///
    /// Kept in `timers_at` by [`Core::advance`], once per advance, instead
    /// of computed here: every sleep that completes asks (W4: 100 000
    /// times, a wheel borrow and an instant addition each).
    pub(crate) fn timers_elapsed(&self) -> Instant {
        let at = self.timers_at.get();
        debug_assert_eq!(at, self.tick_instant(self.wheel.borrow().elapsed()));
        at
    }

    /// The start of wheel tick `tick` (the origin if that is not
    /// representable, which a tick the clock has reached always is).
    fn tick_instant(&self, tick: u64) -> Instant {
        self.origin
            .checked_add(tick_offset(tick))
            .unwrap_or(self.origin)
    }

    /// Advances the wheel to tick `now` ([`Wheel::advance`], firing onto
    /// `fired`); every advance goes through here, so that `timers_at` stays
    /// the start of the wheel's tick (`timers_elapsed`).
    fn advance(&self, wheel: &mut Wheel, now: u64, fired: &mut Vec<Waker>) {
        let before = wheel.elapsed();
        wheel.advance(now, fired);
        if wheel.elapsed() != before {
            self.timers_at.set(self.tick_instant(wheel.elapsed()));
        }
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
