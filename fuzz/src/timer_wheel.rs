//! The timer wheel (`rt/wheel.rs`, through `coil::fuzz::wheel`) against a
//! `BTreeMap` model.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

use coil::fuzz::wheel::{Key, MAX_DURATION, Wheel};

use crate::Bytes;

/// A waker that records its timer id when woken.
struct Tag {
    id: u64,
    log: Arc<Mutex<Vec<u64>>>,
}

impl Wake for Tag {
    fn wake(self: Arc<Self>) {
        self.log.lock().unwrap().push(self.id);
    }
}

/// Ticks stay below this (the loop's ticks are milliseconds since its start;
/// 2⁵⁰ ms is 35 000 years), so `elapsed + MAX_DURATION` cannot overflow.
const TICK_LIMIT: u64 = 1 << 50;

/// Bytes → insert / remove / poll / advance on a [`Wheel`], compared with a
/// `BTreeMap` of id → deadline. Checks the wheel's invariants after every
/// advance and at the end, and after every operation its length, that `next_expiration` is never after the earliest
/// deadline, that `advance` fires exactly the due timers (never early, never
/// lost), and that removed or fired keys read as dead.
pub fn timer_wheel(data: &[u8]) {
    let _ = run_timer_wheel(&mut Bytes(data));
}

fn run_timer_wheel(b: &mut Bytes<'_>) -> Option<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let waker = |id: u64| {
        Waker::from(Arc::new(Tag {
            id,
            log: log.clone(),
        }))
    };
    let mut wheel = Wheel::new();
    let mut model: BTreeMap<u64, u64> = BTreeMap::new();
    // Every key ever handed out, live or not, so stale keys get exercised.
    let mut keys: Vec<(u64, Key)> = Vec::new();
    let mut next_id = 0u64;
    loop {
        let Some(op) = b.u8() else {
            wheel.check_invariants();
            return Some(());
        };
        let elapsed = wheel.elapsed();
        match op % 7 {
            // Insert, near (within level 0 or 1) or far (any level, clamped).
            op @ (0 | 1) => {
                let delta = if op == 0 {
                    u64::from(b.u16()?)
                } else {
                    let shift = b.u8()? % 48;
                    u64::from(b.u32()?) << shift
                };
                let when = (elapsed + 1).saturating_add(delta).min(TICK_LIMIT);
                if when <= elapsed {
                    continue;
                }
                let id = next_id;
                next_id += 1;
                keys.push((id, wheel.insert(when, waker(id))));
                model.insert(id, when);
            }
            // Cancel.
            2 if !keys.is_empty() => {
                let (id, key) = keys[usize::from(b.u16()?) % keys.len()];
                let live = model.remove(&id).is_some();
                assert_eq!(wheel.remove(key), live, "remove of timer {id}");
            }
            // Poll (re-arming with a fresh waker for the same id).
            3 if !keys.is_empty() => {
                let (id, key) = keys[usize::from(b.u16()?) % keys.len()];
                assert_eq!(
                    wheel.poll(key, &waker(id)),
                    model.contains_key(&id),
                    "poll of timer {id}"
                );
            }
            // Advance a little, a lot, or exactly to the next expiration.
            op @ (4..=6) => {
                let now = match op {
                    4 => elapsed + u64::from(b.u16()? % 5000),
                    5 => {
                        let shift = b.u8()? % 48;
                        elapsed.saturating_add(u64::from(b.u32()?) << shift)
                    }
                    _ => wheel.next_expiration().unwrap_or(elapsed),
                }
                .min(TICK_LIMIT);
                let mut fired = Vec::new();
                wheel.advance(now, &mut fired);
                assert_eq!(wheel.elapsed(), now.max(elapsed), "elapsed after advance");
                for w in fired {
                    w.wake();
                }
                let mut got = std::mem::take(&mut *log.lock().unwrap());
                got.sort_unstable();
                let want: Vec<u64> = model
                    .iter()
                    .filter(|&(_, &d)| d <= now)
                    .map(|(&id, _)| id)
                    .collect();
                for id in &want {
                    model.remove(id);
                }
                assert_eq!(got, want, "fired set when advancing {elapsed} -> {now}");
                // The full walk costs ~4 400 slots: after advances and at the
                // end only, so the fuzzer keeps its pace.
                wheel.check_invariants();
            }
            _ => {}
        }
        assert_eq!(wheel.len(), model.len());
        match (wheel.next_expiration(), model.values().min()) {
            (None, None) => {}
            (Some(next), Some(&min)) => {
                assert!(next <= min, "next expiration {next} after deadline {min}");
                assert!(
                    next > wheel.elapsed(),
                    "next expiration {next} is not ahead"
                );
                assert!(
                    next - wheel.elapsed() <= MAX_DURATION,
                    "next expiration too far"
                );
            }
            (next, min) => panic!("next expiration {next:?}, earliest deadline {min:?}"),
        }
    }
}
