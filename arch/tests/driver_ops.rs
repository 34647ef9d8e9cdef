//! Operations through both backends: completions, cancellation, SQ full and CQ
//! overflow (docs/reliability.md, checks 29, 30).

mod support;

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use coil_arch::op::{CURRENT_POSITION, Nop, Read, Write};
use coil_arch::{Completion, Config, Driver, DriverChoice, DriverKind, OpCode, Submitted};
use support::{close, driver, pipe};

fn ptr<T: OpCode + 'static>(b: &mut Box<T>) -> NonNull<dyn OpCode> {
    NonNull::from(&mut **b as &mut dyn OpCode)
}

/// Park until `n` completions arrived (or 10 s passed: then fail).
fn collect(d: &mut Driver, n: usize) -> HashMap<u64, Completion> {
    let mut got = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} completions",
            got.len()
        );
        d.park(Some(Duration::from_millis(50))).unwrap();
        for c in d.completions() {
            assert!(
                got.insert(c.user_data, c).is_none(),
                "two completions for {}",
                c.user_data
            );
        }
    }
    got
}

/// The raw result of an op `submit_or_finish` answered `sub` for: at once if
/// it is `Done`, else its completion (parking until it comes, or failing).
fn finish(d: &mut Driver, user_data: u64, sub: Submitted) -> i32 {
    match sub {
        Submitted::Done(n) => n,
        Submitted::Queued => collect(d, 1)[&user_data].result,
    }
}

fn kinds() -> [DriverKind; 2] {
    [DriverKind::Uring, DriverKind::Epoll]
}

#[test]
fn read_waits_for_data_then_completes() {
    for kind in kinds() {
        let mut d = driver(kind);
        let (r, w) = pipe(kind == DriverKind::Epoll);
        let mut op = Box::new(Read {
            fd: r,
            buf: Vec::with_capacity(16),
            offset: CURRENT_POSITION,
            fixed: None,
        });
        // SAFETY: `op` lives (boxed, unmoved) until its completion below.
        unsafe { d.submit(1, ptr(&mut op)).unwrap() };
        d.park(Some(Duration::from_millis(5))).unwrap();
        assert_eq!(d.completions().count(), 0, "{kind}: completed without data");
        let mut wop = Box::new(Write {
            fd: w,
            buf: &b"hello"[..],
            offset: CURRENT_POSITION,
            fixed: None,
        });
        // SAFETY: as above.
        unsafe { d.submit(2, ptr(&mut wop)).unwrap() };
        let got = collect(&mut d, 2);
        assert_eq!(got[&2].io_result().unwrap(), 5);
        assert_eq!(got[&1].io_result().unwrap(), 5, "{kind}");
        // SAFETY: the completion was reported; the kernel is done with the buffer.
        unsafe { op.buf.set_len(5) };
        assert_eq!(&op.buf[..], b"hello");
        close(r);
        close(w);
    }
}

