//! Opt-in spin-before-park ([`Builder::spin_before_park`](super::Builder::spin_before_park)):
//! a loop with nothing to do busy-polls its remote queue, its wake flags and
//! its driver's completions (without entering the kernel where the driver can
//! avoid it) for up to a budget before it parks.
//!
//! While it spins the loop holds its unparker ([`coil_arch::Unparker::hold`]),
//! so a wake from another thread costs the waker one atomic swap instead of an
//! eventfd write, and the loop sees the work within a cache-line transfer
//! instead of a sleeping thread's wake-up. When the hold ends, the loop looks
//! at its wake flags once more before it parks (step 5 of the unpark
//! protocol in `arch/src/unpark.rs`, modelled by its loom model): an unpark
//! made during the hold wrote nothing, so this look is what catches it.
//!
//! Off by default (a budget of zero): the loop then parks as soon as it is
//! idle and nothing here runs.

use std::time::{Duration, Instant};

use super::core::Core;

/// Spin iterations between two looks at the clock and the driver (a
/// non-blocking poll: under io_uring no syscall unless the kernel flagged
/// queued work; under epoll one `epoll_wait(0)`).
const POLL_EVERY: u32 = 64;

impl Core {
    /// Busy-polls for work for up to the spin budget, or until `timeout` (the
    /// next timer) if that comes first. Returns `true` if work turned up (the
    /// caller's next tick runs it) and `false` if the budget ran out with
    /// nothing to do (the caller parks).
    #[inline(never)]
    pub(super) fn spin_for_work(&self, timeout: Option<Duration>) -> bool {
        let budget = timeout.map_or(self.spin, |t| t.min(self.spin));
        if budget.is_zero() {
            return false;
        }
        let unparker = self.shared.unparker_for_spin();
        // No hold: an unpark is already owed, the park returns at once.
        let Some(held) = unparker.hold() else {
            return false;
        };
        // `None`: a budget past what an `Instant` can hold (`Duration::MAX`,
        // say), i.e. spin until work comes.
        let start = Instant::now();
        let deadline = start.checked_add(budget);
        // Debug mode: the time spent in the polling parks below, which
        // `park` itself accounts for (`debug_excluded`).
        let debug = self.debug.is_some();
        let mut in_park = Duration::ZERO;
        let mut spins = 0u32;
        let found = loop {
            if self.shared.wake_pending() {
                break true;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(POLL_EVERY) {
                let parked = debug.then(Instant::now);
                self.park(Some(Duration::ZERO));
                if let Some(p) = parked {
                    in_park += p.elapsed();
                }
                if !self.run_queue.borrow().is_empty() {
                    break true;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break false;
                }
            }
            std::hint::spin_loop();
        };
        drop(held);
        if debug {
            // Spinning is waiting for work, as parking is: not a stall of
            // the loop (`Core::end_turn`).
            let spun = start.elapsed().saturating_sub(in_park);
            self.debug_excluded.set(self.debug_excluded.get() + spun);
        }
        // Step 5: unparks during the hold wrote nothing; look once more.
        found || self.shared.wake_pending()
    }
}
