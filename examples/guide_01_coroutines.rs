//! Guide chapter 1: coroutines and `await` (docs/guide/01-coroutines.md).
//!
//! The notes' `countsync.py` shape, written with `async fn`: calling a
//! coroutine creates it but runs nothing; awaiting it runs it to the end
//! before the next line. Three awaits in a row therefore take three
//! asyncio seconds (100 ms each here, 300 ms in all): awaiting is not
//! concurrency. Every time printed is the real one, in milliseconds.

use std::time::Duration;

use coil::time::{Instant, sleep};

/// One second of the Python programs (shortened so the demo is quick).
pub(crate) const SECOND: Duration = Duration::from_millis(100);

/// `async def count(): print("One"); await asyncio.sleep(1); print("Two")`
pub(crate) async fn count() {
    println!("One");
    sleep(SECOND).await;
    println!("Two");
}

/// Runs the chapter's programs in order.
pub(crate) async fn demo() {
    println!("(one asyncio second is {} ms here)", SECOND.as_millis());
    let start = Instant::now();
    let c = count(); // a coroutine object: nothing printed yet
    println!("created count(): nothing ran yet");
    c.await;
    count().await;
    count().await;
    let took = start.elapsed();
    println!("executed in {} ms.", took.as_millis());
    assert!(
        took >= SECOND * 3,
        "three awaits in a row run one after the other"
    );
}

#[allow(dead_code)]
fn main() {
    coil::run(demo());
}
