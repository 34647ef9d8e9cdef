//! coil's streams behind `futures_io::{AsyncRead, AsyncWrite}` with
//! `coil::compat::Compat`: a `copy` written against futures-io only (as
//! another crate's would be) sends a file over TCP
//! (`cargo run --example futures_io --features futures-io`).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;

use coil::compat::Compat;
use coil::net::{TcpListener, TcpStream};
use futures_io::{AsyncRead, AsyncWrite};

/// Copies `r` to `w` until `r` ends, then closes `w`; the byte count.
async fn copy<R, W>(r: &mut R, w: &mut W) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = [0u8; 8192];
    let mut total = 0;
    loop {
        let n = poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, &mut buf)).await?;
        if n == 0 {
            break;
        }
        let mut done = 0;
        while done < n {
            done += poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, &buf[done..n])).await?;
        }
        total += n as u64;
    }
    poll_fn(|cx| Pin::new(&mut *w).poll_close(cx)).await?;
    Ok(total)
}

#[coil::main]
async fn main() -> io::Result<()> {
    let path = std::env::temp_dir().join(format!("coil-example-futures-io-{}", std::process::id()));
    let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    coil::fs::write(&path, text.clone()).await?;

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = coil::spawn(async move {
        let mut file = Compat::new(coil::fs::File::open(&path).await?);
        let mut conn = Compat::new(TcpStream::connect(addr).await?);
        let sent = copy(&mut file, &mut conn).await;
        coil::fs::remove_file(&path).await?;
        sent
    });

    let (conn, _) = listener.accept().await?;
    let mut conn = Compat::new(conn);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match poll_fn(|cx| Pin::new(&mut conn).poll_read(cx, &mut buf)).await? {
            0 => break,
            n => received.extend_from_slice(&buf[..n]),
        }
    }
    let sent = sender.await.expect("the sender task")?;
    println!("sent {sent} bytes, received {}", received.len());
    assert_eq!(received, text.as_bytes());
    Ok(())
}
