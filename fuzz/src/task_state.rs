//! The task state word (`task/state.rs`, through `coil::fuzz::state`)
//! against a reference machine.

use coil::fuzz::state::{
    CANCEL_STATE, CANCELLED, COMPLETE, DropJoin, FAILED, JOIN_INTEREST, JOIN_WAKER, Notify,
    RUNNING, Release, SCHEDULED, Snapshot, State, ToCancelled, ToIdle, ToRunning,
};

/// Every flag bit of the state word (the count starts above them).
const FLAGS: usize = CANCEL_STATE * 2 - 1;

use crate::Bytes;

/// Where the simulated loop thread is with the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not touching it (idle or queued).
    Idle,
    /// Between `transition_to_running` (or `_shutdown`) and completion.
    /// `poller`: the loop holds the popped queue reference (false at
    /// shutdown); `cancel`: the future is being dropped, not polled.
    Running { poller: bool, cancel: bool },
    /// `transition_to_complete` returned this snapshot; the join side
    /// (rules 5 and 6) is not handled yet.
    Completing { snap: Snapshot, poller: bool },
    /// Completion fully handled; the task left the owned list.
    Done,
    /// Running while queued (`state.rs`, the self-wake path): the poll woke
    /// its own task and returned `Pending`; the loop queued it again with
    /// `RUNNING` still set, and the poller's reference is the queue entry's.
    RunningQueued,
}

/// The reference machine: the spec's flags as plain booleans, and who holds
/// which reference, output and join-waker field.
#[derive(Debug)]
struct Model {
    scheduled: bool,
    running: bool,
    complete: bool,
    cancelled: bool,
    join_interest: bool,
    join_waker: bool,
    failed: bool,
    /// The task has a cancel-table entry (`cancel.rs`): set by a
    /// `cancel_with`, never cleared.
    cancel_state: bool,
    /// References: the owned list's, the handle's, one per queue entry, the
    /// poller's, one per waker clone.
    owned: bool,
    handle: bool,
    queue: usize,
    wakers: usize,
    phase: Phase,
    shut_down: bool,
    /// The stage holds an output nobody consumed yet.
    output: bool,
    /// The handle read the output (it reads at most once).
    output_read: bool,
    /// The join-waker field holds a waker (or the handle's taken marker).
    field: bool,
}

impl Model {
    fn refs(&self) -> usize {
        let poller = matches!(
            self.phase,
            Phase::Running { poller: true, .. } | Phase::Completing { poller: true, .. }
        );
        usize::from(self.owned)
            + usize::from(self.handle)
            + self.queue
            + usize::from(poller)
            + self.wakers
    }

    fn flags(&self) -> usize {
        [
            (self.scheduled, SCHEDULED),
            (self.running, RUNNING),
            (self.complete, COMPLETE),
            (self.cancelled, CANCELLED),
            (self.join_interest, JOIN_INTEREST),
            (self.join_waker, JOIN_WAKER),
            (self.failed, FAILED),
            (self.cancel_state, CANCEL_STATE),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, bit)| bit)
        .sum()
    }

    fn check(&self, state: &State, step: &str) {
        let snap = state.load();
        assert_eq!(
            snap.0 & FLAGS,
            self.flags(),
            "flags after {step}: state {snap:?}, model {self:?}"
        );
        assert_eq!(
            snap.refs(),
            self.refs(),
            "refs after {step}: model {self:?}"
        );
    }

    /// A wake (`res`) of a task neither complete nor scheduled: it is
    /// scheduled now, and gets a queue entry unless it is running.
    fn woken(&mut self, res: Notify) {
        self.scheduled = true;
        if self.running {
            assert_eq!(res, Notify::Nothing);
        } else {
            assert_eq!(res, Notify::Submit);
            self.queue += 1;
        }
    }

    fn consume_output(&mut self, who: &str) {
        assert!(
            self.output,
            "{who} consumed an output that is not there: {self:?}"
        );
        self.output = false;
    }

    /// A reference was released with `res`; returns true if the task is freed.
    fn released(&mut self, dealloc: bool) -> bool {
        assert_eq!(
            dealloc,
            self.refs() == 0,
            "dealloc iff no holder left: {self:?}"
        );
        if dealloc {
            assert!(
                self.complete && self.phase == Phase::Done,
                "freed early: {self:?}"
            );
            assert!(!self.output, "freed with an unconsumed output: {self:?}");
        }
        dealloc
    }
}

