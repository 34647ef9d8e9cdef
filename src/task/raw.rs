//! The task allocation: header, stage and [`TaskRef`], and how a task is
//! allocated. The task's functions (poll, shutdown, output, deallocation)
//! are in the child module `vtable.rs`: a few per-type entries of the
//! [`Vtable`] and the type-independent rest.
//!
//! # Layout
//!
//! One allocation per task (a slot of a chunk of `slab.rs`, or the global
//! allocator for a large or over-aligned cell, by the layout the vtable
//! records), a `#[repr(C)]` `Cell<F>`, header first so that a
//! `*Header` is a `*Cell<F>`; the header is 24 bytes on 64-bit targets
//! (asserted below), the stage as large as the larger of `F` and
//! `F::Output` (at least a pointer), with no tag (asserted below): a union
//! whose live field the state word says (`COMPLETE`, `FAILED`):
//!
//! ```text
//! Cell<F> ┌ Header (24 B) ─ state │ vtable │ join_waker
//!         └ Stage<F> ─ union { future: F, output: F::Output, failed: Box<TaskError> }
//! ```
//!
//! **Ids.** The task's id is not a header field. A slab cell's id is its
//! slot's: each chunk reserves one id per slot when it is created and
//! keeps the first (`slab.rs`, "Task ids"), so the id is the chunk's first
//! plus the slot's index. A boxed cell (large or over-aligned future, and
//! every cell under Miri, loom, `coil_box_tasks` and fuzzing, and a spawn from
//! outside the loop: "The runtime" below) is allocated with four more words
//! before it, padded to the cell's alignment ([`boxed_layout`]), the
//! last of which holds its id, taken at allocation. Either way the id is fixed
//! before the task is published and never changes; [`TaskRef::id`] reads
//! it (the vtable's `from_slab` says which way). What this does to the
//! order of ids is on [`TaskId`].
//!
//! **The runtime.** Nor is the task's runtime (its `Arc<Shared>`, where its
//! wakes go) a header field. A slab chunk belongs to one runtime: the
//! chunk's head holds one `Arc<Shared>` for all its cells (`slab.rs`, "The
//! runtime"), cloned when the chunk is created and dropped when it is
//! freed, so a spawn takes no reference count and the header 8 bytes
//! fewer. A boxed cell's prefix holds a clone of its own in the word
//! before the id (links, `Arc<Shared>`, id, cell: [`boxed_layout`]),
//! dropped by `vtable::dealloc`.
//!
//! **The owned list.** Nor are the owned list's links (`list.rs`) header
//! fields. A slab cell is recorded by a bit in its chunk's head and its
//! chunk by the runtime's registry (`slab.rs`, "Bound cells"); a boxed
//! cell has its two links in the first two words of its prefix
//! ([`TaskRef::boxed_links`]). Both are the loop thread's (rule 1), as the
//! links in the header were. [`TaskRef::shared`] reads one or the other (the
//! vtable's `from_slab` again). Only a spawn on the runtime's own loop
//! thread ([`allocate`]) takes a slab cell: the thread's current chunk of
//! each class belongs to the runtime it runs, and is retired (its unused
//! slots given up) when a spawn for another runtime comes or that runtime's
//! `Core` is dropped on the thread. A spawn from any other thread
//! (`Handle::spawn`, [`allocate_remote`]) and a spawn on a closed loop
//! ([`allocate_cancelled`]) are boxed, so that no thread keeps a chunk, and
//! with it the `Shared` (its unparker's descriptor, its debug checks), of a
//! runtime it does not run. The vtable is per future type *and* placement
//! (`vtable::<F, SLAB>`), so a type spawned both ways has two. The price is
//! paid by spawns from other threads, which go to the global allocator:
//! 20 000 `Handle::spawn`s from one thread, then joined on the loop, cost
//! 805 instructions a task against 455 with slab cells (callgrind, a
//! throwaway example; no workload of `benches/` spawns remotely). A chunk
//! per runtime for the other threads' spawns (behind a lock, retired when
//! the runtime closes) would give that back; not done. Giving remote
//! spawns the thread's own chunk instead would keep a dropped runtime's
//! `Shared`, and so its eventfd and ring, open until the spawning thread
//! exits, and would make a loop thread that spawns into another loop
//! switch chunks on every spawn.
//!
//! *Who keeps the `Shared` alive* while a waker of a task outlives the
//! runtime, on another thread: the waker holds a reference to the task, so
//! the task is not freed (rule 7); a slab cell not freed is counted in its
//! chunk's `live`, so the chunk is not freed (`slab.rs`, "The count"); a
//! chunk not freed holds its `Arc<Shared>`. So the remote wake still finds
//! the (closed) remote queue, and the `Shared` lives at least as long as
//! with a clone in every header (a chunk outlives each of its cells): the
//! lifetime arguments of `rt/mod.rs` (a wake's last use of `Shared` after
//! it released its reference) hold unchanged. The last free of a chunk,
//! on whichever thread, drops its `Shared` after the chunk's memory is
//! gone; dropping a `Shared` frees no task (its queues hold `TaskRef`s,
//! which own nothing by themselves), so it never re-enters the slab.
//!
//! | field | initialised | who may touch it |
//! |---|---|---|
//! | `state` | at allocation; changed only by the transitions of `state.rs` | any thread, atomically |
//! | `vtable` (and the id and runtime, outside the header) | at allocation, never changed | any thread, read only |
//! | (outside the header) the owned-list bit of a slab cell, the links in a boxed cell's prefix | clear / empty at allocation; set while the task is in its loop's owned list | the loop thread (rule 1) |
//! | `join_waker` | `None`; holds the handle's waker while `JOIN_WAKER` says so, and the handle's *taken marker* once it took the result (`vtable.rs`, `try_read_output`) | rule 6: the handle while `JOIN_WAKER` is clear, the loop after `COMPLETE` while it is set |
//! | (outside the header) the cancel state: the name (`Builder::name`), the cancel message and requests, an entry of the runtime's cancel table keyed by the cell, which the state word's `CANCEL_STATE` says exists | at allocation for a named task, else on first use; at most one, freed by `vtable::dealloc` | any thread: inserted and looked up under the table's lock; the name read only, the rest atomic or under its mutex (`cancel.rs`) |
//! | stage `future` | live from allocation until the future is dropped, before `COMPLETE` | the loop thread while it holds `RUNNING` (rules 1, 4) |
//! | stage `output` / `failed` | written by the loop before `COMPLETE` (or at allocation by `allocate_cancelled`); `failed` iff `FAILED` is set with `COMPLETE` | after `COMPLETE`: the handle, or the loop if no handle is left (rule 5), until taken or dropped |
//! | stage, nothing live | after the future was dropped and before the result is written (inside the loop's completion), and after the result was taken or dropped | nobody |
//!
//! After `COMPLETE`, whether the result is still there is known to its
//! owner alone: the loop drops it at once if no handle is left; a handle
//! that took it records that in the join-waker field (the taken marker) or,
//! if that field is still the loop's, by giving up `JOIN_INTEREST` at once
//! (`try_read_output`). So the stage needs no tag and a join writes the
//! state word no more often than before.
//!
//! The error of a cancelled or panicked task is boxed, so the common,
//! successful task does not carry the room for a `TaskError`; the name and
//! the cancel requests share one lazily allocated entry of the runtime's
//! cancel table for the same reason (most tasks have neither): a task
//! without one pays a bit of the state word, and never takes the table's
//! lock (`cancel.rs`).
//!
//! ## Where a parked task's bytes go (issue 18, W7)
//!
//! W7 (`coil-benches memory peer=coil/uring impl=gate`, N = 100 000) measures
//! 92.2 B per parked task (three runs, all 92.201; 100.9 to 101.7 with the
//! cancel slot in the header, 117.309 in three runs with the owned-list
//! links in the header too, alternated with the
//! header's `Arc<Shared>`, all 124.477; 125.0 to 126.4 earlier with it and
//! 132.0 to 134.0 with the id in the header, five runs each; 140.6 to 141.2
//! before the run queue gave its buffer back, 160.9 to 161.5 before the
//! stage lost its tag and the join waker a word). Its future,
//! `parked(gate.wait())`, is 40 B (the `GateWait` argument and the awaited
//! copy, 16 B each, and the async fn's state); the breakdown:
//!
//! | part | bytes |
//! |---|---|
//! | header | 24 |
//! | stage: the future (no tag) | 40 |
//! | slab: 63 cells of 64 B per 4 096 B chunk with a 48 B head (`slab.rs`), 4 096 / 63 − 64 | 1.0 |
//! | the owned list's registry of chunks, a word per chunk (`slab.rs`, "Bound cells") | 0.2 |
//! | the waker in the gate's `Vec` | 16 |
//! | the `Task<u64>` handle in the benchmark's `Vec` | 8 |
//! | the rest (the benchmark's vectors' slack, the run queue's burst buffer given back) | ~4 |
//!
//! The stage's tag (8 B for W7's future, 11 B with the slab's rounding)
//! went into the state word (`FAILED`) and the handle (its taken marker),
//! which also cut W1 by 9 instructions a task (46.81 M to 45.87 M at
//! n = 100 000, callgrind); the join waker went from an `Option<Waker>` to
//! one word (`join_waker.rs`: a coil task's waker kept as its `TaskRef`,
//! any other boxed), W1 unchanged (45.88 M: its one pending join is the
//! main future's, boxed once), W2 (`yield tasks=100`) 13.34 M to 13.04 M
//! for both changes. The id left the header for the slab's chunks (the
//! "Ids" paragraph above): W7 −7.4 B (median 133.2 to 125.8), W1 41.37 M
//! to 41.32 M instructions at n = 100 000 (the spawn no longer touches the
//! thread's id counter: −8.6 a task in `Builder::spawn`, most of which the
//! handle's drop gave back to codegen); W1 wall clock, paired runs on a
//! shared 2-core VM, new/old median 0.89 (0.51 to 0.94, 11 pairs, old
//! first) and 0.92 (0.73 to 0.97, 9 pairs, new first): fewer bytes touched
//! per task (96 B cells instead of 104).
//!
//! The runtime left the header for the chunk's head ("The runtime" above):
//! W7 124.5 to 117.3 B; W1 41.32 M to 40.88 M instructions at n = 100 000
//! (−4.4 a task: the spawn's and the free's locked increment and decrement
//! are gone, −3 and −3.3; `Task::drop` stays level only with its
//! `drop_completed` inlined by hand, which the `shared()` lookup of its
//! debug check had pushed out of line, +18.7 a task until then); W2
//! (`yield tasks=100`) 10.79 M to 10.29 M (the waker's `wake_by_ref`,
//! codegen: the yield path never reads the runtime); W1 wall clock
//! (n = 500 000, paired runs on the loaded 2-core VM, ~210 to 300 ns a
//! task that hour), new/old median 0.88 (0.48 to 1.03, 11 pairs, old
//! first) and 0.84 (0.74 to 0.93, 9 pairs, new first).
//!
//! The owned-list links left the header ("The owned list" above): W7
//! 117.3 to 101.5 B (−16 B of header; the chunk's head grew from 3 words
//! to 6, which W7's 72 B cells fill exactly; the registry's `Vec` grows
//! in allocator-friendly sizes: with `Vec`'s own doubling W7 was 102.7 to
//! 103.4, its reallocations leaving ~200 KiB of gaps between chunks).
//! Instructions (callgrind, `coil-benches` on `coil/uring`): W1 (`spawn
//! n=100000`) 40.87 M to 41.60 M (+7.2 a task, +1.8 %: binding a slab
//! cell sets its bit and tests the bitmap's word for the registry, ~12
//! instructions against ~6 for the list's push, and the unbind at
//! completion ~15 against ~8, the vtable's `from_slab` read included; the
//! spawn's push knows its cell's kind at compile time, `in_slab`, without
//! which W1 was 41.90 M); W2 (`yield tasks=100`) 10.29 M both; W4
//! (`timers tasks=10000`) 18.49 M to 17.42 M (−5.8 %: its completions no
//! longer write their neighbours' headers; W4 varies by ~3 % from run to
//! run, its timers following the wall clock).
//!
//! The cancel slot left the header for the runtime's cancel table
//! (`cancel.rs`; a state-word bit says a task has an entry): W7 101.5 to
//! 92.2 B, under issue 18's 96 B; W1 41.60 M to 41.16 M instructions
//! (a spawn no longer writes the slot, a free no longer tests it: the
//! free tests the state word's bit instead, a word it already read);
//! W2 10.29 M both; W4 17.86 to 18.16 M in five runs, against 18.11 to
//! 18.49 M in five runs before this session's two changes. A named task, a cooperative one and one
//! cancelled with a message take the table's lock when they are spawned
//! or cancelled, when their state is read, and when they are freed.
//!
//! # `TaskRef` and where the unsafe boundary is
//!
//! A [`TaskRef`] is a pointer to a task that is alive: its type guarantees
//! it, so [`TaskRef::header`] and the other accessors are safe. The pointer
//! is private to this module and a `TaskRef` comes only from something that
//! owns a reference (the list in `task/mod.rs`):
//!
//! - [`allocate`] / [`allocate_cancelled`]: a new task and its initial
//!   references (owned list, handle and queue; or the handle alone);
//! - [`TaskRef::clone_ref`]: a new reference, counted at once (waker clone);
//! - [`TaskRef::from_raw`] (`unsafe`): a waker's data pointer, whose
//!   reference the waker holds;
//! - a copy of one of these. `TaskRef` is `Copy`, and a copy stands for the
//!   reference it was copied from (a queue entry, an owned-list link, the
//!   handle's field): copying costs no refcount traffic on the hot path.
//!
//! The invariant "every `TaskRef` safe code can reach points to a live
//! allocation" therefore holds as long as no allocation is freed while a copy
//! is still in use. Only two operations free one, and both are `unsafe`:
//! [`TaskRef::release`] and [`TaskRef::wake_by_val`] (their `# Safety` says
//! the caller owns the references it gives up, and that no copy is used
//! afterwards unless another reference keeps the task alive). So are the
//! operations that *transfer* a reference into something that will later
//! release or poll it without looking (`rt::schedule`, `Core::push_local`,
//! `Shared::push_spawned`, `OwnedList::push`, `Task::from_raw`,
//! `rt::core::adopt`), `OwnedList::remove` (it trusts that the task is in
//! that list), and the ones that touch loop-thread-only parts of the task
//! ([`TaskRef::poll`], [`TaskRef::shutdown`], the functions of `vtable.rs`). The containers of
//! queue entries (run queues, the remote queue's vectors, the simulator's
//! batch) are private to `rt`, which fills them only through those.
//!
//! The header's fields are private to the `task` module: outside it, safe
//! code reaches only state-word operations that give up no reference
//! ([`TaskRef::snapshot`], [`TaskRef::wake_by_ref`], [`TaskRef::clone_ref`];
//! at worst they leak a task) and immutable fields ([`TaskRef::id`],
//! [`TaskRef::shared`]), all of them thread-safe, which is why a `TaskRef`
//! may be `Send`. Inside the module, the state word's transitions are the
//! protocol of `task/mod.rs` and are trusted like the rest of its code.

