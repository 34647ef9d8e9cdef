//! [`copy`]: pump a reader into a writer until end of stream.

use std::io;

use coil_arch::BufResult;

use super::{AsyncReadOwned, AsyncWriteOwned};

/// Copies everything `reader` yields into `writer` until end of stream;
/// returns the number of bytes copied. One 64 KiB buffer, owned by the copy,
/// goes back and forth between the two (no per-chunk allocation).
///
/// The writer is not shut down at the end (call
/// [`write_eof`](AsyncWriteOwned::write_eof) to pass the EOF on).
///
/// # Errors
///
/// The first read or write error. Bytes read but not yet written when a
/// write fails are lost (as with `std::io::copy`).
///
/// ```
/// use coil::io::BufResult;
/// use coil::net::UnixStream;
///
/// coil::run(async {
///     let (src_w, src_r) = UnixStream::pair()?;
///     let (dst_w, dst_r) = UnixStream::pair()?;
///     let BufResult(r, _) = src_w.write_all(vec![7u8; 100_000]).await;
///     r?;
///     drop(src_w); // EOF for the copy
///     let copied = coil::io::copy(&src_r, &dst_w).await?;
///     assert_eq!(copied, 100_000);
///     drop(dst_w);
///     let BufResult(r, buf) = dst_r.read_exact(Vec::with_capacity(100_000)).await;
///     r?;
///     assert!(buf.iter().all(|&b| b == 7));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn copy<R, W>(reader: &R, writer: &W) -> io::Result<u64>
where
    R: AsyncReadOwned + ?Sized,
    W: AsyncWriteOwned + ?Sized,
{
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut total = 0u64;
    loop {
        buf.clear();
        let BufResult(r, b) = reader.read(buf).await;
        buf = b;
        match r {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let BufResult(r, b) = writer.write_all(buf).await;
        buf = b;
        r?;
    }
}
