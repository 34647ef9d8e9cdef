//! docs/how-await-works.md: the hand-written state machine in
//! examples/handwritten_future.rs behaves exactly like the `async fn` it
//! stands for, a self-waking leaf future is polled once per tick, and the
//! hand-written generator of examples/handwritten_generator.rs answers send,
//! throw and close exactly as the `async_gen` it stands for.

#[path = "../../examples/handwritten_future.rs"]
mod example;

#[path = "../../examples/handwritten_generator.rs"]
mod generator;

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

#[test]
fn hand_written_generator_matches_async_gen() {
    for &(script, expected) in generator::SCRIPTS {
        assert_eq!(generator::run_async_gen(script), expected);
        assert_eq!(generator::run_by_hand(script), expected);
    }
}

#[test]
fn generator_example_main_runs() {
    generator::main();
}

/// Every code block of the chapter that quotes an example (its first line
/// is a line of one of them) must be found in one of them, comment lines
/// aside.
#[test]
fn chapter_quotes_the_examples_verbatim() {
    let chapter = include_str!("../../docs/how-await-works.md");
    let code = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(str::to_owned)
            .collect()
    };
    let examples = [
        code(include_str!("../../examples/handwritten_future.rs")),
        code(include_str!("../../examples/handwritten_generator.rs")),
    ];
    let mut quoted = [0; 2];
    for block in chapter.split("```rust\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        let lines = code(block);
        let Some(first) = lines.first() else { continue };
        if !examples.iter().any(|source| source.contains(first)) {
            continue; // an illustration, not a quote
        }
        let found = examples
            .iter()
            .position(|source| source.windows(lines.len()).any(|w| w == lines.as_slice()));
        let Some(which) = found else {
            panic!("docs/how-await-works.md quotes a block that is in neither example:\n{block}");
        };
        quoted[which] += 1;
    }
    assert!(
        quoted[0] >= 4 && quoted[1] >= 3,
        "expected the chapter to quote both examples, found {quoted:?} quotes"
    );
}
