//! The blocking pool: results, panics, and bursts of jobs that need to run
//! at the same time.

use crate::support;

use std::sync::{Arc, Barrier};

use coil::blocking::spawn_blocking;

#[test]
fn results_and_panics() {
    coil::run(async {
        assert_eq!(spawn_blocking(|| 6 * 7).await.unwrap(), 42);
        let e = spawn_blocking(|| -> u8 { panic!("in the pool") })
            .await
            .unwrap_err();
        assert_eq!(support::panic_msg(&*e.into_panic()), "in the pool");
    });
}

#[test]
fn jobs_that_wait_for_each_other_do_not_deadlock() {
    // 16 jobs meet at a barrier: they can only finish if 16 threads run them
    // at once, even when some pool threads were idle when the burst came.
    support::run_watched(|| {
        coil::run(async {
            // Warm up a few idle threads first.
            for _ in 0..3 {
                spawn_blocking(|| ()).await.unwrap();
            }
            let barrier = Arc::new(Barrier::new(16));
            let jobs: Vec<_> = (0..16)
                .map(|i| {
                    let b = barrier.clone();
                    spawn_blocking(move || {
                        b.wait();
                        i
                    })
                })
                .collect();
            let mut sum = 0;
            for j in jobs {
                sum += j.await.unwrap();
            }
            assert_eq!(sum, (0..16).sum::<i32>());
        });
    });
}

#[test]
fn awaitable_outside_a_runtime_thread() {
    // The result comes back through an ordinary waker: any executor works.
    let t = spawn_blocking(|| "done");
    assert_eq!(coil::run(t).unwrap(), "done");
}
