//! An async generator with send, throw and close, and the same generator
//! written by hand as an enum state machine whose inputs are send, throw and
//! close.
//!
//! `docs/how-await-works.md` ("An async generator by hand") walks through
//! this file. It defines
//!
//! - [`totals`], a running total made with `coil::stream::async_gen`: send
//!   it numbers and it yields the sum so far; throw `Cmd::Reset` in and it
//!   starts again from zero; throw `Cmd::Abort` in and it raises it; close it
//!   and it runs an async cleanup;
//! - [`Totals`], the same generator by hand: an enum with one variant per
//!   place the body can be suspended, and a `poll_resume` that takes what the
//!   consumer sends in.
//!
//! `main` drives both with the same scripts of operations and asserts that
//! they produce the same trace. `tests/rt/docs_await.rs` includes this file
//! and checks the same things.
//!
//! ```text
//! cargo run --example handwritten_generator
//! ```

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::mem;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use coil::stream::{AsyncGen, CloseError, Thrown, async_gen};
use coil::time::{Sleep, sleep};

/// How long the body sleeps after adding, and in its cleanup.
const PAUSE: Duration = Duration::from_millis(1);

/// The events of one run, in order: the body's and the consumer's.
pub(crate) type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, event: impl Into<String>) {
    log.borrow_mut().push(event.into());
}

/// What can be thrown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// Caught by the body: the total starts again from zero.
    Reset,
    /// Not caught: it propagates out and ends the generator.
    Abort,
}

// ---------------------------------------------------------------------------
// 1. The generator, written with async_gen.
// ---------------------------------------------------------------------------

/// A running total: yields the sum of what it was sent so far.
pub(crate) fn totals(
    log: Log,
) -> AsyncGen<u64, u64, Cmd, impl Future<Output = Result<(), Thrown<Cmd>>>> {
    async_gen(move |co| async move {
        push(&log, "start");
        let mut sum = 0;
        loop {
            match co.yield_(sum).await {
                Ok(sent) => {
                    sum += sent.unwrap_or(0);
                    sleep(PAUSE).await; // an await between two yields
                }
                Err(Thrown::Error(Cmd::Reset)) => {
                    push(&log, "reset");
                    sum = 0;
                }
                Err(Thrown::Exit) => {
                    push(&log, "closing");
                    sleep(PAUSE).await; // async cleanup
                    push(&log, "closed");
                    return Ok(());
                }
                Err(raised) => return Err(raised), // Cmd::Abort propagates
            }
        }
    })
}

// ---------------------------------------------------------------------------
// 2. The same generator by hand.
// ---------------------------------------------------------------------------

/// What the consumer resumes the generator with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// `next()` (asyncio `anext`): the yield evaluates to `Ok(None)`.
    Next,
    /// `send(v)`: `Ok(Some(v))`.
    Send(u64),
    /// `throw(e)`: `Err(Thrown::Error(e))`.
    Throw(Cmd),
    /// `close()`: `Err(Thrown::Exit)`.
    Close,
}

/// How one resume ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// The body yielded this and is suspended at its yield.
    Yielded(u64),
    /// The body returned (or had before).
    Finished,
    /// The body raised this and is finished.
    Raised(Cmd),
}

/// `totals` by hand. Creating one runs nothing.
pub(crate) fn totals_by_hand(log: Log) -> Totals {
    Totals {
        state: State::Unresumed { log },
    }
}

/// The generator [`totals_by_hand`] returns.
pub(crate) struct Totals {
    state: State,
}

/// One variant per place the body can be suspended: before its first line,
/// at its one yield, and at each of its two awaits.
enum State {
    /// Created, never resumed.
    Unresumed { log: Log },
    /// Suspended at `co.yield_(sum)`: the only state an input goes into.
    AtYield { log: Log, sum: u64 },
    /// Suspended at the sleep after adding.
    Adding { log: Log, sum: u64, sleep: Sleep },
    /// Suspended at the cleanup's sleep.
    Closing { log: Log, sleep: Sleep },
    /// Returned or raised: every input now answers `Finished`.
    Done,
}

