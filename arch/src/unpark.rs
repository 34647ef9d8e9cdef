//! [`Unparker`]: wakes a parked [`Driver`](crate::Driver) from any thread.
//!
//! # Protocol
//!
//! One eventfd plus one `notified: AtomicBool`, shared by the driver and every
//! `Unparker` clone.
//!
//! 1. `unpark()`: `if !notified.swap(true, SeqCst) { write(eventfd, 1) }`. Only the
//!    unpark that flips the flag writes, so a burst of unparks costs one write.
//! 2. The driver watches the eventfd while parked (level-triggered `EPOLLIN` under epoll,
//!    an always-armed `IORING_OP_READ` under io_uring).
//! 3. When it sees the eventfd fire, the driver first empties the counter (the read does
//!    that) and then calls [`Shared::clear`], which is `notified.store(false, SeqCst)`,
//!    before `park` returns.
//!
//! Why nothing is lost: between the drain and the clear, `notified` is still `true`, so no
//! unpark writes and the counter stays at zero; after the clear, the next unpark writes
//! again and the next park sees it. An unpark whose swap lands before the clear (and so
//! does not write) is ordered before the clear in the single SeqCst order, and the runtime
//! reads its remote queue with SeqCst after `park` returns, so it sees whatever that
//! unparker published before calling `unpark`.
//!
//! The flag's half of the protocol is [`Latch`] (steps 1 and 3). Its loom model,
//! `loom_model` below, runs the real `Latch` against a modelled eventfd (a counter that
//! a write raises and the driver's read empties) with the driver's step order, and checks
//! that a loop waiting for remote work never sleeps through it (loom reports the lost
//! wakeup as a deadlock). The same model with the clear moved after the loop's queue
//! check, the mistake step 3 rules out, must fail; a test says it does. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p coil-arch --lib --release loom`.

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, Ordering};
use std::fmt;
use std::os::fd::AsRawFd;
use std::sync::Arc;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::EventFd;

/// The `notified` flag of the protocol (module docs): raised by unparks, cleared by
/// the driver after it has drained the eventfd. Under `cfg(loom)` its atomic is
/// loom's, so only a loom model may build one then.
#[derive(Debug, Default)]
pub(crate) struct Latch {
    /// `true` from the first unpark until the driver has drained the eventfd.
    notified: AtomicBool,
}

impl Latch {
    /// Step 1: raise the flag; `true` if this caller flipped it and so must write
    /// the eventfd.
    #[inline]
    pub(crate) fn raise(&self) -> bool {
        !self.notified.swap(true, Ordering::SeqCst)
    }

    /// Whether an unpark is pending (the simulator checks before draining).
    pub(crate) fn is_raised(&self) -> bool {
        self.notified.load(Ordering::SeqCst)
    }

    /// Step 3: call after the eventfd counter has been consumed, before `park`
    /// returns.
    pub(crate) fn clear(&self) {
        self.notified.store(false, Ordering::SeqCst);
    }
}

/// State shared by a driver and its unparkers.
#[derive(Debug)]
pub(crate) struct Shared {
    eventfd: EventFd,
    latch: Latch,
}

impl Shared {
    pub(crate) fn new(eventfd: EventFd) -> Arc<Shared> {
        Arc::new(Shared {
            eventfd,
            latch: Latch::default(),
        })
    }

    pub(crate) fn eventfd(&self) -> &EventFd {
        &self.eventfd
    }

    /// Whether an unpark is pending (the simulator checks before draining).
    pub(crate) fn is_notified(&self) -> bool {
        self.latch.is_raised()
    }

    /// Step 3 of the protocol: call after the eventfd counter has been consumed.
    pub(crate) fn clear(&self) {
        self.latch.clear();
    }
}

/// A handle that wakes the [`Driver`](crate::Driver) it came from, from any thread.
///
/// Get one with [`Driver::unparker`](crate::Driver::unparker). Cloning is cheap (an `Arc`).
/// Unparking a driver that has been dropped does nothing harmful.
#[derive(Clone)]
pub struct Unparker {
    shared: Arc<Shared>,
}

impl Unparker {
    pub(crate) fn new(shared: Arc<Shared>) -> Unparker {
        Unparker { shared }
    }

