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
//! 5. The lock is free, or held by a live thread of this process: a
//!    `fork` never copies it held into the child (below, "Fork"). No thread
//!    forks while it holds the lock (no user code runs under it, invariant 3;
//!    a fork there would wait for itself in its *prepare* handler).
//!
//! # The lock
//!
//! [`Locked`], the pool's own: a futex word (0 free, 1 held, 2 held and a
//! thread may sleep on it), the third mutex of Drepper's "Futexes Are
//! Tricky" with a short spin first, as std's futex mutex has. Not a std
//! `Mutex`, because `pthread_atfork` handlers take it in one callback and
//! release it in another, with no guard to carry between them; a std
//! `Mutex` is released only by dropping the guard its `lock` returned. A
//! `pthread_mutex_t` would do too, at a library call per lock and unlock;
//! this one is a `cmpxchg` to take and an `xchg` to release, inline, as the
//! std `Mutex` was, without its two poison checks (W1 with n=100 000 under
//! callgrind, whole run: 34.201 M instructions with the std `Mutex`, 34.183 M
//! with this lock and the fork handlers' check in `take`).
//!
//! # Fork
//!
//! A process forked while another of its threads held the lock would have
//! it held for good in the child (the holder does not exist there), and the
//! child's first chunk would wait forever; coil supports a child that goes
//! on running coil (docs/reliability.md, check 33: it builds runtimes of its
//! own). So the pool registers `pthread_atfork` handlers, as glibc's
//! `malloc` does for its arenas: *prepare* takes the lock (the fork waits
//! for a holder to finish what it is doing), *parent* releases it, *child*
//! clears it (the child's only thread holds it; nobody sleeps on it there).
//!
//! - **When.** A thread's cache registers them before it first locks the
//!   pool for a run (`ensure_fork_handlers` in `cache.rs`'s refill: one
//!   `Acquire` load per run afterwards), so every lock after that is
//!   covered; a [`give`] follows the take of its chunk. Threads that find another thread of the process registering do
//!   not wait for it (a wait could be copied into a child that never sees
//!   the end of it); the one window left is a fork racing the process's
//!   first take while a third thread, which found the registration under
//!   way, holds the lock. A child of a fork that
//!   ran before the registration finished registers its own at its first
//!   take (the claim is the registering process's pid).
//! - **What the child inherits.** The lists as they were between two
//!   operations (*prepare* waited for the holder's). Chunks handed out in
//!   the parent stay handed out: those of threads that do not exist in the
//!   child (their slabs, their tasks' cells) are never given back there;
//!   they are leaked in the child, never handed out again (invariant 1: they
//!   are in none of its lists), so never corrupt, only memory.
//! - **Allocator.** glibc's `fork` runs the *prepare* handlers before it
//!   takes `malloc`'s locks, so a holder allocating under the lock
//!   (invariant 3) finishes while the fork waits. An allocator whose own
//!   handlers are registered after the pool's would take its locks first
//!   (prepare handlers run in reverse order of registration) and could
//!   deadlock with such a holder; allocators register theirs when they
//!   start, before a process's first task.
//! - **Not covered:** a fork made without the C library's `fork` (a raw
//!   `clone`, `syscall(SYS_fork)`) runs no handlers; nor do `vfork` and
//!   `posix_spawn`, whose children exec at once and run no coil code (as do
//!   those of `std::process::Command` and `coil::process`, however they
//!   fork).
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
//! memory the runtime maps itself either. The lock and the steps of its
//! fork handlers are tested there too, on locks of the tests' own; the
//! handlers are registered only where the pool is used. A page size that is not a power of
//! two multiple of [`CHUNK_BYTES`] (or unknown) sends no chunk cold: warm
//! ones are kept.

// With the chunks from the allocator the pool is only its unit tests'.
#![cfg_attr(any(miri, coil_chunks_from_allocator), allow(dead_code))]

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

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

/// The process's pool (module docs, "The lock", "Fork").
static POOL: Locked<Pool> = Locked::new(Pool::new());

/// Locks the pool.
fn pool() -> Guard<'static, Pool> {
    POOL.lock()
}

/// A value behind the pool's kind of lock (module docs, "The lock"): a
/// futex word, [`FREE`], [`HELD`] or [`SLEEPERS`], which the fork handlers
/// can take and release without a guard.
struct Locked<T> {
    /// [`FREE`], [`HELD`] or [`SLEEPERS`]; changed only by [`Locked::acquire`],
    /// [`Locked::release`] and [`Locked::clear_in_child`].
    state: AtomicU32,
    /// Read and written only by the thread that holds the lock (that took
    /// `state` from [`FREE`]).
    value: UnsafeCell<T>,
}

/// [`Locked`]'s state: nobody holds the lock.
const FREE: u32 = 0;
/// Held; nobody sleeps on it.
const HELD: u32 = 1;
/// Held; a thread may be asleep on the word (its release wakes one).
const SLEEPERS: u32 = 2;
/// Loads a contended [`Locked::acquire`] makes before it sleeps.
const SPINS: u32 = 100;

// SAFETY: the value is reached only by the thread that holds the lock
// (`value`'s docs), one at a time, each after the `Acquire` that took it and
// before the `Release` that frees it: sharing the lock moves `T` between
// threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Locked<T> {}

impl<T> Locked<T> {
    /// `value`, unlocked.
    const fn new(value: T) -> Locked<T> {
        Locked {
            state: AtomicU32::new(FREE),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock and holds it until the guard is dropped.
    fn lock(&self) -> Guard<'_, T> {
        self.acquire();
        Guard(self)
    }

    /// Takes the lock, waiting for it, without a guard (the *prepare* fork
    /// handler; [`Locked::lock`]). The caller releases it once.
    fn acquire(&self) {
        if self
            .state
            .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.acquire_contended();
        }
    }

