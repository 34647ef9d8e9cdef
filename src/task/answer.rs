//! The task's side of a cancel request (decision 0010): [`cancellable`]
//! turns a request into `Err(Cancelled)` where the task would wait,
//! [`cancelled`] waits for one, and [`Cancelled::reraise`] finishes the task
//! as cancelled once its cleanup is done. Only tasks spawned with
//! [`Builder::cooperative_cancel`](super::Builder::cooperative_cancel) get
//! requests; elsewhere these scopes never fire.
//!
//! # Raising to an enclosing scope
//!
//! asyncio's `raise` at the end of `except CancelledError:` goes to the
//! nearest enclosing `try`, not straight to the task. coil models the
//! enclosing `try`s that are being polled right now as *catch frames*: a
//! [`cancellable`] scope, and a timeout that asked its own task to cancel
//! (`time::timeout` in a cooperative task), open a frame around each poll
//! of their inner future. The invariants:
//!
//! - Frames live on this thread's poll stack only: a frame is entered just
//!   before its owner polls its inner future and left just after (also when
//!   that poll unwinds, by `Drop`), so every frame counted in `DEPTH` is an
//!   ancestor of the code being polled, in the task being polled.
//! - A [`Reraise`] polled while `DEPTH > 0` puts its `Cancelled` in
//!   `RAISED` and answers `Pending`; the innermost frame takes it when the
//!   inner poll returns, in the same poll, and drops its inner future (the
//!   `Reraise` with it). With no frame, `Reraise` aborts the task (the
//!   loop drops the future at its next turn).
//! - Entering a frame sets aside whatever `RAISED` held (a raise by a
//!   sibling branch already polled, which belongs to an outer frame) and
//!   leaving puts it back, so a frame never takes a sibling's raise.
//! - A raise wins over a ready value in the same frame: the frame's inner
//!   future was asked to end cancelled, and losing that would let the task
//!   carry on as if nobody had cancelled it.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Cancelled;
use super::erased::{self, ErasedPoll, PollSlot};
use super::raw::TaskRef;

/// The task being polled on this thread's loop.
fn running_task() -> Option<TaskRef> {
    crate::rt::with_core(|core| core?.current_task())
}

thread_local! {
    /// Catch frames on this thread's poll stack (module docs).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// A cancellation raised by a `Reraise` for the innermost frame.
    static RAISED: Cell<Option<Cancelled>> = const { Cell::new(None) };
}

/// A catch frame, entered around one poll of a scope's inner future.
pub(crate) struct CatchFrame {
    /// What `RAISED` held when the frame was entered (an outer frame's).
    outer: Option<Cancelled>,
    left: bool,
}

impl CatchFrame {
    /// Enters a frame: raises from the code polled until [`leave`] are
    /// this frame's.
    ///
    /// [`leave`]: CatchFrame::leave
    pub(crate) fn enter() -> CatchFrame {
        DEPTH.with(|d| d.set(d.get() + 1));
        CatchFrame {
            outer: RAISED.with(Cell::take),
            left: false,
        }
    }

    /// Leaves the frame, returning the cancellation raised inside it.
    pub(crate) fn leave(mut self) -> Option<Cancelled> {
        let mine = RAISED.with(Cell::take);
        self.restore();
        mine
    }

