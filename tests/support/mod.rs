//! Test helpers: `driver_test!`, watchdogs, counting wakers and futures.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use coil::Runtime;
use coil::runtime::{DriverChoice, DriverKind};

/// How long any single test body may run before it is declared hung.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `body` on a fresh thread with a runtime using `choice`; fails the
/// test (instead of hanging) if the body does not finish within `WATCHDOG`.
pub fn with_runtime(choice: DriverChoice, expect: DriverKind, body: fn(&Runtime)) {
    run_watched(move || {
        let rt = Runtime::builder()
            .driver(choice)
            .build()
            .unwrap_or_else(|e| panic!("could not build a {choice:?} runtime: {e}"));
        assert_eq!(rt.driver().kind(), expect);
        body(&rt);
    });
}

/// Like `with_runtime`, but io_uring is forbidden on the thread first (a
/// seccomp filter returning `errno` for io_uring_setup), and `auto` selection
/// must fall back to epoll and say why.
pub fn with_fallback_runtime(errno: i32, body: fn(&Runtime)) {
    run_watched(move || {
        coil_arch::testing::deny_io_uring(errno, &[libc::SYS_io_uring_setup])
            .expect("installing the seccomp filter");
        let rt = Runtime::builder()
            .driver(DriverChoice::Auto)
            .build()
            .expect("auto must fall back to epoll");
        assert_eq!(rt.driver().kind(), DriverKind::Epoll);
        let reason = rt.driver().fallback_reason().expect("a recorded reason");
        assert_eq!(reason.errno(), Some(errno), "{reason}");
        body(&rt);
    });
}

/// The choice that builds another runtime like `rt`, for a `driver_test!`
/// body that needs a second runtime (or `coil::run`'s build-run-drop) on
/// the same driver: the forced kind, or `Auto` for the fallback variant
/// (io_uring is still denied on the test thread and on the threads it
/// spawns, so `Auto` falls back again). Never the default choice, which
/// reads `COIL_DRIVER`: under `COIL_DRIVER=uring` it would fail on the
/// fallback variant's thread, and under `COIL_DRIVER=epoll` the `uring`
/// variant would silently test epoll.
pub fn choice_like(rt: &Runtime) -> DriverChoice {
    if rt.driver().fallback_reason().is_some() {
        return DriverChoice::Auto;
    }
    match rt.driver().kind() {
        DriverKind::Uring => DriverChoice::Uring,
        DriverKind::Epoll => DriverChoice::Epoll,
        other => panic!("no runtime like a {other} one outside coil::sim"),
    }
}

/// A fresh runtime built with `choice` (from [`choice_like`]).
pub fn runtime_with(choice: DriverChoice) -> Runtime {
    Runtime::builder()
        .driver(choice)
        .build()
        .unwrap_or_else(|e| panic!("could not build a {choice:?} runtime: {e}"))
}

/// `coil::run` on a fresh runtime with `rt`'s driver (see [`choice_like`]):
/// build, `block_on`, then drop the runtime, which cancels what is left.
pub fn run_like<F: std::future::Future>(rt: &Runtime, future: F) -> F::Output {
    runtime_with(choice_like(rt)).block_on(future)
}

/// Entries of `/proc/self/fd`: the process's open fds (process-wide: only in
/// a test binary whose tests do not run beside others).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Runs `f` on its own thread and fails if it takes longer than `WATCHDOG`.
pub fn run_watched<F: FnOnce() + Send + 'static>(f: F) {
    let (tx, rx) = std::sync::mpsc::channel();
    let th = std::thread::Builder::new()
        .name("coil-test".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .unwrap();
    match rx.recv_timeout(WATCHDOG) {
        Ok(Ok(())) => th.join().unwrap(),
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("test body did not finish within {WATCHDOG:?}: hung"),
    }
}

