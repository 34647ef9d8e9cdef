//! The inside of a [`task_group`](super::task_group): its phase, its
//! children and their status, the failures so far, and the guards that
//! report a child gone (`LiveGuard`) and cancel the children when the owner
//! goes away (`AbortOnDrop`).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::task::Task;
use crate::task::failure::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The body runs or the owner waits for children; spawning is allowed.
    Open,
    /// A child failed (or the body panicked): the others are being cancelled.
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

pub(super) struct Child {
    /// `None` for a child refused during `Aborting`, and for a moment
    /// during `try_spawn`.
    pub(super) task: Option<Task<()>>,
    pub(super) status: Rc<Cell<Status>>,
}

pub(super) struct State<E> {
    pub(super) phase: Phase,
    /// In spawn order.
    pub(super) children: Vec<Child>,
    pub(super) failures: Vec<(usize, Failure<E>)>,
    /// Children whose future has not been dropped yet.
    pub(super) live: usize,
    /// The task awaiting `task_group`.
    pub(super) owner: Option<Waker>,
}

pub(super) struct Inner<E> {
    pub(super) state: RefCell<State<E>>,
}

impl<E> Inner<E> {
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

    /// Called from inside child `index`'s poll when it fails.
    pub(super) fn fail(&self, index: usize, failure: Failure<E>) {
        {
            let mut st = self.state.borrow_mut();
            st.children[index].status.set(Status::Failed);
            st.failures.push((index, failure));
        }
        self.abort(Some(index));
        self.wake_owner();
    }

    /// Enter `Aborting` (once) and cancel every running child but `except`.
    pub(super) fn abort(&self, except: Option<usize>) {
        let mut st = self.state.borrow_mut();
        if st.phase != Phase::Open {
            return;
        }
        st.phase = Phase::Aborting;
        for (i, child) in st.children.iter().enumerate() {
            if Some(i) != except
                && child.status.get() == Status::Running
                && let Some(task) = &child.task
            {
                task.cancel();
            }
        }
    }

    pub(super) async fn wait_for_children(&self) {
        poll_fn(|cx| {
            if self.state.borrow().live == 0 {
                return Poll::Ready(());
            }
            self.set_owner(cx.waker());
            Poll::Pending
        })
        .await;
    }
}

/// Lives inside each child's future: reports the child gone when the
/// future is dropped, whether it finished or was cancelled (even unpolled).
pub(super) struct LiveGuard<E> {
    pub(super) group: Rc<Inner<E>>,
    pub(super) status: Rc<Cell<Status>>,
}

impl<E> Drop for LiveGuard<E> {
    fn drop(&mut self) {
        if self.status.get() == Status::Running {
            self.status.set(Status::Cancelled);
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
/// every running child (rule 5).
pub(super) struct AbortOnDrop<E>(pub(super) Rc<Inner<E>>);

impl<E> Drop for AbortOnDrop<E> {
    fn drop(&mut self) {
        let inner = &self.0;
        let open = inner.state.borrow().phase == Phase::Open;
        if open {
            inner.abort(None);
        }
        let mut st = inner.state.borrow_mut();
        if st.phase != Phase::Closed {
            // Cancel again in case the group was already aborting.
            for child in &st.children {
                if let Some(task) = &child.task {
                    task.cancel();
                }
            }
            st.phase = Phase::Closed;
            st.owner = None;
        }
    }
}
