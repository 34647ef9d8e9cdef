//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`].
//!
//! The same op model as TCP and UDP (owned buffers, cancellation that loses
//! nothing) over `AF_UNIX`. Addresses are `std::os::unix::net::SocketAddr`:
//! a path, an abstract name (Linux: `SocketAddrExt::from_abstract_name`), or
//! unnamed (an unbound socket or one end of a `pair()`).

//!
//! This file holds what the three share: the conversions between
//! `sockaddr_un` and std's `SocketAddr`, and socket creation. Each type
//! lives in its own file: `listener.rs`, `stream.rs`, `datagram.rs`.

use std::ffi::OsStr;
use std::io;
use std::os::fd::RawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use coil_arch::op::SockAddr;

use super::socket::{nonblocking, syscall, with_std};

mod datagram;
mod listener;
mod stream;

pub use datagram::UnixDatagram;
pub use listener::UnixListener;
pub use stream::{UnixReadHalf, UnixStream, UnixWriteHalf};

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
