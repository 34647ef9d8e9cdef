//! Parking and unparking, run under both backends.
//!
//! Not run under Miri: they need io_uring, seccomp, /proc and child processes.
#![cfg(not(miri))]

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use coil_arch::DriverKind;
use support::{
    Flavor, WATCHDOG, driver, gettid, run_child, spawn_parker, wait_until_parked, with_watchdog,
};

/// Iterations of the cross-thread lost-wakeup tests.
const ROUNDS: u64 = 10_000;

driver_test! {
    /// `park(Some(ZERO))` polls: a hundred of them take far less than any blocking park.
    fn park_zero_does_not_block(kind) {
        let mut driver = driver(kind);
        let start = Instant::now();
        for _ in 0..100 {
            driver.park(Some(Duration::ZERO)).unwrap();
        }
        assert!(start.elapsed() < Duration::from_millis(500), "took {:?}", start.elapsed());
    }
}

driver_test! {
    /// No unpark, no I/O: every park lasts at least its timeout.
    fn park_timeout_never_early(kind) {
        let mut driver = driver(kind);
        let timeouts = [
            Duration::ZERO,
            Duration::from_micros(300),
            Duration::from_millis(5),
            Duration::from_millis(20),
        ];
        for _ in 0..3 {
            for d in timeouts {
                let start = Instant::now();
                driver.park(Some(d)).unwrap();
                let took = start.elapsed();
                assert!(took >= d, "park({d:?}) returned after {took:?} on {kind}");
            }
        }
    }
}

driver_test! {
    /// Timeouts the kernel cannot express directly (more than `i32::MAX` ms for epoll,
    /// `Duration::MAX` for both) are accepted and still end on an unpark.
    fn park_huge_timeouts(kind) {
        let mut driver = driver(kind);
        let unparker = driver.unparker();
        for d in [Duration::from_secs(30 * 24 * 3600), Duration::MAX] {
            unparker.unpark();
            let start = Instant::now();
            driver.park(Some(d)).unwrap_or_else(|e| panic!("park({d:?}) failed: {e}"));
            assert!(start.elapsed() < WATCHDOG / 2, "park({d:?}) ignored the unpark");
        }
        // And while blocked, not just with an unpark already pending.
        let (unparker, tid, parked) = spawn_parker(kind, |mut driver| {
            driver.park(Some(Duration::MAX)).unwrap();
        });
        wait_until_parked(tid, kind);
        unparker.unpark();
        with_watchdog(WATCHDOG, "park(Duration::MAX)", move || parked.join().unwrap());
    }
}

driver_test! {
    /// An unpark from another thread wakes a `park(None)` that is already blocked.
    fn unpark_wakes_blocked_park(kind) {
        let (done_tx, done_rx) = mpsc::channel();
        let (unparker, tid, _) = spawn_parker(kind, move |mut driver| {
            let res = driver.park(None).map_err(|e| e.to_string());
            let _ = done_tx.send(res);
        });
        wait_until_parked(tid, kind);
        unparker.unpark();
        done_rx
            .recv_timeout(WATCHDOG)
            .expect("park(None) was not woken by unpark")
            .unwrap();
    }
}

driver_test! {
    /// An unpark before park makes the next park return at once, and only that one.
    fn unpark_before_park_returns_promptly(kind) {
        let mut driver = driver(kind);
        driver.unparker().unpark();
        let start = Instant::now();
        driver.park(Some(WATCHDOG)).unwrap();
        assert!(start.elapsed() < WATCHDOG / 2, "the pending unpark was lost");

        let d = Duration::from_millis(20);
        let start = Instant::now();
        driver.park(Some(d)).unwrap();
        assert!(start.elapsed() >= d, "a consumed unpark woke park again");
    }
}

