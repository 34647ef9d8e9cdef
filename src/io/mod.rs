//! I/O building blocks: owned buffers ([`BufResult`], [`IoBuf`], [`IoBufMut`],
//! [`Slice`]), the owned-buffer stream traits ([`AsyncReadOwned`],
//! [`AsyncWriteOwned`]) and what is built on them ([`BufReader`],
//! [`BufWriter`], [`copy()`]). The fd handle that ops share is the op layer's
//! (`op/fd.rs`).
//!
//! Every I/O call in coil **takes ownership of its buffer and hands it back**
//! with the result, because io_uring writes into the buffer after the call
//! that submitted the read has returned — the buffer must outlive the future:
//!
//! ```
//! use coil::io::BufResult;
//! use coil::net::{TcpListener, TcpStream};
//!
//! coil::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let client = coil::spawn(async move {
//!         let s = TcpStream::connect(addr).await?;
//!         let BufResult(res, _buf) = s.write_all(b"ping".to_vec()).await;
//!         res
//!     });
//!     let (conn, _) = listener.accept().await?;
//!     let BufResult(n, buf) = conn.read(Vec::with_capacity(16)).await;
//!     assert_eq!(&buf[..n?], b"ping");
//!     client.await.unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A read fills the buffer's *spare capacity* (`len..capacity`) and extends
//! its length; a write sends its initialised bytes (`..len`).

mod buf_reader;
mod buf_writer;
mod copy;
pub(crate) mod fixed;
mod slice;
pub(crate) mod traits;

pub use buf_reader::{BufReader, IncompleteRead, LimitOverrun, Lines};
pub use buf_writer::BufWriter;
pub use coil_arch::pbuf::PooledBuf;
pub use coil_arch::{BufResult, IoBuf, IoBufMut};
pub use copy::copy;
pub use fixed::{FixedBuf, FixedBufPool};
pub use slice::Slice;
pub use traits::{AsyncReadOwned, AsyncWriteOwned};

/// Reads with `read` until end of stream, appending to `buf` (growing it
/// when full: by what was read so far, clamped to 8 KiB..16 MiB); how many
/// bytes were added. For `fs::File::read_to_end` and a child's output pipes.
pub(crate) async fn read_to_end_with<F, Fut>(
    mut buf: Vec<u8>,
    mut read: F,
) -> BufResult<usize, Vec<u8>>
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = BufResult<usize, Vec<u8>>>,
{
    let start = buf.len();
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve((buf.capacity() - start).clamp(8192, 16 << 20));
        }
        let BufResult(res, b) = read(buf).await;
        buf = b;
        match res {
            Ok(0) => return BufResult(Ok(buf.len() - start), buf),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return BufResult(Err(e), buf),
        }
    }
}
