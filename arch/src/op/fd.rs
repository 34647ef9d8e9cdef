//! Operations on any fd: read, write (at an offset or the file position),
//! wait until readable, close, and a no-op.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{OpCode, Readiness, spare_ptr};
use crate::buf::{IoBuf, IoBufMut};
use crate::sys::syscall;

/// `offset` value meaning "at the file position" (pipes, sockets, ttys).
pub const CURRENT_POSITION: u64 = u64::MAX;

fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Which way [`transfer`] moves bytes.
#[derive(Clone, Copy)]
enum Dir {
    Read,
    Write,
}

/// The epoll `perform` of [`Read`] and [`Write`]: `read`/`write` at the file
/// position for [`CURRENT_POSITION`], else `pread`/`pwrite` at `offset`
/// (`EINVAL` if it does not fit an `off_t`).
///
/// # Safety
///
/// `ptr`/`len` describe memory valid for the transfer: writable for
/// [`Dir::Read`], initialised for [`Dir::Write`].
unsafe fn transfer(
    fd: RawFd,
    dir: Dir,
    ptr: *mut libc::c_void,
    len: usize,
    offset: u64,
) -> io::Result<usize> {
    let off = if offset == CURRENT_POSITION {
        None
    } else {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        Some(off)
    };
    // SAFETY: the caller's promise.
    let n = syscall!(unsafe {
        match (dir, off) {
            (Dir::Read, None) => libc::read(fd, ptr, len),
            (Dir::Read, Some(off)) => libc::pread(fd, ptr, len, off),
            (Dir::Write, None) => libc::write(fd, ptr, len),
            (Dir::Write, Some(off)) => libc::pwrite(fd, ptr, len, off),
        }
    })?;
    Ok(n as usize)
}

/// Read into the spare capacity of `buf` (`bytes_init..bytes_total`).
#[derive(Debug)]
pub struct Read<B> {
    /// The fd to read from.
    pub fd: RawFd,
    /// Destination; its spare capacity is filled.
    pub buf: B,
    /// File offset, or [`CURRENT_POSITION`].
    pub offset: u64,
    /// io_uring: the index of the registered buffer `buf` lies in, to read
    /// with `IORING_OP_READ_FIXED` (the kernel skips pinning and mapping the
    /// pages on every read); `None`: a plain `IORING_OP_READ`. Ignored by
    /// epoll (a plain `pread`). `Some(i)` is part of the submitter's unsafe
    /// contract ([`Driver::submit`](crate::Driver::submit)): slot `i` of the
    /// ring the op goes to has `buf`'s memory registered, and keeps it until
    /// the completion (see [`IoBuf::fixed_slot`]). Used only for a buffer
    /// type whose [`IoBuf::MAY_BE_FIXED`] is `true`.
    pub fixed: Option<u16>,
}

// SAFETY: the entry points at `buf`'s spare capacity, which the IoBufMut
// contract keeps valid and in place while `self` is (the op contract); a
// fixed read names a slot that holds that memory (the `fixed` field's
// contract, which the submitter upholds).
unsafe impl<B: IoBufMut> OpCode for Read<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = spare_ptr(&mut self.buf);
        let fd = types::Fd(self.fd);
        match self.fixed {
            Some(index) if B::MAY_BE_FIXED => {
                opcode::ReadFixed::new(fd, ptr, clamp_len(len), index)
                    .offset(self.offset)
                    .build()
            }
            _ => opcode::Read::new(fd, ptr, clamp_len(len))
                .offset(self.offset)
                .build(),
        }
    }

    fn readiness(&self) -> Readiness {
        Readiness::Readable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        let (ptr, len) = spare_ptr(&mut self.buf);
        // SAFETY: ptr/len describe writable memory owned by `buf`.
        unsafe { transfer(self.fd, Dir::Read, ptr.cast(), len, self.offset) }
    }

    /// A read at the file position (a pipe: regular files never reach epoll)
    /// that filled less than its room emptied the pipe, as a short stream
    /// [`Recv`](super::Recv) does; `n == 0` is end of stream, which stays
    /// readable.
    fn drained(&self, n: usize) -> bool {
        self.offset == CURRENT_POSITION
            && n > 0
            && n < self.buf.bytes_total() - self.buf.bytes_init()
    }
}

/// Write the initialised bytes of `buf` (`0..bytes_init`).
#[derive(Debug)]
pub struct Write<B> {
    /// The fd to write to.
    pub fd: RawFd,
    /// Source; its initialised bytes are written.
    pub buf: B,
    /// File offset, or [`CURRENT_POSITION`].
    pub offset: u64,
    /// io_uring: the registered buffer `buf` lies in, for
    /// `IORING_OP_WRITE_FIXED`; `None`: a plain write. As [`Read::fixed`].
    pub fixed: Option<u16>,
}

// SAFETY: the entry points at `buf`'s initialised bytes, valid and in place
// while `self` is (IoBuf contract plus the op contract); a fixed write names
// a slot that holds that memory (the `fixed` field's contract).
unsafe impl<B: IoBuf> OpCode for Write<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_init());
        let (fd, ptr) = (types::Fd(self.fd), self.buf.stable_ptr());
        match self.fixed {
            Some(index) if B::MAY_BE_FIXED => opcode::WriteFixed::new(fd, ptr, len, index)
                .offset(self.offset)
                .build(),
            _ => opcode::Write::new(fd, ptr, len).offset(self.offset).build(),
        }
    }

    fn readiness(&self) -> Readiness {
        Readiness::Writable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        let (ptr, len) = (self.buf.stable_ptr().cast_mut(), self.buf.bytes_init());
        // SAFETY: ptr/len describe initialised memory owned by `buf`, which
        // `write` only reads.
        unsafe { transfer(self.fd, Dir::Write, ptr.cast(), len, self.offset) }
    }
}

/// Wait until `fd` is readable (`POLLIN`), reading nothing; completes with
/// the `poll` event mask. For fds whose readiness is the event itself: a
/// pidfd is readable once its process has exited.
#[derive(Debug)]
pub struct PollReadable {
    /// The fd to watch.
    pub fd: RawFd,
}

// SAFETY: the entry holds no pointers.
unsafe impl OpCode for PollReadable {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd), libc::POLLIN as u32).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Readable(self.fd)
    }

    /// `poll` with a zero timeout: the mask if readable, else `WouldBlock`.
    fn perform(&mut self) -> io::Result<usize> {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one live pollfd for the duration of the call.
        match syscall!(unsafe { libc::poll(&mut pfd, 1, 0) })? {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            _ => Ok(pfd.revents as u16 as usize),
        }
    }
}

/// Close an fd. The caller must not use the number afterwards.
#[derive(Debug)]
pub struct Close {
    /// The fd to close.
    pub fd: RawFd,
}

// SAFETY: the entry holds no pointers.
unsafe impl OpCode for Close {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Close::new(types::Fd(self.fd)).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Close(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        // SAFETY: the op owns the fd number (it is not used after this).
        syscall!(unsafe { libc::close(self.fd) }).map(|_| 0)
    }
}

/// Does nothing; completes with 0. For tests (CQ overflow, SQ full).
#[derive(Debug, Default)]
pub struct Nop;

// SAFETY: the entry holds no pointers.
unsafe impl OpCode for Nop {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Nop::new().build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        Ok(0)
    }

    fn sim(&mut self) -> Option<super::SimOp<'_>> {
        Some(super::SimOp::Nop)
    }
}
