//! What every stream socket and every listener does, written once for TCP
//! and Unix: [`StreamCore`] (read, read_exact, write, write_all, the vectored
//! writes, shutdown, connect, adopting a std socket) and [`ListenerCore`]
//! (listen, accept, adopting a std listener) on a [`SharedFd`], with
//! [`WithFd`], the op wrapper that keeps the fd alive, and `stream_socket!`,
//! which gives a public stream type its delegating methods and its halves.
//!
//! The cancellation rules are those of `op/fd.rs`: a read or accept first
//! waits for dropped ones still in flight (rule 4), then takes the bytes or
//! connections they kept (rule 3), and only then asks the kernel.

use std::fmt;
use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{IntoRawFd, RawFd};

use coil_arch::op as kop;
use coil_arch::pbuf::{BufRing, PooledBuf};
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::socket::{self, nonblocking};
use crate::io::Slice;
use crate::op::fd::SharedFd;
use crate::op::{Op, Operation};

/// An op from coil-arch plus the fd handle it keeps alive (op/fd.rs rule 1).
#[derive(Debug)]
pub(crate) struct WithFd<T> {
    pub(crate) op: T,
    pub(crate) fd: SharedFd,
}

crate::op::delegate_opcode!(WithFd, fd);

/// The [`Operation`] of a byte-stream read on a [`SharedFd`] (`$op<B>`, its
/// buffer in the field `buf`): the output is the buffer with the bytes read
/// marked, and bytes that arrived after the future was dropped go to the
/// fd's stash, for the next read (op/fd.rs rule 3). For `Recv` here and
/// `Read` on a child process's pipe (`process`).
macro_rules! stream_read_operation {
    ($op:ident) => {
        impl<B: coil_arch::IoBufMut> $crate::op::Operation
            for $crate::net::stream::WithFd<coil_arch::op::$op<B>>
        {
            type Output = coil_arch::BufResult<usize, B>;

            fn complete(self, res: std::io::Result<usize>) -> Self::Output {
                let mut buf = self.op.buf;
                // SAFETY: the kernel's answer to the read into `buf`.
                unsafe { $crate::op::mark_read(&mut buf, &res) };
                coil_arch::BufResult(res, buf)
            }

            fn on_orphaned(&self) {
                self.fd.orphan_begin();
            }

            fn complete_orphan(self, res: std::io::Result<usize>) {
                if let Ok(n) = res
                    && n > 0
                {
                    // SAFETY: the kernel's answer to the read into the buffer.
                    let bytes = unsafe { $crate::op::read_bytes(&self.op.buf, n) };
                    self.fd.stash(bytes);
                }
                self.fd.orphan_end();
            }
        }
    };
}
pub(crate) use stream_read_operation;

stream_read_operation!(Recv);

impl<B: IoBuf> Operation for WithFd<kop::Send<B>> {
    type Output = BufResult<usize, B>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        BufResult(res, self.op.buf)
    }
}

impl<B: IoBuf> Operation for WithFd<kop::SendVectored<B>> {
    type Output = BufResult<usize, Vec<B>>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        BufResult(res, self.op.into_bufs())
    }
}

impl Operation for WithFd<kop::Accept> {
    type Output = io::Result<(RawFd, Option<SocketAddr>)>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(|fd| (fd as RawFd, self.op.addr.as_std()))
    }

    fn on_orphaned(&self) {
        self.fd.orphan_begin();
    }

    /// A connection accepted after the future was dropped waits in the
    /// listener for the next `accept`.
    fn complete_orphan(self, res: io::Result<usize>) {
        if let Ok(fd) = res {
            self.fd.push_accepted(fd as RawFd, self.op.addr.as_std());
        }
        self.fd.orphan_end();
    }
}

/// A pooled read: the output is the buffer the completion names (its CQE flags
/// carry the id under io_uring), and the bytes of one that completes after
/// its future was dropped go to the stash, the buffer back to the pool
/// (op/fd.rs rule 3).
impl Operation for WithFd<kop::RecvPooled> {
    type Output = io::Result<PooledBuf>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        self.complete_flags(res, 0)
    }

    fn complete_flags(mut self, res: io::Result<usize>, flags: u32) -> Self::Output {
        self.op.filled(res, flags)
    }

    fn on_orphaned(&self) {
        self.fd.orphan_begin();
    }

    fn complete_orphan_flags(mut self, res: io::Result<usize>, flags: u32) {
        if let Ok(buf) = self.op.filled(res, flags) {
            self.fd.stash(&buf); // then `buf` drops: back to the pool
        }
        self.fd.orphan_end();
    }
}

