//! The op table and the fd/buffer ownership rules (`op/mod.rs`, `op/fd.rs`)
//! against a model, under the simulator with the "kernel" driven by hand.
//!
//! Bytes → submit (create and poll read / write / accept / connect
//! futures), poll, drop a future in flight (cancel), data or a connection
//! arriving, the kernel deciding (completion queued, not yet handed over),
//! the loop handing completions over, a listener replaced, a connection
//! dropped, leaving the loop (the `block_on` ends with ops in flight; until
//! the next `block_on` on the same runtime, futures are dropped or polled
//! outside any loop), and at the end either a clean drain or a runtime
//! shutdown with ops still in flight. The simulator's latency is zero and
//! the hooks `coil::fuzz::{sim_decide, sim_arrive, park}` give every
//! ordering of decide, hand-over, poll and drop, including a cancel that loses
//! the race (`Faults::cancel_race`, and a drop after the decision).
//!
//! Checks: a buffer is dropped exactly once and never while the driver still
//! holds its op (instrumented [`FuzzBuf`]; also outside the loop: the harness
//! reaches the driver through the runtime, not the thread's current loop);
//! the driver never closes an fd an op is pending on
//! (coil-arch's `SimDriver::release_fd` under `cfg(fuzzing)`); the op table and the
//! driver agree on the ops in flight after every step; a future whose
//! completion (or whose awaited orphan) was handed over has been woken; bytes
//! read are exactly the bytes that arrived, in order, also across dropped
//! reads (the stash), and none is returned twice; every connection made is
//! accepted exactly once (the queue of late accepts); at the end no op, no
//! socket and no buffer is left, and each submitted op's completion was
//! handed over exactly once (the simulator's trace).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use coil::Runtime;
use coil::io::{BufResult, IoBuf, IoBufMut};
use coil::net::{TcpListener, TcpStream};
use coil::sim::{Builder, EventKind, Faults};

use crate::Bytes;

/// Bytes → op lifecycle steps; see the module docs. Any panic is a finding.
pub fn op_lifecycle(data: &[u8]) {
    let mut b = Bytes(data);
    let Some(cfg) = b.u8() else { return };
    let faults = Faults {
        cancel_race: [0.0, 0.5, 1.0][usize::from(cfg % 3)],
        ..Faults::none()
    };
    let seed = u64::from(cfg / 3);
    let log = Rc::new(Log::default());
    let rt = Rc::new(coil::fuzz::sim_runtime(
        &Builder::new()
            .seed(seed)
            .faults(faults)
            .latency(Duration::ZERO, Duration::ZERO)
            .record_trace(true),
    ));
    *log.rt.borrow_mut() = Rc::downgrade(&rt);
    let mut h = Harness::new(log.clone());
    rt.block_on(async { h.setup() });
    // Each `block_on` runs steps until the program ends or leaves the loop.
    let end = loop {
        match rt.block_on(async { h.run(&mut b) }) {
            Some(end) => break end,
            None => h.outside(&mut b),
        }
    };
    drop(h);
    let report = coil::fuzz::sim_report(&rt);
    drop(Rc::into_inner(rt).expect("the harness keeps no runtime"));
    // Each submitted op's completion was handed over exactly once: in the
    // run (the trace), or by the shutdown drain (those in flight at the end).
    let mut handed: Vec<u64> = report
        .trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Io(ud, _) => Some(ud),
            _ => None,
        })
        .collect();
    let submitted: Vec<u64> = log.submitted.borrow().clone();
    match end {
        End::Clean => {}
        End::Shutdown {
            mut futures,
            keep,
            in_flight,
        } => {
            handed.extend(in_flight);
            // Outside the runtime every leftover future ends at once.
            for f in &mut futures {
                let waker = Waker::from(f.flag.clone());
                let ready = f.fut.as_mut().poll(&mut Context::from_waker(&waker));
                assert!(
                    ready.is_ready(),
                    "a {:?} future is still pending after its runtime shut down",
                    f.kind
                );
            }
            drop(futures);
            drop(keep);
        }
    }
    handed.sort_unstable();
    let mut want = submitted;
    want.sort_unstable();
    assert_eq!(
        handed, want,
        "completions handed over differ from the ops submitted"
    );
    for (id, rec) in log.bufs.borrow().iter().enumerate() {
        assert_eq!(rec.drops, 1, "buffer {id} dropped {} times", rec.drops);
    }
}

