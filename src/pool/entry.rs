//! [`Pool::run`]: one entry future per loop, and [`PoolError`], the first
//! failure with the core it came from.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;

use super::remote::CancelOnDrop;
use super::stop::Work;
use super::{CoreId, Pool};
use crate::task::{Cancelled, PanicPayload, TaskError};

impl Pool {
    /// Runs `entry(core)` on every loop and blocks until all have finished.
    ///
    /// `entry` is called on each loop's own thread, so the future it returns
    /// need not be `Send` (it may hold `Rc`s, the loop's sockets, ...); only
    /// its output crosses back. Each entry future counts as its loop's work
    /// (see [`shutdown_requested`](super::shutdown_requested)).
    ///
    /// Returns the outputs in core order, or the **first** failure (in the
    /// order they happened) with its core: an `Err` the entry returned, a
    /// panic, or a cancellation (a loop stopped by the drain deadline before
    /// its entry finished). The first failure also requests a shutdown of the
    /// pool with the builder's [`drain_timeout`](super::Builder::drain_timeout),
    /// so the other entries are asked to stop; `run` still waits for them.
    ///
    /// The loops keep running after `run` returns (unless a shutdown was
    /// requested): `run` may be called again, and tasks spawned by the entries
    /// keep running until the pool stops.
    ///
    /// # Panics
    ///
    /// Inside a running event loop, which it would block.
    #[track_caller]
    pub fn run<F, Fut, T, E>(&self, entry: F) -> Result<Vec<T>, PoolError<E>>
    where
        F: Fn(CoreId) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        crate::rt::assert_not_in_loop("Pool::run");
        let entry = Arc::new(entry);
        let (tx, rx) = mpsc::channel();
        // Every entry counts as its loop's work before any starts: an entry
        // that requests a shutdown at once must not find another loop idle
        // (drained) whose entry is still on its way.
        let works: Vec<Work> = self.cores().map(|core| Work::new(self, core)).collect();
        for (core, work) in self.cores().zip(works) {
            let entry = entry.clone();
            let report = Report {
                core,
                tx: Some(tx.clone()),
            };
            // Detached: the Report says how it ended, even if it never ran.
            drop(self.loop_handle(core).spawn(async move {
                let _work = work;
                let mut report = report;
                // Made on the loop's thread, inside its own task: the entry
                // future stays there, and a panic of `entry` itself is the
                // task's panic.
                let mut task = CancelOnDrop(crate::task::spawn(async move { entry(core).await }));
                let result = match task.await_result().await {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(PoolError::Failed { core, error: e }),
                    Err(error) => Err(PoolError::Task { core, error }),
                };
                report.send(result);
            }));
        }
        drop(tx);
        let mut values: Vec<Option<T>> = self.cores().map(|_| None).collect();
        let mut first = None;
        for (core, result) in rx {
            match result {
                Ok(v) => values[core.0] = Some(v),
                Err(e) => {
                    if first.is_none() {
                        self.request_shutdown(self.handle.shared.drain_timeout);
                        first = Some(e);
                    }
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(values
                .into_iter()
                .map(|v| v.expect("every loop reports its entry once"))
                .collect()),
        }
    }
}

/// The result of one entry: the core and the outcome.
type Outcome<T, E> = (CoreId, Result<T, PoolError<E>>);

/// Sends one entry's outcome; if dropped unsent (the loop stopped before the
/// entry finished, or before its wrapper ran), reports it cancelled.
struct Report<T, E> {
    core: CoreId,
    tx: Option<mpsc::Sender<Outcome<T, E>>>,
}

impl<T, E> Report<T, E> {
    fn send(&mut self, result: Result<T, PoolError<E>>) {
        if let Some(tx) = self.tx.take() {
            // `run` waits for every sender: the receiver is alive.
            let _ = tx.send((self.core, result));
        }
    }
}

impl<T, E> Drop for Report<T, E> {
    fn drop(&mut self) {
        let error = TaskError::Cancelled(Cancelled {
            task: None,
            message: Some("the pool's loop stopped before the entry finished".into()),
        });
        let core = self.core;
        self.send(Err(PoolError::Task { core, error }));
    }
}

/// The first failure of [`Pool::run`], naming the core it came from.
pub enum PoolError<E> {
    /// The entry future of `core` returned `Err(error)`.
    Failed {
        /// The loop whose entry failed.
        core: CoreId,
        /// What it returned.
        error: E,
    },
    /// The entry task of `core` panicked, or was cancelled because its loop
    /// stopped (the drain deadline passed) before it finished.
    Task {
        /// The loop whose entry panicked or was cancelled.
        core: CoreId,
        /// The panic or the cancellation.
        error: TaskError,
    },
}

impl<E> PoolError<E> {
    /// The loop the failure came from.
    pub fn core(&self) -> CoreId {
        match self {
            PoolError::Failed { core, .. } | PoolError::Task { core, .. } => *core,
        }
    }

    /// Whether the entry panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, PoolError::Task { error, .. } if error.is_panic())
    }

    /// The panic payload, if the entry panicked.
    pub fn panic(&self) -> Option<&PanicPayload> {
        match self {
            PoolError::Task { error, .. } => error.panic(),
            PoolError::Failed { .. } => None,
        }
    }

    /// Resumes the entry's panic on this thread; returns `self` otherwise.
    pub fn resume_panic(self) -> Self {
        match self {
            PoolError::Task { error, core } => match error.try_into_panic() {
                Ok(p) => std::panic::resume_unwind(p),
                Err(error) => PoolError::Task { core, error },
            },
            e => e,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for PoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Failed { core, error } => f
                .debug_struct("Failed")
                .field("core", core)
                .field("error", error)
                .finish(),
            PoolError::Task { core, error } => f
                .debug_struct("Task")
                .field("core", core)
                .field("error", error)
                .finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for PoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Failed { core, error } => write!(f, "the entry of {core} failed: {error}"),
            PoolError::Task { core, error } => write!(f, "the entry of {core}: {error}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for PoolError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Failed { error, .. } => Some(error),
            PoolError::Task { error, .. } => Some(error),
        }
    }
}
