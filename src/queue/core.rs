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

use super::error::{GetNowaitError, PutNowaitError, QueueShutDown};
use crate::rt::budget::poll_proceed;
use crate::sync::waiters::{Key, Polled, Removed, WaitList};

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
    fn full(&self) -> bool {
        self.maxsize > 0 && self.items.len() >= self.maxsize
    }

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

    fn pop(&mut self) -> Option<T> {
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

    fn put_now(&mut self, item: T) -> Option<Waker> {
        self.push(item);
        self.unfinished += 1;
        self.getters.notify_front()
    }

    fn get_now(&mut self) -> Option<(T, Option<Waker>)> {
        let item = self.pop()?;
        Some((item, self.putters.notify_front()))
    }
}

fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
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

    #[track_caller]
    pub(crate) fn task_done(&self) {
        let wakers = {
            let mut st = self.state.borrow_mut();
            assert!(
                st.unfinished > 0,
                "task_done() called more times than items were put in the queue \
                 (asyncio raises ValueError here); call it once per item taken with get"
            );
            st.unfinished -= 1;
            if st.unfinished > 0 {
                return;
            }
            st.joiners.notify_all()
        };
        wakers.into_iter().for_each(Waker::wake);
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
}

/// The future of `get()` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    pub(crate) core: &'a Core<T>,
    pub(crate) key: Option<Key>,
}

impl<T> Future for Get<'_, T> {
    type Output = Result<T, QueueShutDown>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let mut st = this.core.state.borrow_mut();
        let mut notified = false;
        if let Some(key) = this.key {
            match st.getters.poll(key, cx.waker()) {
                Polled::Pending => return Poll::Pending,
                Polled::Notified(()) => {
                    this.key = None;
                    notified = true;
                }
            }
        }
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
        let waker = cx.waker().clone();
        this.key = Some(if notified {
            // Someone took our item first: keep our turn.
            st.getters.push_front((), waker)
        } else {
            st.getters.push_back((), waker)
        });
        Poll::Pending
    }
}

impl<T> Drop for Get<'_, T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut st = self.core.state.borrow_mut();
        if let Removed::Notified(()) = st.getters.remove(key)
            && (!st.items.is_empty() || st.shutdown)
        {
            let w = st.getters.notify_front();
            drop(st);
            wake(w);
        }
    }
}

impl<T> std::fmt::Debug for Get<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Get")
            .field("queued", &self.key.is_some())
            .finish()
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let mut st = this.core.state.borrow_mut();
        let mut notified = false;
        if let Some(key) = this.key {
            match st.putters.poll(key, cx.waker()) {
                Polled::Pending => return Poll::Pending,
                Polled::Notified(()) => {
                    this.key = None;
                    notified = true;
                }
            }
        }
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
        let waker = cx.waker().clone();
        this.key = Some(if notified {
            st.putters.push_front((), waker)
        } else {
            st.putters.push_back((), waker)
        });
        Poll::Pending
    }
}

impl<T> Drop for Put<'_, T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut st = self.core.state.borrow_mut();
        if let Removed::Notified(()) = st.putters.remove(key)
            && (!st.full() || st.shutdown)
        {
            let w = st.putters.notify_front();
            drop(st);
            wake(w);
        }
    }
}

impl<T> std::fmt::Debug for Put<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Put")
            .field("queued", &self.key.is_some())
            .finish()
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
        let this = self.get_mut();
        let mut st = this.core.state.borrow_mut();
        match this.key {
            Some(key) => match st.joiners.poll(key, cx.waker()) {
                Polled::Pending => Poll::Pending,
                Polled::Notified(()) => {
                    this.key = None;
                    Poll::Ready(())
                }
            },
            None if st.unfinished == 0 => Poll::Ready(()),
            None => {
                this.key = Some(st.joiners.push_back((), cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Join<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let _ = self.core.state.borrow_mut().joiners.remove(key);
        }
    }
}

impl<T> std::fmt::Debug for Join<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join")
            .field("queued", &self.key.is_some())
            .finish()
    }
}
