//! coil-arch: coil's I/O backends, the kernel interface below the executor.
//!
//! "arch" here means **I/O backends** (io_uring, epoll), not CPU architectures. The crate
//! knows nothing about tasks, wakers or futures: it parks the thread until the kernel has
//! something to say or a timeout passes, and lets any thread interrupt that park.
//!
//! ```
//! use std::time::Duration;
//! use coil_arch::{Config, Driver, DriverChoice};
//!
//! let mut driver = Driver::new(DriverChoice::Auto, &Config::default())?;
//! println!("running on {}", driver.kind());
//! if let Some(why) = driver.fallback() {
//!     println!("io_uring was not used: {why}");
//! }
//!
//! let unparker = driver.unparker();
//! std::thread::spawn(move || unparker.unpark());
//! driver.park(None)?; // returns once the other thread has unparked us
//! driver.park(Some(Duration::ZERO))?; // polls, never blocks
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Choosing a backend
//!
//! [`Driver::new`] takes a [`DriverChoice`] (usually from [`DriverChoice::from_env`],
//! i.e. `COIL_DRIVER=auto|uring|epoll`):
//!
//! - `Epoll` always builds the epoll backend.
//! - `Uring` builds the io_uring backend or returns the error that stopped it.
//! - `Auto` probes io_uring: `io_uring_setup`, the `IORING_FEAT_EXT_ARG` feature,
//!   `io_uring_register(IORING_REGISTER_PROBE)` for every opcode coil uses, and one NOP
//!   through `io_uring_enter`, so that a seccomp filter on any of these calls is caught
//!   here and not in the middle of a program. If any step fails it builds epoll instead
//!   and keeps the [`FallbackReason`] ([`Driver::fallback`]).
//!
//! # The backend contract
//!
//! Every backend (`uring/`, `epoll/`, `sim/`) provides the following, and the
//! executor relies on nothing else.
//!
//! 1. **Construction.** `new` creates every kernel object the backend needs (ring or
//!    epoll fd, the unpark eventfd) and fails with an [`io::Error`] that keeps the OS
//!    errno. The io_uring backend also probes the kernel (see above) and reports a failed
//!    probe separately from an ordinary I/O error, so `Auto` can fall back on the first
//!    and fail on the second.
//! 2. **Park.** `park(timeout)` blocks until one of: an unpark happened since the last
//!    park consumed one, the timeout elapsed, a signal interrupted the wait (`EINTR` is
//!    `Ok(())`; the caller loops), or an I/O completion arrived. It
//!    never returns before the timeout for any other reason. `None` means no timeout.
//!    `Some(Duration::ZERO)` polls and never blocks, and costs no system call when there
//!    is nothing to submit or flush (io_uring peeks the completion queue in memory).
//!    Timeouts never come out shorter: epoll passes nanoseconds to `epoll_pwait2`, and
//!    only on kernels without it rounds up to whole milliseconds (0.3 ms waits 1 ms);
//!    io_uring takes the exact duration. Durations too large for the kernel are clamped or split so that
//!    `Duration::MAX` neither overflows nor returns early.
//! 3. **Unpark.** Each backend owns one eventfd plus the `notified: AtomicBool` of
//!    [`Unparker`], and keeps watching the eventfd while parked: epoll with
//!    level-triggered `EPOLLIN`, io_uring with an `IORING_OP_READ` that is always in
//!    flight and re-armed after its completion (`IORING_REGISTER_EVENTFD` would not do:
//!    it signals completions, it does not wake a waiting `io_uring_enter`). An unpark
//!    writes the eventfd only when it flips `notified` from `false` to `true`, so a burst
//!    of unparks costs one write. When the backend sees the eventfd fire it consumes the
//!    counter and **then** stores `notified = false` with `SeqCst`, before `park` returns;
//!    the runtime checks its remote queue after `park` with `SeqCst` as well, which makes
//!    the handshake lossless (the argument is in the `unpark` module).
//! 4. **Kernel surprises.** `EINTR` returns early and successfully. io_uring: a full
//!    submission queue is submitted and the push retried; a set `IORING_SQ_CQ_OVERFLOW`
//!    flag makes the backend enter the kernel again to flush the overflowed completions;
//!    `EBUSY` means "reap, then retry"; `ETIME` is an ordinary timeout. Entries pushed to
//!    the submission queue stay there until the kernel takes them, whatever `submit`
//!    returned.
//! 5. **Drop order.** A driver frees its own memory only once the kernel is done with
//!    it, and its drop returns only once nothing writes into ops' memory any more,
//!    except in the io_uring leak case below, which the owner can detect beforehand.
//!    Ops may be in flight ([`Driver::in_flight`]) when the driver is dropped:
//!    - io_uring: closing a ring fd does **not** wait for its requests (the kernel
//!      cancels them later from a workqueue, and an io-wq worker already running one
//!      keeps writing its buffer), so drop first cancels every request
//!      (`IORING_OP_ASYNC_CANCEL` with `IORING_ASYNC_CANCEL_ANY`, plus the unpark READ
//!      by its key) and reaps completions until every op submitted and the READ have
//!      completed, for at most [`Driver::DROP_LIMIT`] (2 s). Then it closes the ring
//!      and frees the READ's 8-byte buffer. If the limit passes (a request the kernel
//!      cannot interrupt, a kernel before 5.19 without `ANY` and an op that never
//!      ends, a single-issuer ring dropped on the wrong thread), it **leaks** the ring
//!      (fd and mappings stay) and that buffer, and the ops still in flight may be
//!      written at any later time: their memory must then be leaked by its owner.
//!      Drop cannot report which case happened; an owner that frees op memory
//!      afterwards asks first with [`Driver::drain`] (same cancel-and-wait, with its
//!      own limit, returning whether everything finished) and leaks on `false`.
//!    - epoll and the simulator: nothing can write after drop. The kernel never holds
//!      a pointer into an op (epoll performs each system call synchronously inside
//!      `submit`, `park` or `cancel`; the simulator copies in memory there), so ops
//!      still pending are forgotten, with no completion, and their memory is the
//!      owner's again as soon as drop returns.
//!
//!    The field that owns driver memory the kernel may write says so.
//! 6. **Fork.** The io_uring mappings are marked `MADV_DONTFORK`, so a forked child does
//!    not share the parent's rings. A child must build its own driver.
//!
//! # Operations
//!
//! Completion-based operations ([`op`]): one type per operation with its io_uring entry
//! and its epoll readiness-plus-syscall side ([`OpCode`]). [`Driver::submit`] takes a
//! pointer to an op and a `user_data` key; [`Driver::completions`] reports
//! `(user_data, result, flags)` exactly once per submitted op, also after
//! [`Driver::cancel`]. io_uring queues the entry and submits at the next park; epoll tries
//! the syscall at once and otherwise waits for an edge-triggered event (`epoll/ready.rs`).
//! [`Driver::submit_or_finish`] is the same contract except that an op finished during
//! the call (epoll only) is answered at once ([`Submitted::Done`]) and gets no
//! completion. The high `user_data` values are reserved for the driver's own use (`token` module).

