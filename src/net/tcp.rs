//! [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use coil_arch::op as kop;
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::ToSocketAddrs;
use super::incoming::Incoming;
use super::socket::{self, nonblocking};
use super::stream_io::{
    read, read_exact, shutdown, write, write_all, write_all_vectored, write_vectored,
};
use crate::op::fd::SharedFd;
use crate::op::{Op, Operation};

/// An op from coil-arch plus the fd handle it keeps alive (io/fd.rs rule 1).
#[derive(Debug)]
pub(crate) struct WithFd<T> {
    pub(crate) op: T,
    pub(crate) fd: SharedFd,
}

crate::op::delegate_opcode!(WithFd, fd);

impl<B: IoBufMut> Operation for WithFd<kop::Recv<B>> {
    type Output = BufResult<usize, B>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        let mut buf = self.op.buf;
        if let Ok(n) = res {
            let init = buf.bytes_init();
            // SAFETY: the kernel wrote `n` bytes right after `init`.
            unsafe { buf.set_init(init + n) };
        }
        BufResult(res, buf)
    }

    fn on_orphaned(&self) {
        self.fd.orphan_begin();
    }

    /// Bytes that arrived after the future was dropped go to the stream's
    /// stash, for the next read.
    fn complete_orphan(self, res: io::Result<usize>) {
        if let Ok(n) = res
            && n > 0
        {
            let init = self.op.buf.bytes_init();
            // SAFETY: the kernel initialised `n` bytes after `init`.
            let bytes =
                unsafe { std::slice::from_raw_parts(self.op.buf.stable_ptr().add(init), n) };
            self.fd.stash(bytes);
        }
        self.fd.orphan_end();
    }
}

impl<B: IoBuf> Operation for WithFd<kop::Send<B>> {
    type Output = BufResult<usize, B>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        BufResult(res, self.op.buf)
    }
}

impl Operation for WithFd<kop::Accept> {
    type Output = io::Result<(RawFd, Option<SocketAddr>)>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(|fd| (fd as RawFd, self.op.addr.as_std()))
    }

    fn on_orphaned(&self) {
        self.fd.orphan_begin();
    }

    /// A connection accepted after the future was dropped waits in the
    /// listener for the next `accept`.
    fn complete_orphan(self, res: io::Result<usize>) {
        if let Ok(fd) = res {
            self.fd.push_accepted(fd as RawFd, self.op.addr.as_std());
        }
        self.fd.orphan_end();
    }
}

