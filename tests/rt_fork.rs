//! Fork safety (docs/reliability.md, check 33): `fork()` with a live runtime and
//! ops in flight (a socket read, a timer, a used blocking pool). The child
//! builds fresh runtimes under each driver and does real I/O with them, or
//! gets a clean error (io_uring where it is denied); it never touches the
//! parent's ring or epoll instance. The parent's pending ops still complete.
//!
//! Each driver runs in its own process (the test binary re-run alone), so
//! the fork happens in a process with no test-harness threads running.
//!
//! A fork while another thread holds the process-wide lock of the task
//! memory pool (`src/task/raw/slab/pages.rs`, "Fork"), taken by any thread
//! that spawns or frees tasks: the pool's `pthread_atfork` handlers make the
//! fork wait for the holder, so the child's lock is free and its first
//! spawns do not hang.

mod support;

use std::io::Write as _;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coil::Runtime;
use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream, UnixStream};
use coil::runtime::{DriverChoice, DriverKind};
use coil::time::{Instant, sleep, timeout};
use coil::{blocking::spawn_blocking, spawn};

const CHILD_ENV: &str = "COIL_FORK_CHILD";
/// How long the forked child may take before the parent kills it.
const CHILD_WATCHDOG: Duration = Duration::from_secs(10);

#[test]
fn fork_with_pending_ops() {
    per_driver_in_child("fork_with_pending_ops", parent);
}

#[test]
fn fork_while_another_thread_holds_the_task_memory_lock() {
    per_driver_in_child(
        "fork_while_another_thread_holds_the_task_memory_lock",
        fork_held,
    );
}

/// Re-runs test `name` alone in a child process per driver variant; in
/// that process (`CHILD_ENV` set), runs `body` with the variant's runtime.
fn per_driver_in_child(name: &str, body: fn(&Runtime)) {
    if let Ok(variant) = std::env::var(CHILD_ENV) {
        match variant.as_str() {
            "uring" => support::with_runtime(DriverChoice::Uring, DriverKind::Uring, body),
            "epoll" => support::with_runtime(DriverChoice::Epoll, DriverKind::Epoll, body),
            "fallback" => support::with_fallback_runtime(libc::ENOSYS, body),
            other => panic!("unknown {CHILD_ENV} value {other:?}"),
        }
        return;
    }
    for variant in ["uring", "epoll", "fallback"] {
        support::rerun_in_child(name, &[(CHILD_ENV, variant)], CHILD_WATCHDOG * 3);
    }
}

/// Forks while another thread holds the task memory pool's lock: it lets go
/// only once someone waits for it (the fork, in the pool's *prepare*
/// handler) or once the fork has returned here (without the handlers: the
/// child then has the lock held for good, and hangs at its first chunk).
/// The child spawns and does I/O under each driver within the watchdog.
fn fork_held(rt: &Runtime) {
    // The pool in use (and its fork handlers registered) before the fork.
    rt.block_on(async {
        let tasks: Vec<_> = (0..200).map(|i| spawn(async move { i })).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), i);
        }
    });
    let forked = Arc::new(AtomicBool::new(false));
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = {
        let forked = forked.clone();
        std::thread::spawn(move || {
            coil::task::__hold_task_memory_lock(
                || held_tx.send(()).unwrap(),
                || forked.load(Ordering::Acquire),
            );
        })
    };
    // No spawn or free on this thread from here to the fork: it would wait
    // for the holder itself, and the fork would find the lock free.
    held_rx.recv().unwrap();
    let pid = fork_running(child_work);
    forked.store(true, Ordering::Release);
    holder.join().unwrap();
    rt.block_on(wait_child(pid));
}

/// The forking process: pending ops, fork, then the ops complete.
fn parent(rt: &Runtime) {
    rt.block_on(async {
        // The blocking pool has idle threads at the fork (they do not exist
        // in the child, whose pool must not wait for them).
        assert_eq!(spawn_blocking(|| 7).await.unwrap(), 7);

        let (a, b) = UnixStream::pair().unwrap();
        let reader = spawn(async move {
            let BufResult(r, buf) = a.read(Vec::with_capacity(64)).await;
            r.unwrap();
            buf
        });
        let start = Instant::now();
        let timer = spawn(async move {
            sleep(Duration::from_millis(30)).await;
            start.elapsed()
        });
        // Let both tasks submit: a read and a timer in flight.
        while coil::runtime::stats().unwrap().io_ops == 0 {
            coil::task::yield_now().await;
        }
        coil::task::yield_now().await;

        if std::env::var(CHILD_ENV).unwrap() == "uring" {
            assert!(
                uring_mappings() > 0,
                "no ring mapped: the child's check would prove nothing"
            );
        }
        // SAFETY: fork(2); the child below never returns into this loop and
        // leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            child();
        }
        assert!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());

        // The parent's pending ops complete after the fork.
        let BufResult(r, _) = b.write_all(&b"after fork"[..]).await;
        r.unwrap();
        assert_eq!(reader.await.unwrap(), b"after fork");
        assert!(timer.await.unwrap() >= Duration::from_millis(30));
        // And new ones work.
        echo_round_trip().await;

        wait_child(pid).await;
    });

    // Fork between two `block_on`s, with a read pending in a spawned task:
    // the child builds its runtime on this very thread (the parent's is
    // never run or dropped there: the child leaves with _exit).
    let (b, reader) = rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let reader = spawn(async move {
            let BufResult(r, buf) = a.read(Vec::with_capacity(64)).await;
            r.unwrap();
            buf
        });
        while coil::runtime::stats().unwrap().io_ops == 0 {
            coil::task::yield_now().await;
        }
        (b, reader)
    });
    let pid = fork_running(|| {
        misuse_parent_runtime(rt);
        child_work();
    });
    rt.block_on(async {
        let BufResult(r, _) = b.write_all(&b"second fork"[..]).await;
        r.unwrap();
        assert_eq!(reader.await.unwrap(), b"second fork");
        wait_child(pid).await;
    });
}

