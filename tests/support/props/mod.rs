#![allow(dead_code, unreachable_pub, unused_imports)]
//! Simulator programs and their invariants, shared by the property suites
//! (`tests/rt/sim_props.rs`, programs generated from a seed) and the
//! `sim_program` fuzz target (programs decoded from bytes, in the fuzz
//! crate), which both include this file by path. It uses only coil's public
//! API (and the simulator's SplitMix64 generator from coil-arch).
//!
//! Two kinds of program:
//! - [`TaskProgram`]: workers running scripts of yields, sleeps (up to hours
//!   of virtual time), timeouts, spawned children awaited, cancelled or
//!   detached, some workers cancelled part-way, plus queue traffic. Checks:
//!   sleeps and timeouts never end early, the queue loses and reorders
//!   nothing, no future is polled after it returned Ready, every task ends,
//!   and no task, timer, op or socket is left.
//! - [`NetProgram`]: clients send data in chunks to an echo server under
//!   network faults, some reads timing out (their futures dropped in
//!   flight). Checks ([`check_outcome`]): bytes form prefixes (nothing lost,
//!   duplicated or reordered), losses surface as errors, only the errors
//!   faults can cause, and nothing is left at the end.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use coil_arch::sim::SplitMix64;

mod network;

pub use network::{ConnPlan, NetProgram, Outcome, check_outcome, faults_for};

use coil::sim::Builder;
use coil::time::{Instant, sleep, timeout};

/// Draws programs from a seed: SplitMix64 (the simulator's generator),
/// reduced by modulo.
#[derive(Debug, Clone)]
pub struct Rng(SplitMix64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// In `0..n` (`0` for `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with `percent`% probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

// ----- invariant helpers -----

/// Counts of tracked futures: started, finished (Ready), dropped.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Tracked futures created.
    pub created: Cell<usize>,
    /// Of those, how many returned Ready.
    pub ready: Cell<usize>,
    /// Of those, how many were dropped.
    pub dropped: Cell<usize>,
}

/// Wraps a future: panics if it is polled after it returned Ready, and keeps
/// the ledger (so "every task ends" = every tracked future is dropped, having
/// finished or been cancelled).
#[derive(Debug)]
pub struct Tracked<F> {
    fut: Pin<Box<F>>,
    done: bool,
    ledger: Rc<Ledger>,
}

/// Track `fut` in `ledger`.
pub fn tracked<F: Future>(ledger: &Rc<Ledger>, fut: F) -> Tracked<F> {
    ledger.created.set(ledger.created.get() + 1);
    Tracked {
        fut: Box::pin(fut),
        done: false,
        ledger: ledger.clone(),
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        assert!(!self.done, "a future was polled after it completed");
        let r = self.fut.as_mut().poll(cx);
        if r.is_ready() {
            self.done = true;
            self.ledger.ready.set(self.ledger.ready.get() + 1);
        }
        r
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        self.ledger.dropped.set(self.ledger.dropped.get() + 1);
    }
}

/// Every task ended, no timer or op left behind, no socket left open.
///
/// # Panics
///
/// If something is left, or outside a simulation.
pub async fn assert_quiescent() {
    // Let closed sockets be released (that happens when the loop idles).
    sleep(Duration::from_millis(1)).await;
    let s = coil::runtime::stats().expect("assert_quiescent runs inside a simulation");
    assert_eq!(
        (s.tasks, s.timers, s.io_ops),
        (0, 0, 0),
        "tasks, timers, io ops left"
    );
    assert_eq!(coil::sim::open_sockets(), Some(0), "sockets leaked");
}

// ----- task programs -----

/// When the main task cancels a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Never: the worker runs its script out.
    Never,
    /// Right after spawning every worker.
    Now,
    /// After sleeping this many milliseconds.
    After(u64),
}

/// A worker: its script (each word decoded by [`TaskProgram::run`]: the low
/// byte mod 6 picks yield, sleep, timeout, spawn-and-await, spawn-and-cancel
/// or spawn-and-detach; the rest is the argument) and its cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// The steps.
    pub steps: Vec<u64>,
    /// When it is cancelled.
    pub cancel: Cancel,
}

/// A random task program; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskProgram {
    /// Items one producer puts and one consumer gets.
    pub items: usize,
    /// The queue's capacity (0: unbounded).
    pub qcap: usize,
    /// The workers.
    pub workers: Vec<Worker>,
}

