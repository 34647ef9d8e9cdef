//! Task-cell allocation: chunks of same-sized cells, bump-allocated by the
//! thread that spawns, so that a spawn in steady state does not call the
//! allocator (issue 18, W1/W7).
//!
//! # Design
//!
//! **Size classes.** A task cell (`Cell<F>` of `raw.rs`) whose size is at
//! most [`MAX_CELL`] bytes and whose alignment is at most 8 comes from here;
//! any other cell is a plain `Box` (`raw.rs` picks, per `F`, at compile
//! time). Sizes are rounded up to a multiple of 8: cells of different
//! futures with the same rounded size share a class.
//!
//! **Chunks.** A class takes its cells from a *chunk*: one page of
//! [`CHUNK_BYTES`], aligned to them, from the page pool (`slab/pages.rs`:
//! memory the runtime maps itself and populates ahead of a burst; under
//! Miri an allocation of its own, so that Miri sees its life: `pages.rs`),
//! holding a small header (`Chunk`) and `K` slots, a slot per cell. A cell
//! finds its chunk by rounding its address down to [`CHUNK_BYTES`]: no
//! pointer per cell, no lookup.
//!
//! ```text
//! CHUNK_BYTES-aligned: ┌ live (atomic) │ first_id │ owner │ stride, registry index │ bound (2 words) ┐ ┌ cell ┐ ... K cells, unused tail
//! ```
//!
//! A cell costs its size rounded to 8; the allocator would charge that plus
//! its own 8-byte header, rounded to 16, per task. Chunks came from
//! glibc's `malloc` until the page pool: asked for 16 bytes short of a page
//! so that glibc laid them back to back; a page fault per chunk was then a
//! fifth of a W1 task (`pages.rs` has the figures).
//!
//! **Who owns what.** Each thread keeps, per class, its *current* chunk and
//! the bump range of the slots it has not handed out yet (a `thread_local`,
//! touched only by that thread: no lock, no atomic on allocation). A slot
//! handed out belongs to its task; the task is freed by whichever thread
//! drops its last reference (a `Waker` or a `Task` handle may be sent
//! anywhere), and freeing is the same on every thread: one atomic decrement
//! of the chunk's `live` count. Freed slots are **not** reused one by one
//! (that would need a free list other threads can push to): a chunk goes
//! back to the page pool as a whole when its count reaches zero, by the
//! thread that brought it there, and any thread reuses it from there.
//!
//! **The count.** A new chunk starts with `live = K`: every slot is counted
//! from the start, so handing one out costs nothing. Each freed cell takes
//! one off (`Release`); the thread that owns the chunk takes off the slots it
//! never handed out when it leaves the chunk for good (thread exit: the
//! `thread_local`'s destructor); a chunk left because it is full has none
//! left. The decrement that reaches zero is followed by an `Acquire` fence
//! and frees the chunk, as `Arc` does: every other thread's last use of its
//! cell happens before that.
//!
//! **Loop frees.** A cell freed on its runtime's loop thread while that
//! loop runs (`rt::with_core` names a `Core` whose `Shared` is the chunk's
//! `owner`: the common case, a task joined or dropped by its own loop) is
//! not taken off `live` at once: the chunk's `loop_freed` counts it, and
//! the chunk goes on the loop's [`LoopFrees`] list when that count leaves
//! zero. A flush takes each listed chunk's count off `live` in one
//! `fetch_sub` (which may free the chunk) and empties the list. W1 frees
//! 500 000 cells in allocation order: one locked instruction per chunk
//! instead of one per cell (issue 18). The rules:
//!
//! - *Owner only.* `loop_freed` is read and written only by the thread
//!   running the owner's loop, while it runs (a `Core` is not `Send`, so
//!   the list and the counts stay on that thread); every other free takes
//!   its one off `live` at once, as before.
//! - *Listed while counted.* A chunk with `loop_freed > 0` is on its
//!   owner's list exactly once (pushed when the count leaves zero, taken
//!   off by the flush that zeroes it).
//! - *Never early.* `live` stays at least `loop_freed` plus the cells in
//!   use, so a chunk is not freed while a cell of it is in use or while it
//!   is listed; the flush's `Release` decrement stands for the frees it
//!   counts, made earlier on the same thread.
//! - *Bounded.* The loop flushes before it parks (so a sleeping loop holds
//!   nothing back), when `block_on` ends (after its future is dropped,
//!   whose drop may free cells of the loop after it was ready: a main
//!   future that owns handles it joined; on return and while unwinding,
//!   so a runtime kept idle after a caught panic holds nothing either),
//!   when its `Core` is dropped (before its chunks are retired) and when
//!   the list passes [`LOOP_FREES_MAX`] chunks.
//!
//! **Exit and leaks.** At thread exit the current chunks give up their
//! unused slots; a chunk whose cells are all gone is freed there, one with
//! live cells when its last cell goes. A thread whose `thread_local` is
//! already destroyed (a task spawned from another destructor at exit) gets a
//! chunk to itself (one slot used). Nothing is ever left unowned: Miri's leak check sees
//! every chunk freed (the unit tests below, in the miri tier).
//!
//! **Retained memory.** Per thread that spawns (a loop, or a thread calling
//! `Handle::spawn`), at most one partly used chunk per class in use: one class
//! per distinct cell size rounded to 8 bytes, so at most 64 × 4 KiB = 256 KiB
//! per thread, and a few KiB for a program with a few task types. A chunk is also kept
//! while any of its cells lives, so a long-lived task keeps the rest of its
//! chunk (freed cells included) from the allocator: the worst case is one
//! chunk, [`CHUNK_BYTES`], per live task, when exactly one task of every
//! chunk outlives the others. A spawn-and-complete loop frees every chunk it
//! fills; a program that spawns many tasks at once (W1, W7) fills chunks
//! completely.
//!
//! **Why chunks and not a free list.** W1 allocates every task before it
//! frees any, in a fresh process: a free list of freed cells would never be
//! hit there, while carving `K` cells out of one allocation pays `1/K` of an
//! allocator call per task on the first spawn already.
//!
//! **Measured** (issue 18, `coil-benches spawn peer=coil/uring`, callgrind):
//! W1 from 860 to 452 instructions per task (glibc's `malloc`/`free` were 42 %
//! of them: every task is allocated before any is freed, past its per-thread
//! cache); W7 (`memory`) bytes per parked task 0.999× (97 % of the chunks
//! back to back under glibc 2.36).
//!
//! **Task ids.** A cell's task id is not stored in the cell: a chunk
//! reserves one id per slot when it is created (`task::reserve_task_ids`, from
//! the thread's block of ids) and keeps the first in its header; the task in
//! slot `i` has id `first_id + i` ([`id_of`]). So a slab cell pays no header
//! word and a spawn no id counter (issue 18, W7/W1). The ids of a chunk's
//! slots that are never handed out (a chunk left at thread exit) are never
//! used. Among cells of one class on one thread ids increase in allocation
//! order; across classes they do not (each chunk took its block when it was
//! created). A boxed cell keeps its id in a word before the cell (`raw.rs`).
//!
//! **The runtime.** A chunk belongs to one runtime: its head holds an
//! `Arc<Shared>` (`owner`), the runtime of every task in it, which is how a
//! slab task finds where its wakes go ([`owner_of`]; `raw.rs`, "The
//! runtime", says who keeps it alive and why that is at least as long as a
//! clone per task would be). It is cloned when the chunk is created and
//! dropped by the thread that frees the chunk, after the chunk's memory is
//! gone. A thread's current chunk of a class belongs to the runtime it last
//! allocated a cell of that class for (a spawn on a loop thread, for that
//! loop's runtime: `raw.rs` boxes the others); a cell for another runtime
//! retires it first (its unused slots given up, [`Bump::retire`]) and takes
//! a fresh chunk, and so does the runtime's `Core` when it is dropped on
//! the thread ([`retire_owner`]): otherwise the current chunk's unused
//! slots would keep the `Shared` of a dropped runtime until the thread
//! exits. A thread that alternates between two runtimes' loops (each
//! `block_on` in turn) pays a chunk per switch and class; one loop per
//! thread, the common case, never switches.
//!
//! **Bound cells: the owned list's slab half.** A runtime must find every
//! live task it owns (shutdown cancels each, `task::all_tasks` lists them:
//! `task/list.rs`). A boxed cell keeps two links for that in its prefix
//! (`raw.rs`); a slab cell keeps none: its chunk records it instead. Each
//! chunk's head has a *bound* bitmap, one bit per [`GRANULE`] bytes of the
//! chunk ([`BOUND_BITS`] bits for [`CHUNK_BYTES`]), set for the granule a
//! bound cell starts in: every task cell is at least a header and a
//! pointer, a granule or more, so no two cells start in one granule and
//! the bit is the cell's address shifted, no division (`fits` refuses
//! smaller cells). The runtime keeps a [`Registry`]: the chunks that have
//! at least one bound cell, in a `Vec`, each chunk's head holding its index
//! in it. The invariants:
//!
//! - *Owner and thread.* A cell is bound to the runtime its chunk belongs
//!   to (`owner`), only by that runtime's loop thread (rule 1 of
//!   `task/mod.rs`, the rule of the links it replaces), and the bitmap and
//!   the registry index are read and written on that thread only. Other
//!   threads touch `live` and read `owner` and `first_id`: other fields, so
//!   no data race.
//! - *A set bit is a reference.* A cell's bit is set exactly while it is in
//!   its runtime's owned list, which holds a reference to the task then; so
//!   the cell is not freed, the chunk's `live` counts it and the chunk is
//!   not freed. A chunk is in the registry exactly while its bitmap is not
//!   all zero (it enters on its first bound cell and leaves on the unbind
//!   of its last, both O(1): a push, a `swap_remove` that moves one other
//!   chunk and updates that chunk's index): so a registered chunk is alive,
//!   and the registry and the bitmaps can be walked without touching `live`.
//! - *Walks.* `pop` takes the lowest bound cell of the last registered
//!   chunk; `for_each` visits every registered chunk's set bits: O(bound
//!   cells + registered chunks), no recursion, nothing allocated. A cell's
//!   address is found back from its bit with the chunk's `stride` (the only
//!   division, off the spawn and completion paths).
//! - *Costs.* Binding and unbinding touch the chunk's head (the bitmap's
//!   word, and the registry on entry and exit), never another task's
//!   memory, where the doubly linked list wrote both neighbours' headers.
//!   The registry's `Vec` grows (amortised; at most to the number of
//!   chunks a runtime ever has bound at once, one word each) and never
//!   shrinks: in steady state binding allocates nothing. A `Registry`
//!   dropped with chunks in it leaks their tasks' references, as a list
//!   dropped with tasks in it did; a runtime empties it at shutdown.
//!
//! Under `cfg(loom)` every cell is a `Box` (loom runs its threads on one OS
//! thread, which a per-thread cache must not see as one thread), and under
//! `cfg(miri)` too: Miri (like ASan) sees allocations, so a use of a freed
//! cell in a chunk that is still alive would go unseen; boxed, every task's
//! use-after-free stays visible to the miri tier's task tests, while the
//! slab itself is checked there by its own unit tests below, which call it
//! directly. `--cfg coil_box_tasks` boxes every cell the same way for
//! AddressSanitizer (CI's asan tier), for the same reason, and so does
//! `cfg(fuzzing)`: `cargo fuzz` builds with ASan too, and the `run_queue`
//! target counts task allocations by the strong count of their runtime's
//! `Shared`, one per boxed cell (a chunk holds one for all its cells).

