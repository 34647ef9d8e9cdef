//! Opt-in spin-before-park ([`Builder::spin_before_park`](super::Builder::spin_before_park)):
//! a loop with nothing to do busy-polls its wake flags and its driver's
//! completions for up to a budget before it parks.
//!
//! While it spins the loop reads memory only, apart from the driver polls
//! below: its flag word (`PENDING`, `MAIN`: a push to its remote queue or
//! a wake of its `block_on` future), every spin; the clock
//! (for the budget and the next timer) every [`POLL_EVERY`] spins; and its
//! driver:
//! * **io_uring**: a non-blocking park every [`POLL_EVERY`] spins. It reads
//!   the CQ ring's tail and the SQ ring's flags, both in the mmapped rings,
//!   and enters the kernel only when they say there is work: entries queued
//!   in the SQ, an overflowed CQ, or `IORING_SQ_TASKRUN` (the ring is
//!   `DEFER_TASKRUN | TASKRUN_FLAG`, so a completion waits as task work
//!   until the owner enters, and the kernel raises that flag when it queues
//!   some). An idle spin makes no syscall.
//! * **epoll** (and any driver without a memory view of readiness): one
//!   `epoll_wait(0)` every [`POLL_EVERY`] × [`SYSCALL_POLL_EVERY`] spins.
//!   Readiness is only known to the kernel, so this is a syscall each time;
//!   doing it less often keeps the spinning thread in user space (where it
//!   sees a cross-loop wake within a cache-line transfer) for most of the
//!   spin, at the price of seeing an I/O event up to that many spins late
//!   (about 4 µs on the development VM: what a sleeping thread's wake-up
//!   costs there, so a spinning loop is not later than a parked one).
//!
//! While it spins the loop carries the `SPINNING` bit in its flag word (the
//! remote wake protocol in `rt/mod.rs`, steps S1–S3): a push to its remote
//! queue or a wake of its `block_on` future learns from its own `fetch_or`
//! that the loop is spinning and skips the unpark (no eventfd write, no
//! MSG_RING, not even the unparker's swap), and the loop sees the work
//! within a cache-line transfer of the flag word. When the spin ends, the
//! `fetch_and` that clears the bit returns the word as the last push left
//! it, and the loop parks only if that value shows no work: a push whose
//! `fetch_or` came first is seen there, one that comes after finds the bit
//! clear and unparks. Every unpark of a loop's driver comes through that
//! word (`Shared` is its only user), so the driver-level hold
//! ([`coil_arch::Unparker::hold`]) is not needed here.
//!
//! Off by default (a budget of zero): the loop then parks as soon as it is
//! idle and nothing here runs.

use std::time::{Duration, Instant};

use super::core::Core;

/// Spin iterations between two looks at the clock and (under io_uring, where
/// it is memory reads) at the driver's completions.
const POLL_EVERY: u32 = 64;

/// Under a driver whose poll is a syscall (epoll), one poll every this many
/// looks at the clock (module docs).
const SYSCALL_POLL_EVERY: u32 = 2;

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
        // S1: pushes see the mark and skip their unpark.
        if !self.shared.start_spinning() {
            return true;
        }
        // S3 also when a driver poll below unwinds (a waker that panics):
        // a mark left set would make every later push skip its unpark.
        let mark = SpinMark(&self.shared);
        // `None`: a budget past what an `Instant` can hold (`Duration::MAX`,
        // say), i.e. spin until work comes.
        let start = Instant::now();
        let deadline = start.checked_add(budget);
        // Debug mode: the time spent in the polling parks below, which
        // `park` itself accounts for (`debug_excluded`).
        let debug = self.debug.is_some();
        let mut in_park = Duration::ZERO;
        let poll_every = if self.uring {
            POLL_EVERY
        } else {
            POLL_EVERY * SYSCALL_POLL_EVERY
        };
        let mut spins = 0u32;
        let found = loop {
            if self.shared.wake_pending() {
                break true;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(poll_every) {
                let parked = debug.then(Instant::now);
                self.park(Some(Duration::ZERO));
                if let Some(p) = parked {
                    in_park += p.elapsed();
                }
                if !self.run_queue.is_empty() {
                    break true;
                }
            }
            if spins.is_multiple_of(POLL_EVERY) && deadline.is_some_and(|d| Instant::now() >= d) {
                break false;
            }
            std::hint::spin_loop();
        };
        if debug {
            // Spinning is waiting for work, as parking is: not a stall of
            // the loop (`Core::end_turn`).
            let spun = start.elapsed().saturating_sub(in_park);
            self.debug_excluded.set(self.debug_excluded.get() + spun);
        }
        // S3, the re-check after clearing the mark: a push that skipped its
        // unpark set its bit before this RMW, which returns it.
        let work = mark.stop();
        found || work
    }
}

/// The `SPINNING` mark (step S1) while it is held; cleared (S3) by
/// [`SpinMark::stop`], or by the drop when unwinding.
struct SpinMark<'a>(&'a super::Shared);

impl SpinMark<'_> {
    /// Step S3: whether work is pending, as the clearing RMW read the word.
    fn stop(self) -> bool {
        let work = self.0.stop_spinning();
        std::mem::forget(self);
        work
    }
}

impl Drop for SpinMark<'_> {
    fn drop(&mut self) {
        self.0.stop_spinning();
    }
}
