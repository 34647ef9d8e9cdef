//! Debug mode's state and reports (`runtime::Builder::debug`, `COIL_DEBUG=1`;
//! issue 17 items 1 and 2).
//!
//! This module owns [`DebugChecks`]: the thresholds, the sink every report
//! goes through, and the side table of tasks (spawn location, name, when
//! last polled, what the last poll left the task waiting on). The table
//! lives here and not in the task header (which is at its size limit) and is
//! filled only in debug mode: with debug off, a spawn pays one branch on a
//! `None`.
//!
//! An entry is inserted at spawn and removed exactly once: by the handle's
//! drop if it sees the task complete, or by the loop when a task completes
//! with no handle left (`raw::vtable::complete_join`). Until then a report
//! about the task (slow poll, detached failure) can name where it was
//! spawned.
//!
//! It also owns the **await recorder** behind `Handle::dump` (item 2):
//! while debug mode polls a task, the thread-local [`RECORDER`] points at a
//! [`Recorder`] on the loop's stack; leaf futures ([`awaiting`]) and
//! combinators ([`enter`]) that return `Pending` add a node to it as the
//! poll descends, so the poll builds the task's await tree in pre-order
//! (each node with its depth). When the poll returns, the tree replaces the
//! task's previous one in the table, where `Handle::dump` reads it from any
//! thread. With debug mode off the pointer is null and every hook is one
//! thread-local load and a branch.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dump::{Awaiting, TaskDump, TaskInfo, TaskState};
use crate::task::raw::TaskRef;

/// Writes a report `line` on stderr, ignoring a failure to write it: the
/// loop's own reports (a detached task's panic, a panicking join waker,
/// debug mode's default sink, a runtime's drop) are made inside a task's
/// poll or a drop, where a panic must not unwind, and `eprintln!` panics
/// when stderr cannot be written: a pipe whose reader is gone (`prog 2>&1 |
/// head`; Rust ignores SIGPIPE, so the write fails with EPIPE). The report
/// is lost then, as the panic hook's own message is.
pub(crate) fn report_on_stderr(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(format_args!("{line}\n"));
}

/// Calls a debug sink with `line`, containing its panic ([`DebugChecks::report`]).
pub(crate) fn call_sink(sink: fn(&str), line: &str) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| sink(line))) {
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    }
}

/// What debug mode checks, shared by the loop (`Core`) and every thread that
/// reaches the runtime through its `Shared` (remote spawns, handle drops,
/// `Handle::dump`).
#[derive(Debug)]
pub(crate) struct DebugChecks {
    /// A task poll at least this long is reported.
    pub(crate) slow_poll: Duration,
    /// Where reports go (stderr unless the builder was given another sink).
    pub(crate) sink: fn(&str),
    /// Every task whose entry was not yet removed (see the module docs),
    /// keyed by task id. A `std` mutex: touched only in debug mode, and
    /// outside the loom models.
    tasks: Mutex<HashMap<u64, Entry>>,
}

/// One task's row in the side table.
#[derive(Debug)]
struct Entry {
    /// `None` for the `block_on` future.
    at: Option<&'static Location<'static>>,
    name: Option<Arc<str>>,
    /// Start of the poll in progress, if one is.
    polling_since: Option<Instant>,
    /// Start of the last poll.
    last_poll: Option<Instant>,
    /// The task completed (the entry waits for its handle to go).
    finished: bool,
    /// What the last poll left the task waiting on: pre-order, with depths.
    tree: Vec<(u32, Awaiting)>,
}

impl Entry {
    fn new(at: Option<&'static Location<'static>>, name: Option<Arc<str>>) -> Entry {
        Entry {
            at,
            name,
            polling_since: None,
            last_poll: None,
            finished: false,
            tree: Vec::new(),
        }
    }
}

