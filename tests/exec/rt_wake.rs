//! Wakers: self-wakes, late wakes, wakes from other threads, reference cycles,
//! deep chains (docs/reliability.md, checks 3–8, 11, 12, 34).

use crate::support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use coil::task::yield_now;
use coil::{Handle, spawn};
use support::DropCounter;

/// A future that wakes itself `n` times, then completes; counts its polls.
struct SelfWake {
    left: usize,
    polls: Rc<Cell<usize>>,
}

impl Future for SelfWake {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Captures the task's waker once and stays pending until `flag` is set.
struct WaitFlag {
    flag: Arc<AtomicBool>,
    slot: Arc<Mutex<Option<Waker>>>,
}

impl Future for WaitFlag {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        if self.flag.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

driver_test! {
    fn self_wake_is_polled_again_and_stops(rt) {
        // Item 3: repolled after each self-wake, not spinning afterwards.
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        rt.block_on(async move {
            spawn(SelfWake { left: 5, polls: p }).await.unwrap();
        });
        assert_eq!(polls.get(), 6);
    }

    fn wake_after_completion_and_after_handle_drop(rt) {
        // Item 4: harmless no-ops.
        let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let s = slot.clone();
        rt.block_on(async move {
            let t = spawn(async move {
                std::future::poll_fn(|cx| {
                    *s.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Ready(())
                })
                .await;
            });
            t.await.unwrap();
            let w = slot.lock().unwrap().take().unwrap();
            w.wake_by_ref();
            #[allow(clippy::waker_clone_wake)] // exercises clone, then wake by value
            w.clone().wake();
            w.wake();
        });
    }

    fn foreign_wake_by_value_while_running_then_complete(rt) {
        // A `Waker::wake` from another thread leaves the task's state word
        // to its loop (`rt/mod.rs`, "Two kinds of woken entry"). One that
        // lands while the task is being polled must still get it polled
        // again; one of the complete task, whose waker then holds the last
        // reference, is released when the loop drains it (Miri and the
        // leak checks see it freed).
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        rt.block_on(async move {
            let (to_thread, from_task) = std::sync::mpsc::channel::<Waker>();
            let (woken_tx, woken_rx) = std::sync::mpsc::channel::<()>();
            let waker_thread = std::thread::spawn(move || {
                for w in from_task {
                    w.wake();
                    let _ = woken_tx.send(());
                }
            });
            let t = spawn(std::future::poll_fn(move |cx| {
                p.set(p.get() + 1);
                to_thread.send(cx.waker().clone()).unwrap();
                if p.get() == 1 {
                    // Returns only once the other thread woke us by value.
                    woken_rx.recv().unwrap();
                    return Poll::Pending;
                }
                Poll::Ready(())
            }));
            t.await.unwrap();
            // The future (and its sender) is gone: the thread ends after
            // its last wake.
            while !waker_thread.is_finished() {
                yield_now().await;
            }
            waker_thread.join().unwrap();
            yield_now().await;
        });
        assert_eq!(polls.get(), 2);
    }

    fn a_remembered_foreign_task_outlives_its_runtime_safely(rt) {
        // A loop thread that wakes a task of another runtime by value
        // remembers it with its runtime's `Shared` (`task::raw::last_foreign`,
        // a reference of its own). Here that runtime completes the task and
        // is dropped first; a later wake of the task from this loop goes
        // through the remembered `Shared` to its closed queue and is released
        // on this thread; the memory gives the task up when this loop stops
        // (Miri sees a use after free or a leak if not).
        let choice = support::choice_like(rt);
        let (waker_tx, waker_rx) = std::sync::mpsc::channel::<Waker>();
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        let other = std::thread::spawn(move || {
            let b = support::runtime_with(choice);
            b.block_on(async move {
                let t = spawn(std::future::poll_fn(move |cx| {
                    if p.fetch_add(1, Ordering::SeqCst) == 2 {
                        return Poll::Ready(());
                    }
                    waker_tx.send(cx.waker().clone()).unwrap();
                    Poll::Pending
                }));
                t.await.unwrap();
            });
            drop(b);
        });
        rt.block_on(async move {
            let mut kept = None;
            for _ in 0..2 {
                let w = loop {
                    match waker_rx.try_recv() {
                        Ok(w) => break w,
                        Err(_) => yield_now().await,
                    }
                };
                // The first wake remembers the task, the second finds it.
                kept = Some(w.clone());
                w.wake();
            }
            while !other.is_finished() {
                yield_now().await;
            }
            other.join().unwrap();
            // The other runtime is gone: a wake through the memory is released.
            kept.unwrap().wake();
        });
        assert_eq!(polls.load(Ordering::SeqCst), 3);
    }

    fn waker_outlives_runtime(rt) {
        // Item 5: waking and dropping a waker after the loop is gone is a no-op
        // (the task is complete; the remote queue is closed).
        let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let s = slot.clone();
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        support::run_like(rt, async move {
            drop(spawn(WaitFlag { flag: f, slot: s }));
            yield_now().await;
        });
        let w = slot.lock().unwrap().take().expect("waker captured");
        let w2 = w.clone();
        std::thread::spawn(move || {
            w2.wake_by_ref();
            w2.wake();
        })
        .join()
        .unwrap();
        w.wake();
        assert!(!flag.load(Ordering::SeqCst));
    }

    fn wake_from_another_thread_unparks_the_loop(rt) {
        // Item 34 (executor half): the loop sleeps in the driver with nothing
        // to do; another thread's wake must reach it. 2000 rounds.
        rt.block_on(async {
            for _ in 0..support::scaled(2000) {
                let flag = Arc::new(AtomicBool::new(false));
                let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
                let t = spawn(WaitFlag { flag: flag.clone(), slot: slot.clone() });
                let waker_thread = std::thread::spawn(move || {
                    loop {
                        if let Some(w) = slot.lock().unwrap().take() {
                            flag.store(true, Ordering::SeqCst);
                            w.wake();
                            return;
                        }
                        std::thread::yield_now();
                    }
                });
                t.await.unwrap();
                waker_thread.join().unwrap();
            }
        });
    }

    fn wake_never_polls_inline(rt) {
        // Item 7: wake() while holding a lock; the woken task's poll must find
        // the lock free (it runs later, from the loop).
        rt.block_on(async {
            let lock = Arc::new(Mutex::new(()));
            let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
            let flag = Arc::new(AtomicBool::new(false));
            let saw_free = Arc::new(AtomicBool::new(false));
            let (l2, s2, f2, sf) = (lock.clone(), slot.clone(), flag.clone(), saw_free.clone());
            let t = spawn(async move {
                WaitFlag { flag: f2, slot: s2 }.await;
                sf.store(l2.try_lock().is_ok(), Ordering::SeqCst);
            });
            yield_now().await;
            {
                let _g = lock.lock().unwrap();
                flag.store(true, Ordering::SeqCst);
                let w = slot.lock().unwrap().take().unwrap();
                for _ in 0..support::scaled(100_000) {
                    w.wake_by_ref(); // must neither block nor grow the queue
                }
            }
            t.await.unwrap();
            assert!(saw_free.load(Ordering::SeqCst));
        });
    }

    fn concurrent_wakes_from_two_threads(rt) {
        // Item 6: 2 threads × 50k wake_by_ref racing with polls.
        rt.block_on(async {
            let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
            let stop = Arc::new(AtomicBool::new(false));
            let polls = Rc::new(Cell::new(0usize));
            let p = polls.clone();
            let (s2, st2) = (slot.clone(), stop.clone());
            let t = spawn(std::future::poll_fn(move |cx| {
                p.set(p.get() + 1);
                *s2.lock().unwrap() = Some(cx.waker().clone());
                if st2.load(Ordering::SeqCst) { Poll::Ready(()) } else { Poll::Pending }
            }));
            yield_now().await;
            let waker = slot.lock().unwrap().clone().unwrap();
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let w = waker.clone();
                    std::thread::spawn(move || {
                        for _ in 0..support::scaled(50_000) {
                            w.wake_by_ref();
                        }
                    })
                })
                .collect();
            for th in threads {
                while !th.is_finished() {
                    yield_now().await;
                }
                th.join().unwrap();
            }
            stop.store(true, Ordering::SeqCst);
            waker.wake();
            t.await.unwrap();
            assert!(polls.get() >= 2);
        });
    }

