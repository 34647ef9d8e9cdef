//! The tokio peer of coil's `examples/hyper_server.rs` for the HTTP benchmark
//! (`benches/README.md`, "HTTP: hyper on coil and on tokio"): the same
//! service (that example's `handle`: `GET /` answers `Hello, World!`,
//! `POST /echo` echoes, 404 otherwise), hyper's HTTP/1.1 server with a timer
//! and `TCP_NODELAY`, on a current-thread tokio runtime, one task per
//! connection (hyper-util's `TokioIo` and `TokioTimer`, as tokio users run
//! hyper).
//!
//! `cargo run --release -p coil-benches --example hyper_tokio -- 127.0.0.1:8081`
//! serves until killed.

// The service itself is coil's example's, word for word: the same handler and
// body type on both runtimes (its coil-only parts go unused here).
#[path = "../../examples/hyper_server.rs"]
#[allow(dead_code)]
mod hyper_server;

use hyper_util::rt::{TokioIo, TokioTimer};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("serving on http://{}/ until killed", listener.local_addr()?);
        loop {
            // As coil's example does: an accept error (EMFILE) is logged and
            // retried after a pause, not the end of the server; nodelay is
            // only a latency tweak.
            let conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(
                        TokioIo::new(conn),
                        hyper::service::service_fn(hyper_server::handle),
                    )
                    .await;
                if let Err(e) = served {
                    eprintln!("connection: {e}");
                }
            });
        }
    })
}
