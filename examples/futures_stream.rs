//! coil's streams where the ecosystem expects `futures_core::Stream`, and a
//! `futures_core` stream driven by coil's `StreamExt`
//! (`cargo run --example futures_stream --features futures-core`).

use std::future::poll_fn;
use std::pin::Pin;

use coil::compat::StreamCompat;
use coil::stream::{self, StreamExt};

/// A consumer written against `futures_core` only, as another crate would be.
async fn sum_all<S: futures_core::Stream<Item = u64> + Unpin>(mut s: S) -> u64 {
    let mut total = 0;
    while let Some(x) = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut s), cx)).await {
        total += x;
    }
    total
}

#[coil::main]
async fn main() {
    // An async generator: a coil stream, handed to the futures_core consumer as it is.
    let squares = stream::generate(|co| async move {
        for i in 1..=10u64 {
            co.yield_(i * i).await;
        }
    });
    let total = sum_all(squares.filter(|x| x % 2 == 1)).await;
    println!("sum of the odd squares up to 100: {total}");
    assert_eq!(total, 165);

    // The other way: a futures_core stream (here coil's, wrapped) gets StreamExt.
    let foreign = StreamCompat::new(stream::iter(["a", "b", "c"]));
    let upper: Vec<String> = StreamCompat::new(foreign)
        .map(|s| s.to_uppercase())
        .collect()
        .await;
    println!("{upper:?}");
    assert_eq!(upper, ["A", "B", "C"]);
}
