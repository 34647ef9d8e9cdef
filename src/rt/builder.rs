//! [`Builder`]: choose the driver and tune the loop.

use std::io;
use std::time::Duration;

use coil_arch::{Config, Driver, DriverChoice};

use super::core::Core;
use super::debug::DebugChecks;
use super::runtime::{DriverInfo, Runtime};

/// Builds a [`Runtime`] with chosen settings.
///
/// ```
/// use coil::runtime::{Builder, DriverChoice, DriverKind};
///
/// let rt = Builder::new().driver(DriverChoice::Epoll).build()?;
/// assert_eq!(rt.driver().kind(), DriverKind::Epoll);
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    driver: Option<DriverChoice>,
    uring_entries: u32,
    event_interval: u32,
    spin: Duration,
    debug: Option<bool>,
    slow_poll: Duration,
    debug_sink: fn(&str),
    trace: Option<std::path::PathBuf>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Default settings: the driver from `COIL_DRIVER` (else `auto`), 256
    /// io_uring entries, I/O polled at least every 61 task polls.
    pub fn new() -> Builder {
        Builder {
            driver: None,
            uring_entries: 256,
            event_interval: 61,
            spin: Duration::ZERO,
            debug: None,
            slow_poll: Duration::from_millis(100),
            debug_sink: stderr_sink,
            trace: None,
        }
    }

    /// Chooses the driver, overriding `COIL_DRIVER`.
    ///
    /// `Auto` tries io_uring and falls back to epoll, recording why (see
    /// [`Runtime::driver`]). Forcing `Uring` on a machine where io_uring cannot
    /// start makes [`Builder::build`] fail instead of falling back.
    pub fn driver(mut self, choice: DriverChoice) -> Builder {
        self.driver = Some(choice);
        self
    }

    /// Size of the io_uring submission queue (rounded up to a power of two
    /// by the kernel; clamped to its maximum).
    pub fn uring_entries(mut self, entries: u32) -> Builder {
        self.uring_entries = entries;
        self
    }

    /// The loop polls the driver for I/O (and submits queued io_uring
    /// operations) at least once every `polls` task polls, even when tasks
    /// are always ready. Default 61 (tokio's figure). Minimum 1.
    pub fn event_interval(mut self, polls: u32) -> Builder {
        self.event_interval = polls.max(1);
        self
    }

    /// Spin-before-park: when the loop has nothing to do it busy-polls for up
    /// to `budget` (its remote queue and wake flags, and its driver without
    /// blocking) before it goes to sleep in the kernel. Default zero: no spin.
    ///
    /// For loops that hand work to each other at a high rate (a
    /// [`Pool`](crate::pool::Pool)'s `spawn_on`, or channels between loops):
    /// a wake from another thread then reaches a spinning loop in a few
    /// hundred nanoseconds instead of a sleeping thread's wake-up (several
    /// microseconds), and costs the waker no syscall. The price is a core
    /// kept busy for up to `budget` after each burst of work (with
    /// `Duration::MAX`, for as long as the loop is idle and no timer is due).
    /// The simulator ignores it.
    pub fn spin_before_park(mut self, budget: Duration) -> Builder {
        self.spin = budget;
        self
    }

    /// Debug mode (also `COIL_DEBUG=1`), asyncio's `loop.set_debug(True)`.
    /// Reports on stderr (or the [`debug_sink`](Builder::debug_sink)):
    ///
    /// - why io_uring was not used, when `auto` fell back to epoll;
    /// - every task poll that held the loop for
    ///   [`slow_poll_threshold`](Builder::slow_poll_threshold) or longer
    ///   (100 ms by default), naming the task (id, name, spawn location) and
    ///   the time: a blocking call inside a task, or a long computation that
    ///   never yields, stops every other task for that long;
    /// - a loop turn held that long outside task polls (a *stall*): the
    ///   `block_on` future's own poll, timer or waker callbacks, drops run
    ///   by the loop;
    /// - a detached task (its [`Task`](crate::Task) handle dropped) that
    ///   panicked, with its name and spawn location (asyncio's "Task
    ///   exception was never retrieved"; without debug mode the panic is
    ///   printed on stderr without the location). A task whose output is an
    ///   `Err` is not reported: coil cannot see inside an arbitrary output
    ///   type, and an `Err` value is a value like any other;
    /// - an op on an I/O object from a loop other than the one that created
    ///   it (it fails with an error either way), naming the op, the fd and
    ///   both loops' ids.
    ///
    /// Off, it costs one branch per task poll, spawn and handle drop; on, two
    /// clock reads and a locked table lookup per poll. See
    /// docs/observability.md.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = coil::runtime::Builder::new()
    ///     .debug(true)
    ///     .slow_poll_threshold(Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(async {
    ///     coil::task::Builder::new()
    ///         .name("blocker")
    ///         .spawn(async { std::thread::sleep(Duration::from_millis(60)) })
    ///         .await
    ///         .unwrap();
    ///     // stderr: coil: task 1 ("blocker") held the loop for 60.1 ms in one poll ...
    /// });
    /// ```
    pub fn debug(mut self, on: bool) -> Builder {
        self.debug = Some(on);
        self
    }

    /// In debug mode, a task poll at least this long is reported (default
    /// 100 ms, asyncio's `slow_callback_duration`).
    pub fn slow_poll_threshold(mut self, threshold: Duration) -> Builder {
        self.slow_poll = threshold;
        self
    }

    /// Where debug mode's reports go: one line each, without the newline.
    /// Default: stderr (a failed write is ignored).
    ///
    /// The sink is called on the loop thread, often from inside a task's
    /// poll; a sink that panics loses that report (the panic is caught
    /// after the panic hook ran) and the loop goes on.
    pub fn debug_sink(mut self, sink: fn(&str)) -> Builder {
        self.debug_sink = sink;
        self
    }

    /// Writes a timeline of the loop to `path` (also `COIL_TRACE=<path>`),
    /// in Chrome's trace-event JSON, which Perfetto (ui.perfetto.dev, "Open
    /// trace file") and `chrome://tracing` open: each task poll as a slice
    /// named by the task, each I/O op as an arrow from its submission to its
    /// completion, timers firing, and the loop's parks. Events are buffered
    /// and written when the runtime is dropped (and whenever 1 MiB has
    /// piled up); loops of one process tracing to the same path share the
    /// file. Off (the default), it costs one branch per park, timer firing,
    /// queued op and completion. See docs/observability.md.
    pub fn trace(mut self, path: impl Into<std::path::PathBuf>) -> Builder {
        self.trace = Some(path.into());
        self
    }

    /// Builds the runtime.
    ///
    /// # Errors
    ///
    /// - `InvalidInput` if `COIL_DRIVER` holds something other than `auto`,
    ///   `uring` or `epoll` (and no driver was chosen with [`Builder::driver`]);
    /// - the OS error if the forced driver cannot start (for io_uring: ENOSYS
    ///   on old kernels, EPERM when forbidden by seccomp or sysctl, ...).
    pub fn build(&self) -> io::Result<Runtime> {
        let choice = match self.driver {
            Some(c) => c,
            None => DriverChoice::from_env()
                .map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("COIL_DRIVER: {e}"))
                })?
                .unwrap_or_default(),
        };
        // A runtime never leaves its thread (`Runtime` is `!Send`), so its ring can be a
        // single-issuer, deferred-task-run one.
        let config = Config {
            uring_entries: self.uring_entries,
            uring_single_issuer: true,
        };
        let driver = Driver::new(choice, &config)?;
        let info = DriverInfo {
            kind: driver.kind(),
            fallback: driver.fallback().cloned(),
        };
        let debug = self
            .debug
            .unwrap_or_else(|| std::env::var_os("COIL_DEBUG").is_some_and(|v| v == "1"));
        if debug && let Some(reason) = &info.fallback {
            super::debug::call_sink(
                self.debug_sink,
                &format!("coil: io_uring is unavailable ({reason}); using the epoll driver"),
            );
        }
        let mut core = Core::new(driver, self.event_interval);
        core.spin = self.spin;
        if debug {
            core = core.with_debug(DebugChecks::new(self.slow_poll, self.debug_sink));
        }
        let trace = self.trace.clone().or_else(|| {
            std::env::var_os("COIL_TRACE")
                .filter(|p| !p.is_empty())
                .map(Into::into)
        });
        if let Some(path) = trace {
            core = core.with_trace(path);
        }
        Ok(Runtime::from_parts(core, info))
    }
}

/// Debug mode's default sink.
fn stderr_sink(line: &str) {
    super::debug::report_on_stderr(format_args!("{line}"));
}
