//! Socket creation, options, names, bind and listen: calls that never
//! block, so they are not ops. Each one hands the running loop's driver
//! (`rt::with_driver`) to `coil_arch::sock`, which makes the system call or,
//! for a simulator socket, asks the simulator: this file is the same for
//! every backend. Also the helpers of `net`: `syscall!`, `socket_traits!`
//! (`AsRawFd`, `AsFd`, `Debug`), `std_conversions!` (`into_std`,
//! `FromRawFd`, `IntoRawFd`), and the typed socket options (flags, sizes,
//! linger, device) the socket types share.

use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

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

/// `AsRawFd`, `AsFd` and `Debug` (the fd and one address, `$addr` being the
/// method that gives it) for a socket type whose `$inner` field has a
/// `raw()` fd.
macro_rules! socket_traits {
    ($ty:ident, $inner:ident, $addr:ident) => {
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                // SAFETY: the fd stays open while `self` lives (it is closed
                // only when its last owner drops). A simulator socket's number
                // (>= 2^30) is never a kernel fd: calls on it fail with EBADF.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(self.$inner.raw()) }
            }
        }

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

/// The conversions to and from the standard library for a socket type
/// `$ty` whose only field `$inner` has `raw()` and `into_raw(prepare)` (which
/// gives the field back with the error) and which has a
/// `from_std(std) -> io::Result<Self>`: `into_std`, `FromRawFd`,
/// `IntoRawFd`.
macro_rules! std_conversions {
    ($ty:ident, $inner:ident, $std:ty) => {
        impl $ty {
            #[doc = concat!(" Turns this into a `", stringify!($std), "` in blocking mode (as std")]
            /// makes sockets); the loop forgets the fd and no longer closes it.
            ///
            /// # Errors
            ///
            /// The socket comes back unchanged inside the
            /// [`IntoStdError`](crate::net::IntoStdError) (nothing is closed or
            /// lost; `?` turns the error into an `io::Error` and drops the
            /// socket): `WouldBlock` while an operation is still in flight on
            /// the socket (a dropped read the kernel has not finished yet: let
            /// the loop run, for example `yield_now().await`, and try again) or
            /// a split half still holds it; `InvalidData` while data a
            /// cancelled receive or accept delivered is kept for the next one
            /// (it would be lost: read it first); `Unsupported` for a simulator
            /// socket, which has no kernel fd.
            pub fn into_std(self) -> Result<$std, $crate::net::IntoStdError<Self>> {
                match self.$inner.into_raw($crate::net::socket::make_blocking) {
                    Ok(fd) => Ok($crate::net::socket::release(fd)),
                    Err((inner, error)) => Err($crate::net::IntoStdError::new(
                        Self { $inner: inner },
                        error,
                    )),
                }
            }
        }

        /// Adopts an fd as [`from_std`](Self::from_std) does.
        ///
        /// # Panics
        ///
        /// Outside a running loop, or if `fcntl` fails.
        impl std::os::fd::FromRawFd for $ty {
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
                // SAFETY: the caller's promise: `fd` is an open socket of
                // this kind that it owns.
                let sock = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                Self::from_std(sock).expect(concat!(stringify!($ty), "::from_raw_fd"))
            }
        }

        /// Gives the fd up as [`into_std`](Self::into_std) does.
        ///
        /// # Panics
        ///
        /// Where `into_std` fails.
        impl std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                let sock = self
                    .into_std()
                    .expect(concat!(stringify!($ty), "::into_raw_fd"));
                std::os::fd::IntoRawFd::into_raw_fd(sock)
            }
        }
    };
}
pub(crate) use std_conversions;

/// Runs `f` on `fd` seen as the std socket `T`, without taking it (`fd`
/// must stay open for the call: the caller holds its owner).
pub(crate) fn with_std<T: FromRawFd, R>(fd: RawFd, f: impl FnOnce(&T) -> R) -> R {
    // SAFETY: `fd` is a live socket owned by a SharedFd that outlives this
    // call; ManuallyDrop keeps the std value from closing it.
    let s = ManuallyDrop::new(unsafe { T::from_raw_fd(fd) });
    f(&s)
}

/// Puts a socket the loop is giving up back in blocking mode, as std makes
/// them (the `prepare` step of `SharedFd::into_raw`).
pub(crate) fn make_blocking(fd: RawFd) -> io::Result<()> {
    set_nonblocking(fd, false)
}

