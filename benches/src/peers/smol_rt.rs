//! smol's pieces: an `async_executor::LocalExecutor` driven by
//! `async_io::block_on` (epoll via polling), `async_io::Timer` for sleeps.

use std::time::{Duration, Instant};

use async_executor::LocalExecutor;

use super::{Peer, Timed, ns_since, timer_body, yield_body};
use crate::memory::{Gate, Mem, memory_body, parked};

pub struct Smol;

async fn timer(d: Duration) {
    async_io::Timer::after(d).await;
}

impl Peer for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn yield_impl(&self) -> &'static str {
        "futures_lite::future::yield_now"
    }

    fn spawn(&self, n: u64) -> Timed<u64> {
        let ex = LocalExecutor::new();
        async_io::block_on(ex.run(async {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(n as usize);
            for i in 0..n {
                handles.push(ex.spawn(async move { i }));
            }
            let mut sum = 0u64;
            for h in handles {
                sum += h.await;
            }
            Ok((ns_since(start), sum))
        }))
    }

    fn yields(&self, tasks: u64, iters: u64) -> Timed<u64> {
        let ex = LocalExecutor::new();
        async_io::block_on(ex.run(async {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(tasks as usize);
            for _ in 0..tasks {
                handles.push(ex.spawn(yield_body(iters, futures_lite::future::yield_now)));
            }
            let mut done = 0u64;
            for h in handles {
                done += h.await;
            }
            Ok((ns_since(start), done))
        }))
    }

    fn timers(&self, durs_ms: &[u64]) -> Timed<Vec<i64>> {
        let ex = LocalExecutor::new();
        async_io::block_on(ex.run(async {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(durs_ms.len());
            for &d in durs_ms {
                handles.push(ex.spawn(timer_body(d, timer)));
            }
            let mut late = Vec::with_capacity(durs_ms.len());
            for h in handles {
                late.push(h.await);
            }
            Ok((ns_since(start), late))
        }))
    }

    fn memory_impls(&self) -> &'static [&'static str] {
        &["gate", "event-listener"]
    }

    fn memory(&self, n: u64, imp: &str) -> Timed<Mem> {
        let ex = LocalExecutor::new();
        let join = |h: async_executor::Task<u64>| async move { Ok(h.await) };
        match imp {
            "gate" => {
                let gate = Gate::leak(n as usize);
                async_io::block_on(ex.run(memory_body(
                    n,
                    || ex.spawn(parked(gate.wait())),
                    futures_lite::future::yield_now,
                    || gate.open(),
                    join,
                )))
            }
            // event_listener 5.x: `listen().await`, `notify(usize::MAX)`.
            "event-listener" => {
                let ev: &'static event_listener::Event = Box::leak(Box::default());
                async_io::block_on(ex.run(memory_body(
                    n,
                    || ex.spawn(parked(ev.listen())),
                    futures_lite::future::yield_now,
                    || {
                        ev.notify(usize::MAX);
                    },
                    join,
                )))
            }
            other => Err(format!(
                "smol has no W7 impl {other:?} (gate, event-listener)"
            )),
        }
    }
}
