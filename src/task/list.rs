//! The owned list: every live task of a runtime, so that shutdown can cancel them.
//!
//! An intrusive doubly linked list threaded through `Header::links`. It is
//! touched only on the loop thread (rule 1 in `task/mod.rs`); a task is in it
//! from spawn (or from being bound, for `Handle::spawn`) until it completes or
//! is shut down, and the list holds one reference for it during that time.
//! Removal is O(1); nothing here recurses, so a million tasks drop in a loop.

use std::cell::Cell;

use super::raw::TaskRef;

/// Links inside each task header.
#[derive(Debug)]
pub(crate) struct Links {
    prev: Cell<Option<TaskRef>>,
    next: Cell<Option<TaskRef>>,
}

impl Links {
    pub(crate) const fn new() -> Links {
        Links {
            prev: Cell::new(None),
            next: Cell::new(None),
        }
    }
}

/// The list head. Not `Send`: it lives in the loop's core.
#[derive(Debug, Default)]
pub(crate) struct OwnedList {
    head: Cell<Option<TaskRef>>,
    len: Cell<usize>,
}

impl OwnedList {
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    /// Insert a task that is in no list. The caller hands over the list's
    /// reference.
    ///
    /// # Safety
    /// `task` is in no list and belongs to the loop whose thread this is and
    /// which owns this list (rule 1: the links are that thread's); the caller
    /// owns one reference to it and hands it to the list (whoever unlinks the
    /// task gets it back).
    pub(crate) unsafe fn push(&self, task: TaskRef) {
        let links = &task.header().links;
        debug_assert!(links.prev.get().is_none() && links.next.get().is_none());
        let old = self.head.get();
        links.next.set(old);
        if let Some(old) = old {
            old.header().links.prev.set(Some(task));
        }
        self.head.set(Some(task));
        self.len.set(self.len.get() + 1);
    }

    /// Unlink a task that is in this list. The list's reference is returned
    /// to the caller (who usually releases it).
    ///
    /// # Safety
    /// `task` is in this list (so, by `push`'s contract, on this thread).
    pub(crate) unsafe fn remove(&self, task: TaskRef) {
        let links = &task.header().links;
        let prev = links.prev.take();
        let next = links.next.take();
        match prev {
            Some(p) => p.header().links.next.set(next),
            None => {
                debug_assert_eq!(self.head.get(), Some(task), "task is not in this list");
                self.head.set(next);
            }
        }
        if let Some(n) = next {
            n.header().links.prev.set(prev);
        }
        self.len.set(self.len.get() - 1);
    }

    /// Calls `f` with every task in the list, newest first. `f` must not
    /// change the list.
    pub(crate) fn for_each(&self, mut f: impl FnMut(TaskRef)) {
        let mut next = self.head.get();
        while let Some(t) = next {
            next = t.header().links.next.get();
            f(t);
        }
    }

    /// Unlink and return the first task, with the list's reference.
    pub(crate) fn pop(&self) -> Option<TaskRef> {
        let t = self.head.get()?;
        // SAFETY: the head is in this list (`push`'s contract put it there).
        unsafe { self.remove(t) };
        Some(t)
    }
}