use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use super::TaskId;
use super::cancel::CancelState;
use super::error::{Cancelled, TaskLabel};
use super::list::{Links, OwnedList};
use super::state::{Notify, Release, Snapshot, State, ToCancelled};
use super::{PanicPayload, TaskError};
use crate::rt::Shared;

mod join_waker;
mod slab;
mod vtable;

pub(super) use self::slab::Registry as SlabRegistry;

use self::join_waker::JoinWaker;

pub(crate) use self::slab::LoopFrees;
pub(crate) use self::slab::hold_pool_lock;
#[cfg(test)]
pub(crate) use self::slab::tests::chunks_and_slots;
use self::vtable::vtable;
pub(crate) use self::vtable::{
    drop_join_waker, drop_output, is_complete, output_taken, report_detached_panic, try_read_output,
};

/// The type-erased part of every task. See rule list in `task/mod.rs`.
/// Its fields are private to the `task` module (see the module docs).
#[repr(C)]
pub(crate) struct Header {
    /// Flags and refcount (`state.rs`).
    pub(super) state: State,
    /// Functions that know the concrete future type.
    pub(super) vtable: &'static Vtable,
    /// The join waker, one word (`join_waker.rs`): see rule 6.
    join_waker: JoinWaker,
}

// The header stays small: it is paid by every task (W1/W7 benchmarks).
static_assertions::const_assert!(std::mem::size_of::<Header>() <= 24);
// A cell (the header and at least a pointer of stage) is larger than a
// granule of the slab's bound bitmap (`slab.rs`, "Bound cells").
static_assertions::const_assert!(
    std::mem::size_of::<Header>() + std::mem::size_of::<usize>() >= slab::GRANULE
);
// The stage carries no tag: for a future of no bytes and a `u64` output it
// is one word (it was two with an enum's tag).
static_assertions::const_assert!(
    std::mem::size_of::<Stage<std::future::Pending<u64>>>() == std::mem::size_of::<u64>()
);

