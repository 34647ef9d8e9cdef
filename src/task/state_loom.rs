//! Loom models of the task state word (docs/reliability.md, check 1).
//!
//! They drive [`State`] directly, without a runtime: each thread plays one
//! actor of `task/mod.rs` (the loop thread, a waker on another thread, the
//! `Task` handle) and performs exactly the transitions that actor performs in
//! `raw.rs` and `raw/vtable.rs`, `join.rs` and `waker.rs`. The run queue is modelled by counting
//! the outcomes that create a queue entry (`Notify::Submit`,
//! `ToCancelled::Submit`, `ToIdle::Reschedule`, and a self-woken poll's
//! requeue, [`Ends::WokeSelf`]); the output and the join-waker
//! field are loom `UnsafeCell`s, so an access that rules 5 and 6 do not order
//! is reported by loom as a data race.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p coil --lib
//! --release state_loom`.

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::Relaxed;
use loom::thread;

use super::state::{
    CANCEL_STATE, CANCELLED, COMPLETE, DropJoin, JOIN_INTEREST, JOIN_WAKER, Notify, RUNNING,
    Release, SCHEDULED, State, ToCancelled, ToIdle, ToRunning,
};

/// One task as the models see it: the state word, the stage's output slot,
/// the join-waker field and its entry in the runtime's cancel table
/// (`cancel.rs`; inserted by `cancel_with`, freed by the deallocation when
/// `CANCEL_STATE` says it exists).
struct Task {
    state: State,
    output: UnsafeCell<Option<u32>>,
    join_waker: UnsafeCell<Option<u32>>,
    entry: UnsafeCell<Option<u32>>,
}

impl Task {
    fn new(state: State) -> Arc<Task> {
        Arc::new(Task {
            state,
            output: UnsafeCell::new(None),
            join_waker: UnsafeCell::new(None),
            entry: UnsafeCell::new(None),
        })
    }
}

/// What one thread did, summed over all threads at the end.
#[derive(Default, Debug, Clone, Copy)]
struct Outcomes {
    /// Queue entries created (Submit or Reschedule).
    queued: usize,
    /// Deallocations (last reference released).
    dealloc: usize,
    /// Outputs consumed (read by the handle or dropped by either side).
    outputs: usize,
    /// Join wakers dropped.
    join_wakers: usize,
    /// Futures dropped (cancel or completion).
    futures: usize,
    /// Cancel-table entries freed (by the deallocation).
    entries: usize,
}

impl std::ops::Add for Outcomes {
    type Output = Outcomes;
    fn add(self, o: Outcomes) -> Outcomes {
        Outcomes {
            queued: self.queued + o.queued,
            dealloc: self.dealloc + o.dealloc,
            outputs: self.outputs + o.outputs,
            join_wakers: self.join_wakers + o.join_wakers,
            futures: self.futures + o.futures,
            entries: self.entries + o.entries,
        }
    }
}

/// Empties `cell`; whether it held something.
///
/// # Safety
/// The caller may access `cell` exclusively now (the rule its call site cites).
unsafe fn take(cell: &UnsafeCell<Option<u32>>) -> bool {
    // SAFETY: exclusive access is the caller's promise.
    cell.with_mut(|p| unsafe { (*p).take() }).is_some()
}

/// Stores `v` in `cell`; whether it held something before.
///
/// # Safety
/// As for [`take`].
unsafe fn put(cell: &UnsafeCell<Option<u32>>, v: u32) -> bool {
    // SAFETY: exclusive access is the caller's promise.
    cell.with_mut(|p| unsafe { (*p).replace(v) }).is_some()
}

/// The handle's taken marker in the join-waker cell (`raw/vtable.rs`
/// `try_read_output`); a real waker is any other value.
const TAKEN: u32 = 0;

