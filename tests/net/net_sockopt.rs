//! Socket options and std conversions under every driver: `TcpSocket`
//! (reuseaddr, reuseport, buffer sizes, nodelay, keepalive, linger, device,
//! IPv6-only, backlog), `UdpSocket` options, each read back with
//! `getsockopt`; `from_std`/`into_std`/raw fds for every socket type; and a
//! burst of 10 000 datagrams that a raised `SO_RCVBUF` receives whole.

use crate::support;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd};

use std::future::Future;
use std::io::{Read, Write};
use std::time::Duration;

use coil::io::BufResult;
use coil::net::{
    TcpListener, TcpSocket, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use coil::time::timeout;

const BURST: u32 = 10_000;

/// Whether `fd` has `O_NONBLOCK` set.
fn nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL on an open fd, no pointers.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    flags & libc::O_NONBLOCK != 0
}

/// Sends `BURST` datagrams of 16 bytes to `rx` before reading any, then
/// reads until all came or none comes for `quiet`; the count received.
async fn burst(rx: &UdpSocket, quiet: Duration) -> u32 {
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    for i in 0..BURST {
        let mut msg = i.to_le_bytes().to_vec();
        msg.resize(16, 0xAB);
        let BufResult(r, _) = tx.send_to(msg, to).await;
        assert_eq!(r.unwrap(), 16);
    }
    let mut got = 0;
    let mut last = None;
    while got < BURST {
        let Ok(BufResult(r, buf)) = timeout(quiet, rx.recv_from(Vec::with_capacity(64))).await
        else {
            break;
        };
        assert_eq!(r.unwrap().0, 16);
        let i = u32::from_le_bytes(buf[..4].try_into().unwrap());
        assert!(last < Some(i), "datagram {i} after {last:?}: out of order");
        last = Some(i);
        got += 1;
    }
    got
}

