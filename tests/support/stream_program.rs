#![allow(dead_code, unreachable_pub)]
//! A random program on one connected stream under a *real* driver, checked
//! against a byte-count model.
//!
//! Shared by the property test `tests/props/prop_stream.rs` and the fuzz target
//! `fuzz/fuzz_targets/stream_program.rs`, which both include this file by
//! path; it uses only coil's public API. The simulator-driven targets
//! (`op_lifecycle`, `sim_program`) cannot reach what this one exists for: the
//! io_uring and epoll drivers' own read paths, i.e. epoll's inline completion
//! (`Driver::submit_or_finish`), its drained rule (a short read waits for the
//! next edge) and its hang-up rule (after `RDHUP`/`HUP` a short read is not
//! trusted), io_uring's async cancel racing a completion, and under both the
//! stash that keeps the bytes of a dropped read for the next one.
//!
//! The program is a byte string. Each step takes an opcode byte (taken
//! `% 11`) and, for some steps, a parameter byte `p`. Steps 0–7 each run in
//! their own `Runtime::block_on` on the stream's runtime, so every step
//! boundary leaves the loop with whatever read is pending still in flight and
//! re-enters it with a new `block_on`; steps 8–10 run between two of those
//! calls:
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
//! | 8 | outside any loop: drop the pending read |
//! | 9 | outside any loop: poll the pending read once (with a no-op waker) |
//! | 10 | in a `block_on` of a second runtime (epoll if `p & 1 == 0`, else io_uring when there is one): if `p & 2`, start a read of capacity `1 + 16·(p >> 4)` on the stream there and poll it once; then, by `(p >> 2) % 3`, leave the pending read alone, drop it there, or poll it there (and drop it there if it panicked) |
//!
//! Checks: every read returns exactly the next bytes the peer wrote, in order
//! and never twice (also across dropped reads), at most its capacity, at most
//! the bytes written and not yet read, and `Ok(0)` only after the peer's
//! shutdown with nothing left; no read fails; a read that must end ends
//! within [`MUST_END`] (a lost wakeup or a wrongly trusted drained flag shows
//! up here as a panic, not a hang); the peer receives exactly coil's bytes;
//! and at the end, after the peer's shutdown, draining the stream returns
//! every byte the peer wrote and then end-of-stream, with no op left in
//! flight.
//!
//! Steps 8–10 check the rules for using an op outside its loop
//! (`docs/cancellation.md`). The runner knows whether the pending read's op
//! is in flight (a poll on its loop that answered `Pending` raised
//! `stats().io_ops`; otherwise the read still waits for a dropped read's
//! completion and has submitted nothing) and whether it is *fresh* (its loop
//! has not run its driver since that poll, so its completion cannot have
//! been handed over). Then:
//! - polled outside any loop, an op in flight that is fresh answers
//!   `Pending`; one that is not fresh answers `Pending` or its result; a read
//!   with no op in flight ends at once with the "outside a coil event loop"
//!   error, even when the stash holds bytes;
//! - polled in the second runtime, an op in flight that is fresh panics with
//!   "different coil event loop"; one that is not fresh panics so or gives
//!   its result; a read with no op in flight ends at once with the
//!   "different coil event loop" error;
//! - a read started in the second runtime ends at once with the "different
//!   coil event loop" error, whatever the stash holds (the loop check comes
//!   first, and the bytes stay for the stream's own loop);
//! - wherever a read was dropped or panicked, no byte is lost: the model's
//!   order checks and the final drain hold as for any dropped read.

use std::cell::Cell;
use std::future::Future;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
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
    let (side, peer) = rt.block_on(async { connect(kind) });
    // The runner (and the peer in it) goes first: a TCP peer closes with a
    // reset, leaving no port in TIME_WAIT.
    Runner::new(rt, &side, peer).run(program);
    drop(side); // outside any loop: the loop hears of the close later
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

