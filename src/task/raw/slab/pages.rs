//! The memory under task chunks (`slab.rs`): pages the runtime maps
//! itself, so that a burst of spawns pays one `MADV_POPULATE_WRITE` per
//! [`STEP`] bytes instead of one page fault per chunk, and a
//! spawn-and-complete loop reuses freed chunks without a system call.
//!
//! # Why
//!
//! A chunk is one page. W1 (500 000 tasks spawned at once in a fresh
//! process) touches 5 000 fresh pages; a fault on first touch costs
//! ~1.5 us in this VM, where `MADV_POPULATE_WRITE` (Linux 5.14) makes a
//! run of pages resident for ~0.9 us each in one call. Measured with a
//! throwaway arena (issue 18, W1, 12 alternated runs, medians): chunks
//! from glibc's `malloc` 66.5 ns a task, from mapped memory faulted on
//! touch 64.8, from mapped memory populated 64 KiB at a time 60.5.
//!
//! # Design
//!
//! - **Regions.** Memory is mapped [`REGION`] bytes at a time (private,
//!   anonymous, read and write) and never unmapped: a region's address
//!   space stays reserved for the process's life; its pages go back to
//!   the kernel when they are not needed (*cold* chunks, below), so what
//!   stays resident is bounded, not what stays mapped.
//! - **One pool** for the process, behind a mutex: the current region's
//!   *carve range* (chunks never handed out yet, `next..end`, of which
//!   `next..populated` are resident), the *warm* chunks (given back, pages
//!   resident) and the *cold* ones (given back, pages returned with
//!   `MADV_DONTNEED`). A chunk holds ~60-100 tasks, and a thread takes and
//!   gives back chunks 16 at a time (its cache, below), so the lock is
//!   taken about once per thousand spawns in a burst; the tasks themselves
//!   never touch it.
//! - **Take:** a run of up to [`STEP`] bytes of chunks: warm ones (last
//!   given back first: their lines may still be cached), else carved ones
//!   (populated by the taker, after the lock), else cold ones (their pages
//!   fault in on first touch), else a new region's.
//! - **Per-thread cache** (`pages/cache.rs`): in front of the pool, each
//!   thread keeps up to 32 chunks; it takes runs of 16 from the pool and
//!   gives back 16 at a time, under one lock each, and populates a carved
//!   run after releasing the lock. Two loops spawning at once otherwise
//!   waited for each other's page population (W8a, `cache.rs`, "Why").
//!   The take and give below are the pool's, behind the cache.
//! - **Give:** the chunk becomes warm; when more than [`WARM_MAX`] are warm,
//!   all but [`WARM_KEEP`] of them go cold: sorted by address, each run of
//!   neighbours returned with one `madvise(MADV_DONTNEED)`. A drained burst
//!   (W1's 5 000 chunks) thus keeps at most [`WARM_MAX`] chunks resident,
//!   and returns the rest in a few dozen calls. With pages larger than a
//!   chunk (16 or 64 KiB kernels) only whole pages go cold; a chunk that
//!   shares its page with one in use stays warm, and the next cooling then
//!   waits for twice as many warm chunks as are left, so that a drain costs
//!   each give a bounded share of sorting, not the whole warm list.
//!
//! # Invariants
//!
//! 1. Every chunk the pool hands out is [`CHUNK_BYTES`]-aligned, lies whole
//!    inside a mapped region, and is not handed out again before it is
//!    given back: a chunk is in exactly one place at a time (handed out,
//!    warm, cold, or the carve range), and only the pool's lock moves it.
//!    A chunk in a thread's cache counts as handed out (to that thread).
//! 2. Nothing is assumed about a given-back chunk's bytes: a cold chunk
//!    reads as zeros, a warm one as its last user left it; the slab writes
//!    a new chunk's head before anything reads it.
//! 3. No user code runs under the lock (the lists are plain `Vec`s of
//!    addresses; their growth calls the global allocator, which is not
//!    expected to spawn tasks: if it did, that spawn would deadlock, not
//!    corrupt anything).
//! 4. The calls that change memory (`mmap`, `madvise`) are made on ranges
//!    the pool owns: a new region, a carve step inside the current one, a
//!    run of chunks that it holds and that nobody uses; or, to populate, on
//!    a carved run just handed to the calling thread (`cache.rs`,
//!    invariant 2), after the lock.
//!
//! **Fork.** The lock is a std `Mutex`, with no `pthread_atfork` handlers
//! (glibc's `malloc`, which the chunks came from before, has them): a
//! process forked while another of its threads held the lock has it held
//! for good in the child, whose first chunk would then wait forever. A
//! child that goes on running coil without `exec` is not supported (as
//! with tokio); `std::process::Command` and `coil::process` exec at once.
//!
//! **Under Miri** the slab's chunks do not come from the pool: [`take`]
//! allocates each from the global allocator and [`give`] frees it, so
//! that Miri sees each chunk's life and reports a leaked chunk or a use of
//! a given-back one (the slab's unit tests rely on it, `slab.rs`, "Exit
//! and leaks"); a chunk in a pool's region would stay inside a live
//! allocation after it was given back, and a region is never freed. The
//! pool's own bookkeeping is checked there by the unit tests below, each
//! on a pool of its own (regions from the global allocator, freed at the
//! end; nothing populated or returned: no `mmap` or `madvise` there).
//! `--cfg coil_chunks_from_allocator` does the same natively, for
//! AddressSanitizer (CI's asan-slab tier), which does not see inside
//! memory the runtime maps itself either. A page size that is not a power of
//! two multiple of [`CHUNK_BYTES`] (or unknown) sends no chunk cold: warm
//! ones are kept.