/// Declares a test that runs once per driver: io_uring, epoll, and epoll
/// chosen by `auto` because io_uring is denied on the test thread (ENOSYS or
/// EPERM, depending on the test's name, so both errnos are exercised).
///
/// ```ignore
/// driver_test! {
///     fn spawn_works(rt) {
///         assert_eq!(rt.block_on(async { 1 }), 1);
///     }
/// }
/// ```
#[macro_export]
macro_rules! driver_test {
    ($(#[$m:meta])* fn $name:ident($rt:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(#[$m])*
            fn body($rt: &coil::Runtime) $body
            #[test]
            #[cfg_attr(miri, ignore = "Miri cannot run io_uring")]
            fn uring() {
                $crate::support::with_runtime(
                    coil::runtime::DriverChoice::Uring,
                    coil::runtime::DriverKind::Uring,
                    body,
                );
            }
            #[test]
            fn epoll() {
                $crate::support::with_runtime(
                    coil::runtime::DriverChoice::Epoll,
                    coil::runtime::DriverKind::Epoll,
                    body,
                );
            }
            #[test]
            #[cfg_attr(miri, ignore = "Miri cannot install seccomp filters")]
            fn epoll_fallback() {
                // Half the tests see ENOSYS (an old kernel), half EPERM
                // (io_uring_disabled=2, container seccomp profiles).
                let errno = if stringify!($name).len() % 2 == 0 { libc::ENOSYS } else { libc::EPERM };
                $crate::support::with_fallback_runtime(errno, body);
            }
        }
    };
    ($($(#[$m:meta])* fn $name:ident($rt:ident) $body:block)+) => {
        $($crate::driver_test! { $(#[$m])* fn $name($rt) $body })+
    };
}

/// A waker that counts its wakes.
#[derive(Default)]
pub struct CountingWaker {
    pub wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn counting_waker() -> (Waker, Arc<CountingWaker>) {
    let c = Arc::new(CountingWaker::default());
    (Waker::from(c.clone()), c)
}

/// A future polled by hand with its own counting waker, to see exactly
/// when it is woken; `cancel` drops it.
pub struct Probe<F: Future> {
    fut: Option<Pin<Box<F>>>,
    waker: Waker,
    count: Arc<CountingWaker>,
}

impl<F: Future> Probe<F> {
    pub fn new(f: F) -> Self {
        let (waker, count) = counting_waker();
        Probe {
            fut: Some(Box::pin(f)),
            waker,
            count,
        }
    }

    pub fn poll(&mut self) -> Poll<F::Output> {
        let fut = self.fut.as_mut().expect("polled after drop");
        let r = fut.as_mut().poll(&mut Context::from_waker(&self.waker));
        if r.is_ready() {
            self.fut = None;
        }
        r
    }

    /// Polls once with the task's cooperative budget spent (must be called
    /// inside `block_on`): a leaf that checks the budget answers `Pending`.
    /// The poll's budget wake is not counted.
    pub async fn poll_with_budget_spent(&mut self) -> Poll<F::Output> {
        let r = std::future::poll_fn(|cx| {
            let mut spent = 0;
            while Pin::new(&mut coil::task::consume_budget())
                .poll(cx)
                .is_ready()
            {
                spent += 1;
                assert!(spent <= 10_000, "the budget never ran out");
            }
            let before = self.wakes();
            let r = self.poll();
            self.count.wakes.store(before, Ordering::SeqCst);
            Poll::Ready(r)
        })
        .await;
        // Start the next step with a full budget.
        coil::task::yield_now().await;
        r
    }

    pub fn wakes(&self) -> usize {
        self.count.wakes.load(Ordering::SeqCst)
    }

    /// Whether the future is still there (neither finished nor dropped).
    pub fn is_live(&self) -> bool {
        self.fut.is_some()
    }

    /// Drops the future (cancels the waiter).
    pub fn cancel(&mut self) {
        assert!(self.fut.take().is_some(), "already gone");
    }
}

/// Where [`drop_one_waiter`] drops its victim: before its first poll,
/// while it waits in the queue, or after `end` woke it, before it ran.
pub const DROP_POINTS: [&str; 3] = ["before its first poll", "while queued", "woken, not run"];

/// The cancel-safety protocol for waiters: `waiters[victim]` is dropped at
/// `DROP_POINTS[point]`, the others are polled (they must wait), then `end`
/// ends the wait (a send, a release, an abort); at point 2 the victim must
/// have been woken by it. The caller then checks that the others get what
/// `end` owes them and that nothing is lost.
pub fn drop_one_waiter<F: Future>(
    waiters: &mut [Probe<F>],
    victim: usize,
    point: usize,
    end: impl FnOnce(),
) {
    let case = DROP_POINTS[point];
    if point == 0 {
        waiters[victim].cancel();
    }
    for p in waiters.iter_mut().filter(|p| p.is_live()) {
        assert!(p.poll().is_pending(), "{case}: a waiter did not wait");
    }
    if point == 1 {
        waiters[victim].cancel();
    }
    end();
    if point == 2 {
        assert_eq!(
            waiters[victim].wakes(),
            1,
            "{case}: the victim was not woken"
        );
        waiters[victim].cancel();
    }
}

/// Increments a counter when dropped: proves a future was dropped.
pub struct DropCounter(pub Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A panic payload message.
pub fn panic_msg(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".into()
    }
}

/// Catch a panic from `f` and return its message.
pub fn panic_message_of<R>(f: impl FnOnce() -> R) -> String {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(p) => panic_msg(&*p),
    }
}

/// `n`, or a hundredth of it (at least 10) under Miri, which interprets
/// every instruction: loop counts in stress-style tests go through this.
pub fn scaled(n: usize) -> usize {
    if cfg!(miri) { (n / 100).max(10) } else { n }
}

/// Runs test `name` of this test binary again, alone, in a child process
/// with `env` set (the test checks the variable to know it is the child).
/// Fails with the child's output if it fails; kills it (SIGKILL) and fails
/// if it runs longer than `limit`.
pub fn rerun_in_child(name: &str, env: &[(&str, &str)], limit: Duration) {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let (out, hung) = match rx.recv_timeout(limit) {
        Ok(out) => (out.unwrap(), false),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child, not yet reaped (the
            // waiting thread reaps it after this).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (rx.recv().unwrap().unwrap(), true)
        }
    };
    let log = format!(
        "{env:?}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!hung, "child process hung (killed after {limit:?}) {log}");
    assert!(out.status.success(), "child process failed {log}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child did not run test {name:?} {log}"
    );
}

/// CPU time (user + system) this process has used so far: for checks that
/// a loop waiting on a failing operation sleeps instead of spinning.
pub fn cpu_time() -> Duration {
    // SAFETY: `ru` is a live local; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs test `name` again, alone, in a child process under each kernel
/// driver in turn (`COIL_DRIVER=uring`, then `epoll`), with `env` set to `1`
/// (the test checks it to know it is the child); see [`rerun_in_child`].
/// For tests that change process-wide state, such as the fd limit.
pub fn rerun_per_driver(name: &str, env: &str) {
    for driver in ["uring", "epoll"] {
        rerun_in_child(name, &[(env, "1"), ("COIL_DRIVER", driver)], WATCHDOG);
    }
}

/// Connects `n` plain std clients to `addr` (from a helper thread: the
/// caller may be a loop), then lowers the soft `RLIMIT_NOFILE` to 64 and
/// opens `/dev/null` until the fd table is full. Returns the clients (reads
/// on them give up after [`WATCHDOG`]) and the filler files (drop the files
/// to free fds). For EMFILE tests, in a child process: the limit is
/// process-wide.
pub fn connect_then_fill_fd_table(
    addr: std::net::SocketAddr,
    n: usize,
) -> (Vec<std::net::TcpStream>, Vec<std::fs::File>) {
    // The clients count against the same limit: open them first.
    let clients = std::thread::spawn(move || {
        (0..n)
            .map(|_| {
                let s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(WATCHDOG)).unwrap();
                s
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the live local `lim`.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) };
    lim.rlim_cur = 64;
    // SAFETY: `lim` is a live local; lowering the soft limit needs no privilege.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) };
    assert_eq!(rc, 0);
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    (clients, filler)
}

/// A connected TCP pair over 127.0.0.1 through `l`: (client, accepted).
pub async fn tcp_pair_on(
    l: &coil::net::TcpListener,
) -> (coil::net::TcpStream, coil::net::TcpStream) {
    let addr = l.local_addr().unwrap();
    let c = coil::spawn(coil::net::TcpStream::connect(addr));
    let (s, _) = l.accept().await.unwrap();
    (c.await.unwrap().unwrap(), s)
}

/// A connected TCP pair over 127.0.0.1 on a fresh listener: (client, accepted).
pub async fn tcp_pair() -> (coil::net::TcpStream, coil::net::TcpStream) {
    let l = coil::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp_pair_on(&l).await
}

/// Yields to the loop until `done()` holds or `limit` rounds have passed;
/// returns `done()`'s last answer.
pub async fn yield_until(mut done: impl FnMut() -> bool, limit: usize) -> bool {
    for _ in 0..limit {
        if done() {
            return true;
        }
        coil::task::yield_now().await;
    }
    done()
}

/// Polls `future` once in the current task and drops it if it is pending:
/// an operation started and cancelled at once. (A zero timeout does not
/// start its future at all, as `asyncio.wait_for(coro, 0)`.)
pub async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Spawns a task that sets the returned flag when it runs: a test drives a
/// busy loop and checks, through the flag, that the other task got a turn.
/// Call inside a runtime.
pub fn spawn_flag_setter() -> (std::rc::Rc<std::cell::Cell<bool>>, coil::Task<()>) {
    let flag = std::rc::Rc::new(std::cell::Cell::new(false));
    let f = flag.clone();
    (flag, coil::spawn(async move { f.set(true) }))
}

/// A directory of its own under the system's temp dir, removed with its
/// contents when dropped: `coil-<tag>-<pid>-<n>`, so parallel tests and
/// parallel test binaries never share one.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("coil-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// The directory itself.
    pub fn dir(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sets its flag when dropped: shows that a task or future holding one has
/// stopped (dropped, cancelled or finished).
pub struct SetOnDrop(std::rc::Rc<std::cell::Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A flag and the guard that sets it when dropped.
pub fn flag() -> (std::rc::Rc<std::cell::Cell<bool>>, SetOnDrop) {
    let f = std::rc::Rc::new(std::cell::Cell::new(false));
    (f.clone(), SetOnDrop(f))
}
