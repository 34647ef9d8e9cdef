//! The state shared by the three queue kinds, and their futures.
//!
//! One `Core<T>` behind an `Rc` serves `Queue`, `LifoQueue` and
//! `PriorityQueue`; only the `Kind` (which end `pop` takes from, or a heap
//! ordered by `T: Ord`) differs. Getters and putters wait in FIFO
//! [`WaitList`]s with asyncio's *notify and re-check* rule: a `put` notifies
//! the first getter, which takes an item when it runs; if another task took
//! the item first, the getter goes back to the *front* of the list. A
//! notified waiter that is dropped passes its notification on
//! (waiters.rs rule 3).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use super::error::{GetNowaitError, PutNowaitError, QueueShutDown, TaskDoneError};
use crate::rt::budget::poll_proceed;
use crate::sync::waiters::{Key, WaitList, wake};

/// Where `pop` takes from.
pub(crate) enum Kind<T> {
    Fifo,
    Lifo,
    /// A binary min-heap ordered by this comparison (`T::cmp`).
    Heap(fn(&T, &T) -> Ordering),
}

pub(crate) struct State<T> {
    items: VecDeque<T>,
    kind: Kind<T>,
    maxsize: usize,
    unfinished: usize,
    shutdown: bool,
    getters: WaitList<()>,
    putters: WaitList<()>,
    joiners: WaitList<()>,
}

impl<T> State<T> {
    #[inline]
    fn full(&self) -> bool {
        self.maxsize > 0 && self.items.len() >= self.maxsize
    }

    #[inline]
    fn push(&mut self, item: T) {
        self.items.push_back(item);
        if let Kind::Heap(cmp) = self.kind {
            let v = &mut self.items;
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
    }

    #[inline]
    fn pop(&mut self) -> Option<T> {
        match self.kind {
            Kind::Fifo => self.items.pop_front(),
            _ => self.pop_other(),
        }
    }

    /// [`pop`](Self::pop) for the LIFO and priority kinds (out of line, so
    /// the FIFO case inlines into `get`).
    fn pop_other(&mut self) -> Option<T> {
        match self.kind {
            Kind::Fifo => self.items.pop_front(),
            Kind::Lifo => self.items.pop_back(),
            Kind::Heap(cmp) => {
                let v = &mut self.items;
                let last = v.len().checked_sub(1)?;
                v.swap(0, last);
                let top = v.pop_back();
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
        }
    }

    #[inline]
    fn put_now(&mut self, item: T) -> Option<Waker> {
        self.push(item);
        self.unfinished += 1;
        self.getters.notify_front()
    }

    #[inline]
    fn get_now(&mut self) -> Option<(T, Option<Waker>)> {
        let item = self.pop()?;
        Some((item, self.putters.notify_front()))
    }
}

/// The shared core of a queue.
pub(crate) struct Core<T> {
    state: RefCell<State<T>>,
}

impl<T> Core<T> {
    pub(crate) fn new(maxsize: usize, kind: Kind<T>) -> Core<T> {
        Core {
            state: RefCell::new(State {
                items: VecDeque::new(),
                kind,
                maxsize,
                unfinished: 0,
                shutdown: false,
                getters: WaitList::new(),
                putters: WaitList::new(),
                joiners: WaitList::new(),
            }),
        }
    }

    pub(crate) fn qsize(&self) -> usize {
        self.state.borrow().items.len()
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.state.borrow().maxsize
    }

    pub(crate) fn full(&self) -> bool {
        self.state.borrow().full()
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.state.borrow().shutdown
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.state.borrow().unfinished
    }

    pub(crate) fn put_nowait(&self, item: T) -> Result<(), PutNowaitError<T>> {
        let mut st = self.state.borrow_mut();
        if st.shutdown {
            return Err(PutNowaitError::ShutDown(item));
        }
        if st.full() {
            return Err(PutNowaitError::Full(item));
        }
        let w = st.put_now(item);
        drop(st);
        wake(w);
        Ok(())
    }

    pub(crate) fn get_nowait(&self) -> Result<T, GetNowaitError> {
        let mut st = self.state.borrow_mut();
        match st.get_now() {
            Some((item, w)) => {
                drop(st);
                wake(w);
                Ok(item)
            }
            None if st.shutdown => Err(GetNowaitError::ShutDown),
            None => Err(GetNowaitError::Empty),
        }
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let wakers = {
            let mut st = self.state.borrow_mut();
            if st.unfinished == 0 {
                return Err(TaskDoneError);
            }
            st.unfinished -= 1;
            if st.unfinished > 0 {
                return Ok(());
            }
            st.joiners.notify_all()
        };
        wakers.into_iter().for_each(Waker::wake);
        Ok(())
    }

    pub(crate) fn shutdown(&self, immediate: bool) {
        let mut drained = Vec::new();
        let wakers = {
            let mut st = self.state.borrow_mut();
            st.shutdown = true;
            if immediate {
                while let Some(item) = st.pop() {
                    drained.push(item);
                    st.unfinished = st.unfinished.saturating_sub(1);
                }
            }
            let mut wakers = st.getters.notify_all();
            wakers.extend(st.putters.notify_all());
            if st.unfinished == 0 {
                wakers.extend(st.joiners.notify_all());
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
    fn leave(
        &self,
        key: Key,
        list: impl FnOnce(&mut State<T>) -> &mut WaitList<()>,
        pass_on: impl FnOnce(&State<T>) -> bool,
    ) {
        let mut st = self.state.borrow_mut();
        let pass_on = pass_on(&st);
        let w = list(&mut st).remove_passing_on(key, pass_on);
        drop(st);
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
        let mut st = this.core.state.borrow_mut();
        let notified = ready!(st.getters.poll_key(&mut this.key, cx.waker())).is_some();
        if let Some((item, w)) = st.get_now() {
            drop(st);
            wake(w);
            coop.made_progress();
            return Poll::Ready(Ok(item));
        }
        if st.shutdown {
            coop.made_progress();
            return Poll::Ready(Err(QueueShutDown(())));
        }
        // If notified, someone took our item first: we keep our turn.
        this.key = Some(
            st.getters
                .push_keeping_turn((), cx.waker().clone(), notified),
        );
        Poll::Pending
    }
}

impl<T> Drop for Get<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let items_left = |st: &State<T>| !st.items.is_empty() || st.shutdown;
            self.core.leave(key, |st| &mut st.getters, items_left);
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
        let mut st = this.core.state.borrow_mut();
        let notified = ready!(st.putters.poll_key(&mut this.key, cx.waker())).is_some();
        let item = this.item.take().expect("Put polled after completion");
        if st.shutdown {
            coop.made_progress();
            return Poll::Ready(Err(QueueShutDown(item)));
        }
        if !st.full() {
            let w = st.put_now(item);
            drop(st);
            wake(w);
            coop.made_progress();
            return Poll::Ready(Ok(()));
        }
        this.item = Some(item);
        this.key = Some(
            st.putters
                .push_keeping_turn((), cx.waker().clone(), notified),
        );
        Poll::Pending
    }
}

impl<T> Drop for Put<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let room_left = |st: &State<T>| !st.full() || st.shutdown;
            self.core.leave(key, |st| &mut st.putters, room_left);
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
        let mut st = this.core.state.borrow_mut();
        if ready!(st.joiners.poll_key(&mut this.key, cx.waker())).is_some() || st.unfinished == 0 {
            return Poll::Ready(());
        }
        this.key = Some(st.joiners.push_back((), cx.waker().clone()));
        Poll::Pending
    }
}

impl<T> Drop for Join<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let _ = self.core.state.borrow_mut().joiners.remove(key);
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
