//! Random programs of reads, cancelled reads, writes and peer actions on one
//! stream under the real drivers (io_uring and epoll; Unix and TCP), checked
//! against a byte-count model: `support/stream_program.rs` has the steps and
//! the checks. The fuzz target `stream_program` runs the same code.

use crate::support;

#[path = "../support/stream_program.rs"]
mod stream_program;

use coil::runtime::DriverChoice;
use proptest::prelude::*;
use stream_program::{Kind, run};

/// A read that must end but does not fails after `MUST_END` (10 s); every
/// shrinking step that still fails costs as much, so shrinking is bounded.
fn config() -> ProptestConfig {
    ProptestConfig {
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot run io_uring")]
    fn uring_unix(program in prop::collection::vec(any::<u8>(), 0..256)) {
        run(DriverChoice::Uring, Kind::Unix, &program);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot run io_uring")]
    fn uring_tcp(program in prop::collection::vec(any::<u8>(), 0..256)) {
        run(DriverChoice::Uring, Kind::Tcp, &program);
    }

    #[test]
    fn epoll_unix(program in prop::collection::vec(any::<u8>(), 0..256)) {
        run(DriverChoice::Epoll, Kind::Unix, &program);
    }

    #[test]
    fn epoll_tcp(program in prop::collection::vec(any::<u8>(), 0..256)) {
        run(DriverChoice::Epoll, Kind::Tcp, &program);
    }
}

/// Hand-picked programs for the paths the model exists for, so they run on
/// every `cargo test` whatever proptest draws.
mod fixed {
    use super::*;

    /// A read polled while nothing is there, then data, then the read
    /// dropped after the driver ran: its bytes must reach the next read.
    const CANCEL_AFTER_DATA: &[u8] = &[1, 10, 0, 20, 3, 15, 4, 5, 1, 63, 5];
    /// A short read (epoll marks the fd drained), then more data: the next
    /// read must not wait forever for an edge that already came.
    const SHORT_THEN_MORE: &[u8] = &[0, 3, 5, 0, 3, 5, 0, 200, 1, 0, 5, 5];
    /// A read waits (epoll registers the fd), data and the peer's shutdown
    /// arrive, then the final drain makes a short read: after the hang-up the
    /// drained flag must not be trusted (EOF follows, with no further edge).
    /// Proptest's minimal case for the bug `read_final` fixes.
    const SHORT_READ_AFTER_HANGUP: &[u8] = &[1, 0, 6, 0, 0, 1, 7];
    /// Writes both ways with reads left pending between them.
    const BOTH_WAYS: &[u8] = &[1, 5, 6, 40, 0, 9, 2, 6, 3, 4, 0, 1, 5, 3, 1, 5];

    /// A read in flight polled outside any loop (it must answer `Pending`),
    /// data arriving and the loop running, then the read dropped outside any
    /// loop with its completion handed over: its bytes must reach the next
    /// read.
    const DROP_OUTSIDE_AFTER_DATA: &[u8] = &[1, 0, 0, 20, 9, 3, 4, 8, 5];
    /// A read in flight dropped outside any loop before data comes: the
    /// loop sends the cancel when it next runs, racing the data.
    const DROP_OUTSIDE_IN_FLIGHT: &[u8] = &[1, 0, 8, 0, 20, 5, 1, 0, 3, 2, 5];
    /// A read in flight while a second runtime (epoll, then io_uring) runs
    /// on the thread: a read started there fails at once, and polling the
    /// pending read there panics (it is dropped as the panic unwinds); data
    /// sent meanwhile is not lost.
    const SECOND_RUNTIME_POLL: &[u8] = &[1, 0, 0, 20, 10, 10, 5, 1, 0, 10, 11, 0, 9, 5];
    /// A read in flight dropped inside a second runtime, after data came.
    const SECOND_RUNTIME_DROP: &[u8] = &[1, 0, 0, 9, 3, 0, 10, 6, 5, 1, 0, 10, 7, 0, 3, 5];
    /// A read dropped in flight, then a new read that must wait for it: it
    /// has no op in flight, so polled outside any loop or on a second
    /// runtime it ends at once with an error (or stashed bytes).
    const WAITING_READ_AWAY: &[u8] = &[1, 0, 4, 1, 0, 9, 1, 0, 10, 8, 0, 9, 5];

    const ALL: [&[u8]; 9] = [
        CANCEL_AFTER_DATA,
        SHORT_THEN_MORE,
        SHORT_READ_AFTER_HANGUP,
        BOTH_WAYS,
        DROP_OUTSIDE_AFTER_DATA,
        DROP_OUTSIDE_IN_FLIGHT,
        SECOND_RUNTIME_POLL,
        SECOND_RUNTIME_DROP,
        WAITING_READ_AWAY,
    ];

    fn each(driver: DriverChoice) {
        for kind in [Kind::Unix, Kind::Tcp] {
            for p in ALL {
                run(driver, kind, p);
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot run io_uring")]
    fn uring() {
        support::run_watched(|| each(DriverChoice::Uring));
    }

    #[test]
    fn epoll() {
        support::run_watched(|| each(DriverChoice::Epoll));
    }
}
