//! W5 tcp echo (benches/WORKLOADS.md): echo servers for every peer, the raw-epoll
//! load generator, and the suite that runs them as separate pinned
//! processes.
//!
//! * `coil-benches echo peer=<name> port=P` — run one echo server on
//!   127.0.0.1:P until killed (a watchdog ends it after `max_s`, default 120).
//! * `coil-benches loadgen peer=<name> port=P server_pid=PID [conns=100]
//!   [msg=1024] [warmup_ms=1000] [window_ms=8000]` — the load generator: one
//!   thread, raw level-triggered epoll, one JSON line.
//! * `coil-benches echo [--quick] [reps=3] [warmup_ms=] [window_ms=]` — for
//!   every server peer: the server under `taskset -c 0`, the loadgen under
//!   `taskset -c 1`, median of `reps` runs; table and RATIOS. `--quick`:
//!   0.2 s warm-up + 0.8 s window, one rep.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::RawFd;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::opts::Opts;
use crate::report::{Json, Outcome, field, field_f64, median, nearest_rank};

/// Server peers of W5, in table order (coil first: the ratios divide by it).
pub const SERVERS: [&str; 13] = [
    "coil/uring",
    "coil/epoll",
    "coil-pool/uring",
    "coil-pool/epoll",
    "tokio",
    "monoio",
    "monoio-legacy",
    "raw-epoll",
    "raw-uring",
    "raw-uring-defer",
    "raw-uring-fixed",
    "raw-uring-mshot",
    "raw-uring-mshot-fixed",
];

/// The io_uring reference servers with kernel features beyond
/// `raw-uring-defer`'s flags; the ratios give each one's saving over it.
const URING_FEATURE_SERVERS: [&str; 3] = [
    "raw-uring-fixed",
    "raw-uring-mshot",
    "raw-uring-mshot-fixed",
];

/// W5 servers the suite runs only when named (`servers=`): coil's echo
/// reading with `read_pooled` (`peer@impl`, as W9's rows; under io_uring a
/// recv with buffer select on the loop's provided-buffer ring, the same
/// buffers as `raw-uring-mshot`'s).
const NAMED_ONLY_SERVERS: [&str; 2] = ["coil/uring@pooled", "coil/epoll@pooled"];

const BUF: usize = 4096;

/// `Some(exit code)` if `opts` selects W5 (server, loadgen or suite).
pub fn dispatch(opts: &Opts) -> Option<ExitCode> {
    match opts.workload.as_deref() {
        Some("echo") => Some(match opts.peer() {
            Some(p) => server_main(p, opts),
            None => suite(opts),
        }),
        Some("loadgen") => Some(loadgen_main(opts)),
        _ => None,
    }
}

pub fn canonical(peer: &str) -> Option<&'static str> {
    let p = peer.replace('-', "/");
    let p = match p.as_str() {
        "coil" => "coil/uring",
        "coil/pool/uring" | "coil/pool" => "coil-pool/uring",
        "coil/pool/epoll" => "coil-pool/epoll",
        "monoio/legacy" => "monoio-legacy",
        "raw/epoll" => "raw-epoll",
        "raw/uring" => "raw-uring",
        "raw/uring/defer" => "raw-uring-defer",
        "raw/uring/fixed" => "raw-uring-fixed",
        "raw/uring/mshot" => "raw-uring-mshot",
        "raw/uring/mshot/fixed" => "raw-uring-mshot-fixed",
        other => {
            return SERVERS
                .iter()
                .chain(NAMED_ONLY_SERVERS.iter())
                .copied()
                .find(|s| *s == other);
        }
    };
    Some(p)
}

pub fn pin_to(cpu: usize) {
    if std::env::var("COIL_BENCH_PIN").as_deref() == Ok("taskset") {
        return;
    }
    if !crate::harness::pin_thread(cpu) {
        eprintln!("coil-benches: could not pin to CPU {cpu}; running unpinned");
    }
}

// ---------------------------------------------------------------- servers

fn server_main(peer: &str, opts: &Opts) -> ExitCode {
    let Some(peer) = canonical(peer) else {
        eprintln!("unknown echo server {peer:?} (known: {SERVERS:?})");
        return ExitCode::from(2);
    };
    let port = match opts.get_u64("port", 0) {
        Ok(p) if p > 0 && p < 65536 => p as u16,
        _ => {
            eprintln!("echo server: port=P (1..65535) is required");
            return ExitCode::from(2);
        }
    };
    pin_to(0);
    crate::idle::raise_nofile(); // W9 holds 8 000 connections
    let max_s = opts.get_u64("max_s", 120).unwrap_or(120);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(max_s));
        eprintln!("echo server: watchdog after {max_s} s");
        std::process::exit(3);
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // `impl=pooled` (W9) or a `@pooled` name (W5): coil reads with
    // `read_pooled` instead of a Vec per read.
    let (peer, named_pooled) = match peer.split_once('@') {
        Some((base, "pooled")) => (base, true),
        _ => (peer, false),
    };
    let pooled = named_pooled || opts.keys.get("impl").is_some_and(|i| i == "pooled");
    let r = match peer {
        "coil/uring" => coil_server(coil::runtime::DriverChoice::Uring, addr, pooled),
        "coil/epoll" => coil_server(coil::runtime::DriverChoice::Epoll, addr, pooled),
        "coil-pool/uring" => coil_pool_server(coil::runtime::DriverChoice::Uring, addr),
        "coil-pool/epoll" => coil_pool_server(coil::runtime::DriverChoice::Epoll, addr),
        "tokio" => tokio_server(addr),
        "monoio" => monoio_server(addr, true),
        "monoio-legacy" => monoio_server(addr, false),
        // W9 (idle.rs) asks for a 4 KiB buffer per connection, as a runtime's task holds.
        "raw-epoll" => {
            raw_epoll_server(addr, opts.keys.get("impl").is_some_and(|i| i == "conn-buf"))
        }
        "raw-uring"
        | "raw-uring-defer"
        | "raw-uring-fixed"
        | "raw-uring-mshot"
        | "raw-uring-mshot-fixed" => raw_uring_server(
            addr,
            UringFeatures {
                defer: peer != "raw-uring",
                fixed: peer.ends_with("fixed"),
                mshot: peer.contains("mshot"),
            },
        ),
        _ => unreachable!(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo server {peer}: {e}");
            ExitCode::from(1)
        }
    }
}