// With the chunks from the allocator the pool is only its unit tests'.
#![cfg_attr(any(miri, coil_chunks_from_allocator), allow(dead_code))]

use std::ptr::{self, NonNull};
use std::sync::Mutex;

use super::CHUNK_BYTES;

/// Bytes mapped at a time.
pub(super) const REGION: usize = 1 << 20;
/// Bytes of chunks a thread takes from (or gives back to) the pool at a
/// time, and so populated at a time when it carves them.
pub(super) const STEP: usize = 64 << 10;
/// Warm chunks past this many are made cold...
pub(super) const WARM_MAX: usize = 512;
/// ... down to this many.
pub(super) const WARM_KEEP: usize = 256;

/// The pool's state (module docs), behind [`POOL`]'s lock.
struct Pool {
    /// The next chunk of the current region never handed out.
    next: *mut u8,
    /// The end of the current region (`next == end`: none).
    end: *mut u8,
    /// The end of the resident part of the carve range.
    populated: *mut u8,
    /// Chunks given back whose pages are resident; the last given is last.
    warm: Vec<NonNull<u8>>,
    /// Chunks given back whose pages were returned.
    cold: Vec<NonNull<u8>>,
    /// `MADV_POPULATE_WRITE` is known to the kernel (cleared at `EINVAL`).
    populate: bool,
    /// More warm chunks than this make a `give` cool some: [`WARM_MAX`],
    /// or twice what a cooling left warm if that is more (`cool`).
    cool_at: usize,
    /// The regions mapped (a test's own pool counts and unmaps them).
    #[cfg(test)]
    mapped: Vec<*mut u8>,
    /// Calls of `cool` so far (for the tests).
    #[cfg(test)]
    cools: usize,
}

// SAFETY: the pointers are addresses of memory the pool owns (invariant
// 1); they are read and moved only under the lock, from any thread, and
// carry no thread affinity.
unsafe impl Send for Pool {}

static POOL: Mutex<Pool> = Mutex::new(Pool::new());

/// Locks the pool; a panic under the lock (only an allocation failure of
/// its `Vec`s, which aborts) leaves consistent lists, so poisoning is
/// ignored.
fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A chunk of [`CHUNK_BYTES`] bytes, aligned to them, for the slab
/// (module docs, "Take"); aborts as the global allocator does if no
/// memory can be mapped. Under Miri (and `coil_chunks_from_allocator`),
/// an allocation of its own (module docs, "Under Miri").
pub(super) fn take() -> NonNull<u8> {
    #[cfg(any(miri, coil_chunks_from_allocator))]
    {
        // SAFETY: not zero-sized.
        let p = unsafe { std::alloc::alloc(chunk_layout()) };
        NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(chunk_layout()))
    }
    #[cfg(not(any(miri, coil_chunks_from_allocator)))]
    cache::take()
}

