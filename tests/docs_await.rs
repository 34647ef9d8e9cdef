//! docs/how-await-works.md: the hand-written state machine in
//! examples/handwritten_future.rs behaves exactly like the `async fn` it
//! stands for, and a self-waking leaf future is polled once per tick.

#[path = "../examples/handwritten_future.rs"]
mod example;

#[test]
fn hand_written_state_machine_matches_async_fn() {
    let (by_async, by_hand) = example::run_both();
    assert_eq!(by_async.trace, by_hand.trace);
    assert_eq!(by_async.trace, example::EXPECTED_TRACE);
    for run in [by_async, by_hand] {
        assert_eq!(run.sum, 3 + 7 * 7);
        // Timers never fire early; no upper bound (CI machines stall).
        assert!(
            run.elapsed >= example::PAUSE,
            "woke early: {:?}",
            run.elapsed
        );
    }
}

#[test]
fn self_waking_tasks_take_turns() {
    assert_eq!(example::run_countdowns(), example::EXPECTED_COUNTDOWNS);
}

#[test]
fn example_main_runs() {
    example::main();
}