/// The functions that need the concrete type, and nothing else: each is a
/// few lines with no state transition and no `catch_unwind`; the shared
/// functions of `vtable.rs` call them (see its module docs for the split
/// and what each leaves in the stage when user code unwinds out of it).
pub(crate) struct Vtable {
    /// Loop thread: poll (or cancel) the task once, the loop's hot path
    /// (`TaskRef::poll`); the flag is the loop's self-wake flag.
    poll: unsafe fn(TaskRef, &std::cell::Cell<bool>, &OwnedList) -> PollOutcome,
    /// Drop the future in the stage (may unwind; it is gone either way).
    drop_future: unsafe fn(TaskRef),
    /// Store the error of a task whose future is gone.
    store_failed: unsafe fn(TaskRef, Box<TaskError>),
    /// After `COMPLETE`, by the result's owner: empty the stage, returning
    /// the error if `FAILED` (the flag) and dropping the output otherwise
    /// (may unwind).
    drop_output: unsafe fn(TaskRef, bool) -> Option<Box<TaskError>>,
    /// Where the stage starts in the cell (`offset_of!(Cell<F>, stage)`):
    /// how the handle, which knows the output type but not `F`, reads the
    /// result in place (`vtable.rs`, `try_read_output`; the stage is a
    /// `repr(C)` union, every field at its start).
    stage_offset: usize,
    /// The cell's layout: how it was allocated, and so how it is freed.
    layout: Layout,
    /// `Cell::<F>::FROM_SLAB`: a slab slot, else the global allocator.
    from_slab: bool,
}

/// What the loop must do after [`Vtable::poll`].
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PollOutcome {
    /// Pending and idle; nothing to do.
    Idle,
    /// Woken during the poll: push it on the local queue (the queue reference
    /// is the poller's). If it woke itself, it is running while queued
    /// (`state.rs`).
    Reschedule,
    /// Completed, and unlinked from the owned list by the poll: the caller
    /// releases two references (the poller's queue reference and the
    /// owned list's).
    Complete,
    /// Completed and unlinked, and the completion released those two
    /// references ([`State::transition_to_complete_releasing`]): the task
    /// may be gone already, the caller does not touch it again. (A unit
    /// variant, not a flag of `Complete`: the loop's match on a one-byte
    /// tag costs W2 ~4 instructions a poll less.)
    Released,
}

