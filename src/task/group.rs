//! [`TaskGroup`] and [`task_group`]: structured concurrency with asyncio
//! 3.11's `TaskGroup` semantics. This file owns the group's entry point
//! and its handle; `group/state.rs` the shared state and guards,
//! `group/child.rs` the child handle ([`GroupTask`]), `group/error.rs` what
//! a group reports ([`TaskGroupError`], [`GroupClosed`]).
//!
//! ```
//! use coil::{TaskGroup, task_group};
//!
//! let (a, b) = coil::run(async {
//!     let (mut a, mut b) = task_group(|tg: TaskGroup| async move {
//!         let a = tg.spawn(async { 1 });
//!         let b = tg.spawn(async { "two" });
//!         Ok((a, b))
//!     })
//!     .await
//!     .expect("no child failed");
//!     // Leaving the group waited for both children.
//!     (a.take().unwrap(), b.take().unwrap())
//! });
//! assert_eq!((a, b), (1, "two"));
//! ```
//!
//! The rules are documented on [`task_group`].

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::catch_unwind::CatchUnwind;
use super::failure::Failure;

mod child;
mod error;
mod state;

pub use self::child::{GroupTask, GroupTaskBuilder, GroupTaskError};
pub use self::error::{GroupClosed, TaskGroupError};
use self::state::{AbortOnDrop, ChildCell, Inner, LiveGuard, Phase, Status};