/// Empties the join-waker `cell`; whether it held a real waker (not the
/// taken marker).
///
/// # Safety
/// As for [`take`].
unsafe fn take_waker(cell: &UnsafeCell<Option<u32>>) -> bool {
    // SAFETY: exclusive access is the caller's promise.
    cell.with_mut(|p| unsafe { (*p).take() })
        .is_some_and(|v| v != TAKEN)
}

/// Whether `cell` holds something.
///
/// # Safety
/// The caller may read `cell` now (no concurrent write).
unsafe fn holds(cell: &UnsafeCell<Option<u32>>) -> bool {
    // SAFETY: shared access is the caller's promise.
    cell.with(|p| unsafe { (*p).is_some() })
}

fn release(task: &Task, n: usize, out: &mut Outcomes) {
    if task.state.ref_dec(n) == Release::Dealloc {
        freed(task, out);
    }
}

/// The last reference is gone (`raw/vtable.rs` `dealloc`): the task's
/// cancel-table entry is freed if `CANCEL_STATE` is set, and exists iff it
/// is (loom reports the access as a race if the deallocating thread is not
/// ordered after the one that inserted the entry).
fn freed(task: &Task, out: &mut Outcomes) {
    out.dealloc += 1;
    let marked = task.state.load().is(CANCEL_STATE);
    // SAFETY: no reference is left: nobody else touches the entry.
    let had = unsafe { take(&task.entry) };
    assert_eq!(had, marked, "CANCEL_STATE and the entry disagree");
    out.entries += usize::from(had);
}

/// Loop thread: store the output and complete, then the join side
/// (`raw/vtable.rs` `finish` + `complete_join`), then release the poller's and the
/// owned list's references. `polled`: the completion of a poll that
/// returned `Ready` (`finish_polled`), which releases those two references
/// with the completion when the join side needs nothing and then never
/// touches the task again; else a cancelled task's (`fail`).
fn complete(task: &Task, out: &mut Outcomes, polled: bool) {
    out.futures += 1;
    // SAFETY: RUNNING is held by this thread and COMPLETE is not set yet, so
    // nobody else touches the stage (rules 1 and 5).
    unsafe { put(&task.output, 7) };
    let snap = if polled {
        let (snap, released) = task.state.transition_to_complete_releasing();
        if released {
            return;
        }
        snap
    } else {
        task.state.transition_to_complete(false)
    };
    if !snap.is(JOIN_INTEREST) {
        // SAFETY: rule 5: no handle at completion, the output is the runtime's.
        if unsafe { take(&task.output) } {
            out.outputs += 1;
        }
    } else if snap.is(JOIN_WAKER) {
        // SAFETY: rule 6: JOIN_WAKER and COMPLETE are set; the field is ours to read.
        let present = unsafe { holds(&task.join_waker) };
        assert!(present, "JOIN_WAKER set over an empty field");
        let after = task.state.unset_join_waker_after_complete();
        if !after.is(JOIN_INTEREST) {
            // SAFETY: rule 6: the handle is gone and left the field to us.
            if unsafe { take(&task.join_waker) } {
                out.join_wakers += 1;
            }
        }
    }
    release(task, 2, out);
}

/// How a modelled poll ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ends {
    /// `Pending`, without waking itself.
    Pending,
    /// `Pending` after waking itself on the loop thread (`yield_now`): the
    /// self-wake path queues it again running while queued, with no write
    /// to the word (`state.rs`).
    WokeSelf,
    /// `Ready`: the task completes.
    Ready,
}

/// Loop thread: pop the task (holding its queue reference) and poll it once;
/// `pending` says what the future returns. `seen` reads the message the
/// waker publishes, to show what this poll observed.
fn pop_and_poll(task: &Task, pending: bool, msg: &AtomicUsize, out: &mut Outcomes) -> usize {
    let ends = if pending { Ends::Pending } else { Ends::Ready };
    pop_and_poll_as(task, ends, msg, out)
}

