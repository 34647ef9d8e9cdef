//! Socket operations: accept, connect, recv, send, shutdown.
//!
//! Sockets used with io_uring are blocking (io_uring honours `O_NONBLOCK` and
//! would complete with `EAGAIN`); sockets used with epoll are non-blocking.
//! The op layer above creates them accordingly. Sends always pass
//! `MSG_NOSIGNAL`: a peer that went away gives `EPIPE`, never SIGPIPE.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{OpCode, Readiness, SimOp};
use crate::buf::{IoBuf, IoBufMut};
use crate::pbuf::{BufRing, PooledBuf};
use crate::sys::syscall;

/// A socket address in the kernel's format, owned (so an in-flight op can
/// point at it).
#[derive(Clone, Copy)]
pub struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl std::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_std() {
            Some(a) => write!(f, "SockAddr({a})"),
            None => write!(f, "SockAddr(family {})", self.storage.ss_family),
        }
    }
}

impl SockAddr {
    /// Room for any address, length set to the full storage (for accept).
    pub fn empty() -> SockAddr {
        SockAddr {
            // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
            storage: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// From a std address (IPv4 or IPv6).
    pub fn from_std(addr: SocketAddr) -> SockAddr {
        let mut s = SockAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_in fits in sockaddr_storage, which is
                // suitably aligned for any sockaddr type.
                unsafe { std::ptr::write((&raw mut s.storage).cast(), sin) };
                s.len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe { std::ptr::write((&raw mut s.storage).cast(), sin6) };
                s.len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        s
    }

    /// As a std address, if it is IPv4 or IPv6.
    pub fn as_std(&self) -> Option<SocketAddr> {
        match i32::from(self.storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin: libc::sockaddr_in =
                    unsafe { std::ptr::read((&raw const self.storage).cast()) };
                let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6: libc::sockaddr_in6 =
                    unsafe { std::ptr::read((&raw const self.storage).cast()) };
                let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// Pointer and length for system calls.
    pub fn as_ptr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        ((&raw const self.storage).cast(), self.len)
    }

    /// Pointers for calls that fill an address in (accept, getsockname).
    pub fn as_mut_ptr(&mut self) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        ((&raw mut self.storage).cast(), &raw mut self.len)
    }
}

/// The spare capacity of `buf` (`bytes_init..bytes_total`) as a pointer and
/// a length: where a read may write, valid for writes while `buf` is
/// borrowed and does not move (the IoBufMut contract).
#[inline]
pub(crate) fn spare_ptr<B: IoBufMut>(buf: &mut B) -> (*mut u8, usize) {
    let init = buf.bytes_init();
    let len = buf.bytes_total() - init;
    // SAFETY: `init <= bytes_total` (IoBufMut contract): stays inside the
    // allocation.
    (unsafe { buf.stable_mut_ptr().add(init) }, len)
}

/// The spare capacity of `buf` (`bytes_init..bytes_total`), for the simulator.
pub(crate) fn spare_capacity<B: IoBufMut>(buf: &mut B) -> &mut [std::mem::MaybeUninit<u8>] {
    let (ptr, len) = spare_ptr(buf);
    // SAFETY: the IoBufMut contract: the spare capacity is valid for writes
    // while `buf` is borrowed. The memory may be uninitialised, hence
    // MaybeUninit.
    unsafe { std::slice::from_raw_parts_mut(ptr.cast(), len) }
}

/// The initialised bytes of `buf`, for the simulator.
pub(crate) fn init_bytes<B: IoBuf>(buf: &B) -> &[u8] {
    // SAFETY: the IoBuf contract: `stable_ptr` points at `bytes_init`
    // initialised bytes, valid while `buf` is borrowed.
    unsafe { std::slice::from_raw_parts(buf.stable_ptr(), buf.bytes_init()) }
}

/// Accept a connection. The result is the new fd (`O_CLOEXEC`, plus
/// `O_NONBLOCK` when `nonblocking`); `addr` holds the peer's address.
#[derive(Debug)]
pub struct Accept {
    /// The listening socket.
    pub fd: RawFd,
    /// Filled with the peer address.
    pub addr: SockAddr,
    /// Create the accepted socket non-blocking (epoll).
    pub nonblocking: bool,
}

impl Accept {
    /// Accept on `fd`.
    pub fn new(fd: RawFd, nonblocking: bool) -> Accept {
        Accept {
            fd,
            addr: SockAddr::empty(),
            nonblocking,
        }
    }

    fn flags(&self) -> i32 {
        libc::SOCK_CLOEXEC
            | if self.nonblocking {
                libc::SOCK_NONBLOCK
            } else {
                0
            }
    }
}

// SAFETY: the entry points at `self.addr`, which lives as long as `self`.
unsafe impl OpCode for Accept {
    fn uring_entry(&mut self) -> squeue::Entry {
        let flags = self.flags();
        let (addr, len) = self.addr.as_mut_ptr();
        opcode::Accept::new(types::Fd(self.fd), addr, len)
            .flags(flags)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Readable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        let flags = self.flags();
        let (addr, len) = self.addr.as_mut_ptr();
        // SAFETY: addr/len point into self.addr, sized for any address.
        let fd = syscall!(unsafe { libc::accept4(self.fd, addr, len, flags) })?;
        Ok(fd as usize)
    }

    fn sim(&mut self) -> Option<SimOp<'_>> {
        Some(SimOp::Accept {
            fd: self.fd,
            peer: &mut self.addr,
        })
    }
}

/// Connect a socket to `addr`.
#[derive(Debug)]
pub struct Connect {
    /// The socket.
    pub fd: RawFd,
    /// Where to.
    pub addr: SockAddr,
    /// epoll: `connect` returned `EINPROGRESS`; the next perform checks the outcome.
    started: bool,
}

impl Connect {
    /// Connect `fd` to `addr`.
    pub fn new(fd: RawFd, addr: SocketAddr) -> Connect {
        Connect {
            fd,
            addr: SockAddr::from_std(addr),
            started: false,
        }
    }
}

// SAFETY: the entry points at `self.addr`, which lives as long as `self`.
unsafe impl OpCode for Connect {
    fn uring_entry(&mut self) -> squeue::Entry {
        let (addr, len) = self.addr.as_ptr();
        opcode::Connect::new(types::Fd(self.fd), addr, len).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Writable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        if !self.started {
            let (addr, len) = self.addr.as_ptr();
            // SAFETY: addr/len describe self.addr.
            return match syscall!(unsafe { libc::connect(self.fd, addr, len) }) {
                Ok(_) => Ok(0),
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    self.started = true;
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            };
        }
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: err/len are live locals of the sizes given.
        syscall!(unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut err).cast(),
                &raw mut len,
            )
        })?;
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
        // Writable without an error can still mean "not yet" (a spurious
        // wakeup): confirm with getpeername.
        let mut peer = SockAddr::empty();
        let (addr, alen) = peer.as_mut_ptr();
        // SAFETY: addr/alen point into `peer`.
        match syscall!(unsafe { libc::getpeername(self.fd, addr, alen) }) {
            Ok(_) => Ok(0),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            Err(e) => Err(e),
        }
    }

    fn sim(&mut self) -> Option<SimOp<'_>> {
        Some(SimOp::Connect {
            fd: self.fd,
            addr: self.addr.as_std(),
        })
    }
}