    /// [`Locked::acquire`] when the lock was held: spin a little (it is
    /// held for a few list operations, or one `mmap` or `madvise`), then
    /// sleep. A thread that takes the lock here leaves it [`SLEEPERS`]
    /// (others may sleep on it still), so its release wakes one.
    #[cold]
    fn acquire_contended(&self) {
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == FREE
                && self
                    .state
                    .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        while self.state.swap(SLEEPERS, Ordering::Acquire) != FREE {
            futex_wait(&self.state, SLEEPERS);
        }
    }

    /// Frees the lock the caller holds, waking a sleeper if there may be
    /// one (the guard's drop; the *parent* fork handler).
    fn release(&self) {
        if self.state.swap(FREE, Ordering::Release) == SLEEPERS {
            futex_wake_one(&self.state);
        }
    }

    /// Frees the lock in the child of a fork whose *prepare* took it: the
    /// child's only thread holds it, and nobody sleeps on it there (the
    /// sleepers were other threads of the parent), so there is no one to
    /// wake. Only an atomic store: async-signal-safe.
    fn clear_in_child(&self) {
        self.state.store(FREE, Ordering::Relaxed);
    }

    /// Another thread waits for the lock (or did since it was taken).
    fn has_waiters(&self) -> bool {
        self.state.load(Ordering::Relaxed) == SLEEPERS
    }

    /// The value, from a `&mut` (no other thread can hold the lock).
    #[cfg(test)]
    fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

/// [`Locked::lock`]'s guard: the value while the lock is held.
struct Guard<'a, T>(&'a Locked<T>);

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard's thread holds the lock (`Locked::value`).
        unsafe { &*self.0.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard's thread holds the lock (`Locked::value`), and
        // the `&mut self` makes this the only reference made through it.
        unsafe { &mut *self.0.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Sleeps while `word` is `expected` (or until a wake; the caller checks
/// again). `FUTEX_WAIT`, private to the process.
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a live, aligned u32 for the call's duration; the
    // kernel only reads it; no timeout (a null pointer).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes one thread asleep on `word` in [`futex_wait`].
fn futex_wake_one(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; the kernel does not touch it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

/// Whether this process has registered the fork handlers: [`UNREGISTERED`],
/// [`REGISTERED`], or the pid of the process one of whose threads is
/// registering them (module docs, "Fork", "When").
static FORK_HANDLERS: AtomicU32 = AtomicU32::new(UNREGISTERED);
/// [`FORK_HANDLERS`]: none yet.
const UNREGISTERED: u32 = 0;
/// [`FORK_HANDLERS`]: registered (no pid is `u32::MAX`).
const REGISTERED: u32 = u32::MAX;

/// Registers the pool's fork handlers if this process has not (module
/// docs, "Fork", "When"); one `Acquire` load once it has.
#[inline]
fn ensure_fork_handlers() {
    if FORK_HANDLERS.load(Ordering::Acquire) != REGISTERED {
        register_fork_handlers();
    }
}

/// [`ensure_fork_handlers`]' first time in a process: claims the
/// registration with this process's pid and registers; returns at once if
/// another thread of the process has the claim (it does not wait: a wait
/// copied into a child would never end there). A claim by another pid is a
/// parent's whose fork ran before its registration ended (the handlers
/// are not registered here): taken over.
#[cold]
fn register_fork_handlers() {
    let me = std::process::id();
    let seen = FORK_HANDLERS.load(Ordering::Acquire);
    if seen == REGISTERED
        || seen == me
        || FORK_HANDLERS
            .compare_exchange(seen, me, Ordering::Acquire, Ordering::Acquire)
            .is_err()
    {
        return;
    }
    // SAFETY: the handlers only take, release or clear the pool's lock and
    // store to `FORK_HANDLERS` (atomics: async-signal-safe in the child);
    // they are registered once per process (the claim above).
    let rc = unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        )
    };
    // A failure (ENOMEM) leaves the pool as it was without handlers; the
    // next take tries again.
    let now = if rc == 0 { REGISTERED } else { UNREGISTERED };
    FORK_HANDLERS.store(now, Ordering::Release);
}

/// *prepare*: waits for the pool's lock and holds it across the fork
/// (invariant 5).
extern "C" fn before_fork() {
    POOL.acquire();
}

/// *parent*: releases what [`before_fork`] took.
extern "C" fn after_fork_in_parent() {
    POOL.release();
}

/// *child*: clears what [`before_fork`] took; the handlers ran, so they
/// are registered in the child too (whatever the parent's registering
/// thread had stored yet).
extern "C" fn after_fork_in_child() {
    POOL.clear_in_child();
    FORK_HANDLERS.store(REGISTERED, Ordering::Relaxed);
}

/// Test support (`coil::task::__hold_task_memory_lock`, check 33 in
/// `tests/rt_fork.rs`): takes the pool's lock on this thread (with the fork
/// handlers registered first, as a take does), calls `held`, and holds it
/// until another thread waits for it (a fork's *prepare*) or `release`
/// returns true, yielding the CPU between checks.
pub(crate) fn hold_lock(held: impl FnOnce(), mut release: impl FnMut() -> bool) {
    ensure_fork_handlers();
    let guard = POOL.lock();
    held();
    while !POOL.has_waiters() && !release() {
        std::thread::yield_now();
    }
    drop(guard);
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
