//! `Op<T>`: the one door to the kernel, and who owns an operation while the
//! kernel has it.
//!
//! This module owns the op layer: the [`Op`] future and the [`Operation`]
//! trait (this file), the op's heap block and its per-thread pool
//! ([`alloc`], [`pool`]), a loop's op table ([`OpHome`], [`table`]) and the
//! fd handle every op on a socket shares ([`fd::SharedFd`]). The loop (`rt`)
//! owns an `OpHome` and hands it completions; `net` and `fs` build ops.
//!
//! A leaf I/O future builds an operation value (an `OpCode` from `coil-arch`
//! plus whatever it must keep alive: buffers, the fd handle, an address) and
//! awaits `Op::new(op)`. The value goes into a heap block at once
//! ([`alloc::OpBox`]); the first poll hands that block's address to the
//! driver of the loop that polls it.
//!
//! # Ownership rules
//!
//! These are the invariants every `unsafe` block of this module and of
//! [`alloc`] and [`table`] points at.
//!
//! - **O1 — one owner, and never freed in flight.** From the submit until
//!   the driver reports the op's completion, the block is owned by exactly
//!   one of: the `Op` future (state `InFlight`), or its loop's op table
//!   (slot `Orphan`, after the future was dropped). The owner holds it as an
//!   [`alloc::InFlight`], which cannot be freed: dropping it leaks. Only the
//!   code that consumed the completion (the table saying `Done`) turns it
//!   back into an idle [`alloc::OpBox`] that may be read, moved out or freed.
//! - **O2 — an op belongs to its loop, not to the thread.** An in-flight op
//!   holds an `Rc` of its loop's [`OpHome`] (the table plus the work left
//!   for the loop). Dropping or polling the future never asks which loop is
//!   current to find its op: between `block_on` calls, inside another
//!   runtime's `block_on`, during a panic or after the runtime was dropped,
//!   the op's own home is used. A drop moves the op into its slot (`Orphan`)
//!   and queues the kernel cancel, which the loop sends at its next park or
//!   submit ([`OpHome::take_chores`]). I/O objects are `!Send` (they hold
//!   `Rc`s), so every drop happens on the loop's thread.
//! - **O3 — late completions lose nothing.** When an orphan's completion
//!   arrives, [`Operation::complete_orphan`] runs: bytes a read delivered go
//!   to the stream's stash and an accepted connection to the listener's
//!   queue (`op/fd.rs`), the fd of a late connect or open is closed. So a
//!   cancelled read loses no byte in any of the contexts of O2.
//! - **O4 — inline completions.** An op the driver finished during the
//!   submit (epoll, for I/O that did not have to wait: `Submitted::Done`)
//!   never enters the table and the driver keeps no pointer to it; the
//!   first poll returns its output. It takes a unit of coop budget, since
//!   such a future never answers `Pending` on its own.
//! - **O5 — teardown.** Dropping the runtime cancels every op in flight
//!   (also those whose futures live on outside it) and waits, bounded, for
//!   their completions; then its home is `Drained`, and a future polled
//!   later gets its result (a cancelled one: an error saying the runtime
//!   was shut down). If the kernel does not confirm in time, the driver (its
//!   kernel queue) and every op still in flight are leaked, once and loudly,
//!   rather than freed under the kernel ([`table`] module docs, `Leaked`).
//! - **O6 — one loop per I/O object.** An fd handle belongs to the loop it
//!   was made in. An op on it started from another loop (or from none)
//!   fails with an error before anything reaches a driver; an in-flight op
//!   polled from another loop panics (its completion can only come from its
//!   own loop, which cannot run while the other one does). The future stays
//!   valid: dropped later, O2 applies.
//!
//! # Allocation
//!
//! Every op is heap-allocated (O1 needs a stable address), which made
//! malloc/free ~14% of the W5 echo server's instructions: with a hundred
//! connections each holding an op, glibc's per-size tcache (7 entries)
//! overflows into its slow paths. [`pool`] keeps freed op blocks per thread,
//! keyed by exact layout, and hands them back to the next op of the same
//! layout. The blocks are ordinary box allocations of the global allocator,
//! so an op that leaves the pool's path (an orphan freed by the table, a
//! leaked op) needs nothing special.

mod alloc;
pub(crate) mod fd;
mod pool;
mod table;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::{Context, Poll};

use coil_arch::{IoBuf, IoBufMut, OpCode};

use crate::rt::budget;

use self::alloc::{InFlight, OpBox};
use self::fd::SharedFd;
pub(crate) use self::table::{FixedReleases, OpHome, OrphanDone, io_result};
use self::table::{Orphan, SlotPoll};

