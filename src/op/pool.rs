//! Per-thread cache of freed op boxes (module docs, "Allocation").
//!
//! One intrusive free list per size class: sizes 8, 16, ..., 512 bytes (ops
//! hold pointers and fds, so their sizes are multiples of 8). A class takes
//! the alignment of the first block put in it; blocks of other sizes or
//! alignments bypass the pool. A free block stores the next block's address
//! in its first 8 bytes.
//!
//! Invariants:
//! 1. Every listed block was allocated by the global allocator with exactly
//!    `Layout::from_size_align(class size, class align)` (it was a `Box<T>` of
//!    that layout), and only its list refers to it.
//! 2. A block is handed out only for a `T` with that exact layout, so
//!    `Box::from_raw` on it is a box the global allocator could have made.
//! 3. Each list holds at most `PER_CLASS` blocks; all are freed, with their
//!    class's layout, when the thread's pool is dropped.

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::{self, NonNull};

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

/// `Box::into_raw(Box::new(value))`, reusing a cached block of the same
/// layout if any. The result is a box allocation (invariant 2): it may be
/// given back with [`take`] or with `Box::from_raw`.
#[inline]
pub(crate) fn alloc<T>(value: T) -> NonNull<T> {
    let layout = Layout::new::<T>();
    match POOL.try_with(|p| p.take(layout)).ok().flatten() {
        Some(block) => {
            let ptr = block.cast::<T>();
            // SAFETY: invariant 2: the block fits `T` exactly (same size and
            // alignment) and is unused; writing initialises it.
            unsafe { ptr.write(value) };
            // SAFETY: listed blocks are never null.
            unsafe { NonNull::new_unchecked(ptr) }
        }
        None => NonNull::from(Box::leak(Box::new(value))),
    }
}

/// Moves the value out of an allocation made by [`alloc`] (or by `Box`)
/// and lists the emptied block for reuse.
///
/// # Safety
///
/// `ptr` is a live box allocation of a `T` (from [`alloc`] or
/// `Box::into_raw`) that nothing else uses, now or later.
#[inline]
pub(crate) unsafe fn take<T>(ptr: NonNull<T>) -> T {
    let layout = Layout::new::<T>();
    let raw = ptr.as_ptr();
    // SAFETY: the caller's promise: valid and initialised. After the read
    // the block holds no value; it is either listed or freed below, never
    // read again as a `T`.
    let value = unsafe { raw.read() };
    if layout.size() == 0 {
        return value; // a zero-sized box owns no memory
    }
    let block = raw.cast::<u8>();
    if Pool::class(layout).is_none() || !POOL.try_with(|p| p.put(layout, block)).unwrap_or(false) {
        // SAFETY: a box allocation of `Layout::new::<T>()` (caller's
        // promise, invariant 2); nothing refers to it any more.
        unsafe { std::alloc::dealloc(block, layout) };
    }
    value
}

/// `Box::new(value)` through the pool (tests).
#[cfg(test)]
fn boxed<T>(value: T) -> Box<T> {
    // SAFETY: `alloc` returns a box allocation (invariant 2).
    unsafe { Box::from_raw(alloc(value).as_ptr()) }
}

/// `*boxed`, listing the emptied block (tests).
#[cfg(test)]
fn unboxed<T>(boxed: Box<T>) -> T {
    // SAFETY: a live box, given up here.
    unsafe { take(NonNull::from(Box::leak(boxed))) }
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