/// Runs `body` with a new [`TaskGroup`], then waits for all of the group's
/// children: asyncio's `async with asyncio.TaskGroup() as tg:`.
///
/// The body returns `Result<T, E>`, so `?` works inside it as an exception
/// does inside the `async with` block. `task_group` returns `Ok(T)` once
/// every child has finished, or the aggregated failures if the body
/// returned an error or a child failed (after cancelling and awaiting the
/// other children). The exact rules are below.
///
/// The group's error type `E` (of the body and of children started with
/// [`TaskGroup::try_spawn`]) is usually given by annotating the closure's
/// parameter: `|tg: TaskGroup<MyError>|`, or `|tg: TaskGroup|` when nothing
/// returns errors (`E` then defaults to `Infallible`).
///
/// ```
/// use std::time::Duration;
/// use coil::{Failure, TaskGroup, task_group, time::sleep};
///
/// coil::run(async {
///     let err = task_group(|tg: TaskGroup<String>| async move {
///         tg.spawn(async { sleep(Duration::from_secs(3600)).await });
///         tg.try_spawn(async { Err::<(), _>("no such user".to_string()) });
///         Ok(())
///     })
///     .await
///     .unwrap_err();
///     // The hour-long sibling was cancelled, not waited for.
///     assert_eq!(err.cancelled(), [0]);
///     assert!(matches!(&err.failures()[..], [(1, Failure::Error(e))] if e == "no such user"));
/// });
/// ```
///
/// # Semantics, precisely
///
/// `task_group(body)` creates a group, calls `body` with a [`TaskGroup`]
/// handle and awaits the future it returns (the *body*) **in the current
/// task** (the *owner*). Children spawned with [`TaskGroup::spawn`] /
/// [`try_spawn`] are real tasks on the current loop; they start on the
/// loop's next tick.
///
/// 1. **Leaving waits for all.** When the body returns `Ok`, `task_group`
///    keeps waiting until every child has finished, then returns
///    `Ok(value)`. Each child's value is in its [`GroupTask`] handle.
/// 2. **A failure cancels the rest.** A child *fails* if it panics, or,
///    when spawned with [`try_spawn`], returns `Err`. From that moment the
///    group is *shutting down*: it starts no new child (rule 5), and when
///    the owner next runs (the failing child wakes it) it drops the body at
///    the `.await` it was suspended on and cancels every child still
///    running ([`Task::cancel`]). `task_group` then waits until every
///    cancelled child's future has been dropped (their destructors have
///    run) and returns `Err(TaskGroupError)`.
/// 3. **An error returned by the body** (`?` inside it) does the same at
///    once: every running child is cancelled, `task_group` waits for them
///    and returns `Err`, with the body's error in
///    [`TaskGroupError::body_error`], as asyncio puts the block's exception
///    in the `ExceptionGroup`.
/// 4. **Failures are aggregated**, like `ExceptionGroup`: the error lists
///    each child failure with the child's spawn index, in the order they
///    happened. Like asyncio, which cancels from the failed task's done
///    callback, the cancellation takes effect when the owner runs, so every
///    child already due to run on the tick of the first failure still runs
///    and its failure is reported too (two children failing on their first
///    poll are both reported). The error also lists which children were
///    cancelled. A child that finished successfully keeps its value even
///    when the group fails.
/// 5. **Spawning on a group that is shutting down or finished** starts
///    nothing. [`TaskGroup::spawn`] / [`try_spawn`] panic, saying so, at the
///    caller's line (asyncio raises `RuntimeError`: "TaskGroup is shutting
///    down" / "TaskGroup is finished");
///    [`tg.builder().spawn(..)`](TaskGroup::builder) returns the same as
///    `Err(GroupClosed)`. A group is finished once `task_group` has
///    returned; a handle cloned out of the body outlived its group.
/// 6. **Dropping the owner** (the future `task_group` returned, for instance
///    because the task awaiting it was cancelled) cancels every child that
///    is still running. Drop cannot wait, so the children's futures are
///    dropped when the loop next gets to them (the next tick), not before
///    the drop returns.
/// 7. **A panic in the body** cancels the children, waits for them like a
///    failure does, and then resumes the panic in the awaiting task.
/// 8. **Children are tasks.** A [`GroupTask`] can be awaited for the
///    child's value, cancelled alone ([`GroupTask::cancel`]; a cancelled
///    child is not a failure, as asyncio does not count a child's
///    `CancelledError`), and named ([`TaskGroup::builder`]).
/// 9. **Cancel requests** (decision 0010). A child spawned with
///    `tg.builder().cooperative_cancel()` gets the group's cancellation as a
///    request, so its cleanup can `.await`; the group waits for it as for
///    any child (rules 2 and 3). When the owner is itself a task that
///    answers requests and one arrives while the body waits (or while
///    `task_group` waits for the children), the body is dropped there,
///    every child is cancelled and waited for, and
///    the cancellation is raised on after the children stopped, as
///    asyncio's group re-raises `CancelledError`: to the enclosing
///    [`cancellable`](crate::task::cancellable) scope or expired
///    [`timeout`](crate::time::timeout) being polled, if there is one and
///    no child failed (its output becomes `Err`); otherwise `task_group`
///    returns `Err` (with the failures, if any), with
///    [`TaskGroupError::into_cancelled`] giving the request back, to handle
///    or [`reraise`](crate::task::Cancelled::reraise).
///    When the owner is dropped instead (rule 6), cooperative children get
///    a request too, and clean up after the drop has returned.
///
/// The handle is an `Rc`, so children may capture a clone and spawn
/// siblings, as in asyncio.
///
/// [`try_spawn`]: TaskGroup::try_spawn
/// [`Task::cancel`]: crate::task::TaskHandle::cancel
pub async fn task_group<T, E, F, Fut>(body: F) -> Result<T, TaskGroupError<E>>
where
    E: 'static,
    F: FnOnce(TaskGroup<E>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    // Only this shell depends on `T`, `F` and `Fut`; the group itself
    // (`run_group`) is compiled once per error type.
    let group = TaskGroup {
        inner: Rc::new(Inner::new()),
    };
    let inner = group.inner.clone();
    let _abort_on_drop = AbortOnDrop(inner.clone());
    let mut output = None;
    {
        let slot = &mut output;
        let body = body(group);
        let body = std::pin::pin!(Some(async move {
            *slot = Some(body.await?);
            Ok(())
        }));
        run_group(&inner, BodyRef(body)).await?;
    }
    Ok(super::erased::ready(output))
}

