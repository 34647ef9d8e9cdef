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
//! **Chunks.** A class takes its cells from a *chunk*: one allocation of
//! [`CHUNK_BYTES`] less [`ALLOCATOR_HEADER`], aligned to [`CHUNK_BYTES`],
//! holding a small header (`Chunk`) and `K` slots, a slot per cell. A cell
//! finds its chunk by rounding its address down to [`CHUNK_BYTES`]: no
//! pointer per cell, no lookup.
//!
//! ```text
//! CHUNK_BYTES-aligned: ┌ live (atomic) ┐ ┌ cell ┐ ┌ cell ┐ ... K cells, unused tail
//! ```
//!
//! A cell costs its size rounded to 8; the allocator would charge that plus
//! its own 8-byte header, rounded to 16, per task. The chunk is asked for
//! [`ALLOCATOR_HEADER`] bytes short of [`CHUNK_BYTES`] so that glibc, which
//! puts a 16-byte header before each block, lays chunks asked for one after
//! the other back to back, each on its own boundary (any other allocator
//! is correct too, it may only leave gaps). W7's bytes per parked task do
//! not grow.
//!
//! **Who owns what.** Each thread keeps, per class, its *current* chunk and
//! the bump range of the slots it has not handed out yet (a `thread_local`,
//! touched only by that thread: no lock, no atomic on allocation). A slot
//! handed out belongs to its task; the task is freed by whichever thread
//! drops its last reference (a `Waker` or a `Task` handle may be sent
//! anywhere), and freeing is the same on every thread: one atomic decrement
//! of the chunk's `live` count. Freed slots are **not** reused one by one
//! (that would need a free list other threads can push to): a chunk goes
//! back to the allocator as a whole when its count reaches zero, by the
//! thread that brought it there.
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
//! Under `cfg(loom)` every cell is a `Box` (loom runs its threads on one OS
//! thread, which a per-thread cache must not see as one thread), and under
//! `cfg(miri)` too: Miri (like ASan) sees allocations, so a use of a freed
//! cell in a chunk that is still alive would go unseen; boxed, every task's
//! use-after-free stays visible to the miri tier's task tests, while the
//! slab itself is checked there by its own unit tests below, which call it
//! directly. `--cfg coil_box_tasks` boxes every cell the same way for
//! AddressSanitizer (CI's asan tier), for the same reason.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering, fence};

/// The largest cell (bytes) taken from a chunk; larger cells are boxed.
pub(super) const MAX_CELL: usize = 512;
/// A chunk's alignment, and its size with the allocator's header.
pub(super) const CHUNK_BYTES: usize = 4096;
/// What glibc's `malloc` puts before a block (see the module docs).
const ALLOCATOR_HEADER: usize = 16;
/// The size a chunk is allocated with.
const CHUNK_ALLOC: usize = CHUNK_BYTES - ALLOCATOR_HEADER;
/// Cell sizes are rounded up to this.
const GRAIN: usize = 8;
/// One class per multiple of `GRAIN` up to `MAX_CELL`.
const CLASSES: usize = MAX_CELL / GRAIN;

/// Whether a cell of layout `layout` comes from a chunk (else a `Box`).
pub(super) const fn fits(layout: Layout) -> bool {
    !cfg!(loom)
        && !cfg!(miri)
        && !cfg!(coil_box_tasks)
        && layout.size() <= MAX_CELL
        && layout.align() <= GRAIN
        && layout.size() > 0
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
    /// The size of a slot, for the tests' chunk count per class only (the
    /// allocator and every free derive it or need none): the shipped head is
    /// two words (`live`, `first_id`).
    #[cfg(test)]
    stride: usize,
}

/// One class's current chunk on this thread: the slots not handed out yet
/// are `next..end`.
#[derive(Clone, Copy)]
struct Bump {
    chunk: *mut Chunk,
    next: *mut u8,
    end: *mut u8,
}

