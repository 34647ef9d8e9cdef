//! The self-wake path (`task/state.rs`): a task that wakes itself from its
//! own poll (`yield_now`) is queued again without a write to its state word,
//! *running while queued*. A cancel, a wake from another thread and shutdown
//! that meet a task in that state must still land.

use std::cell::Cell as StdCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use coil::task::yield_now;

/// A task that yields forever is always running while queued between its
/// polls; `cancel` marks it and its next turn drops it.
#[test]
fn cancel_lands_on_a_yielding_task() {
    coil::run(async {
        let dropped = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(dropped.clone());
        let t = coil::spawn(yield_forever(guard));
        // The task has run and woken itself: it is queued, RUNNING set.
        yield_now().await;
        yield_now().await;
        assert!(t.cancel());
        let err = t.await.expect_err("cancelled");
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(dropped.load(SeqCst), 1);
    });
}

/// Shutdown claims a task that is running while queued (rule 8): its
/// future is dropped once and nothing is leaked or asserted.
#[test]
fn shutdown_drops_a_yielding_task() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let guard = DropCount(dropped.clone());
    coil::run(async move {
        let _detached = coil::spawn(yield_forever(guard));
        yield_now().await;
        yield_now().await;
    });
    assert_eq!(dropped.load(SeqCst), 1);
}

