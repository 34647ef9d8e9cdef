//! Each thread's chunks at hand, in front of the process's pool
//! (`pages.rs`, "Per-thread cache").
//!
//! # Why
//!
//! With one pool for the process, every thread that spawns takes the
//! pool's lock once per chunk it fills and once per chunk it empties, and
//! populated the next 64 KiB under that lock. Two loops spawning at once
//! (W8a: a million tasks each, on two CPUs) then waited for each other's
//! page population and woke each other through the lock's futex: W8a went
//! from 14.7 M to 13.0 M tasks a second when the pool replaced `malloc`
//! (10 alternated pairs; `perf`: futex wake-ups, a contended lock, page
//! faults serialised), where glibc's per-thread arenas had kept the
//! threads apart.
//!
//! # Design
//!
//! - A thread keeps up to [`CACHE_MAX`] chunks (a stack: the last given
//!   back is the first taken, its lines may still be cached).
//! - **Take:** from the stack; when it is empty, one lock of the pool hands
//!   over a *run* of up to [`BATCH`] chunks (warm ones, else freshly carved
//!   ones, else cold ones, else a new region's), and the part of a carved
//!   run that is not resident yet is populated *after* the lock is
//!   released, so threads fault their pages in parallel.
//! - **Give:** onto the stack; when it is full, its [`BATCH`] oldest chunks
//!   go back to the pool under one lock (where the pool's cooling applies
//!   as to any give).
//! - **Thread exit:** the thread-local's destructor gives every chunk
//!   back. A take or give during or after that destruction (a task freed
//!   by another thread-local's destructor) goes to the pool directly, a
//!   lock per chunk.
//!
//! So the lock is taken once per [`BATCH`] chunks a thread fills or empties
//! in a row, and what a thread holds beyond its live chunks is bounded by
//! [`CACHE_MAX`] chunks (128 KiB).
//!
//! # Invariants
//!
//! 1. A chunk in a thread's stack is handed out by the pool (invariant 1
//!    of `pages.rs`: the stack is one more place it can be), used by
//!    nobody, and in no other stack.
//! 2. Populating a carved run outside the lock is harmless to any other
//!    thread: the run's chunks are this thread's alone (the pool moved its
//!    carve range past them under the lock), and `MADV_POPULATE_WRITE`
//!    changes no byte of a page, only whether it is resident.
//!
//! A forked child inherits the forking thread's stack (its chunks are
//! mapped in the child too, and the child's copy of that thread owns them).

use std::cell::RefCell;
use std::ptr::NonNull;

use super::{Pool, page_size, pool, populate};

/// Chunks a thread keeps at most.
pub(super) const CACHE_MAX: usize = 32;
/// Chunks moved between a thread and the pool under one lock (16).
pub(super) const BATCH: usize = super::STEP / super::CHUNK_BYTES;

/// A thread's stack of chunks (module docs).
pub(super) struct Cache {
    chunks: RefCell<Vec<NonNull<u8>>>,
    /// A test's name for this thread's stack, for `tests::RETURNED`.
    #[cfg(test)]
    tag: std::cell::Cell<usize>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            chunks: RefCell::new(Vec::new()),
            #[cfg(test)]
            tag: std::cell::Cell::new(0),
        }
    };
}

/// A chunk for the slab: this thread's last given back, else a run from
/// the pool (module docs, "Take").
#[inline]
pub(super) fn take() -> NonNull<u8> {
    let cached = CACHE.try_with(|c| c.chunks.try_borrow_mut().ok().and_then(|mut s| s.pop()));
    match cached {
        Ok(Some(chunk)) => chunk,
        _ => refill(),
    }
}

