//! Unit tests of the timing wheel: firing times, slot scanning, removal and
//! stale keys, clamped far deadlines, and a proptest against a `BTreeMap`
//! model (the `timer_wheel` fuzz target checks against one too).

use super::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

struct Tag(usize, Arc<AtomicUsize>);
impl Wake for Tag {
    fn wake(self: Arc<Self>) {
        self.1.store(self.0, Ordering::SeqCst);
    }
}

fn waker(i: usize) -> (Waker, Arc<AtomicUsize>) {
    let cell = Arc::new(AtomicUsize::new(usize::MAX));
    (Waker::from(Arc::new(Tag(i, cell.clone()))), cell)
}

fn fire(w: &mut Wheel, now: u64) -> Vec<usize> {
    let mut out = Vec::new();
    w.advance(now, &mut out);
    out.into_iter()
        .map(|wk| {
            let data = wk.data().cast::<Tag>();
            // SAFETY: every test waker is an `Arc<Tag>` built by `waker()`,
            // and `wk` keeps it alive.
            unsafe { (*data).0 }
        })
        .collect()
}

/// The full invariant walk, natively after every step. Under Miri it visits
/// all 4 416 slots at a few seconds a walk, so there it runs only where a
/// test ends (`check_invariants` directly): Miri is here for the unsafe
/// code (the waker round trip, the prefetch), the walk's logic is checked
/// natively by every test and by the `timer_wheel` fuzz target.
fn check(w: &Wheel) {
    if !cfg!(miri) {
        w.check_invariants();
    }
}

/// An entry fits half a cache line (its list position lives apart): firing
/// touches one line per timer.
#[test]
fn entry_is_half_a_cache_line() {
    assert!(
        size_of::<Entry>() <= 32,
        "Entry is {} bytes",
        size_of::<Entry>()
    );
}

/// Cancelling most timers of one slot leaves tombstones; the list is
/// compacted (bounded by the live entries), positions stay right, and the
/// survivors still fire in insertion order. Same for the pending list,
/// which empties with its last live entry.
#[test]
fn tombstones_are_compacted_and_keep_the_order() {
    let n = if cfg!(miri) { 120 } else { 300 };
    let mut w = Wheel::new();
    let keys: Vec<Key> = (0..n).map(|i| w.insert(100, waker(i).0)).collect();
    for (i, &k) in keys.iter().enumerate() {
        if i % 10 != 0 {
            assert!(w.remove(k));
            check(&w);
            let (list, live) = (
                &w.levels[0].slots[100].list,
                w.levels[0].slots[100].live as usize,
            );
            assert!(
                list.len() <= 3 * live + COMPACT_MIN + 1,
                "{} for {live}",
                list.len()
            );
        }
    }
    check(&w);
    assert!(w.levels[0].slots[100].list.len() < n / 3, "compacted");
    assert_eq!(fire(&mut w, 100), (0..n).step_by(10).collect::<Vec<_>>());
    check(&w);

    let keys: Vec<Key> = (0..50)
        .map(|i| w.insert_pending(1_000 + i, waker(0).0))
        .collect();
    for k in keys {
        assert!(w.remove(k));
        check(&w);
    }
    w.check_invariants();
    assert!(w.pending_list.is_empty() && !w.has_pending());
}

/// asyncio's timer heap breaks ties by sequence: equal deadlines fire in the
/// order they were scheduled, also when some were filed on a higher level
/// (far away when inserted) and cascade down after others were inserted.
#[test]
fn equal_deadlines_fire_in_insertion_order() {
    let mut w = Wheel::new();
    for i in 0..8 {
        w.insert(3000, waker(i).0);
    }
    assert_eq!(fire(&mut w, 3000), (0..8).collect::<Vec<_>>());

    // 0 and 1 are filed on level 1 (the next 4.096 s block); 2 and 3 are
    // inserted later, then every one cascades into the same level-0 slot.
    let mut w = Wheel::new();
    let when = 5000;
    w.insert(when, waker(0).0);
    w.insert(when, waker(1).0);
    fire(&mut w, 4000);
    w.insert(when, waker(2).0);
    fire(&mut w, 4500);
    w.insert(when, waker(3).0);
    let key = w.insert(when, waker(9).0);
    w.insert(when, waker(4).0);
    assert!(w.remove(key));
    check(&w);
    assert_eq!(fire(&mut w, 6000), vec![0, 1, 2, 3, 4]);
    w.check_invariants();
}

