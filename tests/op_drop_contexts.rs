//! Dropping an I/O future while its operation is in flight, in every context
//! a future can be dropped in, for every kind of op, under every driver.
//!
//! An op in flight is memory the kernel (io_uring) or the epoll readiness
//! retry still writes into; it must stay owned by the loop that started it
//! whatever thread-local state is current when its future is dropped. Each
//! cell is one `#[test]` named `context::op::driver` and checks, over many
//! repetitions of "start the op, drop it in that context":
//!
//! - **no byte lost**: after the drop the peer sends known bytes (datagrams,
//!   a connection) and later ops on the same object return exactly them, in
//!   order (a dropped read's bytes are stashed for the next read, a datagram
//!   is kept whole, an accepted connection waits for the next accept). When
//!   the object's loop is gone, the check uses raw system calls on its fd;
//! - **no fd leaked**: `/proc/self/fd` has no more entries after the cell
//!   than before (cells run one at a time: [`SERIAL`]);
//! - **no memory growth**: live heap bytes, counted by this binary's global
//!   allocator, grow by at most [`SLACK`] between the end of a warm-up and
//!   the last repetition;
//! - **no hang, no panic**: every cell runs under `support::run_watched`,
//!   and every wait for data is bounded by [`BOUND`], which only a failure
//!   reaches (a lost byte shows as "nothing within 5 s").
//!
//! Contexts (the test-name prefix): `task_poll` (inside a task's poll),
//! `shutdown` (a task holding the op is cancelled when its runtime drops),
//! `between_block_on` (the reported case: no loop is current), `other_runtime`
//! (inside another runtime's `block_on`), `after_runtime_dropped` and
//! `polled_after_runtime_dropped` (the future outlives its runtime; the
//! second polls it in a new runtime first: it must be `Ready`, with an error
//! or the op's real result), `panic_in_task` and `panic_in_block_on` (the op
//! is dropped while a panic unwinds, inside the loop, or outside it when the
//! caller owns the future) and `other_thread` (timers, which are `Send`).
//! Every I/O future, `coil::fs`'s included (`File::open` and `metadata` were
//! `Send` before the op-ownership fix, and could be dropped on another
//! thread while their op was in flight), is `!Send`: `io_futures_are_not_send`
//! checks it at compile time. Beyond dropping:
//! `foreign_loop` and `foreign_loop_after_drop` (an object of loop A used
//! from loop B while A lives, or after A was dropped: an `io::Error`, and A
//! can still use it) and `polled_on_other_loop` (an op started on A polled
//! on B: a panic naming "different coil event loop", and nothing lost).
//! `reported::literal` is the report's code verbatim (its `vec![0u8; 4096]`
//! has no spare capacity, so the read asks for 0 bytes: io_uring loses
//! nothing with it, epoll hangs); `reported::with_room` reads into
//! `Vec::with_capacity(4096)`.
//!
//! Repetitions: `COIL_MATRIX_MEM_REPS` (default 2 000) for the
//! `between_block_on` cells (the memory check of record: [`SLACK`] over
//! 2 000 drops catches any leak of 33 bytes or more per drop, and the
//! smallest thing a dropped op owns, its box, is larger);
//! `COIL_MATRIX_REPS` (default 20) for every other cell, and for the timer
//! cells of `between_block_on` (each repetition waits for a deadline). With
//! the defaults the file takes about 5 s in a debug build on two cores;
//! the `matrix-deep` tier of `.ci/run` runs it again with 100 and 10 000.

mod support;
use support::TempDir;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::SocketAddr as UnixAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Mutex, Once, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use coil::io::{AsyncReadOwned, AsyncWriteOwned, BufReader, BufResult};
use coil::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use coil::runtime::{DriverChoice, DriverKind};
use coil::time::{sleep, timeout};
use coil::{Runtime, TaskError};

// ---------------------------------------------------------------------------
// Knobs
// ---------------------------------------------------------------------------

/// Repetitions measured after the warm-up.
fn reps() -> usize {
    env_usize("COIL_MATRIX_REPS", 20)
}

/// Repetitions of the `between_block_on` cells (the memory check of record).
fn mem_reps() -> usize {
    env_usize("COIL_MATRIX_MEM_REPS", 2_000)
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not a count: {e}")),
        Err(_) => default,
    }
}

/// Repetitions before the memory baseline is taken (pools and tables reach
/// their steady size).
const WARMUP: usize = 20;

/// Heap growth tolerated over a cell's measured repetitions: at 10 000
/// repetitions a leak of 7 bytes per drop fails; a leaked op (its box and a
/// buffer of at least 2 KiB) fails within 32.
const SLACK: isize = 64 << 10;

/// The longest any single wait may take; reached only when something was
/// lost or hangs.
const BOUND: Duration = Duration::from_secs(5);

/// Seed of the simulator cells.
const SEED: u64 = 0x0D_0D_C0_11;

// ---------------------------------------------------------------------------
// Counting allocator: live heap bytes of the whole process
// ---------------------------------------------------------------------------

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded, as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded: `ptr` was allocated by `System` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap growth over a cell's repetitions: the baseline is taken after
/// [`WARMUP`] repetitions, the check after the last one.
struct MemCheck {
    reps: usize,
    base: isize,
}

impl MemCheck {
    fn over(reps: usize) -> MemCheck {
        MemCheck { reps, base: 0 }
    }

    /// Repetitions to run, warm-up included.
    fn total(&self) -> usize {
        WARMUP + self.reps
    }

    /// Call at the start of every repetition.
    fn at(&mut self, rep: usize) {
        if rep == WARMUP {
            self.base = LIVE.load(Ordering::Relaxed);
        }
    }

    fn finish(self) {
        let grown = LIVE.load(Ordering::Relaxed) - self.base;
        assert!(
            grown <= SLACK,
            "the heap grew by {grown} bytes over {} repetitions ({} per drop): \
             something a dropped op owned is never freed",
            self.reps,
            grown / self.reps.max(1) as isize
        );
    }
}

// ---------------------------------------------------------------------------
// Cells: serialised, fd-counted, watched
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drv {
    Uring,
    Epoll,
    Sim,
}

macro_rules! drv {
    (uring) => {
        crate::Drv::Uring
    };
    (epoll) => {
        crate::Drv::Epoll
    };
    (sim) => {
        crate::Drv::Sim
    };
}

/// One cell at a time: fd counts and live heap bytes are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

use support::open_fds;

/// Runs one cell: alone, watched, and with the fd table checked around it.
fn run_cell(name: &'static str, d: Drv, body: fn(Drv)) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    warm_up();
    let before = open_fds();
    support::run_watched(move || body(d));
    // Files dropped by blocking-pool jobs (epoll's fs ops) are closed on the
    // pool's threads, shortly after the cell's body returned.
    let deadline = std::time::Instant::now() + BOUND;
    while open_fds() > before && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let after = open_fds();
    assert!(
        after <= before,
        "{name}: {} fds leaked ({before} open before the cell, {after} after)",
        after - before
    );
}

/// Process-wide things created on first use (the io_uring probe, blocking
/// pool threads) are not leaks of the first cell that happens to run.
fn warm_up() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        install_quiet_hook();
        run_table();
        support::run_watched(|| {
            let dir = TempDir::new("op-drop");
            std::fs::write(dir.path("f"), b"warm").unwrap();
            for d in [Drv::Uring, Drv::Epoll] {
                runtime(d).block_on(async {
                    let f = coil::fs::File::open(dir.path("f")).await.unwrap();
                    let BufResult(r, _) = f.write_at(&b"w"[..], 0).await;
                    assert!(r.is_err(), "a read-only file");
                    let BufResult(r, _) = f.read_at(Vec::with_capacity(8), 0).await;
                    r.unwrap();
                    coil::fs::metadata(dir.path("f")).await.unwrap();
                });
            }
        });
    });
}

/// A runtime on a real driver. `event_interval(1)`: the loop parks (with a
/// zero timeout) after every poll, so one yield is enough for io_uring to
/// hand a queued entry to the kernel ([`arm`]).
fn runtime(d: Drv) -> Runtime {
    let choice = match d {
        Drv::Uring => DriverChoice::Uring,
        Drv::Epoll => DriverChoice::Epoll,
        Drv::Sim => unreachable!("the simulator runs through coil::sim::Builder"),
    };
    Runtime::builder()
        .driver(choice)
        .event_interval(1)
        .build()
        .unwrap_or_else(|e| panic!("could not build a {d:?} runtime: {e}"))
}

/// Runs `f` on a fresh loop of `d` (a simulation for `Sim`), then drops it.
fn on_loop<F: Future>(d: Drv, f: F) -> F::Output {
    match d {
        Drv::Sim => coil::sim::Builder::new().seed(SEED).run(f),
        _ => runtime(d).block_on(f),
    }
}

fn in_sim() -> bool {
    coil::runtime::stats().is_some_and(|s| s.driver == DriverKind::Sim)
}

// ---------------------------------------------------------------------------
// Panics we cause on purpose stay quiet
// ---------------------------------------------------------------------------

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

fn install_quiet_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.try_with(Cell::get).unwrap_or(false) {
            prev(info);
        }
    }));
}

/// The payload of the panics this file raises on purpose.
struct Deliberate;

fn deliberate_panic() {
    QUIET.set(true);
    std::panic::panic_any(Deliberate)
}

/// `catch_unwind`, then panics are loud again.
fn catch<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.set(false);
    r
}

fn expect_deliberate<R>(r: std::thread::Result<R>) {
    match r {
        Ok(_) => panic!("expected the deliberate panic, got a value"),
        Err(p) if p.is::<Deliberate>() => {}
        Err(p) => panic!("unexpected panic: {}", support::panic_msg(&*p)),
    }
}

// ---------------------------------------------------------------------------
// Futures: poll once, get an op in flight, bounded waits
// ---------------------------------------------------------------------------

/// An op future, type-erased: its output is only "did it fail".
type OpFut = Pin<Box<dyn Future<Output = io::Result<()>>>>;

