//! [`SharedFd`]: an fd shared by its I/O object and every op in flight on it.
//!
//! Rules (docs/reliability.md §2.3: io_uring resolves fds by number, lazily):
//! 1. The fd is closed only when the last `SharedFd` clone is dropped. Every
//!    op holds a clone until its completion (also when orphaned, `op` rule O2),
//!    so no op is ever pending on a closed — or reused — fd number.
//! 2. The handle belongs to the loop it was made in (its `home`, op rule
//!    O6). On close, the number is pushed to that loop's list of closed fds;
//!    the loop tells the driver to forget it before submitting anything
//!    else, so the epoll registration of an old file never shadows a new
//!    one. Ops on the fd from any other loop fail before they reach a driver
//!    (that driver would register the fd and never hear of its close).
//!    The close itself is `coil_arch::sock::close`, the same call for every
//!    backend: a kernel fd is closed at once, a simulator socket by the
//!    simulator when its driver hears of it. Connections kept by rule 3 are
//!    closed the same way, with the listener.
//! 3. `stash` holds bytes a cancelled read delivered after its future was
//!    dropped; the next read returns them first (cancellation loses nothing).
//!    `accepted` holds connections a cancelled accept produced; the next
//!    accept returns them first, and they are closed with the listener.
//! 4. While a dropped read or accept is still in flight (`orphans > 0`), a new
//!    read or accept on the fd first waits for it ([`SharedFd::orphans_done`]):
//!    otherwise the new op could wait in the kernel for data or a connection
//!    that the dropped one already took, and hang while it sits in the stash.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use coil_arch::IoBufMut;

use super::OpHome;

struct Inner {
    fd: RawFd,
    /// The loop this fd belongs to (rule 2); `None` if made outside any.
    home: Option<Rc<OpHome>>,
    stash: RefCell<VecDeque<u8>>,
    accepted: RefCell<VecDeque<(RawFd, Option<SocketAddr>)>>,
    orphans: Cell<usize>,
    orphan_waiters: RefCell<Vec<Waker>>,
}

/// See the module docs.
#[derive(Clone)]
pub(crate) struct SharedFd(Rc<Inner>);

impl std::fmt::Debug for SharedFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedFd").field(&self.0.fd).finish()
    }
}

