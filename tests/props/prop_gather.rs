//! Property suite: gather order. Whatever the delays and yields of each
//! future, `gather_all`, `gather!` and `try_gather_all` give the outputs in
//! argument order, and `as_completed` gives each output exactly once.

use std::time::Duration;

use coil::stream::StreamExt;
use coil::task::yield_now;
use coil::time::sleep;
use proptest::prelude::*;

/// One step of a future's life before it returns.
#[derive(Debug, Clone, Copy)]
enum Step {
    Yield,
    SleepUs(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![Just(Step::Yield), (0u16..2000).prop_map(Step::SleepUs)]
}

fn program() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 0..5)
}

async fn run(steps: Vec<Step>, value: u32) -> u32 {
    for s in steps {
        match s {
            Step::Yield => yield_now().await,
            Step::SleepUs(us) => sleep(Duration::from_micros(u64::from(us))).await,
        }
    }
    value
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn gather_all_is_in_input_order(progs in prop::collection::vec(program(), 0..24), spawned in any::<bool>()) {
        let n = progs.len() as u32;
        let out = coil::run(async move {
            if spawned {
                let tasks: Vec<_> = progs.into_iter().zip(0..).map(|(p, i)| coil::spawn(run(p, i))).collect();
                coil::gather_all(tasks).await.into_iter().map(Result::unwrap).collect::<Vec<_>>()
            } else {
                coil::gather_all(progs.into_iter().zip(0..).map(|(p, i)| run(p, i))).await
            }
        });
        prop_assert_eq!(out, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn gather_macro_is_in_argument_order(a in program(), b in program(), c in program(), d in program()) {
        let out = coil::run(coil::gather!(run(a, 0), run(b, 1), async { run(c, 2).await as u64 }, run(d, 3)));
        prop_assert_eq!(out, (0, 1, 2u64, 3));
    }

    #[test]
    fn try_gather_all_is_in_input_order_or_the_first_error(
        progs in prop::collection::vec((program(), prop::bool::weighted(0.2)), 1..12)
    ) {
        let expect_err = progs.iter().any(|(_, fail)| *fail);
        let n = progs.len() as u32;
        let out = coil::run(coil::try_gather_all(progs.into_iter().zip(0..).map(|((p, fail), i)| async move {
            let v = run(p, i).await;
            if fail { Err(v) } else { Ok(v) }
        })));
        match out {
            Ok(v) => {
                prop_assert!(!expect_err);
                prop_assert_eq!(v, (0..n).collect::<Vec<_>>());
            }
            Err(_) => prop_assert!(expect_err),
        }
    }

    #[test]
    fn as_completed_yields_each_output_once(progs in prop::collection::vec(program(), 0..16)) {
        let n = progs.len() as u32;
        let mut out: Vec<u32> = coil::run(
            coil::as_completed(progs.into_iter().zip(0..).map(|(p, i)| run(p, i))).collect()
        );
        out.sort_unstable();
        prop_assert_eq!(out, (0..n).collect::<Vec<_>>());
    }
}
