//! [`OpHome`]: the part of a loop that its in-flight ops belong to, and the
//! op table inside it.
//!
//! Every loop (`rt::core::Core`) has one `OpHome` behind an `Rc`. Each op in
//! flight holds a clone of that `Rc` (`Op`'s `InFlight` state), and so does
//! every fd handle made on the loop (`op::fd::SharedFd`). So whatever holds
//! an in-flight op can reach the table of the loop that submitted it without
//! asking which loop is current on the thread (rule O2 in the module docs):
//! a drop between `block_on` calls, inside another runtime's `block_on`, or
//! after the runtime was dropped all find the same table.
//!
//! # States of a slot
//!
//! A slot's key is `generation << 32 | index`; a slot is reused only after
//! its completion was consumed, with a new generation, so a stale key never
//! reaches another op.
//!
//! - `Vacant`: free.
//! - `Waiting(waker)`: submitted, no completion yet; the future owns the op.
//! - `Done(res)`: the completion arrived; the future owns the op and has not
//!   polled since.
//! - `Orphan(op)`: submitted, no completion yet, the future was dropped: the
//!   table owns the op (as an [`InFlight`], which leaks if dropped) until
//!   the completion arrives and [`Orphan::finish`] runs.
//!
//! # Phases of the home
//!
//! - `Running`: the loop exists. Drops anywhere record orphans here and
//!   queue their cancels in `cancels`; the loop sends them at its next park
//!   or submit ([`OpHome::take_chores`]).
//! - `Drained`: the runtime was dropped after every op in flight completed
//!   (it cancelled them and waited). Every slot is `Vacant` or `Done`, and no
//!   completion will ever come again. A future polled now gets its result
//!   (a cancelled one: the "runtime was shut down" error); one dropped now
//!   finishes its orphan at once.
//! - `Leaked`: the runtime was dropped but the kernel did not confirm every
//!   cancellation in time; its driver (and the kernel queue) was leaked with
//!   every op still in flight. Such ops are never freed: dropping their
//!   future leaks the op; polling it panics (there is no buffer to give
//!   back that the kernel might not still write).

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::task::Waker;

use coil_arch::Completion;

use super::alloc::InFlight;

/// Type-erased op, so the table can hold any orphan.
pub(crate) trait Orphan {
    /// The completion arrived after the future was dropped.
    fn finish(self: Box<Self>, res: io::Result<usize>, flags: u32);
}

impl<T: super::Operation> Orphan for T {
    fn finish(self: Box<Self>, res: io::Result<usize>, flags: u32) {
        (*self).complete_orphan_flags(res, flags);
    }
}

/// An orphaned op, as the table keeps it.
pub(crate) type OrphanOp = InFlight<dyn Orphan>;

enum SlotState {
    Vacant,
    Waiting(Option<Waker>),
    /// With the CQE flags (a provided buffer's id: `op/pbuf.rs`).
    Done(i32, u32),
    Orphan(OrphanOp),
}

struct Slot {
    generation: u32,
    state: SlotState,
}

/// An orphan whose completion arrived.
pub(crate) struct OrphanDone {
    op: Box<dyn Orphan>,
    res: io::Result<usize>,
    flags: u32,
}

impl OrphanDone {
    /// Runs the op's `complete_orphan` (keeps or releases what it produced).
    pub(crate) fn finish(self) {
        self.op.finish(self.res, self.flags);
    }
}

/// What polling a slot found.
pub(crate) enum SlotPoll {
    /// The completion arrived, with this result and CQE flags; the slot is
    /// free again.
    Ready(io::Result<usize>, u32),
    /// Still in flight; the waker is stored.
    Pending,
    /// Still in flight in a loop that leaked its driver at shutdown.
    Leaked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Drained,
    Leaked,
}

/// A loop's registered-buffer entries that dropped fixed-buffer pools left
/// for it to empty (`io/fixed.rs` rule F4): shared with those pools, which
/// may drop on any thread.
pub(crate) type FixedReleases = std::sync::Arc<std::sync::Mutex<Vec<u16>>>;

/// The op table of one loop and the work drops leave for it (module docs).
pub(crate) struct OpHome {
    table: RefCell<OpTable>,
    /// Keys of ops dropped in flight whose cancel the loop has not sent.
    cancels: RefCell<Vec<u64>>,
    /// Fds closed by their owners since the loop last told the driver
    /// (`op/fd.rs` rule 2).
    closed_fds: RefCell<Vec<RawFd>>,
    /// `cancels` or `closed_fds` is not empty: one load on the submit path.
    chores: Cell<bool>,
    phase: Cell<Phase>,
    /// Id of the loop this table belongs to (`Runtime` ids), for reports.
    loop_id: u64,
    /// The loop's pool of read buffers (`coil_arch::pbuf`), made by the first
    /// pooled read (`net/stream.rs`).
    buf_ring: RefCell<Option<coil_arch::pbuf::BufRing>>,
    /// Registered-buffer entries of dropped fixed-buffer pools, left for the
    /// loop to empty (`io/fixed.rs` rule F4); made by the first pool.
    fixed_releases: std::cell::OnceCell<FixedReleases>,
}

