//! Guide chapter 5: queues, producers and consumers
//! (docs/guide/05-producers-consumers.md).
//!
//! The notes' `asyncq.py`: producers put timestamped items on a
//! `coil::queue::Queue`, consumers take them, `join` waits until every item
//! was marked done, then the consumers are cancelled. The random sleeps are
//! 0 to 10 asyncio seconds, one asyncio second being 20 ms here; every time
//! printed is the real one, in milliseconds.

use std::time::Duration;

use coil::queue::Queue;
use coil::time::{Instant, sleep};

/// One second of the Python programs (20 ms here: there are many sleeps).
const SECOND: Duration = Duration::from_millis(20);

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

    fn randint(&mut self, hi: u64) -> u32 {
        u32::try_from(self.next() % (hi + 1)).unwrap()
    }
}

/// `makeitem()`: five random bytes, in hex.
fn makeitem(rng: &mut SplitMix64) -> String {
    format!("{:010x}", rng.next() & 0xff_ffff_ffff)
}

async fn randsleep(rng: &mut SplitMix64, caller: &str) {
    let i = rng.randint(10);
    println!("{caller} sleeping for {} ms.", (SECOND * i).as_millis());
    sleep(SECOND * i).await;
}

async fn produce(name: u64, q: Queue<(String, Instant)>) -> u32 {
    let mut rng = SplitMix64(100 + name);
    let n = rng.randint(5);
    for _ in 0..n {
        randsleep(&mut rng, &format!("Producer {name}")).await;
        let i = makeitem(&mut rng);
        q.put((i.clone(), Instant::now()))
            .await
            .expect("queue open");
        println!("Producer {name} added <{i}> to queue.");
    }
    n
}

async fn consume(name: u64, q: Queue<(String, Instant)>) {
    let mut rng = SplitMix64(200 + name);
    loop {
        randsleep(&mut rng, &format!("Consumer {name}")).await;
        let Ok((i, t)) = q.get().await else { return };
        let waited = t.elapsed().as_millis();
        println!("Consumer {name} got element <{i}> in {waited} ms.");
        q.task_done().unwrap();
    }
}

/// Runs the chapter's programs in order.
pub(crate) async fn demo() {
    println!("(one asyncio second is {} ms here)", SECOND.as_millis());
    let start = Instant::now();
    let (nprod, ncon) = (2, 3);
    let q = Queue::new(0);
    let producers: Vec<_> = (0..nprod)
        .map(|n| coil::spawn(produce(n, q.clone())))
        .collect();
    let consumers: Vec<_> = (0..ncon)
        .map(|n| coil::spawn(consume(n, q.clone())))
        .collect();
    let made: u32 = coil::gather_all(producers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    q.join().await; // implicitly awaits consumers, too
    for c in &consumers {
        c.cancel();
    }
    assert_eq!(q.qsize(), 0);
    let took = start.elapsed().as_millis();
    println!("{made} items; program completed in {took} ms.");
}

#[allow(dead_code)]
fn main() {
    coil::run(demo());
}