/// Bytes and shutdowns on both ends, and the checks of each read.
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

    /// Checks a read that ended at once away from its loop. Its op in flight
    /// (`in_flight`): its result, checked as any read (never an error). No op
    /// in flight: always the error `expected` names, even with bytes in the
    /// stash (the loop check comes before the stash).
    fn check_away(
        &mut self,
        cap: usize,
        res: BufResult<usize, Vec<u8>>,
        in_flight: bool,
        expected: &str,
    ) {
        match &res.0 {
            Err(e) => {
                assert!(
                    !in_flight,
                    "a read whose op was in flight failed when polled {expected}: {e}"
                );
                assert!(
                    e.to_string().contains(expected),
                    "a read polled away from its loop failed with another error \
                     than {expected:?}: {e}"
                );
            }
            Ok(n) => {
                assert!(
                    in_flight,
                    "a read with no op in flight returned {n} bytes away from its loop \
                     instead of the {expected:?} error"
                );
                self.check_read(cap, res);
            }
        }
    }

    /// A read may wait forever unless bytes are unread or the peer shut down.
    fn must_end(&self) -> bool {
        self.written > self.consumed || self.eof_sent
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

/// The read left pending between steps.
struct Pending<'a> {
    /// The most it may return.
    cap: usize,
    fut: ReadFut<'a>,
    /// Its op is in flight: a poll on its own loop answered `Pending` and
    /// raised the loop's `io_ops` (else it waits for a dropped read to
    /// complete and has submitted nothing, `op/fd.rs` rule 4).
    in_flight: bool,
    /// Its last poll on its own loop answered `Pending` and that loop has
    /// not run its driver since: its completion cannot have been handed over.
    fresh: bool,
}

/// The message of the panic an in-flight op polled on another loop raises.
const FOREIGN_PANIC: &str = "different coil event loop";
/// The error of an op started on another loop.
const FOREIGN_ERROR: &str = "different coil event loop";
/// The error of an op started outside any loop.
const OUTSIDE_ERROR: &str = "outside a coil event loop";

/// Runs a program: the model, the stream, its runtime and, made on first
/// use, the second runtimes of step 10.
struct Runner<'a> {
    rt: &'a Runtime,
    side: &'a Side,
    model: Model,
    pending: Option<Pending<'a>>,
    /// Second runtimes: `[epoll, io_uring]`, built on first use.
    others: [Option<Runtime>; 2],
}

/// Whether opcode `op` (already `% 11`) takes a parameter byte.
fn takes_param(op: u8) -> bool {
    matches!(op, 0 | 1 | 3 | 6 | 10)
}

