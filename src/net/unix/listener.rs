//! [`UnixListener`]: a Unix stream socket accepting connections.

use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use coil_arch::op::SockAddr;

use super::{UnixStream, bind_raw, raw_from_path, raw_from_std, unix_socket, with_std};
use crate::net::incoming::Incoming;
use crate::net::socket;
use crate::net::stream::ListenerCore;
use crate::op::fd::SharedFd;

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
            core: ListenerCore::listen(fd, 1024)?,
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
    /// [`TcpListener::incoming`](crate::net::TcpListener::incoming) for an example.
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
socket::std_conversions!(UnixListener, core, std::os::unix::net::UnixListener);
