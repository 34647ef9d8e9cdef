//! `Op<T>`: the one door to the kernel, and the op table that tracks what is
//! in flight.
//!
//! A leaf I/O future builds an operation value (an `OpCode` from `coil-arch`
//! plus whatever it must keep alive: buffers, the fd handle, an address) and
//! awaits `Op::new(op)`. The first poll moves nothing: the op is already boxed,
//! and its address is what the driver keeps.
//!
//! # Ownership rules
//!
//! 1. From `Driver::submit` until the driver reports the op's completion, the
//!    boxed op is owned by exactly one of: the `Op` future (slot `Waiting`),
//!    or the op table (slot `Orphan`, after the future was dropped). Never
//!    freed in between: the kernel may write into it (io_uring), or the epoll
//!    table may call `perform` on it.
//! 2. Dropping an `Op` in flight moves the box into its slot (`Orphan`) and
//!    asks the driver to cancel. When the completion arrives, the op's
//!    [`Operation::complete_orphan`] runs: it can keep what the kernel
//!    produced (bytes a read delivered go back to the stream, see
//!    `net::SharedFd`) or release it (an accepted fd is closed), so
//!    cancellation loses nothing and leaks nothing.
//! 3. A slot's `user_data` is `generation << 32 | index`; a slot is reused
//!    only after its completion was consumed, with a new generation, so a
//!    stale key can never reach another op.
//! 4. At runtime shutdown every op still in flight is cancelled and its
//!    completion awaited (bounded); if the kernel does not answer in time the
//!    driver (the ring) is leaked rather than the memory freed under it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use coil_arch::{Completion, OpCode};

/// An operation as the op layer sees it: the kernel-facing part, plus how to
/// turn the completion into the future's output.
pub(crate) trait Operation: OpCode + Sized + 'static {
    /// What awaiting the op gives.
    type Output;

    /// Build the output from the result, taking the op (and its buffers) back.
    fn complete(self, res: io::Result<usize>) -> Self::Output;

    /// The future is being dropped while the op is submitted (in flight or
    /// completed but not yet observed); `complete_orphan` follows exactly once.
    fn on_orphaned(&self) {}

    /// The future was dropped but the op completed anyway: keep or release
    /// what it produced (rule 2). The default drops everything.
    fn complete_orphan(self, res: io::Result<usize>) {
        drop((self, res));
    }
}

/// Type-erased orphan, so the table can hold any op.
pub(crate) trait Orphan {
    fn finish(self: Box<Self>, res: io::Result<usize>);
}

impl<T: Operation> Orphan for T {
    fn finish(self: Box<Self>, res: io::Result<usize>) {
        (*self).complete_orphan(res);
    }
}

enum SlotState {
    Vacant,
    Waiting(Option<Waker>),
    Done(i32),
    Orphan(Box<dyn Orphan>),
}

struct Slot {
    generation: u32,
    state: SlotState,
}

/// What the core must do after recording a completion.
pub(crate) enum Completed {
    /// Wake the future's task.
    Wake(Waker),
    /// Run this orphan's completion (outside any borrow of the table).
    Orphan(OrphanDone),
    /// Nothing (stale key, or no waker registered).
    Nothing,
}

/// An orphan whose completion arrived.
pub(crate) struct OrphanDone {
    op: Box<dyn Orphan>,
    res: io::Result<usize>,
}

impl OrphanDone {
    pub(crate) fn finish(self) {
        self.op.finish(self.res);
    }
}

/// The table of in-flight ops of one loop (rule 3).
#[derive(Default)]
pub(crate) struct OpTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_flight: usize,
}

impl std::fmt::Debug for OpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpTable")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

fn split(user_data: u64) -> (usize, u32) {
    ((user_data & 0xFFFF_FFFF) as usize, (user_data >> 32) as u32)
}

fn io_result(res: i32) -> io::Result<usize> {
    Completion {
        user_data: 0,
        result: res,
        flags: 0,
    }
    .io_result()
}

