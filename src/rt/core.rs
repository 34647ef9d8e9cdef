//! The loop thread's half of a runtime, and the loop itself.
//!
//! One *tick*:
//! 1. move tasks woken or spawned from other threads onto the local queue;
//! 2. fire due timers: their tasks go to the *front* of the local queue, so
//!    a timer is not late by the length of a long queue;
//! 3. poll the tasks that were queued when the tick started (at most
//!    [`MAX_TICK`] of them), each at most once; tasks woken during the tick
//!    wait for a later one (fairness);
//! 4. if nothing is runnable, park in the driver until the next timer, an I/O
//!    event or an unpark; otherwise poll the driver without blocking once
//!    `event_interval` task polls have passed since the last time, so I/O
//!    (and, under io_uring, the submission of queued operations) is never
//!    starved by busy tasks.
//!
//! Bounding a tick keeps timers and remote wakes checked every few hundred
//! polls even when a burst queues 100 000 tasks at once.
//!
//! The future given to `block_on` is polled between ticks whenever its waker
//! fired.
//!
//! This file holds the [`Core`] struct, its construction, `block_on` and the
//! tick. The rest of the loop is in `impl Core` blocks next door:
//! `timers.rs` (the wheel glue and the park timeout), `io.rs` (parking in the
//! driver, op submission, chores, completion dispatch), `shutdown.rs` and
//! `sim.rs` (the simulator's virtual clock and seeded order).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use coil_arch::{Completion, Driver};

use crate::op::OpHome;

use super::budget::BUDGET;
use super::debug::DebugChecks;
use super::metrics::{self, Counters};
use super::wheel::Wheel;
use super::{Enter, Shared, Woken};
use crate::task::Task;
use crate::task::list::OwnedList;
use crate::task::raw::{self, PollOutcome, TaskRef};

mod run_queue;
use run_queue::RunQueue;

/// Most tasks polled in one tick.
pub(crate) const MAX_TICK: usize = 256;

/// Flushes a loop's pending frees when dropped (`Core::block_on`: after
/// the main future is dropped, also while unwinding).
struct FlushOnDrop<'a>(&'a crate::task::raw::LoopFrees);

impl Drop for FlushOnDrop<'_> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// The loop-thread state of one runtime. Never shared across threads; boxed
/// by the `Runtime` so its address is stable while `CURRENT` points to it.
pub(crate) struct Core {
    id: u64,
    pub(crate) shared: Arc<Shared>,
    /// The local run queue (`core/run_queue.rs`): tasks with their queue
    /// references.
    pub(super) run_queue: RunQueue<TaskRef>,
    pub(super) owned: OwnedList,
    /// This loop's frees of its own tasks' slab cells, not yet taken off
    /// their chunks (`task/raw/slab.rs`, "Loop frees").
    pub(crate) loop_frees: crate::task::raw::LoopFrees,
    /// The task being polled (`coil::task::current`): a copy standing for
    /// the poller's queue reference, cleared when the poll returns.
    current: Cell<Option<TaskRef>>,
    /// Set when the task being polled wakes itself (`note_self_wake`): the
    /// self-wake path of `task/state.rs`. Cleared before each poll.
    woke_self: Cell<bool>,
    /// Set at shutdown: `spawn` then drops its future at once.
    pub(super) closed: Cell<bool>,
    /// Coop budget of the poll in progress (see `budget.rs`).
    pub(crate) budget: Cell<u32>,
    /// Task polls since the driver was last polled.
    pub(super) polls_since_park: Cell<u32>,
    event_interval: u32,
    /// Spin-before-park budget (`spin.rs`); zero: park at once (the default).
    pub(super) spin: Duration,
    pub(super) wheel: RefCell<Wheel>,
    /// Tick 0 of the wheel.
    pub(super) origin: std::time::Instant,
    /// The start of the tick the wheel has advanced to (`timers.rs`,
    /// `Core::timers_elapsed`), kept by every advance of the wheel.
    pub(super) timers_at: Cell<std::time::Instant>,
    pub(super) fired: RefCell<Vec<Waker>>,
    /// Set while timer wakers run: `push_local` then collects into `front`.
    firing: Cell<bool>,
    front: RefCell<Vec<TaskRef>>,
    scratch: RefCell<(Vec<super::Woken>, Vec<TaskRef>)>,
    /// In-flight I/O ops, and what dropped ops and closed fds left for the
    /// loop to do (`op` rule O2). Every in-flight op and fd handle of this
    /// loop holds a clone, so it outlives the loop when they do.
    pub(super) home: Rc<OpHome>,
    /// Completions taken from the driver, being processed.
    pub(super) completions: RefCell<Vec<Completion>>,
    /// Scratch for `OpHome::take_chores`.
    pub(super) chores: RefCell<(Vec<RawFd>, Vec<u64>)>,
    /// The driver. `ManuallyDrop`: shutdown leaks it when the kernel does not
    /// confirm that every op finished (`op` rule O5).
    pub(super) driver: RefCell<std::mem::ManuallyDrop<Driver>>,
    /// The driver is io_uring (cached: asked on every socket/file op).
    pub(super) uring: bool,
    /// Shutdown leaked the driver (see `drain_ops`).
    pub(super) driver_leaked: Cell<bool>,
    /// Set for a simulator core (`rt/sim.rs`): virtual clock, seeded order.
    pub(crate) sim: Option<Box<super::sim::SimState>>,
    /// Debug mode's checks, `None` when it is off (one pointer, one branch
    /// per task poll). The same `Arc` as `shared.debug`.
    pub(super) debug: Option<Arc<DebugChecks>>,
    /// Debug mode: time of the current loop turn spent in task polls and
    /// parked in the driver, which the stall check leaves out.
    pub(super) debug_excluded: Cell<Duration>,
    /// Debug mode: the await tree of the task poll in progress (`Handle::dump`).
    await_recorder: super::debug::Recorder,
    /// The timeline trace's buffer (`trace.rs`), `None` when it is off.
    pub(super) trace: Option<Box<super::trace::Tracer>>,
    /// Debug mode or the trace is on: task polls take `run_task_timed`.
    instrumented: bool,
    /// Counters, published to `shared.metrics` on each park.
    pub(super) counters: Counters,
    /// Tasks need not be `Send`, so neither their loop nor its runtime is.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.id)
            .field("tasks", &self.owned.len())
            .field("queued", &self.run_queue.len())
            .field("timers", &self.wheel.borrow().len())
            .finish()
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_main();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_main();
    }
}

