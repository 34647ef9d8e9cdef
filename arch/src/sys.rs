//! Thin helpers over raw Linux system calls: the [`syscall!`] macro and an owned
//! [`EventFd`].
//!
//! Every raw call in the crate goes through `syscall!`, so the `-1` to
//! [`io::Error::last_os_error`] conversion lives in one place and the OS errno always
//! survives into the error the caller sees.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Evaluates a raw libc call and turns a `-1` return into
/// `Err(io::Error::last_os_error())`; any other value is `Ok(value)`.
///
/// The `unsafe` block stays at the call site, where its `// SAFETY:` comment belongs:
/// `syscall!(unsafe { libc::close(fd) })`.
macro_rules! syscall {
    ($call:expr) => {{
        let res = $call;
        if res == -1 {
            Err(::std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// `recv(2)` through `syscall(2)` rather than glibc's `recv`, which is a
/// pthread cancellation point: its enable/disable-async-cancel wrapper cost
/// ~70 instructions a call in the W5 echo server (callgrind), and coil never
/// uses `pthread_cancel`. Same return value and `errno` as `recv`.
///
/// # Safety
///
/// As `recv`: `buf` is valid for writes of `len` bytes.
pub(crate) unsafe fn recv(fd: RawFd, buf: *mut libc::c_void, len: usize, flags: i32) -> isize {
    #[cfg(not(miri))]
    // SAFETY: the caller's promise; the null address arguments mean "no
    // source address wanted", exactly what recv passes.
    unsafe {
        libc::syscall(libc::SYS_recvfrom, fd, buf, len, flags, 0usize, 0usize) as isize
    }
    #[cfg(miri)]
    // SAFETY: the caller's promise. Miri models neither `syscall` nor `recv`
    // on a socketpair (its sockets are the unnamed kind, read with `read`);
    // the epoll driver's fds are non-blocking, so MSG_DONTWAIT changes nothing.
    unsafe {
        let _ = flags;
        libc::read(fd, buf, len)
    }
}

/// `send(2)` through `syscall(2)`; see [`recv`] for why.
///
/// # Safety
///
/// As `send`: `buf` is valid for reads of `len` bytes.
pub(crate) unsafe fn send(fd: RawFd, buf: *const libc::c_void, len: usize, flags: i32) -> isize {
    #[cfg(not(miri))]
    // SAFETY: the caller's promise; no destination address, as send passes.
    unsafe {
        libc::syscall(libc::SYS_sendto, fd, buf, len, flags, 0usize, 0usize) as isize
    }
    #[cfg(miri)]
    // SAFETY: the caller's promise; `write` for the reason given in `recv`
    // (Miri raises no SIGPIPE, so MSG_NOSIGNAL changes nothing either).
    unsafe {
        let _ = flags;
        libc::write(fd, buf, len)
    }
}

/// An owned eventfd, closed on drop.
///
/// Used as the unpark channel by both backends: [`write_one`](Self::write_one) from any
/// thread, [`drain`](Self::drain) (or an io_uring read) on the driver's thread.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

/// Whether an [`EventFd`] is created with `EFD_NONBLOCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocking {
    /// Plain blocking fd. The io_uring backend wants this: io_uring honours `O_NONBLOCK`
    /// on a READ and would complete it with `EAGAIN` instead of waiting for data. The
    /// signal receiver's thread blocks in `read(2)` on one too.
    Yes,
    /// `EFD_NONBLOCK`: the epoll backend drains it with `read(2)`, which must not block.
    No,
}

impl EventFd {
    /// Creates a close-on-exec eventfd with a counter of zero.
    pub(crate) fn new(blocking: Blocking) -> io::Result<EventFd> {
        let mut flags = libc::EFD_CLOEXEC;
        if blocking == Blocking::No {
            flags |= libc::EFD_NONBLOCK;
        }
        // SAFETY: eventfd takes no pointers; any flag combination is memory-safe.
        let fd = syscall!(unsafe { libc::eventfd(0, flags) })?;
        // SAFETY: eventfd just returned this fd to us and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Adds one to the counter, making the fd readable.
    ///
    /// Never blocks in practice: a write only blocks (or fails with `EAGAIN`) when the
    /// counter would pass `u64::MAX - 1`, and the unpark protocol keeps it at most a few.
    pub(crate) fn write_one(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: the pointer is to a live local u64 and the length is its size; the fd
        // is owned by `self` and therefore open.
        let n = syscall!(unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&raw const one).cast::<libc::c_void>(),
                size_of::<u64>(),
            )
        });
        match n {
            Ok(_) => Ok(()),
            // The counter is saturated: the reader will see it readable anyway.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Resets the counter to zero with one `read(2)`. On a non-blocking eventfd an
    /// empty counter gives `EAGAIN`, which counts as drained; a blocking one waits for
    /// a write first (the signal receiver's wait).
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut value: u64 = 0;
        // SAFETY: the pointer is to a live local u64 and the length is its size; the fd
        // is owned by `self` and therefore open.
        let n = syscall!(unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&raw mut value).cast::<libc::c_void>(),
                size_of::<u64>(),
            )
        });
        match n {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
