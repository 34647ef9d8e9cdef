//! The page pool's invariants (module docs): aligned chunks, each handed
//! out once until given back, warm ones reused first, cold ones once the
//! warm list overflows, regions mapped only when nothing else is left.
//! Each test but the first and the last runs a pool (or a lock) of its own
//! (the process's is used by the other lib tests' tasks meanwhile, and is
//! not the slab's under Miri), whose regions it unmaps at the end; in the
//! miri tier Miri checks every access. The lock's tests check what
//! invariant 5 and the fork handlers rely on: it excludes, wakes its
//! sleepers, and is taken, released and cleared without a guard.

use super::*;
use std::collections::HashSet;

/// Takes `n` chunks from `take`, checking each is aligned and new to this
/// test.
fn take_n(
    n: usize,
    held: &mut HashSet<usize>,
    mut take: impl FnMut() -> NonNull<u8>,
) -> Vec<NonNull<u8>> {
    (0..n)
        .map(|_| {
            let c = take();
            assert_eq!(c.addr().get() % CHUNK_BYTES, 0, "unaligned chunk");
            assert!(held.insert(c.addr().get()), "a chunk handed out twice");
            c
        })
        .collect()
}

/// Writes every byte of each chunk and reads it back: the whole chunk is
/// mapped and writable, and no other holder writes into it meanwhile.
/// Under Miri one byte in 64 is read back (the write covers the whole
/// chunk, which Miri checks; a byte-by-byte read of every chunk took the
/// burst test minutes there).
fn fill_and_check(chunks: &[NonNull<u8>], tag: u8) {
    let step = if cfg!(miri) { 64 } else { 1 };
    for (i, c) in chunks.iter().enumerate() {
        // SAFETY: a chunk from `take`, held by this test, `CHUNK_BYTES` long.
        unsafe { ptr::write_bytes(c.as_ptr(), tag ^ i as u8, CHUNK_BYTES) };
    }
    for (i, c) in chunks.iter().enumerate() {
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(c.as_ptr(), CHUNK_BYTES) };
        assert!(
            bytes.iter().step_by(step).all(|&b| b == tag ^ i as u8)
                && bytes[CHUNK_BYTES - 1] == tag ^ i as u8,
            "chunk {i} changed under us"
        );
    }
}

/// Unmaps the regions of a test's own pool; its chunks are not used again.
pub(super) fn unmap(pool: Pool) {
    for base in pool.mapped {
        // SAFETY: this pool's regions, each once; the caller's chunks
        // are not used again.
        unsafe { unmap_region(base) };
    }
}

/// The process's pool (the slab's `take` and `give`; under Miri, chunks
/// of their own).
#[test]
fn chunks_are_aligned_distinct_and_whole() {
    let n = if cfg!(miri) { 20 } else { 300 };
    let mut held = HashSet::new();
    let chunks = take_n(n, &mut held, take);
    fill_and_check(&chunks, 0x5a);
    for c in chunks {
        // SAFETY: from `take`, not used again.
        unsafe { give(c) };
    }
}

/// A burst larger than a region, given back whole and taken again: the
/// chunks held at once are distinct and writable throughout, and giving
/// back more than `WARM_MAX` (which makes chunks cold) loses none: they
/// are handed out again.
#[test]
fn a_burst_past_a_region_and_its_drain_lose_no_chunk() {
    let n = if cfg!(miri) {
        2 * WARM_MAX / 8
    } else {
        REGION / CHUNK_BYTES + WARM_MAX
    };
    let mut pool = Pool::new();
    let mut held = HashSet::new();
    let chunks = take_n(n, &mut held, || pool.take());
    fill_and_check(&chunks, 0x33);
    for c in chunks {
        pool.give(c, CHUNK_BYTES);
    }
    let mapped = pool.mapped.len();
    let mut again = HashSet::new();
    let chunks = take_n(n, &mut again, || pool.take());
    fill_and_check(&chunks, 0xc4);
    assert_eq!(
        pool.mapped.len(),
        mapped,
        "a region mapped with chunks to reuse"
    );
    for c in chunks {
        pool.give(c, CHUNK_BYTES);
    }
    unmap(pool);
}

