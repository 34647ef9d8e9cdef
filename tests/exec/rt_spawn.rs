//! Spawning, joining, cancelling, panics: the task lifecycle under every driver.

use crate::support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coil::task::{self, yield_now};
use coil::{TaskError, spawn};
use support::{DropCounter, panic_msg};

driver_test! {
    fn spawn_and_join_in_order(rt) {
        let out = rt.block_on(async {
            let tasks: Vec<_> = (0..100u64).map(|i| spawn(async move { i * 2 })).collect();
            let mut v = Vec::new();
            for t in tasks {
                v.push(t.await.unwrap());
            }
            v
        });
        assert_eq!(out, (0..100u64).map(|i| i * 2).collect::<Vec<_>>());
    }

    fn tasks_need_not_be_send(rt) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        rt.block_on(async move {
            let a = spawn({
                let l = l2.clone();
                async move {
                    l.borrow_mut().push("a1");
                    yield_now().await;
                    l.borrow_mut().push("a2");
                }
            });
            let b = spawn({
                let l = l2.clone();
                async move {
                    l.borrow_mut().push("b1");
                    yield_now().await;
                    l.borrow_mut().push("b2");
                }
            });
            a.await.unwrap();
            b.await.unwrap();
        });
        assert_eq!(*log.borrow(), ["a1", "b1", "a2", "b2"], "round robin, one poll per tick");
    }

    fn detached_task_keeps_running(rt) {
        let done = Rc::new(RefCell::new(false));
        let d = done.clone();
        rt.block_on(async move {
            drop(spawn(async move {
                yield_now().await;
                *d.borrow_mut() = true;
            }));
            for _ in 0..3 {
                yield_now().await;
            }
        });
        assert!(*done.borrow());
    }

    fn spawn_from_inside_tasks(rt) {
        let n = rt.block_on(async {
            let outer = spawn(async {
                let inner = spawn(async { spawn(async { 3 }).await.unwrap() + 2 });
                inner.await.unwrap() + 1
            });
            outer.await.unwrap()
        });
        assert_eq!(n, 6);
    }

    fn every_third_task_panics(rt) {
        // docs/reliability.md, check 9: the loop carries on; each panicking task
        // gives Err(Panicked) with its payload.
        let (ok, panicked) = rt.block_on(async {
            let tasks: Vec<_> = (0..support::scaled(999) as u32)
                .map(|i| {
                    spawn(async move {
                        if i % 3 == 0 {
                            yield_now().await;
                            panic!("boom {i}");
                        }
                        i
                    })
                })
                .collect();
            let (mut ok, mut panicked) = (0, 0);
            for (i, t) in tasks.into_iter().enumerate() {
                match t.await {
                    Ok(v) => {
                        assert_eq!(v as usize, i);
                        ok += 1;
                    }
                    Err(TaskError::Panicked(p)) => {
                        assert_eq!(panic_msg(&*p.into_inner()), format!("boom {i}"));
                        panicked += 1;
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            (ok, panicked)
        });
        let n = support::scaled(999);
        assert_eq!((ok, panicked), (n - n.div_ceil(3), n.div_ceil(3)));
    }

    fn cancel_idle_task(rt) {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        rt.block_on(async move {
            let guard = DropCounter(d);
            let t = spawn(async move {
                let _g = guard;
                std::future::pending::<()>().await;
            });
            yield_now().await; // let it start and park
            assert!(!t.is_finished());
            assert!(t.cancel());
            assert!(!t.cancel(), "second cancel is a no-op");
            let r = t.await;
            assert!(matches!(r, Err(TaskError::Cancelled(_))), "{r:?}");
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "future dropped exactly once");
    }

    fn cancel_before_first_poll(rt) {
        let polled = Rc::new(RefCell::new(false));
        let p = polled.clone();
        rt.block_on(async move {
            let t = spawn(async move { *p.borrow_mut() = true; });
            assert!(t.cancel());
            assert!(t.await.unwrap_err().is_cancelled());
        });
        assert!(!*polled.borrow(), "a task cancelled before its first poll never runs");
    }

    fn cancel_after_completion_keeps_value(rt) {
        rt.block_on(async {
            let t = spawn(async { 5 });
            while !t.is_finished() {
                yield_now().await;
            }
            assert!(!t.cancel(), "like asyncio: cancel() on a done task returns False");
            assert_eq!(t.await.unwrap(), 5);
        });
    }

    fn task_cancels_itself_from_another_task_while_running(rt) {
        rt.block_on(async {
            let slot: Rc<RefCell<Option<coil::Task<()>>>> = Rc::new(RefCell::new(None));
            let s2 = slot.clone();
            let victim = spawn(async move {
                loop {
                    yield_now().await;
                }
            });
            let canceller = spawn(async move {
                yield_now().await;
                if let Some(t) = s2.borrow().as_ref() {
                    t.cancel();
                }
            });
            *slot.borrow_mut() = Some(victim);
            canceller.await.unwrap();
            let victim = slot.borrow_mut().take().unwrap();
            assert!(victim.await.unwrap_err().is_cancelled());
        });
    }

    fn try_take_and_names(rt) {
        rt.block_on(async {
            let mut t = task::Builder::new().name("worker").spawn(async { 9 });
            assert_eq!(t.name(), Some("worker"));
            assert!(format!("{t:?}").contains("worker"));
            assert!(t.try_take().is_none());
            while !t.is_finished() {
                yield_now().await;
            }
            assert_eq!(t.try_take().unwrap().unwrap(), 9);
        });
    }

    fn ids_are_unique(rt) {
        rt.block_on(async {
            let n = support::scaled(2000);
            let tasks: Vec<_> = (0..n).map(|_| spawn(async {})).collect();
            let mut ids: Vec<u64> = tasks.iter().map(|t| t.id().as_u64()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), n);
            for t in tasks {
                t.await.unwrap();
            }
        });
    }

    fn shutdown_cancels_and_drops_everything(rt) {
        // The runtime is dropped by the harness after this body; here we check
        // what `coil::run` promises (leftover tasks are cancelled and dropped)
        // on a fresh runtime with this variant's driver.
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        support::run_like(rt, async move {
            for _ in 0..100 {
                let g = DropCounter(d.clone());
                drop(spawn(async move {
                    let _g = g;
                    std::future::pending::<()>().await;
                }));
            }
            yield_now().await;
            assert_eq!(coil::runtime::stats().unwrap().tasks, 100);
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 100);
    }

    fn runtime_reused_across_block_on(rt) {
        #[allow(clippy::async_yields_async)]
        let t = rt.block_on(async { spawn(async { yield_now().await; 11 }) });
        // The task survives the first block_on and finishes during the second.
        assert_eq!(rt.block_on(t).unwrap(), 11);
        let early = rt.spawn(async { 12 });
        assert_eq!(rt.block_on(early).unwrap(), 12);
    }

    fn panic_in_drop_of_cancelled_future(rt) {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                panic!("drop panic");
            }
        }
        rt.block_on(async {
            let t = spawn(async {
                let _p = PanicOnDrop;
                std::future::pending::<()>().await;
            });
            yield_now().await;
            t.cancel();
            match t.await {
                Err(TaskError::Panicked(p)) => assert_eq!(panic_msg(&*p.into_inner()), "drop panic"),
                other => panic!("expected the drop panic, got {other:?}"),
            }
        });
    }

    fn future_destructor_panics_after_ready(rt) {
        // The poll's `Ready` path drops the future in place and writes the
        // output over it, also when the destructor unwinds (`WriteDone` in
        // `src/task/raw/vtable.rs`): the task fails with that panic and the
        // output is dropped exactly once, joined or detached (the Miri tier
        // checks the in-place drop and the write).
        struct ReadyThenPanicOnDrop(Option<DropCounter>);
        impl std::future::Future for ReadyThenPanicOnDrop {
            type Output = DropCounter;
            fn poll(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<DropCounter> {
                std::task::Poll::Ready(self.0.take().expect("polled once"))
            }
        }
        impl Drop for ReadyThenPanicOnDrop {
            fn drop(&mut self) {
                panic!("drop after ready");
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            let t = spawn(ReadyThenPanicOnDrop(Some(DropCounter(d.clone()))));
            match t.await {
                Err(TaskError::Panicked(p)) => {
                    assert_eq!(panic_msg(&*p.into_inner()), "drop after ready")
                }
                Err(e) => panic!("expected the drop panic, got {e:?}"),
                Ok(_) => panic!("expected the drop panic, got the output"),
            }
            assert_eq!(d.load(Ordering::SeqCst), 1);
            drop(spawn(ReadyThenPanicOnDrop(Some(DropCounter(d.clone())))));
            for _ in 0..3 {
                yield_now().await;
            }
        });
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn output_dropped_once_whether_or_not_joined() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    coil::run(async move {
        let joined = spawn({
            let d = d.clone();
            async move { DropCounter(d) }
        });
        let detached = spawn({
            let d = d.clone();
            async move { DropCounter(d) }
        });
        let unread = spawn(async move { DropCounter(d) });
        drop(detached);
        let out = joined.await.unwrap();
        drop(out);
        while !unread.is_finished() {
            yield_now().await;
        }
        drop(unread); // complete but never awaited: the handle drops the output
    });
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn main_future_panic_propagates_after_teardown() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let msg = support::panic_message_of(move || {
        coil::run(async move {
            let g = DropCounter(d);
            drop(spawn(async move {
                let _g = g;
                std::future::pending::<()>().await
            }));
            yield_now().await;
            panic!("main failed");
        })
    });
    assert_eq!(msg, "main failed");
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "tasks are still torn down"
    );
}
