//! The part of a task's cancel state that does not fit in the state word:
//! the message given to `Task::cancel_with`, and for a task spawned with
//! `Builder::cooperative_cancel` its cancel *requests* (decision 0010): how
//! many are outstanding (asyncio's `cancelling()`) and whether one waits to
//! be delivered (asyncio's `_must_cancel`).
//!
//! The same allocation holds the task's name (`Builder::name`), so that a
//! task spawned without one carries neither in its header.
//!
//! Most tasks are never cancelled and have no name, so the header holds only
//! a pointer (`CancelSlot`, one word) and the `CancelState` behind it is
//! allocated at spawn for a named task, else the first time a message is
//! set, by whichever thread sets it (a compare-and-swap installs it; the
//! loser frees its copy). It is freed with the task. The name is written
//! before the task is published and never changes. A message is written before `CANCELLED` is set in the state
//! word, and read by the loop after it saw that bit with an acquire RMW, so
//! the loop always sees the message of the request it acts on. A request is
//! published the same way: its pending bit is set before the task is woken,
//! and the poll that the wake leads to starts with an acquire RMW of the
//! state word (`transition_to_running`). A task that woke itself is polled
//! again without that RMW (running while queued: `state.rs`), and may see a
//! request from another thread only a poll or more later; it is not lost: the
//! remote wake set `SCHEDULED`, and the poll that goes idle reschedules on it
//! with an acquire RMW.

use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};

/// The header's pointer to a task's [`CancelState`], null until first used.
#[derive(Debug)]
pub(crate) struct CancelSlot(AtomicPtr<CancelState>);

/// What a cancel request carries besides the `CANCELLED` bit, and the
/// task's name.
#[derive(Debug, Default)]
pub(crate) struct CancelState {
    /// The name given with `Builder::name`; set before the task is published.
    name: Option<Arc<str>>,
    /// The message given to `cancel_with`: the first one for a hard cancel,
    /// the latest for requests (as asyncio's `cancel(msg)`).
    message: Mutex<Option<Arc<str>>>,
    /// Set once, by `Builder::spawn` before the handle exists: `cancel` is a
    /// request the task answers, not a drop.
    cooperative: AtomicBool,
    /// Requests minus `uncancel` calls (asyncio's `cancelling()`), shifted
    /// left by one, and in bit 0 whether a request waits to be delivered.
    /// One word, changed only by read-modify-writes, so a request racing
    /// an `uncancel` that reaches zero is either withdrawn with it or counted
    /// after it, never counted and lost.
    requests: AtomicUsize,
}

/// Bit 0 of `CancelState::requests`: a request not yet delivered.
const PENDING: usize = 1;
/// One request in `CancelState::requests`.
const ONE: usize = 2;

impl CancelState {
    /// The name given with `Builder::name`.
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    fn message_slot(&self) -> MutexGuard<'_, Option<Arc<str>>> {
        // The guarded value is a plain `Option`: a panic cannot break it.
        self.message.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The message, if one was set.
    pub(crate) fn message(&self) -> Option<Arc<str>> {
        self.message_slot().clone()
    }

    /// Sets the message unless one was set before (the first one wins).
    pub(crate) fn offer_message(&self, message: Arc<str>) {
        self.message_slot().get_or_insert(message);
    }

    /// Marks the task as one that answers cancel requests.
    pub(crate) fn set_cooperative(&self) {
        self.cooperative.store(true, Relaxed);
    }

    /// Whether `cancel` is a request for this task.
    pub(crate) fn is_cooperative(&self) -> bool {
        self.cooperative.load(Relaxed)
    }

    /// Records one request (with its message, which replaces an older one);
    /// the caller wakes the task afterwards.
    pub(crate) fn request(&self, message: Option<Arc<str>>) {
        if let Some(m) = message {
            *self.message_slot() = Some(m);
        }
        // One read-modify-write (count and pending together); Release: the
        // message above is visible to whoever takes the request.
        let _ = self
            .requests
            .fetch_update(Release, Relaxed, |n| Some((n + ONE) | PENDING));
    }

    /// Takes the undelivered request, if there is one.
    pub(crate) fn take_pending(&self) -> bool {
        self.requests.load(Acquire) & PENDING != 0
            && self.requests.fetch_and(!PENDING, AcqRel) & PENDING != 0
    }

    /// Outstanding requests and whether one waits to be delivered.
    pub(crate) fn request_state(&self) -> (usize, bool) {
        let n = self.requests.load(Acquire);
        (n / ONE, n & PENDING != 0)
    }

    /// Marks a request undelivered again, if any is counted.
    pub(crate) fn repend(&self) {
        let _ = self
            .requests
            .fetch_update(Release, Relaxed, |n| (n >= ONE).then_some(n | PENDING));
    }

    /// Outstanding requests (asyncio's `cancelling()`).
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Acquire) / ONE
    }

    /// One request fewer (never below zero); at zero an undelivered request
    /// is withdrawn too (asyncio 3.13), in the same read-modify-write.
    /// Returns the requests left.
    pub(crate) fn uncancel(&self) -> usize {
        match self.requests.fetch_update(AcqRel, Acquire, |n| {
            let left = (n / ONE).checked_sub(1)?;
            Some(if left == 0 {
                0
            } else {
                (left * ONE) | (n & PENDING)
            })
        }) {
            Ok(prev) => prev / ONE - 1,
            Err(_) => 0,
        }
    }
}

impl CancelSlot {
    /// An empty slot, or for a named task one holding its name.
    #[inline]
    pub(crate) fn new(name: Option<Arc<str>>) -> CancelSlot {
        match name {
            None => CancelSlot(AtomicPtr::new(ptr::null_mut())),
            Some(name) => CancelSlot::named(name),
        }
    }

    #[cold]
    fn named(name: Arc<str>) -> CancelSlot {
        CancelSlot(AtomicPtr::new(Box::into_raw(Box::new(CancelState {
            name: Some(name),
            ..CancelState::default()
        }))))
    }

    /// The state, if it was ever allocated.
    pub(crate) fn get(&self) -> Option<&CancelState> {
        // The Acquire load pairs with the installing AcqRel CAS, so the
        // allocation's contents are visible.
        // SAFETY: non-null only from `new`'s or `get_or_init`'s `Box`, freed
        // only by `Drop` (`&mut self`).
        unsafe { self.0.load(Acquire).as_ref() }
    }

    /// The state, allocated now if it was not yet. Any thread.
    pub(crate) fn get_or_init(&self) -> &CancelState {
        if let Some(s) = self.get() {
            return s;
        }
        let fresh = Box::into_raw(Box::<CancelState>::default());
        match self
            .0
            .compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire)
        {
            // SAFETY: just installed; freed only by `Drop` (see `get`).
            Ok(_) => unsafe { &*fresh },
            Err(theirs) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was
                // never published.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: installed by another caller; as in `get`.
                unsafe { &*theirs }
            }
        }
    }
}

impl Drop for CancelSlot {
    fn drop(&mut self) {
        let p = *self.0.get_mut();
        if !p.is_null() {
            // SAFETY: installed from `Box::into_raw` by `new` or `get_or_init`, and
            // `&mut self` means no reference from `get` is left.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}
