//! The loop's side of I/O: parking in the driver, submitting ops, the
//! chores dropped ops and closed fds leave (`op` rule O2), handing each
//! completion to its op (waking its task at the front of the run queue, or
//! finishing an orphan), and lending the driver to the socket calls that
//! are not ops ([`with_driver`]).

use std::io;
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use coil_arch::{Driver, OpCode, Submitted};

use super::core::Core;
use super::metrics;
use crate::op::{OpHome, OrphanDone, SubmitOutcome};

/// Runs `f` with the driver of the loop running on this thread; `None` when
/// no loop runs here or its driver is in use further up the stack.
///
/// This is how `net` makes the socket calls that are not ops (create,
/// options, names, bind, listen): it passes the driver to
/// `coil_arch::sock`, which chooses the system call or the simulator's
/// model, so the same code serves every backend. Not on a per-request path:
/// one thread-local read and a `RefCell` borrow.
pub(crate) fn with_driver<R>(f: impl FnOnce(Option<&mut Driver>) -> R) -> R {
    super::with_core(|core| match core.map(|c| c.driver.try_borrow_mut()) {
        Some(Ok(mut driver)) => f(Some(&mut driver)),
        _ => f(None),
    })
}

impl Core {
    /// I/O ops in flight.
    pub(crate) fn io_op_count(&self) -> usize {
        self.home.in_flight()
    }

    /// This loop's op home (`op` rule O2).
    #[inline]
    pub(crate) fn home(&self) -> &Rc<OpHome> {
        &self.home
    }

    /// Do the chores, wait for events up to `timeout` (`None`: until one
    /// comes), then hand the completions to their ops. Also the
    /// `crate::fuzz::park` hook, with a zero timeout.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        self.polls_since_park.set(0);
        {
            let mut driver = self.driver.borrow_mut();
            self.do_chores(&mut driver);
            metrics::add(&self.counters.parks, 1);
            self.publish_metrics();
            // A park that may block is timed (`LoopMetrics::park_time`);
            // debug mode times every park, to leave it out of its stall
            // check.
            let timed = timeout != Some(Duration::ZERO) || self.instrumented();
            let parked = timed.then(std::time::Instant::now);
            let res = driver.park(timeout);
            if let Some(t0) = parked {
                let took = t0.elapsed();
                let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                metrics::add(&self.counters.park_nanos, nanos);
                self.debug_excluded.set(self.debug_excluded.get() + took);
                if let Some(t) = &self.trace {
                    t.park(t0, took, timeout);
                }
            }
            if let Err(e) = res {
                panic!(
                    "coil: the {} driver failed while waiting for events: {e}",
                    driver.kind()
                );
            }
            let mut out = self.completions.borrow_mut();
            driver.take_completions(&mut out);
            if out.is_empty() {
                return;
            }
        }
        self.dispatch_completions();
    }

    /// Hand completions to their ops: wake waiting futures (at the front of
    /// the queue, like timers) and finish orphans.
    fn dispatch_completions(&self) {
        let mut done = std::mem::take(&mut *self.completions.borrow_mut());
        metrics::add(&self.counters.ops_completed, done.len() as u64);
        if let Some(t) = &self.trace {
            done.iter().for_each(|c| t.complete(c.user_data));
        }
        if let Some(sim) = &self.sim {
            for c in &done {
                sim.record(0, super::sim::EventKind::Io(c.user_data, c.result));
            }
        }
        let mut orphans = FinishOrphans(Vec::new());
        let mut wakers = std::mem::take(&mut *self.fired.borrow_mut());
        // One borrow of the table for the batch; the wakers run after it
        // is released (a waker may run any code, even drop an op).
        self.home
            .complete_all(&mut done, &mut wakers, &mut orphans.0);
        *self.completions.borrow_mut() = done;
        if self.run_queue.is_empty() {
            // The front of an empty queue is its back: the woken tasks land
            // in the same order as through `wake_to_front`, without staging
            // them (the common case: completions come after an idle park).
            self.wake_batch(&mut wakers, false);
        } else {
            self.wake_to_front(&mut wakers);
        }
        *self.fired.borrow_mut() = wakers;
        // `orphans` drops here and finishes them all (`FinishOrphans`).
    }

    /// Before the driver is used: forget the fds closed since the last call
    /// (so no new op meets a stale registration), then send the cancels of
    /// ops dropped in flight (`op` rule O2).
    #[inline]
    pub(super) fn do_chores(&self, driver: &mut Driver) {
        if self.home.has_chores() {
            self.do_chores_slow(driver);
        }
    }

    #[cold]
    fn do_chores_slow(&self, driver: &mut Driver) {
        let mut chores = self.chores.borrow_mut();
        let (fds, cancels) = &mut *chores;
        self.home.take_chores(fds, cancels);
        for fd in fds.drain(..) {
            driver.release_fd(fd);
        }
        metrics::add(&self.counters.ops_cancelled, cancels.len() as u64);
        for key in cancels.drain(..) {
            driver.cancel(key);
        }
    }

    /// Submit an op: `Queued(key)` while it is in flight (its slot waits with
    /// `waker`), or `Done(result)` if the driver finished it during the call
    /// (epoll, for I/O that did not have to wait: the table never sees it).
    ///
    /// # Safety
    ///
    /// As `Driver::submit`: when the answer is `Queued`, `op` stays valid and
    /// unmoved until its completion is dispatched (`op` rule O1).
    #[inline]
    pub(crate) unsafe fn submit_op<C: OpCode + 'static>(
        &self,
        op: NonNull<C>,
        waker: &Waker,
    ) -> io::Result<SubmitOutcome> {
        let mut driver = self.driver.borrow_mut();
        self.do_chores(&mut driver);
        metrics::add(&self.counters.ops_submitted, 1);
        let (ud, res) = self.home.submit(waker, |ud| {
            // SAFETY: forwarded from the caller. The driver calls nothing
            // back into the table, which `OpHome::submit` holds meanwhile.
            unsafe { driver.submit_or_finish(ud, op) }
        })?;
        match res {
            Submitted::Queued => {
                if let Some(t) = &self.trace {
                    t.submit(ud, crate::op::op_kind::<C>());
                }
                Ok(SubmitOutcome::Queued(ud))
            }
            Submitted::Done(res) => {
                metrics::add(&self.counters.ops_completed, 1);
                Ok(SubmitOutcome::Done(res))
            }
        }
    }

    /// The active driver's kind (sockets are created blocking for io_uring,
    /// non-blocking for epoll).
    pub(crate) fn is_uring(&self) -> bool {
        self.uring
    }

    pub(crate) fn driver_kind(&self) -> coil_arch::DriverKind {
        self.driver.borrow().kind()
    }
}

/// The orphans of a completion batch, finished when this drops: after the
/// batch's wakers on the normal path, and also when a waker panics and
/// unwinds out of `dispatch_completions`. An orphan left unfinished would
/// lose the bytes a dropped read kept, and its socket's count of orphans in
/// flight would never reach zero, so every later read on it would wait
/// forever (`op` rule O3).
struct FinishOrphans(Vec<OrphanDone>);

impl Drop for FinishOrphans {
    fn drop(&mut self) {
        for o in self.0.drain(..) {
            o.finish();
        }
    }
}
