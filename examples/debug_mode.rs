//! Debug mode's reports and the loop's counters (docs/observability.md).
//!
//! Run with `cargo run --example debug_mode`: each deliberate mistake below
//! produces one report on stderr; the counters are printed at the end.

use std::time::Duration;

fn main() -> std::io::Result<()> {
    // As COIL_DEBUG=1 would, with a lower threshold than the 100 ms default.
    let rt = coil::runtime::Builder::new()
        .debug(true)
        .slow_poll_threshold(Duration::from_millis(50))
        .build()?;
    let listener = rt.block_on(async { coil::net::TcpListener::bind("127.0.0.1:0") })?;
    rt.block_on(async {
        // 1. A task that blocks the loop in one poll.
        let blocker = coil::task::Builder::new()
            .name("blocker")
            .spawn(async { std::thread::sleep(Duration::from_millis(80)) });
        blocker.await.unwrap();
        // 2. A detached task that panics: nobody can see its error.
        drop(
            coil::task::Builder::new()
                .name("fire-and-forget")
                .spawn(async { panic!("lost error") }),
        );
        coil::task::yield_now().await;
        // 3. The block_on future itself blocking the loop.
        std::thread::sleep(Duration::from_millis(80));
        coil::task::yield_now().await;
    });
    // 4. An I/O object used from a loop that did not create it.
    let other = coil::runtime::Builder::new().debug(true).build()?;
    let err = other.block_on(async { listener.accept().await.err() });
    assert!(err.is_some());
    println!("{:#?}", rt.handle().metrics());
    Ok(())
}
