//! The op paths under Miri (and natively): submission, inline and queued
//! completion, cancellation, the orphan path with late bytes, drops between
//! `block_on` calls and after the runtime, on the epoll driver (Miri models
//! epoll, eventfd and socketpair; not io_uring) and on the simulator.
//!
//! Run by the Miri tier of `.ci/run`; natively it is part of `cargo test`.
#![allow(missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use coil::Runtime;
use coil::io::BufResult;
use coil::net::UnixStream;
use coil::runtime::DriverChoice;

fn epoll() -> Runtime {
    Runtime::builder()
        .driver(DriverChoice::Epoll)
        .build()
        .expect("an epoll runtime")
}

/// Polls `fut` once with a no-op waker.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(fut).poll(&mut cx)
}

/// Reads until `n` bytes came, returning them.
async fn read_n(s: &UnixStream, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let BufResult(r, buf) = s.read(Vec::with_capacity(64)).await;
        assert!(
            r.expect("read") > 0,
            "end of stream after {} bytes",
            got.len()
        );
        got.extend_from_slice(&buf);
    }
    got
}

#[test]
fn queued_and_inline_completions() {
    let rt = epoll();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        // Queued: the read waits for the write.
        let reader = coil::spawn(async move { read_n(&b, 3).await });
        coil::task::yield_now().await;
        let BufResult(r, _) = a.write_all(b"abc".to_vec()).await;
        r.unwrap();
        assert_eq!(reader.await.unwrap(), b"abc");
    });
}

#[test]
fn dropped_in_task_keeps_late_bytes() {
    let rt = epoll();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        {
            let mut read = pin!(b.read(Vec::with_capacity(16)));
            // Submitted and pending: nothing to read yet.
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(read.as_mut().poll(&mut cx).is_pending());
        } // dropped in flight, inside the loop
        let BufResult(r, _) = a.write_all(b"xyz".to_vec()).await;
        r.unwrap();
        assert_eq!(read_n(&b, 3).await, b"xyz");
    });
}

#[test]
fn dropped_between_block_on_calls_and_after_the_runtime() {
    let rt = epoll();
    let (a, b) = rt.block_on(async { UnixStream::pair() }).unwrap();
    let mut first = Box::pin(b.read(Vec::with_capacity(16)));
    let mut second = Box::pin(b.read(Vec::with_capacity(16)));
    rt.block_on(async {
        assert!(poll_once(&mut first).is_pending());
    });
    drop(first); // no loop is current: the op stays in its loop's table
    rt.block_on(async {
        let BufResult(r, _) = a.write_all(b"late".to_vec()).await;
        r.unwrap();
        assert_eq!(read_n(&b, 4).await, b"late");
        assert!(poll_once(&mut second).is_pending());
    });
    drop(rt); // cancels `second`'s op and waits for it
    let BufResult(r, _) = poll_once(&mut second).into_ready();
    assert!(r.is_err(), "an op cancelled by teardown reports an error");
    drop(second);
    drop((a, b));
}

trait IntoReady<T> {
    fn into_ready(self) -> T;
}
impl<T> IntoReady<T> for Poll<T> {
    fn into_ready(self) -> T {
        match self {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("expected Ready"),
        }
    }
}

/// The same op code over the simulator driver: a read dropped in flight in
/// a task, the bytes it would have taken returned by the next read, and a
/// task holding an in-flight accept dropped at the end of the run.
#[test]
fn simulator_orphans_and_teardown() {
    use coil::net::{TcpListener, TcpStream};
    coil::sim::Builder::new().seed(7).run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        {
            let mut read = pin!(server.read(Vec::with_capacity(16)));
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(read.as_mut().poll(&mut cx).is_pending());
        }
        let BufResult(r, _) = client.write_all(b"sim".to_vec()).await;
        r.unwrap();
        let mut got = Vec::new();
        while got.len() < 3 {
            let BufResult(n, buf) = server.read(Vec::with_capacity(16)).await;
            assert!(n.unwrap() > 0);
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, b"sim");
        // Left pending when the run ends: shutdown cancels and drains it.
        let pending = coil::spawn(async move {
            let _ = listener.accept().await;
        });
        coil::task::yield_now().await;
        assert!(!pending.is_finished());
    });
}
