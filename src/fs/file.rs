//! [`File`]: an open file with positional and cursor I/O on owned buffers.
//! Opening, syncing, metadata and closing are here; the reads and writes are
//! in `file/rw.rs`.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use coil_arch::op::{self as kop, FsOpcode};

use super::ops::{self, FileFd, OnFile};
use super::{Metadata, OpenOptions};

mod rw;

/// An open file.
///
/// Every read and write takes its buffer **by value** and hands it back in a
/// [`BufResult`](crate::io::BufResult), because io_uring fills or drains the
/// buffer after the call that submitted the operation returned (see
/// [`coil::io`](crate::io)). A read fills the buffer's spare capacity
/// (`len..capacity`) and extends its length; a write writes its initialised
/// bytes (`..len`). Buffers must be `Send`: under the epoll driver each file
/// operation runs on the blocking pool, and the buffer travels there and
/// back.
///
/// Two ways to address the file:
/// - **positional**: [`read_at`](File::read_at), [`write_at`](File::write_at),
///   [`read_exact_at`](File::read_exact_at), [`write_all_at`](File::write_all_at):
///   `pread`/`pwrite` semantics; any number may be in flight at once from
///   several tasks sharing the file (`Rc<File>`).
/// - **cursor**: [`read`](File::read), [`write`](File::write),
///   [`write_all`](File::write_all), [`read_to_end`](File::read_to_end) at
///   the file's own position, kept in the `File` (not the kernel's file
///   offset) and advanced by each result when the operation completes. A
///   dropped cursor operation does not move the cursor. Two cursor
///   operations in flight at once on one `File` would both start at the same
///   position: await one before starting the next (as with any stream).
///
/// With [`OpenOptions::append`], writes always go to the end of the file and
/// do not move the cursor.
///
/// The fd is closed when the `File` is dropped and no operation on it is in
/// flight any more; [`close`](File::close) closes it explicitly and reports
/// the error `close(2)` may give.
///
/// ```
/// use coil::fs::File;
/// use coil::io::BufResult;
///
/// coil::run(async {
///     let path = std::env::temp_dir().join(format!("coil-doc-file-{}", std::process::id()));
///     let f = File::create(&path).await?;
///     let BufResult(res, _) = f.write_all_at(b"hello, world".as_slice(), 0).await;
///     res?;
///     f.sync_all().await?;
///
///     let f = File::open(&path).await?;
///     let BufResult(n, buf) = f.read_at(Vec::with_capacity(5), 7).await;
///     assert_eq!(n?, 5);
///     assert_eq!(buf, b"world");
///     f.close().await?;
///     coil::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct File {
    fd: Arc<FileFd>,
    pos: Cell<u64>,
    append: bool,
}

impl File {
    pub(crate) fn from_fd(fd: Arc<FileFd>, append: bool) -> File {
        File {
            fd,
            pos: Cell::new(0),
            append,
        }
    }