crate::op::unit_operation!(WithFd<kop::Connect>, WithFd<kop::Shutdown>);

/// Buffers in a loop's read pool (`read_pooled`), and their size: 2 MiB of
/// address space, touched only as reads fill buffers.
const POOL_BUFS: u16 = 512;
const POOL_BUF_SIZE: u32 = 4096;

/// The running loop's read pool, made on first use and registered with its
/// driver where the driver takes it (io_uring); elsewhere it stays in user mode.
fn loop_pool() -> io::Result<BufRing> {
    crate::rt::with_core(|core| {
        let core = core.ok_or_else(crate::op::outside_loop)?;
        core.home().buf_ring(|| {
            let ring = BufRing::new(POOL_BUFS, POOL_BUF_SIZE, 0)?;
            // Refused (epoll, the simulator, an old kernel): user mode.
            let _ = crate::rt::with_driver(|d| d.map(|d| d.register_buf_ring(&ring)));
            Ok(ring)
        })
    })
}

/// A read into a buffer of the loop's pool on `fd` (`read_pooled`): the same
/// rules as [`read_with`] (dropped reads first, then kept bytes, in a plain
/// buffer), then a [`kop::RecvPooled`]; with no pooled buffer free, a plain
/// read into a fresh `Vec` of the pool's buffer size.
pub(crate) async fn read_pooled(fd: &SharedFd) -> io::Result<PooledBuf> {
    fd.orphans_done().await?;
    let mut kept = Vec::new();
    if fd.has_stash() {
        kept.reserve_exact(POOL_BUF_SIZE as usize);
        if let Some(res) = fd.take_stash(&mut kept) {
            return res.map(|_| PooledBuf::from_vec(kept));
        }
    }
    let pool = loop_pool()?;
    let res = Op::new(WithFd {
        op: kop::RecvPooled::new(fd.raw(), pool),
        fd: fd.clone(),
    })
    .await;
    match res {
        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
            kept.reserve_exact(POOL_BUF_SIZE as usize);
            let BufResult(res, v) = read_with(fd, kept, |fd, buf| kop::Recv { fd, buf }).await;
            res.map(|_| PooledBuf::from_vec(v))
        }
        other => other,
    }
}

/// A byte-stream read on `fd` (op/fd.rs rules 3 and 4): waits for dropped
/// reads still in flight, takes the bytes they kept, and only then asks the
/// kernel with the op `make(fd number, buf)` (`Recv`, or `Read` on a pipe).
///
/// A hand-written future ([`ReadWith`]) rather than an `async fn`, as the
/// file reads of `fs/ops.rs`: the op is polled straight from here, with no
/// state machine between the task and the [`Op`] that only forwards to it
/// (W5, `coil-benches echo`: the `async fn` layers of `read` cost ~60
/// instructions a request, callgrind).
#[inline]
pub(crate) fn read_with<B, T, F>(fd: &SharedFd, buf: B, make: F) -> ReadWith<'_, B, T, F>
where
    B: IoBufMut,
    F: FnOnce(RawFd, B) -> T,
    WithFd<T>: Operation<Output = BufResult<usize, B>>,
{
    ReadWith {
        fd,
        state: ManuallyDrop::new(ReadWithState::Start { buf, make }),
    }
}

/// The future of [`read_with`].
///
/// States: `Start` until the dropped reads of the fd are done (rule 4: the
/// future may wait there, holding the buffer); then, in the same poll, the
/// kept bytes answer it (rule 3) or the op is made: `Ring` (the op; its own
/// rules O1–O6 cover every drop); `Done` once the output was returned. No
/// field is pinned structurally (the op is `Unpin`; the buffer and `make`
/// are only moved), so the future is `Unpin`.
pub(crate) struct ReadWith<'a, B, T, F>
where
    WithFd<T>: Operation,
{
    fd: &'a SharedFd,
    /// Dropped by hand (`Drop`), so that a finished read pays no call to
    /// the state's drop glue (as `fs/ops.rs`'s `ReadAt`).
    state: ManuallyDrop<ReadWithState<B, T, F>>,
}