/// The allocation for a future of type `F`.
#[repr(C)]
struct Cell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// What the cell holds after the header: the future, then its result, then
/// nothing. No tag: which field is live is told by the state word and by
/// who looks (the table in the module docs):
///
/// - before `COMPLETE`: `future`, except inside the loop thread's
///   completion (it holds `RUNNING`), between dropping the future and
///   writing the result;
/// - after `COMPLETE` with `FAILED` (`state.rs`): `failed`, until its owner
///   (rule 5) takes or drops it; after `COMPLETE` without `FAILED`:
///   `output`, the same way. Whether the handle took it already is the
///   handle's to know (`vtable.rs`, `try_read_output`: the taken marker in
///   the join-waker field, or `JOIN_INTEREST` given up).
///
/// The error of a cancelled or panicked task is boxed, so the stage is as
/// large as the larger of the future and its output (at least a pointer),
/// not as large as a `TaskError`: the common, successful task pays nothing
/// for the rare failed one.
#[repr(C)]
union Stage<F: Future> {
    /// The future, until it completes or is dropped (rule 4).
    future: ManuallyDrop<F>,
    /// Completed with this output, until its owner takes or drops it (rule 5).
    output: ManuallyDrop<F::Output>,
    /// Cancelled or panicked: the error, until its owner takes or drops it.
    failed: ManuallyDrop<Box<TaskError>>,
}

