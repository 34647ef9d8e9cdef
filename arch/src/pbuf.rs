//! Provided buffers: a loop's pool of equal read buffers ([`BufRing`]), lent to
//! a read only once data is there, and handed to user code as an owned
//! [`PooledBuf`] that goes back to the pool when dropped. An idle connection
//! with a read waiting then holds no buffer at all.
//!
//! Under io_uring the pool is registered with the ring as a *provided-buffer
//! ring* (`IORING_REGISTER_PBUF_RING`, Linux 5.19+): a recv submitted with
//! `IOSQE_BUFFER_SELECT` lets the kernel pick a buffer when the data arrives,
//! and the completion names it (`IORING_CQE_F_BUFFER`, id in the upper 16 bits
//! of the CQE flags). Where the registration is refused (an older kernel, epoll,
//! the simulator) the pool stays in *user mode*: a free list the op takes a
//! buffer from when the socket is ready (epoll) or at submission (io_uring
//! without the ring, the simulator).
//!
//! # Who owns a buffer
//!
//! Every buffer id `0..count` is, at any moment, in exactly one of these states:
//!
//! 1. **In the pool**: in the kernel ring between its tail and the kernel's head
//!    (registered), or on the free list (user mode). Only the kernel (a
//!    buffer-select recv of this group) or [`BufRing::take`] may take it.
//! 2. **Lent to the kernel**: picked by a recv in flight. The kernel may write
//!    it until the recv's completion; userspace cannot tell 1 and 2 apart and
//!    touches neither.
//! 3. **Lent to an op** (user mode): `RecvPooled::lent`; the op's system call
//!    (or the io_uring recv pointing at it) writes it. The op gives it back if it
//!    completes without data, and when it is dropped, which the op layer does
//!    only after its completion.
//! 4. **Handed out**: a [`PooledBuf`] owns it, after the completion that filled
//!    it. No one else reads or writes it.
//! 5. **Returned**: dropping the `PooledBuf` (or a failed read) calls
//!    `BufRing::give`, which puts it back in state 1: at the ring's tail,
//!    published with a release store of the tail, or on the free list.
//!
//! A buffer id moves only along these edges and is never in two states: a
//! `PooledBuf` is not `Clone`, and `give` is reached only from its drop, from
//! the op that held it in state 3, or from the completion that took it out of
//! state 2. So the ring never holds more than `count` entries.
//!
//! # Lifetime of the memory (drop contexts)
//!
//! The entry array and the buffers belong to one reference-counted allocation
//! (`Rc<Inner>`). References are held by the loop (its op home), by every
//! `RecvPooled` op (so an op the kernel may still write through keeps it alive,
//! also an orphaned op, and also an op leaked by a teardown that could not
//! confirm the kernel was done: the memory is then leaked with it), and by every
//! `PooledBuf`. The memory is freed with the last reference, never while a
//! buffer is handed out or a recv that may pick one is in flight.
//!
//! `BufRing` and `PooledBuf` are `!Send` (they hold an `Rc`): a buffer is dropped
//! on the loop's thread. It may be dropped after its loop is gone (the runtime
//! dropped, another runtime running on the thread): `give` then writes only this
//! allocation (the entry at the tail, the tail), which is alive because the
//! buffer holds it; the kernel reads the ring only to serve a buffer-select
//! recv of this group, and none remains once the loop's ring is closed (the
//! driver's invariant 5). No path reaches a freed ring or another loop's ring.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};

/// `struct io_uring_buf`; the `resv` field of entry 0 is the ring's tail.
#[repr(C)]
struct RawBuf {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}
const _: () = assert!(std::mem::size_of::<RawBuf>() == 16);

const PAGE: usize = 4096;

struct Inner {
    /// `count` entries, page-aligned and zeroed (the kernel's ring while registered).
    entries: NonNull<RawBuf>,
    /// `count * size` bytes: buffer `bid` is at `bid * size`.
    bufs: NonNull<u8>,
    count: u16,
    size: u32,
    bgid: u16,
    /// Registered with a ring: free buffers are in the kernel ring, not on `free`.
    registered: Cell<bool>,
    /// The tail this side has published (registered).
    tail: Cell<u16>,
    /// User mode: the free buffers (state 1).
    free: RefCell<Vec<u16>>,
    /// Buffers in states 3 and 4 (for `Debug` and the tests).
    out: Cell<u32>,
}

/// A loop's pool of `count` read buffers of `size` bytes (module docs). Cloning
/// is cheap: the clones share the pool.
#[derive(Clone)]
pub struct BufRing(Rc<Inner>);

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("count", &self.0.count)
            .field("size", &self.0.size)
            .field("registered", &self.0.registered.get())
            .field("out", &self.0.out.get())
            .finish()
    }
}