enum ReadWithState<B, T, F>
where
    WithFd<T>: Operation,
{
    Start { buf: B, make: F },
    Ring(Op<WithFd<T>>),
    Done,
}

impl<B, T, F> Unpin for ReadWith<'_, B, T, F> where WithFd<T>: Operation {}

impl<B, T, F> Drop for ReadWith<'_, B, T, F>
where
    WithFd<T>: Operation,
{
    #[inline]
    fn drop(&mut self) {
        // A finished read (`Done`) owns nothing: only the other states are
        // dropped, out of line (a dropped op in flight is orphaned, `op`
        // rule O2).
        if !matches!(*self.state, ReadWithState::Done) {
            // SAFETY: `state` is dropped only here, once, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.state) };
        }
    }
}

impl<B, T, F> Future for ReadWith<'_, B, T, F>
where
    B: IoBufMut,
    F: FnOnce(RawFd, B) -> T,
    WithFd<T>: Operation<Output = BufResult<usize, B>>,
{
    type Output = BufResult<usize, B>;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            match &mut *this.state {
                ReadWithState::Ring(op) => {
                    let out = std::task::ready!(std::pin::Pin::new(op).poll(cx));
                    // The op answered its output and is in its own `Done`
                    // state, which owns nothing: forgetting it leaks nothing
                    // and spares its drop.
                    std::mem::forget(std::mem::replace(&mut *this.state, ReadWithState::Done));
                    return Poll::Ready(out);
                }
                ReadWithState::Start { .. } => {
                    // Rule 4: dropped reads still in flight come first.
                    let waited = std::pin::Pin::new(&mut this.fd.orphans_done()).poll(cx);
                    let Poll::Ready(waited) = waited else {
                        return Poll::Pending;
                    };
                    let ReadWithState::Start { mut buf, make } =
                        std::mem::replace(&mut *this.state, ReadWithState::Done)
                    else {
                        unreachable!()
                    };
                    if let Err(e) = waited {
                        return Poll::Ready(BufResult(Err(e), buf));
                    }
                    // Rule 3: bytes a dropped read kept.
                    if let Some(res) = this.fd.take_stash(&mut buf) {
                        return Poll::Ready(BufResult(res, buf));
                    }
                    let op = Op::new(WithFd {
                        op: make(this.fd.raw(), buf),
                        fd: this.fd.clone(),
                    });
                    // The state is `Done`, which owns nothing: no drop.
                    std::mem::forget(std::mem::replace(&mut *this.state, ReadWithState::Ring(op)));
                    // Now `Ring`: poll it.
                }
                ReadWithState::Done => panic!("a stream read was polled after it completed"),
            }
        }
    }
}

/// `write_all`: sends until every byte of the buffer went, resuming after
/// short writes; a hand-written future for the reason [`ReadWith`] is one.
/// States: `Next` (the bytes left, no op in flight), `Ring` (the op of the
/// next send), `Done`. `Unpin` as [`ReadWith`].
pub(crate) struct WriteAll<'a, B: IoBuf> {
    fd: &'a SharedFd,
    /// Dropped by hand, as [`ReadWith`]'s.
    state: ManuallyDrop<WriteAllState<B>>,
}

enum WriteAllState<B: IoBuf> {
    Next(Slice<B>),
    Ring(Op<WithFd<kop::Send<Slice<B>>>>),
    Done,
}

impl<B: IoBuf> Unpin for WriteAll<'_, B> {}

impl<B: IoBuf> Drop for WriteAll<'_, B> {
    #[inline]
    fn drop(&mut self) {
        if !matches!(*self.state, WriteAllState::Done) {
            // SAFETY: `state` is dropped only here, once, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.state) };
        }
    }
}

impl<B: IoBuf> WriteAll<'_, B> {
    /// Replaces the `Done` state, which owns nothing, without the (out of
    /// line, generic) drop of the old value.
    #[inline(always)]
    fn set_from_done(&mut self, state: WriteAllState<B>) {
        let old = std::mem::replace(&mut *self.state, state);
        debug_assert!(matches!(old, WriteAllState::Done));
        std::mem::forget(old);
    }
}

