//! `examples/echo_per_core.rs`'s per-loop server out of fds: the accept
//! error is reported and retried after a pause, and the loop serves the
//! client that waited in the backlog once fds are free (it used to end that
//! loop's server on the first `EMFILE`, the listener closed with it).
#![allow(missing_docs)]

#[path = "../../examples/echo_per_core.rs"]
#[allow(dead_code, unreachable_pub)]
mod echo_per_core;
use crate::support;

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use coil::pool::Pool;

/// Set in the child process of the test below.
const EMFILE_ENV: &str = "COIL_ECHO_PER_CORE_EMFILE_CHILD";

/// A child process per driver with a soft RLIMIT_NOFILE of 64 (see the
/// module docs).
#[test]
fn out_of_fds_a_loop_keeps_accepting() {
    if std::env::var_os(EMFILE_ENV).is_some() {
        return emfile_child();
    }
    support::rerun_per_driver(
        "example_echo_per_core::out_of_fds_a_loop_keeps_accepting",
        EMFILE_ENV,
    );
}

fn emfile_child() {
    let pool = Pool::builder().loops(1).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A client waits in the backlog, and no fd is left to accept it.
    let (queued, filler) = support::connect_then_fill_fd_table(addr, 1);
    let parts = Mutex::new(Some((listener, queued, filler)));
    let stop = pool.handle().clone();
    let served = pool
        .run(move |_core| {
            let (listener, mut queued, filler) = parts.lock().unwrap().take().expect("one loop");
            let stop = stop.clone();
            async move {
                let mut server = coil::spawn(echo_per_core::serve(listener));
                // Its first poll (here) meets EMFILE at once; a server that
                // gives up on it ends well within this bound.
                if let Ok(ended) =
                    coil::time::timeout(Duration::from_millis(100), &mut server).await
                {
                    panic!("the loop's server ended with a full fd table: {ended:?}");
                }
                drop(filler);
                let echoed = coil::blocking::spawn_blocking(move || {
                    let mut client = queued.pop().unwrap();
                    client.write_all(b"ping").unwrap();
                    let mut back = [0u8; 4];
                    client.read_exact(&mut back).map(|()| back)
                })
                .await
                .unwrap();
                assert_eq!(&echoed.expect("the queued client is served"), b"ping");
                stop.request_shutdown(Duration::from_secs(5));
                server.await.unwrap()
            }
        })
        .unwrap();
    assert_eq!(served, [1], "one connection served");
}