#[test]
fn submit_or_finish_hands_back_ops_that_did_not_wait() {
    for kind in kinds() {
        let mut d = driver(kind);
        let (r, w) = pipe(kind == DriverKind::Epoll);
        // A write into an empty pipe needs no waiting: epoll performs it
        // during the call and reports nothing later; io_uring queues it.
        let mut wop = Box::new(Write {
            fd: w,
            buf: &b"ready"[..],
            offset: CURRENT_POSITION,
            fixed: None,
        });
        // SAFETY: `wop` lives (boxed, unmoved) until its result is known below.
        let sub = unsafe { d.submit_or_finish(1, NonNull::from(&mut *wop)) }.unwrap();
        let got = match (kind, sub) {
            (DriverKind::Epoll, Submitted::Done(n)) => {
                assert_eq!(n, 5);
                d.park(Some(Duration::from_millis(5))).unwrap();
                collect(&mut d, 0)
            }
            (DriverKind::Uring, Submitted::Queued) => collect(&mut d, 1),
            other => panic!("{kind}: unexpected answer {other:?}"),
        };
        if kind == DriverKind::Uring {
            assert_eq!(got[&1].io_result().unwrap(), 5);
        }
        d.park(Some(Duration::from_millis(5))).unwrap();
        assert_eq!(
            d.completions().count(),
            0,
            "{kind}: a completion after Done"
        );
        // A read with data waiting: also done at once under epoll; a read on
        // the now empty pipe must wait (Queued) under both.
        let mut rop = Box::new(Read {
            fd: r,
            buf: Vec::with_capacity(16),
            offset: CURRENT_POSITION,
            fixed: None,
        });
        // SAFETY: as above.
        let sub = unsafe { d.submit_or_finish(2, NonNull::from(&mut *rop)) }.unwrap();
        match (kind, sub) {
            (DriverKind::Epoll, Submitted::Done(5)) => {}
            (DriverKind::Uring, Submitted::Queued) => assert_eq!(collect(&mut d, 1)[&2].result, 5),
            other => panic!("{kind}: unexpected answer {other:?}"),
        }
        let mut rop2 = Box::new(Read {
            fd: r,
            buf: Vec::with_capacity(16),
            offset: CURRENT_POSITION,
            fixed: None,
        });
        // SAFETY: `rop2` lives until its completion is collected below.
        let sub = unsafe { d.submit_or_finish(3, NonNull::from(&mut *rop2)) }.unwrap();
        assert_eq!(
            sub,
            Submitted::Queued,
            "{kind}: a read on an empty pipe finished"
        );
        close(w);
        let got = collect(&mut d, 1);
        assert_eq!(got[&3].result, 0, "{kind}: EOF after the writer closed");
        close(r);
    }
}

#[test]
fn plain_submit_reports_finished_ops_as_completions() {
    // `submit` keeps the one-completion-per-op contract even when epoll
    // performed the op during the call.
    let mut d = driver(DriverKind::Epoll);
    let (r, w) = pipe(true);
    let mut wop = Box::new(Write {
        fd: w,
        buf: &b"abc"[..],
        offset: CURRENT_POSITION,
        fixed: None,
    });
    // SAFETY: `wop` lives until its completion is collected.
    unsafe { d.submit(9, ptr(&mut wop)).unwrap() };
    let got = collect(&mut d, 1);
    assert_eq!(got[&9].result, 3);
    d.park(Some(Duration::from_millis(5))).unwrap();
    assert_eq!(d.completions().count(), 0, "a second completion");
    close(r);
    close(w);
}

/// Counts the system calls an op's `perform` makes (epoll).
struct Counted<T> {
    op: T,
    performs: std::rc::Rc<std::cell::Cell<u32>>,
}

// SAFETY: delegates to `op`, whose entry points into itself (it is a field).
unsafe impl<T: OpCode> OpCode for Counted<T> {
    fn uring_entry(&mut self) -> coil_arch::op::UringEntry {
        self.op.uring_entry()
    }
    fn readiness(&self) -> coil_arch::op::Readiness {
        self.op.readiness()
    }
    fn perform(&mut self) -> std::io::Result<usize> {
        self.performs.set(self.performs.get() + 1);
        self.op.perform()
    }
    fn drained(&self, n: usize) -> bool {
        self.op.drained(n)
    }
}

fn socketpair(kind: i32) -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a live 2-element array.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    (fds[0], fds[1])
}

fn send_now(fd: RawFd, bytes: &[u8]) {
    // SAFETY: bytes is a live slice.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), 0) };
    assert_eq!(n, bytes.len() as isize);
}

