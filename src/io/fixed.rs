//! Registered (fixed) buffers: [`FixedBufPool`] and the [`FixedBuf`] values
//! it hands out.
//!
//! A pool is one page-aligned allocation of `count` buffers of `size` bytes.
//! Made on a loop that runs on io_uring, the whole allocation is registered
//! with that loop's ring as **one** entry of its registered-buffer table
//! (`IORING_REGISTER_BUFFERS_UPDATE`): the kernel pins its pages once, and a
//! [`File`](crate::fs::File) read or write on that loop into a buffer of the
//! pool goes out as `IORING_OP_READ_FIXED`/`WRITE_FIXED` naming that entry:
//! the kernel uses the pages it pinned once instead of reaching the user
//! mapping on every I/O (a page-cache read then copies with a plain
//! `memcpy` rather than a copy to user memory; an `O_DIRECT` one skips
//! pinning the pages per call). Made
//! anywhere else (epoll, the simulator, outside a loop), or used on another
//! loop, a `FixedBuf` is an ordinary owned buffer and the I/O is the plain one
//! (`pread`, `IORING_OP_READ`): the same results under every driver.
//!
//! Prior art: tokio-uring's `FixedBufRegistry`/`FixedBufPool` (the idea of
//! buffers checked out of a registered set and checked back in on drop);
//! coil registers a pool as one region rather than one entry per buffer, so a
//! loop's 1 024-entry table holds 1 024 pools of any size (up to 1 GiB each).
//!
//! # Invariants
//!
//! - **F1 — who owns a buffer.** Each index `0..count` is, at any moment,
//!   either on the pool's free list (`Pool::free`, under its mutex) or owned
//!   by exactly one [`FixedBuf`] (`try_take` pops it; the `FixedBuf`'s drop
//!   pushes it back). Only the owning `FixedBuf` reads or writes bytes
//!   `index * size .. (index + 1) * size`; it is not `Clone`. An I/O op takes
//!   the `FixedBuf` by value and owns it until its completion — also when its
//!   future is dropped (the op table keeps the op, `op` rule O1) and when a
//!   runtime's teardown leaks the op (then the buffer, and so the pool's
//!   memory, is leaked with it). So a buffer the kernel may still write is
//!   never on the free list: it goes back only when the op that held it has
//!   completed and dropped it.
//! - **F2 — the memory outlives every use of it.** The allocation belongs to
//!   `Pool`, behind an `Arc` held by every [`FixedBufPool`] clone and every
//!   `FixedBuf`; it is freed when the last of them drops. The kernel touches
//!   registered memory only to serve a fixed op that names its entry
//!   (`READ_FIXED`/`WRITE_FIXED`, see `io_uring_register(2)`), and
//!   every such op owns a `FixedBuf` of the pool (F1, F3): while one is in
//!   flight, the memory is alive.
//! - **F3 — an entry index means this pool only on its own loop.** The
//!   registration (`Pool::reg`: the loop's id and the entry index) is set
//!   once, at `new`, and never changes. The op layer names the entry only
//!   when the loop submitting the op is the loop whose ring registered it,
//!   and chooses it at the submit itself (`Operation::on_submit`, `fs/ops.rs`
//!   rule 4), since a future built on one loop may first submit on another:
//!   on any other loop the same index may hold
//!   another pool, or nothing, so there the op is the plain one. The entry is
//!   emptied (`Driver::unregister_fixed`) only after the pool is gone, and the
//!   driver hands an index out again only after that succeeded (coil-arch,
//!   uring invariant 6), so no op can ever name an entry that holds other
//!   memory than its buffer's.
//! - **F4 — teardown.** When the last reference drops, the pool empties its
//!   entry at once if that happens on its own loop's thread while the loop
//!   runs (the common case); otherwise (another thread — a `FixedBuf` is
//!   `Send` and may be dropped on the blocking pool under epoll —, another
//!   loop, between `block_on` calls) it leaves the index in its loop's
//!   release list (`op::FixedReleases`, shared and locked), which the loop
//!   empties at its next [`FixedBufPool::new`]; a loop that is gone closed
//!   its ring, and the entry with it. The memory is freed right away in
//!   every case: no op names the entry any more (F1–F3), so a
//!   still-registered entry is only pinned pages the kernel does not touch,
//!   released at the update or with the ring.
//!
//! `tests/rt/fs_fixed.rs` checks these under every driver (plain I/O off the
//! owner loop, a read dropped in flight keeping its buffer out, the release
//! and reuse of entries, a registration refused by `RLIMIT_MEMLOCK`); the
//! unit tests below check F1 and F2 without a kernel (run under Miri).

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use coil_arch::{FixedSlot, IoBuf, IoBufMut};

