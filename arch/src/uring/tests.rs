//! Unit tests of the io_uring backend that look inside the driver: deferred mode, a
//! full SQ and an overflowed CQ, drain, and a teardown past its limit.

use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use io_uring::opcode;

use super::{DROP_LIMIT, UringDriver};
use crate::{Config, token};

fn driver(entries: u32) -> UringDriver {
    build(entries, false)
}

fn build(entries: u32, single_issuer: bool) -> UringDriver {
    match UringDriver::new(&Config {
        uring_entries: entries,
        uring_single_issuer: single_issuer,
    }) {
        Ok(d) => d,
        Err(e) => panic!("io_uring is unusable here: {e:?}"),
    }
}

/// A deferred driver, or `None` on a kernel without `DEFER_TASKRUN` (before 6.1).
fn deferred() -> Option<UringDriver> {
    let d = build(8, true);
    d.deferred.then_some(d)
}

/// In deferred mode the eventfd READ's completion is queued work until an enter
/// with GETEVENTS: a non-blocking park must see `IORING_SQ_TASKRUN` and enter, or
/// the unpark would sit unnoticed while the loop keeps polling with `ZERO`.
#[test]
fn deferred_park_zero_runs_queued_work() {
    for msg_ring in [true, false] {
        let Some(mut d) = deferred() else { return };
        if !msg_ring {
            d.unpark.turn_off_ring();
        }
        let msg_ring = d.unpark.has_ring();
        let mut out = Vec::new();
        d.park(Some(Duration::ZERO), &mut out).unwrap();
        assert!(d.wake_armed);
        for round in 0..100 {
            d.unparker().unpark();
            d.park(Some(Duration::ZERO), &mut out).unwrap();
            assert!(
                !d.unpark.is_notified(),
                "round {round} (MSG_RING {msg_ring}): park(ZERO) left the unpark's \
                 completion queued in the kernel"
            );
            // A MSG_RING wake leaves the eventfd READ in flight; an eventfd wake
            // completes it, and the next park re-arms it.
            assert_eq!(d.wake_armed, msg_ring, "round {round}");
            d.park(Some(Duration::ZERO), &mut out).unwrap();
            assert!(d.wake_armed, "round {round}: the READ was not re-armed");
        }
    }
}

/// A blocked park is woken from another thread through either path (the
/// MSG_RING completion where the kernel has it, the eventfd otherwise, or
/// when the message path was turned off after a refusal), many times over.
#[test]
fn unpark_from_another_thread_by_msg_ring_or_eventfd() {
    for (single_issuer, msg_ring) in [(true, true), (true, false), (false, true)] {
        let mut d = build(8, single_issuer);
        if !msg_ring {
            d.unpark.turn_off_ring();
        }
        let mut out = Vec::new();
        for round in 0..20 {
            let u = d.unparker();
            let t = std::thread::spawn(move || u.unpark());
            let start = Instant::now();
            d.park(Some(Duration::from_secs(10)), &mut out).unwrap();
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "round {round}: the unpark did not wake the park"
            );
            t.join().unwrap();
            // The wake may have landed before the park: then a second park
            // returns at once, and the flag is down once it has.
            if d.unpark.is_notified() {
                d.park(Some(Duration::from_secs(10)), &mut out).unwrap();
            }
            assert!(!d.unpark.is_notified(), "round {round}");
        }
    }
}

