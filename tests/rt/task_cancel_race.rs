//! Cancel requests racing `uncancel` from the task (found by review; failed
//! within 10 000 rounds before the count and the pending bit shared one word).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use coil::task::{Builder, cancellable, current, yield_now};

/// `uncancel()` at zero withdraws the undelivered request by storing
/// `pending = false` *after* its count update. A `cancel()` from another
/// thread that lands between the two (count 0 -> 1, pending = true) is then
/// wiped: `cancelling()` says 1 but no `cancellable` scope ever sees the
/// request. Each round the other thread cancels once while the task spins
/// on `uncancel()`; afterwards `cancelling() == 1` must mean a request is
/// deliverable.
///
/// Rounds: `COIL_RACE_ROUNDS` (default 20 000, twice what the old code needed
/// to fail; the `matrix-deep` tier of `.ci/run` runs 200 000).
#[test]
fn a_request_racing_uncancel_at_zero_is_not_lost() {
    let rounds: usize = std::env::var("COIL_RACE_ROUNDS")
        .map(|v| v.parse().expect("COIL_RACE_ROUNDS is a count"))
        .unwrap_or(20_000);
    coil::run(async {
        let round = Arc::new(AtomicUsize::new(0)); // odd: the task spins, even: cancelled
        let t = Builder::new().cooperative_cancel().spawn({
            let round = round.clone();
            async move {
                let me = current().unwrap();
                for r in 0..rounds {
                    round.store(2 * r + 1, SeqCst);
                    while round.load(SeqCst) == 2 * r + 1 {
                        me.uncancel();
                    }
                    // The canceller is done for this round.
                    let count = me.cancelling();
                    let delivered = cancellable(yield_now()).await.is_err();
                    if count == 1 && !delivered {
                        round.store(usize::MAX, SeqCst);
                        return Err(format!(
                            "round {r}: cancelling() == 1 but the request is never delivered"
                        ));
                    }
                    while me.uncancel() > 0 {}
                }
                Ok(())
            }
        });
        let h = (*t).clone();
        let canceller = std::thread::spawn({
            let round = round.clone();
            move || {
                for r in 0..rounds {
                    loop {
                        match round.load(SeqCst) {
                            usize::MAX => return,
                            x if x == 2 * r + 1 => break,
                            _ => std::hint::spin_loop(),
                        }
                    }
                    for _ in 0..(r % 64) {
                        std::hint::spin_loop();
                    }
                    assert!(h.cancel());
                    round.store(2 * r + 2, SeqCst);
                }
            }
        });
        let res = t.await.unwrap();
        canceller.join().unwrap();
        res.unwrap();
    });
}
