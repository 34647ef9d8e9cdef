//! [`TaskDump`]: what [`Handle::dump`](crate::Handle::dump) returns, every
//! task of a loop with what it waits on, as a tree (asyncio's `ps` and
//! `pstree`; issue 17 item 2).
//!
//! This module owns the public types of the dump and their `Display`. The
//! data comes from debug mode's side table (`rt/debug.rs`), which the loop
//! updates at each task poll; how the tree is recorded is described there.

use std::fmt;
use std::os::fd::RawFd;
use std::panic::Location;
use std::time::{Duration, Instant};

/// What a task (or a combinator inside it) is waiting on: one node of a
/// [`TaskInfo`]'s await tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Awaiting {
    /// A `sleep` (or an interval's tick) until `deadline`.
    Sleep {
        /// When it fires.
        deadline: Instant,
    },
    /// An I/O operation in flight.
    Io {
        /// The operation's kind (`Recv`, `Accept`, `Read`, ...).
        op: &'static str,
        /// The fd it works on, when it is a loop's socket or pipe (files and
        /// path operations have none here).
        fd: Option<RawFd>,
    },
    /// A queue, lock, event, semaphore, condition or channel:
    /// `"queue get"`, `"lock"`, `"event wait"`, ...
    Sync(&'static str),
    /// Another task's result (awaiting its [`Task`](crate::Task) handle).
    Task {
        /// The awaited task's id.
        id: u64,
    },
    /// A combinator; its children are what it waits on:
    /// `"gather"`, `"select"`, `"wait"`, `"task_group"`, ...
    Combinator(&'static str),
    /// A `timeout` until `deadline`; its child is the future it bounds.
    Timeout {
        /// When it expires.
        deadline: Instant,
    },
}

/// One node of an await tree: what is awaited, and what that waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitNode {
    /// What this node waits on.
    pub what: Awaiting,
    /// The nodes it waits on in turn (a combinator's children).
    pub children: Vec<AwaitNode>,
}

/// Where a task is in its life, as of the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Spawned, never polled yet.
    NotStarted,
    /// Being polled right now (on a loop that holds it long, the task that
    /// blocks it).
    Running,
    /// Its last poll returned `Pending`: waiting on its await tree (or
    /// already woken and queued).
    Waiting,
}

/// One task of a [`TaskDump`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's id ([`TaskId`](crate::task::TaskId) as a number); 0 for
    /// the future given to `block_on` (`coil::run`'s), listed like a task.
    pub id: u64,
    /// Its name (`task::Builder::name`).
    pub name: Option<String>,
    /// Not started, running, or waiting.
    pub state: TaskState,
    /// Where it was spawned.
    pub spawned_at: Option<&'static Location<'static>>,
    /// Time since its last poll started, if it was polled.
    pub since_last_poll: Option<Duration>,
    /// What its last poll left it waiting on (empty: nothing coil knows,
    /// such as a hand-written future or `yield_now`).
    pub awaiting: Vec<AwaitNode>,
}

/// Every unfinished task of one loop, from
/// [`Handle::dump`](crate::Handle::dump). Its `Display` is a tree in the
/// manner of `python -m asyncio pstree`: a task awaited through its handle
/// by another task is printed under that task.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskDump {
    /// The loop's id.
    pub loop_id: u64,
    /// When the dump was taken (deadlines print relative to it).
    pub taken: Instant,
    /// Whether debug mode was on; off, `tasks` is empty.
    pub debug: bool,
    /// The tasks, by id.
    pub tasks: Vec<TaskInfo>,
}

impl TaskDump {
    pub(crate) fn new(loop_id: u64, taken: Instant, debug: bool, tasks: Vec<TaskInfo>) -> Self {
        TaskDump {
            loop_id,
            taken,
            debug,
            tasks,
        }
    }

    /// The task with id `id`, if it is in the dump.
    pub fn task(&self, id: u64) -> Option<&TaskInfo> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// The first task named `name`.
    pub fn named(&self, name: &str) -> Option<&TaskInfo> {
        self.tasks.iter().find(|t| t.name.as_deref() == Some(name))
    }
}

