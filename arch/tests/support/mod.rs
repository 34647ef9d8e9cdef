//! Helpers shared by the coil-arch integration tests.
#![allow(dead_code, unreachable_pub, reason = "each test file uses a subset")]

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use coil_arch::{Config, Driver, DriverChoice, DriverKind, Unparker};

/// How long any test waits for something that should happen promptly before it fails.
pub const WATCHDOG: Duration = Duration::from_secs(10);

/// The environment variable that selects a child body when a test re-executes its own
/// binary (see [`run_child`]).
pub const CHILD_ENV: &str = "COIL_CHILD";

/// Runs the body once per backend: `driver_test! { fn name(kind) { ... } }` gives the
/// tests `name::uring`, `name::uring_single_issuer` and `name::epoll`; `kind` is a
/// [`Flavor`].
#[macro_export]
macro_rules! driver_test {
    ($(#[$meta:meta])* fn $name:ident($kind:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            fn body($kind: $crate::support::Flavor) $body

            #[test]
            fn uring() {
                body($crate::support::Flavor::from(coil_arch::DriverKind::Uring))
            }

            /// io_uring with `Config::uring_single_issuer` (`DEFER_TASKRUN`), as coil's
            /// runtime builds it.
            #[test]
            fn uring_single_issuer() {
                body($crate::support::Flavor {
                    kind: coil_arch::DriverKind::Uring,
                    single_issuer: true,
                })
            }

            #[test]
            fn epoll() {
                body($crate::support::Flavor::from(coil_arch::DriverKind::Epoll))
            }
        }
    };
}

/// A backend plus the config it is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// The backend.
    pub kind: DriverKind,
    /// `Config::uring_single_issuer`: the driver must stay on the thread that built it.
    pub single_issuer: bool,
}

impl From<DriverKind> for Flavor {
    fn from(kind: DriverKind) -> Flavor {
        Flavor {
            kind,
            single_issuer: false,
        }
    }
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if self.single_issuer {
            f.write_str(" (single issuer)")?;
        }
        Ok(())
    }
}

/// The forced choice for `kind`.
pub fn choice(kind: DriverKind) -> DriverChoice {
    match kind {
        DriverKind::Uring => DriverChoice::Uring,
        DriverKind::Epoll => DriverChoice::Epoll,
        DriverKind::Sim => unreachable!("the simulator is not a DriverChoice"),
    }
}

/// A driver of `flavor`; panics with the error otherwise.
pub fn driver(flavor: impl Into<Flavor>) -> Driver {
    let flavor = flavor.into();
    let config = Config {
        uring_single_issuer: flavor.single_issuer,
        ..Config::default()
    };
    let driver = Driver::new(choice(flavor.kind), &config)
        .unwrap_or_else(|e| panic!("Driver::new({flavor}) failed: {e}"));
    assert_eq!(driver.kind(), flavor.kind);
    driver
}

/// Builds a driver of `flavor` on a new thread (where a single-issuer driver must then
/// stay) and runs `f` with it there. Returns its unparker, the thread's tid (for
/// [`wait_until_parked`]) and the thread's handle.
pub fn spawn_parker<T, F>(flavor: Flavor, f: F) -> (Unparker, libc::pid_t, thread::JoinHandle<T>)
where
    T: Send + 'static,
    F: FnOnce(Driver) -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let driver = driver(flavor);
        tx.send((driver.unparker(), gettid())).unwrap();
        f(driver)
    });
    let (unparker, tid) = rx
        .recv()
        .expect("the parker thread failed to build its driver");
    (unparker, tid, handle)
}

/// Runs `f` on a new thread and returns its result, or panics if it takes longer than
/// `limit` (the thread is left behind; the test fails instead of hanging).
pub fn with_watchdog<T, F>(limit: Duration, what: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => {
            handle
                .join()
                .expect("the watched thread panicked after finishing");
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the watched thread ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: {what} did not finish within {limit:?} (a lost wakeup?)")
        }
    }
}

/// The calling thread's kernel id.
pub fn gettid() -> libc::pid_t {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// System calls a parked driver blocks in.
fn is_park_syscall(nr: i64, kind: DriverKind) -> bool {
    match kind {
        DriverKind::Uring => nr == libc::SYS_io_uring_enter,
        DriverKind::Epoll => {
            #[cfg(target_arch = "x86_64")]
            if nr == libc::SYS_epoll_wait {
                return true;
            }
            nr == libc::SYS_epoll_pwait || nr == libc::SYS_epoll_pwait2
        }
        DriverKind::Sim => false,
    }
}

/// Waits (without sleeping: it polls `/proc`) until thread `tid` is blocked inside the
/// system call that a parked `kind` driver waits in. Panics after [`WATCHDOG`].
pub fn wait_until_parked(tid: libc::pid_t, kind: impl Into<Flavor>) {
    let kind = kind.into().kind;
    let path = format!("/proc/self/task/{tid}/syscall");
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let nr = text
            .split_whitespace()
            .next()
            .and_then(|t| t.parse::<i64>().ok());
        if nr.is_some_and(|nr| is_park_syscall(nr, kind)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "thread {tid} never blocked in the {kind} wait (last: {text:?})"
        );
        thread::yield_now();
    }
}

/// The number of `write`-family system calls the calling thread has made, from
/// `/proc/thread-self/io`; `None` where the kernel does not account it.
pub fn thread_write_syscalls() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Re-executes the current test binary to run only `test_name`, with
/// `COIL_CHILD=<child>` and the extra `env`; panics (showing the child's output) unless
/// it succeeds. The test checks `std::env::var(CHILD_ENV)` to run its child body.
pub fn run_child(test_name: &str, child: &str, env: &[(&str, Option<&str>)]) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, child);
    for &(key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child_proc = cmd.spawn().expect("spawning the child test process");
    let pid = child_proc.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child_proc.wait_with_output());
    });
    let out = match rx.recv_timeout(WATCHDOG) {
        Ok(out) => out.expect("waiting for the child test process"),
        Err(_) => {
            // SAFETY: kill takes integers only; `pid` is our unreaped child, so the id
            // cannot have been reused.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("watchdog: child {child:?} of {test_name} did not finish within {WATCHDOG:?}");
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {child:?} of {test_name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // A filter that matched nothing also "succeeds": make sure the test really ran.
    assert!(
        stdout.contains("1 passed"),
        "child {child:?} did not run {test_name}:\n{stdout}"
    );
}

/// A pipe `(read end, write end)`, close-on-exec, both ends non-blocking
/// if asked.
pub fn pipe(nonblocking: bool) -> (std::os::fd::RawFd, std::os::fd::RawFd) {
    let mut fds = [0; 2];
    let flags = libc::O_CLOEXEC | if nonblocking { libc::O_NONBLOCK } else { 0 };
    // SAFETY: fds is a live 2-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) }, 0);
    (fds[0], fds[1])
}

/// Closes a test-owned fd (once).
pub fn close(fd: std::os::fd::RawFd) {
    // SAFETY: the caller owns `fd` and closes it once.
    unsafe { libc::close(fd) };
}