/// Bytes → an interleaving of everything that touches a task's state word:
/// the loop (pop, poll pending, complete, handle the join side, shutdown,
/// drain queues), wakers (clone, wake, wake by ref, drop), the handle
/// (cancel, register a join waker, read, drop). Each step runs only when the
/// protocol allows it (the actor holds what it needs). After every step the
/// state word must equal the reference machine, the refcount must equal the
/// number of holders, deallocation must come exactly when the last holder
/// leaves, the output must be consumed exactly once, and once both sides are
/// done the join-waker field must be empty (rule 6: no cycles through it).
pub fn task_state(data: &[u8]) {
    let mut b = Bytes(data);
    let state = State::new_spawned();
    let mut m = Model {
        scheduled: true,
        running: false,
        complete: false,
        cancelled: false,
        join_interest: true,
        join_waker: false,
        failed: false,
        cancel_state: false,
        owned: true,
        handle: true,
        queue: 1,
        wakers: 0,
        phase: Phase::Idle,
        shut_down: false,
        output: false,
        output_read: false,
        field: false,
    };
    m.check(&state, "spawn");
    while let Some(op) = b.u8() {
        let step = task_step(&state, &mut m, op);
        let Some(step) = step else { continue };
        if step == "dealloc" {
            // What `vtable::dealloc` reads to free the cancel-table entry.
            assert_eq!(state.load().is(CANCEL_STATE), m.cancel_state, "{m:?}");
            return;
        }
        m.check(&state, step);
        if m.complete && m.phase == Phase::Done && !m.join_interest && !m.join_waker {
            assert!(
                !m.field,
                "join waker left behind after both sides finished: {m:?}"
            );
        }
    }
}