impl Core {
    pub(crate) fn new(driver: Driver, event_interval: u32) -> Core {
        let id = super::next_core_id();
        let uring = driver.kind() == coil_arch::DriverKind::Uring;
        let shared = Arc::new(Shared::new(driver.unparker(), id));
        let origin = std::time::Instant::now();
        Core {
            id,
            shared,
            run_queue: RunQueue::new(),
            owned: OwnedList::default(),
            loop_frees: Default::default(),
            current: Cell::new(None),
            woke_self: Cell::new(false),
            closed: Cell::new(false),
            budget: Cell::new(BUDGET),
            polls_since_park: Cell::new(0),
            event_interval: event_interval.max(1),
            spin: Duration::ZERO,
            wheel: RefCell::new(Wheel::new()),
            origin,
            timers_at: Cell::new(origin),
            fired: RefCell::new(Vec::new()),
            firing: Cell::new(false),
            front: RefCell::new(Vec::new()),
            scratch: RefCell::new((Vec::new(), Vec::new())),
            home: Rc::new(OpHome::new(id)),
            completions: RefCell::new(Vec::new()),
            chores: RefCell::default(),
            driver: RefCell::new(std::mem::ManuallyDrop::new(driver)),
            driver_leaked: Cell::new(false),
            uring,
            sim: None,
            debug: None,
            debug_excluded: Cell::new(Duration::ZERO),
            await_recorder: Default::default(),
            trace: None,
            instrumented: false,
            counters: Counters::default(),
            _not_send: std::marker::PhantomData,
        }
    }

    /// Turns debug mode's checks on (`Builder::debug`).
    pub(super) fn with_debug(mut self, checks: DebugChecks) -> Core {
        let checks = Arc::new(checks);
        Arc::get_mut(&mut self.shared)
            .expect("a new core's Shared is not yet cloned")
            .debug = Some(checks.clone());
        self.debug = Some(checks);
        self.instrumented = true;
        self
    }

    /// Turns the timeline trace on (`Builder::trace`), writing to `path`.
    pub(super) fn with_trace(mut self, path: std::path::PathBuf) -> Core {
        self.trace = Some(Box::new(super::trace::Tracer::new(path, self.id)));
        self.instrumented = true;
        self
    }

    /// Process-unique id of this runtime.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Debug mode or the trace is on (every park is timed).
    pub(super) fn instrumented(&self) -> bool {
        self.instrumented
    }