impl std::fmt::Debug for OpHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpHome")
            .field("in_flight", &self.table.borrow().in_flight)
            .field("phase", &self.phase.get())
            .finish_non_exhaustive()
    }
}

impl OpHome {
    pub(crate) fn new(loop_id: u64) -> OpHome {
        OpHome {
            table: RefCell::new(OpTable::default()),
            cancels: RefCell::new(Vec::new()),
            closed_fds: RefCell::new(Vec::new()),
            chores: Cell::new(false),
            phase: Cell::new(Phase::Running),
            loop_id,
            buf_ring: RefCell::new(None),
            fixed_releases: std::cell::OnceCell::new(),
        }
    }

    /// The loop's list of registered-buffer entries to empty (`io/fixed.rs`
    /// rule F4).
    pub(crate) fn fixed_releases(&self) -> &FixedReleases {
        self.fixed_releases.get_or_init(Default::default)
    }

    /// The loop's pool of read buffers, made (and registered with the driver
    /// by `register`) on first use.
    pub(crate) fn buf_ring(
        &self,
        make: impl FnOnce() -> std::io::Result<coil_arch::pbuf::BufRing>,
    ) -> std::io::Result<coil_arch::pbuf::BufRing> {
        if let Some(r) = &*self.buf_ring.borrow() {
            return Ok(r.clone());
        }
        let r = make()?;
        *self.buf_ring.borrow_mut() = Some(r.clone());
        Ok(r)
    }

    /// Id of the loop this table belongs to.
    pub(crate) fn loop_id(&self) -> u64 {
        self.loop_id
    }

    /// Ops submitted and not yet completed (waiting or orphaned).
    pub(crate) fn in_flight(&self) -> usize {
        self.table.borrow().in_flight
    }

    /// The loop still exists.
    pub(crate) fn is_running(&self) -> bool {
        self.phase.get() == Phase::Running
    }

    /// Submit under a free key, with one borrow of the table: `submit`
    /// hands the op to the driver under the key it is given; if the driver
    /// queued it, the slot is taken (waiting with `waker`) before the table
    /// is released. An op the driver finished during the submit, or one it
    /// refused, never touches the table.
    ///
    /// The table stays borrowed during `submit`: the driver calls nothing
    /// back into the table (no waker, no op code of the table's), so the key
    /// is still free when the slot is taken. A `submit` that did reach the
    /// table would panic on the borrow, not corrupt it.
    #[inline(always)]
    pub(crate) fn submit(
        &self,
        waker: &Waker,
        submit: impl FnOnce(u64) -> io::Result<coil_arch::Submitted>,
    ) -> io::Result<(u64, coil_arch::Submitted)> {
        let mut table = self.table.borrow_mut();
        let key = table.key_for_submit();
        let res = submit(key)?;
        if let coil_arch::Submitted::Queued = res {
            table.insert_waiting(key, waker);
        }
        Ok((key, res))
    }

    /// The future polls its slot (in any context).
    #[inline(always)]
    pub(crate) fn poll(&self, user_data: u64, waker: &Waker) -> SlotPoll {
        let res = self.table.borrow_mut().poll(user_data, waker);
        match res {
            Some((res, flags)) => SlotPoll::Ready(self.result(res), flags),
            None if self.phase.get() == Phase::Leaked => SlotPoll::Leaked,
            None => SlotPoll::Pending,
        }
    }

    /// A raw result as the future sees it: after the runtime was dropped, a
    /// cancellation is reported as such.
    #[inline(always)]
    fn result(&self, res: i32) -> io::Result<usize> {
        if res == -libc::ECANCELED && self.phase.get() != Phase::Running {
            return Err(super::runtime_gone());
        }
        io_result(res)
    }

    /// The future is dropped with its op in flight (rule O2), in any
    /// context. If the completion already arrived the orphan comes back to
    /// be finished by the caller; otherwise the table keeps it and the
    /// cancel is queued for the loop (or, after a leaked shutdown, the op is
    /// leaked).
    pub(crate) fn orphan(&self, user_data: u64, op: OrphanOp) -> Option<OrphanDone> {
        let mut table = self.table.borrow_mut();
        match table.orphan(user_data, op) {
            Ok(done) => Some(done),
            Err(op) => {
                match self.phase.get() {
                    Phase::Running => {
                        table.keep_orphan(user_data, op);
                        self.cancels.borrow_mut().push(user_data);
                        self.chores.set(true);
                    }
                    // Drained: every op completed, so no slot is waiting.
                    // Leaked: the kernel may still write into it.
                    Phase::Drained | Phase::Leaked => {
                        debug_assert_eq!(self.phase.get(), Phase::Leaked);
                        drop(op); // leaks (an `InFlight`)
                    }
                }
                None
            }
        }
    }

