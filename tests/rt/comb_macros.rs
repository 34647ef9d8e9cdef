//! join!, try_join! and select! under every driver.

use crate::support;

use std::time::Duration;

use coil::time::{Instant, sleep};
use support::flag;

async fn after<T>(ms: u64, v: T) -> T {
    sleep(Duration::from_millis(ms)).await;
    v
}

driver_test! {
    fn join_of_three_types_keeps_argument_order(rt) {
        let out = rt.block_on(async {
            coil::join!(after(20, 1u8), after(0, "two"), async { after(10, vec![3]).await }).await
        });
        assert_eq!(out, (1, "two", vec![3]));
    }

    fn try_join_ok_then_first_err_drops_the_other_at_once(rt) {
        rt.block_on(async {
            let ok = coil::try_join!(after(10, Ok::<_, String>(1)), after(0, Ok(2.5))).await;
            assert_eq!(ok, Ok((1, 2.5)));

            let (dropped, guard) = flag();
            let slow = async move {
                let _guard = guard;
                after(3_600_000, Ok::<u8, String>(0)).await
            };
            let start = Instant::now();
            let r = coil::try_join!(slow, after(5, Err::<(), _>("bad".to_string()))).await;
            assert_eq!(r, Err("bad".to_string()));
            assert!(dropped.get(), "the slow future was dropped before the error came back");
            assert!(start.elapsed() < Duration::from_secs(60));
        });
    }
}