/// A pointer to a live task (see the module docs): it points to a task
/// allocation that is kept alive by a reference this `TaskRef`, or the one it
/// was copied from, stands for. `Copy`: the code that holds one knows which
/// reference that is (queue entry, owned-list link, handle, waker).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: what safe code can do with a TaskRef on any thread touches only the
// atomic state word (reference-neutral transitions), immutable fields
// (`vtable`; the runtime, an `Arc` of a `Sync` type, and the id, in the
// chunk's head or the words before a boxed cell, written before the task
// is published) and the name, which is
// written into the task's cancel-table entry before the task is published
// and only read afterwards. Everything that
// is not thread-safe (owned-list links, stage, join waker, `release`) sits
// behind `unsafe` functions whose contracts include the thread rules of
// task/mod.rs (rule 1: loop thread; the handle's side under rules 5 and 6).
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// The header. Safe: a `TaskRef` points to a live task (type invariant).
    /// The fields are private to the `task` module.
    #[inline]
    pub(super) fn header(&self) -> &Header {
        // SAFETY: type invariant: the allocation is alive while any copy of
        // this TaskRef is in use (only `release` and `wake_by_val`, both
        // unsafe, can end it, and their callers promise no copy is used after).
        unsafe { self.0.as_ref() }
    }

    /// Rebuild a `TaskRef` from a pointer returned by [`TaskRef::into_raw`]
    /// (a waker's data pointer).
    ///
    /// # Safety
    /// `ptr` came from `into_raw` of a task, and a reference to that task is
    /// held (the waker's own, or the poller's for a borrowed waker) for as
    /// long as the returned `TaskRef` and its copies are used.
    #[inline]
    pub(crate) unsafe fn from_raw(ptr: *const ()) -> TaskRef {
        // SAFETY: the caller's promise: a pointer from `into_raw`, never null.
        TaskRef(unsafe { NonNull::new_unchecked(ptr.cast_mut().cast()) })
    }

    /// The header pointer, for a waker's data pointer. The reference this
    /// `TaskRef` stands for is not released: [`TaskRef::from_raw`] gives it back.
    #[inline]
    pub(crate) fn into_raw(self) -> *const () {
        self.0.as_ptr().cast_const().cast()
    }

    /// Take one more reference (a waker clone) and return it as a `TaskRef`
    /// that stands for it. Safe: forgetting it only leaks the task.
    #[inline]
    pub(crate) fn clone_ref(self) -> TaskRef {
        self.header().state.ref_inc();
        self
    }

    /// Release `n` references, freeing the task if they were the last.
    ///
    /// # Safety
    /// The caller owns `n` references to this task (task/mod.rs says who holds
    /// them) and gives them up. The task may be freed here: afterwards, this
    /// `TaskRef`, every copy of it and anything borrowed through them (the
    /// header, `shared()`) may be used only where another reference is known
    /// to keep the task alive.
    #[inline]
    pub(crate) unsafe fn release(self, n: usize) {
        if self.header().state.ref_dec(n) == Release::Dealloc {
            // SAFETY: that was the last reference (rule 7); the caller promised
            // not to use a copy without another reference, and none is left.
            unsafe { vtable::dealloc(self) }
        }
    }

    /// Frees the task, whose last reference the caller holds: the handle's
    /// drop after an `Acquire` load counted its reference as the only one
    /// (rule 7, as in [`release_join_complete`](TaskRef::release_join_complete)).
    ///
    /// # Safety
    /// The caller holds the last reference, gives it up, and uses no copy
    /// afterwards.
    ///
    /// The join-waker field holds the taken marker (nothing to drop) and
    /// `snap` is the caller's load that counted one reference.
    #[inline]
    pub(super) unsafe fn dealloc_alone(self, snap: Snapshot) {
        // SAFETY: the caller's promise (rule 7; the field holds no waker).
        unsafe { vtable::dealloc_taken(self, snap) }
    }

    /// The handle's drop after it saw `COMPLETE` with `JOIN_WAKER` clear and
    /// dropped the output and the join waker: clear `JOIN_INTEREST` and
    /// release the handle's reference in one step, freeing the task if it
    /// was the last.
    ///
    /// # Safety
    /// The caller is the task's handle and gives up its reference, and it
    /// observed `COMPLETE` set and `JOIN_WAKER` clear; as for `release`, no
    /// copy is used afterwards.
    ///
    /// The common case needs no read-modify-write at all: when the state
    /// word (read with `Acquire`) counts the handle's reference as the only
    /// one, nobody else can touch the task any more (every other access is
    /// made under a counted reference, or lent by the holder of one: rule
    /// 7), so no write can race, and the load read the last release of
    /// every other reference (as `Arc`'s uniqueness check): the task is
    /// freed as is, `JOIN_INTEREST` left set on memory about to go. W1 saves
    /// a locked instruction per task with it (issue 18).
    #[inline]
    pub(super) unsafe fn release_join_complete(self) {
        // (See `dealloc_alone` for the handle that knows it already.)
        if self.snapshot().refs() == 1 {
            // SAFETY: the handle's is the last reference (above: no other
            // holder, so no other access, and every earlier one happened
            // before this load); the caller promised not to use a copy.
            unsafe { vtable::dealloc(self) };
            return;
        }
        if self.header().state.drop_join_interest_and_ref() == Release::Dealloc {
            // SAFETY: that was the last reference (rule 7); the caller
            // promised not to use a copy afterwards.
            unsafe { vtable::dealloc(self) }
        }
    }

    /// `Waker::wake`: the caller's reference becomes the queue reference, or
    /// is released (possibly the last: then the task is freed).
    ///
    /// Told apart by one thread-local read: a self-wake (the loop is
    /// polling this task: the reference is released, the loop noted the
    /// wake); a wake on the task's own loop thread (the transition, then the
    /// local queue); a wake from a loop thread of a foreign task it
    /// remembers ([`last_foreign`]), which pushes the reference as it is
    /// onto the task's remote queue **without touching the header**: the
    /// task's loop does the transition when it drains the entry
    /// ([`TaskRef::wake_drained`]; why and why the rules still hold:
    /// `rt/mod.rs`, "Two kinds of woken entry"); any other foreign wake
    /// (the transition here, then the remote queue, as before).
    ///
    /// # Safety
    /// As for `release(1)`: the caller owns one reference and gives it up.
    #[inline]
    pub(crate) unsafe fn wake_by_val(self) {
        /// Where the wake goes.
        enum Site {
            /// Handled (a self-wake, or queued on this loop).
            Done,
            /// A remembered foreign task: a wake entry onto that queue.
            Entry(*const Shared),
            /// Any other foreign wake: the transition here, then the queue.
            Transition,
        }
        let site = crate::rt::with_core(|core| {
            let Some(core) = core else {
                return Site::Transition;
            };
            if core.note_self_wake(self) {
                // SAFETY: the caller's reference; the poller holds another one.
                unsafe { self.release(1) };
                return Site::Done;
            }
            if let Some(shared) = last_foreign::shared_of(self) {
                return Site::Entry(shared);
            }
            let shared = self.shared();
            if Arc::ptr_eq(&core.shared, shared) {
                // SAFETY: the caller's reference; this thread runs the task's
                // loop (same `Shared`).
                unsafe { self.notify_by_val(|t| core.push_local(t)) };
                return Site::Done;
            }
            last_foreign::seen(self, Arc::as_ptr(shared));
            Site::Transition
        });
        match site {
            Site::Done => {}
            // `shared` was remembered with the task, whose own it is (alive
            // while the task is); the memory's own reference, which nothing
            // on this thread releases during the push, keeps both alive.
            // SAFETY: `shared` is the task's runtime, alive until `push_wake`
            // returns (above); the caller's reference becomes the wake entry's.
            Site::Entry(shared) => unsafe { crate::rt::push_wake(shared, self) },
            // SAFETY: the caller's reference; `schedule_by_val` receives it
            // as the queue reference when the transition set SCHEDULED, and
            // no loop of the task's runtime runs here (not `Done`).
            Site::Transition => unsafe { self.notify_by_val(|t| crate::rt::schedule_by_val(t)) },
        }
    }

    /// Loop thread, draining its remote queue: the transition that a
    /// foreign `Waker::wake` left to the loop ([`TaskRef::wake_by_val`]).
    /// The entry's reference becomes the queue reference and `push` gets
    /// the task, or it is released (the task is queued, running while
    /// queued, or complete; possibly the last reference, then the task is
    /// freed).
    ///
    /// # Safety
    /// The loop thread of the task's runtime, outside any poll; the caller
    /// owns the reference of a wake entry of that runtime's remote queue and
    /// gives it up (to `push` with the task, or to the release), as for
    /// `release(1)`.
    #[inline]
    pub(crate) unsafe fn wake_drained(self, push: impl FnOnce(TaskRef)) {
        // SAFETY: the caller's promise.
        unsafe { self.notify_by_val(push) }
    }

    /// `transition_to_notified_by_val` and what its outcome asks for: the
    /// caller's reference goes to `push` as the queue reference, or is
    /// released.
    ///
    /// # Safety
    /// The caller owns one reference and gives it up; `push` takes a task
    /// with its queue reference to a run queue of its runtime.
    #[inline(always)]
    unsafe fn notify_by_val(self, push: impl FnOnce(TaskRef)) {
        match self.header().state.transition_to_notified_by_val() {
            // The transition set SCHEDULED: the caller's reference is now
            // the queue reference (rule 2), handed to the queue.
            Notify::Submit => push(self),
            Notify::Nothing => {}
            // SAFETY: the caller's was the last reference (rule 7), and the
            // caller promised not to use a copy without another one.
            Notify::Dealloc => unsafe { vtable::dealloc(self) },
        }
    }

    /// `Waker::wake_by_ref`: queue the task if it must be, with a new queue
    /// reference taken by the transition. Safe: no reference is given up.
    /// Always inlined: it is the whole of a task waker's `wake_by_ref`
    /// (`waker.rs`), and rustc's choice flips with unrelated edits (out of
    /// line it cost W2 one call per yield).
    #[inline(always)]
    pub(crate) fn wake_by_ref(self) {
        if self.woke_self() {
            return;
        }
        match self.header().state.transition_to_notified_by_ref() {
            // SAFETY: the transition set SCHEDULED and took a new reference:
            // the queue reference (rule 2), handed to the queue.
            Notify::Submit => unsafe { crate::rt::schedule(self) },
            Notify::Nothing | Notify::Dealloc => {}
        }
    }

    /// The self-wake path (`state.rs`): whether this thread's loop is
    /// polling this task, in which case the loop noted the wake and the
    /// state word is left alone. One thread-local read on every wake.
    #[inline(always)]
    fn woke_self(self) -> bool {
        crate::rt::with_core(|core| core.is_some_and(|c| c.note_self_wake(self)))
    }

    /// Poll (or cancel) the future once; see [`PollOutcome`] for what the
    /// caller then does with the queue reference. `woke_self` is the loop's
    /// self-wake flag: clear now, set during the poll if the task wakes
    /// itself on this thread (`Core::note_self_wake`, the self-wake path of
    /// `state.rs`).
    ///
    /// # Safety
    /// The loop thread of the task's runtime (rule 1); the caller popped
    /// `self` from a run queue and owns its queue reference (rule 2), and
    /// `self` is in `owned`, its runtime's owned list (a completed task
    /// leaves it here: [`PollOutcome::Complete`]).
    #[inline]
    pub(crate) unsafe fn poll(
        self,
        woke_self: &std::cell::Cell<bool>,
        owned: &OwnedList,
    ) -> PollOutcome {
        debug_assert!(!woke_self.get());
        // SAFETY: the caller's promise is the vtable function's contract.
        unsafe { (self.header().vtable.poll)(self, woke_self, owned) }
    }

    /// Rule 8: claim the task, drop its future, store `Cancelled` and
    /// complete it. No reference is released.
    ///
    /// # Safety
    /// The loop thread, not inside a poll; the task is bound to this loop and
    /// neither being polled nor complete (it was in the owned list; it may be
    /// running while queued after waking itself), or it was never published
    /// (a `Handle::spawn` that found the runtime closed).
    #[inline]
    pub(crate) unsafe fn shutdown(self) {
        // SAFETY: the caller's promise is the function's contract.
        unsafe { vtable::shutdown(self) }
    }

    /// The task's id: derived from the cell's slot for a slab cell, read
    /// from the word before the cell for a boxed one (module docs, "Ids").
    /// Out of line: no hot path asks for it, and inlined (a division for a
    /// slab cell) it tipped the handle's drop out of line (W1 +1.5
    /// instructions a task, callgrind).
    #[inline(never)]
    pub(crate) fn id(&self) -> TaskId {
        let vt = self.header().vtable;
        let raw = if vt.from_slab {
            // SAFETY: `into_task` took the cell from `slab::allocate` with
            // `vt.layout` (the same `FROM_SLAB`); the task is alive (type
            // invariant), so the cell is not freed.
            unsafe { slab::id_of(self.0.cast(), vt.layout) }
        } else {
            // The word is written once, at allocation, and never again.
            // SAFETY: `into_task` put a boxed cell `id_prefix` bytes into its
            // allocation with the id in the word before it; the task is alive.
            unsafe { self.0.cast::<u64>().as_ptr().sub(1).read() }
        };
        TaskId(std::num::NonZeroU64::new(raw).expect("task ids start at 1"))
    }

    /// The runtime the task belongs to: its slab chunk's, or the one in
    /// the words before a boxed cell (module docs, "The runtime"). Kept
    /// alive as long as the task is: a waker that outlives the loop still
    /// finds the (closed) remote queue.
    #[inline(always)]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        if self.header().vtable.from_slab {
            // `allocate_cell` took the cell from `slab::allocate` with its
            // runtime as the owner (the same `from_slab`).
            // SAFETY: the task is alive (type invariant): its slot is counted,
            // so its chunk, owner included, outlives the borrow of `self`.
            unsafe { slab::owner_of(self.0.cast()) }
        } else {
            // `allocate_cell` put a boxed cell `boxed_layout`'s offset into
            // its allocation, its runtime in the word two before it.
            // SAFETY: that word is written once before the task is published,
            // dropped only by `dealloc`; the task is alive (type invariant).
            unsafe { &*self.0.cast::<Arc<Shared>>().as_ptr().sub(2) }
        }
    }

    /// The cell, if it is a slab cell (`Vtable::from_slab`): what the owned
    /// list records a slab task by (`list.rs`); `None` for a boxed cell.
    #[inline(always)]
    pub(super) fn slab_cell(self) -> Option<NonNull<u8>> {
        self.header().vtable.from_slab.then(|| self.cell())
    }

    /// The task's cell (its header's address), slab or boxed.
    #[inline(always)]
    pub(super) fn cell(self) -> NonNull<u8> {
        self.0.cast()
    }

    /// The task whose slab cell `cell` is ([`TaskRef::slab_cell`]), standing
    /// for a reference the caller knows of.
    ///
    /// # Safety
    /// `cell` is the slab cell of a live task, and a reference to it is
    /// held while the returned `TaskRef` and its copies are used.
    #[inline(always)]
    pub(super) unsafe fn from_slab_cell(cell: NonNull<u8>) -> TaskRef {
        // A cell starts with its header (`Cell` is `repr(C)`).
        TaskRef(cell.cast())
    }

    /// The owned-list links of a boxed cell, in its prefix
    /// ([`boxed_layout`]). Loop thread only (rule 1), as the list that uses
    /// them (`list.rs`).
    ///
    /// # Safety
    /// The cell is boxed ([`TaskRef::slab_cell`] is `None`): a slab cell
    /// has no prefix (checked in debug builds).
    #[inline(always)]
    pub(super) unsafe fn boxed_links(&self) -> &Links {
        debug_assert!(!self.header().vtable.from_slab, "a slab cell has no links");
        // `allocate_cell` wrote the links in the two words four before a
        // boxed cell (`boxed_layout`), before the task was published; no
        // `&mut` to them is ever made, and `dealloc` frees them untouched
        // (`Links` owns nothing).
        // SAFETY: a boxed cell (the caller's promise); alive (type invariant).
        unsafe { &*self.0.cast::<Links>().as_ptr().sub(2) }
    }

    /// The state word, for checks (`Acquire` load).
    #[inline]
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.header().state.load()
    }

    /// The name given with `Builder::name`.
    #[inline]
    pub(crate) fn name(&self) -> Option<&str> {
        self.name_arc().map(|n| &**n)
    }

    fn name_arc(&self) -> Option<&Arc<str>> {
        self.cancel_state().and_then(|c| c.name())
    }

    /// The task's entry in its runtime's cancel table (`cancel.rs`), if it
    /// has one: no lock unless it has.
    #[inline]
    fn cancel_state(&self) -> Option<&CancelState> {
        if !self.header().state.load().is(super::state::CANCEL_STATE) {
            return None;
        }
        // SAFETY: the task is alive while `self` is borrowed (type
        // invariant); the key is its cell's address.
        unsafe { (self.shared().cancels).get(self.cell().addr().get()) }
    }

    /// The task's entry, inserted now if it has none. Any thread.
    fn cancel_state_or_init(&self) -> &CancelState {
        // SAFETY: as in `cancel_state`.
        unsafe {
            (self.shared().cancels).get_or_insert(
                self.cell().addr().get(),
                &self.header().state,
                None,
            )
        }
    }

    /// A new task, not published yet, gets its name (`Builder::name`): an
    /// entry of the cancel table holding it.
    #[cold]
    fn name_task(self, name: Arc<str>) {
        // SAFETY: as in `cancel_state`; the task has no entry yet, so the
        // name goes into the one inserted here.
        let _ = unsafe {
            (self.shared().cancels).get_or_insert(
                self.cell().addr().get(),
                &self.header().state,
                Some(name),
            )
        };
    }

    /// The id and name, for an error about this task.
    pub(super) fn label(&self) -> TaskLabel {
        TaskLabel {
            id: self.id(),
            name: self.name_arc().cloned(),
        }
    }

    /// The error of a task that ends cancelled: its label and the message of
    /// `cancel_with`, if one was given.
    pub(super) fn cancelled_error(&self) -> TaskError {
        TaskError::Cancelled(Cancelled {
            task: Some(self.label()),
            message: self.cancel_state().and_then(|c| c.message()),
        })
    }

    /// The error of a task whose future (or its destructor) panicked.
    pub(super) fn panicked_error(&self, payload: Box<dyn Any + Send>) -> TaskError {
        TaskError::Panicked(PanicPayload::of_task(payload, self.label()))
    }

    /// `Task::cancel` and `cancel_with`. For a task that answers requests
    /// (`Builder::cooperative_cancel`): record a request and wake the task
    /// (decision 0010); `false` if it has finished or was aborted (nothing is
    /// recorded then, so an abort's message stays). A task that finishes on
    /// its own thread at this very moment may still get `true`; the request
    /// then has no effect. For any other task, [`abort`](TaskRef::abort).
    /// Any thread.
    pub(super) fn cancel(self, message: Option<Arc<str>>) -> bool {
        use super::state::{CANCELLED, COMPLETE};
        let header = self.header();
        match self.cooperative_state() {
            Some(c) => {
                let snap = header.state.load();
                if snap.is(COMPLETE) || snap.is(CANCELLED) {
                    return false;
                }
                c.request(message);
                // After `request` stored `pending`: the poll this wake leads
                // to sees it (`cancel.rs`).
                self.wake_by_ref();
                true
            }
            _ => self.abort(message),
        }
    }

    /// The hard cancel: mark the task cancelled (its next turn drops the
    /// future) and queue it if it was idle. `message`, if given, is stored
    /// first, unless the task was already cancelled or finished. Returns
    /// whether this call requested the cancellation. Any thread.
    pub(super) fn abort(self, message: Option<Arc<str>>) -> bool {
        use super::state::{CANCELLED, COMPLETE};
        let header = self.header();
        if let Some(m) = message {
            let snap = header.state.load();
            if snap.is(COMPLETE) || snap.is(CANCELLED) {
                return false;
            }
            // Written before CANCELLED is set, read after it is seen
            // (`cancel.rs`).
            self.cancel_state_or_init().offer_message(m);
        }
        match header.state.transition_to_cancelled() {
            ToCancelled::Submit => {
                // SAFETY: the transition set SCHEDULED and took a new
                // reference: the queue reference (rule 2), handed over here.
                unsafe { crate::rt::schedule(self) };
                true
            }
            ToCancelled::Marked => true,
            ToCancelled::AlreadyDone => false,
        }
    }

    /// Makes `cancel` a request for this task (`Builder::cooperative_cancel`).
    /// Called before the task's handle is returned, so before any `cancel`.
    pub(super) fn set_cooperative(self) {
        // The entry first: with `COOPERATIVE` set, `CANCEL_STATE` is too
        // (`state.rs`), so a request always finds where to count itself.
        self.cancel_state_or_init();
        self.header().state.mark_cooperative();
    }

    /// The task's cancel-table entry if it answers requests: a task without
    /// `COOPERATIVE` (every other task, named ones included) takes no lock.
    fn cooperative_state(&self) -> Option<&CancelState> {
        if !self.header().state.load().is(super::state::COOPERATIVE) {
            return None;
        }
        self.cancel_state()
    }

    /// For a task that answers requests: `cancelling()` and whether a
    /// request waits to be delivered; `None` for any other task.
    pub(crate) fn request_state(self) -> Option<(usize, bool)> {
        let c = self.cooperative_state()?;
        Some(c.request_state())
    }

    /// Marks a counted request undelivered again (no-op with none counted).
    pub(super) fn repend(self) {
        if let Some(c) = self.cooperative_state() {
            c.repend();
        }
    }

    /// asyncio's `cancelling()`: outstanding requests of a cooperative task;
    /// for any other task 1 once it was cancelled, else 0.
    pub(super) fn cancelling(self) -> usize {
        let header = self.header();
        match self.cooperative_state() {
            Some(c) => c.requests(),
            _ => usize::from(header.state.load().is(super::state::CANCELLED)),
        }
    }

    /// asyncio's `uncancel()`: one request fewer (a hard cancel cannot be
    /// taken back); returns what [`cancelling`](TaskRef::cancelling) is then.
    pub(super) fn uncancel(self) -> usize {
        match self.cooperative_state() {
            Some(c) => c.uncancel(),
            _ => self.cancelling(),
        }
    }

    /// Delivers the undelivered request of a cooperative task, if there is
    /// one: it is taken (edge-triggered, as asyncio's) and returned as the
    /// error the task's code sees.
    pub(super) fn take_request(self) -> Option<Cancelled> {
        let c = self.cooperative_state()?;
        if !c.take_pending() {
            return None;
        }
        Some(Cancelled {
            task: Some(self.label()),
            message: c.message(),
        })
    }

    /// The name given with `Builder::name`, for messages.
    pub(crate) fn describe(&self) -> String {
        let id = self.id();
        match self.name() {
            Some(n) => format!("task {id} ({n:?})"),
            None => format!("task {id}"),
        }
    }
}

