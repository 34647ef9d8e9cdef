//! The state shared by the three queue kinds, and their futures.
//!
//! One `Core<T>` behind an `Rc` serves `Queue`, `LifoQueue` and
//! `PriorityQueue`; only the [`Store`] (a [`Ring`] popped at the front or
//! the back, or a heap ordered by `T: Ord`) differs. Getters and putters wait
//! in FIFO [`WaitList`]s with asyncio's *notify and re-check* rule: a `put`
//! notifies the first getter, which takes an item when it runs; if another
//! task took the item first, the getter goes back to the *front* of the
//! list. A notified waiter that is dropped passes its notification on
//! (waiters.rs rule 3).
//!
//! # Layout and borrows
//!
//! The state is split by how it is touched, so that the fast path (a `put`
//! with room, a `get` with an item) takes no borrow flag:
//! * the items: a [`Ring`] (FIFO, LIFO), which needs no flag (ring.rs rule
//!   2: it runs no foreign code while it holds a reference), or for the
//!   priority kind a `RefCell<Vec<T>>`, whose flag stays because sifting
//!   calls `T::cmp`, user code that could re-enter the queue;
//! * the counters: `Cell`s;
//! * the three wait lists: one `RefCell<Lists>`, borrowed on the slow path
//!   (waiting, waking a waiter, leaving) and to register wakers (a waker's
//!   `clone` is foreign code: a re-entrant call then panics on the flag, as
//!   before, instead of aliasing). Every borrow goes through
//!   [`Core::lists`], whose guard keeps two hints true to the lists: the
//!   fast path reads only those to learn that no getter (putter) waits.
//!
//! *Hint rule.* While no [`ListsMut`] is live, `getters_waiting` is
//! `!getters.is_empty()` and `putters_waiting` is `!putters.is_empty()`.
//! While one is live both read `true`, so a call re-entering the queue from
//! foreign code run under the borrow goes to the lists and meets the flag.
//!
//! No waker is woken and no item is dropped while a flag is held
//! (waiters.rs rule 5).

use std::cell::{Cell, RefCell, RefMut};
use std::cmp::Ordering;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use super::error::{GetNowaitError, PutNowaitError, QueueShutDown, TaskDoneError};
use super::ring::Ring;
use crate::rt::budget::poll_proceed;
use crate::sync::waiters::{Key, WaitList, wake};

/// Where `pop` takes from.
pub(crate) enum Kind<T> {
    Fifo,
    Lifo,
    /// A binary min-heap ordered by this comparison (`T::cmp`).
    Heap(fn(&T, &T) -> Ordering),
}

/// The items of one queue kind.
enum Store<T> {
    /// `Queue`: pushed at the back, popped at the front.
    Fifo(Ring<T>),
    /// `LifoQueue`: pushed and popped at the back.
    Lifo(Ring<T>),
    /// `PriorityQueue`: a binary min-heap by `cmp` (`heapq`'s layout).
    Heap(RefCell<Vec<T>>, fn(&T, &T) -> Ordering),
}

impl<T> Store<T> {
    #[inline]
    fn len(&self) -> usize {
        match self {
            Store::Fifo(r) | Store::Lifo(r) => r.len(),
            Store::Heap(v, _) => v.borrow().len(),
        }
    }

    #[inline]
    fn push(&self, item: T) {
        match self {
            Store::Fifo(r) | Store::Lifo(r) => r.push_back(item),
            Store::Heap(v, cmp) => heap_push(&mut v.borrow_mut(), item, *cmp),
        }
    }

    #[inline]
    fn pop(&self) -> Option<T> {
        match self {
            Store::Fifo(r) => r.pop_front(),
            _ => self.pop_other(),
        }
    }

    /// [`pop`](Self::pop) for the LIFO and priority kinds (out of line, so
    /// the FIFO case inlines into `get`).
    fn pop_other(&self) -> Option<T> {
        match self {
            Store::Fifo(r) => r.pop_front(),
            Store::Lifo(r) => r.pop_back(),
            Store::Heap(v, cmp) => heap_pop(&mut v.borrow_mut(), *cmp),
        }
    }
}

/// Sifts `item` up from the end of the heap `v`.
fn heap_push<T>(v: &mut Vec<T>, item: T, cmp: fn(&T, &T) -> Ordering) {
    v.push(item);
    let mut i = v.len() - 1;
    while i > 0 {
        let parent = (i - 1) / 2;
        if cmp(&v[i], &v[parent]) == Ordering::Less {
            v.swap(i, parent);
            i = parent;
        } else {
            break;
        }
    }
}

