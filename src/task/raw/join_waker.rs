//! The join-waker field in one word (issue 18, W7: it was an
//! `Option<Waker>`, two words, in every task header).
//!
//! # What the word holds
//!
//! | word | meaning | owns |
//! |---|---|---|
//! | null | empty | nothing |
//! | a task header's address (low bits `00`) | a coil task's waker, kept as its `TaskRef` | one reference to that task (as the waker's clone would) |
//! | a `Box<Waker>`'s address, low bit set | any other waker, boxed | the box |
//! | [`TAKEN`] (`0b10`, no provenance) | the handle's taken marker (`vtable.rs`, `try_read_output`) | nothing |
//!
//! The common join is one task awaiting another: its waker is a coil task
//! waker (`task/waker.rs`), recognised by its vtable, whose data pointer is
//! the task's header; keeping that pointer and the reference the clone
//! would have taken is the same as keeping the clone, in half the room.
//! Any other waker (the main future's, a foreign executor's) costs one
//! allocation when it is stored. Both a header and a `Box<Waker>` are
//! aligned to 8, so their low bits are free for the tag; the marker's word
//! is no address of either.
//!
//! Who may touch the word is rule 6 of `task/mod.rs`, exactly as for the
//! `Option<Waker>` it replaces: every method is `unsafe` with that
//! contract.

use std::cell::UnsafeCell;
use std::ptr;
use std::task::Waker;

use super::TaskRef;
use crate::task::waker::is_task_waker;

/// Tag of a boxed waker's address.
const BOXED: usize = 0b01;
/// The taken marker's word.
const TAKEN: usize = 0b10;
/// The tag bits.
const TAG: usize = 0b11;

/// The join-waker field: one word (see the module docs).
pub(crate) struct JoinWaker(UnsafeCell<*mut ()>);

// The header's size depends on it.
static_assertions::const_assert!(std::mem::size_of::<JoinWaker>() == std::mem::size_of::<usize>());

/// What the word holds, decoded.
enum Held {
    Empty,
    Task(TaskRef),
    Boxed(*mut Waker),
    Taken,
}

impl JoinWaker {
    /// Empty.
    pub(crate) const fn new() -> JoinWaker {
        JoinWaker(UnsafeCell::new(ptr::null_mut()))
    }

    /// # Safety
    /// The caller may read the word (rule 6).
    unsafe fn held(&self) -> Held {
        // SAFETY: caller's promise.
        let p = unsafe { *self.0.get() };
        if p.is_null() {
            Held::Empty
        } else if p.addr() == TAKEN {
            Held::Taken
        } else if p.addr() & BOXED != 0 {
            Held::Boxed(p.map_addr(|a| a & !TAG).cast())
        } else {
            // SAFETY: an untagged, non-null word is a task header's
            // address stored by `set`, with the reference it holds.
            Held::Task(unsafe { TaskRef::from_raw(p) })
        }
    }

    /// Replace the word by `new`, dropping what it held.
    ///
    /// # Safety
    /// The caller owns the word (rule 6).
    unsafe fn replace(&self, new: *mut ()) {
        // SAFETY: caller's promise.
        let old = unsafe { self.held() };
        // SAFETY: as above; written before the old content is dropped (its
        // destructor may run foreign code, even unwind).
        unsafe { *self.0.get() = new };
        match old {
            Held::Empty | Held::Taken => {}
            // SAFETY: the reference `set` took for this word, given up.
            Held::Task(t) => unsafe { t.release(1) },
            // SAFETY: the box `set` leaked into this word, taken back once.
            Held::Boxed(b) => drop(unsafe { Box::from_raw(b) }),
        }
    }

    /// Store a clone of `waker`, dropping what the word held.
    ///
    /// # Safety
    /// The caller owns the word (rule 6).
    pub(crate) unsafe fn set(&self, waker: &Waker) {
        let new = if is_task_waker(waker) {
            // SAFETY: a task waker's data pointer is its task's header
            // (`waker_from_raw`), alive while `waker` is; `clone_ref` takes
            // the reference the word then holds.
            let task = unsafe { TaskRef::from_raw(waker.data()) }.clone_ref();
            task.into_raw().cast_mut()
        } else {
            Box::into_raw(Box::new(waker.clone()))
                .cast::<()>()
                .map_addr(|a| a | BOXED)
        };
        // SAFETY: caller's promise.
        unsafe { self.replace(new) };
    }

    /// Empty the word, dropping what it held.
    ///
    /// # Safety
    /// The caller owns the word (rule 6).
    pub(crate) unsafe fn clear(&self) {
        // SAFETY: caller's promise.
        unsafe { self.replace(ptr::null_mut()) };
    }

    /// Store the taken marker, dropping what the word held.
    ///
    /// # Safety
    /// The caller is the handle and owns the word for good (rule 6:
    /// `COMPLETE` set and `JOIN_WAKER` clear).
    #[inline]
    pub(crate) unsafe fn mark_taken(&self) {
        let marker = ptr::without_provenance_mut(TAKEN);
        // SAFETY: caller's promise: the word is ours to read and write.
        unsafe {
            if (*self.0.get()).is_null() {
                // The common case (a handle that never waited): nothing to
                // drop, so no decoding of the old word.
                *self.0.get() = marker;
            } else {
                self.replace(marker);
            }
        }
    }

    /// Whether the word holds the taken marker.
    ///
    /// # Safety
    /// The caller may read the word (rule 6).
    pub(crate) unsafe fn is_taken(&self) -> bool {
        // SAFETY: caller's promise.
        unsafe { *self.0.get() }.addr() == TAKEN
    }

    /// Whether the stored waker would wake the same task as `waker`
    /// (`Waker::will_wake`); `false` if none is stored.
    ///
    /// # Safety
    /// The caller may read the word (rule 6).
    pub(crate) unsafe fn will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: caller's promise.
        match unsafe { self.held() } {
            Held::Empty | Held::Taken => false,
            Held::Task(t) => is_task_waker(waker) && ptr::eq(waker.data(), t.into_raw()),
            // SAFETY: the box is alive while the word holds it.
            Held::Boxed(b) => unsafe { &*b }.will_wake(waker),
        }
    }

    /// Wake the stored waker, if any, by reference.
    ///
    /// # Safety
    /// The caller may read the word (rule 6: the loop, after `COMPLETE`,
    /// while `JOIN_WAKER` is set).
    pub(crate) unsafe fn wake_by_ref(&self) {
        // SAFETY: caller's promise.
        match unsafe { self.held() } {
            Held::Empty | Held::Taken => {}
            Held::Task(t) => t.wake_by_ref(),
            // SAFETY: the box is alive while the word holds it.
            Held::Boxed(b) => unsafe { &*b }.wake_by_ref(),
        }
    }
}

impl Drop for JoinWaker {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else can reach the word.
        unsafe { self.clear() };
    }
}