/// The largest pool: the kernel registers at most 1 GiB as one entry.
const MAX_BYTES: usize = 1 << 30;
/// Pools are page-aligned (the kernel pins whole pages).
const PAGE: usize = 4096;

/// Where a pool is registered (F3): set once by `new`.
struct Registration {
    slot: FixedSlot,
    /// The owner loop's release list (F4).
    releases: crate::op::FixedReleases,
}

struct Pool {
    /// `count * size` bytes, page-aligned; buffer `i` at `i * size` (F1).
    mem: NonNull<u8>,
    count: u32,
    size: usize,
    /// The free indices (F1) and who waits for one.
    free: Mutex<Free>,
    reg: Option<Registration>,
}

struct Free {
    /// Free indices, lowest last so that few pages get touched.
    list: Vec<u32>,
    /// Tasks waiting in [`FixedBufPool::take`] while `list` was empty. A
    /// returned buffer wakes them all: one takes it, the others wait again
    /// (a `take` dropped after registering its waker then costs a wake, and
    /// cannot swallow the buffer another waiter needs).
    waiters: Vec<std::task::Waker>,
}

// SAFETY: the bytes of buffer `i` are touched only through the one
// `FixedBuf` that owns index `i` (F1), which needs `&mut` to write; the free
// list is behind a mutex and `reg` never changes after `new`. The pointer is
// to an allocation of the global allocator, freeable from any thread.
unsafe impl Send for Pool {}
// SAFETY: as above: `&Pool` gives access only to the mutex and to fields
// that never change.
unsafe impl Sync for Pool {}

impl Pool {
    fn layout(count: u32, size: usize) -> std::alloc::Layout {
        // `new` checked `count * size <= MAX_BYTES`.
        std::alloc::Layout::from_size_align(count as usize * size, PAGE)
            .expect("checked in FixedBufPool::new")
    }

    /// The start of buffer `index`.
    fn buf_ptr(&self, index: u32) -> *mut u8 {
        debug_assert!(index < self.count);
        // SAFETY: index < count: inside the `count * size` allocation.
        unsafe { self.mem.as_ptr().add(index as usize * self.size) }
    }

    fn lock_free(&self) -> std::sync::MutexGuard<'_, Free> {
        // A panic while the list is locked cannot leave it inconsistent (one
        // push or pop), so a poisoned lock is used as is.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(reg) = &self.reg {
            release(reg);
        }
        // SAFETY: the allocation of `FixedBufPool::new`, with its layout; the
        // last reference is gone, so no buffer is out and no op names the
        // memory (F2).
        unsafe { std::alloc::dealloc(self.mem.as_ptr(), Pool::layout(self.count, self.size)) };
    }
}

/// F4: empties the entry now when this thread runs the owner loop (and its
/// driver is free), else leaves it on the owner's release list.
fn release(reg: &Registration) {
    let now = crate::rt::with_core(|core| {
        core.is_some_and(|core| core.id() == reg.slot.owner)
            && crate::rt::with_driver(|d| d.map(|d| d.unregister_fixed(reg.slot.index).is_ok()))
                == Some(true)
    });
    if !now {
        reg.releases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reg.slot.index);
    }
}