    /// Records the completions `done` (emptied) reported by the driver, under
    /// one borrow of the table: the wakers of the futures to wake go to
    /// `wakers`, the orphans to finish to `orphans` (both run by the caller
    /// once the table is free again).
    #[inline]
    pub(crate) fn complete_all(
        &self,
        done: &mut Vec<Completion>,
        wakers: &mut Vec<Waker>,
        orphans: &mut Vec<OrphanDone>,
    ) {
        let mut table = self.table.borrow_mut();
        // At most one waker a completion: the pushes below never reallocate.
        wakers.reserve(done.len());
        for c in done.drain(..) {
            table.complete(&c, wakers, orphans);
        }
    }

    /// An fd on this loop was closed (`op/fd.rs` rule 2).
    pub(crate) fn fd_closed(&self, fd: RawFd) {
        if !self.is_running() {
            return; // the driver that knew the fd is gone
        }
        self.closed_fds.borrow_mut().push(fd);
        self.chores.set(true);
    }

    /// Whether drops or closes left work for the loop.
    #[inline]
    pub(crate) fn has_chores(&self) -> bool {
        self.chores.get()
    }

    /// The loop takes the work drops and closes left: fds to forget (first:
    /// no new op may meet a stale registration), then keys to cancel. The
    /// vectors are appended to the caller's.
    pub(crate) fn take_chores(&self, fds: &mut Vec<RawFd>, cancels: &mut Vec<u64>) {
        fds.append(&mut self.closed_fds.borrow_mut());
        cancels.append(&mut self.cancels.borrow_mut());
        self.chores.set(false);
    }

    /// Shutdown cancels every key in flight: the queued cancels are a
    /// subset of them and need not be sent as well.
    pub(crate) fn clear_cancels(&self) {
        self.cancels.borrow_mut().clear();
    }

    /// Shutdown: every key still in flight (to cancel).
    pub(crate) fn in_flight_keys(&self) -> Vec<u64> {
        self.table.borrow().in_flight_keys()
    }

    /// Shutdown confirmed every completion: from now on no completion comes.
    pub(crate) fn set_drained(&self) {
        debug_assert_eq!(self.in_flight(), 0);
        self.phase.set(Phase::Drained);
        self.clear_cancels();
    }

    /// Shutdown gave up waiting: the driver is leaked, and so is every op
    /// still in flight, now or later (module docs, `Leaked`).
    pub(crate) fn set_leaked(&self) {
        self.phase.set(Phase::Leaked);
        self.table.borrow_mut().leak_orphans();
        self.clear_cancels();
    }
}

/// Slots, keyed by `user_data` (module docs).
#[derive(Default)]
struct OpTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_flight: usize,
}

#[inline]
fn split(user_data: u64) -> (usize, u32) {
    ((user_data & 0xFFFF_FFFF) as usize, (user_data >> 32) as u32)
}

/// A raw completion result as an `io::Result`.
pub(crate) fn io_result(res: i32) -> io::Result<usize> {
    Completion {
        user_data: 0,
        result: res,
        flags: 0,
    }
    .io_result()
}

