//! A TCP server that shuts down gracefully on SIGINT or SIGTERM: it stops
//! accepting, lets the connections in flight finish within a deadline,
//! cancels the ones still running after it, and exits 0 (asyncio's
//! `loop.add_signal_handler(SIGTERM, server.close)` then
//! `await server.wait_closed()`).
//!
//! The protocol makes "in flight" visible: a client sends `job NAME`, the
//! server answers `started`, then waits for the client's next line (the
//! request's slow part) and answers `done NAME` and closes.
//!
//! Run it: `cargo run --example graceful_shutdown` runs a demo (three clients,
//! then the program sends itself SIGTERM while their jobs are in flight) and
//! exits by itself. `cargo run --example graceful_shutdown -- serve
//! 127.0.0.1:7000` serves until Ctrl-C or `kill -TERM`; talk to it with `nc
//! 127.0.0.1 7000`. A second Ctrl-C (or SIGTERM) during the drain cuts off
//! the connections still in flight at once. `tests/example_graceful_shutdown.rs` runs the server in a
//! child process and signals it.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use coil::Either;
use coil::io::{BufReader, BufWriter};
use coil::net::{TcpListener, TcpStream};
use coil::signal::{SignalKind, signal};
use coil::sync::Event;
use coil::task::Task;

/// How long connections in flight get once a stop signal came.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// How long the accept loop pauses after an accept error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// What the shutdown found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    /// Connections still running when the stop signal came.
    pub(crate) in_flight: usize,
    /// Of those, the ones cancelled at the deadline.
    pub(crate) cut_off: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shut down: {} in flight, {} finished, {} cut off",
            self.in_flight,
            self.in_flight - self.cut_off,
            self.cut_off
        )
    }
}

/// One connection: `job NAME` → `started`, the client's next line → `done NAME`.
/// A client that closes before sending its first line (a port probe, a
/// health check) gets no answer.
async fn handle(conn: TcpStream) -> io::Result<()> {
    let (rd, wr) = conn.into_split();
    let mut reader = BufReader::new(rd);
    let mut writer = BufWriter::new(wr);
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(()); // asked nothing: no job to start
    }
    let name = line.trim().strip_prefix("job ").unwrap_or("?").to_owned();
    writer.write_all(b"started\n").await?;
    writer.flush().await?;
    line.clear();
    reader.read_line(&mut line).await?; // the slow part of the request
    writer
        .write_all(format!("done {name}\n").as_bytes())
        .await?;
    writer.shutdown().await
}

/// Serves `listener` until SIGINT or SIGTERM, then shuts down (module docs).
/// Once the listening socket is closed it prints `stopped accepting` and calls
/// `on_stop`. An accept error (out of fds, `EMFILE`) is reported and the
/// accept retried after a short pause.
pub(crate) async fn serve(
    listener: TcpListener,
    deadline: Duration,
    on_stop: impl FnOnce(),
) -> io::Result<Report> {
    // Listening from the start: a signal during the accept loop is not lost.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut running: Vec<Task<io::Result<()>>> = Vec::new();
    loop {
        let stop = coil::select(interrupt.recv(), terminate.recv());
        match coil::select(listener.accept(), stop).await {
            Either::Left(Ok((conn, _peer))) => {
                reap(&mut running);
                running.push(coil::spawn(handle(conn)));
            }
            Either::Left(Err(e)) => {
                eprintln!("accept failed: {e}");
                // Out of fds (EMFILE) the next accept fails the same way at
                // once: pause (still listening for the stop signal) rather
                // than spin on it.
                let stop = coil::select(interrupt.recv(), terminate.recv());
                if let Either::Right(_) =
                    coil::select(coil::time::sleep(ACCEPT_BACKOFF), stop).await
                {
                    break;
                }
            }
            Either::Right(_) => break,
        }
    }
    drop(listener);
    reap(&mut running);
    let in_flight = running.len();
    println!("stopped accepting; {in_flight} connections in flight");
    on_stop();
    let finish_all = async {
        for task in &mut running {
            if let Ok(Err(e)) = task.await {
                eprintln!("connection failed: {e}");
            }
        }
    };
    // A second SIGINT or SIGTERM during the drain cuts it short (coil keeps
    // handling the signals, so the default "kill the process" never comes back).
    let second = coil::select(interrupt.recv(), terminate.recv());
    let drained = match coil::select(coil::time::timeout(deadline, finish_all), second).await {
        Either::Left(in_time) => in_time.is_ok(),
        Either::Right(_) => {
            println!("second signal: cutting off the connections still in flight");
            false
        }
    };
    let mut cut_off = 0;
    if !drained {
        for task in running.iter().filter(|t| !t.is_finished()) {
            task.cancel();
            cut_off += 1;
        }
    }
    Ok(Report { in_flight, cut_off })
}

/// Drops the finished connections from `running`, reporting those that failed.
fn reap(running: &mut Vec<Task<io::Result<()>>>) {
    running.retain_mut(|t| match t.try_take() {
        None => true,
        Some(Ok(Ok(()))) => false,
        Some(Ok(Err(e))) => {
            eprintln!("connection failed: {e}");
            false
        }
        Some(Err(e)) => {
            eprintln!("connection task failed: {e}");
            false
        }
    });
}

/// A client of the demo: starts its job, counts itself in `started` (the
/// last one sets `all_started`), finishes the job once `go` is set. Returns the
/// server's last line.
async fn client(
    addr: std::net::SocketAddr,
    name: usize,
    started: Rc<(Cell<usize>, Event)>,
    go: Rc<Event>,
) -> io::Result<String> {
    let conn = TcpStream::connect(addr).await?;
    let (rd, wr) = conn.into_split();
    let mut reader = BufReader::new(rd);
    let mut writer = BufWriter::new(wr);
    writer.write_all(format!("job {name}\n").as_bytes()).await?;
    writer.flush().await?;
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    assert_eq!(line, "started\n");
    started.0.set(started.0.get() + 1);
    if started.0.get() == CLIENTS {
        started.1.set();
    }
    go.wait().await;
    writer.write_all(b"finish\n").await?;
    writer.flush().await?;
    line.clear();
    reader.read_line(&mut line).await?;
    Ok(line)
}

/// Clients in the demo.
const CLIENTS: usize = 3;

/// The clients start jobs; the program sends itself SIGTERM while they are in
/// flight; they finish once the server has stopped accepting.
async fn demo() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let go = Rc::new(Event::new());
    let stopped = go.clone();
    let server = coil::spawn(serve(listener, DEADLINE, move || stopped.set()));
    let started = Rc::new((Cell::new(0), Event::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| coil::spawn(client(addr, i, started.clone(), go.clone())))
        .collect();
    started.1.wait().await;
    println!("{CLIENTS} jobs in flight; sending SIGTERM to myself");
    // SAFETY: kill(2) with our own pid; no pointers.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    for (i, c) in clients.into_iter().enumerate() {
        let last = c.await.expect("client task")?;
        assert_eq!(last, format!("done {i}\n"));
    }
    let report = server.await.expect("server task")?;
    println!("{report}");
    assert_eq!(
        report,
        Report {
            in_flight: CLIENTS,
            cut_off: 0
        }
    );
    Ok(())
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("serve") {
        let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".to_owned());
        return coil::run(async move {
            let listener = TcpListener::bind(addr.as_str())?;
            println!("listening on {}", listener.local_addr()?);
            let report = serve(listener, DEADLINE, || {}).await?;
            println!("{report}");
            Ok(())
        });
    }
    coil::run(demo())
}