#[test]
fn short_stream_read_skips_the_next_sure_eagain() {
    // Under epoll a stream read that filled less than its room emptied the
    // receive queue: the next read waits for an edge without a system call,
    // and still completes when data arrives.
    let mut d = driver(DriverKind::Epoll);
    let (a, b) = socketpair(libc::SOCK_STREAM);
    let performs = std::rc::Rc::new(std::cell::Cell::new(0));
    let recv = |performs: &std::rc::Rc<std::cell::Cell<u32>>| {
        Box::new(Counted {
            op: coil_arch::op::Recv {
                fd: a,
                buf: Vec::with_capacity(64),
            },
            performs: performs.clone(),
        })
    };
    // Registers the fd (the first attempt says EAGAIN), then data arrives.
    let mut first = recv(&performs);
    // SAFETY: each op lives (boxed, unmoved) until its result is known.
    let sub = unsafe { d.submit_or_finish(1, NonNull::from(&mut *first)) }.unwrap();
    assert_eq!(sub, Submitted::Queued);
    send_now(b, b"hello");
    assert_eq!(collect(&mut d, 1)[&1].result, 5);
    // A short read, done at once: drained.
    send_now(b, b"again");
    d.park(Some(Duration::from_millis(5))).unwrap();
    let mut second = recv(&performs);
    // SAFETY: as above.
    let sub = unsafe { d.submit_or_finish(2, NonNull::from(&mut *second)) }.unwrap();
    // The event for "again" may or may not have been seen by the park; either
    // way the read finishes now or at the next park.
    assert_eq!(finish(&mut d, 2, sub), 5);
    let before = performs.get();
    let mut third = recv(&performs);
    // SAFETY: as above.
    let sub = unsafe { d.submit_or_finish(3, NonNull::from(&mut *third)) }.unwrap();
    assert_eq!(sub, Submitted::Queued);
    assert_eq!(
        performs.get(),
        before,
        "a system call after a draining read"
    );
    send_now(b, b"more!");
    assert_eq!(
        collect(&mut d, 1)[&3].result,
        5,
        "the edge after the drain woke the read"
    );
    close(a);
    close(b);
}

#[test]
fn short_read_after_peer_hangup_does_not_wait_for_an_edge() {
    // After the peer shut down its side, a short read is followed by EOF at
    // once; no further edge will come, so the next read must not wait for
    // one (it hung before the driver tracked hang-ups).
    let recv = |fd: RawFd, room: usize| {
        Box::new(coil_arch::op::Recv {
            fd,
            buf: Vec::with_capacity(room),
        })
    };
    let mut d = driver(DriverKind::Epoll);
    let (a, b) = socketpair(libc::SOCK_STREAM);
    // r1 waits (registers the fd); the peer writes and hangs up.
    let mut r1 = recv(a, 2);
    // SAFETY: each op lives (boxed, unmoved) until its result is known.
    let sub = unsafe { d.submit_or_finish(1, NonNull::from(&mut *r1)) }.unwrap();
    assert_eq!(sub, Submitted::Queued);
    send_now(b, b"abcdef");
    // SAFETY: b is this test's socket.
    assert_eq!(unsafe { libc::shutdown(b, libc::SHUT_WR) }, 0);
    assert_eq!(collect(&mut d, 1)[&1].result, 2, "a full read (room 2)");
    // A short read through the submit path, then EOF at once.
    let mut r2 = recv(a, 64);
    // SAFETY: as above.
    let sub = unsafe { d.submit_or_finish(2, NonNull::from(&mut *r2)) }.unwrap();
    assert_eq!(finish(&mut d, 2, sub), 4);
    let mut r3 = recv(a, 64);
    // SAFETY: as above.
    let sub = unsafe { d.submit_or_finish(3, NonNull::from(&mut *r3)) }.unwrap();
    assert_eq!(finish(&mut d, 3, sub), 0, "EOF");
    d.release_fd(a); // as the op layer does before a number can be reused
    close(a);
    close(b);
    // The retry path: a read waiting when data and the hang-up arrive.
    let (a, b) = socketpair(libc::SOCK_STREAM);
    let mut r4 = recv(a, 64);
    // SAFETY: as above.
    let sub = unsafe { d.submit_or_finish(4, NonNull::from(&mut *r4)) }.unwrap();
    assert_eq!(sub, Submitted::Queued);
    send_now(b, b"xyz");
    // SAFETY: b is this test's socket.
    assert_eq!(unsafe { libc::shutdown(b, libc::SHUT_WR) }, 0);
    assert_eq!(collect(&mut d, 1)[&4].result, 3);
    let mut r5 = recv(a, 64);
    // SAFETY: as above.
    let sub = unsafe { d.submit_or_finish(5, NonNull::from(&mut *r5)) }.unwrap();
    assert_eq!(
        finish(&mut d, 5, sub),
        0,
        "EOF after the retried short read"
    );
    close(a);
    close(b);
}