impl<B: IoBuf> Future for WriteAll<'_, B> {
    type Output = BufResult<(), B>;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            match &mut *this.state {
                WriteAllState::Ring(op) => {
                    let BufResult(res, mut slice) =
                        std::task::ready!(std::pin::Pin::new(op).poll(cx));
                    // The op is in its own `Done` state, which owns nothing.
                    std::mem::forget(std::mem::replace(&mut *this.state, WriteAllState::Done));
                    match res {
                        Ok(0) => {
                            return Poll::Ready(BufResult(Err(write_zero()), slice.into_inner()));
                        }
                        Ok(n) => slice.advance(n),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Poll::Ready(BufResult(Err(e), slice.into_inner())),
                    }
                    this.set_from_done(WriteAllState::Next(slice));
                }
                WriteAllState::Next(slice) => {
                    if slice.bytes_init() == 0 {
                        let WriteAllState::Next(slice) =
                            std::mem::replace(&mut *this.state, WriteAllState::Done)
                        else {
                            unreachable!()
                        };
                        return Poll::Ready(BufResult(Ok(()), slice.into_inner()));
                    }
                    let WriteAllState::Next(slice) =
                        std::mem::replace(&mut *this.state, WriteAllState::Done)
                    else {
                        unreachable!()
                    };
                    let op = Op::new(WithFd {
                        op: kop::Send {
                            fd: this.fd.raw(),
                            buf: slice,
                        },
                        fd: this.fd.clone(),
                    });
                    this.set_from_done(WriteAllState::Ring(op));
                }
                WriteAllState::Done => panic!("a stream write was polled after it completed"),
            }
        }
    }
}

fn write_zero() -> io::Error {
    io::Error::new(
        io::ErrorKind::WriteZero,
        "the socket accepted no more bytes",
    )
}

/// The byte stream of a connected stream socket (TCP, Unix): every I/O
/// method of `TcpStream`, `UnixStream` and their halves, which hold one
/// (the halves of one stream hold clones: the socket closes with the last).
#[derive(Clone)]
pub(crate) struct StreamCore {
    fd: SharedFd,
}

/// The fd handle's own format, so the halves print as they always did.
impl fmt::Debug for StreamCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fd.fmt(f)
    }
}

impl StreamCore {
    /// Takes ownership of a connected stream socket's fd.
    pub(crate) fn new(fd: RawFd) -> StreamCore {
        StreamCore {
            fd: SharedFd::new(fd),
        }
    }

    /// Takes ownership of a std stream for the current loop (the `from_std`
    /// constructors; see [`socket::adopt`]).
    pub(crate) fn adopt(sock: impl IntoRawFd) -> io::Result<StreamCore> {
        Ok(StreamCore {
            fd: socket::adopt(sock)?,
        })
    }

    /// Gives the fd up (the `into_std` conversions; see
    /// `SharedFd::into_raw`); on an error `self` comes back unchanged.
    pub(crate) fn into_raw(
        self,
        prepare: impl FnOnce(RawFd) -> io::Result<()>,
    ) -> Result<RawFd, (StreamCore, io::Error)> {
        self.fd
            .into_raw(prepare)
            .map_err(|(fd, e)| (StreamCore { fd }, e))
    }

    /// Runs `op`, a `Connect` on the socket `fd`; the connected stream.
    pub(crate) async fn connect(fd: SharedFd, op: kop::Connect) -> io::Result<StreamCore> {
        Op::new(WithFd { op, fd: fd.clone() }).await?;
        Ok(StreamCore { fd })
    }

