//! Debug mode's state and reports (`runtime::Builder::debug`, `COIL_DEBUG=1`;
//! issue 17 item 1).
//!
//! This module owns [`DebugChecks`]: the thresholds, the sink every report
//! goes through, and the side table of spawn locations. The table lives here
//! and not in the task header (which is at its size limit) and is filled only
//! in debug mode: with debug off, a spawn pays one branch on a `None`.
//!
//! An entry is inserted at spawn and removed exactly once: by the handle's
//! drop if it sees the task complete, or by the loop when a task completes
//! with no handle left (`raw::vtable::complete_join`). Until then a report
//! about the task (slow poll, detached failure) can name where it was
//! spawned.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::Mutex;
use std::time::Duration;

use crate::task::raw::TaskRef;

/// What debug mode checks, shared by the loop (`Core`) and every thread that
/// reaches the runtime through its `Shared` (remote spawns, handle drops).
#[derive(Debug)]
pub(crate) struct DebugChecks {
    /// A task poll at least this long is reported.
    pub(crate) slow_poll: Duration,
    /// Where reports go (stderr unless the builder was given another sink).
    pub(crate) sink: fn(&str),
    /// Spawn location of every task whose entry was not yet removed (see
    /// the module docs), keyed by task id. A `std` mutex: touched only in
    /// debug mode, and outside the loom models.
    spawned: Mutex<HashMap<u64, &'static Location<'static>>>,
}

impl DebugChecks {
    /// Checks with `slow_poll` as the threshold, reporting to `sink`.
    pub(crate) fn new(slow_poll: Duration, sink: fn(&str)) -> DebugChecks {
        DebugChecks {
            slow_poll,
            sink,
            spawned: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u64, &'static Location<'static>>> {
        // A panic while holding the lock cannot leave a map half-updated.
        self.spawned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember where task `id` was spawned.
    pub(crate) fn record_spawn(&self, id: u64, at: &'static Location<'static>) {
        self.table().insert(id, at);
    }

    /// Forget task `id` (it completed and its handle is gone or saw it).
    pub(crate) fn forget(&self, id: u64) {
        self.table().remove(&id);
    }

    /// Where task `id` was spawned, if recorded.
    pub(crate) fn spawned_at(&self, id: u64) -> Option<&'static Location<'static>> {
        self.table().get(&id).copied()
    }

    /// `task 7 ("name") spawned at src/main.rs:3:5`, for reports.
    pub(crate) fn who(&self, task: TaskRef) -> String {
        let mut who = task.describe();
        if let Some(at) = self.spawned_at(task.id().as_u64()) {
            who.push_str(&format!(" spawned at {at}"));
        }
        who
    }

    /// Report a line.
    pub(crate) fn report(&self, line: &str) {
        (self.sink)(line);
    }
}
