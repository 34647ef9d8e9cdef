//! Property suites on the simulator: random task programs and random network
//! traffic (with faults), checked against invariants.
//!
//! Each case is one seed: the seed generates the program *and* seeds the
//! simulation, so a failing case is replayed exactly by
//! `COIL_SIM_SEED=<seed> cargo test --test sim_props` (which runs only that
//! seed). `SIM_CASES=<n>` runs more cases (default 300 per suite). Seeds that
//! once failed are listed in `REGRESSIONS` and always run first.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};
use coil::sim::{Builder, Faults};
use coil::time::{Instant, sleep, timeout};

/// Seeds that once failed (see the module docs); they always run.
const REGRESSIONS: &[u64] = &[];

/// SplitMix64, to generate programs from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seeds to run: `COIL_SIM_SEED` alone, or the regressions then
/// `SIM_CASES` fresh ones derived from `base`.
fn seeds(base: u64) -> Vec<u64> {
    if std::env::var_os(coil::sim::SEED_ENV).is_some() {
        let seed = Builder::new().effective_seed();
        eprintln!("replaying seed {seed} only");
        return vec![seed];
    }
    let n: u64 = std::env::var("SIM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut r = Rng(base);
    REGRESSIONS
        .iter()
        .copied()
        .chain((0..n).map(|_| r.next()))
        .collect()
}

/// Run `case(seed)` for every seed; on failure, name the seed.
fn for_each_seed(base: u64, case: impl Fn(u64)) -> usize {
    let seeds = seeds(base);
    for &seed in &seeds {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(seed))) {
            eprintln!(
                "property case failed: seed {seed}; replay with {}={seed}",
                coil::sim::SEED_ENV
            );
            std::panic::resume_unwind(p);
        }
    }
    seeds.len()
}

// ----- invariant helpers -----

/// Counts of tracked futures: started, finished (Ready), dropped.
#[derive(Default)]
struct Ledger {
    created: Cell<usize>,
    ready: Cell<usize>,
    dropped: Cell<usize>,
}

/// Wraps a future: panics if it is polled after it returned Ready, and keeps
/// the ledger (so "every task ends" = every tracked future is dropped, having
/// finished or been cancelled).
struct Tracked<F> {
    fut: Pin<Box<F>>,
    done: bool,
    ledger: Rc<Ledger>,
}

