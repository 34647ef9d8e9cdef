//! tokio's `current_thread` runtime (time enabled).

use std::time::Instant;

use super::{Peer, Timed, ns_since, timer_body, yield_body};

pub struct Tokio;

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

impl Peer for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn yield_impl(&self) -> &'static str {
        "tokio::task::yield_now"
    }

    fn spawn(&self, n: u64) -> Timed<u64> {
        let rt = runtime()?;
        rt.block_on(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(n as usize);
            for i in 0..n {
                handles.push(tokio::spawn(async move { i }));
            }
            let mut sum = 0u64;
            for h in handles {
                sum += h.await.map_err(|e| e.to_string())?;
            }
            Ok((ns_since(start), sum))
        })
    }

    fn yields(&self, tasks: u64, iters: u64) -> Timed<u64> {
        let rt = runtime()?;
        rt.block_on(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(tasks as usize);
            for _ in 0..tasks {
                handles.push(tokio::spawn(yield_body(iters, tokio::task::yield_now)));
            }
            let mut done = 0u64;
            for h in handles {
                done += h.await.map_err(|e| e.to_string())?;
            }
            Ok((ns_since(start), done))
        })
    }

    fn timers(&self, durs_ms: &[u64]) -> Timed<Vec<i64>> {
        let rt = runtime()?;
        rt.block_on(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(durs_ms.len());
            for &d in durs_ms {
                handles.push(tokio::spawn(timer_body(d, tokio::time::sleep)));
            }
            let mut late = Vec::with_capacity(durs_ms.len());
            for h in handles {
                late.push(h.await.map_err(|e| e.to_string())?);
            }
            Ok((ns_since(start), late))
        })
    }
}
