//! [`Unparker`]: wakes a parked [`Driver`](crate::Driver) from any thread.
//!
//! # Protocol
//!
//! One eventfd plus one `notified: AtomicBool`, shared by the driver and every
//! `Unparker` clone.
//!
//! 1. `unpark()`: `if !notified.swap(true, SeqCst) { write(eventfd, 1) }`. Only the
//!    unpark that flips the flag writes, so a burst of unparks costs one write. An
//!    io_uring driver on Linux 6.13+ is sent an `IORING_OP_MSG_RING` completion instead
//!    of the write (`ringwake.rs`); its arrival plays the part of the eventfd read
//!    completing in steps 2 and 3, and a refused message falls back to the write.
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
//! # Spinning instead of parking
//!
//! A loop that busy-polls for a while before it parks (a spin-before-park;
//! coil's own loops skip the unpark before it is made, through a `SPINNING`
//! bit in their flag word, and do not need this) does not want its wakers to
//! pay for an eventfd write it would not read: [`Unparker::hold`], called on the driver's own thread
//! between two parks, raises the flag itself when it is down, so every unpark
//! during the spin finds it raised and writes nothing (a wake costs one atomic
//! swap, no syscall). Dropping the returned [`Held`] lowers the flag again.
//!
//! 4. Hold: `notified.swap(true)` by the driver's thread; if it did not flip the flag, an
//!    unpark is already on its way to the eventfd and the next park returns at
//!    once, so there is nothing to hold and no spin is needed.
//! 5. Release: `notified.swap(false)`, then the caller re-checks its queue before it
//!    parks. An unpark that skipped its write during the hold swapped the flag before
//!    the release did, and the release, a read-modify-write, read what that swap left:
//!    it synchronises with the unparker, so the re-check sees what the unparker
//!    published before unparking. An unpark after the release writes.
//!
//! While the flag is held the eventfd counter is zero (the hold flipped it, so
//! no write was owed), which is what the drivers' step 3 assumes. The cost
//! outside a hold is unchanged: an unpark writes the eventfd when it flips the
//! flag, whether or not the driver is parked at that moment.
//!
//! The flag's half of the protocol is [`Latch`] (steps 1, 3, 4 and 5). Its loom model,
//! `loom_model` below, runs the real `Latch` against a modelled eventfd (a counter that
//! a write raises and the driver's read empties) with the driver's step order, and checks
//! that a loop waiting for remote work never sleeps through it (loom reports the lost
//! wakeup as a deadlock), with and without a hold (a spin) before each park. The same
//! model with the clear moved after the loop's queue check, the mistake step 3 rules
//! out, must fail, and so must a spin that parks without the re-check of step 5;
//! tests say they do. Run with
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

    /// Step 4 (module docs): the driver's thread raises the flag itself; `true`
    /// if it flipped it (the hold is taken and must be released with
    /// [`release`](Latch::release), not [`clear`](Latch::clear)), `false` if an
    /// unpark already owes a write.
    #[inline]
    pub(crate) fn hold(&self) -> bool {
        self.raise()
    }

    /// Step 5: end a hold. A swap, not a store: when it reads the flag as an
    /// unparker's swap left it, it synchronises with that unparker, so the loop's
    /// re-check after it sees what the unparker published (with plain SeqCst
    /// stores this needs the single total order, which loom does not model).
    #[inline]
    pub(crate) fn release(&self) {
        self.notified.swap(false, Ordering::SeqCst);
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
    /// An io_uring driver's `IORING_OP_MSG_RING` path (`ringwake.rs`); `None`: the
    /// eventfd only.
    #[cfg(not(miri))]
    ring: Option<crate::ringwake::RingWake>,
}

impl Shared {
    pub(crate) fn new(eventfd: EventFd) -> Arc<Shared> {
        Arc::new(Shared {
            eventfd,
            latch: Latch::default(),
            #[cfg(not(miri))]
            ring: None,
        })
    }

