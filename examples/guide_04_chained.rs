//! Guide chapter 4: chained coroutines (docs/guide/04-chained-coroutines.md).
//!
//! The notes' `chained.py`: each chain awaits `part1` then feeds its result
//! to `part2`; three chains run concurrently with seeded random delays of
//! 0 to 10 asyncio seconds, one asyncio second being 100 ms here. Every time
//! printed is the real one, in milliseconds.

use std::time::Duration;

use coil::time::{Instant, sleep};

/// One second of the Python programs (shortened so the demo is quick).
const SECOND: Duration = Duration::from_millis(100);

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

async fn part1(n: u32, delay: Duration) -> String {
    println!("part1({n}) sleeping for {} ms.", delay.as_millis());
    sleep(delay).await;
    let result = format!("result{n}-1");
    println!("Returning part1({n}) == {result}");
    result
}

async fn part2(n: u32, arg: String, delay: Duration) -> String {
    println!("part2({n}, '{arg}') sleeping for {} ms.", delay.as_millis());
    sleep(delay).await;
    let result = format!("result{n}-2 derived from {arg}");
    println!("Returning part2({n}, '{arg}') == {result}");
    result
}

async fn chain(n: u32, d1: Duration, d2: Duration) -> String {
    let start = Instant::now();
    let p1 = part1(n, d1).await;
    let p2 = part2(n, p1, d2).await;
    println!(
        "-->Chained result{n} => {p2} (took {} ms).",
        start.elapsed().as_millis()
    );
    p2
}

/// `asyncio.run(main(9, 6, 3))` with `random.seed` fixed.
/// Runs the chapter's programs in order.
pub(crate) async fn demo() {
    println!("(one asyncio second is {} ms here)", SECOND.as_millis());
    let mut rng = SplitMix64(2024);
    let mut delay = || SECOND * u32::try_from(rng.next() % 11).unwrap();
    let start = Instant::now();
    // The delays are drawn here, in argument order, before anything runs.
    let chains = [9, 6, 3].map(|n| chain(n, delay(), delay()));
    let results = coil::gather_all(chains).await;
    assert!(results[0].starts_with("result9-2"));
    println!("Program finished in {} ms.", start.elapsed().as_millis());
}

#[allow(dead_code)]
fn main() {
    coil::run(demo());
}