#[test]
fn deferred_park_on_another_thread_panics_with_the_rule() {
    let Some(mut d) = deferred() else { return };
    d.park(Some(Duration::ZERO), &mut Vec::new()).unwrap();
    let res = std::thread::spawn(move || {
        let mut d = d;
        let _ = d.park(Some(Duration::ZERO), &mut Vec::new());
        d.unparker().unpark();
        let _ = d.park(Some(Duration::from_secs(5)), &mut Vec::new());
    })
    .join();
    let msg = match res {
        Ok(()) => panic!("parking a single-issuer ring on another thread did not panic"),
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(
        msg.contains("uring_single_issuer"),
        "unexpected panic: {msg:?}"
    );
}

fn push_nops(d: &mut UringDriver, n: usize) {
    let nop = opcode::Nop::new().build().user_data(token::PROBE);
    for _ in 0..n {
        // SAFETY: a NOP holds no pointers.
        unsafe { d.push(&nop) }.unwrap();
    }
}

/// A 1-entry SQ (CQ of 2) takes 48 NOPs: push submits when the SQ is full, the CQ
/// overflows, and one reap flushes the overflow list until every CQE is seen.
#[test]
fn sq_full_and_cq_overflow_lose_nothing() {
    let mut d = driver(1);
    assert_eq!(d.ring.params().sq_entries(), 1);
    assert_eq!(d.ring.params().cq_entries(), 2);
    push_nops(&mut d, 48);
    d.ring.submit().unwrap();
    assert!(
        d.ring.submission().cq_overflow(),
        "the test did not overflow the CQ"
    );
    assert_eq!(d.reap(), 48);
    assert!(!d.ring.submission().cq_overflow());
    // The driver still works after the overflow.
    d.unparker().unpark();
    let mut out = Vec::new();
    d.park(Some(Duration::from_secs(10)), &mut out).unwrap();
    d.park(Some(Duration::from_millis(1)), &mut out).unwrap();
    assert!(out.is_empty(), "reserved tokens are not reported");
}

#[test]
fn drop_confirms_the_eventfd_read_is_cancelled() {
    let mut d = driver(8);
    d.park(Some(Duration::ZERO), &mut Vec::new()).unwrap();
    assert!(d.wake_armed);
    assert!(
        d.quiesce(DROP_LIMIT, true).unwrap(),
        "the READ's cancellation was not confirmed"
    );
    assert!(!d.wake_armed);
}

type Op = crate::op::Read<Vec<u8>>;

/// A READ of up to 8 bytes from `fd` into a zeroed buffer, submitted (not yet
/// entered). The op is leaked: a test below leaks the ring, after which the kernel
/// may write it at any time.
fn pending_read(d: &mut UringDriver, fd: std::os::fd::RawFd, user_data: u64) -> NonNull<Op> {
    let mut buf = vec![0u8; 8];
    buf.clear();
    let op = NonNull::from(Box::leak(Box::new(crate::op::Read {
        fd,
        buf,
        offset: crate::op::CURRENT_POSITION,
        fixed: None,
    })));
    // SAFETY: the op is leaked, so it stays valid and in place forever.
    unsafe { d.submit(user_data, op) }.unwrap();
    op
}

/// The 8 bytes of the op's buffer, read volatile: the kernel may write them
/// concurrently.
fn peek(op: NonNull<Op>) -> [u8; 8] {
    // SAFETY: the op is leaked (never freed) and its buffer has 8 bytes of capacity;
    // `u8` has no invalid values, and a racing kernel write only changes which bytes
    // we see.
    unsafe { std::ptr::read_volatile((*op.as_ptr()).buf.as_ptr().cast::<[u8; 8]>()) }
}

/// `drain` cancels every op in flight with one `ASYNC_CANCEL_ANY` and reports each
/// completion; the count goes back to 0 and the driver keeps working.
#[test]
fn drain_cancels_every_op_in_flight() {
    for single_issuer in [false, true] {
        let mut d = build(8, single_issuer);
        let pairs: Vec<_> = (0..3)
            .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
            .collect();
        for (i, (a, _)) in pairs.iter().enumerate() {
            pending_read(&mut d, a.as_raw_fd(), i as u64);
        }
        let mut out = Vec::new();
        d.park(Some(Duration::ZERO), &mut out).unwrap();
        assert_eq!(d.in_flight(), 3);
        assert!(d.drain(DROP_LIMIT, &mut out));
        assert_eq!(d.in_flight(), 0);
        out.sort_by_key(|c| c.user_data);
        let got: Vec<_> = out.iter().map(|c| (c.user_data, c.result)).collect();
        assert_eq!(got, [0, 1, 2].map(|i| (i, -libc::ECANCELED)));
        // `ANY` cancelled the eventfd READ too; unparks still work (a park re-arms
        // it, and an unpark made meanwhile completes the new READ at once).
        d.unparker().unpark();
        for _ in 0..3 {
            if !d.unpark.is_notified() {
                break;
            }
            d.park(Some(DROP_LIMIT), &mut out).unwrap();
        }
        assert!(!d.unpark.is_notified(), "the unpark was never consumed");
        assert!(
            out.len() == 3,
            "a completion for an op that was not submitted"
        );
    }
}

/// The bound: with every enter refused (the fault seam) the cancels never reach the
/// kernel, so a teardown with a zero limit cannot confirm the READ and leaks the
/// ring instead of closing it. The leak is real: the request still runs afterwards
/// and writes the op's buffer when data arrives, which is why the owner of op memory
/// must leak it too when `Driver::drain` returns `false`.
#[test]
fn teardown_past_the_limit_leaks_the_ring_and_the_kernel_still_writes() {
    use std::io::Write as _;
    let mut d = ManuallyDrop::new(driver(8));
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let op = pending_read(&mut d, a.as_raw_fd(), 7);
    d.park(Some(Duration::ZERO), &mut Vec::new()).unwrap();
    assert_eq!(d.in_flight(), 1);
    d.set_enter_fault(Some(Box::new(|| Some(libc::EAGAIN))));
    assert!(
        !d.close(Duration::ZERO),
        "closed a ring with a READ in flight"
    );
    assert_eq!(d.in_flight(), 1);
    // `d` is never dropped: its ring is leaked, as `Drop` would have left it.
    b.write_all(b"leaked!!").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while peek(op) != *b"leaked!!" {
        assert!(
            Instant::now() < deadline,
            "the leaked ring's READ never completed"
        );
        // Runs the READ's task work on this thread (the submitter).
        std::thread::yield_now();
    }
    drop(a);
}
