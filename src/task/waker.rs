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

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// Build a waker from a task pointer, taking over one reference.
///
/// # Safety
/// The caller transfers one reference to the waker (or, for a borrowed waker
/// wrapped in `ManuallyDrop`, guarantees one is held for its lifetime).
pub(crate) unsafe fn waker_from_raw(task: TaskRef) -> Waker {
    let raw = RawWaker::new(task.into_raw(), &VTABLE);
    // SAFETY: VTABLE's functions uphold the RawWaker contract for task
    // pointers, and the waker holds a reference (caller's promise).
    unsafe { Waker::from_raw(raw) }
}

/// Whether `waker` is a coil task waker (for fast paths).
#[allow(dead_code)]
pub(crate) fn is_task_waker(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &VTABLE)
}

/// # Safety
/// `ptr` is the data pointer of a waker with this vtable, which is alive (so
/// it holds, or borrows, a reference to the task: `waker_from_raw`).
unsafe fn task_of(ptr: *const ()) -> TaskRef {
    // SAFETY: only `waker_from_raw` builds wakers with this vtable, from
    // `TaskRef::into_raw`, and the waker's reference keeps the task alive
    // while the vtable function runs.
    unsafe { TaskRef::from_raw(ptr) }
}

unsafe fn clone(ptr: *const ()) -> RawWaker {
    // SAFETY: called on a live waker of ours (RawWaker contract).
    let task = unsafe { task_of(ptr) }.clone_ref();
    RawWaker::new(task.into_raw(), &VTABLE)
}

unsafe fn wake(ptr: *const ()) {
    // SAFETY: `wake` consumes the waker and with it the waker's reference,
    // which `wake_by_val` takes over; the waker is not used again.
    unsafe { task_of(ptr).wake_by_val() }
}

unsafe fn wake_by_ref(ptr: *const ()) {
    // SAFETY: called on a live waker of ours (RawWaker contract).
    unsafe { task_of(ptr) }.wake_by_ref();
}

unsafe fn drop_waker(ptr: *const ()) {
    // SAFETY: the waker's own reference, released as it is dropped.
    unsafe { task_of(ptr).release(1) }
}
