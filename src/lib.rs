//! # coil: asyncio's model for Rust, on io_uring
//!
//! coil is an async runtime built from raw OS primitives: one event loop per
//! thread, tasks that run cooperatively on it, timers on a timing wheel, and
//! I/O that goes straight to the kernel through io_uring, or epoll where
//! io_uring is unavailable. Nothing runs underneath it: the task
//! allocation, the waker vtable, the loop and the drivers are coil's own.
//!
//! If you know Python's asyncio you already know the shape:
//!
//! | asyncio | coil |
//! |---|---|
//! | `asyncio.run(main())` | [`coil::run(main())`](run) |
//! | `asyncio.create_task(c)` | [`coil::spawn(c)`](spawn) → [`Task<T>`](task::Task) |
//! | `await task` | `task.await` → `Result<T, TaskError>` |
//! | `task.cancel()` | [`Task::cancel`](task::TaskHandle::cancel) |
//! | `asyncio.sleep(s)` | [`coil::time::sleep`](time::sleep) |
//! | `asyncio.wait_for(c, t)` | [`coil::time::timeout`](time::timeout) |
//! | `await asyncio.sleep(0)` | [`coil::task::yield_now`](task::yield_now) |
//! | `loop.call_soon_threadsafe` / `run_coroutine_threadsafe` | [`Handle::spawn`] |
//! | `loop.add_signal_handler(SIGINT, cb)` | [`coil::signal::ctrl_c()`](signal::ctrl_c), [`signal::signal`] |
//!
//! ## A first program
//!
//! Two jobs that each wait 30 ms run concurrently, so the whole program
//! takes about 30 ms, not 60:
//!
//! ```
//! use std::time::Duration;
//! use coil::time::{sleep, Instant};
//!
//! async fn job(name: &str, ms: u64) -> String {
//!     sleep(Duration::from_millis(ms)).await;
//!     format!("{name} done")
//! }
//!
//! let start = Instant::now();
//! let (a, b) = coil::run(async {
//!     let a = coil::spawn(job("a", 30));
//!     let b = coil::spawn(job("b", 30));
//!     (a.await.unwrap(), b.await.unwrap())
//! });
//! assert_eq!((a.as_str(), b.as_str()), ("a done", "b done"));
//! assert!(start.elapsed() >= Duration::from_millis(30));
//! ```
//!
//! ## Tasks need not be `Send`
//!
//! A loop lives on one thread, so [`spawn`] accepts futures holding `Rc` or
//! `RefCell`. To hand work to a loop from another thread, use a [`Handle`]
//! and a `Send` future.
//!
//! ```
//! use std::{cell::RefCell, rc::Rc};
//!
//! let total = coil::run(async {
//!     let shared = Rc::new(RefCell::new(0));
//!     let tasks: Vec<_> = (1..=10)
//!         .map(|i| {
//!             let shared = shared.clone();
//!             coil::spawn(async move { *shared.borrow_mut() += i })
//!         })
//!         .collect();
//!     for t in tasks {
//!         t.await.unwrap();
//!     }
//!     let n = *shared.borrow();
//!     n
//! });
//! assert_eq!(total, 55);
//! ```
//!
//! ## Choosing the driver
//!
//! `COIL_DRIVER=auto|uring|epoll` or [`runtime::Builder::driver`]; `auto`
//! (the default) uses io_uring when the kernel allows it and otherwise epoll,
//! and [`Runtime::driver`] says which and why.
//!
//! ## The guide and the asyncio mapping
//!
//! The guide is part of coil's repository, not of this crate, so rustdoc
//! cannot link to it: the files below are paths in the repository (next to
//! `Cargo.toml`), readable on any repository browser or in a checkout. Each
//! chapter takes one asyncio concept, shows the Python program and its coil
//! rewrite, and has a runnable example (`cargo run --example guide_01_coroutines`
//! and so on; `cargo run --release --example tour` runs them all):
//!
//! 1. `docs/guide/01-coroutines.md`: coroutines and `await`
//! 2. `docs/guide/02-event-loop.md`: the event loop and [`run`]
//! 3. `docs/guide/03-tasks-and-gather.md`: tasks, [`gather!`], [`spawn`]
//! 4. `docs/guide/04-chained-coroutines.md`: chained coroutines
//! 5. `docs/guide/05-producers-consumers.md`: [`queue`]s, producers and
//!    consumers
//! 6. `docs/guide/06-async-generators.md`: async generators and
//!    comprehensions ([`stream`])
//! 7. `docs/guide/07-context-managers.md`: async context managers ([`sync`]
//!    guards, [`task_group`])
//!
//! `docs/guide/README.md` is the guide's table of contents, and
//! `docs/guide/asyncio-mapping.md` lists every asyncio API next to coil's
//! (including what is not there yet, and where coil differs on purpose).
//! The module docs here carry the same mapping for their part: [`combinators`]
//! (gather, wait, shield), [`queue`], [`sync`], [`stream`], [`signal`].
//!
//! ## Where to read next
//!
//! `docs/architecture.md` for the layers, `docs/how-await-works.md` for what
//! `.await` compiles to and how a waker gets a task polled again, and the
//! module docs of [`task`] for the task invariants.

pub mod blocking;
pub mod combinators;
pub mod fs;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
pub mod io;
mod loom;
mod macros;
pub mod net;
mod op;
pub mod queue;
mod rt;
pub mod signal;
pub mod sim;
pub mod stream;
pub mod sync;
pub mod task;
pub mod time;

pub use combinators::{
    Either, Failure, WaitFor, as_completed, as_completed_tasks, gather_all, gather_settled,
    gather_tasks, race, select, shield, try_gather_all, try_gather_tasks, wait,
};
pub use rt::{Handle, Runtime, run};
pub use task::group::{
    GroupClosed, GroupTask, GroupTaskBuilder, GroupTaskError, TaskGroup, TaskGroupError, task_group,
};
pub use task::{PanicPayload, Task, TaskError, spawn};

/// The event loop: [`Runtime`], its [`Builder`](runtime::Builder), [`Handle`]
/// and driver selection.
pub mod runtime {
    pub use crate::rt::{Builder, DriverInfo, Handle, Runtime, Stats, TryCurrentError, run, stats};
    pub use coil_arch::{DriverChoice, DriverKind, FallbackReason, ParseDriverChoiceError};
}

/// The README's Rust code blocks, compiled and run as doctests (`cargo test
/// --doc`), so the front page never shows code that does not build.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