    /// Debug mode: report the line `what` builds; nothing (and `what` is
    /// not called) when debug mode is off.
    pub(crate) fn debug_report(&self, what: impl FnOnce() -> String) {
        if let Some(checks) = &self.debug {
            checks.report(&what());
        }
    }

    /// Copy the counters to `shared.metrics` (`Handle::metrics`).
    pub(crate) fn publish_metrics(&self) {
        let depth = self.run_queue.len();
        let live = self.owned.len();
        self.shared.metrics.publish(&self.counters, depth, live);
    }

    /// Number of live (not yet completed) tasks.
    pub(crate) fn task_count(&self) -> usize {
        self.owned.len()
    }

    /// The task being polled on this loop, if a task (not the `block_on`
    /// future) is running.
    pub(crate) fn current_task(&self) -> Option<TaskRef> {
        self.current.get()
    }

    /// A wake of `task` on this thread: if it is the task being polled, note
    /// it (the poll's end queues the task again, running while queued:
    /// `task/state.rs`) and return true; the caller then leaves the state
    /// word alone.
    #[inline(always)]
    pub(crate) fn note_self_wake(&self, task: TaskRef) -> bool {
        let own = self.current.get() == Some(task);
        if own {
            self.woke_self.set(true);
        }
        own
    }

    /// Every task of this loop that has not finished (its owned list), in
    /// the list's order (`task/list.rs`: boxed cells newest first, then the
    /// slab cells chunk by chunk), each with a new reference (a waker's kind) that the
    /// caller must release.
    pub(crate) fn live_tasks(&self) -> Vec<TaskRef> {
        let mut out = Vec::with_capacity(self.owned.len());
        self.owned.for_each(|t| out.push(t.clone_ref()));
        out
    }

    /// Queue a task on this loop.
    ///
    /// # Safety
    /// The loop thread; `task` belongs to this loop and the caller hands over
    /// its queue reference (`SCHEDULED` set for it, rule 2).
    #[inline]
    pub(crate) unsafe fn push_local(&self, task: TaskRef) {
        if self.firing.get() {
            self.front.borrow_mut().push(task);
        } else {
            self.run_queue.push_back(task);
        }
    }

    /// `push_local` for a task handed back by its own poll (it woke
    /// itself): to the back of the queue. `firing` is set only for the
    /// duration of `wake_to_front` (cleared on unwind too), which polls no
    /// task, so it is clear once a poll has returned: the check of
    /// `push_local` is left out here (asserted in debug builds).
    ///
    /// # Safety
    /// As for [`Core::push_local`].
    #[inline(always)]
    unsafe fn requeue(&self, task: TaskRef) {
        debug_assert!(!self.firing.get(), "a task poll inside wake_to_front");
        self.run_queue.push_back(task);
    }

