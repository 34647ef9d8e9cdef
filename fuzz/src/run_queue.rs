//! The loop's scheduling order against a `VecDeque` model, on a real epoll
//! runtime (the simulator shuffles each tick, so only a real driver has the
//! FIFO order to check; with no timer and no I/O it is deterministic).
//!
//! One byte program drives both the main future (the *controller*, polled
//! once between ticks: it spawns, wakes, cancels and then lets a tick run)
//! and every task (each poll reads what the task does from the same bytes).
//! Each task poll and each future drop is checked against the model *as it
//! happens*: the loop must pop exactly the task the model has at the front
//! of its queue.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use coil::fuzz::{MAX_TICK, outside_loop};
use coil::runtime::DriverChoice;
use coil::{Handle, Runtime, Task, TaskError};

use crate::Bytes;

/// Most tasks one input may spawn.
const MAX_TASKS: usize = 600;

/// The model of one task.
#[derive(Debug, Default, Clone)]
struct TaskM {
    /// Has a queue entry (local or remote) or, while running, will get one.
    scheduled: bool,
    /// `cancel` was requested (and took effect: not already complete).
    cancelled: bool,
    /// Finished: completed, cancelled by the loop, or shut down.
    complete: bool,
    /// Finished by returning `Ready` (its output is `Ok(())`).
    ready: bool,
    /// In the loop's owned list (not yet for a remote spawn before a drain).
    owned: bool,
    /// Its future was dropped.
    dropped: bool,
    /// Handle and stored waker held by the harness.
    handle: bool,
    waker: bool,
}

impl TaskM {
    /// The allocation is alive (it holds a strong count on `Shared`).
    fn allocated(&self) -> bool {
        !self.complete || self.handle || self.waker
    }
}

#[derive(Debug, Default)]
struct Model {
    tasks: Vec<TaskM>,
    /// The loop's local run queue.
    queue: VecDeque<usize>,
    /// The remote queue: woken and spawned since the last drain.
    remote_woken: Vec<usize>,
    remote_spawned: Vec<usize>,
    /// Pops the current tick still owes (`None` between ticks).
    tick_left: Option<usize>,
    /// The task being polled, and the one whose `Ready` is being handled.
    running: Option<usize>,
    completing: Option<usize>,
    shutting_down: bool,
}

impl Model {
    fn spawn(&mut self, remote: bool) -> usize {
        let id = self.tasks.len();
        self.tasks.push(TaskM {
            scheduled: true,
            owned: !remote,
            handle: true,
            ..TaskM::default()
        });
        if remote {
            self.remote_spawned.push(id);
        } else {
            self.queue.push_back(id);
        }
        id
    }

    fn enqueue(&mut self, id: usize, remote: bool) {
        if remote {
            self.remote_woken.push(id);
        } else {
            self.queue.push_back(id);
        }
    }

    /// A waker of `id` fired; returns whether it made a new queue entry.
    fn wake(&mut self, id: usize) -> bool {
        let t = &mut self.tasks[id];
        if t.complete || t.scheduled {
            return false;
        }
        t.scheduled = true;
        // A wake while running only sets the flag: the poller requeues it.
        self.running != Some(id)
    }

    /// `Task::cancel`; returns what it must return.
    fn cancel(&mut self, id: usize, remote: bool) -> bool {
        let running = self.running == Some(id);
        let t = &mut self.tasks[id];
        if t.complete || t.cancelled {
            return false;
        }
        t.cancelled = true;
        let submit = !t.scheduled && !running;
        t.scheduled = true;
        if submit {
            self.enqueue(id, remote);
        }
        true
    }

    /// The loop popped `id` (to poll it, or to drop a cancelled future).
    fn pop(&mut self, id: usize, what: &str) {
        let left = self
            .tick_left
            .unwrap_or_else(|| panic!("task {id} {what} outside a tick"));
        assert!(
            left > 0,
            "task {id} {what}: this tick already popped all it may (queued at its start, at most {MAX_TICK})"
        );
        self.tick_left = Some(left - 1);
        assert_eq!(
            self.queue.pop_front(),
            Some(id),
            "task {id} {what} out of order; model queue was {:?}",
            self.queue
        );
        let t = &mut self.tasks[id];
        assert!(t.scheduled && !t.complete, "task {id} {what}: {t:?}");
        t.scheduled = false;
    }

    /// One tick starts: drain the remote queue (spawns first), then bound it.
    fn begin_tick(&mut self) {
        for id in std::mem::take(&mut self.remote_spawned) {
            self.tasks[id].owned = true;
            self.queue.push_back(id);
        }
        for id in std::mem::take(&mut self.remote_woken) {
            self.queue.push_back(id);
        }
        self.tick_left = Some(self.queue.len().min(MAX_TICK));
    }

    fn end_tick(&mut self) {
        if let Some(left) = self.tick_left.take() {
            assert_eq!(
                left, 0,
                "the tick skipped {left} queued tasks: {:?}",
                self.queue
            );
        }
    }

