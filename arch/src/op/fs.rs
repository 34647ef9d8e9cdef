//! File-system operations: open, fsync, statx, unlink, rename, mkdir,
//! symlink, link, ftruncate (reads and writes of files are [`Read`](super::Read) and
//! [`Write`](super::Write) with an offset).
//!
//! Every path is an owned [`CString`] inside the op, and `statx` writes into a
//! boxed buffer the op owns, so the pointers an io_uring entry carries stay
//! valid until the completion however the future above is dropped
//! (docs/reliability.md §2.1, tokio-uring#125: a path borrowed from the caller's
//! stack was read by the kernel after the caller had returned).
//!
//! # The epoll side
//!
//! Regular files have no readiness: they are always "ready", and a read or
//! write of an uncached page waits for the disk, whatever `O_NONBLOCK` says.
//! So these ops report [`Readiness::Immediate`], and their
//! [`perform`](OpCode::perform) is the plain (possibly blocking) system call.
//! coil never submits them to the epoll driver: under epoll it moves the op
//! to its blocking pool and calls `perform` there (see `coil::fs`). A caller
//! that does submit them to an epoll driver accepts that the loop thread may
//! wait for the disk. All fds and paths are opened close-on-exec.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

use io_uring::{opcode, squeue, types};

use super::{OpCode, Readiness};
use crate::sys::syscall;

/// The path of an op that names its file by fd (`AT_EMPTY_PATH`).
const EMPTY: &CStr = c"";

/// Open (or create) `path` relative to the current directory. The result is
/// the new fd; the caller owns it (and must close it, also when the future
/// that awaited the open was dropped before the completion).
#[derive(Debug)]
pub struct OpenAt {
    /// The path, owned until the completion.
    pub path: CString,
    /// `open(2)` flags; `O_CLOEXEC` is always added.
    pub flags: i32,
    /// Mode bits for a created file (before the umask).
    pub mode: u32,
}

// SAFETY: the entry's only pointer is `path`'s heap buffer, owned by `self`
// and stable across moves of the CString.
unsafe impl OpCode for OpenAt {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags | libc::O_CLOEXEC)
            .mode(self.mode)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        // SAFETY: `path` is a valid NUL-terminated string owned by `self`.
        let fd = syscall!(unsafe {
            libc::openat(
                libc::AT_FDCWD,
                self.path.as_ptr(),
                self.flags | libc::O_CLOEXEC,
                self.mode as libc::c_uint,
            )
        })?;
        Ok(fd as usize)
    }
}

/// Flush a file's data (and with `datasync == false` its metadata) to disk:
/// `fsync(2)` / `fdatasync(2)`.
#[derive(Debug)]
pub struct Fsync {
    /// The file.
    pub fd: RawFd,
    /// Only the data and the metadata needed to read it back
    /// (`IORING_FSYNC_DATASYNC`, `fdatasync`).
    pub datasync: bool,
}

// SAFETY: the entry holds no pointers.
unsafe impl OpCode for Fsync {
    fn uring_entry(&mut self) -> squeue::Entry {
        let flags = if self.datasync {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        opcode::Fsync::new(types::Fd(self.fd)).flags(flags).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        if self.datasync {
            // SAFETY: plain system call without pointers.
            syscall!(unsafe { libc::fdatasync(self.fd) })?;
        } else {
            // SAFETY: plain system call without pointers.
            syscall!(unsafe { libc::fsync(self.fd) })?;
        }
        Ok(0)
    }
}

/// Truncate or extend a file to `len` bytes: `ftruncate(2)`
/// (`IORING_OP_FTRUNCATE`, Linux 6.9; check [`uring_supports`]).
#[derive(Debug)]
pub struct Ftruncate {
    /// The file (open for writing).
    pub fd: RawFd,
    /// The new length.
    pub len: u64,
}

// SAFETY: the entry holds no pointers.
unsafe impl OpCode for Ftruncate {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Ftruncate::new(types::Fd(self.fd), self.len).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        let len = libc::off_t::try_from(self.len)
            .map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: plain system call without pointers.
        syscall!(unsafe { libc::ftruncate(self.fd, len) })?;
        Ok(0)
    }
}

/// File status: `statx(2)` into a buffer the op owns.
///
/// Built with [`Statx::fd`] (an open file, `AT_EMPTY_PATH`) or
/// [`Statx::path`]. Asks for `STATX_BASIC_STATS | STATX_BTIME`; check
/// `stx_mask` for what the file system filled in.
#[derive(Debug)]
pub struct Statx {
    dirfd: RawFd,
    path: Option<CString>,
    flags: i32,
    /// The result, filled in by the kernel on success.
    pub buf: Box<libc::statx>,
}

impl Statx {
    const MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

    fn empty_buf() -> Box<libc::statx> {
        // SAFETY: statx is plain old data; all-zero is a valid value.
        Box::new(unsafe { std::mem::zeroed() })
    }

    /// The status of the open file `fd`.
    pub fn fd(fd: RawFd) -> Statx {
        Statx {
            dirfd: fd,
            path: None,
            flags: libc::AT_EMPTY_PATH,
            buf: Statx::empty_buf(),
        }
    }

