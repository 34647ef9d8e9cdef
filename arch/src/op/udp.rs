//! Datagram operations: `sendmsg` and `recvmsg` with an op-owned message
//! header, for UDP and Unix datagram sockets alike.
//!
//! io_uring's `IORING_OP_SENDMSG`/`IORING_OP_RECVMSG` take a pointer to a
//! `msghdr`, which points at an `iovec` and a socket address, which point at
//! the buffer. Every one of those lives **inside the op** (tokio-uring#125:
//! a `msghdr` on the submitting future's stack is read by the kernel after
//! the future is gone), and the pointers are wired up in
//! [`OpCode::uring_entry`] / [`OpCode::perform`], i.e. only once the op sits
//! at its final address (the op contract: it does not move until its
//! completion).

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{OpCode, Readiness, SimOp, SockAddr, init_bytes, spare_capacity, spare_ptr};
use crate::buf::{IoBuf, IoBufMut};
use crate::sys::syscall;

fn empty_iov() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

fn empty_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is plain old data; all-zero (null pointers, zero
    // lengths) is a valid, empty header.
    unsafe { std::mem::zeroed() }
}

/// The io_uring entry of a `sendmsg` of `msg` on `fd`, with `MSG_NOSIGNAL`.
/// The caller's `OpCode` impl answers for `msg` staying valid (the op
/// contract).
pub(super) fn send_msg_entry(fd: RawFd, msg: *const libc::msghdr) -> squeue::Entry {
    opcode::SendMsg::new(types::Fd(fd), msg)
        .flags(libc::MSG_NOSIGNAL as u32)
        .build()
}

/// `sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT)` now (epoll).
///
/// # Safety
///
/// `msg`, and every iovec, buffer and address it points to, must be valid
/// for the call.
pub(super) unsafe fn send_msg_now(fd: RawFd, msg: *const libc::msghdr) -> io::Result<usize> {
    // SAFETY: forwarded from the caller.
    let n = syscall!(unsafe { libc::sendmsg(fd, msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) })?;
    Ok(n as usize)
}

/// The `uring_entry`, `readiness` and `perform` of an op that sends, on its
/// `fd`, the message header its `wire()` points at its own fields (and
/// returns): `sendmsg` with `MSG_NOSIGNAL`.
macro_rules! send_msg_methods {
    () => {
        fn uring_entry(&mut self) -> io_uring::squeue::Entry {
            super::udp::send_msg_entry(self.fd, self.wire())
        }

        fn readiness(&self) -> super::Readiness {
            super::Readiness::Writable(self.fd)
        }

        fn perform(&mut self) -> std::io::Result<usize> {
            let msg = self.wire();
            // SAFETY: `msg` and everything it points to live in `self`, valid
            // for the call (`wire` just set them up).
            unsafe { super::udp::send_msg_now(self.fd, msg) }
        }
    };
}
pub(super) use send_msg_methods;

/// Send the initialised bytes of `buf` as one datagram, to `addr` or (for a
/// connected socket, `addr == None`) to the connected peer. Passes
/// `MSG_NOSIGNAL`.
pub struct SendMsg<B> {
    /// The socket.
    pub fd: RawFd,
    /// Source: its initialised bytes are the datagram.
    pub buf: B,
    addr: Option<SockAddr>,
    iov: libc::iovec,
    msg: libc::msghdr,
}

impl<B: IoBuf> SendMsg<B> {
    /// Send `buf` on `fd` to `addr` (`None`: the connected peer).
    pub fn new(fd: RawFd, buf: B, addr: Option<SockAddr>) -> SendMsg<B> {
        SendMsg {
            fd,
            buf,
            addr,
            iov: empty_iov(),
            msg: empty_msghdr(),
        }
    }

    /// Point `msg` at `iov` and `addr`, and `iov` at `buf`. Called once the
    /// op is at its final address.
    fn wire(&mut self) -> *const libc::msghdr {
        self.iov = libc::iovec {
            iov_base: self.buf.stable_ptr().cast_mut().cast(),
            iov_len: self.buf.bytes_init(),
        };
        self.msg = empty_msghdr();
        if let Some(a) = &self.addr {
            let (p, len) = a.as_ptr();
            self.msg.msg_name = p.cast_mut().cast();
            self.msg.msg_namelen = len;
        }
        self.msg.msg_iov = &raw mut self.iov;
        self.msg.msg_iovlen = 1;
        &raw const self.msg
    }
}

