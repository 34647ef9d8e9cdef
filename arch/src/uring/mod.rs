//! The io_uring backend.
//!
//! # Layout
//!
//! - One ring per driver, built with `IORING_SETUP_CLAMP` and `MADV_DONTFORK` on its
//!   mappings, and with [`Config::uring_single_issuer`] also `SINGLE_ISSUER |
//!   DEFER_TASKRUN | TASKRUN_FLAG` (coil's runtime sets it; see `probe::build` for why).
//!   In that *deferred* mode the kernel posts completions only when the owning thread
//!   enters with `GETEVENTS`, so:
//!   - a blocking `park` enters with `GETEVENTS` and `min_complete = 1`, which first runs
//!     the queued work and returns at once if that posted anything;
//!   - a non-blocking `park` (`Duration::ZERO`) enters when the SQ holds entries, the CQ
//!     overflowed, or the kernel set `IORING_SQ_TASKRUN` (work is queued), and otherwise
//!     makes no syscall;
//!   - an unpark from another thread still wakes a blocked `park`: the eventfd READ's
//!     wake-up queues its work on the ring, and queueing work wakes a thread waiting in
//!     `io_uring_enter` for completions (tested in `arch/tests/driver_park.rs` under the
//!     `uring_single_issuer` flavour);
//!   - entering from another thread fails with `EEXIST`; `park` turns that into a panic
//!     that names the rule.
//! - The unpark eventfd has an `IORING_OP_READ` in flight whenever the driver is parked
//!   (`token::UNPARK`). Its completion consumes the counter, so the driver only has to
//!   clear `notified` and re-arm the read at the start of the next `park`. Where the
//!   kernel can post a `MSG_RING` completion without a source ring (Linux 6.13),
//!   unparks send one (`token::MSG_WAKE`, `ringwake.rs`) instead of writing the
//!   eventfd; its CQE clears `notified` as the READ's does, and the READ stays in
//!   flight.
//! - Completions are reaped in a loop and dispatched by `user_data`: reserved tokens
//!   are the driver's own; every other key is an op submitted through
//!   `Driver::submit`, and its completion is handed to the caller of `park`.
//!
//! # Files
//!
//! - `mod.rs`: the driver's state, `new`, the one place that enters the kernel (`enter`,
//!   with the test-only fault seam) and the wrong-thread rule.
//! - `probe.rs`: ring setup and the probe `Auto` runs before it trusts io_uring.
//! - `submit.rs`: submitting, parking, reaping and dispatching completions.
//! - `teardown.rs`: cancelling everything and waiting for the kernel (`drain`, `Drop`).
//!
//! # Invariants
//!
//! 1. Once an entry is pushed to the SQ, every pointer in it stays valid until its CQE
//!    has been reaped, whatever `submit` returned (an error from `io_uring_enter` leaves
//!    unconsumed entries in the SQ; compare tokio-rs/tokio#8255).
//! 2. `wake_armed` is `true` from the push of the eventfd READ until its CQE is reaped.
//!    While it is `true`, `wake_buf` may be written by the kernel at any moment.
//! 3. `wake_buf` is freed only when `wake_armed` is `false`, and only after the ring is
//!    closed (see `Drop`). If the cancel at drop cannot be confirmed, it is leaked.
//! 4. `in_flight` counts the entries of submitted ops (keys below `token::RESERVED_MIN`)
//!    pushed to the SQ whose final CQE (one without `IORING_CQE_F_MORE`) has not been
//!    reaped: while it is non-zero the kernel may still use some op's memory.
//! 5. The ring is closed only when `in_flight == 0` and `wake_armed` is `false`. Closing
//!    an io_uring fd does not wait for its requests (the kernel cancels them later, from
//!    a workqueue, and an io-wq worker already running one may still write its buffer),
//!    so `Drop` first cancels everything and reaps until both hold, for at most
//!    [`DROP_LIMIT`]; past that it leaks the ring and `wake_buf` instead of freeing them.
//! 6. A slot of the registered-buffer table (`register_fixed`) is `true` in `fixed_slots`
//!    from the update that registered memory there until the update that emptied it
//!    succeeded; only a `false` slot is handed out again, so an index names at most one
//!    region at a time. The driver keeps no reference to that memory: its owner (coil's
//!    `FixedBufPool`) keeps it alive while any op that names the slot is in flight (the
//!    op owns a buffer of it), which is the only time the kernel touches it.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use io_uring::IoUring;
use io_uring::types::{SubmitArgs, Timespec};