impl OpTable {
    /// Ops submitted and not yet completed (waiting or orphaned).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn insert(&mut self, waker: Waker) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: SlotState::Vacant,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.state = SlotState::Waiting(Some(waker));
        self.in_flight += 1;
        (u64::from(slot.generation) << 32) | index as u64
    }

    fn slot(&mut self, user_data: u64) -> Option<&mut Slot> {
        let (index, generation) = split(user_data);
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation)
    }

    fn vacate(&mut self, user_data: u64) {
        let (index, _) = split(user_data);
        let slot = &mut self.slots[index];
        slot.state = SlotState::Vacant;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
    }

    /// The submit failed: forget the slot.
    fn abandon(&mut self, user_data: u64) {
        self.in_flight -= 1;
        self.vacate(user_data);
    }

    /// The future polls: its result if done (freeing the slot), else Pending
    /// with the waker refreshed.
    fn poll(&mut self, user_data: u64, waker: &Waker) -> Option<i32> {
        let slot = self
            .slot(user_data)
            .expect("op slot vanished while its future lives");
        match &mut slot.state {
            SlotState::Done(res) => {
                let res = *res;
                self.vacate(user_data);
                Some(res)
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

    /// The future is dropped. Returns the op back if it had already completed
    /// (with its result: the caller runs `complete_orphan`), or None if it is
    /// in flight (the table keeps it; the caller must cancel).
    fn orphan(&mut self, user_data: u64, op: Box<dyn Orphan>) -> Option<OrphanDone> {
        let slot = self
            .slot(user_data)
            .expect("op slot vanished while its future lives");
        match std::mem::replace(&mut slot.state, SlotState::Vacant) {
            SlotState::Done(res) => {
                self.vacate(user_data);
                Some(OrphanDone {
                    op,
                    res: io_result(res),
                })
            }
            SlotState::Waiting(_) => {
                slot.state = SlotState::Orphan(op);
                None
            }
            _ => unreachable!("a live Op's slot is Waiting or Done"),
        }
    }

    /// Record a completion reported by the driver.
    pub(crate) fn complete(&mut self, c: &Completion) -> Completed {
        let Some(slot) = self.slot(c.user_data) else {
            debug_assert!(false, "completion for an unknown op {:#x}", c.user_data);
            return Completed::Nothing;
        };
        match std::mem::replace(&mut slot.state, SlotState::Done(c.result)) {
            SlotState::Waiting(w) => {
                self.in_flight -= 1;
                w.map_or(Completed::Nothing, Completed::Wake)
            }
            SlotState::Orphan(op) => {
                self.in_flight -= 1;
                self.vacate(c.user_data);
                Completed::Orphan(OrphanDone {
                    op,
                    res: c.io_result(),
                })
            }
            other => {
                slot.state = other;
                debug_assert!(false, "a second completion for op {:#x}", c.user_data);
                Completed::Nothing
            }
        }
    }

    /// Keys of every op still in flight (shutdown cancels them).
    pub(crate) fn in_flight_keys(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.state, SlotState::Waiting(_) | SlotState::Orphan(_)))
            .map(|(i, s)| (u64::from(s.generation) << 32) | i as u64)
            .collect()
    }

    /// Shutdown gave up waiting: leak whatever the kernel may still touch.
    pub(crate) fn leak_in_flight(&mut self) {
        for s in &mut self.slots {
            if let SlotState::Orphan(op) = std::mem::replace(&mut s.state, SlotState::Vacant) {
                std::mem::forget(op);
            }
        }
    }
}

/// The future of one operation. See the module docs for the rules.
pub(crate) struct Op<T: Operation> {
    op: Option<Box<T>>,
    /// `(core id, user_data)` once submitted.
    key: Option<(u64, u64)>,
}

impl<T: Operation> Op<T> {
    pub(crate) fn new(op: T) -> Op<T> {
        Op {
            op: Some(Box::new(op)),
            key: None,
        }
    }
}

fn gone() -> io::Error {
    io::Error::other(
        "the coil runtime this I/O object belongs to is not running on this thread \
         (it was shut down, or the object is used outside coil::run)",
    )
}

/// Set when a runtime's shutdown gave up waiting for the kernel and leaked its
/// driver (rule 4): from then on, ops that outlived their loop are leaked
/// rather than freed, since that kernel queue may still write into them.
pub(crate) static DRIVER_LEAKED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn driver_leaked() -> bool {
    DRIVER_LEAKED.load(std::sync::atomic::Ordering::Relaxed)
}

