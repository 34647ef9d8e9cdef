//! Loom models of the cross-thread wake path and the remote queue
//! (docs/reliability.md §1d and check 1; the protocol is in `rt/mod.rs`).
//!
//! Everything here is the real code built with loom's types (`crate::loom`):
//! [`Shared`] with its mutex, flags and unparker, tasks from
//! `raw::allocate`, their wakers (`task/waker.rs`, which call `rt::schedule`),
//! `Handle::spawn`, and the loop's task steps from `core.rs` (`adopt`,
//! `poll_task`) and `shutdown.rs` (`cancel_owned`). Only the order of the loop's steps is
//! restated by [`Loop`] (a driver cannot be built under loom), and the driver's
//! park is the loom token of `crate::loom` (contract U1–U3 there). A wake that
//! is lost leaves the loop parked with nobody to unpark it, which loom
//! reports as a deadlock.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p coil --lib
//! --release remote_loom` (add `-- --nocapture` to see the number of
//! interleavings each model explored).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::Relaxed;
use loom::thread;

use super::core::{adopt, poll_task};
use super::shutdown::cancel_owned;
use super::{Handle, Shared};
use crate::loom::{Parker, Unparker};
use crate::task::list::OwnedList;
use crate::task::raw::{self, TaskRef};
use crate::task::state::SCHEDULED;
use crate::task::{Task, TaskError};

