//! Semaphore (and Mutex) under random acquire / cancel / release sequences
//! on a real loop: never more permits out than it has, all back at the end.
//! `PROPTEST_CASES` sets the case count (default 64).

use std::cell::Cell;
use std::rc::Rc;

use coil::sync::{Mutex, Semaphore};
use coil::task::yield_now;
use coil::{Runtime, Task, spawn};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Spawn a task that acquires `n` permits, holds them for `hold`
    /// yields, then releases them.
    Spawn { n: usize, hold: u8 },
    /// Cancel the task at this index (mod the number spawned).
    Cancel(usize),
    /// Let the loop run this many ticks.
    Yield(u8),
    /// Add a permit, and remember to forget one later.
    AddPermit,
}

fn op(cap: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1..=cap, 0u8..4).prop_map(|(n, hold)| Op::Spawn { n, hold }),
        3 => any::<usize>().prop_map(Op::Cancel),
        3 => (0u8..3).prop_map(Op::Yield),
        1 => Just(Op::AddPermit),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn semaphore_never_over_grants(cap in 1usize..5, ops in prop::collection::vec(op(4), 0..80)) {
        let rt = Runtime::new().unwrap();
        let (max_seen, left, total) = rt.block_on(async move {
            let sem = Rc::new(Semaphore::new(cap));
            let total = Rc::new(Cell::new(cap));
            let held = Rc::new(Cell::new(0usize));
            let max_seen = Rc::new(Cell::new(0usize));
            let mut tasks: Vec<Task<()>> = Vec::new();
            for op in ops {
                match op {
                    Op::Spawn { n, hold } => {
                        let n = n.min(total.get());
                        let (sem, held, max_seen, total) =
                            (sem.clone(), held.clone(), max_seen.clone(), total.clone());
                        tasks.push(spawn(async move {
                            let p = sem.acquire_many(n).await.unwrap();
                            held.set(held.get() + n);
                            max_seen.set(max_seen.get().max(held.get()));
                            assert!(held.get() <= total.get(), "over-granted");
                            struct Release(Rc<Cell<usize>>, usize);
                            impl Drop for Release {
                                fn drop(&mut self) {
                                    self.0.set(self.0.get() - self.1);
                                }
                            }
                            let _r = Release(held, n);
                            for _ in 0..hold {
                                yield_now().await;
                            }
                            drop(p);
                        }));
                    }
                    Op::Cancel(i) if !tasks.is_empty() => {
                        let i = i % tasks.len();
                        tasks[i].cancel();
                    }
                    Op::Yield(k) => {
                        for _ in 0..k {
                            yield_now().await;
                        }
                    }
                    Op::AddPermit => {
                        sem.add_permits(1);
                        total.set(total.get() + 1);
                    }
                    _ => {}
                }
                assert!(held.get() <= total.get());
                assert!(held.get() + sem.available_permits() <= total.get());
            }
            // Cancel whoever still waits for more than exists; join the rest.
            for t in tasks {
                t.cancel();
                let _ = t.await;
            }
            assert_eq!(held.get(), 0);
            (max_seen.get(), sem.available_permits(), total.get())
        });
        prop_assert!(max_seen <= total);
        prop_assert_eq!(left, total, "every permit came back");
    }

    #[test]
    fn mutex_excludes_under_random_cancellation(
        script in prop::collection::vec((any::<bool>(), 0u8..3), 1..40),
    ) {
        let rt = Runtime::new().unwrap();
        let (count, expected_max) = rt.block_on(async move {
            let m = Rc::new(Mutex::new(0u32));
            let inside = Rc::new(Cell::new(0u32));
            let mut tasks = Vec::new();
            for (cancel, hold) in script.iter().copied() {
                let (m, inside) = (m.clone(), inside.clone());
                let t = spawn(async move {
                    let mut g = m.lock().await;
                    inside.set(inside.get() + 1);
                    assert_eq!(inside.get(), 1, "two holders");
                    for _ in 0..hold {
                        yield_now().await;
                    }
                    *g += 1;
                    inside.set(inside.get() - 1);
                });
                if cancel {
                    yield_now().await;
                    t.cancel();
                }
                tasks.push(t);
            }
            let mut done = 0;
            for t in tasks {
                done += t.await.is_ok() as u32;
            }
            assert!(!m.is_locked());
            let v = *m.lock().await;
            (v, done)
        });
        prop_assert_eq!(count, expected_max);
    }
}
