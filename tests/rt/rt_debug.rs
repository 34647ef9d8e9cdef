//! Debug mode (`runtime::Builder::debug`, `COIL_DEBUG=1`; issue 17 item 1):
//! a task poll that holds the loop past the threshold is reported, naming
//! the task and where it was spawned, as asyncio's debug mode reports slow
//! callbacks; a detached task's panic is reported with the same; a loop
//! turn held outside task polls (the `block_on` future) is a stall.

use crate::support;

use std::sync::Mutex;
use std::time::Duration;

use coil::runtime::Builder;

/// Every report of every runtime of this binary, with the thread that made
/// it (tests run side by side, so each looks for its own task names, or
/// for the reports of its own loop thread).
static REPORTS: Mutex<Vec<(std::thread::ThreadId, String)>> = Mutex::new(Vec::new());

fn collect(line: &str) {
    let me = std::thread::current().id();
    REPORTS.lock().unwrap().push((me, line.to_owned()));
}

/// The reports made on this thread that contain `what`.
fn reports_here(what: &str) -> Vec<String> {
    let me = std::thread::current().id();
    REPORTS
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, l)| *t == me && l.contains(what))
        .map(|(_, l)| l.clone())
        .collect()
}

fn reports_naming(name: &str) -> Vec<String> {
    let quoted = format!("{name:?}");
    REPORTS
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, l)| l.contains(&quoted))
        .map(|(_, l)| l.clone())
        .collect()
}

/// A task name no other test of this binary uses.
fn unique(what: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "{what}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

#[track_caller]
fn spawn_named<F: std::future::Future + 'static>(name: &str, f: F) -> coil::Task<F::Output> {
    coil::task::Builder::new().name(name).spawn(f)
}

/// `rt_debug.rs:<line>`, as a report names a spawn location.
fn at_line(line: u32) -> String {
    format!("rt_debug.rs:{line}:")
}

fn debug_runtime(rt: &coil::Runtime, threshold_ms: u64) -> coil::Runtime {
    Builder::new()
        .driver(support::choice_like(rt))
        .debug(true)
        .slow_poll_threshold(Duration::from_millis(threshold_ms))
        .debug_sink(collect)
        .build()
        .unwrap()
}