    fn restore(&mut self) {
        self.left = true;
        let outer = self.outer.take();
        RAISED.with(|r| r.set(outer));
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

impl Drop for CatchFrame {
    fn drop(&mut self) {
        // Only when the inner poll unwound: the raise inside is lost with
        // the panic, the outer one is put back.
        if !self.left {
            self.restore();
        }
    }
}

/// Raises `c` to the innermost catch frame being polled, or finishes the
/// running task as cancelled when there is none. The caller answers
/// `Pending` (its frame, or the loop, drops it in the same turn).
///
/// # Panics
///
/// Outside a task with no frame to catch the raise.
#[track_caller]
pub(crate) fn raise(c: Cancelled) {
    if DEPTH.with(Cell::get) > 0 {
        RAISED.with(|r| r.set(Some(c)));
        return;
    }
    let Some(task) = running_task() else {
        panic!("Cancelled::reraise was awaited outside a coil task");
    };
    // The task is RUNNING: the abort marks it and the loop queues it
    // again when this poll returns; its next turn drops the future.
    task.abort(None);
}

/// Whether a catch frame is being polled (a raise would be caught).
pub(crate) fn catching() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// `cancelling()` of the running task, and whether a request waits to be
/// delivered, if the task answers requests (the mode of `time::timeout` in
/// such a task); `None` elsewhere.
pub(crate) fn own_requests() -> Option<(usize, bool)> {
    running_task()?.request_state()
}

/// Marks a request of the running task undelivered again (one is still
/// counted): for a timeout whose own request took an older one's delivery.
pub(crate) fn repend_own() {
    if let Some(task) = running_task() {
        task.repend();
    }
}

/// Sends the running task a cancel request (a timeout's, on expiry).
pub(crate) fn request_own_cancel() {
    if let Some(task) = running_task() {
        task.cancel(None);
    }
}

/// Takes the running task's undelivered request, if any.
pub(crate) fn take_own_request() -> Option<Cancelled> {
    running_task().and_then(TaskRef::take_request)
}

/// Runs `future` unless the running task is asked to cancel: asyncio's
/// `try: await future except CancelledError`.
///
/// Each poll polls `future` first: a result that is ready wins (nothing is
/// lost to a request that came at the same time). When `future` would wait
/// and a cancel request has not been delivered yet, the request is taken
/// (so a later scope does not see it again: delivery is edge-triggered, as
/// in asyncio), `future` is dropped, and the output is `Err(Cancelled)` with
/// the request's message. `cancel` wakes the task, so a scope that is
/// waiting sees the request at once.
///
/// Outside a task, or in a task that does not answer requests, this is
/// `future` with `Ok` around its output.
pub fn cancellable<F: Future>(future: F) -> Cancellable<F> {
    Cancellable {
        future: Some(future),
    }
}

/// The future of [`cancellable`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Cancellable<F> {
    future: Option<F>,
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is pinned with `self` and never moved: it is
        // polled in place and dropped in place (set to `None`).
        let this = unsafe { self.get_unchecked_mut() };
        let Some(fut) = this.future.as_mut() else {
            panic!("a coil::task::cancellable future was polled after it finished");
        };
        // SAFETY: as above, the inner future stays where it is.
        let mut slot = PollSlot::new(unsafe { Pin::new_unchecked(fut) });
        let answer = poll_scope(&mut slot, cx);
        // A value that lost to a raise is dropped after the future, on return.
        let output = slot.into_output();
        match answer {
            Poll::Pending => Poll::Pending,
            Poll::Ready(answer) => {
                this.future = None;
                Poll::Ready(answer.map(|()| erased::ready(output)))
            }
        }
    }
}

/// The poll of a [`Cancellable`], compiled once: polls `future` inside a
/// catch frame; `Ready(Ok(()))` when it is ready (its output kept in the
/// slot), `Ready(Err)` when it raised or a request came.
fn poll_scope(future: &mut dyn ErasedPoll, cx: &mut Context<'_>) -> Poll<Result<(), Cancelled>> {
    let frame = CatchFrame::enter();
    let ready = future.poll_erased(cx);
    if let Some(c) = frame.leave() {
        // Code inside raised (a nested scope's cleanup ended with
        // `reraise`): asyncio's `except CancelledError` catches it.
        return Poll::Ready(Err(c));
    }
    if ready {
        return Poll::Ready(Ok(()));
    }
    match take_own_request() {
        Some(c) => Poll::Ready(Err(c)),
        None => Poll::Pending,
    }
}

/// Waits until the running task is asked to cancel, and takes the request:
/// `cancellable(pending())`. For a `select` against work that must not be
/// dropped half-way. Never resolves outside a task that answers requests.
pub async fn cancelled() -> Cancelled {
    match cancellable(std::future::pending::<()>()).await {
        Ok(()) => unreachable!("pending() never finishes"),
        Err(c) => c,
    }
}

impl Cancelled {
    /// Raises the cancellation again once cleanup is done: asyncio's `raise`
    /// at the end of `except CancelledError:`. The future never resolves.
    /// The nearest enclosing scope being polled catches it: a
    /// [`cancellable`] scope (its output becomes `Err` with this
    /// cancellation, so an outer cleanup runs too), or a
    /// [`timeout`](crate::time::timeout) that asked for it (it answers
    /// `Err(Elapsed)`). With no such scope the task finishes cancelled: the
    /// loop drops its future at its next turn (destructors run then) and the
    /// awaiter gets `Err(TaskError::Cancelled(_))` with the latest request's
    /// message. Generic in its output so that it fits any arm:
    /// `Err(c) => { cleanup().await; c.reraise().await }`.
    ///
    /// # Panics
    ///
    /// When polled outside a task with no enclosing scope (the `block_on`
    /// future is not a task).
    pub fn reraise<T>(self) -> Reraise<T> {
        Reraise {
            cancelled: self,
            _output: PhantomData,
        }
    }
}

/// The future of [`Cancelled::reraise`]: never ready.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Reraise<T> {
    /// What a catching frame gets.
    cancelled: Cancelled,
    _output: PhantomData<fn() -> T>,
}

impl<T> Future for Reraise<T> {
    type Output = T;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        raise(self.cancelled.clone());
        Poll::Pending
    }
}
