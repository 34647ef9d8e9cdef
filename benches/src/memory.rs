//! W7 memory per parked task (`memory`, benches/WORKLOADS.md): N tasks that
//! each count themselves started and then wait on one shared release
//! primitive; the resident set grown while all N are parked, divided by N.
//!
//! Every peer runs the same body ([`memory_body`]) with its own spawn, join,
//! yield and release primitive. Rows are `peer@impl`, as in W3: `impl=gate`
//! is the executor-agnostic [`Gate`] (one `Mutex<(bool, Vec<Waker>)>`
//! reserved to N, one 16-byte waker per task), and each peer that has a
//! broadcast primitive of its own has a second row with it
//! ([`Peer::memory_impls`]).

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::opts::Opts;
use crate::peers::{Peer, Timed, ns_since};
use crate::report::{Json, Outcome};
use crate::table::{Cell, impl_rows, num};

/// Tasks that have started (been polled once); a static, so it costs no
/// per-task state.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// What one W7 run measured (bytes).
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    pub rss_before: u64,
    pub rss_after: u64,
    pub rss_end: u64,
    pub sum: u64,
}

/// Resident set size of this process in bytes (`/proc/self/statm` field 2 ×
/// page size).
pub fn rss() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/self/statm").map_err(|e| format!("statm: {e}"))?;
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| format!("statm: no resident field in {s:?}"))?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * page.max(1) as u64)
}

/// The shared gate of `impl=gate`: a flag and the wakers of the parked
/// tasks, reserved to N up front so that registering costs one `Waker`.
#[derive(Debug)]
pub struct Gate(Mutex<(bool, Vec<Waker>)>);

impl Gate {
    /// A closed gate with room for `n` wakers, leaked (one per run) so that
    /// tasks hold a `&'static` to it.
    pub fn leak(n: usize) -> &'static Gate {
        Box::leak(Box::new(Gate(Mutex::new((false, Vec::with_capacity(n))))))
    }

    /// Waits until [`open`](Gate::open).
    pub fn wait(&'static self) -> GateWait {
        GateWait {
            gate: self,
            registered: false,
        }
    }

    /// Opens the gate and wakes every waiter.
    pub fn open(&self) {
        let wakers = {
            let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            g.0 = true;
            std::mem::take(&mut g.1)
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// The future of [`Gate::wait`]. Registers its waker on the first poll only
/// (W7 polls each task once before opening the gate).
#[derive(Debug)]
pub struct GateWait {
    gate: &'static Gate,
    registered: bool,
}

impl Future for GateWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.gate.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.0 {
            return Poll::Ready(());
        }
        if !self.registered {
            g.1.push(cx.waker().clone());
            drop(g);
            self.registered = true;
        }
        Poll::Pending
    }
}

/// The task body: count itself started, wait on the release primitive,
/// return 1.
pub async fn parked<W: Future>(wait: W) -> u64 {
    STARTED.fetch_add(1, Relaxed);
    wait.await;
    1
}

/// W7 on one runtime, inside its `block_on`: the handle vector is reserved
/// before `rss_before`; `spawn_one` spawns one [`parked`] task; `pause`
/// lets the spawned tasks run (the runtime's yield, or monoio's sleep);
/// `release` opens the primitive; `join` awaits one handle. The timed
/// region runs from the first spawn to the last join.
pub async fn memory_body<H, J, Y>(
    n: u64,
    mut spawn_one: impl FnMut() -> H,
    pause: impl Fn() -> Y,
    release: impl FnOnce(),
    join: impl Fn(H) -> J,
) -> Timed<Mem>
where
    J: Future<Output = Result<u64, String>>,
    Y: Future,
{
    STARTED.store(0, Relaxed);
    let mut handles = Vec::with_capacity(n as usize);
    let rss_before = rss()?;
    let start = Instant::now();
    for _ in 0..n {
        handles.push(spawn_one());
    }
    while STARTED.load(Relaxed) < n {
        pause().await;
    }
    let rss_after = rss()?;
    release();
    let mut sum = 0u64;
    for h in handles {
        sum += join(h).await?;
    }
    let ns = ns_since(start);
    let mem = Mem {
        rss_before,
        rss_after,
        rss_end: rss()?,
        sum,
    };
    Ok((ns, mem))
}

/// The `memory` workload for `peer`; `impl` from the row suffix (default
/// `gate`). ok = the sum is N and the resident set grew.
pub fn run(peer: &dyn Peer, opts: &Opts) -> Result<Outcome, String> {
    let n = opts.get_u64("n", opts.shrink(100_000))?.max(1);
    let imp = opts
        .keys
        .get("impl")
        .cloned()
        .unwrap_or_else(|| "gate".into());
    let (ns, m) = peer.memory(n, &imp)?;
    let grown = m.rss_after.saturating_sub(m.rss_before);
    let kib = |b: u64| Json::Num(b as f64 / 1024.0);
    Ok(Outcome {
        peer: peer.name().to_string(),
        workload: "memory".into(),
        params: vec![
            ("n".into(), Json::Int(n as i64)),
            ("impl".into(), Json::Str(imp)),
        ],
        metric: "bytes_per_task".into(),
        value: Some(grown as f64 / n as f64),
        unit: "B".into(),
        ok: m.sum == n && m.rss_after > m.rss_before,
        elapsed_ms: ns as f64 / 1e6,
        extra: vec![
            ("rss_before_kib".into(), kib(m.rss_before)),
            ("rss_after_kib".into(), kib(m.rss_after)),
            ("rss_end_kib".into(), kib(m.rss_end)),
        ],
        error: None,
    })
}

/// The suite's W7 rows, `peer@impl`, for the selected peers.
pub fn rows(peers: &[&'static str]) -> Vec<String> {
    crate::peers::all()
        .iter()
        .filter(|p| peers.contains(&p.name()))
        .flat_map(|p| {
            p.memory_impls()
                .iter()
                .map(move |imp| format!("{}@{imp}", p.name()))
        })
        .collect()
}

/// W7's table, then coil's bytes over each peer's with the gate (< 1.00
/// means a parked coil task costs less).
pub fn table(cells: &[Cell], reps: u64) -> String {
    let (rows, mut s) = impl_rows(cells, "memory", "W7 memory", "B/task", reps);
    let gate = |c: &&&Cell| c.peer.ends_with("@gate");
    let coils: Vec<&&Cell> = rows
        .iter()
        .filter(gate)
        .filter(|c| c.peer.starts_with("coil/"))
        .collect();
    let others: Vec<&&Cell> = rows
        .iter()
        .filter(gate)
        .filter(|c| !c.peer.starts_with("coil/"))
        .collect();
    if coils.is_empty() || others.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nRATIOS W7 (gate): coil B / peer B (< 1.00 means coil's parked task is smaller)"
    );
    for c in &coils {
        let mut row = format!("{:<22}", c.peer);
        for o in &others {
            let r = match (c.value, o.value) {
                (Some(cv), Some(ov)) if ov > 0.0 => Some(cv / ov),
                _ => None,
            };
            let name = o.peer.trim_end_matches("@gate");
            let _ = write!(row, " {name} {}", num(r, 2));
        }
        let _ = writeln!(s, "{row}");
    }
    s
}
