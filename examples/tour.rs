//! A tour of coil through the classic asyncio programs, with wall times.
//!
//! Run it with `cargo run --release --example tour`. Each section is a
//! Python asyncio program rewritten with coil; durations are shortened
//! (seconds become tenths of a second) and the wall time is printed so you
//! can see the concurrency.

use std::time::Duration;

use coil::time::{Instant, sleep};

/// A tiny seeded PRNG (SplitMix64) so the "random" delays are repeatable.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

/// One "second" of the Python programs, shortened.
const SECOND: Duration = Duration::from_millis(100);

// --- 1. Two jobs that each take "3 seconds" --------------------------------

async fn job(name: &'static str) -> &'static str {
    println!("{name}: start");
    sleep(SECOND * 3).await;
    println!("{name}: done");
    name
}

async fn two_jobs() {
    section("two 3-second jobs, run concurrently");
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

// --- 2. Chained coroutines (asyncio's chained.py) ---------------------------

async fn part1(n: u32, delay: Duration) -> String {
    println!("part1({n}) sleeping for {delay:.1?}");
    sleep(delay).await;
    let result = format!("result{n}-1");
    println!("Returning part1({n}) == {result}");
    result
}

async fn part2(n: u32, arg: String, delay: Duration) -> String {
    println!("part2({n}, '{arg}') sleeping for {delay:.1?}");
    sleep(delay).await;
    let result = format!("result{n}-2 derived from {arg}");
    println!("Returning part2({n}, '{arg}') == {result}");
    result
}

async fn chain(n: u32, d1: Duration, d2: Duration) {
    let start = Instant::now();
    let p1 = part1(n, d1).await;
    let p2 = part2(n, p1, d2).await;
    println!(
        "-->Chained result{n} => {p2} (took {:.2?})",
        start.elapsed()
    );
}

async fn chained() {
    section("chained coroutines (seeded random delays)");
    let mut rng = SplitMix64(2024);
    let mut delay = || SECOND * u32::try_from(rng.next() % 11).unwrap();
    let start = Instant::now();
    let chains: Vec<_> = [9, 6, 3]
        .into_iter()
        .map(|n| coil::spawn(chain(n, delay(), delay())))
        .collect();
    for c in chains {
        c.await.unwrap();
    }
    println!("Program finished in {:.2?}.", start.elapsed());
}

// --- 3. Results come back in argument order --------------------------------

async fn count(n: u32) -> u32 {
    println!("One {n}");
    sleep(SECOND * n).await;
    println!("Two {n}");
    n
}

async fn gather_order() {
    section("gather order: results in argument order, not completion order");
    let start = Instant::now();
    // asyncio.gather(count(3), count(2), count(1)): spawn all, then collect
    // the results in the order given.
    let tasks: Vec<_> = [3, 2, 1]
        .into_iter()
        .map(|n| coil::spawn(count(n)))
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    println!("{results:?}");
    println!("(wall time {:.2?})", start.elapsed());
    assert_eq!(results, [3, 2, 1]);
}

fn main() {
    let rt = coil::Runtime::new().expect("start the event loop");
    println!("coil tour — event loop on the {} driver", rt.driver());
    let start = Instant::now();
    rt.block_on(async {
        two_jobs().await;
        chained().await;
        gather_order().await;
    });
    println!("\ntour finished in {:.2?}", start.elapsed());
}
