//! [`UnixDatagram`]: a Unix datagram socket.

use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use coil_arch::op::SockAddr;
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::{bind_raw, raw_from_path, raw_from_std, socketpair, std_from_raw, with_std};
use crate::net::socket;
use crate::net::udp::{Dgram, dgram_socket};

/// A Unix datagram socket (asyncio's `create_datagram_endpoint` with
/// `family=AF_UNIX`). Message boundaries are kept; cancelled receives lose no
/// datagram (see [`UdpSocket`](crate::net::UdpSocket)).
///
/// ```
/// use coil::io::BufResult;
/// use coil::net::UnixDatagram;
///
/// coil::run(async {
///     let (a, b) = UnixDatagram::pair()?;
///     let BufResult(r, _) = a.send(&b"one"[..]).await;
///     r?;
///     let BufResult(r, _) = a.send(&b"two"[..]).await;
///     r?;
///     let BufResult(n, buf) = b.recv(Vec::with_capacity(16)).await;
///     assert_eq!(&buf[..n?], b"one");
///     let BufResult(n, buf) = b.recv(Vec::with_capacity(16)).await;
///     assert_eq!(&buf[..n?], b"two");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    sock: Dgram,
}

impl UnixDatagram {
    /// A socket bound to a filesystem path.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind`](super::UnixListener::bind).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        Self::bind_raw(&raw_from_path(path.as_ref())?)
    }

    /// A socket bound to a std address: a path or (Linux) an abstract name.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        Self::bind_raw(&raw_from_std(addr)?)
    }

    fn bind_raw(a: &SockAddr) -> io::Result<UnixDatagram> {
        let sock = UnixDatagram::unbound()?;
        bind_raw(sock.sock.raw(), a)?;
        Ok(sock)
    }

    /// A socket bound to nothing: it can send (its datagrams arrive from an
    /// unnamed address) and receive once connected.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: Dgram::new(dgram_socket(libc::AF_UNIX)?),
        })
    }

    /// Adopts a datagram socket made with the standard library (its blocking
    /// mode is set to what the loop's driver needs).
    ///
    /// # Errors
    ///
    /// Outside a running loop, or if `fcntl` fails; the socket is closed then.
    pub fn from_std(sock: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: Dgram::adopt(sock)?,
        })
    }

    /// Two connected, unnamed datagram sockets (`socketpair(2)`).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = socketpair(libc::SOCK_DGRAM)?;
        Ok((
            UnixDatagram {
                sock: Dgram::new(a),
            },
            UnixDatagram {
                sock: Dgram::new(b),
            },
        ))
    }

    /// Sets the default peer (never blocks).
    ///
    /// # Errors
    ///
    /// `ENOENT` if nothing exists at `path`, `ECONNREFUSED` if no socket is
    /// bound there.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.sock.connect_raw(&raw_from_path(path.as_ref())?)
    }

    /// Sets the default peer to a std address (path or abstract name).
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.sock.connect_raw(&raw_from_std(addr)?)
    }

    /// Sends `buf`'s initialised bytes as one datagram to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `ENOENT`/`ECONNREFUSED` if nobody is bound there, `EMSGSIZE`, ...
    pub async fn send_to<B: IoBuf>(&self, buf: B, path: impl AsRef<Path>) -> BufResult<usize, B> {
        match raw_from_path(path.as_ref()) {
            Ok(a) => self.sock.send_to(buf, Some(a)).await,
            Err(e) => BufResult(Err(e), buf),
        }
    }

    /// Sends a datagram to a std address (path or abstract name).
    pub async fn send_to_addr<B: IoBuf>(&self, buf: B, addr: &SocketAddr) -> BufResult<usize, B> {
        match raw_from_std(addr) {
            Ok(a) => self.sock.send_to(buf, Some(a)).await,
            Err(e) => BufResult(Err(e), buf),
        }
    }

    /// Receives one datagram into `buf`'s spare capacity; returns its length
    /// and sender (unnamed if the sender is not bound). Longer datagrams are
    /// truncated. Cancel-safe.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let BufResult(r, buf) = self.sock.recv_from(buf).await;
        BufResult(r.and_then(|(n, a)| Ok((n, std_from_raw(&a)?))), buf)
    }

    /// Sends a datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.sock.send_to(buf, None).await
    }

    /// Receives a datagram (from the connected peer). Cancel-safe.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.sock.recv_from(buf).await.map(|(n, _)| n)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with_std(
            self.sock.raw(),
            std::os::unix::net::UnixDatagram::local_addr,
        )
    }

    /// The connected peer's address (`ENOTCONN` if not connected).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        with_std(self.sock.raw(), std::os::unix::net::UnixDatagram::peer_addr)
    }
}

socket::socket_traits!(UnixDatagram, sock, local_addr);
socket::std_conversions!(UnixDatagram, sock, std::os::unix::net::UnixDatagram);