impl BufRing {
    /// A pool of `count` (a power of two, at most 32 768) buffers of `size`
    /// bytes, for buffer group `bgid`, in user mode. The buffers are allocated
    /// at once but only touched when a read fills them.
    pub fn new(count: u16, size: u32, bgid: u16) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > 1 << 15 || size == 0 {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let ent = std::alloc::Layout::from_size_align(usize::from(count) * 16, PAGE)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let buf = std::alloc::Layout::from_size_align(usize::from(count) * size as usize, PAGE)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: both layouts have a non-zero size.
        let (entries, bufs) = unsafe { (std::alloc::alloc_zeroed(ent), std::alloc::alloc(buf)) };
        let (Some(entries), Some(bufs)) = (NonNull::new(entries.cast()), NonNull::new(bufs)) else {
            // SAFETY: whichever was allocated, with its own layout.
            unsafe {
                if !entries.is_null() {
                    std::alloc::dealloc(entries, ent);
                }
                if !bufs.is_null() {
                    std::alloc::dealloc(bufs, buf);
                }
            }
            return Err(io::ErrorKind::OutOfMemory.into());
        };
        Ok(BufRing(Rc::new(Inner {
            entries,
            bufs,
            count,
            size,
            bgid,
            registered: Cell::new(false),
            tail: Cell::new(0),
            // Popped from the end: the low ids first, so few pages get touched.
            free: RefCell::new((0..count).rev().collect()),
            out: Cell::new(0),
        })))
    }

    /// Bytes per buffer.
    pub fn buf_size(&self) -> u32 {
        self.0.size
    }

    /// The buffer group id.
    pub fn bgid(&self) -> u16 {
        self.0.bgid
    }

    /// Registered with an io_uring (reads pick buffers in the kernel).
    pub fn is_registered(&self) -> bool {
        self.0.registered.get()
    }

    /// Buffers lent to ops or handed out (states 3 and 4).
    pub fn out(&self) -> u32 {
        self.0.out.get()
    }

    /// Where the entry array is and how many entries it has, for the registration.
    pub(crate) fn ring_addr(&self) -> (u64, u16) {
        (self.0.entries.as_ptr() as u64, self.0.count)
    }

    /// After the kernel accepted the ring: moves every free buffer into it.
    ///
    /// # Safety
    ///
    /// The entry array was just registered as buffer group `bgid` of a ring
    /// that no buffer-select request has used yet.
    pub(crate) unsafe fn set_registered(&self) {
        self.0.registered.set(true);
        let free = std::mem::take(&mut *self.0.free.borrow_mut());
        for bid in free {
            self.give(bid);
        }
    }

    /// User mode: lends a free buffer to an op (state 1 → 3); `None` when all
    /// are out, or when the kernel holds the free ones (registered).
    pub fn take(&self) -> Option<u16> {
        let bid = self.0.free.borrow_mut().pop()?;
        self.0.out.set(self.0.out.get() + 1);
        Some(bid)
    }

    /// Start of buffer `bid`, writable for `buf_size()` bytes by whoever holds
    /// the buffer (module docs).
    pub fn buf_ptr(&self, bid: u16) -> *mut u8 {
        assert!(bid < self.0.count, "buffer id {bid} out of range");
        // SAFETY: bid < count: inside the `count * size` allocation.
        unsafe {
            self.0
                .bufs
                .as_ptr()
                .add(usize::from(bid) * self.0.size as usize)
        }
    }

    /// Back to the pool (states 3 and 4 → 1, or 2 → 1 for a buffer a completion
    /// named but that carries nothing); see the module docs for who may call it.
    pub(crate) fn give(&self, bid: u16) {
        debug_assert!(bid < self.0.count);
        if !self.0.registered.get() {
            let mut free = self.0.free.borrow_mut();
            debug_assert!(!free.contains(&bid), "buffer {bid} given back twice");
            free.push(bid);
            return;
        }
        let tail = self.0.tail.get();
        let i = usize::from(tail & (self.0.count - 1));
        // Field writes through the raw pointer: no reference overlaps the
        // tail in entry 0's `resv`.
        // SAFETY: i < count (inside the entry array); the ring holds fewer than
        // `count` buffers while `bid` is out of it (module docs), so the kernel
        // cannot see entry `i` until the release store below publishes it.
        unsafe {
            let e = self.0.entries.as_ptr().add(i);
            (&raw mut (*e).addr).write(self.buf_ptr(bid) as u64);
            (&raw mut (*e).len).write(self.0.size);
            (&raw mut (*e).bid).write(bid);
        }
        let tail = tail.wrapping_add(1);
        self.0.tail.set(tail);
        // SAFETY: entry 0's `resv` is an aligned u16 inside the live array; the
        // kernel only reads it, atomically.
        let shared = unsafe { AtomicU16::from_ptr(&raw mut (*self.0.entries.as_ptr()).resv) };
        shared.store(tail, Ordering::Release);
    }

    /// A buffer a completion handed over (state 2 or 3 → 4), `len` bytes filled.
    ///
    /// # Safety
    ///
    /// `bid` is in state 2 or 3 for this caller (a completion of a read that
    /// picked or held it, taken once), and `len` bytes at its start are
    /// initialised.
    pub unsafe fn claim(&self, bid: u16, len: usize) -> PooledBuf {
        assert!(len <= self.0.size as usize && bid < self.0.count);
        if self.0.registered.get() {
            self.0.out.set(self.0.out.get() + 1); // from the kernel (state 2)
        }
        PooledBuf(Repr::Ring {
            ring: self.clone(),
            bid,
            len: len as u32,
        })
    }