/// Allocate a task for `future`, scheduled, with three references: the owned
/// list's, the handle's and the queue's (`State::new_spawned`). The returned
/// `TaskRef` stands for all three; the caller hands each to its holder
/// (`OwnedList::push`, `Task::from_raw`, a run queue). For a spawn on the
/// loop thread of `shared`'s runtime: the cell comes from this thread's
/// slab chunk of that runtime if it fits (module docs, "The runtime").
#[inline(always)]
pub(crate) fn allocate<F>(future: F, shared: &Arc<Shared>, name: Option<Arc<str>>) -> TaskRef
where
    F: Future + 'static,
{
    into_task::<F, true>(future, State::new_spawned(), shared, name)
}

/// Whether [`allocate`] gives a task of `F` a slab cell (else a boxed
/// one): a constant, for `OwnedList::push_placed`.
#[inline(always)]
pub(crate) const fn in_slab<F: Future>() -> bool {
    Cell::<F>::FROM_SLAB
}

/// [`allocate`] for a spawn from a thread that is not the runtime's loop
/// (`Handle::spawn`): the cell is always boxed, so that no thread keeps a
/// chunk, and with it `shared`, for a runtime it does not run.
pub(crate) fn allocate_remote<F>(future: F, shared: &Arc<Shared>) -> TaskRef
where
    F: Future + 'static,
{
    into_task::<F, false>(future, State::new_spawned(), shared, None)
}

