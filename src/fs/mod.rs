//! Files and the file system, asynchronously: [`File`], [`OpenOptions`],
//! [`Metadata`], [`read_dir`] (a stream of [`DirEntry`]) and free functions
//! ([`read`], [`write()`], [`rename`], [`symlink`], [`copy`], ...): std's
//! `fs` as futures (asyncio has none; Python's `aiofiles` is the nearest).
//!
//! ```
//! coil::run(async {
//!     let dir = std::env::temp_dir().join(format!("coil-doc-fs-{}", std::process::id()));
//!     coil::fs::create_dir_all(dir.join("a/b")).await?;
//!     let path = dir.join("a/b/hello.txt");
//!     coil::fs::write(&path, "hello").await?;
//!     assert_eq!(coil::fs::read_to_string(&path).await?, "hello");
//!     coil::fs::rename(&path, dir.join("a/hello.txt")).await?;
//!     coil::fs::remove_file(dir.join("a/hello.txt")).await?;
//!     coil::fs::remove_dir(dir.join("a/b")).await?;
//!     coil::fs::remove_dir(dir.join("a")).await?;
//!     coil::fs::remove_dir(&dir).await
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How file operations run
//!
//! - **io_uring**: every operation goes through the ring: `IORING_OP_OPENAT`,
//!   `READ`/`WRITE` (with an explicit offset), `FSYNC` (with
//!   `IORING_FSYNC_DATASYNC` for [`File::sync_data`]), `STATX`, `CLOSE`,
//!   `UNLINKAT`, `RENAMEAT`, `MKDIRAT`, `SYMLINKAT`, `LINKAT` and
//!   `FTRUNCATE`. An opcode the kernel lacks (`FTRUNCATE` before 6.9, the
//!   path ops before 5.11/5.15; probed once per process) runs on the
//!   blocking pool instead. What io_uring has no op for runs on the pool
//!   under every driver: [`read_dir`] (64 entries a trip), [`remove_dir_all`],
//!   [`copy`], [`canonicalize`].
//! - **epoll**: regular files have no readiness (they always poll "ready",
//!   and a read of an uncached page waits for the disk), so every operation
//!   runs on the blocking pool ([`crate::blocking`]), with the same API and
//!   results. One exception: a read first tries `preadv2(RWF_NOWAIT)` on the
//!   loop thread, which copies page-cached data at once and answers `EAGAIN`
//!   instead of waiting for the disk; only then does it go to the pool.
//!   Buffers move to the pool thread and back, hence the `Send` bounds.
//! - Outside a running coil loop, operations run on the blocking pool (the
//!   future can be awaited by any executor on that thread).
//! - The futures are `!Send`, like every coil I/O future: once submitted, an
//!   operation belongs to the loop that submitted it and holds a handle to
//!   its op table (see `docs/cancellation.md`). A `File` itself is `Send`
//!   and may be used from any loop.
//!
//! # Ownership and cancellation
//!
//! Paths are copied into an owned `CString` inside the operation; `statx`
//! writes into a buffer the operation owns; read and write buffers are taken
//! by value and handed back in a [`BufResult`](crate::io::BufResult). Each
//! stays owned by the operation until its completion, also if the future is
//! dropped first: the kernel (or the pool thread) never touches freed memory.
//! A file's fd stays open until every operation on it has completed.
//!
//! Dropping a future cancels only the wait: the operation still completes.
//! A dropped [`File::open`]/[`OpenOptions::open`] that still opens the file
//! closes it at once (no fd leak); a dropped cursor [`File::read`] or
//! [`File::write`] does not move the cursor; a dropped write may still have
//! written.
//!
//! Errors keep the OS errno: `err.raw_os_error()` is `ENOENT`, `EACCES`,
//! `EBADF`, ...; `err.kind()` is the matching [`std::io::ErrorKind`].

mod file;
mod metadata;
mod open_options;
mod ops;
mod read_dir;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use coil_arch::IoBuf;
use coil_arch::op::{self as kop, FsOpcode};

pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;
pub use read_dir::{DirEntry, ReadDir, read_dir};

/// The owned, NUL-terminated copy of a path that an operation carries.
fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path contains a NUL byte: {path:?}"),
        )
    })
}

/// Reads the whole file at `path` into a new `Vec`.
///
/// # Errors
///
/// The OS error of the open or a read (`NotFound`, `PermissionDenied`,
/// `EISDIR` for a directory, ...).
///
/// ```
/// coil::run(async {
///     let bytes = coil::fs::read("/proc/self/stat").await?;
///     assert!(!bytes.is_empty());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let f = File::open(path).await?;
    let (res, buf) = f.read_to_end(Vec::new()).await.into_parts();
    res?;
    Ok(buf)
}