impl Totals {
    /// One resume: `input` is taken at the yield the generator is suspended
    /// at, then the body runs to its next yield (`Yielded`), its end
    /// (`Finished`), an error (`Raised`), or an await that is not ready
    /// (`Pending`; poll again with the input already taken).
    pub(crate) fn poll_resume(
        &mut self,
        cx: &mut Context<'_>,
        input: &mut Option<Input>,
    ) -> Poll<Output> {
        let state = &mut self.state;
        loop {
            match state {
                State::Unresumed { .. } => {
                    match input.take() {
                        // No yield has been reached: an error is raised
                        // before the first line; a close just ends it.
                        Some(Input::Throw(cmd)) => {
                            *state = State::Done;
                            return Poll::Ready(Output::Raised(cmd));
                        }
                        Some(Input::Close) => {
                            *state = State::Done;
                            return Poll::Ready(Output::Finished);
                        }
                        Some(Input::Send(_)) => panic!("send before the first resume"),
                        Some(Input::Next) | None => {}
                    }
                    let State::Unresumed { log } = mem::replace(state, State::Done) else {
                        unreachable!()
                    };
                    push(&log, "start");
                    *state = State::AtYield { log, sum: 0 };
                    return Poll::Ready(Output::Yielded(0));
                }
                State::AtYield { .. } => {
                    let State::AtYield { log, sum } = mem::replace(state, State::Done) else {
                        unreachable!()
                    };
                    // What `co.yield_(sum).await` evaluates to, and the
                    // `match` on it.
                    let sent = match input.take().expect("a resume at a yield brings an input") {
                        Input::Next => None,
                        Input::Send(n) => Some(n),
                        Input::Throw(Cmd::Reset) => {
                            push(&log, "reset");
                            *state = State::AtYield { log, sum: 0 };
                            return Poll::Ready(Output::Yielded(0));
                        }
                        Input::Throw(cmd) => return Poll::Ready(Output::Raised(cmd)),
                        Input::Close => {
                            push(&log, "closing");
                            let sleep = sleep(PAUSE);
                            *state = State::Closing { log, sleep };
                            continue;
                        }
                    };
                    let sum = sum + sent.unwrap_or(0);
                    let sleep = sleep(PAUSE);
                    *state = State::Adding { log, sum, sleep };
                }
                State::Adding { sleep, .. } => {
                    if Pin::new(sleep).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let State::Adding { log, sum, .. } = mem::replace(state, State::Done) else {
                        unreachable!()
                    };
                    *state = State::AtYield { log, sum };
                    return Poll::Ready(Output::Yielded(sum));
                }
                State::Closing { sleep, .. } => {
                    if Pin::new(sleep).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let State::Closing { log, .. } = mem::replace(state, State::Done) else {
                        unreachable!()
                    };
                    push(&log, "closed");
                    return Poll::Ready(Output::Finished);
                }
                State::Done => {
                    input.take();
                    return Poll::Ready(Output::Finished);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Driving both with the same scripts.
// ---------------------------------------------------------------------------

/// One operation of `async_gen`'s, answered in the terms of [`Output`].
async fn step_async_gen<Fut>(g: &mut AsyncGen<u64, u64, Cmd, Fut>, input: Input) -> Output
where
    Fut: Future<Output = Result<(), Thrown<Cmd>>>,
{
    let answer = match input {
        Input::Next => g.next().await,
        Input::Send(v) => g.send(v).await,
        Input::Throw(cmd) => g.throw(cmd).await,
        Input::Close => match g.close().await {
            Ok(()) => Ok(None),
            Err(CloseError::Raised(cmd)) => Err(cmd),
            Err(other) => panic!("totals never ignores a close: {other:?}"),
        },
    };
    match answer {
        Ok(Some(sum)) => Output::Yielded(sum),
        Ok(None) => Output::Finished,
        Err(cmd) => Output::Raised(cmd),
    }
}

/// Awaits one operation, then logs it, its answer and how many polls it
/// took (2 when the body awaited its sleep, 1 when it did not).
async fn record(log: &Log, input: Input, operation: impl Future<Output = Output>) {
    let mut operation = pin!(operation);
    let mut polls = 0;
    let output = poll_fn(|cx| {
        polls += 1;
        operation.as_mut().poll(cx)
    })
    .await;
    push(log, format!("{input:?} -> {output:?}, polls: {polls}"));
}

/// Runs `script` against [`totals`], logging each operation and its answer.
pub(crate) fn run_async_gen(script: &[Input]) -> Vec<String> {
    let log = Log::default();
    let mut g = totals(log.clone());
    coil::run(async {
        for &input in script {
            record(&log, input, step_async_gen(&mut g, input)).await;
        }
    });
    log.take()
}

/// Runs `script` against [`Totals`], logging the same way.
pub(crate) fn run_by_hand(script: &[Input]) -> Vec<String> {
    let log = Log::default();
    let mut g = totals_by_hand(log.clone());
    coil::run(async {
        for &input in script {
            let mut pending = Some(input);
            record(&log, input, poll_fn(|cx| g.poll_resume(cx, &mut pending))).await;
        }
    });
    log.take()
}

/// Send, a caught throw, close with async cleanup, then an operation on the
/// finished generator.
pub(crate) const SCRIPT_CLOSE: &[Input] = &[
    Input::Next,
    Input::Send(5),
    Input::Send(7),
    Input::Throw(Cmd::Reset),
    Input::Send(1),
    Input::Close,
    Input::Next,
];

/// What [`SCRIPT_CLOSE`] logs.
pub(crate) const EXPECTED_CLOSE: &[&str] = &[
    "start",
    "Next -> Yielded(0), polls: 1",
    "Send(5) -> Yielded(5), polls: 2",
    "Send(7) -> Yielded(12), polls: 2",
    "reset",
    "Throw(Reset) -> Yielded(0), polls: 1",
    "Send(1) -> Yielded(1), polls: 2",
    "closing",
    "closed",
    "Close -> Finished, polls: 2",
    "Next -> Finished, polls: 1",
];

/// An uncaught throw, and a throw into a generator that never ran.
pub(crate) const SCRIPT_RAISE: &[Input] = &[
    Input::Next,
    Input::Send(2),
    Input::Throw(Cmd::Abort),
    Input::Next,
];

/// What [`SCRIPT_RAISE`] logs.
pub(crate) const EXPECTED_RAISE: &[&str] = &[
    "start",
    "Next -> Yielded(0), polls: 1",
    "Send(2) -> Yielded(2), polls: 2",
    "Throw(Abort) -> Raised(Abort), polls: 1",
    "Next -> Finished, polls: 1",
];

/// A throw before the first resume: raised before the body's first line.
pub(crate) const SCRIPT_UNSTARTED: &[Input] = &[Input::Throw(Cmd::Abort), Input::Next];

/// What [`SCRIPT_UNSTARTED`] logs: the body never logs "start".
pub(crate) const EXPECTED_UNSTARTED: &[&str] = &[
    "Throw(Abort) -> Raised(Abort), polls: 1",
    "Next -> Finished, polls: 1",
];

/// The scripts and what each must log.
pub(crate) const SCRIPTS: &[(&[Input], &[&str])] = &[
    (SCRIPT_CLOSE, EXPECTED_CLOSE),
    (SCRIPT_RAISE, EXPECTED_RAISE),
    (SCRIPT_UNSTARTED, EXPECTED_UNSTARTED),
];

pub(crate) fn main() {
    for &(script, expected) in SCRIPTS {
        let (by_async_gen, by_hand) = (run_async_gen(script), run_by_hand(script));
        println!("{:<40} | hand-written Totals", "async_gen totals");
        println!("{:-<40}-+-{:-<40}", "", "");
        for (a, b) in by_async_gen.iter().zip(&by_hand) {
            println!("{a:<40} | {b}");
        }
        println!();
        assert_eq!(by_async_gen, expected);
        assert_eq!(by_hand, expected);
    }
}
