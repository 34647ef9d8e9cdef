//! UDP under every driver: round trips over IPv4 and IPv6, connected
//! sockets, errors with their errno, and cancellation that loses no datagram.

use crate::support;

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use coil::io::BufResult;
use coil::net::UdpSocket;
use coil::time::timeout;

driver_test! {
    fn roundtrip_v4(rt) {
        rt.block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            assert!(aa.is_ipv4() && aa.port() != 0);
            for i in 0..50u8 {
                let msg = vec![i; 1 + usize::from(i) * 11];
                let BufResult(n, msg) = a.send_to(msg, ba).await;
                assert_eq!(n.unwrap(), msg.len());
                let BufResult(r, got) = b.recv_from(Vec::with_capacity(2048)).await;
                let (n, from) = r.unwrap();
                assert_eq!((n, from), (msg.len(), aa));
                assert_eq!(got, msg);
                // And back.
                let BufResult(r, _) = b.send_to(got, from).await;
                r.unwrap();
                let BufResult(r, back) = a.recv_from(Vec::with_capacity(2048)).await;
                assert_eq!(r.unwrap(), (msg.len(), ba));
                assert_eq!(back, msg);
            }
        });
    }

    fn roundtrip_v6(rt) {
        rt.block_on(async {
            let Ok(a) = UdpSocket::bind("[::1]:0") else {
                return; // no IPv6 on this machine
            };
            let b = UdpSocket::bind("[::1]:0").unwrap();
            let ba = b.local_addr().unwrap();
            assert!(ba.is_ipv6());
            let BufResult(n, _) = a.send_to(&b"over six"[..], ba).await;
            assert_eq!(n.unwrap(), 8);
            let BufResult(r, got) = b.recv_from(Vec::with_capacity(64)).await;
            let (n, from) = r.unwrap();
            assert_eq!(&got[..n], b"over six");
            assert_eq!(from, a.local_addr().unwrap());
        });
    }

    fn appends_after_initialised_bytes_and_truncates(rt) {
        rt.block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let ba = b.local_addr().unwrap();
            let BufResult(r, _) = a.send_to(&b"hello"[..], ba).await;
            r.unwrap();
            let mut buf = Vec::with_capacity(8);
            buf.extend_from_slice(b"<<");
            let BufResult(r, buf) = b.recv_from(buf).await;
            assert_eq!(r.unwrap().0, 5);
            assert_eq!(buf, b"<<hello");
            // Longer than the room: truncated, the rest discarded.
            let BufResult(r, _) = a.send_to(vec![9u8; 100], ba).await;
            r.unwrap();
            let BufResult(r, buf) = b.recv_from(Vec::with_capacity(10)).await;
            assert_eq!(r.unwrap().0, 10);
            assert_eq!(buf, [9u8; 10]);
            // An empty datagram is a datagram.
            let BufResult(r, _) = a.send_to(Vec::new(), ba).await;
            assert_eq!(r.unwrap(), 0);
            let BufResult(r, buf) = b.recv_from(Vec::with_capacity(10)).await;
            assert_eq!(r.unwrap().0, 0);
            assert!(buf.is_empty());
        });
    }

    fn connected_send_recv(rt) {
        rt.block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let err = a.peer_addr().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
            let BufResult(r, _) = a.send(&b"nowhere"[..]).await;
            let err = r.unwrap_err();
            assert!(matches!(err.raw_os_error(), Some(libc::EDESTADDRREQ | libc::ENOTCONN)), "{err}");
            a.connect(b.local_addr().unwrap()).unwrap();
            b.connect(a.local_addr().unwrap()).unwrap();
            assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
            for i in 0..20u32 {
                let BufResult(r, _) = a.send(i.to_le_bytes().to_vec()).await;
                assert_eq!(r.unwrap(), 4);
                let BufResult(r, buf) = b.recv(Vec::with_capacity(16)).await;
                assert_eq!(r.unwrap(), 4);
                assert_eq!(buf, i.to_le_bytes());
            }
            // A third socket's datagrams are filtered out by connect.
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            let BufResult(r, _) = c.send_to(&b"stranger"[..], b.local_addr().unwrap()).await;
            r.unwrap();
            let BufResult(r, _) = a.send(&b"friend"[..]).await;
            r.unwrap();
            let BufResult(r, buf) = b.recv(Vec::with_capacity(16)).await;
            assert_eq!(r.unwrap(), 6);
            assert_eq!(buf, b"friend");
        });
    }

    fn connected_refused_has_errno(rt) {
        rt.block_on(async {
            // A port nobody listens on: the ICMP error comes back as
            // ECONNREFUSED on a later call of the connected socket.
            let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            a.connect(port).unwrap();
            let BufResult(r, _) = a.send(&b"anyone?"[..]).await;
            r.unwrap();
            let res = timeout(Duration::from_secs(5), a.recv(Vec::with_capacity(8))).await;
            let BufResult(r, _) = res.expect("the ICMP error arrives");
            let err = r.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
            let err = UdpSocket::bind("localhost:0").unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        });
    }

    fn recv_with_zero_timeout_loses_no_datagram(rt) {
        // The datagram is already queued in the kernel; the receive is
        // submitted, then dropped by an elapsed ZERO timeout. If the kernel
        // had delivered it to the dropped receive, it is queued in the
        // socket and the next receive returns it, in order.
        rt.block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let mut cancelled_with_data = 0;
            for round in 0..support::scaled(300) {
                let m1 = format!("first {round}");
                let m2 = format!("second {round}");
                for m in [&m1, &m2] {
                    let BufResult(r, _) = a.send_to(m.clone().into_bytes(), ba).await;
                    r.unwrap();
                }
                let mut got = Vec::new();
                match support::poll_once(b.recv_from(Vec::with_capacity(64))).await {
                    Some(BufResult(r, buf)) => {
                        assert_eq!(r.unwrap().1, aa);
                        got.push(buf);
                    }
                    None => cancelled_with_data += 1,
                }
                while got.len() < 2 {
                    let BufResult(r, buf) = b.recv_from(Vec::with_capacity(64)).await;
                    assert_eq!(r.unwrap().1, aa, "round {round}");
                    got.push(buf);
                }
                assert_eq!(got, [m1.into_bytes(), m2.into_bytes()], "round {round}");
            }
            // Not asserted (timing), but on io_uring most rounds take the
            // cancelled-with-data path.
            let _ = cancelled_with_data;
        });
    }

    fn recv_dropped_after_completion_keeps_the_datagram(rt) {
        // Deterministic variant: the receive is submitted, the loop runs
        // until its completion has arrived, and only then is the future
        // dropped (completed but never observed). The datagram must be
        // queued for the next receive, ahead of later ones.
        rt.block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let ba = b.local_addr().unwrap();
            for round in 0..20u32 {
                let BufResult(r, _) = a.send_to(format!("one {round}").into_bytes(), ba).await;
                r.unwrap();
                let mut fut = Box::pin(b.recv_from(Vec::with_capacity(64)));
                let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
                coil::time::sleep(Duration::from_millis(2)).await;
                drop(fut);
                let BufResult(r, _) = a.send_to(format!("two {round}").into_bytes(), ba).await;
                r.unwrap();
                let mut got = Vec::new();
                if let Poll::Ready(BufResult(r, buf)) = first {
                    r.unwrap();
                    got.push(buf);
                }
                while got.len() < 2 {
                    let BufResult(r, buf) = b.recv_from(Vec::with_capacity(64)).await;
                    r.unwrap();
                    got.push(buf);
                }
                assert_eq!(got, [format!("one {round}").into_bytes(), format!("two {round}").into_bytes()]);
            }
        });
    }

    fn recv_cancelled_while_idle_then_receives(rt) {
        rt.block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let ba = b.local_addr().unwrap();
            for _ in 0..10 {
                assert!(timeout(Duration::from_millis(2), b.recv_from(Vec::with_capacity(8))).await.is_err());
            }
            let BufResult(r, _) = a.send_to(&b"late"[..], ba).await;
            r.unwrap();
            let BufResult(r, buf) = b.recv_from(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap().0, 4);
            assert_eq!(buf, b"late");
        });
    }

    fn many_datagrams_concurrently(rt) {
        rt.block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let sa = server.local_addr().unwrap();
            let echo = coil::spawn(async move {
                for _ in 0..64 {
                    let BufResult(r, buf) = server.recv_from(Vec::with_capacity(64)).await;
                    let (_, from) = r.unwrap();
                    let BufResult(r, _) = server.send_to(buf, from).await;
                    r.unwrap();
                }
            });
            let clients: Vec<_> = (0..64u32)
                .map(|i| {
                    coil::spawn(async move {
                        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
                        c.connect(sa).unwrap();
                        let BufResult(r, _) = c.send(i.to_be_bytes().to_vec()).await;
                        r.unwrap();
                        let BufResult(r, buf) = c.recv(Vec::with_capacity(8)).await;
                        r.unwrap();
                        assert_eq!(buf, i.to_be_bytes());
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
            echo.await.unwrap();
        });
    }
}
