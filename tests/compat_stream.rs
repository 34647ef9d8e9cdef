//! `futures-core` (`cargo test --features futures-core --test compat_stream`):
//! coil's streams consumed through `futures_core::Stream` by a hand-written
//! poll loop, and a `futures_core` stream driven by coil's `StreamExt`, on
//! each driver.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use coil::compat::StreamCompat;
use coil::io::{BufReader, BufResult};
use coil::net::{TcpListener, TcpStream, UnixStream};
use coil::stream::{self, StreamExt};

/// The next item through `futures_core::Stream` only.
async fn next_fc<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *s), cx)).await
}

/// Every item through `futures_core::Stream` only.
async fn collect_fc<S: futures_core::Stream + Unpin>(mut s: S) -> Vec<S::Item> {
    let mut v = Vec::new();
    while let Some(x) = next_fc(&mut s).await {
        v.push(x);
    }
    v
}

#[coil::test(drivers = "all")]
async fn adapters_and_generators_are_futures_core_streams() {
    let s = stream::iter(1..=10)
        .filter(|x| x % 2 == 0)
        .map(|x| x * 3)
        .enumerate()
        .skip(1)
        .take(3);
    assert_eq!(futures_core::Stream::size_hint(&s).1, Some(3));
    assert_eq!(collect_fc(s).await, [(1, 12), (2, 18), (3, 24)]);

    let g = stream::generate(|co| async move {
        for i in 0..3u32 {
            co.yield_(i).await;
            coil::task::yield_now().await;
        }
    });
    let chained = g.chain(stream::iter(10..12)).then(|x| async move { x + 1 });
    assert_eq!(collect_fc(chained).await, [1, 2, 3, 11, 12]);

    let done = coil::as_completed(vec![
        Box::pin(async { 1 }) as Pin<Box<dyn Future<Output = i32>>>,
        Box::pin(async { 2 }),
    ]);
    let mut got = collect_fc(done).await;
    got.sort();
    assert_eq!(got, [1, 2]);
}

#[coil::test(drivers = "all")]
async fn incoming_and_lines_are_futures_core_streams() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = coil::spawn(async move {
        for _ in 0..2 {
            let s = TcpStream::connect(addr).await?;
            let BufResult(r, _) = s.write_all(&b"hi"[..]).await;
            r?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut incoming = listener.incoming();
    for _ in 0..2 {
        let conn = next_fc(&mut incoming).await.expect("incoming never ends")?;
        let BufResult(n, buf) = conn.read_exact(Vec::with_capacity(2)).await;
        n?;
        assert_eq!(buf, b"hi");
    }
    client.await.unwrap()?;

    let (a, b) = UnixStream::pair()?;
    let BufResult(r, _) = a.write_all(&b"one\ntwo\n"[..]).await;
    r?;
    drop(a);
    let lines: Vec<String> = collect_fc(BufReader::new(b).lines())
        .await
        .into_iter()
        .collect::<std::io::Result<_>>()?;
    assert_eq!(lines, ["one", "two"]);
    Ok(())
}

/// A stream written against `futures_core` only: counts down, pending once
/// between items (it wakes itself), like a stream from another crate.
struct Countdown {
    left: u32,
    ready: bool,
}

impl futures_core::Stream for Countdown {
    type Item = u32;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if !std::mem::replace(&mut self.ready, false) {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.left -= 1;
        Poll::Ready(Some(self.left))
    }
}

#[coil::test(drivers = "all")]
async fn stream_compat_carries_streams_both_ways() {
    // futures_core -> coil: StreamExt's adapters on a foreign stream.
    let foreign = Countdown {
        left: 4,
        ready: false,
    };
    let v: Vec<u32> = StreamCompat::new(foreign).map(|x| x * 2).collect().await;
    assert_eq!(v, [6, 4, 2, 0]);

    // coil -> futures_core, and back again: nothing lost or repeated.
    let there = StreamCompat::new(stream::iter(["a", "b"]));
    let back = StreamCompat::new(there);
    assert_eq!(back.collect::<Vec<_>>().await, ["a", "b"]);

    // Through a pinned (not moved) wrapper: its pin projection.
    let mut pinned = std::pin::pin!(StreamCompat::new(stream::iter(0..2)));
    let mut got = Vec::new();
    while let Some(x) = poll_fn(|cx| futures_core::Stream::poll_next(pinned.as_mut(), cx)).await {
        got.push(x);
    }
    assert_eq!(got, [0, 1]);
}
