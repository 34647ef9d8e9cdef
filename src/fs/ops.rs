//! How a file operation runs: through the ring under io_uring, on the
//! blocking pool under epoll (regular files have no readiness).
//!
//! Rules:
//! 1. A file's fd lives in a [`FileFd`] behind an `Arc`; every op on it holds
//!    a clone ([`OnFile`]) until it has completed (io_uring: also when the
//!    future was dropped, op.rs rule 2; blocking pool: the clone is inside
//!    the job). So the number is closed only after the last op on it has
//!    finished, and no op can land on a reused fd number. `Arc` rather than
//!    `net`'s `SharedFd` (an `Rc`) because under epoll the op moves to a pool
//!    thread. File fds are never registered with epoll, so nothing needs to
//!    be told when they close.
//! 2. Under epoll the op value moves into the pool job and comes back with
//!    its result; if the awaiting future was dropped, the job's result is
//!    dropped wherever it lands and [`Operation::complete_orphan`] runs then
//!    (an fd a dropped open produced is closed), exactly as for an orphaned
//!    io_uring op.
//! 3. Reads under epoll first try `preadv2(RWF_NOWAIT)` on the loop thread:
//!    page-cached data is copied at once, and the kernel answers `EAGAIN`
//!    instead of waiting for the disk; only then does the read go to the pool.
//!    A read finished there takes a unit of the task's coop budget (as an op
//!    the driver finished during its submit does, `op` rule O4), so a loop of
//!    cached reads yields every `BUDGET` reads.
//! 4. A read or write into a buffer of a registered `FixedBufPool`
//!    (`coil::io::FixedBufPool`) names the pool's registered-buffer entry
//!    (`IORING_OP_READ_FIXED`/`WRITE_FIXED`) only when the loop that
//!    *submits* the op is the one whose ring registered the pool
//!    ([`fixed_on`], `io/fixed.rs` rule F3). The entry is chosen in
//!    `Operation::on_submit`, never when the op is built: an op built on one
//!    loop whose first poll found the coop budget spent (`op` rule O4) is not
//!    submitted yet, and its future may be moved and submitted on another
//!    loop, whose table holds other memory at that index (or nothing:
//!    `EFAULT`). Any other loop or driver gets the plain op, and the epoll
//!    paths (`preadv2`, the blocking pool's `perform`) ignore the entry.

use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use coil_arch::op::{self as kop, FsOpcode};
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::Metadata;
use crate::op::{Op, Operation};

/// An open file's fd, closed when the last `Arc` drops (rule 1).
#[derive(Debug)]
pub(crate) struct FileFd {
    fd: RawFd,
    /// `preadv2(RWF_NOWAIT)` answered `EOPNOTSUPP` once: skip it (rule 3).
    no_nowait: AtomicBool,
}

impl FileFd {
    pub(crate) fn new(fd: OwnedFd) -> FileFd {
        FileFd {
            fd: std::os::fd::IntoRawFd::into_raw_fd(fd),
            no_nowait: AtomicBool::new(false),
        }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd
    }

    /// Gives up ownership of the number (for an explicit close).
    pub(crate) fn into_raw(self) -> RawFd {
        let fd = self.fd;
        std::mem::forget(self);
        fd
    }
}

impl Drop for FileFd {
    fn drop(&mut self) {
        // SAFETY: rule 1: the last owner; no op is pending on this fd.
        unsafe { libc::close(self.fd) };
    }
}

/// An op plus the file handle it keeps open (rule 1).
#[derive(Debug)]
pub(crate) struct OnFile<T> {
    pub(crate) op: T,
    /// Only held, never read: it keeps the fd open while the op lives.
    #[allow(dead_code)]
    pub(crate) fd: Arc<FileFd>,
}

crate::op::delegate_opcode!(OnFile);

impl<B: IoBufMut> Operation for OnFile<kop::Read<B>> {
    type Output = BufResult<usize, B>;

    /// Rule 4: the buffer's registered entry, if `loop_id` registered it.
    #[inline(always)]
    fn on_submit(&mut self, loop_id: u64) {
        self.op.fixed = fixed_on(&self.op.buf, loop_id);
    }

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        let mut buf = self.op.buf;
        // SAFETY: the kernel's (or the pool's) answer to the `Read` of `buf`.
        unsafe { crate::op::mark_read(&mut buf, &res) };
        BufResult(res, buf)
    }
}