/// A pool of equal buffers registered with the current loop's io_uring for
/// fixed-buffer file I/O (module docs: `coil::io::fixed`).
///
/// [`try_take`](Self::try_take) hands out a [`FixedBuf`] ([`take`](Self::take)
/// waits for one); pass it to
/// [`File::read_at`](crate::fs::File::read_at),
/// [`read_exact_at`](crate::fs::File::read_exact_at),
/// [`write_at`](crate::fs::File::write_at) (and the other `File` reads and
/// writes) like any owned buffer. On the loop that made the pool, under
/// io_uring, those go out as `IORING_OP_READ_FIXED`/`WRITE_FIXED`: the kernel
/// works on the pages it pinned once rather than through the user mapping
/// (W6, page-cached 4 KiB reads: ~20 % more reads a second). Everywhere else
/// (epoll, the simulator, another loop, sockets and pipes) the buffer works
/// as an ordinary one. Dropping a `FixedBuf` returns it to the pool; a buffer
/// whose read was dropped in flight comes back only once the kernel is done
/// with it.
///
/// Cloning is cheap (the clones share the pool). The memory is freed once
/// the pool and all its buffers are dropped. The registration (the pinned
/// pages, charged to `RLIMIT_MEMLOCK`) goes at the same moment when that
/// happens on the pool's loop while it runs; dropped anywhere else (another
/// thread, between `block_on` calls), it stays until that loop's next
/// [`FixedBufPool::new`] or until its runtime is dropped.
///
/// ```
/// use coil::io::{BufResult, FixedBufPool};
///
/// coil::run(async {
///     let path = std::env::temp_dir().join(format!("coil-doc-fixed-{}", std::process::id()));
///     coil::fs::write(&path, "0123456789").await?;
///     let file = coil::fs::File::open(&path).await?;
///     let pool = FixedBufPool::new(4, 4096)?;
///     let buf = pool.try_take().expect("a fresh pool has free buffers");
///     let BufResult(res, buf) = file.read_exact_at(buf.limit(4), 3).await;
///     res?;
///     assert_eq!(&buf[..], b"3456");
///     drop(buf); // back to the pool
///     assert_eq!(pool.available(), 4);
///     coil::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct FixedBufPool {
    pool: Arc<Pool>,
}

impl FixedBufPool {
    /// A pool of `count` buffers of `size` bytes each, in one page-aligned
    /// allocation. Inside a coil loop running on io_uring it is registered
    /// with that loop's ring, which pins its pages (they become resident, and
    /// without `CAP_IPC_LOCK` count against `RLIMIT_MEMLOCK`); elsewhere it is
    /// not registered and its buffers are ordinary ones
    /// ([`is_registered`](Self::is_registered) says which).
    ///
    /// # Errors
    ///
    /// - `EINVAL` if `count` or `size` is 0 or the pool would exceed 1 GiB
    ///   (the kernel's limit for one registered region);
    /// - `ENOMEM` if the memory cannot be allocated;
    /// - the kernel's error if it refuses the registration, with its errno:
    ///   `ENOMEM` past `RLIMIT_MEMLOCK`, `ENOSPC` when the loop already holds
    ///   1 024 pools, `EINVAL` on kernels before 5.19 (which cannot make the
    ///   ring's sparse buffer table, `IORING_RSRC_REGISTER_SPARSE`).
    pub fn new(count: usize, size: usize) -> io::Result<FixedBufPool> {
        let einval = || io::Error::from_raw_os_error(libc::EINVAL);
        let total = count.checked_mul(size).ok_or_else(einval)?;
        if count == 0 || size == 0 || total > MAX_BYTES {
            return Err(einval());
        }
        let count = u32::try_from(count).map_err(|_| einval())?;
        let layout = Pool::layout(count, size);
        // SAFETY: a non-zero size (count, size >= 1).
        let mem = NonNull::new(unsafe { std::alloc::alloc(layout) })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let mut pool = Pool {
            mem,
            count,
            size,
            free: Mutex::new(Free {
                list: (0..count).rev().collect(),
                waiters: Vec::new(),
            }),
            reg: None,
        };
        // Before the pool is shared: on failure `pool` drops (unregistered)
        // and frees the memory.
        pool.reg = register(&pool, total)?;
        Ok(FixedBufPool {
            pool: Arc::new(pool),
        })
    }

    /// A free buffer (empty: `len() == 0`, `capacity() == size`), or `None`
    /// when every buffer is out. Lower indices first.
    pub fn try_take(&self) -> Option<FixedBuf> {
        let index = self.pool.lock_free().list.pop()?;
        Some(self.handed_out(index))
    }

