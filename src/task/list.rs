//! The owned list: every live task of a runtime, so that shutdown can cancel
//! them and `task::all_tasks` can list them.
//!
//! A task is in it from spawn (or from being bound, for `Handle::spawn`)
//! until it completes or is shut down, and the list holds one reference for
//! it during that time. It is touched only on the loop thread (rule 1 in
//! `task/mod.rs`). It has two halves, by where the task's cell lives
//! (`raw.rs`, "Layout"):
//!
//! - **Slab cells** are recorded by their chunk: a bit per cell in the
//!   chunk's head, and a registry of the chunks with a bit set
//!   (`raw/slab.rs`, "Bound cells"). The task header holds nothing for it.
//! - **Boxed cells** (large or over-aligned futures, spawns from other
//!   threads, and every cell under Miri, loom, fuzzing and `coil_box_tasks`)
//!   form an intrusive doubly linked list whose links live in the cell's
//!   boxed prefix, before the header ([`Links`], `raw.rs`'s
//!   `boxed_layout`), newest first.
//!
//! Which half a task is in follows from its vtable (`TaskRef::slab_cell`),
//! fixed at allocation. Push and remove are O(1) in both halves and
//! allocate nothing (the registry's `Vec` aside, which grows to the most
//! chunks ever bound at once and then stays); [`OwnedList::pop`] is O(1)
//! and [`OwnedList::for_each`] O(tasks + chunks). Nothing here recurses, so
//! a million tasks drop in a loop. A task is never in both halves and
//! `len` counts both.

use std::cell::Cell;

use super::raw::{SlabRegistry, TaskRef};

/// The links of a boxed cell, in its prefix (`raw.rs`, `boxed_layout`):
/// set while the task is in its runtime's owned list, loop thread only.
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
    /// The newest boxed task in the list.
    head: Cell<Option<TaskRef>>,
    /// The chunks holding the slab tasks in the list.
    slab: SlabRegistry,
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
    /// which owns this list (rule 1: the links and the chunk's bits are that
    /// thread's); the caller owns one reference to it and hands it to the
    /// list (whoever unlinks the task gets it back).
    #[inline(always)]
    pub(crate) unsafe fn push(&self, task: TaskRef) {
        // SAFETY: the caller's promise; `slab` is the cell's kind.
        unsafe { self.push_placed(task, task.slab_cell().is_some()) }
    }

    /// [`OwnedList::push`] for a task whose kind of cell the caller knows
    /// at compile time (a spawn: `raw::in_slab`), which saves the test.
    ///
    /// # Safety
    /// As for `push`, and `slab` says whether the task's cell is a slab
    /// cell ([`TaskRef::slab_cell`] is `Some`).
    #[inline(always)]
    pub(crate) unsafe fn push_placed(&self, task: TaskRef, slab: bool) {
        debug_assert_eq!(
            slab,
            task.slab_cell().is_some(),
            "a task's cell is misplaced"
        );
        self.len.set(self.len.get() + 1);
        if slab {
            // The registry's runtime is the chunk's owner: only a spawn on
            // the loop's thread takes a slab cell, and binds it there.
            // SAFETY: the caller's promise: a live slab cell, in no list, of
            // this loop, whose reference the list holds until it unbinds it.
            unsafe { self.slab.bind(task.cell()) };
            return;
        }
        // SAFETY: not a slab cell (above); `old` is in the boxed half, which
        // holds boxed cells only, alive (the list's reference).
        let (links, old) = unsafe { (task.boxed_links(), self.head.get()) };
        debug_assert!(links.prev.get().is_none() && links.next.get().is_none());
        links.next.set(old);
        if let Some(old) = old {
            // SAFETY: as just said.
            unsafe { old.boxed_links() }.prev.set(Some(task));
        }
        self.head.set(Some(task));
    }

    /// Unlink a task that is in this list. The list's reference is returned
    /// to the caller (who usually releases it).
    ///
    /// # Safety
    /// `task` is in this list (so, by `push`'s contract, on this thread).
    #[inline(always)]
    pub(crate) unsafe fn remove(&self, task: TaskRef) {
        self.len.set(self.len.get() - 1);
        if let Some(cell) = task.slab_cell() {
            // SAFETY: the caller's promise: bound here by `push`.
            unsafe { self.slab.unbind(cell) };
            return;
        }
        // SAFETY: not a slab cell (above); its neighbours are in the boxed
        // half too, boxed and alive (the list's references).
        let links = unsafe { task.boxed_links() };
        let prev = links.prev.take();
        let next = links.next.take();
        match prev {
            // SAFETY: as just said.
            Some(p) => unsafe { p.boxed_links() }.next.set(next),
            None => {
                debug_assert_eq!(self.head.get(), Some(task), "task is not in this list");
                self.head.set(next);
            }
        }
        if let Some(n) = next {
            // SAFETY: as just said.
            unsafe { n.boxed_links() }.prev.set(prev);
        }
    }

    /// Calls `f` with every task in the list: the boxed ones newest first,
    /// then the slab ones chunk by chunk. `f` must not change the list.
    pub(crate) fn for_each(&self, mut f: impl FnMut(TaskRef)) {
        let mut next = self.head.get();
        while let Some(t) = next {
            // SAFETY: in the boxed half: boxed, alive (the list's reference).
            next = unsafe { t.boxed_links() }.next.get();
            f(t);
        }
        self.slab.for_each(|cell| {
            // SAFETY: a cell bound here is a live slab task's, kept alive by
            // the list's reference while `f` runs (`f` changes no list).
            f(unsafe { TaskRef::from_slab_cell(cell) })
        });
    }

    /// Unlink and return a task, with the list's reference: the newest
    /// boxed one, else a slab one. O(1), so a loop of pops that other
    /// pushes interleave with (shutdown) ends once the list is empty.
    pub(crate) fn pop(&self) -> Option<TaskRef> {
        if let Some(t) = self.head.get() {
            // SAFETY: the head is in this list (`push`'s contract put it there).
            unsafe { self.remove(t) };
            return Some(t);
        }
        let cell = self.slab.pop()?;
        self.len.set(self.len.get() - 1);
        // SAFETY: the cell was bound here, so it is a live slab task's; the
        // list's reference, which `pop` hands back, keeps it alive.
        Some(unsafe { TaskRef::from_slab_cell(cell) })
    }
}
