//! [`Slice`]: a buffer viewed from an offset, so partial writes can resume.

use coil_arch::{IoBuf, IoBufMut};

/// `buf` seen from byte `begin` on; `write_all` uses it to send the rest of a
/// buffer after a short write, without copying.
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
}

impl<B: IoBuf> Slice<B> {
    /// View `buf` from `begin` on.
    ///
    /// # Panics
    ///
    /// If `begin` is past the initialised bytes.
    pub fn new(buf: B, begin: usize) -> Slice<B> {
        assert!(
            begin <= buf.bytes_init(),
            "Slice::new: begin {begin} is past the {} initialised bytes",
            buf.bytes_init()
        );
        Slice { buf, begin }
    }

    /// Where the view starts.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// Moves the start forward by `n` bytes.
    pub(crate) fn advance(&mut self, n: usize) {
        self.begin = (self.begin + n).min(self.buf.bytes_init());
    }

    /// The whole buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

// SAFETY: a sub-range of `buf`, which satisfies the contract; begin <= init
// (checked in `new`, kept by `advance`).
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: begin <= bytes_init <= bytes_total: inside the allocation.
        unsafe { self.buf.stable_ptr().add(self.begin) }
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init() - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.buf.bytes_total() - self.begin
    }
    /// The inner buffer's: a sub-range of it lies in the same registered
    /// memory (a fixed `write_all_at` resumes as a fixed write).
    #[inline(always)]
    fn fixed_slot(&self) -> Option<coil_arch::FixedSlot> {
        self.buf.fixed_slot()
    }
    const MAY_BE_FIXED: bool = B::MAY_BE_FIXED;
}

// SAFETY: as above, writable through the inner buffer.
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: as in stable_ptr.
        unsafe { self.buf.stable_mut_ptr().add(self.begin) }
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded, shifted by `begin`.
        unsafe { self.buf.set_init(self.begin + pos) };
    }
}