driver_test! {
    fn udp_burst_default_vs_raised_rcvbuf(rt) {
        rt.block_on(async {
            let small = UdpSocket::bind("127.0.0.1:0").unwrap();
            let default_size = small.recv_buffer_size().unwrap();
            let got_default = burst(&small, Duration::from_millis(200)).await;
            let big = UdpSocket::bind("127.0.0.1:0").unwrap();
            big.set_recv_buffer_size(16 << 20).unwrap();
            let raised = big.recv_buffer_size().unwrap();
            let got_raised = burst(&big, Duration::from_secs(2)).await;
            eprintln!(
                "burst of {BURST}: SO_RCVBUF {default_size} got {got_default}, \
                 SO_RCVBUF {raised} got {got_raised}"
            );
            // Linux doubles what was asked, capped at net.core.rmem_max.
            let max = std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap();
            let max: u32 = max.trim().parse().unwrap();
            assert_eq!(raised, 2 * max.min(16 << 20));
            // The default run filled its buffer: `got_default` datagrams cost
            // `default_size`. Where the raised buffer holds the whole burst at
            // that rate (8 MiB here: rmem_max is 4 MiB), nothing is lost.
            let fits = u64::from(raised) * u64::from(got_default)
                >= u64::from(default_size) * u64::from(BURST);
            if fits {
                assert_eq!(got_raised, BURST);
            }
            assert!(got_raised >= got_default);
        });
    }

    fn tcp_socket_options_read_back(rt) {
        rt.block_on(async {
            let s = TcpSocket::new_v4().unwrap();
            assert!(!s.reuseaddr().unwrap());
            s.set_reuseaddr(true).unwrap();
            assert!(s.reuseaddr().unwrap());
            s.set_reuseport(true).unwrap();
            assert!(s.reuseport().unwrap());
            s.set_reuseport(false).unwrap();
            assert!(!s.reuseport().unwrap());
            s.set_recv_buffer_size(65_536).unwrap();
            assert_eq!(s.recv_buffer_size().unwrap(), 2 * 65_536);
            s.set_send_buffer_size(65_536).unwrap();
            assert_eq!(s.send_buffer_size().unwrap(), 2 * 65_536);
            let err = s.set_send_buffer_size(u32::MAX).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
            s.set_nodelay(true).unwrap();
            assert!(s.nodelay().unwrap());
            s.set_keepalive(true).unwrap();
            assert!(s.keepalive().unwrap());
            assert_eq!(s.linger().unwrap(), None);
            s.set_linger(Some(Duration::from_secs(7))).unwrap();
            assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(7)));
            assert_eq!(s.device().unwrap(), None);
            match s.bind_device(Some(b"lo")) {
                Ok(()) => assert_eq!(s.device().unwrap().as_deref(), Some(&b"lo"[..])),
                // Without CAP_NET_RAW: the errno comes back.
                Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
            }
            let err = s.bind_device(Some(b"no-such-if0")).unwrap_err();
            assert!(matches!(err.raw_os_error(), Some(libc::ENODEV | libc::EPERM)), "{err}");
            // An IPv6 option on an IPv4 socket: the errno, not a panic.
            let err = s.set_only_v6(true).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOPROTOOPT), "{err}");
            assert_eq!(s.as_fd().as_raw_fd(), s.as_raw_fd());

            // The options are the socket's: the listener and the stream keep them.
            s.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
            let addr = s.local_addr().unwrap();
            let listener = s.listen(16).unwrap();
            assert_eq!(listener.local_addr().unwrap(), addr);
            let c = TcpSocket::new_v4().unwrap();
            c.set_nodelay(true).unwrap();
            c.set_linger(Some(Duration::ZERO)).unwrap();
            let client = coil::spawn(c.connect(addr));
            let (server, peer) = listener.accept().await.unwrap();
            let client = client.await.unwrap().unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            assert!(client.nodelay().unwrap());
            assert_eq!(client.linger().unwrap(), Some(Duration::ZERO));
            assert!(server.nodelay().unwrap(), "accepted sockets inherit TCP_NODELAY");
        });
    }

    fn reuseport_lets_two_listeners_share_a_port(rt) {
        rt.block_on(async {
            let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let a = TcpSocket::new_v4().unwrap();
            a.set_reuseport(true).unwrap();
            a.bind(any).unwrap();
            let addr = a.local_addr().unwrap();
            let a = a.listen(64).unwrap();
            // Without SO_REUSEPORT the port is taken...
            let plain = TcpSocket::new_v4().unwrap();
            let err = plain.bind(addr).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
            // ...with it, a second listener binds the same port.
            let b = TcpSocket::new_v4().unwrap();
            b.set_reuseport(true).unwrap();
            b.bind(addr).unwrap();
            let b = b.listen(64).unwrap();
            assert_eq!(b.local_addr().unwrap(), addr);
            // The kernel spreads connections over both; each accepts what it got.
            let mut clients = Vec::new();
            for _ in 0..16 {
                clients.push(TcpStream::connect(addr).await.unwrap());
            }
            let (mut on_a, mut on_b) = (0, 0);
            while on_a + on_b < clients.len() {
                coil::select! {
                    r = a.accept() => { r.unwrap(); on_a += 1; }
                    r = b.accept() => { r.unwrap(); on_b += 1; }
                }
            }
            assert_eq!(on_a + on_b, 16);
        });
    }

    fn listen_backlog_one_accepts_connections(rt) {
        rt.block_on(async {
            let s = TcpSocket::new_v4().unwrap();
            s.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
            let listener = s.listen(1).unwrap();
            let addr = listener.local_addr().unwrap();
            // Linux queues backlog + 1 completed connections: two connect at
            // once without an accept, then both are accepted.
            let c1 = TcpStream::connect(addr).await.unwrap();
            let c2 = TcpStream::connect(addr).await.unwrap();
            for c in [&c1, &c2] {
                let (_s, peer) = listener.accept().await.unwrap();
                assert_eq!(peer, c.local_addr().unwrap());
            }
            // And the listener goes on accepting.
            for _ in 0..5 {
                let c = TcpStream::connect(addr).await.unwrap();
                let (_s, peer) = listener.accept().await.unwrap();
                assert_eq!(peer, c.local_addr().unwrap());
            }
        });
    }

    fn only_v6_on_loopback(rt) {
        rt.block_on(async {
            let Ok(s) = TcpSocket::new_v6() else {
                return; // no IPv6 on this machine
            };
            assert!(!s.only_v6().unwrap(), "bindv6only defaults to 0");
            s.set_only_v6(true).unwrap();
            assert!(s.only_v6().unwrap());
            if s.bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).is_err() {
                return; // IPv6 disabled on lo
            }
            let addr = s.local_addr().unwrap();
            let err = s.set_only_v6(false).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "bound: {err}");
            let listener = s.listen(8).unwrap();
            let client = coil::spawn(async move {
                TcpSocket::new_v6().unwrap().connect(addr).await
            });
            let (_conn, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.await.unwrap().unwrap().local_addr().unwrap());
        });
    }

    fn connect_refused_carries_errno(rt) {
        rt.block_on(async {
            // A port with nothing listening: bound, never listened.
            let hold = TcpSocket::new_v4().unwrap();
            hold.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
            let addr = hold.local_addr().unwrap();
            let err = TcpSocket::new_v4().unwrap().connect(addr).await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
        });
    }

    fn udp_options_read_back(rt) {
        rt.block_on(async {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            assert!(!u.broadcast().unwrap());
            u.set_broadcast(true).unwrap();
            assert!(u.broadcast().unwrap());
            u.set_send_buffer_size(32_768).unwrap();
            assert_eq!(u.send_buffer_size().unwrap(), 2 * 32_768);
            u.set_recv_buffer_size(32_768).unwrap();
            assert_eq!(u.recv_buffer_size().unwrap(), 2 * 32_768);
            u.set_ttl(17).unwrap();
            assert_eq!(u.ttl().unwrap(), 17);
            u.set_multicast_ttl_v4(3).unwrap();
            assert_eq!(u.multicast_ttl_v4().unwrap(), 3);
            assert!(u.multicast_loop_v4().unwrap());
            u.set_multicast_loop_v4(false).unwrap();
            assert!(!u.multicast_loop_v4().unwrap());
            let group = Ipv4Addr::new(239, 1, 2, 3);
            u.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
            u.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
            // Leaving a group not joined: the errno.
            let err = u.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{err}");
            let err = u.join_multicast_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "not multicast: {err}");

            let Ok(u6) = UdpSocket::bind("[::1]:0") else {
                return; // no IPv6 on this machine
            };
            assert!(u6.multicast_loop_v6().unwrap());
            u6.set_multicast_loop_v6(false).unwrap();
            assert!(!u6.multicast_loop_v6().unwrap());
            let group6: Ipv6Addr = "ff02::1:3".parse().unwrap();
            if u6.join_multicast_v6(&group6, 1).is_ok() {
                u6.leave_multicast_v6(&group6, 1).unwrap();
            }
            let err = u6.leave_multicast_v6(&group6, 1).unwrap_err();
            assert!(err.raw_os_error().is_some(), "{err}");
        });
    }

    fn udp_from_std_into_std_and_back(rt) {
        rt.block_on(async {
            let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let fd = std_sock.as_raw_fd();
            let u = UdpSocket::from_std(std_sock).unwrap();
            assert_eq!(u.as_raw_fd(), fd);
            let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = u.local_addr().unwrap();
            let BufResult(r, _) = peer.send_to(&b"one"[..], to).await;
            r.unwrap();
            let BufResult(r, buf) = u.recv_from(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap().1, peer.local_addr().unwrap());
            assert_eq!(buf, b"one");
            // Given back: the same fd, blocking again, no longer the loop's.
            let std_sock = u.into_std().unwrap();
            assert_eq!(std_sock.as_raw_fd(), fd);
            assert!(!nonblocking(&std_sock));
            let BufResult(r, _) = peer.send_to(&b"two"[..], to).await;
            r.unwrap();
            let mut b = [0u8; 8];
            std_sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(std_sock.recv(&mut b).unwrap(), 3);
            assert_eq!(&b[..3], b"two");
            // Adopted again on the same loop: the driver registers it anew.
            let u = UdpSocket::from_std(std_sock).unwrap();
            let BufResult(r, _) = peer.send_to(&b"three"[..], to).await;
            r.unwrap();
            let BufResult(r, buf) = u.recv(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap(), 5);
            assert_eq!(buf, b"three");
            // And through raw fds.
            let raw = u.into_raw_fd();
            assert_eq!(raw, fd);
            // SAFETY: `raw` is the open UDP socket `into_raw_fd` gave up.
            let u = unsafe { UdpSocket::from_raw_fd(raw) };
            assert_eq!(u.local_addr().unwrap(), to);
        });
    }

    fn tcp_into_std_and_back(rt) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let client = TcpStream::connect(addr).await.unwrap();
            // The connection is complete in the kernel: std accepts it at once.
            let std_listener = listener.into_std().unwrap();
            assert!(!nonblocking(&std_listener));
            let (mut server, _) = std_listener.accept().unwrap();
            server.write_all(b"from std").unwrap();
            let BufResult(r, buf) = client.read_exact(Vec::with_capacity(8)).await;
            r.unwrap();
            assert_eq!(buf, b"from std");
            let mut std_client = client.into_std().unwrap();
            assert!(!nonblocking(&std_client));
            std_client.write_all(b"back").unwrap();
            let mut b = [0u8; 4];
            server.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"back");
            // Both adopted again: the listener accepts, the stream reads.
            let listener = TcpListener::from_std(std_listener).unwrap();
            let client = TcpStream::from_std(std_client).unwrap();
            server.write_all(b"again").unwrap();
            let BufResult(r, buf) = client.read_exact(Vec::with_capacity(5)).await;
            r.unwrap();
            assert_eq!(buf, b"again");
            let c2 = coil::spawn(TcpStream::connect(addr));
            let (_s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, c2.await.unwrap().unwrap().local_addr().unwrap());
            // A configured socket from a std stream.
            let s = TcpSocket::from_std_stream(server).unwrap();
            s.set_nodelay(true).unwrap();
            assert!(s.nodelay().unwrap());
        });
    }

    fn unix_types_convert_both_ways(rt) {
        rt.block_on(async {
            let dir = support::TempDir::new("sockopt-unix");
            let (a, b) = UnixStream::pair().unwrap();
            let raw = a.into_raw_fd();
            // SAFETY: `raw` is the open Unix stream `into_raw_fd` gave up.
            let a = unsafe { UnixStream::from_raw_fd(raw) };
            let BufResult(r, _) = a.write_all(&b"ping"[..]).await;
            r.unwrap();
            let mut std_b = b.into_std().unwrap();
            assert!(!nonblocking(&std_b));
            let mut got = [0u8; 4];
            std_b.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");

            let path = dir.path("l.sock");
            let l = UnixListener::bind(&path).unwrap();
            let std_l = l.into_std().unwrap();
            let l = UnixListener::from_std(std_l).unwrap();
            let c = coil::spawn(UnixStream::connect(path.clone()));
            let (_conn, _) = l.accept().await.unwrap();
            c.await.unwrap().unwrap();

            let (d1, d2) = std::os::unix::net::UnixDatagram::pair().unwrap();
            let d1 = UnixDatagram::from_std(d1).unwrap();
            d2.send(b"dgram").unwrap();
            let BufResult(r, buf) = d1.recv(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap(), 5);
            assert_eq!(buf, b"dgram");
            let d1 = d1.into_std().unwrap();
            assert!(!nonblocking(&d1));
            d1.send(b"x").unwrap();
            let mut one = [0u8; 1];
            assert_eq!(d2.recv(&mut one).unwrap(), 1);
        });
    }
}

