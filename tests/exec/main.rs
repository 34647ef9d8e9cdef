//! The executor's core, the tests the Miri tier runs (`.ci/run`): spawning,
//! joining, cancelling and panics (`rt_spawn`), wakers from every context
//! (`rt_wake`), and the op paths of epoll and the simulator (`op_miri`).
//!
//! One test binary for several files (each a module below): a cold `cargo test`
//! links far fewer binaries.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod op_miri;
mod rt_spawn;
mod rt_wake;