impl OpTable {
    #[inline]
    fn slot(&mut self, user_data: u64) -> Option<&mut Slot> {
        let (index, generation) = split(user_data);
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation)
    }

    #[inline]
    fn vacate(&mut self, user_data: u64) {
        let (index, _) = split(user_data);
        let slot = &mut self.slots[index];
        // Only a `Done` slot is vacated (its completion consumed), and a
        // `Done` state owns nothing: no drop glue for the old value.
        let old = std::mem::replace(&mut slot.state, SlotState::Vacant);
        debug_assert!(matches!(old, SlotState::Done(..)));
        std::mem::forget(old);
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
    }

    #[inline]
    fn key_for_submit(&self) -> u64 {
        match self.free.last() {
            Some(&i) => (u64::from(self.slots[i as usize].generation) << 32) | u64::from(i),
            None => self.slots.len() as u64,
        }
    }

    #[inline(always)]
    fn insert_waiting(&mut self, user_data: u64, waker: &Waker) {
        let (index, _) = split(user_data);
        let state = SlotState::Waiting(Some(waker.clone()));
        if index == self.slots.len() {
            self.slots.push(Slot {
                generation: 0,
                state,
            });
        } else {
            let popped = self.free.pop();
            debug_assert_eq!(
                popped,
                Some(index as u32),
                "the op table changed since key_for_submit"
            );
            // A free slot is `Vacant`, which owns nothing: no drop glue
            // for the old value.
            let old = std::mem::replace(&mut self.slots[index].state, state);
            debug_assert!(matches!(old, SlotState::Vacant));
            std::mem::forget(old);
        }
        self.in_flight += 1;
    }

    /// The future polls: its raw result if done (freeing the slot), else
    /// None with the waker refreshed.
    #[inline(always)]
    fn poll(&mut self, user_data: u64, waker: &Waker) -> Option<(i32, u32)> {
        let slot = self
            .slot(user_data)
            .expect("op slot vanished while its future lives");
        match &mut slot.state {
            SlotState::Done(res, flags) => {
                let done = (*res, *flags);
                self.vacate(user_data);
                Some(done)
            }
            SlotState::Waiting(w) => {
                match w {
                    Some(w) if w.will_wake(waker) => {}
                    _ => *w = Some(waker.clone()),
                }
                None
            }
            _ => unreachable!("a live Op's slot is Waiting or Done"),
        }
    }

    /// The future is dropped: `Ok` with the orphan to finish if its
    /// completion already arrived, `Err(op)` back if it is in flight.
    fn orphan(&mut self, user_data: u64, op: OrphanOp) -> Result<OrphanDone, OrphanOp> {
        let slot = self
            .slot(user_data)
            .expect("op slot vanished while its future lives");
        match slot.state {
            SlotState::Done(res, flags) => {
                self.vacate(user_data);
                // SAFETY: the slot is `Done`: the driver reported this op's
                // completion, so nothing touches the block any more.
                let op = unsafe { op.landed() }.into_box();
                Ok(OrphanDone {
                    op,
                    res: io_result(res),
                    flags,
                })
            }
            SlotState::Waiting(_) => Err(op),
            _ => unreachable!("a live Op's slot is Waiting or Done"),
        }
    }

    /// Keeps an orphan whose completion has not come.
    fn keep_orphan(&mut self, user_data: u64, op: OrphanOp) {
        let slot = self.slot(user_data).expect("checked by `orphan`");
        debug_assert!(matches!(slot.state, SlotState::Waiting(_)));
        slot.state = SlotState::Orphan(op);
    }

    /// Records a completion: a waiting slot becomes `Done` and its waker goes
    /// to `wakers`; an orphan's goes to `orphans` (out of line: the rare case).
    /// A waiting slot is handled without building an enum of what to do and
    /// without the old state's drop glue (W6: 680 -> 671 instructions a read, callgrind).
    #[inline(always)]
    fn complete(&mut self, c: &Completion, wakers: &mut Vec<Waker>, orphans: &mut Vec<OrphanDone>) {
        if let Some(slot) = self.slot(c.user_data)
            && let SlotState::Waiting(w) = &mut slot.state
        {
            let w = w.take();
            // The old state is now `Waiting(None)`, which owns nothing: no
            // drop glue for it.
            let old = std::mem::replace(&mut slot.state, SlotState::Done(c.result, c.flags));
            debug_assert!(matches!(old, SlotState::Waiting(None)));
            std::mem::forget(old);
            self.in_flight -= 1;
            if let Some(w) = w {
                wakers.push(w);
            }
            return;
        }
        self.complete_other(c, orphans);
    }

    /// [`complete`](Self::complete) for a slot that is not waiting: an orphan
    /// (finished by the caller), or a stale key or a second completion (bugs).
    #[cold]
    #[inline(never)]
    fn complete_other(&mut self, c: &Completion, orphans: &mut Vec<OrphanDone>) {
        let Some(slot) = self.slot(c.user_data) else {
            debug_assert!(false, "completion for an unknown op {:#x}", c.user_data);
            return;
        };
        match std::mem::replace(&mut slot.state, SlotState::Done(c.result, c.flags)) {
            SlotState::Orphan(op) => {
                self.in_flight -= 1;
                self.vacate(c.user_data);
                // SAFETY: this is the op's completion, reported by the
                // driver: nothing touches the block any more.
                let op = unsafe { op.landed() }.into_box();
                orphans.push(OrphanDone {
                    op,
                    res: c.io_result(),
                    flags: c.flags,
                });
            }
            other => {
                slot.state = other;
                debug_assert!(false, "a second completion for op {:#x}", c.user_data);
            }
        }
    }

    fn in_flight_keys(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.state, SlotState::Waiting(_) | SlotState::Orphan(_)))
            .map(|(i, s)| (u64::from(s.generation) << 32) | i as u64)
            .collect()
    }

    /// Leaks every orphan (their `InFlight` drops leak the blocks); waiting
    /// slots stay, for their futures to find (`SlotPoll::Leaked`).
    fn leak_orphans(&mut self) {
        for s in &mut self.slots {
            if matches!(s.state, SlotState::Orphan(_)) {
                s.state = SlotState::Vacant; // drops the InFlight: a leak
            }
        }
    }
}