impl<B> fmt::Debug for SendMsg<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendMsg")
            .field("fd", &self.fd)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

// SAFETY: the entry points at `self.msg`, which points at `self.iov` and
// `self.addr` (all fields of `self`), and `self.iov` points at `buf`'s
// initialised bytes (IoBuf contract). The op does not move until completion.
unsafe impl<B: IoBuf> OpCode for SendMsg<B> {
    send_msg_methods!();

    fn sim(&mut self) -> Option<SimOp<'_>> {
        let to = match &self.addr {
            None => None,
            // A non-IP destination (a Unix path): not simulated.
            Some(a) => Some(a.as_std()?),
        };
        Some(SimOp::SendTo {
            fd: self.fd,
            buf: init_bytes(&self.buf),
            to,
        })
    }
}

/// Receive one datagram into the spare capacity of `buf`
/// (`bytes_init..bytes_total`); the sender's address is kept
/// ([`RecvMsg::source`]). A datagram longer than the room is truncated (the
/// rest is discarded, as by `recvfrom`).
pub struct RecvMsg<B> {
    /// The socket.
    pub fd: RawFd,
    /// Destination; its spare capacity is filled.
    pub buf: B,
    addr: SockAddr,
    iov: libc::iovec,
    msg: libc::msghdr,
}

impl<B: IoBufMut> RecvMsg<B> {
    /// Receive on `fd` into `buf`.
    pub fn new(fd: RawFd, buf: B) -> RecvMsg<B> {
        RecvMsg {
            fd,
            buf,
            addr: SockAddr::empty(),
            iov: empty_iov(),
            msg: empty_msghdr(),
        }
    }

    fn wire(&mut self) -> *mut libc::msghdr {
        let (base, len) = spare_ptr(&mut self.buf);
        self.iov = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        self.addr = SockAddr::empty();
        let (name, namelen) = self.addr.as_mut_ptr();
        self.msg = empty_msghdr();
        self.msg.msg_name = name.cast();
        // SAFETY: `namelen` points into `self.addr`, just initialised.
        self.msg.msg_namelen = unsafe { *namelen };
        self.msg.msg_iov = &raw mut self.iov;
        self.msg.msg_iovlen = 1;
        &raw mut self.msg
    }

    /// The sender's address, once the op completed successfully.
    pub fn source(&self) -> SockAddr {
        let mut a = self.addr;
        let (_, len) = a.as_mut_ptr();
        let max = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `len` points into the local copy `a`.
        unsafe { *len = self.msg.msg_namelen.min(max) };
        a
    }

    /// Whether the datagram was longer than the room given (`MSG_TRUNC`).
    pub fn truncated(&self) -> bool {
        self.msg.msg_flags & libc::MSG_TRUNC != 0
    }
}

impl<B> fmt::Debug for RecvMsg<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvMsg")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

// SAFETY: the entry points at `self.msg`, which points at `self.iov` and
// `self.addr` (fields of `self`), and `self.iov` at `buf`'s spare capacity
// (IoBufMut contract). The op does not move until completion.
unsafe impl<B: IoBufMut> OpCode for RecvMsg<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let msg = self.wire();
        opcode::RecvMsg::new(types::Fd(self.fd), msg).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Readable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        let msg = self.wire();
        // SAFETY: `msg` and everything it points to live in `self`; the iovec
        // describes writable memory owned by `buf`.
        let n = syscall!(unsafe { libc::recvmsg(self.fd, msg, libc::MSG_DONTWAIT) })?;
        Ok(n as usize)
    }

    fn sim(&mut self) -> Option<SimOp<'_>> {
        // `source` reads the address length from the header.
        self.msg = empty_msghdr();
        self.msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        Some(SimOp::RecvFrom {
            fd: self.fd,
            buf: spare_capacity(&mut self.buf),
            from: &mut self.addr,
        })
    }
}