/// Receive into the spare capacity of `buf`, on a **stream** socket (TCP,
/// Unix stream). Under epoll a read that fills less than its room is taken to
/// have emptied the receive queue ([`OpCode::drained`]), so the next read
/// waits for an event instead of trying a system call bound to fail; on a
/// datagram socket that would be wrong (use [`RecvMsg`](super::RecvMsg)).
#[derive(Debug)]
pub struct Recv<B> {
    /// The socket.
    pub fd: RawFd,
    /// Destination; its spare capacity is filled.
    pub buf: B,
}

// SAFETY: the entry points at `buf`'s spare capacity (IoBufMut contract).
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = spare_ptr(&mut self.buf);
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        opcode::Recv::new(types::Fd(self.fd), ptr, len).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Readable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        let (ptr, len) = spare_ptr(&mut self.buf);
        let ptr = ptr.cast();
        // SAFETY: ptr/len describe writable memory owned by `buf`.
        let n = syscall!(unsafe { crate::sys::recv(self.fd, ptr, len, libc::MSG_DONTWAIT) })?;
        Ok(n as usize)
    }

    /// Stream sockets only (the op layer uses `Recv` for TCP and Unix
    /// streams; datagrams go through `RecvMsg`): a read of `0 < n < room`
    /// emptied the receive queue. `n == 0` is end of stream, which stays
    /// readable.
    fn drained(&self, n: usize) -> bool {
        n > 0 && n < self.buf.bytes_total() - self.buf.bytes_init()
    }

    fn sim(&mut self) -> Option<SimOp<'_>> {
        Some(SimOp::Recv {
            fd: self.fd,
            buf: spare_capacity(&mut self.buf),
        })
    }
}

