//! Operations: what the kernel is asked to do, for both backends side by side.
//!
//! One type per operation. Each implements [`OpCode`]: its io_uring entry,
//! and for epoll the readiness it waits for and the non-blocking system call
//! that performs it once ready. The op layer above (crate `coil`) owns the
//! op value (and so its buffers and fds) from submission until the
//! completion arrives; the driver only ever sees a pointer to it.
//!
//! # The kernel-facing contract
//!
//! [`Driver::submit`](crate::Driver::submit) takes a raw pointer to an op and a
//! `user_data` key. From that call until the driver reports a [`Completion`]
//! with that key, the op must not move and must not be freed: io_uring holds
//! pointers into it (buffers, addresses), and epoll calls [`OpCode::perform`]
//! on it when the fd becomes ready. Cancelling
//! ([`Driver::cancel`](crate::Driver::cancel)) does not end that period: only
//! the completion does (axboe/liburing#733: "always honor the rule"), or a
//! [`Driver::drain`](crate::Driver::drain) that returned `true`, or a drop of
//! the driver that closed everything; a dropped io_uring driver may instead
//! have leaked its ring with the op still in flight (the `Driver::submit`
//! safety section and the crate docs, contract item 5, say when).

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

mod fd;
mod fs;
mod net;
mod udp;
mod vectored;

pub use fd::{CURRENT_POSITION, Close, Nop, PollReadable, Read, Write};
pub use fs::{
    FsOpcode, Fsync, Ftruncate, LinkAt, MkDirAt, OpenAt, RenameAt, Statx, SymlinkAt, UnlinkAt,
    uring_supports,
};
pub use net::{Accept, Connect, Recv, RecvPooled, Send, Shutdown, SockAddr};
pub(crate) use net::{init_bytes, spare_capacity, spare_ptr};
pub use udp::{RecvMsg, SendMsg};
pub use vectored::{IOV_MAX, SendVectored};

/// The io_uring submission entry type, for ops that wrap another op.
pub use io_uring::squeue::Entry as UringEntry;

/// What an op waits for under epoll before [`OpCode::perform`] can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Wait until `fd` is readable.
    Readable(RawFd),
    /// Wait until `fd` is writable.
    Writable(RawFd),
    /// Perform at once (no readiness applies, e.g. a NOP).
    Immediate,
    /// Perform at once, after the driver forgot everything it knows about
    /// `fd` (the op closes it).
    Close(RawFd),
}

/// One kernel operation.
///
/// # Safety
///
/// - Every pointer in the entry returned by [`OpCode::uring_entry`] must
///   point into memory owned by `self` (or `'static`), valid until the op's
///   completion is reported. The caller guarantees `self` does not move or
///   drop during that time (module docs).
/// - [`OpCode::perform`] must not block: it runs a non-blocking system call
///   and returns `ErrorKind::WouldBlock` if the fd is not ready.
pub unsafe trait OpCode {
    /// The io_uring submission entry (its `user_data` is set by the driver).
    fn uring_entry(&mut self) -> io_uring::squeue::Entry;
    /// epoll: what to wait for before calling `perform`.
    fn readiness(&self) -> Readiness;
    /// epoll: run the system call now. `Ok(n)` becomes a completion with
    /// result `n`; an error other than `WouldBlock` becomes one with `-errno`.
    fn perform(&mut self) -> io::Result<usize>;
    /// epoll: after `perform` returned `Ok(n)`, whether that shows the fd
    /// has nothing more to give in the op's direction, so the driver skips
    /// the next attempt (a sure `EAGAIN`) until an edge-triggered event
    /// says something changed. True for a stream read that filled less than
    /// the room it had: the kernel copies until the receive queue is empty,
    /// and any later arrival raises a new edge (tokio's `poll_read` relies on
    /// the same). Never true for datagrams, where a short message says
    /// nothing about the next one. Default: false.
    fn drained(&self, n: usize) -> bool {
        let _ = n;
        false
    }
    /// The simulator ([`crate::sim`]): what this op asks for, in terms the
    /// in-memory network understands. `None` (the default): the simulator
    /// does not support it and `submit` fails with `Unsupported`.
    ///
    /// Called on the op at its final address, any number of times until its
    /// completion; the borrows it returns must point into `self`.
    fn sim(&mut self) -> Option<SimOp<'_>> {
        None
    }
}

