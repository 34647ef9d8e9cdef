//! [`Pool`]: thread-per-core, one coil event loop per core.
//!
//! [`Pool`] is also `coil::runtime::Pool`. This module owns
//! the pool's threads and the state they share ([`PoolHandle`]); `builder.rs`
//! starts the loops (pinning, driver choice), `entry.rs` runs the per-core
//! entry future ([`Pool::run`], [`PoolError`]), `remote.rs` the cross-loop
//! task handle ([`PoolHandle::spawn_on`], [`spawn_on_with`](PoolHandle::spawn_on_with),
//! [`RemoteTask`]), `stop.rs` the
//! shutdown protocol ([`shutdown_requested`], the drain deadline).
//!
//! # Design
//!
//! **Ownership.** Each loop is an ordinary [`Runtime`](crate::Runtime) built
//! and run on its own thread (`coil-pool-N`): that thread creates the driver
//! (its own io_uring ring or epoll instance, its own eventfd), runs the loop,
//! and drops the runtime (cancelling what is left, closing the ring and fds)
//! before it exits. Nothing of a loop's `Core` ever leaves its thread; the
//! [`Pool`] owns the threads' join handles, and the shared state (an `Arc`
//! that [`PoolHandle`]s clone) holds only each loop's cross-thread
//! [`Handle`] (remote queue + unparker), a `watch` of each loop's work count
//! and a `watch` of the shutdown deadline. The pool adds no atomics, locks or
//! `unsafe` of its own to the cross-thread path: that path is `Handle::spawn`
//! and the task's state word (loom models in `rt::remote_loom` and
//! `task::state_loom`) and `coil::sync::watch` (a mutex and a waiter list).
//! The hand-off's races and their models: a wake racing the target's park
//! (`remote_loom::wake_task_vs_park`, `remote_spawn_vs_park`, and
//! `loom_model` in `coil-arch`'s `unpark.rs`), a wake racing a spinning
//! target's decision to park (`remote_loom::wake_task_vs_spin_then_park`,
//! `wake_main_vs_spin_then_park`), two senders racing for the remote
//! queue's slot and the order of their wakes
//! (`remote_loom::two_pushers_race_for_slot`,
//! `order_kept_between_slot_and_vectors`), a result crossing while its awaiter drops the
//! [`RemoteTask`] (`remote_loom::remote_result_vs_handle_drop`), and a
//! shutdown racing a send (`remote_loom::shutdown_vs_remote_push`).
//!
//! **What crosses threads.** Only `Send` futures and `Send` results:
//! [`spawn_on`](PoolHandle::spawn_on) goes through the target loop's
//! `Handle::spawn` (its remote queue, then an unpark: the wake-up path every
//! cross-thread wake of coil already uses, see `docs/architecture.md`; an
//! `IORING_OP_MSG_RING` completion posted into the target's ring where the
//! kernel has it, an eventfd write otherwise), and the returned [`RemoteTask`] is a
//! [`Task`](crate::Task) whose join waker may belong to another loop or to a
//! plain thread. The per-core entry closure is `Send + Sync` and is *called*
//! on each loop's thread, so the future it returns need not be `Send`: it
//! may hold `Rc`s and the loop's sockets; [`spawn_on_with`](PoolHandle::spawn_on_with)
//! does the same for one task (a `Send` closure that makes the future there).
//! Loops that hand work to each other at a high rate can spin before they
//! park ([`Builder::spin_before_park`]): a wake then reaches the target
//! without a syscall on either side.
//!
//! **Kernel workers.** The rings are not built with `IORING_SETUP_ATTACH_WQ`:
//! since Linux 5.12 the kernel keeps io-wq workers per ring and task and only
//! checks the attached fd, and shares something only for `SQPOLL` rings
//! (their poller thread), which coil does not use; coil needs 5.11 at least
//! (`IORING_FEAT_EXT_ARG`), so the flag would share workers on 5.11 alone.
//!
//! **Shutdown.** One request ([`PoolHandle::request_shutdown`], or
//! [`Pool::shutdown`], or dropping the pool) moves the pool to *stopping* with
//! a deadline; [`shutdown_requested`] futures on every loop finish, so entry
//! futures stop accepting and wind down. Each loop then waits until its
//! *work* (its entry future and the tasks [`spawn_on`](PoolHandle::spawn_on)
//! sent it) has finished, or the deadline has passed, whichever is first;
//! then its `block_on` returns and its runtime is dropped, which cancels every
//! task still alive on it (tasks they `coil::spawn`ed included) and releases
//! the driver. A second request can only bring the deadline forward.
//! `Pool::shutdown` and `Drop` then join every thread, so no thread, fd or
//! ring outlives the pool.
//!
//! **Where a pool may be dropped.**
//! - On a plain thread: the shutdown above with the builder's
//!   [`drain_timeout`](Builder::drain_timeout), then the threads are joined.
//! - While that thread panics: the same with a zero deadline (tasks are
//!   cancelled at once), so an unwinding test does not wait.
//! - Inside one of the pool's own loops (a task that owned it): joining would
//!   wait for the very loop that is dropping it, so the drop requests the
//!   shutdown and *detaches* the threads instead; each still stops and cleans
//!   up on its own once its loop ends.
//! - Inside a loop of another runtime: like a plain thread, and it blocks that
//!   loop until the pool has stopped (as any blocking call would).
//!
//! [`Pool::run`], [`Pool::shutdown`] and [`RemoteTask::wait`] block, so they
//! panic inside a running event loop.