/// Polls a future once with the caller's context.
struct PollOnce<'a, F: Future + ?Sized>(Pin<&'a mut F>);

impl<F: Future + ?Sized> Future for PollOnce<'_, F> {
    type Output = Poll<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(self.get_mut().0.as_mut().poll(cx))
    }
}

fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> PollOnce<'_, F> {
    PollOnce(f)
}

/// Starts `fut` and lets the loop park once, so that the driver holds the
/// op (io_uring has handed its entry to the kernel; epoll has it queued for
/// readiness). `false` if it finished at once: for ops that may do so the
/// cell covers their drop paths only.
async fn arm(fut: &mut OpFut) -> bool {
    if poll_once(fut.as_mut()).await.is_ready() {
        return false;
    }
    coil::task::yield_now().await;
    coil::task::yield_now().await;
    true
}

fn check_armed<C: Case>(d: Drv, pending: bool) {
    assert!(
        pending || !C::waits(d) || C::MAY_EXPIRE_WHILE_ARMING,
        "{}: the op finished at once; this cell needs it in flight",
        std::any::type_name::<C>()
    );
}

/// `f`, or a panic after [`BOUND`]: "lost" (or hung).
async fn bounded<F: Future>(what: &str, f: F) -> F::Output {
    match timeout(BOUND, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing within {BOUND:?} (lost, or hung)"),
    }
}

/// Yields to the loop (which processes completions and timers meanwhile)
/// until `done()`, for at most [`BOUND`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + BOUND;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not the case after {BOUND:?}; {:?}",
            coil::runtime::stats()
        );
        coil::task::yield_now().await;
    }
}

/// Every op and timer of the current loop has finished (dropped ones
/// included: their completions were processed, their timers removed or
/// fired).
async fn settled() {
    until("every op and timer of the loop finished", || {
        let s = coil::runtime::stats().unwrap();
        s.io_ops == 0 && s.timers == 0
    })
    .await;
}

async fn ops_drained() {
    until("the dropped op's completion was processed", || {
        coil::runtime::stats().unwrap().io_ops == 0
    })
    .await;
}

// ---------------------------------------------------------------------------
// Bytes
// ---------------------------------------------------------------------------

/// Bytes that repeat every 251 (a prime: no power-of-two buffer size lines
/// up with it), precomputed: generating and comparing them byte by byte
/// would dominate a debug build's run time.
fn run_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| (0..RUN_MAX + 251).map(|p| (p * 13 % 251) as u8).collect())
}

/// The longest run of [`stream_byte`]s a check may need.
const RUN_MAX: usize = 4 << 20;

/// `n` bytes that differ with `seed`.
fn pattern(n: usize, seed: usize) -> Vec<u8> {
    run_table()[seed * 7 % 251..][..n].to_vec()
}

/// The byte at position `p` of a write stream (never [`MARK`]).
fn stream_byte(p: usize) -> u8 {
    run_table()[p]
}

fn byte_run(start: usize, n: usize) -> Vec<u8> {
    run_table()[start..start + n].to_vec()
}

/// Ends a write stream: the writer's next bytes after a dropped write.
const MARK: u8 = 0xFF;
const MARK_LEN: usize = 64;
/// The size of each write of a write stream.
const CHUNK: usize = 16 << 10;

fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes back for {} sent; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// Checks a write stream up to its mark: every byte a completed write
/// reported (`filled`), then a prefix of the dropped write's chunk, then the
/// mark. A lost, reordered or foreign byte fails.
fn check_stream(got: &[u8], filled: usize) {
    let body = &got[..got.len() - MARK_LEN];
    assert!(
        body.len() <= RUN_MAX,
        "a write stream longer than the test expects"
    );
    assert!(
        body.len() >= filled && body.len() <= filled + CHUNK,
        "the writer's stream has {} bytes before its mark; completed writes sent {filled}, \
         the dropped one at most {CHUNK} more",
        body.len()
    );
    if body == &run_table()[..body.len()] {
        return;
    }
    if let Some(i) = (0..body.len()).find(|&i| body[i] != stream_byte(i)) {
        panic!(
            "byte {i} of the writer's stream is {:#x}, not {:#x} (of {} bytes, {filled} from \
             completed writes): lost, reordered or foreign bytes",
            body[i],
            stream_byte(i),
            body.len()
        );
    }
}

fn ends_with_mark(got: &[u8]) -> bool {
    got.len() >= MARK_LEN && got[got.len() - MARK_LEN..].iter().all(|&b| b == MARK)
}

/// Reads exactly `n` bytes (each read bounded).
async fn read_n(r: &impl AsyncReadOwned, n: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let what = format!("read ({} of {n} bytes so far)", got.len());
        let BufResult(res, buf) = bounded(&what, r.read(Vec::with_capacity(n - got.len()))).await;
        match res {
            Ok(0) => panic!("end of stream after {} of {n} bytes", got.len()),
            Ok(_) => got.extend_from_slice(&buf),
            Err(e) => panic!("read failed after {} of {n} bytes: {e}", got.len()),
        }
    }
    got
}

/// Reads until the stream's mark (each read bounded).
async fn read_to_mark(r: &impl AsyncReadOwned, max: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while !ends_with_mark(&got) {
        assert!(got.len() <= max, "more bytes than were ever written");
        let what = format!("read up to the mark ({} bytes so far)", got.len());
        let BufResult(res, buf) = bounded(&what, r.read(Vec::with_capacity(64 << 10))).await;
        match res {
            Ok(0) => panic!("end of stream after {} bytes, before the mark", got.len()),
            Ok(_) => got.extend_from_slice(&buf),
            Err(e) => panic!("read failed after {} bytes: {e}", got.len()),
        }
    }
    got
}

async fn write_all(w: &impl AsyncWriteOwned, bytes: Vec<u8>) {
    let BufResult(r, _) = bounded("write_all", w.write_all(bytes)).await;
    r.expect("write_all");
}

// ---------------------------------------------------------------------------
// Raw system calls, for objects whose loop is gone
// ---------------------------------------------------------------------------

/// Waits (bounded) until `fd` is ready for `events`.
fn wait_fd(fd: RawFd, events: i16, what: &str) {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one live pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&raw mut p, 1, BOUND.as_millis() as i32) };
    assert_eq!(
        n, 1,
        "{what}: fd {fd} not ready within {BOUND:?} (lost, or hung)"
    );
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// One non-blocking `send`; `None` if the socket is full.
fn sock_try_send(fd: RawFd, bytes: &[u8]) -> Option<usize> {
    // SAFETY: `bytes` is live for the call.
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        assert!(would_block(&e), "send on fd {fd}: {e}");
        return None;
    }
    Some(n as usize)
}

/// One non-blocking `recv`; `None` if nothing is queued. `dgram`: a whole
/// datagram, whose real length is checked against `max` (`MSG_TRUNC`, which
/// on a TCP socket would discard the bytes instead).
fn sock_try_recv(fd: RawFd, max: usize, dgram: bool) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; max];
    let flags = libc::MSG_DONTWAIT | if dgram { libc::MSG_TRUNC } else { 0 };
    // SAFETY: `buf` has `max` writable bytes.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), max, flags) };
    if n < 0 {
        let e = io::Error::last_os_error();
        assert!(would_block(&e), "recv on fd {fd}: {e}");
        return None;
    }
    let n = n as usize;
    assert!(n <= max, "a datagram of {n} bytes was truncated to {max}");
    buf.truncate(n);
    Some(buf)
}

fn sock_send_all(fd: RawFd, bytes: &[u8]) {
    let mut off = 0;
    while off < bytes.len() {
        wait_fd(fd, libc::POLLOUT, "raw send");
        off += sock_try_send(fd, &bytes[off..]).unwrap_or(0);
    }
}

fn sock_recv_n(fd: RawFd, n: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        wait_fd(fd, libc::POLLIN, "raw recv");
        if let Some(b) = sock_try_recv(fd, n - got.len(), false) {
            assert!(
                !b.is_empty(),
                "end of stream after {} of {n} bytes",
                got.len()
            );
            got.extend_from_slice(&b);
        }
    }
    got
}

fn sock_recv_to_mark(fd: RawFd, max: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while !ends_with_mark(&got) {
        assert!(got.len() <= max, "more bytes than were ever written");
        wait_fd(fd, libc::POLLIN, "raw recv up to the mark");
        if let Some(b) = sock_try_recv(fd, 64 << 10, false) {
            assert!(!b.is_empty(), "end of stream before the mark");
            got.extend_from_slice(&b);
        }
    }
    got
}

fn sock_recv_dgram(fd: RawFd) -> Vec<u8> {
    loop {
        wait_fd(fd, libc::POLLIN, "raw datagram recv");
        if let Some(d) = sock_try_recv(fd, 4096, true) {
            return d;
        }
    }
}

/// Sets a socket buffer's size (ignored by simulated sockets).
fn set_buffer(fd: RawFd, opt: i32, v: i32) {
    // SAFETY: `v` is a live i32 of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&raw const v).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
}