    fn handle_spawn_from_other_threads(rt) {
        let handle = rt.handle();
        let tasks: Vec<_> = (0..8u64)
            .map(|i| {
                let h = handle.clone();
                std::thread::spawn(move || h.spawn(async move {
                    yield_now().await;
                    i * i
                }))
            })
            .map(|th| th.join().unwrap())
            .collect();
        let sum = rt.block_on(async move {
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, (0..8u64).map(|i| i * i).sum::<u64>());
    }

    fn task_awaited_on_another_thread(rt) {
        // A Send Task<T> joined from a different runtime (same driver) on
        // another thread.
        let choice = support::choice_like(rt);
        let handle = rt.handle();
        let t = handle.spawn(async {
            coil::time::sleep(std::time::Duration::from_millis(5)).await;
            "from the loop"
        });
        let joiner = std::thread::spawn(move || support::runtime_with(choice).block_on(t));
        rt.block_on(async {
            while !joiner.is_finished() {
                coil::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        assert_eq!(joiner.join().unwrap().unwrap(), "from the loop");
    }

    fn reentrant_spawn_during_shutdown(rt) {
        // Item 8: spawning from a Drop that runs while the runtime shuts down
        // does not panic; the new future is dropped at once.
        let dropped = Arc::new(AtomicUsize::new(0));
        struct SpawnOnDrop(Arc<AtomicUsize>);
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                let inner = DropCounter(self.0.clone());
                let t = spawn(async move {
                    let _g = inner;
                });
                assert!(t.is_finished(), "spawned during shutdown: cancelled at once");
            }
        }
        let d = dropped.clone();
        support::run_like(rt, async move {
            let g = SpawnOnDrop(d);
            drop(spawn(async move {
                let _g = g;
                std::future::pending::<()>().await
            }));
            yield_now().await;
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    fn handle_spawn_after_shutdown_is_cancelled(rt) {
        let rt2 = support::runtime_with(support::choice_like(rt));
        let h: Handle = rt2.handle();
        drop(rt2);
        assert!(h.is_closed());
        let dropped = Arc::new(AtomicUsize::new(0));
        let g = DropCounter(dropped.clone());
        let t = h.spawn(async move {
            let _g = g;
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(support::run_like(rt, t).unwrap_err().is_cancelled());
    }

    fn join_cycle_is_collected_at_shutdown(rt) {
        // Item 12: two tasks awaiting each other's handles, plus a task that
        // keeps its own waker; all futures dropped at runtime drop.
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        support::run_like(rt, async move {
            type Slot = Rc<RefCell<Option<coil::Task<()>>>>;
            let a_slot: Slot = Rc::default();
            let b_slot: Slot = Rc::default();
            let (g1, g2, g3) = (DropCounter(d.clone()), DropCounter(d.clone()), DropCounter(d));
            let bs = b_slot.clone();
            let a = spawn(async move {
                let _g = g1;
                yield_now().await;
                let b = bs.borrow_mut().take().unwrap();
                let _ = b.await;
            });
            let as_ = a_slot.clone();
            let b = spawn(async move {
                let _g = g2;
                yield_now().await;
                let a = as_.borrow_mut().take().unwrap();
                let _ = a.await;
            });
            *a_slot.borrow_mut() = Some(a);
            *b_slot.borrow_mut() = Some(b);
            let keeper: Rc<RefCell<Option<Waker>>> = Rc::default();
            let k = keeper.clone();
            drop(spawn(async move {
                let _g = g3;
                std::future::poll_fn(|cx| {
                    *k.borrow_mut() = Some(cx.waker().clone());
                    Poll::<()>::Pending
                })
                .await
            }));
            for _ in 0..4 {
                yield_now().await;
            }
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
    }
}

#[test]
fn deep_join_chain_small_stack() {
    // Item 11: 100k tasks, each awaiting the previous one's handle, on a
    // 256 KiB stack: completion and teardown must not recurse.
    support::run_watched(|| {
        let th = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                coil::run(async {
                    let mut prev = spawn(async { 0u64 });
                    for _ in 0..support::scaled(100_000) {
                        let p = prev;
                        prev = spawn(async move { p.await.unwrap() + 1 });
                    }
                    prev.await.unwrap()
                })
            })
            .unwrap();
        assert_eq!(th.join().unwrap(), support::scaled(100_000) as u64);
    });
}

#[test]
fn deep_chain_dropped_at_shutdown_small_stack() {
    support::run_watched(|| {
        let th = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                coil::run(async {
                    let mut prev = spawn(std::future::pending::<u64>());
                    for _ in 0..support::scaled(100_000) {
                        let p = prev;
                        prev = spawn(async move { p.await.unwrap() + 1 });
                    }
                    drop(prev);
                    yield_now().await;
                })
            })
            .unwrap();
        th.join().unwrap();
    });
}
