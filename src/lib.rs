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
//! | `asyncio.run(main())` | [`coil::run(main())`](run), or [`#[coil::main]`](macro@main) on `async fn main` |
//! | `asyncio.create_task(c)` | [`coil::spawn(c)`](spawn) → [`Task<T>`](task::Task) |
//! | `await task` | `task.await` → `Result<T, TaskError>` |
//! | `task.cancel()` | [`Task::cancel`](task::TaskHandle::cancel) |
//! | `asyncio.sleep(s)` | [`coil::time::sleep`](time::sleep) |
//! | `asyncio.wait_for(c, t)` | [`coil::time::timeout`](time::timeout) |
//! | `asyncio.gather(a, b)` | [`coil::gather!(a, b).await`](gather!) (also as tokio's [`join!`]; [`try_join!`] stops at the first `Err`) |
//! | `asyncio.wait(aws, return_when=FIRST_COMPLETED)`, a handler for the one done | [`coil::select! { v = fut => .., }`](select!) |
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
//! (gather, wait, shield), [`queue`], [`sync`], [`stream`], [`signal`],
//! [`process`].
//!
//! ## Where to read next
//!
//! `docs/architecture.md` for the layers, `docs/how-await-works.md` for what
//! `.await` compiles to and how a waker gets a task polled again, and the
//! module docs of [`task`] for the task invariants.

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __macro_support;
pub mod blocking;
pub mod combinators;
#[cfg(any(feature = "futures-core", feature = "futures-io", feature = "hyper"))]
pub mod compat;
pub mod fs;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
pub mod io;
mod loom;
mod macros;
pub mod net;
mod op;
pub mod pool;
pub mod process;
pub mod queue;
mod rt;
pub mod signal;
pub mod sim;
pub mod stream;
pub mod sync;
pub mod task;
pub mod time;

