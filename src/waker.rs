//! The one static `RawWakerVTable` for tasks.
//!
//! A task waker's data pointer is the task header. `clone` takes a reference,
//! `drop` releases one, `wake` turns its reference into the queue reference
//! (or releases it), `wake_by_ref` takes a new one if the task must be queued.
//! Scheduling only pushes onto a queue: **`wake` never polls** and never
//! blocks (the remote queue's mutex is held only for a `Vec::push`).
//!
//! Our own wakers are recognised by the vtable's address ([`is_task_waker`]).

use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::task::raw::TaskRef;
use crate::task::state::Notify;

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// Build a waker from a task pointer, taking over one reference.
///
/// # Safety
/// The caller transfers one reference to the waker (or, for a borrowed waker
/// wrapped in `ManuallyDrop`, guarantees one is held for its lifetime).
pub(crate) unsafe fn waker_from_raw(task: TaskRef) -> Waker {
    let raw = RawWaker::new(task.0.as_ptr().cast_const().cast(), &VTABLE);
    // SAFETY: VTABLE's functions uphold the RawWaker contract for task pointers.
    unsafe { Waker::from_raw(raw) }
}

/// Whether `waker` is a coil task waker (for fast paths).
#[allow(dead_code)]
pub(crate) fn is_task_waker(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &VTABLE)
}

fn task_of(ptr: *const ()) -> TaskRef {
    // SAFETY: only `waker_from_raw` builds wakers with this vtable, from a
    // non-null header pointer.
    TaskRef(unsafe { std::ptr::NonNull::new_unchecked(ptr.cast_mut().cast()) })
}

unsafe fn clone(ptr: *const ()) -> RawWaker {
    let task = task_of(ptr);
    task.header().state.ref_inc();
    RawWaker::new(ptr, &VTABLE)
}

unsafe fn wake(ptr: *const ()) {
    let task = task_of(ptr);
    match task.header().state.transition_to_notified_by_val() {
        Notify::Submit => crate::rt::schedule(task),
        Notify::Nothing => {}
        // SAFETY: the waker held the last reference (rule 7).
        Notify::Dealloc => unsafe { (task.header().vtable.dealloc)(task) },
    }
}

unsafe fn wake_by_ref(ptr: *const ()) {
    let task = task_of(ptr);
    match task.header().state.transition_to_notified_by_ref() {
        Notify::Submit => crate::rt::schedule(task),
        Notify::Nothing | Notify::Dealloc => {}
    }
}

unsafe fn drop_waker(ptr: *const ()) {
    task_of(ptr).release(1);
}