/// Send the initialised bytes of `buf` (with `MSG_NOSIGNAL`).
#[derive(Debug)]
pub struct Send<B> {
    /// The socket.
    pub fd: RawFd,
    /// Source.
    pub buf: B,
}

// SAFETY: the entry points at `buf`'s initialised bytes (IoBuf contract).
unsafe impl<B: IoBuf> OpCode for Send<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init()).unwrap_or(u32::MAX);
        opcode::Send::new(types::Fd(self.fd), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Writable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        let (ptr, len) = (self.buf.stable_ptr().cast(), self.buf.bytes_init());
        // SAFETY: ptr/len describe initialised memory owned by `buf`.
        let n = syscall!(unsafe {
            crate::sys::send(self.fd, ptr, len, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
        })?;
        Ok(n as usize)
    }

    fn sim(&mut self) -> Option<SimOp<'_>> {
        Some(SimOp::Send {
            fd: self.fd,
            buf: init_bytes(&self.buf),
        })
    }
}

/// Shut down one or both directions of a socket.
#[derive(Debug)]
pub struct Shutdown {
    /// The socket.
    pub fd: RawFd,
    /// `libc::SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`.
    pub how: i32,
}

// SAFETY: the entry holds no pointers.
unsafe impl OpCode for Shutdown {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Shutdown::new(types::Fd(self.fd), self.how).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Immediate
    }

    fn perform(&mut self) -> io::Result<usize> {
        // SAFETY: plain system call on an fd number.
        syscall!(unsafe { libc::shutdown(self.fd, self.how) }).map(|_| 0)
    }

    fn sim(&mut self) -> Option<SimOp<'_>> {
        Some(SimOp::Shutdown {
            fd: self.fd,
            how: self.how,
        })
    }
}

/// Receive into a buffer of the loop's pool ([`BufRing`], `pbuf.rs`) on a
/// **stream** socket, holding no buffer while it waits: under io_uring with the
/// pool registered, a recv with `IOSQE_BUFFER_SELECT` (the kernel picks the
/// buffer when data arrives); under epoll, a buffer is taken from the pool only
/// once the socket is ready, and given back if the call finds nothing; under
/// io_uring without a registered pool and in the simulator, one is taken at
/// submission. With no buffer free the op completes with `ENOBUFS`
/// (the caller falls back to a plain read). [`RecvPooled::filled`] turns the
/// completion into the buffer.
#[derive(Debug)]
pub struct RecvPooled {
    /// The socket.
    pub fd: RawFd,
    ring: BufRing,
    /// A buffer lent to this op (`pbuf.rs` state 3).
    lent: Option<u16>,
    /// No buffer was free at submission: the entry is a NOP and the result
    /// `ENOBUFS`.
    starved: bool,
}

impl RecvPooled {
    /// Receive on `fd` into a buffer of `ring`.
    pub fn new(fd: RawFd, ring: BufRing) -> RecvPooled {
        RecvPooled {
            fd,
            ring,
            lent: None,
            starved: false,
        }
    }

    /// Lends a buffer to the op if it has none; false if the pool is empty.
    fn lend(&mut self) -> bool {
        if self.lent.is_none() {
            self.lent = self.ring.take();
        }
        self.lent.is_some()
    }

