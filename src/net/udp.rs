//! [`UdpSocket`], and the datagram core it shares with `UnixDatagram`.
//!
//! **Cancellation loses nothing, for datagrams too.** A `recv_from` whose
//! future is dropped after the kernel already delivered a datagram into its
//! buffer keeps that datagram (bytes and sender) in the socket's queue; the
//! next receive returns it first, so no datagram is lost or reordered
//! (`op/fd.rs` rules 3 and 4, with a queue of whole datagrams instead of a
//! byte stash).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::rc::Rc;

use coil_arch::op::{self as kop, SockAddr};
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::ToSocketAddrs;
use super::socket::{self, nonblocking};
use crate::op::fd::SharedFd;
use crate::op::{Op, Operation};

/// A datagram socket's fd plus the datagrams cancelled receives delivered.
struct DgramInner {
    fd: SharedFd,
    stash: RefCell<VecDeque<(Box<[u8]>, SockAddr)>>,
}

/// The datagram core shared by UDP and Unix datagram sockets.
#[derive(Clone)]
pub(crate) struct Dgram(Rc<DgramInner>);

impl fmt::Debug for Dgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Dgram").field(&self.0.fd.raw()).finish()
    }
}

/// An op on a datagram socket, keeping the socket (fd and stash) alive.
struct DgramOp<T> {
    op: T,
    sock: Dgram,
}

crate::op::delegate_opcode!(DgramOp, sock.0.fd);

impl<B: IoBufMut> Operation for DgramOp<kop::RecvMsg<B>> {
    type Output = BufResult<(usize, SockAddr), B>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        let from = self.op.source();
        let mut buf = self.op.buf;
        // SAFETY: the kernel's answer to the `RecvMsg` of `buf`.
        unsafe { crate::op::mark_read(&mut buf, &res) };
        BufResult(res.map(|n| (n, from)), buf)
    }

    fn on_orphaned(&self) {
        self.sock.0.fd.orphan_begin();
    }

    /// A datagram received after the future was dropped is queued, whole,
    /// for the next receive (an empty datagram is a datagram too).
    fn complete_orphan(self, res: io::Result<usize>) {
        if let Ok(n) = res {
            // SAFETY: the kernel's answer to the `RecvMsg` of the buffer.
            let bytes = unsafe { crate::op::read_bytes(&self.op.buf, n) };
            self.sock
                .0
                .stash
                .borrow_mut()
                .push_back((bytes.into(), self.op.source()));
        }
        self.sock.0.fd.orphan_end();
    }
}

impl<B: IoBuf> Operation for DgramOp<kop::SendMsg<B>> {
    type Output = BufResult<usize, B>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        BufResult(res, self.op.buf)
    }
}

impl Dgram {
    pub(crate) fn new(fd: RawFd) -> Dgram {
        Dgram::from_shared(SharedFd::new(fd))
    }

    /// Takes ownership of a std datagram socket for the current loop (the
    /// `from_std` constructors; see `socket::adopt`).
    pub(crate) fn adopt(sock: impl std::os::fd::IntoRawFd) -> io::Result<Dgram> {
        Ok(Dgram::from_shared(socket::adopt(sock)?))
    }

    fn from_shared(fd: SharedFd) -> Dgram {
        Dgram(Rc::new(DgramInner {
            fd,
            stash: RefCell::default(),
        }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.fd.raw()
    }

    /// Gives the fd up (the `into_std` conversions; see
    /// `SharedFd::into_raw`): `InvalidData` while datagrams a cancelled
    /// receive delivered are kept, `WouldBlock` while a clone lives; on an
    /// error `self` comes back unchanged.
    pub(crate) fn into_raw(
        self,
        prepare: impl FnOnce(RawFd) -> io::Result<()>,
    ) -> Result<RawFd, (Dgram, io::Error)> {
        if !self.0.stash.borrow().is_empty() {
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                "a cancelled receive left datagrams on this socket; receive them first",
            );
            return Err((self, e));
        }
        let inner = match Rc::try_unwrap(self.0) {
            Ok(inner) => inner,
            Err(rc) => {
                let e = io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "an operation is still in flight on this socket; let the loop run (a \
                     dropped receive finishes or is cancelled) and try again",
                );
                return Err((Dgram(rc), e));
            }
        };
        let DgramInner { fd, stash } = inner;
        fd.into_raw(prepare)
            .map_err(|(fd, e)| (Dgram(Rc::new(DgramInner { fd, stash })), e))
    }