driver_test! {
    fn a_poll_past_the_threshold_is_reported_with_the_task_name(rt) {
        let tag = unique("blocker");
        let quick = unique("quick");
        let debug_rt = debug_runtime(rt, 30);
        let line = line!() + 3;
        debug_rt.block_on(async {
            // The blocking call under test: it holds the loop for 40 ms.
            spawn_named(&tag, async { std::thread::sleep(Duration::from_millis(40)) })
                .await
                .unwrap();
            for _ in 0..10 {
                spawn_named(&quick, coil::task::yield_now()).await.unwrap();
            }
        });
        let got = reports_naming(&tag);
        assert_eq!(got.len(), 1, "one report for the one slow poll: {got:?}");
        assert!(got[0].contains("held the loop for") && got[0].contains("threshold 30 ms"), "{}", got[0]);
        assert!(got[0].contains(&format!("spawned at {}", file!())), "{}", got[0]);
        assert!(got[0].contains(&at_line(line)), "line {line}: {}", got[0]);
        assert!(reports_naming(&quick).is_empty(), "quick polls are not reported");
        assert!(reports_here("did not turn").is_empty(), "a slow task poll is not a stall");
    }

    fn a_detached_panic_is_reported_with_its_spawn_location(rt) {
        let gone = unique("dropped-before");
        let late = unique("dropped-after");
        let debug_rt = debug_runtime(rt, 1_000);
        let (line_gone, line_late) = (line!() + 4, line!() + 5);
        debug_rt.block_on(async {
            // Detached before it runs: the loop reports when it completes.
            // Detached after it completed: the handle's drop reports.
            drop(spawn_named(&gone, async { panic!("boom-gone") }));
            let kept = spawn_named(&late, async { panic!("boom-late") });
            // Queued after both, so both have run when it has (FIFO).
            coil::spawn(async {}).await.unwrap();
            assert!(kept.is_finished());
            drop(kept);
        });
        for (name, line, msg) in [(&gone, line_gone, "boom-gone"), (&late, line_late, "boom-late")] {
            let got = reports_naming(name);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].contains("panicked and nobody awaited it") && got[0].contains(msg), "{}", got[0]);
            assert!(got[0].contains(&at_line(line)), "line {line}: {}", got[0]);
        }
    }

    fn the_block_on_future_holding_the_loop_is_a_stall(rt) {
        let debug_rt = debug_runtime(rt, 20);
        debug_rt.block_on(async {
            // The blocking call under test: 2x the threshold in the main
            // future's own poll, which no task poll report covers.
            std::thread::sleep(Duration::from_millis(40));
            coil::task::yield_now().await;
        });
        let got = reports_here("did not turn");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("threshold 20 ms"), "{}", got[0]);
    }

    fn an_fd_used_from_another_loop_is_reported(rt) {
        use std::os::fd::AsRawFd;
        let home_rt = debug_runtime(rt, 1_000);
        let listener = home_rt.block_on(async { coil::net::TcpListener::bind("127.0.0.1:0").unwrap() });
        let fd = listener.as_raw_fd();
        let other_rt = debug_runtime(rt, 1_000);
        let err = other_rt.block_on(async { listener.accept().await.err() });
        assert!(err.is_some(), "O6: an op from another loop fails");
        let got = reports_here(&format!("on fd {fd} was started on loop"));
        assert_eq!(got.len(), 1, "{:?}", reports_here(""));
        assert!(got[0].contains("Accept") && got[0].contains("belongs to loop"), "{}", got[0]);
        // The two loop ids differ, and the fd's is the first runtime's.
        let ids: Vec<&str> = got[0]
            .split("loop ")
            .skip(1)
            .map(|t| t.split(|c: char| !c.is_ascii_digit()).next().unwrap())
            .filter(|id| !id.is_empty())
            .collect();
        assert_eq!(ids.len(), 2, "{}", got[0]);
        assert_ne!(ids[0], ids[1], "{}", got[0]);
        drop(listener);
    }

    fn a_turn_below_the_threshold_is_no_stall(rt) {
        let debug_rt = debug_runtime(rt, 200);
        debug_rt.block_on(async {
            std::thread::sleep(Duration::from_millis(40));
            coil::time::sleep(Duration::from_millis(1)).await;
            coil::task::yield_now().await;
        });
        assert!(reports_here("did not turn").is_empty(), "{:?}", reports_here(""));
    }

    fn a_spin_before_park_is_no_stall(rt) {
        // An idle loop that spins (past the threshold, up to its next
        // timer) is waiting for work, as a parked one is: not a stall.
        let debug_rt = Builder::new()
            .driver(support::choice_like(rt))
            .debug(true)
            .slow_poll_threshold(Duration::from_millis(20))
            .debug_sink(collect)
            .spin_before_park(Duration::from_secs(10))
            .build()
            .unwrap();
        debug_rt.block_on(async {
            coil::time::sleep(Duration::from_millis(200)).await;
        });
        // Counting the spin as a stall would report the whole 200 ms. A
        // shorter report can be a loaded machine descheduling the thread
        // between spins (seen: 41 ms), which is not what this test is about.
        let spin_counted: Vec<String> = reports_here("did not turn")
            .into_iter()
            .filter(|r| {
                let ms = r.split("did not turn for ").nth(1).and_then(|t| t.split(" ms").next());
                ms.and_then(|t| t.parse::<f64>().ok()).is_none_or(|ms| ms >= 150.0)
            })
            .collect();
        assert!(spin_counted.is_empty(), "{spin_counted:?}");
    }

    fn no_report_without_debug_mode(rt) {
        let tag = unique("silent");
        let plain_rt = Builder::new()
            .driver(support::choice_like(rt))
            .debug(false)
            .slow_poll_threshold(Duration::from_millis(1))
            .debug_sink(collect)
            .build()
            .unwrap();
        plain_rt.block_on(async {
            spawn_named(&tag, async { std::thread::sleep(Duration::from_millis(5)) })
                .await
                .unwrap();
        });
        assert!(reports_naming(&tag).is_empty(), "debug mode is off");
    }
}

