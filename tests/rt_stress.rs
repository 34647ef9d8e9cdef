//! Bounded stress and extreme-input tests (docs/reliability.md, checks 2, 15,
//! 16, 19; issue 5 item 5: a million timers, 100k tasks cancelled mid-flight).
//! Loop counts are a fifth of the issues' sizes by default, the full sizes
//! with `COIL_STRESS_FULL=1` (CI's `matrix-deep` tier), any count with
//! `STRESS_ITERS`; under Miri they go through `support::scaled`. Tests that measure the
//! whole process (RSS) or may hang (nested `block_on`) run in a child
//! process: the test binary re-executes itself with `COIL_STRESS_CHILD` set.
//!
//! Item 9b (a task panic under `panic = "abort"` aborts the process) needs a
//! build with another panic strategy, which a test binary cannot switch to;
//! it is not covered here.

mod support;

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use coil::time::{self, Sleep, sleep, sleep_until, timeout};

/// The count a test runs with: `STRESS_ITERS` if set; else `full` (the
/// issue's size) when `COIL_STRESS_FULL` is set (CI's `matrix-deep` tier);
/// else a fifth of it, so that the README's `cargo test` stays quick. Scaled
/// down further under Miri.
fn iters(full: usize) -> usize {
    let n = std::env::var("STRESS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            if std::env::var_os("COIL_STRESS_FULL").is_some() {
                full
            } else {
                full / 5
            }
        });
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
    // watchdog turns that into a failure. 100k round trips in the deep run
    // (`iters`), 20k in `cargo test`.
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
        // A zero deadline does not start the future (asyncio.wait_for(coro, 0)).
        assert!(timeout(Duration::ZERO, async { 1 }).await.is_err());
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

// ----- issue 5 item 5: a million timers ------------------------------------------

/// Tasks that own the million sleeps (sleep `i` belongs to task `i % 4`).
const TIMER_OWNERS: usize = 4;
/// The owner task that the main future cancels halfway.
const CANCELLED_OWNER: usize = TIMER_OWNERS - 1;
/// Woken sleeps an owner polls per task poll: each ready sleep takes a unit
/// of the coop budget (128 per poll), and with the budget spent a ready
/// sleep would answer `Pending`, which the owner reports as a failure.
const READY_PER_POLL: usize = 64;

/// Where the wakers of the million sleeps report.
struct TimerBoard {
    /// Every wake in the order the loop made it: (sleep index, virtual time).
    log: Mutex<Vec<(u32, time::Instant)>>,
    /// Per owner task: sleeps woken and not yet polled, and the task's waker.
    owners: Vec<Mutex<(VecDeque<u32>, Option<Waker>)>>,
}

/// The waker of one sleep: logs the wake, hands the index to the owner task
/// and wakes it. The wheel calls it straight from its slot, so the log holds
/// the wheel's firing order, not the (shuffled) order tasks are polled in.
struct SleepWaker {
    index: u32,
    board: Arc<TimerBoard>,
}

impl Wake for SleepWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let at = time::Instant::now();
        self.board.log.lock().unwrap().push((self.index, at));
        let mut owner = self.board.owners[self.index as usize % TIMER_OWNERS]
            .lock()
            .unwrap();
        owner.0.push_back(self.index);
        if let Some(w) = &owner.1 {
            w.wake_by_ref();
        }
    }
}