use crate::op::Completion;
use crate::ringwake::RingWake;
use crate::sys::{Blocking, EventFd};
use crate::unpark::{Shared, Unparker};
use crate::{Config, StartError};

/// The panic for a single-issuer ring entered from a thread that is not its owner.
const WRONG_THREAD: &str = "a coil_arch::Driver built with Config::uring_single_issuer was \
     parked on a thread other than the one that created it; io_uring rejects that (EEXIST). \
     Park it only on its own thread, or build it with uring_single_issuer = false";

mod probe;
mod submit;
mod teardown;
#[cfg(test)]
mod tests;

/// How long `Drop` waits for the kernel to confirm that every request (the ops in
/// flight and the eventfd READ) has completed, after cancelling them all; past it the
/// ring is leaked (invariant 5).
const DROP_LIMIT: Duration = crate::Driver::DROP_LIMIT;

/// An io_uring instance plus the always-armed READ on the unpark eventfd.
pub(crate) struct UringDriver {
    /// The ring. `ManuallyDrop` because it must be closed *before* `wake_buf` is freed:
    /// the kernel may write `wake_buf` until the READ's CQE is reaped or the ring is gone
    /// (invariant 3). `Drop` cancels the READ, closes the ring, then frees the buffer.
    ring: ManuallyDrop<IoUring>,
    /// The 8-byte target of the eventfd READ: a leaked `Box<u64>` held as a raw pointer,
    /// so no Rust reference ever aliases memory the kernel writes. Freed in `Drop` only
    /// (invariant 3).
    wake_buf: NonNull<u64>,
    /// Invariant 2.
    wake_armed: bool,
    /// Ops submitted whose final CQE has not been reaped (invariant 4).
    in_flight: usize,
    /// Shared with every [`Unparker`]; also keeps the eventfd open.
    unpark: Arc<Shared>,
    /// Completions of submitted ops reaped but not yet handed to the caller of
    /// `park` (reaping also happens while pushing into a full SQ).
    pending: Vec<Completion>,
    /// The ring was built with `SINGLE_ISSUER | DEFER_TASKRUN` (module docs).
    deferred: bool,
    /// The registered-buffer table (`register_fixed`): empty until the first
    /// registration makes a sparse table of [`FIXED_SLOTS`]; then one entry
    /// per slot, `true` while memory is registered there (invariant 6).
    fixed_slots: Vec<bool>,
    /// Test seam (docs/reliability.md, check 31; only with the `testing` feature): when
    /// set, consulted before every `io_uring_enter`; `Some(errno)` skips the enter and
    /// reports that error as if the kernel had refused everything.
    #[cfg(any(test, feature = "testing"))]
    fault: Option<crate::testing::EnterFault>,
}

/// The ways the driver enters the kernel.
#[derive(Clone, Copy)]
enum Enter {
    /// Submit what is queued (plus `GETEVENTS` when the overflow or taskrun flag
    /// asks for it); never waits.
    Submit,
    /// Submit and wait for one completion, at most this long (`None`: forever).
    Wait(Option<Duration>),
}

// SAFETY: `wake_buf` is the only non-`Send` field. It is owned by this driver alone (no
// other pointer to it exists besides the kernel's), so moving the driver to another
// thread moves its sole owner. The ring and the Arc<Shared> are Send.
unsafe impl Send for UringDriver {}

impl UringDriver {
    /// Sets up the ring and probes it; see the crate docs for the probe steps.
    pub(crate) fn new(config: &Config) -> Result<UringDriver, StartError> {
        let ring = probe::setup(config)?;
        let deferred = ring.params().is_setup_single_issuer();

        let eventfd = EventFd::new(Blocking::Yes).map_err(StartError::Io)?;
        let unpark = Shared::with_ring(eventfd, RingWake::probe(ring.as_raw_fd()));
        let mut driver = UringDriver {
            ring: ManuallyDrop::new(ring),
            wake_buf: NonNull::from(Box::leak(Box::new(0u64))),
            wake_armed: false,
            in_flight: 0,
            unpark,
            pending: Vec::new(),
            deferred,
            fixed_slots: Vec::new(),
            #[cfg(any(test, feature = "testing"))]
            fault: None,
        };
        // Take the MSG_RING probe's completion (`RingWake::probe`), queued as task work
        // on a deferred ring, so that the ring starts with an empty CQ.
        driver.flush().map_err(StartError::Io)?;
        driver.reap();
        Ok(driver)
    }

    pub(crate) fn unparker(&self) -> Unparker {
        Unparker::new(self.unpark.clone())
    }