    /// A free buffer, waiting until one comes back if every buffer is out
    /// (handed out, or held by an operation the kernel may still be using).
    /// Cancel-safe: dropping the future takes nothing from the pool.
    ///
    /// Waiters are not served in order: a returned buffer wakes every task
    /// waiting here, and the first of them to run (or any
    /// [`try_take`](Self::try_take)) gets it; the others wait again.
    ///
    /// ```
    /// use coil::io::FixedBufPool;
    ///
    /// coil::run(async {
    ///     let pool = FixedBufPool::new(1, 512)?;
    ///     let held = pool.try_take().unwrap();
    ///     let waiter = coil::spawn({
    ///         let pool = pool.clone();
    ///         async move { pool.take().await.capacity() }
    ///     });
    ///     coil::task::yield_now().await; // the waiter finds the pool empty
    ///     drop(held); // ... and gets this buffer
    ///     assert_eq!(waiter.await.unwrap(), 512);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn take(&self) -> FixedBuf {
        std::future::poll_fn(|cx| {
            let mut free = self.pool.lock_free();
            if let Some(index) = free.list.pop() {
                drop(free);
                return std::task::Poll::Ready(self.handed_out(index));
            }
            // `will_wake` compares pointers only: no user code under the lock.
            if free.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                return std::task::Poll::Pending;
            }
            drop(free);
            // A waker's clone (and drop) is user code, which may use this
            // pool: run it with the lock released, then look again (a buffer
            // that came back meanwhile woke the waiters listed then, not us).
            let waker = cx.waker().clone();
            let mut free = self.pool.lock_free();
            match free.list.pop() {
                Some(index) => {
                    drop(free);
                    drop(waker);
                    std::task::Poll::Ready(self.handed_out(index))
                }
                None => {
                    free.waiters.push(waker);
                    std::task::Poll::Pending
                }
            }
        })
        .await
    }

    /// The `FixedBuf` for `index`, just popped from the free list (F1).
    fn handed_out(&self, index: u32) -> FixedBuf {
        // SAFETY: `buf_ptr` points into the live, non-null allocation.
        let ptr = unsafe { NonNull::new_unchecked(self.pool.buf_ptr(index)) };
        FixedBuf {
            pool: self.pool.clone(),
            ptr,
            len: 0,
            // `new`: size <= MAX_BYTES < u32::MAX.
            limit: self.pool.size as u32,
        }
    }

    /// How many buffers are in the pool now (not handed out, and not held by
    /// an operation the kernel may still be using).
    pub fn available(&self) -> usize {
        self.pool.lock_free().list.len()
    }

    /// How many buffers the pool has in all.
    pub fn count(&self) -> usize {
        self.pool.count as usize
    }

    /// The size of each buffer in bytes.
    pub fn buf_size(&self) -> usize {
        self.pool.size
    }

    /// Whether the pool is registered with an io_uring (made on a loop running
    /// on io_uring): its buffers then go out as fixed-buffer I/O on that loop.
    pub fn is_registered(&self) -> bool {
        self.pool.reg.is_some()
    }
}

/// Registers `pool`'s memory with the current loop's ring, if it runs on
/// io_uring (F3), first emptying the entries its dropped pools left (F4).
fn register(pool: &Pool, total: usize) -> io::Result<Option<Registration>> {
    crate::rt::with_core(|core| {
        let Some(core) = core.filter(|c| c.is_uring()) else {
            return Ok(None);
        };
        let releases = core.home().fixed_releases();
        crate::rt::with_driver(|driver| {
            let Some(driver) = driver else {
                return Ok(None);
            };
            // Taken first: the list's lock is not held across the syscalls
            // (a pool dropping on another thread would wait for them).
            let stale = std::mem::take(&mut *releases.lock().unwrap_or_else(|e| e.into_inner()));
            for slot in stale {
                // A refused update leaves the entry taken, never reused
                // (coil-arch uring invariant 6): nothing to undo.
                let _ = driver.unregister_fixed(slot);
            }
            let region = libc::iovec {
                iov_base: pool.mem.as_ptr().cast(),
                iov_len: total,
            };
            // SAFETY: F2: the memory stays allocated while any op naming the
            // entry may be in flight (every such op owns a buffer of it), and
            // `Pool::drop` empties or hands over the entry (F4).
            let index = unsafe { driver.register_fixed(region) }?;
            Ok(Some(Registration {
                slot: FixedSlot {
                    owner: core.id(),
                    index,
                },
                releases: releases.clone(),
            }))
        })
    })
}

impl fmt::Debug for FixedBufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBufPool")
            .field("count", &self.pool.count)
            .field("buf_size", &self.pool.size)
            .field("available", &self.available())
            .field("registered", &self.pool.reg.as_ref().map(|r| r.slot))
            .finish()
    }
}