#[test]
fn fires_at_deadline_not_before() {
    let mut w = Wheel::new();
    for when in [1u64, 5, 63, 64, 65, 4095, 4096, 100_000, 1 << 30] {
        let (wk, _) = waker(when as usize);
        w.insert(when, wk);
        check(&w);
    }
    let mut now = 0;
    let mut seen = Vec::new();
    while w.len() > 0 {
        let next = w.next_expiration().unwrap();
        assert!(next > now || next == w.elapsed());
        // Just before the expiration nothing fires.
        if next > now + 1 {
            assert!(fire(&mut w, next - 1).is_empty() || seen.is_empty());
        }
        now = next;
        for i in fire(&mut w, now) {
            assert!(i as u64 <= now, "fired {i} at {now}: early");
            seen.push((i, now));
        }
        check(&w);
    }
    for (i, at) in &seen {
        assert_eq!(*i as u64, *at, "fired late");
    }
    assert_eq!(seen.len(), 9);
    w.check_invariants();
}

#[test]
fn next_occupied_wraps_and_skips_words() {
    for bits in [L0_BITS, LN_BITS] {
        let mut l = Level::new(bits);
        let n = 1usize << bits;
        assert_eq!(l.next_occupied(0), None);
        let marks = [3usize, n / 2 + 1, n - 1];
        for &m in &marks {
            l.set(m);
        }
        for from in 0..n {
            let want = marks
                .iter()
                .copied()
                .find(|&m| m >= from)
                .unwrap_or(marks[0]);
            assert_eq!(l.next_occupied(from), Some(want), "bits {bits} from {from}");
        }
        for &m in &marks {
            l.clear(m);
        }
        assert_eq!(l.summary, 0);
        assert_eq!(l.next_occupied(7), None);
    }
}

#[test]
fn remove_and_stale_keys() {
    let mut w = Wheel::new();
    let (a, _) = waker(1);
    let (b, _) = waker(2);
    let ka = w.insert(10, a);
    let kb = w.insert(10, b.clone());
    assert!(w.remove(ka));
    assert!(!w.remove(ka), "double remove");
    assert!(w.poll(kb, &b));
    assert_eq!(fire(&mut w, 10), vec![2]);
    assert!(!w.poll(kb, &b), "fired key reads as fired");
    // Slot reuse does not revive the old key.
    let (c, _) = waker(3);
    let kc = w.insert(20, c);
    assert_eq!(kc.index, ka.index.min(kb.index).max(kc.index));
    assert!(!w.poll(ka, &b));
    assert_eq!(w.len(), 1);
    w.check_invariants();
}

#[test]
fn clamped_far_deadline_never_early() {
    let mut w = Wheel::new();
    let far = MAX_DURATION * 3 + 17;
    let (wk, _) = waker(0);
    w.insert(far, wk);
    let mut steps = 0;
    loop {
        let next = w.next_expiration().unwrap();
        let fired = fire(&mut w, next);
        check(&w);
        steps += 1;
        if !fired.is_empty() {
            assert_eq!(next, far);
            w.check_invariants();
            break;
        }
        assert!(next < far);
        assert!(steps < 100);
    }
}

