//! [`TcpListener`] and [`TcpStream`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use coil_arch::op as kop;

use super::ToSocketAddrs;
use super::incoming::Incoming;
use super::socket::{self, nonblocking};
use super::stream::{ListenerCore, StreamCore, stream_socket};
use crate::op::fd::SharedFd;

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
    pub(super) core: ListenerCore,
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
        Ok(TcpListener {
            core: ListenerCore::listen(fd, 1024)?,
        })
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
        let (core, addr) = self.core.accept().await?;
        let stream = TcpStream { core };
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
            core: ListenerCore::adopt(listener)?,
        })
    }

    /// The address the listener is bound to (the real port after binding 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(self.core.raw())
    }
}

socket::socket_traits!(TcpListener, core, local_addr);
socket::std_conversions!(TcpListener, core, std::net::TcpListener);

/// A TCP connection, like asyncio's `(StreamReader, StreamWriter)` pair.
///
/// Methods take `&self`, so one task can read while another writes (share it
/// with `Rc`, or split it with [`TcpStream::into_split`]).
pub struct TcpStream {
    pub(super) core: StreamCore,
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
        let deadline = crate::time::Instant::now() + timeout;
        crate::time::timeout_dropping(Some(deadline), TcpStream::connect(addr))
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
            core: StreamCore::adopt(stream)?,
        })
    }

    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = SharedFd::new(socket::tcp_socket(&addr, nonblocking()?)?);
        let op = kop::Connect::new(fd.raw(), addr);
        Ok(TcpStream {
            core: StreamCore::connect(fd, op).await?,
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::peer_addr(self.core.raw())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(self.core.raw())
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        socket::set_int_opt(
            self.core.raw(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            i32::from(on),
        )
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        socket::get_int_opt(self.core.raw(), libc::IPPROTO_TCP, libc::TCP_NODELAY).map(|v| v != 0)
    }

    /// Sets `SO_LINGER` (`Some(ZERO)` makes close send a reset).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        socket::set_linger(self.core.raw(), linger)
    }

    /// `SO_LINGER`: `None` when off, else the time in whole seconds.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        socket::linger(self.core.raw())
    }
}

stream_socket! {
    TcpStream, OwnedReadHalf, OwnedWriteHalf;
    read:
        /// Reads into the spare capacity of `buf` (`len..capacity`) and extends
        /// its length by the count read. `Ok(0)` means end of stream (or no
        /// spare capacity).
        ;
    peer_gone: "`EPIPE`, `ECONNRESET`";
    shutdown_write: "sends FIN";
    write_all_vectored: ;
}

socket::socket_traits!(TcpStream, core, peer_addr);
socket::std_conversions!(TcpStream, core, std::net::TcpStream);
