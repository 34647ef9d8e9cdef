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

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use coil_arch::{Completion, Driver, OpCode, Submitted};
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::rc::Rc;

use crate::op::{Completed, OpHome, OrphanDone, SubmitOutcome};

use super::budget::BUDGET;
use super::{Enter, Shared};
use crate::task::Task;
use crate::task::list::OwnedList;
use crate::task::raw::{self, PollOutcome, TaskRef};
use crate::time::Instant;
use crate::time::wheel::{Key, Wheel};

/// Most tasks polled in one tick.
pub(crate) const MAX_TICK: usize = 256;

/// The loop-thread state of one runtime. Never shared across threads; boxed
/// by the `Runtime` so its address is stable while `CURRENT` points to it.
pub(crate) struct Core {
    id: u64,
    pub(crate) shared: Arc<Shared>,
    run_queue: RefCell<VecDeque<TaskRef>>,
    owned: OwnedList,
    /// Set at shutdown: `spawn` then drops its future at once.
    closed: Cell<bool>,
    /// Coop budget of the poll in progress (see `budget.rs`).
    pub(crate) budget: Cell<u32>,
    /// Task polls since the driver was last polled.
    polls_since_park: Cell<u32>,
    event_interval: u32,
    wheel: RefCell<Wheel>,
    /// Tick 0 of the wheel.
    origin: std::time::Instant,
    fired: RefCell<Vec<Waker>>,
    /// Set while timer wakers run: `push_local` then collects into `front`.
    firing: Cell<bool>,
    front: RefCell<Vec<TaskRef>>,
    scratch: RefCell<(Vec<TaskRef>, Vec<TaskRef>)>,
    /// In-flight I/O ops, and what dropped ops and closed fds left for the
    /// loop to do (`op` rule O2). Every in-flight op and fd handle of this
    /// loop holds a clone, so it outlives the loop when they do.
    home: Rc<OpHome>,
    /// Completions taken from the driver, being processed.
    completions: RefCell<Vec<Completion>>,
    /// Scratch for `OpHome::take_chores`.
    chores: RefCell<(Vec<RawFd>, Vec<u64>)>,
    /// The driver. `ManuallyDrop`: shutdown leaks it when the kernel does not
    /// confirm that every op finished (`op` rule O5).
    driver: RefCell<std::mem::ManuallyDrop<Driver>>,
    /// The driver is io_uring (cached: asked on every socket/file op).
    uring: bool,
    /// Shutdown leaked the driver (see `drain_ops`).
    driver_leaked: Cell<bool>,
    /// Set for a simulator core (`rt/sim.rs`): virtual clock, seeded order.
    pub(crate) sim: Option<Box<super::sim::SimState>>,
    /// Tasks need not be `Send`, so neither their loop nor its runtime is.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.id)
            .field("tasks", &self.owned.len())
            .field("queued", &self.run_queue.borrow().len())
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
        Core {
            id,
            shared,
            run_queue: RefCell::new(VecDeque::with_capacity(256)),
            owned: OwnedList::default(),
            closed: Cell::new(false),
            budget: Cell::new(BUDGET),
            polls_since_park: Cell::new(0),
            event_interval: event_interval.max(1),
            wheel: RefCell::new(Wheel::new()),
            origin: std::time::Instant::now(),
            fired: RefCell::new(Vec::new()),
            firing: Cell::new(false),
            front: RefCell::new(Vec::new()),
            scratch: RefCell::new((Vec::new(), Vec::new())),
            home: Rc::new(OpHome::new()),
            completions: RefCell::new(Vec::new()),
            chores: RefCell::default(),
            driver: RefCell::new(std::mem::ManuallyDrop::new(driver)),
            driver_leaked: Cell::new(false),
            uring,
            sim: None,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Makes this a simulator core (its driver must be the sim driver).
    pub(crate) fn with_sim(mut self, sim: super::sim::SimState) -> Core {
        self.sim = Some(Box::new(sim));
        self
    }

    /// Runs `f` on the simulator driver; `None` for a real core.
    pub(crate) fn with_sim_driver<R>(
        &self,
        f: impl FnOnce(&mut coil_arch::sim::SimDriver) -> R,
    ) -> Option<R> {
        self.sim.as_ref()?;
        self.driver.borrow_mut().as_sim().map(f)
    }

    /// The virtual time of a simulator core; `None` for a real one.
    #[inline]
    pub(crate) fn virtual_now(&self) -> Option<std::time::Instant> {
        self.sim.as_ref().map(|sim| self.origin + sim.now.get())
    }

    /// Process-unique id of this runtime.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Number of live (not yet completed) tasks.
    pub(crate) fn task_count(&self) -> usize {
        self.owned.len()
    }

    /// Number of pending timers.
    pub(crate) fn timer_count(&self) -> usize {
        self.wheel.borrow().len()
    }

    /// I/O ops in flight.
    pub(crate) fn io_op_count(&self) -> usize {
        self.home.in_flight()
    }

    /// This loop's op home (`op` rule O2).
    #[inline]
    pub(crate) fn home(&self) -> &Rc<OpHome> {
        &self.home
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
            self.run_queue.borrow_mut().push_back(task);
        }
    }