use std::alloc::Layout;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use crate::rt::Shared;

mod pages;

pub(crate) use self::pages::hold_lock as hold_pool_lock;

/// The largest cell (bytes) taken from a chunk; larger cells are boxed.
pub(super) const MAX_CELL: usize = 512;
/// A chunk's size and alignment: a page of the page pool.
pub(super) const CHUNK_BYTES: usize = 4096;
/// What glibc's `malloc` puts before a block (`grow` of the registry).
const ALLOCATOR_HEADER: usize = 16;
/// Cell sizes are rounded up to this.
const GRAIN: usize = 8;
/// One class per multiple of `GRAIN` up to `MAX_CELL`.
const CLASSES: usize = MAX_CELL / GRAIN;

/// The bytes of a chunk one bit of the bound bitmap stands for (see "Bound
/// cells" in the module docs): no cell from a chunk is smaller.
pub(super) const GRANULE: usize = 32;
/// Bits of a chunk's bound bitmap: one per granule.
const BOUND_BITS: usize = CHUNK_BYTES / GRANULE;
/// Words of a chunk's bound bitmap: two (`Registry::bind` tests "the
/// other word" as `word ^ 1`).
const BOUND_WORDS: usize = BOUND_BITS / 64;
const _: () = assert!(BOUND_WORDS == 2);

/// Whether a cell of layout `layout` comes from a chunk (else a `Box`).
pub(super) const fn fits(layout: Layout) -> bool {
    !cfg!(loom)
        && !cfg!(miri)
        && !cfg!(coil_box_tasks)
        && !cfg!(fuzzing)
        && layout.size() <= MAX_CELL
        && layout.align() <= GRAIN
        && layout.size() >= GRANULE
}

