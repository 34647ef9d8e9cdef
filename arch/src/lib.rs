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
//!    epoll fd, the unpark eventfd) and fails with an [`io::Error`](std::io::Error) that
//!    keeps the OS errno. The io_uring backend also probes the kernel (see above) and
//!    reports a failed probe separately from an ordinary I/O error, so `Auto` can fall
//!    back on the first and fail on the second.
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

pub mod buf;
mod config;
mod driver;
mod epoll;
mod fallback;
pub mod op;
pub mod pbuf;
#[cfg(not(miri))]
mod ringwake;
pub mod signal;
pub mod sim;
pub mod sock;
mod sys;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod unpark;
#[cfg(not(miri))]
mod uring;

pub use buf::{BufResult, FixedSlot, IoBuf, IoBufMut};
pub use config::{Config, DriverChoice, DriverKind, ParseDriverChoiceError};
pub use driver::{Driver, Submitted};
pub use fallback::FallbackReason;
pub(crate) use fallback::StartError;
pub use op::{Completion, OpCode};
pub use unpark::{Held, Unparker};

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
    /// A cross-loop wake posted by `IORING_OP_MSG_RING` (`ringwake.rs`).
    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) const MSG_WAKE: u64 = u64::MAX - 32;
    /// The MSG_RING a driver sends itself to see that the kernel delivers them.
    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) const MSG_PROBE: u64 = u64::MAX - 33;
}
