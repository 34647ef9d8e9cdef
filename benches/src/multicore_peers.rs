//! W8's rows for the peers and the reference rows (WORKLOADS.md, W8): W8a
//! on monoio (a runtime per thread) and glommio (an executor per CPU); W8b
//! on tokio (two current_thread runtimes), glommio's `shared_channel`
//! (sleeping, and with its own 100 µs spin-before-park), std's
//! `sync_channel(1)` between two sleeping threads and an `AtomicU64` spun
//! on by both (the floor of a cache-line hand-off).
//!
//! monoio has no cross-thread channel of its own, so it has no W8b row.
//! Every thread pins itself (thread i on CPU i); a W8a run builds its
//! runtimes before the clock starts (a barrier), as the coil rows build
//! their pool first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::peers::ns_since;

use super::{pin_thread, task_work};

/// A timed result: (elapsed ns, checksum).
type Timed = Result<(u64, u64), String>;

/// The share `[first, last)` of the `n` tasks that loop `i` of `loops` runs.
pub(super) fn share(i: usize, loops: usize, n: u64) -> (u64, u64) {
    let per = n / loops as u64;
    let first = i as u64 * per;
    let last = if i + 1 == loops { n } else { first + per };
    (first, last)
}

/// Runs `body(i)` on `loops` threads pinned one per CPU; each builds its
/// runtime, meets the others at a barrier, then works. The clock runs from
/// the barrier to the last join. Returns (ns, XOR of the bodies' results).
pub(super) fn per_cpu<F>(loops: usize, body: F) -> Timed
where
    F: Fn(usize, &Barrier) -> Result<u64, String> + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let barrier = Arc::new(Barrier::new(loops + 1));
    let threads: Vec<_> = (0..loops)
        .map(|i| {
            let (body, barrier) = (body.clone(), barrier.clone());
            std::thread::spawn(move || {
                pin_thread(i);
                body(i, &barrier)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut x = 0;
    for t in threads {
        x ^= t.join().map_err(|_| "a W8a thread panicked")??;
    }
    Ok((ns_since(start), x))
}

/// W8a on monoio: one io_uring runtime per thread.
pub(super) fn w8a_monoio(loops: usize, n: u64) -> Timed {
    per_cpu(loops, move |i, barrier| {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .build()
            .map_err(|e| format!("monoio runtime: {e}"))?;
        barrier.wait();
        let (first, last) = share(i, loops, n);
        Ok(rt.block_on(async move {
            let tasks: Vec<_> = (first..last)
                .map(|j| monoio::spawn(async move { task_work(j) }))
                .collect();
            let mut x = 0;
            for t in tasks {
                x ^= t.await;
            }
            x
        }))
    })
}

/// W8a on glommio: one `LocalExecutor` per CPU.
pub(super) fn w8a_glommio(loops: usize, n: u64) -> Timed {
    per_cpu(loops, move |i, barrier| {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(i))
            .make()
            .map_err(|e| format!("glommio executor: {e}"))?;
        barrier.wait();
        let (first, last) = share(i, loops, n);
        Ok(ex.run(async move {
            let tasks: Vec<_> = (first..last)
                .map(|j| glommio::spawn_local(async move { task_work(j) }))
                .collect();
            let mut x = 0;
            for t in tasks {
                x ^= t.await;
            }
            x
        }))
    })
}

/// Runs the bouncer `b` on a thread pinned to CPU 1 and the timed side `a`
/// on one pinned to CPU 0; returns what `a` returns.
pub(super) fn two_threads<A, B>(a: A, b: B) -> Timed
where
    A: FnOnce() -> Timed + Send + 'static,
    B: FnOnce() + Send + 'static,
{
    let b = std::thread::spawn(move || {
        pin_thread(1);
        b();
    });
    let a = std::thread::spawn(move || {
        pin_thread(0);
        a()
    });
    let r = a.join().map_err(|_| "thread A panicked")?;
    b.join().map_err(|_| "thread B panicked")?;
    r
}

/// W8b on glommio: two executors (CPUs 0 and 1), two `shared_channel`s of
/// capacity 1; `spin` is glommio's own spin-before-park (zero: off).
pub(super) fn w8b_glommio(n: u64, spin: Duration) -> Timed {
    use glommio::channels::shared_channel;
    let (there_tx, there_rx) = shared_channel::new_bounded::<u64>(1);
    let (back_tx, back_rx) = shared_channel::new_bounded::<u64>(1);
    let executor = move |cpu: usize| {
        let b = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(cpu));
        if spin.is_zero() {
            b
        } else {
            b.spin_before_park(spin)
        }
    };
    two_threads(
        move || {
            let ex = executor(0).make().map_err(|e| format!("glommio: {e}"))?;
            ex.run(async move {
                let (tx, rx) = (there_tx.connect().await, back_rx.connect().await);
                let start = Instant::now();
                let mut sum = 0;
                for i in 0..n {
                    tx.send(i).await.map_err(|_| "B is gone")?;
                    sum += rx.recv().await.ok_or("B is gone")?;
                }
                Ok((ns_since(start), sum))
            })
        },
        move || {
            let Ok(ex) = executor(1).make() else { return };
            ex.run(async move {
                let (rx, tx) = (there_rx.connect().await, back_tx.connect().await);
                while let Some(v) = rx.recv().await {
                    if tx.send(v).await.is_err() {
                        return;
                    }
                }
            });
        },
    )
}

/// W8b reference: two plain threads and two `std::sync::mpsc::sync_channel(1)`.
pub(super) fn w8b_std(n: u64) -> Timed {
    use std::sync::mpsc::sync_channel;
    let (there_tx, there_rx) = sync_channel::<u64>(1);
    let (back_tx, back_rx) = sync_channel::<u64>(1);
    two_threads(
        move || {
            let start = Instant::now();
            let mut sum = 0;
            for i in 0..n {
                there_tx.send(i).map_err(|_| "B is gone")?;
                sum += back_rx.recv().map_err(|_| "B is gone")?;
            }
            Ok((ns_since(start), sum))
        },
        move || {
            while let Ok(v) = there_rx.recv() {
                if back_tx.send(v).is_err() {
                    return;
                }
            }
        },
    )
}

/// W8b floor: one `AtomicU64` both threads spin on. A sends `2i + 1`
/// (odd: a request), B answers `2i + 2` (even: the reply); `u64::MAX` stops B.
pub(super) fn w8b_spin(n: u64) -> Timed {
    let cell = Arc::new(AtomicU64::new(0));
    let b_cell = cell.clone();
    two_threads(
        move || {
            let start = Instant::now();
            let mut batches = super::Batches::new();
            let mut sum = 0;
            for i in 0..n {
                cell.store(2 * i + 1, Ordering::Release);
                while cell.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
                sum += i;
                batches.done(i);
            }
            let ns = ns_since(start);
            cell.store(u64::MAX, Ordering::Release);
            Ok((ns, sum))
        },
        move || {
            loop {
                let v = b_cell.load(Ordering::Acquire);
                if v == u64::MAX {
                    return;
                }
                if v % 2 == 1 {
                    b_cell.store(v + 1, Ordering::Release);
                }
                std::hint::spin_loop();
            }
        },
    )
}
