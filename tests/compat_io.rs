//! `futures-io` (`cargo test --features futures-io --test compat_io`):
//! `compat::Compat` behind `futures_io::{AsyncRead, AsyncBufRead,
//! AsyncWrite}` on TCP, Unix and file streams, driven by hand-written poll
//! loops, on each driver; and its lossless cancellation.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coil::compat::{Compat, OwnedRead, OwnedWrite};
use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream, UnixStream};
use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

async fn read_some<T: OwnedRead>(c: &mut Compat<T>, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| Pin::new(&mut *c).poll_read(cx, buf)).await
}

async fn read_to_end<T: OwnedRead>(c: &mut Compat<T>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 1000];
    loop {
        match read_some(c, &mut chunk).await? {
            0 => return Ok(out),
            n => out.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn write_all<T: OwnedWrite>(c: &mut Compat<T>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *c).poll_write(cx, data)).await?;
        assert!(n > 0, "poll_write accepted nothing");
        data = &data[n..];
    }
    Ok(())
}

async fn flush<T: OwnedWrite>(c: &mut Compat<T>) -> io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *c).poll_flush(cx)).await
}

async fn close<T: OwnedWrite>(c: &mut Compat<T>) -> io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *c).poll_close(cx)).await
}

/// `len` bytes of a pattern that shows a lost, repeated or reordered chunk.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[coil::test(drivers = "all")]
async fn tcp_round_trip_through_futures_io() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let data = pattern(1 << 20);
    let sent = data.clone();
    let client = coil::spawn(async move {
        let mut c = Compat::new(TcpStream::connect(addr).await?);
        // Uneven slices, and a vectored write of three of them.
        for chunk in sent[..1000].chunks(333) {
            write_all(&mut c, chunk).await?;
        }
        let rest = &sent[1000..];
        let (a, b) = rest.split_at(rest.len() / 2);
        let bufs = [
            io::IoSlice::new(&a[..10]),
            io::IoSlice::new(&a[10..]),
            io::IoSlice::new(b),
        ];
        let n = poll_fn(|cx| Pin::new(&mut c).poll_write_vectored(cx, &bufs)).await?;
        assert!(n > 10, "the vectored write went past the first slice: {n}");
        write_all(&mut c, &rest[n..]).await?;
        close(&mut c).await?;
        // Writing after close is an error, not a silent drop.
        let late = poll_fn(|cx| Pin::new(&mut c).poll_write(cx, b"late")).await;
        assert_eq!(late.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        Ok::<(), io::Error>(())
    });
    let (conn, _) = listener.accept().await?;
    // A small buffer: many read ops, each copied out in several poll_reads.
    let mut server = Compat::with_capacity(4096, conn);
    let got = read_to_end(&mut server).await?;
    client.await.unwrap()?;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
    Ok(())
}

#[coil::test(drivers = "all")]
async fn unix_halves_and_buf_read() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let (_a_read, a_write) = a.into_split();
    let (b_read, _b_write) = b.into_split();
    let mut w = Compat::new(a_write);
    let mut r = Compat::new(b_read);
    write_all(&mut w, b"first line\nsecond").await?;
    flush(&mut w).await?;
    close(&mut w).await?;

    // AsyncBufRead: fill_buf shows the buffered bytes, consume takes them.
    let mut lines = Vec::new();
    let mut line = Vec::new();
    loop {
        let avail = poll_fn(|cx| Pin::new(&mut r).poll_fill_buf(cx).map_ok(|b| b.to_vec())).await?;
        if avail.is_empty() {
            break;
        }
        let take = avail
            .iter()
            .position(|&c| c == b'\n')
            .map_or(avail.len(), |i| i + 1);
        line.extend_from_slice(&avail[..take]);
        Pin::new(&mut r).consume(take);
        if line.ends_with(b"\n") {
            lines.push(String::from_utf8(std::mem::take(&mut line)).unwrap());
        }
    }
    lines.push(String::from_utf8(line).unwrap());
    assert_eq!(lines, ["first line\n", "second"]);
    Ok(())
}

