//! The network model: what each simulated operation (accept, connect, recv, send,
//! datagrams, shutdown) and each network event (a segment, a FIN, a connection reaching
//! the backlog) does to the virtual sockets of [`net`](super::net), with the seeded faults.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::net::{self, Event, Proto, STREAM_WINDOW, State, Stream};
use super::{Attempt, SimDriver, err, io_err};
use crate::op::SockAddr;

impl SimDriver {
    pub(super) fn deliver(&mut self, ev: Event) {
        match ev {
            Event::Arrive { to, bytes } => {
                if let Some(s) = self.net.stream(to) {
                    s.in_transit -= bytes.len();
                    if !s.reset {
                        s.rx.extend(bytes);
                    }
                }
            }
            Event::Fin { to } => {
                if let Some(s) = self.net.stream(to) {
                    s.rx_fin = true;
                }
            }
            Event::Backlog { listener, server } => {
                let queued = match self.net.sockets.get_mut(&listener) {
                    Some(l) => match &mut l.state {
                        State::Listening { backlog } => {
                            backlog.push_back(server);
                            true
                        }
                        _ => false,
                    },
                    None => false,
                };
                if !queued {
                    // The listener went away: the connection is reset.
                    self.close_socket(server, true);
                }
            }
            Event::Datagram { to, bytes, from } => {
                if let Some(sock) = self.net.sockets.get_mut(&to)
                    && let State::Dgram(d) = &mut sock.state
                    && d.peer.is_none_or(|p| p == from)
                    && d.rx.len() < net::DGRAM_QUEUE
                {
                    d.rx.push_back((bytes, from));
                }
            }
        }
    }

    /// Reset both ends of the connection `fd` belongs to.
    fn reset(&mut self, fd: RawFd) {
        let peer = self.net.stream(fd).and_then(|s| {
            s.reset = true;
            s.rx.clear();
            s.peer_fd.take()
        });
        if let Some(p) = peer
            && let Some(s) = self.net.stream(p)
        {
            s.reset = true;
            s.rx.clear();
            s.peer_fd = None;
        }
    }

    pub(super) fn accept(&mut self, fd: RawFd, peer: &mut SockAddr) -> Attempt {
        let server = match self.net.get(fd) {
            Err(e) => return io_err(&e),
            Ok(s) => match &mut s.state {
                State::Listening { backlog } => match backlog.pop_front() {
                    Some(server) => server,
                    None => return Attempt::Blocked,
                },
                _ => return err(libc::EINVAL),
            },
        };
        if let Some(a) = self.net.stream(server).and_then(|s| s.peer_addr) {
            *peer = SockAddr::from_std(a);
        }
        Attempt::Done(server)
    }

    pub(super) fn connect(&mut self, fd: RawFd, addr: Option<SocketAddr>) -> Attempt {
        let Some(addr) = addr else {
            return err(libc::EAFNOSUPPORT);
        };
        match self.net.get(fd) {
            Err(e) => return io_err(&e),
            Ok(s) if s.proto != Proto::Tcp => return err(libc::EOPNOTSUPP),
            Ok(s) => match s.state {
                State::Idle => {}
                State::Stream(_) => return err(libc::EISCONN),
                _ => return err(libc::EINVAL),
            },
        }
        let listener = self.net.lookup(Proto::Tcp, addr).filter(|l| {
            matches!(
                self.net.sockets.get(l).map(|s| &s.state),
                Some(State::Listening { .. })
            )
        });
        let refused = self.rng.chance(self.config.faults.refuse_connect);
        let Some(listener) = listener.filter(|_| !refused) else {
            return err(libc::ECONNREFUSED);
        };
        let local = match self.net.autobind(fd) {
            Ok(a) => a,
            Err(e) => return io_err(&e),
        };
        let v6 = addr.is_ipv6();
        let server = self.net.socket(Proto::Tcp, v6);
        let srv = self.net.get(server).expect("just created");
        srv.local = Some(addr);
        srv.state = State::Stream(Stream {
            peer_fd: Some(fd),
            peer_addr: Some(local),
            ..Stream::default()
        });
        self.net.get(fd).expect("checked").state = State::Stream(Stream {
            peer_fd: Some(server),
            peer_addr: Some(addr),
            ..Stream::default()
        });
        let at = self.now + self.latency();
        self.event_at(at, Event::Backlog { listener, server });
        Attempt::Done(0)
    }

    /// The start of a stream `recv` or `send` on `fd`: draws whether the call
    /// resets the connection and whether it is cut short (with chance
    /// `short`), in that order, then checks that `fd` is a stream that was
    /// not reset; else the error to return.
    fn stream_call(&mut self, fd: RawFd, short: f64) -> Result<(bool, bool), Attempt> {
        let draws = (
            self.rng.chance(self.config.faults.reset),
            self.rng.chance(short),
        );
        let Some(s) = self.net.stream(fd) else {
            return Err(match self.net.get(fd) {
                Err(e) => io_err(&e),
                Ok(_) => err(libc::ENOTCONN),
            });
        };
        if s.reset {
            return Err(err(libc::ECONNRESET));
        }
        Ok(draws)
    }

