//! What `.await` compiles to: an `async fn` and the state machine written by hand.
//!
//! `docs/how-await-works.md` walks through this file. It defines
//!
//! - [`sum_job`], a small `async fn`: spawn a child task, sleep, join the child,
//!   return a sum;
//! - [`SumJob`], the same thing as a hand-written `enum` state machine that
//!   implements `Future` itself, roughly what the compiler generates;
//! - [`Countdown`], a hand-written *leaf* future (it awaits nothing; it talks
//!   to the waker directly).
//!
//! `main` runs both versions of the job on coil and asserts that they produce
//! the same sum and the same trace of events, poll by poll. `tests/rt/docs_await.rs`
//! includes this file and checks the same things.
//!
//! ```text
//! cargo run --example handwritten_future
//! ```

use std::cell::RefCell;
use std::fmt::Debug;
use std::future::{Future, poll_fn};
use std::mem;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use coil::Task;
use coil::time::{Instant, Sleep, sleep};

/// How long the job sleeps.
pub(crate) const PAUSE: Duration = Duration::from_millis(2);

/// The trace both versions of the job must produce for `a = 3, b = 7`.
pub(crate) const EXPECTED_TRACE: &[&str] = &[
    "created: nothing has run yet",
    "start",
    "poll 1: Pending",
    "child: 7 squared",
    "slept",
    "joined 49",
    "poll 2: Ready(52)",
];

/// A shared, append-only list of events, in the order they happened.
///
/// `Rc` and `RefCell` are fine: a coil loop and all its tasks live on one
/// thread, so `coil::spawn` does not ask for `Send`.
#[derive(Clone, Default)]
pub(crate) struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub(crate) fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }

    pub(crate) fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

// ---------------------------------------------------------------------------
// 1. The async fn.
// ---------------------------------------------------------------------------

/// Spawns a child that squares `b`, sleeps for [`PAUSE`], joins the child and
/// returns `a + b²`.
pub(crate) async fn sum_job(log: Log, a: u64, b: u64) -> u64 {
    log.push("start");
    let child: Task<u64> = coil::spawn(square(log.clone(), b));
    sleep(PAUSE).await; // await point 1
    log.push("slept");
    let sq = child.await.expect("the child task failed"); // await point 2
    log.push(format!("joined {sq}"));
    a + sq
}

/// The child task. It has no await point: it runs to the end in one poll.
async fn square(log: Log, x: u64) -> u64 {
    log.push(format!("child: {x} squared"));
    x * x
}

// ---------------------------------------------------------------------------
// 2. The same job, written as the state machine the compiler makes of it.
// ---------------------------------------------------------------------------

/// `sum_job` by hand. Creating one runs nothing: all work happens in `poll`.
pub(crate) fn sum_job_by_hand(log: Log, a: u64, b: u64) -> SumJob {
    SumJob {
        state: State::Unresumed { log, a, b },
    }
}

/// The future [`sum_job_by_hand`] returns.
pub(crate) struct SumJob {
    state: State,
}

/// One variant per place the function can be suspended, holding exactly what
/// the rest of the body still needs at that point.
enum State {
    /// Created, never polled: only the arguments exist.
    Unresumed { log: Log, a: u64, b: u64 },
    /// Suspended at await point 1. `b` is gone (moved into the child); the
    /// child's handle and the timer are new.
    Sleeping {
        log: Log,
        a: u64,
        child: Task<u64>,
        sleep: Sleep,
    },
    /// Suspended at await point 2. The timer has been dropped.
    Joining { log: Log, a: u64, child: Task<u64> },
    /// Finished, or a poll panicked half-way: polling again is a bug.
    Returned,
}