    /// Every `io_uring_enter` goes through here (so the fault seam sees them all).
    fn enter(&mut self, how: Enter) -> io::Result<usize> {
        #[cfg(any(test, feature = "testing"))]
        if let Some(errno) = self.fault.as_mut().and_then(|f| f()) {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let submitter = self.ring.submitter();
        match how {
            Enter::Submit => submitter.submit(),
            Enter::Wait(None) => submitter.submit_and_wait(1),
            Enter::Wait(Some(d)) => {
                let ts = timespec(d);
                submitter.submit_with_args(1, &SubmitArgs::new().timespec(&ts))
            }
        }
    }

    /// See `Driver::register_buf_ring`. The ring memory needs no reference here:
    /// the kernel reads it only for a buffer-select recv of its group, and every
    /// such op holds the ring (`pbuf.rs`, lifetime of the memory).
    pub(crate) fn register_buf_ring(&mut self, ring: &crate::pbuf::BufRing) -> io::Result<()> {
        if ring.is_registered() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let (addr, count) = ring.ring_addr();
        // SAFETY: `addr` is the ring's page-aligned, zeroed array of `count`
        // entries, which lives while any op that makes the kernel read it does.
        unsafe {
            self.ring
                .submitter()
                .register_buf_ring_with_flags(addr, count, ring.bgid(), 0)?;
            // SAFETY: just registered; no buffer-select request has used it.
            ring.set_registered();
        }
        Ok(())
    }

    /// See `Driver::register_fixed`.
    pub(crate) fn register_fixed(&mut self, region: libc::iovec) -> io::Result<u16> {
        if self.fixed_slots.is_empty() {
            self.ring
                .submitter()
                .register_buffers_sparse(u32::from(FIXED_SLOTS))?;
            self.fixed_slots = vec![false; usize::from(FIXED_SLOTS)];
        }
        let Some(slot) = self.fixed_slots.iter().position(|used| !used) else {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        };
        // SAFETY: the caller's contract (`Driver::register_fixed`): the region
        // stays valid while any op names this slot; the slot is free
        // (invariant 6), so no op in flight names it.
        unsafe {
            self.ring
                .submitter()
                .register_buffers_update(slot as u32, &[region], None)?;
        }
        self.fixed_slots[slot] = true;
        Ok(slot as u16)
    }

    /// See `Driver::unregister_fixed`.
    pub(crate) fn unregister_fixed(&mut self, slot: u16) -> io::Result<()> {
        let used = self.fixed_slots.get_mut(usize::from(slot));
        let Some(used @ true) = used else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: an empty entry points at nothing; invariant 6 keeps the slot
        // marked used (never reused) if the kernel refuses.
        unsafe {
            self.ring
                .submitter()
                .register_buffers_update(u32::from(slot), &[empty], None)?;
        }
        *used = false;
        Ok(())
    }

    /// Installs (or with `None` removes) the enter fault seam.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn set_enter_fault(&mut self, fault: Option<crate::testing::EnterFault>) {
        self.fault = fault;
    }

    /// Passes `e` through, unless it is the `EEXIST` of a deferred ring entered from a
    /// thread that does not own it: a misuse, so a panic that says what to do.
    #[track_caller]
    fn wrong_thread(&self, e: io::Error) -> io::Error {
        if self.deferred && e.raw_os_error() == Some(libc::EEXIST) {
            panic!("{WRONG_THREAD}");
        }
        e
    }
}

impl fmt::Debug for UringDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringDriver")
            .field("ring_fd", &self.ring.as_raw_fd())
            .field("sq_entries", &self.ring.params().sq_entries())
            .field("cq_entries", &self.ring.params().cq_entries())
            .field("wake_armed", &self.wake_armed)
            .field("in_flight", &self.in_flight)
            .field("deferred", &self.deferred)
            .finish_non_exhaustive()
    }
}

/// Slots of a ring's registered-buffer table (one per registered region; coil's
/// `FixedBufPool` takes one). Its kernel cost is 8 bytes a slot.
pub(crate) const FIXED_SLOTS: u16 = 1024;

/// Errors from `io_uring_enter` that are part of normal operation.
pub(super) fn is_benign(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}

/// `d` as a kernel timespec. Seconds are clamped to `i64::MAX` (about 292 billion years)
/// so `Duration::MAX` does not wrap negative and fail with `EINVAL`.
pub(super) fn timespec(d: Duration) -> Timespec {
    Timespec::new()
        .sec(d.as_secs().min(i64::MAX as u64))
        .nsec(d.subsec_nanos())
}