#[cfg(not(target_os = "linux"))]
compile_error!("coil-arch supports Linux only: its backends are io_uring and epoll.");

use std::error::Error;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

pub mod buf;
mod epoll;
pub mod op;
pub mod sim;
mod sys;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod unpark;
#[cfg(not(miri))]
mod uring;

pub use buf::{BufResult, IoBuf, IoBufMut};
pub use op::{Completion, OpCode};
pub use unpark::Unparker;

static_assertions::assert_impl_all!(Driver: Send);
static_assertions::assert_impl_all!(Unparker: Send, Sync, Clone);
static_assertions::assert_impl_all!(FallbackReason: Send, Sync, Error);
static_assertions::assert_impl_all!(ParseDriverChoiceError: Send, Sync, Error);

/// `user_data` (io_uring) and `epoll_event.u64` (epoll) values reserved for the driver.
///
/// Operations use keys below [`RESERVED_MIN`]; everything from
/// there up belongs to the driver.
pub(crate) mod token {
    /// The first reserved value.
    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) const RESERVED_MIN: u64 = u64::MAX - 255;
    /// The unpark eventfd: its READ (io_uring) or its registration (epoll).
    pub(crate) const UNPARK: u64 = u64::MAX;
    /// The NOP that `Auto` sends through `io_uring_enter` while probing.
    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) const PROBE: u64 = u64::MAX - 1;
    /// Every `ASYNC_CANCEL` the driver sends (`Driver::cancel`, `Driver::drain`, drop).
    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) const CANCEL: u64 = u64::MAX - 2;
}