    fn drop_future(&mut self, id: usize) {
        let t = &self.tasks[id];
        assert!(!t.dropped, "task {id}'s future dropped twice");
        if self.completing == Some(id) {
            self.completing = None;
            self.tasks[id].ready = true;
        } else if self.shutting_down {
            assert!(!t.complete, "task {id} shut down after finishing");
        } else {
            assert!(
                t.cancelled,
                "task {id}'s future dropped but not cancelled: {t:?}"
            );
            self.pop(id, "dropped as cancelled");
        }
        let t = &mut self.tasks[id];
        t.dropped = true;
        t.complete = true;
        t.owned = false;
        t.scheduled = false;
    }
}

/// What the controller and the tasks share.
struct World {
    prog: Vec<u8>,
    at: usize,
    model: Model,
    /// The last waker each task was polled with (a clone: one reference).
    wakers: Vec<Option<Waker>>,
    handles: Vec<Option<Task<()>>>,
    remote: Handle,
}

impl World {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.prog.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn pick(&mut self) -> Option<usize> {
        let n = self.model.tasks.len();
        if n == 0 {
            return None;
        }
        Some(usize::from(self.byte()?) % n)
    }

    /// The actions both the controller and a task can take (`op` in 0..5).
    fn act(&mut self, op: u8, me: &Arc<Mutex<World>>) -> Option<()> {
        match op {
            // Spawn here or from "another thread".
            0 | 1 if self.model.tasks.len() < MAX_TASKS => {
                let remote = op == 1;
                let id = self.model.spawn(remote);
                let fut = Script {
                    id,
                    world: me.clone(),
                };
                let t = if remote {
                    outside_loop(|| self.remote.spawn(fut))
                } else {
                    coil::spawn(fut)
                };
                self.handles.push(Some(t));
                self.wakers.push(None);
            }
            // Wake a task here or from "another thread".
            2 | 3 => {
                let id = self.pick()?;
                let remote = op == 3;
                if let Some(w) = &self.wakers[id] {
                    if self.model.wake(id) {
                        self.model.enqueue(id, remote);
                    }
                    if remote {
                        outside_loop(|| w.wake_by_ref());
                    } else {
                        w.wake_by_ref();
                    }
                }
            }
            // Cancel a task, here or from "another thread".
            4 => {
                let id = self.pick()?;
                let remote = self.byte()? % 2 == 1;
                if let Some(t) = &self.handles[id] {
                    let want = self.model.cancel(id, remote);
                    let got = if remote {
                        outside_loop(|| t.cancel())
                    } else {
                        t.cancel()
                    };
                    assert_eq!(got, want, "cancel of task {id}");
                }
            }
            _ => {}
        }
        Some(())
    }
}

fn lock(w: &Mutex<World>) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

/// coil turns a panicking task into a `Panicked` result; a failed check in a
/// task must crash the process instead (the default hook has printed it).
fn or_abort<R>(f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| std::process::abort())
}

/// A task: each poll reads up to four actions from the program.
struct Script {
    id: usize,
    world: Arc<Mutex<World>>,
}

impl Future for Script {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let id = self.id;
        or_abort(|| {
            let mut w = lock(&self.world);
            w.model.pop(id, "polled");
            assert!(
                !w.model.tasks[id].cancelled,
                "cancelled task {id} was polled"
            );
            w.model.running = Some(id);
            w.wakers[id] = Some(cx.waker().clone());
            w.model.tasks[id].waker = true;
            for _ in 0..4 {
                let Some(op) = w.byte() else { break };
                match op % 8 {
                    0 => break,
                    // Yield: wake itself, so the loop requeues it at the back.
                    1 => {
                        assert!(!w.model.wake(id), "a running task got a queue entry");
                        cx.waker().wake_by_ref();
                        break;
                    }
                    2 => {
                        w.model.running = None;
                        w.model.completing = Some(id);
                        return Poll::Ready(());
                    }
                    op => {
                        if w.act(op - 3, &self.world).is_none() {
                            break;
                        }
                    }
                }
            }
            w.model.running = None;
            if w.model.tasks[id].scheduled {
                w.model.queue.push_back(id);
            }
            Poll::Pending
        })
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let id = self.id;
        or_abort(|| {
            let mut w = self
                .world
                .try_lock()
                .expect("a task's future was dropped while the harness held the world");
            w.model.drop_future(id);
        });
    }
}

/// The controller's checks between ticks: live tasks, task allocations (each
/// holds a strong count on `Shared`), `is_finished`.
fn check_between_ticks(w: &World, shared: &Weak<dyn Any + Send + Sync>) {
    let m = &w.model;
    let owned = m.tasks.iter().filter(|t| t.owned).count();
    let stats = coil::runtime::stats().expect("inside the loop");
    assert_eq!(stats.tasks, owned, "Stats::tasks");
    // The core, the main future's waker and the remote Handle, plus tasks.
    let allocated = m.tasks.iter().filter(|t| t.allocated()).count();
    assert_eq!(
        shared.strong_count(),
        3 + allocated,
        "task allocations alive"
    );
    for (id, h) in w.handles.iter().enumerate() {
        if let Some(h) = h {
            assert_eq!(h.is_finished(), m.tasks[id].complete, "is_finished of {id}");
        }
    }
}

