//! The task state word: every bit, and every transition as a `#[must_use]` enum.
//!
//! One `AtomicUsize` per task. The low [`REF_SHIFT`] bits are flags; the rest is
//! the reference count. Rules that refer to "rule N" point at the numbered
//! invariants in `task/mod.rs`.
//!
//! | bit | name | meaning |
//! |---|---|---|
//! | 0 | [`SCHEDULED`] | exactly one *queue reference* exists: the task sits in a run queue, or it is being polled and must be polled again |
//! | 1 | [`RUNNING`] | the loop thread is polling the future (or shutting it down), or the task is *running while queued* after waking itself (below) |
//! | 2 | [`COMPLETE`] | the future is gone; the stage holds the result (or its owner took or dropped it, rule 5) |
//! | 3 | [`CANCELLED`] | `Task::cancel` was called; the next poll drops the future |
//! | 4 | [`JOIN_INTEREST`] | the `Task<T>` handle is alive |
//! | 5 | [`JOIN_WAKER`] | the runtime may read the join-waker field (rule 6) |
//! | 6 | [`FAILED`] | set with `COMPLETE` (never alone, never cleared): the stage holds the boxed error of a cancelled or panicked task, else the output (`raw.rs`: the stage has no tag of its own) |
//! | 7 | [`CANCEL_STATE`] | the task has an entry in its runtime's cancel table (its name, cancel message, requests: `cancel.rs`); set once, by whoever inserted the entry, under the table's lock; never cleared |
//! | 8 | [`COOPERATIVE`] | the task answers cancel requests (`Builder::cooperative_cancel`); set once, on the loop thread before the task's handle is returned (so before any `cancel`), never cleared; with it set, `CANCEL_STATE` is too. A task without it never takes the cancel table's lock to learn that it answers no requests (`time::timeout`'s first poll, `cancel`) |
//! | 9.. | refcount | owned-list ref + handle ref + queue ref + one per `Waker` |
//!
//! Only the loop thread sets `RUNNING`, `COMPLETE` and `FAILED`. Any thread may set
//! `SCHEDULED` (waking) and `CANCELLED`.
//!
//! # The self-wake path: running while queued
//!
//! A task that wakes itself from its own poll, on its own loop thread
//! (`yield_now`, or `cx.waker().wake_by_ref()` on the task being polled), does
//! not touch this word: the loop notes the wake in a loop-local flag
//! (`Core::note_self_wake`, which checks that the waker's task is the one
//! the loop is polling) and, when the poll returns `Pending`, pushes the task
//! back on its run queue **with `RUNNING` still set** instead of calling
//! [`transition_to_idle`](State::transition_to_idle). The poller's queue
//! reference becomes the queue entry's, unchanged. The next pop finds
//! `RUNNING` set ([`start_poll`](State::start_poll), one load) and polls
//! again without a write. A `yield_now` thus costs no locked instruction where
//! the word path costs three (wake, to-running, to-idle).
//!
//! "Running while queued" means: `RUNNING` is set, the loop thread is not
//! inside this task's poll, and exactly one run-queue entry of the task's
//! own loop holds the reference the poller held. Only the loop thread enters
//! it (after a poll that woke itself) and leaves it (the next pop, or
//! shutdown). To every other actor it looks like a poll in progress, and
//! that is what makes it safe:
//!
//! - a wake from elsewhere (another thread, or another task on the loop)
//!   finds `RUNNING` and only sets `SCHEDULED` (rule 3): no second queue
//!   entry. The next pop's `start_poll` sees the bit and clears it with an
//!   acquire RMW: that poll answers the wake (it sees what the waker
//!   published), as the queue entry of a queued task answers a wake, and no
//!   spurious second poll follows (the run-queue fuzz model checks the exact
//!   order). A wake that the pop's load misses set the bit after it; the poll
//!   then ends in `transition_to_idle` (or a self-wake keeps the bit for the
//!   next pop), whose acquire RMW sees it and reschedules. So a remote wake
//!   is never lost;
//! - a cancel finds `RUNNING` and only marks the task (`Marked`); the next
//!   pop's acquire load sees `CANCELLED` (and with it the message written
//!   before it) or, if it reads an older value, the poll's end reschedules
//!   on the `SCHEDULED` the cancel set, as for a cancel during a poll;
//! - the handle only looks at `COMPLETE` and `JOIN_WAKER`, which this path
//!   leaves alone;
//! - shutdown claims the task with `transition_to_shutdown` (the `RUNNING`
//!   it sets is already there) and releases the queue entry's reference
//!   when it drains the queues (rule 8).
//!
//! So the queue reference of rule 2 exists while `SCHEDULED` is set and no
//! poll runs, or while the task is running while queued.
//!
//! The items are `pub` in this crate-private module so that `crate::fuzz`
//! can re-export them for the `task_state` fuzz target under `cfg(fuzzing)`;
//! they are not API.

