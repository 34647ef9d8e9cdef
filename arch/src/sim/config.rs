//! How to build a simulator: [`SimConfig`] (seed, latency range) and the [`Faults`] its
//! network injects.

use std::time::Duration;

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

/// How to build a [`SimDriver`](super::SimDriver).
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
