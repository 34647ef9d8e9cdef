//! The ring against a `VecDeque` model: order at both ends, growth with the
//! head at every position (wrapped entries), shrinking, drop with entries.
//! Run under Miri too (`cargo +nightly miri test -p coil --lib run_queue`):
//! a read of a slot that holds no entry (uninitialised memory), an index
//! past the buffer, or a use of the buffer after a grow or shrink freed it
//! is an error there.

use super::*;
use std::collections::VecDeque;

/// Pops everything, checking it against `model`.
fn drain_against(q: &RunQueue<u64>, model: &mut VecDeque<u64>) {
    while let Some(m) = model.pop_front() {
        assert_eq!(q.pop_front(), Some(m));
    }
    assert_eq!(q.pop_front(), None);
    assert!(q.is_empty());
}

#[test]
fn fifo_at_the_back_lifo_at_the_front() {
    let q = RunQueue::new();
    assert!(q.is_empty());
    assert_eq!(q.pop_front(), None);
    q.push_back(1u64);
    q.push_back(2);
    q.push_front(0);
    q.push_front(9);
    assert_eq!(q.len(), 4);
    let got: Vec<_> = std::iter::from_fn(|| q.pop_front()).collect();
    assert_eq!(got, [9, 0, 1, 2]);
    assert!(q.is_empty());
}

/// A full ring grows with its head at every position and at both ends; the
/// entries that had wrapped around keep their order.
#[test]
fn grows_with_the_head_anywhere() {
    let cap = MIN_CAP;
    // Every head position; under Miri a sample of them (and the last).
    let step = if cfg!(miri) { 37 } else { 1 };
    for start in (0..cap).step_by(step).chain([cap - 1]) {
        for front in [false, true] {
            let q = RunQueue::new();
            let mut model = VecDeque::new();
            // Move the head to `start`.
            for i in 0..start as u64 {
                q.push_back(i);
                assert_eq!(q.pop_front(), Some(i));
            }
            for i in 0..cap as u64 {
                q.push_back(i);
                model.push_back(i);
            }
            assert_eq!(q.capacity(), cap);
            // The push that grows it.
            if front {
                q.push_front(1000);
                model.push_front(1000);
            } else {
                q.push_back(1000);
                model.push_back(1000);
            }
            assert_eq!(q.capacity(), 2 * cap);
            assert_eq!(q.len(), cap + 1);
            drain_against(&q, &mut model);
        }
    }
}

/// Growth across several doublings with pushes at the front wrapping the
/// head below zero.
#[test]
fn grows_repeatedly_from_the_front() {
    let q = RunQueue::new();
    let mut model = VecDeque::new();
    for i in 0..(MIN_CAP * 8) as u64 {
        if i % 3 == 0 {
            q.push_front(i);
            model.push_front(i);
        } else {
            q.push_back(i);
            model.push_back(i);
        }
    }
    assert_eq!(q.capacity(), MIN_CAP * 8);
    drain_against(&q, &mut model);
}

/// A burst beyond `SHRINK_ABOVE` is given back once drained, not before;
/// a queue within it is kept; the shrunk ring works as a new one.
#[test]
fn shrinks_only_when_empty_and_large() {
    let q = RunQueue::new();
    assert!(!q.shrink_if_empty());
    for i in 0..SHRINK_ABOVE as u64 {
        q.push_back(i);
    }
    assert_eq!(q.capacity(), SHRINK_ABOVE);
    while q.pop_front().is_some() {}
    assert!(
        !q.shrink_if_empty(),
        "a queue of SHRINK_ABOVE slots is kept"
    );
    for i in 0..=SHRINK_ABOVE as u64 {
        q.push_back(i);
    }
    assert_eq!(q.capacity(), 2 * SHRINK_ABOVE);
    assert!(!q.shrink_if_empty(), "not while entries are queued");
    assert_eq!(q.pop_front(), Some(0));
    while q.pop_front().is_some() {}
    assert!(q.shrink_if_empty());
    assert_eq!(q.capacity(), MIN_CAP);
    let mut model = VecDeque::new();
    for i in 0..(MIN_CAP + 3) as u64 {
        q.push_front(i);
        model.push_front(i);
    }
    drain_against(&q, &mut model);
}

/// Dropping a queue that holds entries frees its buffer (Miri's leak check
/// and a use of it after free would both fail).
#[test]
fn drop_with_entries() {
    let q = RunQueue::new();
    for i in 0..(MIN_CAP * 2 + 1) as u64 {
        q.push_back(i);
    }
    drop(q);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
    ))]
    /// Random pushes at both ends (in runs, to cross growths), pops and
    /// shrinks against a `VecDeque`, with `len`/`is_empty` after each step.
    #[test]
    fn matches_vecdeque_model(
        ops in proptest::collection::vec((0u8..5, 1usize..if cfg!(miri) { 300 } else { 3000 }), 1..if cfg!(miri) { 12 } else { 60 })
    ) {
        let q = RunQueue::new();
        let mut model = VecDeque::new();
        let mut next = 0u64;
        for (op, n) in ops {
            match op {
                0 => for _ in 0..n {
                    q.push_back(next);
                    model.push_back(next);
                    next += 1;
                },
                1 => for _ in 0..n {
                    q.push_front(next);
                    model.push_front(next);
                    next += 1;
                },
                2 | 3 => for _ in 0..n {
                    proptest::prop_assert_eq!(q.pop_front(), model.pop_front());
                },
                _ => {
                    let cap = q.capacity();
                    let shrunk = q.shrink_if_empty();
                    proptest::prop_assert_eq!(shrunk, model.is_empty() && cap > SHRINK_ABOVE);
                    if shrunk {
                        proptest::prop_assert_eq!(q.capacity(), MIN_CAP);
                    }
                }
            }
            proptest::prop_assert_eq!(q.len(), model.len());
            proptest::prop_assert_eq!(q.is_empty(), model.is_empty());
            proptest::prop_assert!(q.capacity().is_power_of_two());
            proptest::prop_assert!(q.len() <= q.capacity());
        }
        while let Some(m) = model.pop_front() {
            proptest::prop_assert_eq!(q.pop_front(), Some(m));
        }
        proptest::prop_assert_eq!(q.pop_front(), None);
    }
}