    /// The status of `path`; a symbolic link is followed when `follow`.
    pub fn path(path: CString, follow: bool) -> Statx {
        Statx {
            dirfd: libc::AT_FDCWD,
            path: Some(path),
            flags: if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW },
            buf: Statx::empty_buf(),
        }
    }

    fn path_ptr(&self) -> *const libc::c_char {
        self.path.as_deref().unwrap_or(EMPTY).as_ptr()
    }
}

// SAFETY: the entry points at `path` (owned by `self`, or the 'static empty
// string) and at the boxed `buf`, whose heap address is stable across moves.
unsafe impl OpCode for Statx {
    fn uring_entry(&mut self) -> squeue::Entry {
        let buf: *mut libc::statx = &mut *self.buf;
        opcode::Statx::new(types::Fd(self.dirfd), self.path_ptr(), buf.cast())
            .flags(self.flags)
            .mask(Statx::MASK)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        let buf: *mut libc::statx = &mut *self.buf;
        // SAFETY: path is NUL-terminated, buf is a writable statx owned by self.
        syscall!(unsafe {
            libc::statx(self.dirfd, self.path_ptr(), self.flags, Statx::MASK, buf)
        })?;
        Ok(0)
    }
}

/// Remove a file (`flags == 0`) or an empty directory
/// (`flags == AT_REMOVEDIR`): `unlinkat(2)`.
#[derive(Debug)]
pub struct UnlinkAt {
    /// The path, owned until the completion.
    pub path: CString,
    /// `0` or `libc::AT_REMOVEDIR`.
    pub flags: i32,
}

// SAFETY: the entry's only pointer is `path`, owned by `self`.
unsafe impl OpCode for UnlinkAt {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        // SAFETY: `path` is a valid NUL-terminated string owned by `self`.
        syscall!(unsafe { libc::unlinkat(libc::AT_FDCWD, self.path.as_ptr(), self.flags) })?;
        Ok(0)
    }
}

/// Rename `from` to `to` (replacing `to` if it exists): `renameat2(2)`.
#[derive(Debug)]
pub struct RenameAt {
    /// The old path, owned until the completion.
    pub from: CString,
    /// The new path, owned until the completion.
    pub to: CString,
    /// `renameat2` flags (`RENAME_NOREPLACE`, ...); 0 for `rename(2)`.
    pub flags: u32,
}

// SAFETY: the entry points at `from` and `to`, both owned by `self`.
unsafe impl OpCode for RenameAt {
    fn uring_entry(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        opcode::RenameAt::new(cwd, self.from.as_ptr(), cwd, self.to.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        // SAFETY: both paths are valid NUL-terminated strings owned by `self`.
        syscall!(unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                self.from.as_ptr(),
                libc::AT_FDCWD,
                self.to.as_ptr(),
                self.flags,
            )
        })?;
        Ok(0)
    }
}

/// Create a directory: `mkdirat(2)`.
#[derive(Debug)]
pub struct MkDirAt {
    /// The path, owned until the completion.
    pub path: CString,
    /// Mode bits (before the umask).
    pub mode: u32,
}

// SAFETY: the entry's only pointer is `path`, owned by `self`.
unsafe impl OpCode for MkDirAt {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .mode(self.mode)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        // SAFETY: `path` is a valid NUL-terminated string owned by `self`.
        syscall!(unsafe { libc::mkdirat(libc::AT_FDCWD, self.path.as_ptr(), self.mode) })?;
        Ok(0)
    }
}

/// Create a symbolic link at `link` whose target is `target`:
/// `symlinkat(2)`.
#[derive(Debug)]
pub struct SymlinkAt {
    /// What the link points to (not checked: it may not exist).
    pub target: CString,
    /// The new link's path.
    pub link: CString,
}

// SAFETY: the entry points at `target` and `link`, both owned by `self`.
unsafe impl OpCode for SymlinkAt {
    fn uring_entry(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        opcode::SymlinkAt::new(cwd, self.target.as_ptr(), self.link.as_ptr()).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        // SAFETY: both paths are valid NUL-terminated strings owned by `self`.
        syscall!(unsafe {
            libc::symlinkat(self.target.as_ptr(), libc::AT_FDCWD, self.link.as_ptr())
        })?;
        Ok(0)
    }
}

/// Create a hard link `link` to the existing file `original`: `linkat(2)`
/// (a symbolic link `original` is linked itself, not followed).
#[derive(Debug)]
pub struct LinkAt {
    /// The existing file.
    pub original: CString,
    /// The new name.
    pub link: CString,
}

// SAFETY: the entry points at `original` and `link`, both owned by `self`.
unsafe impl OpCode for LinkAt {
    fn uring_entry(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        opcode::LinkAt::new(cwd, self.original.as_ptr(), cwd, self.link.as_ptr()).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        // SAFETY: both paths are valid NUL-terminated strings owned by `self`.
        syscall!(unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                self.original.as_ptr(),
                libc::AT_FDCWD,
                self.link.as_ptr(),
                0,
            )
        })?;
        Ok(0)
    }
}

