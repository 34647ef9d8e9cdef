//! [`Compat`]: a coil byte stream behind the poll-style read and write traits
//! of the ecosystem (`futures-io`'s `AsyncRead`/`AsyncWrite`/`AsyncBufRead`,
//! hyper's `rt::Read`/`rt::Write`), with [`OwnedRead`] and [`OwnedWrite`],
//! the owned-buffer operations it is built on. The trait impls themselves are
//! in `futures_io.rs` and `hyper.rs`; the state machine they share is here.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use crate::fs::File;
use crate::io::{AsyncReadOwned, AsyncWriteOwned, BufResult};

/// A boxed, not necessarily `Send`, future: one in-flight operation kept by
/// a [`Compat`] between polls.
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A byte source [`Compat`] reads from: one owned-buffer read as a future
/// that owns everything it uses (the source, through the `Rc`, and the
/// buffer), so the adapter can keep it across polls.
///
/// Implemented for every [`AsyncReadOwned`] (coil's TCP and Unix streams and
/// their read halves, a child process's stdout and stderr) and for [`File`]
/// (reads at its cursor). Implement it
/// for a type of your own to put it behind [`Compat`].
pub trait OwnedRead: 'static {
    /// Whether reads and writes move one shared position (a file's cursor),
    /// so a read must not start while a write is in flight. `false` for
    /// sockets, whose two directions are independent.
    const SHARED_CURSOR: bool = false;

    /// Reads into the spare capacity of `buf` (`len..capacity`), extending its
    /// length; `Ok(0)` is the end of the stream. Dropping the future before it
    /// finishes must lose no bytes: the next read returns what it received.
    fn read_owned(self: Rc<Self>, buf: Vec<u8>) -> LocalBoxFuture<BufResult<usize, Vec<u8>>>;
}

/// A byte sink [`Compat`] writes to (see [`OwnedRead`]).
///
/// Implemented for every [`AsyncWriteOwned`] (coil's TCP and Unix streams and
/// their write halves, a child process's stdin) and for [`File`] (writes at
/// its cursor).
pub trait OwnedWrite: 'static {
    /// Writes all of `buf`'s bytes.
    fn write_all_owned(self: Rc<Self>, buf: Vec<u8>) -> LocalBoxFuture<BufResult<(), Vec<u8>>>;

    /// Closes the write direction (a socket's `shutdown(Write)`; nothing for
    /// a file).
    fn close_write(self: Rc<Self>) -> LocalBoxFuture<io::Result<()>>;
}

impl<T: AsyncReadOwned + 'static> OwnedRead for T {
    fn read_owned(self: Rc<Self>, buf: Vec<u8>) -> LocalBoxFuture<BufResult<usize, Vec<u8>>> {
        Box::pin(async move { self.read(buf).await })
    }
}

impl<T: AsyncWriteOwned + 'static> OwnedWrite for T {
    fn write_all_owned(self: Rc<Self>, buf: Vec<u8>) -> LocalBoxFuture<BufResult<(), Vec<u8>>> {
        Box::pin(async move { self.write_all(buf).await })
    }

    /// `NotConnected` (the peer reset the connection, or it never was) is
    /// `Ok`: there is no write direction left to close. hyper closes every
    /// connection this way when its client goes, and tokio's `poll_shutdown`
    /// does the same.
    fn close_write(self: Rc<Self>) -> LocalBoxFuture<io::Result<()>> {
        Box::pin(async move {
            match self.write_eof().await {
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                res => res,
            }
        })
    }
}

impl OwnedRead for File {
    const SHARED_CURSOR: bool = true;

    fn read_owned(self: Rc<Self>, buf: Vec<u8>) -> LocalBoxFuture<BufResult<usize, Vec<u8>>> {
        Box::pin(async move { self.read(buf).await })
    }
}

impl OwnedWrite for File {
    fn write_all_owned(self: Rc<Self>, buf: Vec<u8>) -> LocalBoxFuture<BufResult<(), Vec<u8>>> {
        Box::pin(async move { self.write_all(buf).await })
    }

