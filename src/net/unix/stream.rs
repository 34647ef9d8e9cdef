//! [`UnixStream`] and its halves: a Unix stream connection.

use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use coil_arch::op::{self as kop, SockAddr};

use super::{raw_from_path, raw_from_std, socketpair, unix_socket, with_std};
use crate::net::socket;
use crate::net::stream::{StreamCore, stream_socket};
use crate::op::fd::SharedFd;

/// A Unix stream connection. Same API as [`TcpStream`](crate::net::TcpStream):
/// owned buffers in and out, `&self` methods so one task can read while
/// another writes.
///
/// ```
/// use coil::io::BufResult;
/// use coil::net::UnixStream;
///
/// coil::run(async {
///     let (a, b) = UnixStream::pair()?;
///     let BufResult(r, _) = a.write_all(&b"ping"[..]).await;
///     r?;
///     let BufResult(r, buf) = b.read_exact(Vec::with_capacity(4)).await;
///     r?;
///     assert_eq!(buf, b"ping");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    pub(super) core: StreamCore,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `ENOENT` if nothing exists at `path`, `ECONNREFUSED` if it is a socket
    /// nobody listens on, `EACCES`, ...
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        Self::connect_raw(raw_from_path(path.as_ref())?).await
    }

    /// Connects to a std address: a path or (Linux) an abstract name.
    pub async fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        Self::connect_raw(raw_from_std(addr)?).await
    }

    async fn connect_raw(a: SockAddr) -> io::Result<UnixStream> {
        let fd = SharedFd::new(unix_socket(libc::SOCK_STREAM)?);
        // `Connect::new` takes an IP address; its `addr` field takes any.
        let mut op = kop::Connect::new(fd.raw(), std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        op.addr = a;
        Ok(UnixStream {
            core: StreamCore::connect(fd, op).await?,
        })
    }

    /// Adopts a connected stream made with the standard library (its blocking
    /// mode is set to what the loop's driver needs), like
    /// [`TcpStream::from_std`].
    ///
    /// [`TcpStream::from_std`]: crate::net::TcpStream::from_std
    ///
    /// # Errors
    ///
    /// Outside a running loop, or if `fcntl` fails; the socket is closed then.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            core: StreamCore::adopt(stream)?,
        })
    }

    /// Two connected, unnamed streams (`socketpair(2)`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = socketpair(libc::SOCK_STREAM)?;
        let (a, b) = (StreamCore::new(a), StreamCore::new(b));
        Ok((UnixStream { core: a }, UnixStream { core: b }))
    }

    /// The local address (usually unnamed for a client).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with_std(self.core.raw(), std::os::unix::net::UnixStream::local_addr)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        with_std(self.core.raw(), std::os::unix::net::UnixStream::peer_addr)
    }
}

stream_socket! {
    UnixStream, UnixReadHalf, UnixWriteHalf;
    read:
        /// Reads into the spare capacity of `buf` (`len..capacity`) and extends
        /// its length. `Ok(0)` means end of stream (or no spare capacity).
        /// Cancel-safe: bytes delivered to a dropped read are returned by the
        /// next one.
        ;
    peer_gone: "`EPIPE`";
    shutdown_write: "the peer reads EOF";
    write_all_vectored:
        /// ```
        /// use coil::io::BufResult;
        /// use coil::net::UnixStream;
        ///
        /// coil::run(async {
        ///     let (a, b) = UnixStream::pair()?;
        ///     let head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n".to_vec();
        ///     let BufResult(r, bufs) = a.write_all_vectored(vec![head, b"hello".to_vec()]).await;
        ///     r?;
        ///     let total = bufs[0].len() + bufs[1].len();
        ///     let BufResult(r, got) = b.read_exact(Vec::with_capacity(total)).await;
        ///     r?;
        ///     assert!(got.ends_with(b"\r\n\r\nhello"));
        ///     Ok::<(), std::io::Error>(())
        /// })?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        ///
        ;
}

socket::socket_traits!(UnixStream, core, peer_addr);
socket::std_conversions!(UnixStream, core, std::os::unix::net::UnixStream);
