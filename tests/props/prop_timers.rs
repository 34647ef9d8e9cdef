//! Property suite (b): timers fire in deadline order and never early.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coil::spawn;
use coil::time::{Instant, sleep_until};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(32)
    ))]

    #[test]
    fn timers_fire_in_order_never_early(slots in prop::collection::vec(0u32..12, 1..60), cancel in prop::collection::vec(any::<bool>(), 60)) {
        // Deadlines on a 2 ms grid land on distinct wheel ticks, so the order
        // between grid points is defined; within one point it is free.
        let fired = Rc::new(RefCell::new(Vec::new()));
        let f = fired.clone();
        let slots2 = slots.clone();
        let cancel2 = cancel.clone();
        let early = coil::run(async move {
            let base = Instant::now() + Duration::from_millis(20);
            let mut tasks = Vec::new();
            for (i, k) in slots2.iter().copied().enumerate() {
                let f = f.clone();
                let deadline = base + Duration::from_millis(2 * u64::from(k));
                tasks.push(spawn(async move {
                    sleep_until(deadline).await;
                    let now = Instant::now();
                    f.borrow_mut().push((k, i));
                    now < deadline
                }));
            }
            coil::task::yield_now().await;
            for (i, t) in tasks.iter().enumerate() {
                if cancel2[i] {
                    t.cancel();
                }
            }
            let mut early = 0;
            for t in tasks {
                if let Ok(true) = t.await {
                    early += 1;
                }
            }
            early
        });
        prop_assert_eq!(early, 0, "a timer fired before its deadline");
        let fired = fired.borrow();
        for w in fired.windows(2) {
            prop_assert!(w[0].0 <= w[1].0, "fired out of order: {:?}", *fired);
        }
        for &(_, i) in fired.iter() {
            prop_assert!(!cancel[i], "a cancelled timer fired");
        }
        let expected = (0..slots.len()).filter(|&i| !cancel[i]).count();
        prop_assert_eq!(fired.len(), expected);
    }
}
