//! sync and queue: Event, Condition, Barrier, Mutex, RwLock, Semaphore, mpsc, oneshot, broadcast, watch, the hand-offs, and the asyncio queues.
//!
//! One test binary for several files (each a module below): a cold `cargo test`
//! links far fewer binaries. Tests that count process-wide things (open fds,
//! heap bytes, RSS, CPU time, pool threads) or install panic hooks stay in
//! binaries of their own (`tests/*.rs`).

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod queue_cancel;
mod queue_producers;
mod queue_semantics;
mod queue_shutdown;
mod sync_barrier;
mod sync_broadcast;
mod sync_event;
mod sync_handoff;
mod sync_mpsc;
mod sync_mutex;
mod sync_oneshot;
mod sync_semaphore;
mod sync_send_sync;
mod sync_watch;
