//! The simulator's in-memory network: TCP and UDP between tasks of one
//! simulation, latencies, faults.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream, UdpSocket};
use coil::sim::{Builder, Faults};
use coil::time::{Instant, sleep};

#[test]
fn tcp_echo_in_memory() {
    let (got, report) = Builder::new().seed(11).run_traced(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_ne!(addr.port(), 0);
        let server = coil::spawn(async move {
            let (s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, s.peer_addr().unwrap());
            let mut total = 0;
            loop {
                let BufResult(n, buf) = s.read(Vec::with_capacity(100)).await;
                let n = n.unwrap();
                if n == 0 {
                    break;
                }
                total += n;
                let BufResult(r, _) = s.write_all(buf).await;
                r.unwrap();
            }
            total
        });
        let start = Instant::now();
        let c = TcpStream::connect(addr).await.unwrap();
        assert!(
            start.elapsed() > Duration::ZERO,
            "connect takes virtual time"
        );
        assert_eq!(c.peer_addr().unwrap(), addr);
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let c = Rc::new(c);
        let writer = {
            let (c, data) = (c.clone(), data.clone());
            coil::spawn(async move {
                let BufResult(r, _) = c.write_all(data).await;
                r.unwrap();
                c.shutdown(std::net::Shutdown::Write).await.unwrap();
            })
        };
        let BufResult(r, back) = c.read_exact(Vec::with_capacity(data.len())).await;
        r.unwrap();
        assert_eq!(back, data);
        writer.await.unwrap();
        let BufResult(n, _) = c.read(Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 0, "EOF after the server closed");
        let total = server.await.unwrap();
        let stats = coil::runtime::stats().unwrap();
        assert_eq!((stats.tasks, stats.timers, stats.io_ops), (0, 0, 0));
        total
    });
    assert_eq!(got, 10_000);
    assert!(report.events > 0);
}

#[test]
fn connect_to_nothing_is_refused_and_refusals_can_be_injected() {
    Builder::new().seed(12).run(async {
        let err = TcpStream::connect("127.0.0.1:9").await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
    });
    Builder::new()
        .seed(12)
        .faults(Faults {
            refuse_connect: 1.0,
            ..Faults::default()
        })
        .run(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let err = TcpStream::connect(l.local_addr().unwrap())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        });
}

#[test]
fn bind_conflicts_and_unspecified_listeners() {
    Builder::new().seed(13).run(async {
        let l = TcpListener::bind("0.0.0.0:8080").unwrap();
        let e = TcpListener::bind("127.0.0.1:8080").err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));
        let accept = coil::spawn(async move { l.accept().await.map(|(_, a)| a) });
        let c = TcpStream::connect("127.0.0.1:8080").await.unwrap();
        assert_eq!(accept.await.unwrap().unwrap(), c.local_addr().unwrap());
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
    });
}

#[test]
fn udp_between_tasks() {
    Builder::new().seed(14).run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_addr = b.local_addr().unwrap();
        for i in 0..10u8 {
            let BufResult(n, _) = a.send_to(vec![i; usize::from(i) + 1], b_addr).await;
            assert_eq!(n.unwrap(), usize::from(i) + 1);
        }
        let mut seen = Vec::new();
        for _ in 0..10 {
            let BufResult(r, buf) = b.recv_from(Vec::with_capacity(64)).await;
            let (n, from) = r.unwrap();
            assert_eq!(from, a.local_addr().unwrap());
            assert_eq!(n, buf.len());
            assert!(buf.iter().all(|&x| usize::from(x) + 1 == n));
            seen.push(buf[0]);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>(), "no datagram lost");
        // connected sockets
        a.connect(b_addr).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        let BufResult(n, _) = a.send(&b"hi"[..]).await;
        assert_eq!(n.unwrap(), 2);
        let BufResult(n, buf) = b.recv(Vec::with_capacity(8)).await;
        assert_eq!(&buf[..n.unwrap()], b"hi");
    });
}

#[test]
fn resets_surface_as_errors() {
    let mut resets = 0;
    for seed in 0..20 {
        let r = Builder::new()
            .seed(seed)
            .faults(Faults {
                reset: 0.2,
                ..Faults::default()
            })
            .run(async {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = l.local_addr().unwrap();
                let srv = coil::spawn(async move {
                    let (s, _) = l.accept().await?;
                    let mut got = Vec::new();
                    loop {
                        let BufResult(n, buf) = s.read(Vec::with_capacity(64)).await;
                        if n? == 0 {
                            return Ok::<_, io::Error>(got);
                        }
                        got.extend_from_slice(&buf);
                    }
                });
                let c = TcpStream::connect(addr).await.unwrap();
                let sent: Vec<u8> = (0..=255).collect();
                let BufResult(w, _) = c.write_all(sent.clone()).await;
                drop(c);
                let got = srv.await.unwrap();
                match (&w, &got) {
                    (Ok(()), Ok(got)) => assert_eq!(got, &sent),
                    (_, Ok(got)) => assert!(sent.starts_with(got)),
                    _ => {}
                }
                w.is_err() || got.is_err()
            });
        resets += usize::from(r);
    }
    assert!(resets > 0, "a 20% reset rate never reset anything");
}

#[test]
fn cancelled_reads_lose_nothing_under_cancel_races() {
    for seed in 0..10 {
        Builder::new()
            .seed(seed)
            .faults(Faults {
                cancel_race: 0.5,
                short_reads: 0.5,
                short_writes: 0.5,
                eagain: 0.2,
                ..Faults::default()
            })
            .run(async {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = l.local_addr().unwrap();
                let writer = coil::spawn(async move {
                    let (s, _) = l.accept().await.unwrap();
                    for i in 0..50u8 {
                        let BufResult(r, _) = s.write_all(vec![i; 37]).await;
                        r.unwrap();
                        sleep(Duration::from_micros(300)).await;
                    }
                });
                let c = TcpStream::connect(addr).await.unwrap();
                let mut got = Vec::new();
                while got.len() < 50 * 37 {
                    // Give up on each read after a short while: the dropped
                    // read's bytes must come back from the next one.
                    let r = coil::time::timeout(
                        Duration::from_micros(200),
                        c.read(Vec::with_capacity(16)),
                    )
                    .await;
                    if let Ok(BufResult(n, buf)) = r {
                        assert!(n.unwrap() > 0);
                        got.extend_from_slice(&buf);
                    }
                }
                let want: Vec<u8> = (0..50u8).flat_map(|i| vec![i; 37]).collect();
                assert_eq!(got, want);
                writer.await.unwrap();
            });
    }
}

#[test]
fn files_and_unix_sockets_are_not_simulated() {
    Builder::new().seed(15).run(async {
        let (a, _b) = coil::net::UnixStream::pair().unwrap();
        let BufResult(r, _) = a.write(&b"x"[..]).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::Unsupported);
    });
}

#[test]
fn tcp_socket_builder_in_memory() {
    Builder::new().seed(5).run(async {
        let s = coil::net::TcpSocket::new_v4().unwrap();
        s.set_reuseaddr(true).unwrap();
        assert!(s.reuseaddr().unwrap(), "the simulator records int options");
        s.set_nodelay(true).unwrap();
        s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = s.listen(4).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = coil::spawn(coil::net::TcpSocket::new_v4().unwrap().connect(addr));
        let (_conn, peer) = listener.accept().await.unwrap();
        let client = client.await.unwrap().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // A simulator socket has no kernel fd to give away.
        let err = client.into_std().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_ttl(9).unwrap();
        assert_eq!(u.ttl().unwrap(), 9);
    });
}
