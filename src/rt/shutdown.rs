//! Tearing a loop down (rule 8 in `task/mod.rs`, `op` rule O5): first, if
//! a task that answers cancel requests is still alive, asyncio's last step
//! of `run` (cancel every task, let the cooperative ones clean up; below),
//! then close the remote queue, cancel and complete every task left, cancel every op in
//! flight and wait (bounded) for the kernel to confirm, release what the
//! queues still hold, drop the timers; and dropping the driver afterwards,
//! unless the kernel never confirmed (then it is leaked).

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use super::Enter;
use super::core::{Core, adopt};
use crate::task::list::OwnedList;

/// How long a dropped runtime waits for cooperative tasks' cleanup.
pub(crate) const CLEANUP_LIMIT: Duration = Duration::from_secs(5);

impl Core {
    /// asyncio's `run` ends with `_cancel_all_tasks`: every task left is
    /// cancelled and the loop runs until they have finished, so their
    /// `except CancelledError:` cleanup can await. coil does that when at
    /// least one task left answers requests
    /// (`Builder::cooperative_cancel`); otherwise nothing changes (the
    /// tasks are dropped by `shutdown`). Every task left gets `cancel()`: a
    /// request for the cooperative ones, the drop for the rest (at the next
    /// turn). The loop then runs while a cooperative task that took its
    /// request (it is cleaning up) has not finished, for at most
    /// [`CLEANUP_LIMIT`]; a task whose request no scope took after a turn
    /// is not answering and is dropped with the rest. Tasks spawned during
    /// the cleanup are dropped by `shutdown`, as in asyncio.
    ///
    /// Skipped while panicking and when called inside a running loop (a
    /// runtime dropped in another runtime's task): both would have to run a
    /// loop where none may run.
    pub(crate) fn cancel_remaining_tasks(&self) {
        if std::thread::panicking() || super::in_runtime() {
            return;
        }
        let mut any_cooperative = false;
        self.owned
            .for_each(|t| any_cooperative |= t.request_state().is_some());
        if !any_cooperative {
            return;
        }
        self.block_on(async {
            // A cooperative task already cleaning up after an earlier
            // request (taken, not withdrawn) gets no second one: it is
            // waited for as it is (a second request would only be pending
            // and make it look deaf).
            let tasks: Vec<_> = crate::task::all_tasks()
                .into_iter()
                .map(|t| {
                    let cleaning = t.request_state() == Some(false) && t.cancelling() > 0;
                    if !cleaning {
                        t.cancel();
                    }
                    (t, cleaning)
                })
                .collect();
            let limit = super::timers::clock_now() + CLEANUP_LIMIT;
            // Let every woken task take its turn before the first look.
            crate::task::yield_now().await;
            poll_fn(|cx| {
                let cleaning = tasks.iter().any(|(t, was_cleaning)| {
                    !t.is_finished() && (*was_cleaning || t.request_state() == Some(false))
                });
                let now = super::timers::clock_now();
                if !cleaning || now >= limit {
                    return Poll::Ready(());
                }
                // Look again in a millisecond (the cleanup's own wake-ups
                // do not reach this future).
                if self
                    .timer_insert(now + Duration::from_millis(1), cx.waker())
                    .is_none()
                {
                    cx.waker().wake_by_ref(); // already due
                }
                Poll::Pending
            })
            .await;
        });
    }

    /// Cancel and drop every task, release every queued reference, drop the
    /// timers (rule 8 in task/mod.rs). Runs with `CURRENT` set so that code in
    /// destructors sees a (closed) runtime rather than none.
    pub(crate) fn shutdown(&self) {
        let _enter = Enter::new(self);
        self.closed.set(true);
        let (woken, spawned) = self.shared.close_remote();
        // SAFETY: as in `drain_remote`.
        unsafe { adopt(&self.owned, spawned, woken, |t| self.push_local(t)) };
        // `RUNNING` in a task's state word no longer means "being polled" (a
        // task that woke itself is queued running: task/state.rs), so the
        // state word cannot check this; the loop's own record can.
        debug_assert!(
            self.current_task().is_none(),
            "a runtime shut down while one of its tasks was being polled"
        );
        // SAFETY: the loop thread, not inside a poll (checked above in debug
        // builds).
        unsafe { cancel_owned(&self.owned) };
        self.drain_ops();
        loop {
            let next = self.run_queue.pop_front();
            match next {
                // SAFETY: a queue entry's reference (rule 8).
                Some(t) => unsafe { t.release(1) },
                None => break,
            }
        }
        let wakers = self.wheel.borrow_mut().clear();
        drop(wakers);
    }

