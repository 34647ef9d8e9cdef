//! Socket creation and options: plain system calls (they never block).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use coil_arch::op::SockAddr;
use coil_arch::sim::is_virtual_fd;

use crate::op::fd::SharedFd;
use crate::rt::sim::socket_call;

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

/// A new TCP socket for `addr`'s family, close-on-exec.
pub(crate) fn tcp_socket(addr: &SocketAddr, nonblocking: bool) -> io::Result<RawFd> {
    // Under the simulator: a virtual socket (coil_arch::sim).
    if let Some(fd) = crate::rt::sim::with_driver(|d| d.socket(true, addr.is_ipv6())) {
        return Ok(fd);
    }
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let flags =
        libc::SOCK_STREAM | libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain system call without pointers.
    syscall!(unsafe { libc::socket(family, flags, 0) })
}

pub(crate) fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    if is_virtual_fd(fd) {
        return socket_call(|d| d.set_int_opt(fd, level, name, value));
    }
    // SAFETY: `value` is a live local of the size passed.
    syscall!(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

pub(crate) fn get_int_opt(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    if is_virtual_fd(fd) {
        return socket_call(|d| d.get_int_opt(fd, level, name));
    }
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: value/len are live locals of the sizes passed.
    syscall!(unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &raw mut len) })?;
    Ok(value)
}

pub(crate) fn bind(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    if is_virtual_fd(fd) {
        return socket_call(|d| d.bind(fd, addr));
    }
    let a = SockAddr::from_std(addr);
    let (p, len) = a.as_ptr();
    // SAFETY: p/len describe `a`, alive for the call.
    syscall!(unsafe { libc::bind(fd, p, len) }).map(drop)
}

pub(crate) fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    if is_virtual_fd(fd) {
        return socket_call(|d| d.listen(fd));
    }
    // SAFETY: plain system call.
    syscall!(unsafe { libc::listen(fd, backlog) }).map(drop)
}

fn name(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
    if is_virtual_fd(fd) {
        return socket_call(|d| {
            if peer {
                d.peer_addr(fd)
            } else {
                d.local_addr(fd)
            }
        });
    }
    let mut a = SockAddr::empty();
    let (p, len) = a.as_mut_ptr();
    // SAFETY: p/len point into `a`, sized for any address.
    syscall!(unsafe {
        if peer {
            libc::getpeername(fd, p, len)
        } else {
            libc::getsockname(fd, p, len)
        }
    })?;
    a.as_std()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}

pub(crate) fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    name(fd, false)
}

pub(crate) fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    name(fd, true)
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