impl Operation for WithFd<kop::Connect> {
    type Output = io::Result<()>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

impl Operation for WithFd<kop::Shutdown> {
    type Output = io::Result<()>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

/// A TCP socket listening for connections, like asyncio's `start_server`.
///
/// ```
/// use coil::net::{TcpListener, TcpStream};
///
/// coil::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let client = coil::spawn(TcpStream::connect(addr));
///     let (_server_side, peer) = listener.accept().await?;
///     let client = client.await.unwrap()?;
///     assert_eq!(peer, client.local_addr()?);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    fd: SharedFd,
}

impl TcpListener {
    /// Binds to a **literal** address (port 0 picks a free port) and
    /// listens. Host names are resolved by [`TcpListener::bind_to`].
    ///
    /// Sets `SO_REUSEADDR`. Backlog 1024.
    ///
    /// # Errors
    ///
    /// The OS error (`EADDRINUSE`, `EACCES`, ...), or `InvalidInput` for a
    /// string that is not a literal `ip:port`. Must be called inside a
    /// running loop.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = match addr.to_resolve() {
            super::Resolve::Ready(r) => r?,
            super::Resolve::Lookup(name) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "TcpListener::bind takes a literal address; use bind_to to resolve {name:?}"
                    ),
                ));
            }
        };
        let mut last = None;
        for a in addrs {
            match Self::bind_one(a) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Like [`TcpListener::bind`], resolving host names on the blocking pool.
    pub async fn bind_to(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = addr.to_resolve().resolve().await?;
        TcpListener::bind(addrs.as_slice())
    }

    fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
        let fd = socket::tcp_socket(&addr, nonblocking()?)?;
        let fd = SharedFd::new(fd);
        socket::set_int_opt(fd.raw(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        socket::bind(fd.raw(), addr)?;
        socket::listen(fd.raw(), 1024)?;
        Ok(TcpListener { fd })
    }

    /// Waits for a connection; returns the stream and the peer's address.
    ///
    /// Cancel-safe: a connection accepted after this future was dropped is
    /// returned by the next call.
    ///
    /// # Errors
    ///
    /// The OS error. `EMFILE`/`ENFILE` (out of fds) come back as errors
    /// without closing the listener; keep serving and retry later.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.fd.orphans_done().await?;
        let (fd, addr) = match self.fd.pop_accepted() {
            Some(x) => x?,
            None => {
                let nb = nonblocking()?;
                Op::new(WithFd {
                    op: kop::Accept::new(self.fd.raw(), nb),
                    fd: self.fd.clone(),
                })
                .await?
            }
        };
        let stream = TcpStream {
            fd: SharedFd::new(fd),
        };
        let addr = match addr {
            Some(a) => a,
            None => stream.peer_addr()?,
        };
        Ok((stream, addr))
    }

    /// The incoming connections as a [`Stream`](crate::stream::Stream) of
    /// `io::Result<TcpStream>`, one [`accept`](Self::accept) per item.
    ///
    /// Accept errors are yielded as items and do not end the stream (it
    /// never ends): on `EMFILE`/`ENFILE` (out of fds) back off before asking
    /// for the next item, or the loop will spin on the same error. Peer
    /// addresses are dropped; use [`accept`](Self::accept) to get them.
    ///
    /// ```
    /// use coil::io::BufResult;
    /// use coil::net::{TcpListener, TcpStream};
    /// use coil::stream::StreamExt;
    ///
    /// coil::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let clients = coil::spawn(async move {
    ///         for _ in 0..3 {
    ///             let s = TcpStream::connect(addr).await?;
    ///             let BufResult(r, _) = s.write_all(&b"hi"[..]).await;
    ///             r?;
    ///         }
    ///         Ok::<(), std::io::Error>(())
    ///     });
    ///     let mut incoming = listener.incoming().take(3);
    ///     while let Some(conn) = incoming.next().await {
    ///         let conn = match conn {
    ///             Ok(c) => c,
    ///             // EMFILE and friends: keep serving, after a pause.
    ///             Err(_) => {
    ///                 coil::time::sleep(std::time::Duration::from_millis(10)).await;
    ///                 continue;
    ///             }
    ///         };
    ///         let BufResult(r, buf) = conn.read_exact(Vec::with_capacity(2)).await;
    ///         r?;
    ///         assert_eq!(buf, b"hi");
    ///     }
    ///     clients.await.unwrap()
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_, TcpStream> {
        Incoming::new(move || async move { Ok(self.accept().await?.0) })
    }

    /// Adopts a listener made with the standard library (its blocking mode is
    /// set to what the loop's driver needs).
    ///
    /// # Errors
    ///
    /// Outside a running loop, or if `fcntl` fails; the socket is closed then.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            fd: socket::adopt(listener)?,
        })
    }

    /// The address the listener is bound to (the real port after binding 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(self.fd.raw())
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.fd.raw())
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// A TCP connection, like asyncio's `(StreamReader, StreamWriter)` pair.
///
/// Methods take `&self`, so one task can read while another writes (share it
/// with `Rc`, or split it with [`TcpStream::into_split`]).
pub struct TcpStream {
    fd: SharedFd,
}

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn. Host names
    /// are resolved on the blocking pool, never on the loop.
    ///
    /// # Errors
    ///
    /// The OS error of the last address tried (`ECONNREFUSED`, ...).
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = addr.to_resolve().resolve().await?;
        let mut last = None;
        for a in addrs {
            match Self::connect_one(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Like [`TcpStream::connect`], giving up after `timeout` with
    /// `ErrorKind::TimedOut`.
    pub async fn connect_timeout(
        addr: impl ToSocketAddrs,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        crate::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
    }

    /// Adopts a connected stream made with the standard library (its
    /// blocking mode is set to what the loop's driver needs).
    ///
    /// # Errors
    ///
    /// Outside a running loop, or if `fcntl` fails; the socket is closed then.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            fd: socket::adopt(stream)?,
        })
    }

    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = SharedFd::new(socket::tcp_socket(&addr, nonblocking()?)?);
        Op::new(WithFd {
            op: kop::Connect::new(fd.raw(), addr),
            fd: fd.clone(),
        })
        .await?;
        Ok(TcpStream { fd })
    }

    /// Reads into the spare capacity of `buf` (`len..capacity`) and extends
    /// its length by the count read. `Ok(0)` means end of stream (or no
    /// spare capacity).
    pub fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> + '_ {
        read(&self.fd, buf)
    }

    /// Reads until `buf` is full (`len == capacity`).
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the stream ends first (the bytes read stay in `buf`).
    pub fn read_exact<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        read_exact(&self.fd, buf)
    }

    /// Writes some of `buf`'s bytes; returns how many.
    pub fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> + '_ {
        write(&self.fd, buf)
    }

    /// Writes all of `buf`'s bytes.
    ///
    /// # Errors
    ///
    /// The OS error (`EPIPE`, `ECONNRESET` when the peer went away); some
    /// bytes may have been written.
    pub fn write_all<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        write_all(&self.fd, buf)
    }

    /// Writes some of the initialised bytes of `bufs`, in order, with one
    /// gather write (`sendmsg`); returns how many, and the buffers.
    ///
    /// At most 1,024 buffers (`IOV_MAX`) go into one call: with more, only
    /// the first 1,024 are offered and the count tells how far the write got
    /// (a short write, as with `std`'s `write_vectored`), never `EINVAL`.
    /// [`write_all_vectored`](Self::write_all_vectored) sends everything. No
    /// buffers, or only empty ones, write nothing: `Ok(0)`.
    ///
    /// If the future is dropped while the write is in flight, the buffers
    /// (and the iovec array pointing into them) stay alive until the kernel
    /// is done; some bytes may have been sent.
    pub fn write_vectored<B: IoBuf>(
        &self,
        bufs: Vec<B>,
    ) -> impl Future<Output = BufResult<usize, Vec<B>>> + '_ {
        write_vectored(&self.fd, bufs)
    }

    /// Writes all the initialised bytes of `bufs`, in order, resuming after
    /// short writes (and splitting more than 1,024 buffers over several
    /// calls) without copying; hands the buffers back.
    ///
    /// # Errors
    ///
    /// The OS error (`EPIPE`, `ECONNRESET` when the peer went away); some
    /// bytes may have been written.
    pub fn write_all_vectored<B: IoBuf>(
        &self,
        bufs: Vec<B>,
    ) -> impl Future<Output = BufResult<(), Vec<B>>> + '_ {
        write_all_vectored(&self.fd, bufs)
    }

    /// Shuts down the read half, write half (sends FIN) or both.
    pub fn shutdown(&self, how: Shutdown) -> impl Future<Output = io::Result<()>> + '_ {
        shutdown(&self.fd, how)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::peer_addr(self.fd.raw())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(self.fd.raw())
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        socket::set_int_opt(
            self.fd.raw(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            i32::from(on),
        )
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        socket::get_int_opt(self.fd.raw(), libc::IPPROTO_TCP, libc::TCP_NODELAY).map(|v| v != 0)
    }

    /// Sets `SO_LINGER` (`Some(ZERO)` makes close send a reset).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let l = libc::linger {
            l_onoff: i32::from(linger.is_some()),
            l_linger: linger.map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX)),
        };
        // SAFETY: `l` is a live local of the size passed.
        socket::syscall!(unsafe {
            libc::setsockopt(
                self.fd.raw(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const l).cast(),
                size_of::<libc::linger>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    /// Splits into a read half and a write half that can live in different
    /// tasks of the same loop. The socket closes when both are dropped.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                fd: self.fd.clone(),
            },
            OwnedWriteHalf { fd: self.fd },
        )
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.fd.raw())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