    /// Receives one datagram into `buf`'s spare capacity; queued datagrams
    /// (from cancelled receives) come first.
    pub(crate) async fn recv_from<B: IoBufMut>(
        &self,
        mut buf: B,
    ) -> BufResult<(usize, SockAddr), B> {
        if let Err(e) = self.0.fd.orphans_done().await {
            return BufResult(Err(e), buf);
        }
        if !self.0.stash.borrow().is_empty()
            && let Err(e) = self.0.fd.on_home_loop("a read of a kept datagram")
        {
            return BufResult(Err(e), buf); // the datagrams stay for its own loop
        }
        let queued = self.0.stash.borrow_mut().pop_front();
        if let Some((bytes, from)) = queued {
            let init = buf.bytes_init();
            let n = bytes.len().min(buf.bytes_total() - init);
            // SAFETY: n bytes fit in the spare capacity after `init`; the
            // source is a separate allocation.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.stable_mut_ptr().add(init), n);
                buf.set_init(init + n);
            }
            return BufResult(Ok((n, from)), buf);
        }
        Op::new(DgramOp {
            op: kop::RecvMsg::new(self.raw(), buf),
            sock: self.clone(),
        })
        .await
    }

    /// Sends `buf`'s initialised bytes as one datagram to `to` (`None`: the
    /// connected peer).
    pub(crate) async fn send_to<B: IoBuf>(
        &self,
        buf: B,
        to: Option<SockAddr>,
    ) -> BufResult<usize, B> {
        Op::new(DgramOp {
            op: kop::SendMsg::new(self.raw(), buf, to),
            sock: self.clone(),
        })
        .await
    }

    /// `connect(2)` on a datagram socket never blocks: it only records the
    /// default peer (and filters what is received).
    pub(crate) fn connect_raw(&self, to: &SockAddr) -> io::Result<()> {
        socket::connect_dgram(self.raw(), to)
    }
}

/// A new datagram socket of `family`, close-on-exec, non-blocking under epoll.
pub(crate) fn dgram_socket(family: i32) -> io::Result<RawFd> {
    socket::new_socket(family, libc::SOCK_DGRAM, nonblocking()?)
}

fn ip_addr(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_std()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}

fn literal(addr: impl ToSocketAddrs, what: &str) -> io::Result<Vec<SocketAddr>> {
    match addr.to_resolve() {
        super::Resolve::Ready(r) => r,
        super::Resolve::Lookup(name) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("UdpSocket::{what} takes a literal address; resolve {name:?} first"),
        )),
    }
}

/// A UDP socket: asyncio's `create_datagram_endpoint`, completion-based.
///
/// Receives take an owned buffer and fill its spare capacity
/// (`len..capacity`); sends send its initialised bytes. IPv4 and IPv6.
///
/// ```
/// use coil::io::BufResult;
/// use coil::net::UdpSocket;
///
/// coil::run(async {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     let BufResult(n, _) = a.send_to(&b"ping"[..], b.local_addr()?).await;
///     assert_eq!(n?, 4);
///     let BufResult(r, buf) = b.recv_from(Vec::with_capacity(64)).await;
///     let (n, from) = r?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    sock: Dgram,
}

impl UdpSocket {
    /// Binds to a **literal** address (`"127.0.0.1:0"`, `"[::1]:0"`, a
    /// `SocketAddr`); port 0 picks a free port. Tries each address in turn.
    ///
    /// # Errors
    ///
    /// The OS error (`EADDRINUSE`, ...), `InvalidInput` for a host name.
    /// Must be called inside a running loop.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in literal(addr, "bind")? {
            let family = if a.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            let sock = Dgram::new(dgram_socket(family)?);
            match socket::bind(sock.raw(), a) {
                Ok(()) => return Ok(UdpSocket { sock }),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Sends `buf`'s initialised bytes as one datagram to `target`; returns
    /// the count sent. `target` must be a literal address.
    ///
    /// # Errors
    ///
    /// The OS error (`EMSGSIZE`, `ENETUNREACH`, `ECONNREFUSED` after an ICMP
    /// error on a connected socket, ...).
    pub async fn send_to<B: IoBuf>(
        &self,
        buf: B,
        target: impl ToSocketAddrs,
    ) -> BufResult<usize, B> {
        let to = match literal(target, "send_to") {
            Ok(v) if !v.is_empty() => v[0],
            Ok(_) => {
                let e = io::Error::new(io::ErrorKind::InvalidInput, "no address to send to");
                return BufResult(Err(e), buf);
            }
            Err(e) => return BufResult(Err(e), buf),
        };
        self.sock.send_to(buf, Some(SockAddr::from_std(to))).await
    }

    /// Receives one datagram into `buf`'s spare capacity; returns its length
    /// and sender. A datagram longer than the room is truncated.
    ///
    /// Cancel-safe: a datagram the kernel delivered after this future was
    /// dropped is returned by the next receive.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let BufResult(r, buf) = self.sock.recv_from(buf).await;
        BufResult(r.and_then(|(n, a)| Ok((n, ip_addr(a)?))), buf)
    }