    pub(crate) fn spawn<F>(&self, future: F, name: Option<Box<str>>) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let id = super::next_task_id();
        if self.closed.get() {
            let t = raw::allocate_cancelled(future, self.shared.clone(), id, name);
            // SAFETY: the handle's reference, the only one; Output matches.
            return unsafe { Task::from_raw(t) };
        }
        let t = raw::allocate(future, self.shared.clone(), id, name);
        // SAFETY: a new task of this loop, on its thread: its three
        // references go to the owned list, the run queue and the handle.
        unsafe {
            self.owned.push(t);
            self.push_local(t);
            Task::from_raw(t)
        }
    }

    /// Drive `future` to completion, running tasks and timers meanwhile.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _enter = Enter::new(self);
        let waker = Waker::from(self.shared.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        self.shared.main_woken.store(true, Ordering::SeqCst);
        loop {
            if self.shared.take_main_wake() {
                self.budget.set(BUDGET);
                if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                    return v;
                }
                // The main future counts as a poll too: a main future that
                // only yields must not starve the driver.
                let polls = self.polls_since_park.get();
                self.polls_since_park.set(polls.saturating_add(1));
            }
            self.tick();
        }
    }

    fn tick(&self) {
        if self.shared.remote_pending() {
            self.drain_remote();
        }
        self.fire_timers();
        let n = self.run_queue.borrow().len().min(MAX_TICK);
        if let Some(sim) = &self.sim {
            self.sim_poll_batch(sim, n);
        } else {
            for _ in 0..n {
                let Some(task) = self.run_queue.borrow_mut().pop_front() else {
                    break;
                };
                self.run_task(task);
            }
        }
        let polls = self.polls_since_park.get().saturating_add(n as u32);
        self.polls_since_park.set(polls);
        // Step L2 of the remote wake protocol (rt/mod.rs): decided after
        // the remote queue was taken at the start of the tick.
        let idle = self.run_queue.borrow().is_empty() && !self.shared.wake_pending();
        if idle {
            if let Some(sim) = &self.sim {
                self.sim_idle(sim);
                return;
            }
            let timeout = self.park_timeout();
            self.park(timeout);
        } else if polls >= self.event_interval {
            self.park(Some(Duration::ZERO));
        }
    }

    /// Poll one task taken from the run queue; returns whether it completed.
    #[inline(always)]
    fn run_task(&self, task: TaskRef) -> bool {
        self.budget.set(BUDGET);
        // SAFETY: popped from the run queue with its queue reference, on
        // the loop thread (rules 1 and 2 in task/mod.rs); `poll_task` hands
        // the queue reference back to `push_local` with the task.
        unsafe { poll_task(&self.owned, task, |t| self.push_local(t)) }
    }

    // ----- simulator (rt/sim.rs) -----

    /// The tick's first `n` queued tasks, polled in a seeded random order
    /// (each still at most once per tick).
    #[cold]
    fn sim_poll_batch(&self, sim: &super::sim::SimState, n: usize) {
        let mut batch = std::mem::take(&mut *sim.batch.borrow_mut());
        batch.extend(self.run_queue.borrow_mut().drain(..n));
        sim.shuffle(&mut batch);
        for task in batch.drain(..) {
            let id = sim.local_id(task);
            sim.record(id, super::sim::EventKind::Poll);
            if self.run_task(task) {
                sim.record(id, super::sim::EventKind::Complete);
            }
        }
        *sim.batch.borrow_mut() = batch;
        // One more for the tick itself (the main future may be what spins).
        sim.now
            .set(sim.now.get() + super::sim::POLL_COST * (n as u32 + 1));
        if let Some(d) = self.driver.borrow_mut().as_sim() {
            d.advance_to(sim.now.get());
        }
    }

    /// Nothing is runnable: deliver due I/O, else jump the virtual clock to
    /// the next timer or I/O event, else (after a real-time grace period for
    /// wakes from other threads) report the deadlock.
    #[cold]
    fn sim_idle(&self, sim: &super::sim::SimState) {
        self.park(Some(Duration::ZERO));
        if self.has_work() {
            return;
        }
        let timer = self
            .wheel
            .borrow()
            .next_expiration()
            .map(Duration::from_millis);
        let io = self
            .driver
            .borrow_mut()
            .as_sim()
            .and_then(|d| d.next_event());
        let next = match (timer, io) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = next {
            let t = t.max(sim.now.get());
            sim.now.set(t);
            if let Some(d) = self.driver.borrow_mut().as_sim() {
                d.advance_to(t);
            }
            sim.record(0, super::sim::EventKind::Advance);
            return;
        }
        // Only another thread (the blocking pool, a Handle) can help now.
        const GRACE: Duration = Duration::from_millis(250);
        self.park(Some(GRACE));
        if self.has_work() {
            return;
        }
        panic!(
            "coil::sim: deadlock at virtual time {:?}: no task is runnable, no timer is pending \
             and no I/O can complete, but the main future has not finished ({} tasks alive, \
             {} I/O ops waiting); seed {} (replay with COIL_SIM_SEED={})",
            sim.now.get(),
            self.owned.len(),
            self.home.in_flight(),
            sim.seed,
            sim.seed
        );
    }

    fn has_work(&self) -> bool {
        !self.run_queue.borrow().is_empty() || self.shared.wake_pending()
    }

    fn park(&self, timeout: Option<Duration>) {
        self.polls_since_park.set(0);
        {
            let mut driver = self.driver.borrow_mut();
            self.do_chores(&mut driver);
            if let Err(e) = driver.park(timeout) {
                panic!(
                    "coil: the {} driver failed while waiting for events: {e}",
                    driver.kind()
                );
            }
            let mut out = self.completions.borrow_mut();
            out.extend(driver.completions());
            if out.is_empty() {
                return;
            }
        }
        self.dispatch_completions();
    }

    /// Hand completions to their ops: wake waiting futures (at the front of
    /// the queue, like timers) and finish orphans.
    fn dispatch_completions(&self) {
        let mut done = std::mem::take(&mut *self.completions.borrow_mut());
        if let Some(sim) = &self.sim {
            for c in &done {
                sim.record(0, super::sim::EventKind::Io(c.user_data, c.result));
            }
        }
        let mut orphans: Vec<OrphanDone> = Vec::new();
        let mut wakers = std::mem::take(&mut *self.fired.borrow_mut());
        {
            for c in done.drain(..) {
                match self.home.complete(&c) {
                    Completed::Wake(w) => wakers.push(w),
                    Completed::Orphan(o) => orphans.push(o),
                    Completed::Nothing => {}
                }
            }
        }
        *self.completions.borrow_mut() = done;
        self.wake_to_front(&mut wakers);
        *self.fired.borrow_mut() = wakers;
        for o in orphans {
            o.finish();
        }
    }

    /// Wake `wakers`; coil tasks of this loop go to the front of the queue.
    fn wake_to_front(&self, wakers: &mut Vec<Waker>) {
        self.firing.set(true);
        for w in wakers.drain(..) {
            w.wake();
        }
        self.firing.set(false);
        let mut front = self.front.borrow_mut();
        if !front.is_empty() {
            let mut queue = self.run_queue.borrow_mut();
            for t in front.drain(..).rev() {
                queue.push_front(t);
            }
        }
    }

    /// Wakes `wakers` the way fired timers and I/O completions are woken,
    /// for the `run_queue` fuzz target (which has neither: real time and I/O
    /// would make the order it checks nondeterministic).
    #[cfg(fuzzing)]
    pub(crate) fn fuzz_wake_to_front(&self, wakers: &mut Vec<Waker>) {
        self.wake_to_front(wakers);
    }

    // ----- I/O ops -----

    /// Before the driver is used: forget the fds closed since the last call
    /// (so no new op meets a stale registration), then send the cancels of
    /// ops dropped in flight (`op` rule O2).
    #[inline]
    fn do_chores(&self, driver: &mut Driver) {
        if self.home.has_chores() {
            self.do_chores_slow(driver);
        }
    }

    #[cold]
    fn do_chores_slow(&self, driver: &mut Driver) {
        let mut chores = self.chores.borrow_mut();
        let (fds, cancels) = &mut *chores;
        self.home.take_chores(fds, cancels);
        for fd in fds.drain(..) {
            driver.release_fd(fd);
        }
        for key in cancels.drain(..) {
            driver.cancel(key);
        }
    }

    /// Submit an op: `Queued(key)` while it is in flight (its slot waits with
    /// `waker`), or `Done(result)` if the driver finished it during the call
    /// (epoll, for I/O that did not have to wait: the table never sees it).
    ///
    /// # Safety
    ///
    /// As `Driver::submit`: when the answer is `Queued`, `op` stays valid and
    /// unmoved until its completion is dispatched (`op` rule O1).
    #[inline]
    pub(crate) unsafe fn submit_op<C: OpCode + 'static>(
        &self,
        op: NonNull<C>,
        waker: &Waker,
    ) -> io::Result<SubmitOutcome> {
        let mut driver = self.driver.borrow_mut();
        self.do_chores(&mut driver);
        let ud = self.home.key_for_submit();
        // SAFETY: forwarded from the caller. The driver calls nothing back
        // into the table, so the key stays free until `insert_waiting`.
        match unsafe { driver.submit_or_finish(ud, op) }? {
            Submitted::Queued => {
                self.home.insert_waiting(ud, waker);
                Ok(SubmitOutcome::Queued(ud))
            }
            Submitted::Done(res) => Ok(SubmitOutcome::Done(res)),
        }
    }

    /// Fuzzing hook (`fuzz::op_lifecycle`): do the chores, then hand every
    /// due completion to its op (wake the future, or finish the orphan),
    /// without running a task or moving the clock.
    #[cfg(fuzzing)]
    pub(crate) fn fuzz_park(&self) {
        self.park(Some(Duration::ZERO));
    }

    /// The active driver's kind (sockets are created blocking for io_uring,
    /// non-blocking for epoll).
    pub(crate) fn is_uring(&self) -> bool {
        self.uring
    }

    fn drain_remote(&self) {
        let mut scratch = self.scratch.borrow_mut();
        let (woken, spawned) = &mut *scratch;
        self.shared.take_remote(woken, spawned);
        // SAFETY: the loop thread; remote entries carry their references
        // (`push_spawned`, `schedule`), which `adopt` hands to `push_local`.
        unsafe {
            adopt(&self.owned, spawned.drain(..), woken.drain(..), |t| {
                self.push_local(t)
            })
        };
    }

    // ----- timers -----

    fn now_tick(&self) -> u64 {
        let ms = match &self.sim {
            None => std::time::Instant::now().saturating_duration_since(self.origin),
            Some(sim) => sim.now.get(),
        }
        .as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// The wheel tick of `deadline`, rounded up.
    fn deadline_tick(&self, deadline: Instant) -> u64 {
        let nanos = deadline
            .into_std()
            .saturating_duration_since(self.origin)
            .as_nanos()
            .div_ceil(1_000_000);
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    fn park_timeout(&self) -> Option<Duration> {
        let next = self.wheel.borrow().next_expiration()?;
        let at = self
            .origin
            .checked_add(Duration::from_millis(next))
            .unwrap_or_else(|| self.origin + Duration::from_secs(86_400 * 365 * 30));
        Some(at.saturating_duration_since(std::time::Instant::now()))
    }

    fn fire_timers(&self) {
        let mut wheel = self.wheel.borrow_mut();
        let Some(next) = wheel.next_expiration() else {
            return;
        };
        let now = self.now_tick();
        if next > now {
            return;
        }
        let mut fired = std::mem::take(&mut *self.fired.borrow_mut());
        wheel.advance(now, &mut fired);
        drop(wheel);
        // Wakers of coil tasks on this loop land in `front` (see push_local);
        // foreign wakers do whatever they do.
        self.wake_to_front(&mut fired);
        *self.fired.borrow_mut() = fired;
    }

    /// File a timer for `deadline`; `None` if it is already due.
    pub(crate) fn timer_insert(&self, deadline: Instant, waker: &Waker) -> Option<Key> {
        let tick = self.deadline_tick(deadline);
        let mut wheel = self.wheel.borrow_mut();
        // The wheel's `elapsed` tick has passed on the clock, so a deadline at
        // or before it is due (never early: the tick was rounded up).
        if tick <= wheel.elapsed() {
            return None;
        }
        // Due within the current millisecond: the clock decides (so a zero or
        // already-past deadline completes at once instead of a tick later).
        if tick == wheel.elapsed() + 1 && deadline <= Instant::now() {
            return None;
        }
        Some(wheel.insert(tick, waker.clone()))
    }

    /// Whether the timer is still pending (and re-arm its waker).
    pub(crate) fn timer_poll(&self, key: Key, waker: &Waker) -> bool {
        self.wheel.borrow_mut().poll(key, waker)
    }

    /// Cancel a timer.
    pub(crate) fn timer_remove(&self, key: Key) {
        self.wheel.borrow_mut().remove(key);
    }

    // ----- shutdown -----

    /// Cancel and drop every task, release every queued reference, drop the
    /// timers (rule 8 in task/mod.rs). Runs with `CURRENT` set so that code in
    /// destructors sees a (closed) runtime rather than none.
    pub(crate) fn shutdown(&self) {
        let _enter = Enter::new(self);
        self.closed.set(true);
        let (woken, spawned) = self.shared.close_remote();
        // SAFETY: as in `drain_remote`.
        unsafe { adopt(&self.owned, spawned, woken, |t| self.push_local(t)) };
        // SAFETY: the loop thread, not inside a poll.
        unsafe { cancel_owned(&self.owned) };
        self.drain_ops();
        loop {
            let next = self.run_queue.borrow_mut().pop_front();
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
            eprintln!(
                "coil: a runtime was dropped with {left} I/O operation(s) whose cancellation the \
                 kernel did not confirm within {DRAIN_LIMIT:?}; their buffers and the {} kernel \
                 queue are leaked rather than freed while the kernel may still write into them \
                 (said once per process)",
                self.driver_kind()
            );
        });
    }

    fn cancel_and_wait(&self, limit: Duration) {
        {
            let mut driver = self.driver.borrow_mut();
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

    pub(crate) fn driver_kind(&self) -> coil_arch::DriverKind {
        self.driver.borrow().kind()
    }
}

// The task-handling steps of the loop, as functions of the pieces they touch
// so that the loom models (`rt/remote_loom.rs`) run them without a driver.

/// Poll a task popped from a run queue and act on the outcome: queue it
/// again through `push_local` if it was woken during the poll, or unlink a
/// completed task from `owned` and release the poller's and the list's
/// references. Returns whether the task completed.
///
/// # Safety
/// The loop thread of `owned`'s runtime; `task` was popped from a run queue
/// with its queue reference (rules 1 and 2 in `task/mod.rs`), and is in
/// `owned`. `push_local` receives the queue reference with the task.
#[inline(always)]
pub(crate) unsafe fn poll_task(
    owned: &OwnedList,
    task: TaskRef,
    push_local: impl FnOnce(TaskRef),
) -> bool {
    // SAFETY: the caller's promise.
    match unsafe { task.poll() } {
        PollOutcome::Idle => false,
        PollOutcome::Reschedule => {
            push_local(task);
            false
        }
        PollOutcome::Complete => {
            // SAFETY: a task being polled is in `owned` (caller's promise);
            // then the poller's and the list's references are ours, and
            // `task` is not used again.
            unsafe {
                owned.remove(task);
                task.release(2);
            }
            true
        }
    }
}

/// Loop thread: take over what the remote queue held. Tasks spawned from
/// other threads are bound to this loop (owned list, rule 1) and queued;
/// remotely woken tasks are queued. Every entry carries a queue reference.
///
/// # Safety
/// The loop thread of `owned`'s runtime; the entries come from that
/// runtime's remote queue (`take_remote`, `close_remote`) with their
/// references: `spawned` ones are in no list and carry the list's reference
/// too. `push_local` receives each task with its queue reference.
pub(crate) unsafe fn adopt(
    owned: &OwnedList,
    spawned: impl IntoIterator<Item = TaskRef>,
    woken: impl IntoIterator<Item = TaskRef>,
    mut push_local: impl FnMut(TaskRef),
) {
    for t in spawned {
        // SAFETY: an unbound task of this loop, on its thread, with the
        // list's reference (caller's promise).
        unsafe { owned.push(t) };
        push_local(t);
    }
    for t in woken {
        push_local(t);
    }
}

/// Shutdown, rule 8: claim, cancel and complete every task left in `owned`
/// and release the list's references. Queue entries keep theirs, for the
/// caller to release.
///
/// # Safety
/// The loop thread of `owned`'s runtime, not inside a poll (so no task in
/// the list is running or complete).
pub(crate) unsafe fn cancel_owned(owned: &OwnedList) {
    while let Some(t) = owned.pop() {
        // SAFETY: loop thread; the task was in the owned list, so it is not
        // complete and not running (caller's promise: not inside a poll);
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
    }
}