/// Runs the step `op` if the protocol allows it. Returns its name, or
/// `"dealloc"` when the task was freed, or `None` if the step was skipped.
fn task_step(state: &State, m: &mut Model, op: u8) -> Option<&'static str> {
    let polling_with_waker = matches!(
        m.phase,
        Phase::Running {
            poller: true,
            cancel: false
        }
    );
    match op % 15 {
        // Loop: pop the task from the run queue. One that is running while
        // queued resumes with no write, unless a wake meanwhile set
        // SCHEDULED: the pop then clears it (this poll answers that wake),
        // as an ordinary pop does.
        0 if matches!(m.phase, Phase::Idle | Phase::RunningQueued)
            && m.queue > 0
            && !m.shut_down =>
        {
            let cancel = state.start_poll() == ToRunning::Cancel;
            assert_eq!(cancel, m.cancelled, "Cancel iff cancellation was requested");
            m.queue -= 1;
            m.scheduled = false;
            m.running = true;
            m.phase = Phase::Running {
                poller: true,
                cancel,
            };
            Some("pop")
        }
        // Loop: the poll returned Pending.
        1 if polling_with_waker => {
            let res = state.transition_to_idle();
            assert_eq!(
                res == ToIdle::Reschedule,
                m.scheduled,
                "reschedule iff woken"
            );
            m.running = false;
            m.phase = Phase::Idle;
            if res == ToIdle::Reschedule {
                m.queue += 1; // the poller's reference becomes the queue's
            }
            Some("idle")
        }
        // Loop: the future finished (or was dropped); store the output.
        2 if matches!(m.phase, Phase::Running { .. }) => {
            let Phase::Running { poller, cancel } = m.phase else {
                unreachable!()
            };
            assert!(!m.output && !m.complete);
            m.output = true;
            // The result is an error if the future was dropped (cancel) or
            // panicked (the byte's high half says so).
            let failed = cancel || op / 15 % 2 == 1;
            let snap = state.transition_to_complete(failed);
            m.complete = true;
            m.failed = failed;
            m.running = false;
            m.scheduled = false;
            assert_eq!(snap.0 & FLAGS, m.flags(), "completion snapshot");
            m.phase = Phase::Completing { snap, poller };
            Some("complete")
        }
        // Loop: the join side of completion (raw/vtable.rs `complete_join`), then
        // release the poller's and the owned list's references.
        3 => {
            let Phase::Completing { snap, poller } = m.phase else {
                return None;
            };
            if !snap.is(JOIN_INTEREST) {
                m.consume_output("runtime");
            } else if snap.is(JOIN_WAKER) {
                assert!(m.field, "JOIN_WAKER set with an empty field");
                let after = state.unset_join_waker_after_complete();
                m.join_waker = false;
                assert_eq!(after.is(JOIN_INTEREST), m.join_interest);
                if !after.is(JOIN_INTEREST) {
                    m.field = false; // the runtime drops it (rule 6)
                }
            }
            m.phase = Phase::Done;
            let n = if poller { 2 } else { 1 };
            m.owned = false;
            let dealloc = state.ref_dec(n) == Release::Dealloc;
            if m.released(dealloc) {
                return Some("dealloc");
            }
            Some("complete_join")
        }
        // Loop: runtime shutdown claims the task (idle or queued, also
        // running while queued).
        4 if matches!(m.phase, Phase::Idle | Phase::RunningQueued)
            && !m.complete
            && !m.shut_down =>
        {
            state.transition_to_shutdown();
            m.shut_down = true;
            m.running = true;
            m.cancelled = true;
            m.phase = Phase::Running {
                poller: false,
                cancel: true,
            };
            Some("shutdown")
        }
        // Loop: shutdown drains a queue entry without consulting the bit.
        5 if m.shut_down && m.phase == Phase::Done && m.queue > 0 => {
            m.queue -= 1;
            let dealloc = state.ref_dec(1) == Release::Dealloc;
            if m.released(dealloc) {
                return Some("dealloc");
            }
            Some("drain")
        }
        // Waker: wake_by_ref (an owned clone, or the borrowed one during poll).
        6 if m.wakers > 0 || polling_with_waker => {
            let res = state.transition_to_notified_by_ref();
            if m.complete || m.scheduled {
                assert_eq!(res, Notify::Nothing);
            } else {
                m.woken(res);
            }
            Some("wake_by_ref")
        }
        // Waker: wake by value.
        7 if m.wakers > 0 => {
            let res = state.transition_to_notified_by_val();
            m.wakers -= 1;
            if m.complete || m.scheduled {
                if m.released(res == Notify::Dealloc) {
                    return Some("dealloc");
                }
                assert_eq!(res, Notify::Nothing);
            } else {
                m.woken(res);
            }
            Some("wake")
        }
        // Waker: clone.
        8 if m.wakers > 0 || polling_with_waker => {
            state.ref_inc();
            m.wakers += 1;
            Some("clone")
        }
        // Waker: drop.
        9 if m.wakers > 0 => {
            m.wakers -= 1;
            let dealloc = state.ref_dec(1) == Release::Dealloc;
            if m.released(dealloc) {
                return Some("dealloc");
            }
            Some("drop_waker")
        }
        // Handle: cancel; with a message if the byte's high half says so
        // (`raw.rs` `abort`: unless the task finished or was cancelled, the
        // message's cancel-table entry is inserted, `CANCEL_STATE` set,
        // before the transition).
        10 if m.handle => {
            if op / 15 % 2 == 1 {
                let snap = state.load();
                if snap.is(COMPLETE) || snap.is(CANCELLED) {
                    assert!(m.complete || m.cancelled);
                    return Some("cancel_with_refused");
                }
                state.mark_cancel_state();
                m.cancel_state = true;
            }
            let res = state.transition_to_cancelled();
            if m.complete || m.cancelled {
                assert_eq!(res, ToCancelled::AlreadyDone);
            } else if m.running || m.scheduled {
                assert_eq!(res, ToCancelled::Marked);
                m.cancelled = true;
                m.scheduled = true;
            } else {
                assert_eq!(res, ToCancelled::Submit);
                m.cancelled = true;
                m.scheduled = true;
                m.queue += 1;
            }
            Some("cancel")
        }
        // Handle: poll with a waker (raw/vtable.rs `can_read_output`), or without one.
        11 | 12 if m.handle && !m.output_read => {
            let with_waker = op % 15 == 11;
            let mut read = state.load().is(COMPLETE);
            assert_eq!(read, m.complete);
            if !read && with_waker {
                if m.join_waker {
                    match state.unset_join_waker() {
                        Ok(()) => m.join_waker = false,
                        Err(_) => read = true,
                    }
                }
                if !read {
                    // JOIN_WAKER is clear: the handle owns the field (rule 6).
                    assert!(!m.join_waker);
                    m.field = true;
                    match state.set_join_waker() {
                        Ok(()) => m.join_waker = true,
                        Err(_) => read = true,
                    }
                }
            }
            if read {
                assert!(m.complete);
                m.consume_output("handle read");
                m.output_read = true;
                if m.join_waker {
                    // The loop is still waking the join waker: the handle
                    // gives up its interest at once, so that "taken" is
                    // known without the field (raw/vtable.rs
                    // `try_read_output`).
                    let DropJoin::Complete { may_drop_waker } = state.drop_join_interest() else {
                        panic!("drop_join_interest after COMPLETE said Pending");
                    };
                    assert!(!may_drop_waker);
                    m.join_interest = false;
                } else {
                    // The field is the handle's for good: it holds the
                    // taken marker now, dropped with the handle.
                    m.field = true;
                }
            }
            Some("handle_poll")
        }
        // Handle: drop.
        13 if m.handle && !m.join_interest => {
            // It gave up its interest when it read the output: only its
            // reference is left.
            assert!(m.output_read);
            m.handle = false;
            let dealloc = state.ref_dec(1) == Release::Dealloc;
            if m.released(dealloc) {
                return Some("dealloc");
            }
            Some("drop_handle_after_read")
        }
        13 if m.handle => {
            match state.drop_join_interest() {
                DropJoin::Pending { had_waker } => {
                    assert!(!m.complete);
                    assert_eq!(had_waker, m.join_waker);
                    m.join_waker = false;
                    if had_waker {
                        m.field = false;
                    }
                }
                DropJoin::Complete { may_drop_waker } => {
                    assert!(m.complete);
                    assert_eq!(may_drop_waker, !m.join_waker);
                    if !m.output_read {
                        m.consume_output("handle drop");
                    }
                    if may_drop_waker {
                        m.field = false;
                    }
                }
            }
            m.join_interest = false;
            m.handle = false;
            let dealloc = state.ref_dec(1) == Release::Dealloc;
            if m.released(dealloc) {
                return Some("dealloc");
            }
            Some("drop_handle")
        }
        // Loop: the poll woke its own task (`yield_now`) and returned
        // Pending: the self-wake path queues it again, no transition.
        14 if polling_with_waker => {
            m.phase = Phase::RunningQueued;
            m.queue += 1; // the poller's reference becomes the queue's
            Some("self_wake_requeue")
        }
        _ => None,
    }
}