/// Taking after giving back reuses memory rather than mapping more: a
/// spawn-and-complete loop's chunks cost no region after the first.
#[test]
fn given_back_chunks_are_reused_before_a_region_is_mapped() {
    let rounds = if cfg!(miri) { 50 } else { 5_000 };
    let mut pool = Pool::new();
    for _ in 0..rounds {
        let c = pool.take();
        pool.give(c, CHUNK_BYTES);
    }
    let regions = pool.mapped.len();
    assert_eq!(regions, 1, "{regions} regions for {rounds} rounds");
    unmap(pool);
}

/// Threads taking and giving at once, through a [`Locked`] pool as the
/// process's: no chunk is held by two of them (each writes its tag over the
/// whole chunk and reads it back).
#[test]
fn threads_never_share_a_chunk() {
    struct Held([NonNull<u8>; 2]);
    let (threads, rounds) = if cfg!(miri) { (2, 10) } else { (4, 2_000) };
    let shared = std::sync::Arc::new(Locked::new(Pool::new()));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for r in 0..rounds {
                    // One statement each: a guard lives to its statement's end.
                    let a = shared.lock().take();
                    let b = shared.lock().take();
                    let c = Held([a, b]);
                    fill_and_check(&c.0, (t * 31 + r) as u8);
                    for c in c.0 {
                        shared.lock().give(c, CHUNK_BYTES);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let pool = std::sync::Arc::into_inner(shared).unwrap().into_inner();
    unmap(pool);
}

/// The lock excludes (a read, a yield and a write of a plain counter under
/// it lose no increment across threads) and wakes its sleepers (a sleeper
/// never woken would hang the test; Miri reports it as a deadlock).
#[test]
fn the_lock_excludes_and_wakes_sleepers() {
    let (threads, rounds) = if cfg!(miri) { (3, 20) } else { (4, 5_000) };
    let counter = std::sync::Arc::new(Locked::new(0u64));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    let mut n = counter.lock();
                    let seen = *n;
                    // Let the others run into the held lock (and sleep on it).
                    std::thread::yield_now();
                    *n = seen + 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = std::sync::Arc::into_inner(counter).unwrap().into_inner();
    assert_eq!(n, threads * rounds, "an increment was lost under the lock");
}

/// What the fork handlers do, on a lock of the test's own (the process's
/// is in use by the other tests): *prepare* (`acquire`) waits for another
/// thread's holder and then excludes others until *parent* (`release`),
/// which wakes a thread asleep on it meanwhile; in the child, *child*
/// (`clear_in_child`) frees it for the child's next lock.
#[test]
fn fork_handlers_hold_the_lock_across_the_fork() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let lock = Arc::new(Locked::new(0u32));
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    // A holder that lets go only once someone waits (as `hold_lock`).
    let holder = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            let mut v = lock.lock();
            held_tx.send(()).unwrap();
            while !lock.has_waiters() {
                std::thread::yield_now();
            }
            *v = 1;
        })
    };
    held_rx.recv().unwrap();
    // prepare: returns once the holder is done, with its write visible.
    lock.acquire();
    holder.join().unwrap();
    // SAFETY: this thread holds the lock (taken by `acquire` above).
    assert_eq!(unsafe { *lock.value.get() }, 1, "prepare did not wait");
    // A thread that wants the lock while the fork holds it sleeps until
    // parent releases it.
    let done = Arc::new(AtomicBool::new(false));
    let (trying_tx, trying_rx) = std::sync::mpsc::channel();
    let waiter = {
        let (lock, done) = (lock.clone(), done.clone());
        std::thread::spawn(move || {
            trying_tx.send(()).unwrap();
            *lock.lock() += 1;
            done.store(true, Ordering::Release);
        })
    };
    trying_rx.recv().unwrap();
    for _ in 0..10 {
        std::thread::yield_now();
    }
    assert!(!done.load(Ordering::Acquire), "the lock let two in");
    lock.release();
    waiter.join().unwrap();
    assert_eq!(*lock.lock(), 2);
    // child: the lock as prepare left it (held, sleepers marked) is free
    // after the clear, and works as before.
    lock.acquire();
    lock.state.store(SLEEPERS, Ordering::Relaxed);
    lock.clear_in_child();
    *lock.lock() += 1;
    assert_eq!(*lock.lock(), 3);
}