impl Bump {
    const EMPTY: Bump = Bump {
        chunk: ptr::null_mut(),
        next: ptr::null_mut(),
        end: ptr::null_mut(),
    };
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
/// what `fits` checks): uninitialised memory of that size and alignment,
/// to be given back with [`free`].
#[inline]
pub(super) fn allocate(layout: Layout) -> NonNull<u8> {
    debug_assert!(layout.size() <= MAX_CELL && layout.align() <= GRAIN);
    let (class, stride) = class_of(layout.size());
    let from_local = LOCAL.try_with(|local| {
        // SAFETY: the thread_local is touched only by this thread and only
        // inside this closure and `Local::drop`, neither of which re-enters
        // the other: the one `&mut` to it.
        let bump = unsafe { &mut (*local.get()).classes[class] };
        if bump.next == bump.end {
            *bump = new_chunk(stride, slots_for(stride));
        }
        // SAFETY: `next < end`: the slot lies in the chunk, `stride` bytes
        // long, and the next one (or `end`) is `stride` further on.
        unsafe { take_slot(&mut bump.next, stride) }
    });
    match from_local {
        Ok(cell) => cell,
        // The thread is exiting and its chunks are gone: a chunk of one.
        Err(_) => {
            let mut one = new_chunk(stride, 1);
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
    (CHUNK_ALLOC - size_of::<Chunk>()) / stride
}

/// A fresh chunk of `slots` slots of `stride` bytes, all counted live.
#[cold]
fn new_chunk(stride: usize, slots: usize) -> Bump {
    let layout = chunk_layout();
    let first_id = crate::task::reserve_task_ids(slots as u64);
    // SAFETY: the layout is not zero-sized.
    let base = unsafe { alloc(layout) };
    if base.is_null() {
        handle_alloc_error(layout);
    }
    let chunk = base.cast::<Chunk>();
    // SAFETY: fresh allocation, aligned for a Chunk and large enough.
    unsafe {
        chunk.write(Chunk {
            live: AtomicUsize::new(slots),
            first_id,
            #[cfg(test)]
            stride,
        });
    }
    #[cfg(test)]
    tests::CHUNKS[class_of(stride).0].fetch_add(1, Ordering::Relaxed);
    // SAFETY: `slots` slots fit after the header (`slots_for`, or one).
    let (next, end) = unsafe {
        let next = base.add(size_of::<Chunk>());
        (next, next.add(slots * stride))
    };
    Bump { chunk, next, end }
}

/// Every chunk's layout: aligned to `CHUNK_BYTES`, so a cell's chunk is its
/// address rounded down.
const fn chunk_layout() -> Layout {
    match Layout::from_size_align(CHUNK_ALLOC, CHUNK_BYTES) {
        Ok(l) => l,
        Err(_) => panic!("a task chunk's layout is invalid"),
    }
}

// The largest cell fits a chunk at least once.
const _: () = assert!(size_of::<Chunk>() + MAX_CELL <= CHUNK_ALLOC);

/// The task id of the cell `cell` of layout `layout` (the one it was
/// allocated with): its chunk's `first_id` plus its slot's index.
///
/// # Safety
/// `cell` came from [`allocate`] with `layout` and is not freed yet.
#[inline]
pub(super) unsafe fn id_of(cell: NonNull<u8>, layout: Layout) -> u64 {
    let (_, stride) = class_of(layout.size());
    let addr = cell.as_ptr().addr();
    let chunk = cell
        .as_ptr()
        .map_addr(|a| a & !(CHUNK_BYTES - 1))
        .cast::<Chunk>();
    let index = (addr - chunk.addr() - size_of::<Chunk>()) / stride;
    // SAFETY: the caller's promise: the cell is counted in `live`, so its
    // chunk is allocated; `first_id` is written before any slot is handed
    // out and never changed.
    unsafe { (*chunk).first_id + index as u64 }
}

/// Gives back a cell from [`allocate`]; any thread. Its contents must have
/// been dropped already.
///
/// # Safety
/// `cell` came from `allocate` and is not used afterwards.
#[inline]
pub(super) unsafe fn free(cell: NonNull<u8>) {
    // The chunk starts at the cell's address rounded down (`chunk_layout`).
    let chunk = cell
        .as_ptr()
        .map_addr(|a| a & !(CHUNK_BYTES - 1))
        .cast::<Chunk>();
    // SAFETY: the caller's promise: the cell is counted in `live`, which
    // keeps the chunk allocated until this decrement.
    unsafe { release(chunk, 1) }
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
        unsafe {
            #[cfg(test)]
            tests::CHUNKS[class_of((*chunk).stride).0].fetch_sub(1, Ordering::Relaxed);
            dealloc(chunk.cast(), chunk_layout());
        }
    }
}

impl Drop for Local {
    /// Thread exit: give up the slots never handed out. A full chunk has
    /// none and may be freed already (its pointer is not read then).
    fn drop(&mut self) {
        for (class, bump) in self.classes.iter_mut().enumerate() {
            let stride = (class + 1) * GRAIN;
            let Bump { chunk, next, end } = std::mem::replace(bump, Bump::EMPTY);
            let unused = (end as usize - next as usize) / stride;
            if unused > 0 {
                // SAFETY: the unused slots were counted at creation and are
                // ours (they keep the chunk allocated); this thread hands out
                // none of them any more.
                unsafe { release(chunk, unused) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The slab's invariants, checked by chunk counts per class (each test
    //! uses a class of its own, which no other lib test's tasks fall into)
    //! and, in the miri tier, by Miri's leak and use-after-free checks.

    use super::*;
    use std::sync::mpsc;

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
                    let cell = allocate(layout);
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
            tx.send(SendCell(allocate(layout))).unwrap();
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
                let cell = allocate(Layout::from_size_align(488, 8).unwrap());
                // SAFETY: from `allocate`, not used again.
                unsafe { free(cell) };
            }
        }
        thread_local! { static AT_EXIT: AtExit = const { AtExit }; }
        std::thread::spawn(|| {
            AT_EXIT.with(|_| {});
            let cell = allocate(Layout::from_size_align(488, 8).unwrap());
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
            let cells: Vec<_> = (0..n).map(|_| allocate(layout)).collect();
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

    #[test]
    fn sizes_share_classes_and_strides_stay_aligned() {
        let on = !cfg!(loom) && !cfg!(miri) && !cfg!(coil_box_tasks);
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
