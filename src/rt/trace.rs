//! The timeline trace (`COIL_TRACE=<file>`, `runtime::Builder::trace`;
//! issue 17 item 3): Chrome trace-event JSON that Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! This module owns [`Tracer`], a loop's event buffer, and the process-wide
//! table of trace files the buffers are written to. One loop is one track:
//! `pid` is the process, `tid` the loop's id. The loop calls it (only when
//! tracing is on: each call site is one branch on `Core::trace`) for:
//!
//! - each task poll: a complete event (`"ph":"X"`) named by the task's name
//!   or `task <id>`, with its start and duration;
//! - each I/O op queued to the driver: a `submit <Op>` slice and a flow
//!   start (`"ph":"s"`); its completion: a `complete <Op>` slice and the
//!   flow's end (`"ph":"f"`, same `id`), so the viewer draws an arrow from
//!   the poll that submitted the op to the moment the loop got its result.
//!   An op that epoll finishes inside the submit never waits and has no
//!   flow;
//! - timers firing: an instant event (`"ph":"i"`) with the number of
//!   wakers;
//! - each park in the driver: a `park` slice with its duration.
//!
//! Events are buffered per loop and appended to the file when the buffer
//! passes [`FLUSH_AT`] bytes and when the loop is dropped. The file is a
//! JSON array kept valid after every write (each append replaces the
//! closing `]`), so it can be opened while the program still runs; several
//! loops of one process (a `Pool`, successive runtimes) share one file.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A loop's buffer is appended to its file once it holds this many bytes.
pub(crate) const FLUSH_AT: usize = 1 << 20;

/// The event buffer of one loop.
#[derive(Debug)]
pub(crate) struct Tracer {
    path: PathBuf,
    pid: u32,
    tid: u64,
    buf: RefCell<String>,
    /// Ops in flight: `user_data` → (flow id, op kind).
    flows: RefCell<HashMap<u64, (u64, &'static str)>>,
    next_flow: Cell<u64>,
}

/// Time zero of every trace of the process (so loops' tracks line up).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since [`epoch`], as the format wants them.
fn micros(t: Instant) -> f64 {
    t.saturating_duration_since(epoch()).as_secs_f64() * 1e6
}

/// `s` as a JSON string body (quotes not included).
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

impl Tracer {
    /// A tracer for loop `tid`, writing to `path`.
    pub(crate) fn new(path: PathBuf, tid: u64) -> Tracer {
        let t = Tracer {
            path,
            pid: std::process::id(),
            tid,
            buf: RefCell::new(String::new()),
            flows: RefCell::new(HashMap::new()),
            next_flow: Cell::new(tid << 32),
        };
        epoch();
        t.event(|pid, tid, out| {
            let _ = write!(
                out,
                r#"{{"ph":"M","name":"thread_name","pid":{pid},"tid":{tid},"args":{{"name":"coil loop {tid}"}}}}"#
            );
        });
        t
    }

    /// Append one event written by `write(pid, tid, buf)`.
    fn event(&self, write: impl FnOnce(u32, u64, &mut String)) {
        let mut buf = self.buf.borrow_mut();
        if !buf.is_empty() {
            buf.push_str(",\n");
        }
        write(self.pid, self.tid, &mut buf);
        if buf.len() >= FLUSH_AT {
            let events = std::mem::take(&mut *buf);
            drop(buf);
            append(&self.path, &events);
        }
    }

