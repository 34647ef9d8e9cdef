//! The heap allocation of one op, and who may touch it when.
//!
//! An op's value (the `coil-arch` op plus what it keeps alive: buffer, fd
//! handle, address) lives in one heap block from [`OpBox::new`] until it is
//! moved out or dropped. The block is a raw allocation from the start
//! ([`pool::alloc`]), never a `Box` that is moved around while the driver
//! holds a pointer into it: under Stacked Borrows, moving a `Box` asserts
//! unique access and would invalidate the pointer the driver keeps. Every
//! pointer to the block (the typed one kept here, the `dyn OpCode` one the
//! driver keeps, the `dyn Orphan` one the op table keeps) is derived from
//! the one raw pointer made at allocation.
//!
//! Two owner types, one per phase (module docs of `op`, rules O1–O3):
//! - [`OpBox<T>`]: the op is *idle*. No driver holds a pointer to it, so
//!   its owner may read and write it ([`OpBox::get_mut`]), move the value
//!   out ([`OpBox::into_inner`]) or drop it (which frees the block).
//! - [`InFlight<T>`]: the op was submitted and its completion has not been
//!   reported. The kernel may write into it (io_uring) and the epoll driver
//!   may call `perform` on it, at any park of its loop. Its owner may not
//!   create a reference to it except through [`InFlight::fields`] (for
//!   the parts the driver never writes); it gets an [`OpBox`] back only
//!   through the `unsafe` [`InFlight::landed`], whose caller promises the
//!   completion was reported. **Dropping an `InFlight` leaks the block**
//!   (and the value in it): when nobody can tell whether the kernel is
//!   done with it, leaking is the only safe choice.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use super::pool;

/// Sole owner of an idle op's allocation (module docs).
pub(crate) struct OpBox<T: ?Sized> {
    ptr: NonNull<T>,
    /// Owns a `T` (drop check, variance).
    _owns: PhantomData<T>,
}

impl<T> OpBox<T> {
    /// Moves `value` into a new block (from the per-thread pool).
    #[inline]
    pub(crate) fn new(value: T) -> OpBox<T> {
        OpBox {
            ptr: pool::alloc(value),
            _owns: PhantomData,
        }
    }

    /// The value, moved out; the block goes back to the pool.
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        let ptr = self.into_raw();
        // SAFETY: an idle op's block is a live box allocation (`pool::alloc`)
        // that nobody else refers to; `self` is forgotten, so it is given up
        // exactly once, here.
        unsafe { pool::take(ptr) }
    }

    /// The pointer to hand to the driver. It is derived from the block's one
    /// raw pointer without creating a reference, so it stays valid for as
    /// long as the block lives (and the driver is told nothing else).
    #[inline]
    pub(crate) fn as_ptr(&self) -> NonNull<T> {
        self.ptr
    }
}

impl<T: ?Sized> OpBox<T> {
    /// Gives the block up without freeing it: its pointer, for the next
    /// owner (or for freeing it by hand).
    #[inline]
    fn into_raw(self) -> NonNull<T> {
        ManuallyDrop::new(self).ptr
    }

    /// The idle op, to read or change.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        // SAFETY: idle: no driver holds a pointer into the block, and `self`
        // is its only owner, borrowed mutably here.
        unsafe { self.ptr.as_mut() }
    }

    /// Hands the block to the driver (see [`InFlight`]). Safe: it only
    /// takes rights away.
    #[inline]
    pub(crate) fn submitted(self) -> InFlight<T> {
        InFlight {
            ptr: self.into_raw(),
            _owns: PhantomData,
        }
    }

    /// The block as a `Box`, for code that consumes ops through `Box<Self>`
    /// receivers (the type-erased orphan path).
    #[inline]
    pub(crate) fn into_box(self) -> Box<T> {
        let ptr = self.into_raw();
        // SAFETY: every block is a box allocation of the value's exact
        // layout (`pool` invariant 2), idle and owned by `self` alone.
        unsafe { Box::from_raw(ptr.as_ptr()) }
    }
}

// The value lives in the heap block: moving the owner never moves it (as
// for `Box`).
impl<T: ?Sized> Unpin for OpBox<T> {}
impl<T: ?Sized> Unpin for InFlight<T> {}