fn coil_server(
    choice: coil::runtime::DriverChoice,
    addr: SocketAddr,
    pooled: bool,
) -> Result<(), String> {
    let rt = coil::Runtime::builder()
        .driver(choice)
        .build()
        .map_err(|e| format!("coil runtime: {e}"))?;
    rt.block_on(coil_serve(addr, pooled))
}

/// W8c: the same server as the one loop of a `coil::pool::Pool` (the loop's
/// thread inherits this process's CPU 0).
fn coil_pool_server(choice: coil::runtime::DriverChoice, addr: SocketAddr) -> Result<(), String> {
    let pool = coil::pool::Pool::builder()
        .loops(1)
        .driver(choice)
        .build()
        .map_err(|e| format!("coil pool: {e}"))?;
    pool.run(move |_| coil_serve(addr, false))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// coil's echo server: accept forever, one task per connection, reading into
/// a `Vec` of its own or, with `pooled`, with `read_pooled` (a task then holds a
/// buffer of the loop's pool only from a read's completion until its echo is sent).
async fn coil_serve(addr: SocketAddr, pooled: bool) -> Result<(), String> {
    use coil::io::BufResult;
    let l = coil::net::TcpListener::bind(addr).map_err(|e| format!("bind: {e}"))?;
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        let _ = s.set_nodelay(true);
        if pooled {
            drop(coil::spawn(async move {
                while let Ok(buf) = s.read_pooled().await {
                    if buf.is_empty() || s.write_all(buf).await.0.is_err() {
                        break;
                    }
                }
            }));
            continue;
        }
        drop(coil::spawn(async move {
            let mut buf = Vec::with_capacity(BUF);
            loop {
                buf.clear();
                let BufResult(r, b) = s.read(buf).await;
                buf = b;
                match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let BufResult(r, b) = s.write_all(buf).await;
                buf = b;
                if r.is_err() {
                    break;
                }
            }
        }));
    }
}

fn tokio_server(addr: SocketAddr) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("bind: {e}"))?;
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; BUF];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}

fn monoio_server(addr: SocketAddr, uring: bool) -> Result<(), String> {
    async fn serve(addr: SocketAddr) -> Result<(), String> {
        use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
        let l = monoio::net::TcpListener::bind(addr).map_err(|e| format!("bind: {e}"))?;
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            monoio::spawn(async move {
                let mut buf = Vec::with_capacity(BUF);
                loop {
                    buf.clear();
                    let (r, b) = s.read(buf).await;
                    buf = b;
                    match r {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let (r, b) = s.write_all(buf).await;
                    buf = b;
                    if r.is_err() {
                        break;
                    }
                }
            });
        }
    }
    if uring {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .build()
            .map_err(|e| format!("monoio io_uring runtime: {e}"))?
            .block_on(serve(addr))
    } else {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .map_err(|e| format!("monoio legacy runtime: {e}"))?
            .block_on(serve(addr))
    }
}

pub fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn epoll_ctl(ep: RawFd, op: i32, fd: RawFd, events: u32) -> Result<(), String> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a live epoll_event for the call.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } < 0 {
        return Err(os_err("epoll_ctl"));
    }
    Ok(())
}

fn set_nodelay(fd: RawFd) {
    let one: i32 = 1;
    // SAFETY: `one` is a live int of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw const one).cast(),
            4,
        )
    };
}

/// The reference server: level-triggered epoll, read + write on readiness, into
/// one shared buffer, or with `conn_buf` (W9's `impl=conn-buf`) into a 4 KiB
/// buffer per connection.
fn raw_epoll_server(addr: SocketAddr, conn_buf: bool) -> Result<(), String> {
    use std::os::fd::IntoRawFd;
    let l = StdListener::bind(addr).map_err(|e| format!("bind: {e}"))?;
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    let lfd = l.into_raw_fd();
    // SAFETY: plain system call.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(os_err("epoll_create1"));
    }
    epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32)?;
    let mut pending: HashMap<RawFd, Vec<u8>> = HashMap::new();
    let mut shared = vec![0u8; BUF];
    let mut conn_bufs: HashMap<RawFd, Vec<u8>> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let close = |fd: RawFd, pending: &mut HashMap<RawFd, Vec<u8>>| {
        pending.remove(&fd);
        // (`conn_bufs` keeps the buffer: the next connection on this fd number reuses it.)
        // SAFETY: `fd` is a connection this loop owns; it is not used again.
        unsafe { libc::close(fd) };
    };
    loop {
        // SAFETY: `events` has room for its length of entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            continue; // EINTR
        }
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            if fd == lfd {
                loop {
                    // SAFETY: accept4 with null address pointers.
                    let c = unsafe {
                        libc::accept4(
                            lfd,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        )
                    };
                    if c < 0 {
                        break;
                    }
                    set_nodelay(c);
                    epoll_ctl(ep, libc::EPOLL_CTL_ADD, c, libc::EPOLLIN as u32)?;
                }
                continue;
            }
            if ev.events & libc::EPOLLOUT as u32 != 0 {
                let p = pending
                    .get_mut(&fd)
                    .expect("EPOLLOUT only with pending bytes");
                // SAFETY: p's bytes are initialised.
                let w = unsafe { libc::send(fd, p.as_ptr().cast(), p.len(), libc::MSG_NOSIGNAL) };
                if w < 0 {
                    if std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock {
                        close(fd, &mut pending);
                    }
                    continue;
                }
                p.drain(..w as usize);
                if p.is_empty() {
                    pending.remove(&fd);
                    epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32)?;
                }
                continue;
            }
            let buf = if conn_buf {
                conn_bufs.entry(fd).or_insert_with(|| vec![0u8; BUF])
            } else {
                &mut shared
            };
            // SAFETY: `buf` is writable for its length.
            let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r == 0
                || (r < 0
                    && std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock)
            {
                close(fd, &mut pending);
                continue;
            }
            if r < 0 {
                continue;
            }
            let r = r as usize;
            // SAFETY: the first `r` bytes of `buf` were just received.
            let w = unsafe { libc::send(fd, buf.as_ptr().cast(), r, libc::MSG_NOSIGNAL) };
            let w = if w < 0 {
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock {
                    close(fd, &mut pending);
                    continue;
                }
                0
            } else {
                w as usize
            };
            if w < r {
                pending.insert(fd, buf[w..r].to_vec());
                epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLOUT as u32)?;
            }
        }
    }
}

