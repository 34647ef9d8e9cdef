//! Ending the io_uring backend: `drain` (cancel every op and wait for the kernel, with a
//! limit) and `Drop` (the same for the ops and the unpark READ, then close the ring or
//! leak it). Invariants 3 and 5 of the module docs are kept here.

use std::io;
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

use io_uring::{opcode, types};

use super::{DROP_LIMIT, Enter, UringDriver, is_benign};
use crate::op::Completion;
use crate::token;

impl UringDriver {
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
    pub(super) fn quiesce(&mut self, limit: Duration, wake: bool) -> io::Result<bool> {
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
    pub(super) fn close(&mut self, limit: Duration) -> bool {
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

impl Drop for UringDriver {
    /// Invariant 5: returns once every request has completed, or leaks the ring (and
    /// with it `wake_buf`) after [`DROP_LIMIT`].
    fn drop(&mut self) {
        self.close(DROP_LIMIT);
    }
}