#[test]
fn short_datagram_does_not_hide_the_next_one() {
    // A datagram shorter than the buffer says nothing about the queue: the
    // second one, already waiting, must be read at once.
    for kind in kinds() {
        let mut d = driver(kind);
        let (a, b) = socketpair(libc::SOCK_DGRAM);
        let mut got = Vec::new();
        for ud in [1u64, 2] {
            let mut op = Box::new(coil_arch::op::RecvMsg::new(a, Vec::with_capacity(64)));
            // SAFETY: `op` lives until its result is known below.
            let sub = unsafe { d.submit_or_finish(ud, NonNull::from(&mut *op)) }.unwrap();
            if ud == 1 {
                // The first read waits (and registers the fd under epoll);
                // both datagrams then arrive, with one edge between them.
                assert_eq!(sub, Submitted::Queued, "{kind}");
                send_now(b, b"one");
                send_now(b, b"two!");
            }
            let n = finish(&mut d, ud, sub);
            got.push(n);
        }
        assert_eq!(got, [3, 4], "{kind}");
        close(a);
        close(b);
    }
}

#[test]
fn cancel_pending_read_completes_once() {
    for kind in kinds() {
        let mut d = driver(kind);
        let (r, w) = pipe(kind == DriverKind::Epoll);
        let mut op = Box::new(Read {
            fd: r,
            buf: Vec::with_capacity(16),
            offset: CURRENT_POSITION,
            fixed: None,
        });
        // SAFETY: `op` outlives its completion (collected below).
        unsafe { d.submit(7, ptr(&mut op)).unwrap() };
        d.park(Some(Duration::ZERO)).unwrap();
        d.cancel(7);
        d.cancel(7); // twice: still one completion
        d.cancel(12345); // unknown: ignored
        let got = collect(&mut d, 1);
        assert_eq!(got[&7].result, -libc::ECANCELED, "{kind}");
        d.park(Some(Duration::from_millis(5))).unwrap();
        assert_eq!(d.completions().count(), 0, "{kind}: a second completion");
        close(r);
        close(w);
    }
}

