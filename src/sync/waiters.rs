//! The waiter list shared by every primitive in `sync` and `queue`: a FIFO of
//! parked futures in a slab, with O(1) removal and hand-off on drop.
//!
//! A primitive keeps one `WaitList<D>` per kind of waiter (getters, putters,
//! permit requests, ...). A future that must wait pushes an entry and keeps
//! the returned [`Key`]; the primitive *notifies* entries from the front when
//! what they wait for is available; the future observes the notification on
//! its next poll, or gives it back when it is dropped.
//!
//! # Invariants
//!
//! 1. *States.* Every slab slot is `Free` (on the free list), `Queued`
//!    (linked into the FIFO exactly once, between `head` and `tail`) or
//!    `Notified` (unlinked, waiting for its owner to look). `len` counts the
//!    `Queued` slots.
//! 2. *One owner.* A [`Key`] is held by exactly one future, its owner. Only
//!    the owner frees its slot, either by observing the notification
//!    ([`WaitList::poll`] returns `Notified`) or by [`WaitList::remove`]
//!    (which every waiter future calls from `Drop`). The primitive never frees
//!    a slot; it only moves `Queued` to `Notified`.
//! 3. *Nothing is lost.* Whatever a notification stands for (a permit, the
//!    lock, a wakeup, a reserved slot) is owned by the `Notified` entry until
//!    its owner takes it. `remove` reports `Removed::Notified` for an entry
//!    that was notified and never observed, and the primitive then passes
//!    what it stood for to the next waiter. So a cancelled waiter gives its
//!    place away, and a wakeup aimed at a dropped future is never lost.
//! 4. *Generations.* Freeing a slot bumps its generation, so a stale key (a
//!    bug) cannot reach the slot's next occupant: `poll` and `remove` check it
//!    and treat a mismatch as a slot already gone.
//! 5. *No wake under a borrow.* Notifying returns the `Waker` instead of
//!    waking it, so the primitive can release its `RefCell`/`Mutex` first; a
//!    waker that re-enters the primitive then finds it unborrowed.
//!
//! There is no `unsafe` here: links are slab indices, as in `rt/wheel.rs`.

use std::cell::RefCell;
use std::fmt;
use std::task::{Poll, Waker};

const NIL: u32 = u32::MAX;

/// Names one waiter in a [`WaitList`] (rule 2: held by exactly one future).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Queued,
    Notified,
}

#[derive(Debug)]
struct Entry<D> {
    state: State,
    generation: u32,
    prev: u32,
    /// Next in the FIFO while `Queued`, next free slot while `Free`.
    next: u32,
    waker: Option<Waker>,
    data: D,
}

/// What [`WaitList::poll`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Polled<D> {
    /// Still queued; the waker was updated.
    Pending,
    /// Notified; the slot is freed and its data handed back.
    Notified(D),
}

/// What [`WaitList::remove`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Removed<D> {
    /// It was still queued: nothing was owed to it.
    Queued(D),
    /// It had been notified but never looked: pass the hand-off on (rule 3).
    Notified(D),
    /// The key was stale (already freed).
    Gone,
}

/// A FIFO of waiters; see the module doc for the invariants.
#[derive(Debug)]
pub(crate) struct WaitList<D> {
    entries: Vec<Entry<D>>,
    head: u32,
    tail: u32,
    free: u32,
    len: usize,
}

impl<D> Default for WaitList<D> {
    fn default() -> Self {
        WaitList::new()
    }
}

impl<D> WaitList<D> {
    pub(crate) const fn new() -> Self {
        WaitList {
            entries: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            len: 0,
        }
    }