/// Reads the whole file at `path` into a `String`.
///
/// # Errors
///
/// As [`read`]; `InvalidData` if the contents are not UTF-8.
///
/// ```
/// coil::run(async {
///     let status = coil::fs::read_to_string("/proc/self/status").await?;
///     assert!(status.contains("Pid:"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes `contents` to the file at `path`, creating it or replacing its
/// contents. `contents` is any owned buffer: `&'static str`, `String`,
/// `Vec<u8>`, `&'static [u8]`, `Box<[u8]>`.
///
/// # Errors
///
/// The OS error of the open or a write.
///
/// ```
/// coil::run(async {
///     let path = std::env::temp_dir().join(format!("coil-doc-write-fn-{}", std::process::id()));
///     coil::fs::write(&path, format!("{} bytes", 7)).await?;
///     assert_eq!(coil::fs::read(&path).await?, b"7 bytes");
///     coil::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn write<B: IoBuf + Send>(path: impl AsRef<Path>, contents: B) -> io::Result<()> {
    let f = File::create(path).await?;
    f.write_all_at(contents, 0).await.0
}

/// Removes a file (or symbolic link): `unlink`.
///
/// # Errors
///
/// The OS error: `NotFound`, `IsADirectory` (`EISDIR`) for a directory, ...
///
/// ```
/// coil::run(async {
///     let err = coil::fs::remove_file("/nonexistent/coil").await.unwrap_err();
///     assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
/// });
/// ```
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    unlink_at(path.as_ref(), 0).await
}

/// Removes an empty directory: `rmdir`.
///
/// # Errors
///
/// The OS error: `NotFound`, `DirectoryNotEmpty` (`ENOTEMPTY`),
/// `NotADirectory` (`ENOTDIR`), ...
///
/// ```
/// coil::run(async {
///     let dir = std::env::temp_dir().join(format!("coil-doc-rmdir-{}", std::process::id()));
///     coil::fs::create_dir(&dir).await?;
///     coil::fs::remove_dir(&dir).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    unlink_at(path.as_ref(), libc::AT_REMOVEDIR).await
}

/// `unlinkat(AT_FDCWD, path, flags)`: [`remove_file`] and [`remove_dir`].
async fn unlink_at(path: &Path, flags: i32) -> io::Result<()> {
    let op = kop::UnlinkAt {
        path: cstr(path)?,
        flags,
    };
    ops::run(op, ops::ring_has(Some(FsOpcode::UnlinkAt))).await
}

/// Renames `from` to `to`, replacing `to` if it exists (`rename(2)`:
/// atomic, on one file system).
///
/// # Errors
///
/// The OS error: `NotFound`, `CrossesDevices` (`EXDEV`), ...
///
/// ```
/// coil::run(async {
///     let tmp = std::env::temp_dir();
///     let (a, b) = (tmp.join(format!("coil-doc-mv-a-{}", std::process::id())),
///                   tmp.join(format!("coil-doc-mv-b-{}", std::process::id())));
///     coil::fs::write(&a, "x").await?;
///     coil::fs::rename(&a, &b).await?;
///     assert!(coil::fs::metadata(&a).await.is_err());
///     coil::fs::remove_file(&b).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let op = kop::RenameAt {
        from: cstr(from.as_ref())?,
        to: cstr(to.as_ref())?,
        flags: 0,
    };
    ops::run(op, ops::ring_has(Some(FsOpcode::RenameAt))).await
}

/// Creates a directory (mode `0o777` before the umask).
///
/// # Errors
///
/// The OS error: `AlreadyExists`, `NotFound` (the parent is missing), ...
///
/// ```
/// coil::run(async {
///     let dir = std::env::temp_dir().join(format!("coil-doc-mkdir-{}", std::process::id()));
///     coil::fs::create_dir(&dir).await?;
///     let again = coil::fs::create_dir(&dir).await.unwrap_err();
///     assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
///     coil::fs::remove_dir(&dir).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let op = kop::MkDirAt {
        path: cstr(path.as_ref())?,
        mode: 0o777,
    };
    ops::run(op, ops::ring_has(Some(FsOpcode::MkDirAt))).await
}