/// Each round the task yields (running while queued), then waits for
/// another thread's flag with its waker registered. The other thread sets
/// the flag and wakes at any moment, so its wake often lands while the task
/// is running while queued; a wake lost there leaves the task asleep and
/// the timeout fails the test.
#[test]
fn remote_wake_racing_a_yield_is_not_lost() {
    const ROUNDS: usize = 100;
    let flag = Arc::new(AtomicUsize::new(0));
    let armed = Arc::new(AtomicUsize::new(0));
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let waker_thread = std::thread::spawn({
        let (flag, armed, slot) = (flag.clone(), armed.clone(), slot.clone());
        move || {
            for r in 1..=ROUNDS {
                while armed.load(SeqCst) < r {
                    std::thread::yield_now();
                }
                flag.store(r, SeqCst);
                if let Some(w) = slot.lock().unwrap().take() {
                    w.wake();
                }
            }
        }
    });
    coil::run(async move {
        let task = coil::spawn(async move {
            for r in 1..=ROUNDS {
                *slot.lock().unwrap() = Some(poll_fn(|cx| Poll::Ready(cx.waker().clone())).await);
                armed.store(r, SeqCst);
                yield_now().await;
                poll_fn(|cx| {
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                    if flag.load(SeqCst) >= r {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
            }
        });
        coil::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a remote wake was lost")
            .unwrap();
    });
    waker_thread.join().unwrap();
}

/// Yields forever (running while queued between its polls); counts its
/// drop through `guard`.
async fn yield_forever(guard: DropCount) {
    let _guard = guard;
    loop {
        yield_now().await;
    }
}

struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A waker of a yielding task woken from *another* task's poll on the same
/// loop (by reference and by value) finds the yielder running while queued:
/// it sets `SCHEDULED` only and queues no second entry, so both tasks keep
/// one poll per tick (a second entry would poll the yielder twice as often).
#[test]
fn another_task_waking_a_yielding_task_queues_it_once() {
    coil::run(async {
        let slot: Rc<StdCell<Option<Waker>>> = Rc::default();
        let polls_a = Rc::new(StdCell::new(0usize));
        let polls_b = Rc::new(StdCell::new(0usize));
        let a = coil::spawn({
            let (slot, polls_a) = (slot.clone(), polls_a.clone());
            async move {
                loop {
                    slot.set(Some(poll_fn(|cx| Poll::Ready(cx.waker().clone())).await));
                    polls_a.set(polls_a.get() + 1);
                    yield_now().await;
                }
            }
        });
        let b = coil::spawn({
            let (slot, polls_b) = (slot.clone(), polls_b.clone());
            async move {
                for _ in 0..1000 {
                    if let Some(w) = slot.take() {
                        w.wake_by_ref();
                        w.wake();
                    }
                    polls_b.set(polls_b.get() + 1);
                    yield_now().await;
                }
            }
        });
        b.await.unwrap();
        let (pa, pb) = (polls_a.get(), polls_b.get());
        assert!(
            pa.abs_diff(pb) <= 2,
            "yielder polled {pa} times, the other {pb}"
        );
        assert!(a.cancel());
        assert!(a.await.unwrap_err().is_cancelled());
    });
}

/// A task wakes itself by value (a clone of its waker: the self-wake path
/// releases the clone's reference) a thousand times, then wakes itself and
/// aborts itself in one poll: the abort lands on the next turn.
#[test]
fn self_wake_by_value_then_self_abort() {
    coil::run(async {
        let dropped = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(dropped.clone());
        let t = coil::spawn(async move {
            let _guard = guard;
            let mut n = 0;
            poll_fn(|cx| {
                n += 1;
                if n < 1000 {
                    // By value on purpose: the self-wake path of `wake`.
                    #[allow(clippy::waker_clone_wake)]
                    cx.waker().clone().wake();
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            let me = coil::task::current().expect("inside a task");
            poll_fn(|cx| {
                cx.waker().wake_by_ref();
                me.abort();
                Poll::<()>::Pending
            })
            .await;
        });
        let err = t.await.expect_err("aborted itself");
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(dropped.load(SeqCst), 1);
    });
}

/// A runtime whose task is running while queued is dropped inside another
/// runtime's task; the dropped task's destructor wakes the task doing the
/// drop. That wake is not a self-wake (the loop entered for the shutdown is
/// the other runtime's, polling nothing) and must not be lost.
#[test]
fn wake_from_a_runtime_dropped_inside_a_task_is_not_lost() {
    struct WakeOnDrop {
        slot: Arc<Mutex<Option<Waker>>>,
        _count: DropCount,
    }
    impl Drop for WakeOnDrop {
        fn drop(&mut self) {
            let w = self.slot.lock().unwrap().take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let dropped = Arc::new(AtomicUsize::new(0));
    let inner = coil::Runtime::new().unwrap();
    let guard = WakeOnDrop {
        slot: slot.clone(),
        _count: DropCount(dropped.clone()),
    };
    inner.block_on(async move {
        let _detached = coil::spawn(async move {
            let _guard = guard;
            loop {
                yield_now().await;
            }
        });
        yield_now().await;
        yield_now().await;
    });
    coil::run(async move {
        let t = coil::spawn(async move {
            let mut inner = Some(inner);
            poll_fn(|cx| {
                let Some(rt) = inner.take() else {
                    return Poll::Ready(());
                };
                *slot.lock().unwrap() = Some(cx.waker().clone());
                drop(rt);
                Poll::Pending
            })
            .await;
        });
        coil::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("the wake from the dropped runtime was lost")
            .unwrap();
    });
    assert_eq!(dropped.load(SeqCst), 1);
}

/// A task that yielded (queued running) and is then woken by another task
/// is polled once for both wakes: the pop takes the other wake, and a poll
/// that then returns `Pending` without waking itself is not polled again
/// (the run-queue fuzz model found the spurious second poll).
#[test]
fn a_wake_while_queued_running_is_answered_by_one_poll() {
    coil::run(async {
        let slot: Rc<StdCell<Option<Waker>>> = Rc::default();
        let polls = Rc::new(StdCell::new(0usize));
        let a = coil::spawn({
            let (slot, polls) = (slot.clone(), polls.clone());
            poll_fn(move |cx| {
                polls.set(polls.get() + 1);
                if polls.get() == 1 {
                    slot.set(Some(cx.waker().clone()));
                    cx.waker().wake_by_ref();
                }
                Poll::<()>::Pending
            })
        });
        let b = coil::spawn(async move {
            slot.take().expect("a ran first").wake();
        });
        b.await.unwrap();
        for _ in 0..10 {
            yield_now().await;
        }
        assert_eq!(
            polls.get(),
            2,
            "one poll for the self-wake and the other task's wake"
        );
        assert!(a.cancel());
    });
}
