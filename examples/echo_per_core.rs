//! An echo server with one event loop per core (`coil::pool::Pool`): every
//! loop has its own listener on the same port (`SO_REUSEPORT`), so the kernel
//! spreads the connections over the loops and no connection ever moves.
//!
//! The demo: a pool of one loop per available core (at least 2) serves;
//! a client thread opens 64 connections, sends 16 messages on each and checks
//! the echoes; then it asks the pool to stop. Each loop stops accepting, lets
//! its connections finish (5 s deadline) and reports how many it served.
//! Exits by itself.
//!
//! Run it: `cargo run --release --example echo_per_core [loops] [connections]`.
//!
//! Uneven load: `SO_REUSEPORT` hashes each connection's addresses to a
//! listener, so one loop can get busier connections than another. The
//! alternative is to accept in one place and hand each connection to the
//! loop of your choice: accept with a `std::net::TcpListener` on a plain
//! thread, and `PoolHandle::spawn_on_with(core, move || async move { .. })`
//! adopts the std stream (which is `Send`) with `TcpStream::from_std` on the
//! target loop and serves it there (a test in `tests/rt/pool.rs` does this).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

use coil::Either;
use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};
use coil::pool::{self, Pool};

/// One connection: echo until the client closes.
async fn echo(conn: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let BufResult(n, b) = conn.read(buf).await;
        if n? == 0 {
            return Ok(());
        }
        let BufResult(r, b) = conn.write_all(b).await;
        r?;
        buf = b;
    }
}

/// How long a loop's accept pauses after an accept error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// One loop's server: accept until shutdown is requested, then wait for the
/// connections it has (the pool cancels them at the drain deadline); returns
/// how many it accepted. An accept error (out of fds, `EMFILE`) is reported
/// and the accept retried after a pause: it never stops the loop's server.
/// Finished connections are dropped from the list as it grows, so memory
/// follows the live connections, not every one ever served.
pub(crate) async fn serve(listener: std::net::TcpListener) -> io::Result<usize> {
    let listener = TcpListener::from_std(listener)?;
    let mut conns: Vec<coil::Task<()>> = Vec::new();
    let mut reap_at = 64;
    let mut served = 0;
    loop {
        match coil::select(pool::shutdown_requested(), listener.accept()).await {
            Either::Left(()) => break,
            Either::Right(Ok((conn, _))) => {
                if conns.len() >= reap_at {
                    conns.retain(|c| !c.is_finished());
                    reap_at = (conns.len() * 2).max(64);
                }
                served += 1;
                conns.push(coil::spawn(async move {
                    // One connection's error ends that connection, not the server.
                    if let Err(e) = echo(conn).await {
                        eprintln!("connection: {e}");
                    }
                }));
            }
            Either::Right(Err(e)) => {
                eprintln!("accept: {e}");
                let pause = coil::time::sleep(ACCEPT_BACKOFF);
                if let Either::Left(()) = coil::select(pool::shutdown_requested(), pause).await {
                    break;
                }
            }
        }
    }
    for c in conns {
        // Cancelled at the drain deadline, or panicked.
        if let Err(e) = c.await {
            eprintln!("connection: {e}");
        }
    }
    Ok(served)
}

/// A client: `messages` round trips on one connection.
async fn client(addr: SocketAddr, id: usize, messages: usize) -> io::Result<()> {
    let conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    for i in 0..messages {
        let msg = format!("client {id} message {i}").into_bytes();
        let BufResult(r, msg) = conn.write_all(msg).await;
        r?;
        let BufResult(r, back) = conn.read_exact(Vec::with_capacity(msg.len())).await;
        r?;
        if back != msg {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo"));
        }
    }
    Ok(())
}

/// A listening TCP socket with `SO_REUSEPORT` (and `SO_REUSEADDR`), so every
/// loop can have its own on the same port. Made on the main thread, before
/// the loops exist, hence raw calls; on a running loop `coil::net::TcpSocket`
/// (`set_reuseport`, `bind`, `listen`) does the same.
fn bind_reuseport(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "IPv4 only here"));
    };
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    // SAFETY: plain system call; the result is checked.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a new socket that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        // SAFETY: `one` is a c_int that outlives the call, its size is passed.
        check(unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                opt,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as u32,
            )
        })?;
    }
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a sockaddr_in of the size passed.
    check(unsafe {
        libc::bind(
            raw,
            (&raw const sin).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        )
    })?;
    // SAFETY: plain system call on our socket.
    check(unsafe { libc::listen(raw, 1024) })?;
    Ok(std::net::TcpListener::from(fd))
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let loops = args
        .next()
        .transpose()
        .map_err(io::Error::other)?
        .unwrap_or(cores);
    let conns = args
        .next()
        .transpose()
        .map_err(io::Error::other)?
        .unwrap_or(64);

    // One listener per loop on one port: the first picks the port.
    let first = bind_reuseport("127.0.0.1:0".parse().unwrap())?;
    let addr = first.local_addr()?;
    let mut listeners = vec![Some(first)];
    for _ in 1..loops {
        listeners.push(Some(bind_reuseport(addr)?));
    }
    let listeners = Mutex::new(listeners);

    let pool = Pool::builder()
        .loops(loops)
        .drain_timeout(Duration::from_secs(5))
        .build()?;
    let stop = pool.handle().clone();
    let clients = std::thread::spawn(move || {
        let result = coil::run(async move {
            let tasks: Vec<_> = (0..conns)
                .map(|id| coil::spawn(client(addr, id, 16)))
                .collect();
            for t in tasks {
                t.await.map_err(io::Error::from)??;
            }
            Ok::<(), io::Error>(())
        });
        stop.request_shutdown(Duration::from_secs(5));
        result
    });
    let served = pool
        .run(move |core| {
            let listener = listeners.lock().unwrap()[core.index()].take();
            async move { serve(listener.expect("one listener per loop")).await }
        })
        .map_err(|e| io::Error::other(e.to_string()))?;
    clients.join().expect("the client thread panicked")?;

    for (core, n) in served.iter().enumerate() {
        println!("loop {core}: {n} connections");
    }
    let total: usize = served.iter().sum();
    println!(
        "{total} connections on {loops} loops, every echo checked, port {}",
        addr.port()
    );
    if total != conns {
        return Err(io::Error::other(format!(
            "served {total} connections, expected {conns}"
        )));
    }
    Ok(())
}
