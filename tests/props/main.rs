//! Property suites (proptest) against plain models: gather, queues, streams, sync primitives, tasks, timers, wakes.
//!
//! One test binary for several files (each a module below): a cold `cargo test`
//! links far fewer binaries. Tests that count process-wide things (open fds,
//! heap bytes, RSS, CPU time, pool threads) or install panic hooks stay in
//! binaries of their own (`tests/*.rs`).

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod prop_gather;
mod prop_queue;
mod prop_stream;
mod prop_sync;
mod prop_tasks;
mod prop_timers;
mod prop_wake;
