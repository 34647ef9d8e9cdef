//! The reads and writes of a [`File`]: positional (`pread`/`pwrite`, any
//! number in flight) and at the file's own cursor, kept in the `File`.

use std::future::Future;
use std::io;

use coil_arch::op::CURRENT_POSITION;
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::File;
use crate::fs::ops;
use crate::io::Slice;

impl File {
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
    // Not an `async fn`: the future is `ops::read_at`'s own, without a layer
    // that only forwards to it (the same for `write_at`).
    pub fn read_at<B: IoBufMut + Send>(
        &self,
        buf: B,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, B>> + '_ {
        ops::read_at(&self.fd, buf, pos)
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
    // Not an `async fn`: the loop is `ops::ReadExactAt`, a hand-written
    // future around the reads' own (W6: ~90 instructions a read less).
    pub fn read_exact_at<B: IoBufMut + Send>(
        &self,
        buf: B,
        pos: u64,
    ) -> impl Future<Output = BufResult<(), B>> + '_ {
        ops::read_exact_at(&self.fd, buf, pos)
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
    pub fn write_at<B: IoBuf + Send>(
        &self,
        buf: B,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, B>> + '_ {
        ops::write_at(&self.fd, buf, pos)
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
        let hint = match self.metadata().await {
            Ok(md) => md.len().saturating_sub(self.pos.get()),
            Err(_) => 0,
        };
        // One spare byte past the expected end lets the final read see EOF
        // without growing the buffer.
        buf.reserve(usize::try_from(hint).unwrap_or(0).saturating_add(1));
        crate::io::read_to_end_with(buf, |buf| self.read(buf)).await
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
}