/// An operation as the op layer sees it: the kernel-facing part, plus how to
/// turn the completion into the future's output.
pub(crate) trait Operation: OpCode + OnFd + Sized + 'static {
    /// What awaiting the op gives.
    type Output;

    /// Build the output from the result, taking the op (and its buffers) back.
    fn complete(self, res: io::Result<usize>) -> Self::Output;

    /// The future is being dropped while the op is submitted (in flight or
    /// completed but not yet observed); `complete_orphan` follows exactly
    /// once. Runs while the kernel may still write the op's buffer: it may
    /// read only fields the kernel never writes (the fd handle).
    fn on_orphaned(&self) {}

    /// The future was dropped but the op completed anyway: keep or release
    /// what it produced (rule O3). The default drops everything.
    fn complete_orphan(self, res: io::Result<usize>) {
        drop((self, res));
    }

    /// The op is about to be submitted to loop `loop_id` (its first poll,
    /// after every check that can still answer `Pending` or an error): the
    /// place for a choice that holds only on that loop. A read or write into
    /// a registered buffer names its table entry here (`fs/ops.rs` rule 4),
    /// not when the op is built: a future built on one loop can be moved and
    /// first submitted on another (its first poll found the coop budget
    /// spent, rule O4). Default: nothing.
    #[inline(always)]
    fn on_submit(&mut self, loop_id: u64) {
        let _ = loop_id;
    }

    /// [`complete`](Self::complete) with the completion's io_uring CQE flags
    /// (0 under epoll and the simulator), for ops whose output depends on them
    /// (a provided buffer's id: `op/pbuf.rs`). Default: the flags are ignored.
    #[inline(always)]
    fn complete_flags(self, res: io::Result<usize>, flags: u32) -> Self::Output {
        let _ = flags;
        self.complete(res)
    }

    /// [`complete_orphan`](Self::complete_orphan) with the CQE flags.
    fn complete_orphan_flags(self, res: io::Result<usize>, flags: u32) {
        let _ = flags;
        self.complete_orphan(res);
    }
}

/// The fd handle an op works on, if it is bound to a loop (rule O6).
pub(crate) trait OnFd {
    /// The loop-bound fd handle, or `None` (files, path operations: their
    /// fds are not registered with any loop).
    fn shared_fd(&self) -> Option<&SharedFd> {
        None
    }
}

/// What `Core::submit_op` did with an op.
pub(crate) enum SubmitOutcome {
    /// In flight under this key; the future polls the table for its result.
    Queued(u64),
    /// The driver finished it during the submit, with this raw result: the
    /// op is the future's again, and no completion will come.
    Done(i32),
}

/// The error of an op polled where no loop runs.
pub(crate) fn outside_loop() -> io::Error {
    io::Error::other(
        "a coil I/O future was polled outside a coil event loop; await it inside \
         coil::run(...) or Runtime::block_on(...)",
    )
}

/// Debug mode's report of `what` (an op's kind) on `fd`, which belongs to
/// the loop of `home`, started on loop `used_on` (rule O6): the caller
/// passes it to `Core::debug_report` beside returning [`foreign_loop`]'s
/// error, which alone may be swallowed by a retry loop.
#[cold]
pub(crate) fn foreign_fd_report(
    used_on: u64,
    home: &OpHome,
    fd: std::os::fd::RawFd,
    what: &str,
) -> String {
    format!(
        "coil: {what} on fd {fd} was started on loop {used_on} but the fd belongs to loop {}{}; \
         it fails with an error (I/O objects stay on the loop that created them)",
        home.loop_id(),
        if home.is_running() {
            ""
        } else {
            " (shut down)"
        }
    )
}

/// An op's kind for reports: `Accept` for `coil::op::WithFd<..::Accept>`
/// (the type without its path, generics, or the `WithFd` wrapper).
pub(crate) fn op_kind<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    let inner = name.split_once("WithFd<").map_or(name, |(_, rest)| rest);
    let path = inner.split(['<', '>']).next().unwrap_or(inner);
    path.rsplit("::").next().unwrap_or(path)
}

/// The error of an op on an fd of another loop (rule O6).
pub(crate) fn foreign_loop(home_running: bool) -> io::Error {
    io::Error::other(if home_running {
        "this coil I/O object belongs to a different coil event loop than the one running here; \
         I/O objects stay on the loop that created them: create the object in this loop, or \
         hand the work to its own loop (a Handle, a channel)"
    } else {
        "the coil runtime this I/O object belongs to was shut down; I/O objects stay on the \
         loop that created them: create a new one in this loop"
    })
}