/// Kernel features of an io_uring reference server (`raw_uring_server`).
#[derive(Clone, Copy)]
struct UringFeatures {
    /// `SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG` (coil's ring flags).
    defer: bool,
    /// Registered files: a sparse file table, the multishot accept installs
    /// direct descriptors in it, Recv/Send/Close use `types::Fixed`.
    fixed: bool,
    /// Multishot recv from a provided-buffer ring; the echo is sent from the
    /// selected buffer, which goes back to the ring once fully sent.
    mshot: bool,
}

/// The io_uring reference servers, one per set of kernel features:
///
/// * `raw-uring`: default ring flags; `raw-uring-defer`: `SINGLE_ISSUER |
///   DEFER_TASKRUN | TASKRUN_FLAG`, the flags coil's runtime builds its ring
///   with (the ring is then used only from this thread, which created it).
///   Per connection one 4 KiB buffer in a slab indexed by the connection id in
///   `user_data`; one op per connection in flight: recv → send the bytes back
///   (the rest again after a short send) → recv; close on 0 or an error. No
///   fixed buffers or registered files (coil uses neither).
/// * `raw-uring-fixed`: defer flags + registered files (sparse table, accept
///   into direct descriptors; `TCP_NODELAY` is set on the listener, which
///   accepted sockets inherit, since a direct descriptor takes no setsockopt).
/// * `raw-uring-mshot`: defer flags + one multishot recv per connection on a
///   provided-buffer ring (`NBUF` buffers of 4 KiB), re-armed only when a CQE
///   comes without `IORING_CQE_F_MORE`; each received chunk is queued and
///   echoed in order (one Send in flight per connection) from its buffer.
/// * `raw-uring-mshot-fixed`: both.
///
/// All: one 256-entry ring, a multishot accept (re-armed when the kernel ends
/// it), one `submit_and_wait(1)` per loop turn, then the whole CQ is drained.
fn raw_uring_server(addr: SocketAddr, ft: UringFeatures) -> Result<(), String> {
    use io_uring::{IoUring, SubmissionQueue, cqueue, opcode, squeue, types};
    use std::collections::VecDeque;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicU16, Ordering};

    // user_data = (connection id << TAG_BITS) | op tag.
    const TAG_BITS: u32 = 3;
    const ACCEPT: u64 = 0;
    const RECV: u64 = 1;
    const SEND: u64 = 2;
    const CLOSE: u64 = 3;
    const SHUTDOWN: u64 = 4;
    // `fixed`: slots in the sparse registered-file table (> connections).
    const SLOTS: u32 = 1024;
    // `mshot`: buffer group BGID of NBUF (a power of two) buffers of BUF bytes.
    const BGID: u16 = 0;
    const NBUF: u16 = 1024;

    // An op on a connection's socket: `$fd` is a file descriptor, or with
    // `fixed` the slot of a direct descriptor.
    macro_rules! on_fd {
        ($fd:expr, |$f:ident| $op:expr) => {
            if ft.fixed {
                let $f = types::Fixed($fd as u32);
                $op
            } else {
                let $f = types::Fd($fd);
                $op
            }
        };
    }

    struct Conn {
        fd: RawFd,
        // Without `mshot`: the connection's buffer (null with `mshot`).
        // Leaked: the kernel may still write into a buffer whose op is in
        // flight when this function returns an error, so buffers are never
        // freed (slots, and with them their buffers, are reused instead).
        buf: *mut u8,
        // Bytes in `buf` (without `mshot`) and how many of them (or of the
        // front chunk, with `mshot`) were sent back.
        len: usize,
        sent: usize,
        // `mshot`: received chunks (buffer id, length) not yet fully echoed,
        // in order; the front one is being sent.
        chunks: VecDeque<(u16, usize)>,
        // `mshot`: the multishot recv is armed; a Send is in flight; the recv
        // ended with ENOBUFS (re-armed when a buffer comes back); the recv
        // side is over (EOF or an error: echo what is queued, then close); a
        // send failed (drop what is queued, shut down, close).
        recv_armed: bool,
        sending: bool,
        starved: bool,
        eof: bool,
        broken: bool,
    }
    impl Conn {
        fn new(fd: RawFd, buf: *mut u8, chunks: VecDeque<(u16, usize)>) -> Conn {
            Conn {
                fd,
                buf,
                len: 0,
                sent: 0,
                chunks,
                recv_armed: false,
                sending: false,
                starved: false,
                eof: false,
                broken: false,
            }
        }
    }

    // `struct io_uring_buf`; the `resv` field of entry 0 is the ring's tail.
    #[repr(C)]
    struct PBuf {
        addr: u64,
        len: u32,
        bid: u16,
        resv: u16,
    }
    const _: () = assert!(std::mem::size_of::<PBuf>() == 16);
    // `mshot`: the provided-buffer ring (`NBUF` entries) and its buffers
    // (`NBUF * BUF` bytes), both leaked: the kernel reads the ring and writes
    // the buffers for as long as the ring and its registration live, which
    // outlasts this function when it returns an error.
    struct BufRing {
        entries: *mut PBuf,
        tail: &'static AtomicU16,
        local_tail: u16,
        bufs: *mut u8,
    }
    impl BufRing {
        /// Puts buffer `bid` (held by the loop: taken from a CQE and no
        /// longer used by any op) back in the ring.
        fn give(&mut self, bid: u16) {
            let i = (self.local_tail & (NBUF - 1)) as usize;
            // The ring holds at most NBUF - 1 buffers while the loop holds
            // `bid`, so entry `i` (at the tail) is not visible to the kernel
            // until the Release store below publishes it. Plain field writes
            // through the raw pointer: no reference to entry 0 overlaps `tail`.
            // SAFETY: `i < NBUF`, inside the leaked entry array, unpublished (above).
            unsafe {
                let e = self.entries.add(i);
                (*e).addr = self.bufs as u64 + u64::from(bid) * BUF as u64;
                (*e).len = BUF as u32;
                (*e).bid = bid;
            }
            self.local_tail = self.local_tail.wrapping_add(1);
            self.tail.store(self.local_tail, Ordering::Release);
        }
    }

    let l = StdListener::bind(addr).map_err(|e| format!("bind: {e}"))?;
    if ft.fixed {
        set_nodelay(l.as_raw_fd());
    }
    let accept = opcode::AcceptMulti::new(types::Fd(l.as_raw_fd()))
        .allocate_file_index(ft.fixed)
        // The kernel rejects SOCK_CLOEXEC for direct descriptors (EINVAL);
        // they are not in the process's fd table anyway.
        .flags(if ft.fixed { 0 } else { libc::SOCK_CLOEXEC })
        .build()
        .user_data(ACCEPT);
    let mut b = IoUring::builder();
    if ft.defer {
        b.setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag();
    }
    let mut ring: IoUring = b.build(256).map_err(|e| format!("io_uring_setup: {e}"))?;
    if ft.fixed {
        ring.submitter()
            .register_files_sparse(SLOTS)
            .map_err(|e| format!("io_uring_register(FILES2, sparse {SLOTS}): {e}"))?;
    }
    let mut pbuf: Option<BufRing> = None;
    if ft.mshot {
        let layout = std::alloc::Layout::from_size_align(NBUF as usize * 16, 4096)
            .map_err(|e| format!("buffer ring layout: {e}"))?;
        // SAFETY: the layout has a non-zero size.
        let entries = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<PBuf>();
        if entries.is_null() {
            return Err("buffer ring: out of memory".into());
        }
        let bufs = Box::into_raw(vec![0u8; NBUF as usize * BUF].into_boxed_slice()).cast::<u8>();
        // SAFETY: `entries` is page-aligned, zeroed, NBUF entries long and
        // leaked (never freed), so it outlives the registration.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, NBUF, BGID, 0)
        }
        .map_err(|e| format!("io_uring_register(PBUF_RING, {NBUF} entries): {e}"))?;
        // SAFETY: entry 0's `resv` is the ring's tail, a u16 at an aligned
        // address inside the leaked allocation; the kernel only reads it.
        let tail = unsafe { AtomicU16::from_ptr(&raw mut (*entries).resv) };
        let mut r = BufRing {
            entries,
            tail,
            local_tail: 0,
            bufs,
        };
        for bid in 0..NBUF {
            r.give(bid);
        }
        pbuf = Some(r);
    }

    let recv = |id: usize, c: &Conn| {
        on_fd!(c.fd, |f| opcode::Recv::new(f, c.buf, BUF as u32)
            .build()
            .user_data(((id as u64) << TAG_BITS) | RECV))
    };
    let recv_multi = |id: usize, c: &Conn| {
        on_fd!(c.fd, |f| opcode::RecvMulti::new(f, BGID)
            .build()
            .user_data(((id as u64) << TAG_BITS) | RECV))
    };
    let send = |id: usize, fd: RawFd, p: *const u8, len: usize| {
        on_fd!(fd, |f| opcode::Send::new(f, p, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(((id as u64) << TAG_BITS) | SEND))
    };
    let (submitter, mut sq, mut cq) = ring.split();
    let push = |sq: &mut SubmissionQueue<'_>, e: &squeue::Entry| -> Result<(), String> {
        loop {
            // Every entry built here is the multishot accept, a
            // Close or a Shutdown (no memory), a RecvMulti (the kernel picks
            // leaked buffers of the registered ring), a Recv/Send on the
            // leaked, never-freed buffer of its connection's slot (one op in
            // flight per slot, reused only after that op's completion, the
            // buffer read or written by this loop only between an op's
            // completion and the next op's submission), or a Send from a
            // leaked ring buffer the loop holds (taken from a recv CQE, given
            // back only after the last Send from it has completed).
            // SAFETY: each entry's memory outlives its op (above).
            if unsafe { sq.push(e) }.is_ok() {
                return Ok(());
            }
            sq.sync();
            submitter
                .submit()
                .map_err(|e| format!("io_uring_enter: {e}"))?;
            sq.sync();
        }
    };
    let close = |sq: &mut SubmissionQueue<'_>, fd: RawFd| -> Result<(), String> {
        if ft.fixed {
            push(
                sq,
                &opcode::Close::new(types::Fixed(fd as u32))
                    .build()
                    .user_data(CLOSE),
            )
        } else {
            // SAFETY: the connection's fd, owned by this loop; it has no op
            // in flight and is not used again.
            unsafe { libc::close(fd) };
            Ok(())
        }
    };
    let mut conns: Vec<Conn> = Vec::with_capacity(128);
    let mut free: Vec<usize> = Vec::new();
    let mut starved: Vec<usize> = Vec::new();
    push(&mut sq, &accept)?;
    loop {
        sq.sync();
        if let Err(e) = submitter.submit_and_wait(1) {
            match e.raw_os_error() {
                Some(libc::EINTR | libc::EAGAIN | libc::EBUSY) => {}
                _ => return Err(format!("io_uring_enter: {e}")),
            }
        }
        cq.sync();
        let mut gave = false;
        for cqe in &mut cq {
            let (ud, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            let id = (ud >> TAG_BITS) as usize;
            match ud & ((1 << TAG_BITS) - 1) {
                ACCEPT => {
                    if !cqueue::more(flags) {
                        push(&mut sq, &accept)?;
                    }
                    if res < 0 {
                        continue;
                    }
                    if !ft.fixed {
                        set_nodelay(res);
                    }
                    let id = match free.pop() {
                        Some(id) => {
                            let c = &mut conns[id];
                            *c = Conn::new(res, c.buf, std::mem::take(&mut c.chunks));
                            id
                        }
                        None => {
                            let buf = if ft.mshot {
                                std::ptr::null_mut()
                            } else {
                                Box::leak(Box::new([0u8; BUF])).as_mut_ptr()
                            };
                            conns.push(Conn::new(res, buf, VecDeque::new()));
                            conns.len() - 1
                        }
                    };
                    let c = &mut conns[id];
                    if ft.mshot {
                        c.recv_armed = true;
                        push(&mut sq, &recv_multi(id, c))?;
                    } else {
                        push(&mut sq, &recv(id, c))?;
                    }
                }
                CLOSE => {
                    if res < 0 {
                        return Err(format!(
                            "close of a direct descriptor: {}",
                            std::io::Error::from_raw_os_error(-res)
                        ));
                    }
                }
                // Only to end a multishot recv after a failed send; its
                // result does not matter (the socket may be gone already).
                SHUTDOWN => {}
                tag => {
                    let c = &mut conns[id];
                    let Some(pb) = pbuf.as_mut() else {
                        // One buffer per connection, one op in flight.
                        if res <= 0 {
                            close(&mut sq, c.fd)?;
                            c.fd = -1;
                            free.push(id);
                            continue;
                        }
                        if tag == RECV {
                            (c.len, c.sent) = (res as usize, 0);
                        } else {
                            c.sent += res as usize;
                        }
                        if c.sent < c.len {
                            let p = c.buf.wrapping_add(c.sent);
                            push(&mut sq, &send(id, c.fd, p, c.len - c.sent))?;
                        } else {
                            push(&mut sq, &recv(id, c))?;
                        }
                        continue;
                    };
                    // Multishot recv on the buffer ring.
                    if tag == RECV {
                        if !cqueue::more(flags) {
                            c.recv_armed = false;
                        }
                        if res > 0 {
                            let bid = cqueue::buffer_select(flags).ok_or_else(|| {
                                "multishot recv: a CQE with data but no buffer id".to_string()
                            })?;
                            if c.eof || c.broken {
                                pb.give(bid);
                                gave = true;
                            } else {
                                c.chunks.push_back((bid, res as usize));
                                if !c.sending {
                                    c.sending = true;
                                    let p = pb.bufs.wrapping_add(bid as usize * BUF);
                                    push(&mut sq, &send(id, c.fd, p, res as usize))?;
                                }
                                if !c.recv_armed {
                                    c.recv_armed = true;
                                    push(&mut sq, &recv_multi(id, c))?;
                                }
                            }
                        } else if res == -libc::ENOBUFS && !c.eof && !c.broken {
                            // The ring is empty; re-armed when a buffer
                            // comes back.
                            c.starved = true;
                            starved.push(id);
                        } else {
                            // 0: the peer closed; < 0: an error.
                            c.eof = true;
                        }
                    } else {
                        c.sending = false;
                        if res <= 0 {
                            if !c.broken {
                                c.broken = true;
                                if c.recv_armed {
                                    let sd =
                                        on_fd!(c.fd, |f| opcode::Shutdown::new(f, libc::SHUT_RDWR)
                                            .build()
                                            .user_data(SHUTDOWN));
                                    push(&mut sq, &sd)?;
                                }
                            }
                        } else if !c.broken {
                            c.sent += res as usize;
                            let (bid, len) = *c.chunks.front().ok_or_else(|| {
                                "multishot echo: a send completed with no chunk queued".to_string()
                            })?;
                            if c.sent >= len {
                                c.chunks.pop_front();
                                c.sent = 0;
                                pb.give(bid);
                                gave = true;
                            }
                            if let Some(&(bid, len)) = c.chunks.front() {
                                c.sending = true;
                                let p = pb.bufs.wrapping_add(bid as usize * BUF + c.sent);
                                push(&mut sq, &send(id, c.fd, p, len - c.sent))?;
                            }
                        }
                    }
                    // Close once nothing is in flight and nothing is left to
                    // echo (or a send failed).
                    if !c.recv_armed && !c.sending && (c.broken || (c.eof && c.chunks.is_empty())) {
                        for (bid, _) in c.chunks.drain(..) {
                            pb.give(bid);
                            gave = true;
                        }
                        c.starved = false;
                        close(&mut sq, c.fd)?;
                        c.fd = -1;
                        free.push(id);
                    }
                }
            }
        }
        cq.sync();
        if gave && !starved.is_empty() {
            for id in std::mem::take(&mut starved) {
                let c = &mut conns[id];
                if c.starved && !c.eof && !c.broken {
                    c.starved = false;
                    c.recv_armed = true;
                    push(&mut sq, &recv_multi(id, c))?;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- loadgen

/// (utime, stime) in clock ticks.
type Ticks = (u64, u64);

/// utime + stime of `pid` (or `self`) in clock ticks, split.
fn cpu_ticks(pid: Option<u32>) -> Option<Ticks> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (1-based); `rest` starts at field 3.
    Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?))
}

fn clk_tck() -> f64 {
    // SAFETY: plain libc call.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

struct Conn {
    fd: RawFd,
    written: usize,
    read: usize,
    start: Instant,
    buf: Vec<u8>,
}

fn connect_nb(addr: SocketAddr, deadline: Instant) -> Result<RawFd, String> {
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => {
                use std::os::fd::IntoRawFd;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                s.set_nonblocking(true).map_err(|e| e.to_string())?;
                return Ok(s.into_raw_fd());
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("connect {addr}: {e}")),
        }
    }
}

fn loadgen_main(opts: &Opts) -> ExitCode {
    let peer = opts.peer().unwrap_or("?").to_string();
    let o = loadgen(&peer, opts).unwrap_or_else(|e| Outcome::error(&peer, "echo", &e));
    println!("{}", o.to_json());
    if o.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn loadgen(peer: &str, opts: &Opts) -> Result<Outcome, String> {
    pin_to(1);
    let port = opts.get_u64("port", 0)? as u16;
    if port == 0 {
        return Err("loadgen: port=P is required".into());
    }
    let server_pid = opts
        .keys
        .get("server_pid")
        .and_then(|p| p.parse::<u32>().ok());
    let conns = opts.get_u64("conns", 100)?.max(1) as usize;
    let msg_len = opts.get_u64("msg", 1024)?.max(1) as usize;
    let warmup = Duration::from_millis(opts.get_u64("warmup_ms", 1000)?);
    let window = Duration::from_millis(opts.get_u64("window_ms", 8000)?.max(1));
    let msg: Vec<u8> = (0..msg_len).map(|j| ((j * 31) % 251) as u8).collect();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // SAFETY: plain system call.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(os_err("epoll_create1"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut cs = Vec::with_capacity(conns);
    for i in 0..conns {
        let fd = connect_nb(addr, deadline)?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: `ev` is live for the call.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(os_err("epoll_ctl"));
        }
        cs.push(Conn {
            fd,
            written: 0,
            read: 0,
            start: Instant::now(),
            buf: vec![0u8; msg_len],
        });
    }
    let mut errors = 0u64;
    let mut mismatches = 0u64;
    let mut lat: Vec<i64> = Vec::with_capacity(1 << 20);

    // Writes the rest of the current request; Ok(true) when fully written.
    let send_rest = |c: &mut Conn, ep: RawFd, idx: usize, msg: &[u8]| -> Result<bool, ()> {
        while c.written < msg.len() {
            // SAFETY: the slice is initialised and live.
            let w = unsafe {
                libc::send(
                    c.fd,
                    msg[c.written..].as_ptr().cast(),
                    msg.len() - c.written,
                    libc::MSG_NOSIGNAL,
                )
            };
            if w < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
                    let mut ev = libc::epoll_event {
                        events: (libc::EPOLLIN | libc::EPOLLOUT) as u32,
                        u64: idx as u64,
                    };
                    // SAFETY: `ev` is live for the call.
                    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, c.fd, &mut ev) };
                    return Ok(false);
                }
                return Err(());
            }
            c.written += w as usize;
        }
        Ok(true)
    };

    let t0 = Instant::now();
    let warm_end = t0 + warmup;
    let win_end = warm_end + window;
    for (i, c) in cs.iter_mut().enumerate() {
        c.start = Instant::now();
        if send_rest(c, ep, i, &msg).is_err() {
            errors += 1;
        }
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; conns];
    let mut cpu_start: Option<(Instant, Ticks, Ticks)> = None;
    let mut completed_in_window = 0u64;
    let mut alive = conns;
    loop {
        let now = Instant::now();
        if cpu_start.is_none() && now >= warm_end {
            cpu_start = Some((
                now,
                server_pid
                    .and_then(|p| cpu_ticks(Some(p)))
                    .unwrap_or((0, 0)),
                cpu_ticks(None).unwrap_or((0, 0)),
            ));
        }
        if now >= win_end || alive == 0 {
            break;
        }
        let next = if now < warm_end { warm_end } else { win_end };
        let ms = (next - now).as_micros().div_ceil(1000).min(1000) as i32;
        // SAFETY: `events` has room for its length of entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, ms) };
        if n < 0 {
            continue;
        }
        for ev in &events[..n as usize] {
            let idx = ev.u64 as usize;
            let evs = ev.events;
            let c = &mut cs[idx];
            if c.fd < 0 {
                continue;
            }
            if evs & libc::EPOLLOUT as u32 != 0 && c.written < msg_len {
                match send_rest(c, ep, idx, &msg) {
                    Ok(true) => {
                        let mut ev = libc::epoll_event {
                            events: libc::EPOLLIN as u32,
                            u64: idx as u64,
                        };
                        // SAFETY: `ev` is live for the call.
                        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, c.fd, &mut ev) };
                    }
                    Ok(false) => {}
                    Err(()) => {
                        errors += 1;
                        // SAFETY: our fd, not used again.
                        unsafe { libc::close(c.fd) };
                        c.fd = -1;
                        alive -= 1;
                        continue;
                    }
                }
            }
            if evs & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 == 0 {
                continue;
            }
            // SAFETY: the tail of c.buf is writable.
            let r = unsafe {
                libc::recv(
                    c.fd,
                    c.buf[c.read..].as_mut_ptr().cast(),
                    msg_len - c.read,
                    0,
                )
            };
            if r <= 0 {
                if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
                {
                    continue;
                }
                errors += 1;
                // SAFETY: our fd, not used again.
                unsafe { libc::close(c.fd) };
                c.fd = -1;
                alive -= 1;
                continue;
            }
            c.read += r as usize;
            if c.read < msg_len {
                continue;
            }
            let done = Instant::now();
            if c.buf != msg {
                mismatches += 1;
            }
            if done >= warm_end && done < win_end {
                completed_in_window += 1;
                lat.push((done - c.start).as_nanos() as i64);
            }
            c.read = 0;
            c.written = 0;
            c.start = Instant::now();
            if send_rest(c, ep, idx, &msg).is_err() {
                errors += 1;
            }
        }
    }
    let end = Instant::now();
    let srv_end = server_pid.and_then(|p| cpu_ticks(Some(p)));
    let cli_end = cpu_ticks(None);
    for c in &cs {
        if c.fd >= 0 {
            // SAFETY: our fds, not used again.
            unsafe { libc::close(c.fd) };
        }
    }
    lat.sort_unstable();
    let reqs = completed_in_window;
    let win_s = window.as_secs_f64();
    let mut o = Outcome {
        peer: peer.to_string(),
        workload: "echo".into(),
        params: vec![
            ("conns".into(), Json::Int(conns as i64)),
            ("msg".into(), Json::Int(msg_len as i64)),
            ("warmup_s".into(), Json::Num(warmup.as_secs_f64())),
            ("window_s".into(), Json::Num(win_s)),
            ("port".into(), Json::Int(i64::from(port))),
        ],
        metric: "rps".into(),
        value: Some(reqs as f64 / win_s),
        unit: "req/s".into(),
        ok: errors == 0 && mismatches == 0 && reqs > 0,
        elapsed_ms: (end - t0).as_secs_f64() * 1e3,
        extra: Vec::new(),
        error: None,
    };
    let us = |ns: i64| Json::Num(ns as f64 / 1e3);
    o.extra.extend([
        ("requests".into(), Json::Int(reqs as i64)),
        ("p50_us".into(), us(nearest_rank(&lat, 50.0))),
        ("p99_us".into(), us(nearest_rank(&lat, 99.0))),
        ("p999_us".into(), us(nearest_rank(&lat, 99.9))),
        ("max_us".into(), us(lat.last().copied().unwrap_or(0))),
        ("errors".into(), Json::Int(errors as i64)),
        ("mismatches".into(), Json::Int(mismatches as i64)),
    ]);
    let tck = clk_tck();
    let mut cpu = vec![
        ("server_cpu_us_per_req".to_string(), Json::Null),
        ("server_cpu_util".into(), Json::Null),
        ("server_user_us_per_req".into(), Json::Null),
        ("server_sys_us_per_req".into(), Json::Null),
        ("client_cpu_util".into(), Json::Null),
        ("cpu_window_s".into(), Json::Null),
    ];
    if let Some((t_start, srv0, cli0)) = cpu_start {
        let wall = (end - t_start).as_secs_f64();
        cpu[5].1 = Json::Num(wall);
        if let (Some(srv1), true) = (srv_end, server_pid.is_some()) {
            let (du, ds) = (
                (srv1.0 - srv0.0) as f64 / tck * 1e6,
                (srv1.1 - srv0.1) as f64 / tck * 1e6,
            );
            let r = reqs.max(1) as f64;
            cpu[0].1 = Json::Num((du + ds) / r);
            cpu[1].1 = Json::Num((du + ds) / 1e6 / wall);
            cpu[2].1 = Json::Num(du / r);
            cpu[3].1 = Json::Num(ds / r);
        }
        if let Some(cli1) = cli_end {
            let d = ((cli1.0 + cli1.1) - (cli0.0 + cli0.1)) as f64 / tck;
            cpu[4].1 = Json::Num(d / wall);
        }
    }
    o.extra.extend(cpu);
    Ok(o)
}