/// Creates a directory and any missing parents. Succeeds if it already
/// exists as a directory (also when another task or process creates it
/// concurrently).
///
/// # Errors
///
/// The OS error; `AlreadyExists` if the path (or a parent) exists and is
/// not a directory.
///
/// ```
/// coil::run(async {
///     let root = std::env::temp_dir().join(format!("coil-doc-mkdirs-{}", std::process::id()));
///     coil::fs::create_dir_all(root.join("x/y/z")).await?;
///     coil::fs::create_dir_all(root.join("x/y")).await?; // already there: fine
///     assert!(coil::fs::metadata(root.join("x/y/z")).await?.is_dir());
///     std::fs::remove_dir_all(&root)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // Walk up until a directory can be created or exists, then back down.
    let mut missing = Vec::new();
    let mut cur = Some(path);
    while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty()) {
        match create_dir(p).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(p);
                cur = p.parent();
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if metadata(p).await.is_ok_and(|m| m.is_dir()) {
                    break;
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    for p in missing.into_iter().rev() {
        match create_dir(p).await {
            Ok(()) => {}
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    && metadata(p).await.is_ok_and(|m| m.is_dir()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The [`Metadata`] of `path`, following symbolic links (`statx`).
///
/// # Errors
///
/// The OS error: `NotFound`, `PermissionDenied` (a directory on the way is
/// not searchable), ...
///
/// ```
/// coil::run(async {
///     assert!(coil::fs::metadata("/").await?.is_dir());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let op = kop::Statx::path(cstr(path.as_ref())?, true);
    ops::run(op, ops::on_uring()).await
}

/// The [`Metadata`] of `path` itself: a symbolic link is not followed.
///
/// # Errors
///
/// As [`metadata`].
///
/// ```
/// coil::run(async {
///     let md = coil::fs::symlink_metadata("/proc/self").await?;
///     assert!(md.is_symlink());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let op = kop::Statx::path(cstr(path.as_ref())?, false);
    ops::run(op, ops::on_uring()).await
}

/// Creates a hard link `link` to the file `original` (`linkat(2)`; a
/// symbolic link `original` is linked itself, not followed). Through the
/// ring where the kernel has `IORING_OP_LINKAT`, else the blocking pool.
///
/// # Errors
///
/// The OS error: `NotFound` for a missing `original`, `AlreadyExists` if
/// `link` exists, `EXDEV` across file systems, `EPERM` for a directory.
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let op = kop::LinkAt {
        original: cstr(original.as_ref())?,
        link: cstr(link.as_ref())?,
    };
    ops::run(op, ops::ring_has(Some(FsOpcode::LinkAt))).await
}

/// Creates a symbolic link at `link` pointing to `target` (`symlinkat(2)`;
/// `target` need not exist, and a relative one is relative to `link`'s
/// directory). Through the ring where the kernel has `IORING_OP_SYMLINKAT`,
/// else the blocking pool. std's `std::os::unix::fs::symlink`.
///
/// # Errors
///
/// The OS error: `AlreadyExists` if `link` exists, `NotFound` if its
/// directory does not.
///
/// ```
/// coil::run(async {
///     let dir = std::env::temp_dir().join(format!("coil-doc-symlink-{}", std::process::id()));
///     coil::fs::create_dir_all(&dir).await?;
///     coil::fs::write(dir.join("target"), "t").await?;
///     coil::fs::symlink("target", dir.join("link")).await?;
///     assert!(coil::fs::symlink_metadata(dir.join("link")).await?.is_symlink());
///     assert_eq!(coil::fs::read_to_string(dir.join("link")).await?, "t");
///     coil::fs::remove_dir_all(&dir).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let op = kop::SymlinkAt {
        target: cstr(target.as_ref())?,
        link: cstr(link.as_ref())?,
    };
    ops::run(op, ops::ring_has(Some(FsOpcode::SymlinkAt))).await
}

/// Removes a directory and everything in it (std's `remove_dir_all`, which
/// does not follow symbolic links), on the blocking pool: a walk of many
/// calls that io_uring has no single op for.
///
/// # Errors
///
/// The OS error of the first call that failed: `NotFound`,
/// `PermissionDenied`, `NotADirectory` for a file, ...
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    ops::pool(move || std::fs::remove_dir_all(path)).await
}

/// Copies the contents and permissions of the file `from` to `to`
/// (created or truncated); the byte count. std's `copy` (which uses
/// `copy_file_range` in the kernel where it can) on the blocking pool.
///
/// # Errors
///
/// The OS error: `NotFound` for a missing `from`, `InvalidInput` if `from`
/// is not a regular file, ...
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    ops::pool(move || std::fs::copy(from, to)).await
}

/// The absolute path of `path` with every symbolic link, `.` and `..`
/// resolved (`realpath(3)`, std's `canonicalize`), on the blocking pool.
///
/// # Errors
///
/// The OS error: `NotFound` if any part is missing, `ELOOP` for a link
/// loop, ...
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<std::path::PathBuf> {
    let path = path.as_ref().to_owned();
    ops::pool(move || std::fs::canonicalize(path)).await
}

/// Whether `path` exists, following symbolic links (a dangling link:
/// `false`), as std's `try_exists`: `statx`, through the ring under
/// io_uring.
///
/// # Errors
///
/// An error other than `NotFound` (`PermissionDenied`, `ELOOP`, ...): the
/// answer is unknown then.
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