impl<B: IoBuf> Operation for OnFile<kop::Write<B>> {
    type Output = BufResult<usize, B>;

    /// Rule 4, as for a read.
    #[inline(always)]
    fn on_submit(&mut self, loop_id: u64) {
        self.op.fixed = fixed_on(&self.op.buf, loop_id);
    }

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        BufResult(res, self.op.buf)
    }
}

impl Operation for OnFile<kop::Statx> {
    type Output = io::Result<Metadata>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(|_| Metadata::from_statx(&self.op.buf))
    }
}

impl Operation for kop::Statx {
    type Output = io::Result<Metadata>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(|_| Metadata::from_statx(&self.buf))
    }
}

impl Operation for kop::OpenAt {
    type Output = io::Result<OwnedFd>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        // SAFETY: a successful open returns a new fd that nothing else owns.
        res.map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// An open that completed after its future was dropped: close the fd,
    /// nobody will ever see it (issue item 3: no leak).
    fn complete_orphan(self, res: io::Result<usize>) {
        if let Ok(fd) = res {
            // SAFETY: the new fd is owned by nobody else; closing it once.
            unsafe { libc::close(fd as RawFd) };
        }
    }
}

crate::op::unit_operation!(
    OnFile<kop::Fsync>,
    OnFile<kop::Ftruncate>,
    kop::Close,
    kop::UnlinkAt,
    kop::RenameAt,
    kop::MkDirAt,
    kop::SymlinkAt,
    kop::LinkAt,
);

// Path operations and bare fds: bound to no loop (`op` rule O6).
impl crate::op::OnFd for kop::Statx {}
impl crate::op::OnFd for kop::OpenAt {}
impl crate::op::OnFd for kop::Close {}
impl crate::op::OnFd for kop::UnlinkAt {}
impl crate::op::OnFd for kop::RenameAt {}
impl crate::op::OnFd for kop::MkDirAt {}
impl crate::op::OnFd for kop::SymlinkAt {}
impl crate::op::OnFd for kop::LinkAt {}

/// Whether the current thread runs a coil loop on io_uring.
#[inline]
pub(crate) fn on_uring() -> bool {
    crate::rt::with_core(|c| c.is_some_and(|c| c.is_uring()))
}

/// Whether an op that needs the optional io_uring opcode `code` can go
/// through the ring (else it runs on the blocking pool).
pub(crate) fn ring_has(code: Option<FsOpcode>) -> bool {
    on_uring() && code.is_none_or(kop::uring_supports)
}

/// Runs `op`: through the ring when `ring`, else on the blocking pool.
pub(crate) async fn run<T: Operation + Send>(op: T, ring: bool) -> T::Output {
    // `run`'s body inline: one state machine less on the hot path (W6:
    // ~60 instructions a read with `File::read_at`'s own layer).
    if ring {
        Op::new(op).await
    } else {
        blocking(op).await
    }
}

/// A finished pool job: the op and its result. Dropped unread (the future
/// that awaited it is gone), it hands them to `complete_orphan` (rule 2).
struct Finished<T: Operation> {
    done: Option<(T, io::Result<usize>)>,
}

impl<T: Operation> Drop for Finished<T> {
    fn drop(&mut self) {
        if let Some((op, res)) = self.done.take() {
            op.complete_orphan(res);
        }
    }
}

/// Rule 2: `perform` on the blocking pool, the op moving there and back.
pub(crate) async fn blocking<T: Operation + Send>(mut op: T) -> T::Output {
    let job = crate::blocking::spawn_blocking(move || {
        let res = loop {
            match op.perform() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        Finished {
            done: Some((op, res)),
        }
    });
    match job.await {
        Ok(mut f) => {
            let (op, res) = f.done.take().expect("a finished job holds its op");
            op.complete(res)
        }
        Err(crate::TaskError::Panicked(p)) => p.resume(),
        Err(_) => unreachable!("pool jobs are never cancelled"),
    }
}

/// Runs `f`, a std call, on the blocking pool (the calls io_uring has no
/// opcode for: directory walks, copies, `realpath`).
pub(crate) async fn pool<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match crate::blocking::spawn_blocking(f).await {
        Ok(r) => r,
        Err(crate::TaskError::Panicked(p)) => p.resume(),
        Err(_) => unreachable!("pool jobs are never cancelled"),
    }
}