/// One owner task: its sleeps (already registered, each with its own
/// waker; slot `j` is sleep `j * TIMER_OWNERS + owner`) are polled again as
/// their wakers report them and must then be ready, at or after their
/// deadline. When its own timer at `mid` fires it drops the sleeps in
/// `late`. Returns how many of its sleeps completed.
async fn own_sleeps(
    owner: usize,
    mut sleeps: Vec<Option<Sleep>>,
    late: Vec<u32>,
    mid: time::Instant,
    board: Arc<TimerBoard>,
) -> usize {
    let mut live = sleeps.iter().flatten().count();
    let mut mid_timer = Some(sleep_until(mid));
    let mut late = Some(late);
    let mut completed = 0;
    let mut woken = Vec::with_capacity(READY_PER_POLL);
    poll_fn(|cx| {
        let more = {
            let mut o = board.owners[owner].lock().unwrap();
            if !o.1.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                o.1 = Some(cx.waker().clone());
            }
            let k = o.0.len().min(READY_PER_POLL);
            woken.extend(o.0.drain(..k));
            !o.0.is_empty()
        };
        if mid_timer
            .as_mut()
            .is_some_and(|t| Pin::new(t).poll(cx).is_ready())
        {
            mid_timer = None;
            for i in late.take().unwrap() {
                let s = sleeps[i as usize / TIMER_OWNERS].take();
                let s = s.unwrap_or_else(|| panic!("late-cancelled sleep {i} had fired"));
                assert!(!s.is_elapsed(), "sleep {i} is due: not a mid-flight cancel");
                live -= 1;
            }
        }
        for i in woken.drain(..) {
            let slot = &mut sleeps[i as usize / TIMER_OWNERS];
            let s = slot
                .as_mut()
                .unwrap_or_else(|| panic!("sleep {i} woken after it was dropped or completed"));
            assert!(
                Pin::new(&mut *s).poll(cx).is_ready(),
                "sleep {i} was woken but is still pending"
            );
            assert!(s.is_elapsed(), "sleep {i} completed before its deadline");
            *slot = None;
            live -= 1;
            completed += 1;
        }
        if more {
            cx.waker().wake_by_ref();
        }
        if live == 0 && mid_timer.is_none() {
            Poll::Ready(completed)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The million-timer program (see the test). Deadlines come from the
/// simulation's seed, so `COIL_SIM_SEED` replays all of it.
async fn million_timers(n: usize) {
    let mut rng = coil_arch::sim::SplitMix64::new(coil::sim::seed().unwrap());
    let start = time::Instant::now();
    // Offsets in whole milliseconds (distinct offsets are distinct wheel
    // ticks, in the same order), log-uniform from 1 ms to 2^36 ms (2.2
    // years): each power of two gets about as many timers, so every wheel
    // level is busy and the far timers cascade down level by level. Each
    // power of two holds at most 2^14 distinct offsets (the 1M timers share
    // about 176k deadlines; equal deadlines fire in any order). Why: a debug
    // build spends ~7 µs of real time per distinct deadline (one simulator
    // tick: jump the clock, fire the slot, poll the owners, park) on top of
    // ~4 µs per timer; fully random offsets (550k distinct) took 8.5 s on a
    // 2-core machine instead of 5.5 s.
    let offsets: Vec<u64> = (0..n)
        .map(|_| {
            let bits = rng.below(37);
            let grain = 1 << bits.saturating_sub(14);
            (1 + rng.below(1 << bits)).next_multiple_of(grain)
        })
        .collect();
    let deadline = |i: usize| start + Duration::from_millis(offsets[i]);
    const MID_MS: u64 = 1 << 20; // about 17 min: a bit over half the deadlines come before
    let board = Arc::new(TimerBoard {
        log: Mutex::new(Vec::with_capacity(n)),
        owners: (0..TIMER_OWNERS).map(|_| Mutex::default()).collect(),
    });
    let wakers: Vec<Arc<SleepWaker>> = (0..n)
        .map(|i| {
            Arc::new(SleepWaker {
                index: u32::try_from(i).unwrap(),
                board: board.clone(),
            })
        })
        .collect();
    let mut sleeps: Vec<Option<Sleep>> = (0..n).map(|i| Some(sleep_until(deadline(i)))).collect();
    for (s, w) in sleeps.iter_mut().zip(&wakers) {
        let waker = Waker::from(w.clone());
        let s = Pin::new(s.as_mut().unwrap());
        assert!(s.poll(&mut Context::from_waker(&waker)).is_pending());
    }
    let live = coil::runtime::stats().unwrap().timers;
    assert_eq!(live, n, "timers filed: not all {n} live at once");

    // Cancelled before anything fires: 5%, dropped here. Cancelled mid-flight
    // (the wheel has cascaded them since): 10% of those due after MID_MS + 1,
    // dropped by their owner at MID_MS, and all of owner CANCELLED_OWNER's
    // still pending at MID_MS, where the main future cancels that task.
    let mut early = vec![false; n];
    let mut late = vec![false; n];
    for i in 0..n {
        if rng.chance(0.05) {
            early[i] = true;
            sleeps[i] = None;
        } else if offsets[i] > MID_MS + 1 && rng.chance(0.1) {
            late[i] = true;
        }
    }
    let n_early = early.iter().filter(|&&e| e).count();
    let live = coil::runtime::stats().unwrap().timers;
    assert_eq!(live, n - n_early, "timers after dropping {n_early}");

    let mut per_owner: Vec<Vec<Option<Sleep>>> = (0..TIMER_OWNERS)
        .map(|_| Vec::with_capacity(n / TIMER_OWNERS + 1))
        .collect();
    for (i, s) in sleeps.into_iter().enumerate() {
        per_owner[i % TIMER_OWNERS].push(s);
    }
    let mid = start + Duration::from_millis(MID_MS);
    let owners: Vec<_> = per_owner
        .into_iter()
        .enumerate()
        .map(|(k, sleeps)| {
            let late_k = (0..n)
                .filter(|&i| i % TIMER_OWNERS == k && late[i])
                .map(|i| u32::try_from(i).unwrap())
                .collect();
            coil::spawn(own_sleeps(k, sleeps, late_k, mid, board.clone()))
        })
        .collect();

    sleep_until(mid).await;
    assert!(owners[CANCELLED_OWNER].cancel());
    let cancel_at = time::Instant::now();
    let mut completed = 0;
    for (k, t) in owners.into_iter().enumerate() {
        match t.await {
            Ok(c) => completed += c,
            Err(e) => assert!(k == CANCELLED_OWNER && e.is_cancelled(), "owner {k}: {e:?}"),
        }
    }
    let stats = coil::runtime::stats().unwrap();
    assert_eq!((stats.timers, stats.tasks), (0, 0), "timers or tasks left");
    for (i, w) in wakers.iter().enumerate() {
        assert_eq!(Arc::strong_count(w), 1, "sleep {i}'s waker is still held");
    }

    let log = std::mem::take(&mut *board.log.lock().unwrap());
    let mut fired = vec![false; n];
    let mut prev = 0;
    for &(i, at) in &log {
        let i = i as usize;
        assert!(!fired[i], "sleep {i} fired twice");
        fired[i] = true;
        assert!(at >= deadline(i), "sleep {i} fired early at {at:?}");
        let late_by = at.duration_since(deadline(i));
        assert!(
            late_by < Duration::from_millis(2),
            "sleep {i} fired {late_by:?} late"
        );
        assert!(
            offsets[i] >= prev,
            "out of deadline order: sleep {i} (+{} ms) fired after one due at +{prev} ms",
            offsets[i]
        );
        prev = offsets[i];
        if i % TIMER_OWNERS == CANCELLED_OWNER {
            assert!(
                at <= cancel_at,
                "sleep {i} fired after its task was cancelled"
            );
        }
    }
    let mut expected = 0;
    for i in 0..n {
        let should = if early[i] || late[i] {
            Some(false)
        } else if i % TIMER_OWNERS == CANCELLED_OWNER {
            // Due in the tick of the cancel: either way.
            (offsets[i] != MID_MS).then_some(offsets[i] < MID_MS)
        } else {
            expected += 1;
            Some(true)
        };
        if let Some(should) = should {
            assert_eq!(fired[i], should, "sleep {i} (+{} ms)", offsets[i]);
        }
    }
    assert_eq!(completed, expected, "sleeps the owners saw complete");
    eprintln!(
        "{n} timers: {} fired ({completed} polled to completion by the surviving owners), \
         {n_early} dropped before firing, {} dropped mid-flight by their owner, \
         1 owner cancelled at +{MID_MS} ms; virtual time {:?}",
        log.len(),
        late.iter().filter(|&&l| l).count(),
        start.elapsed()
    );
}

#[test]
#[cfg_attr(miri, ignore = "minutes under Miri even scaled down")]
fn million_timers_fire_in_deadline_order() {
    // Item 5 of issue 5: 1M sleeps live in the wheel at once, with deadlines
    // spread over two years of virtual time (the simulator's clock jumps to
    // each next deadline, so they cost no real time). Each fires once, never
    // early, in deadline order; the dropped ones (before firing, and
    // mid-flight by their owner or by cancelling their owner task) never
    // fire; nothing is left in the wheel, and the wheel keeps no waker.
    let n = iters(1_000_000);
    support::run_watched(move || {
        let wall = Instant::now();
        coil::sim::Builder::new()
            .seed(0x5EED_0005)
            .run(million_timers(n));
        eprintln!("{n} timers took {:?} of real time", wall.elapsed());
    });
}

// ----- issue 5 item 5: 100k tasks cancelled mid-flight -----------------------------

/// Capacity of the queue the putters wait on (kept full).
const FULL_CAP: usize = 4;
/// TCP streams the readers wait on (none under Miri, which has no sockets).
const STREAMS: usize = if cfg!(miri) { 0 } else { 4 };

/// Bumps `drops[index]` when dropped: each task's captured state must be
/// dropped exactly once.
struct Held {
    index: usize,
    drops: Rc<Vec<Cell<u8>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let c = &self.drops[self.index];
        c.set(c.get() + 1);
    }
}

/// What a task of the cancellation test is suspended on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Suspend {
    Sleep,
    Get,
    Put,
    Oneshot,
    Event,
    Read(usize),
}

impl Suspend {
    /// Kind of task `i`: the first five in turn, and every hundredth a read.
    fn of(i: usize) -> Suspend {
        if STREAMS > 0 && i % 100 == 99 {
            return Suspend::Read(i / 100 % STREAMS.max(1));
        }
        [
            Suspend::Sleep,
            Suspend::Get,
            Suspend::Put,
            Suspend::Oneshot,
            Suspend::Event,
        ][i % 5]
    }
}

/// What the tasks wait on, shared.
struct Waits {
    /// Getters wait here (empty).
    empty: coil::queue::Queue<u64>,
    /// Putters wait here: full of `FULL_CAP` items.
    full: coil::queue::Queue<Held>,
    event: coil::sync::Event,
    /// Readers wait here; the main future holds the peers.
    streams: Vec<coil::net::TcpStream>,
    /// Tasks that reached their suspension point.
    started: Cell<usize>,
}

/// Task `i`: holds `held` (a putter puts it in the queue), then suspends
/// forever (nothing it waits for comes before the cancel).
async fn suspended_task(
    i: usize,
    held: Held,
    rx: Option<coil::sync::oneshot::Receiver<u64>>,
    w: Rc<Waits>,
) {
    w.started.set(w.started.get() + 1);
    match Suspend::of(i) {
        Suspend::Sleep => sleep(Duration::from_secs(3600)).await,
        Suspend::Get => drop(w.empty.get().await),
        Suspend::Put => drop(w.full.put(held).await),
        Suspend::Oneshot => drop(rx.unwrap().await),
        Suspend::Event => w.event.wait().await,
        Suspend::Read(s) => drop(w.streams[s].read(Vec::with_capacity(16)).await),
    }
    panic!(
        "task {i} ({:?}) ran past its suspension point",
        Suspend::of(i)
    );
}

/// Spawns `n` tasks, each suspended on a sleep, a queue get or put, a
/// oneshot, an event or a TCP read; cancels them all while suspended (two
/// thirds with `Task::cancel`, a third as children of a `TaskGroup` whose
/// owner task is cancelled); checks that each ends cancelled, drops what it
/// held exactly once, and leaves no waiter, timer, op or task behind.
async fn cancel_mid_flight(n: usize) {
    let mut streams = Vec::new();
    let mut peers = Vec::new();
    if STREAMS > 0 {
        let listener = coil::net::TcpListener::bind("127.0.0.1:0").unwrap();
        for _ in 0..STREAMS {
            let (stream, peer) = support::tcp_pair_on(&listener).await;
            streams.push(stream);
            peers.push(peer);
        }
    }
    // drops[0..n]: the tasks; then the queue's initial items; then one more
    // for the live putter of the final check.
    let drops: Rc<Vec<Cell<u8>>> = Rc::new((0..n + FULL_CAP + 1).map(|_| Cell::new(0)).collect());
    let held = |index| Held {
        index,
        drops: drops.clone(),
    };
    let w = Rc::new(Waits {
        empty: coil::queue::Queue::new(0),
        full: coil::queue::Queue::new(FULL_CAP),
        event: coil::sync::Event::new(),
        streams,
        started: Cell::new(0),
    });
    for k in 0..FULL_CAP {
        w.full.put_nowait(held(n + k)).ok().unwrap();
    }

    let mut senders = Vec::new();
    let mut direct = Vec::new();
    let mut grouped = Vec::new();
    for i in 0..n {
        let rx = (Suspend::of(i) == Suspend::Oneshot).then(|| {
            let (tx, rx) = coil::sync::oneshot::channel();
            senders.push(tx);
            rx
        });
        let fut = suspended_task(i, held(i), rx, w.clone());
        if i % 3 == 0 {
            grouped.push(fut);
        } else {
            direct.push(coil::spawn(fut));
        }
    }
    let n_grouped = grouped.len();
    let group_handles = Rc::new(std::cell::RefCell::new(Vec::new()));
    let group_owner = coil::spawn({
        let handles = group_handles.clone();
        coil::task_group(move |tg: coil::TaskGroup| async move {
            for fut in grouped {
                handles.borrow_mut().push(tg.spawn(fut));
            }
            std::future::pending::<()>().await;
            Ok(())
        })
    });
    support::yield_until(|| w.started.get() == n, n).await;
    assert_eq!(w.started.get(), n, "tasks at their suspension point");
    let count = |f: fn(Suspend) -> bool| (0..n).filter(|&i| f(Suspend::of(i))).count();
    let n_sleeps = count(|k| k == Suspend::Sleep);
    let n_reads = count(|k| matches!(k, Suspend::Read(_)));
    let stats = coil::runtime::stats().unwrap();
    assert_eq!(stats.tasks, n + 1, "the tasks and the group owner");
    assert_eq!(stats.timers, n_sleeps, "timers before the cancel");
    assert_eq!(stats.io_ops, n_reads, "reads in flight before the cancel");
    assert!(
        drops.iter().all(|d| d.get() == 0),
        "dropped before the cancel"
    );

    for t in &direct {
        assert!(t.cancel(), "already finished");
    }
    assert!(group_owner.cancel());
    for t in direct {
        assert!(t.await.unwrap_err().is_cancelled());
    }
    assert!(group_owner.await.unwrap_err().is_cancelled());
    // The group's children are dropped as the loop gets to them.
    support::yield_until(|| coil::runtime::stats().unwrap().tasks == 0, n).await;
    let tasks = coil::runtime::stats().unwrap().tasks;
    assert_eq!(tasks, 0, "tasks left after the cancel");
    let handles = group_handles.take();
    assert_eq!(handles.len(), n_grouped);
    for (k, h) in handles.iter().enumerate() {
        assert!(h.is_cancelled(), "group child {k}");
    }
    for (i, d) in drops[..n].iter().enumerate() {
        assert_eq!(
            d.get(),
            1,
            "task {i} ({:?}): state dropped {} times",
            Suspend::of(i),
            d.get()
        );
    }
    let timers = coil::runtime::stats().unwrap().timers;
    assert_eq!(timers, 0, "timers left by the cancelled sleeps");

    // No dead waiter is left in front of a live one: each wake-up goes to
    // the live task that waits after the cancel.
    let getter = coil::spawn({
        let w = w.clone();
        async move { w.empty.get().await.unwrap() }
    });
    let putter = coil::spawn({
        let (w, item) = (w.clone(), held(n + FULL_CAP));
        async move { w.full.put(item).await.ok().unwrap() }
    });
    let waiter = coil::spawn({
        let w = w.clone();
        async move { w.event.wait().await }
    });
    coil::task::yield_now().await; // one tick: all three suspend
    assert!(!getter.is_finished() && !putter.is_finished() && !waiter.is_finished());
    w.empty.put_nowait(42).unwrap();
    let first = w.full.get_nowait().unwrap();
    assert_eq!(
        first.index, n,
        "a cancelled putter's item got into the queue"
    );
    drop(first);
    w.event.set();
    support::yield_until(
        || getter.is_finished() && putter.is_finished() && waiter.is_finished(),
        3,
    )
    .await;
    assert!(
        getter.is_finished(),
        "a dead getter took the live one's wake-up"
    );
    assert!(
        putter.is_finished(),
        "a dead putter took the live one's wake-up"
    );
    assert!(waiter.is_finished(), "the live event waiter was not woken");
    assert_eq!(getter.await.unwrap(), 42);
    putter.await.unwrap();
    waiter.await.unwrap();
    assert!(w.empty.empty());
    let rest: Vec<usize> = (0..FULL_CAP)
        .map(|_| w.full.get_nowait().unwrap().index)
        .collect();
    let expected: Vec<usize> = (n + 1..=n + FULL_CAP).collect();
    assert_eq!(
        rest, expected,
        "only the initial items and the live putter's"
    );
    for (k, d) in drops[n..].iter().enumerate() {
        assert_eq!(d.get(), 1, "queue item {k}");
    }
    for tx in senders {
        assert!(tx.is_closed(), "a cancelled task's receiver is alive");
        assert_eq!(tx.send(7), Err(7));
    }
    // Bytes written after the cancel reach the next read whole: no
    // cancelled read kept (or lost) any of them. (The timeout turns a read
    // that never gets them into a failure instead of a hang.)
    for (s, peer) in peers.iter().enumerate() {
        let msg = format!("after the cancel, stream {s}").into_bytes();
        let coil::io::BufResult(r, _) = peer.write_all(msg.clone()).await;
        r.unwrap();
        let mut got = Vec::new();
        while got.len() < msg.len() {
            let read = w.streams[s].read(Vec::with_capacity(64));
            let coil::io::BufResult(r, buf) = timeout(Duration::from_secs(10), read)
                .await
                .unwrap_or_else(|_| panic!("stream {s}: a cancelled read took the bytes"));
            assert!(r.unwrap() > 0, "EOF on stream {s}");
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, msg, "stream {s}");
    }
    // The cancelled reads' ops end when their cancellations complete.
    support::yield_until(|| coil::runtime::stats().unwrap().io_ops == 0, 1_000_000).await;
    let stats = coil::runtime::stats().unwrap();
    let left = (stats.tasks, stats.timers, stats.io_ops);
    assert_eq!(left, (0, 0, 0), "(tasks, timers, I/O ops) left at the end");
}

driver_test! {
    fn cancel_suspended_tasks_mid_flight(rt) {
        // Item 5 of issue 5: 100k tasks suspended on timers, queues, a
        // oneshot, an event and TCP reads, all cancelled mid-flight.
        let n = iters(100_000);
        let wall = Instant::now();
        rt.block_on(cancel_mid_flight(n));
        eprintln!("{n} tasks cancelled mid-flight in {:?}", wall.elapsed());
    }
}

#[test]
#[cfg_attr(miri, ignore = "minutes under Miri even scaled down")]
fn cancel_suspended_tasks_mid_flight_sim() {
    // The same under the simulator (seeded poll order, in-memory TCP).
    let n = iters(100_000);
    support::run_watched(move || {
        coil::sim::Builder::new()
            .seed(0x5EED_0105)
            .run(cancel_mid_flight(n));
    });
}
