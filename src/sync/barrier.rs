//! `Barrier`: wait until `n` tasks have arrived (`asyncio.Barrier`), with
//! `abort` and `reset` and the typed [`BrokenBarrier`] error they cause.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::waiters::{Key, WaitList, debug_state};

/// A barrier for `n` tasks: each [`wait`](Barrier::wait) blocks until `n`
/// tasks are waiting, then all of them go on and the barrier is reusable.
///
/// `wait` returns the task's arrival index in its round, `0..n`, as
/// asyncio's `wait()` does; the last task to arrive gets `n - 1`, is the
/// *leader* ([`BarrierWaitResult::is_leader`]) and does not wait at all. A
/// task whose `wait` is dropped before the barrier fills up leaves it again
/// (the barrier then needs one more arrival, as with asyncio's `Barrier`),
/// so a cancelled task cannot make the others pass early.
///
/// [`abort`](Barrier::abort) breaks the barrier: the tasks waiting and every
/// later `wait` get [`BrokenBarrier`] until [`reset`](Barrier::reset).
/// `reset` empties the barrier: the tasks waiting in the unfinished round get
/// `BrokenBarrier`, later ones start a new round. Neither touches a round
/// that already filled up: its tasks get their index even if they run only
/// after the `abort` or `reset`. Single-loop: `Send`, not `Sync`.
///
/// ```
/// use std::rc::Rc;
/// use coil::sync::Barrier;
///
/// coil::run(async {
///     let b = Rc::new(Barrier::new(3));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let b = b.clone();
///             coil::spawn(async move { b.wait().await.unwrap().index() })
///         })
///         .collect();
///     let mut indices = Vec::new();
///     for t in tasks {
///         indices.push(t.await.unwrap());
///     }
///     assert_eq!(indices, [0, 1, 2]);
///
///     b.abort();
///     assert!(b.is_broken());
///     assert!(b.wait().await.is_err());
///     b.reset();
///     assert!(!b.is_broken());
/// });
/// ```
pub struct Barrier {
    n: usize,
    state: RefCell<State>,
}

#[derive(Debug)]
struct State {
    broken: bool,
    /// The waiters of the current round, in arrival order. Notified with
    /// `Some(index)` when the round fills up, `None` when it is broken
    /// (`abort`) or emptied (`reset`).
    waiters: WaitList<Option<usize>>,
}

/// What [`Barrier::wait`] returns when the round filled up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    index: usize,
    leader: bool,
}

impl BarrierWaitResult {
    /// The task's place in its round, `0..parties`: the order of arrival
    /// among the tasks the round released (asyncio's return value of
    /// `wait()`). The leader's is `parties - 1`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether this task was the last to arrive (exactly one per round).
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// The barrier was aborted, or reset while this task waited
/// (asyncio's `BrokenBarrierError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokenBarrier(());

crate::macros::error_impls!(BrokenBarrier => "the barrier is broken (aborted or reset)");

impl Barrier {
    /// A barrier that releases tasks in groups of `n`.
    ///
    /// # Panics
    ///
    /// If `n` is 0 (asyncio's `Barrier(0)` raises `ValueError`): a barrier
    /// needs at least one party.
    #[track_caller]
    pub const fn new(n: usize) -> Barrier {
        assert!(
            n > 0,
            "Barrier::new(0): a barrier needs at least one party (asyncio raises ValueError)"
        );
        Barrier {
            n,
            state: RefCell::new(State {
                broken: false,
                waiters: WaitList::new(),
            }),
        }
    }

    /// The number of tasks per round.
    pub fn parties(&self) -> usize {
        self.n
    }

    /// Tasks waiting in the current round (0 while broken).
    pub fn n_waiting(&self) -> usize {
        self.state.borrow().waiters.len()
    }

    /// Whether the barrier is broken: [`abort`](Barrier::abort)ed and not
    /// [`reset`](Barrier::reset) since (asyncio's `broken`).
    pub fn is_broken(&self) -> bool {
        self.state.borrow().broken
    }

    /// Arrives and waits for the round to fill up; returns the arrival index
    /// ([`BarrierWaitResult::index`]), or [`BrokenBarrier`] if the barrier is
    /// or becomes broken, or is reset, before the round fills up.
    ///
    /// Cancel safe: a `wait` dropped before its round filled up leaves the
    /// round; one dropped after takes nothing from the others.
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            key: None,
            done: false,
        }
    }

    /// Breaks the barrier (asyncio's `abort()`): the tasks waiting and every
    /// later [`wait`](Barrier::wait) get [`BrokenBarrier`], until
    /// [`reset`](Barrier::reset).
    pub fn abort(&self) {
        self.break_round(true);
    }

    /// Returns the barrier to its empty, unbroken state (asyncio's
    /// `reset()`): the tasks waiting in the unfinished round get
    /// [`BrokenBarrier`]; later `wait`s start a new round.
    pub fn reset(&self) {
        self.break_round(false);
    }

    /// Wakes the current round's waiters with `BrokenBarrier` and leaves the
    /// barrier `broken` or not.
    fn break_round(&self, broken: bool) {
        let wakers = {
            let mut st = self.state.borrow_mut();
            st.broken = broken;
            st.waiters.notify_all()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_state(f, "Barrier", &self.state, |d, st| {
            d.field("parties", &self.n)
                .field("waiting", &st.waiters.len())
                .field("broken", &st.broken);
        })
    }
}

/// The future of [`Barrier::wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    key: Option<Key>,
    done: bool,
}

impl Future for BarrierWait<'_> {
    type Output = Result<BarrierWaitResult, BrokenBarrier>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "BarrierWait polled after completion");
        let n = this.barrier.n;
        let mut st = this.barrier.state.borrow_mut();
        if let Some(outcome) = std::task::ready!(st.waiters.poll_key(&mut this.key, cx.waker())) {
            // Our round ended: released with an index, or broken.
            this.done = true;
            return Poll::Ready(match outcome {
                Some(index) => Ok(BarrierWaitResult {
                    index,
                    leader: false,
                }),
                None => Err(BrokenBarrier(())),
            });
        }
        if st.broken {
            this.done = true;
            return Poll::Ready(Err(BrokenBarrier(())));
        }
        if st.waiters.len() + 1 < n {
            this.key = Some(st.waiters.push_back(None, cx.waker().clone()));
            return Poll::Pending;
        }
        // The leader: release the round, numbering its waiters in arrival
        // order.
        let mut wakers = Vec::with_capacity(n - 1);
        for index in 0..n - 1 {
            if let Some(slot) = st.waiters.front_mut() {
                *slot = Some(index);
            }
            wakers.extend(st.waiters.notify_front());
        }
        drop(st);
        wakers.into_iter().for_each(Waker::wake);
        this.done = true;
        Poll::Ready(Ok(BarrierWaitResult {
            index: n - 1,
            leader: true,
        }))
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        // Queued: it leaves the round (the round needs one more arrival).
        // Notified: the round ended; the others have what they are owed.
        let _ = self.barrier.state.borrow_mut().waiters.remove(key);
    }
}
