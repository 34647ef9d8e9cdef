//! Unit tests of the state word: each transition, the reference count and
//! the join-side protocol, one thread at a time (the interleavings are the
//! loom models' job: `task/state_loom.rs`).

use super::*;

fn refs(s: &State) -> usize {
    s.load().refs()
}

#[test]
fn spawn_poll_idle_wake_complete() {
    let s = State::new_spawned();
    assert_eq!(refs(&s), 3);
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    assert_eq!(s.transition_to_idle(), ToIdle::Idle);
    assert_eq!(refs(&s), 2, "queue ref released on idle");
    assert_eq!(s.transition_to_notified_by_ref(), Notify::Submit);
    assert_eq!(refs(&s), 3);
    assert_eq!(
        s.transition_to_notified_by_ref(),
        Notify::Nothing,
        "already scheduled"
    );
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    let snap = s.transition_to_complete(false);
    assert!(snap.is(COMPLETE) && !snap.is(RUNNING) && !snap.is(SCHEDULED));
    assert!(!snap.is(FAILED), "an output, not an error");
    assert_eq!(
        s.transition_to_notified_by_ref(),
        Notify::Nothing,
        "complete"
    );
    assert_eq!(s.ref_dec(2), Release::Alive);
    assert_eq!(
        s.drop_join_interest(),
        DropJoin::Complete {
            may_drop_waker: true
        }
    );
    assert_eq!(s.ref_dec(1), Release::Dealloc);
}

#[test]
fn handle_drop_after_complete_releases_interest_and_ref_at_once() {
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    let snap = s.transition_to_complete(false);
    assert!(snap.is(JOIN_INTEREST) && !snap.is(JOIN_WAKER));
    s.ref_inc(); // a waker clone that outlives the handle
    assert_eq!(s.ref_dec(2), Release::Alive, "poller's and list's refs");
    assert_eq!(s.drop_join_interest_and_ref(), Release::Alive);
    let after = s.load();
    assert!(after.is(COMPLETE) && !after.is(JOIN_INTEREST) && !after.is(JOIN_WAKER));
    assert_eq!(after.refs(), 1, "the waker's");
    assert_eq!(s.ref_dec(1), Release::Dealloc);

    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    let _ = s.transition_to_complete(false);
    assert_eq!(s.ref_dec(2), Release::Alive);
    assert_eq!(
        s.drop_join_interest_and_ref(),
        Release::Dealloc,
        "the handle's was the last"
    );
}

#[test]
fn wake_while_running_reschedules_without_new_ref() {
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    assert_eq!(s.transition_to_notified_by_ref(), Notify::Nothing);
    assert_eq!(refs(&s), 3, "no ref taken while running");
    assert_eq!(s.transition_to_idle(), ToIdle::Reschedule);
    assert_eq!(refs(&s), 3, "poller's ref became the queue ref");
    assert!(s.load().is(SCHEDULED));
}

#[test]
fn wake_by_val_consumes_ref() {
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    s.ref_inc(); // a waker clone
    assert_eq!(s.transition_to_idle(), ToIdle::Idle);
    assert_eq!(refs(&s), 3);
    assert_eq!(s.transition_to_notified_by_val(), Notify::Submit);
    assert_eq!(refs(&s), 3, "the waker's ref is now the queue ref");
    s.ref_inc();
    assert_eq!(s.transition_to_notified_by_val(), Notify::Nothing);
    assert_eq!(refs(&s), 3);
}

#[test]
fn last_wake_by_val_deallocates() {
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    s.ref_inc();
    let _ = s.transition_to_complete(false);
    assert_eq!(s.ref_dec(2), Release::Alive);
    assert!(matches!(s.drop_join_interest(), DropJoin::Complete { .. }));
    assert_eq!(s.ref_dec(1), Release::Alive);
    assert_eq!(s.transition_to_notified_by_val(), Notify::Dealloc);
}

#[test]
fn cancel_idle_takes_queue_ref() {
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    assert_eq!(s.transition_to_idle(), ToIdle::Idle);
    assert_eq!(s.transition_to_cancelled(), ToCancelled::Submit);
    assert_eq!(
        s.transition_to_cancelled(),
        ToCancelled::AlreadyDone,
        "idempotent"
    );
    assert_eq!(refs(&s), 3);
    assert_eq!(s.transition_to_running(), ToRunning::Cancel);
}

#[test]
fn cancel_while_running_reschedules() {
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    assert_eq!(s.transition_to_cancelled(), ToCancelled::Marked);
    assert_eq!(s.transition_to_idle(), ToIdle::Reschedule);
    assert_eq!(s.transition_to_running(), ToRunning::Cancel);
}

