//! The runtimes compared, behind one interface: each runs the body of W1, W2
//! and W4 on a single-threaded executor it builds *before* the timed region,
//! and returns the elapsed nanoseconds of the timed region with the results.
//!
//! The task bodies are shared ([`yield_body`], [`timer_body`]) so that every
//! peer runs the same code and only the executor differs.

mod coil_rt;
mod glommio_rt;
mod monoio_rt;
mod smol_rt;
mod tokio_rt;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Elapsed ns of the timed region and what the workload produced.
pub type Timed<T> = Result<(u64, T), String>;

/// One runtime under test.
pub trait Peer {
    /// The name used on the command line, in the JSON and in the table.
    fn name(&self) -> &'static str;
    /// The yield used by W2 (`yield_impl`).
    fn yield_impl(&self) -> &'static str;
    /// W1: spawn tasks `0..n` returning `i`, keep the handles, await them in
    /// order and return the sum.
    fn spawn(&self, n: u64) -> Timed<u64>;
    /// W2: `tasks` tasks each yielding `iters` times; returns the number of
    /// yields completed (each task returns its count).
    fn yields(&self, tasks: u64, iters: u64) -> Timed<u64>;
    /// W4: task i sleeps `durs_ms[i]`; returns every task's lateness (ns, signed).
    fn timers(&self, durs_ms: &[u64]) -> Timed<Vec<i64>>;
    /// W3: the channel APIs this peer implements (`params.impl`), the
    /// default first. Empty: the peer has no W3 row.
    fn channel_impls(&self) -> &'static [&'static str] {
        &[]
    }
    /// W3: a producer task sends `0..n` through a channel of capacity `cap`
    /// (API `imp`) and drops its sender; a consumer task sums until closed.
    fn channel(&self, n: u64, cap: usize, imp: &str) -> Timed<u64> {
        let _ = (n, cap);
        Err(format!("{} has no W3 channel ({imp})", self.name()))
    }
    /// W7: the release primitives this peer implements (`params.impl`),
    /// `gate` (the shared [`Gate`](crate::memory::Gate)) first.
    fn memory_impls(&self) -> &'static [&'static str] {
        &["gate"]
    }
    /// W7: park `n` tasks on the primitive `imp` (`crate::memory::memory_body`).
    fn memory(&self, n: u64, imp: &str) -> Timed<crate::memory::Mem>;
}

/// W3 rows of the suite: `peer@impl`, in table order (coil first).
pub const CHANNEL_ROWS: [&str; 5] = [
    "coil/uring@mpsc",
    "coil/epoll@mpsc",
    "coil/uring@queue",
    "coil/epoll@queue",
    "tokio@mpsc",
];

/// Every peer, in table order (coil first: the ratios divide by it).
pub fn all() -> Vec<Box<dyn Peer>> {
    vec![
        Box::new(coil_rt::Coil::uring()),
        Box::new(coil_rt::Coil::epoll()),
        Box::new(tokio_rt::Tokio),
        Box::new(monoio_rt::Monoio::uring()),
        Box::new(monoio_rt::Monoio::legacy()),
        Box::new(glommio_rt::Glommio),
        Box::new(smol_rt::Smol),
    ]
}

/// Names accepted on the command line.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name()).collect()
}

/// Looks a peer up by name (`coil-uring` is accepted for `coil/uring`).
pub fn by_name(name: &str) -> Option<Box<dyn Peer>> {
    let name = name.replace('-', "/");
    let name = match name.as_str() {
        "coil" => "coil/uring".to_string(),
        "monoio/legacy" => "monoio-legacy".to_string(),
        _ => name,
    };
    all().into_iter().find(|p| p.name() == name)
}

/// W2's task body: yield `iters` times with `yield_fn`, return the count.
pub async fn yield_body<Y, F>(iters: u64, yield_fn: F) -> u64
where
    F: Fn() -> Y,
    Y: Future<Output = ()>,
{
    let mut done = 0;
    for _ in 0..iters {
        yield_fn().await;
        done += 1;
    }
    done
}

/// W4's task body: `s = now(); sleep(d); (now() - s) - d` in signed ns. The
/// deadline is the task's own first poll time plus `d`.
pub async fn timer_body<S, F>(d_ms: u64, sleep: F) -> i64
where
    F: FnOnce(Duration) -> S,
    S: Future,
{
    let d = Duration::from_millis(d_ms);
    let s = Instant::now();
    sleep(d).await;
    s.elapsed().as_nanos() as i64 - d.as_nanos() as i64
}

/// Nanoseconds since `start`.
pub fn ns_since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// The generic yield of the spec for runtimes without one: wake self, return
/// `Pending` once.
pub fn generic_yield() -> GenericYield {
    GenericYield { yielded: false }
}

#[derive(Debug)]
pub struct GenericYield {
    yielded: bool,
}

impl Future for GenericYield {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