driver_test! {
    /// A thousand unparks cost one eventfd write and one wake-up; the park after that
    /// blocks for its whole timeout. (Under io_uring on Linux 6.13+ the one wake is a
    /// MSG_RING completion, which is no write: at most one write there, and the parks
    /// below show that the thousand unparks made one wake-up.)
    fn unparks_coalesce(kind) {
        let mut driver = driver(kind);
        // Let the io_uring backend arm its eventfd READ first.
        driver.park(Some(Duration::ZERO)).unwrap();
        let unparker = driver.unparker();
        let writes_before = support::thread_write_syscalls();
        for _ in 0..1000 {
            unparker.unpark();
        }
        let writes_after = support::thread_write_syscalls();
        if let (Some(before), Some(after)) = (writes_before, writes_after) {
            let writes = after - before;
            if kind.kind == coil_arch::DriverKind::Uring {
                assert!(writes <= 1, "1000 unparks made {writes} writes");
            } else {
                assert_eq!(writes, 1, "1000 unparks made {writes} writes");
            }
        }

        let start = Instant::now();
        driver.park(Some(WATCHDOG)).unwrap();
        assert!(start.elapsed() < WATCHDOG / 2, "the unparks were lost");
        for _ in 0..3 {
            let d = Duration::from_millis(20);
            let start = Instant::now();
            driver.park(Some(d)).unwrap();
            assert!(start.elapsed() >= d, "a spurious wake-up after coalesced unparks");
        }
        // And the channel still works afterwards.
        unparker.unpark();
        let start = Instant::now();
        driver.park(Some(WATCHDOG)).unwrap();
        assert!(start.elapsed() < WATCHDOG / 2, "the unpark after draining was lost");
    }
}

driver_test! {
    /// The runtime's pattern, in lockstep: publish, unpark, and the parker (which checks
    /// only after park returns) must see every round. A lost wakeup hangs the parker and
    /// trips the watchdog.
    fn no_lost_wakeup_lockstep(kind) {
        let sent = Arc::new(AtomicU64::new(0));
        let (ack_tx, ack_rx) = mpsc::channel();
        let parker_sent = sent.clone();
        let (unparker, _, _) = spawn_parker(kind, move |mut driver| {
            let mut seen = 0;
            while seen < ROUNDS {
                driver.park(None).unwrap();
                let now = parker_sent.load(Ordering::SeqCst);
                if now != seen {
                    seen = now;
                    let _ = ack_tx.send(seen);
                }
            }
        });
        for round in 1..=ROUNDS {
            sent.store(round, Ordering::SeqCst);
            unparker.unpark();
            let acked = ack_rx
                .recv_timeout(WATCHDOG)
                .unwrap_or_else(|_| panic!("lost wakeup in round {round} on {kind}"));
            assert_eq!(acked, round);
        }
    }
}

driver_test! {
    /// Free-running: the unparker never waits, so unparks race with every step of park.
    /// The last one must still get through.
    fn no_lost_wakeup_free_running(kind) {
        let sent = Arc::new(AtomicU64::new(0));
        let parker_sent = sent.clone();
        let wakeups = with_watchdog(WATCHDOG, "the parker", move || {
            let mut driver = driver(kind);
            let unparker = driver.unparker();
            let producer = thread::spawn(move || {
                for round in 1..=ROUNDS {
                    sent.store(round, Ordering::SeqCst);
                    unparker.unpark();
                }
            });
            let mut wakeups = 0u64;
            while parker_sent.load(Ordering::SeqCst) < ROUNDS {
                driver.park(None).unwrap();
                wakeups += 1;
            }
            producer.join().unwrap();
            wakeups
        });
        assert!(wakeups <= ROUNDS, "{wakeups} wake-ups for {ROUNDS} unparks");
    }
}

driver_test! {
    /// A driver can be built on one thread and parked on another.
    /// Except a single-issuer one: parking that elsewhere panics with the rule.
    fn driver_moves_between_threads(kind) {
        let mut driver = driver(kind);
        driver.park(Some(Duration::ZERO)).unwrap();
        let unparker = driver.unparker();
        unparker.unpark();
        let moved = thread::spawn(move || {
            driver.park(None).unwrap();
            driver.park(Some(Duration::from_millis(1))).unwrap();
        });
        let res = with_watchdog(WATCHDOG, "park on the new thread", move || moved.join());
        match (res, kind.single_issuer) {
            (Ok(()), false) => {}
            (Err(p), true) => {
                let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(msg.contains("uring_single_issuer"), "unexpected panic: {msg:?}");
            }
            (Ok(()), true) => panic!("a single-issuer driver parked on another thread"),
            (Err(p), false) => std::panic::resume_unwind(p),
        }
        // The driver is gone: unparking it must be harmless.
        unparker.unpark();
    }
}

