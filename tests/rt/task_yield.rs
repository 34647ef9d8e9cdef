//! The self-wake path (`task/state.rs`): a task that wakes itself from its
//! own poll (`yield_now`) is queued again without a write to its state word,
//! *running while queued*. A cancel, a wake from another thread and shutdown
//! that meet a task in that state must still land.

use std::future::poll_fn;
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
