//! tokio's `current_thread` runtime (time enabled).

use std::time::Instant;

use super::{Peer, Timed, ns_since, timer_body, yield_body};
use crate::memory::{Gate, Mem, memory_body, parked};

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

    fn channel_impls(&self) -> &'static [&'static str] {
        &["mpsc"]
    }

    fn channel(&self, n: u64, cap: usize, imp: &str) -> Timed<u64> {
        if imp != "mpsc" {
            return Err(format!("tokio has no channel impl {imp:?} (mpsc)"));
        }
        let rt = runtime()?;
        rt.block_on(async move {
            let start = Instant::now();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(cap);
            let producer = tokio::spawn(async move {
                for i in 0..n {
                    if tx.send(i).await.is_err() {
                        return Err("receiver closed early".to_string());
                    }
                }
                Ok(())
            });
            let consumer = tokio::spawn(async move {
                let mut sum = 0u64;
                while let Some(v) = rx.recv().await {
                    sum = sum.wrapping_add(v);
                }
                sum
            });
            producer.await.map_err(|e| e.to_string())??;
            let sum = consumer.await.map_err(|e| e.to_string())?;
            Ok((ns_since(start), sum))
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

    fn memory_impls(&self) -> &'static [&'static str] {
        &["gate", "notify"]
    }

    fn memory(&self, n: u64, imp: &str) -> Timed<Mem> {
        let rt = runtime()?;
        let join =
            |h: tokio::task::JoinHandle<u64>| async move { h.await.map_err(|e| e.to_string()) };
        match imp {
            "gate" => {
                let gate = Gate::leak(n as usize);
                rt.block_on(memory_body(
                    n,
                    || tokio::spawn(parked(gate.wait())),
                    tokio::task::yield_now,
                    || gate.open(),
                    join,
                ))
            }
            // `notified().await`, released by `notify_waiters()`.
            "notify" => {
                let notify: &'static tokio::sync::Notify = Box::leak(Box::default());
                rt.block_on(memory_body(
                    n,
                    || tokio::spawn(parked(notify.notified())),
                    tokio::task::yield_now,
                    || notify.notify_waiters(),
                    join,
                ))
            }
            other => Err(format!("tokio has no W7 impl {other:?} (gate, notify)")),
        }
    }
}
