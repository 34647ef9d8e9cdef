//! Unit tests of the wait list: order, removal, hand-over.

use super::*;
use std::collections::VecDeque;
use std::task::Waker;

#[test]
fn fifo_remove_and_handoff_against_a_model() {
    let mut list: WaitList<u32> = WaitList::new();
    let mut model: VecDeque<(Key, u32)> = VecDeque::new();
    let mut notified: Vec<(Key, u32)> = Vec::new();
    let mut seed = 0x1234_5678_u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // `check` walks the whole list: quadratic, and ~5 minutes under Miri
    // at 10 000 steps.
    let steps = if cfg!(miri) { 1_000 } else { 10_000u32 };
    for step in 0..steps {
        match rnd() % 5 {
            0 | 1 => {
                let k = list.push_back(step, Waker::noop().clone());
                model.push_back((k, step));
            }
            2 => {
                let w = list.notify_front();
                assert_eq!(w.is_some(), !model.is_empty());
                if let Some(m) = model.pop_front() {
                    notified.push(m);
                }
            }
            3 if !model.is_empty() => {
                let at = (rnd() as usize) % model.len();
                let (k, d) = model.remove(at).unwrap();
                assert_eq!(list.remove(k), Removed::Queued(d));
                assert_eq!(list.remove(k), Removed::Gone);
            }
            _ if !notified.is_empty() => {
                let at = (rnd() as usize) % notified.len();
                let (k, d) = notified.swap_remove(at);
                if rnd() % 2 == 0 {
                    assert_eq!(list.poll(k, Waker::noop()), Polled::Notified(d));
                } else {
                    assert_eq!(list.remove(k), Removed::Notified(d));
                }
            }
            _ => {}
        }
        assert_eq!(list.front(), model.front().map(|(_, d)| d));
        list.check();
    }
}

#[test]
fn push_front_keeps_the_turn() {
    let mut list: WaitList<u8> = WaitList::new();
    list.push_back(1, Waker::noop().clone());
    list.push_front(0, Waker::noop().clone());
    assert_eq!(list.front(), Some(&0));
    list.notify_front();
    assert_eq!(list.front(), Some(&1));
    list.check();
}