    /// A driver whose unparks post a MSG_RING completion on its ring, when `ring` is
    /// `Some`, and write `eventfd` otherwise (or when a message is refused).
    #[cfg(not(miri))]
    pub(crate) fn with_ring(
        eventfd: EventFd,
        ring: Option<crate::ringwake::RingWake>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            eventfd,
            latch: Latch::default(),
            ring,
        })
    }

    /// Whether unparks post MSG_RING completions (tests).
    #[cfg(all(test, not(miri)))]
    pub(crate) fn has_ring(&self) -> bool {
        self.ring
            .as_ref()
            .is_some_and(crate::ringwake::RingWake::is_usable)
    }

    /// Turns the MSG_RING path off, as a refused message does (tests).
    #[cfg(all(test, not(miri)))]
    pub(crate) fn turn_off_ring(&self) {
        if let Some(r) = &self.ring {
            r.turn_off();
        }
    }

    /// Step 1's "write": a MSG_RING completion on the driver's ring where it has the
    /// message path, else (or if the kernel refused it) one eventfd write.
    fn send_wake(&self) {
        #[cfg(not(miri))]
        if let Some(ring) = &self.ring
            && ring.wake()
        {
            return;
        }
        // The only possible failures are EAGAIN (already readable, handled inside) or
        // an fd we own being invalid, which would be a bug here, not the caller's.
        let res = self.eventfd.write_one();
        debug_assert!(res.is_ok(), "the unpark eventfd write failed: {res:?}");
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
    /// write (or, for an io_uring driver on a kernel that has it, one `MSG_RING`
    /// completion posted on its ring: `ringwake.rs`).
    pub fn unpark(&self) {
        if self.shared.latch.raise() {
            self.shared.send_wake();
        }
    }
}

impl Unparker {
    /// Suppresses the eventfd writes of unparks while the driver's thread polls
    /// for work without parking (steps 4 and 5 of the module docs): for as long
    /// as the returned [`Held`] lives, an `unpark` from any thread costs one
    /// atomic swap and no syscall.
    ///
    /// `None` if an unpark is already pending (its write is owed or done): then
    /// the next `park` returns at once and there is nothing to spin for.
    ///
    /// The rules, which keep wake-ups from being lost: call it only on the
    /// thread that parks this driver, never while a `park` runs, and while it
    /// is held park only with `Some(Duration::ZERO)` (a park that may block
    /// would sleep through the unparks, which write nothing; a non-blocking
    /// one is fine: no unpark wrote or sent anything since the flag went
    /// down, so it finds no wake-up of its own to consume and does not lower
    /// the flag); after dropping it, look for the work that unparkers publish
    /// (with `SeqCst` loads) before parking, because the unparks made during
    /// the hold wrote nothing.
    #[must_use = "the hold ends when the guard is dropped"]
    pub fn hold(&self) -> Option<Held<'_>> {
        self.shared.latch.hold().then_some(Held {
            latch: &self.shared.latch,
        })
    }
}

/// A hold on a driver's unparks ([`Unparker::hold`]); dropping it ends the hold.
#[derive(Debug)]
pub struct Held<'a> {
    latch: &'a Latch,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Step 5: unparks write again from here on.
        self.latch.release();
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

    /// Whether the loop spins (holds the latch and looks at its queue) before
    /// each park.
    #[derive(Clone, Copy, PartialEq)]
    enum Spin {
        /// Park straight away.
        No,
        /// Steps 4 and 5: hold, look, release, look again, then park.
        Held,
        /// Hold, look, release and park without looking again: the mistake
        /// step 5 rules out.
        NoRecheck,
    }

    /// `remotes` threads each publish one item and unpark (what
    /// `Unparker::unpark` does after the runtime's remote push); the loop
    /// waits until it has seen them all.
    fn model(remotes: usize, clear_at: ClearAt, spin: Spin) {
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
                    // A hold that is refused means a write is owed: the park
                    // below returns at once.
                    if spin != Spin::No && s.latch.hold() {
                        let spun = s.queued.load(Ordering::SeqCst);
                        s.latch.release();
                        if spun == remotes {
                            return;
                        }
                        if spin == Spin::Held && s.queued.load(Ordering::SeqCst) == remotes {
                            return;
                        }
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
        model(1, ClearAt::BeforeParkReturns, Spin::No);
    }

    #[test]
    fn loom_unpark_latch_two_remotes() {
        model(2, ClearAt::BeforeParkReturns, Spin::No);
    }

    /// A spin before each park (steps 4 and 5) racing one and two remotes.
    #[test]
    fn loom_unpark_latch_spin_one_remote() {
        model(1, ClearAt::BeforeParkReturns, Spin::Held);
    }

    #[test]
    fn loom_unpark_latch_spin_two_remotes() {
        model(2, ClearAt::BeforeParkReturns, Spin::Held);
    }

    /// The spin model can fail: an unpark that lands during the hold writes
    /// nothing, so a loop that parks without looking again sleeps through it.
    #[test]
    #[should_panic(expected = "lost wakeup")]
    fn loom_unpark_latch_spin_without_recheck_loses_a_wake() {
        model(1, ClearAt::BeforeParkReturns, Spin::NoRecheck);
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
        model(2, ClearAt::AfterQueueCheck, Spin::No);
    }
}
