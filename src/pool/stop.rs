//! The shutdown protocol of a pool: the request, the signal entry futures
//! await, each loop's drain with its deadline, and the work count the drain
//! waits for (module docs of `pool`, "Shutdown").

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::{CoreId, PoolHandle, PoolShared};
use crate::sync::watch;

impl PoolHandle {
    /// Asks every loop to stop: [`shutdown_requested`] finishes on each, and
    /// each loop stops once its work has drained or `deadline` (from now) has
    /// passed, cancelling what is left. Returns at once; callable from any
    /// thread or loop, the pool's own included. A later request can only move
    /// the deadline earlier.
    pub fn request_shutdown(&self, deadline: Duration) {
        let at = Instant::now()
            .checked_add(deadline)
            .unwrap_or_else(far_future);
        self.shared.phase.send_if_modified(|phase| match phase {
            Some(old) if *old <= at => false,
            _ => {
                *phase = Some(at);
                true
            }
        });
    }

    /// Finishes once shutdown of this pool has been requested (at once if it
    /// was already). `Send`, usable on any loop or thread.
    pub fn shutdown_requested(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let rx = self.shared.phase.subscribe();
        async move { wait_requested(rx).await }
    }
}

/// Finishes once the pool whose loop runs this task has been asked to stop
/// (by [`PoolHandle::request_shutdown`], [`Pool::shutdown`](super::Pool::shutdown)
/// or dropping the pool): the signal an entry future awaits to stop
/// accepting and wind down before the drain deadline.
///
/// ```
/// use coil::pool::{self, Pool};
///
/// let pool = Pool::builder().loops(2).build()?;
/// let stopper = pool.handle().clone();
/// let out = pool.run(move |core| {
///     let stopper = stopper.clone();
///     async move {
///         if core.index() == 0 {
///             stopper.request_shutdown(std::time::Duration::from_secs(5));
///         }
///         pool::shutdown_requested().await;
///         Ok::<_, std::io::Error>(core.index())
///     }
/// });
/// assert_eq!(out.unwrap(), vec![0, 1]);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// When called on a thread that is not running one of a pool's loops (use
/// [`PoolHandle::shutdown_requested`] there).
#[track_caller]
pub fn shutdown_requested() -> impl Future<Output = ()> + Send + 'static {
    match super::current_shared() {
        Some((shared, _)) => PoolHandle { shared }.shutdown_requested(),
        None => panic!(
            "coil::pool::shutdown_requested() was called outside a pool's loop; \
             use PoolHandle::shutdown_requested() there"
        ),
    }
}

/// About 30 years from now: a deadline that `Duration::MAX` stands for.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

async fn wait_requested(mut rx: watch::Receiver<Option<Instant>>) {
    while rx.borrow_and_update().is_none() {
        if rx.changed().await.is_err() {
            // The pool is gone, which only happens after a shutdown.
            return;
        }
    }
}

/// The future each loop's `block_on` runs: wait for the request, then for
/// this loop's work to drain or the (possibly moved) deadline to pass.
pub(super) async fn home(shared: Arc<PoolShared>, core: CoreId) {
    let mut phase = shared.phase.subscribe();
    let mut work = shared.slots[core.0].work.subscribe();
    drop(shared);
    wait_requested(phase.clone()).await;
    loop {
        if *work.borrow_and_update() == 0 {
            return;
        }
        let Some(deadline) = *phase.borrow_and_update() else {
            unreachable!("the phase never goes back to running")
        };
        let mut work_changed = pin!(work.changed());
        let mut phase_changed = pin!(phase.changed());
        let changed = std::future::poll_fn(|cx| {
            // Either watch is closed only once the pool's state is gone,
            // which cannot happen while this loop runs; treat it as a change.
            if work_changed.as_mut().poll(cx).is_ready()
                || phase_changed.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(());
            }
            Poll::Pending
        });
        let deadline = crate::time::Instant::from_std(deadline);
        if crate::time::timeout_at(deadline, changed).await.is_err() {
            return;
        }
    }
}

/// One unit of a loop's work: counted from creation to drop.
pub(super) struct Work {
    shared: Arc<PoolShared>,
    core: CoreId,
}

impl Work {
    pub(super) fn new(handle: &PoolHandle, core: CoreId) -> Work {
        handle.slot(core).work.send_modify(|n| *n += 1);
        Work {
            shared: handle.shared.clone(),
            core,
        }
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        self.shared.slots[self.core.0].work.send_modify(|n| *n -= 1);
    }
}
