//! The simulator's virtual clock and its queues: when completions are due, when network
//! events happen, and the seeded latencies that place them on the clock.

use std::os::fd::RawFd;
use std::time::Duration;

use super::SimDriver;
use super::net::Event;
use crate::op::Completion;

impl SimDriver {
    /// The virtual time: how long the simulation has run.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Moves the virtual clock forward to `t` (never backward).
    pub fn advance_to(&mut self, t: Duration) {
        self.now = self.now.max(t);
    }

    /// When the next scheduled event (a completion, a segment arriving, a
    /// retry) is due, if any. Operations waiting for something nothing
    /// scheduled will cause (a receive on a silent connection) are not
    /// events: when this is `None` and no task can run, the simulation is
    /// deadlocked.
    pub fn next_event(&self) -> Option<Duration> {
        let due = self.due.keys().next().map(|&(t, _)| t);
        let ev = self.events.keys().next().map(|&(t, _)| t);
        let retry = self
            .pending
            .values()
            .filter(|p| p.not_before > self.now)
            .map(|p| p.not_before)
            .min();
        [due, ev, retry].into_iter().flatten().min()
    }

    /// A latency drawn from the configured range.
    pub(super) fn latency(&mut self) -> Duration {
        let (lo, hi) = (
            self.config.min_latency,
            self.config.max_latency.max(self.config.min_latency),
        );
        let span = u64::try_from((hi - lo).as_nanos()).unwrap_or(u64::MAX);
        lo + Duration::from_nanos(if span == 0 {
            0
        } else {
            self.rng.below(span.saturating_add(1))
        })
    }

    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(super) fn complete_later(&mut self, user_data: u64, result: i32) {
        let at = self.now + self.latency();
        let seq = self.next_seq();
        self.due.insert(
            (at, seq),
            Completion {
                user_data,
                result,
                flags: 0,
            },
        );
    }

    pub(super) fn event_at(&mut self, at: Duration, ev: Event) {
        let seq = self.next_seq();
        self.events.insert((at, seq), ev);
    }

    /// The arrival time of the next segment to stream `to`: a fresh latency,
    /// but never before the previous segment (streams stay ordered).
    pub(super) fn stream_arrival(&mut self, to: RawFd) -> Duration {
        let at = self.now + self.latency();
        match self.net.stream(to) {
            Some(s) => {
                let at = at.max(s.last_arrival);
                s.last_arrival = at;
                at
            }
            None => at,
        }
    }

    pub(super) fn take_due(&mut self, out: &mut Vec<Completion>) {
        while let Some(entry) = self.due.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            out.push(entry.remove());
        }
    }
}