#[test]
fn join_waker_protocol() {
    let s = State::new_spawned();
    assert!(s.set_join_waker().is_ok());
    assert!(s.unset_join_waker().is_ok());
    assert!(s.set_join_waker().is_ok());
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    let snap = s.transition_to_complete(false);
    assert!(snap.is(JOIN_WAKER));
    assert!(
        s.unset_join_waker().is_err(),
        "complete: field belongs to the runtime"
    );
    let after = s.unset_join_waker_after_complete();
    assert!(after.is(JOIN_INTEREST) && !after.is(JOIN_WAKER));
    assert_eq!(
        s.drop_join_interest(),
        DropJoin::Complete {
            may_drop_waker: true
        }
    );
}

#[test]
fn drop_join_before_complete_takes_waker_back() {
    let s = State::new_spawned();
    assert!(s.set_join_waker().is_ok());
    assert_eq!(
        s.drop_join_interest(),
        DropJoin::Pending { had_waker: true }
    );
    let snap = s.load();
    assert!(!snap.is(JOIN_INTEREST) && !snap.is(JOIN_WAKER));
}

#[test]
fn handle_drop_racing_completion_wake() {
    // Runtime completes (JOIN_WAKER set), handle drops before the runtime
    // gave the field back: the runtime must drop the waker.
    let s = State::new_spawned();
    assert!(s.set_join_waker().is_ok());
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    let _ = s.transition_to_complete(false);
    assert_eq!(
        s.drop_join_interest(),
        DropJoin::Complete {
            may_drop_waker: false
        }
    );
    let after = s.unset_join_waker_after_complete();
    assert!(
        !after.is(JOIN_INTEREST),
        "runtime sees no interest: it drops the waker"
    );
}

#[test]
fn shutdown_claims_queued_task() {
    let s = State::new_spawned();
    s.transition_to_shutdown();
    assert_eq!(s.transition_to_notified_by_ref(), Notify::Nothing);
    let snap = s.transition_to_complete(false);
    assert!(snap.is(COMPLETE));
    assert_eq!(s.transition_to_cancelled(), ToCancelled::AlreadyDone);
}

/// The self-wake path (`state.rs`): a poll that woke itself leaves the word
/// alone and the next pop resumes with no write; a wake or a cancel that
/// arrives meanwhile sees RUNNING, sets SCHEDULED only, and the next pop
/// takes it (one poll answers it, no spurious second one).
#[test]
fn running_while_queued() {
    let s = State::new_spawned();
    assert_eq!(s.start_poll(), ToRunning::Poll);
    let before = s.load();
    // Woke itself: queued again with RUNNING set, no transition.
    assert_eq!(s.start_poll(), ToRunning::Poll);
    assert_eq!(s.load(), before, "resuming writes nothing");
    assert_eq!(s.transition_to_notified_by_ref(), Notify::Nothing);
    assert!(s.load().is(SCHEDULED) && s.load().is(RUNNING));
    assert_eq!(refs(&s), 3, "no second queue reference");
    // The next pop answers that wake (it clears SCHEDULED), so the poll's
    // Pending does not queue a second, spurious poll.
    assert_eq!(s.start_poll(), ToRunning::Poll);
    assert!(!s.load().is(SCHEDULED), "the pop took the wake");
    assert_eq!(s.transition_to_idle(), ToIdle::Idle);
    // Woken again: an ordinary pop.
    assert_eq!(s.transition_to_notified_by_ref(), Notify::Submit);
    assert_eq!(s.start_poll(), ToRunning::Poll);
    assert!(!s.load().is(SCHEDULED), "an ordinary pop again");
    // A cancel while running while queued: the next pop drops the future.
    assert_eq!(s.transition_to_cancelled(), ToCancelled::Marked);
    assert_eq!(s.start_poll(), ToRunning::Cancel);
    let snap = s.transition_to_complete(false);
    assert!(!snap.is(RUNNING) && !snap.is(SCHEDULED));
}

/// Shutdown may claim a task that is running while queued; its queue entry
/// keeps the reference until the queues are drained (rule 8).
#[test]
fn shutdown_claims_running_while_queued() {
    let s = State::new_spawned();
    assert_eq!(s.start_poll(), ToRunning::Poll);
    s.transition_to_shutdown();
    let snap = s.transition_to_complete(false);
    assert!(snap.is(COMPLETE) && snap.is(CANCELLED) && !snap.is(RUNNING));
    assert_eq!(s.ref_dec(1), Release::Alive, "owned list");
    assert_eq!(s.ref_dec(1), Release::Alive, "queue entry");
    assert_eq!(refs(&s), 1, "the handle's");
}