fn tracked<F: Future>(ledger: &Rc<Ledger>, fut: F) -> Tracked<F> {
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
async fn assert_quiescent() {
    // Let closed sockets be released (that happens when the loop idles).
    sleep(Duration::from_millis(1)).await;
    let s = coil::runtime::stats().unwrap();
    assert_eq!(
        (s.tasks, s.timers, s.io_ops),
        (0, 0, 0),
        "tasks, timers, io ops left"
    );
    assert_eq!(coil::sim::open_sockets(), Some(0), "sockets leaked");
}

// ----- suite 1: task programs -----

/// One random task program: spawn trees, yields, sleeps (up to hours),
/// timeouts, cancellation, and queue traffic. Returns the number of tasks.
fn task_program(seed: u64) -> usize {
    let mut rng = Rng(seed);
    let workers = 1 + rng.below(12) as usize;
    let items = rng.below(40) as usize;
    let qcap = rng.below(4) as usize; // 0 = unbounded
    let plan: Vec<Vec<u64>> = (0..workers)
        .map(|_| (0..rng.below(8)).map(|_| rng.next()).collect())
        .collect();
    let ledger = Rc::new(Ledger::default());
    let l2 = ledger.clone();
    let main = async move {
        let ledger = l2;
        let q = Rc::new(coil::queue::Queue::<usize>::new(qcap));
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
        // Workers running random scripts; some get cancelled.
        let mut handles = Vec::new();
        for steps in plan {
            let ledger2 = ledger.clone();
            handles.push(coil::spawn(tracked(&ledger, async move {
                for step in steps {
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
                            let child = coil::spawn(tracked(&ledger2, async move {
                                sleep(Duration::from_millis(arg % 7)).await;
                                arg
                            }));
                            assert_eq!(child.await.unwrap(), arg);
                        }
                        4 => {
                            // Spawn a child and cancel it.
                            // (If this worker is itself cancelled right here,
                            // the child is detached and sleeps its hour out.)
                            let child = coil::spawn(tracked(&ledger2, async move {
                                sleep(Duration::from_secs(3600)).await;
                            }));
                            if arg % 2 == 0 {
                                coil::task::yield_now().await;
                            }
                            child.cancel();
                            assert!(matches!(child.await, Err(e) if e.is_cancelled()));
                        }
                        _ => {
                            // Spawn and detach: it must still end.
                            drop(coil::spawn(tracked(&ledger2, async move {
                                sleep(Duration::from_millis(arg % 30)).await;
                            })));
                        }
                    }
                }
            })));
        }
        // Cancel some workers part-way.
        let mut rng = Rng(seed ^ 1);
        for h in &handles {
            if rng.chance(25) {
                if rng.chance(50) {
                    sleep(Duration::from_millis(rng.below(20))).await;
                }
                h.cancel();
            }
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

#[test]
fn task_programs() {
    let tasks = Cell::new(0);
    let n = for_each_seed(0x7A5C, |seed| tasks.set(tasks.get() + task_program(seed)));
    eprintln!("task_programs: {n} cases, {} tasks", tasks.get());
}

// ----- suite 2: network traffic with faults -----

/// What one connection's two ends saw.
#[derive(Debug, Default)]
struct Outcome {
    sent: Vec<u8>,
    sent_ok: bool,
    server_got: Vec<u8>,
    server_err: Option<io::ErrorKind>,
    echoed: Vec<u8>,
    client_err: Option<io::ErrorKind>,
}

fn faults_for(rng: &mut Rng) -> Faults {
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

/// Clients send random data in random chunks; the server echoes it; reads
/// sometimes time out (their futures are dropped mid-flight). Checks that no
/// byte is lost, duplicated or reordered, and that resets surface as errors.
fn net_program(seed: u64) -> (Vec<Outcome>, coil::sim::Report) {
    let mut rng = Rng(seed);
    let faults = faults_for(&mut rng);
    let conns = 1 + rng.below(4) as usize;
    let plans: Vec<(Vec<u8>, Vec<usize>, usize, u64)> = (0..conns)
        .map(|_| {
            let len = rng.below(20_000) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let chunks = (0..8).map(|_| 1 + rng.below(6000) as usize).collect();
            let rbuf = 1 + rng.below(4096) as usize;
            let read_timeout_us = if rng.chance(50) {
                50 + rng.below(2000)
            } else {
                0
            };
            (data, chunks, rbuf, read_timeout_us)
        })
        .collect();
    let main = async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let outcomes: Rc<RefCell<Vec<Outcome>>> = Rc::new(RefCell::new(
            (0..conns).map(|_| Outcome::default()).collect(),
        ));
        // Server: accept every connection, echo each on its own task. The
        // first byte of each stream says which connection it is.
        let server = {
            let outcomes = outcomes.clone();
            coil::spawn(async move {
                let mut echoes = Vec::new();
                loop {
                    let Ok((s, _)) = listener.accept().await else {
                        break;
                    };
                    let outcomes = outcomes.clone();
                    echoes.push(coil::spawn(async move {
                        let mut id = None;
                        loop {
                            let BufResult(n, buf) = s.read(Vec::with_capacity(1500)).await;
                            match n {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(e) => {
                                    if let Some(i) = id {
                                        let o: &mut Outcome = &mut outcomes.borrow_mut()[i];
                                        o.server_err = Some(e.kind());
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
                    }));
                }
                echoes
            })
        };
        let mut clients = Vec::new();
        for (i, (mut data, chunks, rbuf, read_timeout_us)) in plans.into_iter().enumerate() {
            data.insert(0, i as u8);
            let outcomes = outcomes.clone();
            clients.push(coil::spawn(async move {
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
                    coil::spawn(async move {
                        let mut off = 0;
                        let mut k = 0;
                        while off < data.len() {
                            let end = (off + chunks[k % chunks.len()]).min(data.len());
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
                    let read = c.read(Vec::with_capacity(rbuf));
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
            }));
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
    Builder::new().seed(seed).faults(faults).run_traced(main)
}

fn check_outcome(o: &Outcome, resets_possible: bool) {
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
    if !resets_possible {
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

#[test]
fn network_programs() {
    let bytes = Cell::new(0usize);
    let errors = Cell::new(0usize);
    let short = Cell::new(0usize);
    let n = for_each_seed(0x4E37, |seed| {
        let resets = faults_for(&mut Rng(seed)).reset > 0.0
            || faults_for(&mut Rng(seed)).refuse_connect > 0.0;
        let (outcomes, _) = net_program(seed);
        for o in &outcomes {
            check_outcome(o, resets);
            bytes.set(bytes.get() + o.echoed.len());
            errors
                .set(errors.get() + usize::from(o.client_err.is_some() || o.server_err.is_some()));
            short.set(short.get() + usize::from(o.echoed.len() < o.sent.len()));
        }
    });
    eprintln!(
        "network_programs: {n} cases, {} bytes echoed, {} connections saw an error, {} were cut short",
        bytes.get(),
        errors.get(),
        short.get()
    );
}

#[test]
fn network_programs_replay_exactly() {
    for seed in seeds(0x4E37).into_iter().take(10) {
        let (_, a) = net_program(seed);
        let (_, b) = net_program(seed);
        assert_eq!(a.hash, b.hash, "seed {seed} did not replay");
        assert_eq!(a.events, b.events);
        assert_eq!(a.elapsed, b.elapsed);
    }
}
