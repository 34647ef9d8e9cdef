//! Task cells of many sizes (the slab's size classes, a boxed large cell, a
//! boxed over-aligned one) through every end a task can have: joined,
//! detached, panicked, an output whose destructor panics, left pending when
//! the loop is dropped, and freed last by a waker held on another thread.
//! The slab's own invariants (chunk counts per class) are unit tests of
//! `src/task/raw/slab.rs`; this file runs under the ASan tier.

use std::sync::mpsc;
use std::task::{Poll, Waker};

use coil::task::yield_now;

/// How a `sized` task ends.
#[derive(Clone, Copy)]
enum End {
    Return,
    Panic,
    Pend,
}

/// A future holding `N` bytes across a suspension point, then ending as
/// `end` says.
async fn sized<const N: usize>(tag: u8, end: End) -> [u8; N] {
    let bytes = [tag; N];
    yield_now().await;
    match end {
        End::Return => {}
        End::Panic => panic!("a task of {N} bytes panics"),
        End::Pend => std::future::pending::<()>().await,
    }
    bytes
}

/// An output whose destructor panics (for a detached task).
struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("an output's destructor panics");
    }
}

/// On the default driver (`COIL_DRIVER` picks it): the test drops the
/// runtime itself, before the thread holding a waker lets it go.
#[test]
fn cells_of_many_sizes_outlive_their_loop() {
    let (wake_tx, wake_rx) = mpsc::channel::<Waker>();
    let holder = std::thread::spawn(move || wake_rx.into_iter().collect::<Vec<_>>());
    let rt = coil::Runtime::new().unwrap();
    rt.block_on(async move {
        assert_eq!(coil::spawn(sized::<1>(1, End::Return)).await.unwrap(), [1]);
        assert_eq!(
            coil::spawn(sized::<100>(2, End::Return)).await.unwrap()[99],
            2
        );
        assert_eq!(
            coil::spawn(sized::<420>(3, End::Return)).await.unwrap()[419],
            3
        );
        // Past the slab's largest class: boxed.
        assert_eq!(
            coil::spawn(sized::<700>(4, End::Return)).await.unwrap()[699],
            4
        );
        // Boxed for its alignment.
        #[repr(align(16))]
        struct Wide(u8);
        assert_eq!(coil::spawn(async { Wide(5) }).await.unwrap().0, 5);
        assert!(coil::spawn(sized::<420>(6, End::Panic)).await.is_err());
        drop(coil::spawn(sized::<100>(7, End::Panic)));
        drop(coil::spawn(async { PanicOnDrop }));
        // Left pending when the loop is dropped; one's waker is held by
        // another thread, which frees that cell last.
        drop(coil::spawn(sized::<420>(8, End::Pend)));
        let pending = coil::spawn(sized::<100>(9, End::Pend));
        let tx = wake_tx;
        drop(coil::spawn(async move {
            std::future::poll_fn(|cx| {
                tx.send(cx.waker().clone()).unwrap();
                Poll::Ready(())
            })
            .await;
            std::future::pending::<()>().await
        }));
        for _ in 0..4 {
            yield_now().await;
        }
        drop(pending);
    });
    drop(rt);
    // The last waker, dropped by the holder after the loop is gone, frees
    // its task's cell on that thread.
    assert_eq!(holder.join().unwrap().len(), 1);
}

/// A future of about `N` bytes that sends a clone of its waker to `wakers`,
/// then yields twice and returns its last byte.
async fn held<const N: usize>(tag: u8, wakers: mpsc::Sender<Waker>) -> u8 {
    let bytes = [tag; N];
    std::future::poll_fn(|cx| {
        let _ = wakers.send(cx.waker().clone());
        Poll::Ready(())
    })
    .await;
    yield_now().await;
    yield_now().await;
    bytes[N - 1]
}

type Spawner = (
    coil::Handle,
    mpsc::Sender<coil::Task<u8>>,
    mpsc::Sender<Waker>,
);

/// Spawns one more task from a thread-local destructor as its thread exits
/// (its cell then comes from a chunk of its own).
struct SpawnAtExit(Option<Spawner>);

