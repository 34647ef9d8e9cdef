//! Time: sleeping, timeouts and intervals, on the loop's timing wheel.
//!
//! asyncio's `sleep`, `wait_for`/`timeout` and periodic loops: [`sleep`],
//! [`timeout`] (a future is dropped on expiry), [`wait_for`] (a [`Task`](crate::Task)
//! is cancelled on expiry and waited for), [`timeout_scope`] (a deadline the
//! body can move), [`interval`]. Timers have a
//! resolution of 125 µs and **never fire early**: a deadline is rounded *up* to
//! the next 125 µs tick, and the loop only fires a tick once the clock
//! has passed it. Deadlines in the past complete at once; `Duration::MAX`
//! means "practically never" and does not overflow.
//!
//! ```
//! use std::time::Duration;
//! use coil::time::{self, Instant};
//!
//! coil::run(async {
//!     let start = Instant::now();
//!     time::sleep(Duration::from_millis(20)).await;
//!     assert!(start.elapsed() >= Duration::from_millis(20));
//!
//!     let slow = time::sleep(Duration::from_secs(3600));
//!     assert!(time::timeout(Duration::from_millis(5), slow).await.is_err());
//! });
//! ```
//!
//! This module owns the public timer futures and the clock type. The wheel
//! they register in belongs to the loop (`rt/wheel.rs`, a hierarchical timing
//! wheel with O(1) insert and cancel, and `rt/timers.rs`); dropping a
//! [`Sleep`] removes its timer.

mod instant;
mod interval;
mod sleep;
mod timeout;
mod wait_for;

pub use instant::Instant;
pub use interval::{Interval, MissedTickBehavior, Tick, interval, interval_at};
pub use sleep::{Sleep, sleep, sleep_until};
pub(crate) use timeout::timeout_dropping;
pub use timeout::{
    Elapsed, RescheduleError, Timeout, TimeoutHandle, timeout, timeout_at, timeout_scope,
};
pub use wait_for::{TaskTimeout, wait_for, wait_for_at};

pub use std::time::Duration;