#[coil::test(drivers = "all")]
async fn a_read_whose_caller_went_away_loses_nothing() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let mut r = Compat::new(b);
    let mut buf = [0u8; 64];
    // The caller gives up: its poll_read future is dropped while pending.
    let gave_up = coil::time::timeout(Duration::from_millis(5), read_some(&mut r, &mut buf)).await;
    assert!(gave_up.is_err(), "nothing was sent yet");
    // The read op is still the adapter's; its bytes arrive while no one polls.
    let BufResult(res, _) = a.write_all(&b"kept"[..]).await;
    res?;
    // Not a wait for anything: the loop parks, and reaps the read's completion
    // while no one polls the adapter (the read below passes either way).
    coil::time::sleep(Duration::from_millis(5)).await;
    let n = read_some(&mut r, &mut buf).await?;
    assert_eq!(&buf[..n], b"kept");

    // Given up again, then unwrapped: the native read gets the bytes.
    let gave_up = coil::time::timeout(Duration::from_millis(5), read_some(&mut r, &mut buf)).await;
    assert!(gave_up.is_err());
    let BufResult(res, _) = a.write_all(&b"after"[..]).await;
    res?;
    let (b, rest) = r.into_parts();
    assert!(rest.is_empty());
    let BufResult(res, got) = b.read_exact(Vec::with_capacity(5)).await;
    res?;
    assert_eq!(got, b"after");
    Ok(())
}

#[coil::test(drivers = "all")]
async fn into_parts_hands_back_the_unread_bytes() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let BufResult(res, _) = a.write_all(&b"hello world"[..]).await;
    res?;
    let mut r = Compat::new(b);
    let mut five = [0u8; 5];
    assert_eq!(read_some(&mut r, &mut five).await?, 5);
    assert_eq!(&five, b"hello");
    let (_b, rest) = r.into_parts();
    assert_eq!(rest, b" world");
    Ok(())
}

#[coil::test(drivers = "all")]
async fn file_through_futures_io() -> io::Result<()> {
    // One path per test run (this test runs once per driver, concurrently).
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let name = format!("coil-compat-io-{}-{run}", std::process::id());
    let path = std::env::temp_dir().join(name);
    let data = pattern(100_000);
    let mut w = Compat::new(coil::fs::File::create(&path).await?);
    write_all(&mut w, &data).await?;
    close(&mut w).await?;
    let (f, _) = w.into_parts();
    assert_eq!(f.position(), data.len() as u64);
    f.close().await?;

    let mut r = Compat::with_capacity(10_000, coil::fs::File::open(&path).await?);
    let got = read_to_end(&mut r).await?;
    coil::fs::remove_file(&path).await?;
    assert!(got == data, "file bytes differ ({} read)", got.len());
    Ok(())
}

#[coil::test(drivers = "all")]
async fn close_after_the_peer_reset_is_ok() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?).await?;
    let (conn, _) = listener.accept().await?;
    // Linger 0: closing sends a reset, not a FIN.
    client.set_linger(Some(Duration::ZERO))?;
    drop(client);
    let mut server = Compat::new(conn);
    let mut buf = [0u8; 16];
    // The reset has arrived once a read sees it.
    let read = read_some(&mut server, &mut buf).await;
    assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    // shutdown(2) says ENOTCONN now; there is nothing left to close.
    assert_eq!(
        server
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .await
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotConnected
    );
    close(&mut server).await
}

/// Under the simulator too: its in-memory network behind the same adapter,
/// and a read given up on (virtual time) still loses nothing.
#[coil::test(driver = "sim", seed = 14)]
async fn tcp_through_futures_io_on_the_simulator() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = coil::spawn(async move {
        let mut c = Compat::new(TcpStream::connect(addr).await?);
        coil::time::sleep(Duration::from_millis(50)).await;
        write_all(&mut c, b"late but whole").await?;
        close(&mut c).await
    });
    let (conn, _) = listener.accept().await?;
    let mut server = Compat::new(conn);
    let mut buf = [0u8; 64];
    let gave_up =
        coil::time::timeout(Duration::from_millis(10), read_some(&mut server, &mut buf)).await;
    assert!(gave_up.is_err(), "the client waits 50 ms before writing");
    let got = read_to_end(&mut server).await?;
    client.await.unwrap()?;
    assert_eq!(got, b"late but whole");
    Ok(())
}