#[test]
fn reserved_user_data_is_rejected() {
    let mut d = driver(DriverKind::Epoll);
    let mut op = Box::new(Nop);
    // SAFETY: rejected before anything refers to `op`.
    let err = unsafe { d.submit(u64::MAX - 3, ptr(&mut op)) }.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn regular_file_under_epoll_is_an_error_not_a_hang() {
    // epoll cannot wait on regular files (EPERM); a read that would have to
    // wait... never does (files are always "ready"), so it completes at once.
    let mut d = driver(DriverKind::Epoll);
    let path = std::env::temp_dir().join(format!("coil-arch-{}", std::process::id()));
    std::fs::write(&path, b"file data").unwrap();
    let f = std::fs::File::open(&path).unwrap();
    use std::os::fd::AsRawFd;
    let mut op = Box::new(Read {
        fd: f.as_raw_fd(),
        buf: Vec::with_capacity(64),
        offset: 5,
        fixed: None,
    });
    // SAFETY: `op` outlives its completion.
    unsafe { d.submit(3, ptr(&mut op)).unwrap() };
    let got = collect(&mut d, 1);
    assert_eq!(got[&3].io_result().unwrap(), 4);
    std::fs::remove_file(&path).unwrap();
}

/// Item 29: a ring with 8 entries and 1,000 concurrent reads: none lost.
#[test]
fn sq_full_loses_no_op() {
    let mut d = Driver::new(
        DriverChoice::Uring,
        &Config {
            uring_entries: 8,
            ..Config::default()
        },
    )
    .unwrap();
    let mut pipes = Vec::new();
    let mut ops = Vec::new();
    for i in 0..1000u64 {
        let (r, w) = pipe(false);
        let mut op = Box::new(Read {
            fd: r,
            buf: Vec::with_capacity(8),
            offset: CURRENT_POSITION,
            fixed: None,
        });
        // SAFETY: every op lives in `ops` until all completions are collected.
        unsafe { d.submit(i, ptr(&mut op)).unwrap() };
        ops.push(op);
        pipes.push((r, w));
    }
    d.park(Some(Duration::ZERO)).unwrap();
    for &(_, w) in &pipes {
        // SAFETY: writing 1 byte from a live local to a test-owned pipe.
        assert_eq!(unsafe { libc::write(w, b"x".as_ptr().cast(), 1) }, 1);
    }
    let got = collect(&mut d, 1000);
    assert!(got.values().all(|c| c.result == 1));
    for (r, w) in pipes {
        close(r);
        close(w);
    }
}

/// Item 31: `io_uring_enter` refused with `EAGAIN`, `EBUSY` or `EINTR` on about a third
/// of the enters (the `testing::inject_enter_errors` seam; nothing is consumed from the
/// SQ on a refused enter), on an 8-entry ring so that pushes also hit a full SQ: every
/// op stays queued and owned, is submitted by a later enter, and completes exactly once
/// with its data. Plain and single-issuer rings.
#[test]
fn injected_enter_errors_lose_no_op() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    for single_issuer in [false, true] {
        let mut d = Driver::new(
            DriverChoice::Uring,
            &Config {
                uring_entries: 8,
                uring_single_issuer: single_issuer,
            },
        )
        .unwrap();
        let injected = Arc::new(AtomicUsize::new(0));
        let counter = injected.clone();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        coil_arch::testing::inject_enter_errors(&mut d, move || {
            // xorshift64: deterministic, so a failure replays.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.is_multiple_of(3).then(|| {
                counter.fetch_add(1, Ordering::Relaxed);
                [libc::EAGAIN, libc::EBUSY, libc::EINTR][(state >> 32) as usize % 3]
            })
        })
        .unwrap();

        let mut pipes = Vec::new();
        let mut ops = Vec::new();
        for i in 0..1000u64 {
            let (r, w) = pipe(false);
            let mut op = Box::new(Read {
                fd: r,
                buf: Vec::with_capacity(8),
                offset: CURRENT_POSITION,
                fixed: None,
            });
            // SAFETY: every op lives in `ops` until all completions are collected.
            unsafe { d.submit(i, ptr(&mut op)).unwrap() };
            ops.push(op);
            pipes.push((r, w));
        }
        d.park(Some(Duration::ZERO)).unwrap();
        for (i, &(_, w)) in pipes.iter().enumerate() {
            let byte = [b'a' + (i % 26) as u8];
            // SAFETY: writing 1 byte from a live local to a test-owned pipe.
            assert_eq!(unsafe { libc::write(w, byte.as_ptr().cast(), 1) }, 1);
        }
        let got = collect(&mut d, 1000);
        for (i, op) in ops.iter().enumerate() {
            assert_eq!(got[&(i as u64)].result, 1, "op {i}");
            // SAFETY: the kernel wrote one byte at the start of the spare capacity.
            let byte = unsafe { op.buf.as_ptr().read() };
            assert_eq!(
                byte,
                b'a' + (i % 26) as u8,
                "op {i} read another pipe's byte"
            );
        }
        let n = injected.load(Ordering::Relaxed);
        assert!(
            n > 10,
            "only {n} enters were refused: the seam was not exercised"
        );
        coil_arch::testing::clear_enter_errors(&mut d).unwrap();
        d.park(Some(Duration::ZERO)).unwrap();
        for (r, w) in pipes {
            close(r);
            close(w);
        }
    }
}

/// The seam exists only for io_uring.
#[test]
fn enter_errors_are_uring_only() {
    let mut d = driver(DriverKind::Epoll);
    let err = coil_arch::testing::inject_enter_errors(&mut d, || None).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}

/// Item 30: a CQ of 16 and 1,000 NOPs completing at once: all delivered.
#[test]
fn cq_overflow_loses_no_completion() {
    let mut d = Driver::new(
        DriverChoice::Uring,
        &Config {
            uring_entries: 8,
            ..Config::default()
        },
    )
    .unwrap();
    let mut ops: Vec<Box<Nop>> = (0..1000).map(|_| Box::new(Nop)).collect();
    for (i, op) in ops.iter_mut().enumerate() {
        // SAFETY: NOPs hold no memory; the boxes live until the end anyway.
        unsafe { d.submit(i as u64, ptr(op)).unwrap() };
    }
    let got = collect(&mut d, 1000);
    assert_eq!(got.len(), 1000);
}
