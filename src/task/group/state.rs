//! The inside of a [`task_group`](super::task_group): its phase, its
//! children and their status, the failures so far, and the guards that
//! report a child gone (`LiveGuard`) and cancel the children when the owner
//! goes away (`AbortOnDrop`).

use std::cell::{Cell, OnceCell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::task::Task;
use crate::task::failure::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The body runs or the owner waits for children; spawning is allowed.
    Open,
    /// A child failed, the body returned an error or panicked: no new
    /// child starts, and the others are being cancelled (once the owner
    /// has run, see `State::swept`).
    Aborting,
    /// `task_group` returned or its future was dropped.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// What a child's handle, its future and its group share.
pub(super) struct ChildCell {
    status: Cell<Status>,
    /// Set right after the task is spawned.
    pub(super) task: OnceCell<Task<()>>,
    /// The task awaiting the child's [`GroupTask`](super::GroupTask).
    waiter: Cell<Option<Waker>>,
}

impl ChildCell {
    pub(super) fn new() -> ChildCell {
        ChildCell {
            status: Cell::new(Status::Running),
            task: OnceCell::new(),
            waiter: Cell::new(None),
        }
    }

    pub(super) fn status(&self) -> Status {
        self.status.get()
    }

    /// Records how the child ended and wakes the task awaiting its handle.
    pub(super) fn finish(&self, status: Status) {
        self.status.set(status);
        if let Some(w) = self.waiter.take() {
            w.wake();
        }
    }

    pub(super) fn set_waiter(&self, waker: &Waker) {
        self.waiter.set(Some(waker.clone()));
    }
}

pub(super) struct State<E> {
    pub(super) phase: Phase,
    /// Whether the owner has cancelled the running children since the
    /// group entered `Aborting`. A child's failure only records itself and
    /// wakes the owner, so that siblings already due on the same tick still
    /// run and their failures are reported too (asyncio aborts from the
    /// failed task's done callback, which runs after the current iteration).
    pub(super) swept: bool,
    /// In spawn order.
    pub(super) children: Vec<Rc<ChildCell>>,
    pub(super) failures: Vec<(usize, Failure<E>)>,
    /// The error the body returned, which started the abort.
    pub(super) body_error: Option<E>,
    /// Children whose future has not been dropped yet.
    pub(super) live: usize,
    /// The task awaiting `task_group`.
    pub(super) owner: Option<Waker>,
}

pub(super) struct Inner<E> {
    pub(super) state: RefCell<State<E>>,
}

impl<E> Inner<E> {
    pub(super) fn new() -> Inner<E> {
        Inner {
            state: RefCell::new(State {
                phase: Phase::Open,
                swept: false,
                children: Vec::new(),
                failures: Vec::new(),
                body_error: None,
                live: 0,
                owner: None,
            }),
        }
    }

    pub(super) fn set_owner(&self, waker: &Waker) {
        let mut st = self.state.borrow_mut();
        match &mut st.owner {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }

    fn wake_owner(&self) {
        let waker = self.state.borrow_mut().owner.take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Called from inside child `index`'s poll when it fails: records the
    /// failure, refuses new children, and leaves the cancelling of the
    /// others to the owner, which it wakes.
    pub(super) fn fail(&self, index: usize, failure: Failure<E>) {
        let child = {
            let mut st = self.state.borrow_mut();
            st.failures.push((index, failure));
            if st.phase == Phase::Open {
                st.phase = Phase::Aborting;
            }
            st.children[index].clone()
        };
        child.finish(Status::Failed);
        self.wake_owner();
    }

    /// Enter `Aborting` (unless already past `Open`) and cancel every
    /// running child at once.
    pub(super) fn abort(&self) {
        {
            let mut st = self.state.borrow_mut();
            if st.phase == Phase::Open {
                st.phase = Phase::Aborting;
            }
        }
        self.sweep();
    }

    /// In `Aborting`, cancel every running child (once).
    fn sweep(&self) {
        let mut st = self.state.borrow_mut();
        if st.phase != Phase::Aborting || st.swept {
            return;
        }
        st.swept = true;
        for child in &st.children {
            if child.status() == Status::Running
                && let Some(task) = child.task.get()
            {
                task.cancel();
            }
        }
    }

    /// Waits until every child's future is gone, cancelling the running
    /// ones first whenever the group is aborting.
    pub(super) async fn wait_for_children(&self) {
        poll_fn(|cx| {
            self.sweep();
            if self.state.borrow().live == 0 {
                return Poll::Ready(());
            }
            self.set_owner(cx.waker());
            self.in_node(|| Poll::Pending)
        })
        .await;
    }

    /// Debug mode (`Handle::dump`): `poll` runs inside the group's node of
    /// the await tree, whose children are the body's and the running
    /// child tasks.
    pub(super) fn in_node<T>(&self, poll: impl FnOnce() -> Poll<T>) -> Poll<T> {
        let group = || crate::rt::Awaiting::Combinator("task_group");
        crate::rt::debug::within(group, || {
            let res = poll();
            if res.is_pending() && crate::rt::debug::recording() {
                for child in &self.state.borrow().children {
                    if child.status() == Status::Running
                        && let Some(task) = child.task.get()
                    {
                        let id = task.id().as_u64();
                        crate::rt::debug::awaiting(|| crate::rt::Awaiting::Task { id });
                    }
                }
            }
            res
        })
    }
}

/// Lives inside each child's future: reports the child gone when the
/// future is dropped, whether it finished or was cancelled (even unpolled).
pub(super) struct LiveGuard<E> {
    pub(super) group: Rc<Inner<E>>,
    pub(super) child: Rc<ChildCell>,
}

impl<E> LiveGuard<E> {
    /// Child `index`'s future ended: `Ok(Ok(()))` if it succeeded (its value
    /// is in its handle's slot already), its error, or its panic's payload.
    pub(super) fn report(
        &self,
        index: usize,
        ended: Result<Result<(), E>, Box<dyn std::any::Any + Send>>,
    ) {
        match ended {
            Ok(Ok(())) => self.child.finish(Status::Succeeded),
            Ok(Err(e)) => self.group.fail(index, Failure::Error(e)),
            Err(panic) => self.group.fail(index, Failure::Panicked(panic.into())),
        }
    }
}

impl<E> Drop for LiveGuard<E> {
    fn drop(&mut self) {
        if self.child.status() == Status::Running {
            self.child.finish(Status::Cancelled);
        }
        let last = {
            let mut st = self.group.state.borrow_mut();
            st.live -= 1;
            st.live == 0
        };
        if last {
            self.group.wake_owner();
        }
    }
}

/// Held by the owner: if it is dropped before the group closed, cancel
/// every running child (rule 6 of `task_group`).
pub(super) struct AbortOnDrop<E>(pub(super) Rc<Inner<E>>);

impl<E> Drop for AbortOnDrop<E> {
    fn drop(&mut self) {
        let mut st = self.0.state.borrow_mut();
        if st.phase != Phase::Closed {
            for child in &st.children {
                if let Some(task) = child.task.get() {
                    task.cancel();
                }
            }
            st.phase = Phase::Closed;
            st.owner = None;
        }
    }
}
