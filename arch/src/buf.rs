//! Owned buffers for completion-based I/O: [`IoBuf`], [`IoBufMut`], [`BufResult`].
//!
//! io_uring writes into (or reads from) a buffer *after* the call that submitted
//! the operation has returned, so the buffer must stay valid, at the same
//! address, until the completion arrives — even if the future that submitted
//! it is dropped. coil therefore takes buffers **by value** and hands them back
//! with the result ([`BufResult`]), error or not.
//!
//! The traits are `unsafe` because the kernel trusts their answers: a wrong
//! pointer or length is a memory-safety bug, not a logic bug.

use std::io;

/// A buffer whose initialised bytes the kernel may read (writes, sends).
///
/// # Safety
///
/// - `stable_ptr` must point to at least `bytes_total()` bytes, of which the
///   first `bytes_init()` are initialised, and must keep pointing to the same
///   memory while the value is moved (heap storage or `'static` data).
/// - `bytes_init() <= bytes_total()`.
///
/// A borrowed buffer (`&[u8]`, `&mut Vec<u8>`, `&mut [u8]`) cannot be one: the
/// kernel may still use it after the future that lent it is dropped. Pass the
/// buffer itself and take it back from the [`BufResult`]:
///
/// ```compile_fail
/// # use coil_arch::IoBuf;
/// fn write_from(_: impl IoBuf) {}
/// let buf = vec![1u8, 2, 3];
/// write_from(&buf[..]); // error: `&[u8]` is not an owned I/O buffer
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an owned I/O buffer (coil::io::IoBuf)",
    label = "the kernel may use this buffer after the call returns, so it must be owned",
    note = "pass the buffer by value (Vec<u8>, Box<[u8]>, String, &'static [u8] or &'static str) \
            and take it back from the BufResult; for part of a buffer use coil::io::Slice"
)]
pub unsafe trait IoBuf: 'static {
    /// Start of the buffer; stable across moves of `self`.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes (`Vec::len`).
    fn bytes_init(&self) -> usize;
    /// Capacity in bytes (`Vec::capacity`).
    fn bytes_total(&self) -> usize;
    /// Where the buffer lies inside memory registered with an io_uring for
    /// fixed-buffer I/O (`IORING_OP_READ_FIXED`/`WRITE_FIXED`), if it does:
    /// `None` (the default) for ordinary memory. coil's `FixedBuf` answers
    /// `Some`; the op layer checks [`FixedSlot::owner`] against the loop it
    /// submits on before it lets a [`Read`](crate::op::Read) or
    /// [`Write`](crate::op::Write) name the slot. An implementation that
    /// answers `Some` promises that its whole `0..bytes_total()` lies inside
    /// the memory registered at [`FixedSlot::index`] of that owner's ring, for
    /// as long as the value exists.
    #[inline(always)]
    fn fixed_slot(&self) -> Option<FixedSlot> {
        None
    }
    /// Whether [`fixed_slot`](Self::fixed_slot) may answer `Some` for this
    /// type (default `false`). Lets a read or write into an ordinary buffer
    /// skip, at compile time, the choice between the plain and the fixed
    /// entry (W6: ~8 instructions a read).
    const MAY_BE_FIXED: bool = false;
}

/// A registered fixed buffer region (see [`IoBuf::fixed_slot`]): which loop's
/// ring registered it, and at which index of that ring's buffer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedSlot {
    /// The id of the event loop (coil's `Runtime` id) whose ring registered
    /// the memory; meaningless to any other loop.
    pub owner: u64,
    /// The index in that ring's registered-buffer table.
    pub index: u16,
}

/// A buffer the kernel may write into (reads, receives): it fills the spare
/// room `bytes_init()..bytes_total()` and the new length is recorded with
/// [`IoBufMut::set_init`].
///
/// # Safety
///
/// As [`IoBuf`], and `stable_mut_ptr` points to the same memory as
/// `stable_ptr`, writable for `bytes_total()` bytes.
///
/// ```compile_fail
/// # use coil_arch::IoBufMut;
/// fn read_into(_: impl IoBufMut) {}
/// let mut buf = vec![0u8; 16];
/// read_into(&mut buf); // error: `&mut Vec<u8>` is not an owned buffer to read into
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an owned buffer to read into (coil::io::IoBufMut)",
    label = "the kernel may write into this buffer after the call returns, so it must be owned",
    note = "pass a Vec<u8> (reads fill its spare capacity: Vec::with_capacity(n)) or a Box<[u8]> \
            by value and take it back from the BufResult"
)]
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the buffer, writable.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Records that the first `pos` bytes are initialised.
    ///
    /// # Safety
    ///
    /// The first `pos` bytes must be initialised and `pos <= bytes_total()`.
    unsafe fn set_init(&mut self, pos: usize);
}

/// `IoBuf` for types whose bytes are `as_ptr()..`, `len()` of them
/// initialised, and `$total()` in all (`capacity`, or `len` when there is no
/// spare room).
macro_rules! io_buf {
    ($($t:ty => $total:ident),* $(,)?) => {$(
        // SAFETY: the invocation below says why each type keeps `as_ptr`
        // stable across moves with `len() <= $total()`.
        unsafe impl IoBuf for $t {
            fn stable_ptr(&self) -> *const u8 {
                self.as_ptr()
            }
            fn bytes_init(&self) -> usize {
                self.len()
            }
            fn bytes_total(&self) -> usize {
                self.$total()
            }
        }
    )*};
}

// SAFETY: a Vec's or String's heap pointer does not move when the value
// moves, and len <= capacity; a boxed slice's heap pointer is stable and it
// is fully initialised; 'static data never moves and is initialised.
io_buf!(
    Vec<u8> => capacity,
    Box<[u8]> => len,
    &'static [u8] => len,
    &'static str => len,
    // Not IoBufMut: the kernel could write bytes that are not UTF-8.
    String => capacity,
);

// SAFETY: same allocation as `stable_ptr`; the caller of set_init promises the
// bytes are initialised and within capacity.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if pos > self.len() {
            // SAFETY: forwarded from the caller (initialised, <= capacity).
            unsafe { self.set_len(pos) };
        }
    }
}

// SAFETY: same allocation as `stable_ptr`; a boxed slice is always fully
// initialised, so set_init has nothing to record.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

/// The result of an operation on an owned buffer, with the buffer handed back
/// whether the operation succeeded or not.
///
/// ```
/// # use coil_arch::BufResult;
/// let BufResult(res, buf) = BufResult(Ok::<usize, std::io::Error>(3), vec![1u8, 2, 3]);
/// assert_eq!(res.unwrap(), buf.len());
/// ```
#[must_use = "the buffer comes back with the result; ignoring it loses the buffer"]
#[derive(Debug)]
pub struct BufResult<T, B>(pub io::Result<T>, pub B);

impl<T, B> BufResult<T, B> {
    /// Splits into `(result, buffer)`.
    pub fn into_parts(self) -> (io::Result<T>, B) {
        (self.0, self.1)
    }

    /// Maps the success value, keeping the buffer.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> BufResult<U, B> {
        BufResult(self.0.map(f), self.1)
    }
}
