//! 9,000 concurrent loopback connections, echoing 1 KiB each, under each
//! driver (docs/reliability.md, check 21; the fd limit here is 20,000, so 9k
//! connections — 18k fds — fit in one process). One `#[test]` in this binary,
//! so no other test competes for fds.

use crate::support;

use std::rc::Rc;

use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};
use coil::runtime::DriverChoice;
use coil::spawn;

/// `COIL_STRESS_CONNS` if set; else 9 000 with `COIL_STRESS_FULL=1` (CI's
/// `matrix-deep` tier), 3 000 in a plain `cargo test`.
fn connections() -> usize {
    std::env::var("COIL_STRESS_CONNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if std::env::var_os("COIL_STRESS_FULL").is_some() {
            9000
        } else {
            3000
        })
}

fn echo_many(choice: DriverChoice, n: usize) {
    let rt = coil::Runtime::builder().driver(choice).build().unwrap();
    rt.block_on(async move {
        let l = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = l.local_addr().unwrap();
        let l2 = l.clone();
        let accepted = Rc::new(std::cell::Cell::new(0usize));
        let acc2 = accepted.clone();
        let server = spawn(async move {
            let mut conns = Vec::with_capacity(n);
            for _ in 0..n {
                let (s, _) = l2.accept().await.unwrap();
                acc2.set(acc2.get() + 1);
                conns.push(spawn(async move {
                    let BufResult(r, buf) = s.read_exact(Vec::with_capacity(1024)).await;
                    r.unwrap();
                    let BufResult(r, _) = s.write_all(buf).await;
                    r.unwrap();
                    // Keep the socket open until the client has read.
                    let BufResult(r, _) = s.read(Vec::with_capacity(1)).await;
                    assert_eq!(r.unwrap(), 0);
                }));
            }
            for c in conns {
                c.await.unwrap();
            }
        });
        // Connect everything first so that all n connections are open at
        // once; in chunks, letting the server's accepts keep up, so the
        // listen backlog (1024) never overflows (an overflowed backlog drops
        // the handshake's last ACK and the client later sees a reset).
        let mut streams = Vec::with_capacity(n);
        while streams.len() < n {
            let chunk: Vec<_> = (streams.len()..n.min(streams.len() + 256))
                .map(|_| spawn(TcpStream::connect(addr)))
                .collect();
            for c in chunk {
                streams.push(c.await.unwrap().unwrap());
            }
            while accepted.get() + 512 < streams.len() {
                coil::task::yield_now().await;
            }
        }
        let echoes: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                spawn(async move {
                    let msg: Vec<u8> = (0..1024).map(|j| ((i * 31 + j) % 251) as u8).collect();
                    let BufResult(r, msg) = c.write_all(msg).await;
                    r.unwrap();
                    let BufResult(r, back) = c.read_exact(Vec::with_capacity(1024)).await;
                    r.unwrap();
                    assert_eq!(back, msg);
                })
            })
            .collect();
        for e in echoes {
            e.await.unwrap();
        }
        server.await.unwrap();
    });
}

#[test]
fn nine_thousand_connections() {
    let n = support::scaled(connections());
    support::run_watched(move || {
        for choice in [DriverChoice::Uring, DriverChoice::Epoll] {
            let start = std::time::Instant::now();
            echo_many(choice, n);
            eprintln!(
                "{choice:?}: {n} connections echoed in {:?}",
                start.elapsed()
            );
        }
    });
}
