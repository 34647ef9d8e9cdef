#![allow(dead_code, unreachable_pub)]
//! A random program on one connected stream under a *real* driver, checked
//! against a byte-count model.
//!
//! Shared by the property test `tests/prop_stream.rs` and the fuzz target
//! `fuzz/fuzz_targets/stream_program.rs`, which both include this file by
//! path; it uses only coil's public API. The simulator-driven targets
//! (`op_lifecycle`, `sim_program`) cannot reach what this one exists for: the
//! io_uring and epoll drivers' own read paths, i.e. epoll's inline completion
//! (`Driver::submit_or_finish`), its drained rule (a short read waits for the
//! next edge) and its hang-up rule (after `RDHUP`/`HUP` a short read is not
//! trusted), io_uring's async cancel racing a completion, and under both the
//! stash that keeps the bytes of a dropped read for the next one.
//!
//! The program is a byte string. Each step takes an opcode byte and, for some
//! steps, a parameter byte:
//!
//! | op | step |
//! |---|---|
//! | 0 | the peer writes up to `1 + 8·p` bytes without blocking (`MSG_DONTWAIT`) |
//! | 1 | start a read of capacity `1 + 16·(p % 64)` and poll it once; with a read already pending, poll that one once instead |
//! | 2 | poll the pending read once |
//! | 3 | yield to the loop `1 + p % 16` times (the driver runs; the pending read may complete without being polled) |
//! | 4 | drop the pending read (cancel it in flight) |
//! | 5 | await a read to the end, if one must end: bytes are unread or the peer shut down |
//! | 6 | coil writes `1 + 16·p` bytes (`write_all`); the peer reads them all and checks them |
//! | 7 | the peer shuts down its write side (once) |
//!
//! Checks: every read returns exactly the next bytes the peer wrote, in order
//! and never twice (also across dropped reads), at most its capacity, at most
//! the bytes written and not yet read, and `Ok(0)` only after the peer's
//! shutdown with nothing left; no read fails; a read that must end ends
//! within [`MUST_END`] (a lost wakeup or a wrongly trusted drained flag shows
//! up here as a panic, not a hang); the peer receives exactly coil's bytes;
//! and at the end, after the peer's shutdown, draining the stream returns
//! every byte the peer wrote and then end-of-stream.

use std::future::Future;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use coil::Runtime;
use coil::io::BufResult;
use coil::net::{TcpStream, UnixStream};
use coil::runtime::DriverChoice;
use coil::time::timeout;

/// How long a read that must end may take before the run is declared hung.
pub const MUST_END: Duration = Duration::from_secs(10);

/// The byte the peer writes at stream offset `i`.
fn peer_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// The byte coil writes at stream offset `i`.
fn coil_byte(i: usize) -> u8 {
    (i.wrapping_mul(7) % 253) as u8
}

/// Which kind of connected stream the program runs on.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A `socketpair(2)` of Unix stream sockets.
    Unix,
    /// A TCP connection over 127.0.0.1.
    Tcp,
}

/// Decodes the fuzz target's input: the first byte picks the driver (bit 0)
/// and the stream kind (bit 1), the rest is the program. Returns without
/// running if io_uring was picked and this machine has none.
pub fn run_bytes(data: &[u8]) {
    let Some((&cfg, program)) = data.split_first() else {
        return;
    };
    let driver = if cfg & 1 == 0 {
        DriverChoice::Uring
    } else {
        DriverChoice::Epoll
    };
    let kind = if cfg & 2 == 0 { Kind::Unix } else { Kind::Tcp };
    let Ok(rt) = Runtime::builder().driver(driver).build() else {
        assert!(
            matches!(driver, DriverChoice::Uring),
            "an epoll runtime must always build"
        );
        return;
    };
    run_on(&rt, kind, program);
}

/// Builds a runtime with `driver` and runs `program` on a stream of `kind`.
pub fn run(driver: DriverChoice, kind: Kind, program: &[u8]) {
    let rt = Runtime::builder()
        .driver(driver)
        .build()
        .unwrap_or_else(|e| panic!("could not build a {driver:?} runtime: {e}"));
    run_on(&rt, kind, program);
}

/// Runs `program` (module docs) on a fresh stream of `kind` in `rt`.
pub fn run_on(rt: &Runtime, kind: Kind, program: &[u8]) {
    rt.block_on(async {
        let (coil_side, peer) = connect(kind);
        Model::new(peer).run(&coil_side, program).await;
    });
}