/// Pre-order nodes with depths (as recorded) to a forest.
pub(crate) fn nest(flat: &[(u32, Awaiting)]) -> Vec<AwaitNode> {
    fn take(flat: &[(u32, Awaiting)], i: &mut usize, depth: u32) -> Vec<AwaitNode> {
        let mut out = Vec::new();
        while let Some((d, what)) = flat.get(*i) {
            if *d < depth {
                break;
            }
            *i += 1;
            let children = take(flat, i, d + 1);
            out.push(AwaitNode {
                what: what.clone(),
                children,
            });
        }
        out
    }
    take(flat, &mut 0, 0)
}

impl fmt::Display for Awaiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Awaiting::Sleep { .. } => f.write_str("sleep"),
            Awaiting::Io { op, fd: Some(fd) } => write!(f, "{op} on fd {fd}"),
            Awaiting::Io { op, fd: None } => write!(f, "{op}"),
            Awaiting::Sync(what) | Awaiting::Combinator(what) => f.write_str(what),
            Awaiting::Task { id } => write!(f, "task {id}"),
            Awaiting::Timeout { .. } => f.write_str("timeout"),
        }
    }
}

/// `1.5 s`, `12.0 ms`, `340 µs`.
fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.1} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

struct Printer<'a> {
    dump: &'a TaskDump,
    /// Tasks already printed (each once, under its first awaiter).
    printed: std::cell::RefCell<Vec<u64>>,
}

impl Printer<'_> {
    fn task(&self, f: &mut fmt::Formatter<'_>, t: &TaskInfo, prefix: &str) -> fmt::Result {
        self.printed.borrow_mut().push(t.id);
        match &t.name {
            _ if t.id == 0 => f.write_str("block_on future")?,
            Some(n) => write!(f, "task {} {n:?}", t.id)?,
            None => write!(f, "task {}", t.id)?,
        }
        let state = match t.state {
            TaskState::NotStarted => "not started",
            TaskState::Running => "running",
            TaskState::Waiting => "waiting",
        };
        write!(f, " [{state}")?;
        if let Some(d) = t.since_last_poll {
            write!(f, ", polled {} ago", human(d))?;
        }
        if let Some(at) = t.spawned_at {
            write!(f, ", spawned at {at}")?;
        }
        writeln!(f, "]")?;
        self.nodes(f, &t.awaiting, prefix)
    }

    fn nodes(&self, f: &mut fmt::Formatter<'_>, nodes: &[AwaitNode], prefix: &str) -> fmt::Result {
        for (i, n) in nodes.iter().enumerate() {
            let last = i + 1 == nodes.len();
            let (branch, more) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            write!(f, "{prefix}{branch}")?;
            let inner = format!("{prefix}{more}");
            match &n.what {
                Awaiting::Task { id } => match self.dump.task(*id) {
                    Some(t) if !self.printed.borrow().contains(id) => {
                        f.write_str("awaits ")?;
                        self.task(f, t, &inner)?;
                    }
                    _ => writeln!(f, "awaits task {id}")?,
                },
                Awaiting::Sleep { deadline } | Awaiting::Timeout { deadline } => {
                    let left = deadline.saturating_duration_since(self.dump.taken);
                    writeln!(f, "{} (due in {})", n.what, human(left))?;
                }
                what => writeln!(f, "{what}")?,
            }
            self.nodes(f, &n.children, &inner)?;
        }
        Ok(())
    }
}

/// Ids of the tasks some node of `nodes` awaits through a handle.
fn awaited(nodes: &[AwaitNode], out: &mut Vec<u64>) {
    for n in nodes {
        if let Awaiting::Task { id } = n.what {
            out.push(id);
        }
        awaited(&n.children, out);
    }
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loop {}: ", self.loop_id)?;
        if !self.debug {
            return writeln!(
                f,
                "no task table (debug mode is off: COIL_DEBUG=1 or runtime::Builder::debug)"
            );
        }
        writeln!(f, "{} tasks", self.tasks.len())?;
        let mut inner = Vec::new();
        for t in &self.tasks {
            awaited(&t.awaiting, &mut inner);
        }
        let p = Printer {
            dump: self,
            printed: Default::default(),
        };
        // Roots first: tasks no other task awaits; then whatever is left
        // (tasks awaiting each other in a cycle).
        for t in &self.tasks {
            if !inner.contains(&t.id) {
                p.task(f, t, "")?;
            }
        }
        for t in &self.tasks {
            if !p.printed.borrow().contains(&t.id) {
                p.task(f, t, "")?;
            }
        }
        Ok(())
    }
}