/// Allocate a task for a runtime that is shutting down: the future is dropped
/// at once (its destructor runs here) and the handle sees `Cancelled`. The
/// returned `TaskRef` stands for the one reference, the handle's. Boxed, as
/// it is rare.
pub(crate) fn allocate_cancelled<F>(
    future: F,
    shared: &Arc<Shared>,
    name: Option<Arc<str>>,
) -> TaskRef
where
    F: Future + 'static,
{
    let task = into_task::<F, false>(future, State::new_complete(), shared, name);
    // SAFETY: just allocated with its future and `new_complete`, not
    // published: the stage and the task are ours alone.
    unsafe { vtable::cancel_unpublished(task) };
    task
}

/// Allocates the cell of a task whose stage starts with `future` and whose
/// state word starts at `state`; the `TaskRef` stands for the references
/// that `state` counts. `SLAB`: the cell may come from the slab (it does if
/// it fits, `Cell::FROM_SLAB`), else it is boxed. Inlined into `allocate`
/// (so into the spawn): the cell is built in place; out of line it costs W1
/// ~15 instructions a task.
#[inline(always)]
fn into_task<F: Future + 'static, const SLAB: bool>(
    future: F,
    state: State,
    shared: &Arc<Shared>,
    name: Option<Arc<str>>,
) -> TaskRef {
    let cell = Cell::<F> {
        header: Header {
            state,
            vtable: vtable::<F, SLAB>(),
            join_waker: JoinWaker::new(),
        },
        stage: UnsafeCell::new(Stage {
            future: ManuallyDrop::new(future),
        }),
    };
    let ptr = allocate_cell(
        Layout::new::<Cell<F>>(),
        SLAB && Cell::<F>::FROM_SLAB,
        shared,
    )
    .cast::<Cell<F>>();
    // SAFETY: `allocate_cell` returned memory of Cell<F>'s size and
    // alignment, unused.
    unsafe { ptr.write(cell) };
    // Cell is repr(C) with the header first.
    let task = TaskRef(ptr.cast::<Header>());
    if let Some(name) = name {
        task.name_task(name);
    }
    task
}