    /// Sets the default peer: [`send`](UdpSocket::send) goes there and only
    /// its datagrams are received. Never blocks.
    ///
    /// # Errors
    ///
    /// The OS error, `InvalidInput` for a host name.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let mut last = None;
        for a in literal(addr, "connect")? {
            match self.sock.connect_raw(&SockAddr::from_std(a)) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
        }))
    }

    /// Sends a datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `ENOTCONN`/`EDESTADDRREQ` if not connected; `ECONNREFUSED` if an
    /// earlier datagram drew an ICMP "port unreachable".
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.sock.send_to(buf, None).await
    }

    /// Receives a datagram from the connected peer (cancel-safe, as
    /// [`recv_from`](UdpSocket::recv_from)).
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.sock.recv_from(buf).await.map(|(n, _)| n)
    }

    /// The local address (the real port after binding 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(self.sock.raw())
    }

    /// The connected peer's address (`ENOTCONN` if not connected).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::peer_addr(self.sock.raw())
    }

    /// Adopts a socket made with the standard library (its blocking mode is
    /// set to what the loop's driver needs).
    ///
    /// # Errors
    ///
    /// Outside a running loop, or if `fcntl` fails; the socket is closed then.
    pub fn from_std(sock: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: Dgram::adopt(sock)?,
        })
    }

    socket::int_options! {
        /// Sets `SO_BROADCAST` (sending to a broadcast address is allowed).
        fn set_broadcast;
        /// Whether `SO_BROADCAST` is set.
        fn broadcast -> bool = (SOL_SOCKET, SO_BROADCAST);

        /// Sets `IP_TTL`, the time to live of the datagrams sent (IPv4).
        fn set_ttl;
        /// `IP_TTL`.
        fn ttl -> u32 = (IPPROTO_IP, IP_TTL);

        /// Sets `IP_MULTICAST_TTL`: how many hops a multicast datagram may
        /// take (1, the default, keeps it on the local network).
        fn set_multicast_ttl_v4;
        /// `IP_MULTICAST_TTL`.
        fn multicast_ttl_v4 -> u32 = (IPPROTO_IP, IP_MULTICAST_TTL);

        /// Sets `IP_MULTICAST_LOOP`: whether this host receives its own
        /// multicast datagrams (IPv4).
        fn set_multicast_loop_v4;
        /// `IP_MULTICAST_LOOP`.
        fn multicast_loop_v4 -> bool = (IPPROTO_IP, IP_MULTICAST_LOOP);

        /// Sets `IPV6_MULTICAST_LOOP` (IPv6 sockets).
        fn set_multicast_loop_v6;
        /// `IPV6_MULTICAST_LOOP`.
        fn multicast_loop_v6 -> bool = (IPPROTO_IPV6, IPV6_MULTICAST_LOOP);
    }

    socket::buffer_size_methods!();

    /// Joins the IPv4 multicast group `group` on the interface with address
    /// `interface` (`UNSPECIFIED`: the kernel picks one), `IP_ADD_MEMBERSHIP`.
    ///
    /// # Errors
    ///
    /// The OS error (`EINVAL` for an address that is not multicast, `ENODEV`
    /// without a route to the group, ...).
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        socket::with_std(self.sock.raw(), |s: &std::net::UdpSocket| {
            s.join_multicast_v4(&group, &interface)
        })
    }

    /// Leaves an IPv4 multicast group (`IP_DROP_MEMBERSHIP`).
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        socket::with_std(self.sock.raw(), |s: &std::net::UdpSocket| {
            s.leave_multicast_v4(&group, &interface)
        })
    }

    /// Joins the IPv6 multicast group `group` on the interface with index
    /// `interface` (0: the kernel picks one), `IPV6_ADD_MEMBERSHIP`.
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        socket::with_std(self.sock.raw(), |s: &std::net::UdpSocket| {
            s.join_multicast_v6(group, interface)
        })
    }

    /// Leaves an IPv6 multicast group (`IPV6_DROP_MEMBERSHIP`).
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        socket::with_std(self.sock.raw(), |s: &std::net::UdpSocket| {
            s.leave_multicast_v6(group, interface)
        })
    }
}

socket::socket_traits!(UdpSocket, sock, local_addr);
socket::std_conversions!(UdpSocket, sock, std::net::UdpSocket);
