//! `examples/graceful_shutdown.rs` as an operator sees it: the server runs in a
//! child process (this test binary re-run alone, serving), std clients start
//! jobs, the test sends SIGTERM (or SIGINT), and then: the server stops
//! accepting (a new connection is refused or closed unanswered), every job in flight completes, the
//! process exits 0. With a short deadline a stuck job is cut off and the exit
//! is still 0. Out of fds, the accept loop pauses between tries instead of
//! spinning, and serves the waiting clients once fds are free.
#![allow(missing_docs)]

#[path = "../examples/graceful_shutdown.rs"]
#[allow(dead_code, unreachable_pub)]
mod graceful;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use coil::net::TcpListener;

/// Set in the child: the shutdown deadline in milliseconds.
const CHILD_ENV: &str = "COIL_GRACEFUL_CHILD";

/// The child's part: serve until a stop signal, print the report.
fn serve_in_child(deadline_ms: &str) {
    let deadline = Duration::from_millis(deadline_ms.parse().unwrap());
    coil::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        let report = graceful::serve(listener, deadline, || {}).await.unwrap();
        println!("{report}");
    });
}

/// The server process, seen through its stdout. Killed on drop if still running.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// Tells the watchdog the test is over.
    done: Option<mpsc::Sender<()>>,
}

impl Server {
    /// Re-runs test `name` of this binary as the server, with `deadline_ms`.
    fn start(name: &str, deadline_ms: u64) -> (Server, SocketAddr) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, deadline_ms.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (done, watch) = mpsc::channel::<()>();
        let pid = child.id() as libc::pid_t;
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(support::WATCHDOG) {
                // SAFETY: kill(2) of our own child, which `Server` reaps.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let mut server = Server {
            child,
            stdout,
            done: Some(done),
        };
        let addr = server.line("listening on ").parse().unwrap();
        (server, addr)
    }

    /// What follows `prefix` in the first stdout line that has it (the test
    /// harness prints its own lines too).
    fn line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the server's output ended before {prefix:?}");
            // The harness's `test NAME ... ` may start the server's first line.
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim_end().to_owned();
            }
        }
    }

    fn signal(&self, signo: i32) {
        // SAFETY: kill(2) of our own child, not yet reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signo) };
        assert_eq!(rc, 0);
    }

    /// Waits for the exit; true if it was status 0.
    fn exits_0(mut self) -> bool {
        let status = self.child.wait().unwrap();
        self.done.take().map(|d| d.send(()));
        status.success()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.done.take().is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client with a job in flight (the server answered `started`).
struct Job {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Job {
    fn start(addr: SocketAddr, name: usize) -> Job {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(support::WATCHDOG)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        writeln!(stream, "job {name}").unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "started\n");
        Job { stream, reader }
    }

    /// Sends the job's second line; returns everything the server sent until EOF.
    fn finish(mut self) -> String {
        self.stream.write_all(b"finish\n").unwrap();
        self.rest()
    }

    /// Everything the server sends until it closes the connection.
    fn rest(mut self) -> String {
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest).unwrap();
        rest
    }
}