    /// Queued waiters (notified ones not counted).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// No waiter is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn alloc(&mut self, data: D, waker: Waker) -> u32 {
        if self.free != NIL {
            let i = self.free;
            let e = &mut self.entries[i as usize];
            self.free = e.next;
            e.state = State::Queued;
            e.waker = Some(waker);
            e.data = data;
            i
        } else {
            let i = u32::try_from(self.entries.len()).expect("more than 2^32 waiters");
            assert!(i != NIL, "more than 2^32 - 1 waiters");
            self.entries.push(Entry {
                state: State::Queued,
                generation: 0,
                prev: NIL,
                next: NIL,
                waker: Some(waker),
                data,
            });
            i
        }
    }

    fn key(&self, i: u32) -> Key {
        Key {
            index: i,
            generation: self.entries[i as usize].generation,
        }
    }

    /// Appends a waiter at the back (rule 1: `Queued`).
    pub(crate) fn push_back(&mut self, data: D, waker: Waker) -> Key {
        let i = self.alloc(data, waker);
        self.link(i, self.tail, NIL)
    }

    /// Puts a waiter at the front: for a notified waiter that found its
    /// condition gone again and keeps its turn.
    pub(crate) fn push_front(&mut self, data: D, waker: Waker) -> Key {
        let i = self.alloc(data, waker);
        self.link(i, NIL, self.head)
    }

    /// Queues a waiter that polled its key (see [`poll_key`](Self::poll_key)):
    /// at the front if it had been notified, so that it keeps its turn
    /// (asyncio's *notify and re-check*), else at the back.
    #[inline]
    pub(crate) fn push_keeping_turn(&mut self, data: D, waker: Waker, notified: bool) -> Key {
        if notified {
            self.push_front(data, waker)
        } else {
            self.push_back(data, waker)
        }
    }

    /// Makes `b` follow `a` in the FIFO. `a == NIL` makes `b` the head,
    /// `b == NIL` makes `a` the tail.
    fn join(&mut self, a: u32, b: u32) {
        if a == NIL {
            self.head = b;
        } else {
            self.entries[a as usize].next = b;
        }
        if b == NIL {
            self.tail = a;
        } else {
            self.entries[b as usize].prev = a;
        }
    }

    /// Links the fresh slot `i` between the neighbours `prev` and `next`
    /// (`NIL` at an end).
    fn link(&mut self, i: u32, prev: u32, next: u32) -> Key {
        self.join(prev, i);
        self.join(i, next);
        self.len += 1;
        self.key(i)
    }

    fn unlink(&mut self, i: u32) {
        let e = &self.entries[i as usize];
        self.join(e.prev, e.next);
        self.len -= 1;
    }

    fn release(&mut self, i: u32) -> D
    where
        D: Default,
    {
        let e = &mut self.entries[i as usize];
        e.state = State::Free;
        e.generation = e.generation.wrapping_add(1);
        e.waker = None;
        e.next = self.free;
        self.free = i;
        std::mem::take(&mut e.data)
    }

    fn live(&self, key: Key) -> Option<State> {
        let e = self.entries.get(key.index as usize)?;
        (e.generation == key.generation && e.state != State::Free).then_some(e.state)
    }

    /// The data of the first queued waiter.
    #[cfg(test)]
    pub(crate) fn front(&self) -> Option<&D> {
        (self.head != NIL).then(|| &self.entries[self.head as usize].data)
    }

    /// The data of the first queued waiter, to record what it is granted.
    pub(crate) fn front_mut(&mut self) -> Option<&mut D> {
        (self.head != NIL).then(|| &mut self.entries[self.head as usize].data)
    }

    /// Moves the first queued waiter to `Notified` and returns its waker, to
    /// be woken once the caller's borrow is released (rule 5).
    #[inline]
    pub(crate) fn notify_front(&mut self) -> Option<Waker> {
        if self.head == NIL {
            return None;
        }
        self.notify_head()
    }

    /// [`notify_front`](Self::notify_front) once the list is known not empty
    /// (kept out of line so the empty check inlines into every caller).
    fn notify_head(&mut self) -> Option<Waker> {
        let i = self.head;
        self.unlink(i);
        let e = &mut self.entries[i as usize];
        e.state = State::Notified;
        e.waker.take()
    }

    /// Notifies every queued waiter, front to back, and returns their wakers.
    pub(crate) fn notify_all(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::with_capacity(self.len);
        while let Some(w) = self.notify_front() {
            wakers.push(w);
        }
        wakers
    }

    /// The owner looks at its entry: takes the notification (freeing the
    /// slot) or refreshes its waker.
    pub(crate) fn poll(&mut self, key: Key, waker: &Waker) -> Polled<D>
    where
        D: Default,
    {
        match self.live(key) {
            Some(State::Queued) => {
                register(&mut self.entries[key.index as usize].waker, waker);
                Polled::Pending
            }
            Some(State::Notified) => Polled::Notified(self.release(key.index)),
            // A stale key (rule 4) cannot be notified again; report it as a
            // hand-off already taken so the caller does not wait forever.
            _ => Polled::Notified(D::default()),
        }
    }

    /// [`poll`](Self::poll) for a future that keeps its key in an `Option`
    /// (`None`: not queued). `Pending` while queued; otherwise clears `key`
    /// and returns the notification's data, or `None` if it was not queued.
    #[inline]
    pub(crate) fn poll_key(&mut self, key: &mut Option<Key>, waker: &Waker) -> Poll<Option<D>>
    where
        D: Default,
    {
        let Some(k) = *key else {
            return Poll::Ready(None);
        };
        match self.poll(k, waker) {
            Polled::Pending => Poll::Pending,
            Polled::Notified(d) => {
                *key = None;
                Poll::Ready(Some(d))
            }
        }
    }

    /// The owner gives up its entry (from `Drop`, or on a timeout). See rule 3
    /// for what the caller must do with `Removed::Notified`.
    pub(crate) fn remove(&mut self, key: Key) -> Removed<D>
    where
        D: Default,
    {
        match self.live(key) {
            Some(State::Queued) => {
                self.unlink(key.index);
                Removed::Queued(self.release(key.index))
            }
            Some(State::Notified) => Removed::Notified(self.release(key.index)),
            _ => Removed::Gone,
        }
    }

    /// [`remove`](Self::remove) for a waiter whose notification is a bare
    /// turn: if it had been notified and `pass_on` holds (what it was
    /// notified for is still there), the next waiter is notified instead
    /// (rule 3). Returns that waiter's waker, to wake after the borrow.
    pub(crate) fn remove_passing_on(&mut self, key: Key, pass_on: bool) -> Option<Waker>
    where
        D: Default,
    {
        match self.remove(key) {
            Removed::Notified(_) if pass_on => self.notify_front(),
            _ => None,
        }
    }

    /// Checks rule 1 (tests and the `intrusive_list` fuzz target).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn check(&self) {
        let mut n = 0;
        let mut prev = NIL;
        let mut i = self.head;
        while i != NIL {
            let e = &self.entries[i as usize];
            assert_eq!(e.state, State::Queued);
            assert_eq!(e.prev, prev);
            prev = i;
            i = e.next;
            n += 1;
        }
        assert_eq!(self.tail, prev);
        assert_eq!(n, self.len);
        let queued = self
            .entries
            .iter()
            .filter(|e| e.state == State::Queued)
            .count();
        assert_eq!(queued, self.len);
    }
}

