//! W8 multi-core (`multicore`, WORKLOADS.md): W8a sharded tasks and W8b the
//! cross-loop round trip, for coil's `Pool` (io_uring and epoll) beside the
//! peers and references of `multicore_peers.rs` (monoio and glommio for
//! W8a; tokio, glommio, std's `sync_channel` and a spinning atomic for W8b).
//!
//! * `coil-benches multicore` runs every row `reps` times (default 3, 1 with
//!   `--quick`), each run in a child process of its own killed after
//!   `timeout_s` (default 600), and prints the medians, W8a's scaling and the
//!   goal lines. The loops pin themselves (loop i on the i-th allowed CPU), so
//!   the child is not pinned as a whole.
//! * `coil-benches multicore peer=<row> part=<w8a|w8b>
//!   [loops=1|2] [n=...]` runs once and prints one JSON line.
//!
//! W8c (the echo server as a pool of one loop) is in `echo.rs`, as the W5
//! servers `coil-pool/uring` and `coil-pool/epoll`.

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use coil::pool::{CoreId, Pool};
use coil::runtime::DriverChoice;

use crate::opts::Opts;
use crate::peers::ns_since;
use crate::report::{Json, Outcome, median};
use crate::splitmix::SplitMix64;

#[path = "multicore_peers.rs"]
mod peers;

/// glommio's spin-before-park in its `glommio/spin` W8b row (WORKLOADS.md's
/// figure was taken with 100 µs).
const GLOMMIO_SPIN: Duration = Duration::from_micros(100);

/// W8b's fastest batch: the ns per round trip of the quickest
/// [`Batches::SIZE`] consecutive round trips of the last W8b run (0: the row
/// does not record it). On a loaded machine the mean is mostly the time the
/// two threads were not both on a CPU; the fastest batch is the path itself.
static BEST_BATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Times W8b's round trips in batches, keeping the fastest ([`BEST_BATCH`]).
pub(crate) struct Batches {
    start: Instant,
    best: u64,
}

impl Batches {
    /// Round trips per batch.
    const SIZE: u64 = 1000;

    pub(crate) fn new() -> Batches {
        BEST_BATCH.store(0, std::sync::atomic::Ordering::Relaxed);
        Batches {
            start: Instant::now(),
            best: u64::MAX,
        }
    }

