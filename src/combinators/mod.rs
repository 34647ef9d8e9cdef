//! Running many futures at once: asyncio's `gather`, `wait`, `as_completed`,
//! `shield`, and a first-past-the-post `race`.
//!
//! | asyncio | coil | runs the futures |
//! |---|---|---|
//! | `await asyncio.gather(a, b)` | [`gather!(a, b).await`](crate::gather) → tuple; also named [`join!`](crate::join) | in the awaiting task |
//! | `gather(a, b)` raising the first error | [`try_join!(a, b).await`](crate::try_join) → `Result<(A, B), E>`, the others dropped | in the awaiting task |
//! | `await asyncio.gather(*aws)` | [`gather_all(aws).await`](gather_all) → `Vec` | in the awaiting task |
//! | `gather(*aws, return_exceptions=True)` | [`gather_settled`], or `gather_all` over [`Task`]s | in the awaiting task |
//! | `await asyncio.gather(*tasks)` | [`gather_tasks(tasks).await`](gather_tasks) → `Result<Vec<T>, TaskError>`: a failure returns at once and leaves the other tasks running; cancelling (dropping) the gather cancels them | spawned tasks |
//! | `gather(*tasks, return_exceptions=True)`, cancellable | [`gather_tasks(tasks).settled()`](GatherTasks::settled) | spawned tasks |
//! | `gather` failing fast | [`try_gather_all`] (drops the rest), [`try_gather_tasks`] (cancels and waits) | |
//! | `asyncio.wait(aws, timeout, return_when)` | [`wait`] with [`WaitFor`] | spawned tasks |
//! | `asyncio.as_completed(aws)` | [`as_completed`], a [`Stream`](crate::stream::Stream) of outputs | in the polling task |
//! | `asyncio.as_completed(tasks, timeout=)`, awaitables in any order | [`as_completed_tasks`] → [`NextCompleted`] futures | spawned tasks |
//! | `asyncio.shield(t)`, keeping `t` to await or cancel later | [`shield(&mut task)`](shield) (or `shield(task)`) | a spawned task |
//! | `wait(.., FIRST_COMPLETED)` + cancel the rest | [`race`], [`select`] → [`Either`] | in the awaiting task |
//! | `wait(.., FIRST_COMPLETED)`, a handler per awaitable, cancel the rest | [`select! { pat = fut => handler, .. }`](crate::select!) (patterns, `biased;`, `, if cond`, `else`) | in the awaiting task |
//!
//! **Spawned or not.** asyncio's `gather` wraps coroutines in tasks. coil's
//! `gather!` and `gather_all` do not: they poll the futures themselves,
//! inside whichever task awaits them, so the futures can borrow from the
//! caller and no allocation per future is needed (`gather_all` allocates
//! one slice). They still run concurrently: while one waits on a timer, the
//! others make progress. To get real tasks (that keep running if the caller
//! goes away), spawn first and gather the handles: `gather_all(handles)`.
//!
//! **Cancellation of plain futures is dropping them.** When [`race`],
//! [`select`], [`select!`](crate::select!), [`try_join!`](crate::try_join) or
//! [`try_gather_all`] give up on a future they drop it: it
//! stops at its current `.await` and its destructors run, before the
//! combinator returns. A dropped [`Task`] handle only detaches.

mod as_completed;
mod gather;
mod gather_tasks;
mod maybe_done;
mod select;
mod select_macro;
mod shield;
mod wait;

pub use crate::task::failure::Failure;

use std::pin::Pin;
use std::task::{Context, Poll};

use crate::task::{Task, TaskError};

/// Polls `task` for its result, taking it without spending coop budget when
/// the task has finished already. The budget stops futures that could be
/// ready forever from starving the loop; a task's result is taken once, and a
/// combinator collecting hundreds of finished tasks must see them all in one
/// poll (`wait` reports every task done, not the first 128).
pub(crate) fn poll_task<T>(task: &mut Task<T>, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
    if task.is_finished()
        && let Some(result) = task.try_take()
    {
        return Poll::Ready(result);
    }
    Pin::new(task).poll(cx)
}
pub use as_completed::{
    AsCompleted, AsCompletedTasks, NextCompleted, as_completed, as_completed_tasks,
};
pub use gather::{
    GatherAll, GatherSettled, TryGatherAll, gather_all, gather_settled, try_gather_all,
};
pub use gather_tasks::{
    GatherTasks, GatherTasksSettled, TryGatherTasks, gather_tasks, try_gather_tasks,
};
pub use maybe_done::MaybeDone;
pub use select::{Either, Race, Select, race, select};
pub use shield::{Shield, Shielded, shield};
pub use wait::{Completed, Wait, WaitFor, wait};