/// A receive on `u` polled once (nothing to read yet), then dropped: the op
/// table keeps it until the kernel (or epoll) is done with it.
async fn drop_a_receive_in_flight(u: &UdpSocket) {
    let mut recv = Box::pin(u.recv_from(Vec::with_capacity(8)));
    std::future::poll_fn(|cx| {
        assert!(recv.as_mut().poll(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    drop(recv);
}

driver_test! {
    fn into_std_refuses_while_a_dropped_receive_is_in_flight(rt) {
        rt.block_on(async {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            drop_a_receive_in_flight(&u).await;
            // Handing the fd out now could let that receive take a datagram
            // meant for the std socket: refused.
            let err = u.into_std().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
        });
    }
}

driver_test! {
    fn a_refused_into_std_gives_the_socket_back_and_loses_nothing(rt) {
        rt.block_on(async {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = u.local_addr().unwrap();
            drop_a_receive_in_flight(&u).await;
            let err = u.into_std().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
            assert!(err.to_string().contains("try again"), "{err}");
            // The socket came back, still open and still the loop's.
            let mut u = err.into_inner();
            let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            sender.send_to(b"hello", addr).unwrap();
            // Whichever way the dropped receive ends (cancelled, or done with
            // the datagram, which is then kept), the datagram arrives once:
            // through the coil socket or through the std one.
            let mut via_coil = 0;
            let mut tries = 0;
            let std_sock = loop {
                tries += 1;
                assert!(tries < 100_000, "into_std never succeeded");
                match u.into_std() {
                    Ok(s) => break s,
                    Err(e) => match e.kind() {
                        std::io::ErrorKind::WouldBlock => {
                            u = e.into_inner();
                            coil::task::yield_now().await;
                        }
                        std::io::ErrorKind::InvalidData => {
                            u = e.into_inner();
                            let BufResult(r, buf) = u.recv_from(Vec::with_capacity(8)).await;
                            r.unwrap();
                            assert_eq!(buf, b"hello");
                            via_coil += 1;
                        }
                        _ => panic!("{e}"),
                    },
                }
            };
            assert!(!nonblocking(&std_sock), "std sockets are blocking");
            std_sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let mut buf = [0u8; 8];
            let via_std = match std_sock.recv(&mut buf) {
                Ok(n) => {
                    assert_eq!(&buf[..n], b"hello");
                    1
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(via_coil + via_std, 1, "the datagram arrives exactly once");
        });
    }
}