    #[inline]
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.raw()
    }

    #[inline]
    pub(crate) fn read<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl Future<Output = BufResult<usize, B>> + '_ {
        read_with(&self.fd, buf, |fd, buf| kop::Recv { fd, buf })
    }

    pub(crate) fn read_pooled(&self) -> impl Future<Output = io::Result<PooledBuf>> + '_ {
        read_pooled(&self.fd)
    }

    pub(crate) async fn read_exact<B: IoBufMut>(&self, mut buf: B) -> BufResult<(), B> {
        while buf.bytes_init() < buf.bytes_total() {
            let BufResult(res, b) = self.read(buf).await;
            buf = b;
            match res {
                Ok(0) => {
                    return BufResult(
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "stream ended before the buffer was full",
                        )),
                        buf,
                    );
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return BufResult(Err(e), buf),
            }
        }
        BufResult(Ok(()), buf)
    }

    pub(crate) async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        Op::new(WithFd {
            op: kop::Send {
                fd: self.fd.raw(),
                buf,
            },
            fd: self.fd.clone(),
        })
        .await
    }

    #[inline]
    pub(crate) fn write_all<B: IoBuf>(&self, buf: B) -> WriteAll<'_, B> {
        WriteAll {
            fd: &self.fd,
            state: ManuallyDrop::new(WriteAllState::Next(Slice::new(buf, 0))),
        }
    }

    pub(crate) async fn write_vectored<B: IoBuf>(&self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        Op::new(WithFd {
            op: kop::SendVectored::new(self.fd.raw(), bufs),
            fd: self.fd.clone(),
        })
        .await
    }

    pub(crate) async fn write_all_vectored<B: IoBuf>(
        &self,
        mut bufs: Vec<B>,
    ) -> BufResult<(), Vec<B>> {
        let fd = &self.fd;
        // Normalise past leading empty buffers: nothing to send is no syscall.
        let mut pos = kop::SendVectored::advance(&bufs, (0, 0), 0);
        while pos.0 < bufs.len() {
            let BufResult(res, b) = Op::new(WithFd {
                op: kop::SendVectored::starting_at(fd.raw(), bufs, pos.0, pos.1),
                fd: fd.clone(),
            })
            .await;
            bufs = b;
            match res {
                Ok(0) => {
                    return BufResult(Err(write_zero()), bufs);
                }
                Ok(n) => pos = kop::SendVectored::advance(&bufs, pos, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return BufResult(Err(e), bufs),
            }
        }
        BufResult(Ok(()), bufs)
    }

    pub(crate) async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        Op::new(WithFd {
            op: kop::Shutdown {
                fd: self.fd.raw(),
                how,
            },
            fd: self.fd.clone(),
        })
        .await
    }
}

/// A listening stream socket (TCP, Unix): what `TcpListener` and
/// `UnixListener` hold.
pub(crate) struct ListenerCore {
    fd: SharedFd,
}

impl ListenerCore {
    /// Listens on the bound socket `fd` with `backlog` (1024 unless a
    /// `TcpSocket` asked for another).
    pub(crate) fn listen(fd: SharedFd, backlog: i32) -> io::Result<ListenerCore> {
        socket::listen(fd.raw(), backlog)?;
        Ok(ListenerCore { fd })
    }

    /// Takes ownership of a std listener for the current loop (the
    /// `from_std` constructors; see [`socket::adopt`]).
    pub(crate) fn adopt(listener: impl IntoRawFd) -> io::Result<ListenerCore> {
        Ok(ListenerCore {
            fd: socket::adopt(listener)?,
        })
    }

    #[inline]
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.raw()
    }

    /// Gives the fd up (see `SharedFd::into_raw`); on an error `self` comes
    /// back unchanged.
    pub(crate) fn into_raw(
        self,
        prepare: impl FnOnce(RawFd) -> io::Result<()>,
    ) -> Result<RawFd, (ListenerCore, io::Error)> {
        self.fd
            .into_raw(prepare)
            .map_err(|(fd, e)| (ListenerCore { fd }, e))
    }

    /// Waits for a connection: the stream, and the peer's address if the
    /// kernel gave an IP one. Cancel-safe (op/fd.rs rules 3 and 4): a
    /// connection accepted after the future was dropped is kept for the next
    /// call.
    pub(crate) async fn accept(&self) -> io::Result<(StreamCore, Option<SocketAddr>)> {
        self.fd.orphans_done().await?;
        let (fd, addr) = match self.fd.pop_accepted() {
            Some(x) => x?,
            None => {
                let nb = nonblocking()?;
                Op::new(WithFd {
                    op: kop::Accept::new(self.fd.raw(), nb),
                    fd: self.fd.clone(),
                })
                .await?
            }
        };
        Ok((StreamCore::new(fd), addr))
    }
}

