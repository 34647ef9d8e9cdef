//! [`BufReader`]: asyncio's `StreamReader` over an owned-buffer stream, with
//! its limit ([`LimitOverrun`]) and its short-read error ([`IncompleteRead`]).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use coil_arch::BufResult;

use super::AsyncReadOwned;

mod errors;

use crate::stream::Stream;
pub use errors::{IncompleteRead, LimitOverrun};

const DEFAULT_CAPACITY: usize = 8 * 1024;
/// asyncio's `_DEFAULT_LIMIT`.
const DEFAULT_LIMIT: usize = 64 * 1024;

/// Buffered reading: lines, delimited records, exact counts into your own
/// slices. The reader owns its buffers, so nothing here takes or returns an
/// owned buffer (asyncio's `readline`, `readuntil`, `readexactly`).
///
/// **Cancel-safe.** Every method either completes or consumes nothing: a
/// `read_line` dropped half-way (by a timeout, say) leaves the partial line
/// in the reader, and the next call returns the whole line. Errors consume
/// nothing either.
///
/// **Limit.** Like asyncio's `StreamReader(limit=2**16)`, a reader has a
/// [`limit`](BufReader::limit) (64 KiB unless set with
/// [`with_limit`](BufReader::with_limit)): a line or record whose bytes
/// before the delimiter number more than the limit is an error,
/// [`LimitOverrun`], and the reader stops reading there, so memory stays near
/// the limit plus one read's worth. The bytes stay buffered (asyncio's
/// `readuntil` does the same; its `readline` discards them, coil's
/// `read_line` keeps them, as every error here consumes nothing): raise the
/// limit and read again, or drain them with [`fill_buf`](BufReader::fill_buf)
/// and [`consume`](BufReader::consume). `read_exact`, `read` and
/// `read_to_end` are not limited (they are asked for a count, or for
/// everything).
///
/// ```
/// use coil::io::{BufReader, BufResult};
/// use coil::net::UnixStream;
///
/// coil::run(async {
///     let (a, b) = UnixStream::pair()?;
///     let BufResult(r, _) = a.write_all(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]).await;
///     r?;
///     let mut reader = BufReader::new(b);
///     let mut line = String::new();
///     reader.read_line(&mut line).await?;
///     assert_eq!(line, "GET / HTTP/1.1\r\n");
///     assert_eq!(reader.next_line().await?.as_deref(), Some("Host: x"));
///     assert_eq!(reader.next_line().await?.as_deref(), Some(""));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct BufReader<R> {
    inner: R,
    /// Buffered bytes are `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// Receives reads while `buf` holds unconsumed bytes, so a cancelled
    /// read never takes those bytes with it.
    scratch: Vec<u8>,
    capacity: usize,
    /// Most bytes a line or record may hold before its delimiter.
    limit: usize,
}

impl<R: AsyncReadOwned> BufReader<R> {
    /// A reader with an 8 KiB buffer and a 64 KiB limit.
    pub fn new(inner: R) -> BufReader<R> {
        BufReader::with_capacity(DEFAULT_CAPACITY, inner)
    }

    /// A reader that reads `capacity` bytes at a time (at least 1). The
    /// buffer grows beyond that only to hold one line or record longer than
    /// it.
    pub fn with_capacity(capacity: usize, inner: R) -> BufReader<R> {
        let capacity = capacity.max(1);
        BufReader {
            inner,
            buf: Vec::with_capacity(capacity),
            pos: 0,
            scratch: Vec::new(),
            capacity,
            limit: DEFAULT_LIMIT,
        }
    }

