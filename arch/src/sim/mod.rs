//! The deterministic simulator backend: a virtual clock, a seeded random
//! source, and (see [`net`]) an in-memory network.
//!
//! Chosen only by `coil::sim::Builder` (never by `COIL_DRIVER`): built with
//! [`Driver::sim`](crate::Driver::sim) and reached with
//! [`Driver::as_sim`](crate::Driver::as_sim).
//!
//! # Time
//!
//! The driver never reads a real clock. It keeps a virtual time ([`SimDriver::now`],
//! a [`Duration`] since the simulation started) that only the runtime moves, with
//! [`SimDriver::advance_to`]. Every completion is scheduled at a virtual instant
//! (now plus a seeded latency); `park` hands over the ones that are due and never
//! blocks on them. [`SimDriver::next_event`] tells the runtime when the next one is
//! due, so that when every task is idle it can jump the clock straight there.
//!
//! # Determinism
//!
//! Every random choice (latencies, faults, ports) comes from one SplitMix64 stream
//! seeded by [`SimConfig::seed`]; nothing depends on addresses, hash order or the
//! real clock. Two drivers built with the same configuration and fed the same calls
//! produce the same completions at the same virtual times.
//!
//! # Drop
//!
//! The simulator touches an op's memory only inside `submit`, `park` and
//! `cancel` (the in-memory network copies into and out of it there), so ops
//! still pending when the driver is dropped are forgotten and nothing writes
//! them afterwards.
//!
//! # Remote wakes
//!
//! The unpark eventfd is real: other threads (the blocking pool, a `Handle`) can
//! still wake the loop. `park` with a non-zero timeout waits for it in real time;
//! the runtime only does that when nothing in the simulation can make progress.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::op::{Completion, OpPtr, SimOp, SockAddr};
use crate::sys::{Blocking, EventFd, syscall};
use crate::unpark::{self, Unparker};

pub mod net;
use net::{Event, Net, Proto, STREAM_WINDOW, State, Stream};

/// The first virtual fd number. Real fd numbers never reach it (the kernel caps
/// `RLIMIT_NOFILE` at `fs.nr_open`, at most `2^30 - 8`), so a virtual fd can never
/// alias a real one.
pub const VIRTUAL_FD_BASE: i32 = 1 << 30;

/// Whether `fd` is a simulator socket rather than a kernel fd.
#[inline]
pub fn is_virtual_fd(fd: std::os::fd::RawFd) -> bool {
    fd >= VIRTUAL_FD_BASE
}

/// SplitMix64 (Steele, Lea, Flood 2014): the simulator's only random source.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (no modulo bias worth
    /// mentioning for simulation sizes).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// `true` with probability `p` (clamped to `0..=1`; 0 never draws).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits as a float in [0, 1).
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

/// Faults the simulated network injects, each a probability in `0.0..=1.0`
/// applied per eligible operation (0 disables it).
///
/// ```
/// use coil_arch::sim::Faults;
/// let f = Faults { short_reads: 0.3, reset: 0.01, ..Faults::default() };
/// assert_eq!(f.short_writes, 0.0);
/// assert_eq!(Faults::all(0.1).eagain, 0.1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// A stream receive returns fewer bytes than are available (at least one).
    pub short_reads: f64,
    /// A stream send accepts fewer bytes than offered (at least one).
    pub short_writes: f64,
    /// A ready operation is found not ready after all (what a spurious epoll
    /// wakeup gives: `perform` returns `EAGAIN`) and is retried after another
    /// latency. Invisible above the driver, as with the real backends.
    pub eagain: f64,
    /// A send or receive on a connected stream resets the connection: both ends
    /// see `ECONNRESET` from then on, and bytes in transit are dropped.
    pub reset: f64,
    /// A cancelled operation that can complete at that moment completes with its
    /// real result instead of `ECANCELED` (the cancel lost the race).
    pub cancel_race: f64,
    /// A connect to a listening address is refused (`ECONNREFUSED`).
    pub refuse_connect: f64,
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Every fault with probability `p`.
    pub fn all(p: f64) -> Faults {
        Faults {
            short_reads: p,
            short_writes: p,
            eagain: p,
            reset: p,
            cancel_race: p,
            refuse_connect: p,
        }
    }
}