/// Gives back a chunk from [`take`], which nobody uses any more (module
/// docs, "Give"). Under Miri (and `coil_chunks_from_allocator`), its
/// allocation is freed.
///
/// # Safety
/// `chunk` came from `take` and is not used afterwards.
pub(super) unsafe fn give(chunk: NonNull<u8>) {
    #[cfg(any(miri, coil_chunks_from_allocator))]
    // SAFETY: allocated by `take` with this layout, not used again
    // (caller's promise).
    unsafe {
        std::alloc::dealloc(chunk.as_ptr(), chunk_layout())
    };
    #[cfg(not(any(miri, coil_chunks_from_allocator)))]
    // SAFETY: the caller's promise.
    unsafe {
        cache::give(chunk)
    };
}

/// A chunk's layout under Miri (and `coil_chunks_from_allocator`), where
/// each is an allocation of its own.
#[cfg(any(miri, coil_chunks_from_allocator))]
fn chunk_layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(CHUNK_BYTES, CHUNK_BYTES).expect("chunk layout")
}

impl Pool {
    /// An empty pool: no region yet.
    const fn new() -> Pool {
        Pool {
            next: ptr::null_mut(),
            end: ptr::null_mut(),
            populated: ptr::null_mut(),
            warm: Vec::new(),
            cold: Vec::new(),
            populate: true,
            cool_at: WARM_MAX,
            #[cfg(test)]
            mapped: Vec::new(),
            #[cfg(test)]
            cools: 0,
        }
    }

    /// One chunk from this pool, populated under the lock (the tests'
    /// take; the process's takes runs: `cache.rs`).
    #[cfg(test)]
    fn take(&mut self) -> NonNull<u8> {
        let mut one = Vec::with_capacity(1);
        if let Some((from, len)) = self.take_run(&mut one, 1)
            && !populate(from.as_ptr(), len)
        {
            self.populate = false;
        }
        one[0]
    }

    /// Maps a region and makes it the carve range (the old one is used up).
    fn map_new_region(&mut self) {
        debug_assert!(self.next >= self.end);
        let base = map_region();
        #[cfg(test)]
        self.mapped.push(base);
        self.next = base;
        // SAFETY: the region is `REGION` bytes long.
        self.end = unsafe { base.add(REGION) };
        self.populated = base;
    }

    /// [`give`] with the system's page size `page`.
    fn give(&mut self, chunk: NonNull<u8>, page: usize) {
        self.warm.push(chunk);
        if self.warm.len() > self.cool_at {
            self.cool(page);
        }
    }

    /// Makes all warm chunks but the [`WARM_KEEP`] last given back cold,
    /// those that fill whole pages of `page` bytes: sorted by address, the
    /// whole pages in each run of neighbours are returned with one
    /// `madvise(MADV_DONTNEED)`. The others stay warm (a page larger than a
    /// chunk, shared with a chunk in use), and the next cooling waits for
    /// as many gives as are warm then (`cool_at`), so that they are not
    /// sorted again at every give: each give's share stays bounded.
    fn cool(&mut self, page: usize) {
        #[cfg(test)]
        {
            self.cools += 1;
        }
        let mut old: Vec<NonNull<u8>> = self.warm.drain(..self.warm.len() - WARM_KEEP).collect();
        // A page is a power of two and a multiple of a chunk (else, or if
        // the size is unknown, nothing goes cold).
        let pages = page >= CHUNK_BYTES && page.is_power_of_two();
        let mut stay = Vec::new();
        old.sort_unstable_by_key(|c| c.addr());
        let mut i = 0;
        while i < old.len() {
            let mut j = i + 1;
            while j < old.len() && old[j].addr().get() == old[j - 1].addr().get() + CHUNK_BYTES {
                j += 1;
            }
            let run = &old[i..j];
            let start = run[0].addr().get();
            let end = start + run.len() * CHUNK_BYTES;
            // The whole pages inside the run, `from..to`.
            let (from, to) = if pages {
                (start.next_multiple_of(page), end & !(page - 1))
            } else {
                (end, end)
            };
            if from < to {
                dont_need(run[(from - start) / CHUNK_BYTES].as_ptr(), to - from);
            }
            for &c in run {
                if (from..to).contains(&c.addr().get()) {
                    self.cold.push(c);
                } else {
                    stay.push(c);
                }
            }
            i = j;
        }
        self.warm.splice(0..0, stay);
        self.cool_at = WARM_MAX.max(2 * self.warm.len());
    }
}

