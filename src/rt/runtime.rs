//! [`Runtime`] and [`run`]: asyncio's event loop and `asyncio.run`.

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;

use coil_arch::{DriverKind, FallbackReason};

use super::core::Core;
use super::{Builder, Handle};

/// Runs a future to completion on a new event loop, like `asyncio.run`.
///
/// Builds a runtime with the default settings (driver chosen by
/// `COIL_DRIVER`, else io_uring with an epoll fallback), runs `future` until
/// it finishes, then cancels every task still alive (as `asyncio.run` does, a
/// task spawned with
/// [`cooperative_cancel`](crate::task::Builder::cooperative_cancel) gets a
/// request and may finish its async cleanup first; see [`Runtime`]), tears
/// the loop down and returns the future's output.
///
/// ```
/// let out = coil::run(async {
///     let t = coil::spawn(async { 6 * 7 });
///     t.await.unwrap()
/// });
/// assert_eq!(out, 42);
/// ```
///
/// # Panics
///
/// - If called from inside a running event loop ("cannot be called from a
///   running event loop", as in asyncio): use `.await` or [`crate::spawn`]
///   there instead.
/// - If the runtime cannot be built (no usable driver, or an invalid
///   `COIL_DRIVER`); use [`Runtime::builder`] to handle that error.
/// - If `future` panics (the panic is resumed after the loop is torn down).
#[track_caller]
pub fn run<F: Future>(future: F) -> F::Output {
    runtime_for_run().block_on(future)
}

/// The part of [`run`] that does not depend on the future (compiled once).
#[track_caller]
fn runtime_for_run() -> Runtime {
    assert_not_in_loop("coil::run");
    match Builder::new().build() {
        Ok(rt) => rt,
        Err(e) => panic!("coil::run could not start an event loop: {e}"),
    }
}

#[track_caller]
pub(crate) fn assert_not_in_loop(what: &str) {
    if super::in_runtime() {
        panic!(
            "{what} cannot be called from a running event loop; \
             inside async code, .await the future or coil::spawn it instead"
        );
    }
}

/// An event loop: runs tasks, timers and I/O on the thread that calls
/// [`Runtime::block_on`].
///
/// Create one with [`Runtime::new`] or [`Runtime::builder`]. A `Runtime` stays
/// on the thread that made it (it is `!Send`: its tasks need not be `Send`);
/// other threads reach it through a [`Handle`]. Tasks spawned during one
/// `block_on` keep existing after it returns and run again during the next.
/// **Dropping the runtime cancels every task still alive** and drops their
/// futures, on this thread. If one of them answers cancel requests
/// ([`cooperative_cancel`](crate::task::Builder::cooperative_cancel)), the
/// drop first does what the end of `asyncio.run` does: every task left is
/// cancelled (a request for those, the drop for the others) and the loop
/// runs until each cooperative task that took its request has finished its
/// cleanup, for at most 5 seconds; a cooperative task whose request no
/// [`cancellable`](crate::task::cancellable) scope took is not waited for.
/// Not while the thread is panicking, and not when the runtime is dropped
/// inside another running loop: then every task is dropped at once.
///
/// # `fork()`
///
/// A forked child must not run or use the parent's runtime or its I/O objects
/// (they share the parent's epoll instance; the io_uring ring is not mapped in
/// the child at all): build a fresh runtime there (on a new thread if the fork
/// happened inside `block_on`) and leave with `_exit` or `exec`. The runtime
/// remembers the process that built it: `block_on` in another process panics,
/// and dropping it there leaks it instead of shutting it down (a shutdown would
/// deregister the parent's sockets from the shared epoll instance). See
/// `docs/drivers.md`.
pub struct Runtime {
    /// Dropped in `Drop` only in the process that built it.
    core: ManuallyDrop<Box<Core>>,
    info: DriverInfo,
    /// `getpid()` when built.
    pid: u32,
}

impl Runtime {
    /// A runtime with the default settings; see [`Builder`].
    pub fn new() -> std::io::Result<Runtime> {
        Builder::new().build()
    }

