//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`].
//!
//! The same op model as TCP and UDP (owned buffers, cancellation that loses
//! nothing) over `AF_UNIX`. Addresses are `std::os::unix::net::SocketAddr`:
//! a path, an abstract name (Linux: `SocketAddrExt::from_abstract_name`), or
//! unnamed (an unbound socket or one end of a `pair()`).

use std::ffi::OsStr;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use coil_arch::op::{self as kop, SockAddr};
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::incoming::Incoming;
use super::socket::{self, nonblocking, syscall};
use super::stream::{ListenerCore, StreamCore, stream_socket};
use super::udp::{Dgram, dgram_socket};
use crate::op::fd::SharedFd;

const SUN_PATH_OFFSET: usize = std::mem::offset_of!(libc::sockaddr_un, sun_path);
const SUN_PATH_LEN: usize = 108;

/// Builds a kernel `sockaddr_un` holding `path` (abstract: a leading NUL).
fn raw_unix(name: &[u8], abstract_name: bool) -> io::Result<SockAddr> {
    let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned());
    if !abstract_name && name.contains(&0) {
        return Err(invalid("a Unix socket path must not contain NUL bytes"));
    }
    if !abstract_name && name.is_empty() {
        return Err(invalid("an empty Unix socket path"));
    }
    // Paths keep a terminating NUL; abstract names start with one.
    if name.len() + 1 > SUN_PATH_LEN {
        return Err(invalid("Unix socket path longer than 107 bytes"));
    }
    let mut sun = libc::sockaddr_un {
        sun_family: libc::AF_UNIX as libc::sa_family_t,
        sun_path: [0; SUN_PATH_LEN],
    };
    let start = usize::from(abstract_name);
    for (d, s) in sun.sun_path[start..].iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    let len = SUN_PATH_OFFSET + name.len() + 1;
    let mut a = SockAddr::empty();
    let (p, lenp) = a.as_mut_ptr();
    // SAFETY: `p` points at a sockaddr_storage, which is larger than and
    // aligned for sockaddr_un; `lenp` points at its length field.
    unsafe {
        std::ptr::write(p.cast::<libc::sockaddr_un>(), sun);
        *lenp = len as libc::socklen_t;
    }
    Ok(a)
}

fn raw_from_path(path: &Path) -> io::Result<SockAddr> {
    raw_unix(path.as_os_str().as_bytes(), false)
}

fn raw_from_std(addr: &SocketAddr) -> io::Result<SockAddr> {
    if let Some(p) = addr.as_pathname() {
        raw_from_path(p)
    } else if let Some(name) = addr.as_abstract_name() {
        raw_unix(name, true)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an unnamed Unix socket address cannot be bound or connected to",
        ))
    }
}

fn unnamed() -> io::Result<SocketAddr> {
    static UNNAMED: OnceLock<SocketAddr> = OnceLock::new();
    if let Some(a) = UNNAMED.get() {
        return Ok(a.clone());
    }
    let a = std::os::unix::net::UnixDatagram::unbound()?.local_addr()?;
    Ok(UNNAMED.get_or_init(|| a).clone())
}

/// The kernel's `sockaddr_un` (from `recvmsg`) as a std address.
fn std_from_raw(a: &SockAddr) -> io::Result<SocketAddr> {
    let (p, len) = a.as_ptr();
    // SAFETY: `p` points at a whole sockaddr_storage (initialised: zeroed
    // then written by the kernel), which is larger than and aligned for
    // sockaddr_un.
    let sun = unsafe { &*p.cast::<libc::sockaddr_un>() };
    if i32::from(sun.sun_family) != libc::AF_UNIX && len as usize > SUN_PATH_OFFSET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a Unix socket address",
        ));
    }
    let n = (len as usize)
        .saturating_sub(SUN_PATH_OFFSET)
        .min(SUN_PATH_LEN);
    // SAFETY: c_char and u8 have the same size and layout.
    let path: &[u8] = unsafe { std::slice::from_raw_parts(sun.sun_path.as_ptr().cast(), n) };
    match path.first() {
        None => unnamed(),
        Some(0) => SocketAddr::from_abstract_name(&path[1..]),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(n);
            SocketAddr::from_pathname(OsStr::from_bytes(&path[..end]))
        }
    }
}

/// Runs `f` on a std view of `fd` without taking ownership of it.
fn with_std<T: FromRawFd, R>(fd: RawFd, f: impl FnOnce(&T) -> R) -> R {
    // SAFETY: `fd` is a live socket owned by a SharedFd that outlives this
    // call; ManuallyDrop keeps the std value from closing it.
    let s = ManuallyDrop::new(unsafe { T::from_raw_fd(fd) });
    f(&s)
}