// ---- EINTR -------------------------------------------------------------------------

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_alarm(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// The child body: SIGALRM every millisecond, aimed at this thread, while the runtime's
/// loop parks until a 50 ms deadline.
fn eintr_child(kind: Flavor) {
    let mut driver = driver(kind);

    // SAFETY: an all-zero sigaction is valid; we then set a handler that only touches an
    // atomic (async-signal-safe) and no SA_RESTART, so blocking calls see EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut()), 0);
    }
    // setitimer(ITIMER_REAL) sends a process-directed signal, which the kernel would
    // deliver to libtest's main thread. A POSIX timer with SIGEV_THREAD_ID hits this one.
    let mut timer: libc::timer_t = std::ptr::null_mut();
    // SAFETY: sigevent is plain data (all-zero is valid); the pointers are to live locals.
    unsafe {
        let mut sev: libc::sigevent = std::mem::zeroed();
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = libc::SIGALRM;
        sev.sigev_notify_thread_id = gettid();
        assert_eq!(
            libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut timer),
            0
        );
        let ms = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        let spec = libc::itimerspec {
            it_interval: ms,
            it_value: ms,
        };
        assert_eq!(
            libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()),
            0
        );
    }

    let total = Duration::from_millis(50);
    let start = Instant::now();
    let deadline = start + total;
    let mut parks = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        driver
            .park(Some(left))
            .expect("park must turn EINTR into Ok(())");
        parks += 1;
    }
    let took = start.elapsed();

    // SAFETY: `timer` was created above and is deleted once.
    unsafe { libc::timer_delete(timer) };

    let signals = SIGNALS.load(Ordering::Relaxed);
    assert!(took >= total, "the loop ended after {took:?}");
    assert!(signals > 0, "no SIGALRM arrived");
    assert!(
        parks > 1,
        "{signals} signals but park never returned early with EINTR"
    );
    println!("{kind}: {signals} signals, {parks} parks in {took:?}");
}

fn eintr_test(test_name: &str, kind: impl Into<Flavor>) {
    let kind = kind.into();
    if std::env::var(support::CHILD_ENV).as_deref() == Ok("eintr") {
        eintr_child(kind);
    } else {
        run_child(test_name, "eintr", &[]);
    }
}

#[test]
fn park_eintr_loops_until_deadline_uring() {
    eintr_test("park_eintr_loops_until_deadline_uring", DriverKind::Uring);
}

#[test]
fn park_eintr_loops_until_deadline_uring_single_issuer() {
    eintr_test(
        "park_eintr_loops_until_deadline_uring_single_issuer",
        Flavor {
            kind: DriverKind::Uring,
            single_issuer: true,
        },
    );
}

#[test]
fn park_eintr_loops_until_deadline_epoll() {
    eintr_test("park_eintr_loops_until_deadline_epoll", DriverKind::Epoll);
}

/// Without `epoll_pwait2` (kernels before 5.11, or a seccomp profile that
/// lacks it) the epoll driver falls back to `epoll_wait`: timeouts are then
/// rounded up to whole milliseconds, and still never early.
#[test]
fn epoll_without_pwait2_falls_back_never_early() {
    let th = thread::spawn(|| {
        coil_arch::testing::deny_io_uring(libc::ENOSYS, &[libc::SYS_epoll_pwait2]).unwrap();
        let mut d = driver(DriverKind::Epoll);
        for wait in [Duration::from_micros(300), Duration::from_millis(3)] {
            let start = Instant::now();
            d.park(Some(wait)).unwrap();
            assert!(
                start.elapsed() >= wait,
                "park returned early without pwait2"
            );
        }
        // Unpark still works on the fallback path.
        d.unparker().unpark();
        d.park(None).unwrap();
    });
    th.join().unwrap();
}