/// How to build a [`SimDriver`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Seeds every random choice of the driver.
    pub seed: u64,
    /// Faults to inject.
    pub faults: Faults,
    /// Shortest latency of a completion (and of a segment or datagram in transit).
    pub min_latency: Duration,
    /// Longest latency; each one is drawn uniformly between the two.
    pub max_latency: Duration,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 0,
            faults: Faults::default(),
            min_latency: Duration::from_micros(5),
            max_latency: Duration::from_micros(500),
        }
    }
}

/// The simulator backend. See the module docs.
pub struct SimDriver {
    config: SimConfig,
    now: Duration,
    rng: SplitMix64,
    /// Tie-breaker for events due at the same instant: scheduling order.
    seq: u64,
    /// Completions decided, keyed by (due time, seq).
    due: BTreeMap<(Duration, u64), Completion>,
    /// Network events, keyed by (time, seq).
    events: BTreeMap<(Duration, u64), Event>,
    /// Submitted ops not yet decided, in submission order: seq -> op.
    pending: BTreeMap<u64, Pending>,
    /// user_data -> its key in `pending`.
    by_key: BTreeMap<u64, u64>,
    net: Net,
    shared: Arc<unpark::Shared>,
}

struct Pending {
    user_data: u64,
    op: OpPtr,
    /// Not tried before this time (an injected EAGAIN).
    not_before: Duration,
}

/// What trying an op gave.
enum Attempt {
    Done(i32),
    Blocked,
}

fn err(e: i32) -> Attempt {
    Attempt::Done(-e)
}

fn io_err(e: &io::Error) -> Attempt {
    err(e.raw_os_error().unwrap_or(libc::EIO))
}

impl std::fmt::Debug for SimDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDriver")
            .field("now", &self.now)
            .field("due", &self.due.len())
            .field("pending", &self.pending.len())
            .field("sockets", &self.net.sockets.len())
            .finish_non_exhaustive()
    }
}

impl SimDriver {
    pub(crate) fn new(config: SimConfig) -> io::Result<SimDriver> {
        let shared = unpark::Shared::new(EventFd::new(Blocking::No)?);
        // Decorrelate the driver's stream from the scheduler's, which the
        // runtime seeds with the same seed.
        let mut rng = SplitMix64::new(config.seed ^ 0x5EED_D21F_E2AC_C0DE);
        let first_port = 32_768 + rng.below(20_000) as u16;
        Ok(SimDriver {
            config,
            now: Duration::ZERO,
            rng,
            seq: 0,
            due: BTreeMap::new(),
            events: BTreeMap::new(),
            pending: BTreeMap::new(),
            by_key: BTreeMap::new(),
            net: Net::new(first_port),
            shared,
        })
    }

    pub(crate) fn unparker(&self) -> Unparker {
        Unparker::new(self.shared.clone())
    }

    /// The virtual time: how long the simulation has run.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Moves the virtual clock forward to `t` (never backward).
    pub fn advance_to(&mut self, t: Duration) {
        self.now = self.now.max(t);
    }

    /// When the next scheduled event (a completion, a segment arriving, a
    /// retry) is due, if any. Operations waiting for something nothing
    /// scheduled will cause (a receive on a silent connection) are not
    /// events: when this is `None` and no task can run, the simulation is
    /// deadlocked.
    pub fn next_event(&self) -> Option<Duration> {
        let due = self.due.keys().next().map(|&(t, _)| t);
        let ev = self.events.keys().next().map(|&(t, _)| t);
        let retry = self
            .pending
            .values()
            .filter(|p| p.not_before > self.now)
            .map(|p| p.not_before)
            .min();
        [due, ev, retry].into_iter().flatten().min()
    }

