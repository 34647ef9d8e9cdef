//! Bounded stress and extreme-input tests (RELIABILITY.md §4 items 2, 15, 16,
//! 19). Loop counts are small by default and scale with `STRESS_ITERS`;
//! under Miri they go through `support::scaled`. Tests that measure the
//! whole process (RSS) or may hang (nested `block_on`) run in a child
//! process: the test binary re-executes itself with `COIL_STRESS_CHILD` set.
//!
//! Item 9b (a task panic under `panic = "abort"` aborts the process) needs a
//! build with another panic strategy, which a test binary cannot switch to;
//! it is not covered here.

mod support;

use std::future::poll_fn;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use coil::time::{sleep, sleep_until, timeout};

/// `STRESS_ITERS` if set, else `default`; scaled down under Miri.
fn iters(default: usize) -> usize {
    let n = std::env::var("STRESS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    support::scaled(n)
}

// ----- item 2: ping-pong with cross-thread wakes -----------------------------

/// A one-value mailbox between the loop and a plain thread: the loop side
/// awaits with a waker, the thread side blocks on a condvar.
#[derive(Default)]
struct Mailbox {
    slot: Mutex<(Option<u64>, Option<Waker>)>,
    cv: Condvar,
}

impl Mailbox {
    fn put(&self, v: u64) {
        let waker = {
            let mut s = self.slot.lock().unwrap();
            assert!(s.0.is_none(), "mailbox overrun");
            s.0 = Some(v);
            s.1.take()
        };
        self.cv.notify_one();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn take_blocking(&self) -> u64 {
        let mut s = self.slot.lock().unwrap();
        loop {
            if let Some(v) = s.0.take() {
                return v;
            }
            s = self.cv.wait(s).unwrap();
        }
    }

    async fn take(&self) -> u64 {
        poll_fn(|cx| {
            let mut s = self.slot.lock().unwrap();
            match s.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

#[test]
fn ping_pong_cross_thread_wakes() {
    // Item 2: a task on the loop and a helper thread bounce a counter; every
    // reply wakes the task from the helper thread. A lost wake hangs, and the
    // watchdog turns that into a failure. 100k round trips by default (1M in
    // the nightly job via STRESS_ITERS=1000000).
    let n = iters(100_000) as u64;
    support::run_watched(move || {
        let to_helper = Arc::new(Mailbox::default());
        let to_task = Arc::new(Mailbox::default());
        let (rx, tx) = (to_helper.clone(), to_task.clone());
        let helper = std::thread::spawn(move || {
            loop {
                let v = rx.take_blocking();
                if v == u64::MAX {
                    return;
                }
                tx.put(v + 1);
            }
        });
        let start = Instant::now();
        let last = coil::run(async move {
            let task = coil::spawn(async move {
                let mut v = 0;
                for _ in 0..n {
                    to_helper.put(v);
                    v = to_task.take().await;
                }
                to_helper.put(u64::MAX);
                v
            });
            task.await.unwrap()
        });
        helper.join().unwrap();
        assert_eq!(last, n);
        eprintln!("{n} cross-thread round trips in {:?}", start.elapsed());
    });
}

// ----- child processes ----------------------------------------------------------

const CHILD_ENV: &str = "COIL_STRESS_CHILD";

/// Re-runs this test binary for the single test `name` with `CHILD_ENV=name`;
/// kills it after `limit`. Returns (success, stderr).
fn run_child(name: &str, limit: Duration) -> (bool, String) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let err = reader.join().unwrap();
    match status {
        None => panic!("child {name} did not finish within {limit:?} (hung); stderr:\n{err}"),
        Some(st) => (st.success(), err),
    }
}

fn in_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).unwrap()
}

#[test]
#[cfg_attr(miri, ignore = "spawns a child process and reads /proc")]
fn spawn_churn_rss_returns_to_baseline() {
    // Item 16: spawn and complete 1M tiny tasks in batches of 10k; nothing
    // stays behind (no live tasks) and RSS comes back near where it started.
    const NAME: &str = "spawn_churn_rss_returns_to_baseline";
    if !in_child(NAME) {
        let (ok, err) = run_child(NAME, Duration::from_secs(120));
        assert!(ok, "child failed:\n{err}");
        for line in err.lines().filter(|l| l.contains("RSS")) {
            eprintln!("{line}");
        }
        return;
    }
    const BATCH: usize = 10_000;
    let batches = iters(1_000_000) / BATCH;
    coil::run(async move {
        let batch = || async {
            let tasks: Vec<_> = (0..BATCH as u64)
                .map(|i| coil::spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            assert_eq!(sum, (BATCH as u64 - 1) * BATCH as u64 / 2);
        };
        batch().await; // warm-up: queues and allocator pools at working size
        let baseline = rss_bytes();
        let mut peak = baseline;
        for _ in 0..batches {
            batch().await;
            peak = peak.max(rss_bytes());
        }
        let after = rss_bytes();
        let stats = coil::runtime::stats().unwrap();
        assert_eq!(stats.tasks, 0, "tasks left alive");
        let growth = after.saturating_sub(baseline);
        eprintln!(
            "{} tasks: RSS baseline {} KiB, peak {} KiB, after {} KiB",
            batches * BATCH,
            baseline / 1024,
            peak / 1024,
            after / 1024
        );
        // 16 MiB over 1M tasks: a leak of even 17 bytes per task fails.
        assert!(growth < 16 << 20, "RSS grew by {} KiB", growth / 1024);
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns a child process")]
fn nested_block_on_in_child_panics_clearly() {
    // Item 15: `coil::run` inside a running loop must fail fast with a clear
    // message, never deadlock. In a child with a 5 s limit.
    const NAME: &str = "nested_block_on_in_child_panics_clearly";
    if !in_child(NAME) {
        let (ok, err) = run_child(NAME, Duration::from_secs(5));
        assert!(!ok, "the nested run must fail");
        assert!(
            err.contains("cannot be called from a running event loop"),
            "unclear failure:\n{err}"
        );
        return;
    }
    coil::run(async {
        coil::run(async {});
    });
}

// ----- item 19: extreme durations -----------------------------------------------

#[test]
fn instant_plus_huge_duration_saturates() {
    let now = coil::time::Instant::now();
    for d in [
        Duration::from_nanos(u64::MAX),
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
    ] {
        let far = now + d;
        assert!(far > now + Duration::from_secs(86_400 * 365 * 29), "{d:?}");
        let mut x = now;
        x += d;
        assert_eq!(x, far);
    }
}

#[test]
fn zero_and_past_deadlines_fire_at_once() {
    coil::run(async {
        let t0 = Instant::now();
        sleep(Duration::ZERO).await;
        let past = coil::time::Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(coil::time::Instant::now);
        sleep_until(past).await;
        assert_eq!(timeout(Duration::ZERO, async { 1 }).await, Ok(1));
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(coil::runtime::stats().unwrap().timers, 0);
    });
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok())
            .unwrap_or(if cfg!(miri) { 4 } else { 48 })
    ))]

    /// Item 19: `sleep(from_nanos(x))` under a 3 ms timeout, for x from 0 to
    /// u64::MAX: never panics or overflows, never early, and completes iff
    /// the sleep was due first (either outcome near the boundary).
    #[test]
    fn sleep_nanos_under_timeout(x in proptest::prop_oneof![
        0u64..6_000_000,
        proptest::prelude::any::<u64>(),
        (u64::MAX - 1_000)..=u64::MAX,
    ]) {
        let limit = Duration::from_millis(3);
        let d = Duration::from_nanos(x);
        let (res, elapsed, timers) = coil::run(async move {
            let t0 = Instant::now();
            let res = timeout(limit, sleep(d)).await;
            (res, t0.elapsed(), coil::runtime::stats().unwrap().timers)
        });
        proptest::prop_assert_eq!(timers, 0, "a timer outlived its future");
        match res {
            Ok(()) => proptest::prop_assert!(elapsed >= d, "sleep {:?} woke after {:?}", d, elapsed),
            Err(_) => {
                proptest::prop_assert!(elapsed >= limit, "timeout fired early: {:?}", elapsed);
                proptest::prop_assert!(d > Duration::from_millis(2), "a {:?} sleep lost to a {:?} timeout", d, limit);
            }
        }
        if d > Duration::from_secs(1) {
            proptest::prop_assert!(res.is_err());
        }
    }
}
