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
//!   clear `notified` and re-arm the read at the start of the next `park`.
//! - Completions are reaped in a loop and dispatched by `user_data`: reserved tokens
//!   are the driver's own; every other key is an op submitted through
//!   `Driver::submit`, and its completion is handed to the caller of `park`.
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

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue, types};

use crate::op::{Completion, OpCode};
use crate::sys::{Blocking, EventFd};
use crate::unpark::{Shared, Unparker};
use crate::{Config, StartError, token};

/// The panic for a single-issuer ring entered from a thread that is not its owner.
const WRONG_THREAD: &str = "a coil_arch::Driver built with Config::uring_single_issuer was \
     parked on a thread other than the one that created it; io_uring rejects that (EEXIST). \
     Park it only on its own thread, or build it with uring_single_issuer = false";

mod probe;

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

        let unpark = Shared::new(EventFd::new(Blocking::Yes).map_err(StartError::Io)?);
        Ok(UringDriver {
            ring: ManuallyDrop::new(ring),
            wake_buf: NonNull::from(Box::leak(Box::new(0u64))),
            wake_armed: false,
            in_flight: 0,
            unpark,
            pending: Vec::new(),
            deferred,
            #[cfg(any(test, feature = "testing"))]
            fault: None,
        })
    }

    pub(crate) fn unparker(&self) -> Unparker {
        Unparker::new(self.unpark.clone())
    }

    /// See [`Driver::park`](crate::Driver::park).
    pub(crate) fn park(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<()> {
        let res = self.park_inner(timeout);
        out.append(&mut self.pending);
        res
    }

    fn park_inner(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if !self.wake_armed {
            self.arm_wake()?;
        }
        // Completions already in the CQ (or an unpark already consumed): do not wait.
        if self.reap() > 0 || !self.pending.is_empty() || timeout == Some(Duration::ZERO) {
            return self.flush();
        }

        match self.enter(Enter::Wait(timeout)) {
            Ok(_) => {}
            // ETIME: the timeout passed. EINTR: a signal; the caller loops. EBUSY/EAGAIN:
            // the kernel wants the CQ reaped first; the entries stay in the SQ and go in
            // with the next enter (invariant 1).
            Err(e) if is_benign(&e) => {}
            Err(e) => return Err(self.wrong_thread(e)),
        }
        self.reap();
        Ok(())
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

    /// Queues an op's entry; the next enter hands it to the kernel.
    ///
    /// # Safety
    ///
    /// The op must stay valid and in place until its completion is reaped
    /// (the contract of `Driver::submit`).
    #[inline]
    pub(crate) unsafe fn submit<C: OpCode + ?Sized>(
        &mut self,
        user_data: u64,
        mut op: NonNull<C>,
    ) -> io::Result<()> {
        // SAFETY: the caller keeps the op alive and unaliased (Driver::submit).
        let entry = unsafe { op.as_mut() }.uring_entry().user_data(user_data);
        // SAFETY: every pointer in the entry points into the op (OpCode contract),
        // which lives until its CQE is reaped (caller's promise, invariant 1).
        unsafe { self.push(&entry)? };
        self.in_flight += 1;
        Ok(())
    }

    /// Ops submitted whose completion the kernel has not posted yet (invariant 4).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// See [`Driver::drain`](crate::Driver::drain): cancels every op in flight and
    /// reaps until none is left or `limit` has passed. Completions reaped go to `out`.
    pub(crate) fn drain(&mut self, limit: Duration, out: &mut Vec<Completion>) -> bool {
        let res = self.quiesce(limit, false);
        out.append(&mut self.pending);
        match res {
            Ok(done) => done,
            Err(e) => {
                // Panics for a single-issuer ring drained on the wrong thread, like park.
                let _ = self.wrong_thread(e);
                false
            }
        }
    }

    /// Queues an ASYNC_CANCEL for `user_data` (best effort: a failure to queue
    /// it only means the op runs to its natural completion).
    pub(crate) fn cancel(&mut self, user_data: u64) {
        let cancel = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(token::CANCEL);
        // SAFETY: an ASYNC_CANCEL entry holds no pointers.
        let _ = unsafe { self.push(&cancel) };
    }

    /// Pushes the READ on the eventfd (not yet submitted; the next enter takes it).
    fn arm_wake(&mut self) -> io::Result<()> {
        let entry = opcode::Read::new(
            types::Fd(self.unpark.eventfd().as_raw_fd()),
            self.wake_buf.as_ptr().cast::<u8>(),
            size_of::<u64>() as u32,
        )
        .build()
        .user_data(token::UNPARK);
        // SAFETY: `wake_buf` stays allocated until its CQE is reaped or leaked (invariant
        // 3); the eventfd's file is referenced by the request itself once submitted and
        // kept open by `self.unpark` until then.
        unsafe { self.push(&entry)? };
        self.wake_armed = true;
        Ok(())
    }

    /// Pushes `entry`, submitting to make room when the SQ is full.
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must stay valid until its CQE is reaped (invariant 1).
    #[inline]
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            // SQ full: hand what is queued to the kernel, then try again.
            match self.enter(Enter::Submit) {
                Ok(_) => {}
                Err(e) if is_benign(&e) => {
                    self.reap();
                }
                Err(e) => return Err(self.wrong_thread(e)),
            }
        }
    }

    /// Submits queued entries and flushes overflowed CQEs, without waiting. No syscall
    /// when the SQ is empty and the CQ has not overflowed.
    fn flush(&mut self) -> io::Result<()> {
        let sq = self.ring.submission();
        if sq.is_empty() && !sq.cq_overflow() && !sq.taskrun() {
            return Ok(());
        }
        drop(sq);
        // With TASKRUN set, `submit` adds GETEVENTS, which runs the deferred work.
        match self.enter(Enter::Submit) {
            Ok(_) => {}
            Err(e) if is_benign(&e) => {}
            Err(e) => return Err(self.wrong_thread(e)),
        }
        self.reap();
        Ok(())
    }

    /// Drains the CQ, dispatching every CQE; enters the kernel again while
    /// `IORING_SQ_CQ_OVERFLOW` is set, since overflowed CQEs only reach the CQ on an
    /// enter. Returns how many CQEs were seen.
    fn reap(&mut self) -> usize {
        let mut seen = 0;
        loop {
            let UringDriver {
                ring,
                wake_armed,
                in_flight,
                unpark,
                pending,
                ..
            } = self;
            for cqe in ring.completion() {
                seen += 1;
                dispatch(&cqe, wake_armed, in_flight, unpark, pending);
            }
            if !ring.submission().cq_overflow() {
                return seen;
            }
            // `submit` adds GETEVENTS when the overflow flag is set, which flushes.
            match self.enter(Enter::Submit) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Nothing more we can do now; the next park enters the kernel again.
                Err(_) => return seen,
            }
        }
    }

    /// Cancels every request in flight (`IORING_ASYNC_CANCEL_ANY` when an op is; with
    /// `wake`, also the eventfd READ by its key, for kernels before 5.19 that reject
    /// `ANY` with `EINVAL`)
    /// and reaps until no op is in flight (and, with `wake`, the READ has completed), or
    /// `limit` has passed. `Ok(true)`: the kernel holds no pointer into any op's memory
    /// (nor, with `wake`, into `wake_buf`). `Ok(false)`: the limit passed first. `Err`:
    /// an enter failed with an error other than the benign ones; nothing was confirmed
    /// beyond what was reaped (the caller asks `in_flight` again if it must know).
    ///
    /// Completions of ops reaped here are kept in `pending`, as by any reap. Every enter
    /// goes through `enter`, so the fault seam applies.
    fn quiesce(&mut self, limit: Duration, wake: bool) -> io::Result<bool> {
        let idle = |d: &UringDriver| d.in_flight == 0 && !(wake && d.wake_armed);
        self.reap();
        if idle(self) {
            return Ok(true);
        }
        // `None`: a limit too large for an Instant, i.e. no limit.
        let deadline = Instant::now().checked_add(limit);
        if self.in_flight > 0 {
            let any = opcode::AsyncCancel2::new(types::CancelBuilder::any())
                .build()
                .user_data(token::CANCEL);
            // SAFETY: an ASYNC_CANCEL entry holds no pointers.
            unsafe { self.push(&any)? };
        }
        if wake && self.wake_armed {
            let read = opcode::AsyncCancel::new(token::UNPARK)
                .build()
                .user_data(token::CANCEL);
            // SAFETY: as above.
            unsafe { self.push(&read)? };
        }
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match self.enter(Enter::Wait(left)) {
                Ok(_) => {}
                Err(e) if is_benign(&e) => {}
                Err(e) => {
                    self.reap();
                    return if idle(self) { Ok(true) } else { Err(e) };
                }
            }
            self.reap();
            if idle(self) {
                return Ok(true);
            }
            if left == Some(Duration::ZERO) {
                return Ok(false);
            }
        }
    }

    /// Drop's teardown (invariant 5): cancels and reaps everything for at most `limit`,
    /// then closes the ring and frees `wake_buf`, or leaks both. Returns whether the
    /// ring was closed. Runs at most once: afterwards the ring is gone or leaked.
    fn close(&mut self, limit: Duration) -> bool {
        // Any failure (the wrong thread of a single-issuer ring, say) leaks: no panic
        // in drop.
        if !matches!(self.quiesce(limit, true), Ok(true)) {
            return false;
        }
        // SAFETY: `ring` is dropped exactly once, here (`close` runs once, from `Drop`
        // or a test that never drops the driver), and not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        // SAFETY: `wake_buf` came from `Box::leak` in `new`; no READ targets it any
        // more (`quiesce` saw its CQE) and the ring is closed (invariant 3).
        drop(unsafe { Box::from_raw(self.wake_buf.as_ptr()) });
        true
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

impl Drop for UringDriver {
    /// Invariant 5: returns once every request has completed, or leaks the ring (and
    /// with it `wake_buf`) after [`DROP_LIMIT`].
    fn drop(&mut self) {
        self.close(DROP_LIMIT);
    }
}

/// Handles one CQE: the driver's own tokens, or an op's completion for the caller of
/// `park` (which ends the op unless `IORING_CQE_F_MORE` says more CQEs follow).
fn dispatch(
    cqe: &io_uring::cqueue::Entry,
    wake_armed: &mut bool,
    in_flight: &mut usize,
    unpark: &Shared,
    pending: &mut Vec<Completion>,
) {
    let (user_data, result) = (cqe.user_data(), cqe.result());
    match user_data {
        token::UNPARK => {
            *wake_armed = false;
            // A successful READ consumed the counter: step 3 of the unpark protocol. On an
            // error (ECANCELED when the submitting thread exited, say) the counter is
            // untouched and the re-armed READ completes at once if it is non-zero.
            if result >= 0 {
                unpark.clear();
            }
        }
        token::PROBE | token::CANCEL => {}
        other if other < token::RESERVED_MIN => {
            let flags = cqe.flags();
            if !cqueue::more(flags) {
                // Saturating: a CQE no submit counted (impossible today) must not wrap
                // the count and make drop wait for ops that do not exist.
                *in_flight = in_flight.saturating_sub(1);
            }
            pending.push(Completion {
                user_data,
                result,
                flags,
            });
        }
        other => debug_assert!(
            false,
            "io_uring completed an unknown reserved user_data {other:#x}"
        ),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(entries: u32) -> UringDriver {
        build(entries, false)
    }

    fn build(entries: u32, single_issuer: bool) -> UringDriver {
        match UringDriver::new(&Config {
            uring_entries: entries,
            uring_single_issuer: single_issuer,
        }) {
            Ok(d) => d,
            Err(e) => panic!("io_uring is unusable here: {e:?}"),
        }
    }

    /// A deferred driver, or `None` on a kernel without `DEFER_TASKRUN` (before 6.1).
    fn deferred() -> Option<UringDriver> {
        let d = build(8, true);
        d.deferred.then_some(d)
    }

    /// In deferred mode the eventfd READ's completion is queued work until an enter
    /// with GETEVENTS: a non-blocking park must see `IORING_SQ_TASKRUN` and enter, or
    /// the unpark would sit unnoticed while the loop keeps polling with `ZERO`.
    #[test]
    fn deferred_park_zero_runs_queued_work() {
        let Some(mut d) = deferred() else { return };
        let mut out = Vec::new();
        d.park(Some(Duration::ZERO), &mut out).unwrap();
        assert!(d.wake_armed);
        for round in 0..100 {
            d.unparker().unpark();
            d.park(Some(Duration::ZERO), &mut out).unwrap();
            assert!(
                !d.wake_armed && !d.unpark.is_notified(),
                "round {round}: park(ZERO) left the unpark's completion queued in the kernel"
            );
            d.park(Some(Duration::ZERO), &mut out).unwrap();
            assert!(d.wake_armed, "round {round}: the READ was not re-armed");
        }
    }

    #[test]
    fn deferred_park_on_another_thread_panics_with_the_rule() {
        let Some(mut d) = deferred() else { return };
        d.park(Some(Duration::ZERO), &mut Vec::new()).unwrap();
        let res = std::thread::spawn(move || {
            let mut d = d;
            let _ = d.park(Some(Duration::ZERO), &mut Vec::new());
            d.unparker().unpark();
            let _ = d.park(Some(Duration::from_secs(5)), &mut Vec::new());
        })
        .join();
        let msg = match res {
            Ok(()) => panic!("parking a single-issuer ring on another thread did not panic"),
            Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
        };
        assert!(
            msg.contains("uring_single_issuer"),
            "unexpected panic: {msg:?}"
        );
    }

    fn push_nops(d: &mut UringDriver, n: usize) {
        let nop = opcode::Nop::new().build().user_data(token::PROBE);
        for _ in 0..n {
            // SAFETY: a NOP holds no pointers.
            unsafe { d.push(&nop) }.unwrap();
        }
    }

    /// A 1-entry SQ (CQ of 2) takes 48 NOPs: push submits when the SQ is full, the CQ
    /// overflows, and one reap flushes the overflow list until every CQE is seen.
    #[test]
    fn sq_full_and_cq_overflow_lose_nothing() {
        let mut d = driver(1);
        assert_eq!(d.ring.params().sq_entries(), 1);
        assert_eq!(d.ring.params().cq_entries(), 2);
        push_nops(&mut d, 48);
        d.ring.submit().unwrap();
        assert!(
            d.ring.submission().cq_overflow(),
            "the test did not overflow the CQ"
        );
        assert_eq!(d.reap(), 48);
        assert!(!d.ring.submission().cq_overflow());
        // The driver still works after the overflow.
        d.unparker().unpark();
        let mut out = Vec::new();
        d.park(Some(Duration::from_secs(10)), &mut out).unwrap();
        d.park(Some(Duration::from_millis(1)), &mut out).unwrap();
        assert!(out.is_empty(), "reserved tokens are not reported");
    }

    #[test]
    fn drop_confirms_the_eventfd_read_is_cancelled() {
        let mut d = driver(8);
        d.park(Some(Duration::ZERO), &mut Vec::new()).unwrap();
        assert!(d.wake_armed);
        assert!(
            d.quiesce(DROP_LIMIT, true).unwrap(),
            "the READ's cancellation was not confirmed"
        );
        assert!(!d.wake_armed);
    }

    type Op = crate::op::Read<Vec<u8>>;

    /// A READ of up to 8 bytes from `fd` into a zeroed buffer, submitted (not yet
    /// entered). The op is leaked: a test below leaks the ring, after which the kernel
    /// may write it at any time.
    fn pending_read(d: &mut UringDriver, fd: std::os::fd::RawFd, user_data: u64) -> NonNull<Op> {
        let mut buf = vec![0u8; 8];
        buf.clear();
        let op = NonNull::from(Box::leak(Box::new(crate::op::Read {
            fd,
            buf,
            offset: crate::op::CURRENT_POSITION,
        })));
        // SAFETY: the op is leaked, so it stays valid and in place forever.
        unsafe { d.submit(user_data, op) }.unwrap();
        op
    }

    /// The 8 bytes of the op's buffer, read volatile: the kernel may write them
    /// concurrently.
    fn peek(op: NonNull<Op>) -> [u8; 8] {
        // SAFETY: the op is leaked (never freed) and its buffer has 8 bytes of capacity;
        // `u8` has no invalid values, and a racing kernel write only changes which bytes
        // we see.
        unsafe { std::ptr::read_volatile((*op.as_ptr()).buf.as_ptr().cast::<[u8; 8]>()) }
    }

    /// `drain` cancels every op in flight with one `ASYNC_CANCEL_ANY` and reports each
    /// completion; the count goes back to 0 and the driver keeps working.
    #[test]
    fn drain_cancels_every_op_in_flight() {
        for single_issuer in [false, true] {
            let mut d = build(8, single_issuer);
            let pairs: Vec<_> = (0..3)
                .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
                .collect();
            for (i, (a, _)) in pairs.iter().enumerate() {
                pending_read(&mut d, a.as_raw_fd(), i as u64);
            }
            let mut out = Vec::new();
            d.park(Some(Duration::ZERO), &mut out).unwrap();
            assert_eq!(d.in_flight(), 3);
            assert!(d.drain(DROP_LIMIT, &mut out));
            assert_eq!(d.in_flight(), 0);
            out.sort_by_key(|c| c.user_data);
            let got: Vec<_> = out.iter().map(|c| (c.user_data, c.result)).collect();
            assert_eq!(got, [0, 1, 2].map(|i| (i, -libc::ECANCELED)));
            // `ANY` cancelled the eventfd READ too; unparks still work (a park re-arms
            // it, and an unpark made meanwhile completes the new READ at once).
            d.unparker().unpark();
            for _ in 0..3 {
                if !d.unpark.is_notified() {
                    break;
                }
                d.park(Some(DROP_LIMIT), &mut out).unwrap();
            }
            assert!(!d.unpark.is_notified(), "the unpark was never consumed");
            assert!(
                out.len() == 3,
                "a completion for an op that was not submitted"
            );
        }
    }

    /// The bound: with every enter refused (the fault seam) the cancels never reach the
    /// kernel, so a teardown with a zero limit cannot confirm the READ and leaks the
    /// ring instead of closing it. The leak is real: the request still runs afterwards
    /// and writes the op's buffer when data arrives, which is why the owner of op memory
    /// must leak it too when `Driver::drain` returns `false`.
    #[test]
    fn teardown_past_the_limit_leaks_the_ring_and_the_kernel_still_writes() {
        use std::io::Write as _;
        let mut d = ManuallyDrop::new(driver(8));
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let op = pending_read(&mut d, a.as_raw_fd(), 7);
        d.park(Some(Duration::ZERO), &mut Vec::new()).unwrap();
        assert_eq!(d.in_flight(), 1);
        d.set_enter_fault(Some(Box::new(|| Some(libc::EAGAIN))));
        assert!(
            !d.close(Duration::ZERO),
            "closed a ring with a READ in flight"
        );
        assert_eq!(d.in_flight(), 1);
        // `d` is never dropped: its ring is leaked, as `Drop` would have left it.
        b.write_all(b"leaked!!").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while peek(op) != *b"leaked!!" {
            assert!(
                Instant::now() < deadline,
                "the leaked ring's READ never completed"
            );
            // Runs the READ's task work on this thread (the submitter).
            std::thread::yield_now();
        }
        drop(a);
    }
}