/// [`take`] with an empty stack: a run from the pool, straight onto the
/// stack, populated outside the lock; its top chunk is returned.
#[cold]
#[inline(never)]
fn refill() -> NonNull<u8> {
    // Every chunk a thread holds came through here first: a give needs no
    // check of its own (`pages.rs`, "Fork").
    super::ensure_fork_handlers();
    let from_run = CACHE.try_with(|c| {
        let mut stack = c.chunks.try_borrow_mut().ok()?;
        stack.reserve(CACHE_MAX);
        // Its own statement: the guard (a temporary) is dropped at its end,
        // before the population (as an argument of `populate_run` it would
        // live through it: W8a -13 %, measured).
        let fresh = pool().take_run(&mut stack, BATCH);
        populate_run(fresh);
        stack.pop()
    });
    if let Ok(Some(chunk)) = from_run {
        return chunk;
    }
    // Without a usable stack (thread exit, or a take re-entered from a
    // give of this thread: not done today), one chunk.
    let mut one = Vec::with_capacity(1);
    let fresh = pool().take_run(&mut one, 1);
    populate_run(fresh);
    one[0]
}

/// Populates the not yet resident part of a run [`Pool::take_run`] handed
/// over, after the lock (invariant 2); the first `EINVAL` turns population
/// off for the pool.
fn populate_run(fresh: Option<(NonNull<u8>, usize)>) {
    if let Some((from, len)) = fresh
        && !populate(from.as_ptr(), len)
    {
        pool().populate = false;
    }
}

/// Gives a chunk back: onto this thread's stack, whose oldest [`BATCH`] go
/// to the pool when it is full (module docs, "Give").
///
/// # Safety
/// `chunk` came from [`take`] (or the pool) and is not used afterwards.
#[inline]
pub(super) unsafe fn give(chunk: NonNull<u8>) {
    let kept = CACHE.try_with(|c| {
        let Ok(mut stack) = c.chunks.try_borrow_mut() else {
            return false;
        };
        if stack.len() == CACHE_MAX {
            spill(&mut stack);
        }
        stack.push(chunk);
        true
    });
    if kept != Ok(true) {
        pool().give(chunk, page_size());
    }
}

