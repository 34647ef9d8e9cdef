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
//!    produced (bytes a read delivered go to the stream's stash and an
//!    accepted connection to the listener's queue, see `io/fd.rs`) or
//!    release it (the fd of a late connect or open is closed), so
//!    cancellation loses nothing and leaks nothing (`docs/cancellation.md`).
//! 3. A slot's `user_data` is `generation << 32 | index`; a slot is reused
//!    only after its completion was consumed, with a new generation, so a
//!    stale key can never reach another op.
//! 4. An op the driver finished during the submit (epoll, for I/O that did
//!    not have to wait: `SubmitOutcome::Done`) never enters the table; the
//!    first poll returns its output. It takes a unit of coop budget, since
//!    such a future never answers `Pending` on its own.
//! 5. At runtime shutdown every op still in flight is cancelled and its
//!    completion awaited (bounded); if the kernel does not answer in time the
//!    driver (the ring) is leaked rather than the memory freed under it.
//!
//! # Allocation
//!
//! Every op is boxed (rule 1 needs a stable address), which made malloc/free
//! ~14% of the W5 echo server's instructions: with a hundred connections each
//! holding an op, glibc's per-size tcache (7 entries) overflows into its slow
//! paths. [`pool`] keeps freed op boxes per thread, keyed by exact layout, and
//! hands them back to the next op of the same layout. The boxes themselves are
//! ordinary `Box`es of the global allocator, so an op that leaves the pool's
//! path (an orphan freed by the table, a leaked op) needs nothing special.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use coil_arch::{Completion, OpCode};

use crate::rt::budget;

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

/// What `Core::submit_op` did with an op.
pub(crate) enum SubmitOutcome {
    /// In flight under this key; the future polls the table for its result.
    Queued(u64),
    /// The driver finished it during the submit, with this raw result: the
    /// op is the future's again, and no completion will come.
    Done(i32),
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

#[inline]
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
        slot.state = SlotState::Vacant;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
    }

    /// The future polls: its result if done (freeing the slot), else Pending
    /// with the waker refreshed.
    #[inline]
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
    #[inline]
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
    #[inline]
    pub(crate) fn new(op: T) -> Op<T> {
        Op {
            op: Some(pool::boxed(op)),
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
/// driver (rule 5): from then on, ops that outlived their loop are leaked
/// rather than freed, since that kernel queue may still write into them.
pub(crate) static DRIVER_LEAKED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn driver_leaked() -> bool {
    DRIVER_LEAKED.load(std::sync::atomic::Ordering::Relaxed)
}

impl<T: Operation> Future for Op<T> {
    type Output = T::Output;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        crate::rt::with_core(|core| {
            // The op leaves its box for good (the box goes back to the pool).
            let op_box = |this: &mut Op<T>| {
                pool::unboxed(this.op.take().expect("Op polled after completion"))
            };
            let Some(core) = core else {
                let submitted = this.key.take().is_some();
                let op = this.op.take().expect("Op polled after completion");
                if submitted && driver_leaked() {
                    std::mem::forget(op);
                    panic!(
                        "an I/O future outlived its coil runtime, whose kernel queue was leaked at shutdown; drop I/O futures before their runtime"
                    );
                }
                // Never submitted, or its runtime drained it at shutdown.
                return Poll::Ready(pool::unboxed(op).complete(Err(gone())));
            };
            match this.key {
                None => {
                    // Coop budget (rule 4): a driver that finishes ops during
                    // the submit (epoll, when the socket is ready) would
                    // otherwise let a task loop on ready I/O forever.
                    if budget::spent(core, cx) {
                        return Poll::Pending;
                    }
                    let op = this.op.as_mut().expect("Op polled after completion");
                    let ptr = NonNull::from(&mut **op);
                    // SAFETY: rule 1: the box stays where it is, owned by this
                    // future or by the op table, until the completion.
                    match unsafe { core.submit_op(ptr, cx.waker()) } {
                        Ok(SubmitOutcome::Queued(ud)) => {
                            this.key = Some((core.id(), ud));
                            Poll::Pending
                        }
                        Ok(SubmitOutcome::Done(res)) => {
                            budget::take(core);
                            Poll::Ready(op_box(this).complete(io_result(res)))
                        }
                        Err(e) => Poll::Ready(op_box(this).complete(Err(e))),
                    }
                }
                Some((core_id, _)) if core_id != core.id() => {
                    // Still in flight in another loop's kernel queue: leak it
                    // rather than free memory the kernel may write.
                    this.key = None;
                    std::mem::forget(this.op.take());
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
            // Its loop shut down and drained it (rule 5): safe to free.
            None if !driver_leaked() => drop(op),
            // In flight in another loop, or that loop leaked its driver.
            _ => std::mem::forget(op),
        });
    }
}

/// Type-erased op owned by the table (for the core's signatures).
pub(crate) type OrphanBox = Box<dyn Orphan>;

impl OpTable {
    /// Submit bookkeeping for the core: the key to submit under. Nothing is
    /// recorded yet: the slot is taken (`insert_waiting`) only if the op stays
    /// in flight, so an op the driver finished during the submit never touches
    /// the table.
    #[inline]
    pub(crate) fn key_for_submit(&self) -> u64 {
        match self.free.last() {
            Some(&i) => (u64::from(self.slots[i as usize].generation) << 32) | u64::from(i),
            None => self.slots.len() as u64,
        }
    }

    /// The driver queued the op under `key_for_submit()`'s key: take that
    /// slot, waiting for `waker`.
    #[inline]
    pub(crate) fn insert_waiting(&mut self, user_data: u64, waker: &Waker) {
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
            self.slots[index].state = state;
        }
        self.in_flight += 1;
    }

    /// The future polls.
    #[inline]
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
            fn drained(&self, n: usize) -> bool {
                self.op.drained(n)
            }
            fn sim(&mut self) -> Option<coil_arch::op::SimOp<'_>> {
                self.op.sim()
            }
        }
    };
}
pub(crate) use delegate_opcode;