use crate::loom::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire};

/// A queue reference exists for this task (see the table above).
pub const SCHEDULED: usize = 1 << 0;
/// The loop thread is polling the task.
pub const RUNNING: usize = 1 << 1;
/// The future has been dropped and its output (if any) stored.
pub const COMPLETE: usize = 1 << 2;
/// Cancellation was requested.
pub const CANCELLED: usize = 1 << 3;
/// The `Task<T>` handle still exists.
pub const JOIN_INTEREST: usize = 1 << 4;
/// The join waker field is published to the runtime.
pub const JOIN_WAKER: usize = 1 << 5;
/// Set with `COMPLETE` when the result is an error (cancelled or
/// panicked): which of the stage's variants is live (`raw.rs`).
pub const FAILED: usize = 1 << 6;
/// The task has an entry in its runtime's cancel table (`cancel.rs`).
pub const CANCEL_STATE: usize = 1 << 7;
/// The task answers cancel requests (`Builder::cooperative_cancel`).
pub const COOPERATIVE: usize = 1 << 8;
/// Number of flag bits below the reference count.
pub const REF_SHIFT: usize = 9;
/// One reference.
pub const REF_ONE: usize = 1 << REF_SHIFT;
/// Refcounts above this abort the process (like `Arc`), long before overflow.
const REF_MAX: usize = usize::MAX >> 2;

/// A copy of the state word, with accessors.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Snapshot(pub usize);

impl Snapshot {
    /// Whether flag `bit` is set.
    #[inline]
    pub fn is(self, bit: usize) -> bool {
        self.0 & bit != 0
    }
    /// The reference count.
    pub fn refs(self) -> usize {
        self.0 >> REF_SHIFT
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("scheduled", &self.is(SCHEDULED))
            .field("running", &self.is(RUNNING))
            .field("complete", &self.is(COMPLETE))
            .field("cancelled", &self.is(CANCELLED))
            .field("join_interest", &self.is(JOIN_INTEREST))
            .field("join_waker", &self.is(JOIN_WAKER))
            .field("failed", &self.is(FAILED))
            .field("cancel_state", &self.is(CANCEL_STATE))
            .field("cooperative", &self.is(COOPERATIVE))
            .field("refs", &self.refs())
            .finish()
    }
}

/// Outcome of [`State::transition_to_running`].
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum ToRunning {
    /// Poll the future.
    Poll,
    /// Cancellation was requested: drop the future instead.
    Cancel,
}

/// Outcome of [`State::transition_to_idle`].
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum ToIdle {
    /// The task is idle; the poller's queue reference was released with the
    /// same atomic operation.
    Idle,
    /// The task was woken while running: the poller's queue reference becomes
    /// the new queue reference and the task must be pushed on a run queue.
    Reschedule,
}

/// Outcome of a wake or cancel request.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum Notify {
    /// The caller now holds a queue reference and must push the task.
    Submit,
    /// Nothing to do (already scheduled, running, or complete).
    Nothing,
    /// The caller released the last reference: deallocate.
    Dealloc,
}

/// Outcome of [`State::transition_to_cancelled`].
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum ToCancelled {
    /// This call requested cancellation and took a queue reference: push.
    Submit,
    /// This call requested cancellation; the task is queued or running and
    /// will see `CANCELLED` on its next poll.
    Marked,
    /// Already complete, or cancellation was requested before.
    AlreadyDone,
}

/// Outcome of a reference release.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum Release {
    /// Other references remain.
    Alive,
    /// That was the last reference: deallocate.
    Dealloc,
}

/// Outcome of dropping the join handle's interest.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum DropJoin {
    /// The task had not completed; the runtime will drop the output. If
    /// `had_waker`, the handle now owns the join waker field and drops it.
    Pending {
        /// `JOIN_WAKER` was set.
        had_waker: bool,
    },
    /// The task had completed: the handle must drop the output. If
    /// `may_drop_waker`, the runtime is done with the waker field too.
    Complete {
        /// `JOIN_WAKER` was clear.
        may_drop_waker: bool,
    },
}

/// The atomic state word.
#[derive(Debug)]
pub struct State(AtomicUsize);