/// Takes the smallest item of the heap `v` and sifts the last one down.
fn heap_pop<T>(v: &mut Vec<T>, cmp: fn(&T, &T) -> Ordering) -> Option<T> {
    let last = v.len().checked_sub(1)?;
    v.swap(0, last);
    let top = v.pop();
    let n = v.len();
    let mut i = 0;
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut m = i;
        if l < n && cmp(&v[l], &v[m]) == Ordering::Less {
            m = l;
        }
        if r < n && cmp(&v[r], &v[m]) == Ordering::Less {
            m = r;
        }
        if m == i {
            break;
        }
        v.swap(i, m);
        i = m;
    }
    top
}

/// The wait lists of a queue.
struct Lists {
    getters: WaitList<()>,
    putters: WaitList<()>,
    joiners: WaitList<()>,
}

/// The shared core of a queue.
pub(crate) struct Core<T> {
    items: Store<T>,
    maxsize: usize,
    /// `maxsize`, or `usize::MAX` if unbounded: `full` is one compare.
    limit: usize,
    unfinished: Cell<usize>,
    shutdown: Cell<bool>,
    /// The hints of the hint rule (module doc).
    getters_waiting: Cell<bool>,
    putters_waiting: Cell<bool>,
    lists: RefCell<Lists>,
}

/// The wait lists, borrowed; on drop it sets the hints from them (hint rule).
struct ListsMut<'a> {
    lists: RefMut<'a, Lists>,
    getters_waiting: &'a Cell<bool>,
    putters_waiting: &'a Cell<bool>,
}

impl Deref for ListsMut<'_> {
    type Target = Lists;

    fn deref(&self) -> &Lists {
        &self.lists
    }
}

impl DerefMut for ListsMut<'_> {
    fn deref_mut(&mut self) -> &mut Lists {
        &mut self.lists
    }
}

impl Drop for ListsMut<'_> {
    #[inline]
    fn drop(&mut self) {
        self.getters_waiting.set(!self.lists.getters.is_empty());
        self.putters_waiting.set(!self.lists.putters.is_empty());
    }
}

impl<T> Core<T> {
    pub(crate) fn new(maxsize: usize, kind: Kind<T>) -> Core<T> {
        Core {
            items: match kind {
                Kind::Fifo => Store::Fifo(Ring::new()),
                Kind::Lifo => Store::Lifo(Ring::new()),
                Kind::Heap(cmp) => Store::Heap(RefCell::new(Vec::new()), cmp),
            },
            maxsize,
            limit: if maxsize == 0 { usize::MAX } else { maxsize },
            unfinished: Cell::new(0),
            shutdown: Cell::new(false),
            getters_waiting: Cell::new(false),
            putters_waiting: Cell::new(false),
            lists: RefCell::new(Lists {
                getters: WaitList::new(),
                putters: WaitList::new(),
                joiners: WaitList::new(),
            }),
        }
    }

    pub(crate) fn qsize(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize
    }

    #[inline]
    pub(crate) fn full(&self) -> bool {
        self.items.len() >= self.limit
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.get()
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.unfinished.get()
    }

