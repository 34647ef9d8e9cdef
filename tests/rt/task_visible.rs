//! Tasks are visible (asyncio's `current_task()`, `all_tasks()`, task names,
//! `Task.cancel(msg)`): `coil::task::{current, all_tasks, TaskHandle}`,
//! names in errors and `Debug`, `Task::cancel_with`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coil::task::{Builder, TaskError, TaskId, all_tasks, current, yield_now};
use coil::time::sleep;

fn names() -> Vec<Option<String>> {
    let mut v: Vec<_> = all_tasks()
        .iter()
        .map(|t| t.name().map(str::to_owned))
        .collect();
    v.sort();
    v
}

fn some(names: &[&str]) -> Vec<Option<String>> {
    names.iter().map(|n| Some((*n).to_owned())).collect()
}

#[test]
fn current_is_none_outside_a_loop() {
    assert!(current().is_none());
}

#[test]
#[should_panic(expected = "all_tasks was called outside a coil runtime")]
fn all_tasks_outside_a_loop_panics() {
    let _ = all_tasks();
}

driver_test! {
    fn current_is_the_running_task(rt) {
        rt.block_on(async {
            // The main future is not a task (asyncio's main coroutine is).
            assert!(current().is_none());
            let t = Builder::new().name("me").spawn(async {
                let me = current().expect("inside a task");
                yield_now().await;
                let again = current().unwrap();
                assert_eq!(me, again);
                (me.id(), me.name().map(str::to_owned), me.is_finished())
            });
            let anon = coil::spawn(async { current().map(|t| (t.id(), t.name().is_none())) });
            let (id, name, finished) = t.await.unwrap();
            assert_eq!(name.as_deref(), Some("me"));
            assert!(!finished);
            let (anon_id, unnamed) = anon.await.unwrap().unwrap();
            assert!(unnamed);
            assert_ne!(id, anon_id);
            assert!(current().is_none());
        });
    }
}

driver_test! {
    fn current_id_matches_the_spawn_handle(rt) {
        rt.block_on(async {
            let seen: Rc<RefCell<Option<TaskId>>> = Rc::default();
            let s = seen.clone();
            let t = coil::spawn(async move { *s.borrow_mut() = current().map(|c| c.id()) });
            let id = t.id();
            t.await.unwrap();
            assert_eq!(*seen.borrow(), Some(id));
        });
    }
}

/// Records `current()` when dropped: the destructors of a cancelled task's
/// locals run as that task, as asyncio's `finally` blocks do.
struct OnDrop(Rc<RefCell<Vec<Option<String>>>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let who = current().and_then(|t| t.name().map(str::to_owned));
        self.0.borrow_mut().push(who);
    }
}

driver_test! {
    fn a_cancelled_tasks_destructors_see_it_as_current(rt) {
        let log: Rc<RefCell<Vec<Option<String>>>> = Rc::default();
        let l = log.clone();
        rt.block_on(async move {
            let t = Builder::new().name("victim").spawn(async move {
                let _g = OnDrop(l);
                std::future::pending::<()>().await;
            });
            yield_now().await;
            assert!(t.cancel());
            assert!(t.await.unwrap_err().is_cancelled());
        });
        assert_eq!(*log.borrow(), some(&["victim"]));
    }
}

driver_test! {
    fn all_tasks_lists_the_unfinished_ones(rt) {
        rt.block_on(async {
            assert!(all_tasks().is_empty());
            let a = Builder::new().name("a").spawn(sleep(Duration::from_millis(1)));
            let b = Builder::new().name("b").spawn(std::future::pending::<()>());
            let c = Builder::new().name("c").spawn(async { names() });
            // Spawned but not yet run: listed.
            assert_eq!(names(), some(&["a", "b", "c"]));
            // The calling task lists itself.
            assert_eq!(c.await.unwrap(), some(&["a", "b", "c"]));
            assert_eq!(names(), some(&["a", "b"]));
            a.await.unwrap();
            assert_eq!(names(), some(&["b"]));
            // Cancelled but not yet dropped by the loop: still there.
            assert!(b.cancel());
            assert_eq!(names(), some(&["b"]));
            assert!(b.await.unwrap_err().is_cancelled());
            assert!(all_tasks().is_empty());
        });
    }
}

driver_test! {
    fn a_task_handle_outlives_its_task(rt) {
        rt.block_on(async {
            let t = Builder::new().name("short").spawn(async { current().unwrap() });
            let handle = t.await.unwrap();
            assert!(handle.is_finished());
            assert_eq!(handle.name(), Some("short"));
            assert!(!handle.cancel());
            let dbg = format!("{handle:?}");
            assert!(dbg.contains("\"short\"") && dbg.contains("finished: true"), "{dbg}");
        });
    }
}