    pub(super) fn recv(&mut self, fd: RawFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> Attempt {
        let (reset_now, short) = match self.stream_call(fd, self.config.faults.short_reads) {
            Ok(draws) => draws,
            Err(e) => return e,
        };
        let s = self.net.stream(fd).expect("checked");
        if buf.is_empty() || s.rd_shut {
            return Attempt::Done(0);
        }
        if s.rx.is_empty() {
            return if s.rx_fin {
                Attempt::Done(0)
            } else {
                Attempt::Blocked
            };
        }
        if reset_now && s.peer_fd.is_some() {
            self.reset(fd);
            return err(libc::ECONNRESET);
        }
        let mut n = buf.len().min(s.rx.len());
        if short && n > 1 {
            n = 1 + self.rng.below(n as u64 - 1) as usize;
        }
        let s = self.net.stream(fd).expect("checked");
        for (dst, src) in buf.iter_mut().zip(s.rx.drain(..n)) {
            dst.write(src);
        }
        Attempt::Done(n as i32)
    }

    pub(super) fn send(&mut self, fd: RawFd, buf: &[u8]) -> Attempt {
        let (reset_now, short) = match self.stream_call(fd, self.config.faults.short_writes) {
            Ok(draws) => draws,
            Err(e) => return e,
        };
        let s = self.net.stream(fd).expect("checked");
        if s.wr_shut {
            return err(libc::EPIPE);
        }
        let Some(peer) = s.peer_fd else {
            return err(libc::EPIPE);
        };
        if buf.is_empty() {
            return Attempt::Done(0);
        }
        if reset_now {
            self.reset(fd);
            return err(libc::ECONNRESET);
        }
        let Some(p) = self.net.stream(peer) else {
            return err(libc::EPIPE);
        };
        if p.rd_shut {
            // Linux discards what arrives after SHUT_RD; accept and drop.
            return Attempt::Done(buf.len().min(i32::MAX as usize) as i32);
        }
        let room = STREAM_WINDOW.saturating_sub(p.rx.len() + p.in_transit);
        if room == 0 {
            return Attempt::Blocked;
        }
        let mut n = buf.len().min(room);
        if short && n > 1 {
            n = 1 + self.rng.below(n as u64 - 1) as usize;
        }
        let n = n.min(i32::MAX as usize);
        self.net.stream(peer).expect("checked").in_transit += n;
        let at = self.stream_arrival(peer);
        self.event_at(
            at,
            Event::Arrive {
                to: peer,
                bytes: buf[..n].to_vec(),
            },
        );
        Attempt::Done(n as i32)
    }

    pub(super) fn recv_from(
        &mut self,
        fd: RawFd,
        buf: &mut [std::mem::MaybeUninit<u8>],
        from: &mut SockAddr,
    ) -> Attempt {
        let sock = match self.net.get(fd) {
            Err(e) => return io_err(&e),
            Ok(s) => s,
        };
        let State::Dgram(d) = &mut sock.state else {
            return err(libc::EOPNOTSUPP);
        };
        let Some((bytes, src)) = d.rx.pop_front() else {
            return Attempt::Blocked;
        };
        let n = buf.len().min(bytes.len());
        for (dst, b) in buf.iter_mut().zip(&bytes[..n]) {
            dst.write(*b);
        }
        *from = SockAddr::from_std(src);
        Attempt::Done(n.min(i32::MAX as usize) as i32)
    }

    pub(super) fn send_to(&mut self, fd: RawFd, buf: &[u8], to: Option<SocketAddr>) -> Attempt {
        let peer = match self.net.get(fd) {
            Err(e) => return io_err(&e),
            Ok(s) => match &s.state {
                State::Dgram(d) => d.peer,
                _ => return err(libc::EOPNOTSUPP),
            },
        };
        let Some(to) = to.or(peer) else {
            return err(libc::EDESTADDRREQ);
        };
        let from = match self.net.autobind(fd) {
            Ok(a) => a,
            Err(e) => return io_err(&e),
        };
        if buf.len() > 65_507 {
            return err(libc::EMSGSIZE);
        }
        // A datagram to nowhere is lost, as on a real network.
        if let Some(dest) = self.net.lookup(Proto::Udp, to) {
            let at = self.now + self.latency();
            self.event_at(
                at,
                Event::Datagram {
                    to: dest,
                    bytes: buf.to_vec(),
                    from,
                },
            );
        }
        Attempt::Done(buf.len() as i32)
    }

    pub(super) fn shutdown(&mut self, fd: RawFd, how: i32) -> Attempt {
        let Some(s) = self.net.stream(fd) else {
            return match self.net.get(fd) {
                Err(e) => io_err(&e),
                Ok(_) => err(libc::ENOTCONN),
            };
        };
        if how == libc::SHUT_RD || how == libc::SHUT_RDWR {
            s.rd_shut = true;
        }
        if (how == libc::SHUT_WR || how == libc::SHUT_RDWR) && !s.wr_shut {
            s.wr_shut = true;
            if let Some(peer) = s.peer_fd {
                let at = self.stream_arrival(peer);
                self.event_at(at, Event::Fin { to: peer });
            }
        }
        Attempt::Done(0)
    }

    /// Close a virtual socket: its peer sees end of stream (or a reset).
    pub(super) fn close_socket(&mut self, fd: RawFd, reset: bool) {
        let Some(sock) = self.net.remove(fd) else {
            return;
        };
        match sock.state {
            State::Stream(s) => {
                if let Some(peer) = s.peer_fd {
                    if reset {
                        if let Some(p) = self.net.stream(peer) {
                            p.reset = true;
                            p.rx.clear();
                            p.peer_fd = None;
                        }
                    } else {
                        if let Some(p) = self.net.stream(peer) {
                            p.peer_fd = None;
                        }
                        if !s.wr_shut {
                            let at = self.stream_arrival(peer);
                            self.event_at(at, Event::Fin { to: peer });
                        }
                    }
                }
            }
            State::Listening { backlog } => {
                // Connections never accepted are reset, as by Linux.
                for server in backlog {
                    self.close_socket(server, true);
                }
            }
            State::Idle | State::Dgram(_) => {}
        }
    }
}