impl<T: ?Sized> Drop for OpBox<T> {
    fn drop(&mut self) {
        // SAFETY: as in `into_box`: an idle box allocation owned by `self`.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

/// Owner of an op the driver may be using (module docs). Dropping it leaks
/// the block.
pub(crate) struct InFlight<T: ?Sized> {
    ptr: NonNull<T>,
    _owns: PhantomData<T>,
}

impl<T: ?Sized> InFlight<T> {
    /// Gives the block up (to its next owner) without the leak of `Drop`.
    #[inline]
    fn into_raw(self) -> NonNull<T> {
        ManuallyDrop::new(self).ptr
    }

    /// The driver reported this op's completion: it is idle again.
    ///
    /// # Safety
    ///
    /// The completion of the submit that made this `InFlight` has been
    /// reported by the driver (or the submit failed, or answered `Done`), so
    /// neither the kernel nor the driver will touch the block again.
    #[inline]
    pub(crate) unsafe fn landed(self) -> OpBox<T> {
        OpBox {
            ptr: self.into_raw(),
            _owns: PhantomData,
        }
    }

    /// A shared view of the op while it is in flight, for reading the parts
    /// the driver never writes (its fd handle; see `Operation::on_orphaned`).
    ///
    /// # Safety
    ///
    /// No driver code runs while the reference lives (the caller is on the
    /// loop's thread and calls nothing that parks or submits), and only
    /// fields the kernel never writes (not the buffer) are read through it.
    #[inline]
    pub(crate) unsafe fn fields(&self) -> &T {
        // SAFETY: the caller's promise: nothing writes the fields read while
        // this shared reference lives.
        unsafe { self.ptr.as_ref() }
    }

    /// Erases the type for the op table (a `dyn` pointer to the same block,
    /// made by an unsizing coercion: no reference is created).
    #[inline]
    pub(crate) fn erase<U: ?Sized>(
        self,
        coerce: impl FnOnce(NonNull<T>) -> NonNull<U>,
    ) -> InFlight<U> {
        let raw = self.into_raw();
        let ptr = coerce(raw);
        debug_assert_eq!(
            ptr.cast::<u8>(),
            raw.cast::<u8>(),
            "erase must keep the address"
        );
        InFlight {
            ptr,
            _owns: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for InFlight<T> {
    fn drop(&mut self) {
        // Leak: the kernel may still write into the block (module docs).
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    struct Counted(Rc<Cell<u32>>, [u64; 4]);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    trait Erased {
        fn sum(&self) -> u64;
    }
    impl Erased for Counted {
        fn sum(&self) -> u64 {
            self.1.iter().sum()
        }
    }

    /// The phases under Miri: the pointer given to "the driver" stays usable
    /// across moves of the owner, the value moves out or drops exactly once,
    /// an erased in-flight op lands and drops through its `dyn` pointer, and
    /// dropping an `InFlight` leaks (Miri's leak check is told so below).
    #[test]
    fn phases_keep_the_drivers_pointer_valid_and_drop_once() {
        let drops = Rc::new(Cell::new(0));
        let mut op = OpBox::new(Counted(drops.clone(), [1, 2, 3, 4]));
        op.get_mut().1[0] = 10;
        let driver_ptr = op.as_ptr();
        let in_flight = op.submitted();
        let moved = in_flight; // the owner moves; the driver's pointer must survive
        // "The driver" writes through its pointer while the op is in flight.
        // SAFETY: the test plays the driver: the only user of the block now.
        unsafe { (*driver_ptr.as_ptr()).1[1] = 20 };
        // SAFETY: the driver is done with it (it will not use its pointer again).
        let back = unsafe { moved.landed() };
        let value = back.into_inner();
        assert_eq!(value.1, [10, 20, 3, 4]);
        drop(value);
        assert_eq!(drops.get(), 1);

        // Erased: lands and drops through the `dyn` pointer.
        let op = OpBox::new(Counted(drops.clone(), [1, 1, 1, 1]));
        let erased: InFlight<dyn Erased> = op.submitted().erase(|p| p as NonNull<dyn Erased>);
        // SAFETY: nothing writes the block.
        assert_eq!(unsafe { erased.fields() }.sum(), 4);
        // SAFETY: never given to a driver.
        let boxed = unsafe { erased.landed() }.into_box();
        assert_eq!(boxed.sum(), 4);
        drop(boxed);
        assert_eq!(drops.get(), 2);

        // An idle OpBox drops its value and frees the block.
        drop(OpBox::new(Counted(drops.clone(), [0; 4])));
        assert_eq!(drops.get(), 3);
    }

    #[test]
    fn dropping_in_flight_leaks_instead_of_freeing() {
        let drops = Rc::new(Cell::new(0));
        let op = OpBox::new(Counted(drops.clone(), [0; 4]));
        let ptr = op.as_ptr();
        drop(op.submitted());
        assert_eq!(drops.get(), 0, "an in-flight op was dropped");
        // The block is still valid memory (the kernel could still write it);
        // free it by hand so the test itself leaks nothing under Miri.
        // SAFETY: leaked above; this test is the only user left.
        unsafe { drop(Box::from_raw(ptr.as_ptr())) };
        assert_eq!(drops.get(), 1);
    }
}