/// What the harness records across the run.
#[derive(Default)]
struct Log {
    bufs: RefCell<Vec<BufRec>>,
    /// `user_data` of every op the harness's futures submitted.
    submitted: RefCell<Vec<u64>>,
    /// The run's runtime, to reach its driver also between two `block_on`
    /// calls (no loop is current there); gone once it was dropped.
    rt: RefCell<Weak<Runtime>>,
}

impl Log {
    /// The ops the run's simulator holds, in or out of its loop; `None`
    /// after the runtime was dropped.
    fn in_flight(&self) -> Option<Vec<u64>> {
        let rt = self.rt.borrow().upgrade()?;
        coil::fuzz::sim_in_flight(&rt)
    }

    /// The run's runtime.
    fn runtime(&self) -> Rc<Runtime> {
        self.rt.borrow().upgrade().expect("the run's runtime")
    }
}

#[derive(Default)]
struct BufRec {
    drops: u32,
    /// The op the buffer went to, once submitted.
    ud: Option<u64>,
}

/// A buffer that records its drop and checks that its op is not in flight.
struct FuzzBuf {
    vec: Vec<u8>,
    id: usize,
    log: Rc<Log>,
}

impl FuzzBuf {
    fn new(log: &Rc<Log>, vec: Vec<u8>) -> FuzzBuf {
        let mut bufs = log.bufs.borrow_mut();
        bufs.push(BufRec::default());
        FuzzBuf {
            vec,
            id: bufs.len() - 1,
            log: log.clone(),
        }
    }
}

impl Drop for FuzzBuf {
    fn drop(&mut self) {
        let ud = {
            let mut bufs = self.log.bufs.borrow_mut();
            let rec = &mut bufs[self.id];
            rec.drops += 1;
            assert_eq!(rec.drops, 1, "buffer {} dropped twice", self.id);
            rec.ud
        };
        if let Some(ud) = ud {
            let held = self.log.in_flight().map(|f| f.contains(&ud));
            assert_ne!(
                held,
                Some(true),
                "buffer {} released while its op {ud:#x} is in flight",
                self.id
            );
        }
    }
}

// SAFETY: delegates to the Vec, whose heap pointer is stable across moves.
unsafe impl IoBuf for FuzzBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.vec.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.vec.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.vec.bytes_total()
    }
}

// SAFETY: delegates to the Vec (same allocation as `stable_ptr`).
unsafe impl IoBufMut for FuzzBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.vec.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.vec.set_init(pos) }
    }
}

/// Set when the future's waker is woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write(usize),
    /// On the listener of this generation.
    Accept(u32),
    Connect(u32),
}

enum Out {
    Io(BufResult<usize, FuzzBuf>),
    Accept(io::Result<(TcpStream, SocketAddr)>),
    Connect(io::Result<TcpStream>),
}

/// A future the harness owns and polls by hand.
struct Live {
    fut: Pin<Box<dyn Future<Output = Out>>>,
    kind: Kind,
    /// Its buffer, for reads and writes.
    buf: Option<usize>,
    /// The op it submitted, once it did.
    ud: Option<u64>,
    polled: bool,
    flag: Arc<Flag>,
}

/// How the run ended.
enum End {
    Clean,
    /// The runtime shut down with these still alive.
    Shutdown {
        futures: Vec<Live>,
        keep: Vec<Box<dyn std::any::Any>>,
        in_flight: Vec<u64>,
    },
}

const MAX_LIVE: usize = 8;

