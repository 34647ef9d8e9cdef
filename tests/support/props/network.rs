//! The network programs of the simulator property suites: clients send data
//! in chunks to an echo server under network faults (see the parent module's
//! docs), and [`check_outcome`] checks what each connection's ends saw.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use super::{Rng, assert_quiescent};
use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};
use coil::sim::{Builder, Faults, Report};
use coil::time::{sleep, timeout};

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
                coil::spawn(async move {
                    let mut echoes = Vec::new();
                    while let Ok((s, _)) = listener.accept().await {
                        echoes.push(coil::spawn(echo(s, outcomes.clone())));
                    }
                    echoes
                })
            };
            let mut clients = Vec::new();
            for (i, plan) in plans.into_iter().enumerate() {
                clients.push(coil::spawn(client(i, plan, addr, outcomes.clone())));
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
        coil::spawn(async move {
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
