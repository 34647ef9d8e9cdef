//! Atomics facade: loom's model-checked atomics under `cfg(loom)`, std's
//! otherwise (the idea of tokio's `src/loom/mod.rs`).
//!
//! Code whose interleavings a loom model checks imports its atomics from here
//! (today the task state word, `task/state.rs`); the models are the
//! `#[cfg(all(test, loom))]` modules, run with
//! `RUSTFLAGS="--cfg loom" cargo test -p coil --lib --release state_loom`.
//! Outside `loom::model` loom's atomics panic, which is why only the models run
//! in a `--cfg loom` build.

#[cfg(loom)]
pub(crate) use ::loom::sync::atomic::*;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::*;