    fn close_write(self: Rc<Self>) -> LocalBoxFuture<io::Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The `poll_write`, `poll_write_vectored` and `poll_flush` of a poll-style
/// write trait whose three have the standard signatures (futures-io's
/// `AsyncWrite`, hyper's `rt::Write`): calls into [`Compat`]'s write side.
macro_rules! compat_write_methods {
    () => {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().poll_write_inner(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().poll_write_inner(cx, bufs)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_flush_inner(cx)
        }
    };
}
pub(super) use compat_write_methods;

/// The read buffer's capacity unless [`Compat::with_capacity`] says
/// otherwise: one read op asks the kernel for at most this many bytes.
const DEFAULT_CAPACITY: usize = 16 * 1024;

/// The most bytes one `poll_write` copies (and one write op sends); a larger
/// slice is accepted in parts, as a short write.
const MAX_WRITE: usize = 64 * 1024;

/// A coil byte stream (a TCP or Unix stream, one of their halves, a child
/// process's pipe, a [`File`]) behind the poll-style read and write traits: with the
/// `futures-io` feature `futures_io::{AsyncRead, AsyncBufRead, AsyncWrite}`,
/// with `hyper` `hyper::rt::{Read, Write}`.
///
/// Those traits lend the stream the caller's buffer for the length of one
/// `poll_*` call; a completion-based read or write outlives that call (the
/// kernel fills or drains the buffer later), so coil's I/O takes buffers by
/// value. The adapter bridges the two with buffers of its own:
///
/// - **reads** go into the adapter's buffer (16 KiB unless
///   [`with_capacity`](Compat::with_capacity)), and each `poll_read` copies
///   from it into the caller's slice. The in-flight read is kept in the
///   adapter, never dropped with a `poll_read` whose caller went away: its
///   bytes are what the next `poll_read` (or `poll_fill_buf`) returns.
///   Nothing is lost to cancellation, as with coil's own reads.
/// - **writes** are copied into the adapter's buffer and started; `poll_write`
///   then reports the bytes as written (up to 64 KiB a call). The write goes
///   on in the background: the next `poll_write` first waits for it, and
///   `poll_flush` and `poll_close` wait for it and report its error. Flush
///   (or close) before dropping the adapter, as with any buffered writer:
///   bytes still in flight when it is dropped may be cut short.
///
/// **The cost**: one copy of every byte (between the adapter's buffer and the
/// caller's), and one small allocation per operation that waits for the
/// kernel (the boxed future the adapter keeps between polls). coil's own
/// owned-buffer API has neither; use it where you choose the code.
///
/// Reads and writes are independent (a reader may wait while a write is in
/// flight), except on a [`File`], where both move one cursor: there a read
/// first finishes the write in flight.
///
/// ```
/// # #[cfg(feature = "futures-io")] {
/// use std::future::poll_fn;
/// use std::pin::Pin;
/// use coil::compat::Compat;
/// use coil::net::UnixStream;
/// use futures_io::{AsyncRead, AsyncWrite};
///
/// coil::run(async {
///     let (a, b) = UnixStream::pair()?;
///     let (mut a, mut b) = (Compat::new(a), Compat::new(b));
///     let n = poll_fn(|cx| Pin::new(&mut a).poll_write(cx, b"ping")).await?;
///     poll_fn(|cx| Pin::new(&mut a).poll_flush(cx)).await?;
///     let mut buf = [0u8; 8];
///     let m = poll_fn(|cx| Pin::new(&mut b).poll_read(cx, &mut buf)).await?;
///     assert_eq!((n, &buf[..m]), (4, &b"ping"[..]));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Compat<T> {
    io: Rc<T>,
    read: ReadSide,
    write: WriteSide,
}

/// The adapter's read buffer: `buf[pos..]` read and not yet handed out.
struct ReadSide {
    buf: Vec<u8>,
    pos: usize,
    capacity: usize,
    /// The read op in flight; it owns the buffer (`buf` is empty meanwhile).
    in_flight: Option<LocalBoxFuture<BufResult<usize, Vec<u8>>>>,
}

struct WriteSide {
    /// The buffer of the last finished write, kept for the next.
    spare: Vec<u8>,
    /// The write op in flight; it owns the buffer.
    in_flight: Option<LocalBoxFuture<BufResult<(), Vec<u8>>>>,
    /// The close of the write direction, once started; `closed` once done.
    closing: Option<LocalBoxFuture<io::Result<()>>>,
    closed: bool,
}

impl<T> Compat<T> {
    /// Wraps `io` with a 16 KiB read buffer.
    pub fn new(io: T) -> Compat<T> {
        Compat::with_capacity(DEFAULT_CAPACITY, io)
    }