/// The std socket for `fd`, which the loop has given up.
pub(crate) fn release<T: From<OwnedFd>>(fd: RawFd) -> T {
    // SAFETY: `SharedFd::into_raw` handed the caller sole ownership of the
    // open fd (the loop forgot it and nothing else holds it).
    T::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Why [`TcpStream::into_std`](crate::net::TcpStream::into_std) (and the
/// other sockets' `into_std`) could not give the socket up, with the socket
/// itself, unchanged and still the loop's: nothing was closed.
///
/// `?` in a function returning `io::Result` converts it into its
/// [`io::Error`] (dropping, so closing, the socket); [`into_parts`] keeps
/// both.
///
/// ```
/// # coil::run(async {
/// let socket = coil::net::UdpSocket::bind("127.0.0.1:0")?;
/// let std_socket = match socket.into_std() {
///     Ok(s) => s,
///     Err(e) => {
///         eprintln!("cannot convert yet: {}", e.error());
///         let _socket = e.into_inner(); // still usable on the loop
///         return Ok(());
///     }
/// };
/// std_socket.set_nonblocking(false)?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
///
/// [`into_parts`]: IntoStdError::into_parts
pub struct IntoStdError<T> {
    socket: T,
    error: io::Error,
}

impl<T> IntoStdError<T> {
    pub(crate) fn new(socket: T, error: io::Error) -> Self {
        IntoStdError { socket, error }
    }

    /// Why the socket could not be given up.
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// The error's kind: `WouldBlock` (an operation in flight or a split
    /// half alive: try again after the loop ran), `InvalidData` (data kept
    /// from a cancelled read: read it first) or `Unsupported` (a simulator
    /// socket).
    pub fn kind(&self) -> io::ErrorKind {
        self.error.kind()
    }

    /// The socket, unchanged.
    pub fn into_inner(self) -> T {
        self.socket
    }

    /// The socket and the error.
    pub fn into_parts(self) -> (T, io::Error) {
        (self.socket, self.error)
    }
}

impl<T> std::fmt::Debug for IntoStdError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntoStdError")
            .field("socket", &std::any::type_name::<T>())
            .field("error", &self.error)
            .finish()
    }
}

impl<T> std::fmt::Display for IntoStdError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot turn the socket into a std one: {}", self.error)
    }
}

impl<T> std::error::Error for IntoStdError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<IntoStdError<T>> for io::Error {
    /// The error; the socket is dropped (closed).
    fn from(e: IntoStdError<T>) -> io::Error {
        e.error
    }
}

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
    set_nonblocking(fd, nonblocking()?)
}

/// Set (`nb`) or clear `O_NONBLOCK`.
fn set_nonblocking(fd: RawFd, nb: bool) -> io::Result<()> {
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

/// A value an `int` socket option holds: a flag or a count.
pub(crate) trait IntOpt: Sized {
    /// The `int` passed to `setsockopt` (`EINVAL` if it does not fit).
    fn to_int(self) -> io::Result<i32>;
    /// The value from what `getsockopt` gave.
    fn from_int(v: i32) -> Self;
}

impl IntOpt for bool {
    fn to_int(self) -> io::Result<i32> {
        Ok(i32::from(self))
    }
    fn from_int(v: i32) -> bool {
        v != 0
    }
}

impl IntOpt for u32 {
    fn to_int(self) -> io::Result<i32> {
        i32::try_from(self).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    }
    fn from_int(v: i32) -> u32 {
        v.max(0).cast_unsigned()
    }
}

/// Sets an `int` option to a flag or count (through the driver: the
/// simulator records it for a virtual socket).
pub(crate) fn set_int<T: IntOpt>(fd: RawFd, level: i32, name: i32, value: T) -> io::Result<()> {
    set_int_opt(fd, level, name, value.to_int()?)
}

/// Reads an `int` option as a flag or count.
pub(crate) fn get_int<T: IntOpt>(fd: RawFd, level: i32, name: i32) -> io::Result<T> {
    get_int_opt(fd, level, name).map(T::from_int)
}

/// `setsockopt(2)` with the bytes of `value` (a kernel socket).
fn set_opt<T: ?Sized>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of_val(value))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `value` is a live reference to `len` bytes.
    syscall!(unsafe { libc::setsockopt(fd, level, name, (&raw const *value).cast(), len) })
        .map(drop)
}