    /// Shutdown, `op` rule O5: cancel every op in flight and wait (up to
    /// `DRAIN_LIMIT`) for the kernel to confirm; leak the driver otherwise.
    fn drain_ops(&self) {
        const DRAIN_LIMIT: Duration = Duration::from_secs(2);
        if self.home.in_flight() > 0 {
            self.cancel_and_wait(DRAIN_LIMIT);
        }
        if self.home.in_flight() == 0 {
            self.home.set_drained();
            return;
        }
        let left = self.home.in_flight();
        self.home.set_leaked();
        self.driver_leaked.set(true);
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            super::debug::report_on_stderr(format_args!(
                "coil: a runtime was dropped with {left} I/O operation(s) whose cancellation the \
                 kernel did not confirm within {DRAIN_LIMIT:?}; their buffers and the {} kernel \
                 queue are leaked rather than freed while the kernel may still write into them \
                 (said once per process)",
                self.driver_kind()
            ));
        });
    }

    fn cancel_and_wait(&self, limit: Duration) {
        {
            let mut driver = self.driver.borrow_mut();
            self.home.clear_cancels(); // every key in flight is cancelled below
            self.do_chores(&mut driver);
            for ud in self.home.in_flight_keys() {
                driver.cancel(ud);
            }
        }
        if let Some(sim) = &self.sim {
            // Virtual: run the clock until the cancellations complete.
            while self.home.in_flight() > 0 {
                self.park(Some(Duration::ZERO));
                let next = self
                    .driver
                    .borrow_mut()
                    .as_sim()
                    .and_then(|d| d.next_event());
                let Some(t) = next else { break };
                sim.now.set(sim.now.get().max(t));
                if let Some(d) = self.driver.borrow_mut().as_sim() {
                    d.advance_to(t);
                }
            }
        }
        let deadline = std::time::Instant::now() + limit;
        while self.home.in_flight() > 0 && std::time::Instant::now() < deadline {
            self.park(Some(Duration::from_millis(10)));
        }
    }
}

