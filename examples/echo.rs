//! An echo server and its clients in one program (asyncio's
//! `start_server` + `open_connection` echo).
//!
//! The server listens on 127.0.0.1 (a free port), and echoes every line it
//! reads. N clients connect concurrently, each sends M lines through a
//! `BufWriter`, reads the echoes back through a `BufReader` and checks them.
//! Then the server is cancelled and a summary printed. Exits by itself.
//!
//! Run it: `cargo run --release --example echo [clients] [lines]`.
//!
//! Or as a server only, to talk to with `nc` (runs until interrupted):
//! `cargo run --release --example echo -- serve 127.0.0.1:7000`, then
//! `nc 127.0.0.1 7000` in another terminal: every line you type comes back.

use std::io;
use std::net::SocketAddr;

use coil::io::{BufReader, BufWriter};
use coil::net::{TcpListener, TcpStream};
use coil::spawn;
use coil::stream::StreamExt;
use coil::time::Instant;

/// What the clients did.
#[derive(Debug)]
pub(crate) struct Summary {
    /// Clients that connected and got every echo back.
    pub(crate) clients: usize,
    /// Lines echoed, all clients together.
    pub(crate) lines: usize,
    /// Bytes echoed.
    pub(crate) bytes: usize,
}

/// One connection: echo lines until the client closes its side. A line that
/// is not UTF-8 (or longer than the reader's 64 KiB limit) ends this
/// connection with an error, after the lines read before it have been
/// flushed back. A read error is the error returned, also when that flush
/// fails too (as it does after a reset).
pub(crate) async fn serve(conn: TcpStream) -> io::Result<()> {
    let (rd, wr) = conn.into_split();
    let mut reader = BufReader::new(rd);
    let mut writer = BufWriter::new(wr);
    let mut line = String::new();
    loop {
        line.clear();
        let n = match reader.read_line(&mut line).await {
            Ok(n) => n,
            Err(e) => {
                // Give back what was good before reporting the bad line. A
                // reset fails this flush as well (EPIPE): report the cause.
                let _ = writer.flush().await;
                return Err(e);
            }
        };
        if n == 0 {
            return writer.shutdown().await;
        }
        writer.write_all(line.as_bytes()).await?;
        // Flush when the client has nothing more queued: one send per burst.
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
}

/// One client: send `lines` lines, read them back, check them.
async fn client(id: usize, addr: SocketAddr, lines: usize) -> io::Result<usize> {
    let conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let (rd, wr) = conn.into_split();
    let mut writer = BufWriter::new(wr);
    let mut reader = BufReader::new(rd);
    let mut bytes = 0;
    for i in 0..lines {
        let msg = format!("client {id} says hello #{i}\n");
        writer.write_all(msg.as_bytes()).await?;
        writer.flush().await?;
        let mut back = String::new();
        reader.read_line(&mut back).await?;
        if back != msg {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("client {id}: sent {msg:?}, got {back:?} back"),
            ));
        }
        bytes += back.len();
    }
    writer.shutdown().await?;
    // The server closes its side after our EOF.
    if reader.next_line().await?.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected extra data",
        ));
    }
    Ok(bytes)
}

/// Starts the server, runs `clients` clients of `lines` lines each, stops
/// the server, and returns what happened.
pub(crate) async fn demo(clients: usize, lines: usize) -> io::Result<Summary> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!("echo server listening on {addr}");
    let server = spawn(async move {
        // The connections as a stream; it never ends.
        let mut incoming = listener.incoming();
        while let Some(conn) = incoming.next().await {
            match conn {
                Ok(conn) => {
                    // Detached: it ends when its client closes.
                    drop(spawn(async move {
                        if let Err(e) = serve(conn).await {
                            eprintln!("connection error: {e}");
                        }
                    }));
                }
                // Out of fds (EMFILE) and the like: the next item accepts
                // again; pause so as not to spin on the same error.
                Err(e) => {
                    eprintln!("accept: {e}");
                    coil::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    });
    let tasks: Vec<_> = (0..clients)
        .map(|id| spawn(client(id, addr, lines)))
        .collect();
    let mut summary = Summary {
        clients: 0,
        lines: 0,
        bytes: 0,
    };
    let mut first_err = None;
    for t in tasks {
        match t
            .await
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|r| r)
        {
            Ok(bytes) => {
                summary.clients += 1;
                summary.lines += lines;
                summary.bytes += bytes;
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    server.cancel();
    match first_err {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Serves every connection `listener` accepts, each in its own task, until
/// the task running this is cancelled (or the process stopped).
#[allow(dead_code)]
pub(crate) async fn serve_forever(listener: TcpListener) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((conn, peer)) => {
                println!("{peer} connected");
                drop(spawn(async move {
                    match serve(conn).await {
                        Ok(()) => println!("{peer} closed"),
                        Err(e) => eprintln!("{peer}: {e}"),
                    }
                }));
            }
            Err(e) => {
                eprintln!("accept: {e}");
                coil::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

#[allow(dead_code)]
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("serve") {
        let addr = args.nth(1).unwrap_or_else(|| "127.0.0.1:7000".to_owned());
        return coil::run(async move {
            let listener = TcpListener::bind(addr.as_str())?;
            let at = listener.local_addr()?;
            println!(
                "echo server listening on {at}; try: nc {} {}",
                at.ip(),
                at.port()
            );
            serve_forever(listener).await
        });
    }
    let clients = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let lines = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let rt = coil::Runtime::new()?;
    println!("driver: {}", rt.driver());
    let start = Instant::now();
    let s = rt.block_on(demo(clients, lines))?;
    println!(
        "{} clients echoed {} lines ({} bytes) in {:.2?}",
        s.clients,
        s.lines,
        s.bytes,
        start.elapsed()
    );
    Ok(())
}