/// Memory for a cell of `layout`, its id and runtime set: a slot of this
/// thread's slab chunk of `shared` if `from_slab` (the vtable's; the chunk
/// gives the slot its id and holds the runtime), else the global allocator,
/// with the runtime (a clone of `shared`) and a fresh id written in the two
/// words before the cell ([`boxed_layout`]); `vtable::dealloc` frees it the
/// same way (`Vtable::from_slab`, `Vtable::layout`).
#[inline(always)]
fn allocate_cell(layout: Layout, from_slab: bool, shared: &Arc<Shared>) -> NonNull<u8> {
    if from_slab {
        slab::allocate(layout, Some(shared))
    } else {
        let (whole, offset) = boxed_layout(layout);
        // SAFETY: not zero-sized (it holds the header and the prefix).
        let p = unsafe { std::alloc::alloc(whole) };
        let Some(base) = NonNull::new(p) else {
            std::alloc::handle_alloc_error(whole)
        };
        // The id is the word before the cell, the runtime the one before
        // that, the owned-list links the two before that.
        // SAFETY: `offset` (at least 32, a multiple of 8) and the cell after
        // it are inside the allocation; those words are aligned to 8.
        unsafe {
            let cell = base.add(offset);
            let id = cell.cast::<u64>().as_ptr().sub(1);
            id.write(crate::task::reserve_task_ids(1));
            cell.cast::<Arc<Shared>>()
                .as_ptr()
                .sub(2)
                .write(Arc::clone(shared));
            cell.cast::<Links>().as_ptr().sub(2).write(Links::new());
            cell
        }
    }
}

/// A runtime's `Core` is dropped on this thread: this thread's slab chunks
/// of `shared` take no more cells (`slab.rs`, "The runtime").
pub(crate) fn retire_chunks_of(shared: &Arc<Shared>) {
    slab::retire_owner(shared);
}

/// A boxed cell's allocation: its prefix (the owned-list links, two
/// words, then the runtime, then the id, a word each), padded to the
/// cell's alignment, then the cell; and the cell's offset in it (its
/// alignment, at least 32).
#[inline(always)]
pub(super) fn boxed_layout(cell: Layout) -> (Layout, usize) {
    let offset = cell.align().max(4 * size_of::<u64>());
    match Layout::from_size_align(cell.size() + offset, offset) {
        Ok(l) => (l, offset),
        Err(_) => std::alloc::handle_alloc_error(cell),
    }
}

impl<F: Future> Cell<F> {
    /// Whether this cell comes from the slab (`slab.rs`), else the global
    /// allocator; `vtable::dealloc` frees it the same way.
    const FROM_SLAB: bool = slab::fits(Layout::new::<Cell<F>>());
}

/// The foreign task a loop thread woke by value twice in a row, remembered
/// with its runtime's `Shared`, so that waking it again (a stream of values
/// from one loop to a task of another: W8b) touches nothing of its header:
/// the header's line is the one the task's loop writes on every poll, and
/// a read or an RMW from here makes that loop take it back
/// (docs/multicore.md). A wake of the remembered task pushes a wake entry
/// (`rt/mod.rs`); every other foreign wake keeps the transition on the
/// waking thread, as before, and costs what it did.
///
/// Soundness: the memory holds a reference of its own (`clone_ref` when a
/// task is remembered), so the remembered task is not freed, its address
/// cannot be reused by another task, and the `Shared` pointer (the task's
/// own `Arc`) stays valid for as long as it is remembered, in particular
/// through a whole push of a wake entry, after whose publish the entry's
/// own reference may already be gone (`rt::push_wake`). Comparing a
/// waker's task with it reads only this thread-local. The *candidate* (the
/// foreign task woken last, not remembered) is an address only, compared
/// and never dereferenced: a task is remembered when its wake finds it
/// there, after its header was read as usual. The reference is released
/// when another task is remembered, when a loop starts or stops on the
/// thread (`rt::Enter`: so a loop thread keeps no task of another runtime
/// alive past its own `block_on`), and at thread exit. Only loop threads
/// remember.
pub(crate) mod last_foreign {
    use std::cell::Cell;

    use super::TaskRef;
    use crate::rt::Shared;

    struct Last {
        task: Cell<Option<TaskRef>>,
        shared: Cell<*const Shared>,
        /// The address of the foreign task woken last (no reference).
        candidate: Cell<usize>,
    }

    impl Last {
        fn clear(&self) {
            self.candidate.set(0);
            if let Some(t) = self.task.take() {
                self.shared.set(std::ptr::null());
                // SAFETY: the memory's own reference (module docs), given up
                // here; the copy is not used again.
                unsafe { t.release(1) };
            }
        }
    }

    impl Drop for Last {
        fn drop(&mut self) {
            self.clear();
        }
    }

    thread_local! {
        static LAST: Last = const {
            Last {
                task: Cell::new(None),
                shared: Cell::new(std::ptr::null()),
                candidate: Cell::new(0),
            }
        };
    }

    /// The remembered `Shared` of `task`, if `task` is the one remembered.
    #[inline]
    pub(crate) fn shared_of(task: TaskRef) -> Option<*const Shared> {
        LAST.try_with(|l| (l.task.get() == Some(task)).then(|| l.shared.get()))
            .ok()
            .flatten()
    }

    /// A foreign wake by value of `task` (alive: the waker holds a
    /// reference), not remembered, whose runtime is `shared`: remember it
    /// if it was the candidate (a new reference is taken, the task
    /// remembered before is released), else make it the candidate.
    #[inline]
    pub(crate) fn seen(task: TaskRef, shared: *const Shared) {
        let addr = task.into_raw().addr();
        let _ = LAST.try_with(|l| {
            if l.candidate.get() != addr {
                l.candidate.set(addr);
                return;
            }
            let old = l.task.replace(Some(task.clone_ref()));
            l.shared.set(shared);
            if let Some(old) = old {
                // SAFETY: the memory's own reference to the task remembered
                // before, given up; the copy is not used again.
                unsafe { old.release(1) };
            }
        });
    }

    /// Forget the remembered task (its reference is released) and the
    /// candidate: a loop starts or stops on this thread.
    pub(crate) fn forget() {
        let _ = LAST.try_with(Last::clear);
    }
}
