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
//! # Remote wakes
//!
//! The unpark eventfd is real: other threads (the blocking pool, a `Handle`) can
//! still wake the loop. `park` with a non-zero timeout waits for it in real time;
//! the runtime only does that when nothing in the simulation can make progress.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::op::{Completion, OpPtr};
use crate::sys::{Blocking, EventFd, syscall};
use crate::unpark::{self, Unparker};

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
#[allow(
    dead_code,
    reason = "the in-memory network (next commit) uses every field"
)]
pub struct SimDriver {
    config: SimConfig,
    now: Duration,
    rng: SplitMix64,
    /// Tie-breaker for events due at the same instant: submission order.
    seq: u64,
    /// Completions decided, keyed by (due time, seq).
    due: BTreeMap<(Duration, u64), Completion>,
    shared: Arc<unpark::Shared>,
}

impl std::fmt::Debug for SimDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDriver")
            .field("now", &self.now)
            .field("due", &self.due.len())
            .finish_non_exhaustive()
    }
}

impl SimDriver {
    pub(crate) fn new(config: SimConfig) -> io::Result<SimDriver> {
        let shared = unpark::Shared::new(EventFd::new(Blocking::No)?);
        Ok(SimDriver {
            config,
            now: Duration::ZERO,
            // Decorrelate the driver's stream from the scheduler's, which the
            // runtime seeds with the same seed.
            rng: SplitMix64::new(config.seed ^ 0x5EED_D21F_E2AC_C0DE),
            seq: 0,
            due: BTreeMap::new(),
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

    /// When the next scheduled event (a completion, a segment arriving) is due,
    /// if any. Operations waiting for something that nothing scheduled will
    /// cause (a receive on a silent connection) are not events.
    pub fn next_event(&self) -> Option<Duration> {
        self.due.keys().next().map(|&(t, _)| t)
    }

    /// A latency drawn from the configured range.
    #[allow(dead_code, reason = "used by the in-memory network")]
    fn latency(&mut self) -> Duration {
        let (lo, hi) = (
            self.config.min_latency,
            self.config.max_latency.max(self.config.min_latency),
        );
        let span = u64::try_from((hi - lo).as_nanos()).unwrap_or(u64::MAX);
        lo + Duration::from_nanos(if span == 0 {
            0
        } else {
            self.rng.below(span + 1)
        })
    }

    #[allow(dead_code, reason = "used by the in-memory network")]
    fn schedule(&mut self, at: Duration, user_data: u64, result: i32) {
        self.seq += 1;
        self.due.insert(
            (at, self.seq),
            Completion {
                user_data,
                result,
                flags: 0,
            },
        );
    }

    pub(crate) fn park(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<()> {
        self.take_due(out);
        if out.is_empty() && timeout != Some(Duration::ZERO) {
            self.wait_unpark(timeout)?;
        }
        if self.shared_notified() {
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

    fn shared_notified(&self) -> bool {
        self.shared.is_notified()
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

    /// # Safety
    ///
    /// As [`Driver::submit`](crate::Driver::submit).
    pub(crate) unsafe fn submit(&mut self, user_data: u64, op: OpPtr) -> io::Result<()> {
        let _ = (user_data, op);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this operation is not supported by the coil simulator",
        ))
    }

    pub(crate) fn cancel(&mut self, user_data: u64) {
        let _ = user_data;
    }

    pub(crate) fn release_fd(&mut self, fd: std::os::fd::RawFd) {
        let _ = fd;
    }
}