struct Harness {
    log: Rc<Log>,
    live: Vec<Live>,
    /// The connected pair: `client` is read and written, `server` is its peer.
    client: Option<Rc<TcpStream>>,
    server: Option<TcpStream>,
    /// Bytes that arrived on `client`, and bytes its reads returned.
    arrived: Vec<u8>,
    got: Vec<u8>,
    listener: Option<Rc<TcpListener>>,
    addr: Option<SocketAddr>,
    generation: u32,
    /// Connections made to / accepted from the current listener.
    connected: usize,
    accepted: usize,
    /// `user_data` of dropped reads and accepts (on the current listener) in
    /// flight.
    read_orphans: BTreeSet<u64>,
    accept_orphans: BTreeSet<u64>,
    /// Streams from connects and accepts, kept open until dropped.
    conns: Vec<TcpStream>,
}

fn ops_in_table() -> usize {
    coil::runtime::stats().expect("a loop").io_ops
}

impl Harness {
    /// The ops the driver holds (in or out of the loop).
    fn in_flight(&self) -> Vec<u64> {
        self.log.in_flight().expect("a simulator runtime")
    }

    /// The "kernel" decides every op that can complete (nothing is handed
    /// over).
    fn decide(&self) {
        coil::fuzz::sim_decide(&self.log.runtime()).expect("a simulator runtime");
    }

    fn new(log: Rc<Log>) -> Harness {
        Harness {
            log,
            live: Vec::new(),
            client: None,
            server: None,
            arrived: Vec::new(),
            got: Vec::new(),
            listener: None,
            addr: None,
            generation: 0,
            connected: 0,
            accepted: 0,
            read_orphans: BTreeSet::new(),
            accept_orphans: BTreeSet::new(),
            conns: Vec::new(),
        }
    }

    /// Runs steps inside the loop until the program ends (`Some`) or a step
    /// leaves the loop (`None`: [`Harness::outside`] comes next, then a new
    /// `block_on`).
    fn run(&mut self, b: &mut Bytes<'_>) -> Option<End> {
        // Nothing the driver holds changed while no loop ran.
        self.check();
        while let Some(op) = b.u8() {
            match op % 13 {
                0 => {
                    let cap = 1 + usize::from(b.u8().unwrap_or(0) % 64);
                    self.spawn_read(cap);
                }
                1 => {
                    let len = 1 + usize::from(b.u8().unwrap_or(0) % 32);
                    self.spawn_write(len);
                }
                2 => self.spawn_accept(),
                3 => self.spawn_connect(),
                4 | 5 if !self.live.is_empty() => {
                    let i = usize::from(b.u8().unwrap_or(0)) % self.live.len();
                    if op % 13 == 4 {
                        self.poll(i);
                    } else if !matches!(self.live[i].kind, Kind::Connect(_)) {
                        self.drop_future(i);
                    }
                }
                6 => {
                    let n = 1 + usize::from(b.u8().unwrap_or(0) % 48);
                    self.arrive(n);
                }
                7 => self.decide(),
                8 => self.hand_over(),
                9 => self.new_listener(),
                10 if !self.conns.is_empty() => {
                    let i = usize::from(b.u8().unwrap_or(0)) % self.conns.len();
                    self.conns.swap_remove(i);
                }
                11 if b.u8().unwrap_or(0).is_multiple_of(4) => {
                    // Shut the runtime down with whatever is in flight.
                    let in_flight = self.in_flight();
                    let keep: Vec<Box<dyn std::any::Any>> = vec![
                        Box::new(self.client.take()),
                        Box::new(self.server.take()),
                        Box::new(self.listener.take()),
                        Box::new(std::mem::take(&mut self.conns)),
                    ];
                    return Some(End::Shutdown {
                        futures: std::mem::take(&mut self.live),
                        keep,
                        in_flight,
                    });
                }
                // End this `block_on` with whatever is in flight.
                12 => return None,
                _ => {}
            }
            self.check();
        }
        self.finish();
        Some(End::Clean)
    }