/// [`task_group`] past the call of its body, which `body` polls and drops.
async fn run_group<E: 'static>(
    inner: &Rc<Inner<E>>,
    body: BodyRef<'_, E>,
) -> Result<(), TaskGroupError<E>> {
    // Run the body until it finishes or a child fails (rule 2).
    let mut body = Some(CatchUnwind::new(super::cancellable(body)));
    let outcome = poll_fn(|cx| {
        if inner.state.borrow().phase != Phase::Open {
            return Poll::Ready(None);
        }
        inner.set_owner(cx.waker());
        let body = body.as_mut().expect("polled only until it finishes");
        inner.in_node(|| Pin::new(body).poll(cx).map(Some))
    })
    .await;
    drop(body); // a body still running is cancelled here

    let mut owner_cancelled = None;
    let output = match outcome {
        Some(Ok(Ok(Ok(())))) => Some(()),
        Some(Ok(Ok(Err(e)))) => {
            inner.state.borrow_mut().body_error = Some(e);
            inner.abort();
            None
        }
        Some(Ok(Err(cancelled))) => {
            owner_cancelled = Some(Box::new(cancelled));
            inner.abort();
            None
        }
        Some(Err(panic)) => {
            inner.abort();
            inner.wait_for_children().await;
            inner.state.borrow_mut().phase = Phase::Closed;
            std::panic::resume_unwind(panic);
        }
        None => None,
    };

    // A request reaching the owner while it waits for the children cancels
    // them too (rule 9), as asyncio's `__aexit__` does.
    if let Err(c) = super::cancellable(inner.wait_for_children()).await {
        owner_cancelled.get_or_insert(Box::new(c));
        inner.abort();
        inner.wait_for_children().await;
    }
    inner.state.borrow_mut().phase = Phase::Closed;
    let failed = !inner.state.borrow().failures.is_empty();
    if let Some(c) = owner_cancelled.take_if(|_| !failed && super::catching()) {
        // An enclosing scope catches the cancellation (rule 9): raise it
        // there, as asyncio's group re-raises `CancelledError` (only when
        // no child failed: else, as asyncio, the failures are the answer).
        return c.reraise().await;
    }
    let mut st = inner.state.borrow_mut();
    match output {
        Some(()) if st.failures.is_empty() && owner_cancelled.is_none() => Ok(()),
        _ => {
            let cancelled = st
                .children
                .iter()
                .enumerate()
                .filter(|(_, c)| c.status() == Status::Cancelled)
                .map(|(i, _)| i)
                .collect();
            let body = match &owner_cancelled {
                Some(_) => Some(Failure::Cancelled),
                None => st.body_error.take().map(Failure::Error),
            };
            Err(TaskGroupError {
                body,
                owner_cancelled,
                failures: std::mem::take(&mut st.failures),
                cancelled,
            })
        }
    }
}

/// The body of a [`task_group`] (its future, until dropped), as the group
/// polls it: `Ok(())` once it returned `Ok` (the value went to the shell).
trait GroupBody<E> {
    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>>;
    /// Drops the body's future in place.
    fn drop_body(self: Pin<&mut Self>);
}

impl<E, B: Future<Output = Result<(), E>>> GroupBody<E> for Option<B> {
    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        match self.as_pin_mut() {
            Some(body) => body.poll(cx),
            None => unreachable!("the body is polled only until it is dropped"),
        }
    }

    fn drop_body(mut self: Pin<&mut Self>) {
        self.set(None);
    }
}

/// A [`GroupBody`] as a future, owning the body: dropping it drops the
/// body's future, where dropping the future itself did before (when the
/// body finishes, is cancelled, or the group's future is dropped).
struct BodyRef<'a, E>(Pin<&'a mut dyn GroupBody<E>>);

impl<E> Future for BodyRef<'_, E> {
    type Output = Result<(), E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll_body(cx)
    }
}

impl<E> Drop for BodyRef<'_, E> {
    fn drop(&mut self) {
        self.0.as_mut().drop_body();
    }
}