mod builder;
mod entry;
mod remote;
mod stop;

pub use builder::Builder;
pub use entry::PoolError;
pub use remote::{RemoteTask, RemoteTaskError};
pub use stop::shutdown_requested;

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::rt::Handle;
use crate::sync::watch;

/// The index of one loop of a [`Pool`]: `0..pool.len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(usize);

impl CoreId {
    /// The core with this index (checked when it is used with a pool).
    pub fn new(index: usize) -> CoreId {
        CoreId(index)
    }

    /// The index, `0..pool.len()`.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "core {}", self.0)
    }
}

/// One loop, as the other threads see it.
struct Slot {
    /// The loop's cross-thread handle (remote queue and unparker).
    handle: Handle,
    /// How many units of work (entry futures, `spawn_on` tasks) the loop has:
    /// its drain waits for zero.
    work: watch::Sender<usize>,
}

/// What every loop and handle of a pool shares.
struct PoolShared {
    slots: Vec<Slot>,
    /// `None` while running; the drain deadline once shutdown was requested.
    phase: watch::Sender<Option<std::time::Instant>>,
    /// The deadline `Pool::run` gives the others when one entry fails, and
    /// `Drop` gives everyone.
    drain_timeout: Duration,
}

thread_local! {
    /// The pool whose loop runs on this thread, and which core it is.
    static CURRENT: RefCell<Option<(Arc<PoolShared>, CoreId)>> = const { RefCell::new(None) };
}

/// The pool and core of the loop running on this thread, if it is a pool's.
fn current_shared() -> Option<(Arc<PoolShared>, CoreId)> {
    CURRENT.with(|c| c.borrow().clone())
}

/// A [`Pool`]'s handle: spawn onto its loops and ask them to stop, from any
/// thread or loop. `Clone + Send + Sync`.
#[derive(Clone)]
pub struct PoolHandle {
    shared: Arc<PoolShared>,
}

impl PoolHandle {
    /// The handle of the pool whose loop runs on this thread, if any.
    pub fn current() -> Option<PoolHandle> {
        current_shared().map(|(shared, _)| PoolHandle { shared })
    }

    /// The number of loops.
    pub fn len(&self) -> usize {
        self.shared.slots.len()
    }

    /// Always `false`: a pool has at least one loop (for clippy's `len`
    /// convention).
    pub fn is_empty(&self) -> bool {
        self.shared.slots.is_empty()
    }