/// Shutdown, rule 8: claim, cancel and complete every task left in `owned`
/// and release the list's references. Queue entries keep theirs, for the
/// caller to release.
///
/// # Safety
/// The loop thread of `owned`'s runtime, not inside a poll (so no task in
/// the list is being polled or complete; one may have `RUNNING` set while
/// queued after waking itself, which shutdown takes over).
pub(crate) unsafe fn cancel_owned(owned: &OwnedList) {
    while let Some(t) = owned.pop() {
        // SAFETY: loop thread; the task was in the owned list, so it is not
        // complete and not being polled (caller's promise: not inside a poll);
        // `pop` handed us the list's reference, released last.
        unsafe {
            t.shutdown();
            t.release(1);
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if !self.driver_leaked.get() {
            // SAFETY: dropped once, here; no op is in flight (drain_ops
            // confirmed every completion, or we would be leaking instead:
            // `op` rule O5).
            unsafe { std::mem::ManuallyDrop::drop(&mut *self.driver.borrow_mut()) };
        }
        // The loop's pending frees first (they may be the last cells of a
        // chunk: `task/raw/slab.rs`, "Loop frees"), then
        // this thread's slab chunks of this runtime: no more spawns come, so
        // their unused slots go and each chunk (with the `Shared` it holds)
        // lives only as long as its tasks (`task/raw/slab.rs`).
        self.loop_frees.flush();
        crate::task::raw::retire_chunks_of(&self.shared);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    /// Whether tasks of `F` take a slab cell in this build (not under
    /// Miri, `coil_box_tasks` or fuzzing, where every cell is boxed).
    fn in_slab_of<F: std::future::Future>(_: &F) -> bool {
        crate::task::raw::in_slab::<F>()
    }

    /// The chunks alive in the class of `size`-byte cells (a closure, to
    /// ask again) and how many such cells a chunk holds.
    fn class_of_cells(size: usize) -> (impl Fn() -> usize + Copy, usize) {
        let count = move || crate::task::raw::chunks_and_slots(size).0;
        (count, crate::task::raw::chunks_and_slots(size).1)
    }

    /// A handle of one runtime's task dropped inside another runtime's
    /// loop: its cell is given back at once, not counted among the other
    /// loop's frees (`task/raw/slab.rs`, "Loop frees", "Owner only"), so
    /// its chunk goes while that loop still runs.
    #[test]
    #[cfg_attr(miri, ignore = "opens a driver")]
    fn a_cell_freed_in_another_runtimes_loop_is_given_back_at_once() {
        std::thread::spawn(|| {
            // A class of its own: a cell of 24 + 384 bytes.
            let body = || async { [7u8; 384] };
            if !in_slab_of(&body()) {
                return;
            }
            let (chunks, k) = class_of_cells(408);
            let a = crate::rt::Runtime::new().unwrap();
            let tasks = a.block_on(async move {
                let tasks: Vec<_> = (0..2 * k).map(|_| crate::spawn(body())).collect();
                crate::task::yield_now().await; // every task completes
                tasks
            });
            assert_eq!(chunks(), 2, "two full chunks of a's tasks");
            let b = crate::rt::Runtime::new().unwrap();
            b.block_on(async move {
                for mut t in tasks {
                    assert_eq!(t.try_take().unwrap().unwrap()[383], 7);
                }
                assert_eq!(chunks(), 0, "b's loop held back a's chunks");
            });
        })
        .join()
        .unwrap();
    }

    /// `task/raw/slab.rs`, "Loop frees": cells joined by their own loop are taken off their
    /// chunk a chunk at a time, so a chunk whose cells are all gone lives
    /// until the loop flushes, and never dies before: not while one of its
    /// cells is in use on another thread, even when that one is freed
    /// last, there; `block_on`'s return flushes, and the chunks go.
    #[test]
    #[cfg_attr(miri, ignore = "opens a driver")]
    fn a_loops_own_frees_are_taken_off_when_it_flushes() {
        std::thread::spawn(|| {
            // A class of its own: a cell of 24 + 408 bytes.
            let body = || async { [7u8; 408] };
            if !in_slab_of(&body()) {
                return; // every cell is boxed in this build
            }
            let (chunks, k) = class_of_cells(432);
            let rt = crate::rt::Runtime::new().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let other = std::thread::spawn(move || {
                let t: crate::task::Task<[u8; 408]> = rx.recv().unwrap();
                // Complete (the loop polled it before sending); its output is
                // dropped here, its cell freed by this thread.
                drop(t);
            });
            rt.block_on(async move {
                let mut tasks: Vec<_> = (0..2 * k).map(|_| crate::spawn(body())).collect();
                crate::task::yield_now().await; // every task completes
                assert_eq!(chunks(), 2);
                let last = tasks.pop().unwrap();
                for t in tasks {
                    assert_eq!(t.await.unwrap()[407], 7);
                }
                assert_eq!(chunks(), 2, "the loop's frees are pending");
                tx.send(last).unwrap();
                other.join().unwrap();
                assert_eq!(chunks(), 2, "the other thread's free was not the last");
            });
            assert_eq!(chunks(), 0, "block_on's return flushed the loop's frees");
        })
        .join()
        .unwrap();
    }

    /// "Loop frees", *Bounded*: `block_on` holds nothing back once it has
    /// returned, even when the last frees come from dropping its future,
    /// which happens after the main future is ready (a `poll_fn` main
    /// future owns the handles it joined until then), and even when it
    /// unwinds (the runtime kept and idle afterwards, as after a caught
    /// panic). Each case on a fresh thread, with a class of its own.
    #[test]
    #[cfg_attr(miri, ignore = "opens a driver")]
    fn block_on_holds_no_loop_frees_after_it_returns_or_unwinds() {
        use std::task::Poll;
        // Spawns two chunks' worth of `body()`s, joins them with
        // `try_take` (the handles kept, owned by the main future), and
        // ends the main future with `end`: the handles' frees come when
        // `block_on` drops it.
        fn case<const N: usize>(body: fn() -> crate::task::Task<[u8; N]>, unwind: bool) {
            std::thread::spawn(move || {
                let (chunks, k) = class_of_cells(24 + N);
                let rt = crate::rt::Runtime::new().unwrap();
                let mut tasks = Vec::new();
                let main = std::future::poll_fn(move |cx| {
                    if tasks.is_empty() {
                        tasks = (0..2 * k).map(|_| body()).collect();
                        cx.waker().wake_by_ref();
                        return Poll::Pending; // every task completes
                    }
                    for t in &mut tasks {
                        assert_eq!(t.try_take().unwrap().unwrap()[N - 1], 7);
                    }
                    assert_eq!(chunks(), 2);
                    if unwind {
                        panic!("the main future panics, its handles still held");
                    }
                    Poll::Ready(())
                });
                let caught =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(main)));
                assert_eq!(caught.is_err(), unwind);
                assert_eq!(
                    chunks(),
                    0,
                    "block_on left frees pending (unwind: {unwind})"
                );
                drop(rt);
            })
            .join()
            .unwrap();
        }
        let returns = || crate::spawn(async { [7u8; 400] });
        let unwinds = || crate::spawn(async { [7u8; 416] });
        if !in_slab_of(&async { [7u8; 400] }) {
            return; // every cell is boxed in this build
        }
        case::<400>(returns, false);
        case::<416>(unwinds, true);
    }

    /// A runtime dropped on the thread that ran it leaves no `Shared` in
    /// that thread's chunks once its tasks are gone (`retire_owner`):
    /// without it the current chunk's unused slots would keep the runtime's
    /// `Shared` (its unparker's descriptor, its debug checks) until the
    /// thread exits or spawns for another runtime. The spawned task's cell
    /// takes the slab (not under Miri or `coil_box_tasks`, where every cell
    /// is boxed and frees its `Shared` with itself).
    #[test]
    #[cfg_attr(miri, ignore = "opens a driver")]
    fn a_dropped_runtime_leaves_no_shared_in_this_threads_chunks() {
        std::thread::spawn(|| {
            let rt = crate::rt::Runtime::new().unwrap();
            let weak = Arc::downgrade(&rt.core().shared);
            let cell = rt.block_on(async { crate::spawn(async { [7u8; 392] }).await });
            assert_eq!(cell.unwrap()[391], 7);
            drop(rt);
            assert!(
                weak.upgrade().is_none(),
                "a chunk kept the runtime's Shared"
            );
        })
        .join()
        .unwrap();
    }

    /// A `Waker::wake` (by value) from a plain thread has published its
    /// entry (W1) when the runtime is dropped: shutdown's `close_remote`
    /// takes the entry, the task is cancelled and freed, and with it the
    /// chunk (or box) that held the runtime's `Arc<Shared>`, and then the
    /// `Core`'s own; the push has yet to set `PENDING` (W2) and unpark on
    /// that `Shared`. The push must keep it alive itself (`rt/mod.rs`,
    /// "What keeps the `Shared` alive during a push"): the hook, on the
    /// waking thread between W1 and W2, waits for the drop and checks. It
    /// panics rather than let the push go on to use a freed `Shared`.
    #[test]
    #[cfg(not(loom))]
    #[cfg_attr(miri, ignore = "opens a driver")]
    fn a_push_keeps_its_runtime_alive_after_publishing() {
        use std::sync::{Mutex, mpsc};
        use std::task::Waker;

        let rt = crate::rt::Runtime::new().unwrap();
        let weak = Arc::downgrade(&rt.core().shared);
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let s = slot.clone();
        // Detached, idle after its first poll: the owned list and the waker
        // below hold it.
        drop(rt.spawn(std::future::poll_fn(move |cx| {
            *s.lock().unwrap() = Some(cx.waker().clone());
            std::task::Poll::<()>::Pending
        })));
        rt.block_on(std::future::poll_fn(|cx| {
            if slot.lock().unwrap().is_some() {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }));
        let waker = slot.lock().unwrap().take().unwrap();
        let (published_tx, published_rx) = mpsc::channel::<()>();
        let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
        let waking = std::thread::spawn(move || {
            crate::rt::push_hook::set(move || {
                published_tx.send(()).unwrap();
                dropped_rx.recv().unwrap();
                assert!(
                    weak.strong_count() > 0,
                    "the runtime's Shared was freed while a push still uses it"
                );
            });
            // The task is idle and not remembered here (no loop): the
            // transition on this thread, then the remote queue's slot.
            waker.wake();
        });
        published_rx.recv().unwrap();
        drop(rt);
        dropped_tx.send(()).unwrap();
        waking.join().unwrap();
    }
}