/// `loom::model`, counting the interleavings it explored (printed; see the
/// module docs).
fn model(name: &str, f: impl Fn() + Send + Sync + 'static) {
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    loom::model(move || {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "remote_loom::{name}: {} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// The loop thread of one runtime: the real `Shared`, an owned list and a
/// local queue, with the model parker standing in for the driver.
struct Loop {
    shared: Arc<Shared>,
    owned: OwnedList,
    queue: RefCell<VecDeque<TaskRef>>,
    parker: Parker,
    /// Every woken task taken from the remote queue, in the order taken.
    taken: RefCell<Vec<TaskRef>>,
    /// Spins before a park (`Core::spin_for_work`, steps S1–S3 of the
    /// protocol); zero: park at once.
    spins: usize,
}

impl Loop {
    fn new() -> Loop {
        let (parker, unparker) = Parker::new();
        Loop {
            shared: Arc::new(Shared::new(unparker, super::next_core_id())),
            owned: OwnedList::default(),
            queue: RefCell::new(VecDeque::new()),
            parker,
            taken: RefCell::new(Vec::new()),
            spins: 0,
        }
    }

    /// A loop that spins `spins` looks at its flag word before each park.
    fn spinning(spins: usize) -> Loop {
        Loop {
            spins,
            ..Loop::new()
        }
    }

    /// `Core::spawn`: a bound, queued task and its handle.
    fn spawn<F: Future + 'static>(&self, future: F) -> (TaskRef, Task<F::Output>) {
        let t = raw::allocate(future, &self.shared, None);
        // SAFETY: a new task of this loop, on its thread: its three
        // references go to the owned list, the queue and the handle.
        unsafe {
            self.owned.push(t);
            self.queue.borrow_mut().push_back(t);
            (t, Task::from_raw(t))
        }
    }

    /// A task running [`Until`] on `msgs` with a target no sum reaches (it
    /// never finishes), with its handle and the sum its last poll saw
    /// (read `Relaxed`: only the wake path can make the messages visible).
    fn spawn_observer(&self, msgs: Vec<Arc<AtomicUsize>>) -> (TaskRef, Task<()>, Rc<Cell<usize>>) {
        let seen = Rc::new(Cell::new(0));
        let (t, handle) = self.spawn(Until {
            msgs,
            target: usize::MAX,
            seen: seen.clone(),
        });
        (t, handle, seen)
    }

    /// Step L1 and the polls of one tick (`Core::tick`): take the remote
    /// queue if it is flagged, then poll every task queued at that point
    /// once. Each popped entry must carry `SCHEDULED` (rule 2).
    fn tick(&self) {
        if self.shared.remote_pending() {
            let (mut woken, mut spawned) = (Vec::new(), Vec::new());
            self.shared.take_remote(&mut woken, &mut spawned);
            self.taken
                .borrow_mut()
                .extend(woken.iter().map(|w| w.task()));
            // SAFETY: the loop thread; entries of this runtime's remote queue
            // with their references, moved to the local queue.
            unsafe {
                adopt(&self.owned, spawned, woken, |t| {
                    self.queue.borrow_mut().push_back(t)
                })
            };
        }
        let n = self.queue.borrow().len();
        for _ in 0..n {
            let t = self.queue.borrow_mut().pop_front().expect("n entries");
            assert!(
                t.snapshot().is(SCHEDULED),
                "a queue entry without SCHEDULED: {:?}",
                t.snapshot()
            );
            // No `Core` here, so no wake takes the self-wake path: the
            // flag stays clear.
            let woke_self = std::cell::Cell::new(false);
            // SAFETY: the loop thread; popped with its queue reference.
            unsafe {
                poll_task(&self.owned, t, &woke_self, |t| {
                    self.queue.borrow_mut().push_back(t)
                })
            };
        }
    }

    /// Steps L2 and L3 (`Core::tick`'s idle branch), with steps S1–S3 of
    /// `Core::spin_for_work` first when the loop spins.
    fn park_if_idle(&self) {
        if !self.queue.borrow().is_empty() || self.shared.wake_pending() {
            return;
        }
        if self.spins > 0 {
            // S1.
            if !self.shared.start_spinning() {
                return;
            }
            // S2.
            let mut found = false;
            for _ in 0..self.spins {
                if self.shared.wake_pending() {
                    found = true;
                    break;
                }
                thread::yield_now();
            }
            // S3: the re-check after clearing the mark.
            let work = self.shared.stop_spinning();
            if found || work {
                return;
            }
        }
        self.parker.park();
    }

    /// The loop of `Core::block_on` for a runtime whose tasks finish when
    /// `done` says so: tick, then decide and park.
    fn run_until(&self, done: impl Fn() -> bool) {
        loop {
            self.tick();
            if done() {
                return;
            }
            self.park_if_idle();
        }
    }

    /// The loop of `Core::block_on` around a main future that `ready` polls
    /// (called each time the main future's wake flag is taken).
    fn run_main(&self, mut ready: impl FnMut() -> bool) {
        loop {
            if self.shared.take_main_wake() && ready() {
                return;
            }
            self.tick();
            self.park_if_idle();
        }
    }

    /// Queue entries for `t` (rule 2: they carry `SCHEDULED`) in the local
    /// and the remote queue (the remote one is read under its lock), and
    /// the wake entries for `t` in the remote queue (a waker's reference
    /// that the loop has not drained: `rt/mod.rs`, "Two kinds of woken
    /// entry").
    fn entries_and_wakes(&self, t: TaskRef) -> (usize, usize) {
        let local = self.queue.borrow().iter().filter(|&&q| q == t).count();
        let remote = self.shared.lock();
        let mut woken = remote.woken.clone();
        woken.extend(self.shared.slot_entry());
        let of_t = woken.iter().filter(|w| w.task() == t);
        let wakes = of_t.clone().filter(|w| w.is_wake()).count();
        let queued = of_t.count() - wakes;
        let spawned = remote.spawned.iter().filter(|&&q| q == t).count();
        (local + queued + spawned, wakes)
    }

    /// Queue entries for `t` (see [`Loop::entries_and_wakes`]).
    fn entries(&self, t: TaskRef) -> usize {
        self.entries_and_wakes(t).0
    }

    /// Rule 2 and the reference count of a task that is only woken: at most
    /// one queue entry for `t`, present exactly while `SCHEDULED` is set,
    /// and references from the owned list, the handle, that entry and each
    /// wake entry not yet drained.
    fn assert_one_entry_at_most(&self, t: TaskRef) {
        let (entries, wakes) = self.entries_and_wakes(t);
        assert!(entries <= 1, "queued twice");
        let state = t.snapshot();
        assert_eq!(state.is(SCHEDULED), entries == 1, "{state:?}");
        assert_eq!(
            state.refs(),
            2 + entries + wakes,
            "owned + handle + queue + wake entries: {state:?}"
        );
    }

    /// `Core::shutdown`'s task half: close the remote queue, adopt what it
    /// held, cancel the owned tasks, release the queue entries.
    fn shutdown(&self) {
        let (woken, spawned) = self.shared.close_remote();
        // SAFETY: as in `tick`.
        unsafe {
            adopt(&self.owned, spawned, woken, |t| {
                self.queue.borrow_mut().push_back(t)
            })
        };
        // SAFETY: the loop thread, not inside a poll.
        unsafe { cancel_owned(&self.owned) };
        while let Some(t) = self.queue.borrow_mut().pop_front() {
            // SAFETY: a queue entry's reference (rule 8).
            unsafe { t.release(1) };
        }
    }
}

/// A waker for `t` holding a new reference (what `Context::waker().clone()`
/// gives a future).
fn waker(t: TaskRef) -> Waker {
    // SAFETY: the reference `clone_ref` just took moves into the waker.
    unsafe { crate::task::waker::waker_from_raw(t.clone_ref()) }
}

/// Every task freed: only the loop's own `Arc<Shared>` is left (each task
/// header holds one until it is deallocated). Catches leaked references;
/// a double release frees a task while its handle still counts, which the
/// checks before the handles drop catch.
fn assert_all_freed(lp: &Loop) {
    assert_eq!(Arc::strong_count(&lp.shared), 1, "a task was leaked");
}

/// Model 1a, no lost wake-up for tasks: thread B publishes a message and
/// wakes two idle or running tasks (by value, so through `rt::schedule` and
/// `push_remote`) while the loop runs `take → decide → park`. The loop must
/// poll each task after its wake and see the message; if a wake were lost
/// it would park forever (loom: deadlock). Two tasks, so that a push can
/// land while the loop is taking the queue.
#[test]
fn wake_task_vs_park() {
    model("wake_task_vs_park", || {
        let lp = Loop::new();
        let msg = Arc::new(AtomicUsize::new(0));
        let (t1, h1, seen1) = lp.spawn_observer(vec![msg.clone()]);
        let (t2, h2, seen2) = lp.spawn_observer(vec![msg.clone()]);
        let (w1, w2) = (waker(t1), waker(t2));
        let m = msg.clone();
        let b = thread::spawn(move || {
            m.store(1, Relaxed);
            w1.wake();
            w2.wake();
        });
        lp.run_until(|| seen1.get() == 1 && seen2.get() == 1);
        b.join().unwrap();
        for t in [t1, t2] {
            lp.assert_one_entry_at_most(t);
        }
        lp.shutdown();
        for (t, h) in [(t1, h1), (t2, h2)] {
            assert!(h.is_finished());
            assert_eq!(t.snapshot().refs(), 1, "only the handle");
            drop(h);
        }
        assert_all_freed(&lp);
    });
}

/// Model 1b, no lost wake-up for the `block_on` future: thread B publishes a
/// message and calls `wake_main` while the loop polls the main future when
/// its flag is set, ticks, and parks when idle (`Core::block_on`). (B is
/// started after the first poll: a wake from before it is not for this
/// future, and `block_on` sets the flag then anyway.)
#[test]
fn wake_main_vs_park() {
    model("wake_main_vs_park", || {
        let lp = Loop::new();
        // `block_on` polls the main future first; only that poll hands its
        // waker out (here: to thread B).
        lp.shared.set_main_woken();
        assert!(lp.shared.take_main_wake());
        let msg = Arc::new(AtomicUsize::new(0));
        let (m, s) = (msg.clone(), lp.shared.clone());
        let b = thread::spawn(move || {
            m.store(1, Relaxed);
            s.wake_main();
        });
        lp.run_main(|| msg.load(Relaxed) == 1);
        b.join().unwrap();
    });
}

/// Model 1c, the same for a task spawned from thread B with `Handle::spawn`
/// (`push_spawned`): the loop binds it and polls it.
#[test]
fn remote_spawn_vs_park() {
    model("remote_spawn_vs_park", || {
        let lp = Loop::new();
        let polled = Arc::new(AtomicUsize::new(0));
        let (h, p) = (Handle::from_shared(lp.shared.clone()), polled.clone());
        let b = thread::spawn(move || {
            h.spawn(async move {
                p.store(1, Relaxed);
            })
        });
        lp.run_until(|| polled.load(Relaxed) == 1);
        let task = b.join().unwrap();
        assert!(task.is_finished());
        assert_eq!(lp.owned.len(), 0, "a completed task left in the owned list");
        drop(task);
        assert_all_freed(&lp);
    });
}

/// Model 1d, a result crossing loops while its awaiter gives up
/// (`pool::RemoteTask`'s drop: `cancel`, then drop the handle): thread B
/// spawns a task on the loop with `Handle::spawn`, then cancels it and drops
/// its handle, while the loop adopts, polls and completes it. Whichever comes
/// first, the future is dropped once, on the loop; an output that was made
/// is dropped exactly once (by the handle or, once the handle is gone, by
/// the loop); nothing leaks.
#[test]
fn remote_result_vs_handle_drop() {
    /// Counts its drops.
    struct Out(Arc<AtomicUsize>);
    impl Drop for Out {
        fn drop(&mut self) {
            self.0.fetch_add(1, Relaxed);
        }
    }
    model("remote_result_vs_handle_drop", || {
        let lp = Loop::new();
        let [fut_dropped, made, out_dropped] = [(); 3].map(|_| Arc::new(AtomicUsize::new(0)));
        let guard = Out(fut_dropped.clone());
        let (m, o) = (made.clone(), out_dropped.clone());
        let h = Handle::from_shared(lp.shared.clone());
        let b = thread::spawn(move || {
            let task = h.spawn(async move {
                let _guard = guard;
                m.fetch_add(1, Relaxed);
                Out(o)
            });
            task.cancel();
            drop(task);
        });
        lp.run_until(|| fut_dropped.load(Relaxed) == 1);
        b.join().unwrap();
        assert_eq!(fut_dropped.load(Relaxed), 1, "the future dropped twice");
        assert_eq!(
            out_dropped.load(Relaxed),
            made.load(Relaxed),
            "an output was leaked or dropped twice"
        );
        assert_eq!(lp.owned.len(), 0);
        assert_all_freed(&lp);
    });
}

/// Shows that the models catch a lost wake: a waker that unparks *before*
/// it publishes (W1 and W2 swapped) lets the loop consume the unpark, see
/// nothing, and park for good; loom must report the deadlock. The model runs
/// in a child process because loom aborts (a panic in a destructor while
/// unwinding from the deadlock) instead of unwinding to `should_panic`.
#[test]
fn unpark_before_publish_is_caught() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "rt::remote_loom::unpark_before_publish_model",
            "--ignored",
            "--test-threads",
            "1",
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running the test binary again");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && (stderr.contains("deadlock") || stdout.contains("deadlock")),
        "loom did not report the lost wake as a deadlock: {}\n{stdout}\n{stderr}",
        out.status
    );
}