/// Maps a new region; aborts (as `handle_alloc_error`) if it cannot.
fn map_region() -> *mut u8 {
    let layout = region_layout();
    #[cfg(miri)]
    {
        // SAFETY: not zero-sized.
        let p = unsafe { std::alloc::alloc(layout) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        p
    }
    #[cfg(not(miri))]
    {
        // SAFETY: a new private anonymous mapping: no existing memory is
        // affected; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                REGION,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::alloc::handle_alloc_error(layout);
        }
        // mmap returns page-aligned memory, and a page is a multiple of a chunk.
        debug_assert_eq!(p.addr() % CHUNK_BYTES, 0);
        p.cast::<u8>()
    }
}

/// A region's size and alignment (what the allocator is told when
/// mapping fails, and what it gives under Miri).
fn region_layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(REGION, CHUNK_BYTES).expect("region layout")
}

/// Unmaps a region from [`map_region`] (a test's private one).
///
/// # Safety
/// `base` came from `map_region`, and none of its memory is used again.
#[cfg(test)]
unsafe fn unmap_region(base: *mut u8) {
    #[cfg(miri)]
    // SAFETY: allocated by `map_region` with this layout (caller's promise).
    unsafe {
        std::alloc::dealloc(base, region_layout())
    };
    #[cfg(not(miri))]
    // SAFETY: a whole mapping of `REGION` bytes nobody uses (caller's promise).
    unsafe {
        libc::munmap(base.cast(), REGION)
    };
}

/// `madvise(MADV_POPULATE_WRITE)` over `len` bytes of the carve range at
/// `from`; false if the kernel does not know the advice (`EINVAL`).
#[cfg(not(miri))]
fn populate(from: *mut u8, len: usize) -> bool {
    // Not in every libc crate version's constants; Linux's value since 5.14.
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    // SAFETY: a range of the pool's current region that nobody uses yet
    // (invariant 4); the advice only makes its pages resident.
    let rc = unsafe { libc::madvise(from.cast(), len, MADV_POPULATE_WRITE) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
}

/// Under Miri: nothing to populate (the memory is the allocator's).
#[cfg(miri)]
fn populate(_from: *mut u8, _len: usize) -> bool {
    true
}

/// Returns the pages of `len` bytes of given-back chunks at `from`.
#[cfg(not(miri))]
fn dont_need(from: *mut u8, len: usize) {
    // SAFETY: chunks the pool holds and nobody uses (invariant 4); their
    // contents are not relied upon (invariant 2). A failure leaves them
    // resident, which is only memory.
    unsafe { libc::madvise(from.cast(), len, libc::MADV_DONTNEED) };
}

/// Under Miri: the chunks stay as they are.
#[cfg(miri)]
fn dont_need(_from: *mut u8, _len: usize) {}

/// The system's page size (`CHUNK_BYTES` under Miri).
fn page_size() -> usize {
    #[cfg(miri)]
    {
        CHUNK_BYTES
    }
    #[cfg(not(miri))]
    {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        static PAGE: AtomicUsize = AtomicUsize::new(0);
        let mut p = PAGE.load(Relaxed);
        if p == 0 {
            // SAFETY: sysconf only reads a configuration value.
            p = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(0);
            PAGE.store(p, Relaxed);
        }
        p
    }
}

mod cache;

#[cfg(test)]
mod tests;
