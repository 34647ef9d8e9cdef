//! The item store of `Queue` and `LifoQueue`: a growable ring buffer with a
//! power-of-two capacity, mutated through `&self` without a borrow flag.
//!
//! The queue's fast path (`put` into a queue with room, `get` from a queue
//! with items) is one [`Ring::push_back`] or [`Ring::pop_front`]; a
//! `RefCell<VecDeque<T>>` spent a borrow-flag check and two stores on each,
//! and a compare-and-subtract to wrap the index, where a mask does here.
//!
//! # Invariants
//!
//! 1. *Slots.* `buf` points to `cap` slots of `T` (`cap` is 0 or a power of
//!    two; a zero-sized `T` has no allocation and a dangling `buf`). The
//!    slots `(head + i) & (cap - 1)` for `i < len` hold initialised items,
//!    front to back; every other slot is uninitialised. `head < cap` when
//!    `cap > 0`, `len <= cap`.
//! 2. *No reference lives across foreign code.* No method hands out a
//!    reference into the buffer or holds one while it calls code that is not
//!    this module's: items go in and out by move (a bitwise copy), and the
//!    only other call, the allocator in [`grow`](Ring::grow), happens before
//!    the fields are read for the copy. So the `Cell`s need no borrow flag:
//!    a re-entrant call (from an item's `Drop` run by the caller, from a
//!    waker) finds the ring in a consistent state.
//! 3. *Single thread.* The ring is neither `Send` nor `Sync` (raw pointer in
//!    a `Cell`): `&self` methods never race.
//! 4. *Ownership.* The ring owns its items (`PhantomData<T>` for drop check)
//!    and drops the ones left in it when it is dropped, each after it has
//!    left the ring (so a panicking `Drop` leaks the rest instead of dropping
//!    an item twice).
//!
//! The idea (mask instead of modulo, capacity doubled and the wrapped part
//! moved when full) is the classic one of `VecDeque` and of every ring
//! buffer; the code is this crate's. Tested under Miri (`cargo +nightly
//! miri test -p coil --lib queue::ring`).

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem;
use std::ptr::{self, NonNull};

/// The first allocation, in items.
const MIN_CAP: usize = 8;

/// A FIFO/LIFO ring of `T`; see the module doc for the invariants.
pub(crate) struct Ring<T> {
    buf: Cell<NonNull<T>>,
    cap: Cell<usize>,
    /// `cap - 1` (0 while `cap` is 0): the index mask.
    mask: Cell<usize>,
    head: Cell<usize>,
    len: Cell<usize>,
    _owns: PhantomData<T>,
}

impl<T> Ring<T> {
    /// An empty ring; nothing is allocated until the first push.
    pub(crate) const fn new() -> Ring<T> {
        Ring {
            buf: Cell::new(NonNull::dangling()),
            cap: Cell::new(0),
            mask: Cell::new(0),
            head: Cell::new(0),
            len: Cell::new(0),
            _owns: PhantomData,
        }
    }

    /// Items held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    /// Appends `item` at the back.
    #[inline]
    pub(crate) fn push_back(&self, item: T) {
        let len = self.len.get();
        if len == self.cap.get() {
            self.grow();
        }
        let slot = (self.head.get() + len) & self.mask.get();
        // SAFETY: after `grow`, `len < cap`, so `slot` is in the buffer and
        // outside the `len` initialised slots (rule 1): writing it overwrites
        // nothing. No reference into the buffer is live (rule 2).
        unsafe { self.buf.get().as_ptr().add(slot).write(item) };
        self.len.set(len + 1);
    }

    /// Takes the front item.
    #[inline]
    pub(crate) fn pop_front(&self) -> Option<T> {
        let len = self.len.get();
        if len == 0 {
            return None;
        }
        let head = self.head.get();
        self.head.set((head + 1) & self.mask.get());
        self.len.set(len - 1);
        // SAFETY: `len > 0`, so `head` is the initialised front slot (rule
        // 1); the fields above already count it out, so it is read (moved
        // out) exactly once.
        Some(unsafe { self.buf.get().as_ptr().add(head).read() })
    }

    /// Takes the back item.
    #[inline]
    pub(crate) fn pop_back(&self) -> Option<T> {
        let len = self.len.get().checked_sub(1)?;
        self.len.set(len);
        let slot = (self.head.get() + len) & self.mask.get();
        // SAFETY: the old `len > 0`, so `slot` is the initialised back slot
        // (rule 1); `len` already counts it out: moved out exactly once.
        Some(unsafe { self.buf.get().as_ptr().add(slot).read() })
    }