impl Drop for SpawnAtExit {
    fn drop(&mut self) {
        if let Some((h, tasks, wakers)) = self.0.take() {
            let _ = tasks.send(h.spawn(held::<64>(9, wakers)));
        }
    }
}

thread_local! {
    static SPAWN_AT_EXIT: std::cell::RefCell<SpawnAtExit> =
        const { std::cell::RefCell::new(SpawnAtExit(None)) };
}

/// Cells of three classes allocated on short-lived threads (`Handle::spawn`,
/// and from a destructor at their exit), run and freed on the loop or by a
/// waker dropped on a third thread after the allocating threads exited:
/// every chunk is freed by whichever thread frees its last cell. Run under
/// ASan *without* `--cfg coil_box_tasks`, a chunk freed while a cell in it
/// is alive is a heap-use-after-free (checked: freeing one decrement early
/// fails it).
#[test]
fn cells_of_exited_threads_freed_across_threads() {
    let (wakers_tx, wakers_rx) = mpsc::channel::<Waker>();
    let holder = std::thread::spawn(move || {
        let mut n = 0;
        for w in wakers_rx {
            n += 1;
            if n % 3 == 0 {
                w.wake();
            }
        }
        n
    });
    let rt = coil::Runtime::new().unwrap();
    let handle = rt.handle();
    rt.block_on(async move {
        for round in 0..20u8 {
            let (tasks_tx, tasks_rx) = mpsc::channel();
            let threads: Vec<_> = (0..4u8)
                .map(|t| {
                    let spawner = (handle.clone(), tasks_tx.clone(), wakers_tx.clone());
                    std::thread::spawn(move || {
                        let (h, tasks, wakers) = spawner.clone();
                        SPAWN_AT_EXIT.with(|s| s.borrow_mut().0 = Some(spawner));
                        for i in 0..200u8 {
                            let tag = round ^ t ^ i;
                            let task = match i % 3 {
                                0 => h.spawn(held::<40>(tag, wakers.clone())),
                                1 => h.spawn(held::<200>(tag, wakers.clone())),
                                _ => h.spawn(held::<64>(tag, wakers.clone())),
                            };
                            tasks.send(task).unwrap();
                        }
                    })
                })
                .collect();
            drop(tasks_tx);
            for t in threads {
                t.join().unwrap();
            }
            let mut n = 0;
            for task in tasks_rx {
                if n % 2 == 0 {
                    task.await.unwrap();
                }
                n += 1;
            }
            assert_eq!(n, 4 * 201, "200 tasks and one at exit per thread");
        }
    });
    drop(rt);
    assert!(holder.join().unwrap() > 0);
}

/// Slab cells of loops on short-lived threads: each thread runs a runtime
/// of its own, whose tasks (three classes) send a waker to a holder thread
/// and stay pending; the runtime is dropped and its thread exits, and only
/// then does the holder wake (or drop) the wakers. Each wake goes to its
/// task's runtime, found through the task's chunk (`task/raw/slab.rs`,
/// "The runtime"), whose queue is closed: the wake releases the reference,
/// and the last one of a chunk frees it, with the `Shared` it holds, on the
/// holder's thread. Under the asan-slab tier, a chunk (or its `Shared`)
/// freed while a cell of it is alive is a heap-use-after-free.
#[test]
fn cells_of_exited_loops_woken_after_their_runtime_is_gone() {
    let (wakers_tx, wakers_rx) = mpsc::channel::<Waker>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let wakers: Vec<_> = wakers_rx.into_iter().collect();
        // Every loop thread has exited (the test joined them all).
        go_rx.recv().unwrap();
        let n = wakers.len();
        for (i, w) in wakers.into_iter().enumerate() {
            match i % 3 {
                0 => w.wake(),
                1 => w.wake_by_ref(),
                _ => drop(w),
            }
        }
        n
    });
    let loops: Vec<_> = (0..4u8)
        .map(|t| {
            let wakers = wakers_tx.clone();
            std::thread::spawn(move || {
                let rt = coil::Runtime::new().unwrap();
                rt.block_on(async move {
                    for i in 0..60u8 {
                        let w = wakers.clone();
                        let tag = t ^ i;
                        let pend = |w: mpsc::Sender<Waker>| async move {
                            std::future::poll_fn(|cx| {
                                w.send(cx.waker().clone()).unwrap();
                                Poll::Ready(())
                            })
                            .await;
                            std::future::pending::<()>().await
                        };
                        match i % 3 {
                            0 => drop(coil::spawn(async move {
                                let bytes = [tag; 40];
                                pend(w).await;
                                bytes[39]
                            })),
                            1 => drop(coil::spawn(async move {
                                let bytes = [tag; 200];
                                pend(w).await;
                                bytes[199]
                            })),
                            _ => drop(coil::spawn(async move {
                                let bytes = [tag; 64];
                                pend(w).await;
                                bytes[63]
                            })),
                        }
                    }
                    for _ in 0..4 {
                        yield_now().await;
                    }
                });
                drop(rt);
            })
        })
        .collect();
    drop(wakers_tx);
    for l in loops {
        l.join().unwrap();
    }
    go_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap(), 4 * 60);
}