impl State {
    /// A new task: scheduled, join interest, three references (owned list,
    /// handle, queue).
    pub fn new_spawned() -> State {
        State(AtomicUsize::new(SCHEDULED | JOIN_INTEREST | (3 * REF_ONE)))
    }

    /// A task that never runs: already complete and failed (cancelled
    /// before it could start), one reference held by its handle.
    pub fn new_complete() -> State {
        State(AtomicUsize::new(
            COMPLETE | FAILED | JOIN_INTEREST | REF_ONE,
        ))
    }

    /// The current word.
    #[inline]
    pub fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    /// Any thread, holding the cancel table's lock, right after inserting
    /// the task's entry: set [`CANCEL_STATE`] (`Release`: with the lock, a
    /// reader that sees the bit finds the entry).
    pub fn mark_cancel_state(&self) {
        self.0
            .fetch_or(CANCEL_STATE, std::sync::atomic::Ordering::Release);
    }

    /// The loop thread, before the task's handle is returned and after its
    /// cancel-table entry was marked cooperative: set [`COOPERATIVE`].
    pub fn mark_cooperative(&self) {
        self.0
            .fetch_or(COOPERATIVE, std::sync::atomic::Ordering::Release);
    }

    /// The compare-and-swap loop of every transition below. `f` maps the
    /// current word to `Ok((next, result))`, stored with one `AcqRel` CAS
    /// (retried with the word found on failure), or to `Err(result)` to
    /// leave the word as it is. Inlined: the loop is the same code as when
    /// each transition wrote it out.
    #[inline(always)]
    fn update<R>(&self, mut f: impl FnMut(usize) -> Result<(usize, R), R>) -> R {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, res) = match f(cur) {
                Ok(step) => step,
                Err(res) => return res,
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return res,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Loop thread, after popping the task from a queue (it owns the queue
    /// reference). Clears `SCHEDULED`, sets `RUNNING`.
    pub fn transition_to_running(&self) -> ToRunning {
        // SCHEDULED is set and RUNNING clear (rule 2), so one xor flips both.
        let prev = Snapshot(self.0.fetch_xor(SCHEDULED | RUNNING, AcqRel));
        debug_assert!(prev.is(SCHEDULED) && !prev.is(RUNNING));
        // Checked in release builds too: the stage has no tag, so a poll
        // after completion (rule 4 broken) would read a dead future.
        assert!(!prev.is(COMPLETE), "a task was polled after completing");
        if prev.is(CANCELLED) {
            ToRunning::Cancel
        } else {
            ToRunning::Poll
        }
    }

    /// Loop thread, after popping the task from a queue (it owns the queue
    /// reference): [`transition_to_running`](State::transition_to_running),
    /// or, for a task running while queued (`RUNNING` already set: its last
    /// poll woke itself, see the module docs), no write at all: one acquire
    /// load that reports `CANCELLED` (and, only if a wake from elsewhere set
    /// `SCHEDULED` meanwhile, one acquire RMW that clears it).
    #[inline(always)]
    pub fn start_poll(&self) -> ToRunning {
        // RUNNING is only ever set by this thread, so the load sees our own
        // write; CANCELLED comes from anywhere (acquire: its message too).
        let mut cur = self.load();
        if !cur.is(RUNNING) {
            return self.transition_to_running();
        }
        if cur.is(SCHEDULED) {
            // Woken from elsewhere (another task, the main future, another
            // thread) while it sat in the queue running: this poll answers
            // that wake, as the queue entry of a queued task answers one.
            // Left set, the next `Pending` would queue a second, spurious
            // poll. An acquire RMW, as `transition_to_running`: the poll sees
            // what the waker published, and no wake is lost (a wake after
            // this sets the bit again).
            cur = Snapshot(self.0.fetch_and(!SCHEDULED, AcqRel));
        }
        assert!(!cur.is(COMPLETE), "a task was polled after completing");
        if cur.is(CANCELLED) {
            ToRunning::Cancel
        } else {
            ToRunning::Poll
        }
    }

    /// Loop thread, after a poll returned `Pending`.
    pub fn transition_to_idle(&self) -> ToIdle {
        self.update(|cur| {
            debug_assert!(Snapshot(cur).is(RUNNING));
            Ok(if cur & SCHEDULED != 0 {
                (cur & !RUNNING, ToIdle::Reschedule)
            } else {
                debug_assert!(Snapshot(cur).refs() >= 2, "owned list ref + queue ref");
                ((cur & !RUNNING) - REF_ONE, ToIdle::Idle)
            })
        })
    }

    /// Loop thread: the future is gone and the result is stored (`failed`:
    /// an error, else the output). Sets `COMPLETE` (and `FAILED` if
    /// `failed`), clears `RUNNING` and `SCHEDULED` (a wake during the last
    /// poll pushed nothing, rule 3). Returns the new snapshot.
    pub fn transition_to_complete(&self, failed: bool) -> Snapshot {
        let done = if failed { COMPLETE | FAILED } else { COMPLETE };
        self.update(|cur| {
            let next = (cur | done) & !(RUNNING | SCHEDULED);
            Ok((next, Snapshot(next)))
        })
    }

    /// Loop thread, after a poll returned `Ready` (the output stored) and
    /// the task was unlinked from its owned list, whose reference the
    /// poller now holds beside its queue reference:
    /// [`transition_to_complete`](State::transition_to_complete) (not
    /// failed) and, when completion has nothing to do for the join side
    /// (`JOIN_INTEREST` set, `JOIN_WAKER` clear: the handle is alive and
    /// has published no waker), the release of those two references in the
    /// same read-modify-write, where completing and releasing took two
    /// (issue 18, W1). Returns the new snapshot and whether it released
    /// them. The handle's own reference keeps the count above zero, but once
    /// this returns `true` the handle (on any thread) may read the output
    /// and free the task: the caller must not touch it again.
    pub fn transition_to_complete_releasing(&self) -> (Snapshot, bool) {
        self.update(|cur| {
            let mut next = (cur | COMPLETE) & !(RUNNING | SCHEDULED);
            let release = cur & (JOIN_INTEREST | JOIN_WAKER) == JOIN_INTEREST;
            if release {
                debug_assert!(Snapshot(cur).refs() >= 3, "list + queue + handle: {cur:#x}");
                next -= 2 * REF_ONE;
            }
            Ok((next, (Snapshot(next), release)))
        })
    }

    /// Loop thread, at shutdown: claim an idle or queued task so that no
    /// waker pushes it again (they see `RUNNING`). A queue entry may still
    /// exist: `transition_to_complete` then clears `SCHEDULED` although the
    /// entry (and its reference) lives on until shutdown drains the queues,
    /// which release those references without looking at the bit (rule 8).
    /// `RUNNING` is already set if the task is running while queued (module
    /// docs); no poll is in progress either way.
    pub fn transition_to_shutdown(&self) {
        let prev = Snapshot(self.0.fetch_or(RUNNING | CANCELLED, AcqRel));
        debug_assert!(!prev.is(COMPLETE));
    }

    /// Any thread, `wake_by_ref`: may take a new queue reference.
    pub fn transition_to_notified_by_ref(&self) -> Notify {
        self.update(|cur| {
            if cur & COMPLETE != 0 {
                return Err(Notify::Nothing);
            }
            Ok(if cur & SCHEDULED != 0 {
                // Already queued: still write (the same value) so that this
                // wake is a release in the word's modification order. The
                // poll that the queue entry leads to starts with an acquire
                // RMW (`transition_to_running`), so it then sees whatever the
                // waker published before waking. A plain load here would let
                // that poll miss it and the wake be lost (loom model
                // `state_loom::wake_by_ref_while_polling`).
                (cur, Notify::Nothing)
            } else if cur & RUNNING != 0 {
                (cur | SCHEDULED, Notify::Nothing)
            } else {
                check_refs(cur);
                ((cur | SCHEDULED) + REF_ONE, Notify::Submit)
            })
        })
    }

    /// Any thread, `wake` by value: the waker's reference becomes the queue
    /// reference, or is released.
    pub fn transition_to_notified_by_val(&self) -> Notify {
        self.update(|cur| {
            Ok(if cur & (COMPLETE | SCHEDULED) != 0 {
                let next = cur - REF_ONE;
                let res = if next >> REF_SHIFT == 0 {
                    Notify::Dealloc
                } else {
                    Notify::Nothing
                };
                (next, res)
            } else if cur & RUNNING != 0 {
                // The poller holds a reference, so this cannot reach zero.
                ((cur | SCHEDULED) - REF_ONE, Notify::Nothing)
            } else {
                (cur | SCHEDULED, Notify::Submit)
            })
        })
    }

    /// Any thread, `Task::cancel`: marks the task cancelled and, if it was
    /// idle, takes a queue reference so that the loop polls (drops) it.
    pub fn transition_to_cancelled(&self) -> ToCancelled {
        self.update(|cur| {
            if cur & (COMPLETE | CANCELLED) != 0 {
                return Err(ToCancelled::AlreadyDone);
            }
            Ok(if cur & (RUNNING | SCHEDULED) != 0 {
                (cur | CANCELLED | SCHEDULED, ToCancelled::Marked)
            } else {
                check_refs(cur);
                ((cur | CANCELLED | SCHEDULED) + REF_ONE, ToCancelled::Submit)
            })
        })
    }

    /// Any thread: one more reference (a waker clone).
    pub fn ref_inc(&self) {
        let prev = self
            .0
            .fetch_add(REF_ONE, std::sync::atomic::Ordering::Relaxed);
        check_refs(prev);
    }

    /// Any thread: release `n` references.
    pub fn ref_dec(&self, n: usize) -> Release {
        let prev = Snapshot(self.0.fetch_sub(n * REF_ONE, AcqRel));
        debug_assert!(prev.refs() >= n, "task refcount underflow: {prev:?}");
        if prev.refs() == n {
            Release::Dealloc
        } else {
            Release::Alive
        }
    }

    /// Handle: publish the join waker (already written to the field). Fails
    /// with the snapshot if the task completed first; the handle then still
    /// owns the field.
    pub fn set_join_waker(&self) -> Result<(), Snapshot> {
        self.update(|cur| {
            debug_assert!(cur & JOIN_INTEREST != 0 && cur & JOIN_WAKER == 0);
            if cur & COMPLETE != 0 {
                return Err(Err(Snapshot(cur)));
            }
            Ok((cur | JOIN_WAKER, Ok(())))
        })
    }

    /// Handle: take the join waker field back before replacing it. Fails if
    /// the task completed (the runtime may be reading the field).
    pub fn unset_join_waker(&self) -> Result<(), Snapshot> {
        self.update(|cur| {
            debug_assert!(cur & JOIN_INTEREST != 0 && cur & JOIN_WAKER != 0);
            if cur & COMPLETE != 0 {
                return Err(Err(Snapshot(cur)));
            }
            Ok((cur & !JOIN_WAKER, Ok(())))
        })
    }

    /// Loop thread, after waking the join waker of a completed task: give the
    /// field back. Returns the new snapshot; if join interest is gone the
    /// caller drops the waker (rule 6).
    pub fn unset_join_waker_after_complete(&self) -> Snapshot {
        Snapshot(self.0.fetch_and(!JOIN_WAKER, AcqRel) & !JOIN_WAKER)
    }

    /// Handle drop, when the handle saw `COMPLETE` with `JOIN_WAKER` clear
    /// (neither can change after that: only the handle sets `JOIN_WAKER`, and
    /// not once `COMPLETE` is set) and has already dropped the output and the
    /// join waker, which are its own then (rules 5 and 6): give up join
    /// interest and the handle's reference in one read-modify-write, where
    /// [`drop_join_interest`](State::drop_join_interest) and
    /// [`ref_dec`](State::ref_dec) take two.
    pub fn drop_join_interest_and_ref(&self) -> Release {
        let prev = Snapshot(self.0.fetch_sub(JOIN_INTEREST + REF_ONE, AcqRel));
        debug_assert!(
            prev.is(COMPLETE) && prev.is(JOIN_INTEREST) && !prev.is(JOIN_WAKER) && prev.refs() >= 1,
            "drop_join_interest_and_ref on {prev:?}"
        );
        if prev.refs() == 1 {
            Release::Dealloc
        } else {
            Release::Alive
        }
    }

    /// Handle drop: give up join interest.
    pub fn drop_join_interest(&self) -> DropJoin {
        self.update(|cur| {
            debug_assert!(cur & JOIN_INTEREST != 0);
            if cur & COMPLETE != 0 {
                let prev = self.0.fetch_and(!JOIN_INTEREST, AcqRel);
                return Err(DropJoin::Complete {
                    may_drop_waker: prev & JOIN_WAKER == 0,
                });
            }
            let next = cur & !(JOIN_INTEREST | JOIN_WAKER);
            let had_waker = cur & JOIN_WAKER != 0;
            Ok((next, DropJoin::Pending { had_waker }))
        })
    }
}

fn check_refs(cur: usize) {
    if cur >> REF_SHIFT > REF_MAX >> REF_SHIFT {
        // Like `Arc`: billions of leaked wakers; continuing would overflow.
        std::process::abort();
    }
}

#[cfg(test)]
mod tests;
