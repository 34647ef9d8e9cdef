//! docs/how-await-works.md: the hand-written state machine in
//! examples/handwritten_future.rs behaves exactly like the `async fn` it
//! stands for, and a self-waking leaf future is polled once per tick.

#[path = "../../examples/handwritten_future.rs"]
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

/// Every code block of the chapter that quotes the example (its first line
/// is a line of the example) must match the example, comment lines aside.
#[test]
fn chapter_quotes_the_example_verbatim() {
    let chapter = include_str!("../../docs/how-await-works.md");
    let source = include_str!("../../examples/handwritten_future.rs");
    let code = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(str::to_owned)
            .collect()
    };
    let source_lines = code(source);
    let mut quoted = 0;
    for block in chapter.split("```rust\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        let lines = code(block);
        let Some(first) = lines.first() else { continue };
        if !source_lines.contains(first) {
            continue; // an illustration, not a quote
        }
        quoted += 1;
        let found = source_lines
            .windows(lines.len())
            .any(|w| w == lines.as_slice());
        assert!(
            found,
            "docs/how-await-works.md quotes a block that is not in the example:\n{block}"
        );
    }
    assert!(
        quoted >= 4,
        "expected the chapter to quote the example, found {quoted} quotes"
    );
}