/// Which backend a [`Driver`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// Linux io_uring: completions.
    Uring,
    /// Linux epoll: readiness, with completions emulated above it.
    Epoll,
    /// The deterministic simulator ([`sim`]): virtual clock, in-memory network.
    Sim,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverKind::Uring => "io_uring",
            DriverKind::Epoll => "epoll",
            DriverKind::Sim => "sim",
        })
    }
}

/// Which backend to build: a specific one, or the best one that works here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DriverChoice {
    /// io_uring if it is usable, otherwise epoll (see [`Driver::fallback`]).
    #[default]
    Auto,
    /// io_uring or an error.
    Uring,
    /// epoll.
    Epoll,
}

/// The environment variable [`DriverChoice::from_env`] reads.
const DRIVER_ENV: &str = "COIL_DRIVER";

impl DriverChoice {
    /// Reads `COIL_DRIVER`. Unset, empty or blank gives `Ok(None)`; otherwise the value is
    /// parsed as by [`FromStr`] (`auto`, `uring`/`io_uring`/`io-uring`, `epoll`, any case).
    pub fn from_env() -> Result<Option<DriverChoice>, ParseDriverChoiceError> {
        let Some(value) = std::env::var_os(DRIVER_ENV) else {
            return Ok(None);
        };
        let value = value.to_string_lossy();
        if value.trim().is_empty() {
            return Ok(None);
        }
        value.parse().map(Some)
    }
}

impl FromStr for DriverChoice {
    type Err = ParseDriverChoiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DriverChoice::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(DriverChoice::Uring),
            "epoll" => Ok(DriverChoice::Epoll),
            _ => Err(ParseDriverChoiceError {
                input: s.to_owned(),
            }),
        }
    }
}

/// The error for a driver name that is none of `auto`, `uring`, `epoll`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDriverChoiceError {
    input: String,
}

impl fmt::Display for ParseDriverChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid driver {:?}: expected one of auto, uring, epoll",
            self.input
        )
    }
}

impl Error for ParseDriverChoiceError {}

/// Settings for [`Driver::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Submission queue entries for io_uring (the completion queue gets twice as many).
    /// Clamped by the kernel to its maximum (`IORING_SETUP_CLAMP`); must be at least 1.
    /// Default: 256.
    pub uring_entries: u32,
    /// Build the io_uring ring for one thread: `IORING_SETUP_SINGLE_ISSUER |
    /// DEFER_TASKRUN | TASKRUN_FLAG` (Linux 6.1+; on older kernels the ring is built
    /// without them). The kernel then finishes requests in a batch when the driver parks
    /// instead of interrupting the thread as packets arrive, which saves kernel time per
    /// request under load.
    ///
    /// The price: the driver must be parked (and dropped) on the thread that called
    /// [`Driver::new`]; parking it anywhere else panics. Leave it `false` for a driver
    /// that moves between threads. coil's runtime, which never leaves its thread, sets
    /// it. Ignored by epoll. Default: `false`.
    pub uring_single_issuer: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            uring_entries: 256,
            uring_single_issuer: false,
        }
    }
}

