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
//! ```

use std::time::Duration;

use coil::stream::{self, Stream, StreamExt};
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
}

#[allow(dead_code)]
fn main() {
    coil::run(demo());
}