/// The model behind `unpark_before_publish_is_caught`.
#[test]
#[ignore = "deadlocks on purpose; run in a child process by unpark_before_publish_is_caught"]
fn unpark_before_publish_model() {
    loom::model(|| {
        let lp = Loop::new();
        assert!(!lp.shared.take_main_wake());
        let (s, unparker): (_, Unparker) = (lp.shared.clone(), lp.shared.unparker.clone());
        let b = thread::spawn(move || {
            unparker.unpark();
            s.set_main_woken();
        });
        lp.run_main(|| true);
        b.join().unwrap();
    });
}

/// Model 2, shutdown against remote pushes: the loop shuts down (closes the
/// remote queue) while thread B wakes a bound idle task by value
/// (`push_remote`) and thread C spawns with `Handle::spawn`
/// (`push_spawned`). Each task is taken by exactly one side: the loop (it
/// then cancels it and releases the entry) or the pusher (which releases
/// the queue reference, or finishes the returned task). Afterwards both
/// tasks are complete, each handle holds the only reference, and dropping
/// the handles frees both (no leak, no double release).
#[test]
fn shutdown_vs_remote_push() {
    model("shutdown_vs_remote_push", || {
        let lp = Loop::new();
        let (a, a_handle, _) = lp.spawn_observer(Vec::new());
        lp.tick(); // A is polled once and idles.
        let w = waker(a);
        let b = thread::spawn(move || w.wake());
        let h = Handle::from_shared(lp.shared.clone());
        let c = thread::spawn(move || h.spawn(std::future::pending::<()>()));
        lp.shutdown();
        b.join().unwrap();
        let c_handle = c.join().unwrap();
        assert!(lp.shared.is_closed());
        assert_eq!(lp.owned.len(), 0);
        assert!(a_handle.is_finished() && c_handle.is_finished());
        assert_eq!(a.snapshot().refs(), 1, "only A's handle");
        // Both headers are still alive (their handles hold them).
        assert_eq!(Arc::strong_count(&lp.shared), 3, "a task freed early");
        // Whichever side finished it, the spawned task reports Cancelled.
        let mut c_handle = c_handle;
        let out = Pin::new(&mut c_handle).poll(&mut Context::from_waker(Waker::noop()));
        assert!(
            matches!(out, Poll::Ready(Err(TaskError::Cancelled(_)))),
            "{out:?}"
        );
        drop(c_handle);
        drop(a_handle);
        assert_all_freed(&lp);
    });
}

