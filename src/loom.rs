//! Concurrency facade: loom's model-checked types under `cfg(loom)`, std's
//! (and the OS driver's) otherwise (the idea of tokio's `src/loom/mod.rs`).
//!
//! Code whose interleavings a loom model checks imports its atomics, its
//! mutex and its unparker from here: the task state word (`task/state.rs`)
//! and the cross-thread half of a runtime (`rt::Shared`: remote queue, wake
//! flags, unparker). The models are the `#[cfg(all(test, loom))]` modules
//! `task::state_loom` and `rt::remote_loom`, run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p coil --lib
//! --release loom`. Outside `loom::model` loom's types panic, which is why
//! only the models run in a `--cfg loom` build.
//!
//! # The unparker seam
//!
//! [`Unparker`] is what `Shared` calls after publishing a remote wake. In a
//! normal build it is [`coil_arch::Unparker`] (an eventfd write). Loom cannot
//! model an eventfd, so under `cfg(loom)` it is an enum: `Os` wraps the
//! driver's unparker (so `Core::new` still compiles), and `Model` is a loom
//! token with the contract `Driver::park` documents, which is all the runtime
//! relies on:
//!
//! - **U1.** An `unpark` that happens while the loop is parked makes that
//!   `park` return.
//! - **U2.** An `unpark` that happens while the loop is not parked makes its
//!   next `park` return; any number of such unparks coalesce into one return.
//! - **U3.** `park` may also return for other reasons (I/O, timeout, signal);
//!   the loop re-checks its flags after every return, so the model's park,
//!   which returns only when unparked, covers the worst case.
//!
//! How the eventfd backends meet U1–U2 is argued in `arch/src/unpark.rs`, and
//! checked there by a loom model of its latch (`unpark::loom_model`).

#[cfg(loom)]
pub(crate) use ::loom::sync::atomic::*;
#[cfg(loom)]
pub(crate) use ::loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::*;
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// The loop's unparker (see the module docs).
#[cfg(not(loom))]
pub(crate) type Unparker = coil_arch::Unparker;

#[cfg(all(loom, test))]
pub(crate) use self::model::Parker;
#[cfg(loom)]
pub(crate) use self::model::Unparker;

#[cfg(loom)]
mod model {
    use loom::sync::{Arc, Condvar, Mutex};

    /// A binary token: `true` from an unpark until the park that consumes it.
    /// (A loom `Mutex` and `Condvar`: an atomic flag on top of
    /// `loom::thread::park` lost unparks in loom 0.7.2 itself.)
    #[derive(Debug, Default)]
    pub(crate) struct Token {
        set: Mutex<bool>,
        cv: Condvar,
    }

    /// Under loom: the driver's unparker, or a model token (module docs).
    #[derive(Clone, Debug)]
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) enum Unparker {
        /// Built by `Core::new` from a real driver; never used in a model.
        Os(coil_arch::Unparker),
        /// The unpark side of a `Parker`.
        Model(Arc<Token>),
    }

    impl From<coil_arch::Unparker> for Unparker {
        fn from(u: coil_arch::Unparker) -> Unparker {
            Unparker::Os(u)
        }
    }

    impl Unparker {
        /// U1/U2: set the token and wake a parked loop.
        pub(crate) fn unpark(&self) {
            match self {
                Unparker::Os(u) => u.unpark(),
                Unparker::Model(t) => {
                    *t.set.lock().unwrap() = true;
                    t.cv.notify_one();
                }
            }
        }
    }

    /// The park side of a model token: what the loop thread blocks on in
    /// place of `Driver::park(None)`.
    #[derive(Debug)]
    pub(crate) struct Parker(Arc<Token>);

    #[cfg_attr(not(test), allow(dead_code))]
    impl Parker {
        /// A parker and the unparker that wakes it.
        pub(crate) fn new() -> (Parker, Unparker) {
            let t = Arc::new(Token::default());
            (Parker(t.clone()), Unparker::Model(t))
        }

        /// Block until the token is set, then consume it (U1, U2). A model in
        /// which no unpark ever comes reports a deadlock: a lost wake-up.
        pub(crate) fn park(&self) {
            let mut set = self.0.set.lock().unwrap();
            while !*set {
                set = self.0.cv.wait(set).unwrap();
            }
            *set = false;
        }
    }
}
