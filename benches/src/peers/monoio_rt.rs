//! monoio with one thread, on its io_uring driver (`monoio`) and its epoll
//! driver (`monoio-legacy`), timer enabled.
//!
//! monoio has no yield of its own, so W2 uses the spec's generic yield. Note
//! (benches/WORKLOADS.md, W2): monoio re-polls a task that wakes itself at once, so its
//! W2 figure is one task re-polling itself, not rotation across tasks.

use std::time::{Duration, Instant};

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use super::{Peer, Timed, generic_yield, ns_since, timer_body, yield_body};
use crate::memory::{Gate, Mem, memory_body, parked};

pub struct Monoio {
    uring: bool,
}

impl Monoio {
    pub fn uring() -> Monoio {
        Monoio { uring: true }
    }

    pub fn legacy() -> Monoio {
        Monoio { uring: false }
    }
}

/// Builds the runtime for the chosen driver and runs `$body` on it.
macro_rules! on_monoio {
    ($self:expr, $body:expr) => {
        if $self.uring {
            let mut rt = RuntimeBuilder::<IoUringDriver>::new()
                .enable_timer()
                .build()
                .map_err(|e| format!("monoio io_uring runtime: {e}"))?;
            rt.block_on($body)
        } else {
            let mut rt = RuntimeBuilder::<LegacyDriver>::new()
                .enable_timer()
                .build()
                .map_err(|e| format!("monoio legacy runtime: {e}"))?;
            rt.block_on($body)
        }
    };
}

async fn spawn_body(n: u64) -> Timed<u64> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        handles.push(monoio::spawn(async move { i }));
    }
    let mut sum = 0u64;
    for h in handles {
        sum += h.await;
    }
    Ok((ns_since(start), sum))
}

async fn yields_body(tasks: u64, iters: u64) -> Timed<u64> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks as usize);
    for _ in 0..tasks {
        handles.push(monoio::spawn(yield_body(iters, generic_yield)));
    }
    let mut done = 0u64;
    for h in handles {
        done += h.await;
    }
    Ok((ns_since(start), done))
}

async fn timers_body(durs_ms: Vec<u64>) -> Timed<Vec<i64>> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(durs_ms.len());
    for &d in &durs_ms {
        handles.push(monoio::spawn(timer_body(d, monoio::time::sleep)));
    }
    let mut late = Vec::with_capacity(durs_ms.len());
    for h in handles {
        late.push(h.await);
    }
    Ok((ns_since(start), late))
}

/// W7 with the gate. monoio re-runs a task that wakes itself at once, so a
/// yield loop would starve the parked tasks: wait with 100 µs sleeps (spec).
async fn memory_gate(n: u64) -> Timed<Mem> {
    let gate = Gate::leak(n as usize);
    memory_body(
        n,
        || monoio::spawn(parked(gate.wait())),
        || monoio::time::sleep(Duration::from_micros(100)),
        || gate.open(),
        |h| async move { Ok(h.await) },
    )
    .await
}

impl Peer for Monoio {
    fn name(&self) -> &'static str {
        if self.uring {
            "monoio"
        } else {
            "monoio-legacy"
        }
    }

    fn yield_impl(&self) -> &'static str {
        "generic wake_by_ref"
    }

    fn spawn(&self, n: u64) -> Timed<u64> {
        on_monoio!(self, spawn_body(n))
    }

    fn yields(&self, tasks: u64, iters: u64) -> Timed<u64> {
        on_monoio!(self, yields_body(tasks, iters))
    }

    fn timers(&self, durs_ms: &[u64]) -> Timed<Vec<i64>> {
        on_monoio!(self, timers_body(durs_ms.to_vec()))
    }

    fn memory(&self, n: u64, imp: &str) -> Timed<Mem> {
        if imp != "gate" {
            return Err(format!("monoio has no W7 impl {imp:?} (gate)"));
        }
        on_monoio!(self, memory_gate(n))
    }
}