/// Positional read of `buf`'s spare capacity at `pos` (rule 3 under epoll).
///
/// A hand-written future rather than an `async fn`: the op (io_uring) is
/// polled straight from here, with no state machine between the task and
/// the [`Op`] that only forwards to it, and the buffer moves once into the
/// op instead of through every layer. In W6 (`coil-benches file`) the
/// `async fn` layers cost about 90 instructions a read, `read_exact_at`'s
/// included (callgrind).
///
/// States (`ReadState`): `Start` until the first poll, which picks the
/// driver of the loop polling it (as the `async fn` did: a future made in
/// one context and awaited in another goes the way of the poller); `Ring`
/// (the op; its own rules O1–O6 cover every drop); `Pool` (epoll, data not
/// in the page cache: the blocking-pool job of rule 2, boxed, as that path
/// allocates a job anyway); `Done` once the output was returned from `Start`.
/// No field is pinned structurally (the op and the box are `Unpin`; the
/// buffer is only moved, never pinned), so the future is `Unpin`.
pub(crate) struct ReadAt<'a, B: IoBufMut + Send> {
    /// Dropped by hand (`Drop`), so that a finished read pays no call
    /// to the state's drop glue.
    state: ManuallyDrop<ReadState<'a, B>>,
}

// `repr(u8)`: a tag byte of its own, so that telling the states apart is one
// compare rather than the decoding of a niche in the buffer (W6: ~10
// instructions a read).
#[repr(u8)]
enum ReadState<'a, B: IoBufMut + Send> {
    Start {
        fd: &'a Arc<FileFd>,
        buf: B,
        pos: u64,
    },
    Ring(Op<OnFile<kop::Read<B>>>),
    Pool(Pin<Box<dyn Future<Output = BufResult<usize, B>>>>),
    Done,
}

impl<B: IoBufMut + Send> Unpin for ReadAt<'_, B> {}

impl<B: IoBufMut + Send> Drop for ReadAt<'_, B> {
    #[inline]
    fn drop(&mut self) {
        // A finished read (`Done`) owns nothing: only the others are dropped,
        // out of line (a dropped op in flight is orphaned, `op` rule O2).
        if !matches!(*self.state, ReadState::Done) {
            // SAFETY: `state` is dropped only here, once, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.state) };
        }
    }
}

/// See [`ReadAt`].
#[inline]
pub(crate) fn read_at<B: IoBufMut + Send>(fd: &Arc<FileFd>, buf: B, pos: u64) -> ReadAt<'_, B> {
    ReadAt {
        state: ManuallyDrop::new(ReadState::Start { fd, buf, pos }),
    }
}

impl<'a, B: IoBufMut + Send> ReadAt<'a, B> {
    /// The buffer, if the read has not started (`read_exact_at`'s check of
    /// a full buffer).
    #[inline]
    fn unstarted_buf(&self) -> Option<&B> {
        match &*self.state {
            ReadState::Start { buf, .. } => Some(buf),
            _ => None,
        }
    }

    /// First poll: choose the way (module rules 2 and 3). `None`: the state
    /// is now `Ring` or `Pool`, for the caller to poll (one call site for the
    /// op's poll, which the compiler then inlines); `Some`: the answer
    /// already (a read from the page cache, or a spent coop budget).
    #[inline]
    fn start(&mut self, cx: &mut Context<'_>) -> Option<Poll<BufResult<usize, B>>> {
        if on_uring() {
            let ReadState::Start { fd, buf, pos } =
                std::mem::replace(&mut *self.state, ReadState::Done)
            else {
                unreachable!("start of a started read")
            };
            self.set_from_done(ReadState::Ring(Op::new(read_op(fd, buf, pos))));
            return None;
        }
        // A read finished here takes a unit of coop budget, like an op the
        // driver finished during its submit (`op` rule O4): a task reading
        // cached data in a loop still lets the others run. Taken before the
        // state changes, so that `Pending` leaves the read unstarted.
        let Poll::Ready(coop) = crate::rt::budget::poll_proceed(cx) else {
            return Some(Poll::Pending);
        };
        let ReadState::Start { fd, mut buf, pos } =
            std::mem::replace(&mut *self.state, ReadState::Done)
        else {
            unreachable!("start of a started read")
        };
        if let Some(res) = read_nowait(fd, &mut buf, pos) {
            coop.made_progress();
            return Some(Poll::Ready(BufResult(res, buf)));
        }
        drop(coop);
        let op = read_op(fd, buf, pos);
        self.set_from_done(ReadState::Pool(Box::pin(blocking(op))));
        None
    }

