//! The loop's local run queue: a growable ring of `Copy` entries
//! (`TaskRef`s in the loop), for one thread.
//!
//! What it replaces, `RefCell<VecDeque<TaskRef>>`, paid per task poll a
//! borrow flag set and cleared around each pop and each push, and a
//! wrap-around test (compare, conditional move) for the physical index of
//! each. Here the capacity is a power of two, head and tail are free-running
//! counters in `Cell`s (the physical slot is `counter & mask`), and no call
//! out of the queue's code happens while a method is half done, so no
//! borrow flag is needed: a pop is a compare, a load and an increment; a
//! push a compare, a store and an increment. Tokio's local queue and
//! monoio's `VecDeque` were the points of comparison.
//!
//! # Invariants
//!
//! 1. `buf` is the start of an allocation owned by the queue, of
//!    `Layout::array::<T>(cap)`, where `cap = mask + 1` is a power of two and
//!    at least [`MIN_CAP`].
//! 2. `len = tail - head` (wrapping) is at most `cap`.
//! 3. For `i < len`, the slot `(head + i) & mask` holds the queue's `i`-th
//!    entry, initialised; the other slots hold stale copies or were never
//!    written, and are never read. `T: Copy`: entries have no destructor, so
//!    overwriting or forgetting a slot drops nothing.
//! 4. Between two calls the invariants hold: the only calls out of the
//!    queue's code are to the allocator (growing and shrinking), made before
//!    any field changes; the queue is `!Sync` (`Cell`), so nothing else
//!    sees it meanwhile. A push or pop re-entered from the allocator (a
//!    global allocator that spawns tasks: absurd, but not unsafe) would see
//!    the old, consistent state.
//!
//! Growth doubles the capacity when a push finds the ring full (with
//! `realloc`, which under glibc moves a large buffer with `mremap`, not a
//! copy); the entries that had wrapped around move behind the old end.
//! [`RunQueue::shrink_if_empty`] gives a large buffer back once a burst has
//! drained (see its doc for the policy). The entries the queue holds when it
//! is dropped are forgotten (the loop's shutdown pops and releases them
//! first).
//!
//! Tests: the unit tests below run against a `VecDeque` model (a proptest of
//! random pushes at both ends, pops and shrinks, crossing every growth with
//! the head at each position), also under Miri (`cargo +nightly miri test -p
//! coil --lib run_queue`), which catches a read of an uninitialised or
//! freed slot or an out-of-bounds index; the `run_queue` fuzz target checks
//! the loop's order through it.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Capacity of a new queue, and what [`RunQueue::shrink_if_empty`] returns
/// to (2 KiB of `TaskRef`s).
pub(crate) const MIN_CAP: usize = 256;

/// A queue of at most this many slots (64 KiB of `TaskRef`s) is kept as it
/// is when it drains; a larger one is given back.
pub(crate) const SHRINK_ABOVE: usize = 8192;

/// A FIFO ring with pushes at both ends (see the module doc).
pub(crate) struct RunQueue<T: Copy> {
    buf: Cell<NonNull<T>>,
    /// `cap - 1`.
    mask: Cell<usize>,
    /// Counter of the front entry.
    head: Cell<usize>,
    /// Counter one past the back entry.
    tail: Cell<usize>,
    /// Owns `T`s (for drop check; they have no destructor).
    _own: PhantomData<T>,
}

impl<T: Copy> RunQueue<T> {
    /// An empty queue of [`MIN_CAP`] slots.
    pub(crate) fn new() -> RunQueue<T> {
        RunQueue {
            buf: Cell::new(alloc_slots(MIN_CAP)),
            mask: Cell::new(MIN_CAP - 1),
            head: Cell::new(0),
            tail: Cell::new(0),
            _own: PhantomData,
        }
    }

