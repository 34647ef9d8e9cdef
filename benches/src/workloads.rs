//! W1 spawn, W2 yield, W3 channel and W4 timers (benches/WORKLOADS.md):
//! parameters, the self-checks and the metrics, the same for every peer;
//! W7 (`memory`) is dispatched to `memory.rs`.

use crate::opts::Opts;
use crate::peers::Peer;
use crate::report::{Json, Outcome, nearest_rank};
use crate::splitmix;

/// The workloads this crate implements, in table order.
pub const WORKLOADS: [&str; 5] = ["spawn", "yield", "channel", "timers", "memory"];

/// W4's longest sleep: `overhead_ms = wall_ms - 200`.
const TIMER_MAX_MS: f64 = 200.0;

/// Runs `workload` once for `peer` in this process and returns its result.
pub fn run(workload: &str, peer: &dyn Peer, opts: &Opts) -> Outcome {
    let r = match workload {
        "spawn" => spawn(peer, opts),
        "yield" => yields(peer, opts),
        "timers" => timers(peer, opts),
        "channel" => channel(peer, opts),
        "memory" => crate::memory::run(peer, opts),
        other => Err(format!("unknown workload {other:?} (known: {WORKLOADS:?})")),
    };
    r.unwrap_or_else(|e| Outcome::error(peer.name(), workload, &e))
}

fn outcome(peer: &dyn Peer, workload: &str, metric: &str, unit: &str) -> Outcome {
    Outcome {
        peer: peer.name().to_string(),
        workload: workload.to_string(),
        params: Vec::new(),
        metric: metric.to_string(),
        value: None,
        unit: unit.to_string(),
        ok: false,
        elapsed_ms: 0.0,
        extra: Vec::new(),
        error: None,
    }
}

/// W1: N tasks returning i, joined in order; ok = sum == N(N-1)/2.
fn spawn(peer: &dyn Peer, opts: &Opts) -> Result<Outcome, String> {
    let n = opts.get_u64("n", opts.shrink(500_000))?.max(1);
    let (ns, sum) = peer.spawn(n)?;
    let mut o = outcome(peer, "spawn", "ns_per_task", "ns");
    o.params.push(("n".into(), Json::Int(n as i64)));
    o.value = Some(ns as f64 / n as f64);
    o.ok = u128::from(sum) == u128::from(n) * u128::from(n - 1) / 2;
    o.elapsed_ms = ns as f64 / 1e6;
    o.extra.push(("sum".into(), Json::Int(sum as i64)));
    Ok(o)
}

/// W2: T tasks × T_I yields; ok = every task completed its T_I yields.
fn yields(peer: &dyn Peer, opts: &Opts) -> Result<Outcome, String> {
    let tasks = opts.get_u64("tasks", opts.shrink(1_000))?.max(1);
    let iters = opts.get_u64("iters", 1_000)?.max(1);
    let (ns, done) = peer.yields(tasks, iters)?;
    let mut o = outcome(peer, "yield", "ns_per_yield", "ns");
    o.params.push(("tasks".into(), Json::Int(tasks as i64)));
    o.params.push(("iters".into(), Json::Int(iters as i64)));
    o.params
        .push(("impl".into(), Json::Str(peer.yield_impl().into())));
    o.value = Some(ns as f64 / (tasks * iters) as f64);
    o.ok = done == tasks * iters;
    o.elapsed_ms = ns as f64 / 1e6;
    o.extra
        .push(("yield_impl".into(), Json::Str(peer.yield_impl().into())));
    Ok(o)
}

