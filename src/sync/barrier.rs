//! `Barrier`: wait until `n` tasks have arrived.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::waiters::{Key, Polled, Removed, WaitList};

/// A barrier for `n` tasks: each [`wait`](Barrier::wait) blocks until `n`
/// tasks are waiting, then all of them go on and the barrier is reusable.
///
/// The last task to arrive is the *leader* ([`BarrierWaitResult::is_leader`]);
/// it does not wait at all. A task whose `wait` is dropped before the
/// barrier fills up leaves it again (the barrier then needs one more
/// arrival, as with asyncio's `Barrier`), so a cancelled task cannot make the
/// others pass early. Single-loop: `Send`, not `Sync`.
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
///             coil::spawn(async move { b.wait().await.is_leader() })
///         })
///         .collect();
///     let mut leaders = 0;
///     for t in tasks {
///         leaders += t.await.unwrap() as usize;
///     }
///     assert_eq!(leaders, 1);
/// });
/// ```
pub struct Barrier {
    n: usize,
    state: RefCell<State>,
}

#[derive(Debug)]
struct State {
    arrived: usize,
    waiters: WaitList<()>,
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this task was the last to arrive (exactly one per round).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

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
                arrived: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// The number of tasks per round.
    pub fn parties(&self) -> usize {
        self.n
    }

    /// Tasks waiting in the current round.
    pub fn n_waiting(&self) -> usize {
        self.state.borrow().arrived
    }

    /// Arrives and waits for the round to fill up.
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            key: None,
            done: false,
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Barrier");
        d.field("parties", &self.n);
        if let Ok(st) = self.state.try_borrow() {
            d.field("waiting", &st.arrived);
        }
        d.finish()
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
    type Output = BarrierWaitResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<BarrierWaitResult> {
        let this = self.get_mut();
        assert!(!this.done, "BarrierWait polled after completion");
        let mut st = this.barrier.state.borrow_mut();
        match this.key {
            None => {
                st.arrived += 1;
                if st.arrived < this.barrier.n {
                    this.key = Some(st.waiters.push_back((), cx.waker().clone()));
                    return Poll::Pending;
                }
                st.arrived = 0;
                let wakers = st.waiters.notify_all();
                drop(st);
                wakers.into_iter().for_each(Waker::wake);
                this.done = true;
                Poll::Ready(BarrierWaitResult(true))
            }
            Some(key) => match st.waiters.poll(key, cx.waker()) {
                Polled::Pending => Poll::Pending,
                Polled::Notified(()) => {
                    this.key = None;
                    this.done = true;
                    Poll::Ready(BarrierWaitResult(false))
                }
            },
        }
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut st = self.barrier.state.borrow_mut();
        if let Removed::Queued(()) = st.waiters.remove(key) {
            // Still counted in this round: leave it.
            st.arrived -= 1;
        }
    }
}