/// Bytes → event interval, then a program run by the controller between ticks
/// (spawn locally or remotely, bursts of spawns past [`MAX_TICK`], wakes
/// and cancels from the loop thread or through the remote queue, wakes the
/// way fired timers and I/O completions wake (to the front of the queue),
/// dropping handles and wakers, running a tick, stopping with tasks still
/// queued) and by each task when it is polled (yield, complete, and the same
/// spawns, wakes and cancels). Checks, against the model: every poll and
/// every future drop happens exactly when and in the order the model says
/// (FIFO within a tick, at most `MAX_TICK` per tick, tasks woken during a
/// tick wait for the next, remote spawns then remote wakes at the start of a
/// tick, timer/I/O wakes in front, wakes coalesced while queued, no poll
/// after completion or cancellation, none lost); `Stats::tasks` and the task
/// allocations after each tick; every future dropped exactly once at
/// shutdown; handles report `Ok` or `Cancelled` as the model says; and once
/// the runtime, handles and wakers are gone, nothing holds the runtime.
pub fn run_queue(data: &[u8]) {
    let mut b = Bytes(data);
    let Some(interval) = b.u8() else { return };
    let rt = Runtime::builder()
        .driver(DriverChoice::Epoll)
        .event_interval(u32::from(interval % 64) + 1)
        .build()
        .expect("an epoll runtime");
    let shared = coil::fuzz::runtime_refs(&rt);
    let world = Arc::new(Mutex::new(World {
        prog: b.0.to_vec(),
        at: 0,
        model: Model::default(),
        wakers: Vec::new(),
        handles: Vec::new(),
        remote: rt.handle(),
    }));
    let w2 = world.clone();
    let weak = shared.clone();
    rt.block_on(std::future::poll_fn(move |cx| {
        let mut w = lock(&w2);
        w.model.end_tick();
        check_between_ticks(&w, &weak);
        loop {
            let Some(op) = w.byte() else {
                return Poll::Ready(());
            };
            match op % 8 {
                0 => {
                    cx.waker().wake_by_ref();
                    w.model.begin_tick();
                    return Poll::Pending;
                }
                1 if op & 0x80 != 0 => return Poll::Ready(()),
                // A burst of local spawns (so a tick can hit MAX_TICK).
                1 => {
                    for _ in 0..=(op >> 3) {
                        w.act(0, &w2);
                    }
                }
                // Fire "timers": wake some tasks (and a foreign waker) the
                // way the loop wakes fired timers and I/O completions.
                2 => {
                    let n = usize::from(op >> 4);
                    let mut wakers = vec![Waker::noop().clone()];
                    let mut front = Vec::new();
                    for _ in 0..n {
                        let Some(id) = w.pick() else { break };
                        if let Some(wk) = w.wakers[id].clone() {
                            wakers.push(wk);
                            if w.model.wake(id) {
                                front.push(id);
                            }
                        }
                    }
                    for id in front.into_iter().rev() {
                        w.model.queue.push_front(id);
                    }
                    coil::fuzz::wake_to_front(&mut wakers);
                }
                // Drop a handle or a stored waker.
                3 => {
                    let Some(id) = w.pick() else { continue };
                    if op & 0x80 != 0 {
                        w.handles[id] = None;
                        w.model.tasks[id].handle = false;
                    } else {
                        w.wakers[id] = None;
                        w.model.tasks[id].waker = false;
                    }
                }
                op => {
                    w.act(op - 3, &w2);
                }
            }
        }
    }));
    // Shutdown: every unfinished task's future is dropped exactly once.
    let mut w = lock(&world);
    w.model.end_tick();
    w.model.shutting_down = true;
    drop(w);
    drop(rt);
    let mut w = lock(&world);
    let allocated = w.model.tasks.iter().filter(|t| t.allocated()).count();
    for (id, t) in w.model.tasks.iter().enumerate() {
        assert!(
            t.complete && t.dropped,
            "task {id} survived shutdown: {t:?}"
        );
    }
    // The remote Handle, plus tasks kept by a handle or a waker.
    assert_eq!(
        shared.strong_count(),
        1 + allocated,
        "allocations after shutdown"
    );
    let mut handles = std::mem::take(&mut w.handles);
    for (id, h) in handles.iter_mut().enumerate() {
        let Some(h) = h else { continue };
        match h.try_take() {
            Some(Ok(())) => assert!(w.model.tasks[id].ready, "task {id} finished Ok"),
            Some(Err(TaskError::Cancelled(_))) => {
                assert!(!w.model.tasks[id].ready, "task {id} was cancelled")
            }
            other => panic!("task {id}'s output: {other:?}"),
        }
    }
    drop(handles);
    w.wakers.clear();
    assert_eq!(shared.strong_count(), 1, "tasks left allocated");
    drop(w);
    assert_eq!(
        Arc::strong_count(&world),
        1,
        "a task future outlived shutdown"
    );
    drop(world);
    assert_eq!(shared.strong_count(), 0, "the runtime outlived its handles");
}