    /// Wraps `io` with a read buffer of `capacity` bytes (at least 1): the
    /// most one read op asks for.
    pub fn with_capacity(capacity: usize, io: T) -> Compat<T> {
        Compat {
            io: Rc::new(io),
            read: ReadSide {
                buf: Vec::new(),
                pos: 0,
                capacity: capacity.max(1),
                in_flight: None,
            },
            write: WriteSide {
                spare: Vec::new(),
                in_flight: None,
                closing: None,
                closed: false,
            },
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Unwraps the stream, with the bytes read and not yet handed out.
    ///
    /// A read still in flight is dropped, which loses nothing: coil's
    /// streams return its bytes from their next read, a file's cursor does
    /// not move. A write still in flight is dropped too and may be cut
    /// short: flush first.
    pub fn into_parts(self) -> (T, Vec<u8>) {
        let Compat {
            io,
            mut read,
            write,
        } = self;
        // The in-flight futures hold the other references to `io`.
        drop(read.in_flight.take());
        drop(write);
        let io = match Rc::try_unwrap(io) {
            Ok(io) => io,
            Err(_) => unreachable!("only the adapter's own futures share the stream"),
        };
        read.buf.drain(..read.pos);
        (io, read.buf)
    }

    /// Waits for the write in flight, if any; its error, if it failed.
    pub(super) fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(op) = self.write.in_flight.as_mut() {
            let BufResult(res, buf) = ready!(op.as_mut().poll(cx));
            self.write.in_flight = None;
            self.write.spare = buf;
            res?;
        }
        Poll::Ready(Ok(()))
    }

    /// Marks `n` bytes of the read buffer as handed out.
    pub(super) fn consume_inner(&mut self, n: usize) {
        self.read.pos = (self.read.pos + n).min(self.read.buf.len());
    }
}

impl<T: OwnedRead> Compat<T> {
    /// The buffered bytes, reading more first if there are none: empty at the
    /// end of the stream.
    pub(super) fn poll_fill_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if self.read.pos < self.read.buf.len() {
            return Poll::Ready(Ok(&self.read.buf[self.read.pos..]));
        }
        if T::SHARED_CURSOR {
            ready!(self.poll_flush_inner(cx))?;
        }
        let read = &mut self.read;
        let op = read.in_flight.get_or_insert_with(|| {
            let mut buf = std::mem::take(&mut read.buf);
            buf.clear();
            read.pos = 0;
            buf.reserve(read.capacity);
            self.io.clone().read_owned(buf)
        });
        let BufResult(res, buf) = ready!(op.as_mut().poll(cx));
        read.in_flight = None;
        read.buf = buf;
        read.pos = 0;
        if let Err(e) = res {
            read.buf.clear();
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(&read.buf[..]))
    }

    /// Copies buffered bytes (reading more first if there are none) into
    /// `out`; `Ok(0)` at the end of the stream or for an empty `out`.
    #[cfg(feature = "futures-io")]
    pub(super) fn poll_read_inner(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let avail = ready!(self.poll_fill_inner(cx))?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume_inner(n);
        Poll::Ready(Ok(n))
    }
}

impl<T: OwnedWrite> Compat<T> {
    /// Waits for the write in flight, then copies up to 64 KiB of `bufs` and
    /// starts writing them; their count.
    pub(super) fn poll_write_inner(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_flush_inner(cx))?;
        if self.write.closing.is_some() || self.write.closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after close",
            )));
        }
        let mut buf = std::mem::take(&mut self.write.spare);
        buf.clear();
        for b in bufs {
            let take = b.len().min(MAX_WRITE - buf.len());
            buf.extend_from_slice(&b[..take]);
            if buf.len() == MAX_WRITE {
                break;
            }
        }
        let n = buf.len();
        if n == 0 {
            self.write.spare = buf;
            return Poll::Ready(Ok(0));
        }
        let mut op = self.io.clone().write_all_owned(buf);
        // Polled once now: a write that can finish at once (epoll with room
        // in the socket) does, and one that cannot is submitted.
        match op.as_mut().poll(cx) {
            Poll::Ready(BufResult(res, buf)) => {
                self.write.spare = buf;
                res?;
            }
            Poll::Pending => self.write.in_flight = Some(op),
        }
        Poll::Ready(Ok(n))
    }

    /// Finishes the write in flight, then closes the write direction.
    pub(super) fn poll_close_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush_inner(cx))?;
        if self.write.closed {
            return Poll::Ready(Ok(()));
        }
        let io = &self.io;
        let op = self
            .write
            .closing
            .get_or_insert_with(|| io.clone().close_write());
        let res = ready!(op.as_mut().poll(cx));
        self.write.closing = None;
        self.write.closed = res.is_ok();
        Poll::Ready(res)
    }
}

impl<T: fmt::Debug> fmt::Debug for Compat<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat")
            .field("io", &self.io)
            .field("buffered", &(self.read.buf.len() - self.read.pos))
            .field("reading", &self.read.in_flight.is_some())
            .field("writing", &self.write.in_flight.is_some())
            .finish()
    }
}