/// A handle to spawn children into a running [`task_group`].
///
/// Cloning it is cheap (an `Rc`); every clone spawns into the same group.
/// `E` is the error type of the body and of children started with
/// [`TaskGroup::try_spawn`].
pub struct TaskGroup<E = Infallible> {
    inner: Rc<Inner<E>>,
}

impl<E> Clone for TaskGroup<E> {
    fn clone(&self) -> Self {
        TaskGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E: 'static> TaskGroup<E> {
    /// Spawns a child whose failure can only be a panic:
    /// `tg.create_task(coro)`.
    ///
    /// The child starts on the loop's next tick. Await the returned
    /// [`GroupTask`] for its value, or read it after the group.
    ///
    /// # Panics
    ///
    /// If the group is shutting down or finished (rule 5 of [`task_group`];
    /// [`TaskGroup::builder`] returns that as an `Err` instead), and
    /// outside a coil runtime.
    #[track_caller]
    pub fn spawn<T, F>(&self, future: F) -> GroupTask<T>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.try_spawn(async move { Ok(future.await) })
    }

    /// Spawns a child that fails the group if it returns `Err`.
    ///
    /// # Panics
    ///
    /// As [`TaskGroup::spawn`].
    #[track_caller]
    pub fn try_spawn<T, F>(&self, future: F) -> GroupTask<T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        match self.start(super::Builder::new(), future) {
            Ok(task) => task,
            Err(closed) => panic!("{closed}: {}", closed.advice()),
        }
    }

    /// Options for the next child: a name, and an `Err` instead of a panic
    /// when the group no longer takes children.
    pub fn builder(&self) -> GroupTaskBuilder<'_, E> {
        GroupTaskBuilder {
            group: self,
            task: super::Builder::new(),
        }
    }

    /// Spawns child number `children.len()`, unless the group is past
    /// `Open`.
    #[track_caller]
    fn start<T, F>(&self, builder: super::Builder, future: F) -> Result<GroupTask<T>, GroupClosed>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        let (child, index, guard) = self.register()?;
        let value = Rc::new(std::cell::RefCell::new(None));
        let slot = value.clone();
        let task = builder.spawn(async move {
            let guard = guard;
            let ended = match CatchUnwind::new(future).await {
                Ok(Ok(v)) => {
                    *slot.borrow_mut() = Some(v);
                    Ok(Ok(()))
                }
                Ok(Err(e)) => Ok(Err(e)),
                Err(panic) => Err(panic),
            };
            guard.report(index, ended);
        });
        if child.task.set(task).is_err() {
            unreachable!("a child's task is set once");
        }
        Ok(GroupTask {
            child,
            value,
            index,
        })
    }

    /// The part of [`TaskGroup::start`] that does not depend on the child's
    /// future: takes child number `children.len()` in, unless the group is
    /// past `Open`, and makes the guard its future will hold.
    fn register(&self) -> Result<(Rc<ChildCell>, usize, LiveGuard<E>), GroupClosed> {
        let child = Rc::new(ChildCell::new());
        let index = {
            let mut st = self.inner.state.borrow_mut();
            match st.phase {
                Phase::Open => {}
                Phase::Aborting => return Err(GroupClosed::ShuttingDown),
                Phase::Closed => return Err(GroupClosed::Finished),
            }
            st.live += 1;
            st.children.push(child.clone());
            st.children.len() - 1
        };
        // Created before the task so that a child cancelled before its first
        // poll still reports in when its (never polled) future is dropped.
        let guard = LiveGuard {
            group: self.inner.clone(),
            child: child.clone(),
        };
        Ok((child, index, guard))
    }

    /// How many children have been spawned into the group so far.
    pub fn len(&self) -> usize {
        self.inner.state.borrow().children.len()
    }

    /// True if no child has been spawned yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the group takes no new children: a child failed or the
    /// body returned an error or panicked (the group is cancelling the
    /// others), or the group has finished.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.state.borrow().phase != Phase::Open
    }
}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state.borrow();
        f.debug_struct("TaskGroup")
            .field("phase", &st.phase)
            .field("children", &st.children.len())
            .field("running", &st.live)
            .field("failures", &st.failures.len())
            .finish()
    }
}
