//! Socket creation, options, names, bind and listen: calls that never
//! block, so they are not ops. Each one hands the running loop's driver
//! (`rt::with_driver`) to `coil_arch::sock`, which makes the system call or,
//! for a simulator socket, asks the simulator: this file is the same for
//! every backend. Also the `syscall!` and `socket_traits!` helpers of `net`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use coil_arch::op::SockAddr;
use coil_arch::sock;

use crate::op::fd::SharedFd;
use crate::rt::with_driver;

/// Evaluate a libc call, turning -1 into the OS error.
macro_rules! syscall {
    ($e:expr) => {{
        let r = $e;
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }};
}
pub(crate) use syscall;

/// `AsRawFd` and `Debug` (the fd and one address, `$addr` being the method
/// that gives it) for a socket type whose `$inner` field has a `raw()` fd.
macro_rules! socket_traits {
    ($ty:ident, $inner:ident, $addr:ident) => {
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.$inner.raw()
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.$inner.raw())
                    .field(stringify!($addr), &self.$addr().ok())
                    .finish()
            }
        }
    };
}
pub(crate) use socket_traits;

/// Whether sockets for the current loop must be non-blocking (epoll) or
/// blocking (io_uring honours O_NONBLOCK and would return EAGAIN).
pub(crate) fn nonblocking() -> io::Result<bool> {
    crate::rt::with_core(|c| match c {
        Some(c) => Ok(!c.is_uring()),
        None => Err(io::Error::other(
            "coil sockets can only be created inside a running coil event loop (coil::run)",
        )),
    })
}

/// A new socket of `family` and `ty` (`SOCK_STREAM`, `SOCK_DGRAM`),
/// close-on-exec, for the current loop's driver (a simulator socket under
/// the simulator, if it models that kind).
pub(crate) fn new_socket(family: i32, ty: i32, nonblocking: bool) -> io::Result<RawFd> {
    with_driver(|d| sock::socket(d, family, ty, nonblocking))
}

/// A new TCP socket for `addr`'s family, close-on-exec.
pub(crate) fn tcp_socket(addr: &SocketAddr, nonblocking: bool) -> io::Result<RawFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    new_socket(family, libc::SOCK_STREAM, nonblocking)
}

pub(crate) fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    with_driver(|d| sock::set_int_opt(d, fd, level, name, value))
}

pub(crate) fn get_int_opt(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    with_driver(|d| sock::get_int_opt(d, fd, level, name))
}

pub(crate) fn bind(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    with_driver(|d| sock::bind(d, fd, addr))
}

pub(crate) fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    with_driver(|d| sock::listen(d, fd, backlog))
}

pub(crate) fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    with_driver(|d| sock::local_addr(d, fd))
}

pub(crate) fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    with_driver(|d| sock::peer_addr(d, fd))
}

/// `connect(2)` on a datagram socket: sets its default peer (never blocks).
pub(crate) fn connect_dgram(fd: RawFd, to: &SockAddr) -> io::Result<()> {
    with_driver(|d| sock::connect_dgram(d, fd, to))
}

/// Takes ownership of a std socket for the current loop (the `from_std`
/// constructors): its `O_NONBLOCK` set or cleared to suit the driver. On an
/// error the socket is closed.
pub(crate) fn adopt(sock: impl std::os::fd::IntoRawFd) -> io::Result<SharedFd> {
    let fd = SharedFd::new(sock.into_raw_fd());
    set_mode(fd.raw())?;
    Ok(fd)
}

/// Set or clear `O_NONBLOCK` to suit the current loop's driver.
fn set_mode(fd: RawFd) -> io::Result<()> {
    let nb = nonblocking()?;
    // SAFETY: plain fcntl on an fd the caller owns.
    let flags = syscall!(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let want = if nb {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if want != flags {
        // SAFETY: as above.
        syscall!(unsafe { libc::fcntl(fd, libc::F_SETFL, want) })?;
    }
    Ok(())
}