/// Why [`DriverChoice::Auto`] did not choose io_uring: the probe step that failed and,
/// when the kernel said so with one, the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackReason {
    stage: &'static str,
    cause: Cause,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cause {
    /// The step failed with this errno.
    Os(i32),
    /// The kernel lacks this opcode or feature (named as in the kernel headers).
    Missing(&'static str),
    /// Anything else, as a sentence fragment.
    Other(&'static str),
}

#[cfg_attr(miri, allow(dead_code))]
impl FallbackReason {
    pub(crate) fn os(stage: &'static str, err: &io::Error) -> FallbackReason {
        let cause = match err.raw_os_error() {
            Some(errno) => Cause::Os(errno),
            None => Cause::Other("it failed without an OS error code"),
        };
        FallbackReason { stage, cause }
    }

    pub(crate) fn missing(stage: &'static str, what: &'static str) -> FallbackReason {
        FallbackReason {
            stage,
            cause: Cause::Missing(what),
        }
    }

    pub(crate) fn other(stage: &'static str, what: &'static str) -> FallbackReason {
        FallbackReason {
            stage,
            cause: Cause::Other(what),
        }
    }

    /// The errno the failing step returned (`Some(ENOSYS)` where io_uring does not exist
    /// or seccomp hides it, `Some(EPERM)` where `kernel.io_uring_disabled` forbids it);
    /// `None` when there was no errno, e.g. a missing opcode.
    pub fn errno(&self) -> Option<i32> {
        match self.cause {
            Cause::Os(errno) => Some(errno),
            Cause::Missing(_) | Cause::Other(_) => None,
        }
    }

    /// The probe step that failed: `"io_uring_setup"`, `"feature check"`,
    /// `"io_uring_register(probe)"`, `"opcode probe"` or `"io_uring_enter"`.
    pub fn stage(&self) -> &'static str {
        self.stage
    }

    /// The error a forced [`DriverChoice::Uring`] returns for this reason. With an errno
    /// this is exactly the OS error (so `raw_os_error` works); otherwise an
    /// `Unsupported` error whose message names the reason.
    fn into_io_error(self) -> io::Error {
        match self.cause {
            Cause::Os(errno) => io::Error::from_raw_os_error(errno),
            Cause::Missing(_) | Cause::Other(_) => io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring could not start: {self}."),
            ),
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            Cause::Os(errno) => write!(
                f,
                "{} failed: {}",
                self.stage,
                io::Error::from_raw_os_error(errno)
            ),
            Cause::Missing(what) => write!(f, "{}: the kernel lacks {what}", self.stage),
            Cause::Other(what) => write!(f, "{}: {what}", self.stage),
        }
    }
}

impl Error for FallbackReason {}

/// Why a backend's `new` failed: io_uring is unusable here (fall back), or an ordinary
/// I/O error such as `EMFILE` (do not fall back; epoll would fail the same way).
#[cfg_attr(miri, allow(dead_code))]
#[derive(Debug)]
pub(crate) enum StartError {
    Unusable(FallbackReason),
    Io(io::Error),
}

/// What [`Driver::submit_or_finish`] did with an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// In flight: its [`Completion`] comes from [`Driver::completions`]
    /// after a later `park`.
    Queued,
    /// Finished during the call, with this raw result (`>= 0`, or
    /// `-errno`): no completion will come, and the driver holds no pointer
    /// into the op.
    Done(i32),
}

/// The kernel interface of one event loop: parks its thread, and is unparked from any
/// thread through an [`Unparker`].
///
/// Build one per loop thread with [`Driver::new`]. A `Driver` is `Send` (it may be built
/// on one thread and moved to the loop's thread) but not `Sync`: only its owner parks.
pub struct Driver {
    inner: Inner,
    /// Set only when `Auto` fell back to epoll.
    fallback: Option<FallbackReason>,
    /// Completions reaped but not yet taken by [`Driver::completions`]. While
    /// it is not empty, `park` does not block.
    completed: Vec<Completion>,
}

/// The backends. Private so that adding one (the simulator) changes nothing outside.
#[allow(
    clippy::large_enum_variant,
    reason = "one Driver per event loop; boxing would add an indirection to every park"
)]
enum Inner {
    #[cfg(not(miri))]
    Uring(uring::UringDriver),
    Epoll(epoll::EpollDriver),
    /// Boxed: it is large and off every real driver's path.
    Sim(Box<sim::SimDriver>),
}