/// coil's end of the stream.
enum Side {
    Unix(UnixStream),
    Tcp(TcpStream),
}

type ReadFut<'a> = Pin<Box<dyn Future<Output = BufResult<usize, Vec<u8>>> + 'a>>;

impl Side {
    /// A read into a fresh buffer of at least `cap` bytes; also returns the
    /// buffer's real capacity, the most the read may return.
    fn read(&self, cap: usize) -> (usize, ReadFut<'_>) {
        let buf = Vec::with_capacity(cap);
        let cap = buf.capacity();
        let fut: ReadFut<'_> = match self {
            Side::Unix(s) => Box::pin(s.read(buf)),
            Side::Tcp(s) => Box::pin(s.read(buf)),
        };
        (cap, fut)
    }

    async fn write_all(&self, buf: Vec<u8>) -> std::io::Result<()> {
        match self {
            Side::Unix(s) => s.write_all(buf).await.0,
            Side::Tcp(s) => s.write_all(buf).await.0,
        }
    }
}

/// The peer's end: a blocking std socket (reads wait with a timeout; writes
/// use `MSG_DONTWAIT` so they never block).
enum Peer {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
}

impl Peer {
    fn fd(&self) -> i32 {
        match self {
            Peer::Unix(s) => s.as_raw_fd(),
            Peer::Tcp(s) => s.as_raw_fd(),
        }
    }

    /// Writes what fits now; returns how many bytes went.
    fn write_now(&self, buf: &[u8]) -> usize {
        // SAFETY: `buf` is a live slice for the call; the fd is ours.
        let n = unsafe {
            libc::send(
                self.fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::WouldBlock,
                "the peer's send failed: {e}"
            );
            return 0;
        }
        n as usize
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        match self {
            Peer::Unix(s) => s.read_exact(buf),
            Peer::Tcp(s) => s.read_exact(buf),
        }
    }

    fn shutdown_write(&self) {
        let r = match self {
            Peer::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Peer::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        };
        r.expect("the peer's shutdown(Write)");
    }
}

/// A connected pair: coil's side adopted into the running loop, the peer
/// left a blocking std socket with a read timeout.
fn connect(kind: Kind) -> (Side, Peer) {
    match kind {
        Kind::Unix => {
            let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
            b.set_read_timeout(Some(MUST_END)).unwrap();
            let a = UnixStream::from_std(a).expect("adopting a Unix stream");
            (Side::Unix(a), Peer::Unix(b))
        }
        Kind::Tcp => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).expect("connect");
            let (ours, _) = l.accept().expect("accept");
            peer.set_nodelay(true).unwrap();
            // Close with a reset (SO_LINGER 0), not a FIN: the peer closes
            // first, and thousands of fuzz runs would otherwise leave as many
            // ports in TIME_WAIT. Its shutdown(Write) still sends a FIN.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: `linger` is a live local of the size passed; the fd is ours.
            let r = unsafe {
                libc::setsockopt(
                    peer.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&raw const linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
            peer.set_read_timeout(Some(MUST_END)).unwrap();
            ours.set_nodelay(true).unwrap();
            let ours = TcpStream::from_std(ours).expect("adopting a TCP stream");
            (Side::Tcp(ours), Peer::Tcp(peer))
        }
    }
}

/// The program's state and the model it is checked against.
struct Model {
    peer: Peer,
    /// Bytes the peer wrote (stream offsets `0..written` were sent).
    written: usize,
    /// Bytes coil's reads returned.
    consumed: usize,
    /// Bytes coil wrote and the peer checked.
    coil_written: usize,
    /// The peer shut down its write side.
    eof_sent: bool,
}

impl Model {
    fn new(peer: Peer) -> Model {
        Model {
            peer,
            written: 0,
            consumed: 0,
            coil_written: 0,
            eof_sent: false,
        }
    }