    /// Every core of the pool, in order.
    pub fn cores(&self) -> impl Iterator<Item = CoreId> + use<> {
        (0..self.len()).map(CoreId)
    }

    /// The runtime [`Handle`] of one loop (for `Handle::spawn`, which does not
    /// count as the loop's work and is not cancelled when dropped).
    ///
    /// # Panics
    ///
    /// If `core` is not one of the pool's.
    #[track_caller]
    pub fn loop_handle(&self, core: CoreId) -> &Handle {
        &self.slot(core).handle
    }

    #[track_caller]
    fn slot(&self, core: CoreId) -> &Slot {
        match self.shared.slots.get(core.0) {
            Some(s) => s,
            None => panic!("{core} is not in this pool of {} loops", self.len()),
        }
    }

    /// Whether shutdown was requested.
    pub fn is_shutdown_requested(&self) -> bool {
        self.shared.phase.borrow().is_some()
    }
}

impl fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolHandle")
            .field("loops", &self.len())
            .field("shutdown_requested", &self.is_shutdown_requested())
            .finish()
    }
}

/// N event loops, one per thread (thread-per-core), each with its own
/// driver; see the [module docs](self) for the design.
///
/// ```
/// use coil::pool::Pool;
///
/// let pool = Pool::builder().loops(2).build()?;
/// // One entry future per loop, made on that loop's thread (it need not be Send).
/// let per_core = pool.run(|core| async move {
///     let local = std::rc::Rc::new(core.index() * 10);
///     Ok::<_, std::io::Error>(*local)
/// });
/// assert_eq!(per_core.unwrap(), vec![0, 10]);
/// // A Send future onto loop 1, awaited from this plain thread.
/// let t = pool.spawn_on(coil::pool::CoreId::new(1), async { 6 * 7 });
/// assert_eq!(t.wait().unwrap(), 42);
/// pool.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Pool {
    handle: PoolHandle,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A builder: number of loops, pinning, driver, drain deadline.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A pool with the default settings: one loop per available core.
    pub fn new() -> std::io::Result<Pool> {
        Builder::new().build()
    }

    /// A handle for other threads and for the pool's own loops.
    pub fn handle(&self) -> &PoolHandle {
        &self.handle
    }

    /// Asks every loop to stop, waits until each has drained its work or
    /// `deadline` has passed (then cancels what is left), and joins the
    /// threads.
    ///
    /// # Panics
    ///
    /// Inside a running event loop (it blocks), and with a loop thread's panic
    /// if one panicked outside its tasks.
    #[track_caller]
    pub fn shutdown(mut self, deadline: Duration) {
        crate::rt::assert_not_in_loop("Pool::shutdown");
        self.handle.request_shutdown(deadline);
        if let Some(p) = self.join() {
            std::panic::resume_unwind(p);
        }
    }

    /// Joins every thread; the first panic of one, if any.
    fn join(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        let mut first = None;
        for t in self.threads.drain(..) {
            if let Err(p) = t.join() {
                first.get_or_insert(p);
            }
        }
        first
    }
}

/// A pool is used through its handle: `pool.spawn_on(..)`, `pool.len()`,
/// `pool.request_shutdown(..)` are [`PoolHandle`]'s.
impl std::ops::Deref for Pool {
    type Target = PoolHandle;

    fn deref(&self) -> &PoolHandle {
        &self.handle
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let on_own_loop =
            current_shared().is_some_and(|(s, _)| Arc::ptr_eq(&s, &self.handle.shared));
        let panicking = std::thread::panicking();
        let deadline = if panicking {
            Duration::ZERO
        } else {
            self.handle.shared.drain_timeout
        };
        self.handle.request_shutdown(deadline);
        if on_own_loop {
            // Joining would wait for this very loop: detach (module docs).
            self.threads.clear();
            return;
        }
        if let Some(p) = self.join()
            && !panicking
        {
            std::panic::resume_unwind(p);
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("handle", &self.handle)
            .field("threads", &self.threads.len())
            .finish()
    }
}
