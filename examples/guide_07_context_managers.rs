//! Guide chapter 7: async context managers (docs/guide/07-context-managers.md).
//!
//! `async with lock:` is a guard that releases on drop; `async with
//! asyncio.Semaphore(2)` bounds concurrency the same way; `async with
//! asyncio.TaskGroup() as tg:` is `coil::task_group(|tg| async move { .. })`.

use std::rc::Rc;
use std::time::Duration;

use coil::sync::{Mutex, Semaphore};
use coil::time::{Instant, sleep};
use coil::{TaskGroup, task_group};

const TICK: Duration = Duration::from_millis(10);

/// `async with lock:` around a read-modify-write that awaits in the middle.
pub(crate) async fn lock_guard() {
    let balance = Rc::new(Mutex::new(100));
    let withdrawals = [30, 50, 40].map(|amount| {
        let balance = balance.clone();
        async move {
            let mut b = balance.lock().await; // async with lock:
            if *b >= amount {
                sleep(TICK).await; // the guard is held across the await
                *b -= amount;
                println!("withdrew {amount}, balance {}", *b);
            } else {
                println!("refused {amount}, balance only {}", *b);
            }
        } // guard dropped: the lock is released, like __aexit__
    });
    coil::gather_all(withdrawals).await;
    assert_eq!(*balance.lock().await, 20);
}

/// `async with sem:` lets at most two workers in at once.
pub(crate) async fn semaphore_guard() {
    let sem = Rc::new(Semaphore::new(2));
    let start = Instant::now();
    coil::gather_all((0..4).map(|i| {
        let sem = sem.clone();
        async move {
            let _permit = sem.acquire().await.expect("semaphore open");
            println!("worker {i} in at {} ms", start.elapsed().as_millis());
            sleep(TICK).await;
        }
    }))
    .await;
    assert!(start.elapsed() >= TICK * 2, "two rounds of two");
}

/// `async with asyncio.TaskGroup() as tg:`, first when all goes well, then
/// when a child fails and the group cancels its sibling.
pub(crate) async fn task_groups() {
    let (mut a, mut b) = task_group(|tg: TaskGroup| async move {
        let a = tg.spawn(async {
            sleep(TICK).await;
            "first"
        });
        let b = tg.spawn(async {
            sleep(TICK * 2).await;
            "second"
        });
        Ok((a, b))
    })
    .await
    .expect("no child failed");
    println!(
        "Both tasks have completed now: {}, {}",
        a.take().unwrap(),
        b.take().unwrap()
    );

    let err = task_group(|tg: TaskGroup<String>| async move {
        tg.spawn(async {
            sleep(Duration::from_secs(3600)).await;
            println!("never printed: the group cancels this child");
        });
        tg.try_spawn(async {
            sleep(TICK).await;
            Err::<(), _>("connection refused".to_string())
        });
        Ok(())
    })
    .await
    .unwrap_err();
    println!("{err}");
    assert_eq!(err.cancelled(), [0]);
}

/// Runs the chapter's programs in order.
pub(crate) async fn demo() {
    lock_guard().await;
    semaphore_guard().await;
    task_groups().await;
}

#[allow(dead_code)]
fn main() {
    coil::run(demo());
}