/// [`pop_and_poll`] with any [`Ends`]: the steps of `raw/vtable.rs` `poll`
/// (`start_poll`, then `transition_to_idle` unless the task woke itself).
fn pop_and_poll_as(task: &Task, ends: Ends, msg: &AtomicUsize, out: &mut Outcomes) -> usize {
    match task.state.start_poll() {
        ToRunning::Cancel => {
            complete(task, out, false);
            usize::MAX
        }
        ToRunning::Poll => {
            let seen = msg.load(Relaxed);
            match ends {
                Ends::Pending => {
                    if task.state.transition_to_idle() == ToIdle::Reschedule {
                        out.queued += 1;
                    }
                }
                Ends::WokeSelf => out.queued += 1,
                Ends::Ready => complete(task, out, true),
            }
            seen
        }
    }
}

/// Handle: `Task::drop` (`join.rs`), with its fast path for a task seen
/// complete with `JOIN_WAKER` clear, and its shortest path for a handle
/// that gave up its interest when it read the output.
fn drop_handle(task: &Task, out: &mut Outcomes) {
    let snap = task.state.load();
    if !snap.is(JOIN_INTEREST) {
        release(task, 1, out);
        return;
    }
    if snap.is(COMPLETE) && !snap.is(JOIN_WAKER) {
        // SAFETY: rules 5 and 6: COMPLETE seen with JOIN_WAKER clear, both
        // cells are the handle's.
        let taken = unsafe { task.join_waker.with(|p| *p == Some(TAKEN)) };
        if !taken {
            // SAFETY: as above; the output is the handle's and not taken,
            // so it must still be there.
            assert!(unsafe { take(&task.output) }, "output gone untaken");
            out.outputs += 1;
        }
        // SAFETY: as above.
        if unsafe { take_waker(&task.join_waker) } {
            out.join_wakers += 1;
        }
        // `release_join_complete`: the only reference left is the handle's,
        // so it frees the task without a write; else the one RMW.
        if task.state.load().refs() == 1
            || task.state.drop_join_interest_and_ref() == Release::Dealloc
        {
            freed(task, out);
        }
        return;
    }
    match task.state.drop_join_interest() {
        DropJoin::Pending { had_waker } => {
            if had_waker {
                // SAFETY: rule 6: we cleared JOIN_WAKER before COMPLETE.
                if unsafe { take_waker(&task.join_waker) } {
                    out.join_wakers += 1;
                }
            }
        }
        DropJoin::Complete { may_drop_waker } => {
            // A handle that took the output saw COMPLETE and either marked
            // the field (the fast path above) or gave up its interest (the
            // first branch).
            // SAFETY: rule 5: COMPLETE seen by the handle; the output is
            // ours, and not taken (above).
            let taken = unsafe { take(&task.output) };
            assert!(taken, "output gone untaken");
            out.outputs += 1;
            if may_drop_waker {
                // SAFETY: rule 6: the runtime is done with the field.
                if unsafe { take_waker(&task.join_waker) } {
                    out.join_wakers += 1;
                }
            }
        }
    }
    release(task, 1, out);
}

