//! Simulator programs and their invariants, shared by the property suites
//! (`tests/sim_props.rs`, programs generated from a seed) and the
//! `sim_program` fuzz target (programs decoded from bytes). Not a public API:
//! hidden from the docs, and free to change with those two users.
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
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use coil_arch::sim::SplitMix64;

use crate::io::BufResult;
use crate::net::{TcpListener, TcpStream};
use crate::sim::{Builder, Faults, Report};
use crate::time::{Instant, sleep, timeout};

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
    let s = crate::runtime::stats().expect("assert_quiescent runs inside a simulation");
    assert_eq!(
        (s.tasks, s.timers, s.io_ops),
        (0, 0, 0),
        "tasks, timers, io ops left"
    );
    assert_eq!(crate::sim::open_sockets(), Some(0), "sockets leaked");
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
            let q = Rc::new(crate::queue::Queue::<usize>::new(prog.qcap));
            let received = Rc::new(RefCell::new(Vec::new()));
            // Queue traffic: one producer and one consumer, never cancelled.
            let producer = {
                let q = q.clone();
                crate::spawn(tracked(&ledger, async move {
                    for i in 0..items {
                        q.put(i).await.unwrap();
                        if i % 3 == 0 {
                            crate::task::yield_now().await;
                        }
                    }
                }))
            };
            let consumer = {
                let (q, received) = (q.clone(), received.clone());
                crate::spawn(tracked(&ledger, async move {
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
                handles.push(crate::spawn(tracked(&ledger, async move {
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
        0 => crate::task::yield_now().await,
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
            let child = crate::spawn(tracked(ledger, async move {
                sleep(Duration::from_millis(arg % 7)).await;
                arg
            }));
            assert_eq!(child.await.unwrap(), arg);
        }
        4 => {
            // Spawn a child and cancel it. (If this worker is itself
            // cancelled right here, the child is detached and sleeps its
            // hour out.)
            let child = crate::spawn(tracked(ledger, async move {
                sleep(Duration::from_secs(3600)).await;
            }));
            if arg.is_multiple_of(2) {
                crate::task::yield_now().await;
            }
            child.cancel();
            assert!(matches!(child.await, Err(e) if e.is_cancelled()));
        }
        _ => {
            // Spawn and detach: it must still end.
            drop(crate::spawn(tracked(ledger, async move {
                sleep(Duration::from_millis(arg % 30)).await;
            })));
        }
    }
}

// ----- network programs -----

/// One connection's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnPlan {
    /// What the client sends (the runner puts the connection's index first).
    pub data: Vec<u8>,
    /// Sizes of the successive writes, cycled (each at least 1).
    pub chunks: Vec<usize>,
    /// Capacity of each read buffer (at least 1).
    pub rbuf: usize,
    /// Each read times out after this many µs (its future dropped in
    /// flight); 0: no timeout.
    pub read_timeout_us: u64,
}

/// Clients sending to an echo server under faults; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct NetProgram {
    /// The faults the network injects.
    pub faults: Faults,
    /// One plan per connection (at most 255).
    pub conns: Vec<ConnPlan>,
}

/// What one connection's two ends saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What the client meant to send (empty if its connect was refused).
    pub sent: Vec<u8>,
    /// Its writes all succeeded.
    pub sent_ok: bool,
    /// What the server read.
    pub server_got: Vec<u8>,
    /// The server side's error, if any.
    pub server_err: Option<io::ErrorKind>,
    /// What the client read back.
    pub echoed: Vec<u8>,
    /// The client side's error, if any.
    pub client_err: Option<io::ErrorKind>,
}

/// The faults of a generated program (as the property suite draws them).
pub fn faults_for(rng: &mut Rng) -> Faults {
    let p = |rng: &mut Rng, max: u64| rng.below(max + 1) as f64 / 100.0;
    match rng.below(4) {
        0 => Faults::none(),
        1 => Faults {
            short_reads: p(rng, 60),
            short_writes: p(rng, 60),
            eagain: p(rng, 30),
            cancel_race: p(rng, 60),
            ..Faults::none()
        },
        _ => Faults {
            short_reads: p(rng, 50),
            short_writes: p(rng, 50),
            eagain: p(rng, 20),
            reset: p(rng, 3),
            cancel_race: p(rng, 50),
            refuse_connect: p(rng, 20),
        },
    }
}

impl NetProgram {
    /// The program seed `seed` generates: 1 to 4 connections of up to
    /// 20 000 bytes each.
    pub fn from_seed(seed: u64) -> NetProgram {
        let mut rng = Rng::new(seed);
        let faults = faults_for(&mut rng);
        let conns = 1 + rng.below(4) as usize;
        let conns = (0..conns)
            .map(|_| {
                let len = rng.below(20_000) as usize;
                let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                let chunks = (0..8).map(|_| 1 + rng.below(6000) as usize).collect();
                let rbuf = 1 + rng.below(4096) as usize;
                let read_timeout_us = if rng.chance(50) {
                    50 + rng.below(2000)
                } else {
                    0
                };
                ConnPlan {
                    data,
                    chunks,
                    rbuf,
                    read_timeout_us,
                }
            })
            .collect();
        NetProgram { faults, conns }
    }

    /// Whether the faults can lose bytes or refuse connections (then
    /// losses must surface as errors; otherwise there may be none).
    pub fn losses_possible(&self) -> bool {
        self.faults.reset > 0.0 || self.faults.refuse_connect > 0.0
    }

    /// Runs the program in a simulation seeded with `seed` (checking that
    /// nothing is left at the end) and returns what each connection saw;
    /// check each with [`check_outcome`].
    ///
    /// # Panics
    ///
    /// When an invariant fails (the simulation prints the seed).
    pub fn run(&self, seed: u64) -> (Vec<Outcome>, Report) {
        assert!(
            self.conns.len() <= 255,
            "the first byte names the connection"
        );
        let conns = self.conns.len();
        let plans = self.conns.clone();
        let main = async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let outcomes: Rc<RefCell<Vec<Outcome>>> = Rc::new(RefCell::new(
                (0..conns).map(|_| Outcome::default()).collect(),
            ));
            // Server: accept every connection, echo each on its own task.
            // The first byte of each stream says which connection it is.
            let server = {
                let outcomes = outcomes.clone();
                crate::spawn(async move {
                    let mut echoes = Vec::new();
                    while let Ok((s, _)) = listener.accept().await {
                        echoes.push(crate::spawn(echo(s, outcomes.clone())));
                    }
                    echoes
                })
            };
            let mut clients = Vec::new();
            for (i, plan) in plans.into_iter().enumerate() {
                clients.push(crate::spawn(client(i, plan, addr, outcomes.clone())));
            }
            for c in clients {
                c.await.unwrap();
            }
            server.cancel();
            let _ = server.await;
            // Echo tasks finish on their own (their clients are gone).
            sleep(Duration::from_millis(10)).await;
            assert_quiescent().await;
            Rc::try_unwrap(outcomes).ok().unwrap().into_inner()
        };
        Builder::new()
            .seed(seed)
            .faults(self.faults)
            .run_traced(main)
    }
}

async fn echo(s: TcpStream, outcomes: Rc<RefCell<Vec<Outcome>>>) {
    let mut id: Option<usize> = None;
    loop {
        let BufResult(n, buf) = s.read(Vec::with_capacity(1500)).await;
        match n {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                if let Some(i) = id {
                    outcomes.borrow_mut()[i].server_err = Some(e.kind());
                }
                return;
            }
        }
        let i = *id.get_or_insert(usize::from(buf[0]));
        outcomes.borrow_mut()[i].server_got.extend_from_slice(&buf);
        let BufResult(w, _) = s.write_all(buf).await;
        if let Err(e) = w {
            outcomes.borrow_mut()[i].server_err = Some(e.kind());
            return;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write).await;
}

async fn client(
    i: usize,
    plan: ConnPlan,
    addr: std::net::SocketAddr,
    outcomes: Rc<RefCell<Vec<Outcome>>>,
) {
    let ConnPlan {
        mut data,
        chunks,
        rbuf,
        read_timeout_us,
    } = plan;
    data.insert(0, i as u8);
    outcomes.borrow_mut()[i].sent = data.clone();
    let c = match TcpStream::connect(addr).await {
        Ok(c) => Rc::new(c),
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
            outcomes.borrow_mut()[i].client_err = Some(e.kind());
            outcomes.borrow_mut()[i].sent.clear();
            return;
        }
    };
    let writer = {
        let c = c.clone();
        crate::spawn(async move {
            let mut off = 0;
            let mut k = 0;
            while off < data.len() {
                let end = (off + chunks[k % chunks.len()].max(1)).min(data.len());
                k += 1;
                let BufResult(r, _) = c.write_all(data[off..end].to_vec()).await;
                r?;
                off = end;
            }
            c.shutdown(std::net::Shutdown::Write).await
        })
    };
    let mut echoed = Vec::new();
    let err = loop {
        let read = c.read(Vec::with_capacity(rbuf.max(1)));
        let r = if read_timeout_us > 0 {
            match timeout(Duration::from_micros(read_timeout_us), read).await {
                Ok(r) => r,
                Err(_) => continue, // dropped in flight: nothing may be lost
            }
        } else {
            read.await
        };
        let BufResult(n, buf) = r;
        match n {
            Ok(0) => break None,
            Ok(_) => echoed.extend_from_slice(&buf),
            Err(e) => break Some(e.kind()),
        }
    };
    let sent_ok = writer.await.unwrap().is_ok();
    let mut out = outcomes.borrow_mut();
    out[i].echoed = echoed;
    out[i].client_err = err;
    out[i].sent_ok = sent_ok;
}

