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

    // The handle reads the result from inside its join waker's wake, which
    // the loop calls after COMPLETE and before it clears JOIN_WAKER: the
    // join-waker field is still the loop's then, so the handle records the
    // read by giving up its interest (raw/vtable.rs `try_read_output`).
    // The output comes out once (a second read panics, the handle's drop
    // leaves it alone: dropped once, by its reader), the loop drops the
    // join waker (no cycle through the handle it holds), the cell is freed.
    fn output_read_inside_the_join_wake(rt) {
        #[derive(Default)]
        struct ReadOnWake {
            handle: std::sync::Mutex<Option<coil::Task<(String, DropCounter)>>>,
            got: std::sync::Mutex<Option<(String, DropCounter)>>,
            second: std::sync::Mutex<Option<String>>,
        }
        impl std::task::Wake for ReadOnWake {
            fn wake(self: Arc<Self>) {
                self.wake_by_ref();
            }
            fn wake_by_ref(self: &Arc<Self>) {
                let mut slot = self.handle.lock().unwrap();
                let t = slot.as_mut().expect("the handle is in its slot");
                let out = t.try_take().expect("complete when its join waker is woken");
                *self.got.lock().unwrap() = Some(out.unwrap());
                let again =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.try_take().is_some()));
                *self.second.lock().unwrap() = Some(panic_msg(&*again.unwrap_err()));
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let (d, d2) = (drops.clone(), drops.clone());
        rt.block_on(async move {
            let mut t = spawn(async move {
                yield_now().await;
                (String::from("out"), DropCounter(d))
            });
            let reader = Arc::new(ReadOnWake::default());
            let waker = std::task::Waker::from(reader.clone());
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(std::pin::Pin::new(&mut t).poll(&mut cx).is_pending());
            drop(waker);
            *reader.handle.lock().unwrap() = Some(t);
            while reader.got.lock().unwrap().is_none() {
                yield_now().await;
            }
            let msg = reader.second.lock().unwrap().take().unwrap();
            assert!(msg.contains("awaited only once"), "{msg}");
            let t = reader.handle.lock().unwrap().take().unwrap();
            assert!(t.is_finished());
            drop(t);
            assert_eq!(d2.load(Ordering::SeqCst), 0, "the handle's drop left the output alone");
            let (s, counter) = reader.got.lock().unwrap().take().unwrap();
            assert_eq!(s, "out");
            drop(counter);
            assert_eq!(Arc::strong_count(&reader), 1, "the loop dropped the join waker");
        });
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    // The join-waker field keeps a coil task's waker as the task and any
    // other waker boxed (src/task/raw/join_waker.rs): a handle polled with
    // a foreign waker, the same one again (kept), another (replaces it:
    // only the last is woken), then by a task (its waker replaces the box)
    // and back. Every replaced waker is dropped (the counting wakers end
    // with one owner; a task reference left in the field would leak its
    // cell, which Miri's leak check reports).
    fn join_waker_replaced_by_each_kind(rt) {
        use std::pin::Pin;
        use std::task::{Context, Poll};
        rt.block_on(async {
            let mut t = spawn(async {
                for _ in 0..3 {
                    yield_now().await;
                }
                5
            });
            let (wa, ca) = support::counting_waker();
            let (wb, cb) = support::counting_waker();
            assert!(Pin::new(&mut t).poll(&mut Context::from_waker(&wa)).is_pending());
            assert!(Pin::new(&mut t).poll(&mut Context::from_waker(&wa)).is_pending());
            assert!(Pin::new(&mut t).poll(&mut Context::from_waker(&wb)).is_pending());
            drop((wa, wb));
            assert_eq!(Arc::strong_count(&ca), 1, "replaced: dropped");
            let (wc, cc) = support::counting_waker();
            let joiner = spawn(async move {
                // This task's own waker replaces the box, a foreign one
                // replaces it, and the await puts it back.
                std::future::poll_fn(|cx| {
                    assert!(Pin::new(&mut t).poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
                assert!(Pin::new(&mut t).poll(&mut Context::from_waker(&wc)).is_pending());
                drop(wc);
                t.await.unwrap()
            });
            assert_eq!(joiner.await.unwrap(), 5);
            for c in [&ca, &cb, &cc] {
                assert_eq!(c.wakes.load(Ordering::SeqCst), 0, "only the last waker is woken");
                assert_eq!(Arc::strong_count(c), 1, "every replaced waker dropped");
            }
        });
    }

    // A task that awaits its own handle (asyncio raises there; here it
    // just waits): its join-waker word then holds a reference to the task
    // itself (raw/join_waker.rs keeps a coil task's waker as its TaskRef),
    // a cycle. Aborted, its future drops the handle while the task is
    // being completed: the loop wakes the (completing) task, clears the
    // word and so releases that reference; the future's values are dropped
    // once and the cell is freed (Miri's leak check would report it).
    fn a_task_awaiting_its_own_handle_is_aborted_cleanly(rt) {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            let slot: Rc<RefCell<Option<coil::Task<()>>>> = Rc::default();
            let s = slot.clone();
            let t = spawn(async move {
                let _g = DropCounter(d);
                yield_now().await;
                let me = s.borrow_mut().take().expect("the handle is in its slot");
                let _ = me.await;
                unreachable!("a task cannot see its own end");
            });
            let handle = coil::task::TaskHandle::clone(&t);
            *slot.borrow_mut() = Some(t);
            for _ in 0..4 {
                yield_now().await;
            }
            assert!(slot.borrow().is_none(), "the task took its handle");
            assert!(!handle.is_finished());
            assert!(handle.abort());
            while !handle.is_finished() {
                yield_now().await;
            }
        });
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    // The same cycle left in place when its runtime is dropped: shutdown
    // drops the future (and the handle in it) and completes the task; the
    // cell is freed with the runtime (Miri's leak check).
    fn a_task_awaiting_its_own_handle_at_runtime_drop(rt) {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let own = support::runtime_with(support::choice_like(rt));
        let handle = own.block_on(async move {
            let slot: Rc<RefCell<Option<coil::Task<()>>>> = Rc::default();
            let s = slot.clone();
            let t = spawn(async move {
                let _g = DropCounter(d);
                yield_now().await;
                let me = s.borrow_mut().take().expect("the handle is in its slot");
                let _ = me.await;
                unreachable!("a task cannot see its own end");
            });
            let handle = coil::task::TaskHandle::clone(&t);
            *slot.borrow_mut() = Some(t);
            for _ in 0..4 {
                yield_now().await;
            }
            assert!(slot.borrow().is_none(), "the task took its handle");
            handle
        });
        assert!(!handle.is_finished());
        drop(own);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(handle.is_finished());
    }

    // Two tasks awaiting each other's handles: each join-waker word holds
    // the other task. One is aborted: its handle of the other is dropped
    // with its future (the other's word still holds the aborted task, for
    // the other's completion to wake and release), the other then reads
    // `Cancelled` and finishes; nothing is leaked or freed twice.
    fn two_tasks_awaiting_each_other_one_aborted(rt) {
        let drops = Arc::new(AtomicUsize::new(0));
        let (da, db) = (drops.clone(), drops.clone());
        let out = rt.block_on(async move {
            let slot_a: Rc<RefCell<Option<coil::Task<u32>>>> = Rc::default();
            let slot_b: Rc<RefCell<Option<coil::Task<u32>>>> = Rc::default();
            let (sa, sb) = (slot_a.clone(), slot_b.clone());
            let a = spawn(async move {
                let _g = DropCounter(da);
                yield_now().await;
                let b = sb.borrow_mut().take().expect("b's handle");
                let _ = b.await;
                unreachable!("b waits for a");
            });
            let b = spawn(async move {
                let _g = DropCounter(db);
                yield_now().await;
                let a = sa.borrow_mut().take().expect("a's handle");
                match a.await {
                    Err(TaskError::Cancelled(_)) => 7,
                    other => panic!("expected a's cancellation, got {other:?}"),
                }
            });
            let ha = coil::task::TaskHandle::clone(&a);
            *slot_a.borrow_mut() = Some(a);
            *slot_b.borrow_mut() = Some(b);
            for _ in 0..4 {
                yield_now().await;
            }
            assert!(slot_a.borrow().is_none() && slot_b.borrow().is_none());
            assert!(ha.abort());
            let mut spins = 0;
            while drops.load(Ordering::SeqCst) < 2 {
                yield_now().await;
                spins += 1;
                assert!(spins < 100, "b never finished");
            }
            ha.is_finished()
        });
        assert!(out);
    }

    // A handle sent to another thread and awaited there by a task of
    // another runtime: the join-waker word holds that foreign-runtime task
    // (a TaskRef, not a boxed waker), woken from this loop's thread when
    // the task completes, and released on whichever side clears the word.
    // The output arrives once; the counters end with one owner each.
    fn handle_awaited_by_a_task_of_another_runtime_thread(rt) {
        use std::sync::atomic::AtomicBool;
        let drops = Arc::new(AtomicUsize::new(0));
        let registered = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let choice = support::choice_like(rt);
        let (tx, rx) = std::sync::mpsc::channel::<coil::Task<(String, DropCounter)>>();
        let (reg, fin) = (registered.clone(), done.clone());
        let d = drops.clone();
        let thread = std::thread::spawn(move || {
            let other = support::runtime_with(choice);
            let t = rx.recv().unwrap();
            let got = other.block_on(async move {
                let joiner = spawn(async move {
                    let mut t = t;
                    // The first poll registers this task's waker.
                    std::future::poll_fn(|cx| {
                        assert!(std::pin::Pin::new(&mut t).poll(cx).is_pending());
                        std::task::Poll::Ready(())
                    })
                    .await;
                    reg.store(true, Ordering::SeqCst);
                    t.await.unwrap()
                });
                joiner.await.unwrap()
            });
            assert_eq!(got.0, "out");
            assert_eq!(d.load(Ordering::SeqCst), 0);
            drop(got);
            fin.store(true, Ordering::SeqCst);
            drop(other);
        });
        let reg = registered.clone();
        let d = drops.clone();
        rt.block_on(async move {
            let t = spawn(async move {
                while !reg.load(Ordering::SeqCst) {
                    yield_now().await;
                }
                (String::from("out"), DropCounter(d))
            });
            tx.send(t).unwrap();
            while !done.load(Ordering::SeqCst) {
                yield_now().await;
            }
        });
        thread.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
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

    // Ids come from the task's memory (a slab slot's, or a word before a
    // boxed cell): futures of different sizes, one too large for the slab,
    // spawned interleaved, keep unique ids, which the task itself, its
    // handle and its error agree on.
    fn ids_are_unique_across_cell_sizes(rt) {
        rt.block_on(async {
            let n = support::scaled(300);
            let mut tasks = Vec::new();
            for i in 0..n {
                let (small, mid, large) = ([i as u8; 8], [i as u8; 200], [i as u8; 1000]);
                tasks.push(spawn(async move { (task::current().unwrap().id(), small[7] as usize) }));
                tasks.push(spawn(async move { (task::current().unwrap().id(), mid[199] as usize) }));
                tasks.push(spawn(async move { (task::current().unwrap().id(), large[999] as usize) }));
            }
            let failing = spawn(async { panic!("boom") });
            let mut ids = Vec::new();
            for (k, t) in tasks.into_iter().enumerate() {
                let id = t.id();
                let (seen, byte) = t.await.unwrap();
                assert_eq!(seen, id, "the task and its handle disagree");
                assert_eq!(byte, (k / 3) as u8 as usize);
                ids.push(id.as_u64());
            }
            let failing_id = failing.id();
            let err = failing.await.unwrap_err();
            assert_eq!(err.panic().unwrap().task_id(), Some(failing_id));
            ids.push(failing_id.as_u64());
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 3 * n + 1, "an id was given twice");
            assert!(ids[0] >= 1);
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

/// Over-aligned: larger alignment than the slab serves, so the cell comes
/// from the global allocator and is freed by the layout its vtable records
/// (Miri checks that the free matches the allocation).
#[derive(Debug)]
#[repr(align(256))]
struct Aligned256<T>(T);

/// A future of no size at all (the cell still holds the header), whose
/// destructor counts on a thread-local (it has no room for a counter).
struct ZstReady;

thread_local! {
    static ZST_DROPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl std::future::Future for ZstReady {
    type Output = ZstReady;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<ZstReady> {
        std::task::Poll::Ready(ZstReady)
    }
}

impl Drop for ZstReady {
    fn drop(&mut self) {
        ZST_DROPS.with(|c| c.set(c.get() + 1));
    }
}

/// A future whose destructor panics (after dropping its counter: fields
/// are dropped during the unwind too).
struct PanicOnDropFut(#[allow(dead_code)] DropCounter);

impl std::future::Future for PanicOnDropFut {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

impl Drop for PanicOnDropFut {
    fn drop(&mut self) {
        panic!("cancelled future's drop");
    }
}

/// An output whose destructor panics (after counting).
struct PanicOnDropOut(#[allow(dead_code)] DropCounter);

impl Drop for PanicOnDropOut {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("output's drop");
        }
    }
}

driver_test! {
    fn over_aligned_and_zero_sized_cells_every_end(rt) {
        // The cells that do not take the slab's usual path: an over-aligned
        // future and output (global allocator, freed by the recorded
        // layout) and a zero-sized future and output; joined, detached,
        // and left pending when their runtime is dropped.
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        ZST_DROPS.with(|c| c.set(0));
        let rt2 = support::runtime_with(support::choice_like(rt));
        rt2.block_on(async move {
            let held = Aligned256(DropCounter(d.clone()));
            let joined = spawn(async move {
                yield_now().await;
                assert_eq!((&raw const held).addr() % 256, 0);
                held
            });
            let out = joined.await.unwrap();
            assert_eq!((&raw const out).addr() % 256, 0);
            drop(out);
            assert_eq!(d.load(Ordering::SeqCst), 1);
            drop(spawn({
                let held = Aligned256(DropCounter(d.clone()));
                async move {
                    yield_now().await;
                    held
                }
            }));
            let pending = Aligned256(DropCounter(d.clone()));
            drop(spawn(async move {
                let _p = pending;
                std::future::pending::<()>().await
            }));
            // Zero-sized: joined (the output comes back, the future was
            // dropped in place at `Ready`), then detached.
            let z = spawn(ZstReady).await.unwrap();
            assert_eq!(ZST_DROPS.with(|c| c.get()), 1, "the future, dropped at Ready");
            drop(z);
            assert_eq!(ZST_DROPS.with(|c| c.get()), 2);
            drop(spawn(ZstReady));
            for _ in 0..3 {
                yield_now().await;
            }
            assert_eq!(ZST_DROPS.with(|c| c.get()), 4, "future and output of the detached one");
            assert_eq!(d.load(Ordering::SeqCst), 2);
        });
        assert_eq!(drops.load(Ordering::SeqCst), 2, "the pending task's future lives");
        drop(rt2);
        assert_eq!(drops.load(Ordering::SeqCst), 3, "dropped with the runtime");
    }

    fn failed_tasks_of_over_aligned_and_zero_sized_outputs(rt) {
        // The handle reads a failed task's error in place, at the stage's
        // start (`stage_offset`: 256 bytes into these cells, past the
        // header's padding), from every constructor of a failed task: a
        // panic joined by `.await`, a cancel read by `try_take`, a spawn on
        // the closing loop (`allocate_cancelled`) and a `Handle::spawn` on
        // a closed runtime; and a zero-sized output's panic.
        let late = Arc::new(std::sync::Mutex::new(None::<coil::Task<Aligned256<u64>>>));
        struct SpawnOnDrop(Arc<std::sync::Mutex<Option<coil::Task<Aligned256<u64>>>>>);
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = Some(spawn(async { Aligned256(7u64) }));
            }
        }
        let rt2 = support::runtime_with(support::choice_like(rt));
        let g = SpawnOnDrop(late.clone());
        rt2.block_on(async move {
            let panics = spawn(async {
                yield_now().await;
                if true {
                    panic!("an over-aligned output's task panics");
                }
                Aligned256([7u8; 3])
            });
            let e = panics.await.unwrap_err();
            assert_eq!(panic_msg(&*e.into_panic()), "an over-aligned output's task panics");
            let mut cancelled = spawn(std::future::pending::<Aligned256<u64>>());
            yield_now().await;
            cancelled.cancel();
            yield_now().await;
            assert!(cancelled.try_take().unwrap().unwrap_err().is_cancelled());
            let zst = spawn(async {
                yield_now().await;
                panic!("a zero-sized output's task panics");
            });
            assert!(zst.await.unwrap_err().is_panic());
            drop(spawn(async move {
                let _g = g;
                std::future::pending::<()>().await
            }));
            yield_now().await;
        });
        let h = rt2.handle();
        drop(rt2);
        let mut t = late.lock().unwrap().take().expect("spawned during shutdown");
        assert!(t.try_take().unwrap().unwrap_err().is_cancelled());
        let mut t = h.spawn(async { Aligned256(9u64) });
        assert!(t.try_take().unwrap().unwrap_err().is_cancelled());
    }

    fn spawn_during_shutdown_of_a_future_whose_destructor_panics(rt) {
        // `allocate_cancelled` (the loop is closed): the future is dropped
        // before the task is published, and its destructor's panic becomes
        // the task's error instead of unwinding into the shutdown.
        let dropped = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(None::<String>));
        struct SpawnOnDrop(Arc<AtomicUsize>, Arc<std::sync::Mutex<Option<String>>>);
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                let mut t = spawn(PanicOnDropFut(DropCounter(self.0.clone())));
                assert!(t.is_finished(), "spawned during shutdown: cancelled at once");
                let msg = match t.try_take() {
                    Some(Err(TaskError::Panicked(p))) => panic_msg(&*p.into_inner()),
                    Some(Err(e)) => format!("not the panic: {e:?}"),
                    Some(Ok(())) => "not the panic: Ok".into(),
                    None => "not the panic: None".into(),
                };
                *self.1.lock().unwrap() = Some(msg);
            }
        }
        let g = SpawnOnDrop(dropped.clone(), seen.clone());
        support::run_like(rt, async move {
            drop(spawn(async move {
                let _g = g;
                std::future::pending::<()>().await
            }));
            yield_now().await;
        });
        assert_eq!(seen.lock().unwrap().as_deref(), Some("cancelled future's drop"));
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    fn handle_spawn_after_shutdown_of_a_future_whose_destructor_panics(rt) {
        // `Handle::spawn` on a closed runtime shuts the task down on the
        // calling thread: the destructor's panic is the task's error.
        let rt2 = support::runtime_with(support::choice_like(rt));
        let h = rt2.handle();
        drop(rt2);
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut t = h.spawn(PanicOnDropFut(DropCounter(dropped.clone())));
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        match t.try_take() {
            Some(Err(TaskError::Panicked(p))) => {
                assert_eq!(panic_msg(&*p.into_inner()), "cancelled future's drop")
            }
            Some(Err(e)) => panic!("expected the drop panic, got {e:?}"),
            Some(Ok(())) => panic!("expected the drop panic, got Ok"),
            None => panic!("expected the drop panic, got nothing"),
        }
    }

    fn output_with_panicking_drop_outlives_its_runtime(rt) {
        // The handle of a completed task keeps an output whose destructor
        // panics; the runtime goes first, then the handle is dropped on
        // another thread: the output is dropped there, once, and its panic
        // is contained (`drop_output`), not raised in the dropping thread.
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let rt2 = support::runtime_with(support::choice_like(rt));
        // The handle leaves the loop unawaited (it is dropped below).
        #[allow(clippy::async_yields_async)]
        let t = rt2.block_on(async move {
            let t = spawn(async move { PanicOnDropOut(DropCounter(d)) });
            while !t.is_finished() {
                yield_now().await;
            }
            t
        });
        drop(rt2);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        std::thread::spawn(move || drop(t)).join().expect("the output's panic is contained");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
}

/// A pending future of about `N` bytes (a slab cell for small `N`, a boxed
/// one past the slab's largest class), returning `()` when woken through
/// `go` being set.
async fn parked<const N: usize>(go: Arc<std::sync::atomic::AtomicBool>) {
    let bytes = [7u8; N];
    std::future::poll_fn(|cx| {
        if go.load(Ordering::SeqCst) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
    assert_eq!(bytes[N - 1], 7);
}

driver_test! {
    // The cancel table (`src/task/cancel.rs`) belongs to the runtime's
    // `Shared`, which outlives the runtime while a task of it lives: names,
    // cancel messages and cooperative flags of tasks that completed, were
    // cancelled with a message, or were cancelled by the runtime's drop are
    // read, and the tasks freed, on another thread after the runtime is gone
    // (slab and boxed cells; Miri: use-after-free and leak checks; debug
    // builds: the table's "entry outlived its task" check).
    fn names_and_messages_outlive_their_runtime_on_another_thread(rt) {
        use std::sync::atomic::AtomicBool;
        let n = support::scaled(300);
        let own = support::runtime_with(support::choice_like(rt));
        let go = Arc::new(AtomicBool::new(false));
        let tasks = own.block_on(async move {
            let mut tasks = Vec::new();
            for i in 0..n {
                let b = task::Builder::new().name(format!("t{i}"));
                let b = if i % 3 == 1 { b.cooperative_cancel() } else { b };
                let g = go.clone();
                tasks.push(if i % 2 == 0 {
                    b.spawn(parked::<8>(g))
                } else {
                    b.spawn(parked::<1000>(g))
                });
            }
            yield_now().await;
            // Every fifth: a hard cancel with a message (plain tasks; the
            // cooperative ones get a request, which they do not answer).
            for (i, t) in tasks.iter().enumerate() {
                if i % 5 == 0 {
                    assert!(t.cancel_with(format!("m{i}")));
                }
            }
            // Every fifth + 2: completes before the runtime is dropped.
            for (i, t) in tasks.iter().enumerate() {
                if i % 5 == 2 {
                    t.abort();
                }
            }
            yield_now().await;
            tasks
        });
        drop(own);
        let done = std::thread::spawn(move || {
            for (i, mut t) in tasks.into_iter().enumerate() {
                assert_eq!(t.name(), Some(format!("t{i}").as_str()));
                assert!(t.is_finished());
                assert!(!t.cancel_with("late"), "a finished task takes no request");
                let err = t.try_take().unwrap().unwrap_err();
                let c = err.cancelled().expect("cancelled");
                assert_eq!(c.task_name(), Some(format!("t{i}").as_str()));
                let want = (i % 5 == 0).then(|| format!("m{i}"));
                assert_eq!(c.message(), want.as_deref(), "task {i}");
                assert_eq!(t.name(), Some(format!("t{i}").as_str()));
            }
        });
        done.join().unwrap();
    }

    // `cancel_with` from another thread races the task's completion on the
    // loop and its deallocation: the message lands in the table entry the
    // loop reads (a cancelled result always carries it), and the entry is
    // freed once, by whichever side drops the last reference.
    fn cancel_with_from_another_thread_races_completion(rt) {
        let rounds = support::scaled(400);
        let (tx, rx) = std::sync::mpsc::channel::<Option<task::TaskHandle>>();
        let canceller = std::thread::spawn(move || {
            let mut accepted = 0usize;
            while let Some(h) = rx.recv().unwrap() {
                accepted += usize::from(h.cancel_with("stop"));
                // The handle's name is read after the cancel, from here.
                assert!(h.name().is_none_or(|n| n.starts_with('r')));
                drop(h);
            }
            accepted
        });
        let cancelled = rt.block_on(async move {
            let mut cancelled = 0usize;
            for r in 0..rounds {
                let t = if r % 2 == 0 {
                    task::Builder::new().name(format!("r{r}")).spawn(async move {
                        for _ in 0..(r % 4) {
                            yield_now().await;
                        }
                        r
                    })
                } else {
                    spawn(async move {
                        for _ in 0..(r % 4) {
                            yield_now().await;
                        }
                        r
                    })
                };
                let h = task::all_tasks().into_iter().find(|h| h.id() == t.id()).unwrap();
                tx.send(Some(h)).unwrap();
                match t.await {
                    Ok(v) => assert_eq!(v, r),
                    Err(e) => {
                        let c = e.cancelled().expect("cancelled");
                        assert_eq!(c.message(), Some("stop"), "round {r}");
                        cancelled += 1;
                    }
                }
            }
            tx.send(None).unwrap();
            cancelled
        });
        let accepted = canceller.join().unwrap();
        assert!(cancelled <= accepted, "{cancelled} cancelled, {accepted} accepted");
    }

    // A thread reads a named task's name (through its handle) while the
    // loop inserts and removes many other entries (named and cooperative
    // tasks spawned and completed: the table rehashes), so the entry it
    // reads must stay put (Miri: a moved or freed entry is a use after
    // free on the reading thread).
    fn a_name_read_from_another_thread_while_the_table_rehashes(rt) {
        use std::sync::atomic::AtomicBool;
        let n = support::scaled(3000);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<task::TaskHandle>();
        let s = stop.clone();
        let reader = std::thread::spawn(move || {
            let h = rx.recv().unwrap();
            let mut reads = 0usize;
            while !s.load(Ordering::SeqCst) || reads == 0 {
                assert_eq!(h.name(), Some("first"));
                reads += 1;
                std::thread::yield_now();
            }
            reads
        });
        let go = Arc::new(AtomicBool::new(false));
        let g = go.clone();
        rt.block_on(async move {
            let first = task::Builder::new().name("first").spawn(parked::<8>(g.clone()));
            tx.send(task::all_tasks().into_iter().find(|h| h.id() == first.id()).unwrap()).unwrap();
            let mut batch = Vec::new();
            for i in 0..n {
                let b = task::Builder::new().name(format!("n{i}"));
                let b = if i % 2 == 0 { b.cooperative_cancel() } else { b };
                batch.push(b.spawn(async move { i }));
                if batch.len() == 64 {
                    for (j, t) in batch.drain(..).enumerate() {
                        assert_eq!(t.await.unwrap() % 64, j);
                    }
                }
            }
            for t in batch {
                t.await.unwrap();
            }
            stop.store(true, Ordering::SeqCst);
            g.store(true, Ordering::SeqCst);
            first.await.unwrap();
        });
        assert!(reader.join().unwrap() > 0);
    }

    // Destructors that run during the runtime's shutdown use the table: a
    // future's drop reads its own and another task's name, cancels another
    // task with a message, lists the tasks left with their names, and spawns
    // a named cooperative task (which the closed loop cancels at once).
    fn the_table_used_by_destructors_during_shutdown(rt) {
        type Slot = Rc<RefCell<Option<(task::TaskHandle, task::TaskHandle)>>>;
        struct OnDrop {
            slot: Slot,
            seen: Rc<RefCell<Vec<String>>>,
        }
        impl Drop for OnDrop {
            fn drop(&mut self) {
                let (me, other) = self.slot.borrow_mut().take().unwrap();
                self.seen.borrow_mut().push(format!("me {}", me.name().unwrap()));
                assert!(other.name().unwrap().starts_with('d'));
                let _ = other.cancel_with("from a destructor");
                for h in task::all_tasks() {
                    assert!(h.name().unwrap().starts_with('d'));
                }
                let late = task::Builder::new()
                    .name("late")
                    .cooperative_cancel()
                    .spawn(async { 1 });
                assert_eq!(late.name(), Some("late"));
                assert!(late.is_finished());
                assert!(!late.cancel_with("too late"));
            }
        }
        let seen = Rc::new(RefCell::new(Vec::new()));
        let own = support::runtime_with(support::choice_like(rt));
        let n = support::scaled(200);
        let s = seen.clone();
        own.block_on(async move {
            let mut handles: Vec<task::TaskHandle> = Vec::new();
            for i in 0..n {
                let slot: Slot = Rc::new(RefCell::new(None));
                let guard = OnDrop { slot: slot.clone(), seen: s.clone() };
                let b = task::Builder::new().name(format!("d{i}"));
                let b = if i % 2 == 0 { b.cooperative_cancel() } else { b };
                let t = if i % 3 == 0 {
                    b.spawn(async move {
                        let bytes = [0u8; 1000];
                        std::future::pending::<()>().await;
                        drop((guard, bytes));
                    })
                } else {
                    b.spawn(async move {
                        std::future::pending::<()>().await;
                        drop(guard);
                    })
                };
                handles.push(task::all_tasks().into_iter().find(|h| h.id() == t.id()).unwrap());
                *slot.borrow_mut() = Some((handles[i].clone(), handles[i / 2].clone()));
                drop(t);
            }
            yield_now().await;
        });
        drop(own);
        let mut seen = seen.borrow().clone();
        seen.sort_unstable();
        let mut want: Vec<String> = (0..n).map(|i| format!("me d{i}")).collect();
        want.sort_unstable();
        assert_eq!(seen, want, "one destructor per task");
    }
}