    /// Spawn `future` on this loop; `at` is the caller's location, kept
    /// (in debug mode only) for reports about the task.
    #[inline]
    pub(crate) fn spawn<F>(
        &self,
        future: F,
        name: Option<Arc<str>>,
        at: &'static std::panic::Location<'static>,
    ) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if self.closed.get() {
            let t = raw::allocate_cancelled(future, &self.shared, name);
            // SAFETY: the handle's reference, the only one; Output matches.
            return unsafe { Task::from_raw(t) };
        }
        let record = self.debug.as_ref().map(|checks| (checks, name.clone()));
        metrics::add(&self.counters.tasks_spawned, 1);
        let t = raw::allocate(future, &self.shared, name);
        // The id is the allocation's (`task/raw.rs`): recorded after it.
        if let Some((checks, name)) = record {
            checks.record_spawn(t.id().as_u64(), at, name);
        }
        // `allocate` took a slab cell iff `in_slab::<F>()`, a constant: the
        // list's push then has no test of the cell's kind (W1 −3 a task).
        // SAFETY: a new task of this loop, on its thread: its three
        // references go to the owned list, the run queue and the handle.
        unsafe {
            self.owned.push_placed(t, raw::in_slab::<F>());
            self.push_local(t);
            Task::from_raw(t)
        }
    }

    /// Drive `future` to completion, running tasks and timers meanwhile.
    ///
    /// A thin generic shell: only the poll of `future` and the move of its
    /// output depend on `F`; the loop itself ([`Core::run_main`]) is compiled
    /// once, not once per main future type in every crate that calls it.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        // Entered before the future is pinned, so that the future is also
        // dropped (after `run_main`, or while unwinding) with this loop current.
        let _enter = Enter::new(self);
        // Declared between the two: dropped after the future (whose drop
        // may free the loop's last cells: a main future that owns handles
        // it joined) and before `_enter`, on return and while unwinding
        // ("Loop frees" in `task/raw/slab.rs`, *Bounded*).
        let _flush = FlushOnDrop(&self.loop_frees);
        let mut future = std::pin::pin!(future);
        let mut output = None;
        self.run_main(&mut |cx| match future.as_mut().poll(cx) {
            Poll::Ready(v) => {
                output = Some(v);
                true
            }
            Poll::Pending => false,
        });
        match output {
            Some(v) => v,
            None => unreachable!("run_main returns once the main future is ready"),
        }
    }

    /// The loop of [`Core::block_on`]: `poll` polls the main future and
    /// returns whether it is ready (its output kept by the caller); returns
    /// once it is. `CURRENT` is this core already.
    #[inline(never)]
    fn run_main(&self, poll: &mut dyn FnMut(&mut Context<'_>) -> bool) {
        let waker = Waker::from(self.shared.clone());
        let mut cx = Context::from_waker(&waker);
        self.shared.set_main_woken();
        loop {
            let turn = self.debug.as_ref().map(|_| self.start_turn());
            if self.shared.take_main_wake() {
                self.budget.set(BUDGET);
                let ready = match &self.debug {
                    None => poll(&mut cx),
                    Some(c) => c.poll_main(&self.await_recorder, || poll(&mut cx)),
                };
                if ready {
                    if let Some(start) = turn {
                        self.end_turn(start);
                    }
                    // `Handle::metrics` after `block_on` sees all of it.
                    self.publish_metrics();
                    return;
                }
                // The main future counts as a poll too: a main future that
                // only yields must not starve the driver.
                let polls = self.polls_since_park.get();
                self.polls_since_park.set(polls.saturating_add(1));
            }
            self.tick();
            if let Some(start) = turn {
                self.end_turn(start);
            }
        }
    }

    /// Debug mode: a loop turn (the `block_on` future's poll, then a tick)
    /// starts now.
    #[cold]
    fn start_turn(&self) -> std::time::Instant {
        self.debug_excluded.set(Duration::ZERO);
        std::time::Instant::now()
    }

    /// Debug mode: the turn that began at `start` ended. If the loop was
    /// held past the threshold outside task polls (which `run_task_timed`
    /// reports) and outside parks, report a stall: the `block_on` future's
    /// own poll, timer and waker callbacks, op completions, chores.
    #[cold]
    fn end_turn(&self, start: std::time::Instant) {
        let Some(checks) = &self.debug else { return };
        let held = start.elapsed().saturating_sub(self.debug_excluded.get());
        if held >= checks.slow_poll {
            checks.report(&format!(
                "coil: the loop did not turn for {:.1} ms outside task polls (debug \
                 threshold {} ms): the block_on future's own poll, a timer or waker \
                 callback, or a Drop run by the loop blocked it",
                held.as_secs_f64() * 1e3,
                checks.slow_poll.as_millis()
            ));
        }
    }

    fn tick(&self) {
        if self.shared.remote_pending() {
            self.drain_remote();
        }
        self.fire_timers();
        let queued = self.run_queue.len();
        let n = queued.min(MAX_TICK);
        metrics::add(&self.counters.polls, n as u64);
        if queued as u64 > self.counters.run_queue_max.get() {
            self.counters.run_queue_max.set(queued as u64);
        }
        if let Some(sim) = &self.sim {
            self.sim_poll_batch(sim, n);
        } else if self.instrumented {
            self.poll_batch_timed(n);
        } else {
            // The hot loop: one branch on `instrumented` per tick, not per
            // task.
            for _ in 0..n {
                let Some(task) = self.run_queue.pop_front() else {
                    break;
                };
                self.run_task_plain(task);
            }
        }
        // A burst drained: give its buffer back (`RunQueue::shrink_if_empty`).
        self.run_queue.shrink_if_empty();
        let polls = self.polls_since_park.get().saturating_add(n as u32);
        self.polls_since_park.set(polls);
        // Step L2 of the remote wake protocol (rt/mod.rs): decided after
        // the remote queue was taken at the start of the tick.
        let idle = self.run_queue.is_empty() && !self.shared.wake_pending();
        if idle {
            // A sleeping loop holds no chunk back ("Loop frees").
            self.loop_frees.flush();
            if let Some(sim) = &self.sim {
                self.sim_idle(sim);
                return;
            }
            let mut timeout = self.park_timeout();
            if !self.spin.is_zero() {
                if self.spin_for_work(timeout) {
                    return;
                }
                timeout = self.park_timeout();
            }
            self.park(timeout);
        } else if polls >= self.event_interval {
            self.park(Some(Duration::ZERO));
        }
    }

    /// Poll one task taken from the run queue; returns whether it completed.
    #[inline(always)]
    pub(super) fn run_task(&self, task: TaskRef) -> bool {
        if self.instrumented {
            self.run_task_timed(task)
        } else {
            self.run_task_plain(task)
        }
    }

    /// The tick's `n` polls in debug mode or with the trace on.
    #[cold]
    #[inline(never)]
    fn poll_batch_timed(&self, n: usize) {
        for _ in 0..n {
            let Some(task) = self.run_queue.pop_front() else {
                break;
            };
            self.run_task_timed(task);
        }
    }

    /// `run_task` in debug mode or with the trace on. Debug mode: a poll
    /// longer than the threshold is reported, naming the task (asyncio's
    /// "Executing <Task> took 0.5 seconds"), and the poll records the
    /// task's await tree. Trace: the poll is a slice of the timeline.
    #[inline(never)]
    fn run_task_timed(&self, task: TaskRef) -> bool {
        let start = std::time::Instant::now();
        let id = task.id().as_u64();
        // Named before the poll: a task that completes may be freed by it.
        let traced = self
            .trace
            .as_ref()
            .map(|t| (t, super::trace::task_name(task)));
        let Some(checks) = &self.debug else {
            let done = self.run_task_plain(task);
            if let Some((t, name)) = traced {
                t.poll(&name, id, start, start.elapsed());
            }
            return done;
        };
        let who = checks.begin_poll(task, start);
        let rec = &self.await_recorder;
        let done = rec.during(|| self.run_task_plain(task));
        checks.end_poll(id, &mut rec.nodes(), done);
        let took = start.elapsed();
        if let Some((t, name)) = traced {
            t.poll(&name, id, start, took);
        }
        self.debug_excluded.set(self.debug_excluded.get() + took);
        if took >= checks.slow_poll {
            checks.report(&format!(
                "coil: {who} held the loop for {:.1} ms in one poll (debug threshold {} ms): \
                 no other task ran meanwhile; move blocking calls to \
                 coil::blocking::spawn_blocking, or yield in long computations \
                 (coil::task::yield_now)",
                took.as_secs_f64() * 1e3,
                checks.slow_poll.as_millis()
            ));
        }
        done
    }

    #[inline(always)]
    fn run_task_plain(&self, task: TaskRef) -> bool {
        self.budget.set(BUDGET);
        self.current.set(Some(task));
        // SAFETY: popped from the run queue with its queue reference, on
        // the loop thread (rules 1 and 2 in task/mod.rs); `poll_task` hands
        // the queue reference back to `requeue` with the task.
        let done = unsafe { poll_task(&self.owned, task, &self.woke_self, |t| self.requeue(t)) };
        // Cleared before anything else runs: after the poll the copy may
        // no longer stand for a reference.
        self.current.set(None);
        done
    }

    pub(super) fn has_work(&self) -> bool {
        !self.run_queue.is_empty() || self.shared.wake_pending()
    }

    /// Wake `wakers`; coil tasks of this loop go to the front of the queue.
    ///
    /// A waker may panic (a foreign one, handed to a timer or an op by a
    /// future with its own context): the unwind still ends the firing state
    /// and moves the tasks woken so far to the front; otherwise every later
    /// push of the loop would be staged in `front` until the next timer.
    /// The wakers after the panicking one are not lost either
    /// (`wake_batch`).
    pub(crate) fn wake_to_front(&self, wakers: &mut Vec<Waker>) {
        self.wake_batch(wakers, true);
    }

    /// Wake `wakers`, in order; with `front`, coil tasks of this loop go to
    /// the front of the queue (`wake_to_front`), else where their wakes put
    /// them (the back).
    ///
    /// With nothing queued the back is the front: the tasks are pushed
    /// there in wake order, which is where staging them in `front` and
    /// moving that to the front would put them, without the staging (an
    /// idle loop's timers, W4's 200 ms of firing).
    ///
    /// If a waker panics, the ones after it are not dropped unwoken (their
    /// tasks would wait forever): the unwind files them as timers due at
    /// the wheel's next tick, which the next tick fires (a loop whose wheel
    /// is borrowed by the unwinding code, which no waker of this loop does,
    /// drops them).
    pub(super) fn wake_batch(&self, wakers: &mut Vec<Waker>, front: bool) {
        struct Batch<'a, 'b> {
            core: &'a Core,
            front: bool,
            rest: std::vec::Drain<'b, Waker>,
        }
        impl Drop for Batch<'_, '_> {
            fn drop(&mut self) {
                let core = self.core;
                if self.front {
                    core.firing.set(false);
                    let mut front = core.front.borrow_mut();
                    for t in front.drain(..).rev() {
                        core.run_queue.push_front(t);
                    }
                }
                // Empty unless a waker panicked.
                if self.rest.len() > 0
                    && let Ok(mut wheel) = core.wheel.try_borrow_mut()
                {
                    let at = wheel.elapsed() + 1;
                    for w in self.rest.by_ref() {
                        wheel.insert(at, w);
                    }
                }
            }
        }
        let front = front && !self.run_queue.is_empty();
        if front {
            self.firing.set(true);
        }
        let mut batch = Batch {
            core: self,
            front,
            rest: wakers.drain(..),
        };
        for w in batch.rest.by_ref() {
            w.wake();
        }
    }

    fn drain_remote(&self) {
        let mut scratch = self.scratch.borrow_mut();
        let (woken, spawned) = &mut *scratch;
        self.shared.take_remote(woken, spawned);
        metrics::add(&self.counters.tasks_spawned, spawned.len() as u64);
        // SAFETY: the loop thread; remote entries carry their references
        // (`push_spawned`, `schedule`), which `adopt` hands to `push_local`.
        unsafe {
            adopt(&self.owned, spawned.drain(..), woken.drain(..), |t| {
                self.push_local(t)
            })
        };
    }
}

