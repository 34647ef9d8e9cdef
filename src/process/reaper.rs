//! The process-wide reaper: children whose [`Child`](super::Child) was
//! dropped while they ran (orphans) are reaped here when they exit, so none
//! stays a zombie.
//!
//! One thread per process (`coil-reaper`, started with the first orphan, and
//! again in a forked child) runs a coil loop on epoll with one task per
//! orphan; each task waits for its child's exit exactly as
//! [`Child::wait`](super::Child::wait) does ([`wait_exit`]: a pidfd of its
//! own, or SIGCHLD), so the reaper needs no second mechanism. Orphans reach
//! it through an unbounded channel, which any thread may send on, inside a
//! loop or not. Epoll, not io_uring: the thread inherits the seccomp filter
//! and limits of whichever thread started it, and a ring would cost memory
//! for a loop that mostly sleeps.

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coil_arch::DriverChoice;

use super::child::{Watch, wait_exit};
use crate::rt::Runtime;
use crate::sync::mpsc::{Receiver, UnboundedSender, unbounded_channel};

/// A child whose handle was dropped while it ran.
struct Orphan {
    child: std::process::Child,
    /// Its handle watched it through SIGCHLD: so does the reaper.
    sigchld: bool,
}

/// Orphans handed over and not reaped yet; [`DRAINED`] is notified when it
/// falls to zero.
///
/// Fork: this lock and [`sender`]'s are taken only to hand over an orphan
/// (a running `Child` dropped) and by `__wait_for_orphans`, never by a
/// spawn, an op, a timer or a runtime's construction. A child forked while
/// another thread held one of them (`sender`'s is held while the reaper
/// thread starts and builds its loop) would wait for it for good at its
/// first orphan; not handled (docs/reliability.md, section 2.5).
static PENDING: Mutex<usize> = Mutex::new(0);
static DRAINED: Condvar = Condvar::new();

/// Locks `m`; a poisoned lock is taken as it is (every critical section here
/// leaves its data consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands `child` (still running) to the reaper. If no reaper can be
/// started (no thread or no epoll fd left), a plain thread blocks in
/// `waitpid` for it; if not even that can start, it stays a zombie until this
/// process exits.
pub(crate) fn adopt(child: std::process::Child, sigchld: bool) {
    *lock(&PENDING) += 1;
    let mut orphan = Orphan { child, sigchld };
    if let Ok(tx) = sender() {
        match tx.send(orphan) {
            Ok(()) => return,
            Err(e) => orphan = e.0,
        }
    }
    let waiter = std::thread::Builder::new()
        .name("coil-reaper".into())
        .spawn(move || {
            let _ = orphan.child.wait();
            reaped();
        });
    if waiter.is_err() {
        reaped();
    }
}

/// One orphan was reaped (or given up on).
fn reaped() {
    let mut pending = lock(&PENDING);
    *pending -= 1;
    if *pending == 0 {
        DRAINED.notify_all();
    }
}

/// Waits until every child handed to the reaper so far has been reaped, at
/// most `timeout`; whether it got there. For tests (a zombie check after
/// dropping running children); not part of the API.
#[doc(hidden)]
pub fn __wait_for_orphans(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pending = lock(&PENDING);
    while *pending > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        pending = DRAINED
            .wait_timeout(pending, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

/// The sender to this process's reaper, started on first use (and again in
/// a forked child, where the parent's thread does not exist).
fn sender() -> io::Result<UnboundedSender<Orphan>> {
    static REAPER: Mutex<Option<(u32, UnboundedSender<Orphan>)>> = Mutex::new(None);
    let mut current = lock(&REAPER);
    let pid = std::process::id();
    if let Some((owner, tx)) = &*current
        && *owner == pid
    {
        return Ok(tx.clone());
    }
    let (tx, rx) = unbounded_channel();
    let (started_tx, started) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("coil-reaper".into())
        .spawn(
            move || match Runtime::builder().driver(DriverChoice::Epoll).build() {
                Ok(rt) => {
                    let _ = started_tx.send(Ok(()));
                    rt.block_on(serve(rx));
                }
                Err(e) => drop(started_tx.send(Err(e))),
            },
        )?;
    started
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the coil-reaper thread died")))?;
    *current = Some((pid, tx.clone()));
    Ok(tx)
}

/// The reaper loop's main future: a task per orphan; never ends (the
/// sender is kept in a static).
async fn serve(mut orphans: Receiver<Orphan>) {
    while let Some(mut orphan) = orphans.recv().await {
        drop(crate::spawn(async move {
            let watch = Watch::new(orphan.child.id(), orphan.sigchld);
            // An error (`ECHILD`: reaped by someone else) leaves nothing to wait for.
            let _ = wait_exit(&mut orphan.child, &watch).await;
            reaped();
        })); // detached: the loop runs it to its end
    }
}