    /// Number of entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.tail.get().wrapping_sub(self.head.get())
    }

    /// No entry.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.tail.get() == self.head.get()
    }

    /// Slots allocated.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.mask.get() + 1
    }

    /// Append `v` at the back.
    #[inline]
    pub(crate) fn push_back(&self, v: T) {
        if self.len() > self.mask.get() {
            self.grow();
        }
        let tail = self.tail.get();
        // SAFETY: invariant 1: `tail & mask < cap` is a slot of the buffer;
        // invariant 2 with the grow above: `len < cap`, so the slot is not
        // one of the entries (invariant 3) and becomes the last one.
        unsafe { self.slot(tail).write(v) };
        self.tail.set(tail.wrapping_add(1));
    }

    /// Prepend `v` at the front.
    #[inline]
    pub(crate) fn push_front(&self, v: T) {
        if self.len() > self.mask.get() {
            self.grow();
        }
        let head = self.head.get().wrapping_sub(1);
        // SAFETY: as in `push_back`: `len < cap`, so the slot before the
        // front is free; it becomes the first entry.
        unsafe { self.slot(head).write(v) };
        self.head.set(head);
    }

    /// Take the front entry.
    #[inline]
    pub(crate) fn pop_front(&self) -> Option<T> {
        let head = self.head.get();
        if head == self.tail.get() {
            return None;
        }
        // SAFETY: `len > 0`: the slot of `head` holds the first entry
        // (invariant 3), which stops being one below.
        let v = unsafe { self.slot(head).read() };
        self.head.set(head.wrapping_add(1));
        Some(v)
    }

    /// Once empty, give a buffer of more than [`SHRINK_ABOVE`] slots back
    /// and start again at [`MIN_CAP`]; returns whether it did.
    ///
    /// The loop calls it at the end of each tick. Policy: a queue that a
    /// burst grew (100 000 tasks spawned at once: 1 MiB) holds its pages
    /// until the process ends otherwise (W7 counted ~10 bytes per task of
    /// it); a queue that drains at every tick but stays within 64 KiB keeps
    /// its buffer, so a steady load never reallocates. A second burst grows
    /// the ring again by doubling: about one copied entry per entry pushed,
    /// plus the page faults of the new buffer.
    #[inline]
    pub(crate) fn shrink_if_empty(&self) -> bool {
        if self.mask.get() < SHRINK_ABOVE || !self.is_empty() {
            return false;
        }
        self.shrink();
        true
    }

    #[cold]
    #[inline(never)]
    fn shrink(&self) {
        let new = alloc_slots::<T>(MIN_CAP);
        let (old, cap) = (self.buf.get(), self.capacity());
        self.buf.set(new);
        self.mask.set(MIN_CAP - 1);
        self.head.set(0);
        self.tail.set(0);
        // SAFETY: invariant 1 for the old buffer, which no field points to
        // any more; the queue was empty, so no entry is lost.
        unsafe { alloc::dealloc(old.as_ptr().cast(), layout::<T>(cap)) };
    }

    /// Double the capacity of a full ring.
    #[cold]
    #[inline(never)]
    fn grow(&self) {
        let cap = self.capacity();
        debug_assert_eq!(self.len(), cap);
        let new_cap = cap.checked_mul(2).expect("run queue capacity overflow");
        let old = layout::<T>(cap);
        let new_layout = layout::<T>(new_cap);
        // SAFETY: invariant 1: `buf` was allocated with `old`; the new size
        // is not zero and (`layout` checked it) does not overflow `isize`.
        let raw = unsafe { alloc::realloc(self.buf.get().as_ptr().cast(), old, new_layout.size()) };
        let Some(buf) = NonNull::new(raw.cast::<T>()) else {
            alloc::handle_alloc_error(new_layout)
        };
        // The entries kept their physical slots: the first `cap - h` of
        // them at `h..cap`, the other `h` (wrapped around) at `0..h`. With
        // the head renumbered to `h` and the mask doubled, the entry `i`
        // lives at `h + i < 2 cap`: the wrapped ones move to `cap..cap + h`.
        let h = self.head.get() & (cap - 1);
        // SAFETY: `0..h` and `cap..cap + h` are disjoint (`h < cap`) slots
        // of the new buffer of `2 cap`; the first hold initialised entries
        // (invariant 3, the ring being full).
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), buf.as_ptr().add(cap), h) };
        self.buf.set(buf);
        self.mask.set(new_cap - 1);
        self.head.set(h);
        self.tail.set(h + cap);
    }

    /// The slot of counter `i` (in bounds; whether it is initialised is
    /// for the caller to know).
    #[inline(always)]
    fn slot(&self, i: usize) -> *mut T {
        // SAFETY: `i & mask < cap`: within the allocation (invariant 1).
        unsafe { self.buf.get().as_ptr().add(i & self.mask.get()) }
    }
}

impl<T: Copy> Drop for RunQueue<T> {
    fn drop(&mut self) {
        // SAFETY: invariant 1; entries need no drop (invariant 3).
        unsafe { alloc::dealloc(self.buf.get().as_ptr().cast(), layout::<T>(self.capacity())) };
    }
}

impl<T: Copy> Default for RunQueue<T> {
    fn default() -> Self {
        RunQueue::new()
    }
}

impl<T: Copy> std::fmt::Debug for RunQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunQueue")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

fn layout<T>(cap: usize) -> Layout {
    Layout::array::<T>(cap).expect("run queue capacity overflow")
}

/// A new allocation of `cap > 0` slots (uninitialised).
fn alloc_slots<T>(cap: usize) -> NonNull<T> {
    let l = layout::<T>(cap);
    assert!(l.size() > 0, "run queue entries are not zero-sized");
    // SAFETY: a non-zero size (checked above).
    let raw = unsafe { alloc::alloc(l) };
    match NonNull::new(raw.cast::<T>()) {
        Some(p) => p,
        None => alloc::handle_alloc_error(l),
    }
}

#[cfg(test)]
mod tests;