/// Opcodes of this module that a kernel may lack even when the driver's
/// probe passed (the probe requires `OPENAT`, `STATX`, `FSYNC` and `CLOSE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsOpcode {
    /// `IORING_OP_UNLINKAT` (Linux 5.11).
    UnlinkAt,
    /// `IORING_OP_RENAMEAT` (Linux 5.11).
    RenameAt,
    /// `IORING_OP_MKDIRAT` (Linux 5.15).
    MkDirAt,
    /// `IORING_OP_FTRUNCATE` (Linux 6.9).
    Ftruncate,
    /// `IORING_OP_SYMLINKAT` (Linux 5.15).
    SymlinkAt,
    /// `IORING_OP_LINKAT` (Linux 5.15).
    LinkAt,
}

/// Whether this kernel's io_uring supports `op`. Probed once per process
/// with `IORING_REGISTER_PROBE` on a small ring of its own (twice at most
/// if two threads ask first at once: both find the same); `false` if
/// io_uring cannot be set up at all.
///
/// The answer is kept in an atomic, not a `OnceLock`: a `fork()` while
/// another thread was probing would leave a `OnceLock` initializing for
/// good in the child, whose fs ops would wait for it forever
/// (docs/reliability.md, check 33).
pub fn uring_supports(op: FsOpcode) -> bool {
    /// Bit `op` set: supported; [`KNOWN`] set once probed; 0 before.
    static PROBED: AtomicU8 = AtomicU8::new(0);
    const KNOWN: u8 = 1 << 7;
    let mut bits = PROBED.load(Ordering::Relaxed);
    if bits & KNOWN == 0 {
        bits = probe() | KNOWN;
        PROBED.store(bits, Ordering::Relaxed);
    }
    bits & (1 << op as u8) != 0
}

/// [`uring_supports`]' probe: bit `op as u8` set for each [`FsOpcode`]
/// the kernel supports; 0 if io_uring cannot be set up.
fn probe() -> u8 {
    let Ok(ring) = io_uring::IoUring::new(2) else {
        return 0;
    };
    let mut probe = io_uring::Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return 0;
    }
    [
        (FsOpcode::UnlinkAt, opcode::UnlinkAt::CODE),
        (FsOpcode::RenameAt, opcode::RenameAt::CODE),
        (FsOpcode::MkDirAt, opcode::MkDirAt::CODE),
        (FsOpcode::Ftruncate, opcode::Ftruncate::CODE),
        (FsOpcode::SymlinkAt, opcode::SymlinkAt::CODE),
        (FsOpcode::LinkAt, opcode::LinkAt::CODE),
    ]
    .into_iter()
    .filter(|&(_, code)| probe.is_supported(code))
    .fold(0, |bits, (op, _)| bits | 1 << op as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perform_side_round_trip() {
        let dir = std::env::temp_dir().join(format!("coil-arch-fs-{}", std::process::id()));
        let d = CString::new(dir.to_str().unwrap()).unwrap();
        MkDirAt {
            path: d.clone(),
            mode: 0o755,
        }
        .perform()
        .unwrap();
        let f = CString::new(dir.join("a").to_str().unwrap()).unwrap();
        let fd = OpenAt {
            path: f.clone(),
            flags: libc::O_CREAT | libc::O_RDWR,
            mode: 0o644,
        }
        .perform()
        .unwrap() as RawFd;
        Ftruncate { fd, len: 10 }.perform().unwrap();
        Fsync { fd, datasync: true }.perform().unwrap();
        let mut st = Statx::fd(fd);
        st.perform().unwrap();
        assert_eq!(st.buf.stx_size, 10);
        // SAFETY: `fd` was opened above and is not used again.
        unsafe { libc::close(fd) };
        let g = CString::new(dir.join("b").to_str().unwrap()).unwrap();
        RenameAt {
            from: f,
            to: g.clone(),
            flags: 0,
        }
        .perform()
        .unwrap();
        let mut st = Statx::path(g.clone(), true);
        st.perform().unwrap();
        assert_eq!(st.buf.stx_size, 10);
        let h = CString::new(dir.join("h").to_str().unwrap()).unwrap();
        LinkAt {
            original: g.clone(),
            link: h.clone(),
        }
        .perform()
        .unwrap();
        let s = CString::new(dir.join("s").to_str().unwrap()).unwrap();
        SymlinkAt {
            target: CString::new("h").unwrap(),
            link: s.clone(),
        }
        .perform()
        .unwrap();
        let mut st = Statx::path(s.clone(), true);
        st.perform().unwrap();
        assert_eq!((st.buf.stx_size, st.buf.stx_nlink), (10, 2));
        for p in [s, h] {
            UnlinkAt { path: p, flags: 0 }.perform().unwrap();
        }
        UnlinkAt { path: g, flags: 0 }.perform().unwrap();
        let err = UnlinkAt {
            path: d.clone(),
            flags: 0,
        }
        .perform()
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
        UnlinkAt {
            path: d,
            flags: libc::AT_REMOVEDIR,
        }
        .perform()
        .unwrap();
    }
}