/// The error an op cancelled by its runtime's teardown reports (rule O5).
pub(crate) fn runtime_gone() -> io::Error {
    io::Error::other(
        "the coil runtime this I/O operation was running on was shut down (the Runtime was \
         dropped) before the operation completed",
    )
}

/// Marks initialised the bytes a read's completion `res` says the kernel
/// wrote into `buf` (`Ok(n)`: `n` bytes right after the initialised ones).
///
/// # Safety
///
/// On `Ok(n)`, the kernel wrote `n` bytes into `buf` right after its
/// initialised ones.
#[inline]
pub(crate) unsafe fn mark_read<B: IoBufMut>(buf: &mut B, res: &io::Result<usize>) {
    if let Ok(n) = *res {
        let init = buf.bytes_init();
        // SAFETY: the caller's promise.
        unsafe { buf.set_init(init + n) };
    }
}

/// The `n` bytes a read wrote into `buf` right after its initialised ones,
/// for an orphaned read to keep (rule O3) without marking them in `buf`.
///
/// # Safety
///
/// The kernel wrote `n` bytes into `buf` right after its initialised ones.
#[inline]
pub(crate) unsafe fn read_bytes<B: IoBuf>(buf: &B, n: usize) -> &[u8] {
    let init = buf.bytes_init();
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts(buf.stable_ptr().add(init), n) }
}

enum State<T: Operation> {
    /// Not submitted: the future owns the idle op.
    Idle(OpBox<T>),
    /// Submitted: the op belongs to `home`'s loop until its completion.
    InFlight {
        op: InFlight<T>,
        home: Rc<OpHome>,
        key: u64,
    },
    /// The output was returned.
    Done,
}

/// The future of one operation. See the module docs for the rules.
pub(crate) struct Op<T: Operation> {
    state: State<T>,
}

impl<T: Operation> Op<T> {
    #[inline]
    pub(crate) fn new(op: T) -> Op<T> {
        Op {
            state: State::Idle(OpBox::new(op)),
        }
    }

    /// The idle op, taken for its output.
    #[inline]
    fn take_idle(&mut self) -> T {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Idle(op) => op.into_inner(),
            _ => unreachable!("take_idle on a submitted op"),
        }
    }

    /// First poll: submit to the loop running here.
    #[inline]
    fn submit(&mut self, cx: &mut Context<'_>) -> Poll<T::Output> {
        crate::rt::with_core(|core| {
            let Some(core) = core else {
                return Poll::Ready(self.take_idle().complete(Err(outside_loop())));
            };
            // Coop budget (rule O4): a driver that finishes ops during the
            // submit (epoll, when the socket is ready) would otherwise let a
            // task loop on ready I/O forever.
            if budget::spent(core, cx) {
                return Poll::Pending;
            }
            let State::Idle(op) = &mut self.state else {
                unreachable!("submit on a submitted op")
            };
            if let Some(fd) = op.get_mut().shared_fd()
                && let Err(home) = fd.check_home(core.home())
            {
                core.debug_report(|| foreign_fd_report(core.id(), home, fd.raw(), op_kind::<T>()));
                let running = home.is_running();
                return Poll::Ready(self.take_idle().complete(Err(foreign_loop(running))));
            }
            op.get_mut().on_submit(core.id());
            let ptr = op.as_ptr();
            // SAFETY: rule O1: on `Queued` the block becomes an `InFlight`
            // below and is neither moved nor freed until the completion is
            // reported; on `Done` or an error the driver keeps no pointer.
            match unsafe { core.submit_op(ptr, cx.waker()) } {
                Ok(SubmitOutcome::Queued(key)) => {
                    let State::Idle(op) = std::mem::replace(&mut self.state, State::Done) else {
                        unreachable!()
                    };
                    self.state = State::InFlight {
                        op: op.submitted(),
                        home: core.home().clone(),
                        key,
                    };
                    self.note_waiting();
                    Poll::Pending
                }
                Ok(SubmitOutcome::Done(res)) => {
                    budget::take(core);
                    Poll::Ready(self.take_idle().complete(io_result(res)))
                }
                Err(e) => Poll::Ready(self.take_idle().complete(Err(e))),
            }
        })
    }
}

impl<T: Operation> Future for Op<T> {
    type Output = T::Output;

