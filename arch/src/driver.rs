//! The [`Driver`] facade: one type over the backends (io_uring, epoll, the simulator),
//! built per [`DriverChoice`](crate::DriverChoice), that forwards park, submit, cancel,
//! drain and unpark to the backend it holds and keeps the completions reaped so far.

use std::fmt;
use std::io;
use std::time::Duration;

#[cfg(not(miri))]
use crate::uring;
use crate::{
    Completion, Config, DriverChoice, DriverKind, FallbackReason, OpCode, StartError, Unparker,
    epoll, op, sim, token,
};

/// What [`Driver::submit_or_finish`] did with an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// In flight: its [`Completion`] comes from [`Driver::completions`]
    /// after a later `park`.
    Queued,
    /// Finished during the call, with this raw result (`>= 0`, or
    /// `-errno`): no completion will come, and the driver holds no pointer
    /// into the op.
    Done(i32),
}

/// The kernel interface of one event loop: parks its thread, and is unparked from any
/// thread through an [`Unparker`].
///
/// Build one per loop thread with [`Driver::new`]. A `Driver` is `Send` (it may be built
/// on one thread and moved to the loop's thread) but not `Sync`: only its owner parks.
pub struct Driver {
    pub(crate) inner: Inner,
    /// Set only when `Auto` fell back to epoll.
    fallback: Option<FallbackReason>,
    /// Completions reaped but not yet taken by [`Driver::completions`]. While
    /// it is not empty, `park` does not block.
    completed: Vec<Completion>,
}

/// The backends. Private to the crate so that adding one (the simulator) changes nothing
/// outside.
#[allow(
    clippy::large_enum_variant,
    reason = "one Driver per event loop; boxing would add an indirection to every park"
)]
// An explicit tag: without it the variant is decoded from a niche in
// `UringDriver`'s fields, ~6 instructions at every dispatch (an op's submit
// among them) instead of a byte compare.
#[repr(u8)]
pub(crate) enum Inner {
    #[cfg(not(miri))]
    Uring(uring::UringDriver),
    Epoll(epoll::EpollDriver),
    /// Boxed: it is large and off every real driver's path.
    Sim(Box<sim::SimDriver>),
}