    /// The same reader with its limit set to `limit` bytes (at least 1):
    /// asyncio's `StreamReader(limit=...)`. See [the type's
    /// docs](BufReader#limit).
    ///
    /// ```
    /// use coil::io::{BufReader, BufResult, LimitOverrun};
    /// use coil::net::UnixStream;
    ///
    /// coil::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let BufResult(r, _) = a.write_all(&b"a rather long line\n"[..]).await;
    ///     r?;
    ///     let mut reader = BufReader::new(b).with_limit(8);
    ///     let err = reader.next_line().await.unwrap_err();
    ///     assert!(LimitOverrun::of(&err).is_some_and(|o| o.consumed() > 8));
    ///     reader.set_limit(64);
    ///     assert_eq!(reader.next_line().await?.as_deref(), Some("a rather long line"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> BufReader<R> {
        self.set_limit(limit);
        self
    }

    /// Reads more bytes after the buffered ones; `Ok(0)` at end of stream.
    async fn fill_more(&mut self) -> io::Result<usize> {
        loop {
            let r = if self.pos == self.buf.len() {
                // Nothing buffered: read straight into the buffer. If this
                // future is dropped the Vec goes with the op (and what it
                // received goes to the stream's stash): nothing is lost.
                let mut b = std::mem::take(&mut self.buf);
                b.clear();
                self.pos = 0;
                b.reserve(self.capacity);
                let BufResult(r, b) = self.inner.read(b).await;
                self.buf = b;
                r
            } else {
                let mut s = std::mem::take(&mut self.scratch);
                s.clear();
                s.reserve(self.capacity);
                let BufResult(r, s) = self.inner.read(s).await;
                if !s.is_empty() {
                    if self.pos > 0 {
                        self.buf.drain(..self.pos);
                        self.pos = 0;
                    }
                    self.grow_for(s.len());
                    self.buf.extend_from_slice(&s);
                }
                self.scratch = s;
                r
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Makes room in `buf` for `more` bytes, doubling as `Vec` does but not
    /// past the limit plus one read while the bytes fit there, so a search
    /// for a delimiter (which stops past the limit) keeps memory near the
    /// limit. `read_exact` and `read_to_end` go on doubling past it.
    fn grow_for(&mut self, more: usize) {
        let need = self.buf.len() + more;
        if need > self.buf.capacity() {
            let doubled = (self.buf.capacity() * 2).max(need);
            let bound = self.limit.saturating_add(self.capacity);
            let cap = if need <= bound {
                doubled.min(bound)
            } else {
                doubled
            };
            self.buf.reserve_exact(cap - self.buf.len());
        }
    }

    /// Length of the next record in `buf[pos..]`: up to and including
    /// `byte`, or everything left at end of stream. Consumes nothing.
    /// Stops reading once more than `limit` bytes are buffered without
    /// `byte`, with a [`LimitOverrun`].
    async fn find(&mut self, byte: u8) -> io::Result<usize> {
        let mut searched = 0;
        loop {
            let avail = &self.buf[self.pos..];
            if let Some(i) = avail[searched..].iter().position(|&b| b == byte) {
                let at = searched + i;
                if at > self.limit {
                    return Err(LimitOverrun::error(at, self.limit));
                }
                return Ok(at + 1);
            }
            searched = avail.len();
            if searched > self.limit {
                return Err(LimitOverrun::error(searched, self.limit));
            }
            if self.fill_more().await? == 0 {
                return Ok(self.buf.len() - self.pos);
            }
        }
    }

    /// Makes sure `n` bytes are buffered, unless the stream ends first.
    /// Returns how many are buffered (`< n` only at end of stream).
    async fn fill_to(&mut self, n: usize) -> io::Result<usize> {
        while self.buf.len() - self.pos < n {
            if self.fill_more().await? == 0 {
                break;
            }
        }
        Ok(self.buf.len() - self.pos)
    }

    /// Appends bytes up to and including `byte` (or to the end of the
    /// stream) to `out`; returns how many. `Ok(0)`: end of stream.
    ///
    /// # Errors
    ///
    /// `InvalidData` wrapping a [`LimitOverrun`] if more than
    /// [`limit`](BufReader::limit) bytes come before `byte` (asyncio's
    /// `readuntil` raising `LimitOverrunError`); the stream's error. Nothing
    /// is consumed or appended then: the bytes stay buffered.
    pub async fn read_until(&mut self, byte: u8, out: &mut Vec<u8>) -> io::Result<usize> {
        let n = self.find(byte).await?;
        out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    /// Appends the next line, with its `\n` (if the stream did not end
    /// first), to `out`; returns its length in bytes. `Ok(0)`: end of stream.
    ///
    /// # Errors
    ///
    /// `InvalidData` if the line is not UTF-8 (the line is consumed, `out`
    /// is unchanged); `InvalidData` wrapping a [`LimitOverrun`] if the line
    /// is longer than the [`limit`](BufReader::limit) (nothing consumed: the
    /// bytes stay buffered, where asyncio's `readline` would discard them);
    /// the stream's error (nothing consumed).
    pub async fn read_line(&mut self, out: &mut String) -> io::Result<usize> {
        let n = self.find(b'\n').await?;
        let line = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        match std::str::from_utf8(line) {
            Ok(s) => {
                out.push_str(s);
                Ok(n)
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )),
        }
    }

    /// The next line without its `\n` or `\r\n`; `None` at end of stream
    /// (asyncio's `async for line in reader`).
    ///
    /// # Errors
    ///
    /// As [`read_line`](BufReader::read_line).
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        if self.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        Ok(Some(line))
    }

    /// Fills `out` completely (asyncio's `readexactly`). Not limited by
    /// the [`limit`](BufReader::limit): it buffers `out.len()` bytes.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` wrapping an [`IncompleteRead`] (the bytes that did
    /// arrive and the count asked for; asyncio's `IncompleteReadError`) if
    /// the stream ends first. Nothing is consumed then (the bytes stay
    /// buffered as well), nor on any other error.
    pub async fn read_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        let n = out.len();
        if self.fill_to(n).await? < n {
            return Err(IncompleteRead::error(self.buffer().to_vec(), n));
        }
        out.copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(())
    }

    /// Copies up to `out.len()` bytes into `out`, reading from the stream
    /// only if nothing is buffered; `Ok(0)` at end of stream (or for an
    /// empty `out`).
    pub async fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let avail = self.fill_buf().await?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }

    /// Reads everything to the end of the stream, appending it to `out`;
    /// returns how many bytes were appended.
    pub async fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        while self.fill_more().await? > 0 {}
        let n = self.buf.len() - self.pos;
        out.extend_from_slice(&self.buf[self.pos..]);
        self.pos = self.buf.len();
        Ok(n)
    }

    /// The buffered bytes, reading from the stream first if there are none
    /// (empty only at end of stream). Pair with [`consume`](BufReader::consume).
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.buf.len() {
            self.fill_more().await?;
        }
        Ok(&self.buf[self.pos..])
    }

    /// Marks `n` buffered bytes as read.
    ///
    /// # Panics
    ///
    /// If fewer than `n` bytes are buffered.
    pub fn consume(&mut self, n: usize) {
        assert!(
            n <= self.buf.len() - self.pos,
            "BufReader::consume({n}) with only {} bytes buffered",
            self.buf.len() - self.pos
        );
        self.pos += n;
    }

    /// The lines of the stream as a [`Stream`] of `io::Result<String>`
    /// (without `\n`/`\r\n`), ending at end of stream or after the first
    /// error.
    ///
    /// ```
    /// use coil::io::{BufReader, BufResult};
    /// use coil::net::UnixStream;
    /// use coil::stream::StreamExt;
    ///
    /// coil::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let BufResult(r, _) = a.write_all(&b"one\ntwo\r\nthree"[..]).await;
    ///     r?;
    ///     drop(a);
    ///     let lines: Vec<String> = BufReader::new(b).lines().map(Result::unwrap).collect().await;
    ///     assert_eq!(lines, ["one", "two", "three"]);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lines(self) -> Lines<R>
    where
        R: 'static,
    {
        Lines {
            state: LinesState::Idle(self),
        }
    }
}

