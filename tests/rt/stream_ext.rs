//! StreamExt adapters and consumers, stream::iter, and pinning.

use std::collections::HashMap;
use std::time::Duration;

use coil::stream::{self, Stream, StreamExt};

#[test]
fn adapters_compose() {
    coil::run(async {
        let v: Vec<(usize, String)> = stream::iter(1..=20)
            .skip(2)
            .filter(|x| x % 3 == 0)
            .filter_map(|x| (x != 9).then_some(x * 2))
            .map(|x| format!("<{x}>"))
            .take(4)
            .enumerate()
            .collect()
            .await;
        assert_eq!(
            v,
            [
                (0, "<6>".into()),
                (1, "<12>".into()),
                (2, "<24>".into()),
                (3, "<30>".into())
            ]
        );
    });
}

#[test]
fn then_runs_futures_one_at_a_time_in_order() {
    coil::run(async {
        let v: Vec<u64> = stream::iter([20u64, 0, 10])
            .then(|ms| async move {
                coil::time::sleep(Duration::from_millis(ms)).await;
                ms
            })
            .collect()
            .await;
        assert_eq!(v, [20, 0, 10]);
    });
}

#[test]
fn consumers() {
    coil::run(async {
        assert_eq!(stream::iter(0..10).count().await, 10);
        assert_eq!(stream::iter(1..=5).fold(1, |a, x| a * x).await, 120);
        let mut sum = 0;
        stream::iter([1, 2, 3]).for_each(|x| sum += x).await;
        assert_eq!(sum, 6);
        let m: HashMap<char, usize> = stream::iter("ab".chars())
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect()
            .await;
        assert_eq!(m[&'b'], 1);
        let r: Result<Vec<i32>, String> = stream::iter([Ok(1), Err("no".to_string()), Ok(3)])
            .collect()
            .await;
        assert_eq!(r, Err("no".to_string()));
        let c: Vec<i32> = stream::iter([1])
            .chain(stream::iter(vec![2, 3]))
            .chain(stream::iter([4]))
            .collect()
            .await;
        assert_eq!(c, [1, 2, 3, 4]);
    });
}

#[test]
fn size_hints() {
    let s = stream::iter(0..10);
    assert_eq!(s.size_hint(), (10, Some(10)));
    assert_eq!(stream::iter(0..10).skip(3).size_hint(), (7, Some(7)));
    assert_eq!(stream::iter(0..10).take(3).size_hint(), (3, Some(3)));
    assert_eq!(
        stream::iter(0..10).filter(|_| true).size_hint(),
        (0, Some(10))
    );
    assert_eq!(
        stream::iter(0..2).chain(stream::iter(0..3)).size_hint(),
        (5, Some(5))
    );
}

#[test]
fn take_stops_pulling() {
    coil::run(async {
        let pulled = std::cell::Cell::new(0);
        let v: Vec<u32> = stream::iter((0..).inspect(|_| pulled.set(pulled.get() + 1)))
            .take(3)
            .collect()
            .await;
        assert_eq!(v, [0, 1, 2]);
        assert_eq!(pulled.get(), 3);
        let none: Vec<u32> = stream::iter(0..).take(0).collect().await;
        assert!(none.is_empty());
    });
}

/// A `!Unpin` stream of our own: adapters take it once pinned.
struct NotUnpin {
    n: u8,
    _pin: std::marker::PhantomPinned,
}

impl Stream for NotUnpin {
    type Item = u8;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<u8>> {
        // SAFETY: `n` is not structurally pinned; nothing is moved.
        let this = unsafe { self.get_unchecked_mut() };
        this.n += 1;
        std::task::Poll::Ready((this.n <= 3).then_some(this.n))
    }
}

#[test]
fn not_unpin_streams_work_once_pinned() {
    coil::run(async {
        let boxed: Vec<u8> = Box::pin(NotUnpin {
            n: 0,
            _pin: std::marker::PhantomPinned,
        })
        .map(|x| x * 2)
        .collect()
        .await;
        assert_eq!(boxed, [2, 4, 6]);
        let mut pinned = std::pin::pin!(NotUnpin {
            n: 0,
            _pin: std::marker::PhantomPinned
        });
        assert_eq!(pinned.next().await, Some(1));
        assert_eq!((&mut pinned).count().await, 2);
    });
}

#[test]
fn a_long_iter_lets_other_tasks_run() {
    coil::run(async {
        let flag = std::rc::Rc::new(std::cell::Cell::new(false));
        let f = flag.clone();
        let other = coil::spawn(async move { f.set(true) });
        let mut first_seen = None;
        stream::iter(0..10_000u32)
            .for_each(|i| {
                if first_seen.is_none() && flag.get() {
                    first_seen = Some(i);
                }
            })
            .await;
        other.await.unwrap();
        assert!(first_seen.expect("ran during the loop") <= 200);
    });
}