/// Counts the drops of the futures it is part of, by tag; a drop during the
/// runtime's shutdown may spawn a task of its own (the spawn then sees the
/// closed loop).
struct Tally {
    tag: usize,
    drops: std::rc::Rc<std::cell::RefCell<Vec<usize>>>,
    spawn_on_drop: bool,
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.drops.borrow_mut().push(self.tag);
        if self.spawn_on_drop {
            let t = Tally {
                tag: self.tag + 1_000_000,
                drops: self.drops.clone(),
                spawn_on_drop: false,
            };
            drop(coil::spawn(async move {
                std::future::pending::<()>().await;
                drop(t);
            }));
        }
    }
}

/// A pending task of about `N` bytes holding `tally`.
async fn tallied<const N: usize>(tally: Tally) {
    let bytes = [tally.tag as u8; N];
    std::future::pending::<()>().await;
    drop((bytes, tally));
}

driver_test! {
    /// The owned list over slab cells of two classes (several chunks each:
    /// their bound bits and the registry of chunks) and boxed ones (large
    /// and over-aligned: the links in their prefix): `all_tasks` sees every
    /// live task once, completed tasks leave it from any chunk, and the
    /// runtime's drop cancels each task left exactly once, also those whose
    /// future spawns in its destructor.
    fn owned_list_holds_slab_and_boxed_cells(rt) {
        let drops = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let own = crate::support::runtime_with(crate::support::choice_like(rt));
        let d = drops.clone();
        let left = own.block_on(async move {
            let mut handles = Vec::new();
            for tag in 0..400usize {
                let tally = Tally { tag, drops: d.clone(), spawn_on_drop: tag % 7 == 0 };
                #[repr(align(64))]
                struct Wide(Tally);
                handles.push(match tag % 4 {
                    0 | 1 => coil::spawn(tallied::<8>(tally)),
                    2 => coil::spawn(tallied::<300>(tally)),
                    _ if tag % 8 == 3 => coil::spawn(tallied::<900>(tally)),
                    _ => coil::spawn(async move {
                        let w = Wide(tally);
                        std::future::pending::<()>().await;
                        drop(w.0);
                    }),
                });
            }
            yield_now().await;
            assert_eq!(coil::task::all_tasks().len(), 400);
            // Cancel every third: they leave the list from every chunk.
            let mut left = Vec::new();
            for (tag, h) in handles.into_iter().enumerate() {
                if tag % 3 == 0 {
                    h.cancel();
                    assert!(h.await.is_err());
                } else {
                    left.push(tag);
                    drop(h);
                }
            }
            // The cancelled ones that spawned in their destructor added one.
            let spawned = (0..400).filter(|t| t % 21 == 0).count();
            let mut seen: Vec<u64> = coil::task::all_tasks().iter().map(|t| t.id().as_u64()).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), left.len() + spawned, "all_tasks lists each live task once");
            left
        });
        let cancelled: Vec<usize> = (0..400).filter(|t| t % 3 == 0).collect();
        {
            let mut got = drops.borrow().clone();
            got.sort_unstable();
            assert_eq!(got, cancelled, "the cancelled ones, once each");
        }
        drops.borrow_mut().clear();
        drop(own);
        let mut got = drops.borrow().clone();
        got.sort_unstable();
        // The tasks left, what the cancelled ones spawned (still live), and
        // what the ones left spawn while the loop shuts down (dropped at once).
        let mut want = left.clone();
        want.extend((0..400).filter(|t| t % 21 == 0).map(|t| t + 1_000_000));
        want.extend(left.iter().filter(|t| *t % 7 == 0).map(|t| t + 1_000_000));
        want.sort_unstable();
        assert_eq!(got, want, "shutdown drops each task left once");
    }
}

