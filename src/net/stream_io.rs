//! Byte-stream I/O shared by every stream socket (TCP, Unix): read,
//! read_exact, write, write_all and shutdown on a [`SharedFd`], with the
//! cancellation rules of `io/fd.rs` (stash first, wait for dropped reads).

use std::io;
use std::net::Shutdown;

use coil_arch::op as kop;
use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::tcp::WithFd;
use crate::io::Slice;
use crate::io::fd::SharedFd;
use crate::op::Op;

pub(crate) async fn read<B: IoBufMut>(fd: &SharedFd, mut buf: B) -> BufResult<usize, B> {
    fd.orphans_done().await;
    if let Some(n) = fd.take_stash(&mut buf) {
        return BufResult(Ok(n), buf);
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

pub(crate) async fn write_all<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<(), B> {
    let mut slice = Slice::new(buf, 0);
    while slice.bytes_init() > 0 {
        let BufResult(res, s) = write(fd, slice).await;
        slice = s;
        match res {
            Ok(0) => {
                return BufResult(
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket accepted no more bytes",
                    )),
                    slice.into_inner(),
                );
            }
            Ok(n) => slice.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return BufResult(Err(e), slice.into_inner()),
        }
    }
    BufResult(Ok(()), slice.into_inner())
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