/// Handle: poll the `Task` with a waker (`raw/vtable.rs` `can_read_output`
/// and `try_read_output`); reads the output if the task is complete and
/// records that it did: the taken marker in the join-waker cell if that is
/// the handle's (`JOIN_WAKER` clear), else by giving up join interest.
fn poll_handle(task: &Task, out: &mut Outcomes) {
    let mut seen = None;
    let snap = task.state.load();
    if snap.is(COMPLETE) {
        seen = Some(snap);
    } else {
        if snap.is(JOIN_WAKER) {
            seen = task.state.unset_join_waker().err();
        }
        if seen.is_none() {
            // SAFETY: rule 6: JOIN_WAKER is clear, the field is the handle's.
            if unsafe { put(&task.join_waker, 1) } {
                out.join_wakers += 1;
            }
            seen = task.state.set_join_waker().err();
        }
    }
    let Some(snap) = seen else { return };
    // SAFETY: rule 5: COMPLETE observed (Acquire) with join interest held.
    if unsafe { take(&task.output) } {
        out.outputs += 1;
    }
    if !snap.is(JOIN_WAKER) {
        // SAFETY: rule 6: COMPLETE with JOIN_WAKER clear: the field is the
        // handle's for good.
        let old = unsafe { task.join_waker.with_mut(|p| (*p).replace(TAKEN)) };
        if old.is_some() {
            out.join_wakers += 1;
        }
    } else {
        let DropJoin::Complete { may_drop_waker } = task.state.drop_join_interest() else {
            panic!("Pending after COMPLETE was seen");
        };
        if may_drop_waker {
            // SAFETY: rule 6: the loop cleared JOIN_WAKER and saw the
            // interest set: the field is the handle's to drop.
            if unsafe { take_waker(&task.join_waker) } {
                out.join_wakers += 1;
            }
        }
    }
}

fn join(h: thread::JoinHandle<Outcomes>) -> Outcomes {
    h.join().unwrap()
}

/// A waker's wake (`waker.rs`): records the queue entry or the
/// deallocation its outcome asks for. The models assert afterwards which of
/// them could happen.
fn record_wake(task: &Task, res: Notify, out: &mut Outcomes) {
    match res {
        Notify::Submit => out.queued += 1,
        Notify::Nothing => {}
        Notify::Dealloc => freed(task, out),
    }
}

/// Thread B: a waker holding its own reference wakes by value.
fn spawn_wake_by_val(task: &Arc<Task>) -> thread::JoinHandle<Outcomes> {
    let t = task.clone();
    thread::spawn(move || {
        let mut out = Outcomes::default();
        record_wake(&t, t.state.transition_to_notified_by_val(), &mut out);
        out
    })
}

/// Thread A, the loop: pops the task and polls it once (`pop_and_poll`).
fn spawn_poll(
    task: &Arc<Task>,
    pending: bool,
    msg: &Arc<AtomicUsize>,
) -> thread::JoinHandle<Outcomes> {
    let (t, m) = (task.clone(), msg.clone());
    thread::spawn(move || {
        let mut out = Outcomes::default();
        let _ = pop_and_poll(&t, pending, &m, &mut out);
        out
    })
}

/// How models (c) and (d) start: a task with a waker's reference, thread B
/// waking it by value and thread A (the loop) popping and polling it once
/// (`pending`: the poll returns Pending, else the task completes). Returns
/// the task, the message A reads, and a call that joins both threads.
fn wake_racing_poll(pending: bool) -> (Arc<Task>, Arc<AtomicUsize>, impl FnOnce() -> Outcomes) {
    let task = Task::new(State::new_spawned());
    task.state.ref_inc(); // B's waker
    let msg = Arc::new(AtomicUsize::new(0));
    let waker = spawn_wake_by_val(&task);
    let lp = spawn_poll(&task, pending, &msg);
    (task, msg, move || join(waker) + join(lp))
}

/// The loop runs the `queued` entries, and those their polls create, with
/// polls that return Pending; adds what they did to `total` and returns
/// what each poll saw, in order.
fn drain(task: &Task, msg: &AtomicUsize, mut queued: usize, total: &mut Outcomes) -> Vec<usize> {
    let mut seen = Vec::new();
    while queued > 0 {
        let mut o = Outcomes::default();
        seen.push(pop_and_poll(task, true, msg, &mut o));
        queued = queued - 1 + o.queued;
        *total = *total + o;
    }
    seen
}