/// Model 3, two remote wakers on one task while the loop polls it: B wakes
/// by reference (then drops its waker), C wakes by value. At every point
/// at most one queue entry exists, and only while `SCHEDULED` is set; the
/// references end at owned list + handle + entries; draining the queues
/// polls the task after both wakes and sees both messages.
#[test]
fn two_wakers_vs_poll() {
    model("two_wakers_vs_poll", || {
        let lp = Loop::new();
        let m1 = Arc::new(AtomicUsize::new(0));
        let m2 = Arc::new(AtomicUsize::new(0));
        let (t, handle, seen) = lp.spawn_observer(vec![m1.clone(), m2.clone()]);
        let (w1, w2) = (waker(t), waker(t));
        let b = thread::spawn(move || {
            m1.store(1, Relaxed);
            w1.wake_by_ref();
            drop(w1);
        });
        let c = thread::spawn(move || {
            m2.store(1, Relaxed);
            w2.wake();
        });
        lp.tick();
        assert!(lp.entries(t) <= 1, "queued twice");
        lp.tick();
        b.join().unwrap();
        c.join().unwrap();
        lp.assert_one_entry_at_most(t);
        // Drain: every wake leads to a poll that sees its message.
        while lp.entries_and_wakes(t) != (0, 0) {
            lp.tick();
        }
        assert_eq!(seen.get(), 2, "a wake was lost");
        assert_eq!(t.snapshot().refs(), 2);
        lp.shutdown();
        drop(handle);
        assert_all_freed(&lp);
    });
}