/// W3: N = 2 000 000 u64 through a channel of capacity 1 024 from a
/// producer task to a consumer task; ok = sum == N(N-1)/2.
fn channel(peer: &dyn Peer, opts: &Opts) -> Result<Outcome, String> {
    let n = opts.get_u64("n", opts.shrink(2_000_000))?.max(1);
    let cap = opts.get_u64("cap", 1_024)?.max(1) as usize;
    let imp = match opts.keys.get("impl") {
        Some(i) => i.clone(),
        None => peer
            .channel_impls()
            .first()
            .ok_or_else(|| format!("{} has no W3 channel", peer.name()))?
            .to_string(),
    };
    let (ns, sum) = peer.channel(n, cap, &imp)?;
    let mut o = outcome(peer, "channel", "ns_per_msg", "ns");
    o.params.push(("n".into(), Json::Int(n as i64)));
    o.params.push(("cap".into(), Json::Int(cap as i64)));
    o.params.push(("impl".into(), Json::Str(imp)));
    o.value = Some(ns as f64 / n as f64);
    o.ok = u128::from(sum) == u128::from(n) * u128::from(n - 1) / 2;
    o.elapsed_ms = ns as f64 / 1e6;
    o.extra.push(("sum".into(), Json::Int(sum as i64)));
    Ok(o)
}

/// W4: TASKS sleepers with SplitMix64(TIMER_SEED) durations; lateness by
/// nearest rank with negatives clamped to 0 and counted as `early_wakes`.
/// ok = the duration list passes the spec's check values and every task
/// reported its lateness.
fn timers(peer: &dyn Peer, opts: &Opts) -> Result<Outcome, String> {
    let tasks = opts.get_u64("tasks", opts.shrink(100_000))?.max(1) as usize;
    let durs = splitmix::timer_durations_ms(tasks);
    let durs_ok = splitmix::timer_durations_check();
    let (ns, late) = peer.timers(&durs)?;
    let s = lateness(&late);
    let wall_ms = ns as f64 / 1e6;
    let mut o = outcome(peer, "timers", "overhead_ms", "ms");
    o.params.push(("tasks".into(), Json::Int(tasks as i64)));
    o.params.push((
        "seed".into(),
        Json::Str(format!("{:#x}", splitmix::TIMER_SEED)),
    ));
    o.value = Some(wall_ms - TIMER_MAX_MS);
    o.ok = durs_ok && late.len() == tasks;
    o.elapsed_ms = wall_ms;
    o.extra.extend([
        ("wall_ms".into(), Json::Num(wall_ms)),
        ("late_p50_us".into(), Json::Num(s.p50_ns as f64 / 1e3)),
        ("late_p99_us".into(), Json::Num(s.p99_ns as f64 / 1e3)),
        ("late_max_us".into(), Json::Num(s.max_ns as f64 / 1e3)),
        ("early_wakes".into(), Json::Int(s.early as i64)),
        ("min_late_us".into(), Json::Num(s.min_ns as f64 / 1e3)),
        ("durations_check".into(), Json::Bool(durs_ok)),
    ]);
    Ok(o)
}

/// Lateness statistics of W4 (ns).
#[derive(Debug, PartialEq, Eq)]
pub struct Lateness {
    pub p50_ns: i64,
    pub p99_ns: i64,
    pub max_ns: i64,
    /// The most negative raw lateness (0 if none was early).
    pub min_ns: i64,
    pub early: usize,
}

pub fn lateness(late: &[i64]) -> Lateness {
    if late.is_empty() {
        return Lateness {
            p50_ns: 0,
            p99_ns: 0,
            max_ns: 0,
            min_ns: 0,
            early: 0,
        };
    }
    let early = late.iter().filter(|&&l| l < 0).count();
    let min_ns = late.iter().copied().min().unwrap_or(0).min(0);
    let mut clamped: Vec<i64> = late.iter().map(|&l| l.max(0)).collect();
    clamped.sort_unstable();
    Lateness {
        p50_ns: nearest_rank(&clamped, 50.0),
        p99_ns: nearest_rank(&clamped, 99.0),
        max_ns: *clamped.last().unwrap_or(&0),
        min_ns,
        early,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_clamps_and_counts_early_wakes() {
        let mut late: Vec<i64> = (1..=98).map(|i| i * 1000).collect();
        late.push(-5);
        late.push(-7);
        let s = lateness(&late);
        assert_eq!(s.early, 2);
        assert_eq!(s.min_ns, -7);
        // sorted clamped: [0, 0, 1000, ..., 98000]; rank 50 -> 48000, rank 99 -> 97000
        assert_eq!(s.p50_ns, 48_000);
        assert_eq!(s.p99_ns, 97_000);
        assert_eq!(s.max_ns, 98_000);
    }
}
