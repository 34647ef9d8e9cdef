//! Socket calls that are not operations: create, options, names, bind,
//! listen, a datagram socket's default peer, close. They never block, so
//! they are plain calls rather than [`op`](crate::op)s, but like ops they
//! depend on the backend: under the simulator a socket is a *virtual* fd
//! ([`is_virtual_fd`]) that only the [`SimDriver`] knows.
//!
//! This module is the one place above the backends that tells the two
//! apart, so that the runtime calls every function here the same way
//! whatever its driver is:
//!
//! - each function takes the driver of the loop running on the calling
//!   thread, or `None` when there is none (no loop, another thread, the
//!   driver in use further up the stack);
//! - a kernel fd gets the system call, whatever the driver;
//! - a virtual fd gets the simulator's model of the call, or `EBADF` when
//!   `driver` is not a simulator (the fd outlived its simulation, or was
//!   handed to another thread): what the kernel says for an fd it does not
//!   know;
//! - [`socket`] makes a virtual socket when `driver` is a simulator and the
//!   simulator models the kind asked for (TCP and UDP over IPv4 and IPv6),
//!   and a kernel socket otherwise.
//!
//! [`close`] needs no driver: a kernel fd is closed at once, a virtual one
//! is closed by the simulator when the loop tells its driver the fd is gone
//! ([`Driver::release_fd`], which the runtime calls for every fd it closes
//! before it uses the driver again).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::Driver;
use crate::op::SockAddr;
use crate::sim::{SimDriver, is_virtual_fd};
use crate::sys::syscall;

/// The simulator that owns `fd`: `Ok(None)` for a kernel fd, `EBADF` for a
/// virtual fd when `driver` is not a simulator (see the module docs).
#[inline]
fn simulated(driver: Option<&mut Driver>, fd: RawFd) -> io::Result<Option<&mut SimDriver>> {
    if !is_virtual_fd(fd) {
        return Ok(None);
    }
    match driver.and_then(Driver::as_sim) {
        Some(sim) => Ok(Some(sim)),
        None => Err(io::Error::from_raw_os_error(libc::EBADF)),
    }
}

/// A new socket, close-on-exec: `socket(2)` with `family` (`AF_INET`,
/// `AF_INET6`, `AF_UNIX`) and `ty` (`SOCK_STREAM`, `SOCK_DGRAM`), and
/// `SOCK_NONBLOCK` if `nonblocking`. Under a simulator driver a TCP or UDP
/// socket is a virtual one (`nonblocking` does not apply to it); a Unix
/// socket is a kernel one there too.
///
/// # Errors
///
/// As `socket(2)`.
pub fn socket(
    driver: Option<&mut Driver>,
    family: i32,
    ty: i32,
    nonblocking: bool,
) -> io::Result<RawFd> {
    let ip = family == libc::AF_INET || family == libc::AF_INET6;
    let modelled = ty == libc::SOCK_STREAM || ty == libc::SOCK_DGRAM;
    if ip
        && modelled
        && let Some(sim) = driver.and_then(Driver::as_sim)
    {
        return Ok(sim.socket(ty == libc::SOCK_STREAM, family == libc::AF_INET6));
    }
    let flags = ty | libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain system call without pointers.
    syscall!(unsafe { libc::socket(family, flags, 0) })
}

/// `setsockopt(2)` for an `int` option. The simulator records the value
/// (for [`get_int_opt`]) and otherwise ignores it.
///
/// # Errors
///
/// As `setsockopt(2)`; `EBADF` as in the module docs.
pub fn set_int_opt(
    driver: Option<&mut Driver>,
    fd: RawFd,
    level: i32,
    name: i32,
    value: i32,
) -> io::Result<()> {
    if let Some(sim) = simulated(driver, fd)? {
        return sim.set_int_opt(fd, level, name, value);
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

/// `getsockopt(2)` for an `int` option. The simulator answers what was set,
/// else 0.
///
/// # Errors
///
/// As `getsockopt(2)`; `EBADF` as in the module docs.
pub fn get_int_opt(
    driver: Option<&mut Driver>,
    fd: RawFd,
    level: i32,
    name: i32,
) -> io::Result<i32> {
    if let Some(sim) = simulated(driver, fd)? {
        return sim.get_int_opt(fd, level, name);
    }
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: value/len are live locals of the sizes passed.
    syscall!(unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &raw mut len) })?;
    Ok(value)
}

