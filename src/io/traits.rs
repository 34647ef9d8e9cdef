//! [`AsyncReadOwned`] and [`AsyncWriteOwned`]: byte streams with owned
//! buffers, the interface [`BufReader`](super::BufReader),
//! [`BufWriter`](super::BufWriter) and [`copy`](super::copy()) are generic
//! over.
//!
//! Implemented by `coil::net`'s `TcpStream`, `UnixStream` and their read
//! and write halves (in `net/`, through the macros here), and by `&T` and
//! `Rc<T>` of any implementor. The methods take
//! `&self` (one task may read while another writes), and, like every I/O call
//! in coil, take the buffer by value and hand it back.

use std::future::Future;
use std::io;
use std::rc::Rc;

use coil_arch::{BufResult, IoBuf, IoBufMut};

use super::Slice;

/// A byte stream that reads into owned buffers.
///
/// ```
/// use coil::io::{AsyncReadOwned, BufResult};
/// use coil::net::UnixStream;
///
/// async fn first_bytes(r: &impl AsyncReadOwned) -> Vec<u8> {
///     let BufResult(_, buf) = r.read(Vec::with_capacity(16)).await;
///     buf
/// }
///
/// coil::run(async {
///     let (a, b) = UnixStream::pair()?;
///     let BufResult(r, _) = a.write_all(&b"hey"[..]).await;
///     r?;
///     assert_eq!(first_bytes(&b).await, b"hey");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait AsyncReadOwned {
    /// Reads into the spare capacity of `buf` (`len..capacity`), extending
    /// its length; `Ok(0)` is end of stream (or no spare capacity). Must be
    /// cancel-safe: bytes a dropped read received are returned by the next.
    fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
}

/// A byte stream that writes from owned buffers.
///
/// ```
/// use coil::io::{AsyncWriteOwned, BufResult};
/// use coil::net::UnixStream;
///
/// async fn hello(w: &impl AsyncWriteOwned) -> std::io::Result<()> {
///     let BufResult(r, _) = w.write_all(&b"hello"[..]).await;
///     r?;
///     w.write_eof().await
/// }
///
/// coil::run(async {
///     let (a, b) = UnixStream::pair()?;
///     hello(&a).await?;
///     let BufResult(r, buf) = b.read_exact(Vec::with_capacity(5)).await;
///     r?;
///     assert_eq!(buf, b"hello");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait AsyncWriteOwned {
    /// Writes some of `buf`'s initialised bytes; returns how many.
    fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Writes all of `buf`'s initialised bytes.
    ///
    /// # Errors
    ///
    /// The first error (`WriteZero` if the stream accepted nothing); some
    /// bytes may have been written.
    fn write_all<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> {
        async move {
            let mut slice = Slice::new(buf, 0);
            while slice.bytes_init() > 0 {
                let BufResult(res, s) = self.write(slice).await;
                slice = s;
                match res {
                    Ok(0) => {
                        let e = io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the stream accepted no more bytes",
                        );
                        return BufResult(Err(e), slice.into_inner());
                    }
                    Ok(n) => slice.advance(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return BufResult(Err(e), slice.into_inner()),
                }
            }
            BufResult(Ok(()), slice.into_inner())
        }
    }

    /// Closes the write direction: the peer reads end of stream (asyncio's
    /// `write_eof`).
    fn write_eof(&self) -> impl Future<Output = io::Result<()>>;
}

/// Implements [`AsyncReadOwned`] for types with an inherent `read` (used by
/// `net` for its streams and read halves).
macro_rules! read_impl {
    ($($t:ty),*) => {$(
        impl $crate::io::AsyncReadOwned for $t {
            fn read<B: coil_arch::IoBufMut>(
                &self,
                buf: B,
            ) -> impl ::std::future::Future<Output = coil_arch::BufResult<usize, B>> {
                <$t>::read(self, buf)
            }
        }
    )*};
}
pub(crate) use read_impl;

/// Implements [`AsyncWriteOwned`] for types with inherent `write`,
/// `write_all` and `shutdown` (used by `net` for its streams and write
/// halves).
macro_rules! write_impl {
    ($($t:ty),*) => {$(
        impl $crate::io::AsyncWriteOwned for $t {
            fn write<B: coil_arch::IoBuf>(
                &self,
                buf: B,
            ) -> impl ::std::future::Future<Output = coil_arch::BufResult<usize, B>> {
                <$t>::write(self, buf)
            }
            fn write_all<B: coil_arch::IoBuf>(
                &self,
                buf: B,
            ) -> impl ::std::future::Future<Output = coil_arch::BufResult<(), B>> {
                <$t>::write_all(self, buf)
            }
            fn write_eof(&self) -> impl ::std::future::Future<Output = ::std::io::Result<()>> {
                <$t>::shutdown(self, ::std::net::Shutdown::Write)
            }
        }
    )*};
}
pub(crate) use write_impl;

/// `&T` and `Rc<T>` of an implementor implement the traits too.
macro_rules! forward_impl {
    ($($p:ty),*) => {$(
        impl<T: AsyncReadOwned + ?Sized> AsyncReadOwned for $p {
            fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                (**self).read(buf)
            }
        }

        impl<T: AsyncWriteOwned + ?Sized> AsyncWriteOwned for $p {
            fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                (**self).write(buf)
            }
            fn write_all<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> {
                (**self).write_all(buf)
            }
            fn write_eof(&self) -> impl Future<Output = io::Result<()>> {
                (**self).write_eof()
            }
        }
    )*};
}

forward_impl!(&T, Rc<T>);