driver_test! {
    /// Two runtimes on one thread, their loops run in turn (each switch
    /// retires the other runtime's current chunk of the class, `slab.rs`
    /// "The runtime"): each runtime's owned list holds its own slab cells
    /// only (its registry, its chunks' bound bits), a name is found in its
    /// own runtime's table, and dropping one runtime drops its tasks and
    /// none of the other's, whose names and results stay readable.
    fn two_runtimes_on_one_thread_keep_their_own_tasks(rt) {
        use std::cell::RefCell;
        use std::rc::Rc;
        let choice = crate::support::choice_like(rt);
        let (a, b) = (crate::support::runtime_with(choice), crate::support::runtime_with(choice));
        let drops = Rc::new(RefCell::new(Vec::new()));
        let (mut ha, mut hb) = (Vec::new(), Vec::new());
        for round in 0..40usize {
            for (k, (r, hs)) in [(&a, &mut ha), (&b, &mut hb)].into_iter().enumerate() {
                let tag = round * 2 + k;
                let d = drops.clone();
                // The task outlives this `block_on`: its handle is the output.
                #[allow(clippy::async_yields_async)]
                let t = r.block_on(async move {
                    let tally = Tally { tag, drops: d, spawn_on_drop: false };
                    let t = coil::task::Builder::new()
                        .name(format!("{tag}"))
                        .spawn(tallied::<8>(tally));
                    yield_now().await;
                    t
                });
                hs.push(t);
            }
        }
        let listed = |r: &coil::Runtime| {
            r.block_on(async {
                let mut tags: Vec<usize> = coil::task::all_tasks()
                    .iter()
                    .map(|t| t.name().unwrap().parse().unwrap())
                    .collect();
                tags.sort_unstable();
                tags
            })
        };
        assert_eq!(listed(&a), (0..80).step_by(2).collect::<Vec<_>>());
        assert_eq!(listed(&b), (1..80).step_by(2).collect::<Vec<_>>());
        for t in ha.iter().step_by(3) {
            assert!(t.cancel_with("a's"));
        }
        drop(a);
        let mut got = drops.borrow().clone();
        got.sort_unstable();
        assert_eq!(got, (0..80).step_by(2).collect::<Vec<_>>(), "a's drop dropped a's tasks only");
        for (i, mut t) in ha.into_iter().enumerate() {
            let err = t.try_take().unwrap().unwrap_err();
            let c = err.cancelled().unwrap();
            assert_eq!(c.task_name(), Some(format!("{}", 2 * i).as_str()));
            assert_eq!(c.message(), (i % 3 == 0).then_some("a's"));
        }
        assert_eq!(listed(&b), (1..80).step_by(2).collect::<Vec<_>>());
        for (i, t) in hb.iter().enumerate() {
            assert!(!t.is_finished());
            assert_eq!(t.name(), Some(format!("{}", 2 * i + 1).as_str()));
        }
        drops.borrow_mut().clear();
        drop(b);
        let mut got = drops.borrow().clone();
        got.sort_unstable();
        assert_eq!(got, (1..80).step_by(2).collect::<Vec<_>>());
        drop(hb);
    }
}
