//! Dropping and draining a driver with ops in flight (crate docs, contract item 5):
//! io_uring cancels every request and returns only once each has completed, so nothing
//! writes an op's memory after the drop; epoll and the simulator never touch an op
//! after their drop at all.
//!
//! Not run under Miri: they need io_uring, FIFOs and /proc.
#![cfg(not(miri))]

mod support;

use std::ffi::CString;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use coil_arch::op::{Accept, CURRENT_POSITION, OpenAt, Read, Readiness, UringEntry};
use coil_arch::sim::SimConfig;
use coil_arch::{Completion, Driver, DriverKind, OpCode};
use support::{Flavor, WATCHDOG, close, driver, pipe};

/// What an untouched buffer holds.
const SENTINEL: u8 = 0xA5;

/// A read of up to 8 bytes from `fd` into a buffer of `SENTINEL`s.
fn read_op(fd: RawFd) -> Box<Read<Vec<u8>>> {
    let mut buf = vec![SENTINEL; 8];
    buf.clear(); // the read fills the spare capacity, which keeps the sentinels
    Box::new(Read {
        fd,
        buf,
        offset: CURRENT_POSITION,
        fixed: None,
    })
}

/// The 8 bytes of the read's buffer (initialised by `read_op`, maybe overwritten since).
fn buf_bytes(op: &Read<Vec<u8>>) -> [u8; 8] {
    // SAFETY: `read_op` initialised all 8 bytes of the capacity; nothing else writes
    // them now (the driver that had the op is gone, which is what the tests check).
    unsafe { op.buf.as_ptr().cast::<[u8; 8]>().read() }
}

fn ptr<T: OpCode + 'static>(b: &mut Box<T>) -> NonNull<dyn OpCode> {
    NonNull::from(&mut **b as &mut dyn OpCode)
}

fn socketpair(nonblocking: bool) -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(nonblocking).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// `write(2)` of `bytes` to `fd`: the byte count, or the errno.
fn write_fd(fd: RawFd, bytes: &[u8]) -> Result<usize, i32> {
    // SAFETY: `bytes` is a live slice of that length.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error().raw_os_error().unwrap())
}

/// A non-blocking `read(2)` from `fd` into 8 bytes: what came, or the errno.
fn read_fd(fd: RawFd) -> Result<Vec<u8>, i32> {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is a live array of that length (the callers made `fd`
    // non-blocking).
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    match usize::try_from(n) {
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(_) => Err(std::io::Error::last_os_error().raw_os_error().unwrap()),
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a test-owned fd, integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    let set = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    assert_eq!(set, 0);
}

/// Drops `d` and returns how long that took, failing if it took the leak path (which
/// only comes after `Driver::DROP_LIMIT`).
fn timed_drop(d: Driver) -> Duration {
    let start = Instant::now();
    drop(d);
    let took = start.elapsed();
    assert!(
        took < Driver::DROP_LIMIT,
        "drop took {took:?}: it waited out its limit instead of seeing the cancellations"
    );
    took
}

/// Parks until `n` completions came (or the watchdog passes).
fn collect(d: &mut Driver, n: usize) -> Vec<Completion> {
    let deadline = Instant::now() + WATCHDOG;
    let mut got: Vec<Completion> = d.completions().collect();
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} completions",
            got.len()
        );
        d.park(Some(Duration::from_millis(50))).unwrap();
        got.extend(d.completions());
    }
    got.sort_by_key(|c| c.user_data);
    got
}

/// An op whose io_uring entry carries `IOSQE_ASYNC`: the kernel hands it to an io-wq
/// worker instead of trying it inline (the worker may then arm a poll for a pollable
/// file, as modern kernels do for pipes).
struct ForceAsync<T>(T);

// SAFETY: delegates to the wrapped op, whose entry points into itself (a field of
// `self`); adding a flag to the entry adds no pointer.
unsafe impl<T: OpCode> OpCode for ForceAsync<T> {
    fn uring_entry(&mut self) -> UringEntry {
        self.0.uring_entry().flags(io_uring::squeue::Flags::ASYNC)
    }
    fn readiness(&self) -> Readiness {
        self.0.readiness()
    }
    fn perform(&mut self) -> std::io::Result<usize> {
        self.0.perform()
    }
}

