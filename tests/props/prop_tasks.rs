//! Property suite (a): random trees of spawn / await / cancel / yield / sleep
//! give the results a simple model predicts.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use coil::task::yield_now;
use coil::{TaskError, spawn};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Node {
    /// Yield `yields` times, sleep `sleep_us`, return `value`.
    Leaf {
        value: u32,
        yields: u8,
        sleep_us: u16,
    },
    /// Spawn each child (cancelling those marked, right after spawning),
    /// optionally yield, then await them all and sum what they returned.
    Spawn {
        children: Vec<(Node, bool)>,
        yields: u8,
    },
    /// Await the child inline (no task), under a generous timeout.
    Inline(Box<Node>),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (0u32..1000, 0u8..4, prop_oneof![Just(0u16), 1u16..1500]).prop_map(
        |(value, yields, sleep_us)| Node::Leaf {
            value,
            yields,
            sleep_us,
        },
    );
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            (
                prop::collection::vec((inner.clone(), prop::bool::weighted(0.25)), 0..5),
                0u8..3
            )
                .prop_map(|(children, yields)| Node::Spawn { children, yields }),
            inner.prop_map(|n| Node::Inline(Box::new(n))),
        ]
    })
}

/// What the model predicts: the value, and how many nodes run to the end.
fn model(n: &Node) -> (u64, u32) {
    match n {
        Node::Leaf { value, .. } => (u64::from(*value), 1),
        Node::Spawn { children, .. } => {
            let (mut v, mut c) = (0, 1);
            for (child, cancelled) in children {
                if !cancelled {
                    let (cv, cc) = model(child);
                    v += cv;
                    c += cc;
                }
            }
            (v, c)
        }
        Node::Inline(child) => {
            let (v, c) = model(child);
            (v, c + 1)
        }
    }
}

fn exec(n: Node, finished: Rc<Cell<u32>>) -> Pin<Box<dyn Future<Output = u64>>> {
    Box::pin(async move {
        let v = match n {
            Node::Leaf {
                value,
                yields,
                sleep_us,
            } => {
                for _ in 0..yields {
                    yield_now().await;
                }
                if sleep_us > 0 {
                    coil::time::sleep(Duration::from_micros(u64::from(sleep_us))).await;
                }
                u64::from(value)
            }
            Node::Spawn { children, yields } => {
                let tasks: Vec<_> = children
                    .into_iter()
                    .map(|(child, cancel)| {
                        let t = spawn(exec(child, finished.clone()));
                        if cancel {
                            assert!(t.cancel());
                        }
                        (t, cancel)
                    })
                    .collect();
                for _ in 0..yields {
                    yield_now().await;
                }
                let mut sum = 0;
                for (t, cancelled) in tasks {
                    match t.await {
                        Ok(v) => {
                            assert!(!cancelled, "a cancelled task returned a value");
                            sum += v;
                        }
                        Err(TaskError::Cancelled(_)) => {
                            assert!(cancelled, "cancelled without cancel()")
                        }
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                sum
            }
            Node::Inline(child) => {
                coil::time::timeout(Duration::from_secs(30), exec(*child, finished.clone()))
                    .await
                    .expect("inline child timed out")
            }
        };
        finished.set(finished.get() + 1);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn task_trees_match_model(tree in node()) {
        let (want_value, want_finished) = model(&tree);
        let finished = Rc::new(Cell::new(0));
        let f = finished.clone();
        let (value, tasks_left) = coil::run(async move {
            let v = exec(tree, f).await;
            (v, coil::runtime::stats().unwrap().tasks)
        });
        prop_assert_eq!(value, want_value);
        prop_assert_eq!(finished.get(), want_finished, "nodes that ran to the end");
        prop_assert_eq!(tasks_left, 0, "every task ended");
    }
}