    /// A buffer lent to an op (state 3) goes back unused.
    pub fn put_back(&self, bid: u16) {
        self.0.out.set(self.0.out.get() - 1);
        self.give(bid);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: the allocations of `BufRing::new`, with the same layouts
        // (validated there); the last reference is gone, so no buffer is out and
        // no recv that could pick one is in flight (module docs).
        unsafe {
            std::alloc::dealloc(
                self.entries.as_ptr().cast(),
                std::alloc::Layout::from_size_align_unchecked(usize::from(self.count) * 16, PAGE),
            );
            std::alloc::dealloc(
                self.bufs.as_ptr(),
                std::alloc::Layout::from_size_align_unchecked(
                    usize::from(self.count) * self.size as usize,
                    PAGE,
                ),
            );
        }
    }
}

enum Repr {
    Ring { ring: BufRing, bid: u16, len: u32 },
    Heap(Vec<u8>),
}

/// Bytes a read delivered, in a buffer of the loop's pool (or, when the pool
/// was empty or for kept bytes, in a plain allocation). Dereferences to the
/// bytes; dropping it returns the buffer to the pool; [`into_vec`](Self::into_vec)
/// copies them out. `!Send`: it stays on its loop's thread (module docs).
pub struct PooledBuf(Repr);

impl PooledBuf {
    /// A buffer owning `v` (not from a pool).
    pub fn from_vec(v: Vec<u8>) -> PooledBuf {
        PooledBuf(Repr::Heap(v))
    }

    /// The bytes, copied into a `Vec` (the pool's buffer goes back at once).
    pub fn into_vec(self) -> Vec<u8> {
        let mut this = self;
        match &mut this.0 {
            Repr::Heap(v) => std::mem::take(v),
            Repr::Ring { .. } => this.to_vec(), // `this` drops: back to the pool
        }
    }

    /// Whether the bytes are in a buffer of the pool (not a plain allocation).
    pub fn is_pooled(&self) -> bool {
        matches!(self.0, Repr::Ring { .. })
    }
}

impl std::ops::Deref for PooledBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Heap(v) => v,
            // SAFETY: state 4: this value owns buffer `bid`, whose first `len`
            // bytes the read initialised (`claim`); the pool's memory lives as
            // long as `ring`.
            Repr::Ring { ring, bid, len } => unsafe {
                std::slice::from_raw_parts(ring.buf_ptr(*bid), *len as usize)
            },
        }
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Repr::Ring { ring, bid, .. } = &self.0 {
            ring.put_back(*bid);
        }
    }
}

impl fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuf")
            .field("len", &self.len())
            .field("pooled", &self.is_pooled())
            .finish()
    }
}

// SAFETY: the bytes are stable across moves (heap or pool memory kept alive by
// the value itself) and fully initialised (`len` of them).
unsafe impl crate::IoBuf for PooledBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(ring: &BufRing, bid: u16, bytes: &[u8]) -> PooledBuf {
        // SAFETY: test: `bid` was taken (state 3) and is written here first.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ring.buf_ptr(bid), bytes.len());
            ring.claim(bid, bytes.len())
        }
    }

    #[test]
    fn buffers_go_back_on_drop_and_outlive_the_loop() {
        let ring = BufRing::new(4, 64, 0).unwrap();
        let a = ring.take().unwrap();
        let b = ring.take().unwrap();
        assert_eq!((a, b), (0, 1), "low ids first");
        let pa = fill(&ring, a, b"hello");
        ring.put_back(b);
        assert_eq!(&*pa, b"hello");
        assert_eq!(ring.out(), 1);
        drop(ring); // the loop is gone; the buffer keeps the memory
        assert_eq!(&*pa, b"hello");
        drop(pa); // gives back into the still-live pool, then frees it (Miri: no leak, no use after free)
    }

    #[test]
    fn registered_mode_publishes_each_buffer_once() {
        let ring = BufRing::new(4, 64, 0).unwrap();
        // SAFETY: test: no kernel reads this ring; the bookkeeping is the same.
        unsafe { ring.set_registered() };
        assert_eq!(ring.take(), None, "the kernel holds the free buffers");
        assert_eq!(ring.0.tail.get(), 4);
        let p = fill(&ring, 2, b"x");
        assert_eq!(ring.out(), 1);
        drop(p);
        assert_eq!((ring.out(), ring.0.tail.get()), (0, 5));
        // SAFETY: test: entry 0 (tail 4 wrapped) is the buffer just given back.
        let e = unsafe { &*ring.0.entries.as_ptr() };
        assert_eq!((e.bid, e.len, e.resv), (2, 64, 5));
    }

    #[test]
    fn into_vec_copies_and_returns_the_buffer() {
        let ring = BufRing::new(2, 8, 0).unwrap();
        let bid = ring.take().unwrap();
        let v = fill(&ring, bid, b"abc").into_vec();
        assert_eq!((v.as_slice(), ring.out()), (&b"abc"[..], 0));
        assert_eq!(ring.take(), Some(bid), "back on the free list");
    }
}
