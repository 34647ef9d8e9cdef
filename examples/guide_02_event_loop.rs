//! Guide chapter 2: the event loop and `run` (docs/guide/02-event-loop.md).
//!
//! `asyncio.run(main())` is `coil::run(main())`; `Runtime::new()` plus
//! `block_on` is the long form, which also says which driver the loop uses.
//! Two "3-second" jobs spawned as tasks share the loop and finish together.

use std::time::Duration;

use coil::time::{Instant, sleep};

/// One "second" of the Python programs.
const SECOND: Duration = Duration::from_millis(100);

async fn job(name: &'static str) -> &'static str {
    println!("{name}: start");
    sleep(SECOND * 3).await;
    println!("{name}: done");
    name
}

/// Two tasks on one loop: 3 "seconds" in all, not 6.
pub(crate) async fn two_jobs() {
    let start = Instant::now();
    let a = coil::spawn(job("job A"));
    let b = coil::spawn(job("job B"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let took = start.elapsed();
    println!(
        "{a} and {b} finished in {took:.2?} (each took {:?}; sequentially: {:?})",
        SECOND * 3,
        SECOND * 6
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
