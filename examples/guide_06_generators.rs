//! Guide chapter 6: async generators and comprehensions
//! (docs/guide/06-async-generators.md).
//!
//! ```python
//! async def mygen(u: int = 10):
//!     i = 0
//!     while i < u:
//!         yield 2 ** i
//!         i += 1
//!         await asyncio.sleep(0.1)
//!
//! async def main():
//!     g = [i async for i in mygen()]
//!     f = [j async for j in mygen() if not (j // 3 % 5)]
//!     return g, f
//!
//! g, f = asyncio.run(main())
//!
//! # and a generator that is talked to: asend, athrow, aclose
//! async def averager():
//!     total, count = 0, 0
//!     try:
//!         while True:
//!             try:
//!                 x = yield (total / count if count else None)
//!             except ValueError:
//!                 total, count = 0, 0      # athrow(ValueError): start again
//!                 continue
//!             total, count = total + x, count + 1
//!     finally:
//!         await asyncio.sleep(0.1)         # aclose(): async cleanup
//! ```

use std::future::Future;
use std::time::Duration;

use coil::stream::{self, AsyncGen, Stream, StreamExt, Thrown};
use coil::time::sleep;

/// The generator's pause (0.1 s in the notes, 10 ms here).
const PAUSE: Duration = Duration::from_millis(10);

/// `async def mygen(u=10)`: yields 2**i, pausing after each.
pub(crate) fn mygen(u: u32) -> impl Stream<Item = u64> {
    stream::generate(move |co| async move {
        let mut i = 0;
        while i < u {
            co.yield_(2u64.pow(i)).await;
            i += 1;
            sleep(PAUSE).await;
        }
    })
}

/// `g` and `f`, the two async comprehensions of the notes.
pub(crate) async fn comprehensions() -> (Vec<u64>, Vec<u64>) {
    let g: Vec<u64> = mygen(10).collect().await;
    let f: Vec<u64> = mygen(10).filter(|j| j / 3 % 5 == 0).collect().await;
    (g, f)
}

/// Thrown into `averager` to start again (Python's `ValueError`).
#[derive(Debug, PartialEq)]
pub(crate) struct Restart;

/// `averager()`: send it numbers, it yields the mean so far; `throw(Restart)`
/// starts again; `close()` runs its cleanup, which awaits.
pub(crate) fn averager()
-> AsyncGen<Option<f64>, f64, Restart, impl Future<Output = Result<(), Thrown<Restart>>>> {
    stream::async_gen(|co| async move {
        let (mut total, mut count) = (0.0, 0u32);
        let result = loop {
            let mean = (count > 0).then(|| total / f64::from(count));
            match co.yield_(mean).await {
                Ok(Some(x)) => {
                    total += x;
                    count += 1;
                }
                Ok(None) => {} // anext(avg): nothing was sent
                Err(Thrown::Error(Restart)) => (total, count) = (0.0, 0),
                Err(exit) => break Err(exit),
            }
        };
        sleep(PAUSE).await; // finally: async cleanup
        result
    })
}

/// Drives `averager` with send, throw and close; returns what it answered.
pub(crate) async fn talk_to_averager() -> Vec<Option<f64>> {
    let mut avg = averager();
    let mut answers = vec![avg.next().await.unwrap().unwrap()]; // await anext(avg)
    for x in [10.0, 20.0, 60.0] {
        answers.push(avg.send(x).await.unwrap().unwrap()); // await avg.asend(x)
    }
    answers.push(avg.throw(Restart).await.unwrap().unwrap()); // await avg.athrow(ValueError)
    answers.push(avg.send(5.0).await.unwrap().unwrap());
    avg.close().await.unwrap(); // await avg.aclose()
    answers
}

/// Runs the chapter's programs in order.
pub(crate) async fn demo() {
    let (g, f) = comprehensions().await;
    println!("{:?}", (&g, &f));
    assert_eq!(g, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
    assert_eq!(f, [1, 2, 16, 32, 256, 512]);

    // `async for` is a `while let` over `next()`.
    let mut s = mygen(3);
    while let Some(x) = s.next().await {
        println!("async for got {x}");
    }

    let answers = talk_to_averager().await;
    println!("averager answered {answers:?}");
    assert_eq!(
        answers,
        [None, Some(10.0), Some(15.0), Some(30.0), None, Some(5.0)]
    );
}

#[allow(dead_code)]
fn main() {
    coil::run(demo());
}
