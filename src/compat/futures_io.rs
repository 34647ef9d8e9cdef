//! `futures-io`: [`futures_io::AsyncRead`], [`AsyncBufRead`](futures_io::AsyncBufRead)
//! and [`AsyncWrite`](futures_io::AsyncWrite) for [`Compat`], each a thin
//! call into the adapter's shared state machine (`io.rs`).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Compat, OwnedRead, OwnedWrite};

impl<T: OwnedRead> futures_io::AsyncRead for Compat<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_read_inner(cx, buf)
    }
}

impl<T: OwnedRead> futures_io::AsyncBufRead for Compat<T> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().poll_fill_inner(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume_inner(amt);
    }
}

impl<T: OwnedWrite> futures_io::AsyncWrite for Compat<T> {
    super::io::compat_write_methods!();

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_close_inner(cx)
    }
}
