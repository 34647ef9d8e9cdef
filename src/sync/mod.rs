//! Synchronisation primitives: asyncio's `Lock`, `Event`, `Semaphore`,
//! `Condition` and `Barrier`, plus `RwLock`, and channels between threads.
//!
//! | asyncio | coil | notes |
//! |---|---|---|
//! | `Lock` | [`Mutex<T>`] | holds the data; the guard is `async with lock:` |
//! | — | [`RwLock<T>`] | many readers or one writer, fair |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`] | permits released on drop; owned permits through `Rc` |
//! | `Event` | [`Event`] | |
//! | `Condition` | [`Condition`] + a [`Mutex`] | like `std::sync::Condvar`; `notify` takes the guard, `wait`/`wait_timeout` return it |
//! | `Barrier`, `BrokenBarrierError` | [`Barrier`], [`BrokenBarrier`] | `wait` returns the arrival index; `abort`, `reset` |
//! | `Future` (one result) | [`oneshot`] | `Send`: works across threads |
//! | `janus`-style thread queues | [`mpsc`] | many producers on any thread |
//! | a `Queue` per consumer, each getting every item | [`broadcast`] | tokio's; bounded, a slow receiver lags |
//! | a value and an `Event` that says it changed | [`watch`] | tokio's; receivers see the latest value |
//!
//! **One loop, no threads.** The primitives above the line serve tasks of one
//! event loop, like asyncio's: they are `Send` (when their data is) but not
//! `Sync`, so they are shared by borrowing or with an `Rc`, never between
//! threads. They cost no atomic operation. To talk between threads or loops,
//! use the channels [`mpsc`], [`oneshot`], [`broadcast`] and [`watch`], which
//! are `Send + Sync`.
//!
//! **Fair and cancel safe.** Waiters are served in arrival order. A waiting
//! future that is dropped (its task cancelled, a `timeout` elapsed) leaves the
//! line; if a permit, the lock or a notification had already been handed to
//! it, that passes to the next waiter, so nothing is lost.
//!
//! ```
//! use std::rc::Rc;
//! use coil::sync::{Event, Mutex};
//!
//! coil::run(async {
//!     let log = Rc::new(Mutex::new(Vec::new()));
//!     let go = Rc::new(Event::new());
//!     let worker = coil::spawn({
//!         let (log, go) = (log.clone(), go.clone());
//!         async move {
//!             go.wait().await;
//!             log.lock().await.push("worker");
//!         }
//!     });
//!     log.lock().await.push("main");
//!     go.set();
//!     worker.await.unwrap();
//!     assert_eq!(*log.lock().await, ["main", "worker"]);
//! });
//! ```

mod barrier;
pub(crate) mod block;
pub mod broadcast;
mod condition;
mod event;
pub mod mpsc;
mod mutex;
pub mod oneshot;
mod rwlock;
mod semaphore;
pub(crate) mod waiters;
pub mod watch;

pub use barrier::{Barrier, BarrierWait, BarrierWaitResult, BrokenBarrier};
pub use condition::Condition;
pub use event::{Event, Wait};
pub use mutex::{Lock, Mutex, MutexGuard, TryLockError};
pub use rwlock::{Read, RwLock, RwLockReadGuard, RwLockWriteGuard, Write};
pub use semaphore::{
    Acquire, AcquireError, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit,
    TryAcquireError,
};