#[test]
fn clamped_timer_does_not_hide_an_earlier_top_level_timer() {
    // Found by the timer_wheel fuzz target: a timer clamped to
    // `elapsed + MAX_DURATION` (with `elapsed` not on a top-level slot
    // boundary) was filed in the current top-level slot, so
    // `next_expiration` returned 2^42 and a timer due at 2^40 never fired.
    let mut w = Wheel::new();
    let near = 1u64 << 40;
    let (a, _) = waker(1);
    w.insert(near, a);
    assert!(fire(&mut w, 1).is_empty());
    let (b, _) = waker(2);
    w.insert(u64::MAX >> 8, b);
    check(&w);
    assert!(w.next_expiration().unwrap() <= near);
    assert_eq!(fire(&mut w, near), vec![1]);
    w.check_invariants();
}

/// Pending timers (`insert_pending`): live for `poll` and `remove` before
/// they are filed, filed in insertion order at the caller's tick, due ones
/// handed back at once.
#[test]
fn pending_timers_file_in_order_and_cancel() {
    let mut w = Wheel::new();
    fire(&mut w, 100);
    let a = w.insert_pending(40, waker(0).0);
    let b = w.insert_pending(40, waker(1).0);
    let c = w.insert_pending(10, waker(2).0);
    let gone = w.insert_pending(5, waker(9).0);
    assert!(w.has_pending());
    assert_eq!(w.len(), 4);
    assert_eq!(
        w.next_expiration(),
        None,
        "pending timers are not in a slot"
    );
    assert!(w.poll(a, &waker(0).0));
    assert_eq!(w.deadline(a), None, "not filed yet");
    assert!(w.remove(gone));
    check(&w);
    let mut due = Vec::new();
    let base = w.elapsed();
    w.file_pending(|after| base + after, &mut due);
    assert!(due.is_empty());
    assert!(!w.has_pending());
    assert_eq!(w.deadline(a), Some(140));
    assert_eq!(w.deadline(c), Some(110));
    check(&w);
    assert_eq!(fire(&mut w, 139), vec![2]);
    assert_eq!(fire(&mut w, 140), vec![0, 1]);
    assert!(!w.poll(b, &waker(1).0));
    // A tick at or before `elapsed` is due: handed back, not filed.
    let d = w.insert_pending(1, waker(3).0);
    let mut due = Vec::new();
    w.file_pending(|_| 140, &mut due);
    assert_eq!(due.len(), 1);
    assert_eq!(w.len(), 0);
    assert!(!w.remove(d));
    w.check_invariants();
}