/// The head of a chunk; the slots follow it.
#[repr(C)]
struct Chunk {
    /// Slots not freed yet, unused ones included (see the module docs).
    live: AtomicUsize,
    /// The id of the task in the first slot: the slot at index `i` holds the
    /// task `first_id + i` (see "Task ids" in the module docs). Written at
    /// creation, never changed.
    first_id: u64,
    /// The runtime of every task in the chunk (see "The runtime" in the
    /// module docs): `Some` for every chunk of task cells, `None` only in
    /// the unit tests below. Written at creation, dropped when the chunk is
    /// freed, never changed in between.
    owner: Option<Arc<Shared>>,
    /// The size of a slot, written at creation, never changed: how a bound
    /// cell's address is found back from its bit ("Bound cells").
    stride: u16,
    /// Cells freed by the owner's loop and not yet taken off `live` ("Loop
    /// frees" in the module docs). The owner's loop thread only.
    loop_freed: Cell<u16>,
    /// The chunk's index in its runtime's [`Registry`] while a cell of it
    /// is bound (any bit of `bound` set); meaningless otherwise. The
    /// owner's loop thread only.
    registered_at: Cell<u32>,
    /// The bound bitmap: bit `i` is set while the cell that starts in the
    /// `i`th [`GRANULE`] of the chunk is in its runtime's owned list. The
    /// owner's loop thread only.
    bound: [Cell<u64>; BOUND_WORDS],
}

// The head is six words: W7's 64-byte cells fill a chunk (63 of them in
// 4 096 − 48 bytes); a head past eight words would cost them a slot.
const _: () = assert!(size_of::<Chunk>() == 48);

/// One class's current chunk on this thread: the slots not handed out yet
/// are `next..end`; `owner` is the chunk's runtime, as an address to
/// compare with (null for none), read without touching the chunk. While
/// slots are left (`next < end`) the address cannot be another runtime's:
/// those unused slots keep the chunk allocated, and it holds that `Shared`
/// alive. A full bump's chunk may be freed already (its cells all gone),
/// and with it that `Shared`, whose address a new runtime may then reuse:
/// a full bump is therefore never kept for a match (`allocate` tests
/// `next == end` first), and retiring it on a match (`retire_owner`) gives
/// up no slot and reads nothing of the chunk.
#[derive(Clone, Copy)]
struct Bump {
    chunk: *mut Chunk,
    next: *mut u8,
    end: *mut u8,
    owner: *const Shared,
}

impl Bump {
    const EMPTY: Bump = Bump {
        chunk: ptr::null_mut(),
        next: ptr::null_mut(),
        end: ptr::null_mut(),
        owner: ptr::null(),
    };

    /// Gives up the slots of the current chunk not handed out yet (which may
    /// free it) and leaves the bump empty.
    fn retire(&mut self, stride: usize) {
        let Bump {
            chunk, next, end, ..
        } = std::mem::replace(self, Bump::EMPTY);
        let unused = (end as usize - next as usize) / stride;
        if unused > 0 {
            // SAFETY: the unused slots were counted at creation and are
            // this thread's (they keep the chunk allocated); it hands out
            // none of them any more.
            unsafe { release(chunk, unused) };
        }
    }
}

/// The address a bump compares owners by.
#[inline(always)]
fn owner_addr(owner: Option<&Arc<Shared>>) -> *const Shared {
    owner.map_or(ptr::null(), Arc::as_ptr)
}

/// This thread's current chunks, one per class.
struct Local {
    classes: [Bump; CLASSES],
}

thread_local! {
    static LOCAL: UnsafeCell<Local> = const {
        UnsafeCell::new(Local { classes: [Bump::EMPTY; CLASSES] })
    };
}

/// The class of a cell of `size` bytes (`fits` holds) and its slot's stride.
#[inline(always)]
fn class_of(size: usize) -> (usize, usize) {
    let rounded = size.div_ceil(GRAIN) * GRAIN;
    (rounded / GRAIN - 1, rounded)
}

/// A cell for `layout` (at most `MAX_CELL` bytes, aligned to at most 8:
/// what `fits` checks) in a chunk of `owner` ([`owner_of`]): uninitialised
/// memory of that size and alignment, to be given back with [`free`].
/// `owner` is `Some` for every task cell (`None` in the unit tests only).
#[inline]
pub(super) fn allocate(layout: Layout, owner: Option<&Arc<Shared>>) -> NonNull<u8> {
    debug_assert!(layout.size() <= MAX_CELL && layout.align() <= GRAIN);
    let (class, stride) = class_of(layout.size());
    let from_local = LOCAL.try_with(|local| {
        // The thread_local is touched only by this thread, inside this
        // closure, `retire_owner` and `Local::drop`; none re-enters another (a
        // chunk freed by `Bump::retire` drops a `Shared`, which holds no task).
        // SAFETY: so this is the one `&mut` to it (above).
        let bump = unsafe { &mut (*local.get()).classes[class] };
        if bump.next == bump.end || bump.owner != owner_addr(owner) {
            *bump = next_chunk(bump, stride, owner);
        }
        // SAFETY: `next < end`: the slot lies in the chunk, `stride` bytes
        // long, and the next one (or `end`) is `stride` further on.
        unsafe { take_slot(&mut bump.next, stride) }
    });
    match from_local {
        Ok(cell) => cell,
        // The thread is exiting and its chunks are gone: a chunk of one.
        Err(_) => {
            let mut one = new_chunk(stride, 1, owner);
            // SAFETY: the new chunk has exactly one slot, at `one.next`.
            unsafe { take_slot(&mut one.next, stride) }
        }
    }
}

/// Moves `next` past the slot it points to and returns that slot.
///
/// # Safety
/// `*next` is an unused slot of `stride` bytes of a chunk.
#[inline(always)]
unsafe fn take_slot(next: &mut *mut u8, stride: usize) -> NonNull<u8> {
    let slot = *next;
    // SAFETY: the caller's promise: `stride` further is still in (or one past
    // the end of) the chunk; a slot in an allocation is never null.
    unsafe {
        *next = slot.add(stride);
        NonNull::new_unchecked(slot)
    }
}

/// How many slots of `stride` bytes a chunk holds.
fn slots_for(stride: usize) -> usize {
    (CHUNK_BYTES - size_of::<Chunk>()) / stride
}

/// The slow path of `allocate`: the current chunk is full, or it belongs to
/// another runtime (a thread whose loop changed, a test's thread running
/// one runtime after another): it is retired and a fresh one of `owner`
/// takes its place.
#[cold]
#[inline(never)]
fn next_chunk(bump: &mut Bump, stride: usize, owner: Option<&Arc<Shared>>) -> Bump {
    bump.retire(stride);
    new_chunk(stride, slots_for(stride), owner)
}