// The task-handling steps of the loop, as functions of the pieces they touch
// so that the loom models (`rt/remote_loom.rs`) run them without a driver.

/// Poll a task popped from a run queue and act on the outcome: queue it
/// again through `push_local` if it was woken during the poll, or release
/// the poller's and the list's references of a completed task (which the
/// poll unlinked from `owned`) unless its completion released them. Returns whether the task completed. `woke_self` is the
/// loop's self-wake flag (`Core::note_self_wake`), cleared here first.
///
/// # Safety
/// The loop thread of `owned`'s runtime; `task` was popped from a run queue
/// with its queue reference (rules 1 and 2 in `task/mod.rs`), and is in
/// `owned`. `push_local` receives the queue reference with the task.
#[inline(always)]
pub(crate) unsafe fn poll_task(
    owned: &OwnedList,
    task: TaskRef,
    woke_self: &Cell<bool>,
    push_local: impl FnOnce(TaskRef),
) -> bool {
    woke_self.set(false);
    // SAFETY: the caller's promise.
    match unsafe { task.poll(woke_self, owned) } {
        PollOutcome::Idle => false,
        PollOutcome::Reschedule => {
            push_local(task);
            false
        }
        PollOutcome::Released => true,
        PollOutcome::Complete => {
            // SAFETY: the poll unlinked it from `owned`; the poller's and
            // the list's references are ours, and `task` is not used again.
            unsafe { task.release(2) };
            true
        }
    }
}