/// Checks one connection's outcome: `losses_possible` as given by
/// [`NetProgram::losses_possible`].
///
/// # Panics
///
/// When an invariant fails.
pub fn check_outcome(o: &Outcome, losses_possible: bool) {
    // Prefix property: nothing lost, duplicated or reordered, ever.
    assert!(
        o.sent.starts_with(&o.server_got),
        "server got bytes never sent (or out of order)"
    );
    assert!(
        o.server_got.starts_with(&o.echoed),
        "client got bytes the server never echoed"
    );
    let complete = o.echoed.len() == o.sent.len();
    if !losses_possible {
        assert!(
            o.client_err.is_none() || o.sent.is_empty(),
            "error without resets: {o:?}"
        );
        assert!(complete, "bytes lost without any fault that may lose them");
    } else if !complete {
        // Bytes went missing: someone must have been told.
        assert!(
            o.client_err.is_some() || o.server_err.is_some() || !o.sent_ok,
            "bytes lost silently: sent {}, server got {}, echoed {}",
            o.sent.len(),
            o.server_got.len(),
            o.echoed.len()
        );
    }
    for e in [o.client_err, o.server_err].into_iter().flatten() {
        assert!(
            matches!(
                e,
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionRefused
            ),
            "unexpected error kind {e:?}"
        );
    }
}