driver_test! {
    /// A read pending on a socket when the driver is dropped: under every backend the
    /// drop returns promptly, and afterwards nothing reads the socket or writes the
    /// op's buffer. Under io_uring that is because the drop cancelled the request and
    /// saw its completion: data written to the peer after the drop is still in the
    /// socket, the buffer keeps its sentinels, and closing our end releases the socket
    /// at once (the peer sees EOF), so no request holds it any more.
    fn drop_with_a_pending_socket_read(flavor) {
        let mut d = driver(flavor);
        let (a, mut b) = socketpair(flavor.kind == DriverKind::Epoll);
        let mut op = read_op(a.as_raw_fd());
        // SAFETY: `op` outlives the driver (dropped below, before `op`).
        unsafe { d.submit(1, ptr(&mut op)).unwrap() };
        d.park(Some(Duration::ZERO)).unwrap();
        assert_eq!(d.completions().count(), 0, "{flavor}: completed without data");
        assert_eq!(d.in_flight(), 1, "{flavor}");

        timed_drop(d);

        b.write_all(b"after!!!").unwrap();
        assert_eq!(buf_bytes(&op), [SENTINEL; 8], "{flavor}: written after drop");
        let mut got = [0u8; 8];
        a.set_nonblocking(true).unwrap();
        assert_eq!((&a).read(&mut got).unwrap(), 8, "{flavor}");
        assert_eq!(&got, b"after!!!", "{flavor}: a request consumed the data");
        drop(a);
        assert_eq!(
            b.read(&mut got).unwrap(),
            0,
            "{flavor}: the socket outlived its last fd (a request still holds it)"
        );
        assert_eq!(buf_bytes(&op), [SENTINEL; 8], "{flavor}");
    }
}

driver_test! {
    /// `drain` cancels every op in flight and reports each completion (here all three
    /// cancelled, nothing having arrived); `in_flight` goes back to 0, the drop that
    /// follows has nothing left to wait for, and until then the driver still works.
    fn drain_cancels_and_reports_every_op(flavor) {
        let mut d = driver(flavor);
        let pairs: Vec<_> = (0..3)
            .map(|_| socketpair(flavor.kind == DriverKind::Epoll))
            .collect();
        let mut ops: Vec<_> = pairs.iter().map(|(a, _)| read_op(a.as_raw_fd())).collect();
        for (i, op) in ops.iter_mut().enumerate() {
            // SAFETY: every op outlives the driver.
            unsafe { d.submit(i as u64, ptr(op)).unwrap() };
        }
        d.park(Some(Duration::ZERO)).unwrap();
        assert_eq!(d.in_flight(), 3, "{flavor}");
        assert!(d.drain(WATCHDOG), "{flavor}: drain did not confirm");
        assert_eq!(d.in_flight(), 0, "{flavor}");
        let got = collect(&mut d, 3);
        let got: Vec<_> = got.iter().map(|c| (c.user_data, c.result)).collect();
        assert_eq!(got, [0, 1, 2].map(|i| (i, -libc::ECANCELED)), "{flavor}");
        for op in &ops {
            assert_eq!(buf_bytes(op), [SENTINEL; 8], "{flavor}");
        }

        // Still a working driver: a new read completes, and an unpark wakes a park.
        let (a, b) = &pairs[0];
        let mut again = read_op(a.as_raw_fd());
        // SAFETY: `again` outlives the driver.
        unsafe { d.submit(7, ptr(&mut again)).unwrap() };
        (&*b).write_all(b"12345678").unwrap();
        assert_eq!(collect(&mut d, 1)[0].result, 8, "{flavor}");
        d.unparker().unpark();
        let start = Instant::now();
        d.park(Some(WATCHDOG)).unwrap();
        assert!(start.elapsed() < WATCHDOG, "{flavor}: the unpark was lost after drain");
        assert_eq!(d.in_flight(), 0);
        timed_drop(d);
    }
}