/// `SO_LINGER` 0: closing resets the connection instead of leaving it in
/// TIME_WAIT (thousands of connections per cell).
fn no_linger(fd: RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` is a live local of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const l).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// A raw `accept4` (bounded wait) on a listener whose loop is gone.
fn raw_accept(fd: RawFd) -> std::os::fd::OwnedFd {
    wait_fd(fd, libc::POLLIN, "raw accept");
    // SAFETY: null address arguments are allowed.
    let c = unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    assert!(c >= 0, "accept4: {}", io::Error::last_os_error());
    // SAFETY: a new fd nothing else owns.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(c) }
}

/// Non-blocking reads of a pipe until it is empty.
fn pipe_drain(f: &std::fs::File) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match std::io::Read::read(&mut &*f, &mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if would_block(&e) => return got,
            Err(e) => panic!("pipe read: {e}"),
        }
    }
}

fn pipe_read_n(f: &std::fs::File, n: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    let mut buf = vec![0u8; n];
    while got.len() < n {
        wait_fd(f.as_raw_fd(), libc::POLLIN, "raw pipe read");
        match std::io::Read::read(&mut &*f, &mut buf[..n - got.len()]) {
            Ok(0) => panic!("end of pipe after {} of {n} bytes", got.len()),
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) if would_block(&e) => {}
            Err(e) => panic!("pipe read: {e}"),
        }
    }
    got
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path, live for the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo: {}", io::Error::last_os_error());
}

fn unique_abstract_addr() -> UnixAddr {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    UnixAddr::from_abstract_name(format!("coil-op-drop-{}-{n}", std::process::id())).unwrap()
}

// ---------------------------------------------------------------------------
// Datagrams: self-describing, so a corrupt, truncated or stale one is caught
// ---------------------------------------------------------------------------

const DATA: u8 = 1;
/// Sent by an op whose future was dropped: may or may not arrive.
const DROPPED: u8 = 2;
const FILL: u8 = 3;

fn dgram(kind: u8, rep: usize, seq: usize) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(rep as u32).to_le_bytes());
    v.extend_from_slice(&(seq as u32).to_le_bytes());
    v.extend(pattern(16 + (rep * 7 + seq * 13) % 300, rep * 1000 + seq));
    v
}

/// `(kind, rep, seq)` of a datagram; panics if it is not one of ours, whole.
fn parse_dgram(b: &[u8]) -> (u8, usize, usize) {
    assert!(b.len() >= 9, "a {}-byte datagram: not one we sent", b.len());
    let rep = u32::from_le_bytes(b[1..5].try_into().unwrap()) as usize;
    let seq = u32::from_le_bytes(b[5..9].try_into().unwrap()) as usize;
    assert!(
        b == dgram(b[0], rep, seq).as_slice(),
        "a corrupt or truncated datagram ({} bytes, kind {}, rep {rep}, seq {seq})",
        b.len(),
        b[0]
    );
    (b[0], rep, seq)
}

// ---------------------------------------------------------------------------
// The ops
// ---------------------------------------------------------------------------

/// One kind of op, with the objects it runs on and how to check that a
/// dropped one lost nothing.
trait Case: 'static {
    /// The objects: the one the op runs on and its peer.
    type Fx: 'static;

    /// Whether the op surely waits (for data, a peer, room, a deadline)
    /// after [`arm`]; if not, it may finish at once and the cell covers its
    /// drop paths only.
    fn waits(_d: Drv) -> bool {
        true
    }

    /// Each repetition waits for a deadline: never 10 000 of them.
    const SLOW: bool = false;

    /// A timer of a millisecond or two: a thread preempted for longer than
    /// that while arming it finds it expired, which is right (the wheel
    /// follows the clock). Such a repetition covers the drop paths only.
    const MAY_EXPIRE_WHILE_ARMING: bool = false;

    /// Builds the objects, inside a running loop.
    async fn setup(d: Drv) -> Self::Fx;

    /// Makes the next op wait (fills a send buffer); inside the loop.
    async fn prepare(_fx: &Rc<Self::Fx>, _rep: usize) {}

    /// The op, owning what it needs.
    fn op(fx: &Rc<Self::Fx>, rep: usize) -> OpFut;

    /// After the drop, on the objects' own loop: the peer produces known
    /// data, and the object returns exactly it.
    async fn verify(fx: &Rc<Self::Fx>, rep: usize);

    /// After the objects' loop is gone (real drivers): the same, with raw
    /// system calls on the fds: no dropped op still takes anything.
    fn verify_raw(_fx: &Self::Fx, _rep: usize) {}
}

/// A connected byte stream.
trait Kind: 'static {
    type S: AsyncReadOwned + AsyncWriteOwned + AsRawFd + 'static;
    /// The receive buffer of a write test's reader.
    const RCVBUF: i32;
    async fn pair() -> (Self::S, Self::S);
}

struct Tcp;

impl Kind for Tcp {
    type S = TcpStream;
    const RCVBUF: i32 = 128 << 10;

    async fn pair() -> (TcpStream, TcpStream) {
        let (a, b) = support::tcp_pair().await;
        for s in [&a, &b] {
            s.set_nodelay(true).unwrap();
            if !in_sim() {
                no_linger(s.as_raw_fd());
            }
        }
        (a, b)
    }
}

struct Unix;

impl Kind for Unix {
    type S = UnixStream;
    const RCVBUF: i32 = 4096;

    async fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().unwrap()
    }
}

struct Pair<S> {
    peer: S,
    target: S,
}

/// `read` on a stream; the peer then writes 4 KiB.
struct StreamRead<K>(PhantomData<K>);

impl<K: Kind> Case for StreamRead<K> {
    type Fx = Pair<K::S>;

    async fn setup(_d: Drv) -> Self::Fx {
        let (peer, target) = K::pair().await;
        Pair { peer, target }
    }

    fn op(fx: &Rc<Self::Fx>, _rep: usize) -> OpFut {
        let fx = fx.clone();
        Box::pin(async move {
            let BufResult(r, _) = fx.target.read(Vec::with_capacity(4096)).await;
            r.map(drop)
        })
    }

    async fn verify(fx: &Rc<Self::Fx>, rep: usize) {
        let p = pattern(4096, rep);
        write_all(&fx.peer, p.clone()).await;
        let got = read_n(&fx.target, p.len()).await;
        assert_same("the reads after the dropped one", &got, &p);
    }

    fn verify_raw(fx: &Self::Fx, rep: usize) {
        let p = pattern(4096, rep);
        sock_send_all(fx.peer.as_raw_fd(), &p);
        let got = sock_recv_n(fx.target.as_raw_fd(), p.len());
        assert_same("raw reads after the runtime was dropped", &got, &p);
    }
}

struct WriteFx<S> {
    peer: S,
    target: S,
    /// Bytes of the write stream that completed writes (and the raw fill)
    /// sent since the last check.
    filled: Cell<usize>,
}

/// `write` on a stream whose buffers are full, so it waits for room. The op
/// is a loop of writes (each completed one is counted), so it is always
/// waiting on a write when dropped; the writer then sends a mark and the
/// peer must read the stream intact up to it.
struct StreamWrite<K>(PhantomData<K>);

async fn write_stream<S: AsyncWriteOwned>(fx: Rc<WriteFx<S>>) -> io::Result<()> {
    loop {
        let start = fx.filled.get();
        let BufResult(r, _) = fx.target.write(byte_run(start, CHUNK)).await;
        fx.filled.set(start + r?);
    }
}

impl<K: Kind> Case for StreamWrite<K> {
    type Fx = WriteFx<K::S>;

    async fn setup(_d: Drv) -> Self::Fx {
        let (peer, target) = K::pair().await;
        // Small buffers fill with little data, and fixed ones do not grow
        // (TCP autotuning). Not too small for a TCP receiver: a window below
        // the loopback MSS (64 KiB) makes the sender wait for window probes
        // (hundreds of ms).
        set_buffer(target.as_raw_fd(), libc::SO_SNDBUF, 4096);
        set_buffer(peer.as_raw_fd(), libc::SO_RCVBUF, K::RCVBUF);
        WriteFx {
            peer,
            target,
            filled: Cell::new(0),
        }
    }

    async fn prepare(fx: &Rc<Self::Fx>, _rep: usize) {
        if in_sim() {
            // The simulated window is 64 KiB: fill it.
            let start = fx.filled.get();
            write_all(&fx.target, byte_run(start, 64 << 10)).await;
            fx.filled.set(start + (64 << 10));
            return;
        }
        let fd = fx.target.as_raw_fd();
        loop {
            let start = fx.filled.get();
            match sock_try_send(fd, &byte_run(start, 4096)) {
                Some(n) => fx.filled.set(start + n),
                None => return,
            }
        }
    }

    fn op(fx: &Rc<Self::Fx>, _rep: usize) -> OpFut {
        Box::pin(write_stream(fx.clone()))
    }

    async fn verify(fx: &Rc<Self::Fx>, _rep: usize) {
        let writer = {
            let fx = fx.clone();
            coil::spawn(async move { write_all(&fx.target, vec![MARK; MARK_LEN]).await })
        };
        let filled = fx.filled.get();
        let got = read_to_mark(&fx.peer, filled + CHUNK + MARK_LEN).await;
        check_stream(&got, filled);
        bounded("the mark's write", writer).await.unwrap();
        fx.filled.set(0);
    }

    fn verify_raw(fx: &Self::Fx, _rep: usize) {
        let (target, peer) = (fx.target.as_raw_fd(), fx.peer.as_raw_fd());
        let filled = fx.filled.get();
        std::thread::scope(|s| {
            s.spawn(move || sock_send_all(target, &[MARK; MARK_LEN]));
            let got = sock_recv_to_mark(peer, filled + CHUNK + MARK_LEN);
            check_stream(&got, filled);
        });
        fx.filled.set(0);
    }
}

struct UdpFx {
    a: UdpSocket,
    b: UdpSocket,
}

async fn udp_fx() -> UdpFx {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    UdpFx { a, b }
}

/// `recv` (`FROM`: `recv_from`) on a connected UDP socket; the peer then
/// sends two datagrams.
struct UdpRecv<const FROM: bool>;

impl<const FROM: bool> Case for UdpRecv<FROM> {
    type Fx = UdpFx;

    async fn setup(_d: Drv) -> UdpFx {
        udp_fx().await
    }

    fn op(fx: &Rc<UdpFx>, _rep: usize) -> OpFut {
        let fx = fx.clone();
        Box::pin(async move {
            if FROM {
                let BufResult(r, _) = fx.b.recv_from(Vec::with_capacity(2048)).await;
                r.map(drop)
            } else {
                let BufResult(r, _) = fx.b.recv(Vec::with_capacity(2048)).await;
                r.map(drop)
            }
        })
    }

    async fn verify(fx: &Rc<UdpFx>, rep: usize) {
        for seq in 0..2 {
            let BufResult(r, _) = bounded("send", fx.a.send(dgram(DATA, rep, seq))).await;
            r.unwrap();
        }
        let mut seqs = Vec::new();
        for _ in 0..2 {
            let d = if FROM {
                let BufResult(r, buf) =
                    bounded("recv_from", fx.b.recv_from(Vec::with_capacity(2048))).await;
                let (n, from) = r.unwrap();
                assert_eq!(from, fx.a.local_addr().unwrap(), "the sender's address");
                assert_eq!(n, buf.len());
                buf
            } else {
                let BufResult(r, buf) = bounded("recv", fx.b.recv(Vec::with_capacity(2048))).await;
                assert_eq!(r.unwrap(), buf.len());
                buf
            };
            let (kind, r, seq) = parse_dgram(&d);
            assert_eq!((kind, r), (DATA, rep), "a datagram of another repetition");
            seqs.push(seq);
        }
        if in_sim() {
            // Simulated datagrams take independent latencies.
            seqs.sort_unstable();
        }
        assert_eq!(seqs, [0, 1], "datagrams lost or out of order");
    }

    fn verify_raw(fx: &UdpFx, rep: usize) {
        for seq in 0..2 {
            sock_send_all(fx.a.as_raw_fd(), &dgram(DATA, rep, seq));
        }
        for seq in 0..2 {
            let d = sock_recv_dgram(fx.b.as_raw_fd());
            assert_eq!(parse_dgram(&d), (DATA, rep, seq));
        }
    }
}

/// `send_to` on a UDP socket: never waits (the cell covers its drop paths);
/// the dropped datagram may arrive, whole, or not at all.
struct UdpSendTo;

/// Receives datagrams until `DATA` of `rep`; others may only be dropped
/// sends of this or earlier repetitions.
fn expect_after_dropped_sends(d: &[u8], rep: usize) -> bool {
    match parse_dgram(d) {
        (DATA, r, _) => {
            assert_eq!(r, rep, "a data datagram of another repetition");
            true
        }
        (DROPPED, r, _) => {
            assert!(r <= rep, "a datagram from the future");
            false
        }
        other => panic!("unexpected datagram {other:?}"),
    }
}

impl Case for UdpSendTo {
    type Fx = UdpFx;

    fn waits(_d: Drv) -> bool {
        false
    }

    async fn setup(_d: Drv) -> UdpFx {
        udp_fx().await
    }

    fn op(fx: &Rc<UdpFx>, rep: usize) -> OpFut {
        let fx = fx.clone();
        Box::pin(async move {
            let to = fx.b.local_addr().unwrap();
            let BufResult(r, _) = fx.a.send_to(dgram(DROPPED, rep, 0), to).await;
            r.map(drop)
        })
    }

    async fn verify(fx: &Rc<UdpFx>, rep: usize) {
        let to = fx.b.local_addr().unwrap();
        let BufResult(r, _) = bounded("send_to", fx.a.send_to(dgram(DATA, rep, 1), to)).await;
        r.unwrap();
        for _ in 0..4 {
            let BufResult(r, d) = bounded("recv", fx.b.recv(Vec::with_capacity(2048))).await;
            r.unwrap();
            if expect_after_dropped_sends(&d, rep) {
                return;
            }
        }
        panic!("the data datagram did not arrive");
    }

    fn verify_raw(fx: &UdpFx, rep: usize) {
        sock_send_all(fx.a.as_raw_fd(), &dgram(DATA, rep, 1));
        for _ in 0..4 {
            if expect_after_dropped_sends(&sock_recv_dgram(fx.b.as_raw_fd()), rep) {
                return;
            }
        }
        panic!("the data datagram did not arrive");
    }
}

struct UdsFx {
    a: UnixDatagram,
    b: UnixDatagram,
    filled: Cell<usize>,
}

async fn uds_fx() -> UdsFx {
    let (a, b) = UnixDatagram::pair().unwrap();
    UdsFx {
        a,
        b,
        filled: Cell::new(0),
    }
}

/// `recv` on a Unix datagram socket; the peer then sends two datagrams.
struct UdsRecv;

impl Case for UdsRecv {
    type Fx = UdsFx;

    async fn setup(_d: Drv) -> UdsFx {
        uds_fx().await
    }

    fn op(fx: &Rc<UdsFx>, _rep: usize) -> OpFut {
        let fx = fx.clone();
        Box::pin(async move {
            let BufResult(r, _) = fx.b.recv(Vec::with_capacity(2048)).await;
            r.map(drop)
        })
    }

    async fn verify(fx: &Rc<UdsFx>, rep: usize) {
        for seq in 0..2 {
            let BufResult(r, _) = bounded("send", fx.a.send(dgram(DATA, rep, seq))).await;
            r.unwrap();
        }
        for seq in 0..2 {
            let BufResult(r, d) = bounded("recv", fx.b.recv(Vec::with_capacity(2048))).await;
            assert_eq!(r.unwrap(), d.len());
            assert_eq!(
                parse_dgram(&d),
                (DATA, rep, seq),
                "datagrams lost or out of order"
            );
        }
    }

    fn verify_raw(fx: &UdsFx, rep: usize) {
        for seq in 0..2 {
            sock_send_all(fx.a.as_raw_fd(), &dgram(DATA, rep, seq));
        }
        for seq in 0..2 {
            assert_eq!(
                parse_dgram(&sock_recv_dgram(fx.b.as_raw_fd())),
                (DATA, rep, seq)
            );
        }
    }
}

/// `send` on a Unix datagram socket whose send buffer is full, so it waits.
/// Like [`StreamWrite`], the op is a loop of sends (each completed one is
/// counted); the receiver must then get every counted datagram in order,
/// maybe the dropped one, then the data datagram.
struct UdsSend;

async fn send_datagrams(fx: Rc<UdsFx>, rep: usize) -> io::Result<()> {
    loop {
        let seq = fx.filled.get();
        let BufResult(r, _) = fx.b.send(dgram(FILL, rep, seq)).await;
        r?;
        fx.filled.set(seq + 1);
    }
}

/// Checks the datagrams received after a dropped send: `FILL` 0..filled,
/// maybe `FILL` filled (the dropped one), then `DATA`.
fn check_datagrams(mut next: impl FnMut() -> Vec<u8>, rep: usize, filled: usize) {
    let mut seq = 0;
    loop {
        match parse_dgram(&next()) {
            (FILL, r, s) if r == rep && s == seq && s <= filled => seq += 1,
            (DATA, r, 0) if r == rep && seq >= filled => return,
            other => panic!(
                "datagram {other:?} after {seq} fill datagrams of repetition {rep} \
                 ({filled} sent by completed sends): lost or out of order"
            ),
        }
    }
}

impl Case for UdsSend {
    type Fx = UdsFx;

    async fn setup(_d: Drv) -> UdsFx {
        let fx = uds_fx().await;
        set_buffer(fx.b.as_raw_fd(), libc::SO_SNDBUF, 4096);
        fx
    }

    async fn prepare(fx: &Rc<UdsFx>, rep: usize) {
        let fd = fx.b.as_raw_fd();
        loop {
            let seq = fx.filled.get();
            match sock_try_send(fd, &dgram(FILL, rep, seq)) {
                Some(_) => fx.filled.set(seq + 1),
                None => return,
            }
        }
    }

    fn op(fx: &Rc<UdsFx>, rep: usize) -> OpFut {
        Box::pin(send_datagrams(fx.clone(), rep))
    }

    async fn verify(fx: &Rc<UdsFx>, rep: usize) {
        let sender = {
            let fx = fx.clone();
            coil::spawn(async move {
                let BufResult(r, _) = fx.b.send(dgram(DATA, rep, 0)).await;
                r.unwrap();
            })
        };
        let filled = fx.filled.get();
        let mut got = Vec::new();
        for _ in 0..filled + 2 {
            let BufResult(r, d) = bounded("recv", fx.a.recv(Vec::with_capacity(2048))).await;
            r.unwrap();
            let last = parse_dgram(&d).0 == DATA;
            got.push(d);
            if last {
                break;
            }
        }
        let mut it = got.into_iter();
        check_datagrams(
            || it.next().expect("the data datagram did not arrive"),
            rep,
            filled,
        );
        bounded("the data datagram's send", sender).await.unwrap();
        fx.filled.set(0);
    }

    fn verify_raw(fx: &UdsFx, rep: usize) {
        let (a, b) = (fx.a.as_raw_fd(), fx.b.as_raw_fd());
        let filled = fx.filled.get();
        std::thread::scope(|s| {
            s.spawn(move || sock_send_all(b, &dgram(DATA, rep, 0)));
            check_datagrams(|| sock_recv_dgram(a), rep, filled);
        });
        fx.filled.set(0);
    }
}

struct TcpListenFx {
    l: TcpListener,
    addr: SocketAddr,
}

async fn tcp_listen_fx() -> TcpListenFx {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    TcpListenFx { l, addr }
}

/// Connects a client and accepts until its connection comes out (at most
/// `tries` accepts: connections made by dropped connects may come first).
async fn connect_and_accept(fx: &TcpListenFx, tries: usize) {
    let c = bounded("connect", TcpStream::connect(fx.addr))
        .await
        .unwrap();
    if !in_sim() {
        no_linger(c.as_raw_fd());
    }
    let want = c.local_addr().unwrap();
    for _ in 0..tries {
        let (s, peer) = bounded("accept", fx.l.accept()).await.unwrap();
        if !in_sim() {
            no_linger(s.as_raw_fd());
        }
        if peer == want {
            return;
        }
    }
    panic!("the client's connection was not accepted within {tries} accepts");
}

/// `accept` on a TCP listener; a client then connects.
struct TcpAccept;

impl Case for TcpAccept {
    type Fx = TcpListenFx;

    async fn setup(_d: Drv) -> TcpListenFx {
        tcp_listen_fx().await
    }

    fn op(fx: &Rc<TcpListenFx>, _rep: usize) -> OpFut {
        let fx = fx.clone();
        Box::pin(async move {
            let (s, _) = fx.l.accept().await?;
            if !in_sim() {
                no_linger(s.as_raw_fd());
            }
            Ok(())
        })
    }

    async fn verify(fx: &Rc<TcpListenFx>, _rep: usize) {
        // The dropped accept took nothing: the first connection is ours.
        connect_and_accept(fx, 1).await;
    }

    fn verify_raw(fx: &TcpListenFx, _rep: usize) {
        let c = std::net::TcpStream::connect(fx.addr).unwrap();
        no_linger(c.as_raw_fd());
        let s = std::net::TcpStream::from(raw_accept(fx.l.as_raw_fd()));
        no_linger(s.as_raw_fd());
        assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
    }
}

/// `TcpStream::connect`: the kernel completes a connect to 127.0.0.1 at
/// once, so only the simulator's waits; the cell covers the drop paths (the
/// socket of a dropped connect is closed; the listener keeps working).
struct TcpConnect;

impl Case for TcpConnect {
    type Fx = TcpListenFx;

    fn waits(d: Drv) -> bool {
        d == Drv::Sim
    }

    async fn setup(_d: Drv) -> TcpListenFx {
        tcp_listen_fx().await
    }

    fn op(fx: &Rc<TcpListenFx>, _rep: usize) -> OpFut {
        let addr = fx.addr;
        Box::pin(async move {
            let c = TcpStream::connect(addr).await?;
            if !in_sim() {
                no_linger(c.as_raw_fd());
            }
            Ok(())
        })
    }

    async fn verify(fx: &Rc<TcpListenFx>, _rep: usize) {
        connect_and_accept(fx, 3).await;
    }

    fn verify_raw(fx: &TcpListenFx, _rep: usize) {
        let c = std::net::TcpStream::connect(fx.addr).unwrap();
        no_linger(c.as_raw_fd());
        for _ in 0..3 {
            let s = std::net::TcpStream::from(raw_accept(fx.l.as_raw_fd()));
            no_linger(s.as_raw_fd());
            if s.peer_addr().ok() == c.local_addr().ok() {
                return;
            }
        }
        panic!("the connection was not accepted");
    }
}

struct UnixListenFx {
    l: UnixListener,
    addr: UnixAddr,
}

/// `accept` on a Unix listener; a client then connects and sends a tag.
struct UnixAccept;

impl Case for UnixAccept {
    type Fx = UnixListenFx;

    async fn setup(_d: Drv) -> UnixListenFx {
        let addr = unique_abstract_addr();
        let l = UnixListener::bind_addr(&addr).unwrap();
        UnixListenFx { l, addr }
    }

    fn op(fx: &Rc<UnixListenFx>, _rep: usize) -> OpFut {
        let fx = fx.clone();
        Box::pin(async move { fx.l.accept().await.map(drop) })
    }

    async fn verify(fx: &Rc<UnixListenFx>, rep: usize) {
        let addr = fx.addr.clone();
        let client = coil::spawn(async move {
            let c = UnixStream::connect_addr(&addr).await.unwrap();
            write_all(&c, (rep as u64).to_le_bytes().to_vec()).await;
            c
        });
        let (s, _) = bounded("accept", fx.l.accept()).await.unwrap();
        let tag = read_n(&s, 8).await;
        assert_eq!(
            tag,
            (rep as u64).to_le_bytes(),
            "another connection was accepted"
        );
        bounded("connect", client).await.unwrap();
    }

    fn verify_raw(fx: &UnixListenFx, rep: usize) {
        let mut c = std::os::unix::net::UnixStream::connect_addr(&fx.addr).unwrap();
        std::io::Write::write_all(&mut c, &(rep as u64).to_le_bytes()).unwrap();
        let s = std::os::unix::net::UnixStream::from(raw_accept(fx.l.as_raw_fd()));
        let mut tag = [0u8; 8];
        std::io::Read::read_exact(&mut &s, &mut tag).unwrap();
        assert_eq!(tag, (rep as u64).to_le_bytes());
    }
}

struct LinesFx {
    peer: TcpStream,
    reader: RefCell<BufReader<TcpStream>>,
}

/// `read_line` on a `BufReader` over TCP; the peer then sends two lines.
struct ReadLine;

// The op future is the reader's only user while it lives (the cells never
// run anything else on it meanwhile): the borrow across awaits is the point.
#[allow(clippy::await_holding_refcell_ref)]
async fn read_one_line(fx: Rc<LinesFx>) -> io::Result<()> {
    let mut r = fx.reader.borrow_mut();
    let mut line = String::new();
    r.read_line(&mut line).await.map(drop)
}

impl Case for ReadLine {
    type Fx = LinesFx;

    async fn setup(_d: Drv) -> LinesFx {
        let (peer, target) = Tcp::pair().await;
        LinesFx {
            peer,
            reader: RefCell::new(BufReader::new(target)),
        }
    }

    fn op(fx: &Rc<LinesFx>, _rep: usize) -> OpFut {
        Box::pin(read_one_line(fx.clone()))
    }

    #[allow(clippy::await_holding_refcell_ref)]
    async fn verify(fx: &Rc<LinesFx>, rep: usize) {
        write_all(
            &fx.peer,
            format!("first {rep}\nsecond {rep}\n").into_bytes(),
        )
        .await;
        let mut r = fx.reader.borrow_mut();
        let mut line = String::new();
        bounded("read_line", r.read_line(&mut line)).await.unwrap();
        assert_eq!(line, format!("first {rep}\n"));
        let next = bounded("next_line", r.next_line()).await.unwrap();
        assert_eq!(next.as_deref(), Some(format!("second {rep}").as_str()));
        assert!(r.buffer().is_empty(), "bytes left in the reader");
    }

    fn verify_raw(fx: &LinesFx, rep: usize) {
        let r = fx.reader.borrow();
        assert!(r.buffer().is_empty(), "bytes left in the reader");
        let p = format!("third {rep}\n").into_bytes();
        sock_send_all(fx.peer.as_raw_fd(), &p);
        assert_same(
            "raw line",
            &sock_recv_n(r.get_ref().as_raw_fd(), p.len()),
            &p,
        );
    }
}

/// Under io_uring a FIFO (a read waits for data, a write for room); under
/// epoll regular files, whose ops finish at once or on the blocking pool.
struct FileFx {
    file: coil::fs::File,
    /// The FIFO's other end (io_uring), non-blocking.
    other: Option<std::fs::File>,
    /// The regular file (epoll).
    path: PathBuf,
    filled: Cell<usize>,
    _dir: TempDir,
}

fn fifo_fx_paths() -> (TempDir, PathBuf) {
    let dir = TempDir::new("op-drop");
    let path = dir.path("fifo");
    mkfifo(&path);
    (dir, path)
}

/// `File::read_at`: waits for data on a FIFO under io_uring. Files have no
/// stash, so the check first waits for the dropped read's cancellation.
struct FileRead;

impl Case for FileRead {
    type Fx = FileFx;

    fn waits(d: Drv) -> bool {
        d == Drv::Uring
    }

    async fn setup(d: Drv) -> FileFx {
        if d == Drv::Uring {
            let (dir, path) = fifo_fx_paths();
            let target = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let other = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
                .unwrap();
            return FileFx {
                file: coil::fs::File::from_std(target),
                other: Some(other),
                path,
                filled: Cell::new(0),
                _dir: dir,
            };
        }
        let dir = TempDir::new("op-drop");
        let path = dir.path("f");
        std::fs::write(&path, pattern(4096, 0)).unwrap();
        FileFx {
            file: coil::fs::File::open(&path).await.unwrap(),
            other: None,
            path,
            filled: Cell::new(0),
            _dir: dir,
        }
    }

    fn op(fx: &Rc<FileFx>, _rep: usize) -> OpFut {
        let fx = fx.clone();
        Box::pin(async move {
            let BufResult(r, _) = fx.file.read_at(Vec::with_capacity(4096), 0).await;
            r.map(drop)
        })
    }

    async fn verify(fx: &Rc<FileFx>, rep: usize) {
        let Some(feed) = &fx.other else {
            let BufResult(r, got) =
                bounded("read_at", fx.file.read_at(Vec::with_capacity(8192), 0)).await;
            r.unwrap();
            assert_same("the file", &got, &pattern(4096, 0));
            return;
        };
        ops_drained().await;
        let p = pattern(512, rep);
        std::io::Write::write_all(&mut &*feed, &p).unwrap();
        let mut got = Vec::new();
        while got.len() < p.len() {
            let BufResult(r, buf) = bounded(
                "read_at on the FIFO",
                fx.file.read_at(Vec::with_capacity(p.len() - got.len()), 0),
            )
            .await;
            assert!(r.unwrap() > 0, "end of FIFO");
            got.extend_from_slice(&buf);
        }
        assert_same("the reads after the dropped one", &got, &p);
    }

    fn verify_raw(fx: &FileFx, rep: usize) {
        match &fx.other {
            Some(feed) => {
                let p = pattern(512, rep);
                std::io::Write::write_all(&mut &*feed, &p).unwrap();
                let target = fx.file.as_raw_fd();
                let mut got = vec![0u8; p.len()];
                wait_fd(target, libc::POLLIN, "raw FIFO read");
                // SAFETY: `got` has `p.len()` writable bytes; the FIFO holds
                // that many (written atomically, under PIPE_BUF).
                let n = unsafe { libc::read(target, got.as_mut_ptr().cast(), got.len()) };
                assert_eq!(n, p.len() as isize);
                assert_same("raw FIFO read", &got, &p);
            }
            None => assert_same(
                "the file",
                &std::fs::read(&fx.path).unwrap(),
                &pattern(4096, 0),
            ),
        }
    }
}

/// `File::write_at`: waits for room in a full FIFO under io_uring (a loop of
/// writes, like [`StreamWrite`]); under epoll a write on the blocking pool.
struct FileWrite;

async fn write_fifo(fx: Rc<FileFx>) -> io::Result<()> {
    loop {
        let start = fx.filled.get();
        let BufResult(r, _) = fx.file.write_at(byte_run(start, CHUNK), 0).await;
        fx.filled.set(start + r?);
    }
}

impl Case for FileWrite {
    type Fx = FileFx;

    fn waits(d: Drv) -> bool {
        d == Drv::Uring
    }

    async fn setup(d: Drv) -> FileFx {
        if d == Drv::Uring {
            let (dir, path) = fifo_fx_paths();
            // The reader first, so that opening the writer does not block.
            let drain = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
                .unwrap();
            let target = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            // SAFETY: fcntl on an fd we own; no pointers.
            let rc = unsafe { libc::fcntl(target.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
            assert!(rc >= 0, "F_SETPIPE_SZ: {}", io::Error::last_os_error());
            return FileFx {
                file: coil::fs::File::from_std(target),
                other: Some(drain),
                path,
                filled: Cell::new(0),
                _dir: dir,
            };
        }
        let dir = TempDir::new("op-drop");
        let path = dir.path("f");
        let file = coil::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap();
        FileFx {
            file,
            other: None,
            path,
            filled: Cell::new(0),
            _dir: dir,
        }
    }

    async fn prepare(fx: &Rc<FileFx>, _rep: usize) {
        if fx.other.is_none() {
            return;
        }
        // Fill the pipe through a non-blocking writer of our own.
        let fill = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fx.path)
            .unwrap();
        loop {
            let start = fx.filled.get();
            match std::io::Write::write(&mut &fill, &byte_run(start, 512)) {
                Ok(n) => fx.filled.set(start + n),
                Err(e) if would_block(&e) => return,
                Err(e) => panic!("filling the FIFO: {e}"),
            }
        }
    }

    fn op(fx: &Rc<FileFx>, rep: usize) -> OpFut {
        if fx.other.is_some() {
            return Box::pin(write_fifo(fx.clone()));
        }
        let fx = fx.clone();
        Box::pin(async move {
            let BufResult(r, _) = fx.file.write_at(pattern(4096, rep), 0).await;
            r.map(drop)
        })
    }

    async fn verify(fx: &Rc<FileFx>, rep: usize) {
        let Some(drain) = &fx.other else {
            // A dropped pool write may still land at 0..4096; ours goes after.
            let p = pattern(512, rep);
            let BufResult(r, _) = bounded("write_at", fx.file.write_at(p.clone(), 8192)).await;
            assert_eq!(r.unwrap(), p.len());
            let BufResult(r, got) =
                bounded("read_at", fx.file.read_at(Vec::with_capacity(512), 8192)).await;
            r.unwrap();
            assert_same("the write after the dropped one", &got, &p);
            return;
        };
        // The dropped write must be cancelled before the pipe drains, or it
        // would land after the mark.
        ops_drained().await;
        let mut got = pipe_drain(drain);
        let BufResult(r, _) = bounded(
            "write_at the mark",
            fx.file.write_at(vec![MARK; MARK_LEN], 0),
        )
        .await;
        r.unwrap();
        got.extend(pipe_read_n(drain, MARK_LEN));
        check_stream(&got, fx.filled.get());
        fx.filled.set(0);
    }

    fn verify_raw(fx: &FileFx, rep: usize) {
        match &fx.other {
            Some(drain) => {
                let mut got = pipe_drain(drain);
                // SAFETY: the live fd, borrowed as a File that ManuallyDrop
                // never closes.
                let f = std::mem::ManuallyDrop::new(unsafe {
                    std::fs::File::from_raw_fd(fx.file.as_raw_fd())
                });
                std::io::Write::write_all(&mut &*f, &[MARK; MARK_LEN]).unwrap();
                got.extend(pipe_read_n(drain, MARK_LEN));
                check_stream(&got, fx.filled.get());
                fx.filled.set(0);
            }
            None => {
                let p = pattern(512, rep);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&fx.path)
                    .unwrap();
                std::os::unix::fs::FileExt::write_all_at(&f, &p, 8192).unwrap();
                let got = std::fs::read(&fx.path).unwrap();
                assert_same("the file's tail", &got[8192..], &p);
            }
        }
    }
}

struct OpenFx {
    path: PathBuf,
    _dir: TempDir,
}

/// `File::open` of a regular file: finishes at once (io_uring's open does
/// not wait even for a FIFO); the cell covers the drop paths: the file a
/// dropped open opened is closed.
struct FileOpen;

impl Case for FileOpen {
    type Fx = OpenFx;

    fn waits(_d: Drv) -> bool {
        false
    }

    async fn setup(_d: Drv) -> OpenFx {
        let dir = TempDir::new("op-drop");
        let path = dir.path("f");
        std::fs::write(&path, pattern(100, 0)).unwrap();
        OpenFx { path, _dir: dir }
    }

    fn op(fx: &Rc<OpenFx>, _rep: usize) -> OpFut {
        let path = fx.path.clone();
        Box::pin(async move { coil::fs::File::open(path).await.map(drop) })
    }

    async fn verify(fx: &Rc<OpenFx>, _rep: usize) {
        let f = bounded("open", coil::fs::File::open(&fx.path))
            .await
            .unwrap();
        let BufResult(r, got) = bounded("read_at", f.read_at(Vec::with_capacity(128), 0)).await;
        r.unwrap();
        assert_same("the file", &got, &pattern(100, 0));
    }

    fn verify_raw(fx: &OpenFx, _rep: usize) {
        assert_same(
            "the file",
            &std::fs::read(&fx.path).unwrap(),
            &pattern(100, 0),
        );
    }
}

/// `sleep`: the timer is removed when the future is dropped on its loop, or
/// fires (once, harmlessly) at its deadline otherwise.
struct SleepCase;

impl Case for SleepCase {
    type Fx = ();
    const SLOW: bool = true;
    const MAY_EXPIRE_WHILE_ARMING: bool = true;

    async fn setup(_d: Drv) {}

    fn op(_fx: &Rc<()>, _rep: usize) -> OpFut {
        Box::pin(async {
            sleep(Duration::from_millis(1)).await;
            Ok(())
        })
    }

    async fn verify(_fx: &Rc<()>, _rep: usize) {
        settled().await;
    }
}

/// `timeout(sleep)`: two timers.
struct TimeoutCase;

impl Case for TimeoutCase {
    type Fx = ();
    const SLOW: bool = true;
    const MAY_EXPIRE_WHILE_ARMING: bool = true;

    async fn setup(_d: Drv) {}

    fn op(_fx: &Rc<()>, _rep: usize) -> OpFut {
        Box::pin(async {
            let _ = timeout(Duration::from_millis(1), sleep(Duration::from_millis(2))).await;
            Ok(())
        })
    }

    async fn verify(_fx: &Rc<()>, _rep: usize) {
        settled().await;
    }
}

/// The op names of the test names.
#[allow(non_camel_case_types)]
mod ops {
    pub(crate) type tcp_read = super::StreamRead<super::Tcp>;
    pub(crate) type unix_read = super::StreamRead<super::Unix>;
    pub(crate) type tcp_write = super::StreamWrite<super::Tcp>;
    pub(crate) type unix_write = super::StreamWrite<super::Unix>;
    pub(crate) type udp_recv = super::UdpRecv<false>;
    pub(crate) type udp_recv_from = super::UdpRecv<true>;
    pub(crate) type udp_send_to = super::UdpSendTo;
    pub(crate) type unix_dgram_recv = super::UdsRecv;
    pub(crate) type unix_dgram_send = super::UdsSend;
    pub(crate) type tcp_accept = super::TcpAccept;
    pub(crate) type unix_accept = super::UnixAccept;
    pub(crate) type tcp_connect = super::TcpConnect;
    pub(crate) type read_line = super::ReadLine;
    pub(crate) type file_read = super::FileRead;
    pub(crate) type file_write = super::FileWrite;
    pub(crate) type file_open = super::FileOpen;
    pub(crate) type sleep = super::SleepCase;
    pub(crate) type timeout = super::TimeoutCase;
}

// ---------------------------------------------------------------------------
// The contexts
// ---------------------------------------------------------------------------

mod ctx {
    use super::*;

    /// Builds the objects, starts the op (after `prepare`) and returns both.
    async fn armed<C: Case>(d: Drv, rep: usize) -> (Rc<C::Fx>, OpFut, bool) {
        let fx = Rc::new(C::setup(d).await);
        C::prepare(&fx, rep).await;
        let mut fut = C::op(&fx, rep);
        let pending = arm(&mut fut).await;
        check_armed::<C>(d, pending);
        (fx, fut, pending)
    }

    /// Starts the op on existing objects.
    async fn start<C: Case>(d: Drv, fx: &Rc<C::Fx>, rep: usize) -> OpFut {
        C::prepare(fx, rep).await;
        let mut fut = C::op(fx, rep);
        let pending = arm(&mut fut).await;
        check_armed::<C>(d, pending);
        fut
    }

    /// (1) Dropped inside the poll of the task that started it.
    pub(crate) fn task_poll<C: Case>(d: Drv) {
        on_loop(d, async move {
            let fx = Rc::new(C::setup(d).await);
            let mut mem = MemCheck::over(reps());
            for i in 0..mem.total() {
                mem.at(i);
                let f = fx.clone();
                let task = coil::spawn(async move {
                    let fut = start::<C>(d, &f, i).await;
                    drop(fut);
                });
                bounded("the task", task).await.unwrap();
                C::verify(&fx, i).await;
                settled().await;
            }
            mem.finish();
        });
    }

    /// (2) A task holding the op is cancelled when its runtime is dropped.
    pub(crate) fn shutdown<C: Case>(d: Drv) {
        let mut mem = MemCheck::over(reps());
        for i in 0..mem.total() {
            mem.at(i);
            let fx = on_loop(d, async move {
                let fx = Rc::new(C::setup(d).await);
                let started = Rc::new(Cell::new(false));
                let (f, s) = (fx.clone(), started.clone());
                drop(coil::spawn(async move {
                    let fut = start::<C>(d, &f, i).await;
                    s.set(true);
                    std::future::pending::<()>().await;
                    drop(fut);
                }));
                until("the task started its op", || started.get()).await;
                fx
            });
            if d != Drv::Sim {
                C::verify_raw(&fx, i);
            }
        }
        mem.finish();
    }

    /// (3) Dropped between two `block_on` calls: no loop is current.
    pub(crate) fn between_block_on<C: Case>(d: Drv) {
        let rt = runtime(d);
        let fx = rt.block_on(async { Rc::new(C::setup(d).await) });
        let mut mem = MemCheck::over(if C::SLOW { reps() } else { mem_reps() });
        for i in 0..mem.total() {
            mem.at(i);
            let fut = rt.block_on(start::<C>(d, &fx, i));
            drop(fut);
            rt.block_on(async {
                C::verify(&fx, i).await;
                settled().await;
            });
        }
        mem.finish();
        rt.block_on(async move { drop(fx) });
    }

    /// (4) Dropped inside another runtime's `block_on` on the same thread.
    pub(crate) fn other_runtime<C: Case>(d: Drv) {
        let (a, b) = (runtime(d), runtime(d));
        let fx = a.block_on(async { Rc::new(C::setup(d).await) });
        let mut mem = MemCheck::over(reps());
        for i in 0..mem.total() {
            mem.at(i);
            let fut = a.block_on(start::<C>(d, &fx, i));
            b.block_on(async move { drop(fut) });
            a.block_on(async {
                C::verify(&fx, i).await;
                settled().await;
            });
            b.block_on(settled());
        }
        mem.finish();
        a.block_on(async move { drop(fx) });
    }

    /// (5) The future outlives its runtime and is dropped after it.
    pub(crate) fn after_runtime_dropped<C: Case>(d: Drv) {
        let mut mem = MemCheck::over(reps());
        for i in 0..mem.total() {
            mem.at(i);
            let (fx, fut, _) = on_loop(d, armed::<C>(d, i));
            drop(fut);
            if d != Drv::Sim {
                C::verify_raw(&fx, i);
            }
        }
        mem.finish();
    }

    /// (5') The future outlives its runtime and is polled on a new one: it
    /// must be ready at once (an error, or the op's real result).
    pub(crate) fn polled_after_runtime_dropped<C: Case>(d: Drv) {
        let mut mem = MemCheck::over(reps());
        for i in 0..mem.total() {
            mem.at(i);
            let (fx, mut fut, pending) = on_loop(d, armed::<C>(d, i));
            if pending {
                // Ready with an error or the op's real result (ops on the
                // blocking pool may take a moment), never a hang or a panic.
                let what = "polling an op whose runtime is gone";
                if let Err(p) = catch(|| on_loop(d, bounded(what, fut.as_mut()))) {
                    panic!("{what} panicked: {}", support::panic_msg(&*p));
                }
            }
            drop(fut);
            if d != Drv::Sim {
                C::verify_raw(&fx, i);
            }
        }
        mem.finish();
    }

    /// (6) A task panics while holding the op.
    pub(crate) fn panic_in_task<C: Case>(d: Drv) {
        on_loop(d, async move {
            let fx = Rc::new(C::setup(d).await);
            let mut mem = MemCheck::over(reps());
            for i in 0..mem.total() {
                mem.at(i);
                let f = fx.clone();
                let task = coil::spawn(async move {
                    let _fut = start::<C>(d, &f, i).await;
                    deliberate_panic();
                });
                let r = bounded("the task", task).await;
                QUIET.set(false);
                match r {
                    Err(TaskError::Panicked(p)) if p.is::<Deliberate>() => {}
                    Err(TaskError::Panicked(p)) => {
                        panic!("unexpected panic: {}", support::panic_msg(&*p.into_inner()))
                    }
                    other => panic!("expected the task's panic, got {:?}", other.map(drop)),
                }
                C::verify(&fx, i).await;
                settled().await;
            }
            mem.finish();
        });
    }

    /// (6') `block_on` panics while holding the op: (a) the op is inside the
    /// `block_on` future, dropped while unwinding in the loop; (b, real
    /// drivers) the caller owns the op, dropped while unwinding after
    /// `block_on` returned, outside any loop.
    pub(crate) fn panic_in_block_on<C: Case>(d: Drv) {
        if d == Drv::Sim {
            let mut mem = MemCheck::over(reps());
            for i in 0..mem.total() {
                mem.at(i);
                expect_deliberate(catch(|| {
                    on_loop(d, async move {
                        let (_fx, _fut, _) = armed::<C>(d, i).await;
                        deliberate_panic();
                    })
                }));
            }
            mem.finish();
            return;
        }
        let rt = runtime(d);
        let fx = rt.block_on(async { Rc::new(C::setup(d).await) });
        let mut mem = MemCheck::over(reps());
        for i in 0..mem.total() {
            mem.at(i);
            let (a, b) = (2 * i, 2 * i + 1);
            expect_deliberate(catch(|| {
                rt.block_on(async {
                    let _fut = start::<C>(d, &fx, a).await;
                    deliberate_panic();
                })
            }));
            rt.block_on(async {
                C::verify(&fx, a).await;
                settled().await;
            });
            expect_deliberate(catch(|| {
                let mut fut = C::op(&fx, b);
                rt.block_on(async {
                    C::prepare(&fx, b).await;
                    let pending = arm(&mut fut).await;
                    check_armed::<C>(d, pending);
                    deliberate_panic();
                })
            }));
            rt.block_on(async {
                C::verify(&fx, b).await;
                settled().await;
            });
        }
        mem.finish();
        rt.block_on(async move { drop(fx) });
    }

    /// An op started on loop A, polled on loop B while A lives: a panic that
    /// names the mistake, and A still owns the op (nothing lost).
    pub(crate) fn polled_on_other_loop<C: Case>(d: Drv) {
        let (a, b) = (runtime(d), runtime(d));
        let fx = a.block_on(async { Rc::new(C::setup(d).await) });
        let mut mem = MemCheck::over(reps());
        let mut panicked = 0;
        for i in 0..mem.total() {
            mem.at(i);
            let mut fut = a.block_on(start::<C>(d, &fx, i));
            QUIET.set(true);
            let r = catch(|| b.block_on(poll_once(fut.as_mut())));
            match r {
                Err(p) if support::panic_msg(&*p).contains("different coil event loop") => {
                    panicked += 1
                }
                Err(p) => panic!("the wrong panic: {}", support::panic_msg(&*p)),
                // The op finished on A (its completion reaped there) before B
                // polled it: nothing is in flight, so its result is handed
                // over. A write that was waiting for room can get it at any
                // time (loopback TCP grows its buffers under load).
                Ok(Poll::Ready(_)) => {}
                Ok(Poll::Pending) => {
                    panic!("an op of loop A was polled on loop B without a panic")
                }
            }
            a.block_on(async move { drop(fut) });
            a.block_on(async {
                C::verify(&fx, i).await;
                settled().await;
            });
            b.block_on(settled());
        }
        mem.finish();
        assert!(
            panicked > 0,
            "no repetition polled an op in flight on loop B"
        );
        a.block_on(async move { drop(fx) });
    }

    /// Checks that an op on another loop's object finished with an error.
    fn expect_error(r: Result<io::Result<()>, coil::time::Elapsed>) {
        match r {
            Ok(Err(_)) => {}
            Ok(Ok(())) => panic!("an op on another loop's object succeeded; expected an io::Error"),
            Err(_) => panic!("an op on another loop's object hung; expected an io::Error"),
        }
    }

    /// An object of loop A used on loop B while A lives: an `io::Error`, and
    /// the object still works on A.
    pub(crate) fn foreign_loop<C: Case>(d: Drv) {
        let (a, b) = (runtime(d), runtime(d));
        let fx = a.block_on(async { Rc::new(C::setup(d).await) });
        let mut mem = MemCheck::over(reps());
        for i in 0..mem.total() {
            mem.at(i);
            expect_error(b.block_on(timeout(BOUND, C::op(&fx, i))));
            b.block_on(settled());
            a.block_on(async {
                C::verify(&fx, i).await;
                settled().await;
            });
        }
        mem.finish();
        a.block_on(async move { drop(fx) });
    }

    /// An object of loop A used on loop B after A was dropped: an
    /// `io::Error`.
    pub(crate) fn foreign_loop_after_drop<C: Case>(d: Drv) {
        let b = runtime(d);
        let mut mem = MemCheck::over(reps());
        for i in 0..mem.total() {
            mem.at(i);
            let fx = on_loop(d, async move { Rc::new(C::setup(d).await) });
            expect_error(b.block_on(timeout(BOUND, C::op(&fx, i))));
            b.block_on(settled());
            drop(fx);
        }
        mem.finish();
    }

    /// A timer future that is `Send`.
    pub(crate) trait SendTimer {
        fn make() -> Pin<Box<dyn Future<Output = ()> + Send>>;
    }

    impl SendTimer for SleepCase {
        fn make() -> Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(sleep(Duration::from_millis(2)))
        }
    }

    impl SendTimer for TimeoutCase {
        fn make() -> Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(async {
                // 10 ms, not 2: the deadline is taken at the first poll, and
                // a preemption longer than it inside that poll (2 ms, once,
                // under CI's load) makes the timeout due before it registers.
                let _ = timeout(Duration::from_millis(10), sleep(Duration::from_millis(15))).await;
            })
        }
    }

    /// (7) A registered timer dropped on another thread while its runtime
    /// lives: the runtime keeps working, and its timers are gone after
    /// their deadlines.
    pub(crate) fn other_thread<C: Case + SendTimer>(d: Drv) {
        on_loop(d, async move {
            let mut mem = MemCheck::over(reps());
            for i in 0..mem.total() {
                mem.at(i);
                let mut t = C::make();
                // The timeout's deadline is absolute (10 ms from its first
                // poll): into an empty wheel, an insert first catches the
                // wheel up with the clock (`src/rt/timers.rs`), so a stall of
                // the thread inside that poll (a loaded machine) made it due
                // at once and the poll ready. With a filed timer held across
                // the poll, the wheel stays at the loop's last clock read
                // (before the poll began), where a deadline two ticks or more
                // after the poll's start is never due: the poll registers
                // both timers whatever the stall.
                let mut anchor = Box::pin(coil::time::sleep_until(
                    coil::time::Instant::now() + Duration::from_secs(3600),
                ));
                assert!(poll_once(anchor.as_mut()).await.is_pending());
                assert!(poll_once(t.as_mut()).await.is_pending());
                drop(anchor);
                assert!(coil::runtime::stats().unwrap().timers > 0, "not registered");
                std::thread::spawn(move || drop(t)).join().unwrap();
                let task = coil::spawn(async move { i });
                assert_eq!(bounded("a task", task).await.unwrap(), i);
                settled().await;
            }
            mem.finish();
        });
    }
}

// ---------------------------------------------------------------------------
// The matrix: one #[test] per context::op::driver
// ---------------------------------------------------------------------------

macro_rules! cells {
    ($ctx:ident: $([$($drv:ident),+] $($op:ident),+;)+) => {
        mod $ctx {
            $(cells!(@ops $ctx [$($drv),+] $($op),+);)+
        }
    };
    (@ops $ctx:ident $drvs:tt $($op:ident),+) => {
        $(cells!(@op $ctx $drvs $op);)+
    };
    (@op $ctx:ident [$($drv:ident),+] $op:ident) => {
        mod $op {
            $(
                #[test]
                fn $drv() {
                    crate::run_cell(
                        concat!(stringify!($ctx), "::", stringify!($op), "::", stringify!($drv)),
                        drv!($drv),
                        crate::ctx::$ctx::<crate::ops::$op>,
                    );
                }
            )+
        }
    };
}

cells! { task_poll:
    [uring, epoll, sim] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, tcp_accept,
        tcp_connect, read_line, sleep, timeout;
    [uring, epoll] unix_read, unix_write, unix_dgram_recv, unix_dgram_send, unix_accept,
        file_read, file_write, file_open;
}

cells! { shutdown:
    [uring, epoll, sim] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, tcp_accept,
        tcp_connect, read_line, sleep, timeout;
    [uring, epoll] unix_read, unix_write, unix_dgram_recv, unix_dgram_send, unix_accept,
        file_read, file_write, file_open;
}

cells! { between_block_on:
    [uring, epoll] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, tcp_accept,
        tcp_connect, read_line, sleep, timeout, unix_read, unix_write, unix_dgram_recv,
        unix_dgram_send, unix_accept, file_read, file_write, file_open;
}

cells! { other_runtime:
    [uring, epoll] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, tcp_accept,
        tcp_connect, read_line, sleep, timeout, unix_read, unix_write, unix_dgram_recv,
        unix_dgram_send, unix_accept, file_read, file_write, file_open;
}

cells! { after_runtime_dropped:
    [uring, epoll, sim] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, tcp_accept,
        tcp_connect, read_line, sleep, timeout;
    [uring, epoll] unix_read, unix_write, unix_dgram_recv, unix_dgram_send, unix_accept,
        file_read, file_write, file_open;
}

// Timers are left out: a `Sleep` re-registers with whichever loop polls it
// (documented), so Pending is right there.
cells! { polled_after_runtime_dropped:
    [uring, epoll, sim] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, tcp_accept,
        tcp_connect, read_line;
    [uring, epoll] unix_read, unix_write, unix_dgram_recv, unix_dgram_send, unix_accept,
        file_read, file_write, file_open;
}

cells! { panic_in_task:
    [uring, epoll, sim] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, tcp_accept,
        tcp_connect, read_line, sleep, timeout;
    [uring, epoll] unix_read, unix_write, unix_dgram_recv, unix_dgram_send, unix_accept,
        file_read, file_write, file_open;
}

cells! { panic_in_block_on:
    [uring, epoll, sim] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, tcp_accept,
        tcp_connect, read_line, sleep, timeout;
    [uring, epoll] unix_read, unix_write, unix_dgram_recv, unix_dgram_send, unix_accept,
        file_read, file_write, file_open;
}

// Ops that surely wait (file ops only do under io_uring, on a FIFO).
cells! { polled_on_other_loop:
    [uring, epoll] tcp_read, tcp_write, udp_recv, udp_recv_from, read_line, unix_read,
        unix_write, unix_dgram_recv, unix_dgram_send, tcp_accept, unix_accept;
    [uring] file_read, file_write;
}

// Objects bound to a loop (sockets); files are plain fds any loop may use,
// and connect makes a new object.
cells! { foreign_loop:
    [uring, epoll] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, read_line,
        unix_read, unix_write, unix_dgram_recv, unix_dgram_send, tcp_accept, unix_accept;
}

cells! { foreign_loop_after_drop:
    [uring, epoll] tcp_read, tcp_write, udp_recv, udp_recv_from, udp_send_to, read_line,
        unix_read, unix_write, unix_dgram_recv, unix_dgram_send, tcp_accept, unix_accept;
}

cells! { other_thread:
    [uring, epoll, sim] sleep, timeout;
}

// ---------------------------------------------------------------------------
// The reported case, as reported
// ---------------------------------------------------------------------------

/// The report, verbatim: a read of `vec![0u8; 4096]` (no spare capacity)
/// put in flight by a 1 ms timeout, dropped between `block_on` calls; and
/// the same with a buffer that has room (`Vec::with_capacity`).
mod reported {
    use super::*;

    fn case(d: Drv, buf: fn() -> Vec<u8>) {
        let rt = Runtime::builder()
            .driver(match d {
                Drv::Uring => DriverChoice::Uring,
                _ => DriverChoice::Epoll,
            })
            .build()
            .unwrap();
        let (a, b) = rt.block_on(async { UnixStream::pair() }).unwrap();
        let mut fut = Box::pin(b.read(buf()));
        rt.block_on(async {
            let _ = coil::time::timeout(Duration::from_millis(1), &mut fut).await;
        }); // read now in flight
        drop(fut); // dropped between block_on calls: no loop is current
        let BufResult(r, _) = rt.block_on(async { a.write_all(vec![7u8; 4096]).await });
        r.unwrap();
        // Later reads on `b` must return all 4096 bytes.
        let got = rt.block_on(read_n(&b, 4096));
        assert_same("reads after the dropped read", &got, &[7u8; 4096]);
        rt.block_on(async move { drop((a, b)) });
    }

    fn literal(d: Drv) {
        case(d, || vec![0u8; 4096]);
    }

    fn with_room(d: Drv) {
        case(d, || Vec::with_capacity(4096));
    }

    mod literal {
        #[test]
        fn uring() {
            crate::run_cell(
                "reported::literal::uring",
                crate::Drv::Uring,
                super::literal,
            );
        }

        #[test]
        fn epoll() {
            crate::run_cell(
                "reported::literal::epoll",
                crate::Drv::Epoll,
                super::literal,
            );
        }
    }

    mod with_room {
        #[test]
        fn uring() {
            crate::run_cell(
                "reported::with_room::uring",
                crate::Drv::Uring,
                super::with_room,
            );
        }

        #[test]
        fn epoll() {
            crate::run_cell(
                "reported::with_room::epoll",
                crate::Drv::Epoll,
                super::with_room,
            );
        }
    }
}

// ---------------------------------------------------------------------------
// (7) I/O futures on sockets are !Send: they cannot reach another thread
// ---------------------------------------------------------------------------

static_assertions::assert_not_impl_any!(TcpStream: Send, Sync);
static_assertions::assert_not_impl_any!(TcpListener: Send, Sync);
static_assertions::assert_not_impl_any!(UdpSocket: Send, Sync);
static_assertions::assert_not_impl_any!(UnixStream: Send, Sync);
static_assertions::assert_not_impl_any!(UnixDatagram: Send, Sync);
static_assertions::assert_not_impl_any!(UnixListener: Send, Sync);
static_assertions::assert_not_impl_any!(BufReader<TcpStream>: Send);
static_assertions::assert_impl_all!(coil::time::Sleep: Send);
static_assertions::assert_impl_all!(coil::time::Timeout<coil::time::Sleep>: Send);

/// Fails to compile if the value's type is `Send`: both impls then apply and
/// the method call is ambiguous. For the opaque `impl Future` types of I/O
/// methods, which `static_assertions` cannot name.
macro_rules! assert_not_send {
    ($e:expr) => {{
        trait AmbiguousIfSend<A> {
            fn some_item(&self) {}
        }
        impl<T: ?Sized> AmbiguousIfSend<()> for T {}
        impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
        let v = $e;
        v.some_item();
        v
    }};
}

#[test]
fn io_futures_are_not_send() {
    // Type-checked, never run.
    let _checks = |t: &TcpStream,
                   l: &TcpListener,
                   u: &UdpSocket,
                   s: &UnixStream,
                   g: &UnixDatagram,
                   ul: &UnixListener,
                   r: &mut BufReader<TcpStream>,
                   f: &coil::fs::File| {
        drop(assert_not_send!(t.read(Vec::<u8>::new())));
        drop(assert_not_send!(t.write(Vec::<u8>::new())));
        drop(assert_not_send!(l.accept()));
        drop(assert_not_send!(TcpStream::connect("127.0.0.1:1")));
        drop(assert_not_send!(u.recv(Vec::<u8>::new())));
        drop(assert_not_send!(u.recv_from(Vec::<u8>::new())));
        drop(assert_not_send!(u.send_to(Vec::<u8>::new(), "127.0.0.1:1")));
        drop(assert_not_send!(s.read(Vec::<u8>::new())));
        drop(assert_not_send!(s.write(Vec::<u8>::new())));
        drop(assert_not_send!(g.recv(Vec::<u8>::new())));
        drop(assert_not_send!(g.send(Vec::<u8>::new())));
        drop(assert_not_send!(ul.accept()));
        let mut line = String::new();
        drop(assert_not_send!(r.read_line(&mut line)));
        drop(assert_not_send!(f.read_at(Vec::<u8>::new(), 0)));
        drop(assert_not_send!(f.write_at(Vec::<u8>::new(), 0)));
        // Send before the op-ownership fix (so they could be dropped on
        // another thread mid-flight); an op now holds its loop's table.
        drop(assert_not_send!(coil::fs::File::open("/")));
        drop(assert_not_send!(coil::fs::metadata("/")));
    };
}
