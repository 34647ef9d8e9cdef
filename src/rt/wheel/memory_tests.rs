//! Unit tests of what the wheel keeps after a burst (module docs, "Memory
//! after a burst"): emptied slot lists hold no buffer, the spares stay in
//! their budget, the slab goes once the wheel is empty, stale keys stay
//! stale across it, and a steady load keeps reusing one buffer. Sizes are
//! smaller under Miri (a wheel has 4416 slots).

use super::*;
use std::collections::HashSet;
use std::task::Waker;

/// The most a wheel with no timer may keep (`retained_bytes`): a full spare
/// budget (the buffers and the vector naming them) and a full pending
/// buffer; no slot list, no slab.
fn idle_bound() -> usize {
    (SPARE_MAX + PENDING_KEEP) * size_of::<u32>()
        + SPARE_MAX.div_ceil(FIRST_CAP).next_power_of_two() * size_of::<Vec<u32>>()
}

fn fire_all(w: &mut Wheel) -> usize {
    let mut fired = Vec::new();
    while let Some(t) = w.next_expiration() {
        w.advance(t, &mut fired);
    }
    fired.len()
}

/// A burst over every level-0 slot (several dozen timers each, so their
/// lists grow past `FIRST_CAP`), every higher level, the pending list and
/// one slot emptied by cancels: once it has all fired or been cancelled,
/// the wheel keeps at most `idle_bound()` (it kept about 1 MiB of slot
/// buffers and 5 MiB of slab here before it gave them back).
#[test]
fn a_burst_gives_its_memory_back() {
    let (slots, per) = if cfg!(miri) { (8, 20) } else { (4096, 40) };
    let mut w = Wheel::new();
    let mut n = 0;
    for i in 0..slots * per {
        // Spread over `slots` level-0 slots: ticks 1..=4095.
        let tick = 1 + (i % slots) as u64 * (4095 / slots as u64);
        w.insert(tick, Waker::noop().clone());
        n += 1;
    }
    for level in 1..LEVELS {
        for j in 0..per as u64 {
            w.insert((1 << shift(level)) * (1 + j % 63), Waker::noop().clone());
            n += 1;
        }
    }
    let pending = if cfg!(miri) { 100 } else { 20_000 };
    for j in 0..pending {
        w.insert_pending(1 + j, Waker::noop().clone());
    }
    n += pending as usize;
    let cancelled: Vec<Key> = (0..pending)
        .map(|_| w.insert(5000, Waker::noop().clone()))
        .collect();
    if !cfg!(miri) {
        w.check_invariants();
    }
    let during = w.retained_bytes();
    assert!(
        cfg!(miri) || during > 4 * idle_bound(),
        "the burst allocated"
    );
    for k in cancelled {
        assert!(w.remove(k));
    }
    let mut fired = Vec::new();
    w.file_pending(|after| after, &mut fired);
    assert!(fired.is_empty());
    assert_eq!(fire_all(&mut w), n);
    assert_eq!(w.len(), 0);
    assert!(w.shrink_if_empty(), "the loop's idle call frees the slab");
    w.check_invariants();
    assert!(
        w.retained_bytes() <= idle_bound(),
        "an empty wheel keeps {} bytes (bound {})",
        w.retained_bytes(),
        idle_bound()
    );
    assert!(w.retained_bytes() < during);
    assert_eq!(w.entries.capacity(), 0, "slab freed");
    assert_eq!(w.pos.capacity(), 0, "positions freed");
    // The spares serve the next burst.
    assert!(w.spare_cap > 0);
}

/// A loop's steady timers (here `per` timers due every tick, re-armed for
/// the next one, round after round through all level-0 slots) reuse the
/// same buffers: one moves to the spares when its slot fires and out again
/// into the next tick's slot, so the steady state allocates nothing. A
/// second one may appear at the first 512 ms block boundary (the timers for
/// its first tick are filed on level 1 and cascade into a slot that takes
/// another buffer); then both circulate. Each slot used to keep its own.
#[test]
fn steady_timers_reuse_their_buffers() {
    let (ticks, per) = if cfg!(miri) { (40, 20) } else { (3 * 4096, 40) };
    let mut w = Wheel::new();
    let mut fired = Vec::new();
    let mut buffers = HashSet::new();
    for t in 1..=ticks as u64 {
        let keys: Vec<Key> = (0..per)
            .map(|_| w.insert(t, Waker::noop().clone()))
            .collect();
        let e = &w.entries[keys[0].index as usize];
        let list = &w.levels[e.level as usize].slots[e.slot as usize].list;
        assert_eq!(list.len(), per);
        // The first tick grows its buffer; later ones reuse it.
        if t > 1 {
            buffers.insert(list.as_ptr());
        }
        w.advance(t, &mut fired);
        assert_eq!(fired.len(), per, "tick {t}");
        fired.clear();
    }
    // At most two buffers (the allocator may hand the second one the
    // address of a freed one); before, every slot kept its own (4096).
    assert!(
        buffers.len() <= 2,
        "{} buffers over {ticks} ticks",
        buffers.len()
    );
    assert!(w.spare.len() <= 2);
    w.check_invariants();
}

/// Freeing the slab restarts the indices at 0 but not the generations:
/// keys of the timers it held (fired or cancelled) stay stale against the
/// timers filed after it (invariant 4), which stay live and fire.
#[test]
fn stale_keys_stay_stale_after_the_slab_is_freed() {
    let n = ENTRIES_KEEP + 1;
    let mut w = Wheel::new();
    let old: Vec<Key> = (0..n)
        .map(|i| w.insert(1 + (i % 3) as u64, Waker::noop().clone()))
        .collect();
    // The last one is cancelled (the `remove` path), the rest fire.
    assert!(w.remove(old[n - 1]));
    assert!(!w.shrink_if_empty(), "not while a timer is left");
    assert_eq!(fire_all(&mut w), n - 1);
    assert!(w.shrink_if_empty());
    assert_eq!(w.entries.capacity(), 0, "slab freed");
    let t = w.elapsed() + 1;
    let new: Vec<Key> = (0..n).map(|_| w.insert(t, Waker::noop().clone())).collect();
    let nw = Waker::noop();
    for k in &old {
        assert!(!w.poll(*k, nw), "stale key {k:?} reads as live");
        assert_eq!(w.deadline(*k), None);
        assert!(!w.remove(*k));
    }
    assert_eq!(w.len(), n);
    for k in &new {
        assert!(w.poll(*k, nw));
    }
    // And once more through `clear` (runtime shutdown drops live timers).
    drop(w.clear());
    for k in &new {
        assert!(!w.poll(*k, nw), "key of a cleared timer reads as live");
    }
    let k = w.insert(w.elapsed() + 1, Waker::noop().clone());
    assert!(!new.contains(&k));
    assert_eq!(fire_all(&mut w), 1);
}