/// Model 4a, a push racing a *spinning* loop's decision to park (steps
/// S1–S3): thread B publishes a message and wakes two idle tasks while the
/// loop, idle, marks itself spinning, looks at its flag word, clears the
/// mark and parks unless the clearing RMW saw work. A push that found the
/// mark skipped its unpark, so only S3's re-check can see it; a lost wake
/// leaves the loop parked (loom: deadlock).
#[test]
fn wake_task_vs_spin_then_park() {
    model("wake_task_vs_spin_then_park", || {
        let lp = Loop::spinning(1);
        let msg = Arc::new(AtomicUsize::new(0));
        let (t1, h1, seen1) = lp.spawn_observer(vec![msg.clone()]);
        let (t2, h2, seen2) = lp.spawn_observer(vec![msg.clone()]);
        lp.tick(); // Both polled once; idle.
        let (w1, w2) = (waker(t1), waker(t2));
        let m = msg.clone();
        let b = thread::spawn(move || {
            m.store(1, Relaxed);
            w1.wake();
            w2.wake();
        });
        lp.park_if_idle();
        lp.run_until(|| seen1.get() == 1 && seen2.get() == 1);
        b.join().unwrap();
        lp.shutdown();
        drop((h1, h2));
        assert_all_freed(&lp);
    });
}