/// Per-thread cache of freed op boxes (module docs, "Allocation").
///
/// One intrusive free list per size class: sizes 8, 16, ..., 512 bytes (ops
/// hold pointers and fds, so their sizes are multiples of 8). A class takes
/// the alignment of the first block put in it; blocks of other sizes or
/// alignments bypass the pool. A free block stores the next block's address
/// in its first 8 bytes.
///
/// Invariants:
/// 1. Every listed block was allocated by the global allocator with exactly
///    `Layout::from_size_align(class size, class align)` (it was a `Box<T>` of
///    that layout), and only its list refers to it.
/// 2. A block is handed out only for a `T` with that exact layout, so
///    `Box::from_raw` on it is a box the global allocator could have made.
/// 3. Each list holds at most `PER_CLASS` blocks; all are freed, with their
///    class's layout, when the thread's pool is dropped.
pub(crate) mod pool {
    use std::alloc::Layout;
    use std::cell::Cell;
    use std::ptr;

    const GRAIN: usize = 8;
    const CLASSES: usize = 64;
    /// Blocks kept per class: enough for thousands of connections' ops in
    /// flight to recycle without reaching malloc.
    const PER_CLASS: u32 = 4096;

    struct Pool {
        heads: [Cell<*mut u8>; CLASSES],
        lens: [Cell<u32>; CLASSES],
        /// 0 while the class is unused.
        aligns: [Cell<usize>; CLASSES],
    }

    impl Pool {
        const fn new() -> Pool {
            Pool {
                heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
                lens: [const { Cell::new(0) }; CLASSES],
                aligns: [const { Cell::new(0) }; CLASSES],
            }
        }

        /// The class of `layout`, if it can be pooled.
        fn class(layout: Layout) -> Option<usize> {
            let size = layout.size();
            (size != 0 && size.is_multiple_of(GRAIN) && size <= GRAIN * CLASSES)
                .then(|| size / GRAIN - 1)
        }

        fn take(&self, layout: Layout) -> Option<*mut u8> {
            let c = Pool::class(layout)?;
            let head = self.heads[c].get();
            if head.is_null() || self.aligns[c].get() != layout.align() {
                return None;
            }
            // SAFETY: invariant 1: `head` is a free block of at least 8 bytes
            // and alignment >= 8 whose first word is the next block.
            let next = unsafe { head.cast::<*mut u8>().read() };
            self.heads[c].set(next);
            self.lens[c].set(self.lens[c].get() - 1);
            Some(head)
        }

        /// Lists `block`, a `Box` allocation of `layout` no longer used;
        /// `false` if the pool does not take it.
        fn put(&self, layout: Layout, block: *mut u8) -> bool {
            let Some(c) = Pool::class(layout) else {
                return false;
            };
            if layout.align() < align_of::<*mut u8>() {
                return false; // the block could not hold the link
            }
            match self.aligns[c].get() {
                0 => self.aligns[c].set(layout.align()),
                a if a != layout.align() => return false,
                _ => {}
            }
            let len = self.lens[c].get();
            if len >= PER_CLASS {
                return false;
            }
            // SAFETY: `block` is at least 8 bytes (size is a non-zero multiple
            // of 8) and aligned for a pointer (checked above); it is unused.
            unsafe { block.cast::<*mut u8>().write(self.heads[c].get()) };
            self.heads[c].set(block);
            self.lens[c].set(len + 1);
            true
        }
    }

    impl Drop for Pool {
        fn drop(&mut self) {
            for c in 0..CLASSES {
                let layout = Layout::from_size_align((c + 1) * GRAIN, self.aligns[c].get().max(1))
                    .expect("a class's layout was valid when its first block came in");
                let mut block = self.heads[c].replace(ptr::null_mut());
                while !block.is_null() {
                    // SAFETY: invariant 1: a listed block, first word = next.
                    let next = unsafe { block.cast::<*mut u8>().read() };
                    // SAFETY: invariant 1: the global allocator's, with `layout`.
                    unsafe { std::alloc::dealloc(block, layout) };
                    block = next;
                }
                self.lens[c].set(0);
            }
        }
    }

