//! Guide chapter 3: tasks and gather (docs/guide/03-tasks-and-gather.md).
//!
//! `countasync.py` with `coil::gather!`, results in argument order (not
//! completion order), `rand.py`'s `makerandom` with seeded randomness, and
//! `create_task` as `coil::spawn`. One asyncio second is 100 ms here; every
//! time printed is the real one, in milliseconds.

use std::time::Duration;

use coil::time::{Instant, sleep};

/// One second of the Python programs (shortened so the demo is quick).
const SECOND: Duration = Duration::from_millis(100);

/// A tiny seeded PRNG (SplitMix64) so the "random" numbers are repeatable.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `random.randint(0, hi)`
    fn randint(&mut self, hi: u64) -> u64 {
        self.next() % (hi + 1)
    }
}

async fn count() {
    println!("One");
    sleep(SECOND).await;
    println!("Two");
}

/// countasync.py: `await asyncio.gather(count(), count(), count())`.
pub(crate) async fn countasync() {
    println!("(one asyncio second is {} ms here)", SECOND.as_millis());
    let start = Instant::now();
    coil::gather!(count(), count(), count()).await;
    let took = start.elapsed();
    println!("executed in {} ms.", took.as_millis());
    assert!(took < SECOND * 2, "the three counts ran concurrently");
}

async fn count_n(n: u32) -> u32 {
    println!("One {n}");
    sleep(SECOND * n).await;
    println!("Two {n}");
    n
}

/// `asyncio.gather(count(3), count(2), count(1))` gives `[3, 2, 1]`.
pub(crate) async fn gather_order() {
    println!("(one asyncio second is {} ms here)", SECOND.as_millis());
    let start = Instant::now();
    let results = coil::gather_all([3, 2, 1].map(count_n)).await;
    println!("{results:?}");
    println!("(wall time {} ms)", start.elapsed().as_millis());
    assert_eq!(results, [3, 2, 1]);
}

/// rand.py's `makerandom`: draw until above `threshold`, sleeping `idx + 1`
/// asyncio seconds between draws, shortened further here to `idx + 1` times
/// 10 ms (the output prints no times, only the order of events). Each coroutine has its own seeded
/// generator, so the output does not depend on timer tie-breaks.
async fn makerandom(idx: u64, threshold: u64) -> u64 {
    let mut rng = SplitMix64(444 + idx);
    println!("{}Initiated makerandom({idx}).", "  ".repeat(idx as usize));
    let mut i = rng.randint(10);
    while i <= threshold {
        println!(
            "{}makerandom({idx}) == {i} too low; retrying.",
            "  ".repeat(idx as usize)
        );
        sleep(SECOND / 10 * (idx as u32 + 1)).await;
        i = rng.randint(10);
    }
    println!(
        "{}---> Finished: makerandom({idx}) == {i}",
        "  ".repeat(idx as usize)
    );
    i
}

/// rand.py: three `makerandom`s gathered; prints `r1: .., r2: .., r3: ..`.
pub(crate) async fn rand() -> Vec<u64> {
    // asyncio.gather(*(makerandom(i, 10 - i - 1) for i in range(3)))
    let res = coil::gather_all((0..3).map(|i| makerandom(i, 10 - i - 1))).await;
    println!("r1: {}, r2: {}, r3: {}", res[0], res[1], res[2]);
    res
}

/// `asyncio.create_task`: the task starts on the loop's next tick whether or
/// not anyone awaits it yet.
pub(crate) async fn create_task() {
    let task = coil::spawn(async {
        println!("task: running");
        "task result"
    });
    println!("main: spawned the task, now awaiting it");
    println!("main: got {:?}", task.await.unwrap());
}

/// Runs the chapter's programs in order.
pub(crate) async fn demo() {
    countasync().await;
    gather_order().await;
    let r = rand().await;
    assert!(r[0] > 9 && r[1] > 8 && r[2] > 7);
    create_task().await;
}

#[allow(dead_code)]
fn main() {
    coil::run(demo());
}