#[test]
fn filed_pending_timers_land_where_inserted_ones_do() {
    // `file_pending` links through `link_to`'s level-0 shortcut and a
    // horizon computed once per batch; `insert` goes the same way. Around
    // a level-0 block edge (4096 ticks) and far out (clamped), both must
    // pick the slot `level_for`/`slot_for` name, and fire alike.
    let far = [
        1u64,
        2,
        95,
        96,
        97,
        4095,
        4096,
        4097,
        1 << 20,
        MAX_DURATION,
        u64::MAX / 2,
    ];
    // Under Miri the block edge alone (each wheel is 4 160 slots to
    // build and check).
    let starts: &[u64] = if cfg!(miri) {
        &[4095]
    } else {
        &[0, 4000, 4095, 4096, (1 << 30) - 3]
    };
    for &start in starts {
        let (mut a, mut b) = (Wheel::new(), Wheel::new());
        fire(&mut a, start);
        fire(&mut b, start);
        let mut keys = Vec::new();
        for (i, &after) in far.iter().enumerate() {
            let when = start.saturating_add(after);
            keys.push((
                a.insert(when, waker(i).0),
                b.insert_pending(after, waker(i).0),
            ));
        }
        let mut due = Vec::new();
        b.file_pending(|after| start.saturating_add(after), &mut due);
        assert!(due.is_empty());
        check(&a);
        check(&b);
        for &(ka, kb) in &keys {
            let (ea, eb) = (&a.entries[ka.index as usize], &b.entries[kb.index as usize]);
            assert_eq!(
                (ea.deadline, ea.level, ea.slot),
                (eb.deadline, eb.level, eb.slot)
            );
            let top = shift(LEVELS - 1);
            let horizon = (start >> top << top) + (MAX_DURATION + 1) - (1 << top);
            let filed = ea.deadline.min(horizon);
            let level = level_for(start, filed);
            assert_eq!(
                (ea.level as usize, ea.slot as usize),
                (level, slot_for(level, filed))
            );
        }
        for now in [start + 96, start + 4097, start + (1 << 20)] {
            assert_eq!(
                fire(&mut a, now),
                fire(&mut b, now),
                "from {start} to {now}"
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(128)
    ))]
    // Not under Miri: one case of one operation cost ~40 s of CPU there
    // (measured; half of the CI tier's wheel time), and the seeded model
    // below drives the same operations for 300 steps under Miri. Natively
    // and in the `timer_wheel` fuzz target this model runs in full.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn matches_btreemap_model(ops in proptest::collection::vec((0u8..6, 0u64..5000), 1..300)) {
        let mut w = Wheel::new();
        // id -> (deadline, filing sequence): ties fire in filing order.
        let mut model: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        // Pending timers (5), filed in order before the next firing.
        let mut pending: Vec<(usize, u64)> = Vec::new();
        let mut keys: Vec<(usize, Key)> = Vec::new();
        let mut next_id = 0usize;
        let mut seq = 0u64;
        for (op, arg) in ops {
            match op {
                0 | 1 | 4 => {
                    // 4: the deadline of a live timer (ties must fire in insertion order).
                    let when = match (op, model.values().nth(arg as usize % model.len().max(1))) {
                        (4, Some(&(d, _))) => d,
                        _ => w.elapsed() + 1 + arg * if op == 1 { 997 } else { 1 },
                    };
                    let (wk, _) = waker(next_id);
                    keys.push((next_id, w.insert(when, wk)));
                    model.insert(next_id, (when, seq));
                    seq += 1;
                    next_id += 1;
                }
                5 => {
                    let (wk, _) = waker(next_id);
                    keys.push((next_id, w.insert_pending(arg + 1, wk)));
                    pending.push((next_id, arg + 1));
                    next_id += 1;
                }
                2 if !keys.is_empty() => {
                    let (id, key) = keys.swap_remove(arg as usize % keys.len());
                    let was_pending = pending.iter().position(|&(i, _)| i == id).map(|p| pending.remove(p));
                    let live = model.remove(&id).is_some() || was_pending.is_some();
                    proptest::prop_assert_eq!(w.remove(key), live);
                }
                _ => {
                    let base = w.elapsed();
                    let mut due = Vec::new();
                    w.file_pending(|after| base + after, &mut due);
                    proptest::prop_assert!(due.is_empty(), "a pending timer of a non-zero duration was due");
                    for (id, after) in pending.drain(..) {
                        model.insert(id, (base + after, seq));
                        seq += 1;
                    }
                    let now = w.elapsed() + arg;
                    // Deadline order, ties in filing order.
                    let got = fire(&mut w, now);
                    let mut due: Vec<(u64, u64, usize)> = model.iter().filter(|&(_, &(d, _))| d <= now).map(|(&i, &(d, s))| (d, s, i)).collect();
                    due.sort();
                    let want: Vec<usize> = due.into_iter().map(|(_, _, i)| i).collect();
                    for i in &want { model.remove(i); }
                    proptest::prop_assert_eq!(got, want);
                }
            }
            // Under Miri a full walk of the 4 416 slots after every op
            // cost ~8 minutes of the CI tier; there it runs once at the end.
            if !cfg!(miri) {
                check(&w);
            }
            proptest::prop_assert_eq!(w.len(), model.len() + pending.len());
            if let (Some(next), Some(min)) = (w.next_expiration(), model.values().map(|&(d, _)| d).min()) {
                proptest::prop_assert!(next <= min, "next expiration {} after earliest deadline {}", next, min);
            }
        }
        w.check_invariants();
    }
}