/// In the child: running the parent's runtime is refused with a panic that
/// says what to do, and dropping it leaks it. A shutdown here would cancel the
/// parent's read and deregister its socket from the epoll instance both
/// processes share; the parent's `reader` completing after this child exits
/// proves it did not.
fn misuse_parent_runtime(rt: &Runtime) {
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(async {})));
    let msg = match refused {
        Ok(()) => panic!("block_on ran the parent's runtime in a forked child"),
        Err(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default(),
    };
    assert!(msg.contains("fork() child"), "unexpected panic: {msg:?}");
    // SAFETY: this child never returns to the caller (it leaves with _exit),
    // so the bitwise copy is the only `Runtime` that is ever dropped here.
    drop(unsafe { std::ptr::read(rt) });
}

/// Waits (on the blocking pool) for the forked child to exit successfully,
/// killing it if it takes longer than `CHILD_WATCHDOG`.
async fn wait_child(pid: libc::pid_t) {
    let waited = spawn_blocking(move || {
        let mut status = 0;
        // SAFETY: waitpid on our own child; `status` is a live local.
        let rc = unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert_eq!(rc, pid);
        status
    });
    let status = match timeout(CHILD_WATCHDOG, waited).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) of our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung (killed after {CHILD_WATCHDOG:?})");
        }
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child failed (wait status {status:#x}); its panic is in the output above"
    );
}

/// The forked child. Only the forking thread exists here, in the middle of
/// the parent's `block_on`: it must not return into that loop (it would run
/// the parent's tasks on the parent's ring or epoll instance) nor drop the
/// parent's runtime. It works on a new thread and leaves with `_exit`.
fn child() -> ! {
    exit_child(std::thread::spawn(child_work).join().is_ok())
}

/// Forks; the child runs `work` on this thread and leaves with `_exit`
/// (status 0 if `work` returned, 1 if it panicked), never returning here.
/// The child's pid, in the parent.
fn fork_running(work: impl FnOnce()) -> libc::pid_t {
    // SAFETY: fork(2); the child never returns from this block.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_ok();
        exit_child(worked);
    }
    assert!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());
    pid
}

fn exit_child(worked: bool) -> ! {
    let _ = std::io::stderr().flush();
    // SAFETY: _exit(2) ends the process without running destructors or
    // atexit handlers, so nothing of the parent's runtime is touched.
    unsafe { libc::_exit(if worked { 0 } else { 1 }) }
}

/// A fresh runtime under each driver: it works, or (io_uring denied by the
/// fallback variant's seccomp filter, which the child inherits) it is a
/// clean error with the errno.
fn child_work() {
    // The parent's ring is mapped with MADV_DONTFORK: the child has no
    // mapping of it at all, so it cannot read or write the parent's queues.
    assert_eq!(uring_mappings(), 0, "the child inherited io_uring mappings");
    let denied = std::env::var(CHILD_ENV).unwrap() == "fallback";
    for choice in [DriverChoice::Uring, DriverChoice::Epoll, DriverChoice::Auto] {
        let rt = match Runtime::builder().driver(choice).build() {
            Ok(rt) => rt,
            Err(e) if denied && choice == DriverChoice::Uring => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "{e}");
                continue;
            }
            Err(e) => panic!("child: {choice:?} runtime failed: {e}"),
        };
        let want = match choice {
            DriverChoice::Epoll => DriverKind::Epoll,
            _ if denied => DriverKind::Epoll,
            _ => DriverKind::Uring,
        };
        assert_eq!(rt.driver().kind(), want, "{choice:?}");
        rt.block_on(async {
            many_tasks_at_once().await;
            echo_round_trip().await;
            let start = Instant::now();
            sleep(Duration::from_millis(5)).await;
            assert!(start.elapsed() >= Duration::from_millis(5));
            assert_eq!(spawn_blocking(|| 42).await.unwrap(), 42);
        });
    }
}

/// 20 000 tasks alive at once (spawned before any runs): their cells fill
/// a few hundred chunks, more than the forking thread's chunk cache (32,
/// inherited by the child) holds, so the child takes chunks from the page
/// pool (its lock) whatever that cache held at the fork.
async fn many_tasks_at_once() {
    let tasks: Vec<_> = (0..20_000u32)
        .map(|i| {
            spawn(async move {
                coil::task::yield_now().await;
                i
            })
        })
        .collect();
    for (i, t) in (0..).zip(tasks) {
        assert_eq!(t.await.unwrap(), i);
    }
}

/// A socketpair round trip and a TCP connection over loopback.
async fn echo_round_trip() {
    let (a, b) = UnixStream::pair().unwrap();
    let BufResult(r, _) = a.write_all(&b"ping"[..]).await;
    r.unwrap();
    let BufResult(r, got) = b.read_exact(Vec::with_capacity(4)).await;
    r.unwrap();
    assert_eq!(got, b"ping");

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let client = spawn(async move {
        let c = TcpStream::connect(addr).await.unwrap();
        let BufResult(r, _) = c.write_all(&b"hello"[..]).await;
        r.unwrap();
        c.shutdown(Shutdown::Write).await.unwrap();
    });
    let (s, _) = l.accept().await.unwrap();
    let BufResult(r, got) = s.read_exact(Vec::with_capacity(5)).await;
    r.unwrap();
    assert_eq!(got, b"hello");
    client.await.unwrap();
}

/// How many io_uring mappings (SQ/CQ rings, SQEs) this process has.
fn uring_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("[io_uring]"))
        .count()
}