/// Model 4b, the same for the `block_on` future's wake (`wake_main` skips
/// its unpark while the loop spins).
#[test]
fn wake_main_vs_spin_then_park() {
    model("wake_main_vs_spin_then_park", || {
        let lp = Loop::spinning(1);
        lp.shared.set_main_woken();
        assert!(lp.shared.take_main_wake());
        let msg = Arc::new(AtomicUsize::new(0));
        let (m, s) = (msg.clone(), lp.shared.clone());
        let b = thread::spawn(move || {
            m.store(1, Relaxed);
            s.wake_main();
        });
        lp.run_main(|| msg.load(Relaxed) == 1);
        b.join().unwrap();
    });
}

/// Model 5, two pushers racing for the slot: B and C each wake their own
/// idle task while the loop drains and parks. One compare-exchange wins the
/// slot, the other push takes the vectors (or the slot again once the loop
/// emptied it); each task is taken exactly once, with one queue entry at
/// most at every point, and both wakes are seen.
#[test]
fn two_pushers_race_for_slot() {
    model("two_pushers_race_for_slot", || {
        let lp = Loop::new();
        let (m1, m2) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (t1, h1, seen1) = lp.spawn_observer(vec![m1.clone()]);
        let (t2, h2, seen2) = lp.spawn_observer(vec![m2.clone()]);
        lp.tick();
        let (w1, w2) = (waker(t1), waker(t2));
        let b = thread::spawn(move || {
            m1.store(1, Relaxed);
            w1.wake();
        });
        let c = thread::spawn(move || {
            m2.store(1, Relaxed);
            w2.wake();
        });
        lp.run_until(|| seen1.get() == 1 && seen2.get() == 1);
        b.join().unwrap();
        c.join().unwrap();
        for t in [t1, t2] {
            lp.assert_one_entry_at_most(t);
        }
        assert_eq!(lp.taken.borrow().len(), 2, "a task taken twice");
        lp.shutdown();
        drop((h1, h2));
        assert_all_freed(&lp);
    });
}

/// Model 6, order between the slot and the vectors: thread B wakes three
/// idle tasks in turn (the first can take the slot, the next ones find it
/// full or the vectors in use) while the loop drains, polls and parks. The
/// loop must take them in B's order, whichever drain takes which.
#[test]
fn order_kept_between_slot_and_vectors() {
    model("order_kept_between_slot_and_vectors", || {
        let lp = Loop::new();
        let tasks: Vec<_> = (0..3).map(|_| lp.spawn_observer(Vec::new())).collect();
        lp.tick();
        let order: Vec<TaskRef> = tasks.iter().map(|(t, _, _)| *t).collect();
        let wakers: Vec<Waker> = order.iter().map(|&t| waker(t)).collect();
        let b = thread::spawn(move || {
            for w in wakers {
                w.wake();
            }
        });
        lp.run_until(|| lp.taken.borrow().len() == 3);
        b.join().unwrap();
        assert_eq!(*lp.taken.borrow(), order, "wakes taken out of order");
        lp.shutdown();
        drop(tasks);
        assert_all_freed(&lp);
    });
}

/// A future that finishes once the messages it sees add up to `target`;
/// each poll records the sum.
struct Until {
    msgs: Vec<Arc<AtomicUsize>>,
    target: usize,
    seen: Rc<Cell<usize>>,
}