impl Driver {
    /// Builds the driver `choice` asks for.
    ///
    /// - [`DriverChoice::Epoll`] builds epoll.
    /// - [`DriverChoice::Uring`] builds io_uring, or fails when it is unusable here. When the
    ///   kernel gave an errno (`ENOSYS`, `EPERM`, ...) the error *is* that OS error, so
    ///   [`io::Error::raw_os_error`] returns it; when it did not (a missing opcode), the
    ///   error is [`io::ErrorKind::Unsupported`] and its message says why io_uring could
    ///   not start.
    /// - [`DriverChoice::Auto`] builds io_uring if the probe passes, otherwise epoll with
    ///   [`Driver::fallback`] set.
    ///
    /// `config.uring_entries == 0` is an [`io::ErrorKind::InvalidInput`] error whatever
    /// the choice. Errors unrelated to io_uring (such as running out of file
    /// descriptors) are returned, not fallen back on.
    pub fn new(choice: DriverChoice, config: &Config) -> io::Result<Driver> {
        if config.uring_entries == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Config::uring_entries is 0; the io_uring queue needs at least one entry.",
            ));
        }
        match choice {
            DriverChoice::Epoll => Driver::epoll(None),
            DriverChoice::Uring => match start_uring(config) {
                Ok(inner) => Ok(Driver {
                    inner,
                    fallback: None,
                    completed: Vec::new(),
                }),
                Err(StartError::Unusable(reason)) => Err(reason.into_io_error()),
                Err(StartError::Io(err)) => Err(err),
            },
            DriverChoice::Auto => match start_uring(config) {
                Ok(inner) => Ok(Driver {
                    inner,
                    fallback: None,
                    completed: Vec::new(),
                }),
                Err(StartError::Unusable(reason)) => Driver::epoll(Some(reason)),
                Err(StartError::Io(err)) => Err(err),
            },
        }
    }

    fn epoll(fallback: Option<FallbackReason>) -> io::Result<Driver> {
        Ok(Driver {
            inner: Inner::Epoll(epoll::EpollDriver::new()?),
            fallback,
            completed: Vec::new(),
        })
    }

    /// Builds the deterministic simulator backend (see [`sim`]). Only the
    /// simulator's builder chooses it; [`DriverChoice`] never does.
    ///
    /// # Errors
    ///
    /// The OS error if its unpark eventfd cannot be created.
    pub fn sim(config: sim::SimConfig) -> io::Result<Driver> {
        Ok(Driver {
            inner: Inner::Sim(Box::new(sim::SimDriver::new(config)?)),
            fallback: None,
            completed: Vec::new(),
        })
    }

    /// The simulator backend, if this driver is one.
    #[inline]
    pub fn as_sim(&mut self) -> Option<&mut sim::SimDriver> {
        match &mut self.inner {
            Inner::Sim(d) => Some(d),
            _ => None,
        }
    }

    /// The backend this driver runs on.
    pub fn kind(&self) -> DriverKind {
        match self.inner {
            #[cfg(not(miri))]
            Inner::Uring(_) => DriverKind::Uring,
            Inner::Epoll(_) => DriverKind::Epoll,
            Inner::Sim(_) => DriverKind::Sim,
        }
    }

    /// Why io_uring was not used. `Some` only when [`DriverChoice::Auto`] fell back to
    /// epoll; `None` for a forced choice or when io_uring was chosen.
    pub fn fallback(&self) -> Option<&FallbackReason> {
        self.fallback.as_ref()
    }

    /// A handle that wakes this driver from any thread.
    pub fn unparker(&self) -> Unparker {
        match &self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.unparker(),
            Inner::Epoll(d) => d.unparker(),
            Inner::Sim(d) => d.unparker(),
        }
    }

    /// Blocks the thread until it is unparked, the timeout elapses, a signal interrupts
    /// the wait, or an I/O operation completes.
    ///
    /// - `None`: no timeout. `Some(Duration::ZERO)`: poll, never block.
    /// - Never returns before the timeout except for one of the wake-ups above, so a
    ///   caller that wants a deadline loops until it has passed.
    /// - An [`Unparker::unpark`] that happens while the driver is not parked makes the
    ///   next `park` return promptly; many unparks before that coalesce into one wake-up.
    /// - `EINTR` gives `Ok(())`.
    ///
    /// # Errors
    ///
    /// Only unexpected kernel errors, with their errno.
    pub fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = if self.completed.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.park(timeout, &mut self.completed),
            Inner::Epoll(d) => d.park(timeout, &mut self.completed),
            Inner::Sim(d) => d.park(timeout, &mut self.completed),
        }
    }

    /// Starts an operation; its [`Completion`] (with the same `user_data`)
    /// is reported by [`Driver::completions`] after a later `park`, exactly
    /// once, whether it succeeded, failed or was cancelled.
    ///
    /// io_uring: the entry is queued and handed to the kernel at the next
    /// `park` (a full submission queue is submitted at once). epoll: the
    /// operation is tried at once; if the fd is not ready it waits for
    /// readiness (edge-triggered registration, made on first use of the fd).
    /// An op the epoll backend finished during the call is reported like any
    /// other (its completion is already there for the next
    /// [`Driver::completions`], and the next `park` does not wait);
    /// [`Driver::submit_or_finish`] hands such a result back at once instead.
    ///
    /// # Errors
    ///
    /// An error means the operation was **not** started (nothing refers to
    /// `op`, and no completion will come): `InvalidInput` for a `user_data`
    /// in the reserved range, or the kernel's error.
    ///
    /// # Safety
    ///
    /// On `Ok`, `op` must stay valid, unmoved and otherwise unused until the
    /// first of:
    ///
    /// - its completion is reported by [`Driver::completions`];
    /// - [`Driver::in_flight`] returns 0 (for example after [`Driver::drain`]
    ///   returned `true`), the driver having produced the completion;
    /// - the driver is dropped, **if** its drop closed everything: always for
    ///   epoll and the simulator, which never touch an op after their drop; for
    ///   io_uring only if every request finished within [`Driver::DROP_LIMIT`].
    ///   Since a drop cannot say which happened, the owner of op memory that
    ///   must know calls [`Driver::drain`] first and, on `false`, leaks that
    ///   memory (the kernel may write into it at any later time).
    ///
    /// [`Driver::cancel`] does not end that period (see the [`op`] module).
    pub unsafe fn submit(
        &mut self,
        user_data: u64,
        op: std::ptr::NonNull<dyn OpCode>,
    ) -> io::Result<()> {
        // SAFETY: forwarded from the caller; both pointers are `op`.
        if let Submitted::Done(result) = unsafe { self.submit_inner(user_data, op, op::OpPtr(op))? }
        {
            self.completed.push(Completion {
                user_data,
                result,
                flags: 0,
            });
        }
        Ok(())
    }

    /// Like [`Driver::submit`], but an operation that finished during the
    /// call comes back as [`Submitted::Done`] with its result (the raw
    /// result: `>= 0`, or `-errno`), and then **no** completion will be
    /// reported for it and the driver keeps no pointer into `op`.
    ///
    /// Only the epoll backend finishes ops during the call (a socket that is
    /// ready, a close, a regular file); io_uring and the simulator always
    /// answer [`Submitted::Queued`]. The op layer uses this to skip a trip
    /// through the run queue for I/O that did not have to wait, as tokio's
    /// readiness model does.
    ///
    /// It takes the op's own type, not `dyn OpCode` as [`Driver::submit`]
    /// does, so that the calls the submit makes into the op (`uring_entry`;
    /// `readiness`, `perform` and `drained`) are direct and can be inlined;
    /// the driver keeps a `dyn OpCode` pointer only for ops it queues.
    ///
    /// # Errors
    ///
    /// As [`Driver::submit`].
    ///
    /// # Safety
    ///
    /// As [`Driver::submit`] when the answer is `Ok(Submitted::Queued)`;
    /// nothing more once it is `Done`.
    #[inline]
    pub unsafe fn submit_or_finish<C: OpCode + 'static>(
        &mut self,
        user_data: u64,
        op: std::ptr::NonNull<C>,
    ) -> io::Result<Submitted> {
        // SAFETY: forwarded from the caller; both pointers are `op`.
        unsafe { self.submit_inner(user_data, op, op::OpPtr(op)) }
    }

    /// `submit_or_finish` for any op pointer: `code` is used for the calls
    /// made during the submit, `erased` (the same op) is what the driver keeps.
    ///
    /// # Safety
    ///
    /// As [`Driver::submit_or_finish`], and `code` and `erased` point to the
    /// same op.
    #[inline]
    unsafe fn submit_inner<C: OpCode + ?Sized>(
        &mut self,
        user_data: u64,
        code: std::ptr::NonNull<C>,
        erased: op::OpPtr,
    ) -> io::Result<Submitted> {
        if user_data >= token::RESERVED_MIN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "user_data values from u64::MAX - 255 up are reserved for the driver",
            ));
        }
        match &mut self.inner {
            #[cfg(not(miri))]
            // SAFETY: forwarded from the caller.
            Inner::Uring(d) => unsafe { d.submit(user_data, code) }.map(|()| Submitted::Queued),
            // SAFETY: forwarded from the caller.
            Inner::Epoll(d) => unsafe { d.submit(user_data, code, erased) },
            // SAFETY: forwarded from the caller.
            Inner::Sim(d) => unsafe { d.submit(user_data, erased) }.map(|()| Submitted::Queued),
        }
    }

    /// Asks the kernel to cancel the operation `user_data`. Its completion
    /// still comes (with `-ECANCELED`, or its real result if it won the
    /// race), and until then its memory stays in use. Unknown or finished
    /// keys are ignored.
    pub fn cancel(&mut self, user_data: u64) {
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.cancel(user_data),
            Inner::Epoll(d) => d.cancel(user_data),
            Inner::Sim(d) => d.cancel(user_data),
        }
    }

    /// How long dropping an io_uring driver waits for its requests to finish after
    /// cancelling them, before it leaks the ring instead (crate docs, contract item 5).
    pub const DROP_LIMIT: Duration = Duration::from_secs(2);

    /// How many submitted ops the driver or the kernel may still use the memory of:
    /// ops submitted (answered `Ok` / [`Submitted::Queued`]) whose completion the
    /// backend has not produced yet. When it is 0, no op's memory is referenced by
    /// anything but its owner.
    ///
    /// - io_uring: entries pushed and not yet answered by a final CQE (one without
    ///   `IORING_CQE_F_MORE`). A counter: one add per submit, one subtract per CQE.
    /// - epoll: ops waiting for readiness (counted by walking the fd table: call it at
    ///   shutdown, not per operation).
    /// - simulator: ops whose result is not decided yet. A decided op whose completion
    ///   is not due on the virtual clock does not count (the simulator is done with its
    ///   memory); [`sim::SimDriver::in_flight`] counts those too.
    ///
    /// A completion produced but not yet taken with [`Driver::completions`] no longer
    /// counts.
    pub fn in_flight(&self) -> usize {
        match &self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.in_flight(),
            Inner::Epoll(d) => d.in_flight(),
            Inner::Sim(d) => d.undecided(),
        }
    }

    /// Cancels every op in flight and waits, at most `limit`, until the kernel has
    /// finished with all of them. Returns `true` when [`Driver::in_flight`] is 0, i.e.
    /// no op's memory is in use any more (and dropping the driver then returns at once
    /// and closes everything); `false` when the limit passed first or the kernel
    /// refused to be entered, in which case the ops still counted may be written at any
    /// later time, even after the driver is dropped (which then leaks its ring, see the
    /// crate docs, contract item 5): their owner must leak their memory.
    ///
    /// Each op still gets exactly one completion, as after [`Driver::cancel`]
    /// (`-ECANCELED`, or its real result if it won the race): the ones produced during
    /// the call are queued for [`Driver::completions`], the simulator's come when the
    /// virtual clock reaches them.
    ///
    /// - io_uring: one `IORING_OP_ASYNC_CANCEL` with `IORING_ASYNC_CANCEL_ANY` (which also
    ///   cancels the unpark READ; the next `park` re-arms it), then waits for CQEs.
    ///   Kernels before 5.19 reject `ANY`: there the ops are not cancelled, and `drain`
    ///   only waits for them to end by themselves (cancel them with [`Driver::cancel`]
    ///   first, as coil's runtime does). An op blocked in an io-wq worker is interrupted
    ///   by the cancel; one the kernel cannot interrupt runs to its end.
    /// - epoll and the simulator: cancelling is immediate, so `drain` never waits and
    ///   always returns `true`.
    ///
    /// `Duration::ZERO` cancels and looks once without blocking.
    ///
    /// # Panics
    ///
    /// On a [`Config::uring_single_issuer`] ring called from a thread other than the
    /// one that built it, as [`Driver::park`] does.
    pub fn drain(&mut self, limit: Duration) -> bool {
        #[cfg(miri)]
        let _ = limit; // only io_uring waits, and Miri has no io_uring
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.drain(limit, &mut self.completed),
            Inner::Epoll(d) => d.drain(&mut self.completed),
            Inner::Sim(d) => {
                d.cancel_all();
                true
            }
        }
    }

    /// Takes the completions reaped so far.
    pub fn completions(&mut self) -> std::vec::Drain<'_, Completion> {
        self.completed.drain(..)
    }

    /// Forgets what the driver knows about `fd` (epoll: its registration).
    /// Call it when an fd that operations were submitted on has been closed,
    /// before its number can be reused; no operation on it may be pending.
    pub fn release_fd(&mut self, fd: std::os::fd::RawFd) {
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(_) => {}
            Inner::Epoll(d) => d.release_fd(fd),
            Inner::Sim(d) => d.release_fd(fd),
        }
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("kind", &self.kind())
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