    /// Between two `block_on` calls (no loop is current): up to 3 futures,
    /// chosen by the input, are dropped, or polled once if their op was
    /// submitted. The drops hand their ops to the loop's table (rule O2),
    /// whose cancels go out when the next `block_on` runs the loop; a poll
    /// answers `Pending`, or the result of a completion already handed
    /// over. (Futures that have submitted nothing are not polled here: their
    /// op would fail as polled outside any loop, and accepts or connects
    /// that finish here would make sockets of no loop.)
    fn outside(&mut self, b: &mut Bytes<'_>) {
        assert!(
            coil::runtime::stats().is_none(),
            "outside the loop, no loop is current"
        );
        for _ in 0..b.u8().unwrap_or(0) % 4 {
            let x = b.u8().unwrap_or(0);
            if self.live.is_empty() {
                return;
            }
            let i = usize::from(x & 0x7F) % self.live.len();
            let l = &self.live[i];
            if x & 0x80 == 0 {
                if !matches!(l.kind, Kind::Connect(_)) {
                    self.drop_future(i);
                }
            } else if l.ud.is_some() && matches!(l.kind, Kind::Read | Kind::Write(_)) {
                self.poll(i);
            }
        }
    }

    /// Table and driver agree on what is in flight.
    fn check(&self) {
        assert_eq!(
            ops_in_table(),
            self.in_flight().len(),
            "the op table and the driver disagree on the ops in flight"
        );
    }

    fn add(&mut self, kind: Kind, buf: Option<usize>, fut: impl Future<Output = Out> + 'static) {
        self.live.push(Live {
            fut: Box::pin(fut),
            kind,
            buf,
            ud: None,
            polled: false,
            flag: Arc::default(),
        });
    }

    fn spawn_read(&mut self, cap: usize) {
        let reading = self.live.iter().any(|l| l.kind == Kind::Read);
        let Some(c) = self.client.clone() else { return };
        if reading || self.live.len() >= MAX_LIVE {
            return; // one reader at a time: byte order is then defined
        }
        let buf = FuzzBuf::new(&self.log, Vec::with_capacity(cap));
        let id = buf.id;
        self.add(
            Kind::Read,
            Some(id),
            async move { Out::Io(c.read(buf).await) },
        );
    }

    fn spawn_write(&mut self, len: usize) {
        let Some(c) = self.client.clone() else { return };
        if self.live.len() >= MAX_LIVE {
            return;
        }
        let buf = FuzzBuf::new(&self.log, vec![0xA5; len]);
        let id = buf.id;
        self.add(Kind::Write(len), Some(id), async move {
            Out::Io(c.write(buf).await)
        });
    }

    fn spawn_accept(&mut self) {
        let Some(l) = self.listener.clone() else {
            return;
        };
        if self.live.len() >= MAX_LIVE {
            return;
        }
        let g = self.generation;
        self.add(Kind::Accept(g), None, async move {
            Out::Accept(l.accept().await)
        });
    }

    fn spawn_connect(&mut self) {
        let Some(addr) = self.addr else { return };
        if self.live.len() >= MAX_LIVE {
            return;
        }
        let g = self.generation;
        self.add(Kind::Connect(g), None, async move {
            Out::Connect(TcpStream::connect(addr).await)
        });
    }

    /// Poll future `i`; returns whether it finished.
    fn poll(&mut self, i: usize) -> bool {
        let before = self.in_flight();
        let l = &mut self.live[i];
        l.flag.0.store(false, Ordering::SeqCst);
        l.polled = true;
        let waker = Waker::from(l.flag.clone());
        let res = l.fut.as_mut().poll(&mut Context::from_waker(&waker));
        // A poll submits at most one op: learn its key.
        let new: Vec<u64> = self
            .in_flight()
            .into_iter()
            .filter(|k| !before.contains(k))
            .collect();
        assert!(new.len() <= 1, "one poll submitted {} ops", new.len());
        let l = &mut self.live[i];
        if let Some(&ud) = new.first() {
            assert!(l.ud.is_none(), "a future submitted a second op");
            l.ud = Some(ud);
            self.log.submitted.borrow_mut().push(ud);
            if let Some(id) = l.buf {
                self.log.bufs.borrow_mut()[id].ud = Some(ud);
            }
        }
        let Poll::Ready(out) = res else { return false };
        let l = self.live.swap_remove(i);
        self.output(l.kind, out);
        true
    }