/// Loop thread: take over what the remote queue held. Tasks spawned from
/// other threads are bound to this loop (owned list, rule 1) and queued;
/// remotely woken tasks are queued: a queued entry as it is, a wake entry
/// after the transition its waker left to the loop (`rt/mod.rs`, "Two
/// kinds of woken entry"), which may instead release its reference.
///
/// # Safety
/// The loop thread of `owned`'s runtime, outside any poll; the entries come
/// from that runtime's remote queue (`take_remote`, `close_remote`) with
/// their references: `spawned` ones are in no list and carry the list's
/// reference too. `push_local` receives each task with its queue reference.
pub(crate) unsafe fn adopt(
    owned: &OwnedList,
    spawned: impl IntoIterator<Item = TaskRef>,
    woken: impl IntoIterator<Item = Woken>,
    mut push_local: impl FnMut(TaskRef),
) {
    for t in spawned {
        // SAFETY: an unbound task of this loop, on its thread, with the
        // list's reference (caller's promise).
        unsafe { owned.push(t) };
        push_local(t);
    }
    for w in woken {
        if w.is_wake() {
            // SAFETY: the loop thread, outside any poll; a wake entry of this
            // runtime's queue with its reference (caller's promise), which
            // becomes the queue reference for `push_local` or is released.
            unsafe { w.task().wake_drained(&mut push_local) };
        } else {
            push_local(w.task());
        }
    }
}
