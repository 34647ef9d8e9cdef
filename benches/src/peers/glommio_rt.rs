//! glommio: one `LocalExecutor` (io_uring underneath).

use std::time::Instant;

use glommio::LocalExecutorBuilder;

use super::{Peer, Timed, ns_since, timer_body, yield_body};
use crate::memory::{Gate, Mem, memory_body, parked};

pub struct Glommio;

fn executor() -> Result<glommio::LocalExecutor, String> {
    LocalExecutorBuilder::default()
        .make()
        .map_err(|e| format!("glommio executor: {e}"))
}

impl Peer for Glommio {
    fn name(&self) -> &'static str {
        "glommio"
    }

    fn yield_impl(&self) -> &'static str {
        "futures_lite::future::yield_now (= glommio executor().yield_now)"
    }

    fn spawn(&self, n: u64) -> Timed<u64> {
        executor()?.run(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(n as usize);
            for i in 0..n {
                handles.push(glommio::spawn_local(async move { i }));
            }
            let mut sum = 0u64;
            for h in handles {
                sum += h.await;
            }
            Ok((ns_since(start), sum))
        })
    }

    fn yields(&self, tasks: u64, iters: u64) -> Timed<u64> {
        executor()?.run(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(tasks as usize);
            for _ in 0..tasks {
                handles.push(glommio::spawn_local(yield_body(
                    iters,
                    futures_lite::future::yield_now,
                )));
            }
            let mut done = 0u64;
            for h in handles {
                done += h.await;
            }
            Ok((ns_since(start), done))
        })
    }

    fn timers(&self, durs_ms: &[u64]) -> Timed<Vec<i64>> {
        let durs = durs_ms.to_vec();
        executor()?.run(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(durs.len());
            for &d in &durs {
                handles.push(glommio::spawn_local(timer_body(d, glommio::timer::sleep)));
            }
            let mut late = Vec::with_capacity(durs.len());
            for h in handles {
                late.push(h.await);
            }
            Ok((ns_since(start), late))
        })
    }

    fn memory_impls(&self) -> &'static [&'static str] {
        &["gate", "semaphore"]
    }

    fn memory(&self, n: u64, imp: &str) -> Timed<Mem> {
        let join = |h: glommio::Task<u64>| async move { Ok(h.await) };
        let ex = executor()?;
        match imp {
            "gate" => {
                let gate = Gate::leak(n as usize);
                ex.run(memory_body(
                    n,
                    || glommio::spawn_local(parked(gate.wait())),
                    futures_lite::future::yield_now,
                    || gate.open(),
                    join,
                ))
            }
            // `Semaphore::new(0)`: `acquire(1)`, released by `signal(N)`.
            "semaphore" => {
                let sem: &'static glommio::sync::Semaphore =
                    Box::leak(Box::new(glommio::sync::Semaphore::new(0)));
                ex.run(memory_body(
                    n,
                    || glommio::spawn_local(parked(sem.acquire(1))),
                    futures_lite::future::yield_now,
                    || sem.signal(n),
                    join,
                ))
            }
            other => Err(format!(
                "glommio has no W7 impl {other:?} (gate, semaphore)"
            )),
        }
    }
}