    /// Operations submitted and not yet completed (decided or not).
    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.due.len()
    }

    /// Virtual sockets open.
    pub fn open_sockets(&self) -> usize {
        self.net.sockets.len()
    }

    /// A latency drawn from the configured range.
    fn latency(&mut self) -> Duration {
        let (lo, hi) = (
            self.config.min_latency,
            self.config.max_latency.max(self.config.min_latency),
        );
        let span = u64::try_from((hi - lo).as_nanos()).unwrap_or(u64::MAX);
        lo + Duration::from_nanos(if span == 0 {
            0
        } else {
            self.rng.below(span.saturating_add(1))
        })
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn complete_later(&mut self, user_data: u64, result: i32) {
        let at = self.now + self.latency();
        let seq = self.next_seq();
        self.due.insert(
            (at, seq),
            Completion {
                user_data,
                result,
                flags: 0,
            },
        );
    }

    fn event_at(&mut self, at: Duration, ev: Event) {
        let seq = self.next_seq();
        self.events.insert((at, seq), ev);
    }

    /// The arrival time of the next segment to stream `to`: a fresh latency,
    /// but never before the previous segment (streams stay ordered).
    fn stream_arrival(&mut self, to: RawFd) -> Duration {
        let at = self.now + self.latency();
        match self.net.stream(to) {
            Some(s) => {
                let at = at.max(s.last_arrival);
                s.last_arrival = at;
                at
            }
            None => at,
        }
    }

    pub(crate) fn park(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<()> {
        self.step();
        self.take_due(out);
        if out.is_empty() && timeout != Some(Duration::ZERO) {
            self.wait_unpark(timeout)?;
        }
        if self.shared.is_notified() {
            self.shared.eventfd().drain()?;
            self.shared.clear();
        }
        Ok(())
    }

    fn take_due(&mut self, out: &mut Vec<Completion>) {
        while let Some(entry) = self.due.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            out.push(entry.remove());
        }
    }

    /// Real-time wait for an unpark (the only thing outside the simulation).
    fn wait_unpark(&self, timeout: Option<Duration>) -> io::Result<()> {
        let ms = timeout.map_or(-1, |t| {
            i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
        });
        let mut pfd = libc::pollfd {
            fd: self.shared.eventfd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a live local and the count is 1.
        match syscall!(unsafe { libc::poll(&raw mut pfd, 1, ms) }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deliver due network events, then try pending ops (in submission
    /// order) until none makes progress.
    fn step(&mut self) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let ev = entry.remove();
            self.deliver(ev);
        }
        loop {
            let mut progress = false;
            let keys: Vec<u64> = self.pending.keys().copied().collect();
            for key in keys {
                let Some(p) = self.pending.get(&key) else {
                    continue;
                };
                if p.not_before > self.now {
                    continue;
                }
                let (user_data, op) = (p.user_data, p.op);
                // A spurious readiness: the op is looked at again later.
                if self.config.faults.eagain > 0.0 && self.rng.chance(self.config.faults.eagain) {
                    let at = self.now + self.latency();
                    if let Some(p) = self.pending.get_mut(&key) {
                        p.not_before = at;
                    }
                    continue;
                }
                if let Attempt::Done(res) = self.attempt(op) {
                    self.pending.remove(&key);
                    self.by_key.remove(&user_data);
                    self.complete_later(user_data, res);
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
    }

    fn deliver(&mut self, ev: Event) {
        match ev {
            Event::Arrive { to, bytes } => {
                if let Some(s) = self.net.stream(to) {
                    s.in_transit -= bytes.len();
                    if !s.reset {
                        s.rx.extend(bytes);
                    }
                }
            }
            Event::Fin { to } => {
                if let Some(s) = self.net.stream(to) {
                    s.rx_fin = true;
                }
            }
            Event::Backlog { listener, server } => {
                let queued = match self.net.sockets.get_mut(&listener) {
                    Some(l) => match &mut l.state {
                        State::Listening { backlog } => {
                            backlog.push_back(server);
                            true
                        }
                        _ => false,
                    },
                    None => false,
                };
                if !queued {
                    // The listener went away: the connection is reset.
                    self.close_socket(server, true);
                }
            }
            Event::Datagram { to, bytes, from } => {
                if let Some(sock) = self.net.sockets.get_mut(&to)
                    && let State::Dgram(d) = &mut sock.state
                    && d.peer.is_none_or(|p| p == from)
                    && d.rx.len() < net::DGRAM_QUEUE
                {
                    d.rx.push_back((bytes, from));
                }
            }
        }
    }

    /// Reset both ends of the connection `fd` belongs to.
    fn reset(&mut self, fd: RawFd) {
        let peer = self.net.stream(fd).and_then(|s| {
            s.reset = true;
            s.rx.clear();
            s.peer_fd.take()
        });
        if let Some(p) = peer
            && let Some(s) = self.net.stream(p)
        {
            s.reset = true;
            s.rx.clear();
            s.peer_fd = None;
        }
    }

    fn attempt(&mut self, op: OpPtr) -> Attempt {
        // SAFETY: `op` was submitted and has not completed: the submitter keeps
        // it alive, in place and otherwise unused until then (Driver::submit).
        let op = unsafe { &mut *op.0.as_ptr() };
        let Some(sim) = op.sim() else {
            return err(libc::EOPNOTSUPP);
        };
        match sim {
            SimOp::Nop => Attempt::Done(0),
            SimOp::Accept { fd, peer } => self.accept(fd, peer),
            SimOp::Connect { fd, addr } => self.connect(fd, addr),
            SimOp::Recv { fd, buf } => self.recv(fd, buf),
            SimOp::Send { fd, buf } => self.send(fd, buf),
            SimOp::RecvFrom { fd, buf, from } => self.recv_from(fd, buf, from),
            SimOp::SendTo { fd, buf, to } => self.send_to(fd, buf, to),
            SimOp::Shutdown { fd, how } => self.shutdown(fd, how),
        }
    }

    fn accept(&mut self, fd: RawFd, peer: &mut SockAddr) -> Attempt {
        let server = match self.net.get(fd) {
            Err(e) => return io_err(&e),
            Ok(s) => match &mut s.state {
                State::Listening { backlog } => match backlog.pop_front() {
                    Some(server) => server,
                    None => return Attempt::Blocked,
                },
                _ => return err(libc::EINVAL),
            },
        };
        if let Some(a) = self.net.stream(server).and_then(|s| s.peer_addr) {
            *peer = SockAddr::from_std(a);
        }
        Attempt::Done(server)
    }

    fn connect(&mut self, fd: RawFd, addr: Option<SocketAddr>) -> Attempt {
        let Some(addr) = addr else {
            return err(libc::EAFNOSUPPORT);
        };
        match self.net.get(fd) {
            Err(e) => return io_err(&e),
            Ok(s) if s.proto != Proto::Tcp => return err(libc::EOPNOTSUPP),
            Ok(s) => match s.state {
                State::Idle => {}
                State::Stream(_) => return err(libc::EISCONN),
                _ => return err(libc::EINVAL),
            },
        }
        let listener = self.net.lookup(Proto::Tcp, addr).filter(|l| {
            matches!(
                self.net.sockets.get(l).map(|s| &s.state),
                Some(State::Listening { .. })
            )
        });
        let refused = self.rng.chance(self.config.faults.refuse_connect);
        let Some(listener) = listener.filter(|_| !refused) else {
            return err(libc::ECONNREFUSED);
        };
        let local = match self.net.autobind(fd) {
            Ok(a) => a,
            Err(e) => return io_err(&e),
        };
        let v6 = addr.is_ipv6();
        let server = self.net.socket(Proto::Tcp, v6);
        let srv = self.net.get(server).expect("just created");
        srv.local = Some(addr);
        srv.state = State::Stream(Stream {
            peer_fd: Some(fd),
            peer_addr: Some(local),
            ..Stream::default()
        });
        self.net.get(fd).expect("checked").state = State::Stream(Stream {
            peer_fd: Some(server),
            peer_addr: Some(addr),
            ..Stream::default()
        });
        let at = self.now + self.latency();
        self.event_at(at, Event::Backlog { listener, server });
        Attempt::Done(0)
    }

    /// The start of a stream `recv` or `send` on `fd`: draws whether the call
    /// resets the connection and whether it is cut short (with chance
    /// `short`), in that order, then checks that `fd` is a stream that was
    /// not reset; else the error to return.
    fn stream_call(&mut self, fd: RawFd, short: f64) -> Result<(bool, bool), Attempt> {
        let draws = (
            self.rng.chance(self.config.faults.reset),
            self.rng.chance(short),
        );
        let Some(s) = self.net.stream(fd) else {
            return Err(match self.net.get(fd) {
                Err(e) => io_err(&e),
                Ok(_) => err(libc::ENOTCONN),
            });
        };
        if s.reset {
            return Err(err(libc::ECONNRESET));
        }
        Ok(draws)
    }

    fn recv(&mut self, fd: RawFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> Attempt {
        let (reset_now, short) = match self.stream_call(fd, self.config.faults.short_reads) {
            Ok(draws) => draws,
            Err(e) => return e,
        };
        let s = self.net.stream(fd).expect("checked");
        if buf.is_empty() || s.rd_shut {
            return Attempt::Done(0);
        }
        if s.rx.is_empty() {
            return if s.rx_fin {
                Attempt::Done(0)
            } else {
                Attempt::Blocked
            };
        }
        if reset_now && s.peer_fd.is_some() {
            self.reset(fd);
            return err(libc::ECONNRESET);
        }
        let mut n = buf.len().min(s.rx.len());
        if short && n > 1 {
            n = 1 + self.rng.below(n as u64 - 1) as usize;
        }
        let s = self.net.stream(fd).expect("checked");
        for (dst, src) in buf.iter_mut().zip(s.rx.drain(..n)) {
            dst.write(src);
        }
        Attempt::Done(n as i32)
    }

    fn send(&mut self, fd: RawFd, buf: &[u8]) -> Attempt {
        let (reset_now, short) = match self.stream_call(fd, self.config.faults.short_writes) {
            Ok(draws) => draws,
            Err(e) => return e,
        };
        let s = self.net.stream(fd).expect("checked");
        if s.wr_shut {
            return err(libc::EPIPE);
        }
        let Some(peer) = s.peer_fd else {
            return err(libc::EPIPE);
        };
        if buf.is_empty() {
            return Attempt::Done(0);
        }
        if reset_now {
            self.reset(fd);
            return err(libc::ECONNRESET);
        }
        let Some(p) = self.net.stream(peer) else {
            return err(libc::EPIPE);
        };
        if p.rd_shut {
            // Linux discards what arrives after SHUT_RD; accept and drop.
            return Attempt::Done(buf.len().min(i32::MAX as usize) as i32);
        }
        let room = STREAM_WINDOW.saturating_sub(p.rx.len() + p.in_transit);
        if room == 0 {
            return Attempt::Blocked;
        }
        let mut n = buf.len().min(room);
        if short && n > 1 {
            n = 1 + self.rng.below(n as u64 - 1) as usize;
        }
        let n = n.min(i32::MAX as usize);
        self.net.stream(peer).expect("checked").in_transit += n;
        let at = self.stream_arrival(peer);
        self.event_at(
            at,
            Event::Arrive {
                to: peer,
                bytes: buf[..n].to_vec(),
            },
        );
        Attempt::Done(n as i32)
    }

    fn recv_from(
        &mut self,
        fd: RawFd,
        buf: &mut [std::mem::MaybeUninit<u8>],
        from: &mut SockAddr,
    ) -> Attempt {
        let sock = match self.net.get(fd) {
            Err(e) => return io_err(&e),
            Ok(s) => s,
        };
        let State::Dgram(d) = &mut sock.state else {
            return err(libc::EOPNOTSUPP);
        };
        let Some((bytes, src)) = d.rx.pop_front() else {
            return Attempt::Blocked;
        };
        let n = buf.len().min(bytes.len());
        for (dst, b) in buf.iter_mut().zip(&bytes[..n]) {
            dst.write(*b);
        }
        *from = SockAddr::from_std(src);
        Attempt::Done(n.min(i32::MAX as usize) as i32)
    }

    fn send_to(&mut self, fd: RawFd, buf: &[u8], to: Option<SocketAddr>) -> Attempt {
        let peer = match self.net.get(fd) {
            Err(e) => return io_err(&e),
            Ok(s) => match &s.state {
                State::Dgram(d) => d.peer,
                _ => return err(libc::EOPNOTSUPP),
            },
        };
        let Some(to) = to.or(peer) else {
            return err(libc::EDESTADDRREQ);
        };
        let from = match self.net.autobind(fd) {
            Ok(a) => a,
            Err(e) => return io_err(&e),
        };
        if buf.len() > 65_507 {
            return err(libc::EMSGSIZE);
        }
        // A datagram to nowhere is lost, as on a real network.
        if let Some(dest) = self.net.lookup(Proto::Udp, to) {
            let at = self.now + self.latency();
            self.event_at(
                at,
                Event::Datagram {
                    to: dest,
                    bytes: buf.to_vec(),
                    from,
                },
            );
        }
        Attempt::Done(buf.len() as i32)
    }

    fn shutdown(&mut self, fd: RawFd, how: i32) -> Attempt {
        let Some(s) = self.net.stream(fd) else {
            return match self.net.get(fd) {
                Err(e) => io_err(&e),
                Ok(_) => err(libc::ENOTCONN),
            };
        };
        if how == libc::SHUT_RD || how == libc::SHUT_RDWR {
            s.rd_shut = true;
        }
        if (how == libc::SHUT_WR || how == libc::SHUT_RDWR) && !s.wr_shut {
            s.wr_shut = true;
            if let Some(peer) = s.peer_fd {
                let at = self.stream_arrival(peer);
                self.event_at(at, Event::Fin { to: peer });
            }
        }
        Attempt::Done(0)
    }

    /// Close a virtual socket: its peer sees end of stream (or a reset).
    fn close_socket(&mut self, fd: RawFd, reset: bool) {
        let Some(sock) = self.net.remove(fd) else {
            return;
        };
        match sock.state {
            State::Stream(s) => {
                if let Some(peer) = s.peer_fd {
                    if reset {
                        if let Some(p) = self.net.stream(peer) {
                            p.reset = true;
                            p.rx.clear();
                            p.peer_fd = None;
                        }
                    } else {
                        if let Some(p) = self.net.stream(peer) {
                            p.peer_fd = None;
                        }
                        if !s.wr_shut {
                            let at = self.stream_arrival(peer);
                            self.event_at(at, Event::Fin { to: peer });
                        }
                    }
                }
            }
            State::Listening { backlog } => {
                // Connections never accepted are reset, as by Linux.
                for server in backlog {
                    self.close_socket(server, true);
                }
            }
            State::Idle | State::Dgram(_) => {}
        }
    }

    // ----- the socket API the runtime calls for virtual fds -----

    /// A new virtual socket: TCP (`stream`) or UDP, IPv6 or IPv4.
    pub fn socket(&mut self, stream: bool, v6: bool) -> RawFd {
        let proto = if stream { Proto::Tcp } else { Proto::Udp };
        self.net.socket(proto, v6)
    }

    /// `bind(2)`: port 0 picks a free port. `EADDRINUSE` if taken.
    ///
    /// # Errors
    ///
    /// As `bind(2)`.
    pub fn bind(&mut self, fd: RawFd, addr: SocketAddr) -> io::Result<()> {
        self.net.bind(fd, addr)
    }

    /// `listen(2)` (binds to an ephemeral port first if unbound).
    ///
    /// # Errors
    ///
    /// As `listen(2)`.
    pub fn listen(&mut self, fd: RawFd) -> io::Result<()> {
        self.net.listen(fd)
    }

    /// `connect(2)` on a UDP socket: sets the default peer (binding first if
    /// unbound).
    ///
    /// # Errors
    ///
    /// `EBADF`, or `EOPNOTSUPP` for a stream socket.
    pub fn connect_dgram(&mut self, fd: RawFd, addr: SocketAddr) -> io::Result<()> {
        self.net.autobind(fd)?;
        match &mut self.net.get(fd)?.state {
            State::Dgram(d) => {
                d.peer = Some(addr);
                d.rx.retain(|(_, from)| *from == addr);
                Ok(())
            }
            _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
    }

    /// `getsockname(2)`.
    ///
    /// # Errors
    ///
    /// `EBADF`.
    pub fn local_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        self.net.local_addr(fd)
    }

    /// `getpeername(2)`.
    ///
    /// # Errors
    ///
    /// `EBADF`, `ENOTCONN`.
    pub fn peer_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        self.net.peer_addr(fd)
    }

    /// `setsockopt(2)` for an int option: recorded, read back by
    /// [`SimDriver::get_int_opt`], otherwise without effect.
    ///
    /// # Errors
    ///
    /// `EBADF`.
    pub fn set_int_opt(&mut self, fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
        self.net.get(fd)?.opts.insert((level, name), value);
        Ok(())
    }

    /// `getsockopt(2)` for an int option: what was set, else 0.
    ///
    /// # Errors
    ///
    /// `EBADF`.
    pub fn get_int_opt(&mut self, fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
        Ok(self
            .net
            .get(fd)?
            .opts
            .get(&(level, name))
            .copied()
            .unwrap_or(0))
    }

    /// # Safety
    ///
    /// As [`Driver::submit`](crate::Driver::submit).
    pub(crate) unsafe fn submit(&mut self, user_data: u64, op: OpPtr) -> io::Result<()> {
        // SAFETY: the caller keeps `op` valid and unused by others until its
        // completion; here we only ask what it is.
        let simulated = unsafe { &mut *op.0.as_ptr() }
            .sim()
            .is_some_and(|s| s.fd().is_none_or(is_virtual_fd));
        if !simulated {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this operation is not supported by the coil simulator \
                 (it simulates TCP and UDP sockets only)",
            ));
        }
        let key = self.next_seq();
        self.pending.insert(
            key,
            Pending {
                user_data,
                op,
                not_before: self.now,
            },
        );
        self.by_key.insert(user_data, key);
        Ok(())
    }

    pub(crate) fn cancel(&mut self, user_data: u64) {
        let Some(key) = self.by_key.remove(&user_data) else {
            // Already decided: its real result stands (it won the race).
            return;
        };
        let p = self.pending.remove(&key).expect("by_key and pending agree");
        let mut result = -libc::ECANCELED;
        if self.rng.chance(self.config.faults.cancel_race)
            && let Attempt::Done(res) = self.attempt(p.op)
        {
            result = res;
        }
        self.complete_later(user_data, result);
    }

    /// Ops whose memory the simulator may still use: submitted and not yet
    /// decided (see `Driver::in_flight`).
    pub(crate) fn undecided(&self) -> usize {
        self.pending.len()
    }

    /// Cancels every undecided op, in submission order (as `cancel` does one:
    /// each gets a completion, due after a latency). See `Driver::drain`.
    pub(crate) fn cancel_all(&mut self) {
        let keys: Vec<u64> = self.pending.values().map(|p| p.user_data).collect();
        for user_data in keys {
            self.cancel(user_data);
        }
    }

    pub(crate) fn release_fd(&mut self, fd: RawFd) {
        // Fuzzing: op/fd.rs rule 1 in coil says an fd is closed only after
        // every op on it completed; check it where the close lands.
        #[cfg(fuzzing)]
        for p in self.pending.values() {
            // SAFETY: as in `attempt`: a pending op is alive and unused.
            let on = unsafe { &mut *p.op.0.as_ptr() }.sim().and_then(|s| s.fd());
            assert_ne!(
                on,
                Some(fd),
                "fd {fd} closed while op {:#x} is pending on it",
                p.user_data
            );
        }
        if is_virtual_fd(fd) {
            self.close_socket(fd, false);
        }
    }
}

/// Hooks for coil's op-lifecycle fuzz target (`coil::fuzz::op_lifecycle`),
/// which decides when the "kernel" acts instead of letting `park` do it all
/// at once.
#[cfg(fuzzing)]
impl SimDriver {
    /// Decides every op that can complete now (what `park` does first), but
    /// hands no completion over: they wait, decided, for the next `park`.
    pub fn fuzz_decide(&mut self) {
        self.step();
    }

    /// `bytes` arrive on stream `fd` now, as if its peer had sent them.
    /// Returns false (and drops them) if `fd` is not an open, connected stream.
    pub fn fuzz_arrive(&mut self, fd: RawFd, bytes: &[u8]) -> bool {
        match self.net.stream(fd) {
            Some(s) if !s.reset => {
                s.rx.extend(bytes);
                true
            }
            _ => false,
        }
    }

    /// The `user_data` of every op submitted and not yet handed over by
    /// `park` (undecided, or decided and waiting), sorted.
    pub fn fuzz_in_flight(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = self.pending.values().map(|p| p.user_data).collect();
        keys.extend(self.due.values().map(|c| c.user_data));
        keys.sort_unstable();
        keys
    }
}