impl SharedFd {
    /// Take ownership of `fd` (it is closed when the last clone drops).
    pub(crate) fn new(fd: RawFd) -> SharedFd {
        let home = crate::rt::with_core(|c| c.map(|c| c.home().clone()));
        SharedFd(Rc::new(Inner {
            fd,
            home,
            stash: RefCell::default(),
            accepted: RefCell::default(),
            orphans: Cell::new(0),
            orphan_waiters: RefCell::default(),
        }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.fd
    }

    /// Gives the fd up instead of closing it (the `into_std` conversions):
    /// once nothing holds it but `self`, `prepare` runs on the fd (the
    /// conversions make it blocking again), then the loop is told, as for a
    /// close, so its driver forgets the fd (rule 2), and the number is
    /// returned open.
    ///
    /// # Errors
    ///
    /// `self` comes back unchanged with the error, the fd still the loop's:
    /// `WouldBlock` while another clone lives (an op still in flight, such
    /// as a dropped read the kernel has not finished, or another half of a
    /// split stream); `InvalidData` while bytes or connections a cancelled
    /// read or accept delivered are kept (rule 3: giving the fd away would
    /// lose them); `Unsupported` for a simulator socket, which has no kernel
    /// fd; `prepare`'s error.
    pub(crate) fn into_raw(
        self,
        prepare: impl FnOnce(RawFd) -> std::io::Result<()>,
    ) -> Result<RawFd, (SharedFd, std::io::Error)> {
        use std::io::{Error, ErrorKind};
        if let Err(e) = coil_arch::sock::kernel_fd(self.0.fd) {
            return Err((self, e));
        }
        if !self.0.stash.borrow().is_empty() || !self.0.accepted.borrow().is_empty() {
            let e = Error::new(
                ErrorKind::InvalidData,
                "a cancelled read or accept left bytes or connections on this socket; \
                 read or accept them before giving the fd away",
            );
            return Err((self, e));
        }
        let mut inner = match Rc::try_unwrap(self.0) {
            Ok(inner) => inner,
            Err(rc) => {
                let e = Error::new(
                    ErrorKind::WouldBlock,
                    "an operation is still in flight on this socket (or another half holds \
                     it); let the loop run (a dropped read finishes or is cancelled) and try \
                     again",
                );
                return Err((SharedFd(rc), e));
            }
        };
        if let Err(e) = prepare(inner.fd) {
            return Err((SharedFd(Rc::new(inner)), e));
        }
        let fd = std::mem::replace(&mut inner.fd, -1);
        if let Some(home) = &inner.home {
            home.fd_closed(fd);
        }
        Ok(fd) // `inner` drops with fd -1: nothing is closed
    }

    /// Rule 2: `Ok` if an op on this fd may go to the loop whose home is
    /// `current`, else the home it belongs to.
    #[inline]
    pub(crate) fn check_home(&self, current: &Rc<OpHome>) -> Result<(), &OpHome> {
        match &self.0.home {
            Some(home) if !Rc::ptr_eq(home, current) => Err(home),
            _ => Ok(()),
        }
    }

    /// Rule 2 for what happens before an op is submitted (taking kept bytes
    /// or connections, waiting for dropped ops): `Ok` if this fd's loop is
    /// the one running here (or the fd belongs to none), else the error an
    /// op would get. Off the hot path: only called when something is kept
    /// or pending. `what` names the use, for debug mode's report.
    #[cold]
    pub(crate) fn on_home_loop(&self, what: &str) -> std::io::Result<()> {
        crate::rt::with_core(|core| match (core, &self.0.home) {
            (None, _) => Err(super::outside_loop()),
            (Some(core), Some(home)) if !Rc::ptr_eq(core.home(), home) => {
                core.debug_report(|| super::foreign_fd_report(core.id(), home, self.0.fd, what));
                Err(super::foreign_loop(home.is_running()))
            }
            _ => Ok(()),
        })
    }

    /// Rule 3: keep bytes a dropped read delivered.
    pub(crate) fn stash(&self, bytes: &[u8]) {
        self.0.stash.borrow_mut().extend(bytes);
    }

    /// Rule 3: bytes are kept.
    #[inline]
    pub(crate) fn has_stash(&self) -> bool {
        !self.0.stash.borrow().is_empty()
    }

    /// Rule 3: move stashed bytes into `buf`'s spare capacity. `None` if
    /// nothing is stashed (or `buf` has no room); the rule 2 error, and the
    /// bytes left where they are, away from the fd's loop.
    #[inline]
    pub(crate) fn take_stash<B: IoBufMut>(&self, buf: &mut B) -> Option<std::io::Result<usize>> {
        if self.0.stash.borrow().is_empty() {
            return None; // the common case: no read was dropped with bytes
        }
        self.take_stash_slow(buf)
    }

    #[cold]
    fn take_stash_slow<B: IoBufMut>(&self, buf: &mut B) -> Option<std::io::Result<usize>> {
        if let Err(e) = self.on_home_loop("a read of kept bytes") {
            return Some(Err(e));
        }
        let mut stash = self.0.stash.borrow_mut();
        let init = buf.bytes_init();
        let room = buf.bytes_total() - init;
        if stash.is_empty() || room == 0 {
            return None;
        }
        let n = room.min(stash.len());
        for (i, b) in stash.drain(..n).enumerate() {
            // SAFETY: init + i < bytes_total: inside the writable allocation.
            unsafe { buf.stable_mut_ptr().add(init + i).write(b) };
        }
        // SAFETY: the n bytes after init were just written.
        unsafe { buf.set_init(init + n) };
        Some(Ok(n))
    }

    /// Rule 3: keep a connection a dropped accept produced.
    pub(crate) fn push_accepted(&self, fd: RawFd, addr: Option<SocketAddr>) {
        self.0.accepted.borrow_mut().push_back((fd, addr));
    }

    /// Rule 3: a connection a dropped accept produced, if any; the rule 2
    /// error (and the connection left queued) away from the fd's loop.
    #[allow(clippy::type_complexity)]
    pub(crate) fn pop_accepted(&self) -> Option<std::io::Result<(RawFd, Option<SocketAddr>)>> {
        if self.0.accepted.borrow().is_empty() {
            return None;
        }
        if let Err(e) = self.on_home_loop("an accept of a kept connection") {
            return Some(Err(e));
        }
        self.0.accepted.borrow_mut().pop_front().map(Ok)
    }

    /// Rule 4: a read or accept on this fd was dropped in flight.
    pub(crate) fn orphan_begin(&self) {
        self.0.orphans.set(self.0.orphans.get() + 1);
    }

    /// Rule 4: that op's completion was processed.
    pub(crate) fn orphan_end(&self) {
        let n = self.0.orphans.get() - 1;
        self.0.orphans.set(n);
        if n == 0 {
            let waiters = std::mem::take(&mut *self.0.orphan_waiters.borrow_mut());
            for w in waiters {
                w.wake();
            }
        }
    }

    /// Rules 2 and 4, before a read or accept: completes once no dropped
    /// read or accept is in flight, or fails at once when some are and this
    /// is not the fd's loop (they could not complete here).
    pub(crate) fn orphans_done(&self) -> OrphansDone<'_> {
        OrphansDone { fd: self }
    }
}

/// See [`SharedFd::orphans_done`].
pub(crate) struct OrphansDone<'a> {
    fd: &'a SharedFd,
}

impl Future for OrphansDone<'_> {
    type Output = std::io::Result<()>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.fd.0.orphans.get() == 0 {
            return Poll::Ready(Ok(()));
        }
        // Not on its own loop: fail (rule 2); the dropped ops could not
        // complete here.
        self.fd.on_home_loop("a wait for dropped ops")?;
        self.fd
            .0
            .orphan_waiters
            .borrow_mut()
            .push(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.fd < 0 {
            return; // given up by `into_raw` (which checked nothing is kept)
        }
        let home = self.home.as_deref();
        for (fd, _) in self.accepted.get_mut().drain(..) {
            // SAFETY: queued accepted fds are owned by this listener alone,
            // and no op was ever submitted on them.
            unsafe { close(home, fd) };
        }
        // SAFETY: rule 1: the last owner; no op is pending on this fd.
        unsafe { close(home, self.fd) };
    }
}

/// Rule 2: closes `fd` and tells its loop (`home`), which tells its driver
/// before the driver is used again. `coil_arch::sock::close` closes a
/// kernel fd at once; a simulator socket is closed by the simulator when
/// its driver hears of it (`Driver::release_fd`), so this reads the same
/// for every backend.
///
/// # Safety
///
/// As `coil_arch::sock::close`: `fd` is owned by the caller, no op is
/// pending on it, and nothing uses the number afterwards.
#[inline]
unsafe fn close(home: Option<&OpHome>, fd: RawFd) {
    if let Some(home) = home {
        home.fd_closed(fd);
    }
    // SAFETY: forwarded from the caller.
    unsafe { coil_arch::sock::close(fd) };
}