/// `getsockopt(2)` into `out` (a kernel socket); the length written.
///
/// # Safety
///
/// Any bytes are a valid `T` (plain integers: `libc::linger`, `[u8]`).
unsafe fn get_opt<T: ?Sized>(fd: RawFd, level: i32, name: i32, out: &mut T) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(size_of_val(out))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `out` is a live exclusive reference to `len` bytes; the
    // kernel writes at most that many, and (the caller's promise) any bytes
    // are a valid `T`.
    syscall!(unsafe { libc::getsockopt(fd, level, name, (&raw mut *out).cast(), &raw mut len) })?;
    Ok(len as usize)
}

/// Sets `SO_LINGER`: `None` off, `Some(d)` on with `d` in whole seconds
/// (`Some(ZERO)` makes close send a reset).
pub(crate) fn set_linger(fd: RawFd, linger: Option<Duration>) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: i32::from(linger.is_some()),
        l_linger: linger.map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX)),
    };
    set_opt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &l)
}

/// Reads `SO_LINGER`.
pub(crate) fn linger(fd: RawFd) -> io::Result<Option<Duration>> {
    let mut l = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    // SAFETY: `linger` is two ints: any bytes are valid.
    unsafe { get_opt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &mut l) }?;
    Ok((l.l_onoff != 0).then(|| Duration::from_secs(l.l_linger.max(0).cast_unsigned().into())))
}

/// `SO_BINDTODEVICE`: binds to the interface named `name` (`None` or empty
/// unbinds). Needs `CAP_NET_RAW` on most kernels: `EPERM` without it.
pub(crate) fn bind_device(fd: RawFd, name: Option<&[u8]>) -> io::Result<()> {
    set_opt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        name.unwrap_or_default(),
    )
}

/// Reads `SO_BINDTODEVICE`: the interface's name, `None` if unbound.
pub(crate) fn device(fd: RawFd) -> io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; libc::IFNAMSIZ];
    // SAFETY: bytes: any are valid.
    let len = unsafe { get_opt(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, &mut buf[..]) }?;
    let name = buf[..len].split(|&b| b == 0).next().unwrap_or_default();
    Ok((!name.is_empty()).then(|| name.to_vec()))
}

/// Getter and setter methods for `int` socket options (flags: `bool`,
/// counts: `u32`), for a socket type with `AsRawFd`. Each entry is the
/// setter's docs and name, then the getter's docs, name, type and
/// `(level, name)` in libc.
macro_rules! int_options {
    ($(
        $(#[$set_doc:meta])* fn $set:ident;
        $(#[$get_doc:meta])* fn $get:ident -> $ty:ty = ($level:ident, $name:ident);
    )*) => {$(
        $(#[$set_doc])*
        pub fn $set(&self, value: $ty) -> std::io::Result<()> {
            let fd = std::os::fd::AsRawFd::as_raw_fd(self);
            $crate::net::socket::set_int(fd, libc::$level, libc::$name, value)
        }

        $(#[$get_doc])*
        pub fn $get(&self) -> std::io::Result<$ty> {
            let fd = std::os::fd::AsRawFd::as_raw_fd(self);
            $crate::net::socket::get_int(fd, libc::$level, libc::$name)
        }
    )*};
}
pub(crate) use int_options;

/// The `SO_SNDBUF`/`SO_RCVBUF` methods, for a socket type with `AsRawFd`.
macro_rules! buffer_size_methods {
    () => {
        $crate::net::socket::int_options! {
            /// Sets `SO_SNDBUF`, the kernel's send buffer. Linux doubles the
            /// value (for its bookkeeping) and caps it at `net.core.wmem_max`;
            /// [`send_buffer_size`](Self::send_buffer_size) reads what it kept.
            fn set_send_buffer_size;
            /// `SO_SNDBUF`, as the kernel keeps it (twice what was set on Linux).
            fn send_buffer_size -> u32 = (SOL_SOCKET, SO_SNDBUF);

            /// Sets `SO_RCVBUF`, the kernel's receive buffer: datagrams that
            /// arrive while it is full are dropped. Linux doubles the value and
            /// caps it at `net.core.rmem_max`.
            fn set_recv_buffer_size;
            /// `SO_RCVBUF`, as the kernel keeps it (twice what was set on Linux).
            fn recv_buffer_size -> u32 = (SOL_SOCKET, SO_RCVBUF);
        }
    };
}
pub(crate) use buffer_size_methods;
