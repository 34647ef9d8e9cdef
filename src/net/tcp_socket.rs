//! [`TcpSocket`]: a TCP socket configured before it listens or connects.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use coil_arch::op as kop;

use super::socket::{self, nonblocking};
use super::stream::{ListenerCore, StreamCore};
use super::{TcpListener, TcpStream};
use crate::op::fd::SharedFd;

/// A TCP socket not yet listening or connected: set its options, then
/// [`bind`](TcpSocket::bind) and [`listen`](TcpSocket::listen), or
/// [`connect`](TcpSocket::connect). The shape of tokio's `TcpSocket`;
/// asyncio leaves this to the `socket` module (`sock=` arguments).
///
/// Every option is a `setsockopt(2)` with its getter (`getsockopt(2)`);
/// errors carry the OS errno.
///
/// ```
/// use coil::net::TcpSocket;
///
/// coil::run(async {
///     let sock = TcpSocket::new_v4()?;
///     sock.set_reuseaddr(true)?;
///     sock.set_recv_buffer_size(1 << 20)?;
///     sock.bind("127.0.0.1:0".parse().unwrap())?;
///     let listener = sock.listen(128)?;
///     let addr = listener.local_addr()?;
///     let client = coil::spawn(async move {
///         let sock = TcpSocket::new_v4()?;
///         sock.set_nodelay(true)?;
///         sock.connect(addr).await
///     });
///     let (_conn, _peer) = listener.accept().await?;
///     assert!(client.await.unwrap()?.nodelay()?);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpSocket {
    fd: SharedFd,
}

impl TcpSocket {
    /// A new IPv4 TCP socket, close-on-exec.
    ///
    /// # Errors
    ///
    /// As `socket(2)`; outside a running loop.
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(libc::AF_INET)
    }

    /// A new IPv6 TCP socket, close-on-exec.
    ///
    /// # Errors
    ///
    /// As `socket(2)` (`EAFNOSUPPORT` without IPv6); outside a running loop.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(libc::AF_INET6)
    }

    fn new(family: i32) -> io::Result<TcpSocket> {
        let fd = socket::new_socket(family, libc::SOCK_STREAM, nonblocking()?)?;
        Ok(TcpSocket {
            fd: SharedFd::new(fd),
        })
    }

    /// Adopts a std stream as a socket to configure (its blocking mode set
    /// to what the loop's driver needs), as tokio's `from_std_stream`.
    ///
    /// # Errors
    ///
    /// Outside a running loop, or if `fcntl` fails; the socket is closed then.
    pub fn from_std_stream(stream: std::net::TcpStream) -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            fd: socket::adopt(stream)?,
        })
    }

    socket::int_options! {
        /// Sets `SO_REUSEADDR`: bind to a port with connections in
        /// `TIME_WAIT` (what [`TcpListener::bind`] sets).
        fn set_reuseaddr;
        /// Whether `SO_REUSEADDR` is set.
        fn reuseaddr -> bool = (SOL_SOCKET, SO_REUSEADDR);

        /// Sets `SO_REUSEPORT`: several sockets (each with it set, same
        /// user) may bind the same address and port, and the kernel spreads
        /// incoming connections over them (one listener per loop,
        /// thread-per-core).
        fn set_reuseport;
        /// Whether `SO_REUSEPORT` is set.
        fn reuseport -> bool = (SOL_SOCKET, SO_REUSEPORT);

        /// Sets `TCP_NODELAY` (disables Nagle's algorithm); kept by the
        /// stream, and by the connections a listener accepts.
        fn set_nodelay;
        /// Whether `TCP_NODELAY` is set.
        fn nodelay -> bool = (IPPROTO_TCP, TCP_NODELAY);

        /// Sets `SO_KEEPALIVE`: probe an idle connection (after the system's
        /// `tcp_keepalive_time`, two hours unless changed).
        fn set_keepalive;
        /// Whether `SO_KEEPALIVE` is set.
        fn keepalive -> bool = (SOL_SOCKET, SO_KEEPALIVE);

        /// Sets `IPV6_V6ONLY` on an IPv6 socket: it then takes no
        /// IPv4-mapped traffic (`[::]` binds IPv6 only, leaving the port free
        /// for IPv4). `ENOPROTOOPT` on an IPv4 socket; `EINVAL` once bound.
        fn set_only_v6;
        /// Whether `IPV6_V6ONLY` is set.
        fn only_v6 -> bool = (IPPROTO_IPV6, IPV6_V6ONLY);
    }

    socket::buffer_size_methods!();

    /// Sets `SO_LINGER`: `None` off; `Some(d)` makes close wait up to `d`
    /// (whole seconds) for unsent data, `Some(ZERO)` send a reset.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        socket::set_linger(self.raw(), linger)
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        socket::linger(self.raw())
    }

    /// `SO_BINDTODEVICE`: only use the interface named `interface` (`None`
    /// unbinds).
    ///
    /// # Errors
    ///
    /// The OS error: `EPERM` without `CAP_NET_RAW` (on kernels before 5.7,
    /// or where the socket is already bound to another device), `ENODEV` for
    /// an unknown name.
    pub fn bind_device(&self, interface: Option<&[u8]>) -> io::Result<()> {
        socket::bind_device(self.raw(), interface)
    }

    /// The interface bound with [`bind_device`](Self::bind_device), if any.
    pub fn device(&self) -> io::Result<Option<Vec<u8>>> {
        socket::device(self.raw())
    }

    /// Binds to `addr` (port 0: a free one).
    ///
    /// # Errors
    ///
    /// As `bind(2)`: `EADDRINUSE`, `EADDRNOTAVAIL`, `EINVAL` for an address
    /// of the other family, ...
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        socket::bind(self.raw(), addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(self.raw())
    }

    /// Listens with a queue of `backlog` connections the kernel has
    /// completed but nobody accepted yet (capped by `net.core.somaxconn`;
    /// past it, new connections wait in SYN retries). Binds to a free port
    /// first if not bound.
    ///
    /// # Errors
    ///
    /// As `listen(2)` (`EADDRINUSE` when a free port cannot be found).
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        Ok(TcpListener {
            core: ListenerCore::listen(self.fd, backlog)?,
        })
    }

    /// Connects to `addr` with coil's connect op: dropping the future
    /// cancels the attempt and closes the socket.
    ///
    /// # Errors
    ///
    /// The OS error (`ECONNREFUSED`, `ETIMEDOUT`, `ENETUNREACH`, ...).
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        let op = kop::Connect::new(self.fd.raw(), addr);
        Ok(TcpStream {
            core: StreamCore::connect(self.fd, op).await?,
        })
    }

    fn raw(&self) -> RawFd {
        self.fd.raw()
    }
}

socket::socket_traits!(TcpSocket, fd, local_addr);