    /// The result of the op's completion: the buffer holding the `n` bytes of
    /// `res` (with `flags`, the completion's CQE flags), an empty one at end of
    /// stream, or the error (`ENOBUFS`: the pool had no buffer).
    pub fn filled(&mut self, res: io::Result<usize>, flags: u32) -> io::Result<PooledBuf> {
        let bid = io_uring::cqueue::buffer_select(flags).or_else(|| self.lent.take());
        let n = match res {
            Ok(_) if self.starved => return Err(io::Error::from_raw_os_error(libc::ENOBUFS)),
            Ok(n) => n,
            Err(e) => {
                if let Some(bid) = bid {
                    // SAFETY: the completion handed `bid` over; nothing was written.
                    drop(unsafe { self.ring.claim(bid, 0) });
                }
                return Err(e);
            }
        };
        match bid {
            // SAFETY: the completion reports `n` bytes written into `bid`, which
            // it picked (state 2) or which this op held (state 3), taken once here.
            Some(bid) => Ok(unsafe { self.ring.claim(bid, n) }).map(|b| {
                if n == 0 {
                    PooledBuf::from_vec(Vec::new()) // `b` drops: back to the pool
                } else {
                    b
                }
            }),
            None => Ok(PooledBuf::from_vec(Vec::new())), // end of stream, nothing picked
        }
    }
}

impl Drop for RecvPooled {
    /// A buffer still lent (the op was never performed, or failed) goes back.
    /// The op layer frees an op only after its completion (or leaks it).
    fn drop(&mut self) {
        if let Some(bid) = self.lent.take() {
            self.ring.put_back(bid);
        }
    }
}

// SAFETY: the entry points at the lent buffer, kept alive by `ring` (held by
// the op) and written by no one else while lent; a buffer-select entry holds
// no pointer (the kernel picks from the registered pool, alive while the op
// holds `ring`).
unsafe impl OpCode for RecvPooled {
    fn uring_entry(&mut self) -> squeue::Entry {
        let size = self.ring.buf_size();
        if self.ring.is_registered() {
            return opcode::Recv::new(types::Fd(self.fd), std::ptr::null_mut(), size)
                .buf_group(self.ring.bgid())
                .build()
                .flags(squeue::Flags::BUFFER_SELECT);
        }
        if !self.lend() {
            self.starved = true;
            return opcode::Nop::new().build();
        }
        let bid = self.lent.expect("lent above");
        opcode::Recv::new(types::Fd(self.fd), self.ring.buf_ptr(bid), size).build()
    }

    fn readiness(&self) -> Readiness {
        Readiness::Readable(self.fd)
    }

    fn perform(&mut self) -> io::Result<usize> {
        if !self.lend() {
            return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
        }
        let bid = self.lent.expect("lent above");
        let (ptr, len) = (self.ring.buf_ptr(bid), self.ring.buf_size() as usize);
        // SAFETY: the lent buffer, writable for its size, held by this op alone.
        let r = syscall!(unsafe { crate::sys::recv(self.fd, ptr.cast(), len, libc::MSG_DONTWAIT) });
        match r {
            Ok(n) => Ok(n as usize),
            Err(e) => {
                // Nothing read (WouldBlock: wait holding no buffer).
                self.ring.put_back(bid);
                self.lent = None;
                Err(e)
            }
        }
    }

    fn drained(&self, n: usize) -> bool {
        n > 0 && n < self.ring.buf_size() as usize
    }

    fn sim(&mut self) -> Option<SimOp<'_>> {
        if !self.lend() {
            self.starved = true;
            return Some(SimOp::Nop);
        }
        let bid = self.lent.expect("lent above");
        let len = self.ring.buf_size() as usize;
        // SAFETY: the lent buffer, writable for its size, held by this op alone
        // while the simulator fills it; MaybeUninit since it may be uninitialised.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.ring.buf_ptr(bid).cast(), len) };
        Some(SimOp::Recv { fd: self.fd, buf })
    }
}