    /// Replaces a `Done` state, which owns nothing, without the (out of
    /// line, generic) drop of the old state: W6 paid ~30 instructions a
    /// read for each such drop. Forgetting a `Done` value leaks nothing.
    #[inline(always)]
    fn set_from_done(&mut self, state: ReadState<'a, B>) {
        let old = std::mem::replace(&mut *self.state, state);
        debug_assert!(matches!(old, ReadState::Done));
        std::mem::forget(old);
    }

    /// Starts the next read of `read_exact_at` in this finished one.
    #[inline(always)]
    fn restart(&mut self, fd: &'a Arc<FileFd>, buf: B, pos: u64) {
        self.set_from_done(ReadState::Start { fd, buf, pos });
    }
}

/// The op of a positional read, holding a clone of the fd handle (rule 1);
/// a plain read until its submit chooses a registered entry (rule 4).
#[inline]
fn read_op<B: IoBufMut + Send>(fd: &Arc<FileFd>, buf: B, pos: u64) -> OnFile<kop::Read<B>> {
    OnFile {
        op: kop::Read {
            fd: fd.raw(),
            buf,
            offset: pos,
            fixed: None,
        },
        fd: fd.clone(),
    }
}

/// Rule 4: the registered-buffer entry `buf` lies in, if `loop_id` (the
/// loop submitting the op, from `Operation::on_submit`) is the loop whose
/// ring registered it (`io/fixed.rs` rule F3); `None` (a plain read or
/// write) for any other buffer or loop. For a buffer type that is never
/// registered (`Vec`, ...) this is a constant `None` and costs nothing.
#[inline(always)]
fn fixed_on<B: IoBuf>(buf: &B, loop_id: u64) -> Option<u16> {
    if !B::MAY_BE_FIXED {
        return None;
    }
    buf.fixed_slot()
        .filter(|slot| slot.owner == loop_id)
        .map(|slot| slot.index)
}

impl<B: IoBufMut + Send> Future for ReadAt<'_, B> {
    type Output = BufResult<usize, B>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut *this.state {
                ReadState::Ring(op) => {
                    let out = std::task::ready!(Pin::new(op).poll(cx));
                    // The op answered its output and is in its own `Done`
                    // state, which owns nothing (its block went back to the
                    // pool): forgetting it leaks nothing and spares its drop.
                    std::mem::forget(std::mem::replace(&mut *this.state, ReadState::Done));
                    return Poll::Ready(out);
                }
                ReadState::Start { .. } => {
                    if let Some(out) = this.start(cx) {
                        return out;
                    }
                    // Now `Ring` or `Pool`: poll it.
                }
                ReadState::Pool(job) => {
                    let out = std::task::ready!(job.as_mut().poll(cx));
                    *this.state = ReadState::Done;
                    return Poll::Ready(out);
                }
                ReadState::Done => panic!("a file read was polled after it completed"),
            }
        }
    }
}

/// `read_exact_at`: positional reads until `buf` is full, without an
/// `async fn` around [`ReadAt`] (see there). `UnexpectedEof` if the file
/// ends first; an `Interrupted` read is retried.
pub(crate) struct ReadExactAt<'a, B: IoBufMut + Send> {
    read: ReadAt<'a, B>,
    fd: &'a Arc<FileFd>,
    pos: u64,
    /// The first poll has not checked yet whether `buf` is full already.
    unchecked: bool,
}

impl<B: IoBufMut + Send> Unpin for ReadExactAt<'_, B> {}

/// See [`ReadExactAt`].
#[inline]
pub(crate) fn read_exact_at<B: IoBufMut + Send>(
    fd: &Arc<FileFd>,
    buf: B,
    pos: u64,
) -> ReadExactAt<'_, B> {
    ReadExactAt {
        read: read_at(fd, buf, pos),
        fd,
        pos,
        unchecked: true,
    }
}