    fn output(&mut self, kind: Kind, out: Out) {
        match (kind, out) {
            (Kind::Read, Out::Io(BufResult(res, buf))) => {
                let n = res.unwrap_or_else(|e| panic!("a read failed: {e}"));
                assert_eq!(n, buf.vec.len(), "read count and buffer length differ");
                assert!(n > 0, "a read returned end of stream on an open stream");
                self.got.extend_from_slice(&buf.vec);
                assert!(
                    self.arrived.starts_with(&self.got),
                    "reads returned bytes lost, duplicated or out of order: arrived {:?}, read {:?}",
                    self.arrived,
                    self.got
                );
            }
            (Kind::Write(len), Out::Io(BufResult(res, buf))) => {
                let n = res.unwrap_or_else(|e| panic!("a write failed: {e}"));
                assert!((1..=len).contains(&n), "wrote {n} of {len} bytes");
                assert_eq!(buf.vec.len(), len, "a write changed its buffer");
            }
            (Kind::Accept(g), Out::Accept(res)) => {
                let (s, _) = res.unwrap_or_else(|e| panic!("an accept failed: {e}"));
                if g == self.generation {
                    self.accepted += 1;
                    // A connect may finish (in the kernel) before its future
                    // is polled: those in flight count too.
                    let connecting = self
                        .live
                        .iter()
                        .filter(|l| l.kind == Kind::Connect(g))
                        .count();
                    assert!(
                        self.accepted <= self.connected + connecting,
                        "accepted {} connections, {} were made ({connecting} connecting)",
                        self.accepted,
                        self.connected
                    );
                }
                self.conns.push(s);
            }
            (Kind::Connect(g), Out::Connect(res)) => match res {
                Ok(s) => {
                    if g == self.generation {
                        self.connected += 1;
                    }
                    self.conns.push(s);
                }
                Err(e) if g != self.generation => {
                    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
                }
                Err(e) => panic!("a connect to the live listener failed: {e}"),
            },
            (kind, _) => unreachable!("{kind:?} gave another kind's output"),
        }
    }

    /// Drop future `i` (cancelling its op if it is in flight).
    fn drop_future(&mut self, i: usize) {
        let l = self.live.swap_remove(i);
        if let Some(ud) = l.ud {
            let still = self.in_flight().contains(&ud);
            match l.kind {
                Kind::Read if still => {
                    self.read_orphans.insert(ud);
                }
                Kind::Accept(g) if still && g == self.generation => {
                    self.accept_orphans.insert(ud);
                }
                _ => {}
            }
        }
        drop(l);
    }

    fn arrive(&mut self, n: usize) {
        let Some(c) = &self.client else { return };
        let start = self.arrived.len() as u8;
        let bytes: Vec<u8> = (0..n).map(|i| start.wrapping_add(i as u8)).collect();
        let fd = c.as_raw_fd();
        if coil::fuzz::sim_arrive(&self.log.runtime(), fd, &bytes) == Some(true) {
            self.arrived.extend_from_slice(&bytes);
        }
    }

    /// The loop hands every decided completion over; check the wakes.
    fn hand_over(&mut self) {
        let before = self.in_flight();
        coil::fuzz::park();
        let after = self.in_flight();
        let done: Vec<u64> = before.into_iter().filter(|k| !after.contains(k)).collect();
        self.read_orphans.retain(|k| !done.contains(k));
        self.accept_orphans.retain(|k| !done.contains(k));
        for l in &self.live {
            let woken = l.flag.0.load(Ordering::SeqCst);
            if let Some(ud) = l.ud
                && done.contains(&ud)
            {
                assert!(woken, "{:?} future not woken by its completion", l.kind);
            }
            // Polled, pending, nothing submitted: it waits for dropped ops
            // on its fd (op/fd.rs rule 4); once they are gone it is woken.
            let waits_for = match l.kind {
                Kind::Read => Some(&self.read_orphans),
                Kind::Accept(g) if g == self.generation => Some(&self.accept_orphans),
                _ => None,
            };
            if l.polled
                && l.ud.is_none()
                && let Some(orphans) = waits_for
                && orphans.is_empty()
            {
                assert!(
                    woken,
                    "{:?} future waiting for dropped ops was not woken",
                    l.kind
                );
            }
        }
    }