impl DebugChecks {
    /// Checks with `slow_poll` as the threshold, reporting to `sink`.
    pub(crate) fn new(slow_poll: Duration, sink: fn(&str)) -> DebugChecks {
        DebugChecks {
            slow_poll,
            sink,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // A panic while holding the lock cannot leave a map half-updated.
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember where task `id` was spawned, and its name.
    pub(crate) fn record_spawn(
        &self,
        id: u64,
        at: &'static Location<'static>,
        name: Option<Arc<str>>,
    ) {
        self.table().insert(id, Entry::new(Some(at), name));
    }

    /// Forget task `id` (it completed and its handle is gone or saw it).
    pub(crate) fn forget(&self, id: u64) {
        self.table().remove(&id);
    }

    /// Where task `id` was spawned, if recorded.
    pub(crate) fn spawned_at(&self, id: u64) -> Option<&'static Location<'static>> {
        self.table().get(&id).and_then(|e| e.at)
    }

    /// `task 7 ("name") spawned at src/main.rs:3:5`, for reports.
    pub(crate) fn who(&self, task: TaskRef) -> String {
        let mut who = task.describe();
        if let Some(at) = self.spawned_at(task.id().as_u64()) {
            who.push_str(&format!(" spawned at {at}"));
        }
        who
    }

    /// Report a line through the sink. The sink is user code
    /// (`Builder::debug_sink`) called on the loop thread, often inside a
    /// task's poll, where a panic must not unwind (the poll's bookkeeping
    /// would be skipped): its panic is caught (the panic hook has printed
    /// it) and the report dropped; so is a panic of the payload's drop.
    pub(crate) fn report(&self, line: &str) {
        call_sink(self.sink, line);
    }

    /// A poll of `task` starts at `start`: mark it running, and return the
    /// report's name for it (`who`), taken now because a task that
    /// completes may be freed by its poll.
    pub(crate) fn begin_poll(&self, task: TaskRef, start: Instant) -> String {
        let mut who = task.describe();
        if let Some(e) = self.table().get_mut(&task.id().as_u64()) {
            e.polling_since = Some(start);
            e.last_poll = Some(start);
            if let Some(at) = e.at {
                who.push_str(&format!(" spawned at {at}"));
            }
        }
        who
    }

    /// A poll of the `block_on` future, recorded like a task's under id 0
    /// ([`MAIN`]: no task has it) until the future is ready (`poll` says
    /// whether it is).
    pub(crate) fn poll_main(&self, rec: &Recorder, poll: impl FnOnce() -> bool) -> bool {
        let start = Instant::now();
        let mut table = self.table();
        let main = table
            .entry(MAIN)
            .or_insert_with(|| Entry::new(None, Some("block_on".into())));
        main.polling_since = Some(start);
        main.last_poll = Some(start);
        main.finished = false;
        drop(table);
        let ready = rec.during(poll);
        self.end_poll(MAIN, &mut rec.nodes(), ready);
        ready
    }

    /// The poll of task `id` returned: keep what it waits on (`tree`, the
    /// recorder's nodes, swapped out), or mark it finished.
    pub(crate) fn end_poll(&self, id: u64, tree: &mut Vec<(u32, Awaiting)>, done: bool) {
        if let Some(e) = self.table().get_mut(&id) {
            e.polling_since = None;
            e.finished = done;
            std::mem::swap(&mut e.tree, tree);
        }
        tree.clear();
    }

    /// Every unfinished task of the table (`Handle::dump`), oldest first.
    pub(crate) fn dump(&self, loop_id: u64) -> TaskDump {
        let now = Instant::now();
        let table = self.table();
        let mut tasks: Vec<TaskInfo> = table
            .iter()
            .filter(|(_, e)| !e.finished)
            .map(|(&id, e)| TaskInfo {
                id,
                name: e.name.as_deref().map(str::to_owned),
                state: match (e.polling_since, e.last_poll) {
                    (Some(_), _) => TaskState::Running,
                    (None, Some(_)) => TaskState::Waiting,
                    (None, None) => TaskState::NotStarted,
                },
                spawned_at: e.at,
                since_last_poll: e.last_poll.map(|t| now.saturating_duration_since(t)),
                awaiting: super::dump::nest(&e.tree),
            })
            .collect();
        drop(table);
        tasks.sort_by_key(|t| t.id);
        TaskDump::new(loop_id, now, true, tasks)
    }
}

/// The dump's id for the `block_on` future (task ids start at 1).
pub(crate) const MAIN: u64 = 0;

/// Most nodes one poll records (a runaway loop of combinators stays
/// bounded; the rest is dropped).
const MAX_NODES: usize = 256;

/// The await tree one poll builds (module docs).
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    nodes: RefCell<Vec<(u32, Awaiting)>>,
    depth: Cell<u32>,
}

thread_local! {
    /// The recorder of the task poll in progress on this thread, or null
    /// (debug mode off, or no task being polled).
    static RECORDER: Cell<*const Recorder> = const { Cell::new(std::ptr::null()) };
}

impl Recorder {
    /// Record into `self` for the duration of `poll` (one task poll); the
    /// nodes are left in `self` for [`DebugChecks::end_poll`].
    pub(crate) fn during<R>(&self, poll: impl FnOnce() -> R) -> R {
        struct Restore(*const Recorder);
        impl Drop for Restore {
            fn drop(&mut self) {
                RECORDER.with(|r| r.set(self.0));
            }
        }
        self.depth.set(0);
        let _restore = Restore(RECORDER.with(|r| r.replace(self)));
        poll()
    }