driver_test! {
    fn loop_metrics_count_what_the_loop_did(rt) {
        let rt = Builder::new().driver(support::choice_like(rt)).build().unwrap();
        let handle = rt.handle();
        let inside = rt.block_on(async {
            let tasks: Vec<_> = (0..10).map(|_| coil::spawn(coil::task::yield_now())).collect();
            for t in tasks {
                t.await.unwrap();
            }
            coil::time::sleep(Duration::from_millis(1)).await;
            let listener = coil::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let client = coil::net::TcpStream::connect(addr).await.unwrap();
            let (_server, _) = listener.accept().await.unwrap();
            // An accept dropped in flight: its cancel goes to the driver.
            let pending = coil::time::timeout(Duration::from_millis(1), listener.accept()).await;
            assert!(pending.is_err(), "nobody else connects");
            drop(client);
            // A park sends the cancel (and the sleep's timer is the third).
            coil::time::sleep(Duration::from_millis(1)).await;
            coil::Handle::current().metrics()
        });
        assert_eq!(inside.tasks_spawned, 10, "{inside:?}");
        assert_eq!(inside.tasks_live, 0, "{inside:?}");
        assert!(inside.polls >= 20, "each task polled twice: {inside:?}");
        assert!(inside.run_queue_max >= 10, "{inside:?}");
        assert!(inside.timers_armed >= 3, "the sleeps and the timeout: {inside:?}");
        assert_eq!(inside.ops_cancelled, 1, "the dropped accept: {inside:?}");
        assert!(inside.parks >= 1 && inside.park_time > Duration::ZERO, "{inside:?}");
        assert!(inside.ops_submitted >= 2 && inside.ops_completed >= 1, "{inside:?}");
        assert!(inside.ops_submitted >= inside.ops_completed, "{inside:?}");
        // From another thread: what the loop published at its last park.
        let outside = std::thread::spawn(move || handle.metrics()).join().unwrap();
        assert!(outside.polls <= inside.polls && outside.tasks_spawned <= 10, "{outside:?}");
        assert!(outside.parks >= 1, "{outside:?}");
    }
}

/// A waker that panics when woken, as a foreign executor's might.
fn panicking_waker() -> std::task::Waker {
    use std::task::{RawWaker, RawWakerVTable, Waker};
    fn clone(p: *const ()) -> RawWaker {
        RawWaker::new(p, &VTABLE)
    }
    fn wake(_: *const ()) {
        panic!("this waker panics when woken");
    }
    fn drop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: no function of the vtable reads the data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

driver_test! {
    /// The `Task` handle's waker is user code (a foreign executor's, when the
    /// handle is awaited outside coil): one that panics when the task
    /// completes is reported with the task's name, and the loop goes on as
    /// asyncio's does after a callback raised. Before, the panic unwound out
    /// of `block_on` from inside the task's poll: the task was leaked and the
    /// loop still named it as the task being polled (`task::current`).
    fn a_join_waker_that_panics_is_reported_and_the_loop_goes_on(rt) {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::Context;
        let name = unique("woken-by-a-panicking-waker");
        let debug_rt = debug_runtime(rt, 10_000);
        let task_name = name.clone();
        let (out, live, main_current, later_current) = debug_rt.block_on(async move {
            let mut task = spawn_named(&task_name, async {
                coil::task::yield_now().await;
                7u32
            });
            let waker = panicking_waker();
            assert!(Pin::new(&mut task).poll(&mut Context::from_waker(&waker)).is_pending());
            while !task.is_finished() {
                coil::task::yield_now().await;
            }
            let out = task.await.unwrap();
            let later = coil::spawn(async { coil::task::current().map(|t| t.id()) });
            let later_id = later.id();
            let later_current = later.await.unwrap() == Some(later_id);
            let live = coil::Handle::current().metrics().tasks_live;
            (out, live, coil::task::current().is_none(), later_current)
        });
        assert_eq!(out, 7, "the handle still gets the result");
        assert_eq!(live, 0, "the task was freed, not leaked");
        assert!(main_current, "the main future is not a task");
        assert!(later_current, "a later task is its own current task");
        let reports = reports_naming(&name);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(
            reports[0].contains("panicked") && reports[0].contains("this waker panics when woken"),
            "{reports:?}"
        );
    }
}

/// Set in the child of `reports_survive_a_broken_stderr`: the driver choice
/// it runs (`uring`, `epoll` or `auto`).
const BROKEN_STDERR: &str = "COIL_TEST_BROKEN_STDERR";

driver_test! {
    /// Found by review: the reports the loop makes on stderr (a detached
    /// task's panic, a panicking join waker; and every report of debug mode
    /// through the default sink) used `eprintln!`, which panics when stderr
    /// cannot be written: a pipe whose reader is gone (`prog 2>&1 | head`;
    /// Rust ignores SIGPIPE, so the write fails with EPIPE). The panic
    /// unwound into the loop from inside the task's poll. Runs
    /// `broken_stderr_child` in a child process whose stderr is such a pipe
    /// (the seccomp filter of the fallback variant is inherited).
    fn reports_survive_a_broken_stderr(rt) {
        let choice = match support::choice_like(rt) {
            coil::runtime::DriverChoice::Uring => "uring",
            coil::runtime::DriverChoice::Epoll => "epoll",
            _ => "auto",
        };
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["rt_debug::broken_stderr_child", "--exact", "--test-threads=1", "--nocapture"])
            .env(BROKEN_STDERR, choice)
            .env_remove("COIL_DRIVER")
            .env_remove("COIL_DEBUG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the child failed ({}):\n{stdout}",
            out.status
        );
    }
}

