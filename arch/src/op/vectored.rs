//! Vectored send: the initialised bytes of many owned buffers in one
//! `sendmsg`, in order.
//!
//! io_uring's `IORING_OP_SENDMSG` takes a pointer to a `msghdr`, which points
//! at an array of `iovec`s, which point at the buffers. The op owns all of
//! them: the buffers (`Vec<B>`), the `iovec` array (a `Vec`, whose heap
//! storage does not move when the op does) and the header (a field, wired up
//! in [`OpCode::uring_entry`] / [`OpCode::perform`] once the op sits at its
//! final address). While the op is in flight nothing here is freed or moved:
//! if the future is dropped, the op layer parks the whole op until the
//! completion (`src/op.rs` rule 1), iovec array included (tokio-uring#125 is
//! what happens otherwise).
//!
//! `sendmsg` rather than `writev`: it takes `MSG_NOSIGNAL`, so a vanished
//! peer gives `EPIPE`, never SIGPIPE, as for [`Send`](super::Send).

use std::fmt;
use std::os::fd::RawFd;

use super::udp::send_msg_methods;
use super::{OpCode, SimOp};
use crate::buf::IoBuf;

/// The most `iovec`s one `sendmsg` takes (`IOV_MAX`, `UIO_MAXIOV` in the
/// kernel); more gives `EMSGSIZE`. [`SendVectored`] never passes more: it
/// sends the first `IOV_MAX` buffers, a short write.
pub const IOV_MAX: usize = 1024;

/// Send the initialised bytes of `bufs`, in order, from a start position
/// (with `MSG_NOSIGNAL`). At most [`IOV_MAX`] buffers go into one call; the
/// count is the bytes sent, which may be fewer than offered (a short write).
pub struct SendVectored<B> {
    /// The socket.
    pub fd: RawFd,
    bufs: Vec<B>,
    /// One entry per buffer sent by this op, from the start position on.
    iovs: Vec<libc::iovec>,
    msg: libc::msghdr,
}

impl<B: IoBuf> SendVectored<B> {
    /// Send all of `bufs` on `fd`.
    pub fn new(fd: RawFd, bufs: Vec<B>) -> SendVectored<B> {
        SendVectored::starting_at(fd, bufs, 0, 0)
    }

    /// Send `bufs` on `fd` from byte `offset` of `bufs[index]` on (to resume
    /// after a short write).
    ///
    /// # Panics
    ///
    /// If `index > bufs.len()`, or `offset` is past the initialised bytes of
    /// `bufs[index]`.
    pub fn starting_at(fd: RawFd, bufs: Vec<B>, index: usize, offset: usize) -> SendVectored<B> {
        assert!(
            index <= bufs.len() && (offset == 0 || offset <= bufs[index].bytes_init()),
            "SendVectored start ({index}, {offset}) is outside the buffers"
        );
        let iovs = bufs
            .iter()
            .skip(index)
            .take(IOV_MAX)
            .enumerate()
            .map(|(i, b)| {
                let skip = if i == 0 { offset } else { 0 };
                libc::iovec {
                    // SAFETY: skip <= bytes_init: stays inside the buffer.
                    iov_base: unsafe { b.stable_ptr().add(skip) }.cast_mut().cast(),
                    iov_len: b.bytes_init() - skip,
                }
            })
            .collect();
        SendVectored {
            fd,
            bufs,
            iovs,
            // SAFETY: msghdr is plain old data; all-zero (null pointers, zero
            // lengths) is a valid, empty header.
            msg: unsafe { std::mem::zeroed() },
        }
    }

    /// Where a vectored write resumes after `n` more bytes went out: advances
    /// `(index, offset)` over the initialised bytes of `bufs`, skipping empty
    /// buffers, so that `index == bufs.len()` means everything was sent.
    pub fn advance(
        bufs: &[B],
        (mut index, mut offset): (usize, usize),
        mut n: usize,
    ) -> (usize, usize) {
        while index < bufs.len() {
            let left = bufs[index].bytes_init() - offset;
            if n < left {
                return (index, offset + n);
            }
            n -= left;
            index += 1;
            offset = 0;
        }
        debug_assert_eq!(n, 0, "more bytes sent than offered");
        (index, offset)
    }

    /// The buffers, handed back.
    pub fn into_bufs(self) -> Vec<B> {
        self.bufs
    }

    /// Point `msg` at the iovec array. Called once the op is at its final
    /// address (the array's heap storage never moves; `msg` does with `self`).
    fn wire(&mut self) -> *const libc::msghdr {
        // SAFETY: as in `starting_at`: an all-zero msghdr is valid.
        self.msg = unsafe { std::mem::zeroed() };
        self.msg.msg_iov = self.iovs.as_mut_ptr();
        self.msg.msg_iovlen = self.iovs.len();
        &raw const self.msg
    }
}

impl<B> fmt::Debug for SendVectored<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendVectored")
            .field("fd", &self.fd)
            .field("bufs", &self.bufs.len())
            .field("iovecs", &self.iovs.len())
            .finish()
    }
}

// SAFETY: the entry points at `self.msg` (a field), which points at the heap
// storage of `self.iovs`, whose entries point at the initialised bytes of the
// buffers in `self.bufs` (IoBuf contract: stable across moves). None of it is
// freed or reallocated before the op is dropped, and the op does not move or
// drop until its completion.
unsafe impl<B: IoBuf> OpCode for SendVectored<B> {
    send_msg_methods!();

    /// The simulator sends one buffer per op, the first non-empty one: a
    /// short write, which vectored writes allow.
    fn sim(&mut self) -> Option<SimOp<'_>> {
        let buf = match self.iovs.iter().find(|v| v.iov_len > 0) {
            // SAFETY: the iovec describes initialised bytes of a buffer owned
            // by `self.bufs`, borrowed (through `self`) for the result's
            // lifetime.
            Some(v) => unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) },
            None => &[],
        };
        Some(SimOp::Send { fd: self.fd, buf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_walks_buffers_and_skips_empty_ones() {
        let bufs: Vec<&'static [u8]> = vec![b"abc", b"", b"de", b"", b""];
        assert_eq!(SendVectored::advance(&bufs, (0, 0), 0), (0, 0));
        assert_eq!(SendVectored::advance(&bufs, (0, 0), 2), (0, 2));
        // Exactly the end of a buffer moves past it and any empty ones.
        assert_eq!(SendVectored::advance(&bufs, (0, 0), 3), (2, 0));
        // Zero bytes from an empty buffer normalises past it.
        assert_eq!(SendVectored::advance(&bufs, (1, 0), 0), (2, 0));
        assert_eq!(SendVectored::advance(&bufs, (0, 2), 2), (2, 1));
        assert_eq!(SendVectored::advance(&bufs, (2, 1), 1), (5, 0));
        assert_eq!(SendVectored::advance(&bufs[..0], (0, 0), 0), (0, 0));
    }

    #[test]
    fn at_most_iov_max_iovecs_from_the_start_position() {
        let bufs: Vec<&'static [u8]> = vec![b"xy"; IOV_MAX + 1];
        let op = SendVectored::new(-1, bufs);
        assert_eq!(op.iovs.len(), IOV_MAX);
        let op = SendVectored::starting_at(-1, op.into_bufs(), 1, 1);
        assert_eq!(op.iovs.len(), IOV_MAX);
        assert_eq!(op.iovs[0].iov_len, 1);
        let op = SendVectored::starting_at(-1, op.into_bufs(), IOV_MAX + 1, 0);
        assert!(op.iovs.is_empty());
    }
}