/// `bind(2)` to an IP address (port 0: any free port).
///
/// # Errors
///
/// As `bind(2)`; `EBADF` as in the module docs.
pub fn bind(driver: Option<&mut Driver>, fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    if let Some(sim) = simulated(driver, fd)? {
        return sim.bind(fd, addr);
    }
    let a = SockAddr::from_std(addr);
    let (p, len) = a.as_ptr();
    // SAFETY: p/len describe `a`, alive for the call.
    syscall!(unsafe { libc::bind(fd, p, len) }).map(drop)
}

/// `listen(2)`. The simulator has no backlog limit and ignores `backlog`.
///
/// # Errors
///
/// As `listen(2)`; `EBADF` as in the module docs.
pub fn listen(driver: Option<&mut Driver>, fd: RawFd, backlog: i32) -> io::Result<()> {
    if let Some(sim) = simulated(driver, fd)? {
        return sim.listen(fd);
    }
    // SAFETY: plain system call.
    syscall!(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// `getsockname(2)` of an IP socket.
///
/// # Errors
///
/// As `getsockname(2)`; `InvalidData` if the address is not an IP one;
/// `EBADF` as in the module docs.
pub fn local_addr(driver: Option<&mut Driver>, fd: RawFd) -> io::Result<SocketAddr> {
    if let Some(sim) = simulated(driver, fd)? {
        return sim.local_addr(fd);
    }
    kernel_name(fd, false)
}

/// `getpeername(2)` of an IP socket.
///
/// # Errors
///
/// As `getpeername(2)`; `InvalidData` if the address is not an IP one;
/// `EBADF` as in the module docs.
pub fn peer_addr(driver: Option<&mut Driver>, fd: RawFd) -> io::Result<SocketAddr> {
    if let Some(sim) = simulated(driver, fd)? {
        return sim.peer_addr(fd);
    }
    kernel_name(fd, true)
}

/// `getsockname(2)` or (`peer`) `getpeername(2)` of a kernel fd.
fn kernel_name(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
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
    a.as_std().ok_or_else(not_ip)
}

fn not_ip() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address")
}

/// `connect(2)` on a datagram socket: it never blocks, it only sets the
/// default peer (and filters what is received). `to` may be any address
/// family the socket takes; a virtual socket takes IP addresses only.
///
/// # Errors
///
/// As `connect(2)`; `InvalidData` for a non-IP address on a virtual
/// socket; `EBADF` as in the module docs.
pub fn connect_dgram(driver: Option<&mut Driver>, fd: RawFd, to: &SockAddr) -> io::Result<()> {
    if let Some(sim) = simulated(driver, fd)? {
        return sim.connect_dgram(fd, to.as_std().ok_or_else(not_ip)?);
    }
    let (p, len) = to.as_ptr();
    // SAFETY: p/len describe `to`, alive for the call.
    syscall!(unsafe { libc::connect(fd, p, len) }).map(drop)
}

/// `fd` itself if it is a kernel fd, which code outside coil can use (the
/// runtime's `into_std` conversions).
///
/// # Errors
///
/// `Unsupported` for a simulator socket: only its simulator knows it.
pub fn kernel_fd(fd: RawFd) -> io::Result<RawFd> {
    if is_virtual_fd(fd) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a simulator socket has no kernel fd to hand out",
        ));
    }
    Ok(fd)
}

/// Closes `fd`: `close(2)` for a kernel fd. A virtual fd is left to the
/// simulator, which closes it when told with [`Driver::release_fd`] (the
/// caller tells the driver of every fd it closes, as it must for epoll).
/// Errors are ignored, as by `std`'s `OwnedFd`.
///
/// # Safety
///
/// The caller owns `fd` and neither it nor anyone else uses the number
/// afterwards (no operation on it is pending).
#[inline]
pub unsafe fn close(fd: RawFd) {
    if is_virtual_fd(fd) {
        return;
    }
    // SAFETY: the caller's promise: `fd` is ours and no longer used.
    unsafe { libc::close(fd) };
}
