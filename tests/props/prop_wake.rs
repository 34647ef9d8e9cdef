//! Property suite (c): wake storms from a second thread lose no wakeup.

use crate::support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;

#[derive(Default)]
struct Counter {
    value: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

/// Completes once the counter reaches `target`; re-registers on every poll
/// (register, then check: the order that makes a lost wakeup impossible if
/// the runtime is right).
struct Reach {
    c: Arc<Counter>,
    target: u64,
    polls: u64,
}

impl Future for Reach {
    type Output = u64;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        self.polls += 1;
        *self.c.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.c.value.load(Ordering::SeqCst) >= self.target {
            Poll::Ready(self.polls)
        } else {
            Poll::Pending
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(48)
    ))]

    #[test]
    fn wake_storm_loses_nothing(
        increments in 1u64..3000,
        pause_every in 1u64..200,
        by_ref in any::<bool>(),
        tasks in 1usize..4,
    ) {
        // Several tasks each wait for their own counter; one thread bumps all
        // counters and wakes after every bump. A lost wake hangs the test,
        // and the watchdog turns that into a failure.
        support::run_watched(move || {
            let counters: Vec<Arc<Counter>> = (0..tasks).map(|_| Arc::default()).collect();
            let cs = counters.clone();
            let waker_thread = std::thread::spawn(move || {
                for i in 0..increments {
                    for c in &cs {
                        c.value.fetch_add(1, Ordering::SeqCst);
                        let w = c.waker.lock().unwrap().clone();
                        if let Some(w) = w {
                            if by_ref { w.wake_by_ref() } else { w.wake() }
                        }
                    }
                    if i % pause_every == 0 {
                        std::thread::yield_now();
                    }
                }
            });
            coil::run(async move {
                let handles: Vec<_> = counters
                    .iter()
                    .map(|c| coil::spawn(Reach { c: c.clone(), target: increments, polls: 0 }))
                    .collect();
                for h in handles {
                    let polls = h.await.unwrap();
                    assert!(polls <= increments + 1, "more polls than wakes: {polls}");
                }
            });
            waker_thread.join().unwrap();
        });
    }
}
