//! [`File`]: an open file with positional and cursor I/O on owned buffers.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use coil_arch::op::{self as kop, CURRENT_POSITION, FsOpcode};
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::ops::{self, FileFd, OnFile};
use super::{Metadata, OpenOptions};
use crate::io::Slice;

/// An open file.
///
/// Every read and write takes its buffer **by value** and hands it back in a
/// [`BufResult`], because io_uring fills or drains the buffer after the call
/// that submitted the operation returned (see [`coil::io`](crate::io)). A
/// read fills the buffer's spare capacity (`len..capacity`) and extends its
/// length; a write writes its initialised bytes (`..len`). Buffers must be
/// `Send`: under the epoll driver each file operation runs on the blocking
/// pool, and the buffer travels there and back.
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

    /// Reads into `buf`'s spare capacity from offset `pos` (`pread`);
    /// returns the count read, `0` at end of file (or if `buf` has no spare
    /// capacity). Does not use or move the cursor.
    ///
    /// Under epoll, page-cached data is read at once on the loop thread
    /// (`preadv2(RWF_NOWAIT)`); anything else runs on the blocking pool.
    ///
    /// ```
    /// coil::run(async {
    ///     let f = coil::fs::File::open("/proc/self/cmdline").await?;
    ///     let (n, buf) = f.read_at(Vec::with_capacity(4096), 0).await.into_parts();
    ///     assert_eq!(n?, buf.len());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_at<B: IoBufMut + Send>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        ops::read_at(&self.fd, buf, pos).await
    }

    /// Reads until `buf` is full (`len == capacity`), from offset `pos`.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the file ends first (the bytes read stay in `buf`),
    /// or the OS error.
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-rea-{}", std::process::id()));
    ///     coil::fs::write(&path, "0123456789").await?;
    ///     let f = coil::fs::File::open(&path).await?;
    ///     let (res, buf) = f.read_exact_at(Vec::with_capacity(4), 3).await.into_parts();
    ///     res?;
    ///     assert_eq!(buf, b"3456");
    ///     let (res, _) = f.read_exact_at(Vec::with_capacity(4), 8).await.into_parts();
    ///     assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_exact_at<B: IoBufMut + Send>(
        &self,
        mut buf: B,
        mut pos: u64,
    ) -> BufResult<(), B> {
        while buf.bytes_init() < buf.bytes_total() {
            let BufResult(res, b) = self.read_at(buf, pos).await;
            buf = b;
            match res {
                Ok(0) => return BufResult(Err(eof()), buf),
                Ok(n) => pos += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return BufResult(Err(e), buf),
            }
        }
        BufResult(Ok(()), buf)
    }

    /// Writes `buf`'s initialised bytes at offset `pos` (`pwrite`); returns
    /// how many were written (possibly fewer). Does not use or move the
    /// cursor. In append mode the bytes go to the end of the file instead.
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-wa-{}", std::process::id()));
    ///     let f = coil::fs::File::create(&path).await?;
    ///     let (n, _) = f.write_at(b"abc".as_slice(), 2).await.into_parts();
    ///     assert_eq!(n?, 3);
    ///     assert_eq!(coil::fs::read(&path).await?, b"\0\0abc");
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_at<B: IoBuf + Send>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        ops::write_at(&self.fd, buf, pos).await
    }

    /// Writes all of `buf`'s initialised bytes at offset `pos`.
    ///
    /// # Errors
    ///
    /// The OS error (`ENOSPC`, `EBADF` on a read-only file, ...); `WriteZero`
    /// if the file accepted no more bytes. Some bytes may have been written.
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-waa-{}", std::process::id()));
    ///     let f = coil::fs::File::create(&path).await?;
    ///     let (res, buf) = f.write_all_at(vec![7u8; 100_000], 0).await.into_parts();
    ///     res?;
    ///     assert_eq!(buf.len(), 100_000); // the buffer comes back
    ///     assert_eq!(f.metadata().await?.len(), 100_000);
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_all_at<B: IoBuf + Send>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        let (res, buf) = self.write_all_from(buf, Some(pos)).await;
        BufResult(res, buf)
    }

    /// The loop of `write_all(_at)`: at `pos`, or at the cursor if `None`
    /// (moving it as bytes are written), or at the end in append mode.
    async fn write_all_from<B: IoBuf + Send>(
        &self,
        buf: B,
        mut pos: Option<u64>,
    ) -> (io::Result<()>, B) {
        let mut slice = Slice::new(buf, 0);
        while slice.bytes_init() > 0 {
            let at = match pos {
                _ if self.append => CURRENT_POSITION,
                Some(p) => p,
                None => self.pos.get(),
            };
            let BufResult(res, s) = ops::write_at(&self.fd, slice, at).await;
            slice = s;
            match res {
                Ok(0) => {
                    let e =
                        io::Error::new(io::ErrorKind::WriteZero, "the file accepted no more bytes");
                    return (Err(e), slice.into_inner());
                }
                Ok(n) => {
                    slice.advance(n);
                    match &mut pos {
                        _ if self.append => {}
                        Some(p) => *p += n as u64,
                        None => self.pos.set(self.pos.get() + n as u64),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), slice.into_inner()),
            }
        }
        (Ok(()), slice.into_inner())
    }

    /// Reads into `buf`'s spare capacity at the cursor and moves the cursor
    /// by the count read; `0` at end of file.
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-read-{}", std::process::id()));
    ///     coil::fs::write(&path, "abcdef").await?;
    ///     let f = coil::fs::File::open(&path).await?;
    ///     let (n, a) = f.read(Vec::with_capacity(4)).await.into_parts();
    ///     assert_eq!((n?, a.as_slice()), (4, &b"abcd"[..]));
    ///     let (n, b) = f.read(Vec::with_capacity(4)).await.into_parts();
    ///     assert_eq!((n?, b.as_slice()), (2, &b"ef"[..]));
    ///     assert_eq!(f.read(Vec::with_capacity(4)).await.0?, 0);
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read<B: IoBufMut + Send>(&self, buf: B) -> BufResult<usize, B> {
        let pos = self.pos.get();
        let r = self.read_at(buf, pos).await;
        if let Ok(n) = r.0 {
            self.pos.set(pos + n as u64);
        }
        r
    }

    /// Writes some of `buf`'s bytes at the cursor (at the end in append mode)
    /// and moves the cursor by the count written (not in append mode).
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-write-{}", std::process::id()));
    ///     let f = coil::fs::File::create(&path).await?;
    ///     f.write(b"ab".as_slice()).await.0?;
    ///     f.write(b"cd".as_slice()).await.0?;
    ///     assert_eq!(f.position(), 4);
    ///     assert_eq!(coil::fs::read(&path).await?, b"abcd");
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write<B: IoBuf + Send>(&self, buf: B) -> BufResult<usize, B> {
        if self.append {
            return ops::write_at(&self.fd, buf, CURRENT_POSITION).await;
        }
        let pos = self.pos.get();
        let r = ops::write_at(&self.fd, buf, pos).await;
        if let Ok(n) = r.0 {
            self.pos.set(pos + n as u64);
        }
        r
    }

    /// Writes all of `buf`'s bytes at the cursor (at the end in append
    /// mode), moving the cursor past them.
    ///
    /// # Errors
    ///
    /// As [`write_all_at`](File::write_all_at); the cursor has moved past
    /// whatever was written.
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-wall-{}", std::process::id()));
    ///     let f = coil::fs::File::create(&path).await?;
    ///     f.write_all(String::from("one ")).await.0?;
    ///     f.write_all("two").await.0?;
    ///     assert_eq!(coil::fs::read_to_string(&path).await?, "one two");
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_all<B: IoBuf + Send>(&self, buf: B) -> BufResult<(), B> {
        let (res, buf) = self.write_all_from(buf, None).await;
        BufResult(res, buf)
    }

    /// Reads from the cursor to the end of the file, appending to `buf`
    /// (its existing bytes are kept); returns the count read and moves the
    /// cursor to the end. Sized from the file's length (one `statx`), so a
    /// large file is read with few, large reads into one allocation.
    ///
    /// ```
    /// coil::run(async {
    ///     let path = std::env::temp_dir().join(format!("coil-doc-rte-{}", std::process::id()));
    ///     coil::fs::write(&path, vec![1u8; 3 << 20]).await?;
    ///     let f = coil::fs::File::open(&path).await?;
    ///     let (n, buf) = f.read_to_end(b"head".to_vec()).await.into_parts();
    ///     assert_eq!(n?, 3 << 20);
    ///     assert_eq!(buf.len(), 4 + (3 << 20));
    ///     coil::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_to_end(&self, mut buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
        let start = buf.len();
        let hint = match self.metadata().await {
            Ok(md) => md.len().saturating_sub(self.pos.get()),
            Err(_) => 0,
        };
        // One spare byte past the expected end lets the final read see EOF
        // without growing the buffer.
        buf.reserve(usize::try_from(hint).unwrap_or(0).saturating_add(1));
        loop {
            if buf.len() == buf.capacity() {
                buf.reserve((buf.capacity() - start).clamp(8192, 16 << 20));
            }
            let BufResult(res, b) = self.read(buf).await;
            buf = b;
            match res {
                Ok(0) => return BufResult(Ok(buf.len() - start), buf),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return BufResult(Err(e), buf),
            }
        }
    }

    /// The cursor: where [`read`](File::read) and [`write`](File::write)
    /// start.
    pub fn position(&self) -> u64 {
        self.pos.get()
    }

    /// Moves the cursor (like `seek(SeekFrom::Start(pos))`; no system call).
    ///
    /// ```
    /// coil::run(async {
    ///     let f = coil::fs::File::open("/proc/self/cmdline").await?;
    ///     f.set_position(1);
    ///     let (_, buf) = f.read(Vec::with_capacity(1)).await.into_parts();
    ///     assert_eq!(f.position(), 1 + buf.len() as u64);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_position(&self, pos: u64) {
        self.pos.set(pos);
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

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file ended before the buffer was full",
    )
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