    /// Borrows the wait lists (hint rule: the hints read `true` meanwhile).
    #[inline]
    fn lists(&self) -> ListsMut<'_> {
        let lists = self.lists.borrow_mut();
        self.getters_waiting.set(true);
        self.putters_waiting.set(true);
        ListsMut {
            lists,
            getters_waiting: &self.getters_waiting,
            putters_waiting: &self.putters_waiting,
        }
    }

    /// Puts an item (the caller checked shutdown and room) and returns the
    /// first getter's waker, notified, to wake after the caller's borrows.
    #[inline]
    fn put_now(&self, item: T) -> Option<Waker> {
        self.items.push(item);
        self.unfinished.set(self.unfinished.get() + 1);
        if self.getters_waiting.get() {
            self.lists().getters.notify_front()
        } else {
            None
        }
    }

    /// Takes an item, notifying the first putter (a slot is free).
    #[inline]
    fn get_now(&self) -> Option<(T, Option<Waker>)> {
        let item = self.items.pop()?;
        let w = if self.putters_waiting.get() {
            self.lists().putters.notify_front()
        } else {
            None
        };
        Some((item, w))
    }

    pub(crate) fn put_nowait(&self, item: T) -> Result<(), PutNowaitError<T>> {
        if self.shutdown.get() {
            return Err(PutNowaitError::ShutDown(item));
        }
        if self.full() {
            return Err(PutNowaitError::Full(item));
        }
        wake(self.put_now(item));
        Ok(())
    }

    pub(crate) fn get_nowait(&self) -> Result<T, GetNowaitError> {
        match self.get_now() {
            Some((item, w)) => {
                wake(w);
                Ok(item)
            }
            None if self.shutdown.get() => Err(GetNowaitError::ShutDown),
            None => Err(GetNowaitError::Empty),
        }
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let n = self.unfinished.get();
        if n == 0 {
            return Err(TaskDoneError);
        }
        self.unfinished.set(n - 1);
        if n > 1 {
            return Ok(());
        }
        let wakers = self.lists().joiners.notify_all();
        wakers.into_iter().for_each(Waker::wake);
        Ok(())
    }

    pub(crate) fn shutdown(&self, immediate: bool) {
        self.shutdown.set(true);
        let mut drained = Vec::new();
        if immediate {
            while let Some(item) = self.items.pop() {
                drained.push(item);
                self.unfinished.set(self.unfinished.get().saturating_sub(1));
            }
        }
        let wakers = {
            let mut l = self.lists();
            let mut wakers = l.getters.notify_all();
            wakers.extend(l.putters.notify_all());
            if self.unfinished.get() == 0 {
                wakers.extend(l.joiners.notify_all());
            }
            wakers
        };
        // Items are dropped outside the borrow: their destructors may use
        // the queue.
        drop(drained);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// A dropped `Get` or `Put` leaves its wait list (`list` picks
    /// `getters` or `putters`). A notification it had not used yet passes to
    /// the next waiter if what it stood for is still there (`pass_on`;
    /// waiters.rs rule 3).
    #[inline(never)]
    fn leave(&self, key: Key, list: impl FnOnce(&mut Lists) -> &mut WaitList<()>, pass_on: bool) {
        let w = list(&mut self.lists()).remove_passing_on(key, pass_on);
        wake(w);
    }
}

/// The future of `get()` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    pub(crate) core: &'a Core<T>,
    pub(crate) key: Option<Key>,
}

impl<T> Future for Get<'_, T> {
    type Output = Result<T, QueueShutDown>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = self.poll_leaf(cx);
        crate::rt::debug::note(res, || crate::rt::Awaiting::Sync("queue get"))
    }
}

impl<T> Get<'_, T> {
    /// `poll`; a `Pending` is noted in the await tree (`Handle::dump`).
    #[inline]
    fn poll_leaf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, QueueShutDown>> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let core = this.core;
        let mut notified = false;
        if this.key.is_some() {
            let mut l = core.lists();
            notified = ready!(l.getters.poll_key(&mut this.key, cx.waker())).is_some();
        }
        if let Some((item, w)) = core.get_now() {
            wake(w);
            coop.made_progress();
            return Poll::Ready(Ok(item));
        }
        if core.shutdown.get() {
            coop.made_progress();
            return Poll::Ready(Err(QueueShutDown(())));
        }
        // If notified, someone took our item first: we keep our turn.
        let waker = cx.waker().clone();
        let mut l = core.lists();
        this.key = Some(l.getters.push_keeping_turn((), waker, notified));
        Poll::Pending
    }
}

impl<T> Drop for Get<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let items_left = self.core.items.len() > 0 || self.core.shutdown.get();
            self.core.leave(key, |l| &mut l.getters, items_left);
        }
    }
}

/// The future of `put(item)` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct Put<'a, T> {
    pub(crate) core: &'a Core<T>,
    pub(crate) item: Option<T>,
    pub(crate) key: Option<Key>,
}

impl<T> Unpin for Put<'_, T> {}

impl<T> Future for Put<'_, T> {
    type Output = Result<(), QueueShutDown<T>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = self.poll_leaf(cx);
        crate::rt::debug::note(res, || crate::rt::Awaiting::Sync("queue put"))
    }
}