    /// A builder to choose the driver and tune the loop.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(core: Core, info: DriverInfo) -> Runtime {
        Runtime {
            core: ManuallyDrop::new(Box::new(core)),
            info,
            pid: std::process::id(),
        }
    }

    /// Whether this process is a `fork()` child of the one that built us.
    fn forked(&self) -> bool {
        std::process::id() != self.pid
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// Runs `future` to completion on this thread, running the loop's tasks
    /// and timers meanwhile, and returns its output.
    ///
    /// # Panics
    ///
    /// Panics if called from inside a running event loop, or in a `fork()`
    /// child of the process that built the runtime, and resumes the panic if
    /// `future` panics.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.check_block_on();
        self.core.block_on(future)
    }

    /// The checks of [`Runtime::block_on`] (compiled once, not per future).
    #[track_caller]
    fn check_block_on(&self) {
        assert_not_in_loop("Runtime::block_on");
        assert!(
            !self.forked(),
            "Runtime::block_on was called in a fork() child of the process that built this \
             runtime; its event queue belongs to the parent. Build a new Runtime in the child"
        );
    }

    /// Spawns a task on this runtime from outside it; it starts running at the
    /// next `block_on`.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> crate::task::Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.core
            .spawn(future, None, std::panic::Location::caller())
    }

    /// A handle that other threads can use to spawn onto this loop.
    pub fn handle(&self) -> Handle {
        Handle::from_shared(self.core.shared.clone())
    }

    /// Which driver this loop runs on, and why (see [`DriverInfo`]).
    pub fn driver(&self) -> &DriverInfo {
        &self.info
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.forked() {
            // A fork() child: shutting down would cancel the parent's ops and
            // deregister its fds from the epoll instance both processes share.
            // Leak the core (the child's copy of memory) instead.
            return;
        }
        self.core.cancel_remaining_tasks();
        self.core.shutdown();
        // SAFETY: dropped exactly once, here; `self.core` is not used after.
        unsafe { ManuallyDrop::drop(&mut self.core) };
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("driver", &self.info)
            .field("core", &self.core)
            .finish()
    }
}

/// The driver a runtime uses, and why it is not io_uring when it is not.
#[derive(Debug, Clone)]
pub struct DriverInfo {
    pub(crate) kind: DriverKind,
    pub(crate) fallback: Option<FallbackReason>,
}

impl DriverInfo {
    /// The active driver.
    pub fn kind(&self) -> DriverKind {
        self.kind
    }

    /// Set when `auto` selection wanted io_uring but fell back to epoll: why.
    pub fn fallback_reason(&self) -> Option<&FallbackReason> {
        self.fallback.as_ref()
    }
}

impl fmt::Display for DriverInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fallback {
            None => write!(f, "{}", self.kind),
            Some(r) => write!(f, "{} (io_uring unavailable: {r})", self.kind),
        }
    }
}

/// Counts for the loop running on this thread: live tasks and pending timers.
///
/// Useful in tests and diagnostics ("did every task finish", "were all timers
/// cancelled"). Returns `None` outside a runtime.
///
/// ```
/// coil::run(async {
///     let t = coil::spawn(std::future::pending::<()>());
///     assert_eq!(coil::runtime::stats().unwrap().tasks, 1);
///     t.cancel();
/// });
/// ```
pub fn stats() -> Option<Stats> {
    super::with_core(|core| {
        core.map(|c| Stats {
            tasks: c.task_count(),
            timers: c.timer_count(),
            io_ops: c.io_op_count(),
            driver: c.driver_kind(),
        })
    })
}

/// A snapshot of a loop's counters; see [`stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks spawned and not yet finished (the `block_on` future not included).
    pub tasks: usize,
    /// Timers filed and neither fired nor cancelled.
    pub timers: usize,
    /// I/O operations submitted to the driver whose completion has not been
    /// processed yet (including those whose future was dropped).
    pub io_ops: usize,
    /// The active driver.
    pub driver: DriverKind,
}