#[cfg(not(miri))]
fn start_uring(config: &Config) -> Result<Inner, StartError> {
    uring::UringDriver::new(config).map(Inner::Uring)
}

/// Miri cannot run `io_uring_setup`, so under Miri io_uring is always unusable.
#[cfg(miri)]
fn start_uring(_config: &Config) -> Result<Inner, StartError> {
    Err(StartError::Unusable(FallbackReason::other(
        "io_uring_setup",
        "io_uring is not available under Miri",
    )))
}

/// Runs natively and under Miri (which supports epoll, eventfd and threads but not
/// io_uring), so the epoll backend and the unpark protocol get Miri's checks.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_fallback_under_miri_and_epoll_round_trip() {
        let auto = Driver::new(DriverChoice::Auto, &Config::default()).unwrap();
        if cfg!(miri) {
            assert_eq!(auto.kind(), DriverKind::Epoll);
            let reason = auto.fallback().unwrap();
            assert_eq!(reason.stage(), "io_uring_setup");
            assert_eq!(reason.errno(), None);
            let err = Driver::new(DriverChoice::Uring, &Config::default()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::Unsupported);
            assert!(err.to_string().starts_with("io_uring could not start: "));
        }
        drop(auto);

        let mut driver = Driver::new(DriverChoice::Epoll, &Config::default()).unwrap();
        let unparker = driver.unparker();
        driver.park(Some(Duration::ZERO)).unwrap();
        for _ in 0..10 {
            unparker.unpark();
        }
        driver.park(None).unwrap();
        driver.park(Some(Duration::from_millis(1))).unwrap();

        let remote = unparker.clone();
        let t = std::thread::spawn(move || remote.unpark());
        driver.park(None).unwrap();
        t.join().unwrap();
        drop(driver);
        unparker.unpark(); // the driver is gone: harmless
    }
}