driver_test! {
    fn cancel_with_reaches_the_awaiter(rt) {
        rt.block_on(async {
            let t = Builder::new().name("worker").spawn(std::future::pending::<()>());
            assert!(t.cancel_with("shutting down"));
            // A second request changes nothing, its message included.
            assert!(!t.cancel_with("second"));
            assert!(!t.cancel());
            let err = t.await.unwrap_err();
            let c = err.cancelled().expect("cancelled");
            assert_eq!(c.message(), Some("shutting down"));
            assert_eq!(c.task_name(), Some("worker"));
            assert_eq!(err.to_string(), r#"task "worker" was cancelled: shutting down"#);
            assert!(format!("{err:?}").contains("shutting down"));

            let plain = coil::spawn(std::future::pending::<()>());
            let id = plain.id();
            plain.cancel();
            let err = plain.await.unwrap_err();
            assert_eq!(err.to_string(), "task was cancelled");
            let c = err.cancelled().unwrap();
            assert_eq!((c.message(), c.task_id()), (None, Some(id)));

            // A finished task keeps its result; the message goes nowhere.
            let done = coil::spawn(async { 5 });
            yield_now().await;
            assert!(done.is_finished());
            assert!(!done.cancel_with("too late"));
            assert_eq!(done.await.unwrap(), 5);
        });
    }
}

driver_test! {
    fn a_task_cancels_itself_with_a_message(rt) {
        rt.block_on(async {
            let t = Builder::new().name("self").spawn(async {
                assert!(current().unwrap().cancel_with("enough"));
                // The request takes effect at the next suspension.
                yield_now().await;
                unreachable!("a cancelled task is not polled again");
            });
            let err = t.await.unwrap_err();
            assert_eq!(err.cancelled().and_then(|c| c.message()), Some("enough"));
        });
    }
}

driver_test! {
    fn cancel_with_from_another_thread(rt) {
        rt.block_on(async {
            let t = Builder::new().name("remote").spawn(std::future::pending::<()>());
            // The request goes through the loop's remote queue; the loop is
            // blocked in this join meanwhile and takes it at its next tick.
            let t = std::thread::spawn(move || {
                assert!(t.cancel_with("from a thread"));
                t
            })
            .join()
            .unwrap();
            let err = t.await.unwrap_err();
            assert_eq!(err.to_string(), r#"task "remote" was cancelled: from a thread"#);
        });
    }
}

driver_test! {
    fn a_panic_names_its_task(rt) {
        rt.block_on(async {
            let t = Builder::new().name("parser").spawn(async { panic!("bad input") });
            let err = t.await.unwrap_err();
            assert_eq!(err.to_string(), r#"task "parser" panicked: bad input"#);
            let p = err.panic().unwrap();
            assert_eq!((p.task_name(), p.message()), (Some("parser"), Some("bad input")));

            let anon = coil::spawn(async { panic!("boom") });
            let id = anon.id();
            let err = anon.await.unwrap_err();
            assert_eq!(err.to_string(), "task panicked: boom");
            assert_eq!(err.panic().unwrap().task_id(), Some(id));
        });
    }
}

driver_test! {
    fn debug_output_shows_names(rt) {
        rt.block_on(async {
            let t = Builder::new().name("dbg").spawn(async {});
            let s = format!("{t:?}");
            assert!(s.contains("name: Some(\"dbg\")"), "{s}");
            let h = all_tasks().pop().unwrap();
            assert!(format!("{h:?}").contains("\"dbg\""), "{h:?}");
            t.await.unwrap();
        });
    }
}

/// Under the simulator the virtual clock decides when each task ends:
/// `all_tasks` shrinks in deadline order.
#[test]
fn all_tasks_follows_the_virtual_clock() {
    coil::sim::Builder::new().seed(7).run(async {
        for (name, ms) in [("slow", 30u64), ("fast", 10), ("mid", 20)] {
            drop(
                Builder::new()
                    .name(name)
                    .spawn(sleep(Duration::from_millis(ms))),
            );
        }
        assert_eq!(names(), some(&["fast", "mid", "slow"]));
        sleep(Duration::from_millis(15)).await;
        assert_eq!(names(), some(&["mid", "slow"]));
        sleep(Duration::from_millis(10)).await;
        assert_eq!(names(), some(&["slow"]));
        sleep(Duration::from_millis(10)).await;
        assert!(all_tasks().is_empty());
    });
}

#[test]
fn task_error_is_still_send_sync() {
    fn check<T: Send + Sync + std::error::Error>() {}
    check::<TaskError>();
    check::<coil::task::Cancelled>();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<coil::task::TaskHandle>();
}