/// The child of `reports_survive_a_broken_stderr` (returns at once
/// elsewhere): makes fd 2 a pipe without a reader, then has the loop report
/// a detached task's panic and a join waker's panic, with debug mode off
/// (`eprintln!` before the fix) and on with the default sink; the loop goes
/// on and frees every task.
#[test]
fn broken_stderr_child() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Context;
    let Ok(choice) = std::env::var(BROKEN_STDERR) else {
        return;
    };
    let choice = match choice.as_str() {
        "uring" => coil::runtime::DriverChoice::Uring,
        "epoll" => coil::runtime::DriverChoice::Epoll,
        _ => coil::runtime::DriverChoice::Auto,
    };
    let mut fds = [0; 2];
    // SAFETY: a two-int array for pipe(2); then fds this function owns.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        assert_eq!(libc::close(fds[0]), 0);
        assert_eq!(libc::dup2(fds[1], 2), 2);
        assert_eq!(libc::close(fds[1]), 0);
    }
    for debug in [false, true] {
        let rt = Builder::new().driver(choice).debug(debug).build().unwrap();
        let live = rt.block_on(async {
            drop(coil::spawn(async { panic!("a detached panic") }));
            let mut task = coil::spawn(async {
                coil::task::yield_now().await;
                7u32
            });
            let waker = panicking_waker();
            assert!(
                Pin::new(&mut task)
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
            while !task.is_finished() {
                coil::task::yield_now().await;
            }
            assert_eq!(task.await.unwrap(), 7);
            coil::spawn(async {}).await.unwrap();
            coil::Handle::current().metrics().tasks_live
        });
        assert_eq!(live, 0, "debug {debug}: the tasks were freed");
        println!("debug {debug}: the loop went on");
    }
}

/// A debug sink that panics, as one writing with `println!` to a closed
/// stdout does.
fn panicking_sink(_: &str) {
    panic!("this sink panics");
}

driver_test! {
    /// Found by review: the debug sink is user code called by the loop
    /// inside a task's poll (a detached task's panic, a panicking join
    /// waker, a slow poll); a sink that panics unwound into the loop (the
    /// task leaked, the runtime's drop aborted). Its panic is contained and
    /// the report dropped; the loop goes on.
    fn a_debug_sink_that_panics_does_not_unwind_into_the_loop(rt) {
        let debug_rt = Builder::new()
            .driver(support::choice_like(rt))
            .debug(true)
            .debug_sink(panicking_sink)
            .build()
            .unwrap();
        let live = debug_rt.block_on(async {
            drop(coil::spawn(async { panic!("a detached panic") }));
            coil::spawn(async {}).await.unwrap();
            coil::Handle::current().metrics().tasks_live
        });
        assert_eq!(live, 0, "the detached task was freed");
    }
}