/// A buffer of a [`FixedBufPool`]: an owned I/O buffer ([`IoBuf`],
/// [`IoBufMut`]) of `capacity()` bytes, the first `len()` of them
/// initialised, that goes back to its pool when dropped.
///
/// Reads fill its spare room (`len()..capacity()`) and extend `len()`, as
/// for a `Vec<u8>`; writes send `..len()`. It dereferences to the
/// initialised bytes. It is `Send`: a read that runs on the blocking pool
/// (epoll) takes it along.
pub struct FixedBuf {
    pool: Arc<Pool>,
    /// The start of its buffer (`Pool::buf_ptr`; the index is recomputed
    /// from it only when the buffer goes back). Kept here, and `len` and
    /// `limit` as `u32` (a pool is at most 1 GiB), so that a `FixedBuf` is
    /// as small as a `Vec` (24 bytes): it is moved several times a read, and
    /// at 40 bytes W6 paid ~40 instructions a read more than with a `Vec`.
    ptr: NonNull<u8>,
    /// Initialised bytes (F1: only this value writes them).
    len: u32,
    /// The capacity I/O sees (`limit`), at most the pool's buffer size.
    limit: u32,
}

// SAFETY: `ptr` points into the pool's memory, which `pool` keeps alive
// (F2) and which only this value touches (F1): moving the value to another
// thread moves that sole access with it; `&FixedBuf` only reads.
unsafe impl Send for FixedBuf {}
// SAFETY: as above: shared references give read-only access.
unsafe impl Sync for FixedBuf {}

impl FixedBuf {
    /// The bytes I/O may fill (the pool's buffer size, or less after
    /// [`limit`](Self::limit)).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.limit as usize
    }

    /// Empties the buffer (`len() == 0`); the capacity stays.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Shortens the buffer to `len` bytes; nothing if it is shorter already.
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(u32::try_from(len).unwrap_or(u32::MAX));
    }

    /// The buffer with its capacity cut to `capacity` bytes (at most the
    /// pool's buffer size), so that a read fills no more: a read of 100 bytes
    /// into a 4 KiB buffer is `read_exact_at(buf.limit(100), pos)`. Initialised
    /// bytes past the new capacity are dropped from `len()`.
    ///
    /// # Panics
    ///
    /// If `capacity` is larger than the pool's buffer size.
    #[track_caller]
    #[must_use = "limit returns the buffer"]
    pub fn limit(mut self, capacity: usize) -> FixedBuf {
        assert!(
            capacity <= self.pool.size,
            "FixedBuf::limit({capacity}) is larger than the pool's {}-byte buffers; \
             ask for at most FixedBufPool::buf_size() bytes",
            self.pool.size
        );
        // capacity <= size <= MAX_BYTES: fits.
        self.limit = capacity as u32;
        self.len = self.len.min(self.limit);
        self
    }

    /// Appends `bytes` (to send them with a write).
    ///
    /// # Panics
    ///
    /// If they do not fit in the spare capacity.
    #[track_caller]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let room = (self.limit - self.len) as usize;
        assert!(
            bytes.len() <= room,
            "FixedBuf::extend_from_slice: {} bytes do not fit in the {room} bytes left of a \
             {}-byte buffer; clear() it first or take a pool with larger buffers",
            bytes.len(),
            self.limit
        );
        // SAFETY: F1: this value owns the buffer; `len + bytes.len() <= limit
        // <= size`, inside it; `bytes` is caller memory, not the pool's (the
        // pool's bytes are reachable only through `&mut self`).
        unsafe {
            let dst = self.ptr.as_ptr().add(self.len as usize);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
        }
        self.len += bytes.len() as u32; // <= room
    }
}

impl FixedBuf {
    /// Which buffer of the pool this is.
    fn index(&self) -> u32 {
        let off = self.ptr.as_ptr() as usize - self.pool.mem.as_ptr() as usize;
        (off / self.pool.size) as u32
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        // F1: back on the free list; no op holds it any more (an op owns its
        // buffer until its completion).
        let index = self.index();
        let waiters = {
            let mut free = self.pool.lock_free();
            free.list.push(index);
            std::mem::take(&mut free.waiters)
        };
        // Woken after the lock is released (a waker may run any code).
        waiters.into_iter().for_each(std::task::Waker::wake);
    }
}

