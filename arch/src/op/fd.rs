//! Operations on any fd: read, write (at an offset or the file position),
//! close, and a no-op.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{OpCode, Readiness};
use crate::buf::{IoBuf, IoBufMut};
use crate::sys::syscall;

/// `offset` value meaning "at the file position" (pipes, sockets, ttys).
pub const CURRENT_POSITION: u64 = u64::MAX;

fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
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
}

// SAFETY: the entry points at `buf`'s spare capacity, which the IoBufMut
// contract keeps valid and in place while `self` is (the op contract).
unsafe impl<B: IoBufMut> OpCode for Read<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let init = self.buf.bytes_init();
        let len = clamp_len(self.buf.bytes_total() - init);
        // SAFETY: `init <= bytes_total`, so the pointer stays in the allocation.
        let ptr = unsafe { self.buf.stable_mut_ptr().add(init) };
        opcode::Read::new(types::Fd(self.fd), ptr, len)
            .offset(self.offset)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Readable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        let init = self.buf.bytes_init();
        let len = self.buf.bytes_total() - init;
        // SAFETY: as in uring_entry; the syscall writes at most `len` bytes there.
        let ptr = unsafe { self.buf.stable_mut_ptr().add(init) }.cast();
        let n = if self.offset == CURRENT_POSITION {
            // SAFETY: ptr/len describe writable memory owned by `buf`.
            syscall!(unsafe { libc::read(self.fd, ptr, len) })?
        } else {
            let off = libc::off_t::try_from(self.offset)
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: as above.
            syscall!(unsafe { libc::pread(self.fd, ptr, len, off) })?
        };
        Ok(n as usize)
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
}

// SAFETY: the entry points at `buf`'s initialised bytes, valid and in place
// while `self` is (IoBuf contract plus the op contract).
unsafe impl<B: IoBuf> OpCode for Write<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_init());
        opcode::Write::new(types::Fd(self.fd), self.buf.stable_ptr(), len)
            .offset(self.offset)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Writable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        let (ptr, len) = (self.buf.stable_ptr().cast(), self.buf.bytes_init());
        let n = if self.offset == CURRENT_POSITION {
            // SAFETY: ptr/len describe initialised memory owned by `buf`.
            syscall!(unsafe { libc::write(self.fd, ptr, len) })?
        } else {
            let off = libc::off_t::try_from(self.offset)
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: as above.
            syscall!(unsafe { libc::pwrite(self.fd, ptr, len, off) })?
        };
        Ok(n as usize)
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