/// A new task whose waker thread B publishes a message (1) and then wakes
/// it: by value, or by reference and then drops the waker (`by_val`).
/// Returns the task, the message and B.
fn spawn_publishing_waker(
    by_val: bool,
) -> (Arc<Task>, Arc<AtomicUsize>, thread::JoinHandle<Outcomes>) {
    let task = Task::new(State::new_spawned());
    task.state.ref_inc(); // B's waker
    let msg = Arc::new(AtomicUsize::new(0));
    let (t, m) = (task.clone(), msg.clone());
    let waker = thread::spawn(move || {
        let mut out = Outcomes::default();
        m.store(1, Relaxed);
        if by_val {
            record_wake(&t, t.state.transition_to_notified_by_val(), &mut out);
        } else {
            record_wake(&t, t.state.transition_to_notified_by_ref(), &mut out);
            release(&t, 1, &mut out);
        }
        out
    });
    (task, msg, waker)
}

/// (a), (b): a waker on thread B wakes the task while the loop (thread A)
/// polls it and the poll returns Pending. After both: at most one queue
/// entry exists; if A's poll did not see B's message the task must be queued
/// (else the wake is lost); the main thread then runs every queued poll and
/// the last poll must see the message. `by_val` picks `wake` or
/// `wake_by_ref` + drop.
fn wake_while_polling(by_val: bool) {
    loom::model(move || {
        let (task, msg, waker) = spawn_publishing_waker(by_val);
        let mut a = Outcomes::default();
        let seen = pop_and_poll(&task, true, &msg, &mut a);
        let total = a + join(waker);
        assert_wake_landed(&task, &msg, seen, total.queued, total);
    });
}

/// After a poll that saw `seen` and a wake that published 1, with `left`
/// queue entries: no reference was freed, at most one entry exists and it
/// exists if the poll missed the message (else the wake was lost), the bits
/// agree; then (b) the queued polls run and the last one sees the message,
/// leaving the owned list's and the handle's references.
fn assert_wake_landed(
    task: &Task,
    msg: &AtomicUsize,
    seen: usize,
    left: usize,
    mut total: Outcomes,
) {
    assert_eq!(total.dealloc, 0, "owned list and handle hold references");
    assert!(left <= 1, "queued twice: {total:?}");
    if seen == 0 {
        assert_eq!(left, 1, "a wake after the poll began was lost");
    }
    assert_eq!(task.state.load().is(SCHEDULED), left == 1);
    assert!(!task.state.load().is(RUNNING));
    let later = drain(task, msg, left, &mut total);
    let last_seen = later.last().copied().unwrap_or(seen);
    assert_eq!(last_seen, 1, "no poll after the wake saw its message");
    assert_eq!(task.state.load().refs(), 2);
}

#[test]
fn wake_by_val_while_polling() {
    wake_while_polling(true);
}

#[test]
fn wake_by_ref_while_polling() {
    wake_while_polling(false);
}

/// (c): the loop completes the task while a waker on thread B wakes it by
/// value and the handle is dropped on the main thread. Wakes after
/// completion do nothing; the last release deallocates exactly once,
/// whichever thread it is on; the output is consumed exactly once.
#[test]
fn wake_after_completion_and_last_ref() {
    loom::model(|| {
        let (task, _msg, threads) = wake_racing_poll(false);
        let mut h = Outcomes::default();
        drop_handle(&task, &mut h);
        let total = h + threads();
        assert_eq!(total.dealloc, 1, "{total:?}");
        assert_eq!(total.outputs, 1, "{total:?}");
        assert_eq!(
            total.queued, 0,
            "a queued, running or complete task was queued again: {total:?}"
        );
        assert_eq!(task.state.load().refs(), 0);
    });
}

/// The handle cancels a live task (`Task::cancel`); the queue entry its
/// outcome creates, if any.
fn cancel_from_handle(task: &Task) -> Outcomes {
    let mut h = Outcomes::default();
    match task.state.transition_to_cancelled() {
        ToCancelled::Submit => h.queued += 1,
        ToCancelled::Marked => {}
        ToCancelled::AlreadyDone => panic!("first cancel of a live task"),
    }
    h
}

