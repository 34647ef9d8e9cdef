//! The parent's ends of a child's standard streams: [`ChildStdin`],
//! [`ChildStdout`], [`ChildStderr`].
//!
//! Each owns one pipe end as a [`SharedFd`] of the loop that spawned the child
//! (`O_NONBLOCK` under epoll, blocking under io_uring, as sockets are) and
//! reads or writes it with `read(2)`/`write(2)` ops at the file position.
//! Reads follow the stream rules of `op/fd.rs` (shared with `net`): bytes a
//! dropped read received are kept and returned by the next read.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use coil_arch::op::{self as kop, CURRENT_POSITION};
use coil_arch::{BufResult, IoBuf, IoBufMut};

use crate::io::{AsyncReadOwned, AsyncWriteOwned};
use crate::net::stream::{WithFd, read_with, stream_read_operation};
use crate::op::fd::SharedFd;
use crate::op::{Op, Operation};

stream_read_operation!(Read);

impl<B: IoBuf> Operation for WithFd<kop::Write<B>> {
    type Output = BufResult<usize, B>;

    fn complete(self, res: io::Result<usize>) -> Self::Output {
        BufResult(res, self.op.buf)
    }
}

/// Takes a std pipe end for the current loop: `O_NONBLOCK` set or cleared to
/// suit its driver.
fn adopt(end: impl IntoRawFd) -> io::Result<SharedFd> {
    crate::net::adopt(end)
}

/// A reading pipe end: what [`ChildStdout`] and [`ChildStderr`] hold.
struct PipeReader {
    fd: SharedFd,
}

impl PipeReader {
    async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        read_with(&self.fd, buf, |fd, buf| kop::Read {
            fd,
            buf,
            offset: CURRENT_POSITION,
            fixed: None,
        })
        .await
    }

    async fn read_to_end(&self, mut buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
        // A pipe holds 64 KiB by default: room for a pipeful in the first read.
        buf.reserve(64 << 10);
        crate::io::read_to_end_with(buf, |buf| self.read(buf)).await
    }
}

/// A child's output stream type: `$name` around a [`PipeReader`], with its
/// methods, docs and traits.
macro_rules! child_output {
    ($name:ident, $stream:literal, $field:literal) => {
        #[doc = concat!(" The parent's end of a child's ", $stream, " (`Child::", $field, "`, ")]
        /// set by `Stdio::piped()`): a pipe read with owned buffers, like the
        /// read half of a [`UnixStream`](crate::net::UnixStream).
        ///
        /// Belongs to the loop that spawned the child (`!Send`). Dropping it
        /// closes the pipe: the child's next write there gets `EPIPE`.
        pub struct $name {
            pipe: PipeReader,
        }

        impl $name {
            pub(crate) fn adopt(end: impl IntoRawFd) -> io::Result<$name> {
                Ok($name {
                    pipe: PipeReader { fd: adopt(end)? },
                })
            }

            /// Reads into the spare capacity of `buf` (`len..capacity`) and
            /// hands it back; `Ok(0)` at end of stream (the child closed it or
            /// exited). Cancel-safe: bytes a dropped read received come first
            /// in the next one.
            pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
                self.pipe.read(buf).await
            }

            /// Reads until end of stream, appending to `buf`; returns how
            /// many bytes were added.
            pub async fn read_to_end(&self, buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
                self.pipe.read_to_end(buf).await
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.fd.raw()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("fd", &self.pipe.fd.raw())
                    .finish()
            }
        }

        impl AsyncReadOwned for $name {
            fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                self.pipe.read(buf)
            }
        }
    };
}

child_output!(ChildStdout, "standard output", "stdout");
child_output!(ChildStderr, "standard error", "stderr");

/// The parent's end of a child's standard input (`Child::stdin`, set by
/// `Stdio::piped()`): a pipe written with owned buffers, like the write half
/// of a [`UnixStream`](crate::net::UnixStream).
///
/// The child reads end of file once this is dropped or
/// [`close`](ChildStdin::close)d (and every write still in flight is done).
/// Belongs to the loop that spawned the child (`!Send`). Writing after the
/// child closed its end gives `BrokenPipe` (no `SIGPIPE`: Rust programs
/// ignore it).
pub struct ChildStdin {
    /// `None` once closed.
    fd: RefCell<Option<SharedFd>>,
}

impl ChildStdin {
    pub(crate) fn adopt(end: impl IntoRawFd) -> io::Result<ChildStdin> {
        Ok(ChildStdin {
            fd: RefCell::new(Some(adopt(end)?)),
        })
    }

    /// Writes some of `buf`'s initialised bytes; returns how many.
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        let Some(fd) = self.fd.borrow().clone() else {
            let e = io::Error::new(io::ErrorKind::BrokenPipe, "the child's stdin was closed");
            return BufResult(Err(e), buf);
        };
        Op::new(WithFd {
            op: kop::Write {
                fd: fd.raw(),
                buf,
                offset: CURRENT_POSITION,
                fixed: None,
            },
            fd,
        })
        .await
    }

    /// Writes all of `buf`'s initialised bytes.
    ///
    /// # Errors
    ///
    /// The first error (`BrokenPipe` if the child closed its end); some bytes
    /// may have been written.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        AsyncWriteOwned::write_all(self, buf).await
    }

    /// Closes the pipe: the child reads end of file once writes still in
    /// flight (futures dropped mid-write) are done. Later writes fail with
    /// `BrokenPipe`. Dropping the `ChildStdin` does the same.
    pub fn close(&self) {
        self.fd.borrow_mut().take();
    }
}

impl AsRawFd for ChildStdin {
    /// The pipe's fd; -1 once [`close`](ChildStdin::close)d.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.borrow().as_ref().map_or(-1, SharedFd::raw)
    }
}

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStdin")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl AsyncWriteOwned for ChildStdin {
    fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        ChildStdin::write(self, buf)
    }

    /// [`close`](ChildStdin::close): a pipe has no half-close.
    async fn write_eof(&self) -> io::Result<()> {
        self.close();
        Ok(())
    }
}

/// Reads a child's stdout and stderr to their ends, both at once; nothing for
/// a stream that is `None`.
pub(crate) async fn collect(
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    async fn all(pipe: Option<PipeReader>) -> io::Result<Vec<u8>> {
        let Some(pipe) = pipe else {
            return Ok(Vec::new());
        };
        let BufResult(res, buf) = pipe.read_to_end(Vec::new()).await;
        res.map(|_| buf)
    }
    let (out, err) = crate::gather!(all(out.map(|s| s.pipe)), all(err.map(|s| s.pipe))).await;
    Ok((out?, err?))
}
