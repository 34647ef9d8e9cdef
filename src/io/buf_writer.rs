//! [`BufWriter`]: asyncio's `StreamWriter` (`write` + `drain`) over an
//! owned-buffer stream.

use std::fmt;
use std::io;

use coil_arch::BufResult;

use super::{AsyncWriteOwned, Slice};

const DEFAULT_CAPACITY: usize = 8 * 1024;

/// Buffered writing: [`write_all`](BufWriter::write_all) copies your bytes
/// into the writer's own buffer and sends it when it is full;
/// [`flush`](BufWriter::flush) sends what is left. Nothing here takes an
/// owned buffer.
///
/// Dropping a `BufWriter` does **not** flush (a destructor cannot await):
/// call [`flush`](BufWriter::flush) or [`shutdown`](BufWriter::shutdown)
/// first. A `flush` that is cancelled while the kernel holds the buffer
/// drops the bytes it had not yet confirmed sent (some of them may have
/// been sent).
///
/// ```
/// use coil::io::{BufReader, BufWriter};
/// use coil::net::UnixStream;
///
/// coil::run(async {
///     let (a, b) = UnixStream::pair()?;
///     let mut w = BufWriter::new(a);
///     for i in 0..3 {
///         w.write_all(format!("line {i}\n").as_bytes()).await?;
///     }
///     w.shutdown().await?; // flush, then EOF for the peer
///     let mut r = BufReader::new(b);
///     let mut all = Vec::new();
///     r.read_to_end(&mut all).await?;
///     assert_eq!(all, b"line 0\nline 1\nline 2\n");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct BufWriter<W> {
    inner: W,
    buf: Vec<u8>,
    capacity: usize,
}

impl<W: AsyncWriteOwned> BufWriter<W> {
    /// A writer with an 8 KiB buffer.
    pub fn new(inner: W) -> BufWriter<W> {
        BufWriter::with_capacity(DEFAULT_CAPACITY, inner)
    }

    /// A writer that sends `capacity` bytes at a time (at least 1).
    pub fn with_capacity(capacity: usize, inner: W) -> BufWriter<W> {
        let capacity = capacity.max(1);
        BufWriter {
            inner,
            buf: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Copies all of `data` into the buffer, sending the buffer each time
    /// it fills up.
    ///
    /// # Errors
    ///
    /// The stream's error from a send; the bytes not yet sent stay buffered
    /// (a later `flush` retries them), and `data`'s bytes not yet copied are
    /// not buffered.
    pub async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.buf.len() >= self.capacity {
                self.flush_buf().await?;
            }
            if self.buf.capacity() < self.capacity {
                self.buf.reserve(self.capacity - self.buf.len());
            }
            let k = (self.capacity - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..k]);
            data = &data[k..];
        }
        Ok(())
    }

    /// Sends every buffered byte (asyncio's `drain`).
    ///
    /// # Errors
    ///
    /// The stream's error; the bytes not yet sent stay buffered.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.flush_buf().await
    }

    /// Flushes, then closes the write direction (the peer reads end of
    /// stream; asyncio's `write_eof`).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.flush_buf().await?;
        self.inner.write_eof().await
    }

    async fn flush_buf(&mut self) -> io::Result<()> {
        let mut b = std::mem::take(&mut self.buf);
        let mut sent = 0;
        let mut err = None;
        while sent < b.len() {
            let BufResult(r, s) = self.inner.write(Slice::new(b, sent)).await;
            b = s.into_inner();
            match r {
                Ok(0) => {
                    err = Some(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the stream accepted no more bytes",
                    ));
                    break;
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        b.drain(..sent);
        self.buf = b;
        err.map_or(Ok(()), Err)
    }
}

impl<W> BufWriter<W> {
    /// The bytes buffered and not yet sent.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The underlying stream; unsent bytes are dropped (flush first).
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: fmt::Debug> fmt::Debug for BufWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufWriter")
            .field("inner", &self.inner)
            .field("buffered", &self.buf.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}
