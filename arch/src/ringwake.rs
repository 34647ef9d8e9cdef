//! Cross-loop wake-ups through `IORING_OP_MSG_RING`: an [`Unparker`](crate::Unparker)
//! of an io_uring driver posts a completion straight into the target ring instead of
//! writing the eventfd that the ring has a read waiting on.
//!
//! The message is sent with `io_uring_register(-1, IORING_REGISTER_SEND_MSG_RING, sqe,
//! 1)` (Linux 6.13): a synchronous MSG_RING that needs no ring of the sender's own, so
//! any thread can unpark this way (a loop on the epoll driver, the blocking pool, a plain
//! thread), and its result comes back with the call. The target ring may be a
//! `SINGLE_ISSUER | DEFER_TASKRUN` one: the kernel then queues the completion as task
//! work for the ring's owner, which wakes it if it waits in `io_uring_enter` (the same
//! path a completing request takes). The CQE carries [`token::MSG_WAKE`], which the
//! target driver handles as it handles its eventfd read completing: step 3 of the unpark
//! protocol (`unpark.rs`). One raise of the `notified` flag sends either one message or
//! one eventfd write, never both, so the target clears the flag once per wake either
//! way.
//!
//! Where it is not available (an older kernel, a seccomp filter, the epoll and simulator
//! drivers) the eventfd is used, as before. A send that the kernel refuses (the target
//! ring's owner has exited, its CQ could not take the entry) falls back to the eventfd
//! for that wake and turns the message path off for this target.
//!
//! The [`RingWake`] holds its own duplicate of the target ring's fd, so the number it
//! sends to always names that ring (never a file that reused a closed number); the ring
//! is freed when the driver and the last unparker are gone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use io_uring::{opcode, squeue, types};

use crate::token;

/// `IORING_REGISTER_SEND_MSG_RING`: a "blind" register opcode (no ring fd, `fd == -1`)
/// that runs the MSG_RING sqe it is given.
const IORING_REGISTER_SEND_MSG_RING: libc::c_long = 31;

/// The message path to one ring (module docs).
#[derive(Debug)]
pub(crate) struct RingWake {
    /// Our duplicate of the target ring's fd.
    ring: OwnedFd,
    /// Cleared after the kernel refused a message: later wakes use the eventfd.
    usable: AtomicBool,
}

impl RingWake {
    /// The message path to `ring_fd`, if this kernel delivers a blind MSG_RING to it:
    /// checked by sending one to the ring itself, with [`token::MSG_PROBE`] (a
    /// completion the driver ignores). `None` when the kernel refuses (`EINVAL` before
    /// Linux 6.13, `EPERM` under a filter) or the fd cannot be duplicated.
    pub(crate) fn probe(ring_fd: RawFd) -> Option<RingWake> {
        // SAFETY: F_DUPFD_CLOEXEC only reads the fd number; `ring_fd` is the caller's
        // open ring.
        let dup = unsafe { libc::fcntl(ring_fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return None;
        }
        // SAFETY: `dup` is a new fd that nothing else owns.
        let ring = unsafe { OwnedFd::from_raw_fd(dup) };
        send(ring.as_raw_fd(), token::MSG_PROBE).ok()?;
        Some(RingWake {
            ring,
            usable: AtomicBool::new(true),
        })
    }

    /// Posts the wake completion on the target ring; `false` if the message path is off
    /// or the kernel refused (the caller writes the eventfd instead).
    #[inline]
    pub(crate) fn wake(&self) -> bool {
        if !self.usable.load(Ordering::Relaxed) {
            return false;
        }
        match send(self.ring.as_raw_fd(), token::MSG_WAKE) {
            Ok(()) => true,
            Err(_) => {
                self.usable.store(false, Ordering::Relaxed);
                false
            }
        }
    }
}

#[cfg(test)]
impl RingWake {
    pub(crate) fn is_usable(&self) -> bool {
        self.usable.load(Ordering::Relaxed)
    }

    pub(crate) fn turn_off(&self) {
        self.usable.store(false, Ordering::Relaxed);
    }
}

/// One blind MSG_RING to `ring` whose CQE carries `user_data` (and result 0).
fn send(ring: RawFd, user_data: u64) -> io::Result<()> {
    let sqe: squeue::Entry = opcode::MsgRingData::new(types::Fd(ring), 0, user_data, None).build();
    // SAFETY: `squeue::Entry` is `repr(C)` around one `io_uring_sqe`, so a pointer to it
    // is a pointer to a complete sqe, which the kernel only reads, during the call; the
    // other arguments are plain integers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            -1 as libc::c_int,
            IORING_REGISTER_SEND_MSG_RING,
            (&raw const sqe).cast::<libc::c_void>(),
            1 as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
