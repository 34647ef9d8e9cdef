//! [`spawn_blocking`]: run blocking code on a thread pool, like asyncio's
//! `to_thread` / `run_in_executor`.
//!
//! The pool is process-wide and bounded ([`MAX_THREADS`] threads); threads
//! start on demand and exit after [`IDLE_TIMEOUT`] without work. Jobs queue
//! when every thread is busy. The returned [`BlockingTask`] is a future that
//! can be awaited on any coil loop (the result comes back through an ordinary
//! waker), or dropped (the job still runs; its result is dropped).
//!
//! coil uses it itself for host-name resolution, and (under the epoll driver,
//! where regular files have no readiness) for file I/O.
//!
//! After `fork()` the child starts with an empty pool of its own (a
//! `pthread_atfork` handler forgets the parent's, whose threads do not exist
//! in the child); jobs the parent had queued are not run in the child.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::TaskError;

/// Most threads the pool runs at once.
pub const MAX_THREADS: usize = 64;
/// A pool thread with no work for this long exits.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

/// The process's pool. Null until first used, and again in the child of a
/// `fork()`: the parent's pool (its threads, its lock, its queue) does not
/// carry over to the child, which only has the forking thread. Its counts of
/// threads and idle threads would be lies there (a job queued for an idle
/// thread that does not exist would wait forever), and its lock may have been
/// held by a thread that is gone. So the child forgets it (leaks it: nothing
/// in it can be dropped safely) and builds its own on first use.
static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

/// `pthread_atfork` child handler: runs in the child right after `fork()`,
/// on the forking thread only. An atomic store is async-signal-safe.
extern "C" fn forget_pool_after_fork() {
    POOL.store(std::ptr::null_mut(), Ordering::Release);
}

fn pool() -> &'static Pool {
    let p = POOL.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: non-null values of POOL come from Box::into_raw below and
        // are never freed (a forgotten pool is leaked).
        return unsafe { &*p };
    }
    // Registered before a pool is published, so that a fork that copies
    // a non-null POOL runs the handler. Not a `Once`: a fork while another
    // thread was inside its `call_once` would leave it running for good in
    // the child, whose first job would wait for it. Two threads that find
    // it unregistered may both register: the handler only stores null, so
    // running it twice in a child does no harm.
    static AT_FORK: AtomicBool = AtomicBool::new(false);
    if !AT_FORK.load(Ordering::Acquire) {
        // SAFETY: registers a handler that only does an atomic store.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_pool_after_fork)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
        AT_FORK.store(true, Ordering::Release);
    }
    let new = Box::into_raw(Box::new(Pool {
        state: Mutex::new(PoolState::default()),
        work: Condvar::new(),
    }));
    match POOL.compare_exchange(
        std::ptr::null_mut(),
        new,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: `new` was just leaked into POOL, never freed.
        Ok(_) => unsafe { &*new },
        Err(current) => {
            // Another thread installed one first; ours was never shared.
            // SAFETY: `new` came from Box::into_raw and nobody else saw it.
            drop(unsafe { Box::from_raw(new) });
            // SAFETY: as for the fast path above.
            unsafe { &*current }
        }
    }
}

fn lock(p: &Pool) -> std::sync::MutexGuard<'_, PoolState> {
    p.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn worker(p: &'static Pool) {
    let mut st = lock(p);
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
            st = lock(p);
            continue;
        }
        st.idle += 1;
        let (guard, timeout) = p
            .work
            .wait_timeout(st, IDLE_TIMEOUT)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

fn submit(job: Job) {
    let p = pool();
    let mut st = lock(p);
    st.queue.push_back(job);
    // More queued jobs than idle threads to take them: start another thread
    // (so a burst of jobs that wait on each other cannot deadlock on a few
    // threads), up to the bound.
    if st.queue.len() > st.idle && st.threads < MAX_THREADS {
        st.threads += 1;
        drop(st);
        let spawned = std::thread::Builder::new()
            .name("coil-blocking".into())
            .spawn(move || worker(p));
        if spawned.is_err() {
            // Could not start a thread (resource limits): the job stays queued
            // for the existing threads; if there are none, run it here.
            let mut st = lock(p);
            st.threads -= 1;
            if st.threads == 0 {
                let job = st.queue.pop_back();
                drop(st);
                if let Some(job) = job {
                    job();
                }
            }
        }
    } else {
        drop(st);
        p.work.notify_one();
    }
}

struct Slot<T> {
    result: Option<Result<T, TaskError>>,
    waker: Option<Waker>,
}

/// Runs `f` on the blocking pool and returns a future of its result.
///
/// A panic in `f` is caught and returned as `Err(TaskError::Panicked)`.
/// Works inside or outside a runtime; the future may be awaited on any loop.
///
/// ```
/// let sum = coil::run(async {
///     coil::blocking::spawn_blocking(|| (1..=100u64).sum::<u64>()).await.unwrap()
/// });
/// assert_eq!(sum, 5050);
/// ```
pub fn spawn_blocking<F, T>(f: F) -> BlockingTask<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let shared = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
    }));
    let s2 = shared.clone();
    submit(Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f)).map_err(|p| TaskError::Panicked(p.into()));
        let waker = {
            let mut slot = s2.lock().unwrap_or_else(|e| e.into_inner());
            slot.result = Some(r);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }));
    BlockingTask { shared }
}

/// The future returned by [`spawn_blocking`].
#[must_use = "the job runs anyway; await the BlockingTask to get its result"]
pub struct BlockingTask<T> {
    shared: Arc<Mutex<Slot<T>>>,
}

impl<T> Future for BlockingTask<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        match slot.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl<T> fmt::Debug for BlockingTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTask").finish_non_exhaustive()
    }
}