    thread_local! {
        static POOL: Pool = const { Pool::new() };
    }

    /// `Box::new(value)`, reusing a cached block of the same layout if any.
    #[inline]
    pub(crate) fn boxed<T>(value: T) -> Box<T> {
        let layout = Layout::new::<T>();
        match POOL.try_with(|p| p.take(layout)).ok().flatten() {
            Some(block) => {
                let ptr = block.cast::<T>();
                // SAFETY: invariant 2: the block fits `T` exactly (same size
                // and alignment) and is unused; writing initialises it, and
                // the result is a box the global allocator could have made.
                unsafe {
                    ptr.write(value);
                    Box::from_raw(ptr)
                }
            }
            None => Box::new(value),
        }
    }

    /// `*boxed`: moves the value out and lists the emptied block.
    #[inline]
    pub(crate) fn unboxed<T>(boxed: Box<T>) -> T {
        let layout = Layout::new::<T>();
        if Pool::class(layout).is_none() {
            return *boxed;
        }
        let raw = Box::into_raw(boxed);
        // SAFETY: `raw` came from a live box: valid and initialised. After the
        // read the block holds no value; it is either listed or freed below,
        // never read again as a `T`.
        let value = unsafe { raw.read() };
        let block = raw.cast::<u8>();
        if !POOL.try_with(|p| p.put(layout, block)).unwrap_or(false) {
            // SAFETY: the block was a `Box<T>`'s: the global allocator's, with
            // `Layout::new::<T>()`; nothing refers to it any more.
            unsafe { std::alloc::dealloc(block, layout) };
        }
        value
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Counts drops, to prove values move through the pool exactly once.
        struct Tracked<'a>(&'a std::cell::Cell<u32>, [u64; 3]);

        impl Drop for Tracked<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }

        #[repr(align(64))]
        struct Aligned(u8);

        #[test]
        fn blocks_are_reused_by_layout_and_values_move_once() {
            let drops = std::cell::Cell::new(0);
            let a = boxed(Tracked(&drops, [1, 2, 3]));
            let first = &raw const *a as usize;
            let v = unboxed(a);
            assert_eq!(v.1, [1, 2, 3]);
            assert_eq!(drops.get(), 0, "unboxing must not drop the value");
            drop(v);
            assert_eq!(drops.get(), 1);
            // Same layout: the cached block comes back.
            let b = boxed(Tracked(&drops, [4, 5, 6]));
            assert_eq!(
                &raw const *b as usize, first,
                "the freed block was not reused"
            );
            assert_eq!(b.1, [4, 5, 6]);
            drop(b); // an ordinary Box drop frees a pooled block soundly
            assert_eq!(drops.get(), 2);
            // Another layout never gets that block, and alignment is kept.
            let c = boxed(Aligned(7));
            assert_eq!((&raw const *c as usize) % 64, 0);
            assert_eq!(unboxed(c).0, 7);
            let d = boxed(Aligned(8));
            assert_eq!((&raw const *d as usize) % 64, 0);
            assert_eq!(unboxed(d).0, 8);
            // Zero-sized values pass through.
            unboxed(boxed(()));
        }

        #[test]
        fn classes_alignments_and_lengths_are_bounded() {
            let pool = Pool::new();
            let alloc = |layout: Layout| {
                // SAFETY: a non-zero-sized layout.
                let p = unsafe { std::alloc::alloc(layout) };
                assert!(!p.is_null());
                p
            };
            let free = |p: *mut u8, layout: Layout| {
                // SAFETY: allocated by `alloc` with this layout, not pooled.
                unsafe { std::alloc::dealloc(p, layout) }
            };
            // Not pooled: zero-sized, not a multiple of 8, too big.
            for layout in [
                Layout::new::<()>(),
                Layout::new::<[u8; 12]>(),
                Layout::new::<[u64; 65]>(),
            ] {
                assert!(Pool::class(layout).is_none(), "{layout:?}");
            }
            // A class keeps its first alignment.
            let l8 = Layout::from_size_align(64, 8).unwrap();
            let l64 = Layout::from_size_align(64, 64).unwrap();
            assert!(pool.put(l8, alloc(l8)));
            let p = alloc(l64);
            assert!(!pool.put(l64, p), "a block of another alignment was listed");
            free(p, l64);
            assert!(pool.take(l64).is_none());
            let q = pool.take(l8).expect("the listed block");
            free(q, l8);
            // Per-class bound.
            let l = Layout::new::<[u64; 2]>();
            for _ in 0..=PER_CLASS {
                let p = alloc(l);
                if !pool.put(l, p) {
                    free(p, l);
                }
            }
            assert_eq!(pool.lens[1].get(), PER_CLASS);
            // Dropping the pool frees every block (Miri's leak check sees it).
        }
    }
}
