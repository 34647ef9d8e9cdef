//! tokio's `task_combinations` matrix ported to coil (docs/reliability.md,
//! check 10): every combination of
//! - a future that panics in poll, in drop, both, or neither;
//! - an output that panics on drop, or not;
//! - the `Task` handle dropped at once, after the first poll, after
//!   completion, or awaited;
//! - `cancel()` never, before the first poll, after the first poll, after
//!   completion, or "during shutdown" (the runtime is dropped with the task
//!   still pending).
//!
//! A cancel point after the handle is gone cannot happen (coil has no
//! separate abort handle); those combinations are skipped and counted.
//!
//! What must hold in each: the future is dropped exactly once; the output is
//! created iff the future returned it (it neither panicked in poll nor was
//! cancelled first); a created output is dropped exactly once; awaiting gives
//! the right `Result` variant; and no panic escapes the loop, even an output
//! that panics on drop while the runtime owns it.

use crate::support;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use coil::{Runtime, Task, TaskError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FutKind {
    NoPanic,
    PanicOnPoll,
    PanicOnDrop,
    PanicOnPollAndDrop,
}

impl FutKind {
    fn panics_in_poll(self) -> bool {
        matches!(self, FutKind::PanicOnPoll | FutKind::PanicOnPollAndDrop)
    }
    fn panics_in_drop(self) -> bool {
        matches!(self, FutKind::PanicOnDrop | FutKind::PanicOnPollAndDrop)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JoinHandle {
    DropAtOnce,
    DropAfterFirstPoll,
    DropAfterCompletion,
    Await,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cancel {
    Never,
    BeforeFirstPoll,
    AfterFirstPoll,
    AfterCompletion,
    DuringShutdown,
}

const JOINS: [JoinHandle; 4] = [
    JoinHandle::DropAtOnce,
    JoinHandle::DropAfterFirstPoll,
    JoinHandle::DropAfterCompletion,
    JoinHandle::Await,
];
const CANCELS: [Cancel; 5] = [
    Cancel::Never,
    Cancel::BeforeFirstPoll,
    Cancel::AfterFirstPoll,
    Cancel::AfterCompletion,
    Cancel::DuringShutdown,
];

/// Counters shared by one combination's future and output.
#[derive(Default)]
struct Counts {
    polls: AtomicUsize,
    future_drops: AtomicUsize,
    outputs_created: AtomicUsize,
    output_drops: AtomicUsize,
}

/// The task's output; may panic when dropped.
struct Output {
    counts: Arc<Counts>,
    panic_on_drop: bool,
}

impl Drop for Output {
    fn drop(&mut self) {
        self.counts.output_drops.fetch_add(1, SeqCst);
        if self.panic_on_drop && !std::thread::panicking() {
            panic!("output drop");
        }
    }
}

/// Open once the test lets the future finish; holds the future's waker.
type Gate = Arc<Mutex<(bool, Option<Waker>)>>;

/// Pending on its first poll; once the gate opens, panics or returns an
/// [`Output`]. Counts polls and drops; may panic when dropped.
struct Fut {
    kind: FutKind,
    output_panics: bool,
    counts: Arc<Counts>,
    gate: Gate,
}

impl Future for Fut {
    type Output = Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Output> {
        self.counts.polls.fetch_add(1, SeqCst);
        {
            let mut gate = self.gate.lock().unwrap();
            if !gate.0 {
                gate.1 = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        if self.kind.panics_in_poll() {
            panic!("poll");
        }
        self.counts.outputs_created.fetch_add(1, SeqCst);
        Poll::Ready(Output {
            counts: self.counts.clone(),
            panic_on_drop: self.output_panics,
        })
    }
}

impl Drop for Fut {
    fn drop(&mut self) {
        self.counts.future_drops.fetch_add(1, SeqCst);
        if self.kind.panics_in_drop() && !std::thread::panicking() {
            panic!("drop");
        }
    }
}

fn open(gate: &Gate) {
    let waker = {
        let mut g = gate.lock().unwrap();
        g.0 = true;
        g.1.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// What awaiting the handle gave, with the output already dropped (its drop
/// panic, if any, caught: that is the awaiting code's business, not the loop's).
#[derive(Debug, PartialEq, Eq)]
enum Joined {
    Ok,
    Cancelled,
    Panicked(String),
}

fn joined(r: Result<Output, TaskError>) -> Joined {
    match r {
        Ok(out) => {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(out)));
            Joined::Ok
        }
        Err(TaskError::Panicked(p)) => Joined::Panicked(support::panic_msg(&*p.into_inner())),
        Err(e) if e.is_cancelled() => Joined::Cancelled,
        Err(e) => panic!("unexpected task error {e:?}"),
    }
}

use support::yield_until;

/// Runs one combination; `Ok(false)` if it is impossible (cancel after the
/// handle is gone), `Err` with what went wrong otherwise.
fn run_one(
    kind: FutKind,
    output_panics: bool,
    join: JoinHandle,
    cancel: Cancel,
) -> Result<bool, String> {
    let dropped_at = match join {
        JoinHandle::DropAtOnce => 0,
        JoinHandle::DropAfterFirstPoll => 1,
        JoinHandle::DropAfterCompletion | JoinHandle::Await => 2,
    };
    let cancel_at = match cancel {
        Cancel::Never | Cancel::DuringShutdown => 0,
        Cancel::BeforeFirstPoll => 0,
        Cancel::AfterFirstPoll => 1,
        Cancel::AfterCompletion => 2,
    };
    if cancel != Cancel::Never && cancel != Cancel::DuringShutdown && cancel_at > dropped_at {
        return Ok(false);
    }

    let counts = Arc::new(Counts::default());
    let gate: Gate = Arc::default();
    let fut = Fut {
        kind,
        output_panics,
        counts: counts.clone(),
        gate: gate.clone(),
    };
    let rt = Runtime::new().map_err(|e| format!("runtime: {e}"))?;
    let c = counts.clone();
    // The main future returns the handle if it must outlive the runtime.
    let body = async move {
        let mut handle: Option<Task<Output>> = Some(coil::spawn(fut));
        let cancel_now = |h: &Option<Task<Output>>, expect: bool| -> Result<(), String> {
            let got = h.as_ref().expect("handle alive at a cancel point").cancel();
            if got == expect {
                Ok(())
            } else {
                Err(format!("cancel() returned {got}, expected {expect}"))
            }
        };
        // Point 0: right after spawn, before the first poll.
        if cancel == Cancel::BeforeFirstPoll {
            cancel_now(&handle, true)?;
        }
        if join == JoinHandle::DropAtOnce {
            drop(handle.take());
        }
        // Point 1: after the first poll (the future is parked at the gate).
        let c1 = c.clone();
        yield_until(
            move || c1.polls.load(SeqCst) > 0 || c1.future_drops.load(SeqCst) > 0,
            50,
        )
        .await;
        if cancel == Cancel::BeforeFirstPoll && c.polls.load(SeqCst) != 0 {
            return Err("a task cancelled before its first poll was polled".to_string());
        }
        if cancel == Cancel::AfterFirstPoll {
            cancel_now(&handle, true)?;
        }
        if join == JoinHandle::DropAfterFirstPoll {
            drop(handle.take());
        }
        if cancel == Cancel::DuringShutdown {
            // Leave the task pending; dropping the runtime must cancel it.
            return Ok((handle, None));
        }
        // Point 2: let it finish.
        open(&gate);
        let c2 = c.clone();
        if !yield_until(move || c2.future_drops.load(SeqCst) > 0, 50).await {
            return Err("the task did not finish".to_string());
        }
        if cancel == Cancel::AfterCompletion {
            cancel_now(&handle, false)?;
        }
        let mut result = None;
        match join {
            JoinHandle::DropAfterCompletion => drop(handle.take()),
            JoinHandle::Await => result = Some(joined(handle.take().unwrap().await)),
            _ => {}
        }
        Ok((handle, result))
    };
    let out = catch_unwind(AssertUnwindSafe(|| rt.block_on(body)));
    let drop_rt = catch_unwind(AssertUnwindSafe(move || drop(rt)));
    let (handle, mut result) = match out {
        Err(p) => {
            return Err(format!(
                "a panic escaped block_on: {:?}",
                support::panic_msg(&*p)
            ));
        }
        Ok(r) => r?,
    };
    if let Err(p) = drop_rt {
        return Err(format!(
            "a panic escaped the runtime's drop: {:?}",
            support::panic_msg(&*p)
        ));
    }
    // Handles that outlive the runtime (shutdown cases): await or drop now.
    if let Some(h) = handle {
        match join {
            JoinHandle::Await => result = Some(joined(coil::run(h))),
            _ => drop(h),
        }
    }

    // ----- expectations -----
    let cancelled_first = matches!(
        cancel,
        Cancel::BeforeFirstPoll | Cancel::AfterFirstPoll | Cancel::DuringShutdown
    );
    let output_expected = !cancelled_first && !kind.panics_in_poll();
    let mut errs = Vec::new();
    let future_drops = counts.future_drops.load(SeqCst);
    if future_drops != 1 {
        errs.push(format!("future dropped {future_drops} times"));
    }
    let created = counts.outputs_created.load(SeqCst);
    if created != usize::from(output_expected) {
        errs.push(format!(
            "{created} outputs created, expected {}",
            usize::from(output_expected)
        ));
    }
    let output_drops = counts.output_drops.load(SeqCst);
    if output_drops != created {
        errs.push(format!(
            "output dropped {output_drops} times, created {created}"
        ));
    }
    if join == JoinHandle::Await {
        let want = if cancelled_first {
            if kind.panics_in_drop() {
                Joined::Panicked("drop".into())
            } else {
                Joined::Cancelled
            }
        } else if kind.panics_in_poll() {
            Joined::Panicked("poll".into())
        } else if kind.panics_in_drop() {
            Joined::Panicked("drop".into())
        } else {
            Joined::Ok
        };
        if result.as_ref() != Some(&want) {
            errs.push(format!("awaiting gave {result:?}, expected {want:?}"));
        }
    }
    if errs.is_empty() {
        Ok(true)
    } else {
        Err(errs.join("; "))
    }
}

/// Runs the matrix for one future kind; returns (ran, skipped).
fn matrix(kind: FutKind) -> (usize, usize) {
    let (mut ran, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for output_panics in [false, true] {
        for join in JOINS {
            for cancel in CANCELS {
                match run_one(kind, output_panics, join, cancel) {
                    Ok(true) => ran += 1,
                    Ok(false) => skipped += 1,
                    Err(e) => {
                        ran += 1;
                        failures.push(format!(
                            "{kind:?} output_panics={output_panics} {join:?} cancel={cancel:?}: {e}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} combinations failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (ran, skipped)
}

#[test]
fn combinations_no_panic() {
    support::run_watched(|| {
        let (ran, skipped) = matrix(FutKind::NoPanic);
        assert_eq!((ran, skipped), (34, 6), "34 possible combinations of 40");
    });
}

#[test]
fn combinations_panic_on_poll() {
    support::run_watched(|| {
        let (ran, skipped) = matrix(FutKind::PanicOnPoll);
        assert_eq!((ran, skipped), (34, 6), "34 possible combinations of 40");
    });
}

#[test]
fn combinations_panic_on_drop() {
    support::run_watched(|| {
        let (ran, skipped) = matrix(FutKind::PanicOnDrop);
        assert_eq!((ran, skipped), (34, 6), "34 possible combinations of 40");
    });
}

#[test]
fn combinations_panic_on_poll_and_drop() {
    support::run_watched(|| {
        let (ran, skipped) = matrix(FutKind::PanicOnPollAndDrop);
        assert_eq!((ran, skipped), (34, 6), "34 possible combinations of 40");
    });
}
