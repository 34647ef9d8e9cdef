//! `hyper` (`cargo test --features hyper --test compat_hyper`): hyper's own
//! HTTP/1.1 client talks to `examples/hyper_server.rs`'s server, both on
//! coil, over loopback, on each driver: 100 requests over several
//! connections, every body checked; and `HyperExecutor`, `HyperTimer`.
#![allow(missing_docs)]

#[path = "../examples/hyper_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod hyper_server;

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use coil::compat::{HyperExecutor, HyperTimer};
use coil::net::TcpListener;
use hyper::rt::{Executor, Timer};
use hyper::{Request, StatusCode};
use hyper_server::{Full, connect, fetch};

const CONNECTIONS: usize = 4;
const REQUESTS: usize = 100;

#[coil::test(drivers = "all")]
async fn hyper_client_and_server_on_coil() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = coil::spawn(hyper_server::serve_forever(listener));

    // CONNECTIONS clients at once, REQUESTS in all, each on a kept-alive
    // connection; every body differs, so a mixed-up response shows.
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            coil::spawn(async move {
                let mut sender = connect(addr).await?;
                let mut done = 0;
                for i in (c..REQUESTS).step_by(CONNECTIONS) {
                    let body = format!("request {i} ").repeat(1 + i * 37);
                    let req = Request::post(format!("http://{addr}/echo"))
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let (status, got) = fetch(&mut sender, req).await?;
                    assert_eq!(status, StatusCode::OK);
                    assert!(got == body.as_bytes(), "request {i}: wrong body");
                    let get = Request::get(format!("http://{addr}/"))
                        .body(Full::default())
                        .unwrap();
                    let (status, got) = fetch(&mut sender, get).await?;
                    assert_eq!(
                        (status, got.as_slice()),
                        (StatusCode::OK, &b"Hello, World!"[..])
                    );
                    done += 1;
                }
                Ok::<usize, io::Error>(done)
            })
        })
        .collect();
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap()?;
    }
    assert_eq!(total, REQUESTS);

    let mut sender = connect(addr).await?;
    let req = Request::get(format!("http://{addr}/missing"))
        .body(Full::default())
        .unwrap();
    assert_eq!(fetch(&mut sender, req).await?.0, StatusCode::NOT_FOUND);
    server.cancel();
    Ok(())
}

#[coil::test(drivers = "all")]
async fn executor_spawns_on_this_loop_and_timer_sleeps() {
    // Not Send: HyperExecutor runs it on this thread's loop.
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    HyperExecutor.execute(async move { flag.set(true) });
    coil::task::yield_now().await;
    assert!(ran.get(), "the executed future ran on this loop");

    let start = std::time::Instant::now();
    HyperTimer.sleep(Duration::from_millis(20)).await;
    assert!(start.elapsed() >= Duration::from_millis(20), "never early");

    // reset moves the deadline of a sleep in flight, earlier or later.
    let mut sleep = HyperTimer.sleep(Duration::from_secs(3600));
    let at = std::time::Instant::now() + Duration::from_millis(10);
    HyperTimer.reset(&mut sleep, at);
    let done = coil::time::timeout(Duration::from_secs(60), sleep).await;
    assert!(done.is_ok() && std::time::Instant::now() >= at);
}
