//! Unix domain sockets under every driver: stream and datagram round trips,
//! pair(), abstract addresses, errors with their errno, peer reset mid-write,
//! cancellation that loses nothing.

use crate::support;
use support::TempDir;

use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::time::Duration;

use coil::io::BufResult;
use coil::net::{UnixDatagram, UnixListener, UnixStream};
use coil::spawn;
use coil::time::timeout;

driver_test! {
    fn stream_echo_over_a_path(rt) {
        rt.block_on(async {
            let dir = TempDir::new("unix-echo");
            let path = dir.path("s");
            let l = UnixListener::bind(&path).unwrap();
            assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
            let server = spawn(async move {
                let (s, peer) = l.accept().await.unwrap();
                assert!(peer.is_unnamed());
                loop {
                    let BufResult(n, buf) = s.read(Vec::with_capacity(4096)).await;
                    if n.unwrap() == 0 {
                        break;
                    }
                    let BufResult(r, _) = s.write_all(buf).await;
                    r.unwrap();
                }
            });
            let c = UnixStream::connect(&path).await.unwrap();
            assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
            assert!(c.local_addr().unwrap().is_unnamed());
            for i in 0..40u8 {
                let msg = vec![i; 1 + usize::from(i) * 101];
                let BufResult(r, msg) = c.write_all(msg).await;
                r.unwrap();
                let BufResult(r, back) = c.read_exact(Vec::with_capacity(msg.len())).await;
                r.unwrap();
                assert_eq!(back, msg);
            }
            c.shutdown(Shutdown::Write).await.unwrap();
            server.await.unwrap();
        });
    }

    fn stream_pair_and_split(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            assert!(a.peer_addr().unwrap().is_unnamed());
            let (ra, wa) = a.into_split();
            let reader = spawn(async move {
                let BufResult(r, buf) = ra.read_exact(Vec::with_capacity(5)).await;
                r.unwrap();
                buf
            });
            let BufResult(r, _) = b.write_all(&b"hello"[..]).await;
            r.unwrap();
            assert_eq!(reader.await.unwrap(), b"hello");
            let BufResult(r, _) = wa.write_all(&b"back"[..]).await;
            r.unwrap();
            wa.shutdown(Shutdown::Write).await.unwrap();
            let BufResult(r, buf) = b.read_exact(Vec::with_capacity(4)).await;
            r.unwrap();
            assert_eq!(buf, b"back");
            let BufResult(r, _) = b.read(Vec::with_capacity(4)).await;
            assert_eq!(r.unwrap(), 0, "EOF after shutdown(Write)");
            let BufResult(r, buf) = b.read_exact(Vec::with_capacity(4)).await;
            assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
            assert!(buf.is_empty());
        });
    }

    fn from_std_adopts_streams_and_listeners(rt) {
        // Every std socket starts in the mode this driver does *not* use
        // (non-blocking under io_uring, blocking under epoll), so adopting
        // must change it: under io_uring a non-blocking socket makes ops fail
        // with EAGAIN, under epoll a blocking one stalls the loop's thread.
        let uring = rt.driver().kind() == coil::runtime::DriverKind::Uring;
        let nonblocking = |fd: i32| {
            // SAFETY: F_GETFL on an fd the test owns.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            assert!(flags >= 0);
            flags & libc::O_NONBLOCK != 0
        };
        rt.block_on(async move {
            let dir = TempDir::new("unix-from-std");
            let path = dir.path("s");
            let std_l = std::os::unix::net::UnixListener::bind(&path).unwrap();
            std_l.set_nonblocking(uring).unwrap();
            let l = UnixListener::from_std(std_l).unwrap();
            assert_eq!(nonblocking(l.as_raw_fd()), !uring);
            // Nobody connects yet: the accept waits (and the timeout ends it).
            let waited = timeout(Duration::from_millis(20), l.accept()).await;
            assert!(waited.is_err(), "no client yet, the accept must still be waiting: {waited:?}");
            // A std client: its connect completes against the backlog.
            let std_client = std::os::unix::net::UnixStream::connect(&path).unwrap();
            std_client.set_nonblocking(uring).unwrap();
            let (s, _) = l.accept().await.unwrap();
            let c = UnixStream::from_std(std_client).unwrap();
            assert_eq!(nonblocking(c.as_raw_fd()), !uring);
            let BufResult(r, _) = c.write_all(&b"adopted"[..]).await;
            r.unwrap();
            let BufResult(r, buf) = s.read_exact(Vec::with_capacity(7)).await;
            r.unwrap();
            assert_eq!(buf, b"adopted");
            // Nothing was sent back: the read waits instead of failing with
            // EAGAIN or blocking the thread.
            let waited = timeout(Duration::from_millis(20), c.read(Vec::with_capacity(4))).await;
            assert!(waited.is_err(), "nothing was sent, the read must still be waiting");
            // A pair from std works too.
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let (a, b) = (UnixStream::from_std(a).unwrap(), UnixStream::from_std(b).unwrap());
            let BufResult(r, _) = a.write_all(&b"pair"[..]).await;
            r.unwrap();
            let BufResult(r, buf) = b.read_exact(Vec::with_capacity(4)).await;
            r.unwrap();
            assert_eq!(buf, b"pair");
        });
    }

    fn abstract_address(rt) {
        rt.block_on(async {
            let name = format!("coil-test-abstract-{}-{:?}", std::process::id(), std::thread::current().id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            let l = UnixListener::bind_addr(&addr).unwrap();
            assert_eq!(l.local_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
            let c = spawn(async move { UnixStream::connect_addr(&addr).await });
            let (s, _) = l.accept().await.unwrap();
            let c = c.await.unwrap().unwrap();
            let BufResult(r, _) = c.write_all(&b"abs"[..]).await;
            r.unwrap();
            let BufResult(r, buf) = s.read_exact(Vec::with_capacity(3)).await;
            r.unwrap();
            assert_eq!(buf, b"abs");
        });
    }

    fn connect_errors_have_errno(rt) {
        rt.block_on(async {
            let dir = TempDir::new("unix-errs");
            let err = UnixStream::connect(dir.path("missing")).await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
            // A socket file whose listener is gone (the file stays): refused.
            let path = dir.path("stale");
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
            let err = UnixStream::connect(&path).await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
            let err = UnixListener::bind(&path).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
            let err = UnixListener::bind(dir.path("no/such/dir")).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
            let err = UnixStream::connect("a\0b").await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            let long = "x".repeat(200);
            let err = UnixListener::bind(&long).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            let d = UnixDatagram::unbound().unwrap();
            let BufResult(r, _) = d.send_to(&b"x"[..], dir.path("nobody")).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOENT));
            let err = d.connect(dir.path("nobody")).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
        });
    }

    fn peer_reset_mid_write_is_an_error(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let reader = spawn(async move {
                let BufResult(r, _) = b.read_exact(Vec::with_capacity(64 << 10)).await;
                r.unwrap();
                drop(b); // unread data in its queue: the writer sees EPIPE
            });
            let big = vec![7u8; 16 << 20];
            let BufResult(r, _) = a.write_all(big).await;
            let err = r.unwrap_err();
            assert!(
                matches!(err.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)),
                "{err}"
            );
            reader.await.unwrap();
        });
    }

    fn cancelled_read_loses_no_bytes(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            for round in 0..support::scaled(300) {
                let msg = format!("message number {round}");
                let BufResult(w, _) = a.write_all(msg.clone().into_bytes()).await;
                w.unwrap();
                let mut got = match support::poll_once(b.read(Vec::with_capacity(64))).await {
                    Some(BufResult(n, buf)) => {
                        n.unwrap();
                        buf
                    }
                    None => Vec::new(),
                };
                while got.len() < msg.len() {
                    let BufResult(r, buf) = b.read(Vec::with_capacity(msg.len() - got.len())).await;
                    assert!(r.unwrap() > 0, "EOF in round {round}");
                    got.extend_from_slice(&buf);
                }
                assert_eq!(got, msg.as_bytes(), "round {round}");
            }
        });
    }

    fn datagram_roundtrip_over_paths(rt) {
        rt.block_on(async {
            let dir = TempDir::new("unix-dgram");
            let (pa, pb) = (dir.path("a"), dir.path("b"));
            let a = UnixDatagram::bind(&pa).unwrap();
            let b = UnixDatagram::bind(&pb).unwrap();
            assert_eq!(a.local_addr().unwrap().as_pathname(), Some(pa.as_path()));
            for i in 0..30u8 {
                let msg = vec![i; usize::from(i) * 7];
                let BufResult(r, msg) = a.send_to(msg, &pb).await;
                assert_eq!(r.unwrap(), msg.len());
                let BufResult(r, got) = b.recv_from(Vec::with_capacity(1024)).await;
                let (n, from) = r.unwrap();
                assert_eq!(n, msg.len());
                assert_eq!(from.as_pathname(), Some(pa.as_path()));
                assert_eq!(got, msg);
                let BufResult(r, _) = b.send_to_addr(got, &from).await;
                r.unwrap();
                let BufResult(r, back) = a.recv_from(Vec::with_capacity(1024)).await;
                assert_eq!(r.unwrap().1.as_pathname(), Some(pb.as_path()));
                assert_eq!(back, msg);
            }
            // From an unbound socket: the sender is unnamed.
            let u = UnixDatagram::unbound().unwrap();
            let BufResult(r, _) = u.send_to(&b"anon"[..], &pb).await;
            r.unwrap();
            let BufResult(r, got) = b.recv_from(Vec::with_capacity(16)).await;
            assert!(r.unwrap().1.is_unnamed());
            assert_eq!(got, b"anon");
            // Connected.
            a.connect(&pb).unwrap();
            assert_eq!(a.peer_addr().unwrap().as_pathname(), Some(pb.as_path()));
            let BufResult(r, _) = a.send(&b"conn"[..]).await;
            r.unwrap();
            let BufResult(r, got) = b.recv(Vec::with_capacity(16)).await;
            assert_eq!(r.unwrap(), 4);
            assert_eq!(got, b"conn");
        });
    }

    fn datagram_pair_keeps_boundaries_and_survives_cancel(rt) {
        rt.block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            for round in 0..support::scaled(200) {
                let (m1, m2) = (format!("a{round}"), format!("bb{round}"));
                for m in [&m1, &m2] {
                    let BufResult(r, _) = a.send(m.clone().into_bytes()).await;
                    r.unwrap();
                }
                let mut got = Vec::new();
                if let Some(BufResult(r, buf)) = support::poll_once(b.recv(Vec::with_capacity(64))).await {
                    r.unwrap();
                    got.push(buf);
                }
                while got.len() < 2 {
                    let BufResult(r, buf) = b.recv_from(Vec::with_capacity(64)).await;
                    assert!(r.unwrap().1.is_unnamed());
                    got.push(buf);
                }
                assert_eq!(got, [m1.into_bytes(), m2.into_bytes()], "round {round}");
            }
        });
    }

    fn many_unix_connections(rt) {
        rt.block_on(async {
            let dir = TempDir::new("unix-many");
            let path = dir.path("s");
            let l = UnixListener::bind(&path).unwrap();
            let n = support::scaled(200);
            let server = spawn(async move {
                let mut conns = Vec::new();
                for _ in 0..n {
                    let (s, _) = l.accept().await.unwrap();
                    conns.push(spawn(async move {
                        let BufResult(r, buf) = s.read_exact(Vec::with_capacity(512)).await;
                        r.unwrap();
                        let BufResult(r, _) = s.write_all(buf).await;
                        r.unwrap();
                    }));
                }
                for c in conns {
                    c.await.unwrap();
                }
            });
            let clients: Vec<_> = (0..n)
                .map(|i| {
                    let path = path.clone();
                    spawn(async move {
                        let c = UnixStream::connect(&path).await.unwrap();
                        let msg: Vec<u8> = (0..512).map(|j| ((i * 31 + j) % 251) as u8).collect();
                        let BufResult(r, msg) = c.write_all(msg).await;
                        r.unwrap();
                        let BufResult(r, back) = c.read_exact(Vec::with_capacity(512)).await;
                        r.unwrap();
                        assert_eq!(back, msg);
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
            server.await.unwrap();
        });
    }
}
