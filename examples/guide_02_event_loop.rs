//! Guide chapter 2: the event loop and `run` (docs/guide/02-event-loop.md).
//!
//! `asyncio.run(main())` is `coil::run(main())`; `Runtime::new()` plus
//! `block_on` is the long form, which also says which driver the loop uses.
//! Two of asyncio's 3-second jobs (300 ms here) spawned as tasks share the
//! loop and finish together. Every time printed is the real one.

use std::time::Duration;

use coil::time::{Instant, sleep};

/// One second of the Python programs (shortened so the demo is quick).
const SECOND: Duration = Duration::from_millis(100);

async fn job(name: &'static str) -> &'static str {
    println!("{name}: start");
    sleep(SECOND * 3).await;
    println!("{name}: done");
    name
}

/// Two tasks on one loop: 300 ms in all, not 600.
pub(crate) async fn two_jobs() {
    println!("(one asyncio second is {} ms here)", SECOND.as_millis());
    let start = Instant::now();
    let a = coil::spawn(job("job A"));
    let b = coil::spawn(job("job B"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let took = start.elapsed();
    println!(
        "{a} and {b} finished in {} ms (each sleeps {} ms; one after the other: {} ms)",
        took.as_millis(),
        (SECOND * 3).as_millis(),
        (SECOND * 6).as_millis()
    );
    assert!(took >= SECOND * 3 && took < SECOND * 6);
}

#[allow(dead_code)]
fn main() {
    // The short form: asyncio.run(main()).
    let answer = coil::run(async { 6 * 7 });
    println!("coil::run returned {answer}");

    // The long form: build the loop, run a future on it, drop it.
    let rt = coil::Runtime::new().expect("start the event loop");
    println!("event loop on the {} driver", rt.driver());
    rt.block_on(two_jobs());
}