    /// A complete event (`"X"`): `name` from `start` for `dur`; `args` is a
    /// JSON object body or empty.
    fn slice(&self, name: &str, cat: &str, start: Instant, dur: Duration, args: &str) {
        self.event(|pid, tid, out| {
            out.push_str(r#"{"ph":"X","name":""#);
            escape(name, out);
            let _ = write!(
                out,
                r#"","cat":"{cat}","pid":{pid},"tid":{tid},"ts":{:.3},"dur":{:.3},"args":{{{args}}}}}"#,
                micros(start),
                dur.as_secs_f64() * 1e6
            );
        });
    }

    /// A task poll: `name` (the task's name, or `task <id>`) ran from
    /// `start` for `dur`.
    pub(crate) fn poll(&self, name: &str, id: u64, start: Instant, dur: Duration) {
        self.slice(name, "poll", start, dur, &format!(r#""task":{id}"#));
    }

    /// Op `ud` of kind `op` was queued to the driver: the flow's start.
    pub(crate) fn submit(&self, ud: u64, op: &'static str) {
        let flow = self.next_flow.get();
        self.next_flow.set(flow + 1);
        self.flows.borrow_mut().insert(ud, (flow, op));
        self.flow_point(op, "submit", 's', flow);
    }

    /// Op `ud`'s completion reached the loop: the flow's end.
    pub(crate) fn complete(&self, ud: u64) {
        let Some((flow, op)) = self.flows.borrow_mut().remove(&ud) else {
            return;
        };
        self.flow_point(op, "complete", 'f', flow);
    }

    /// A zero-length `<what> <op>` slice now, and the flow event `ph`
    /// bound to it.
    fn flow_point(&self, op: &str, what: &str, ph: char, flow: u64) {
        let now = Instant::now();
        self.slice(&format!("{what} {op}"), "op", now, Duration::ZERO, "");
        self.event(|pid, tid, out| {
            let _ = write!(
                out,
                r#"{{"ph":"{ph}","bp":"e","id":{flow},"name":"{op}","cat":"op","pid":{pid},"tid":{tid},"ts":{:.3}}}"#,
                micros(now)
            );
        });
    }

    /// `n` timer wakers fired now.
    pub(crate) fn timers(&self, n: usize) {
        let now = micros(Instant::now());
        self.event(|pid, tid, out| {
            let _ = write!(
                out,
                r#"{{"ph":"i","s":"t","name":"timers fired","cat":"timer","pid":{pid},"tid":{tid},"ts":{now:.3},"args":{{"wakers":{n}}}}}"#
            );
        });
    }

    /// The loop parked in the driver from `start` for `dur`.
    pub(crate) fn park(&self, start: Instant, dur: Duration, timeout: Option<Duration>) {
        let args = match timeout {
            Some(t) => format!(r#""timeout_us":{}"#, t.as_micros()),
            None => String::new(),
        };
        self.slice("park", "park", start, dur, &args);
    }
}

/// A task's name on the timeline: its name, or `task <id>`.
pub(crate) fn task_name(task: crate::task::raw::TaskRef) -> String {
    match task.name() {
        Some(n) => n.to_owned(),
        None => format!("task {}", task.id()),
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let events = std::mem::take(self.buf.get_mut());
        if !events.is_empty() {
            append(&self.path, &events);
        }
    }
}

/// The trace files this process writes: opened (truncated) by the first
/// loop that traces to a path, kept for the others.
///
/// Fork: only a tracing loop takes this lock (to write its buffered events).
/// A child forked while another thread wrote its trace here has it held for
/// good: the child's own tracing loops (`COIL_TRACE` is inherited) would
/// wait for it at their first write. Not handled: tracing is a debugging
/// aid (docs/reliability.md, section 2.5).
static FILES: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// Append `events` (comma-separated) to the JSON array in `path`, keeping
/// the file a complete array. A trace that cannot be written is reported
/// on stderr once per write and dropped: tracing never fails the program.
fn append(path: &Path, events: &str) {
    let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    let res = (|| {
        let i = match files.iter().position(|(p, _)| p == path) {
            Some(i) => i,
            None => {
                files.push((path.to_owned(), File::create(path)?));
                files.len() - 1
            }
        };
        let file = &mut files[i].1;
        let end = file.seek(SeekFrom::End(0))?;
        if end == 0 {
            file.write_all(b"[\n")?;
        } else {
            // Replace the closing "\n]\n".
            file.seek(SeekFrom::End(-3))?;
            file.write_all(b",\n")?;
        }
        file.write_all(events.as_bytes())?;
        file.write_all(b"\n]\n")
    })();
    if let Err(e) = res {
        super::debug::report_on_stderr(format_args!(
            "coil: could not write the trace to {}: {e}",
            path.display()
        ));
    }
}