/// A fresh chunk of `owner` with `slots` slots of `stride` bytes, all
/// counted live.
#[cold]
fn new_chunk(stride: usize, slots: usize, owner: Option<&Arc<Shared>>) -> Bump {
    let first_id = crate::task::reserve_task_ids(slots as u64);
    let base = pages::take().as_ptr();
    let chunk = base.cast::<Chunk>();
    // SAFETY: fresh allocation, aligned for a Chunk and large enough.
    unsafe {
        chunk.write(Chunk {
            live: AtomicUsize::new(slots),
            first_id,
            owner: owner.cloned(),
            stride: stride as u16,
            loop_freed: Cell::new(0),
            registered_at: Cell::new(0),
            bound: [const { Cell::new(0) }; BOUND_WORDS],
        });
    }
    #[cfg(test)]
    tests::CHUNKS[class_of(stride).0].fetch_add(1, Ordering::Relaxed);
    // SAFETY: `slots` slots fit after the header (`slots_for`, or one).
    let (next, end) = unsafe {
        let next = base.add(size_of::<Chunk>());
        (next, next.add(slots * stride))
    };
    Bump {
        chunk,
        next,
        end,
        owner: owner_addr(owner),
    }
}

// The largest cell fits a chunk at least once.
const _: () = assert!(size_of::<Chunk>() + MAX_CELL <= CHUNK_BYTES);

/// The task id of the cell `cell` of layout `layout` (the one it was
/// allocated with): its chunk's `first_id` plus its slot's index.
///
/// # Safety
/// `cell` came from [`allocate`] with `layout` and is not freed yet.
#[inline]
pub(super) unsafe fn id_of(cell: NonNull<u8>, layout: Layout) -> u64 {
    let (_, stride) = class_of(layout.size());
    let addr = cell.as_ptr().addr();
    let chunk = chunk_of(cell);
    let index = (addr - chunk.addr() - size_of::<Chunk>()) / stride;
    // SAFETY: the caller's promise: the cell is counted in `live`, so its
    // chunk is allocated; `first_id` is written before any slot is handed
    // out and never changed.
    unsafe { (*chunk).first_id + index as u64 }
}

/// The runtime the cell `cell` was allocated for: its chunk's `owner`.
///
/// # Safety
/// `cell` came from [`allocate`] with `Some` owner and is not freed yet;
/// the returned reference is used only while a slot of the chunk is (see
/// "The runtime" in the module docs).
#[inline(always)]
pub(super) unsafe fn owner_of<'a>(cell: NonNull<u8>) -> &'a Arc<Shared> {
    let chunk = chunk_of(cell);
    // `owner` is written before any slot is handed out and dropped only when
    // `live` reaches zero; a chunk's cells all share it (`allocate` retires
    // a chunk of another runtime), and a task cell is allocated with one.
    // SAFETY: the cell is counted in `live` (caller's promise), so the chunk
    // is allocated and its `owner` alive, unchanged and `Some` (above).
    unsafe { (*chunk).owner.as_ref().unwrap_unchecked() }
}

/// Retires this thread's current chunks of `owner` (a runtime being
/// dropped on this thread): their slots not handed out yet are given up, so
/// that a chunk, and the `Shared` it holds, lives only as long as its
/// tasks. Chunks of other runtimes, and other threads' chunks, are left.
pub(crate) fn retire_owner(owner: &Arc<Shared>) {
    let addr = Arc::as_ptr(owner);
    let _ = LOCAL.try_with(|local| {
        // SAFETY: as in `allocate`: the one `&mut` to this thread's cache.
        let classes = unsafe { &mut (*local.get()).classes };
        for (class, bump) in classes.iter_mut().enumerate() {
            if bump.owner == addr {
                bump.retire((class + 1) * GRAIN);
            }
        }
    });
}

/// Gives back a cell from [`allocate`]; any thread. Its contents must have
/// been dropped already.
///
/// # Safety
/// `cell` came from `allocate` and is not used afterwards.
#[inline]
pub(super) unsafe fn free(cell: NonNull<u8>) {
    let chunk = chunk_of(cell);
    let pended = crate::rt::with_core(|core| {
        let core = core?;
        // SAFETY: the cell is counted in `live` (caller's promise), so the
        // chunk is allocated; `owner` is written before any slot is handed
        // out and never changed.
        let owner = unsafe { (*chunk).owner.as_ref() }?;
        if !Arc::ptr_eq(owner, &core.shared) {
            return None;
        }
        // SAFETY: this thread runs the owner's loop ("Loop frees"), and the
        // cell, counted in `live`, keeps the chunk allocated.
        unsafe { core.loop_frees.pend(chunk) };
        Some(())
    });
    if pended.is_none() {
        // SAFETY: the caller's promise: the cell is counted in `live`,
        // which keeps the chunk allocated until this decrement.
        unsafe { release(chunk, 1) }
    }
}

/// The chunks whose cells a loop freed and has not yet taken off their
/// `live` ("Loop frees" in the module docs). One per `Core`, on its thread.
#[derive(Default)]
pub(crate) struct LoopFrees {
    chunks: RefCell<Vec<NonNull<Chunk>>>,
}

/// A loop flushes its frees when this many chunks are listed.
const LOOP_FREES_MAX: usize = 64;

impl LoopFrees {
    /// Counts one freed cell of `chunk`, listing the chunk if it is its
    /// first.
    ///
    /// # Safety
    /// This thread runs the loop of `chunk`'s owner, whose `Core` holds
    /// `self`; the freed cell was counted in `live` (so the chunk is
    /// allocated) and is not used again.
    #[inline]
    unsafe fn pend(&self, chunk: *mut Chunk) {
        // SAFETY: the caller's promise: the owner's loop thread, the only
        // one to touch `loop_freed`; the chunk is allocated.
        let counted = unsafe { &(*chunk).loop_freed };
        let n = counted.get();
        counted.set(n + 1);
        if n == 0 {
            self.list(chunk);
        }
    }

    /// Lists `chunk`, flushing first when the list is full.
    #[cold]
    #[inline(never)]
    fn list(&self, chunk: *mut Chunk) {
        let full = {
            let mut chunks = self.chunks.borrow_mut();
            // SAFETY: an allocated chunk (`pend`'s caller) is not null.
            chunks.push(unsafe { NonNull::new_unchecked(chunk) });
            chunks.len() > LOOP_FREES_MAX
        };
        if full {
            self.flush();
        }
    }

    /// Takes every listed chunk's count off its `live` (which may free it)
    /// and empties the list. On the loop's thread (its `Core` holds `self`).
    pub(crate) fn flush(&self) {
        // One chunk at a time, the list not borrowed while a chunk is
        // released (freeing one drops a `Shared`); an empty list costs a
        // borrow and a `pop` (the loop flushes before every park).
        loop {
            // (A `while let` would hold the borrow through the body.)
            let Some(chunk) = self.chunks.borrow_mut().pop() else {
                return;
            };
            let chunk = chunk.as_ptr();
            // SAFETY: listed, so its count is not zero and keeps it
            // allocated ("Never early"); `loop_freed` is this thread's.
            let n = unsafe { (*chunk).loop_freed.replace(0) };
            // SAFETY: the `n` cells were freed by this loop and are still
            // counted in `live`; nobody uses them; taken off once (the
            // count was zeroed above, and the chunk left the list).
            unsafe { release(chunk, n as usize) };
        }
    }
}

