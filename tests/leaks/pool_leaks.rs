//! Dropping a `coil::pool::Pool` leaks no thread, fd or ring: the counts of
//! `/proc/self/task` and `/proc/self/fd` after equal those before, under
//! io_uring and epoll, with work still in flight when the pool is dropped.
//!
//! Called by `main.rs`'s single test: the counts are process-wide.

use crate::support;

use std::time::Duration;

use coil::pool::{CoreId, Pool};
use coil::runtime::DriverChoice;
use coil::sync::oneshot;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

pub(crate) fn dropping_a_pool_leaks_no_thread_or_fd() {
    support::run_watched(|| {
        for choice in [DriverChoice::Uring, DriverChoice::Epoll] {
            let before = (threads(), support::open_fds());
            let pool = Pool::builder()
                .loops(2)
                .driver(choice)
                .drain_timeout(Duration::ZERO)
                .build()
                .unwrap();
            assert_eq!(threads(), before.0 + 2, "{choice:?}: one thread per loop");
            assert!(
                support::open_fds() > before.1,
                "{choice:?}: each loop has its driver's fds"
            );
            let handle = pool.handle().clone();
            pool.run(move |core| {
                let handle = handle.clone();
                async move {
                    // A socket on each loop, and a round trip to the other loop.
                    let _sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                    let other = CoreId::new(1 - core.index());
                    handle.spawn_on(other, async { 1 }).await.unwrap();
                    Ok::<_, ()>(())
                }
            })
            .unwrap();
            // Work in flight at the drop: a task waiting forever on each loop
            // (cancelled: the drain deadline is zero), detached.
            let (started_tx, started_rx) = oneshot::channel::<()>();
            let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
            let _stuck = pool
                .spawn_on(CoreId::new(0), async move {
                    let _dropped = dropped_tx;
                    started_tx.send(()).unwrap();
                    std::future::pending::<()>().await
                })
                .detach();
            started_rx.blocking_recv().unwrap();
            drop(pool);
            assert!(
                dropped_rx.blocking_recv().is_err(),
                "the stuck task was dropped"
            );
            drop(_stuck);
            assert_eq!(
                (threads(), support::open_fds()),
                before,
                "{choice:?}: leaked threads or fds"
            );
        }
    });
}
