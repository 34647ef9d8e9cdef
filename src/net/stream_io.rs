//! Byte-stream I/O shared by every stream socket (TCP, Unix): read,
//! read_exact, write, write_all, the vectored writes and shutdown on a
//! [`SharedFd`], with the cancellation rules of `io/fd.rs` (stash first, wait
//! for dropped reads).

use std::io;
use std::net::Shutdown;

use coil_arch::op as kop;
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::tcp::WithFd;
use crate::io::Slice;
use crate::op::fd::SharedFd;
use crate::op::{Op, Operation};

pub(crate) async fn read<B: IoBufMut>(fd: &SharedFd, mut buf: B) -> BufResult<usize, B> {
    if let Err(e) = fd.orphans_done().await {
        return BufResult(Err(e), buf);
    }
    if let Some(res) = fd.take_stash(&mut buf) {
        return BufResult(res, buf);
    }
    Op::new(WithFd {
        op: kop::Recv { fd: fd.raw(), buf },
        fd: fd.clone(),
    })
    .await
}

pub(crate) async fn read_exact<B: IoBufMut>(fd: &SharedFd, mut buf: B) -> BufResult<(), B> {
    while buf.bytes_init() < buf.bytes_total() {
        let BufResult(res, b) = read(fd, buf).await;
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

pub(crate) async fn write<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    Op::new(WithFd {
        op: kop::Send { fd: fd.raw(), buf },
        fd: fd.clone(),
    })
    .await
}

fn write_zero() -> io::Error {
    io::Error::new(
        io::ErrorKind::WriteZero,
        "the socket accepted no more bytes",
    )
}

pub(crate) async fn write_all<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<(), B> {
    let mut slice = Slice::new(buf, 0);
    while slice.bytes_init() > 0 {
        // The op directly, not `write(..).await`: one state machine less.
        let BufResult(res, s) = Op::new(WithFd {
            op: kop::Send {
                fd: fd.raw(),
                buf: slice,
            },
            fd: fd.clone(),
        })
        .await;
        slice = s;
        match res {
            Ok(0) => {
                return BufResult(Err(write_zero()), slice.into_inner());
            }
            Ok(n) => slice.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return BufResult(Err(e), slice.into_inner()),
        }
    }
    BufResult(Ok(()), slice.into_inner())
}

impl<B: IoBuf> Operation for WithFd<kop::SendVectored<B>> {
    type Output = BufResult<usize, Vec<B>>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        BufResult(res, self.op.into_bufs())
    }
}

pub(crate) async fn write_vectored<B: IoBuf>(
    fd: &SharedFd,
    bufs: Vec<B>,
) -> BufResult<usize, Vec<B>> {
    Op::new(WithFd {
        op: kop::SendVectored::new(fd.raw(), bufs),
        fd: fd.clone(),
    })
    .await
}

pub(crate) async fn write_all_vectored<B: IoBuf>(
    fd: &SharedFd,
    mut bufs: Vec<B>,
) -> BufResult<(), Vec<B>> {
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

pub(crate) async fn shutdown(fd: &SharedFd, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    Op::new(WithFd {
        op: kop::Shutdown { fd: fd.raw(), how },
        fd: fd.clone(),
    })
    .await
}