    /// Always inlined into its caller (the leaf future's poll): out of line,
    /// the generic poll paid its own frame twice an op (W5: ~40 instructions
    /// a request, callgrind); its first-poll submit stays a call.
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        let State::InFlight { home, key, .. } = &this.state else {
            if matches!(this.state, State::Done) {
                panic!("an I/O future was polled after it completed");
            }
            return this.submit(cx);
        };
        match home.poll(*key, cx.waker()) {
            SlotPoll::Ready(res, flags) => {
                let State::InFlight { op, .. } = std::mem::replace(&mut this.state, State::Done)
                else {
                    unreachable!()
                };
                // SAFETY: the slot was `Done`: the driver reported this op's
                // completion (rule O1).
                let op = unsafe { op.landed() }.into_inner();
                Poll::Ready(op.complete_flags(res, flags))
            }
            SlotPoll::Pending => {
                // Rule O6: the completion comes only when the op's own loop
                // runs. Outside any loop, waiting is fine (the waker fires when
                // it runs); inside another loop it would never come.
                let foreign = crate::rt::with_core(|core| {
                    core.is_some_and(|core| !Rc::ptr_eq(core.home(), home))
                });
                if foreign {
                    panic!(
                        "an I/O future was polled on a different coil event loop than the one it \
                         started on; its operation can only complete on its own loop. I/O objects \
                         stay on the loop that created them"
                    );
                }
                this.note_waiting();
                Poll::Pending
            }
            SlotPoll::Leaked => panic!(
                "an I/O future outlived its coil runtime, whose shutdown could not confirm that \
                 the kernel finished this operation; its buffer stays leaked. Drop I/O futures \
                 before their runtime"
            ),
        }
    }
}

impl<T: Operation> Drop for Op<T> {
    #[inline]
    fn drop(&mut self) {
        // Idle: the OpBox frees the op; done: nothing left.
        if matches!(self.state, State::InFlight { .. }) {
            self.orphan();
        }
    }
}

impl<T: Operation> Op<T> {
    /// Debug mode: the task waits on this op (`Handle::dump`).
    #[inline(always)]
    fn note_waiting(&self) {
        crate::rt::debug::awaiting(|| {
            let fd = match &self.state {
                // SAFETY: reads only the fd handle, which the kernel never
                // writes (as `on_orphaned`).
                State::InFlight { op, .. } => unsafe { op.fields() }.shared_fd().map(|f| f.raw()),
                _ => None,
            };
            crate::rt::Awaiting::Io {
                op: op_kind::<T>(),
                fd,
            }
        });
    }

    /// Dropped in flight (rule O2).
    #[cold]
    fn orphan(&mut self) {
        let State::InFlight { op, home, key } = std::mem::replace(&mut self.state, State::Done)
        else {
            unreachable!()
        };
        // SAFETY: `on_orphaned` reads only the fd handle, which the kernel
        // never writes, and calls no driver code (its contract).
        unsafe { op.fields() }.on_orphaned();
        let op = op.erase(|p| p as NonNull<dyn Orphan>);
        // Rule O2: the op's own home, whatever loop (if any) runs here.
        if let Some(done) = home.orphan(key, op) {
            done.finish();
        }
    }
}

/// Implements `OpCode` (and [`OnFd`]) for a wrapper `$ty<T> { op: T, .. }`
/// that pairs an op with something it keeps alive (an fd handle, a socket):
/// every `OpCode` method delegates to `op`. `$($fd)+` is the field path of
/// the loop-bound [`SharedFd`], if the wrapper has one.
macro_rules! delegate_opcode {
    ($ty:ident $(, $($fd:tt).+)?) => {
        // SAFETY: delegates to `op`, whose entry points only into itself; the
        // wrapper's other field keeps the fd number valid (op/fd.rs rule 1,
        // fs/ops.rs rule 1) for as long as the op lives.
        unsafe impl<T: coil_arch::OpCode> coil_arch::OpCode for $ty<T> {
            fn uring_entry(&mut self) -> coil_arch::op::UringEntry {
                self.op.uring_entry()
            }
            fn readiness(&self) -> coil_arch::op::Readiness {
                self.op.readiness()
            }
            fn perform(&mut self) -> std::io::Result<usize> {
                self.op.perform()
            }
            fn drained(&self, n: usize) -> bool {
                self.op.drained(n)
            }
            fn sim(&mut self) -> Option<coil_arch::op::SimOp<'_>> {
                self.op.sim()
            }
        }
        impl<T> $crate::op::OnFd for $ty<T> {
            $(
            fn shared_fd(&self) -> Option<&$crate::op::fd::SharedFd> {
                Some(&self.$($fd).+)
            }
            )?
        }
    };
}
pub(crate) use delegate_opcode;

/// Implements [`Operation`] for ops whose only output is success or the
/// error (`io::Result<()>`), keeping nothing from a dropped op.
macro_rules! unit_operation {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::op::Operation for $t {
            type Output = std::io::Result<()>;

            fn complete(self, res: std::io::Result<usize>) -> Self::Output {
                res.map(drop)
            }
        }
    )*};
}
pub(crate) use unit_operation;