impl<T: Operation> Future for Op<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        crate::rt::with_core(|core| {
            let op_box = |this: &mut Op<T>| this.op.take().expect("Op polled after completion");
            let Some(core) = core else {
                let submitted = this.key.take().is_some();
                let op = op_box(this);
                if submitted && driver_leaked() {
                    std::mem::forget(op);
                    panic!(
                        "an I/O future outlived its coil runtime, whose kernel queue was leaked at shutdown; drop I/O futures before their runtime"
                    );
                }
                // Never submitted, or its runtime drained it at shutdown.
                return Poll::Ready(op.complete(Err(gone())));
            };
            match this.key {
                None => {
                    let op = this.op.as_mut().expect("Op polled after completion");
                    let ptr = NonNull::from(&mut **op as &mut dyn OpCode);
                    // SAFETY: rule 1: the box stays where it is, owned by this
                    // future or by the op table, until the completion.
                    match unsafe { core.submit_op(ptr, cx.waker()) } {
                        Ok(ud) => {
                            this.key = Some((core.id(), ud));
                            Poll::Pending
                        }
                        Err(e) => Poll::Ready(op_box(this).complete(Err(e))),
                    }
                }
                Some((core_id, _)) if core_id != core.id() => {
                    // Still in flight in another loop's kernel queue: leak it
                    // rather than free memory the kernel may write.
                    this.key = None;
                    std::mem::forget(op_box(this));
                    panic!(
                        "an I/O future was polled on a different coil event loop than the one it \
                         started on; I/O objects belong to the loop that created them"
                    );
                }
                Some((_, ud)) => match core.poll_op(ud, cx.waker()) {
                    None => Poll::Pending,
                    Some(res) => {
                        this.key = None;
                        Poll::Ready(op_box(this).complete(io_result(res)))
                    }
                },
            }
        })
    }
}

impl<T: Operation> Drop for Op<T> {
    fn drop(&mut self) {
        let (Some((core_id, ud)), Some(op)) = (self.key.take(), self.op.take()) else {
            return;
        };
        crate::rt::with_core(|core| match core {
            Some(core) if core.id() == core_id => {
                op.on_orphaned();
                core.orphan_op(ud, op);
            }
            // Its loop shut down and drained it (rule 4): safe to free.
            None if !driver_leaked() => drop(op),
            // In flight in another loop, or that loop leaked its driver.
            _ => std::mem::forget(op),
        });
    }
}

/// Type-erased op owned by the table (for the core's signatures).
pub(crate) type OrphanBox = Box<dyn Orphan>;

impl OpTable {
    /// Submit bookkeeping for the core: a new waiting slot.
    pub(crate) fn insert_waiting(&mut self, waker: &Waker) -> u64 {
        self.insert(waker.clone())
    }

    /// See `insert_waiting`; the driver refused the op.
    pub(crate) fn submit_failed(&mut self, user_data: u64) {
        self.abandon(user_data);
    }

    /// The future polls.
    pub(crate) fn poll_slot(&mut self, user_data: u64, waker: &Waker) -> Option<i32> {
        self.poll(user_data, waker)
    }

    /// The future is dropped.
    pub(crate) fn orphan_slot(&mut self, user_data: u64, op: OrphanBox) -> Option<OrphanDone> {
        self.orphan(user_data, op)
    }
}

/// Implements `OpCode` for a wrapper `$ty<T> { op: T, .. }` that pairs an op
/// with something it keeps alive (an fd handle, a socket): every method
/// delegates to `op`.
macro_rules! delegate_opcode {
    ($ty:ident) => {
        // SAFETY: delegates to `op`, whose entry points only into itself; the
        // wrapper's other field keeps the fd number valid (io/fd.rs rule 1,
        // fs/ops.rs rule 1) for as long as the op lives.
        unsafe impl<T: coil_arch::OpCode> coil_arch::OpCode for $ty<T> {
            fn uring_entry(&mut self) -> coil_arch::op::UringEntry {
                self.op.uring_entry()
            }
            fn readiness(&self) -> coil_arch::op::Readiness {
                self.op.readiness()
            }
            fn perform(&mut self) -> std::io::Result<usize> {
                self.op.perform()
            }
            fn sim(&mut self) -> Option<coil_arch::op::SimOp<'_>> {
                self.op.sim()
            }
        }
    };
}
pub(crate) use delegate_opcode;