    /// Call after round trip `i` (counted from 0).
    #[inline]
    pub(crate) fn done(&mut self, i: u64) {
        if (i + 1).is_multiple_of(Self::SIZE) {
            self.best = self.best.min(ns_since(self.start));
            self.start = Instant::now();
        }
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        if self.best != u64::MAX {
            let per = self.best / Self::SIZE;
            BEST_BATCH.store(per, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// W8a's task: 64 SplitMix64 steps seeded with `j`, each through a barrier
/// so that LLVM cannot fold them.
fn task_work(j: u64) -> u64 {
    let mut g = SplitMix64::new(j);
    let mut out = 0;
    for _ in 0..64 {
        out = std::hint::black_box(g.next());
    }
    out
}

/// XOR of every task's output, computed on one thread.
fn reference(n: u64) -> u64 {
    (0..n).fold(0, |acc, j| acc ^ task_work(j))
}

/// The coil row's driver and spin budget: `coil/uring`, `coil/epoll`, and
/// the same with `+spin` (the loops spin [`COIL_SPIN`] before parking).
fn coil_choice(peer: &str) -> Option<(DriverChoice, Duration)> {
    let (driver, spin) = match peer.strip_suffix("+spin") {
        Some(d) => (d, COIL_SPIN),
        None => (peer, Duration::ZERO),
    };
    match driver {
        "coil/uring" | "coil-uring" => Some((DriverChoice::Uring, spin)),
        "coil/epoll" | "coil-epoll" => Some((DriverChoice::Epoll, spin)),
        _ => None,
    }
}

/// The spin-before-park budget of the `+spin` coil rows.
const COIL_SPIN: Duration = Duration::from_micros(100);

fn pool((choice, spin): (DriverChoice, Duration), loops: usize) -> Result<Pool, String> {
    Pool::builder()
        .loops(loops)
        .pin_cpus(true)
        .driver(choice)
        .spin_before_park(spin)
        .build()
        .map_err(|e| format!("pool: {e}"))
}

/// W8a on coil: every loop spawns its share of the N tasks locally and joins
/// them. Returns (elapsed ns, XOR of the outputs).
fn w8a_coil(choice: (DriverChoice, Duration), loops: usize, n: u64) -> Result<(u64, u64), String> {
    let pool = pool(choice, loops)?;
    let start = Instant::now();
    let parts = pool
        .run(move |core| async move {
            let (first, last) = peers::share(core.index(), loops, n);
            let tasks: Vec<_> = (first..last)
                .map(|j| coil::spawn(async move { task_work(j) }))
                .collect();
            let mut x = 0;
            for t in tasks {
                x ^= t.await.map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(x)
        })
        .map_err(|e| e.to_string())?;
    let ns = ns_since(start);
    Ok((ns, parts.into_iter().fold(0, |a, b| a ^ b)))
}

/// W8a on plain coil runtimes, one per pinned thread (`coil-rt/uring`,
/// `coil-rt/epoll`), as the monoio row builds its own: what a `Pool`'s loop
/// adds over a `Runtime::block_on` (its entry is a task spawned through the
/// remote queue, the loop's main future waits for shutdown).
fn w8a_coil_rt(choice: DriverChoice, loops: usize, n: u64) -> Result<(u64, u64), String> {
    peers::per_cpu(loops, move |i, barrier| {
        let rt = coil::runtime::Builder::new()
            .driver(choice)
            .build()
            .map_err(|e| format!("coil runtime: {e}"))?;
        barrier.wait();
        let (first, last) = peers::share(i, loops, n);
        rt.block_on(async move {
            let tasks: Vec<_> = (first..last)
                .map(|j| coil::spawn(async move { task_work(j) }))
                .collect();
            let mut x = 0;
            for t in tasks {
                x ^= t.await.map_err(|e| e.to_string())?;
            }
            Ok(x)
        })
    })
}

/// W8b on coil: a u64 from loop 0 to loop 1 and back, `n` times, through two
/// `coil::sync::mpsc` channels of capacity 1. Returns (ns on loop 0, sum).
fn w8b_coil(choice: (DriverChoice, Duration), n: u64) -> Result<(u64, u64), String> {
    use coil::sync::mpsc;
    let pool = pool(choice, 2)?;
    let (there_tx, there_rx) = mpsc::channel::<u64>(1);
    let (back_tx, back_rx) = mpsc::channel::<u64>(1);
    let ends = Mutex::new((Some((there_tx, back_rx)), Some((there_rx, back_tx))));
    let out = pool
        .run(move |core| {
            let mut ends = ends.lock().unwrap();
            let a = if core == CoreId::new(0) {
                ends.0.take()
            } else {
                None
            };
            let b = if core == CoreId::new(1) {
                ends.1.take()
            } else {
                None
            };
            async move {
                if let Some((tx, mut rx)) = a {
                    let start = Instant::now();
                    let mut batches = Batches::new();
                    let mut sum = 0;
                    for i in 0..n {
                        tx.send(i).await.map_err(|_| "loop 1 is gone")?;
                        sum += rx.recv().await.ok_or("loop 1 is gone")?;
                        batches.done(i);
                    }
                    return Ok((ns_since(start), sum));
                }
                if let Some((mut rx, tx)) = b {
                    while let Some(v) = rx.recv().await {
                        tx.send(v).await.map_err(|_| "loop 0 is gone")?;
                    }
                }
                Ok::<_, &'static str>((0, 0))
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(out[0])
}

/// Pins the calling thread to one CPU, or says it could not.
fn pin_thread(cpu: usize) {
    if !crate::harness::pin_thread(cpu) {
        eprintln!("coil-benches: could not pin to CPU {cpu}; running unpinned");
    }
}

/// W8b on tokio: two current_thread runtimes on threads pinned to CPUs 0
/// and 1, two `tokio::sync::mpsc` channels of capacity 1.
fn w8b_tokio(n: u64) -> Result<(u64, u64), String> {
    use tokio::sync::mpsc;
    let (there_tx, mut there_rx) = mpsc::channel::<u64>(1);
    let (back_tx, mut back_rx) = mpsc::channel::<u64>(1);
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| e.to_string())
    };
    let (a_rt, b_rt) = (rt()?, rt()?);
    peers::two_threads(
        move || {
            a_rt.block_on(async move {
                let start = Instant::now();
                let mut sum = 0;
                for i in 0..n {
                    there_tx.send(i).await.map_err(|_| "B is gone")?;
                    sum += back_rx.recv().await.ok_or("B is gone")?;
                }
                Ok((ns_since(start), sum))
            })
        },
        move || {
            b_rt.block_on(async move {
                while let Some(v) = there_rx.recv().await {
                    if back_tx.send(v).await.is_err() {
                        return;
                    }
                }
            });
        },
    )
}

/// W8a's rows, one per runtime (each at L = 1 and 2); `coil-rt/uring` is
/// coil without the pool (a runtime per pinned thread).
const W8A_PEERS: [&str; 5] = [
    "coil/uring",
    "coil/epoll",
    "coil-rt/uring",
    "monoio",
    "glommio",
];

/// W8b's rows: coil, the peers, then the two references.
const W8B_PEERS: [&str; 9] = [
    "coil/uring",
    "coil/epoll",
    "coil/uring+spin",
    "coil/epoll+spin",
    "tokio",
    "glommio",
    "glommio/spin",
    "std/sync_channel",
    "std/spin",
];

/// One run of one row: its JSON line.
fn single(peer: &str, opts: &Opts) -> Outcome {
    match run_once(peer, opts) {
        Ok(o) => o,
        Err(e) => Outcome::error(peer, "multicore", &e),
    }
}

fn run_once(peer: &str, opts: &Opts) -> Result<Outcome, String> {
    let part = opts.keys.get("part").map_or("w8b", String::as_str);
    let mut o = Outcome::error(peer, "multicore", "");
    o.error = None;
    o.params.push(("part".into(), Json::Str(part.into())));
    match part {
        "w8a" => {
            let loops = opts.get_u64("loops", 2)?.clamp(1, 2) as usize;
            let n = opts.get_u64("n", opts.shrink(2_000_000))?.max(loops as u64);
            let (ns, x) = match (coil_choice(peer), peer) {
                (Some(choice), _) => w8a_coil(choice, loops, n)?,
                (None, "coil-rt/uring") => w8a_coil_rt(DriverChoice::Uring, loops, n)?,
                (None, "coil-rt/epoll") => w8a_coil_rt(DriverChoice::Epoll, loops, n)?,
                (None, "monoio") => peers::w8a_monoio(loops, n)?,
                (None, "glommio") => peers::w8a_glommio(loops, n)?,
                _ => return Err(format!("unknown peer {peer:?} for W8a")),
            };
            o.params.push(("loops".into(), Json::Int(loops as i64)));
            o.params.push(("n".into(), Json::Int(n as i64)));
            o.metric = "tasks_per_s".into();
            o.unit = "tasks/s".into();
            o.value = Some(n as f64 / (ns as f64 / 1e9));
            o.ok = x == reference(n);
            o.elapsed_ms = ns as f64 / 1e6;
        }
        "w8b" => {
            let n = opts.get_u64("n", opts.shrink(1_000_000))?.max(1);
            // Only coil's rows record a best batch: a row of another peer
            // must not report the figure the row before it left.
            BEST_BATCH.store(0, std::sync::atomic::Ordering::Relaxed);
            let (ns, sum) = match (coil_choice(peer), peer) {
                (Some(choice), _) => w8b_coil(choice, n)?,
                (None, "tokio") => w8b_tokio(n)?,
                (None, "glommio") => peers::w8b_glommio(n, Duration::ZERO)?,
                (None, "glommio/spin") => peers::w8b_glommio(n, GLOMMIO_SPIN)?,
                (None, "std/sync_channel") => peers::w8b_std(n)?,
                (None, "std/spin") => peers::w8b_spin(n)?,
                _ => return Err(format!("unknown peer {peer:?} for W8b")),
            };
            o.params.push(("n".into(), Json::Int(n as i64)));
            let best = BEST_BATCH.load(std::sync::atomic::Ordering::Relaxed);
            if best > 0 {
                o.params
                    .push(("best_batch_ns".into(), Json::Int(best as i64)));
            }
            o.metric = "ns_per_round_trip".into();
            o.unit = "ns".into();
            o.value = Some(ns as f64 / n as f64);
            o.ok = u128::from(sum) == u128::from(n) * u128::from(n - 1) / 2;
            o.elapsed_ms = ns as f64 / 1e6;
        }
        other => return Err(format!("unknown part {other:?} (w8a, w8b)")),
    }
    Ok(o)
}

/// `coil-benches multicore ...`: one row, or every row with medians.
pub fn main(opts: &Opts) -> ExitCode {
    if let Some(peer) = opts.peer() {
        return single(peer, opts).emit();
    }
    let reps = match opts.reps() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coil-benches: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rows: Vec<(&str, &str, &str)> = Vec::new();
    for peer in W8A_PEERS {
        rows.push((peer, "w8a", "1"));
        rows.push((peer, "w8a", "2"));
    }
    rows.extend(W8B_PEERS.iter().map(|peer| (*peer, "w8b", "2")));
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut all_ok = true;
    // Each row in a child process of its own, killed after `timeout_s`: a
    // peer that loses a wake-up (glommio's spinning W8b row hung for good
    // once on this machine) costs its row, not the rest of the suite.
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("coil-benches: current_exe: {e}");
            return ExitCode::from(2);
        }
    };
    let timeout = match opts.get_u64("timeout_s", 600) {
        Ok(t) => Duration::from_secs(t),
        Err(e) => {
            eprintln!("coil-benches: {e}");
            return ExitCode::from(2);
        }
    };
    // Interleaved repetitions, as in the other suites.
    for _ in 0..reps {
        for (i, (peer, part, loops)) in rows.iter().enumerate() {
            let mut o = opts.clone();
            o.keys.insert("part".into(), (*part).into());
            o.keys.insert("loops".into(), (*loops).into());
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(o.child_args("multicore", peer));
            let line = crate::harness::wait_child(cmd, peer, "multicore", timeout).line;
            eprintln!("{line}");
            all_ok &= crate::report::field(&line, "ok") == Some("true");
            values[i].extend(crate::report::field_f64(&line, "value"));
        }
    }
    let med = |peer: &str, part: &str, loops: &str| {
        let i = rows.iter().position(|r| *r == (peer, part, loops));
        match i.map(|i| &values[i]) {
            Some(v) if !v.is_empty() => median(v),
            _ => f64::NAN,
        }
    };
    println!("W8 multicore, median of {reps} (loops pinned one per CPU)");
    println!("  W8a tasks/s        L=1            L=2   scaling  L=2 / monoio's");
    let monoio2 = med("monoio", "w8a", "2");
    for peer in W8A_PEERS {
        let (l1, l2) = (med(peer, "w8a", "1"), med(peer, "w8a", "2"));
        println!(
            "  {peer:<12} {l1:>12.0} {l2:>14.0}   {:>6.2}   {:>6.2}",
            l2 / l1,
            l2 / monoio2
        );
    }
    println!("  W8a goals: scaling >= 1.9, L=2 rate >= 1.2 x monoio's");
    println!("  W8b ns/round trip            ns   / std sync_channel   / std spin");
    let (std_chan, std_spin) = (
        med("std/sync_channel", "w8b", "2"),
        med("std/spin", "w8b", "2"),
    );
    for peer in W8B_PEERS {
        let v = med(peer, "w8b", "2");
        println!(
            "  {peer:<22} {v:>10.1}   {:>16.3}   {:>8.2}",
            v / std_chan,
            v / std_spin
        );
    }
    println!("  W8b goals: <= 4000 ns with loops that sleep when idle, <= 250 ns with spin");
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w8a_and_w8b_check_their_results() {
        for driver in [DriverChoice::Uring, DriverChoice::Epoll] {
            let choice = (driver, Duration::ZERO);
            for loops in [1, 2] {
                let (_, x) = w8a_coil(choice, loops, 1_001).unwrap();
                assert_eq!(x, reference(1_001), "{choice:?} loops={loops}");
                let (_, x) = w8a_coil_rt(driver, loops, 1_001).unwrap();
                assert_eq!(x, reference(1_001), "plain {driver:?} loops={loops}");
            }
            for spin in [Duration::ZERO, COIL_SPIN] {
                let (_, sum) = w8b_coil((driver, spin), 100).unwrap();
                assert_eq!(sum, 99 * 100 / 2, "{driver:?} spin {spin:?}");
            }
        }
        assert_eq!(w8b_tokio(100).unwrap().1, 99 * 100 / 2);
    }

    #[test]
    fn the_peer_rows_check_their_results() {
        for loops in [1, 2] {
            assert_eq!(peers::w8a_monoio(loops, 1_001).unwrap().1, reference(1_001));
            assert_eq!(
                peers::w8a_glommio(loops, 1_001).unwrap().1,
                reference(1_001)
            );
        }
        let want = 99 * 100 / 2;
        assert_eq!(peers::w8b_glommio(100, Duration::ZERO).unwrap().1, want);
        assert_eq!(peers::w8b_glommio(100, GLOMMIO_SPIN).unwrap().1, want);
        assert_eq!(peers::w8b_std(100).unwrap().1, want);
        assert_eq!(peers::w8b_spin(100).unwrap().1, want);
    }
}
