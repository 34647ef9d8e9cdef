//! The socket calls the runtime makes on virtual fds (`socket`, `bind`, `listen`,
//! `connect` for UDP, addresses, options): the simulator's stand-ins for the system calls
//! that do not go through the op path.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::SimDriver;
use super::net::{Proto, State};

impl SimDriver {
    /// Virtual sockets open.
    pub fn open_sockets(&self) -> usize {
        self.net.sockets.len()
    }

    /// A new virtual socket: TCP (`stream`) or UDP, IPv6 or IPv4.
    pub fn socket(&mut self, stream: bool, v6: bool) -> RawFd {
        let proto = if stream { Proto::Tcp } else { Proto::Udp };
        self.net.socket(proto, v6)
    }

    /// `bind(2)`: port 0 picks a free port. `EADDRINUSE` if taken.
    ///
    /// # Errors
    ///
    /// As `bind(2)`.
    pub fn bind(&mut self, fd: RawFd, addr: SocketAddr) -> io::Result<()> {
        self.net.bind(fd, addr)
    }

    /// `listen(2)` (binds to an ephemeral port first if unbound).
    ///
    /// # Errors
    ///
    /// As `listen(2)`.
    pub fn listen(&mut self, fd: RawFd) -> io::Result<()> {
        self.net.listen(fd)
    }

    /// `connect(2)` on a UDP socket: sets the default peer (binding first if
    /// unbound).
    ///
    /// # Errors
    ///
    /// `EBADF`, or `EOPNOTSUPP` for a stream socket.
    pub fn connect_dgram(&mut self, fd: RawFd, addr: SocketAddr) -> io::Result<()> {
        self.net.autobind(fd)?;
        match &mut self.net.get(fd)?.state {
            State::Dgram(d) => {
                d.peer = Some(addr);
                d.rx.retain(|(_, from)| *from == addr);
                Ok(())
            }
            _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
    }

    /// `getsockname(2)`.
    ///
    /// # Errors
    ///
    /// `EBADF`.
    pub fn local_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        self.net.local_addr(fd)
    }

    /// `getpeername(2)`.
    ///
    /// # Errors
    ///
    /// `EBADF`, `ENOTCONN`.
    pub fn peer_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        self.net.peer_addr(fd)
    }

    /// `setsockopt(2)` for an int option: recorded, read back by
    /// [`SimDriver::get_int_opt`], otherwise without effect.
    ///
    /// # Errors
    ///
    /// `EBADF`.
    pub fn set_int_opt(&mut self, fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
        self.net.get(fd)?.opts.insert((level, name), value);
        Ok(())
    }

    /// `getsockopt(2)` for an int option: what was set, else 0.
    ///
    /// # Errors
    ///
    /// `EBADF`.
    pub fn get_int_opt(&mut self, fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
        Ok(self
            .net
            .get(fd)?
            .opts
            .get(&(level, name))
            .copied()
            .unwrap_or(0))
    }
}
