//! The simulator's in-memory network: virtual sockets (TCP listeners and
//! streams, UDP), addresses and ports, and bytes in transit.
//!
//! Streams are reliable and ordered: a segment's arrival time is never before
//! the previous segment's on the same direction, so random latencies reorder
//! completions but never bytes. Datagrams are not ordered (each has its own
//! latency), as on a real network. Each direction holds at most
//! [`STREAM_WINDOW`] bytes (received but unread plus in transit); a send
//! waits while the window is full.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::time::Duration;

use super::VIRTUAL_FD_BASE;

/// Bytes one stream direction holds before sends wait.
pub const STREAM_WINDOW: usize = 64 * 1024;
/// Datagrams a UDP socket queues before it drops new ones.
pub const DGRAM_QUEUE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

#[derive(Debug)]
pub(crate) enum State {
    /// A fresh socket (maybe bound).
    Idle,
    /// A TCP listener: connections ready to accept (their server-side fds).
    Listening { backlog: VecDeque<RawFd> },
    /// A connected TCP stream.
    Stream(Stream),
    /// A UDP socket.
    Dgram(Dgram),
}

#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// The other end (`None` once it is closed).
    pub(crate) peer_fd: Option<RawFd>,
    pub(crate) peer_addr: Option<SocketAddr>,
    /// Arrived, unread.
    pub(crate) rx: VecDeque<u8>,
    /// Bytes on their way to this socket.
    pub(crate) in_transit: usize,
    /// The arrival time of the last segment scheduled to this socket.
    pub(crate) last_arrival: Duration,
    /// The peer's FIN arrived: after `rx`, end of stream.
    pub(crate) rx_fin: bool,
    pub(crate) reset: bool,
    pub(crate) wr_shut: bool,
    pub(crate) rd_shut: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Dgram {
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) rx: VecDeque<(Vec<u8>, SocketAddr)>,
}

#[derive(Debug)]
pub(crate) struct Socket {
    pub(crate) proto: Proto,
    pub(crate) v6: bool,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) state: State,
    /// Socket options set with setsockopt (read back by getsockopt).
    pub(crate) opts: BTreeMap<(i32, i32), i32>,
}

/// A timed network event.
#[derive(Debug)]
pub(crate) enum Event {
    /// Stream bytes reach `to`.
    Arrive { to: RawFd, bytes: Vec<u8> },
    /// The peer of `to` will send nothing more.
    Fin { to: RawFd },
    /// A connection `server` (server side) reaches `listener`'s backlog.
    Backlog { listener: RawFd, server: RawFd },
    /// A datagram reaches `to`.
    Datagram {
        to: RawFd,
        bytes: Vec<u8>,
        from: SocketAddr,
    },
}

/// The socket table and the address space.
#[derive(Debug, Default)]
pub(crate) struct Net {
    pub(crate) sockets: BTreeMap<RawFd, Socket>,
    /// Bound ports: (protocol, port) -> socket.
    ports: BTreeMap<(Proto, u16), RawFd>,
    next_fd: i32,
    next_port: u16,
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl Net {
    pub(crate) fn new(first_port: u16) -> Net {
        Net {
            next_fd: VIRTUAL_FD_BASE,
            next_port: first_port,
            ..Net::default()
        }
    }

    pub(crate) fn socket(&mut self, proto: Proto, v6: bool) -> RawFd {
        let fd = self.next_fd;
        self.next_fd += 1;
        let state = match proto {
            Proto::Tcp => State::Idle,
            Proto::Udp => State::Dgram(Dgram::default()),
        };
        self.sockets.insert(
            fd,
            Socket {
                proto,
                v6,
                local: None,
                state,
                opts: BTreeMap::new(),
            },
        );
        fd
    }

    pub(crate) fn get(&mut self, fd: RawFd) -> io::Result<&mut Socket> {
        self.sockets.get_mut(&fd).ok_or_else(|| errno(libc::EBADF))
    }

    fn ephemeral(&mut self, proto: Proto) -> u16 {
        loop {
            let p = self.next_port;
            self.next_port = if p >= 60_999 { 32_768 } else { p + 1 };
            if !self.ports.contains_key(&(proto, p)) {
                return p;
            }
        }
    }

    pub(crate) fn bind(&mut self, fd: RawFd, addr: SocketAddr) -> io::Result<()> {
        let s = self.get(fd)?;
        if s.local.is_some() {
            return Err(errno(libc::EINVAL));
        }
        if s.v6 != addr.is_ipv6() {
            return Err(errno(libc::EAFNOSUPPORT));
        }
        let proto = s.proto;
        let port = match addr.port() {
            0 => self.ephemeral(proto),
            p if self.ports.contains_key(&(proto, p)) => return Err(errno(libc::EADDRINUSE)),
            p => p,
        };
        self.ports.insert((proto, port), fd);
        self.get(fd)?.local = Some(SocketAddr::new(addr.ip(), port));
        Ok(())
    }

    /// Bind to an ephemeral port on loopback if unbound (connect, send).
    pub(crate) fn autobind(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        let s = self.get(fd)?;
        if let Some(a) = s.local {
            return Ok(a);
        }
        let ip = if s.v6 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        self.bind(fd, SocketAddr::new(ip, 0))?;
        Ok(self.get(fd)?.local.expect("just bound"))
    }

    pub(crate) fn listen(&mut self, fd: RawFd) -> io::Result<()> {
        if self.get(fd)?.proto != Proto::Tcp {
            return Err(errno(libc::EOPNOTSUPP));
        }
        self.autobind(fd)?;
        let s = self.get(fd)?;
        match s.state {
            State::Idle => {
                s.state = State::Listening {
                    backlog: VecDeque::new(),
                };
                Ok(())
            }
            State::Listening { .. } => Ok(()),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// The socket bound to `addr`'s port for `proto` whose address accepts
    /// `addr` (same IP, or bound to the unspecified address).
    pub(crate) fn lookup(&self, proto: Proto, addr: SocketAddr) -> Option<RawFd> {
        let fd = *self.ports.get(&(proto, addr.port()))?;
        let local = self.sockets.get(&fd)?.local?;
        (local.ip() == addr.ip() || local.ip().is_unspecified()).then_some(fd)
    }

    pub(crate) fn local_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        let s = self.get(fd)?;
        Ok(s.local.unwrap_or_else(|| {
            if s.v6 {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
            } else {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
            }
        }))
    }

    pub(crate) fn peer_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        match &self.get(fd)?.state {
            State::Stream(s) => s.peer_addr.ok_or_else(|| errno(libc::ENOTCONN)),
            State::Dgram(d) => d.peer.ok_or_else(|| errno(libc::ENOTCONN)),
            _ => Err(errno(libc::ENOTCONN)),
        }
    }

    /// Remove a socket, returning it (the caller tells its peer).
    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<Socket> {
        let s = self.sockets.remove(&fd)?;
        if let Some(local) = s.local
            && self.ports.get(&(s.proto, local.port())) == Some(&fd)
        {
            self.ports.remove(&(s.proto, local.port()));
        }
        Some(s)
    }

    pub(crate) fn stream(&mut self, fd: RawFd) -> Option<&mut Stream> {
        match &mut self.sockets.get_mut(&fd)?.state {
            State::Stream(s) => Some(s),
            _ => None,
        }
    }
}
