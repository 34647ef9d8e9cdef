//! coil, on its io_uring and its epoll driver.

use std::time::Instant;

use coil::runtime::{DriverChoice, DriverKind};

use super::{Peer, Timed, ns_since, timer_body, yield_body};
use crate::memory::{Gate, Mem, memory_body, parked};

pub struct Coil {
    choice: DriverChoice,
    name: &'static str,
}

impl Coil {
    pub fn uring() -> Coil {
        Coil {
            choice: DriverChoice::Uring,
            name: "coil/uring",
        }
    }

    pub fn epoll() -> Coil {
        Coil {
            choice: DriverChoice::Epoll,
            name: "coil/epoll",
        }
    }

    fn runtime(&self) -> Result<coil::Runtime, String> {
        let rt = coil::Runtime::builder()
            .driver(self.choice)
            .build()
            .map_err(|e| format!("coil runtime ({:?}): {e}", self.choice))?;
        let want = match self.choice {
            DriverChoice::Epoll => DriverKind::Epoll,
            _ => DriverKind::Uring,
        };
        if rt.driver().kind() != want {
            return Err(format!(
                "coil ran on {:?}, not {want:?}",
                rt.driver().kind()
            ));
        }
        Ok(rt)
    }
}

impl Peer for Coil {
    fn name(&self) -> &'static str {
        self.name
    }

    fn yield_impl(&self) -> &'static str {
        "coil::task::yield_now"
    }

    fn spawn(&self, n: u64) -> Timed<u64> {
        let rt = self.runtime()?;
        rt.block_on(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(n as usize);
            for i in 0..n {
                handles.push(coil::spawn(async move { i }));
            }
            let mut sum = 0u64;
            for h in handles {
                sum += h.await.map_err(|e| e.to_string())?;
            }
            Ok((ns_since(start), sum))
        })
    }

    fn yields(&self, tasks: u64, iters: u64) -> Timed<u64> {
        let rt = self.runtime()?;
        rt.block_on(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(tasks as usize);
            for _ in 0..tasks {
                handles.push(coil::spawn(yield_body(iters, coil::task::yield_now)));
            }
            let mut done = 0u64;
            for h in handles {
                done += h.await.map_err(|e| e.to_string())?;
            }
            Ok((ns_since(start), done))
        })
    }

    fn channel_impls(&self) -> &'static [&'static str] {
        &["mpsc", "queue"]
    }

    fn channel(&self, n: u64, cap: usize, imp: &str) -> Timed<u64> {
        let rt = self.runtime()?;
        match imp {
            "mpsc" => rt.block_on(async move {
                let start = Instant::now();
                let (tx, mut rx) = coil::sync::mpsc::channel::<u64>(cap);
                let producer = coil::spawn(async move {
                    for i in 0..n {
                        if tx.send(i).await.is_err() {
                            return Err("receiver closed early".to_string());
                        }
                    }
                    Ok(())
                });
                let consumer = coil::spawn(async move {
                    let mut sum = 0u64;
                    while let Some(v) = rx.recv().await {
                        sum = sum.wrapping_add(v);
                    }
                    sum
                });
                producer.await.map_err(|e| e.to_string())??;
                let sum = consumer.await.map_err(|e| e.to_string())?;
                Ok((ns_since(start), sum))
            }),
            // asyncio.Queue(maxsize=CAP); the producer shuts the queue down
            // (asyncio 3.13) instead of sending a sentinel.
            "queue" => rt.block_on(async move {
                let start = Instant::now();
                let q = coil::queue::Queue::<u64>::new(cap);
                let producer = coil::spawn({
                    let q = q.clone();
                    async move {
                        for i in 0..n {
                            if q.put(i).await.is_err() {
                                return Err("queue shut down early".to_string());
                            }
                        }
                        q.shutdown(false);
                        Ok(())
                    }
                });
                let consumer = coil::spawn(async move {
                    let mut sum = 0u64;
                    while let Ok(v) = q.get().await {
                        sum = sum.wrapping_add(v);
                    }
                    sum
                });
                producer.await.map_err(|e| e.to_string())??;
                let sum = consumer.await.map_err(|e| e.to_string())?;
                Ok((ns_since(start), sum))
            }),
            other => Err(format!("coil has no channel impl {other:?} (mpsc, queue)")),
        }
    }

    fn memory_impls(&self) -> &'static [&'static str] {
        &["gate", "event"]
    }

    fn memory(&self, n: u64, imp: &str) -> Timed<Mem> {
        let rt = self.runtime()?;
        let join = |h: coil::Task<u64>| async move { h.await.map_err(|e| e.to_string()) };
        match imp {
            "gate" => {
                let gate = Gate::leak(n as usize);
                rt.block_on(memory_body(
                    n,
                    || coil::spawn(parked(gate.wait())),
                    coil::task::yield_now,
                    || gate.open(),
                    join,
                ))
            }
            // asyncio.Event: `wait()`, released by `set()`.
            "event" => {
                let ev: &'static coil::sync::Event = Box::leak(Box::default());
                rt.block_on(memory_body(
                    n,
                    || coil::spawn(parked(ev.wait())),
                    coil::task::yield_now,
                    || ev.set(),
                    join,
                ))
            }
            other => Err(format!("coil has no W7 impl {other:?} (gate, event)")),
        }
    }

    fn timers(&self, durs_ms: &[u64]) -> Timed<Vec<i64>> {
        let rt = self.runtime()?;
        rt.block_on(async move {
            let start = Instant::now();
            let mut handles = Vec::with_capacity(durs_ms.len());
            for &d in durs_ms {
                handles.push(coil::spawn(timer_body(d, coil::time::sleep)));
            }
            let mut late = Vec::with_capacity(durs_ms.len());
            for h in handles {
                late.push(h.await.map_err(|e| e.to_string())?);
            }
            Ok((ns_since(start), late))
        })
    }
}