/// A connection made after the server stopped accepting gets no `started`:
/// refused, or (if it reached the backlog, or an accept whose cancellation the
/// kernel had not finished, before the socket was closed) closed unanswered.
fn assert_not_served(addr: SocketAddr) {
    let Ok(mut late) = TcpStream::connect(addr) else {
        return;
    };
    late.set_read_timeout(Some(support::WATCHDOG)).unwrap();
    let _ = late.write_all(b"job late\n"); // may meet a reset already
    let mut answer = String::new();
    match late.read_to_string(&mut answer) {
        Ok(_) => assert_eq!(answer, "", "a connection after the stop was served"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn sigterm_lets_in_flight_jobs_finish_and_exits_0() {
    if let Ok(deadline) = std::env::var(CHILD_ENV) {
        return serve_in_child(&deadline);
    }
    let (mut server, addr) =
        Server::start("sigterm_lets_in_flight_jobs_finish_and_exits_0", 60_000);
    let jobs: Vec<Job> = (0..4).map(|i| Job::start(addr, i)).collect();
    server.signal(libc::SIGTERM);
    assert_eq!(
        server.line("stopped accepting; "),
        "4 connections in flight"
    );
    assert_not_served(addr);
    for (i, job) in jobs.into_iter().enumerate() {
        assert_eq!(job.finish(), format!("done {i}\n"), "job {i} completed");
    }
    assert_eq!(
        server.line("shut down: "),
        "4 in flight, 4 finished, 0 cut off"
    );
    assert!(server.exits_0());
}

#[test]
fn past_the_deadline_a_stuck_job_is_cut_off_and_the_exit_is_still_0() {
    if let Ok(deadline) = std::env::var(CHILD_ENV) {
        return serve_in_child(&deadline);
    }
    let (mut server, addr) = Server::start(
        "past_the_deadline_a_stuck_job_is_cut_off_and_the_exit_is_still_0",
        300,
    );
    let quick = Job::start(addr, 0);
    let stuck = Job::start(addr, 1);
    server.signal(libc::SIGINT);
    assert_eq!(
        server.line("stopped accepting; "),
        "2 connections in flight"
    );
    assert_eq!(quick.finish(), "done 0\n");
    assert_eq!(
        server.line("shut down: "),
        "2 in flight, 1 finished, 1 cut off"
    );
    assert_eq!(stuck.rest(), "", "the cut-off job's connection is closed");
    assert!(server.exits_0());
}

#[test]
fn a_connection_closed_before_its_job_line_gets_no_answer() {
    if let Ok(deadline) = std::env::var(CHILD_ENV) {
        return serve_in_child(&deadline);
    }
    let (server, addr) = Server::start(
        "a_connection_closed_before_its_job_line_gets_no_answer",
        60_000,
    );
    // A probe: connect, send nothing, close the write side. It used to be
    // told `started` and `done ?` for a job it never asked for.
    let mut probe = TcpStream::connect(addr).unwrap();
    probe.set_read_timeout(Some(support::WATCHDOG)).unwrap();
    probe.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    probe.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "", "a connection that asked nothing was answered");
    assert_eq!(Job::start(addr, 7).finish(), "done 7\n", "still serving");
    server.signal(libc::SIGTERM);
    assert!(server.exits_0());
}

/// Set in the child process of `out_of_fds_the_accept_loop_pauses_and_recovers`.
const EMFILE_ENV: &str = "COIL_GRACEFUL_EMFILE_CHILD";

/// Out of fds, every accept fails with EMFILE at once: the server used to
/// retry at once, a busy loop (a CPU and a stream of `accept failed` lines
/// for as long as the fds were out). Now it pauses between tries, and the
/// client that waited in the backlog is served once fds are free. A child
/// process per driver with a soft RLIMIT_NOFILE of 64.
#[test]
fn out_of_fds_the_accept_loop_pauses_and_recovers() {
    if std::env::var_os(EMFILE_ENV).is_some() {
        return emfile_child();
    }
    support::rerun_per_driver("out_of_fds_the_accept_loop_pauses_and_recovers", EMFILE_ENV);
}

fn emfile_child() {
    coil::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The first signal listener makes the process's signal eventfd: make
        // it while fds are free, so that `serve`'s listeners need none.
        let first = coil::signal::signal(coil::signal::SignalKind::terminate()).unwrap();
        // A client waits in the backlog, and no fd is left to accept it.
        let (mut queued, filler) = support::connect_then_fill_fd_table(addr, 1);
        let cpu0 = support::cpu_time();
        let server = coil::spawn(graceful::serve(listener, Duration::from_secs(5), || {}));
        // A window of failing accepts: spinning through it costs a large
        // share of it in CPU (on a loaded machine too); pausing, next to none.
        coil::time::sleep(Duration::from_millis(500)).await;
        let cpu = support::cpu_time() - cpu0;
        assert!(
            cpu < Duration::from_millis(100),
            "the accept loop spun: {cpu:?} of CPU in 500 ms"
        );
        drop(filler);
        let answer = coil::blocking::spawn_blocking(move || {
            let mut client = queued.pop().unwrap();
            client.write_all(b"job queued\nfinish\n").unwrap();
            let mut answer = String::new();
            client.read_to_string(&mut answer).map(|_| answer)
        })
        .await
        .unwrap();
        assert_eq!(answer.unwrap(), "started\ndone queued\n");
        // SAFETY: kill(2) with our own pid; no pointers.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        let report = server.await.unwrap().unwrap();
        assert_eq!(report.in_flight, 0, "{report}");
        drop(first);
    });
}