/// After a cancel and every queued poll: the cancel landed (the task is
/// complete, neither scheduled nor running, its future dropped once), and
/// dropping the handle consumes the output and frees the task.
fn assert_cancelled_and_freed(task: &Task, mut total: Outcomes) {
    let snap = task.state.load();
    assert!(
        snap.is(COMPLETE) && !snap.is(SCHEDULED) && !snap.is(RUNNING),
        "the cancel was lost: {snap:?}"
    );
    assert_eq!(total.futures, 1, "{total:?}");
    drop_handle(task, &mut total);
    assert_eq!(total.dealloc, 1, "{total:?}");
    assert_eq!(total.outputs, 1, "{total:?}");
}

/// (d): `cancel` (main thread, the handle) races a wake (thread B) while the
/// loop (thread A) polls. Exactly one queue entry at a time; draining the
/// queue afterwards ends with the task complete, its future dropped once,
/// and `ToRunning::Cancel` seen by the poll after the cancel.
#[test]
fn cancel_racing_wake() {
    loom::model(|| {
        let (task, msg, threads) = wake_racing_poll(true);
        let h = cancel_from_handle(&task);
        let mut total = h + threads();
        assert_eq!(
            total.dealloc, 0,
            "owned list and handle still hold references"
        );
        assert!(total.queued <= 1, "queued twice: {total:?}");
        // The loop runs what is queued; the cancel must take effect.
        for seen in drain(&task, &msg, total.queued, &mut total) {
            assert_eq!(seen, usize::MAX, "a poll after cancel() must be a Cancel");
        }
        assert_cancelled_and_freed(&task, total);
    });
}

/// (e): the handle, with a join waker registered, is dropped (main thread)
/// while the loop (thread A) completes the task. Rules 5 and 6: exactly one
/// side drops the output and exactly one drops the join waker; loom checks
/// that their accesses to both cells are ordered.
#[test]
fn join_handle_drop_racing_completion() {
    loom::model(|| {
        let task = Task::new(State::new_spawned());
        // SAFETY: no other thread exists yet; JOIN_WAKER is clear (rule 6).
        unsafe { put(&task.join_waker, 1) };
        task.state.set_join_waker().unwrap();
        let msg = Arc::new(AtomicUsize::new(0));

        let lp = spawn_poll(&task, false, &msg);
        let mut h = Outcomes::default();
        drop_handle(&task, &mut h);
        let total = h + join(lp);
        assert_eq!(
            total.outputs, 1,
            "output dropped by exactly one side: {total:?}"
        );
        assert_eq!(
            total.join_wakers, 1,
            "join waker dropped by exactly one side: {total:?}"
        );
        assert_eq!(total.dealloc, 1, "{total:?}");
    });
}

/// (e'): the handle polls (registers its join waker, or reads the output)
/// and then drops, while the loop completes the task.
#[test]
fn join_handle_poll_then_drop_racing_completion() {
    loom::model(|| {
        let task = Task::new(State::new_spawned());
        let msg = Arc::new(AtomicUsize::new(0));

        let lp = spawn_poll(&task, false, &msg);
        let mut h = Outcomes::default();
        poll_handle(&task, &mut h);
        drop_handle(&task, &mut h);
        let total = h + join(lp);
        assert_eq!(
            total.outputs, 1,
            "output consumed by exactly one side: {total:?}"
        );
        assert!(total.join_wakers <= 1, "{total:?}");
        // SAFETY: both threads are done.
        let left = unsafe { holds(&task.join_waker) };
        assert!(
            !left,
            "join waker left in the field after both sides finished"
        );
        assert_eq!(total.dealloc, 1, "{total:?}");
    });
}