/// Stores `waker` in `slot`, unless the one there already wakes the same
/// task: the registration step of every hand-written `poll`.
#[inline]
pub(crate) fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// `Debug` of a primitive whose state sits in a `RefCell`: `name` with the
/// fields `fields` adds, or `name { <borrowed> }` while the state is
/// borrowed mutably (a `Debug` from inside one of its own methods).
pub(crate) fn debug_state<S>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    state: &RefCell<S>,
    fields: impl FnOnce(&mut fmt::DebugStruct<'_, '_>, &S),
) -> fmt::Result {
    match state.try_borrow() {
        Ok(st) => {
            let mut d = f.debug_struct(name);
            fields(&mut d, &st);
            d.finish()
        }
        Err(_) => write!(f, "{name} {{ <borrowed> }}"),
    }
}

/// Counts one handle of a channel out of `count` (its senders, its
/// receivers); when it was the last, notifies every waiter of `list` (they
/// wait for that) and returns their wakers, to wake after the lock (rule 5).
pub(crate) fn count_out<D>(count: &mut usize, list: &mut WaitList<D>) -> Vec<Waker> {
    *count -= 1;
    if *count == 0 {
        list.notify_all()
    } else {
        Vec::new()
    }
}

/// `Clone`, `Drop` and `same_channel` of a channel's `Sender<T>` that is a
/// bare `shared: Arc<..>` and is counted in the state's `tx_count` (under
/// `shared.lock()`): the last one to go wakes every waiter of the state's
/// `$list` field ([`count_out`]), who learn that no value can come any more.
macro_rules! counted_sender {
    ($list:ident) => {
        impl<T> Sender<T> {
            /// Whether both senders feed the same channel.
            pub fn same_channel(&self, other: &Sender<T>) -> bool {
                Arc::ptr_eq(&self.shared, &other.shared)
            }
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                self.shared.lock().tx_count += 1;
                Sender {
                    shared: self.shared.clone(),
                }
            }
        }

        impl<T> Drop for Sender<T> {
            fn drop(&mut self) {
                let wakers = {
                    let st = &mut *self.shared.lock();
                    $crate::sync::waiters::count_out(&mut st.tx_count, &mut st.$list)
                };
                wakers.into_iter().for_each(Waker::wake);
            }
        }
    };
}

pub(crate) use counted_sender;

/// Wakes a waker taken under a borrow, once the borrow is released (rule 5).
#[inline]
pub(crate) fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

/// Wakers collected under a borrow, woken after it is released (rule 5).
/// The first one is kept inline so that the common single hand-off does
/// not allocate.
#[derive(Debug, Default)]
pub(crate) struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakers {
    pub(crate) fn push(&mut self, w: Option<Waker>) {
        let Some(w) = w else { return };
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.more.push(w);
        }
    }

    pub(crate) fn wake(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests;
