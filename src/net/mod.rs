//! Networking: TCP listeners and streams, UDP and Unix sockets over the
//! loop's driver; [`TcpSocket`] and the socket options (`setsockopt(2)`
//! with a getter each), and the conversions to and from std's sockets.
//!
//! asyncio's streams and sockets, completion-based: every read and write
//! takes an owned buffer and gives it back ([`crate::io::BufResult`]). The same
//! API and behaviour under io_uring and epoll. Sends never raise SIGPIPE: a
//! vanished peer gives `EPIPE`/`ECONNRESET` as an error.
//!
//! **Cancellation loses nothing.** If a read's future is dropped (by a
//! timeout, say) after the kernel already delivered bytes, those bytes are
//! kept and returned by the next read on the same stream. If an accept's
//! future is dropped after the kernel accepted a connection, the connection
//! is kept and returned by the next accept on the listener (and closed with
//! the listener if none comes).

mod addr;
mod incoming;
mod socket;
pub(crate) mod stream;
mod tcp;
mod tcp_socket;
mod udp;
mod unix;

pub use addr::{Resolve, ToSocketAddrs};
pub use incoming::Incoming;
pub use socket::IntoStdError;
pub(crate) use socket::adopt;
pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use tcp_socket::TcpSocket;
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixReadHalf, UnixStream, UnixWriteHalf};

// The owned-buffer stream traits of `coil::io` for the streams and halves.
crate::io::traits::read_impl!(TcpStream, OwnedReadHalf, UnixStream, UnixReadHalf);
crate::io::traits::write_impl!(TcpStream, OwnedWriteHalf, UnixStream, UnixWriteHalf);