impl<'a> Runner<'a> {
    fn new(rt: &'a Runtime, side: &'a Side, peer: Peer) -> Runner<'a> {
        Runner {
            rt,
            side,
            model: Model::new(peer),
            pending: None,
            others: [None, None],
        }
    }

    fn run(mut self, program: &[u8]) {
        let mut steps = program.iter().copied();
        while let Some(op) = steps.next() {
            let op = op % 11;
            let p = if takes_param(op) {
                steps.next().unwrap_or(0)
            } else {
                0
            };
            match op {
                8 => self.drop_pending(),
                9 => self.poll_outside(),
                10 => self.second_runtime(p),
                _ => {
                    let rt = self.rt;
                    let ((), ticked) = block_on_counted(rt, self.step(op, p));
                    if ticked && let Some(pending) = &mut self.pending {
                        pending.fresh = false;
                    }
                }
            }
        }
        let rt = self.rt;
        rt.block_on(self.drain());
    }

    /// One step of 0–7 (module docs), inside the stream's loop.
    async fn step(&mut self, op: u8, p: u8) {
        match op {
            0 => {
                let len = 1 + 8 * usize::from(p);
                if !self.model.eof_sent {
                    let m = &mut self.model;
                    let bytes: Vec<u8> = (m.written..m.written + len).map(peer_byte).collect();
                    m.written += m.peer.write_now(&bytes);
                }
            }
            1 | 2 => {
                if op == 1 && self.pending.is_none() {
                    let cap = 1 + 16 * usize::from(p % 64);
                    let (cap, fut) = self.side.read(cap);
                    self.pending = Some(Pending {
                        cap,
                        fut,
                        in_flight: false,
                        fresh: false,
                    });
                }
                if let Some(mut pending) = self.pending.take() {
                    let before = io_ops();
                    match poll_once(&mut pending.fut).await {
                        Poll::Ready(res) => self.model.check_read(pending.cap, res),
                        Poll::Pending => {
                            // One poll submits at most one op: its own.
                            pending.in_flight |= io_ops() > before;
                            pending.fresh = true;
                            self.pending = Some(pending);
                        }
                    }
                }
            }
            3 => {
                for _ in 0..1 + p % 16 {
                    coil::task::yield_now().await;
                }
            }
            4 => self.drop_pending(),
            5 => {
                if self.model.must_end() {
                    let (cap, fut) = match self.pending.take() {
                        Some(p) => (p.cap, p.fut),
                        None => self.side.read(512),
                    };
                    let res = self.model.bounded(fut).await;
                    self.model.check_read(cap, res);
                }
            }
            6 => {
                let len = 1 + 16 * usize::from(p);
                let m = &mut self.model;
                let bytes: Vec<u8> = (m.coil_written..m.coil_written + len)
                    .map(coil_byte)
                    .collect();
                // The peer reads only afterwards, but `len` < 4.1 KiB fits in
                // any socket buffer, so the write must end without it.
                match timeout(MUST_END, self.side.write_all(bytes.clone())).await {
                    Ok(r) => r.expect("coil's write_all of a few KiB"),
                    Err(_) => panic!(
                        "a write_all of {len} bytes did not end within {MUST_END:?}: \
                         a lost wakeup"
                    ),
                }
                let mut got = vec![0; len];
                m.peer
                    .read_exact(&mut got)
                    .expect("the peer reads what coil's write_all reported sent");
                assert_eq!(got, bytes, "the peer received other bytes than coil wrote");
                m.coil_written += len;
            }
            _ => {
                if !self.model.eof_sent {
                    self.model.peer.shutdown_write();
                    self.model.eof_sent = true;
                }
            }
        }
    }

    /// Steps 4, 8 and 10: drop the pending read, wherever this runs.
    fn drop_pending(&mut self) {
        drop(self.pending.take());
    }

    /// Step 9: poll the pending read once outside any loop.
    fn poll_outside(&mut self) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        match pending.fut.as_mut().poll(&mut cx) {
            Poll::Ready(res) => {
                assert!(
                    !(pending.in_flight && pending.fresh),
                    "a read in flight polled outside its loop ended although its loop has not \
                     run since (result {:?})",
                    res.0
                );
                let m = &mut self.model;
                m.check_away(pending.cap, res, pending.in_flight, OUTSIDE_ERROR);
            }
            Poll::Pending => {
                assert!(
                    pending.in_flight,
                    "a read with no op in flight polled outside any loop did not end at once"
                );
                self.pending = Some(pending);
            }
        }
    }

    /// The second runtime of step 10, taken out of `others` (built on
    /// first use): io_uring if `uring` and this machine has it, else epoll.
    fn take_other(&mut self, uring: bool) -> (usize, Runtime) {
        let i = usize::from(uring);
        let rt = self.others[i].take().unwrap_or_else(|| {
            let rt = uring
                .then(|| Runtime::builder().driver(DriverChoice::Uring).build().ok())
                .flatten();
            rt.unwrap_or_else(|| {
                Runtime::builder()
                    .driver(DriverChoice::Epoll)
                    .build()
                    .expect("an epoll runtime must always build")
            })
        });
        (i, rt)
    }

    /// Step 10: a `block_on` of a second runtime on this thread, while the
    /// stream's loop is left with its pending read (module docs).
    fn second_runtime(&mut self, p: u8) {
        let (i, other) = self.take_other(p & 1 != 0);
        other.block_on(self.in_other(p));
        self.others[i] = Some(other);
    }

    /// Step 10 inside the second runtime.
    async fn in_other(&mut self, p: u8) {
        if p & 2 != 0 {
            let (cap, mut fut) = self.side.read(1 + 16 * usize::from(p >> 4));
            match poll_once(&mut fut).await {
                Poll::Ready(res) => self.model.check_away(cap, res, false, FOREIGN_ERROR),
                Poll::Pending => {
                    panic!("a read started on another loop than its stream's did not end at once")
                }
            }
        }
        match (p >> 2) % 3 {
            0 => {}
            1 => self.drop_pending(),
            _ => self.poll_foreign().await,
        }
        // Let the second loop run its driver: nothing of the first loop's
        // may be touched by it.
        coil::task::yield_now().await;
    }

    /// Polls the pending read once on the second runtime.
    async fn poll_foreign(&mut self) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        let polled =
            std::future::poll_fn(|cx| Poll::Ready(catch_quiet(|| pending.fut.as_mut().poll(cx))))
                .await;
        match polled {
            Err(panic) => {
                let msg = panic_message(&*panic);
                assert!(
                    msg.contains(FOREIGN_PANIC),
                    "a read polled on another loop panicked with another message: {msg}"
                );
                assert!(
                    pending.in_flight,
                    "a read with no op in flight panicked when polled on another loop: {msg}"
                );
                // The future is poisoned (its op was dropped while the
                // panic unwound through it): drop it here.
                drop(pending);
            }
            Ok(Poll::Ready(res)) => {
                assert!(
                    !(pending.in_flight && pending.fresh),
                    "a read in flight polled on another loop ended although its loop has not \
                     run since (result {:?}); it must panic",
                    res.0
                );
                let m = &mut self.model;
                m.check_away(pending.cap, res, pending.in_flight, FOREIGN_ERROR);
            }
            Ok(Poll::Pending) => panic!(
                "a read polled on another loop than its own answered Pending: it would wait \
                 for a completion that cannot come while this loop runs"
            ),
        }
    }

    /// Drain: every byte the peer wrote comes back, then end-of-stream.
    async fn drain(mut self) {
        drop(self.pending.take());
        let m = &mut self.model;
        if !m.eof_sent {
            m.peer.shutdown_write();
            m.eof_sent = true;
        }
        loop {
            let (cap, fut) = self.side.read(4096);
            let res = m.bounded(fut).await;
            let done = res.0.as_ref().is_ok_and(|&n| n == 0);
            m.check_read(cap, res);
            if done {
                break;
            }
        }
        assert_eq!(m.consumed, m.written, "bytes lost at the end");
        assert_eq!(io_ops(), 0, "ops left in flight after the drain");
    }
}

/// The stream's loop's ops in flight (dropped ones included).
fn io_ops() -> usize {
    coil::runtime::stats().expect("inside the loop").io_ops
}

/// `rt.block_on(fut)`, also saying whether the loop ran its driver (polled
/// `fut` more than once: it ticks between polls, and only then).
fn block_on_counted<F: Future>(rt: &Runtime, fut: F) -> (F::Output, bool) {
    let mut polls = 0u32;
    let mut fut = std::pin::pin!(fut);
    let out = rt.block_on(std::future::poll_fn(|cx| {
        polls += 1;
        fut.as_mut().poll(cx)
    }));
    (out, polls > 1)
}

/// Polls `fut` once with the task's own context.
async fn poll_once<T>(fut: &mut Pin<Box<dyn Future<Output = T> + '_>>) -> Poll<T> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

thread_local! {
    /// A panic on this thread is expected and caught: do not report it.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// `catch_unwind(f)`, without the panic hook's report (libFuzzer's hook
/// would abort the process) for a panic on this thread; other threads'
/// panics are reported as before.
fn catch_quiet<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                prev(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic with a non-string payload)".to_string()
    }
}