/// (e''): the handle registered its join waker before the loop (thread A)
/// completes the task, then polls again (and reads the output if it sees
/// `COMPLETE`: also while the loop still holds the join-waker field, when
/// it gives up its interest at once) and drops. The output is consumed
/// exactly once, the field is empty at the end (the loop drops the waker
/// when the handle gave up its interest first), one deallocation.
#[test]
fn join_handle_reads_while_the_loop_wakes_it() {
    loom::model(|| {
        let task = Task::new(State::new_spawned());
        // SAFETY: no other thread exists yet; JOIN_WAKER is clear (rule 6).
        unsafe { put(&task.join_waker, 1) };
        task.state.set_join_waker().unwrap();
        let msg = Arc::new(AtomicUsize::new(0));

        let lp = spawn_poll(&task, false, &msg);
        let mut h = Outcomes::default();
        poll_handle(&task, &mut h);
        drop_handle(&task, &mut h);
        let total = h + join(lp);
        assert_eq!(
            total.outputs, 1,
            "output consumed by exactly one side: {total:?}"
        );
        // The first waker, and the second if the handle registered one
        // again before the task completed (which drops the first).
        assert!((1..=2).contains(&total.join_wakers), "{total:?}");
        // SAFETY: both threads are done.
        let left = unsafe { holds(&task.join_waker) };
        assert!(
            !left,
            "join waker left in the field after both sides finished"
        );
        assert_eq!(total.dealloc, 1, "{total:?}");
    });
}

/// (f): a waker on thread B (`wake` by value, or `wake_by_ref` + drop)
/// races a task that yields: the loop polls it once with a self-wake
/// (queued again running while queued, no write), then pops and polls it
/// again, and that poll returns Pending without waking itself. If that
/// second poll did not see B's message, the task must be queued (else B's
/// wake was lost on the self-wake path); at most one entry exists; draining
/// the queue ends with a poll that saw the message, `RUNNING` clear and the
/// owned list's and handle's references left.
fn wake_racing_yield(by_val: bool) {
    loom::model(move || {
        let (task, msg, waker) = spawn_publishing_waker(by_val);
        let mut first = Outcomes::default();
        let _ = pop_and_poll_as(&task, Ends::WokeSelf, &msg, &mut first);
        assert_eq!(first.queued, 1, "a self-wake queues the task again");
        assert!(task.state.load().is(RUNNING), "running while queued");
        let mut second = Outcomes::default();
        let seen = pop_and_poll_as(&task, Ends::Pending, &msg, &mut second);
        let b = join(waker);
        // Entries left: the second poll's reschedule, B's submit.
        let left = second.queued + b.queued;
        assert_wake_landed(&task, &msg, seen, left, first + second + b);
    });
}

#[test]
fn wake_by_val_racing_yield() {
    wake_racing_yield(true);
}

#[test]
fn wake_by_ref_racing_yield() {
    wake_racing_yield(false);
}

/// A new task and the loop (thread A) that pops it and polls it once with
/// a self-wake (it is then running while queued; unless a cancel came
/// first), then runs `then` with the number of entries that poll queued (not
/// counted in the outcomes). Returns the task, the message (never
/// published) and A.
fn spawn_yielding_loop(
    then: fn(&Task, &AtomicUsize, usize, &mut Outcomes),
) -> (Arc<Task>, Arc<AtomicUsize>, thread::JoinHandle<Outcomes>) {
    let task = Task::new(State::new_spawned());
    let msg = Arc::new(AtomicUsize::new(0));
    let (t, m) = (task.clone(), msg.clone());
    let lp = thread::spawn(move || {
        let mut out = Outcomes::default();
        let _ = pop_and_poll_as(&t, Ends::WokeSelf, &m, &mut out);
        let queued = std::mem::take(&mut out.queued);
        then(&t, &m, queued, &mut out);
        out
    });
    (task, msg, lp)
}