/// Ops io_uring hands to io-wq workers, pending at drop: an `openat` of a FIFO with
/// `O_CREAT` (always run by a worker, which then blocks in the open until a writer
/// comes) and a pipe read forced async with `IOSQE_ASYNC`. The drop interrupts the
/// blocked worker and waits for both: once it returned, nobody has the FIFO open for
/// reading (a non-blocking open for writing fails with `ENXIO`), data written to the
/// pipe stays there, and closing the pipe's read end leaves it without readers
/// (`EPIPE`), so no request holds it.
#[test]
fn uring_drop_waits_for_io_wq_requests() {
    for single_issuer in [false, true] {
        let flavor = Flavor {
            kind: DriverKind::Uring,
            single_issuer,
        };
        let mut d = driver(flavor);
        let dir = std::env::temp_dir();
        let path = dir.join(format!(
            "coil-arch-drop-fifo-{}-{single_issuer}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let cpath = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `cpath` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);

        let mut open = Box::new(OpenAt {
            path: cpath.clone(),
            flags: libc::O_RDONLY | libc::O_CREAT,
            mode: 0o600,
        });
        let (r, w) = pipe(false);
        let mut read = Box::new(ForceAsync(*read_op(r)));
        // SAFETY: both ops outlive the driver.
        unsafe {
            d.submit(1, ptr(&mut open)).unwrap();
            d.submit(2, ptr(&mut read)).unwrap();
        }
        d.park(Some(Duration::ZERO)).unwrap();
        wait_for_blocked_fifo_open();
        assert_eq!(d.completions().count(), 0, "{flavor}");
        assert_eq!(d.in_flight(), 2, "{flavor}");

        timed_drop(d);

        // SAFETY: `cpath` is a valid path; the flags ask for no blocking.
        let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        if fd >= 0 {
            close(fd);
        }
        assert_eq!(
            (fd, errno),
            (-1, Some(libc::ENXIO)),
            "{flavor}: the FIFO still has a reader: the blocked open outlived the drop"
        );

        assert_eq!(write_fd(w, b"pipe!!!!"), Ok(8), "{flavor}");
        assert_eq!(
            buf_bytes(&read.0),
            [SENTINEL; 8],
            "{flavor}: written after drop"
        );
        set_nonblocking(r);
        assert_eq!(read_fd(r), Ok(b"pipe!!!!".to_vec()), "{flavor}");
        close(r);
        assert_eq!(
            write_fd(w, b"x"),
            Err(libc::EPIPE),
            "{flavor}: the pipe outlived its read end's last fd (a request holds it)"
        );
        close(w);
        std::fs::remove_file(&path).unwrap();
    }
}

/// Waits (polling `/proc`, no sleeping) until some thread of this process sleeps in
/// the FIFO open, so the drop above really meets a blocked io-wq worker. Only this
/// test opens FIFOs. Gives up quietly after the watchdog where the kernel does not
/// name wait channels (the test then still checks the drop, just less sharply).
fn wait_for_blocked_fifo_open() {
    let deadline = Instant::now() + WATCHDOG;
    while Instant::now() < deadline {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        for task in tasks.flatten() {
            let wchan = std::fs::read_to_string(task.path().join("wchan")).unwrap_or_default();
            if wchan.contains("fifo_open") || wchan.contains("wait_for_partner") {
                return;
            }
        }
        std::thread::yield_now();
    }
    panic!("no thread ever blocked in the FIFO open");
}

/// epoll: `drain` cancels at once and never waits (its drop with an op pending is
/// `drop_with_a_pending_socket_read::epoll`).
#[test]
fn epoll_drain_cancels_at_once() {
    let mut d = driver(DriverKind::Epoll);
    let (a, _b) = socketpair(true);
    let mut op = read_op(a.as_raw_fd());
    // SAFETY: `op` outlives the driver.
    unsafe { d.submit(1, ptr(&mut op)).unwrap() };
    assert_eq!(d.in_flight(), 1);
    assert!(d.drain(Duration::ZERO));
    assert_eq!(d.in_flight(), 0);
    let got: Vec<_> = d.completions().map(|c| (c.user_data, c.result)).collect();
    assert_eq!(got, [(1, -libc::ECANCELED)]);
    assert_eq!(buf_bytes(&op), [SENTINEL; 8]);
}

/// The simulator: `drain` cancels at once (the completions still come on the virtual
/// clock), and a drop with an op pending is harmless: nothing writes it afterwards.
#[test]
fn sim_drain_and_drop_with_ops_pending() {
    let mut d = Driver::sim(SimConfig::default()).unwrap();
    let sim = d.as_sim().unwrap();
    let listener = sim.socket(true, false);
    sim.bind(listener, "127.0.0.1:0".parse().unwrap()).unwrap();
    sim.listen(listener).unwrap();
    let mut ops: Vec<_> = (0..2)
        .map(|_| Box::new(Accept::new(listener, true)))
        .collect();
    for (i, op) in ops.iter_mut().enumerate() {
        // SAFETY: both ops outlive the driver.
        unsafe { d.submit(i as u64, ptr(op)).unwrap() };
    }
    d.park(Some(Duration::ZERO)).unwrap();
    assert_eq!(
        d.completions().count(),
        0,
        "an accept with nobody connecting"
    );
    assert_eq!(d.in_flight(), 2);

    // drain: every op cancelled at once; the completions come on the virtual clock.
    assert!(d.drain(Duration::ZERO));
    assert_eq!(d.in_flight(), 0);
    let mut got = Vec::new();
    while got.len() < 2 {
        let sim = d.as_sim().unwrap();
        let next = sim.next_event().expect("the cancellations are scheduled");
        sim.advance_to(next);
        d.park(Some(Duration::ZERO)).unwrap();
        got.extend(d.completions().map(|c| (c.user_data, c.result)));
    }
    got.sort_unstable();
    assert_eq!(got, [(0, -libc::ECANCELED), (1, -libc::ECANCELED)]);

    // drop with an accept pending: it is forgotten, its address left untouched.
    let mut pending = Box::new(Accept::new(listener, true));
    // SAFETY: `pending` outlives the driver.
    unsafe { d.submit(9, ptr(&mut pending)).unwrap() };
    d.park(Some(Duration::ZERO)).unwrap();
    assert_eq!(d.in_flight(), 1);
    drop(d);
    assert_eq!(pending.addr.as_std(), None);
}