fn unix_socket(ty: i32) -> io::Result<RawFd> {
    let nb = if nonblocking()? {
        libc::SOCK_NONBLOCK
    } else {
        0
    };
    // SAFETY: plain system call without pointers.
    syscall!(unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC | nb, 0) })
}

fn socketpair(ty: i32) -> io::Result<(RawFd, RawFd)> {
    let nb = if nonblocking()? {
        libc::SOCK_NONBLOCK
    } else {
        0
    };
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a live array of the two ints socketpair writes.
    syscall!(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            ty | libc::SOCK_CLOEXEC | nb,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((fds[0], fds[1]))
}

fn bind_raw(fd: RawFd, a: &SockAddr) -> io::Result<()> {
    let (p, len) = a.as_ptr();
    // SAFETY: p/len describe `a`, alive for the call.
    syscall!(unsafe { libc::bind(fd, p, len) }).map(drop)
}

/// A Unix stream socket listening for connections (asyncio's
/// `start_unix_server`).
///
/// The socket file is not removed when the listener is dropped (as with
/// std); remove it yourself if you bound to a path.
///
/// ```
/// use coil::io::BufResult;
/// use coil::net::{UnixListener, UnixStream};
///
/// coil::run(async {
///     let dir = std::env::temp_dir().join(format!("coil-doc-unix-{}", std::process::id()));
///     std::fs::create_dir_all(&dir)?;
///     let path = dir.join("sock");
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path)?;
///     let client = coil::spawn({
///         let path = path.clone();
///         async move {
///             let s = UnixStream::connect(&path).await?;
///             let BufResult(r, _) = s.write_all(&b"hi"[..]).await;
///             r
///         }
///     });
///     let (conn, _peer) = listener.accept().await?;
///     let BufResult(r, buf) = conn.read_exact(Vec::with_capacity(2)).await;
///     r?;
///     assert_eq!(buf, b"hi");
///     client.await.unwrap()?;
///     std::fs::remove_dir_all(&dir)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    core: ListenerCore,
}

impl UnixListener {
    /// Binds to a filesystem path and listens (backlog 1024).
    ///
    /// # Errors
    ///
    /// The OS error: `EADDRINUSE` if the path exists, `ENOENT` if its
    /// directory does not, `EACCES`, ...; `InvalidInput` for a path with NUL
    /// bytes or longer than 107 bytes. Must be called inside a running loop.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Self::bind_raw(&raw_from_path(path.as_ref())?)
    }

    /// Binds to a std address: a path or (Linux) an abstract name.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        Self::bind_raw(&raw_from_std(addr)?)
    }

    fn bind_raw(a: &SockAddr) -> io::Result<UnixListener> {
        let fd = SharedFd::new(unix_socket(libc::SOCK_STREAM)?);
        bind_raw(fd.raw(), a)?;
        Ok(UnixListener {
            core: ListenerCore::listen(fd)?,
        })
    }

    /// Adopts a listener made with the standard library (its blocking mode is
    /// set to what the loop's driver needs), like [`TcpListener::from_std`].
    ///
    /// [`TcpListener::from_std`]: crate::net::TcpListener::from_std
    ///
    /// # Errors
    ///
    /// Outside a running loop, or if `fcntl` fails; the socket is closed then.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            core: ListenerCore::adopt(listener)?,
        })
    }

    /// Waits for a connection; returns the stream and the peer's address
    /// (usually unnamed: clients rarely bind).
    ///
    /// Cancel-safe: a connection accepted after this future was dropped is
    /// returned by the next call.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (core, _) = self.core.accept().await?;
        let stream = UnixStream { core };
        let addr = stream.peer_addr()?;
        Ok((stream, addr))
    }

    /// The incoming connections as a [`Stream`](crate::stream::Stream) of
    /// `io::Result<UnixStream>`, one [`accept`](Self::accept) per item.
    ///
    /// Accept errors are yielded as items and do not end the stream (it
    /// never ends): on `EMFILE`/`ENFILE` (out of fds) back off before asking
    /// for the next item, or the loop will spin on the same error. See
    /// [`TcpListener::incoming`](super::TcpListener::incoming) for an example.
    pub fn incoming(&self) -> Incoming<'_, UnixStream> {
        Incoming::new(move || async move { Ok(self.accept().await?.0) })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with_std(
            self.core.raw(),
            std::os::unix::net::UnixListener::local_addr,
        )
    }
}

socket::socket_traits!(UnixListener, core, local_addr);

/// A Unix stream connection. Same API as [`TcpStream`](super::TcpStream):
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
    core: StreamCore,
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

/// A Unix datagram socket (asyncio's `create_datagram_endpoint` with
/// `family=AF_UNIX`). Message boundaries are kept; cancelled receives lose no
/// datagram (see [`UdpSocket`](super::UdpSocket)).
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
    /// As [`UnixListener::bind`].
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