/// (g): `cancel` (main thread, the handle) races a task that yields on the
/// loop (thread A: one self-woken poll, then polls that return Pending
/// until its queue is empty). The cancel must not be lost: after the loop
/// and then the main thread ran every queued poll, the task is complete,
/// its future dropped once, and the handle's drop frees it.
#[test]
fn cancel_racing_yield() {
    loom::model(|| {
        let (task, msg, lp) = spawn_yielding_loop(|t, m, queued, out| {
            // The loop runs its entries and those their polls create.
            let _ = drain(t, m, queued, out);
            out.queued = 0;
        });
        let h = cancel_from_handle(&task);
        let mut total = h + join(lp);
        assert_eq!(total.dealloc, 0, "{total:?}");
        assert!(total.queued <= 1, "queued twice: {total:?}");
        let _ = drain(&task, &msg, total.queued, &mut total);
        assert_cancelled_and_freed(&task, total);
    });
}

/// (h): the handle polls (registers its join waker, or reads the output)
/// and drops (main thread) while the loop (thread A) polls the task once
/// with a self-wake and then completes it from running while queued.
/// Rules 5 and 6 as in (e'): one side consumes the output, the field is
/// left empty, the task is freed once.
#[test]
fn join_racing_yield() {
    loom::model(|| {
        let (task, msg, lp) = spawn_yielding_loop(|t, m, queued, out| {
            assert_eq!(queued, 1, "a self-wake queues the task again");
            let _ = pop_and_poll_as(t, Ends::Ready, m, out);
        });
        drop(msg);
        let mut h = Outcomes::default();
        poll_handle(&task, &mut h);
        drop_handle(&task, &mut h);
        let total = h + join(lp);
        assert_eq!(total.outputs, 1, "{total:?}");
        assert!(total.join_wakers <= 1, "{total:?}");
        // SAFETY: both threads are done.
        let left = unsafe { holds(&task.join_waker) };
        assert!(!left, "join waker left in the field: {total:?}");
        assert_eq!(total.dealloc, 1, "{total:?}");
    });
}

/// (i): a `cancel_with` on thread B (through a `TaskHandle`'s reference,
/// `raw.rs` `abort`) races the loop completing the task (thread A) and the
/// handle's drop (main thread). B inserts the task's cancel-table entry and
/// sets `CANCEL_STATE` (under the table's lock in `cancel.rs`) before the
/// transition, then drops its reference. Whichever thread frees the task
/// sees the bit (the flag at bit 7 and the count from bit 9 share the word:
/// no transition may lose it) and frees the entry, exactly once; the loop's
/// poll is a `Cancel` iff the cancel landed before it.
#[test]
fn cancel_with_racing_completion_and_last_ref() {
    loom::model(|| {
        let task = Task::new(State::new_spawned());
        task.state.ref_inc(); // B's `TaskHandle`
        let t = task.clone();
        let canceller = thread::spawn(move || {
            let mut out = Outcomes::default();
            let snap = t.state.load();
            if !snap.is(COMPLETE) && !snap.is(CANCELLED) {
                // SAFETY: the table's lock in `cancel.rs` (one inserter; the
                // entry is read only after the bit is seen).
                unsafe { put(&t.entry, 1) };
                t.state.mark_cancel_state();
                if t.state.transition_to_cancelled() == ToCancelled::Submit {
                    out.queued += 1;
                }
            }
            release(&t, 1, &mut out);
            out
        });
        let msg = Arc::new(AtomicUsize::new(0));
        let lp = spawn_poll(&task, false, &msg);
        let mut total = join(canceller) + join(lp);
        // A cancel that came after the poll started found the task running
        // (Marked) or complete; one before it left a queue entry, whose
        // release is the loop's (the task is complete by now).
        for _ in 0..total.queued {
            let mut o = Outcomes::default();
            release(&task, 1, &mut o);
            total = total + o;
        }
        drop_handle(&task, &mut total);
        assert_eq!(total.dealloc, 1, "{total:?}");
        assert_eq!(total.outputs, 1, "{total:?}");
        assert!(total.entries <= 1, "{total:?}");
        // The handle, alone with the task, may free it without a write
        // (`release_join_complete`): the word then still counts its one.
        assert!(task.state.load().refs() <= 1);
    });
}