/// The read half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    fd: SharedFd,
}

impl OwnedReadHalf {
    /// See [`TcpStream::read`].
    pub fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> + '_ {
        read(&self.fd, buf)
    }

    /// See [`TcpStream::read_exact`].
    pub fn read_exact<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        read_exact(&self.fd, buf)
    }
}

/// The write half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedWriteHalf {
    fd: SharedFd,
}

impl OwnedWriteHalf {
    /// See [`TcpStream::write`].
    pub fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> + '_ {
        write(&self.fd, buf)
    }

    /// See [`TcpStream::write_all`].
    pub fn write_all<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        write_all(&self.fd, buf)
    }

    /// See [`TcpStream::write_vectored`].
    pub fn write_vectored<B: IoBuf>(
        &self,
        bufs: Vec<B>,
    ) -> impl Future<Output = BufResult<usize, Vec<B>>> + '_ {
        write_vectored(&self.fd, bufs)
    }

    /// See [`TcpStream::write_all_vectored`].
    pub fn write_all_vectored<B: IoBuf>(
        &self,
        bufs: Vec<B>,
    ) -> impl Future<Output = BufResult<(), Vec<B>>> + '_ {
        write_all_vectored(&self.fd, bufs)
    }

    /// See [`TcpStream::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> impl Future<Output = io::Result<()>> + '_ {
        shutdown(&self.fd, how)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coil_arch::OpCode;

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no sockets")]
    fn with_fd_delegates_every_opcode_method() {
        // A method the wrapper forgot would fall back to the trait default:
        // for `drained`, epoll would quietly pay a sure EAGAIN per read.
        // SAFETY: a fresh socket this test owns (SharedFd closes it).
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0);
        let op = WithFd {
            op: kop::Recv {
                fd,
                buf: Vec::<u8>::with_capacity(64),
            },
            fd: SharedFd::new(fd),
        };
        assert!(op.drained(10), "a short stream read drains");
        assert!(!op.drained(64) && !op.drained(0));
        assert_eq!(op.readiness(), coil_arch::op::Readiness::Readable(fd));
    }
}
