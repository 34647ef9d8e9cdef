//! Cooperative budget: a task that never sees `Pending` still yields.
//!
//! Each task poll starts with [`BUDGET`] units. Leaf futures that can be ready
//! many times in a row (joining finished tasks, elapsed timers, and later
//! channels and I/O) take one unit per ready result; when the budget is spent
//! they return `Pending` after waking the task, so the loop moves on and the
//! task runs again next tick. Outside a runtime the budget is unlimited.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::core::Core;

/// Units per task poll (tokio uses the same figure).
pub(crate) const BUDGET: u32 = 128;

/// A unit taken from the budget; returned unless [`Coop::made_progress`] is
/// called (a leaf that ends up `Pending` did not use it).
#[derive(Debug)]
pub(crate) struct Coop {
    taken: bool,
}

impl Coop {
    #[inline]
    pub(crate) fn made_progress(mut self) {
        self.taken = false;
    }
}

impl Drop for Coop {
    #[inline]
    fn drop(&mut self) {
        if self.taken {
            super::with_core(|core| {
                if let Some(core) = core {
                    core.budget.set(core.budget.get().saturating_add(1));
                }
            });
        }
    }
}

/// Take one unit, or wake the task and return `Pending` if none is left.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Coop> {
    super::with_core(|core| match core {
        None => Poll::Ready(Coop { taken: false }),
        Some(core) => {
            if spent(core, cx) {
                Poll::Pending
            } else {
                take(core);
                Poll::Ready(Coop { taken: true })
            }
        }
    })
}

/// The check of [`poll_proceed`] for a leaf that already holds the core and
/// takes its unit only once it knows it is ready (`Op`: an op the driver
/// finished during the submit): `true`, after waking the task, if the budget
/// is spent and the leaf must answer `Pending`.
#[inline]
pub(crate) fn spent(core: &Core, cx: &Context<'_>) -> bool {
    if core.budget.get() == 0 {
        cx.waker().wake_by_ref();
        true
    } else {
        false
    }
}

/// Take one unit; the caller saw [`spent`] answer `false` in this poll.
#[inline]
pub(crate) fn take(core: &Core) {
    core.budget.set(core.budget.get() - 1);
}

/// Takes one unit of the task's budget, yielding to the loop if it is spent.
///
/// Call it in a loop that might otherwise never return `Pending` (a tight loop
/// over an always-ready source), so that other tasks still run.
///
/// ```
/// coil::run(async {
///     for _ in 0..10_000 {
///         coil::task::consume_budget().await;
///     }
/// });
/// ```
pub fn consume_budget() -> ConsumeBudget {
    ConsumeBudget { _priv: () }
}

/// The future returned by [`consume_budget`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct ConsumeBudget {
    _priv: (),
}

impl Future for ConsumeBudget {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        std::task::ready!(poll_proceed(cx)).made_progress();
        Poll::Ready(())
    }
}