    /// Wakes the driver: its current `park` returns, or, if it is not parked, its next
    /// `park` returns promptly.
    ///
    /// Never blocks. Repeated calls before the driver wakes coalesce into one eventfd
    /// write.
    pub fn unpark(&self) {
        if self.shared.latch.raise() {
            // The only possible failures are EAGAIN (already readable, handled inside) or
            // an fd we own being invalid, which would be a bug here, not the caller's.
            let res = self.shared.eventfd.write_one();
            debug_assert!(res.is_ok(), "the unpark eventfd write failed: {res:?}");
        }
    }
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unparker")
            .field("eventfd", &self.shared.eventfd.as_raw_fd())
            .field("notified", &self.shared.latch.is_raised())
            .finish()
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! The latch against a modelled eventfd (module docs).
    //!
    //! A lost wakeup is caught without relying on loom's deadlock report (whose
    //! panic cannot be tested for: it aborts while unwinding): after every
    //! remote thread is done, the test's main thread writes a shutdown mark to
    //! the eventfd. A loop that slept with work outstanding and was woken by
    //! that mark alone slept through an unpark, and asserts so.

    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    use super::Latch;

    /// What the shutdown adds to the counter (an unpark adds 1).
    const SHUTDOWN: u64 = 1 << 32;

    /// An eventfd: a counter that writes raise and a blocking read empties.
    #[derive(Default)]
    struct EventFd {
        count: Mutex<u64>,
        cv: Condvar,
    }

    impl EventFd {
        fn write(&self, n: u64) {
            *self.count.lock().unwrap() += n;
            self.cv.notify_one();
        }

        /// The driver's park: sleep until the counter is non-zero, then read
        /// (empty) it; returns what it read.
        fn wait_and_drain(&self) -> u64 {
            let mut n = self.count.lock().unwrap();
            while *n == 0 {
                n = self.cv.wait(n).unwrap();
            }
            std::mem::take(&mut *n)
        }
    }

    #[derive(Default)]
    struct Shared {
        latch: Latch,
        eventfd: EventFd,
        /// The runtime's remote queue, reduced to how many items were pushed.
        queued: AtomicUsize,
    }

    /// Where the driver clears the latch.
    #[derive(Clone, Copy, PartialEq)]
    enum ClearAt {
        /// Step 3: after the drain, before `park` returns (what the drivers do).
        BeforeParkReturns,
        /// After the loop has looked at its queue: the mistake step 3 rules out.
        AfterQueueCheck,
    }

    /// `remotes` threads each publish one item and unpark (what
    /// `Unparker::unpark` does after the runtime's remote push); the loop
    /// waits until it has seen them all.
    fn model(remotes: usize, clear_at: ClearAt) {
        loom::model(move || {
            let shared = Arc::new(Shared::default());
            let threads: Vec<_> = (0..remotes)
                .map(|_| {
                    let s = shared.clone();
                    thread::spawn(move || {
                        s.queued.fetch_add(1, Ordering::SeqCst);
                        if s.latch.raise() {
                            s.eventfd.write(1);
                        }
                    })
                })
                .collect();
            let s = shared.clone();
            let event_loop = thread::spawn(move || {
                loop {
                    let seen = s.queued.load(Ordering::SeqCst);
                    if clear_at == ClearAt::AfterQueueCheck {
                        s.latch.clear();
                    }
                    if seen == remotes {
                        return;
                    }
                    let read = s.eventfd.wait_and_drain();
                    assert_ne!(
                        read, SHUTDOWN,
                        "lost wakeup: the loop slept with {seen} of {remotes} items seen \
                         and only the shutdown woke it"
                    );
                    if clear_at == ClearAt::BeforeParkReturns {
                        s.latch.clear();
                    }
                }
            });
            for t in threads {
                t.join().unwrap();
            }
            shared.eventfd.write(SHUTDOWN);
            event_loop.join().unwrap();
        });
    }

    #[test]
    fn loom_unpark_latch_one_remote() {
        model(1, ClearAt::BeforeParkReturns);
    }

    #[test]
    fn loom_unpark_latch_two_remotes() {
        model(2, ClearAt::BeforeParkReturns);
    }

    /// The model can fail: clearing after the queue check lets an unpark that
    /// lands between the two skip its write, and the loop sleeps through it.
    /// The failing interleaving (loop: check and clear; remote 1; loop: drain
    /// and check; remote 2; loop: clear and sleep) needs one preemption (the
    /// others are switches at blocking points): loom finds it with
    /// `LOOM_MAX_PREEMPTIONS` 1 or 2 (the tier's), not with 0.
    #[test]
    #[should_panic(expected = "lost wakeup")]
    fn loom_unpark_latch_clear_after_queue_check_loses_a_wake() {
        model(2, ClearAt::AfterQueueCheck);
    }
}