impl Drop for LoopFrees {
    fn drop(&mut self) {
        self.flush();
    }
}

impl std::fmt::Debug for LoopFrees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopFrees")
            .field("chunks", &self.chunks.borrow().len())
            .finish()
    }
}

/// The chunk of a cell from [`allocate`]: the cell's address rounded down
/// (chunks are aligned to it). Only a pointer: whether the chunk is alive is the
/// caller's to know.
#[inline(always)]
fn chunk_of(cell: NonNull<u8>) -> *mut Chunk {
    cell.as_ptr()
        .map_addr(|a| a & !(CHUNK_BYTES - 1))
        .cast::<Chunk>()
}

/// The word of a chunk's bound bitmap and the bit in it that stand for the
/// cell `cell` (the granule it starts in: "Bound cells" in the module docs).
#[inline(always)]
fn bound_bit(cell: NonNull<u8>) -> (usize, u64) {
    let granule = (cell.as_ptr().addr() & (CHUNK_BYTES - 1)) / GRANULE;
    (granule / 64, 1 << (granule % 64))
}

/// The cell that starts in the granule `granule` of `chunk`, a chunk with a
/// cell starting there (its bound bit is set). The one division of the
/// bound cells, on the walks only: the cell is the last one starting
/// before the granule's end (slots are at least a granule apart).
///
/// # Safety
/// `chunk` is allocated (a bound cell of it keeps it so).
unsafe fn cell_in(chunk: *mut Chunk, granule: usize) -> NonNull<u8> {
    let head = size_of::<Chunk>();
    // SAFETY: the caller's promise; `stride` is written at creation only.
    let stride = unsafe { (*chunk).stride } as usize;
    let slot = (granule * GRANULE + GRANULE - 1 - head) / stride;
    // SAFETY: the slot is one of the chunk's (its cell starts in the
    // granule, inside the chunk); a pointer into an allocation is not null.
    unsafe { NonNull::new_unchecked(chunk.cast::<u8>().add(head + slot * stride)) }
}

/// The bound bitmap of `chunk`.
///
/// # Safety
/// `chunk` is allocated for as long as the borrow is used, and the caller
/// is its owner's loop thread (the bitmap is that thread's: "Bound
/// cells" in the module docs).
#[inline(always)]
unsafe fn bound_of<'a>(chunk: *mut Chunk) -> &'a [Cell<u64>; BOUND_WORDS] {
    // SAFETY: the caller's promise; only the field is borrowed, not the
    // head (`live` is written by other threads, atomically, meanwhile).
    unsafe { &*ptr::addr_of!((*chunk).bound) }
}

/// The chunks of one runtime with at least one bound cell, each at the
/// index its head records ("Bound cells" in the module docs): the slab
/// half of a runtime's owned list (`task/list.rs`). It belongs to the
/// runtime's loop thread (neither `Send` nor `Sync`).
#[derive(Default)]
pub(in crate::task) struct Registry {
    chunks: RefCell<Vec<NonNull<Chunk>>>,
}

/// Makes room in a full registry: its buffer doubles, in sizes that glibc
/// packs without gaps (`ALLOCATOR_HEADER` short of a multiple of
/// [`CHUNK_BYTES`]). A `Vec`'s own doubling, interleaved with chunk
/// allocations when chunks came from `malloc`, cost W7 ~2 B a task (about
/// 200 KiB of gaps between chunks for 1 786 chunks, with glibc).
#[cold]
#[inline(never)]
fn grow(chunks: &mut Vec<NonNull<Chunk>>) {
    let word = size_of::<NonNull<Chunk>>();
    let bytes = (chunks.capacity() * word + ALLOCATOR_HEADER) * 2;
    let entries = (bytes.max(CHUNK_BYTES) - ALLOCATOR_HEADER) / word;
    chunks.reserve_exact(entries - chunks.len());
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("chunks", &self.chunks.borrow().len())
            .finish()
    }
}

impl Registry {
    /// Records the cell `cell` as bound: its bit is set, and its chunk
    /// registered if it had no bound cell. O(1); allocates only when the
    /// registry's `Vec` grows.
    ///
    /// # Safety
    /// `cell` came from [`allocate`], is not freed and not bound; the
    /// caller holds a reference to its task until it unbinds it (by
    /// [`Registry::unbind`] or [`Registry::pop`]), which keeps the chunk
    /// allocated; every cell bound in this registry belongs to one runtime
    /// (its chunk's owner) and this is that runtime's loop thread.
    #[inline(always)]
    pub(in crate::task) unsafe fn bind(&self, cell: NonNull<u8>) {
        let chunk = chunk_of(cell);
        let (word, bit) = bound_bit(cell);
        // SAFETY: the cell is alive, so its chunk is; this is its owner's
        // loop thread (the caller's promise).
        let bound = unsafe { bound_of(chunk) };
        let old = bound[word].get();
        debug_assert!(old & bit == 0, "a cell bound twice to its runtime");
        bound[word].set(old | bit);
        // The other word is read only when this one was empty: one test on
        // the common path (W1: a spawn).
        if old == 0 && bound[word ^ 1].get() == 0 {
            // SAFETY: the chunk is alive and this thread's (above); it had
            // no bound cell, so it is not registered.
            unsafe { self.enter(chunk) };
        }
    }

    /// Records the bound cell `cell` as no longer bound: its bit is
    /// cleared, and its chunk leaves the registry if that was its last
    /// bound cell. O(1), allocates nothing.
    ///
    /// # Safety
    /// `cell` is bound in this registry ([`Registry::bind`]'s promises
    /// hold: it is alive, this is its loop thread).
    #[inline(always)]
    pub(in crate::task) unsafe fn unbind(&self, cell: NonNull<u8>) {
        let chunk = chunk_of(cell);
        let (word, bit) = bound_bit(cell);
        // SAFETY: as in `bind`: a bound cell is alive.
        let bound = unsafe { bound_of(chunk) };
        let left = bound[word].get() & !bit;
        debug_assert!(
            left != bound[word].get(),
            "a cell unbound that is not bound"
        );
        bound[word].set(left);
        if left == 0 && bound[word ^ 1].get() == 0 {
            // SAFETY: the chunk is alive (the caller's cell) and had a
            // bound cell until now, so it is registered here.
            unsafe { self.leave(chunk) };
        }
    }

