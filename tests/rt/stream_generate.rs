//! stream::generate: the notes' `mygen` and the generator invariants.

use crate::support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coil::stream::{self, Stream, StreamExt};
use coil::time::sleep;
use support::{DropCounter, panic_message_of};

/// `async def mygen(u=10): i = 0; while i < u: yield 2 ** i; i += 1;
/// await asyncio.sleep(0.1)`, with a 1 ms sleep.
fn mygen(u: u32) -> impl Stream<Item = u64> {
    stream::generate(move |co| async move {
        let mut i = 0;
        while i < u {
            co.yield_(2u64.pow(i)).await;
            i += 1;
            sleep(Duration::from_millis(1)).await;
        }
    })
}

driver_test! {
    fn mygen_comprehensions_match_the_notes(rt) {
        let (g, f) = rt.block_on(async {
            // g = [i async for i in mygen()]
            let g: Vec<u64> = mygen(10).collect().await;
            // f = [j async for j in mygen() if not (j // 3 % 5)]
            let f: Vec<u64> = mygen(10).filter(|j| j / 3 % 5 == 0).collect().await;
            (g, f)
        });
        assert_eq!(g, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
        assert_eq!(f, [1, 2, 16, 32, 256, 512]);
    }
}

#[test]
fn async_for_loop_with_next() {
    let mut seen = Vec::new();
    coil::run(async {
        let mut s = mygen(4);
        while let Some(x) = s.next().await {
            seen.push(x);
        }
        assert_eq!(s.next().await, None, "stays ended");
    });
    assert_eq!(seen, [1, 2, 4, 8]);
}

#[test]
fn generators_are_lazy() {
    let steps = Rc::new(Cell::new(0));
    let s2 = steps.clone();
    coil::run(async move {
        let mut g = stream::generate(move |co| async move {
            for i in 0.. {
                s2.set(s2.get() + 1);
                co.yield_(i).await;
            }
        });
        assert_eq!(steps.get(), 0, "nothing runs before the first poll");
        assert_eq!(g.next().await, Some(0));
        assert_eq!(g.next().await, Some(1));
        assert_eq!(steps.get(), 2, "runs exactly as far as it is pulled");
        let rest: Vec<u32> = g.take(3).collect().await;
        assert_eq!(rest, [2, 3, 4]);
    });
}

#[test]
fn dropping_a_generator_drops_its_body() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    coil::run(async move {
        let mut g = stream::generate(move |co| async move {
            let _g = DropCounter(d);
            co.yield_(1).await;
            co.yield_(2).await;
        });
        assert_eq!(g.next().await, Some(1));
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn two_racing_yields_panic_with_advice() {
    let msg = panic_message_of(|| {
        coil::run(async {
            let g = stream::generate(|co| async move {
                coil::gather!(co.yield_(1), co.yield_(2)).await;
            });
            g.collect::<Vec<_>>().await
        })
    });
    assert!(msg.contains("await each co.yield_"), "{msg}");
}

#[test]
fn empty_and_non_send_generators() {
    coil::run(async {
        let none: Vec<u8> = stream::generate(|_co| async {}).collect().await;
        assert!(none.is_empty());
        let rc = Rc::new(5);
        let v: Vec<Rc<i32>> = stream::generate(move |co| async move {
            co.yield_(rc.clone()).await;
            co.yield_(rc).await;
        })
        .collect()
        .await;
        assert_eq!(v.len(), 2);
    });
}

#[test]
fn a_hot_generator_does_not_starve_other_tasks() {
    coil::run(async {
        let (flag, other) = support::spawn_flag_setter();
        let g = stream::generate(|co| async move {
            for i in 0..10_000u32 {
                co.yield_(i).await;
            }
        });
        let mut seen_flag_at = None;
        let mut g = g.enumerate();
        while let Some((i, _)) = g.next().await {
            if seen_flag_at.is_none() && flag.get() {
                seen_flag_at = Some(i);
            }
        }
        other.await.unwrap();
        let at = seen_flag_at.expect("the other task ran during the loop");
        assert!(at <= 200, "other task waited {at} items");
    });
}