impl SimOp<'_> {
    /// The fd the op works on (`None` for a NOP).
    pub fn fd(&self) -> Option<RawFd> {
        match *self {
            SimOp::Nop => None,
            SimOp::Accept { fd, .. }
            | SimOp::Connect { fd, .. }
            | SimOp::Recv { fd, .. }
            | SimOp::Send { fd, .. }
            | SimOp::RecvFrom { fd, .. }
            | SimOp::SendTo { fd, .. }
            | SimOp::Shutdown { fd, .. } => Some(fd),
        }
    }
}

/// An operation as the simulator sees it (see [`OpCode::sim`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum SimOp<'a> {
    /// Completes with 0.
    Nop,
    /// Accept a connection on listener `fd`; completes with the new fd, the
    /// peer's address written to `peer`.
    Accept {
        /// The listener.
        fd: RawFd,
        /// Receives the peer's address.
        peer: &'a mut SockAddr,
    },
    /// Connect stream socket `fd` to `addr`; completes with 0.
    Connect {
        /// The socket.
        fd: RawFd,
        /// Where to.
        addr: Option<std::net::SocketAddr>,
    },
    /// Receive on stream socket `fd` into `buf`; completes with the count.
    Recv {
        /// The socket.
        fd: RawFd,
        /// The spare capacity of the op's buffer.
        buf: &'a mut [std::mem::MaybeUninit<u8>],
    },
    /// Send `buf` on stream socket `fd`; completes with the count.
    Send {
        /// The socket.
        fd: RawFd,
        /// The bytes to send.
        buf: &'a [u8],
    },
    /// Receive one datagram on `fd` into `buf`, its sender written to `from`;
    /// completes with the count copied.
    RecvFrom {
        /// The socket.
        fd: RawFd,
        /// The spare capacity of the op's buffer.
        buf: &'a mut [std::mem::MaybeUninit<u8>],
        /// Receives the sender's address.
        from: &'a mut SockAddr,
    },
    /// Send `buf` as one datagram on `fd` to `to` (`None`: the connected
    /// peer); completes with the count.
    SendTo {
        /// The socket.
        fd: RawFd,
        /// The datagram.
        buf: &'a [u8],
        /// The destination (`None`: the connected peer).
        to: Option<std::net::SocketAddr>,
    },
    /// Shut down `how` (`libc::SHUT_*`) of stream socket `fd`.
    Shutdown {
        /// The socket.
        fd: RawFd,
        /// `libc::SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`.
        how: i32,
    },
}

/// A finished operation, as reported by [`Driver::completions`](crate::Driver::completions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The key given to `submit`.
    pub user_data: u64,
    /// io_uring style: `>= 0` is the value, `< 0` is `-errno`.
    pub result: i32,
    /// io_uring CQE flags (0 under epoll).
    pub flags: u32,
}

impl Completion {
    /// The result as an `io::Result`, keeping the OS errno.
    pub fn io_result(&self) -> io::Result<usize> {
        if self.result < 0 {
            Err(io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as usize)
        }
    }
}

/// Moves every element of `from` to the end of `to`, swapping the vectors
/// (no copy) when `to` is empty.
#[inline]
pub(crate) fn move_all<T>(from: &mut Vec<T>, to: &mut Vec<T>) {
    if to.is_empty() {
        std::mem::swap(from, to);
    } else {
        to.append(from);
    }
}

/// A pointer to a submitted op, as the driver keeps it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpPtr(pub(crate) NonNull<dyn OpCode>);

// SAFETY: the driver only dereferences an OpPtr on the thread that owns the
// driver, and the submitter keeps the op alive and in place until its
// completion (the contract of `Driver::submit`). Moving the driver moves
// this bookkeeping with it.
unsafe impl std::marker::Send for OpPtr {}

/// Turn an `io::Result<usize>` from `perform` into a completion value.
///
/// Inline: an epoll op that finishes during its submit (W5's send) called
/// it out of line from the `coil` crate, which cannot inline a non-generic
/// function of this one unless told to.
#[inline]
pub(crate) fn to_result(r: io::Result<usize>) -> i32 {
    match r {
        Ok(n) => i32::try_from(n).unwrap_or(i32::MAX),
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}