    /// Opens `path` read-only.
    ///
    /// # Errors
    ///
    /// The OS error, e.g. `NotFound` (`ENOENT`).
    ///
    /// ```
    /// coil::run(async {
    ///     let err = coil::fs::File::open("/nonexistent/coil").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    ///     assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    /// });
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` write-only, creating it or truncating it.
    ///
    /// # Errors
    ///
    /// The OS error, e.g. `NotFound` if the directory does not exist.
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-create-{}", std::process::id()));
    ///     let f = coil::fs::File::create(&path).await?;
    ///     assert_eq!(f.metadata().await?.len(), 0);
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Same as [`OpenOptions::new`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps a std file (its cursor starts at 0; append mode is detected).
    ///
    /// ```
    /// coil::run(async {
    ///     let std_file = std::fs::File::open("/proc/self/stat")?;
    ///     let f = coil::fs::File::from_std(std_file);
    ///     let (res, buf) = f.read(Vec::with_capacity(64)).await.into_parts();
    ///     assert!(res? > 0 && !buf.is_empty());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(file: std::fs::File) -> File {
        let fd = OwnedFd::from(file);
        // SAFETY: F_GETFL on an fd we own; no pointers.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        let append = flags != -1 && flags & libc::O_APPEND != 0;
        File::from_fd(Arc::new(FileFd::new(fd)), append)
    }

    /// Flushes the file's data and metadata to the device (`fsync`;
    /// `IORING_OP_FSYNC` under io_uring).
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-sync-{}", std::process::id()));
    ///     let f = coil::fs::File::create(&path).await?;
    ///     f.write_all("durable").await.0?;
    ///     f.sync_all().await?;
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn sync_all(&self) -> io::Result<()> {
        self.fsync(false).await
    }

    /// Like [`sync_all`](File::sync_all) but skips metadata not needed to
    /// read the data back (`fdatasync`; `IORING_FSYNC_DATASYNC`).
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-sd-{}", std::process::id()));
    ///     let f = coil::fs::File::create(&path).await?;
    ///     f.write_all("data").await.0?;
    ///     f.sync_data().await?;
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn sync_data(&self) -> io::Result<()> {
        self.fsync(true).await
    }

    async fn fsync(&self, datasync: bool) -> io::Result<()> {
        let op = OnFile {
            op: kop::Fsync {
                fd: self.fd.raw(),
                datasync,
            },
            fd: self.fd.clone(),
        };
        ops::run(op, ops::on_uring()).await
    }

    /// Truncates or extends (with zeros) the file to `len` bytes; the cursor
    /// is not moved. `IORING_OP_FTRUNCATE` where the kernel has it (6.9+),
    /// else the blocking pool.
    ///
    /// # Errors
    ///
    /// The OS error: `EINVAL`/`EBADF` if the file is not open for writing.
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-setlen-{}", std::process::id()));
    ///     let f = coil::fs::File::create(&path).await?;
    ///     f.set_len(4096).await?;
    ///     assert_eq!(f.metadata().await?.len(), 4096);
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        let op = OnFile {
            op: kop::Ftruncate {
                fd: self.fd.raw(),
                len,
            },
            fd: self.fd.clone(),
        };
        ops::run(op, ops::ring_has(Some(FsOpcode::Ftruncate))).await
    }

    /// The file's [`Metadata`] (`statx` with `AT_EMPTY_PATH`;
    /// `IORING_OP_STATX` under io_uring).
    ///
    /// ```
    /// coil::run(async {
    ///     let f = coil::fs::File::open("/proc/self/status").await?;
    ///     assert!(f.metadata().await?.is_file());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let op = OnFile {
            op: kop::Statx::fd(self.fd.raw()),
            fd: self.fd.clone(),
        };
        ops::run(op, ops::on_uring()).await
    }

    /// Closes the file now and reports `close(2)`'s error (`EIO`, `EDQUOT`
    /// from delayed allocation or network file systems), which dropping a
    /// `File` cannot. `IORING_OP_CLOSE` under io_uring.
    ///
    /// If operations on this file are still in flight (futures dropped
    /// before their completion), the fd must stay open for them: it is
    /// closed when the last one completes, and this returns `Ok(())`.
    ///
    /// ```
    /// coil::run(async {
    ///     let f = coil::fs::File::open("/proc/self/status").await?;
    ///     f.close().await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn close(self) -> io::Result<()> {
        match Arc::try_unwrap(self.fd) {
            Ok(fd) => {
                let op = kop::Close { fd: fd.into_raw() };
                ops::run(op, ops::on_uring()).await
            }
            Err(_shared) => Ok(()),
        }
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open while `self` (which owns an Arc of it) is
        // borrowed.
        unsafe { BorrowedFd::borrow_raw(self.fd.raw()) }
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("fd", &self.fd.raw())
            .field("position", &self.pos.get())
            .field("append", &self.append)
            .finish()
    }
}