impl<T> Put<'_, T> {
    /// `poll`; a `Pending` is noted in the await tree (`Handle::dump`).
    #[inline]
    fn poll_leaf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), QueueShutDown<T>>> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let core = this.core;
        let mut notified = false;
        if this.key.is_some() {
            let mut l = core.lists();
            notified = ready!(l.putters.poll_key(&mut this.key, cx.waker())).is_some();
        }
        let item = this.item.take().expect("Put polled after completion");
        if core.shutdown.get() {
            coop.made_progress();
            return Poll::Ready(Err(QueueShutDown(item)));
        }
        if !core.full() {
            wake(core.put_now(item));
            coop.made_progress();
            return Poll::Ready(Ok(()));
        }
        this.item = Some(item);
        let waker = cx.waker().clone();
        let mut l = core.lists();
        this.key = Some(l.putters.push_keeping_turn((), waker, notified));
        Poll::Pending
    }
}

impl<T> Drop for Put<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let room_left = !self.core.full() || self.core.shutdown.get();
            self.core.leave(key, |l| &mut l.putters, room_left);
        }
    }
}

/// The future of `join()` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct Join<'a, T> {
    pub(crate) core: &'a Core<T>,
    pub(crate) key: Option<Key>,
}

impl<T> Future for Join<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let res = self.poll_leaf(cx);
        crate::rt::debug::note(res, || crate::rt::Awaiting::Sync("queue join"))
    }
}

impl<T> Join<'_, T> {
    /// `poll`; a `Pending` is noted in the await tree (`Handle::dump`).
    fn poll_leaf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut l = this.core.lists();
        if ready!(l.joiners.poll_key(&mut this.key, cx.waker())).is_some()
            || this.core.unfinished.get() == 0
        {
            return Poll::Ready(());
        }
        this.key = Some(l.joiners.push_back((), cx.waker().clone()));
        Poll::Pending
    }
}

impl<T> Drop for Join<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let _ = self.core.lists().joiners.remove(key);
        }
    }
}

/// `Debug` for the queue futures: their name and whether they are queued.
macro_rules! debug_queued {
    ($($name:ident),+) => {$(
        impl<T> std::fmt::Debug for $name<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("queued", &self.key.is_some())
                    .finish()
            }
        }
    )+};
}

debug_queued!(Get, Put, Join);

#[cfg(test)]
mod tests {
    use super::*;

    impl<T> Core<T> {
        /// The hint rule (module doc), checked while no borrow is live.
        fn check_hints(&self) {
            let l = self.lists.borrow();
            assert_eq!(self.getters_waiting.get(), !l.getters.is_empty());
            assert_eq!(self.putters_waiting.get(), !l.putters.is_empty());
        }
    }

    /// A pseudo-random mix of waiting gets and puts (polled, re-polled,
    /// dropped), nowait calls and a late shutdown on a queue of two slots: the
    /// hints match the lists after every step, so the fast path never skips
    /// a waiter (nor its wakeup).
    #[test]
    fn hints_follow_the_lists() {
        let core = Core::<u32>::new(2, Kind::Fifo);
        let mut cx = Context::from_waker(Waker::noop());
        let mut gets: Vec<Pin<Box<Get<'_, u32>>>> = Vec::new();
        let mut puts: Vec<Pin<Box<Put<'_, u32>>>> = Vec::new();
        let mut x: u32 = 0x2545_f491;
        for step in 0..4_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match x % 9 {
                0 => gets.push(Box::pin(Get {
                    core: &core,
                    key: None,
                })),
                1 => puts.push(Box::pin(Put {
                    core: &core,
                    item: Some(step),
                    key: None,
                })),
                2 | 3 if !gets.is_empty() => {
                    let i = (x as usize / 16) % gets.len();
                    if gets[i].as_mut().poll(&mut cx).is_ready() {
                        drop(gets.swap_remove(i));
                    }
                }
                4 | 5 if !puts.is_empty() => {
                    let i = (x as usize / 16) % puts.len();
                    if puts[i].as_mut().poll(&mut cx).is_ready() {
                        drop(puts.swap_remove(i));
                    }
                }
                6 if !gets.is_empty() => drop(gets.swap_remove((x as usize / 16) % gets.len())),
                7 if !puts.is_empty() => drop(puts.swap_remove((x as usize / 16) % puts.len())),
                8 => {
                    let _ = core.get_nowait();
                    let _ = core.put_nowait(step);
                }
                _ => {}
            }
            if step == 3_500 {
                core.shutdown(false);
            }
            core.check_hints();
        }
        drop(gets);
        drop(puts);
        core.check_hints();
        let l = core.lists.borrow();
        assert!(l.getters.is_empty() && l.putters.is_empty());
    }
}