    /// `chunk`, alive, this thread's and not registered, gets its first
    /// bound cell: it joins the registry at the end.
    ///
    /// # Safety
    /// As stated: the caller's bound cell keeps the chunk alive.
    unsafe fn enter(&self, chunk: *mut Chunk) {
        let mut chunks = self.chunks.borrow_mut();
        if chunks.len() == chunks.capacity() {
            grow(&mut chunks);
        }
        let at = u32::try_from(chunks.len()).expect("over 2^32 chunks of tasks bound");
        // SAFETY: the chunk is alive and the index this thread's (the
        // caller's promise).
        unsafe { (*chunk).registered_at.set(at) };
        // SAFETY: a chunk pointer is never null (it is a cell's, rounded
        // down within its allocation).
        chunks.push(unsafe { NonNull::new_unchecked(chunk) });
    }

    /// `chunk`, registered, lost its last bound cell: it leaves the
    /// registry; the chunk that was last takes its place and its index.
    ///
    /// # Safety
    /// `chunk` is alive and registered here; this is its loop thread.
    unsafe fn leave(&self, chunk: *mut Chunk) {
        let mut chunks = self.chunks.borrow_mut();
        // SAFETY: the caller's promise: alive, this thread's index.
        let at = unsafe { (*chunk).registered_at.get() } as usize;
        debug_assert_eq!(
            chunks[at].as_ptr(),
            chunk,
            "a chunk's registry index is stale"
        );
        chunks.swap_remove(at);
        if let Some(moved) = chunks.get(at) {
            // SAFETY: a registered chunk has a bound cell, so it is alive
            // (module docs); its index is this thread's.
            unsafe { (*moved.as_ptr()).registered_at.set(at as u32) };
        }
    }

    /// Unbinds a bound cell and returns it (the lowest of the last
    /// registered chunk), or `None` if none is bound. O(1). The caller gets
    /// back the reference its binder held ([`Registry::bind`]).
    pub(in crate::task) fn pop(&self) -> Option<NonNull<u8>> {
        let chunk = self.chunks.borrow().last()?.as_ptr();
        // SAFETY: a registered chunk has a bound cell, so it is alive; the
        // registry and its chunks' bitmaps are its loop thread's, this one
        // (`bind`'s contract).
        let bound = unsafe { bound_of(chunk) };
        let (word, bits) = bound
            .iter()
            .enumerate()
            .map(|(i, w)| (i, w.get()))
            .find(|&(_, bits)| bits != 0)
            .expect("a registered chunk has a bound cell");
        let granule = word * 64 + bits.trailing_zeros() as usize;
        // SAFETY: that granule's bit is set: a bound cell starts there, and
        // keeps the chunk alive.
        let cell = unsafe { cell_in(chunk, granule) };
        // SAFETY: the cell is bound here (its bit), alive, this thread's.
        unsafe { self.unbind(cell) };
        Some(cell)
    }

    /// Calls `f` with every bound cell, chunk by chunk in registry order,
    /// lowest address first within a chunk. O(bound cells + registered
    /// chunks). `f` must not bind or unbind (the registry is borrowed
    /// meanwhile: that would panic).
    pub(in crate::task) fn for_each(&self, mut f: impl FnMut(NonNull<u8>)) {
        for &chunk in self.chunks.borrow().iter() {
            // SAFETY: as in `pop`: registered, so alive, and this thread's.
            let bound = unsafe { bound_of(chunk.as_ptr()) };
            for (word, w) in bound.iter().enumerate() {
                let mut bits = w.get();
                while bits != 0 {
                    let granule = word * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    // SAFETY: the bit is set: a bound cell starts there.
                    f(unsafe { cell_in(chunk.as_ptr(), granule) });
                }
            }
        }
    }
}

/// Takes `n` off the chunk's count, freeing it when that was the rest.
///
/// # Safety
/// The caller gives up `n` counted slots of `chunk` and uses none of them
/// afterwards.
#[inline]
unsafe fn release(chunk: *mut Chunk, n: usize) {
    // SAFETY: the caller's slots keep the chunk allocated until this decrement.
    let before = unsafe { (*chunk).live.fetch_sub(n, Ordering::Release) };
    if before == n {
        fence(Ordering::Acquire);
        // SAFETY: the count is zero: no slot is in use and no thread holds the
        // chunk as its current one; the fence orders every earlier use first.
        // The owner is moved out before the memory goes, and dropped after.
        let owner = unsafe {
            #[cfg(test)]
            tests::CHUNKS[class_of((*chunk).stride as usize).0].fetch_sub(1, Ordering::Relaxed);
            let owner = ptr::addr_of_mut!((*chunk).owner).read();
            pages::give(NonNull::new_unchecked(chunk.cast()));
            owner
        };
        drop(owner);
    }
}

