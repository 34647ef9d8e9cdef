//! [`PanicPayload`]: what a panicking task left behind, held so that the
//! errors carrying it ([`TaskError`](super::TaskError),
//! [`Failure`](super::Failure)) are `Send + Sync`.
//!
//! A panic's payload is a `Box<dyn Any + Send>`: it may be moved to another
//! thread but not shared, since the value inside need not be `Sync`.
//! `PanicPayload` is `Sync` because a shared reference to it never reaches
//! the value: it only compares type ids ([`is`](PanicPayload::is)) or hands
//! out references to `Sync` types ([`downcast_ref`](PanicPayload::downcast_ref),
//! [`message`](PanicPayload::message)); the value itself is reached through
//! `&mut` or by value. (tokio's `JoinError` keeps its payload the same way.)

use std::any::Any;
use std::fmt;

/// The payload of a task's panic. Re-raise it with
/// [`resume`](PanicPayload::resume), read a text message with
/// [`message`](PanicPayload::message), or take the `Box<dyn Any + Send>`
/// with [`into_inner`](PanicPayload::into_inner).
///
/// ```
/// coil::run(async {
///     let task = coil::spawn(async { panic!("boom") });
///     let err = task.await.unwrap_err();
///     assert_eq!(err.panic().and_then(|p| p.message()), Some("boom"));
///     assert_eq!(err.to_string(), "task panicked: boom");
/// });
/// ```
pub struct PanicPayload {
    payload: Box<dyn Any + Send + 'static>,
    /// The task that panicked, when a task did (shown by `TaskError`'s
    /// `Display`).
    pub(crate) task: Option<super::error::TaskLabel>,
}

// SAFETY: `&PanicPayload` only reaches the boxed value through `type_id`
// (which reads no data) or as `&T` with `T: Sync` (`downcast_ref`, `message`:
// `&str` and `String` are Sync); every other access takes `&mut self` or
// `self`. `task` is an id and an `Arc<str>`, both Sync. So sharing a `&PanicPayload` between threads shares nothing that is
// not `Sync`.
unsafe impl Sync for PanicPayload {}

impl PanicPayload {
    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>) -> PanicPayload {
        PanicPayload {
            payload,
            task: None,
        }
    }

    /// The payload of a panic in the task `task`.
    pub(crate) fn of_task(
        payload: Box<dyn Any + Send + 'static>,
        task: super::error::TaskLabel,
    ) -> PanicPayload {
        PanicPayload {
            payload,
            task: Some(task),
        }
    }

    /// The name of the task that panicked, if it had one.
    pub fn task_name(&self) -> Option<&str> {
        self.task.as_ref().and_then(|l| l.name.as_deref())
    }

    /// The id of the task that panicked, when a task did.
    pub fn task_id(&self) -> Option<super::TaskId> {
        self.task.as_ref().map(|l| l.id)
    }

    /// The panic's message when the payload is a `&str` or a `String` (what
    /// `panic!("...")` produces), `None` for any other payload.
    pub fn message(&self) -> Option<&str> {
        if let Some(s) = self.payload.downcast_ref::<&'static str>() {
            Some(s)
        } else {
            self.payload.downcast_ref::<String>().map(String::as_str)
        }
    }

    /// Whether the payload is a `T` (`std::panic::panic_any(T)`).
    pub fn is<T: Any>(&self) -> bool {
        self.payload.is::<T>()
    }

    /// The payload as a `T`, if it is one. `T: Sync` because `&self` may be
    /// shared between threads; for other types use [`get_mut`](Self::get_mut).
    /// This bound is what makes `PanicPayload: Sync` sound, so it is checked:
    ///
    /// ```compile_fail
    /// fn peek(p: &coil::PanicPayload) {
    ///     // error: `Cell<u8>` cannot be shared between threads
    ///     let _ = p.downcast_ref::<std::cell::Cell<u8>>();
    /// }
    /// ```
    pub fn downcast_ref<T: Any + Sync>(&self) -> Option<&T> {
        self.payload.downcast_ref::<T>()
    }

    /// The payload, mutably (any type: `&mut` is never shared).
    pub fn get_mut(&mut self) -> &mut (dyn Any + Send + 'static) {
        &mut *self.payload
    }

    /// The payload as `std::panic::catch_unwind` gave it.
    pub fn into_inner(self) -> Box<dyn Any + Send + 'static> {
        self.payload
    }

    /// Re-raises the panic on the calling thread
    /// ([`std::panic::resume_unwind`]).
    pub fn resume(self) -> ! {
        std::panic::resume_unwind(self.payload)
    }
}

impl From<Box<dyn Any + Send + 'static>> for PanicPayload {
    fn from(payload: Box<dyn Any + Send + 'static>) -> PanicPayload {
        PanicPayload::new(payload)
    }
}

impl fmt::Debug for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(m) => fmt::Debug::fmt(m, f),
            None => f.write_str("Box<dyn Any>"),
        }
    }
}

impl fmt::Display for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or("Box<dyn Any>"))
    }
}