    /// Checks one read's result against the model and advances it.
    fn check_read(&mut self, cap: usize, BufResult(r, buf): BufResult<usize, Vec<u8>>) {
        let n = r.unwrap_or_else(|e| {
            panic!(
                "a read failed: {e} (written {}, read {})",
                self.written, self.consumed
            )
        });
        assert_eq!(buf.len(), n, "the buffer's length must grow by the count");
        assert!(n <= cap, "read {n} bytes into a capacity of {cap}");
        let unread = self.written - self.consumed;
        if n == 0 {
            assert!(
                self.eof_sent && unread == 0,
                "end-of-stream with {unread} bytes unread (peer shut down: {})",
                self.eof_sent
            );
            return;
        }
        assert!(
            n <= unread,
            "read {n} bytes but only {unread} were written and not read"
        );
        for (k, &b) in buf.iter().enumerate() {
            let at = self.consumed + k;
            assert_eq!(
                b,
                peer_byte(at),
                "wrong byte at stream offset {at}: lost, repeated or reordered"
            );
        }
        self.consumed += n;
    }

    /// A read may wait forever unless bytes are unread or the peer shut down.
    fn must_end(&self) -> bool {
        self.written > self.consumed || self.eof_sent
    }

    async fn run(mut self, side: &Side, program: &[u8]) {
        let mut pending: Option<(usize, ReadFut<'_>)> = None;
        let mut steps = program.iter().copied();
        while let Some(op) = steps.next() {
            match op % 8 {
                0 => {
                    let len = 1 + 8 * usize::from(steps.next().unwrap_or(0));
                    if !self.eof_sent {
                        let bytes: Vec<u8> =
                            (self.written..self.written + len).map(peer_byte).collect();
                        self.written += self.peer.write_now(&bytes);
                    }
                }
                1 | 2 => {
                    if op % 8 == 1 {
                        let cap = 1 + 16 * usize::from(steps.next().unwrap_or(0) % 64);
                        pending.get_or_insert_with(|| side.read(cap));
                    }
                    if let Some((cap, mut fut)) = pending.take() {
                        match poll_once(&mut fut).await {
                            Poll::Ready(res) => self.check_read(cap, res),
                            Poll::Pending => pending = Some((cap, fut)),
                        }
                    }
                }
                3 => {
                    for _ in 0..1 + steps.next().unwrap_or(0) % 16 {
                        coil::task::yield_now().await;
                    }
                }
                4 => drop(pending.take()),
                5 => {
                    if self.must_end() {
                        let (cap, fut) = pending.take().unwrap_or_else(|| side.read(512));
                        let res = self.bounded(fut).await;
                        self.check_read(cap, res);
                    }
                }
                6 => {
                    let len = 1 + 16 * usize::from(steps.next().unwrap_or(0));
                    let bytes: Vec<u8> = (self.coil_written..self.coil_written + len)
                        .map(coil_byte)
                        .collect();
                    // The peer reads only afterwards, but `len` < 4.1 KiB fits in
                    // any socket buffer, so the write must end without it.
                    match timeout(MUST_END, side.write_all(bytes.clone())).await {
                        Ok(r) => r.expect("coil's write_all of a few KiB"),
                        Err(_) => panic!(
                            "a write_all of {len} bytes did not end within {MUST_END:?}: \
                             a lost wakeup"
                        ),
                    }
                    let mut got = vec![0; len];
                    self.peer
                        .read_exact(&mut got)
                        .expect("the peer reads what coil's write_all reported sent");
                    assert_eq!(got, bytes, "the peer received other bytes than coil wrote");
                    self.coil_written += len;
                }
                _ => {
                    if !self.eof_sent {
                        self.peer.shutdown_write();
                        self.eof_sent = true;
                    }
                }
            }
        }
        // Drain: every byte the peer wrote comes back, then end-of-stream.
        drop(pending.take());
        if !self.eof_sent {
            self.peer.shutdown_write();
            self.eof_sent = true;
        }
        loop {
            let (cap, fut) = side.read(4096);
            let res = self.bounded(fut).await;
            let done = res.0.as_ref().is_ok_and(|&n| n == 0);
            self.check_read(cap, res);
            if done {
                break;
            }
        }
        assert_eq!(self.consumed, self.written, "bytes lost at the end");
    }

    /// Awaits a read that must end, failing the run if it does not.
    async fn bounded(&self, fut: ReadFut<'_>) -> BufResult<usize, Vec<u8>> {
        match timeout(MUST_END, fut).await {
            Ok(res) => res,
            Err(_) => panic!(
                "a read did not end within {MUST_END:?} although {} bytes were unread \
                 (peer shut down: {}): a lost wakeup",
                self.written - self.consumed,
                self.eof_sent
            ),
        }
    }
}

/// Polls `fut` once with the task's own context.
async fn poll_once<T>(fut: &mut Pin<Box<dyn Future<Output = T> + '_>>) -> Poll<T> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}