impl<R> BufReader<R> {
    /// The bytes buffered and not yet consumed.
    pub fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The most bytes a line or record may hold before its delimiter (64
    /// KiB unless set); see [the type's docs](BufReader#limit).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Sets the [`limit`](BufReader::limit) (at least 1). Bytes already
    /// buffered stay.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Bytes this reader has allocated for buffering (its buffer and its
    /// scratch space for reads), to check that memory stays near the limit.
    pub fn allocated(&self) -> usize {
        self.buf.capacity() + self.scratch.capacity()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying stream; buffered bytes are dropped (read them first
    /// with [`buffer`](BufReader::buffer)).
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: fmt::Debug> fmt::Debug for BufReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufReader")
            .field("inner", &self.inner)
            .field("buffered", &(self.buf.len() - self.pos))
            .field("capacity", &self.capacity)
            .field("limit", &self.limit)
            .finish()
    }
}

type NextLine<R> = Pin<Box<dyn Future<Output = (BufReader<R>, io::Result<Option<String>>)>>>;

enum LinesState<R> {
    Idle(BufReader<R>),
    Reading(NextLine<R>),
    Done,
}

/// The stream of [`BufReader::lines`].
pub struct Lines<R> {
    state: LinesState<R>,
}

// Never pinned structurally: the reader is moved in and out by value, and
// the in-flight future is boxed.
impl<R> Unpin for Lines<R> {}

impl<R> fmt::Debug for Lines<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            LinesState::Idle(_) => "idle",
            LinesState::Reading(_) => "reading",
            LinesState::Done => "done",
        };
        f.debug_struct("Lines").field("state", &state).finish()
    }
}

impl<R: AsyncReadOwned + 'static> Stream for Lines<R> {
    type Item = io::Result<String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.state, LinesState::Done) {
                LinesState::Idle(mut r) => {
                    this.state = LinesState::Reading(Box::pin(async move {
                        let line = r.next_line().await;
                        (r, line)
                    }));
                }
                LinesState::Reading(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = LinesState::Reading(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready((r, Ok(Some(line)))) => {
                        this.state = LinesState::Idle(r);
                        return Poll::Ready(Some(Ok(line)));
                    }
                    Poll::Ready((_, Ok(None))) => return Poll::Ready(None),
                    Poll::Ready((_, Err(e))) => return Poll::Ready(Some(Err(e))),
                },
                LinesState::Done => return Poll::Ready(None),
            }
        }
    }
}
