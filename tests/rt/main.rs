//! The runtime and toolkit seen from a user: tasks, time, timeouts, combinators, streams, TaskGroup, buffered I/O, fs ops, the simulator, the attribute macros.
//!
//! One test binary for several files (each a module below): a cold `cargo test`
//! links far fewer binaries. Tests that count process-wide things (open fds,
//! heap bytes, RSS, CPU time, pool threads) or install panic hooks stay in
//! binaries of their own (`tests/*.rs`).

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod blocking_pool;
mod comb_gather;
mod comb_macros;
mod comb_select;
mod comb_wait;
mod docs_await;
mod fs_file;
mod fs_fixed;
mod fs_ops;
mod io_buffered;
mod macro_attrs;
mod module_graph;
mod pool;
mod process;
mod rt_debug;
mod rt_dump;
mod rt_fairness;
mod rt_task_combinations;
mod rt_trace;
mod send_sync;
mod sim_clock;
mod sim_net;
mod sim_props;
mod stream_async_gen;
mod stream_ext;
mod stream_generate;
mod task_cancel_race;
mod task_cancel_request;
mod task_cancel_scopes;
mod task_cells;
mod task_visible;
mod task_yield;
mod taskgroup_asyncio;
mod taskgroup_semantics;
mod time_sleep;
mod time_timeout;
