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

use std::fmt;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::EventFd;

/// State shared by a driver and its unparkers.
#[derive(Debug)]
pub(crate) struct Shared {
    eventfd: EventFd,
    /// `true` from the first unpark until the driver has drained the eventfd.
    notified: AtomicBool,
}

impl Shared {
    pub(crate) fn new(eventfd: EventFd) -> Arc<Shared> {
        Arc::new(Shared {
            eventfd,
            notified: AtomicBool::new(false),
        })
    }

    pub(crate) fn eventfd(&self) -> &EventFd {
        &self.eventfd
    }

    /// Whether an unpark is pending (the simulator checks before draining).
    pub(crate) fn is_notified(&self) -> bool {
        self.notified.load(Ordering::SeqCst)
    }

    /// Step 3 of the protocol: call after the eventfd counter has been consumed.
    pub(crate) fn clear(&self) {
        self.notified.store(false, Ordering::SeqCst);
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
        if !self.shared.notified.swap(true, Ordering::SeqCst) {
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
            .field("notified", &self.shared.notified.load(Ordering::Relaxed))
            .finish()
    }
}