    /// The nodes recorded, to swap into the table.
    pub(crate) fn nodes(&self) -> std::cell::RefMut<'_, Vec<(u32, Awaiting)>> {
        self.nodes.borrow_mut()
    }

    fn push(&self, what: Awaiting) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        let at = nodes.len();
        if at < MAX_NODES {
            nodes.push((self.depth.get(), what));
        }
        at
    }
}

/// Whether a task poll on this thread records its await tree (debug mode).
#[inline(always)]
pub(crate) fn recording() -> bool {
    !RECORDER.with(Cell::get).is_null()
}

/// A leaf future is about to return `Pending`, waiting on `what` (built
/// only in debug mode): add it to the await tree of the poll in progress.
#[inline(always)]
pub(crate) fn awaiting(what: impl FnOnce() -> Awaiting) {
    let r = RECORDER.with(Cell::get);
    if !r.is_null() {
        record_leaf(r, what);
    }
}

/// [`enter`] around a combinator's poll: `poll` runs inside a node
/// `what`, which stays in the tree only if the result is `Pending`.
#[inline(always)]
pub(crate) fn within<T>(
    what: impl FnOnce() -> Awaiting,
    poll: impl FnOnce() -> std::task::Poll<T>,
) -> std::task::Poll<T> {
    let frame = enter(what);
    let res = poll();
    frame.done(&res);
    res
}

/// [`awaiting`] for a leaf's poll result: `res` is returned as is, and
/// recorded (with `what`) if it is `Pending`.
#[inline(always)]
pub(crate) fn note<T>(
    res: std::task::Poll<T>,
    what: impl FnOnce() -> Awaiting,
) -> std::task::Poll<T> {
    if res.is_pending() {
        awaiting(what);
    }
    res
}

#[cold]
#[inline(never)]
fn record_leaf(r: *const Recorder, what: impl FnOnce() -> Awaiting) {
    // SAFETY: RECORDER is non-null only inside `Recorder::during`, whose
    // recorder outlives the call and is used on this thread only.
    unsafe { &*r }.push(what());
}

/// A combinator's node in the await tree: what it records while it lives
/// is its children. [`AwaitFrame::done`] with a ready result takes the node
/// and its children out again (the combinator no longer waits).
#[derive(Debug)]
#[must_use = "the frame's children are what is recorded while it lives"]
pub(crate) struct AwaitFrame {
    rec: *const Recorder,
    start: usize,
    depth: u32,
}

/// A combinator starts its poll, waiting on `what` (built only in debug
/// mode): its node, parent of what its children record.
#[inline(always)]
pub(crate) fn enter(what: impl FnOnce() -> Awaiting) -> AwaitFrame {
    let rec = RECORDER.with(Cell::get);
    if rec.is_null() {
        return AwaitFrame {
            rec,
            start: 0,
            depth: 0,
        };
    }
    enter_slow(rec, what)
}

#[cold]
#[inline(never)]
fn enter_slow(rec: *const Recorder, what: impl FnOnce() -> Awaiting) -> AwaitFrame {
    // SAFETY: as in `record_leaf`.
    let r = unsafe { &*rec };
    let depth = r.depth.get();
    let start = r.push(what());
    r.depth.set(depth + 1);
    AwaitFrame { rec, start, depth }
}

impl AwaitFrame {
    /// The combinator's poll returns `res`: if it is ready, nothing of it
    /// stays in the tree.
    #[inline(always)]
    pub(crate) fn done<T>(self, res: &std::task::Poll<T>) {
        if !self.rec.is_null() && res.is_ready() {
            // SAFETY: as in `record_leaf` (the frame lives inside the poll).
            unsafe { &*self.rec }
                .nodes
                .borrow_mut()
                .truncate(self.start);
        }
    }
}

impl Drop for AwaitFrame {
    #[inline(always)]
    fn drop(&mut self) {
        if !self.rec.is_null() {
            // SAFETY: as in `record_leaf`. Restoring (not decrementing) the
            // depth keeps it right when a child unwound past its own frame.
            unsafe { &*self.rec }.depth.set(self.depth);
        }
    }
}