impl Drop for Local {
    /// Thread exit: give up the slots never handed out. A full chunk has
    /// none and may be freed already (its pointer is not read then).
    fn drop(&mut self) {
        for (class, bump) in self.classes.iter_mut().enumerate() {
            bump.retire((class + 1) * GRAIN);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The slab's invariants, checked by chunk counts per class (each test
    //! uses a class of its own, which no other lib test's tasks fall into)
    //! and, in the miri tier, by Miri's leak and use-after-free checks.

    use super::*;
    use std::sync::mpsc;

    /// For tests elsewhere (`rt`): chunks of the class of `size`-byte cells
    /// allocated and not yet freed, and how many such cells a chunk holds.
    pub(crate) fn chunks_and_slots(size: usize) -> (usize, usize) {
        (chunks(size), slots_for(class_of(size).1))
    }

    /// Chunks allocated and not yet freed, per class.
    pub(super) static CHUNKS: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];

    fn chunks(size: usize) -> usize {
        CHUNKS[class_of(size).0].load(Ordering::Relaxed)
    }

    /// A cell pointer that may cross threads (the test's own promise).
    struct SendCell(NonNull<u8>);
    // SAFETY: the cell is plain memory owned by whoever holds this.
    unsafe impl Send for SendCell {}

    /// Allocates `n` cells of `size` bytes on a thread that then exits,
    /// writing each one whole; returns them.
    fn cells_from_exited_thread(size: usize, n: usize) -> Vec<SendCell> {
        let layout = Layout::from_size_align(size, 8).unwrap();
        std::thread::spawn(move || {
            (0..n)
                .map(|i| {
                    let cell = allocate(layout, None);
                    // SAFETY: a fresh cell of `size` bytes.
                    unsafe { cell.as_ptr().write_bytes(i as u8, size) };
                    SendCell(cell)
                })
                .collect()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn cells_freed_on_another_thread_after_the_owner_exited() {
        let size = 504;
        let n = slots_for(size) + 2;
        let cells = cells_from_exited_thread(size, n);
        assert_eq!(chunks(size), 2, "two chunks hold the cells");
        for (i, c) in cells.into_iter().enumerate() {
            // SAFETY: the bytes were written by the other thread, which exited.
            assert_eq!(unsafe { *c.0.as_ptr().add(size - 1) }, i as u8);
            // SAFETY: from `allocate`, not used again.
            unsafe { free(c.0) };
        }
        assert_eq!(chunks(size), 0, "the last free of each chunk frees it");
    }

    #[test]
    fn the_owner_exit_frees_a_chunk_whose_cells_are_gone() {
        let size = 496;
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let owner = std::thread::spawn(move || {
            let layout = Layout::from_size_align(size, 8).unwrap();
            tx.send(SendCell(allocate(layout, None))).unwrap();
            // Keep the chunk current until the other thread freed the cell.
            done_rx.recv().unwrap();
        });
        let cell = rx.recv().unwrap();
        // SAFETY: from `allocate`, not used again.
        unsafe { free(cell.0) };
        assert_eq!(chunks(size), 1, "the owner still bumps from it");
        done_tx.send(()).unwrap();
        owner.join().unwrap();
        assert_eq!(chunks(size), 0, "thread exit gave up the unused slots");
    }

    #[test]
    fn a_thread_exiting_frees_what_it_takes_after_its_cache_is_gone() {
        struct AtExit;
        impl Drop for AtExit {
            fn drop(&mut self) {
                // Runs after LOCAL's destructor (registered later, destroyed
                // earlier), where `allocate` falls back to a chunk of one.
                let cell = allocate(Layout::from_size_align(488, 8).unwrap(), None);
                // SAFETY: from `allocate`, not used again.
                unsafe { free(cell) };
            }
        }
        thread_local! { static AT_EXIT: AtExit = const { AtExit }; }
        std::thread::spawn(|| {
            AT_EXIT.with(|_| {});
            let cell = allocate(Layout::from_size_align(488, 8).unwrap(), None);
            // SAFETY: from `allocate`, not used again.
            unsafe { free(cell) };
        })
        .join()
        .unwrap();
        assert_eq!(chunks(488), 0);
    }

    #[test]
    fn ids_follow_slots_and_chunks_never_share_one() {
        let size = 480;
        let layout = Layout::from_size_align(size, 8).unwrap();
        let n = 2 * slots_for(size) + 1;
        let (ids, more) = std::thread::spawn(move || {
            let cells: Vec<_> = (0..n).map(|_| allocate(layout, None)).collect();
            // SAFETY: each cell came from `allocate` with `layout`, not freed.
            let ids: Vec<u64> = cells.iter().map(|&c| unsafe { id_of(c, layout) }).collect();
            // A boxed task's id, taken after the chunks reserved theirs.
            let more = crate::task::reserve_task_ids(1);
            for c in cells {
                // SAFETY: from `allocate`, not used again.
                unsafe { free(c) };
            }
            (ids, more)
        })
        .join()
        .unwrap();
        // Within a chunk, allocation order is id order, one apart.
        for chunk in ids.chunks(slots_for(size)) {
            assert!(chunk.windows(2).all(|w| w[1] == w[0] + 1), "{chunk:?}");
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), n, "an id was given twice: {ids:?}");
        assert!(sorted[0] >= 1 && !sorted.contains(&more));
        assert_eq!(chunks(size), 0);
    }

    /// A runtime's half that other threads reach (the owner of a chunk),
    /// on an epoll driver of its own.
    fn shared() -> Arc<Shared> {
        let config = coil_arch::Config::default();
        let driver = coil_arch::Driver::new(coil_arch::DriverChoice::Epoll, &config).unwrap();
        Arc::new(Shared::new(driver.unparker(), 0))
    }

    /// A chunk's owner is every cell's runtime: a thread that allocates for
    /// two runtimes in turn gets a chunk per runtime (each switch retires
    /// the chunk before), a chunk's `Shared` is dropped with its last cell,
    /// and `retire_owner` gives up a current chunk of its runtime.
    #[test]
    fn cells_of_two_runtimes_on_one_thread_take_chunks_of_their_own() {
        std::thread::spawn(|| {
            let layout = Layout::from_size_align(448, 8).unwrap();
            let (a, b) = (shared(), shared());
            let mut cells = Vec::new();
            for i in 0..6 {
                let owner = if i % 2 == 0 { &a } else { &b };
                let cell = allocate(layout, Some(owner));
                // SAFETY: from `allocate`, not freed.
                let got = unsafe { owner_of(cell) };
                assert!(Arc::ptr_eq(got, owner), "cell {i} has another runtime");
                cells.push(cell);
            }
            // Each switch retired the chunk before: five are held by their
            // one cell only, the sixth is b's current one.
            assert_eq!(chunks(448), 6);
            let weak = Arc::downgrade(&a);
            drop(a);
            for (i, c) in cells.into_iter().enumerate() {
                // SAFETY: from `allocate`, not used again.
                unsafe { free(c) };
                let alive = weak.upgrade().is_some();
                assert_eq!(alive, i < 4, "a's Shared after freeing cell {i}");
            }
            assert_eq!(chunks(448), 1, "b's current chunk");
            let weak = Arc::downgrade(&b);
            retire_owner(&b);
            drop(b);
            assert_eq!(chunks(448), 0, "retire_owner freed b's current chunk");
            assert!(weak.upgrade().is_none(), "and with it b's Shared");
        })
        .join()
        .unwrap();
    }

    /// `n` cells of `size` bytes from this thread's chunks, none bound.
    fn cells(size: usize, n: usize) -> Vec<NonNull<u8>> {
        let layout = Layout::from_size_align(size, 8).unwrap();
        (0..n).map(|_| allocate(layout, None)).collect()
    }

    /// The cells `registry` holds, by `for_each`, sorted, each once.
    fn walked(registry: &Registry) -> Vec<NonNull<u8>> {
        let mut got = Vec::new();
        registry.for_each(|c| got.push(c));
        got.sort();
        let n = got.len();
        got.dedup();
        assert_eq!(got.len(), n, "for_each gave a cell twice");
        got
    }

    /// Gives back the cells, and the thread's current chunks, so that every
    /// chunk of them is freed.
    fn free_all(cells: Vec<NonNull<u8>>, size: usize) {
        for c in cells {
            // SAFETY: from `allocate`, not bound, not used again.
            unsafe { free(c) };
        }
        let (class, stride) = class_of(size);
        let _ = LOCAL.try_with(|local| {
            // SAFETY: the one `&mut` to this thread's cache, as in `allocate`.
            unsafe { (*local.get()).classes[class].retire(stride) };
        });
    }

    /// Every cell of three chunks bound: the walk finds each cell back from
    /// its bit (the smallest class, one cell per granule, the next one,
    /// whose bits reach the bitmap's second word too, and a large one),
    /// `pop` returns each once and empties the
    /// registry, and unbinding keeps a chunk registered exactly while a
    /// cell of it is bound.
    #[test]
    fn bound_cells_are_found_back_from_their_bits() {
        std::thread::spawn(|| {
            for size in [GRANULE, GRANULE + 8, 472] {
                let n = 2 * slots_for(size) + 3;
                let all = cells(size, n);
                let registry = Registry::default();
                for &c in &all {
                    // SAFETY: alive, not bound; one thread, one owner (none).
                    unsafe { registry.bind(c) };
                }
                let mut sorted = all.clone();
                sorted.sort();
                assert_eq!(walked(&registry), sorted, "size {size}");
                assert_eq!(registry.chunks.borrow().len(), 3);
                // Unbind the first chunk's cells: it leaves, the others stay.
                let first = slots_for(size);
                for &c in &all[..first] {
                    // SAFETY: bound above, alive.
                    unsafe { registry.unbind(c) };
                }
                assert_eq!(registry.chunks.borrow().len(), 2);
                let mut rest = all[first..].to_vec();
                rest.sort();
                assert_eq!(walked(&registry), rest);
                let mut popped = Vec::new();
                while let Some(c) = registry.pop() {
                    popped.push(c);
                }
                popped.sort();
                assert_eq!(popped, rest, "size {size}");
                assert!(registry.chunks.borrow().is_empty());
                free_all(all, size);
            }
            assert_eq!(chunks(472), 0);
        })
        .join()
        .unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
        ))]
        /// Random binds, unbinds and pops over the cells of a few chunks
        /// against a `HashSet` of bound cells: after each step the walk
        /// gives the set, and the registry holds exactly the chunks of
        /// bound cells, each at the index its head records.
        #[test]
        fn registry_matches_a_set_of_bound_cells(
            small in proptest::bool::ANY,
            ops in proptest::collection::vec(
                (0u8..4, 0usize..1000),
                1..if cfg!(miri) { 16 } else { 200 },
            ),
        ) {
            let size = if small { GRANULE } else { 464 };
            let result = std::thread::spawn(move || {
                let n = 2 * slots_for(size) + 1;
                let all = cells(size, n);
                let registry = Registry::default();
                let mut model = std::collections::HashSet::new();
                let mut check = Ok(());
                for (op, i) in ops {
                    let c = all[i % n];
                    match op {
                        0 | 1 if !model.contains(&c) => {
                            model.insert(c);
                            // SAFETY: alive, not bound (the model).
                            unsafe { registry.bind(c) };
                        }
                        0..=2 => {
                            if model.remove(&c) {
                                // SAFETY: bound (the model), alive.
                                unsafe { registry.unbind(c) };
                            }
                        }
                        _ => match registry.pop() {
                            Some(p) if model.remove(&p) => {}
                            None if model.is_empty() => {}
                            other => {
                                check = Err(format!("pop gave {other:?}, bound: {}", model.len()));
                                break;
                            }
                        },
                    }
                    let mut want: Vec<_> = model.iter().copied().collect();
                    want.sort();
                    let mut want_chunks: Vec<_> = want.iter().map(|&c| chunk_of(c)).collect();
                    want_chunks.dedup();
                    let mut got_chunks: Vec<_> =
                        registry.chunks.borrow().iter().map(|c| c.as_ptr()).collect();
                    for (at, &chunk) in got_chunks.iter().enumerate() {
                        // SAFETY: registered, so a cell of it is bound: alive.
                        let index = unsafe { (*chunk).registered_at.get() } as usize;
                        if index != at {
                            check = Err(format!("chunk at {at} records {index}"));
                        }
                    }
                    got_chunks.sort();
                    if walked(&registry) != want || got_chunks != want_chunks {
                        check = Err(format!("after op {op}: walk or chunks differ"));
                    }
                    if check.is_err() {
                        break;
                    }
                }
                while registry.pop().is_some() {}
                free_all(all, size);
                check
            })
            .join()
            .unwrap();
            proptest::prop_assert_eq!(result, Ok(()));
        }
    }