impl Deref for FixedBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: F1: this value owns the buffer, whose first `len` bytes are
        // initialised (`set_init`, `extend_from_slice`); the pool's memory
        // lives as long as `self.pool` (F2).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl DerefMut for FixedBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBuf")
            .field("index", &self.index())
            .field("len", &self.len)
            .field("capacity", &self.limit)
            .field("registered", &self.pool.reg.is_some())
            .finish()
    }
}

// SAFETY: the buffer's memory is inside the pool's allocation, which this
// value keeps alive (F2) and which never moves; `len <= limit <= size`.
unsafe impl IoBuf for FixedBuf {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    #[inline]
    fn bytes_init(&self) -> usize {
        self.len as usize
    }
    #[inline]
    fn bytes_total(&self) -> usize {
        self.limit as usize
    }
    /// The pool's registration: the whole buffer lies inside the registered
    /// region (F3).
    #[inline]
    fn fixed_slot(&self) -> Option<FixedSlot> {
        self.pool.reg.as_ref().map(|r| r.slot)
    }
    const MAY_BE_FIXED: bool = true;
}

// SAFETY: as for IoBuf; writable because this value owns the buffer (F1);
// the caller of `set_init` promises the bytes are initialised.
unsafe impl IoBufMut for FixedBuf {
    #[inline]
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    #[inline]
    unsafe fn set_init(&mut self, pos: usize) {
        debug_assert!(pos <= self.limit as usize);
        // pos <= limit (the caller's promise): fits.
        self.len = self.len.max(pos as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_owned_once_and_go_back_on_drop() {
        // Outside a loop: not registered, the bookkeeping is the same (F1).
        let pool = FixedBufPool::new(3, 64).unwrap();
        assert!(!pool.is_registered());
        let mut a = pool.try_take().unwrap();
        let mut b = pool.try_take().unwrap();
        let c = pool.try_take().unwrap();
        assert_eq!(
            (a.index(), b.index(), c.index()),
            (0, 1, 2),
            "low indices first"
        );
        assert!(pool.try_take().is_none(), "every buffer is out");
        a.extend_from_slice(b"hello");
        b.extend_from_slice(&[7; 64]);
        assert_eq!((&a[..], &b[..2]), (&b"hello"[..], &[7u8, 7][..]));
        a[0] = b'j';
        assert_eq!(&a[..], b"jello", "a's bytes are its own");
        assert_eq!(b[0], 7);
        drop(b);
        assert_eq!(pool.available(), 1);
        let again = pool.try_take().unwrap();
        assert_eq!((again.index(), again.len()), (1, 0), "reused, empty");
        drop((again, c));
        // The pool handle goes first; the buffer keeps the memory (F2).
        drop(pool);
        assert_eq!(&a[..], b"jello");
        drop(a); // frees the memory (Miri: no leak, no use after free)
    }

    #[test]
    fn buffers_move_and_drop_across_threads() {
        let pool = FixedBufPool::new(2, 16).unwrap();
        let mut a = pool.try_take().unwrap();
        a.extend_from_slice(b"abc");
        let back = std::thread::spawn(move || {
            assert_eq!(&a[..], b"abc");
            a.clear();
            a.extend_from_slice(b"xy");
            a
        })
        .join()
        .unwrap();
        assert_eq!(&back[..], b"xy");
        std::thread::spawn(move || drop(back)).join().unwrap();
        assert_eq!(
            pool.available(),
            2,
            "dropped on another thread, back in the pool"
        );
    }

    #[test]
    fn a_fixed_buf_is_as_small_as_a_vec() {
        assert_eq!(
            std::mem::size_of::<FixedBuf>(),
            std::mem::size_of::<Vec<u8>>()
        );
    }

    #[test]
    fn io_buf_view_and_limits() {
        let pool = FixedBufPool::new(2, 32).unwrap();
        let mut a = pool.try_take().unwrap();
        a.extend_from_slice(&[1; 20]);
        assert_eq!(
            (a.bytes_init(), a.bytes_total(), a.fixed_slot()),
            (20, 32, None)
        );
        let mut a = a.limit(8);
        assert_eq!((a.len(), a.capacity()), (8, 8), "cut to the new capacity");
        // SAFETY: test: the first 8 bytes were written above.
        unsafe { a.set_init(4) };
        assert_eq!(a.len(), 8, "set_init never shortens");
        let b = pool.try_take().unwrap();
        let gap = b.stable_ptr() as usize - a.stable_ptr() as usize;
        assert_eq!(gap, 32, "buffer i at i * size");
        assert_eq!(a.stable_ptr() as usize % PAGE, 0, "page-aligned");
    }

    /// Counts its wakes.
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn take_waits_for_a_returned_buffer_and_is_cancel_safe() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let pool = FixedBufPool::new(1, 8).unwrap();
        let held = pool.try_take().unwrap();
        let (wa, wb) = (Arc::new(Wakes(0.into())), Arc::new(Wakes(0.into())));
        let (waker_a, waker_b) = (Waker::from(wa.clone()), Waker::from(wb.clone()));
        let mut a = Box::pin(pool.take());
        let mut b = Box::pin(pool.take());
        assert!(
            a.as_mut()
                .poll(&mut Context::from_waker(&waker_a))
                .is_pending()
        );
        assert!(
            a.as_mut()
                .poll(&mut Context::from_waker(&waker_a))
                .is_pending()
        );
        assert!(
            b.as_mut()
                .poll(&mut Context::from_waker(&waker_b))
                .is_pending()
        );
        // One waker per waiter where `will_wake` can tell (not under Miri,
        // whose vtables are not unique: a repeat then costs one more wake).
        assert!((2..=3).contains(&pool.pool.lock_free().waiters.len()));
        drop(a); // cancelled after registering: must not swallow the buffer
        drop(held);
        let woken = |w: &Wakes| w.0.load(std::sync::atomic::Ordering::Relaxed);
        assert!(woken(&wa) >= 1 && woken(&wb) == 1, "every waiter woken");
        assert!(pool.pool.lock_free().waiters.is_empty());
        let Poll::Ready(buf) = b.as_mut().poll(&mut Context::from_waker(&waker_b)) else {
            panic!("the returned buffer is free for the waiter still there")
        };
        assert_eq!((buf.capacity(), pool.available()), (8, 0));
    }

    #[test]
    fn take_clones_its_waker_with_the_pool_unlocked() {
        // A waker's clone is user code (a custom vtable) and may use the
        // pool: here it returns the held buffer, which needs the lock (held
        // by `take`, that would deadlock). It checks with `try_lock` first
        // and records a clone made under the lock instead of hanging.
        use std::cell::{Cell, RefCell};
        use std::future::Future;
        use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
        thread_local! {
            static POOL: RefCell<Option<FixedBufPool>> = const { RefCell::new(None) };
            static HELD: RefCell<Option<FixedBuf>> = const { RefCell::new(None) };
            static UNDER_LOCK: Cell<u32> = const { Cell::new(0) };
        }
        fn clone(_: *const ()) -> RawWaker {
            let locked = POOL.with_borrow(|p| p.as_ref().unwrap().pool.free.try_lock().is_err());
            if locked {
                UNDER_LOCK.set(UNDER_LOCK.get() + 1);
            } else {
                drop(HELD.take()); // back to the pool, during the clone
            }
            RawWaker::new(std::ptr::null(), &VTABLE)
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        let pool = FixedBufPool::new(1, 8).unwrap();
        POOL.set(Some(pool.clone()));
        HELD.set(Some(pool.try_take().unwrap()));
        // SAFETY: the vtable's functions never read the (null) data pointer,
        // and clone returns a waker with the same vtable.
        let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
        let mut take = Box::pin(pool.take());
        let Poll::Ready(buf) = take.as_mut().poll(&mut Context::from_waker(&waker)) else {
            panic!("the buffer returned during the waker's clone is taken at once")
        };
        assert_eq!(
            UNDER_LOCK.get(),
            0,
            "the waker was cloned under the pool's lock"
        );
        assert!(pool.pool.lock_free().waiters.is_empty());
        drop((buf, take));
        POOL.take();
        assert_eq!(pool.available(), 1);
    }

    #[test]
    fn bad_sizes_are_einval() {
        for (count, size) in [(0, 64), (4, 0), (2, 1 << 30), (usize::MAX, 2)] {
            let err = FixedBufPool::new(count, size).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{count} x {size}");
        }
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn overfilling_panics_with_what_to_do() {
        let pool = FixedBufPool::new(1, 4).unwrap();
        pool.try_take().unwrap().extend_from_slice(b"12345");
    }
}
