//! `hyper` (`cargo test --features hyper --test compat_hyper`): hyper's own
//! HTTP/1.1 client talks to `examples/hyper_server.rs`'s server, both on
//! coil, over loopback, on each driver: 100 requests over several
//! connections, every body checked; and `HyperExecutor`, `HyperTimer`. Then
//! the server as raw std clients and hostile ones see it: bodies over
//! `POST /echo`'s limit, and a full fd table.
#![allow(missing_docs)]

#[path = "../examples/hyper_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod hyper_server;
mod support;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use coil::compat::{HyperExecutor, HyperTimer};
use coil::net::TcpListener;
use hyper::rt::{Executor, Timer};
use hyper::{Request, StatusCode};
use hyper_server::{Full, connect, fetch};

const CONNECTIONS: usize = 4;
const REQUESTS: usize = 100;

#[coil::test(drivers = "all")]
async fn hyper_client_and_server_on_coil() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = coil::spawn(hyper_server::serve_forever(listener));

    // CONNECTIONS clients at once, REQUESTS in all, each on a kept-alive
    // connection; every body differs, so a mixed-up response shows.
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            coil::spawn(async move {
                let mut sender = connect(addr).await?;
                let mut done = 0;
                for i in (c..REQUESTS).step_by(CONNECTIONS) {
                    let body = format!("request {i} ").repeat(1 + i * 37);
                    let req = Request::post(format!("http://{addr}/echo"))
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let (status, got) = fetch(&mut sender, req).await?;
                    assert_eq!(status, StatusCode::OK);
                    assert!(got == body.as_bytes(), "request {i}: wrong body");
                    let get = Request::get(format!("http://{addr}/"))
                        .body(Full::default())
                        .unwrap();
                    let (status, got) = fetch(&mut sender, get).await?;
                    assert_eq!(
                        (status, got.as_slice()),
                        (StatusCode::OK, &b"Hello, World!"[..])
                    );
                    done += 1;
                }
                Ok::<usize, io::Error>(done)
            })
        })
        .collect();
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap()?;
    }
    assert_eq!(total, REQUESTS);

    let mut sender = connect(addr).await?;
    let req = Request::get(format!("http://{addr}/missing"))
        .body(Full::default())
        .unwrap();
    assert_eq!(fetch(&mut sender, req).await?.0, StatusCode::NOT_FOUND);
    server.cancel();
    Ok(())
}

#[coil::test(drivers = "all")]
async fn executor_spawns_on_this_loop_and_timer_sleeps() {
    // Not Send: HyperExecutor runs it on this thread's loop.
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    HyperExecutor.execute(async move { flag.set(true) });
    coil::task::yield_now().await;
    assert!(ran.get(), "the executed future ran on this loop");

    let start = std::time::Instant::now();
    HyperTimer.sleep(Duration::from_millis(20)).await;
    assert!(start.elapsed() >= Duration::from_millis(20), "never early");

    // reset moves the deadline of a sleep in flight, earlier or later.
    let mut sleep = HyperTimer.sleep(Duration::from_secs(3600));
    let at = std::time::Instant::now() + Duration::from_millis(10);
    HyperTimer.reset(&mut sleep, at);
    let done = coil::time::timeout(Duration::from_secs(60), sleep).await;
    assert!(done.is_ok() && std::time::Instant::now() >= at);
}

/// Sends `request` on a new std connection and returns everything the server
/// sends back until it closes (a reset after the answer ends it too); gives
/// up after 10 s.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!("no answer within 10 s (got {} bytes)", answer.len())
            }
            Err(e) => panic!("after {} bytes of answer: {e}", answer.len()),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// `POST /echo` holds at most `MAX_ECHO_BODY` bytes of a body: one a byte
/// longer, declared (`Content-Length`) or streamed (chunked), is answered 413
/// and its connection closed rather than buffered whole (it used to be
/// collected without bound: a client streaming gigabytes grew the server by
/// as much). A body of exactly the limit is echoed.
#[coil::test(drivers = "all")]
async fn echo_bodies_over_the_limit_get_413() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = coil::spawn(hyper_server::serve_forever(listener));
    let max = hyper_server::MAX_ECHO_BODY;
    let (declared, streamed, at_limit) = coil::blocking::spawn_blocking(move || {
        let head = |len: &str| format!("POST /echo HTTP/1.1\r\nHost: x\r\n{len}\r\n\r\n");
        // Answered on the head alone: no byte of the body is sent.
        let declared = exchange(
            addr,
            head(&format!("Content-Length: {}", max + 1)).as_bytes(),
        );
        // One chunk a byte over the limit, nothing after it: the server has
        // read all there is when it answers (no reset can cut the answer).
        let mut chunked = head("Transfer-Encoding: chunked").into_bytes();
        chunked.extend_from_slice(format!("{:x}\r\n", max + 1).as_bytes());
        chunked.resize(chunked.len() + max + 1, b'c');
        let streamed = exchange(addr, &chunked);
        let mut full = head(&format!("Content-Length: {max}\r\nConnection: close")).into_bytes();
        full.resize(full.len() + max, b'f');
        (declared, streamed, exchange(addr, &full))
    })
    .await
    .unwrap();
    for (what, answer) in [("declared", &declared), ("streamed", &streamed)] {
        assert!(
            answer.starts_with("HTTP/1.1 413 ") && answer.ends_with("request body over 1 MiB"),
            "{what}: {answer:?}"
        );
    }
    assert!(
        at_limit.starts_with("HTTP/1.1 200 OK"),
        "{:?}",
        &at_limit[..at_limit.len().min(200)]
    );
    assert!(
        at_limit.ends_with(&"f".repeat(max)),
        "the body at the limit is echoed whole"
    );
    server.cancel();
    Ok(())
}

/// Set in the child process of `out_of_fds_the_server_keeps_accepting`.
const EMFILE_ENV: &str = "COIL_HYPER_EMFILE_CHILD";

/// Out of fds (`ulimit -n` reached), the server reports the accept error,
/// pauses, and serves the clients waiting in the backlog once fds are free
/// (`serve_forever` used to end on the first `EMFILE`, its error unseen,
/// and every later client hung unanswered). A child process per driver with
/// a soft RLIMIT_NOFILE of 64.
#[test]
fn out_of_fds_the_server_keeps_accepting() {
    if std::env::var_os(EMFILE_ENV).is_some() {
        return emfile_child();
    }
    support::rerun_per_driver("out_of_fds_the_server_keeps_accepting", EMFILE_ENV);
}

fn emfile_child() {
    coil::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A client waits in the backlog, and no fd is left to accept it.
        let (mut queued, filler) = support::connect_then_fill_fd_table(addr, 1);
        let mut server = coil::spawn(hyper_server::serve_forever(listener));
        // Its first poll (here) meets EMFILE at once; a server that gives up
        // on it ends well within this bound.
        if let Ok(ended) = coil::time::timeout(Duration::from_millis(100), &mut server).await {
            panic!("serve_forever ended with a full fd table: {ended:?}");
        }
        drop(filler);
        let (first, second) = coil::blocking::spawn_blocking(move || {
            let mut client = queued.pop().unwrap();
            client
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut first = String::new();
            let read = client.read_to_string(&mut first);
            let second = exchange(
                addr,
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            (read.map(|_| first), second)
        })
        .await
        .unwrap();
        let first = first.expect("the client queued while fds were out is answered");
        assert!(first.ends_with("Hello, World!"), "{first:?}");
        assert!(second.ends_with("Hello, World!"), "{second:?}");
        server.cancel();
    });
}