impl TaskProgram {
    /// The program seed `seed` generates: up to 12 workers of up to 7 steps,
    /// up to 39 queue items.
    pub fn from_seed(seed: u64) -> TaskProgram {
        let mut rng = Rng::new(seed);
        let workers = 1 + rng.below(12) as usize;
        let items = rng.below(40) as usize;
        let qcap = rng.below(4) as usize;
        let steps: Vec<Vec<u64>> = (0..workers)
            .map(|_| (0..rng.below(8)).map(|_| rng.next_u64()).collect())
            .collect();
        let mut rng = Rng::new(seed ^ 1);
        let workers = steps
            .into_iter()
            .map(|steps| {
                let cancel = if !rng.chance(25) {
                    Cancel::Never
                } else if rng.chance(50) {
                    Cancel::After(rng.below(20))
                } else {
                    Cancel::Now
                };
                Worker { steps, cancel }
            })
            .collect();
        TaskProgram {
            items,
            qcap,
            workers,
        }
    }

    /// Runs the program in a simulation seeded with `seed` and checks its
    /// invariants. Returns the number of tracked tasks.
    ///
    /// # Panics
    ///
    /// When an invariant fails (the simulation prints the seed).
    pub fn run(&self, seed: u64) -> usize {
        let ledger = Rc::new(Ledger::default());
        let l2 = ledger.clone();
        let prog = self.clone();
        let main = async move {
            let ledger = l2;
            let items = prog.items;
            let q = Rc::new(coil::queue::Queue::<usize>::new(prog.qcap));
            let received = Rc::new(RefCell::new(Vec::new()));
            // Queue traffic: one producer and one consumer, never cancelled.
            let producer = {
                let q = q.clone();
                coil::spawn(tracked(&ledger, async move {
                    for i in 0..items {
                        q.put(i).await.unwrap();
                        if i % 3 == 0 {
                            coil::task::yield_now().await;
                        }
                    }
                }))
            };
            let consumer = {
                let (q, received) = (q.clone(), received.clone());
                coil::spawn(tracked(&ledger, async move {
                    for _ in 0..items {
                        let v = q.get().await.unwrap();
                        received.borrow_mut().push(v);
                    }
                }))
            };
            // Workers running their scripts; some get cancelled.
            let mut handles = Vec::new();
            for w in &prog.workers {
                let ledger2 = ledger.clone();
                let steps = w.steps.clone();
                handles.push(coil::spawn(tracked(&ledger, async move {
                    for step in steps {
                        run_step(&ledger2, step).await;
                    }
                })));
            }
            for (h, w) in handles.iter().zip(&prog.workers) {
                match w.cancel {
                    Cancel::Never => continue,
                    Cancel::Now => {}
                    Cancel::After(ms) => sleep(Duration::from_millis(ms)).await,
                }
                h.cancel();
            }
            for h in handles {
                match h.await {
                    Ok(()) => {}
                    Err(e) => assert!(e.is_cancelled(), "a worker failed: {e}"),
                }
            }
            producer.await.unwrap();
            consumer.await.unwrap();
            let got = received.borrow().clone();
            assert_eq!(
                got,
                (0..items).collect::<Vec<_>>(),
                "queue lost or reordered items"
            );
            // Detached tasks (at most an hour of sleep left): wait until they
            // are gone. Two virtual hours, no real time.
            sleep(Duration::from_secs(2 * 3600)).await;
            assert_quiescent().await;
            ledger
        };
        let ledger = Builder::new().seed(seed).run(main);
        assert_eq!(
            ledger.dropped.get(),
            ledger.created.get(),
            "a task never ended"
        );
        assert!(ledger.ready.get() <= ledger.created.get());
        ledger.created.get()
    }
}

async fn run_step(ledger: &Rc<Ledger>, step: u64) {
    let arg = step >> 8;
    match step % 6 {
        0 => coil::task::yield_now().await,
        1 => {
            // Hours of virtual sleep, never early.
            let d = Duration::from_millis(arg % (3 * 3_600_000));
            let t = Instant::now();
            sleep(d).await;
            assert!(t.elapsed() >= d, "a sleep ended early");
        }
        2 => {
            let d = Duration::from_millis(arg % 50);
            let inner = Duration::from_millis((arg >> 16) % 50);
            let t = Instant::now();
            let r = timeout(d, sleep(inner)).await;
            if r.is_err() {
                assert!(t.elapsed() >= d, "a timeout fired early");
            }
        }
        3 => {
            // Spawn a child and await it.
            let child = coil::spawn(tracked(ledger, async move {
                sleep(Duration::from_millis(arg % 7)).await;
                arg
            }));
            assert_eq!(child.await.unwrap(), arg);
        }
        4 => {
            // Spawn a child and cancel it. (If this worker is itself
            // cancelled right here, the child is detached and sleeps its
            // hour out.)
            let child = coil::spawn(tracked(ledger, async move {
                sleep(Duration::from_secs(3600)).await;
            }));
            if arg.is_multiple_of(2) {
                coil::task::yield_now().await;
            }
            child.cancel();
            assert!(matches!(child.await, Err(e) if e.is_cancelled()));
        }
        _ => {
            // Spawn and detach: it must still end.
            drop(coil::spawn(tracked(ledger, async move {
                sleep(Duration::from_millis(arg % 30)).await;
            })));
        }
    }
}