impl<B: IoBufMut + Send> Future for ReadExactAt<'_, B> {
    type Output = BufResult<(), B>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.unchecked {
            this.unchecked = false;
            // A full buffer: nothing to read (the read was never started).
            if let Some(buf) = this.read.unstarted_buf()
                && buf.bytes_init() >= buf.bytes_total()
            {
                let ReadState::Start { buf, .. } =
                    std::mem::replace(&mut *this.read.state, ReadState::Done)
                else {
                    unreachable!()
                };
                return Poll::Ready(BufResult(Ok(()), buf));
            }
        }
        loop {
            let BufResult(res, buf) = std::task::ready!(Pin::new(&mut this.read).poll(cx));
            match res {
                Ok(0) => return Poll::Ready(BufResult(Err(eof()), buf)),
                Ok(n) => this.pos += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(BufResult(Err(e), buf)),
            }
            if buf.bytes_init() >= buf.bytes_total() {
                return Poll::Ready(BufResult(Ok(()), buf));
            }
            this.read.restart(this.fd, buf, this.pos);
        }
    }
}

/// The error of `read_exact_at` when the file ends before the buffer is full.
#[cold]
fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file ended before the buffer was full",
    )
}

/// `preadv2(RWF_NOWAIT)` into `buf`'s spare capacity. `None`: the data is
/// not (all) in the page cache, or the file system does not support it.
fn read_nowait<B: IoBufMut>(fd: &FileFd, buf: &mut B, pos: u64) -> Option<io::Result<usize>> {
    if fd.no_nowait.load(Ordering::Relaxed) {
        return None;
    }
    let Ok(off) = libc::off_t::try_from(pos) else {
        return Some(Err(io::Error::from_raw_os_error(libc::EINVAL)));
    };
    let init = buf.bytes_init();
    let len = buf.bytes_total() - init;
    if len == 0 {
        return Some(Ok(0));
    }
    let iov = libc::iovec {
        // SAFETY: init <= bytes_total: the pointer stays in the allocation.
        iov_base: unsafe { buf.stable_mut_ptr().add(init) }.cast(),
        iov_len: len,
    };
    let n = preadv2_nowait(fd.raw(), &iov, off);
    if n >= 0 {
        let n = n as usize;
        // SAFETY: the kernel initialised `n` bytes after `init`.
        unsafe { buf.set_init(init + n) };
        return Some(Ok(n));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) => None,
        Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS) => {
            fd.no_nowait.store(true, Ordering::Relaxed);
            None
        }
        _ => Some(Err(err)),
    }
}

/// `preadv2(fd, [iov], off, RWF_NOWAIT)`. On 64-bit targets the system call
/// itself: glibc's wrapper is a cancellation point that costs about 70
/// instructions around the call (W6 profile), a tenth of what coil spends
/// per cached read besides the kernel's copy.
fn preadv2_nowait(fd: RawFd, iov: &libc::iovec, off: libc::off_t) -> isize {
    #[cfg(target_pointer_width = "64")]
    {
        // The offset is split into (low, high) words as the kernel's
        // `preadv2(fd, vec, vlen, pos_l, pos_h, flags)` expects; on a 64-bit
        // target the low word holds all of it (`pos_from_hilo`).
        // SAFETY: `iov` is one valid iovec borrowed for this synchronous call,
        // its buffer writable for `iov_len` bytes (the caller's contract).
        unsafe {
            libc::syscall(
                libc::SYS_preadv2,
                fd,
                std::ptr::from_ref(iov),
                1,
                off,
                0,
                libc::RWF_NOWAIT,
            ) as isize
        }
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        // SAFETY: as above; glibc splits the offset itself.
        unsafe { libc::preadv2(fd, iov, 1, off, libc::RWF_NOWAIT) as isize }
    }
}

/// Positional write of `buf`'s initialised bytes at `pos` (or, with
/// `CURRENT_POSITION`, at the file position: `O_APPEND` files).
pub(crate) async fn write_at<B: IoBuf + Send>(
    fd: &Arc<FileFd>,
    buf: B,
    pos: u64,
) -> BufResult<usize, B> {
    let op = OnFile {
        op: kop::Write {
            fd: fd.raw(),
            buf,
            offset: pos,
            fixed: None, // chosen at the submit (rule 4)
        },
        fd: fd.clone(),
    };
    // `run`'s body inline: one state machine less on the hot path.
    if on_uring() {
        Op::new(op).await
    } else {
        blocking(op).await
    }
}