    /// "Loop frees": counted frees keep their chunk until a flush takes
    /// them off (*Never early*: not even when the chunk's last cell is
    /// freed at once, as by another thread, while it is listed), a flush
    /// frees each listed chunk once (*Listed while counted*: a chunk listed
    /// twice would be taken off twice, which Miri sees as a use after
    /// free), the list flushes itself past [`LOOP_FREES_MAX`] chunks and
    /// on drop (*Bounded*; Miri's leak check sees a chunk never flushed).
    /// Cells with no owner, pended directly: the loop's side of `free`.
    #[test]
    fn loop_frees_keep_their_chunks_until_flushed_and_free_each_once() {
        let size = 456;
        std::thread::spawn(move || {
            let k = slots_for(size);
            let frees = LoopFrees::default();
            let pend = |c: NonNull<u8>| {
                // SAFETY: from `allocate`, not used again; this thread's
                // `LoopFrees` (the loop's side of `free`).
                unsafe { frees.pend(chunk_of(c)) }
            };
            let a = cells(size, k);
            let mut b = cells(size, k);
            assert_eq!(chunks(size), 2);
            let last = b.pop().unwrap();
            a.into_iter().chain(b).for_each(pend);
            assert_eq!(chunks(size), 2, "pending frees keep their chunks");
            // SAFETY: from `allocate`, not used again.
            unsafe { free(last) };
            assert_eq!(chunks(size), 2, "the listed chunk outlives its last cell");
            frees.flush();
            assert_eq!(chunks(size), 0, "the flush freed both, once each");
            let many = cells(size, (LOOP_FREES_MAX + 2) * k);
            let mut many = many.into_iter();
            many.by_ref().take(LOOP_FREES_MAX * k).for_each(pend);
            assert_eq!(chunks(size), LOOP_FREES_MAX + 2, "64 listed, none flushed");
            many.for_each(pend);
            assert_eq!(chunks(size), 2, "the 65th listed flushed the list");
            drop(frees);
            assert_eq!(chunks(size), 0, "the drop flushed the rest");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn sizes_share_classes_and_strides_stay_aligned() {
        let on = !cfg!(loom) && !cfg!(miri) && !cfg!(coil_box_tasks) && !cfg!(fuzzing);
        assert_eq!(fits(Layout::new::<[u64; 64]>()), on);
        assert!(!fits(Layout::new::<[u64; 65]>()));
        assert!(!fits(Layout::from_size_align(32, 16).unwrap()));
        assert_eq!(class_of(81), class_of(88));
        assert_ne!(class_of(88), class_of(89));
        for size in (1..=MAX_CELL).step_by(7) {
            let (class, stride) = class_of(size);
            assert!(class < CLASSES && stride >= size && stride % GRAIN == 0);
            assert!(slots_for(stride) >= 1);
        }
    }
}