/// Runs an `async fn main()` on a coil runtime: `#[coil::main]`.
///
/// ```
/// #[coil::main]
/// async fn main() {
///     let task = coil::spawn(async { 40 + 2 });
///     assert_eq!(task.await.unwrap(), 42);
/// }
/// ```
///
/// is `fn main() { coil::run(async { .. }) }`: a runtime is built with the
/// driver `COIL_DRIVER` names (else io_uring where the kernel allows it, and
/// epoll otherwise), the body runs on it, and the runtime is dropped when the
/// body returns, cancelling the tasks still alive. `main` returns what its
/// signature says, so a `Result` works and so does `?` in the body:
///
/// ```
/// use coil::net::TcpListener;
///
/// #[coil::main]
/// async fn main() -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     println!("listening on {}", listener.local_addr()?);
///     Ok(())
/// }
/// ```
///
/// # Options
///
/// - `driver = "auto" | "uring" | "epoll"`: this driver, whatever
///   `COIL_DRIVER` says. A driver that cannot start panics with the OS error
///   (`"uring"` never falls back to epoll; `"auto"` does).
/// - `crate = "path"`: where coil is. The code the macro writes names
///   `::coil`; a crate that depends on coil under another name
///   (`my_coil = { package = "coil", .. }`) writes
///   `#[my_coil::main(crate = "my_coil")]`.
///
/// ```
/// #[coil::main(driver = "epoll")]
/// async fn main() {
///     let driver = coil::runtime::stats().unwrap().driver;
///     assert_eq!(driver, coil::runtime::DriverKind::Epoll);
/// }
/// ```
///
/// # Compile errors
///
/// Each misuse is one error at the tokens concerned, with a sentence saying
/// what to write instead. A function that is not `async`:
///
/// ```compile_fail
/// #[coil::main] // error: #[coil::main] needs an `async fn`: write `async fn main` ..
/// fn main() {}
/// ```
///
/// the attribute on something other than a function:
///
/// ```compile_fail
/// #[coil::main] // error: #[coil::main] goes on an `async fn`, not on `struct` ..
/// struct Main;
/// # fn main() {}
/// ```
///
/// arguments (`main` gets none; read `std::env::args()`):
///
/// ```compile_fail
/// #[coil::main] // error: #[coil::main] functions take no arguments ..
/// async fn main(args: Vec<String>) {}
/// ```
///
/// a value that is not a string, or a driver coil does not have:
///
/// ```compile_fail
/// #[coil::main(driver = epoll)] // error: expected a string in double quotes ..
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[coil::main(driver = "kqueue")] // error: unknown driver "kqueue" ..
/// async fn main() {}
/// ```
///
/// and an argument only tests take:
///
/// ```compile_fail
/// #[coil::main(drivers = "all")] // error: unknown argument `drivers` ..
/// async fn main() {}
/// ```
pub use coil_macros::main;
/// Makes an `async fn` a `#[test]` that runs on a fresh coil runtime:
/// `#[coil::test]`.
///
/// ```
/// use std::time::Duration;
///
/// #[coil::test]
/// async fn sleeps_concurrently() {
///     let start = coil::time::Instant::now();
///     let a = coil::spawn(coil::time::sleep(Duration::from_millis(20)));
///     let b = coil::spawn(coil::time::sleep(Duration::from_millis(20)));
///     a.await.unwrap();
///     b.await.unwrap();
///     assert!(start.elapsed() < Duration::from_millis(200));
/// }
/// ```
///
/// Each test builds its own runtime as [`run`] does (`COIL_DRIVER`, else
/// auto), runs the body on it on the test's thread, and drops it, so tests
/// share no loop and no task. A panic in the body fails the test; the other
/// attributes stay (`#[should_panic]`, `#[ignore]`, docs, lints), and the
/// function may return a `Result` (`?` works in the body).
///
/// # Options
///
/// - `driver = "auto" | "uring" | "epoll"`: this driver, whatever
///   `COIL_DRIVER` says; a driver that cannot start fails the test.
/// - `driver = "sim"` and optionally `seed = N`: the body runs in the
///   deterministic simulator ([`sim::Builder`], seed 0 by default;
///   `COIL_SIM_SEED` overrides it): virtual time, a seeded task order, the
///   in-memory network.
/// - `drivers = "all"`: one test per driver, in a module named after the
///   function: `name::uring` and `name::epoll`, each forcing its driver
///   whatever `COIL_DRIVER` says. Where io_uring cannot start (an old
///   kernel, a seccomp profile, `io_uring_disabled`), `name::uring` passes
///   without running the body and says why on stderr (shown with
///   `--nocapture`); under `COIL_DRIVER=uring` it fails instead, so a run
///   that means to test io_uring cannot pass by skipping. (It is not
///   `#[ignore]`d because whether io_uring starts is known only when the test
///   runs.) The module does `use super::*`, so the body sees the items of the
///   module the test is written in, but not items declared inside an
///   enclosing function. `#[ignore]`, `#[should_panic]` and
///   `#[cfg_attr(..)]` go on both tests, other attributes (docs, lints,
///   `#[cfg]`) on the module.
/// - `crate = "path"`: as for [`main`](macro@main), when coil is a
///   dependency under another name.
///
/// A glob import, `use coil::*;`, brings this `test` in as well, and a plain
/// `#[test]` in that module then no longer compiles (rustc: "`test` is
/// ambiguous", E0659). Import the names you use instead, or write the
/// built-in one's full path, `#[::core::prelude::v1::test]`.
///
/// ```
/// use coil::runtime::{DriverKind, stats};
///
/// #[coil::test(drivers = "all")] // tests `on_each_driver::{uring, epoll}`
/// async fn on_each_driver() {
///     let driver = stats().unwrap().driver;
///     assert!(matches!(driver, DriverKind::Uring | DriverKind::Epoll));
/// }
///
/// #[coil::test(driver = "sim", seed = 7)]
/// async fn a_day_in_microseconds() {
///     coil::time::sleep(std::time::Duration::from_secs(86_400)).await;
/// }
/// # fn main() {}
/// ```
///
/// # Compile errors
///
/// One error at the tokens concerned, saying what to write. Besides those
/// of [`main`](macro@main) (not `async`, not a function, a malformed value):
/// arguments,
///
/// ```compile_fail
/// #[coil::test] // error: #[coil::test] functions take no arguments ..
/// async fn adds(a: u32, b: u32) {}
/// ```
///
/// generic parameters,
///
/// ```compile_fail
/// #[coil::test] // error: #[coil::test] functions cannot be generic ..
/// async fn generic<T: Default>() {}
/// ```
///
/// a `#[test]` as well (the macro adds it),
///
/// ```compile_fail
/// #[coil::test]
/// #[test] // error: remove this `#[test]` ..
/// async fn twice() {}
/// ```
///
/// an argument the macro does not know (tokio's `flavor`, say),
///
/// ```compile_fail
/// #[coil::test(flavor = "current_thread")] // error: unknown argument `flavor` ..
/// async fn unknown() {}
/// ```
///
/// `drivers` with anything but `"all"`, or together with `driver`,
///
/// ```compile_fail
/// #[coil::test(drivers = "uring")] // error: `drivers` takes "all" ..
/// async fn some() {}
/// ```
///
/// ```compile_fail
/// #[coil::test(driver = "epoll", drivers = "all")] // error: give either ..
/// async fn both() {}
/// ```
///
/// and a `seed` without the simulator.
///
/// ```compile_fail
/// #[coil::test(seed = 7)] // error: `seed` is the simulator's: add `driver = "sim"`
/// async fn seeded() {}
/// ```
pub use coil_macros::test;
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
/// and driver selection; [`Pool`](runtime::Pool) (from [`pool`]) for one loop
/// per core.
pub mod runtime {
    pub use crate::pool::Pool;
    pub use crate::rt::{
        AwaitNode, Awaiting, Builder, DriverInfo, Handle, LoopMetrics, Runtime, Stats, TaskDump,
        TaskInfo, TaskState, TryCurrentError, run, stats,
    };
    pub use coil_arch::{DriverChoice, DriverKind, FallbackReason, ParseDriverChoiceError};
}

/// The README's Rust code blocks, compiled and run as doctests (`cargo test
/// --doc`), so the front page never shows code that does not build.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