/// Review stress (wt-rev5): thousands of timers on a handful of deadlines
/// (so the same level-0 and level-1 slots fill up), most of them cancelled
/// in a scattered order (tombstones, compactions, lists emptied and
/// refilled), pending timers filed among them, and firings in small steps
/// that cascade compacted lists down. Against a model: every timer fires
/// at its deadline (never early, never lost), ties in filing order, and
/// a cancelled one (its slab entry reused meanwhile) never fires.
#[test]
fn tombstones_under_collisions_and_cascades_match_the_model() {
    let mut w = Wheel::new();
    let mut model: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    let mut pending: Vec<(usize, u64)> = Vec::new();
    let mut keys: Vec<(usize, Key)> = Vec::new();
    let (mut next_id, mut seq) = (0usize, 0u64);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let steps = if cfg!(miri) { 300 } else { 60_000 };
    for step in 0..steps {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let base = w.elapsed();
        match x % 16 {
            0..=6 => {
                // A few offsets: same level-0 slot, same level-1 slot,
                // a level-2 slot, and the next block boundary.
                let off = [1, 2, 4095, 4096, 4097, 4096 * 5, 4096 * 64 + 3, 1 << 20]
                    [(x >> 8) as usize % 8];
                // Round to a shared absolute tick so that later inserts
                // collide with earlier ones.
                let when = ((base + off) | 7) + 1;
                let (wk, _) = waker(next_id);
                keys.push((next_id, w.insert(when, wk)));
                model.insert(next_id, (when, seq));
                seq += 1;
                next_id += 1;
            }
            7 => {
                let after = 1 + (x >> 8) % 5000;
                let (wk, _) = waker(next_id);
                keys.push((next_id, w.insert_pending(after, wk)));
                pending.push((next_id, after));
                next_id += 1;
            }
            8..=12 if !keys.is_empty() => {
                let (id, key) = keys.swap_remove((x >> 8) as usize % keys.len());
                let was_pending = pending
                    .iter()
                    .position(|&(i, _)| i == id)
                    .map(|p| pending.remove(p));
                let live = model.remove(&id).is_some() || was_pending.is_some();
                assert_eq!(w.remove(key), live, "step {step}");
            }
            _ => {
                let mut due = Vec::new();
                w.file_pending(|after| base + after, &mut due);
                assert!(due.is_empty());
                for (id, after) in pending.drain(..) {
                    model.insert(id, (base + after, seq));
                    seq += 1;
                }
                let now = base + (x >> 8) % 3000;
                let got = fire(&mut w, now);
                let mut want: Vec<(u64, u64, usize)> = model
                    .iter()
                    .filter(|&(_, &(d, _))| d <= now)
                    .map(|(&i, &(d, s))| (d, s, i))
                    .collect();
                want.sort();
                let want: Vec<usize> = want.into_iter().map(|(_, _, i)| i).collect();
                for i in &want {
                    model.remove(i);
                }
                assert_eq!(got, want, "step {step}");
            }
        }
        if !cfg!(miri) && step % 64 == 0 {
            check(&w);
        }
        assert_eq!(w.len(), model.len() + pending.len());
    }
    w.check_invariants();
    // Drain: everything left fires, in order.
    let mut due = Vec::new();
    let base = w.elapsed();
    w.file_pending(|after| base + after, &mut due);
    for (id, after) in pending.drain(..) {
        model.insert(id, (base + after, seq));
        seq += 1;
    }
    let mut want: Vec<(u64, u64, usize)> = model.iter().map(|(&i, &(d, s))| (d, s, i)).collect();
    want.sort();
    let want: Vec<usize> = want.into_iter().map(|(_, _, i)| i).collect();
    assert_eq!(fire(&mut w, u64::MAX >> 20), want);
    assert_eq!(w.len(), 0);
}
