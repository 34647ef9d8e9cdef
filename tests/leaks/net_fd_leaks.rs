//! Fd accounting: no fd leaks from cancelled accepts or from dropping a
//! runtime with ops in flight (docs/reliability.md, checks 27, 28).
//!
//! Called by `main.rs`'s single test: the counts are process-wide.

use crate::support;

use std::time::Duration;

use coil::net::{TcpListener, TcpStream};
use coil::runtime::DriverChoice;
use coil::spawn;
use coil::time::{sleep, timeout};

use support::open_fds;

pub(crate) fn no_fd_leaks() {
    support::run_watched(|| {
        for choice in [DriverChoice::Uring, DriverChoice::Epoll] {
            let rt = coil::Runtime::builder().driver(choice).build().unwrap();
            cancelled_accept_keeps_the_connection(&rt);
            drop(rt);
            runtime_drop_with_ops_in_flight(choice);
        }
    });
}

fn cancelled_accept_keeps_the_connection(rt: &coil::Runtime) {
    // Item 27: cancel racing completion for accept: no fd leaks, no
    // connection lost.
    rt.block_on(async {
        let before = open_fds();
        {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            for _ in 0..support::scaled(100) {
                let accept = l.accept();
                let r = support::poll_once(accept).await;
                assert!(r.is_none());
                let c = TcpStream::connect(addr).await.unwrap();
                let (s, _) = l.accept().await.unwrap();
                assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
            }
            // One accept dropped while a connection is on its way: the
            // listener keeps it, and closes it when dropped.
            let c = TcpStream::connect(addr).await.unwrap();
            let _ = timeout(Duration::from_millis(1), l.accept()).await;
            drop(c);
        }
        // Wait (by yielding, not sleeping) until the dropped accept's
        // completion came back and released the listener.
        while coil::runtime::stats().unwrap().io_ops > 0 {
            coil::task::yield_now().await;
        }
        assert_eq!(open_fds(), before, "fds leaked");
    });
}

fn runtime_drop_with_ops_in_flight(choice: DriverChoice) {
    // Item 28: pending accept and reads; dropping the runtime returns
    // promptly and closes every fd.
    {
        {
            let before = open_fds();
            let start = std::time::Instant::now();
            {
                let rt = coil::Runtime::builder().driver(choice).build().unwrap();
                rt.block_on(async {
                    let l = TcpListener::bind("127.0.0.1:0").unwrap();
                    let addr = l.local_addr().unwrap();
                    let (a, _b) = {
                        let c = spawn(TcpStream::connect(addr));
                        let (s, _) = l.accept().await.unwrap();
                        (c.await.unwrap().unwrap(), s)
                    };
                    drop(spawn(async move {
                        let _ = l.accept().await;
                    }));
                    drop(spawn(async move {
                        let _ = a.read(Vec::with_capacity(1024)).await;
                    }));
                    drop(spawn(sleep(Duration::from_secs(3600))));
                    coil::task::yield_now().await;
                    coil::task::yield_now().await;
                });
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{choice:?}: slow drop"
            );
            assert_eq!(open_fds(), before, "{choice:?}: fds leaked");
        }
    }
}