/// The stage has no tag (`raw.rs`): `FAILED` says which result it holds.
/// It comes with `COMPLETE` (a failed completion, or a task allocated
/// cancelled), in the same write, and nothing clears it afterwards.
#[test]
fn failed_is_set_with_complete_and_stays() {
    let s = State::new_spawned();
    assert!(!s.load().is(FAILED));
    assert_eq!(s.transition_to_cancelled(), ToCancelled::Marked);
    assert_eq!(s.transition_to_running(), ToRunning::Cancel);
    assert!(!s.load().is(FAILED), "not before COMPLETE");
    let snap = s.transition_to_complete(true);
    assert!(snap.is(COMPLETE) && snap.is(FAILED));
    assert_eq!(s.load(), snap);
    assert_eq!(s.transition_to_notified_by_ref(), Notify::Nothing);
    assert_eq!(s.ref_dec(2), Release::Alive);
    assert!(s.load().is(FAILED));
    assert_eq!(
        s.drop_join_interest(),
        DropJoin::Complete {
            may_drop_waker: true
        }
    );
    assert!(s.load().is(FAILED), "the handle's drop leaves it");
    assert_eq!(s.ref_dec(1), Release::Dealloc);

    let s = State::new_complete();
    let snap = s.load();
    assert!(snap.is(COMPLETE) && snap.is(FAILED) && snap.is(JOIN_INTEREST));
    assert_eq!(snap.refs(), 1);
}

/// `FAILED` sits below the reference count: many references leave it and
/// the other flags alone.
#[test]
fn failed_bit_is_not_part_of_the_refcount() {
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    let _ = s.transition_to_complete(true);
    for _ in 0..1000 {
        s.ref_inc();
    }
    assert_eq!(s.load().refs(), 1003);
    assert_eq!(s.ref_dec(1000), Release::Alive);
    let snap = s.load();
    assert_eq!(snap.refs(), 3);
    assert!(snap.is(FAILED) && snap.is(COMPLETE) && snap.is(JOIN_INTEREST));
    assert_eq!(snap.0 & (REF_ONE - 1), COMPLETE | FAILED | JOIN_INTEREST);
}

/// `CANCEL_STATE` and `COOPERATIVE` sit below the count: setting them leaves
/// the count alone, and no transition or reference change of a task's life
/// clears them (a lost `COOPERATIVE` would turn a request into a hard
/// cancel; a lost `CANCEL_STATE` would leak the table entry).
#[test]
fn cancel_flags_survive_every_transition_and_count() {
    let s = State::new_spawned();
    s.mark_cancel_state();
    s.mark_cooperative();
    assert_eq!(refs(&s), 3, "the flags are not counted");
    let both = |s: &State| s.load().is(CANCEL_STATE) && s.load().is(COOPERATIVE);
    s.ref_inc();
    assert_eq!(refs(&s), 4);
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    assert_eq!(s.transition_to_idle(), ToIdle::Idle);
    assert!(both(&s));
    assert_eq!(s.transition_to_cancelled(), ToCancelled::Submit);
    assert_eq!(s.transition_to_running(), ToRunning::Cancel);
    let snap = s.transition_to_complete(true);
    assert!(snap.is(COMPLETE) && snap.is(FAILED) && both(&s));
    assert_eq!(refs(&s), 4);
    assert_eq!(s.ref_dec(3), Release::Alive);
    assert!(both(&s));
    assert!(matches!(s.drop_join_interest(), DropJoin::Complete { .. }));
    assert_eq!(s.ref_dec(1), Release::Dealloc);
    assert!(both(&s), "still readable by the deallocation");
}

#[test]
fn complete_releasing_releases_only_when_the_join_side_needs_nothing() {
    // A live handle without a published waker: the two references go with
    // the completion, the handle's stays and is the last.
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    let (snap, released) = s.transition_to_complete_releasing();
    assert!(released);
    assert!(snap.is(COMPLETE) && !snap.is(RUNNING) && !snap.is(SCHEDULED) && !snap.is(FAILED));
    assert_eq!(snap.refs(), 1, "the handle's");
    assert_eq!(s.load(), snap);
    assert_eq!(s.drop_join_interest_and_ref(), Release::Dealloc);

    // A wake during the last poll: SCHEDULED is cleared, as by
    // `transition_to_complete`, and the references still go.
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    assert_eq!(s.transition_to_notified_by_ref(), Notify::Nothing);
    let (snap, released) = s.transition_to_complete_releasing();
    assert!(released && !snap.is(SCHEDULED) && snap.refs() == 1);

    // A published join waker: the loop must still wake it, so nothing is
    // released (the caller completes the join side, then releases two).
    let s = State::new_spawned();
    assert!(s.set_join_waker().is_ok());
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    let (snap, released) = s.transition_to_complete_releasing();
    assert!(!released && snap.is(JOIN_WAKER) && snap.refs() == 3);

    // No handle: the loop drops the output, nothing is released with it.
    let s = State::new_spawned();
    assert_eq!(s.transition_to_running(), ToRunning::Poll);
    assert!(matches!(
        s.drop_join_interest(),
        DropJoin::Pending { had_waker: false }
    ));
    let (snap, released) = s.transition_to_complete_releasing();
    assert!(!released && !snap.is(JOIN_INTEREST) && snap.refs() == 3);
    assert_eq!(s.ref_dec(2), Release::Alive);
    assert_eq!(s.ref_dec(1), Release::Dealloc);
}