/// The public face of a stream socket type `$stream` (a struct with a
/// `core: StreamCore` field): its byte-stream methods and `into_split`, and
/// its read and write halves `$read_half` and `$write_half`. Every method
/// hands out the core's future as it is (no extra async layer). The docs TCP
/// and Unix share are written here; the invocation gives what differs: the
/// docs of `read`, which errors a vanished peer gives, what a shutdown of the
/// write half does, and more docs for `write_all_vectored` (an example).
macro_rules! stream_socket {
    (
        $stream:ident, $read_half:ident, $write_half:ident;
        read: $(#[$read:meta])*;
        peer_gone: $peer_gone:literal;
        shutdown_write: $shutdown_write:literal;
        write_all_vectored: $(#[$write_all_vectored:meta])*;
    ) => {
        impl $stream {
            $crate::net::stream::stream_socket!(@fn
                $(#[$read])*
                read<IoBufMut>(buf: B) -> $crate::io::BufResult<usize, B>
            );

            $crate::net::stream::stream_socket!(@pooled);

            $crate::net::stream::stream_socket!(@fn
                /// Reads until `buf` is full (`len == capacity`).
                ///
                /// # Errors
                ///
                /// `UnexpectedEof` if the stream ends first (the bytes read stay in `buf`).
                read_exact<IoBufMut>(buf: B) -> $crate::io::BufResult<(), B>
            );

            $crate::net::stream::stream_socket!(@fn
                /// Writes some of `buf`'s bytes; returns how many.
                write<IoBuf>(buf: B) -> $crate::io::BufResult<usize, B>
            );

            $crate::net::stream::stream_socket!(@fn
                /// Writes all of `buf`'s bytes.
                ///
                /// # Errors
                ///
                #[doc = concat!(" The OS error (", $peer_gone, " when the peer went away); some")]
                /// bytes may have been written.
                write_all<IoBuf>(buf: B) -> $crate::io::BufResult<(), B>
            );

            $crate::net::stream::stream_socket!(@fn
                /// Writes some of the initialised bytes of `bufs`, in order, with one
                /// gather write (`sendmsg`); returns how many, and the buffers.
                ///
                /// At most 1,024 buffers (`IOV_MAX`) go into one call: with more, only
                /// the first 1,024 are offered and the count tells how far the write got
                /// (a short write, as with `std`'s `write_vectored`), never `EINVAL`.
                /// [`write_all_vectored`](Self::write_all_vectored) sends everything. No
                /// buffers, or only empty ones, write nothing: `Ok(0)`.
                ///
                /// If the future is dropped while the write is in flight, the buffers
                /// (and the iovec array pointing into them) stay alive until the kernel
                /// is done; some bytes may have been sent.
                write_vectored<IoBuf>(bufs: Vec<B>) -> $crate::io::BufResult<usize, Vec<B>>
            );

            $crate::net::stream::stream_socket!(@fn
                /// Writes all the initialised bytes of `bufs`, in order, resuming after
                /// short writes (and splitting more than 1,024 buffers over several
                /// calls) without copying; hands the buffers back.
                ///
                $(#[$write_all_vectored])*
                /// # Errors
                ///
                #[doc = concat!(" The OS error (", $peer_gone, " when the peer went away); some")]
                /// bytes may have been written.
                write_all_vectored<IoBuf>(bufs: Vec<B>) -> $crate::io::BufResult<(), Vec<B>>
            );

            $crate::net::stream::stream_socket!(@fn
                #[doc = concat!(" Shuts down the read half, write half (", $shutdown_write, ") or both.")]
                shutdown(how: std::net::Shutdown) -> std::io::Result<()>
            );

            /// Splits into a read half and a write half that can live in different
            /// tasks of the same loop. The socket closes when both are dropped.
            pub fn into_split(self) -> ($read_half, $write_half) {
                (
                    $read_half {
                        core: self.core.clone(),
                    },
                    $write_half { core: self.core },
                )
            }
        }

        $crate::net::stream::stream_socket!(@half $stream, $read_half, "read";
            read<IoBufMut>(buf: B) -> $crate::io::BufResult<usize, B>,
            read_exact<IoBufMut>(buf: B) -> $crate::io::BufResult<(), B>,
        );

        impl $read_half {
            $crate::net::stream::stream_socket!(@pooled);
        }

        $crate::net::stream::stream_socket!(@half $stream, $write_half, "write";
            write<IoBuf>(buf: B) -> $crate::io::BufResult<usize, B>,
            write_all<IoBuf>(buf: B) -> $crate::io::BufResult<(), B>,
            write_vectored<IoBuf>(bufs: Vec<B>) -> $crate::io::BufResult<usize, Vec<B>>,
            write_all_vectored<IoBuf>(bufs: Vec<B>) -> $crate::io::BufResult<(), Vec<B>>,
            shutdown(how: std::net::Shutdown) -> std::io::Result<()>,
        );
    };

    // A half: its struct, methods documented as "See [`Stream::method`]",
    // and `Debug` as derived for a struct with an `fd` field (what the
    // halves printed before the core).
    (@half $stream:ident, $half:ident, $which:literal;
        $($name:ident $(<$bound:ident>)? ($arg:ident: $arg_ty:ty) -> $out:ty,)+
    ) => {
        #[doc = concat!(" The ", $which, " half of [`", stringify!($stream), "::into_split`].")]
        pub struct $half {
            core: $crate::net::stream::StreamCore,
        }

        impl $half {
            $(
                $crate::net::stream::stream_socket!(@fn
                    #[doc = concat!(" See [`", stringify!($stream), "::", stringify!($name), "`].")]
                    $name $(<$bound>)? ($arg: $arg_ty) -> $out
                );
            )+
        }

        impl std::fmt::Debug for $half {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($half))
                    .field("fd", &self.core)
                    .finish()
            }
        }
    };

    // `read_pooled`, for the stream and its read half.
    (@pooled) => {
        /// Reads some bytes into a buffer of the loop's read pool and hands it
        /// over: an owned [`PooledBuf`](crate::io::PooledBuf) that dereferences to
        /// the bytes and goes back to the pool when dropped
        /// ([`into_vec`](crate::io::PooledBuf::into_vec) copies them out). Unlike
        /// [`read`](Self::read), no buffer is held while the read waits, so an idle
        /// connection costs no buffer: under io_uring the kernel picks a buffer of
        /// the pool (registered as a provided-buffer ring) when data arrives;
        /// under epoll one is taken once the socket is readable. An empty buffer
        /// means end of stream. When every pooled buffer is out, the read uses a
        /// fresh allocation instead; it never fails for want of a buffer.
        ///
        /// Cancel-safe as `read`: bytes a dropped `read_pooled` received are
        /// kept for the next read on this stream. `docs/io-ops.md` (provided
        /// buffers) has the design.
        #[inline]
        pub fn read_pooled(
            &self,
        ) -> impl std::future::Future<Output = std::io::Result<$crate::io::PooledBuf>> + '_ {
            self.core.read_pooled()
        }
    };

    // One method: the core's method of the same name, its future as it is.
    (@fn $(#[$doc:meta])* $name:ident $(<$bound:ident>)? ($arg:ident: $arg_ty:ty) -> $out:ty) => {
        $(#[$doc])*
        #[inline]
        pub fn $name $(<B: $crate::io::$bound>)? (
            &self,
            $arg: $arg_ty,
        ) -> impl std::future::Future<Output = $out> + '_ {
            self.core.$name($arg)
        }
    };
}
pub(crate) use stream_socket;

#[cfg(test)]
mod tests {
    use super::*;
    use coil_arch::OpCode;

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no sockets")]
    fn with_fd_delegates_every_opcode_method() {
        // A method the wrapper forgot would fall back to the trait default:
        // for `drained`, epoll would quietly pay a sure EAGAIN per read.
        // SAFETY: a fresh socket this test owns (SharedFd closes it).
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0);
        let op = WithFd {
            op: kop::Recv {
                fd,
                buf: Vec::<u8>::with_capacity(64),
            },
            fd: SharedFd::new(fd),
        };
        assert!(op.drained(10), "a short stream read drains");
        assert!(!op.drained(64) && !op.drained(0));
        assert_eq!(op.readiness(), coil_arch::op::Readiness::Readable(fd));
    }
}
