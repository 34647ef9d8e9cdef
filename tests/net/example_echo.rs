//! The echo example as a real client sees it: a std (blocking) TCP client
//! on another thread talks to `examples/echo.rs`'s server under each driver.
//! A line that is not UTF-8 ends that connection only, after the good lines
//! before it came back; the server keeps serving others. A client that
//! resets the connection is reported as such.
#![allow(missing_docs)]

#[path = "../../examples/echo.rs"]
#[allow(dead_code, unreachable_pub)]
mod echo;
use crate::support;

use std::io::{Read, Write};
use std::net::Shutdown;

use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};

/// Sends `data`, shuts the write side, returns everything read until EOF.
fn exchange(addr: std::net::SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(support::WATCHDOG)).unwrap();
    s.write_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    match s.read_to_end(&mut back) {
        Ok(_) => {}
        // The server may reset a connection it closes with unread input.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the echo: {e}"),
    }
    back
}

driver_test! {
    fn bad_line_ends_only_its_connection_after_flushing_good_lines(rt) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coil::spawn(echo::serve_forever(listener));
            let clients = coil::blocking::spawn_blocking(move || {
                let first = exchange(addr, b"good one\nsecond\nbad \xff line\nnever\n");
                let second = exchange(addr, b"still served\n");
                (first, second)
            });
            let (first, second) = clients.await.unwrap();
            assert_eq!(first, b"good one\nsecond\n", "the good lines come back, nothing after");
            assert_eq!(second, b"still served\n");
            server.cancel();
        });
    }
}

driver_test! {
    fn a_reset_is_reported_as_the_reset(rt) {
        // The client sends two lines and a partial one, then resets
        // (SO_LINGER 0). The server echoes the two lines into its writer,
        // holding them while more input is buffered, and its next read meets
        // the reset; the flush of the held lines then fails too (EPIPE),
        // and `serve` used to report that instead of the reset.
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (conn, _) = listener.accept().await.unwrap();
            let BufResult(r, _) = client.write_all(&b"one\ntwo\npartial"[..]).await;
            r.unwrap();
            client.set_linger(Some(std::time::Duration::ZERO)).unwrap();
            drop(client);
            let err = echo::serve(conn).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        });
    }
}