impl AsRawFd for FileFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::task::Waker;

    /// A buffer that counts its drops: `ReadAt` drops its state by hand
    /// (`ManuallyDrop`), and forgets finished states.
    struct Counted {
        v: Vec<u8>,
        drops: Arc<AtomicU32>,
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    // SAFETY: delegates to the Vec, whose heap block stays put when `Counted`
    // moves.
    unsafe impl IoBuf for Counted {
        fn stable_ptr(&self) -> *const u8 {
            self.v.as_ptr()
        }
        fn bytes_init(&self) -> usize {
            self.v.len()
        }
        fn bytes_total(&self) -> usize {
            self.v.capacity()
        }
    }

    // SAFETY: as above.
    unsafe impl IoBufMut for Counted {
        fn stable_mut_ptr(&mut self) -> *mut u8 {
            self.v.as_mut_ptr()
        }
        unsafe fn set_init(&mut self, pos: usize) {
            // SAFETY: the caller's promise (`IoBufMut::set_init`).
            unsafe { self.v.set_len(pos) };
        }
    }

    fn counted(len: usize, cap: usize) -> (Counted, Arc<AtomicU32>) {
        let drops = Arc::new(AtomicU32::new(0));
        let mut v = Vec::with_capacity(cap);
        v.resize(len, 7);
        let b = Counted {
            v,
            drops: drops.clone(),
        };
        (b, drops)
    }

    fn fd_of(f: std::fs::File) -> Arc<FileFd> {
        Arc::new(FileFd::new(OwnedFd::from(f)))
    }

    /// Wakes the thread that polls.
    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Polls `fut` to completion on this thread, parking until its waker runs.
    fn block_on<F: Future + Unpin>(fut: &mut F) -> F::Output {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(out) = Pin::new(&mut *fut).poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }

    #[test]
    fn an_unstarted_read_drops_its_buffer_once() {
        let fd = fd_of(std::fs::File::open("/dev/null").unwrap());
        let (b, drops) = counted(0, 16);
        drop(read_at(&fd, b, 0));
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        let (b, drops) = counted(0, 16);
        drop(read_exact_at(&fd, b, 0));
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    /// Outside any loop (the pool path or `preadv2`): the buffer comes back,
    /// filled, and the finished future drops nothing more.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri has no preadv2 and no blocking-pool threads' syscalls"
    )]
    fn finished_reads_hand_the_buffer_back_and_drop_nothing_more() {
        let path = std::env::temp_dir().join(format!("coil-ops-read-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let fd = fd_of(std::fs::File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let mut cx = Context::from_waker(Waker::noop());

        // A full buffer: ready at once, nothing read.
        let (b, drops) = counted(4, 4);
        let mut fut = read_exact_at(&fd, b, 100);
        let Poll::Ready(BufResult(res, b)) = Pin::new(&mut fut).poll(&mut cx) else {
            panic!("a full buffer is ready at once")
        };
        res.unwrap();
        assert_eq!(b.v, [7; 4]);
        drop(fut);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            0,
            "the finished future dropped the buffer"
        );
        drop(b);
        assert_eq!(drops.load(Ordering::Relaxed), 1);

        // Reads until full, then past the end: UnexpectedEof with the bytes.
        for (pos, want, eof) in [(3u64, &b"3456"[..], false), (8, &b"89"[..], true)] {
            let (b, drops) = counted(0, 4);
            let mut fut = read_exact_at(&fd, b, pos);
            let BufResult(res, b) = block_on(&mut fut);
            assert_eq!(
                res.map_err(|e| e.kind()),
                if eof {
                    Err(io::ErrorKind::UnexpectedEof)
                } else {
                    Ok(())
                }
            );
            assert_eq!(b.v, want);
            drop(fut);
            assert_eq!(drops.load(Ordering::Relaxed), 0);
            drop(b);
            assert_eq!(drops.load(Ordering::Relaxed), 1);
        }
    }
}