impl Driver {
    /// Builds the driver `choice` asks for.
    ///
    /// - [`DriverChoice::Epoll`] builds epoll.
    /// - [`DriverChoice::Uring`] builds io_uring, or fails when it is unusable here. When the
    ///   kernel gave an errno (`ENOSYS`, `EPERM`, ...) the error *is* that OS error, so
    ///   [`io::Error::raw_os_error`] returns it; when it did not (a missing opcode), the
    ///   error is [`io::ErrorKind::Unsupported`] and its message says why io_uring could
    ///   not start.
    /// - [`DriverChoice::Auto`] builds io_uring if the probe passes, otherwise epoll with
    ///   [`Driver::fallback`] set.
    ///
    /// `config.uring_entries == 0` is an [`io::ErrorKind::InvalidInput`] error whatever
    /// the choice. Errors unrelated to io_uring (such as running out of file
    /// descriptors) are returned, not fallen back on.
    pub fn new(choice: DriverChoice, config: &Config) -> io::Result<Driver> {
        if config.uring_entries == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Config::uring_entries is 0; the io_uring queue needs at least one entry.",
            ));
        }
        match choice {
            DriverChoice::Epoll => Driver::epoll(None),
            DriverChoice::Uring | DriverChoice::Auto => match start_uring(config) {
                Ok(inner) => Ok(Driver::with(inner, None)),
                Err(StartError::Unusable(reason)) if choice == DriverChoice::Auto => {
                    Driver::epoll(Some(reason))
                }
                Err(StartError::Unusable(reason)) => Err(reason.into_io_error()),
                Err(StartError::Io(err)) => Err(err),
            },
        }
    }

    /// A driver over `inner`, with nothing reaped yet.
    fn with(inner: Inner, fallback: Option<FallbackReason>) -> Driver {
        Driver {
            inner,
            fallback,
            completed: Vec::new(),
        }
    }

    fn epoll(fallback: Option<FallbackReason>) -> io::Result<Driver> {
        let inner = Inner::Epoll(epoll::EpollDriver::new()?);
        Ok(Driver::with(inner, fallback))
    }

    /// Builds the deterministic simulator backend (see [`sim`]). Only the
    /// simulator's builder chooses it; [`DriverChoice`] never does.
    ///
    /// # Errors
    ///
    /// The OS error if its unpark eventfd cannot be created.
    pub fn sim(config: sim::SimConfig) -> io::Result<Driver> {
        let inner = Inner::Sim(Box::new(sim::SimDriver::new(config)?));
        Ok(Driver::with(inner, None))
    }

    /// The simulator backend, if this driver is one.
    #[inline]
    pub fn as_sim(&mut self) -> Option<&mut sim::SimDriver> {
        match &mut self.inner {
            Inner::Sim(d) => Some(d),
            _ => None,
        }
    }

    /// The backend this driver runs on.
    pub fn kind(&self) -> DriverKind {
        match self.inner {
            #[cfg(not(miri))]
            Inner::Uring(_) => DriverKind::Uring,
            Inner::Epoll(_) => DriverKind::Epoll,
            Inner::Sim(_) => DriverKind::Sim,
        }
    }

    /// Why io_uring was not used. `Some` only when [`DriverChoice::Auto`] fell back to
    /// epoll; `None` for a forced choice or when io_uring was chosen.
    pub fn fallback(&self) -> Option<&FallbackReason> {
        self.fallback.as_ref()
    }

    /// A handle that wakes this driver from any thread.
    pub fn unparker(&self) -> Unparker {
        match &self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.unparker(),
            Inner::Epoll(d) => d.unparker(),
            Inner::Sim(d) => d.unparker(),
        }
    }

    /// Blocks the thread until it is unparked, the timeout elapses, a signal interrupts
    /// the wait, or an I/O operation completes.
    ///
    /// - `None`: no timeout. `Some(Duration::ZERO)`: poll, never block.
    /// - Never returns before the timeout except for one of the wake-ups above, so a
    ///   caller that wants a deadline loops until it has passed.
    /// - An [`Unparker::unpark`] that happens while the driver is not parked makes the
    ///   next `park` return promptly; many unparks before that coalesce into one wake-up.
    /// - `EINTR` gives `Ok(())`.
    ///
    /// # Errors
    ///
    /// Only unexpected kernel errors, with their errno.
    pub fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = if self.completed.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.park(timeout, &mut self.completed),
            Inner::Epoll(d) => d.park(timeout, &mut self.completed),
            Inner::Sim(d) => d.park(timeout, &mut self.completed),
        }
    }

    /// Starts an operation; its [`Completion`] (with the same `user_data`)
    /// is reported by [`Driver::completions`] after a later `park`, exactly
    /// once, whether it succeeded, failed or was cancelled.
    ///
    /// io_uring: the entry is queued and handed to the kernel at the next
    /// `park` (a full submission queue is submitted at once). epoll: the
    /// operation is tried at once; if the fd is not ready it waits for
    /// readiness (edge-triggered registration, made on first use of the fd).
    /// An op the epoll backend finished during the call is reported like any
    /// other (its completion is already there for the next
    /// [`Driver::completions`], and the next `park` does not wait);
    /// [`Driver::submit_or_finish`] hands such a result back at once instead.
    ///
    /// # Errors
    ///
    /// An error means the operation was **not** started (nothing refers to
    /// `op`, and no completion will come): `InvalidInput` for a `user_data`
    /// in the reserved range, or the kernel's error.
    ///
    /// # Safety
    ///
    /// On `Ok`, `op` must stay valid, unmoved and otherwise unused until the
    /// first of:
    ///
    /// - its completion is reported by [`Driver::completions`];
    /// - [`Driver::in_flight`] returns 0 (for example after [`Driver::drain`]
    ///   returned `true`), the driver having produced the completion;
    /// - the driver is dropped, **if** its drop closed everything: always for
    ///   epoll and the simulator, which never touch an op after their drop; for
    ///   io_uring only if every request finished within [`Driver::DROP_LIMIT`].
    ///   Since a drop cannot say which happened, the owner of op memory that
    ///   must know calls [`Driver::drain`] first and, on `false`, leaks that
    ///   memory (the kernel may write into it at any later time).
    ///
    /// [`Driver::cancel`] does not end that period (see the [`op`] module).
    pub unsafe fn submit(
        &mut self,
        user_data: u64,
        op: std::ptr::NonNull<dyn OpCode>,
    ) -> io::Result<()> {
        // SAFETY: forwarded from the caller; both pointers are `op`.
        if let Submitted::Done(result) = unsafe { self.submit_inner(user_data, op, op::OpPtr(op))? }
        {
            self.completed.push(Completion {
                user_data,
                result,
                flags: 0,
            });
        }
        Ok(())
    }

    /// Like [`Driver::submit`], but an operation that finished during the
    /// call comes back as [`Submitted::Done`] with its result (the raw
    /// result: `>= 0`, or `-errno`), and then **no** completion will be
    /// reported for it and the driver keeps no pointer into `op`.
    ///
    /// Only the epoll backend finishes ops during the call (a socket that is
    /// ready, a close, a regular file); io_uring and the simulator always
    /// answer [`Submitted::Queued`]. The op layer uses this to skip a trip
    /// through the run queue for I/O that did not have to wait, as tokio's
    /// readiness model does.
    ///
    /// It takes the op's own type, not `dyn OpCode` as [`Driver::submit`]
    /// does, so that the calls the submit makes into the op (`uring_entry`;
    /// `readiness`, `perform` and `drained`) are direct and can be inlined;
    /// the driver keeps a `dyn OpCode` pointer only for ops it queues.
    ///
    /// # Errors
    ///
    /// As [`Driver::submit`].
    ///
    /// # Safety
    ///
    /// As [`Driver::submit`] when the answer is `Ok(Submitted::Queued)`;
    /// nothing more once it is `Done`.
    #[inline]
    pub unsafe fn submit_or_finish<C: OpCode + 'static>(
        &mut self,
        user_data: u64,
        op: std::ptr::NonNull<C>,
    ) -> io::Result<Submitted> {
        // SAFETY: forwarded from the caller; both pointers are `op`.
        unsafe { self.submit_inner(user_data, op, op::OpPtr(op)) }
    }

    /// `submit_or_finish` for any op pointer: `code` is used for the calls
    /// made during the submit, `erased` (the same op) is what the driver keeps.
    ///
    /// # Safety
    ///
    /// As [`Driver::submit_or_finish`], and `code` and `erased` point to the
    /// same op.
    #[inline]
    unsafe fn submit_inner<C: OpCode + ?Sized>(
        &mut self,
        user_data: u64,
        code: std::ptr::NonNull<C>,
        erased: op::OpPtr,
    ) -> io::Result<Submitted> {
        if user_data >= token::RESERVED_MIN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "user_data values from u64::MAX - 255 up are reserved for the driver",
            ));
        }
        match &mut self.inner {
            #[cfg(not(miri))]
            // SAFETY: forwarded from the caller.
            Inner::Uring(d) => unsafe { d.submit(user_data, code) }.map(|()| Submitted::Queued),
            // SAFETY: forwarded from the caller.
            Inner::Epoll(d) => unsafe { d.submit(user_data, code, erased) },
            // SAFETY: forwarded from the caller.
            Inner::Sim(d) => unsafe { d.submit(user_data, erased) }.map(|()| Submitted::Queued),
        }
    }

    /// Asks the kernel to cancel the operation `user_data`. Its completion
    /// still comes (with `-ECANCELED`, or its real result if it won the
    /// race), and until then its memory stays in use. Unknown or finished
    /// keys are ignored.
    pub fn cancel(&mut self, user_data: u64) {
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.cancel(user_data),
            Inner::Epoll(d) => d.cancel(user_data),
            Inner::Sim(d) => d.cancel(user_data),
        }
    }

    /// How long dropping an io_uring driver waits for its requests to finish after
    /// cancelling them, before it leaks the ring instead (crate docs, contract item 5).
    pub const DROP_LIMIT: Duration = Duration::from_secs(2);

    /// How many submitted ops the driver or the kernel may still use the memory of:
    /// ops submitted (answered `Ok` / [`Submitted::Queued`]) whose completion the
    /// backend has not produced yet. When it is 0, no op's memory is referenced by
    /// anything but its owner.
    ///
    /// - io_uring: entries pushed and not yet answered by a final CQE (one without
    ///   `IORING_CQE_F_MORE`). A counter: one add per submit, one subtract per CQE.
    /// - epoll: ops waiting for readiness (counted by walking the fd table: call it at
    ///   shutdown, not per operation).
    /// - simulator: ops whose result is not decided yet. A decided op whose completion
    ///   is not due on the virtual clock does not count (the simulator is done with its
    ///   memory); [`sim::SimDriver::in_flight`] counts those too.
    ///
    /// A completion produced but not yet taken with [`Driver::completions`] no longer
    /// counts.
    pub fn in_flight(&self) -> usize {
        match &self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.in_flight(),
            Inner::Epoll(d) => d.in_flight(),
            Inner::Sim(d) => d.undecided(),
        }
    }

    /// Cancels every op in flight and waits, at most `limit`, until the kernel has
    /// finished with all of them. Returns `true` when [`Driver::in_flight`] is 0, i.e.
    /// no op's memory is in use any more (and dropping the driver then returns at once
    /// and closes everything); `false` when the limit passed first or the kernel
    /// refused to be entered, in which case the ops still counted may be written at any
    /// later time, even after the driver is dropped (which then leaks its ring, see the
    /// crate docs, contract item 5): their owner must leak their memory.
    ///
    /// Each op still gets exactly one completion, as after [`Driver::cancel`]
    /// (`-ECANCELED`, or its real result if it won the race): the ones produced during
    /// the call are queued for [`Driver::completions`], the simulator's come when the
    /// virtual clock reaches them.
    ///
    /// - io_uring: one `IORING_OP_ASYNC_CANCEL` with `IORING_ASYNC_CANCEL_ANY` (which also
    ///   cancels the unpark READ; the next `park` re-arms it), then waits for CQEs.
    ///   Kernels before 5.19 reject `ANY`: there the ops are not cancelled, and `drain`
    ///   only waits for them to end by themselves (cancel them with [`Driver::cancel`]
    ///   first, as coil's runtime does). An op blocked in an io-wq worker is interrupted
    ///   by the cancel; one the kernel cannot interrupt runs to its end.
    /// - epoll and the simulator: cancelling is immediate, so `drain` never waits and
    ///   always returns `true`.
    ///
    /// `Duration::ZERO` cancels and looks once without blocking.
    ///
    /// # Panics
    ///
    /// On a [`Config::uring_single_issuer`] ring called from a thread other than the
    /// one that built it, as [`Driver::park`] does.
    pub fn drain(&mut self, limit: Duration) -> bool {
        #[cfg(miri)]
        let _ = limit; // only io_uring waits, and Miri has no io_uring
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.drain(limit, &mut self.completed),
            Inner::Epoll(d) => d.drain(&mut self.completed),
            Inner::Sim(d) => {
                d.cancel_all();
                true
            }
        }
    }

    /// Takes the completions reaped so far.
    pub fn completions(&mut self) -> std::vec::Drain<'_, Completion> {
        self.completed.drain(..)
    }

    /// Moves the completions reaped so far to the end of `out`: the two
    /// vectors are swapped when `out` is empty (the common case: no copy).
    #[inline]
    pub fn take_completions(&mut self, out: &mut Vec<Completion>) {
        op::move_all(&mut self.completed, out);
    }

    /// Registers `ring` as a provided-buffer ring (`IORING_REGISTER_PBUF_RING`,
    /// Linux 5.19+) so buffer-select reads ([`op::RecvPooled`](crate::op::RecvPooled))
    /// pick from it in the kernel. `Unsupported` under epoll and the simulator, and
    /// the kernel's error where it refuses; the ring then stays in user mode, which
    /// works everywhere. Register a ring once, with one driver (`pbuf.rs`).
    pub fn register_buf_ring(&mut self, ring: &crate::pbuf::BufRing) -> io::Result<()> {
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(d) => d.register_buf_ring(ring),
            Inner::Epoll(_) | Inner::Sim(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Registers `region` (at most 1 GiB) with the ring as one fixed buffer
    /// (`IORING_REGISTER_BUFFERS_UPDATE` into a sparse table of 1 024 slots,
    /// made at the first call with `IORING_RSRC_REGISTER_SPARSE`: Linux 5.19+,
    /// `EINVAL` before) and returns its slot, for
    /// [`op::Read::fixed`](crate::op::Read::fixed) and
    /// [`op::Write::fixed`](crate::op::Write::fixed). The kernel pins the pages
    /// (and, without `CAP_IPC_LOCK`, charges them to `RLIMIT_MEMLOCK`).
    ///
    /// # Errors
    ///
    /// `Unsupported` under epoll and the simulator; the kernel's error where it
    /// refuses (`ENOMEM` past `RLIMIT_MEMLOCK`, `EFAULT` for a bad region);
    /// `ENOSPC` when every slot is taken.
    ///
    /// # Safety
    ///
    /// `region` must stay valid (allocated, same mapping) until
    /// [`Driver::unregister_fixed`] for the slot returned `Ok`, or, if it is
    /// never called, for as long as any op that names the slot may be in flight.
    pub unsafe fn register_fixed(&mut self, region: libc::iovec) -> io::Result<u16> {
        let _ = region; // unused under Miri
        #[cfg(not(miri))]
        if let Inner::Uring(d) = &mut self.inner {
            return d.register_fixed(region);
        }
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Empties slot `slot` of the registered-buffer table (the kernel unpins
    /// the pages once no request uses them) and makes it free for the next
    /// [`Driver::register_fixed`]. No op naming the slot may be in flight.
    ///
    /// # Errors
    ///
    /// `NotFound` if nothing is registered at `slot`; the kernel's error (the
    /// slot then stays taken).
    pub fn unregister_fixed(&mut self, slot: u16) -> io::Result<()> {
        let _ = slot; // unused under Miri
        #[cfg(not(miri))]
        if let Inner::Uring(d) = &mut self.inner {
            return d.unregister_fixed(slot);
        }
        Err(io::ErrorKind::NotFound.into())
    }

    /// Forgets what the driver knows about `fd` (epoll: its registration).
    /// Call it when an fd that operations were submitted on has been closed,
    /// before its number can be reused; no operation on it may be pending.
    pub fn release_fd(&mut self, fd: std::os::fd::RawFd) {
        match &mut self.inner {
            #[cfg(not(miri))]
            Inner::Uring(_) => {}
            Inner::Epoll(d) => d.release_fd(fd),
            Inner::Sim(d) => d.release_fd(fd),
        }
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("kind", &self.kind())
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

#[cfg(not(miri))]
fn start_uring(config: &Config) -> Result<Inner, StartError> {
    uring::UringDriver::new(config).map(Inner::Uring)
}

/// Miri cannot run `io_uring_setup`, so under Miri io_uring is always unusable.
#[cfg(miri)]
fn start_uring(_config: &Config) -> Result<Inner, StartError> {
    Err(StartError::Unusable(FallbackReason::other(
        "io_uring_setup",
        "io_uring is not available under Miri",
    )))
}