// ---------------------------------------------------------------- suite

fn free_port() -> Result<u16, String> {
    let l = StdListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

pub fn pinned(cpu: usize, exe: &std::path::Path) -> Command {
    match crate::harness::taskset() {
        Some(ts) => {
            let mut c = Command::new(ts);
            c.arg("-c")
                .arg(cpu.to_string())
                .arg(exe)
                .env("COIL_BENCH_PIN", "taskset");
            c
        }
        None => {
            let mut c = Command::new(exe);
            c.env("COIL_BENCH_PIN", "self");
            c
        }
    }
}

/// A server of `peer` on CPU 0 and a free port (W5 and W9), ended by its watchdog
/// after `budget_s`; `more` are extra `key=value` arguments. The server, its port
/// and this executable (for the client).
pub fn spawn_server(
    peer: &str,
    budget_s: u64,
    more: &[String],
) -> Result<(std::process::Child, u16, std::path::PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let port = free_port()?;
    let server = pinned(0, &exe)
        .args(["echo", &format!("peer={peer}"), &format!("port={port}")])
        .arg(format!("max_s={budget_s}"))
        .args(more)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn server: {e}"))?;
    Ok((server, port, exe))
}

/// One W5 measurement: server on CPU 0, loadgen on CPU 1; the loadgen's line.
fn run_one(peer: &str, warmup_ms: u64, window_ms: u64, extra: &[String]) -> String {
    let err = |m: String| Outcome::error(peer, "echo", &m).to_json();
    let budget_s = (warmup_ms + window_ms) / 1000 + 40;
    let (mut server, port, exe) = match spawn_server(peer, budget_s, &[]) {
        Ok(x) => x,
        Err(e) => return err(e),
    };
    let pid = server.id();
    let mut lg = pinned(1, &exe);
    lg.args(["loadgen", &format!("peer={peer}"), &format!("port={port}")])
        .arg(format!("server_pid={pid}"))
        .arg(format!("warmup_ms={warmup_ms}"))
        .arg(format!("window_ms={window_ms}"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let line = match lg.spawn() {
        Err(e) => err(format!("spawn loadgen: {e}")),
        Ok(mut child) => {
            let mut out = String::new();
            let mut so = child.stdout.take().expect("piped");
            let reader = std::thread::spawn(move || {
                let _ = so.read_to_string(&mut out);
                out
            });
            let deadline = Instant::now() + Duration::from_secs(budget_s);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(_) => break,
                }
            }
            let out = reader.join().unwrap_or_default();
            last_json_line(&out).unwrap_or_else(|| err("no JSON line from the loadgen".into()))
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    line
}

/// The last line of a child's stdout that is a JSON object (its result line).
pub fn last_json_line(out: &str) -> Option<String> {
    out.lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .map(|l| l.trim().to_string())
}

fn suite(opts: &Opts) -> ExitCode {
    let quick = opts.quick;
    let get = |k: &str, d: u64| opts.get_u64(k, d).unwrap_or(d);
    let warmup_ms = get("warmup_ms", if quick { 200 } else { 1000 });
    let window_ms = get("window_ms", if quick { 800 } else { 8000 });
    let reps = opts.reps().unwrap_or(1);
    let extra: Vec<String> = ["conns", "msg"]
        .iter()
        .filter_map(|k| opts.keys.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    let peers: Vec<&str> = match opts.keys.get("servers") {
        Some(list) => list.split(',').filter_map(canonical).collect(),
        None => SERVERS.to_vec(),
    };
    eprintln!(
        "coil-benches W5: servers on CPU 0, loadgen on CPU 1, warm-up {warmup_ms} ms, window {window_ms} ms, {reps} rep(s)"
    );
    let mut lines: Vec<(&str, Vec<String>)> = peers.iter().map(|p| (*p, Vec::new())).collect();
    for rep in 0..reps {
        for (p, v) in &mut lines {
            let l = run_one(p, warmup_ms, window_ms, &extra);
            eprintln!("[echo {}/{reps} {p}] {l}", rep + 1);
            v.push(l);
        }
    }
    print!("{}", render(&lines));
    let all_ok = lines
        .iter()
        .all(|(_, v)| v.iter().all(|l| field(l, "ok") == Some("true")));
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn med(v: &[String], key: &str) -> Option<f64> {
    let xs: Vec<f64> = v.iter().filter_map(|l| field_f64(l, key)).collect();
    if xs.is_empty() {
        None
    } else {
        Some(median(&xs))
    }
}

fn render(rows: &[(&str, Vec<String>)]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nW5 tcp echo (median of {} run(s))\n\n| peer | kreq/s | p50/p99 us | srv cpu us/req | srv user/sys us | srv cpu util | ok |\n|---|---|---|---|---|---|---|",
        rows.first().map_or(0, |r| r.1.len())
    );
    let f = |x: Option<f64>, d: usize| x.map_or("-".to_string(), |x| format!("{x:.d$}"));
    for (p, v) in rows {
        let ok = v.iter().all(|l| field(l, "ok") == Some("true"));
        let _ = writeln!(
            s,
            "| {p} | {} | {}/{} | {} | {}/{} | {} | {} |",
            f(med(v, "value").map(|x| x / 1e3), 1),
            f(med(v, "p50_us"), 0),
            f(med(v, "p99_us"), 0),
            f(med(v, "server_cpu_us_per_req"), 2),
            f(med(v, "server_user_us_per_req"), 2),
            f(med(v, "server_sys_us_per_req"), 2),
            f(med(v, "server_cpu_util"), 2),
            if ok { "yes" } else { "NO" },
        );
    }
    let get = |peer: &str, key: &str| {
        rows.iter()
            .find(|(p, _)| *p == peer)
            .and_then(|(_, v)| med(v, key))
    };
    let _ = writeln!(
        s,
        "\nW5 RATIOS (rps: coil ÷ peer, higher is better; cpu/req: peer ÷ coil, higher is better; delta: coil − peer µs/req)"
    );
    for coil in ["coil/uring", "coil/epoll"] {
        for peer in SERVERS.iter().filter(|p| !p.starts_with("coil")) {
            let (Some(cr), Some(pr)) = (get(coil, "value"), get(peer, "value")) else {
                continue;
            };
            let cc = get(coil, "server_cpu_us_per_req");
            let pc = get(peer, "server_cpu_us_per_req");
            let (ratio, delta) = match (cc, pc) {
                (Some(c), Some(p)) if c > 0.0 => {
                    (format!("{:.3}", p / c), format!("{:+.2}", c - p))
                }
                _ => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                s,
                "  {coil} vs {peer}: rps {:.3}x, cpu/req {ratio}x, delta {delta} us/req",
                cr / pr
            );
        }
    }
    // What io_uring kernel features save over the raw-uring-defer floor.
    let key = "server_cpu_us_per_req";
    // W8c: the same server as a pool of one loop, against the plain runtime.
    for (pool, plain) in [
        ("coil-pool/uring", "coil/uring"),
        ("coil-pool/epoll", "coil/epoll"),
    ] {
        if let (Some(x), Some(p)) = (get(pool, key), get(plain, key)) {
            let _ = writeln!(
                s,
                "  W8c {pool} vs {plain}: cpu/req {:+.1} % (goal: within 2 %)",
                (x / p - 1.0) * 100.0
            );
        }
    }
    for v in URING_FEATURE_SERVERS {
        if let (Some(x), Some(f)) = (get(v, key), get("raw-uring-defer", key)) {
            let _ = writeln!(
                s,
                "  {v} vs raw-uring-defer: cpu/req {:.3}x, delta {:+.2} us/req",
                f / x,
                x - f
            );
        }
    }
    // The W5 goals of benches/WORKLOADS.md: server CPU per request over the raw floor.
    for (coil, floor, slack) in [
        ("coil/uring", "raw-uring-defer", 0.1),
        ("coil/epoll", "raw-epoll", 0.2),
    ] {
        let key = "server_cpu_us_per_req";
        if let (Some(c), Some(f)) = (get(coil, key), get(floor, key)) {
            let _ = writeln!(
                s,
                "  goal {coil} cpu/req <= {floor} + {slack:.1}: {c:.2} vs {:.2} us/req, {}",
                f + slack,
                if c <= f + slack { "met" } else { "missed" }
            );
        }
    }
    s
}