impl Future for SumJob {
    type Output = u64;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        // `SumJob` is `Unpin` (no field borrows another), so the pin can be
        // undone safely. The compiler's version cannot do this; see the chapter.
        let state = &mut self.get_mut().state;
        loop {
            match state {
                State::Unresumed { .. } => {
                    // Take the variant's fields out; leaving `Returned` behind
                    // also "poisons" the future if the code below panics.
                    let State::Unresumed { log, a, b } = mem::replace(state, State::Returned)
                    else {
                        unreachable!()
                    };
                    log.push("start");
                    let child = coil::spawn(square(log.clone(), b));
                    *state = State::Sleeping {
                        log,
                        a,
                        child,
                        sleep: sleep(PAUSE),
                    };
                    // Fall through: a fresh future is polled at once.
                }
                State::Sleeping { sleep, .. } => {
                    if Pin::new(sleep).poll(cx).is_pending() {
                        // The Sleep filed a clone of cx.waker() with the
                        // timing wheel; stay in this state and come back
                        // when it fires.
                        return Poll::Pending;
                    }
                    let State::Sleeping { log, a, child, .. } =
                        mem::replace(state, State::Returned)
                    else {
                        unreachable!()
                    };
                    log.push("slept");
                    *state = State::Joining { log, a, child };
                }
                State::Joining { child, .. } => {
                    let Poll::Ready(joined) = Pin::new(child).poll(cx) else {
                        // The Task keeps a clone of cx.waker() as its join waker.
                        return Poll::Pending;
                    };
                    let State::Joining { log, a, .. } = mem::replace(state, State::Returned) else {
                        unreachable!()
                    };
                    let sq = joined.expect("the child task failed");
                    log.push(format!("joined {sq}"));
                    return Poll::Ready(a + sq);
                }
                State::Returned => panic!("`async fn` resumed after completion"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 3. A leaf future: no inner future, it uses the waker itself.
// ---------------------------------------------------------------------------

/// Returns `Pending` `n` times, asking to be polled again each time; then
/// completes with its name. A generalised `coil::task::yield_now`.
pub(crate) struct Countdown {
    name: &'static str,
    left: u32,
    log: Log,
}

impl Countdown {
    pub(crate) fn new(name: &'static str, n: u32, log: Log) -> Countdown {
        Countdown { name, left: n, log }
    }
}

impl Future for Countdown {
    type Output = &'static str;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        if self.left == 0 {
            self.log.push(format!("{}: liftoff", self.name));
            return Poll::Ready(self.name);
        }
        self.log.push(format!("{}: {}", self.name, self.left));
        self.left -= 1;
        // "Poll me again." The task is running, so this only sets SCHEDULED;
        // the loop re-queues the task after this poll, behind the others.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------
// Running them.
// ---------------------------------------------------------------------------

/// What one run of a job produced.
pub(crate) struct Run {
    pub(crate) sum: u64,
    pub(crate) trace: Vec<String>,
    pub(crate) elapsed: Duration,
}

/// Awaits `fut`, recording in `log` what every poll of it returned.
async fn traced<F>(log: Log, fut: F) -> F::Output
where
    F: Future,
    F::Output: Debug,
{
    let mut fut = pin!(fut);
    let mut polls = 0;
    poll_fn(|cx| {
        polls += 1;
        let res = fut.as_mut().poll(cx);
        log.push(format!("poll {polls}: {res:?}"));
        res
    })
    .await
}

/// Builds the job with `make`, then runs it as a task on a fresh loop.
fn run_job<F>(make: impl FnOnce(Log, u64, u64) -> F) -> Run
where
    F: Future<Output = u64> + 'static,
{
    let log = Log::default();
    let job = make(log.clone(), 3, 7);
    // Futures are lazy: building one ran none of its body.
    log.push("created: nothing has run yet");
    let start = Instant::now();
    let traced_job = traced(log.clone(), job);
    let sum = coil::run(async move {
        // A task, so that its waker is a coil task waker (the chapter
        // follows that waker from `Sleep` to the wheel and back).
        coil::spawn(traced_job).await.expect("the job task failed")
    });
    Run {
        sum,
        trace: log.events(),
        elapsed: start.elapsed(),
    }
}

/// Runs the `async fn` version.
pub(crate) fn run_async_fn() -> Run {
    run_job(sum_job)
}

/// Runs the hand-written version.
pub(crate) fn run_by_hand() -> Run {
    run_job(sum_job_by_hand)
}

/// Runs the `async fn` version, then the hand-written one.
pub(crate) fn run_both() -> (Run, Run) {
    (run_async_fn(), run_by_hand())
}

/// Two countdowns as two tasks; returns the interleaved log.
pub(crate) fn run_countdowns() -> Vec<String> {
    let log = Log::default();
    let main_log = log.clone();
    coil::run(async move {
        let a = coil::spawn(Countdown::new("a", 2, main_log.clone()));
        let b = coil::spawn(Countdown::new("b", 2, main_log));
        assert_eq!(a.await.expect("countdown a"), "a");
        assert_eq!(b.await.expect("countdown b"), "b");
    });
    log.events()
}

/// The interleaving [`run_countdowns`] must produce: one poll per task per tick.
pub(crate) const EXPECTED_COUNTDOWNS: &[&str] =
    &["a: 2", "b: 2", "a: 1", "b: 1", "a: liftoff", "b: liftoff"];

pub(crate) fn main() {
    let (by_async, by_hand) = run_both();

    println!("{:<30} | hand-written SumJob", "async fn sum_job");
    println!("{:-<30}-+-{:-<30}", "", "");
    for (x, y) in by_async.trace.iter().zip(&by_hand.trace) {
        println!("{x:<30} | {y}");
    }
    println!(
        "sums: {} and {}; took {:?} and {:?} (never less than {PAUSE:?})",
        by_async.sum, by_hand.sum, by_async.elapsed, by_hand.elapsed
    );
    println!(
        "size of the future: {} bytes (compiler), {} bytes (by hand)",
        mem::size_of_val(&sum_job(Log::default(), 0, 0)),
        mem::size_of::<SumJob>()
    );

    assert_eq!(by_async.trace, by_hand.trace, "the two versions diverged");
    assert_eq!(by_async.trace, EXPECTED_TRACE);
    assert_eq!((by_async.sum, by_hand.sum), (52, 52));
    assert!(by_async.elapsed >= PAUSE && by_hand.elapsed >= PAUSE);

    let countdowns = run_countdowns();
    println!("countdowns: {}", countdowns.join(", "));
    assert_eq!(countdowns, EXPECTED_COUNTDOWNS);
}