    fn new_listener(&mut self) {
        // The old listener closes once its accept futures and ops let go.
        self.listener = None;
        self.generation += 1;
        self.connected = 0;
        self.accepted = 0;
        self.accept_orphans.clear();
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a simulated listener");
        self.addr = Some(l.local_addr().expect("a bound listener's address"));
        self.listener = Some(Rc::new(l));
    }

    /// Poll, decide and hand over until every live future is done; `what`
    /// names the stage for the panic when they do not.
    fn drive(&mut self, what: &str) {
        for _ in 0..16 {
            let mut i = 0;
            while i < self.live.len() {
                let l = &self.live[i];
                if (!l.polled || l.flag.0.load(Ordering::SeqCst)) && self.poll(i) {
                    continue;
                }
                i += 1;
            }
            if self.live.is_empty() {
                return;
            }
            self.decide();
            self.decide();
            self.hand_over();
        }
        let kinds: Vec<Kind> = self.live.iter().map(|l| l.kind).collect();
        panic!(
            "{what}: futures never finished: {kinds:?} ({} bytes arrived, {} read; {} connections made, {} accepted)",
            self.arrived.len(),
            self.got.len(),
            self.connected,
            self.accepted
        );
    }

    /// Connect a pair, and a listener for the fuzzed accepts.
    fn setup(&mut self) {
        self.new_listener();
        self.spawn_connect();
        self.spawn_accept();
        self.drive("setup");
        let mut conns = std::mem::take(&mut self.conns);
        assert_eq!(conns.len(), 2, "setup connected a pair");
        // Either end will do: bytes arrive on `client`, writes go to `server`.
        let (server, client) = (conns.pop().unwrap(), conns.pop().unwrap());
        self.client = Some(Rc::new(client));
        self.server = Some(server);
        self.new_listener();
    }

    /// Drop what is in flight, then read and accept everything that is owed:
    /// nothing lost, nothing twice, nothing left.
    fn finish(&mut self) {
        let (reads_and_accepts, connects): (Vec<Live>, Vec<Live>) = std::mem::take(&mut self.live)
            .into_iter()
            .partition(|l| !matches!(l.kind, Kind::Connect(_)));
        self.live = connects;
        for l in reads_and_accepts {
            self.live.push(l);
            let i = self.live.len() - 1;
            self.drop_future(i);
        }
        self.drive("finishing the connects");
        self.decide();
        self.hand_over();
        assert_eq!(
            self.in_flight(),
            Vec::<u64>::new(),
            "ops left after the drain"
        );
        assert_eq!(ops_in_table(), 0, "op table not empty after the drain");
        // Every byte that arrived is read, in order, then reads wait.
        for _ in 0..=self.arrived.len() {
            if self.got.len() == self.arrived.len() {
                break;
            }
            self.spawn_read(64);
            self.drive("reading what arrived (bytes lost?)");
        }
        assert_eq!(self.got, self.arrived, "bytes lost");
        // Every connection is accepted once.
        for _ in 0..=self.connected {
            if self.accepted == self.connected {
                break;
            }
            self.spawn_accept();
            self.drive("accepting what connected (connections lost?)");
        }
        assert_eq!(self.accepted, self.connected, "connections lost");
        // Nothing more to read or accept.
        self.spawn_read(64);
        self.spawn_accept();
        for i in 0..self.live.len() {
            assert!(!self.poll(i), "a read or accept found something extra");
        }
        self.decide();
        self.hand_over();
        for l in &mut self.live {
            let waker = Waker::from(l.flag.clone());
            assert!(
                l.fut
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending(),
                "a {:?} future found something extra",
                l.kind
            );
        }
        self.live.clear();
        self.decide();
        self.hand_over();
        // Close everything: no op, no socket left.
        self.conns.clear();
        self.client = None;
        self.server = None;
        self.listener = None;
        self.decide();
        self.hand_over();
        let s = coil::runtime::stats().expect("a loop");
        assert_eq!(s.io_ops, 0, "io ops left");
        assert_eq!(
            self.in_flight(),
            Vec::<u64>::new(),
            "ops left in the driver"
        );
        assert_eq!(coil::sim::open_sockets(), Some(0), "sockets leaked");
    }
}