/// A full stack's [`BATCH`] oldest chunks back to the pool, one lock.
#[cold]
#[inline(never)]
fn spill(stack: &mut Vec<NonNull<u8>>) {
    // Off the stack before the pool can hand them out again: a chunk is in
    // one place at a time (invariant 1).
    let mut oldest = [NonNull::dangling(); BATCH];
    oldest.copy_from_slice(&stack[..BATCH]);
    stack.drain(..BATCH);
    pool().give_run(&oldest, page_size());
    #[cfg(test)]
    tests::SPILLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

impl Drop for Cache {
    /// Thread exit: every chunk kept goes back to the pool.
    fn drop(&mut self) {
        let stack = self.chunks.get_mut();
        if !stack.is_empty() {
            pool().give_run(stack, page_size());
            #[cfg(test)]
            tests::RETURNED
                .lock()
                .unwrap()
                .push((self.tag.get(), stack.len()));
            stack.clear();
        }
    }
}

impl Pool {
    /// Hands out a run of 1 to `n` chunks into `out` (module docs, "Take"):
    /// the last given back warm ones, else `n` carved from the current
    /// region, else cold ones, else a new region's. For carved chunks not
    /// resident yet, returns the range the caller populates after the
    /// lock (invariant 2): the pool counts it resident from now on.
    pub(super) fn take_run(
        &mut self,
        out: &mut Vec<NonNull<u8>>,
        n: usize,
    ) -> Option<(NonNull<u8>, usize)> {
        debug_assert!(n > 0 && out.is_empty());
        let warm = n.min(self.warm.len());
        if warm > 0 {
            // The last given back is the first taken (`out` is used as a
            // stack, as the thread's).
            out.extend(self.warm.drain(self.warm.len() - warm..));
            return None;
        }
        if self.next >= self.end {
            let cold = n.min(self.cold.len());
            if cold > 0 {
                out.extend(self.cold.drain(self.cold.len() - cold..));
                return None;
            }
            self.map_new_region();
        }
        let room = (self.end.addr() - self.next.addr()) / super::CHUNK_BYTES;
        let k = n.min(room);
        let start = self.next;
        // SAFETY: `k` whole chunks from `next` lie inside the region.
        let stop = unsafe { start.add(k * super::CHUNK_BYTES) };
        // Pushed last address first: the stack hands them out in address
        // order.
        for i in (0..k).rev() {
            // SAFETY: inside the run, not null.
            out.push(unsafe { NonNull::new_unchecked(start.add(i * super::CHUNK_BYTES)) });
        }
        self.next = stop;
        if stop <= self.populated {
            return None;
        }
        let from = if start > self.populated {
            start
        } else {
            self.populated
        };
        self.populated = stop;
        let from = NonNull::new(from).expect("a region's address is not null");
        self.populate
            .then(|| (from, stop.addr() - from.addr().get()))
    }

    /// Gives back chunks nobody uses, as `give` does each.
    pub(super) fn give_run(&mut self, chunks: &[NonNull<u8>], page: usize) {
        for &c in chunks {
            self.give(c, page);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// The stacks exiting threads gave back: (the test's tag, chunks).
    pub(super) static RETURNED: std::sync::Mutex<Vec<(usize, usize)>> =
        std::sync::Mutex::new(Vec::new());
    /// Spills of full stacks, process-wide.
    pub(super) static SPILLS: AtomicUsize = AtomicUsize::new(0);

    /// A pool's runs: warm chunks first (the last given back on top), then
    /// carved ones in address order with the unpopulated part of the run
    /// reported once, then cold ones; never a chunk twice.
    #[test]
    fn runs_come_warm_then_carved_then_cold() {
        let mut pool = Pool::new();
        let mut held = HashSet::new();
        let mut run = Vec::new();
        // A fresh region: carved, all to populate.
        let fresh = pool
            .take_run(&mut run, BATCH)
            .expect("a fresh run is populated");
        assert_eq!(run.len(), BATCH);
        let lowest = run.iter().map(|c| c.addr().get()).min().unwrap();
        assert_eq!(fresh.0.addr().get(), lowest);
        assert_eq!(fresh.1, BATCH * super::super::CHUNK_BYTES);
        let mut addrs: Vec<usize> = run.iter().rev().map(|c| c.addr().get()).collect();
        assert!(
            addrs
                .windows(2)
                .all(|w| w[1] == w[0] + super::super::CHUNK_BYTES)
        );
        held.extend(addrs.drain(..));
        // Given back: warm, taken again with the last given on top.
        let given: Vec<_> = run.drain(..4).collect();
        pool.give_run(&given, super::super::CHUNK_BYTES);
        let mut again = Vec::new();
        assert!(
            pool.take_run(&mut again, BATCH).is_none(),
            "warm chunks are resident"
        );
        assert_eq!(again.len(), 4);
        assert_eq!(again.last(), given.last());
        // The rest of the region, then nothing left to carve: a new region.
        let room = super::super::REGION / super::super::CHUNK_BYTES - BATCH;
        let mut carved = 0;
        while carved < room {
            let mut r = Vec::new();
            pool.take_run(&mut r, BATCH);
            carved += r.len();
            for c in r {
                assert!(held.insert(c.addr().get()), "a chunk handed out twice");
            }
        }
        assert_eq!(carved, room);
        assert_eq!(pool.mapped.len(), 1);
        let mut r = Vec::new();
        assert!(pool.take_run(&mut r, 1).is_some(), "a new region's chunk");
        assert_eq!(pool.mapped.len(), 2);
        assert!(held.insert(r[0].addr().get()));
        super::super::tests::unmap(pool);
    }

    /// Invariant 1 across threads: two threads take runs, hold chunks
    /// stamped with their own tag, and give half of them back through the
    /// other thread (whose stack then spills chunks it never took); a chunk
    /// handed to both at once would show the other's stamp, one handed
    /// twice to a thread a duplicate in its set.
    #[test]
    fn two_threads_never_hold_one_chunk() {
        if cfg!(any(miri, coil_chunks_from_allocator)) {
            return;
        }
        let (b_to_a, a_from_b) = std::sync::mpsc::channel::<Vec<usize>>();
        let (a_to_b, b_from_a) = std::sync::mpsc::channel::<Vec<usize>>();
        let run = |tag: u64,
                   send: std::sync::mpsc::Sender<Vec<usize>>,
                   got: std::sync::mpsc::Receiver<Vec<usize>>| {
            move || {
                for round in 0..200 {
                    let held: Vec<NonNull<u8>> = (0..3 + round % 40).map(|_| take()).collect();
                    let distinct: HashSet<_> = held.iter().collect();
                    assert_eq!(distinct.len(), held.len(), "a chunk handed out twice");
                    for c in &held {
                        // SAFETY: a chunk from `take`: this thread's alone.
                        unsafe { c.as_ptr().cast::<u64>().write(tag) };
                    }
                    std::thread::yield_now();
                    for c in &held {
                        // SAFETY: as above.
                        let stamp = unsafe { c.as_ptr().cast::<u64>().read() };
                        assert_eq!(stamp, tag, "a chunk held twice");
                    }
                    let (mine, theirs) = held.split_at(held.len() / 2);
                    for &c in mine {
                        // SAFETY: from `take`, not used again.
                        unsafe { give(c) };
                    }
                    send.send(
                        theirs
                            .iter()
                            .map(|c| c.as_ptr().expose_provenance())
                            .collect(),
                    )
                    .unwrap();
                    for a in got.recv().unwrap() {
                        // SAFETY: the other thread's chunk from `take`, which
                        // it uses no more (it sent it).
                        unsafe {
                            super::give(
                                NonNull::new(std::ptr::with_exposed_provenance_mut(a)).unwrap(),
                            )
                        };
                    }
                }
            }
        };
        let a = std::thread::spawn(run(0xa, a_to_b, a_from_b));
        let b = std::thread::spawn(run(0xb, b_to_a, b_from_a));
        a.join().unwrap();
        b.join().unwrap();
    }

    /// A thread's stack: chunks it gives back are what it takes next, a
    /// full stack spills to the pool, and its exit gives every chunk back.
    #[test]
    fn a_threads_stack_reuses_spills_and_is_given_back_at_exit() {
        // Miri: chunks come from the allocator, the stack is not used.
        if cfg!(any(miri, coil_chunks_from_allocator)) {
            return;
        }
        const TAG: usize = 0x57ac;
        let spills = SPILLS.load(Relaxed);
        let kept = std::thread::spawn(|| {
            CACHE.with(|c| c.tag.set(TAG));
            let a = take();
            // SAFETY: from `take`, not used again.
            unsafe { give(a) };
            assert_eq!(take(), a, "the chunk just given back comes first");
            let mut held: Vec<_> = (0..2 * CACHE_MAX).map(|_| take()).collect();
            held.push(a);
            let distinct: HashSet<_> = held.iter().map(|c| c.addr().get()).collect();
            assert_eq!(distinct.len(), held.len(), "a chunk handed out twice");
            for c in held {
                // SAFETY: from `take`, not used again.
                unsafe { give(c) };
            }
            let kept = CACHE.with(|c| c.chunks.borrow().len());
            assert!((1..=CACHE_MAX).contains(&kept), "{kept} chunks kept");
            kept
        })
        .join()
        .unwrap();
        assert!(SPILLS.load(Relaxed) > spills, "a full stack spilled");
        let returned = RETURNED.lock().unwrap().clone();
        assert!(
            returned.contains(&(TAG, kept)),
            "the exit gave the stack's {kept} chunks back: {returned:?}"
        );
    }
}