/// A take registers the fork handlers first (natively: under Miri and with
/// `coil_chunks_from_allocator` the process's pool is not used).
#[test]
#[cfg_attr(
    any(miri, coil_chunks_from_allocator),
    ignore = "the process's pool is not used there"
)]
fn a_take_registers_the_fork_handlers() {
    // SAFETY: from `take`, not used again.
    unsafe { give(take()) };
    assert_eq!(FORK_HANDLERS.load(Ordering::Acquire), REGISTERED);
}

/// A chunk made cold reads back as zeros natively (its pages were
/// returned) and is still usable: cooling keeps the `WARM_KEEP` last.
#[test]
#[cfg_attr(miri, ignore = "nothing is returned under Miri")]
fn cooled_chunks_come_back_zeroed_and_usable() {
    let mut pool = Pool::new();
    let n = WARM_MAX + 1;
    let chunks: Vec<_> = (0..n).map(|_| pool.take()).collect();
    fill_and_check(&chunks, 0x77);
    pool.warm.extend(chunks.iter().copied());
    pool.cool(CHUNK_BYTES);
    assert_eq!(pool.warm.len(), WARM_KEEP);
    assert_eq!(pool.cold.len(), n - WARM_KEEP);
    for c in &pool.cold {
        // SAFETY: a chunk of this test's regions, unused.
        let bytes = unsafe { std::slice::from_raw_parts(c.as_ptr(), CHUNK_BYTES) };
        assert!(bytes.iter().all(|&b| b == 0), "a cold chunk kept its bytes");
    }
    assert_eq!(
        pool.warm,
        chunks[n - WARM_KEEP..],
        "the last given back stay warm"
    );
    for (k, c) in pool.warm.iter().enumerate() {
        let want = 0x77 ^ (n - WARM_KEEP + k) as u8;
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(c.as_ptr(), CHUNK_BYTES) };
        assert!(
            bytes.iter().all(|&b| b == want),
            "a warm chunk lost its bytes"
        );
    }
    let cold: Vec<_> = pool.cold.clone();
    fill_and_check(&cold, 0x11);
    unmap(pool);
}

/// Pages larger than a chunk (16 KiB, as on some arm64 kernels): a drained
/// burst still goes cold a whole page at a time, so what stays resident
/// is bounded there too; chunks that share a page with one still in use
/// stay warm, and giving them back does not re-sort the warm list at every
/// give (it did: each give past `WARM_MAX` drained and spliced the whole
/// list back, quadratic in a drain).
#[test]
fn larger_pages_still_cool_and_stay_linear() {
    const PAGE: usize = 4 * CHUNK_BYTES;
    let per_page = PAGE / CHUNK_BYTES;
    let mut pool = Pool::new();
    // Pages' worth of chunks (a region need not start on a page of this
    // size here: the chunks of a page cut by a region's end stay warm).
    let pages = if cfg!(miri) { 300 } else { 1_000 };
    let mut chunks: Vec<_> = (0..pages * per_page).map(|_| pool.take()).collect();
    chunks.sort_unstable_by_key(|c| c.addr());
    // The first half given back whole; of the second half, every page
    // keeps its first chunk in use.
    let (whole, partial) = chunks.split_at(pages / 2 * per_page);
    let mut in_use = Vec::new();
    for &c in whole {
        pool.give(c, PAGE);
    }
    for &c in partial {
        if c.addr().get() % PAGE == 0 {
            in_use.push(c);
        } else {
            pool.give(c, PAGE);
        }
    }
    assert!(
        !pool.cold.is_empty(),
        "nothing went cold with {PAGE}-byte pages"
    );
    let cold: HashSet<usize> = pool.cold.iter().map(|c| c.addr().get()).collect();
    for c in &pool.cold {
        let page = c.addr().get() & !(PAGE - 1);
        for k in 0..per_page {
            assert!(
                cold.contains(&(page + k * CHUNK_BYTES)),
                "a page went cold in part: {page:#x}"
            );
        }
    }
    for c in &in_use {
        assert!(!cold.contains(&c.addr().get()), "a chunk in use went cold");
        assert!(!pool.warm.contains(c), "a chunk in use is warm");
    }
    let given = chunks.len() - in_use.len();
    assert_eq!(pool.warm.len() + pool.cold.len(), given, "a chunk was lost");
    assert!(
        pool.cools <= 2 * given / (WARM_MAX - WARM_KEEP) + 2,
        "{} coolings for {given} gives",
        pool.cools
    );
    unmap(pool);
}
