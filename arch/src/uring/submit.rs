//! The io_uring backend's working path: queueing entries (growing room in a full SQ by
//! submitting), parking, reaping the CQ (and flushing an overflowed one) and handing each
//! CQE to the driver's tokens or to the caller of `park`. Invariants 1, 2 and 4 of the
//! module docs are kept here.

use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types};

use super::{Enter, UringDriver, is_benign};
use crate::op::{Completion, OpCode};
use crate::token;
use crate::unpark::Shared;

impl UringDriver {
    /// See [`Driver::park`](crate::Driver::park).
    pub(crate) fn park(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<()> {
        let res = self.park_inner(timeout);
        crate::op::move_all(&mut self.pending, out);
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

        // ETIME: the timeout passed. EINTR: a signal; the caller loops. EBUSY/EAGAIN:
        // the kernel wants the CQ reaped first; the entries stay in the SQ and go in
        // with the next enter (invariant 1).
        self.enter_then_reap(Enter::Wait(timeout))
    }

    /// Enters the kernel, then reaps. The benign errors ([`is_benign`]) count as
    /// success: whatever the kernel did not take stays queued for the next enter.
    fn enter_then_reap(&mut self, how: Enter) -> io::Result<()> {
        match self.enter(how) {
            Ok(_) => {}
            Err(e) if is_benign(&e) => {}
            Err(e) => return Err(self.wrong_thread(e)),
        }
        self.reap();
        Ok(())
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
    ///
    /// The common case (room in the SQ) is inlined into the submit; making room is
    /// out of line (`push_slow`), so the hot path keeps no frame of its own (W6:
    /// 17 instructions a submit less, callgrind).
    #[inline(always)]
    pub(super) unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: forwarded from the caller.
        if unsafe { self.ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.push_slow(entry) }
    }

    /// [`push`](Self::push) when the SQ was full.
    ///
    /// # Safety
    ///
    /// As [`push`](Self::push).
    #[cold]
    #[inline(never)]
    unsafe fn push_slow(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SQ full: hand what is queued to the kernel, then try again.
            match self.enter(Enter::Submit) {
                Ok(_) => {}
                Err(e) if is_benign(&e) => {
                    self.reap();
                }
                Err(e) => return Err(self.wrong_thread(e)),
            }
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
        }
    }

    /// Submits queued entries and flushes overflowed CQEs, without waiting. No syscall
    /// when the SQ is empty and the CQ has not overflowed.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        let sq = self.ring.submission();
        if sq.is_empty() && !sq.cq_overflow() && !sq.taskrun() {
            return Ok(());
        }
        drop(sq);
        // With TASKRUN set, `submit` adds GETEVENTS, which runs the deferred work.
        self.enter_then_reap(Enter::Submit)
    }

    /// Drains the CQ, dispatching every CQE; enters the kernel again while
    /// `IORING_SQ_CQ_OVERFLOW` is set, since overflowed CQEs only reach the CQ on an
    /// enter. Returns how many CQEs were seen.
    ///
    /// The CQ's head is stored once per batch (with release ordering, when the
    /// crate's `CompletionQueue` drops). The op completions go to `pending` under
    /// one reservation for the batch; an op's key is tested first (the driver's own
    /// tokens are a handful per park, ops up to a CQ's worth), and the tokens are
    /// handled out of line ([`own_token`]). W6: 691 -> 680 instructions a read, callgrind.
    pub(super) fn reap(&mut self) -> usize {
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
            let cq = ring.completion();
            seen += cq.len();
            pending.reserve(cq.len());
            for cqe in cq {
                let (user_data, result, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
                if user_data < token::RESERVED_MIN {
                    // An op's completion for the caller of `park`; it ends the op
                    // unless `IORING_CQE_F_MORE` says more CQEs follow.
                    if !cqueue::more(flags) {
                        // Saturating: a CQE no submit counted (impossible today) must
                        // not wrap the count and make drop wait for ops that do not
                        // exist.
                        *in_flight = in_flight.saturating_sub(1);
                    }
                    pending.push(Completion {
                        user_data,
                        result,
                        flags,
                    });
                } else {
                    own_token(user_data, result, wake_armed, unpark);
                }
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
}

/// Handles a CQE of one of the driver's own tokens (`reap` hands op completions to the
/// caller of `park` itself).
#[cold]
#[inline(never)]
fn own_token(user_data: u64, result: i32, wake_armed: &mut bool, unpark: &Shared) {
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
        // A MSG_RING wake (`ringwake.rs`): posted by the unpark that raised the flag,
        // in place of its eventfd write; step 3.
        token::MSG_WAKE => unpark.clear(),
        token::PROBE | token::CANCEL | token::MSG_PROBE => {}
        other => debug_assert!(
            false,
            "io_uring completed an unknown reserved user_data {other:#x}"
        ),
    }
}