    /// Doubles the capacity (to [`MIN_CAP`] from none), moving the wrapped
    /// part of the items so that they stay contiguous modulo the new size.
    #[cold]
    #[inline(never)]
    fn grow(&self) {
        let old_cap = self.cap.get();
        let new_cap = if old_cap == 0 {
            MIN_CAP
        } else {
            old_cap.checked_mul(2).expect("queue capacity overflow")
        };
        if mem::size_of::<T>() == 0 {
            // Nothing to allocate or move (rule 1: dangling buffer).
            self.cap.set(new_cap);
            self.mask.set(new_cap - 1);
            return;
        }
        let layout = Layout::array::<T>(new_cap).expect("queue capacity overflow");
        // SAFETY: `layout` has a non-zero size (`T` is not zero-sized,
        // `new_cap > 0`).
        let new = unsafe { alloc::alloc(layout) }.cast::<T>();
        let Some(new) = NonNull::new(new) else {
            alloc::handle_alloc_error(layout)
        };
        // Read the fields after the allocator ran (rule 2).
        let (old, head, len) = (self.buf.get(), self.head.get(), self.len.get());
        // Copy the items front to back into the start of the new buffer.
        let first = len.min(old_cap - head);
        // The items are moved: the old buffer is freed without dropping any.
        // SAFETY: rule 1: the `len` items are `first` slots from `head`, then
        // `len - first` from slot 0; the new buffer (distinct) holds `new_cap > len`.
        unsafe {
            ptr::copy_nonoverlapping(old.as_ptr().add(head), new.as_ptr(), first);
            ptr::copy_nonoverlapping(old.as_ptr(), new.as_ptr().add(first), len - first);
        }
        self.buf.set(new);
        self.cap.set(new_cap);
        self.mask.set(new_cap - 1);
        self.head.set(0);
        if old_cap > 0 {
            // SAFETY: `old` was allocated by a previous `grow` with the
            // layout of `old_cap` items (rule 1); nothing refers to it now.
            unsafe { alloc::dealloc(old.as_ptr().cast(), Layout::array::<T>(old_cap).unwrap()) };
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        while let Some(item) = self.pop_front() {
            drop(item);
        }
        let cap = self.cap.get();
        if cap > 0 && mem::size_of::<T>() != 0 {
            // SAFETY: allocated by `grow` with this layout; every item has
            // been moved out above (rule 4).
            unsafe {
                alloc::dealloc(
                    self.buf.get().as_ptr().cast(),
                    Layout::array::<T>(cap).unwrap(),
                )
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// The ring against `VecDeque` over a pseudo-random mix of pushes and
    /// pops at both ends, across growths while wrapped: the items are `Rc`s,
    /// so Miri reports a double drop, a leak, a read of an uninitialised slot
    /// or a use after free.
    #[test]
    fn matches_vecdeque() {
        let ring = Ring::new();
        let mut model = VecDeque::new();
        let token = Rc::new(());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let steps = if cfg!(miri) { 600 } else { 20_000 };
        for i in 0..steps {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 8 {
                0..=3 => {
                    ring.push_back((i, token.clone()));
                    model.push_back(i);
                }
                4..=5 => assert_eq!(ring.pop_front().map(|v| v.0), model.pop_front()),
                6 => assert_eq!(ring.pop_back().map(|v| v.0), model.pop_back()),
                _ => {
                    // A burst of pops then pushes: wraps the head around.
                    for _ in 0..5 {
                        assert_eq!(ring.pop_front().map(|v| v.0), model.pop_front());
                    }
                    for j in 0..7 {
                        ring.push_back((i * 10 + j, token.clone()));
                        model.push_back(i * 10 + j);
                    }
                }
            }
            assert_eq!(ring.len(), model.len());
            assert_eq!(Rc::strong_count(&token), 1 + model.len());
        }
        drop(ring);
        assert_eq!(
            Rc::strong_count(&token),
            1,
            "the ring's drop dropped every item"
        );
    }

    /// Growth while the items wrap past the end of the buffer keeps their
    /// order (the case `grow`'s two copies exist for).
    #[test]
    fn grow_while_wrapped_keeps_order() {
        let ring = Ring::new();
        for i in 0..MIN_CAP {
            ring.push_back(i.to_string());
        }
        for i in 0..3 {
            assert_eq!(ring.pop_front().as_deref(), Some(&*i.to_string()));
        }
        for i in MIN_CAP..MIN_CAP + 10 {
            ring.push_back(i.to_string()); // wraps, then grows while wrapped
        }
        let out: Vec<String> = std::iter::from_fn(|| ring.pop_front()).collect();
        let want: Vec<String> = (3..MIN_CAP + 10).map(|i| i.to_string()).collect();
        assert_eq!(out, want);
        assert_eq!(ring.len(), 0);
    }

    /// Zero-sized items: no allocation, counts still right.
    #[test]
    fn zero_sized_items() {
        let ring = Ring::new();
        for _ in 0..100 {
            ring.push_back(());
        }
        assert_eq!(ring.len(), 100);
        assert_eq!(ring.pop_back(), Some(()));
        assert_eq!(ring.pop_front(), Some(()));
        assert_eq!(ring.len(), 98);
    }

    /// Items still in the ring are dropped with it, once each.
    #[test]
    fn drop_drops_items_left() {
        let token = Rc::new(());
        let ring = Ring::new();
        for _ in 0..20 {
            ring.push_back(token.clone());
        }
        ring.pop_front();
        drop(ring);
        assert_eq!(Rc::strong_count(&token), 1);
    }
}