impl Future for Until {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let sum = self.msgs.iter().map(|m| m.load(Relaxed)).sum();
        self.seen.set(sum);
        if sum == self.target {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Model 7, the wake entry (`rt/mod.rs`, "Two kinds of woken entry"):
/// threads B and C each publish a message and wake the task by value as a
/// loop thread that remembers it does ([`wake_as_entry`]), so each pushes
/// its waker's reference with the header untouched, while
/// the loop polls the task (first from its spawn), which completes once it
/// has seen both messages. The loop does each skipped transition when it
/// drains: a wake that finds the task idle queues it, one that finds it
/// queued, running while queued or complete is released. A drain that
/// dropped a wake entry without its transition loses the wake (the loop
/// parks for good: loom reports a deadlock); one that queued the entry as
/// it is polls a task without `SCHEDULED` (the tick's assertion) or after
/// it completed (`transition_to_running`'s). Afterwards only the handle's
/// reference is left and everything is freed.
#[test]
fn wake_entry_vs_poll_and_complete() {
    model("wake_entry_vs_poll_and_complete", || {
        let lp = Loop::new();
        let (m1, m2) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let seen = Rc::new(Cell::new(0));
        let (t, handle) = lp.spawn(Until {
            msgs: vec![m1.clone(), m2.clone()],
            target: 2,
            seen: seen.clone(),
        });
        let (w1, w2) = (waker(t), waker(t));
        let (s1, s2) = (lp.shared.clone(), lp.shared.clone());
        let b = thread::spawn(move || {
            m1.store(1, Relaxed);
            wake_as_entry(&s1, w1);
        });
        let c = thread::spawn(move || {
            m2.store(1, Relaxed);
            wake_as_entry(&s2, w2);
        });
        lp.run_until(|| handle.is_finished());
        assert_eq!(seen.get(), 2);
        b.join().unwrap();
        c.join().unwrap();
        // A wake that came after the completion is drained and released.
        while lp.entries_and_wakes(t) != (0, 0) {
            lp.tick();
        }
        assert_eq!(lp.owned.len(), 0);
        assert_eq!(t.snapshot().refs(), 1, "only the handle");
        lp.shutdown();
        drop(handle);
        assert_all_freed(&lp);
    });
}

/// What `TaskRef::wake_by_val` does on a loop thread for a task it
/// remembers (`task::raw::last_foreign`; the models have no loop, so their
/// `Waker::wake` takes the transition path): the waker's reference pushed
/// onto `shared`'s queue as a wake entry, the header untouched.
fn wake_as_entry(shared: &Shared, w: Waker) {
    let w = std::mem::ManuallyDrop::new(w);
    // SAFETY: a task waker's data pointer is its task (`waker_from_raw`),
    // and its reference, not dropped here, is handed over with it.
    let t = unsafe { TaskRef::from_raw(w.data()) };
    // SAFETY: that reference, for the task's own runtime, whose `Shared`
    // the caller's `&Shared` (borrowed from its own `Arc`) keeps alive; no
    // loop runs on this thread.
    unsafe { crate::rt::push_wake(shared, t) };
}

/// Model 8, shutdown against a wake entry: the loop shuts down while
/// thread B pushes a wake entry for an idle task. Either the loop takes it
/// (`close_remote`: the drain's transition queues the task, which is then
/// cancelled and its entry released) or B finds the queue closed and
/// releases the reference itself; afterwards only the handle's reference
/// is left and dropping it frees everything.
#[test]
fn shutdown_vs_wake_entry() {
    model("shutdown_vs_wake_entry", || {
        let lp = Loop::new();
        let (a, a_handle, _) = lp.spawn_observer(Vec::new());
        lp.tick(); // A is polled once and idles.
        let (w, s) = (waker(a), lp.shared.clone());
        let b = thread::spawn(move || wake_as_entry(&s, w));
        lp.shutdown();
        b.join().unwrap();
        assert!(a_handle.is_finished());
        assert_eq!(a.snapshot().refs(), 1, "only A's handle");
        drop(a_handle);
        assert_all_freed(&lp);
    });
}
