//! Compile-time Send / Sync / Unpin table for every public type.

use std::rc::Rc;

use static_assertions::{assert_impl_all, assert_not_impl_any};

use coil::runtime::{
    Builder, DriverChoice, DriverInfo, DriverKind, FallbackReason, Stats, TryCurrentError,
};
use coil::task::{ConsumeBudget, TaskId, YieldNow};
use coil::time::{
    Elapsed, Instant, Interval, MissedTickBehavior, Sleep, TaskTimeout, Tick, Timeout,
    TimeoutHandle,
};
use coil::{Handle, Runtime, Task, TaskError};

// The loop and its tasks stay on their thread.
assert_not_impl_any!(Runtime: Send, Sync);
// Handles reach a loop from anywhere.
assert_impl_all!(Handle: Send, Sync, Clone, Unpin);
// A task handle follows its output.
assert_impl_all!(Task<u32>: Send, Sync, Unpin);
assert_not_impl_any!(Task<Rc<u32>>: Send, Sync);
assert_impl_all!(Task<Rc<u32>>: Unpin);
// Errors cross threads and fit `Box<dyn Error + Send + Sync>`: the panic
// payload is held by `PanicPayload`, which never shares the value itself.
assert_impl_all!(TaskError: Send, Sync, Unpin, std::error::Error);
assert_impl_all!(coil::PanicPayload: Send, Sync, Unpin);
assert_impl_all!(coil::Failure<std::io::Error>: Send, Sync, std::error::Error);
assert_impl_all!(coil::TaskGroupError<std::io::Error>: Send, Sync, std::error::Error);
assert_impl_all!(TaskId: Send, Sync, Copy, Eq, std::hash::Hash);
assert_impl_all!(TryCurrentError: Send, Sync, std::error::Error);
// Futures from the toolkit are Send so they can go into Handle::spawn.
assert_impl_all!(YieldNow: Send, Sync, Unpin);
assert_impl_all!(ConsumeBudget: Send, Sync, Unpin);
assert_impl_all!(Sleep: Send, Sync, Unpin);
assert_impl_all!(Timeout<Sleep>: Send, Sync, Unpin);
assert_impl_all!(TaskTimeout<u32>: Send, Sync, Unpin);
assert_impl_all!(TimeoutHandle: Send, Sync, Clone);
assert_impl_all!(Interval: Send, Sync, Unpin);
// Signal listeners may be made on one thread and awaited on another loop.
assert_impl_all!(coil::signal::Signal: Send, Sync, Unpin);
assert_impl_all!(coil::signal::CtrlC: Send, Sync, Unpin);
assert_impl_all!(coil::signal::SignalKind: Send, Sync, Copy, Eq, std::hash::Hash);
// A command may be built anywhere; a child and its pipes belong to the loop
// that spawned it (their fds are registered there), like sockets.
assert_impl_all!(coil::process::Command: Send, Sync, Unpin);
assert_not_impl_any!(coil::process::Child: Send, Sync);
assert_not_impl_any!(coil::process::ChildStdin: Send, Sync);
assert_not_impl_any!(coil::process::ChildStdout: Send, Sync);
assert_not_impl_any!(coil::process::ChildStderr: Send, Sync);
assert_impl_all!(Tick<'static>: Send, Sync, Unpin);
assert_impl_all!(Instant: Send, Sync, Copy, Ord);
assert_impl_all!(Elapsed: Send, Sync, Copy, std::error::Error);
assert_impl_all!(MissedTickBehavior: Send, Sync, Copy);
// Builders and driver information.
assert_impl_all!(Builder: Send, Sync, Clone);
assert_impl_all!(coil::task::Builder: Send, Sync, Clone);
assert_impl_all!(DriverInfo: Send, Sync, Clone);
assert_impl_all!(DriverChoice: Send, Sync, Copy);
assert_impl_all!(DriverKind: Send, Sync, Copy);
assert_impl_all!(FallbackReason: Send, Sync, Clone);
assert_impl_all!(Stats: Send, Sync, Copy);
// Our wakers must be shareable (docs/reliability.md, check 6).
assert_impl_all!(std::task::Waker: Send, Sync);

#[test]
fn spawned_futures_may_be_local() {
    // `spawn` accepts !Send futures; `Handle::spawn` requires Send ones
    // (checked by the type system; this test documents it).
    coil::run(async {
        let rc = Rc::new(5);
        let t = coil::spawn(async move { *rc });
        assert_eq!(t.await.unwrap(), 5);
    });
}

// The combinator macros add nothing that is not Send: a future using them
// goes into Handle::spawn when its parts do.
const _: fn() = || {
    fn send<F: std::future::Future + Send>(_: F) {}
    let zero = std::time::Duration::ZERO;
    send(async move {
        coil::select! {
            () = coil::time::sleep(zero) => 1,
            v = async { 2 }, if true => v,
            else => 3,
        }
    });
    send(coil::join!(coil::time::sleep(zero), async { 1 }));
    send(coil::try_join!(async { Ok::<_, ()>(1) }, async { Ok(2) }));
};
