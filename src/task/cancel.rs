//! The part of a task's cancel state that does not fit in the state word:
//! the message given to `Task::cancel_with`, and for a task spawned with
//! `Builder::cooperative_cancel` its cancel *requests* (decision 0010): how
//! many are outstanding (asyncio's `cancelling()`) and whether one waits to
//! be delivered (asyncio's `_must_cancel`).
//!
//! The same allocation holds the task's name (`Builder::name`), so that a
//! task spawned without one carries neither in its header.
//!
//! Most tasks are never cancelled and have no name, so the header holds
//! nothing for it (issue 18, W7): a task's `CancelState` is an entry of its
//! runtime's [`CancelTable`] (in `Shared`), keyed by the address of the
//! task's cell, and the state word's [`CANCEL_STATE`] bit says whether the
//! entry exists. The invariants:
//!
//! - *Who inserts.* An entry is inserted at spawn for a named task (before
//!   the task is published), else the first time a message is set or the
//!   task is made cooperative, by whichever thread does it: under the
//!   table's lock, the entry is looked up, inserted if missing, and the bit
//!   set (`State::mark_cancel_state`) before the lock is released. So at
//!   most one entry per task, and a reader that sees the bit (`Acquire`)
//!   and takes the lock finds it.
//! - *Who removes.* Only the task's deallocation (`vtable::dealloc`, the
//!   last reference gone: no `TaskRef` of the task is used any more), if
//!   the bit is set, before the cell's memory is given back (its address,
//!   the key, may be reused by a new task right after). So a `&CancelState`
//!   borrowed through a live `TaskRef` stays valid: the entry is a `Box`
//!   of its own (the table holds its pointer, which a rehash moves, not the
//!   `CancelState`), freed only then.
//! - *The hot path takes no lock.* Poll, completion and a plain `cancel`
//!   look at the bit only, and whether a task answers requests (a
//!   `time::timeout`'s first poll, `cancel`, `cancelling`) is the state
//!   word's `COOPERATIVE` bit, so a named task that does not answer them
//!   takes no lock there either. The lock is taken to read a name or a
//!   message, by a cooperative task's requests, and at the deallocation of
//!   a task that has an entry.
//!
//! The name is written before the task is published and never changes. A
//! message is written before `CANCELLED` is set in the state
//! word, and read by the loop after it saw that bit with an acquire RMW, so
//! the loop always sees the message of the request it acts on. A request is
//! published the same way: its pending bit is set before the task is woken,
//! and the poll that the wake leads to starts with an acquire RMW of the
//! state word (`transition_to_running`). A task that woke itself is polled
//! again without that RMW (running while queued: `state.rs`), and may see a
//! request from another thread only a poll or more later; it is not lost: the
//! remote wake set `SCHEDULED`, and the poll that goes idle reschedules on it
//! with an acquire RMW.

use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(doc)]
use super::state::CANCEL_STATE;
use super::state::State;

/// What a cancel request carries besides the `CANCELLED` bit, and the
/// task's name.
#[derive(Debug, Default)]
pub(crate) struct CancelState {
    /// The name given with `Builder::name`; set before the task is published.
    name: Option<Arc<str>>,
    /// The message given to `cancel_with`: the first one for a hard cancel,
    /// the latest for requests (as asyncio's `cancel(msg)`).
    message: Mutex<Option<Arc<str>>>,
    /// Requests minus `uncancel` calls (asyncio's `cancelling()`), shifted
    /// left by one, and in bit 0 whether a request waits to be delivered.
    /// One word, changed only by read-modify-writes, so a request racing
    /// an `uncancel` that reaches zero is either withdrawn with it or counted
    /// after it, never counted and lost.
    requests: AtomicUsize,
}

/// Bit 0 of `CancelState::requests`: a request not yet delivered.
const PENDING: usize = 1;
/// One request in `CancelState::requests`.
const ONE: usize = 2;

impl CancelState {
    /// The name given with `Builder::name`.
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    fn message_slot(&self) -> MutexGuard<'_, Option<Arc<str>>> {
        // The guarded value is a plain `Option`: a panic cannot break it.
        self.message.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The message, if one was set.
    pub(crate) fn message(&self) -> Option<Arc<str>> {
        self.message_slot().clone()
    }

    /// Sets the message unless one was set before (the first one wins).
    pub(crate) fn offer_message(&self, message: Arc<str>) {
        self.message_slot().get_or_insert(message);
    }

    /// Records one request (with its message, which replaces an older one);
    /// the caller wakes the task afterwards.
    pub(crate) fn request(&self, message: Option<Arc<str>>) {
        if let Some(m) = message {
            *self.message_slot() = Some(m);
        }
        // One read-modify-write (count and pending together); Release: the
        // message above is visible to whoever takes the request.
        let _ = self
            .requests
            .fetch_update(Release, Relaxed, |n| Some((n + ONE) | PENDING));
    }

    /// Takes the undelivered request, if there is one.
    pub(crate) fn take_pending(&self) -> bool {
        self.requests.load(Acquire) & PENDING != 0
            && self.requests.fetch_and(!PENDING, AcqRel) & PENDING != 0
    }

    /// Outstanding requests and whether one waits to be delivered.
    pub(crate) fn request_state(&self) -> (usize, bool) {
        let n = self.requests.load(Acquire);
        (n / ONE, n & PENDING != 0)
    }

    /// Marks a request undelivered again, if any is counted.
    pub(crate) fn repend(&self) {
        let _ = self
            .requests
            .fetch_update(Release, Relaxed, |n| (n >= ONE).then_some(n | PENDING));
    }

    /// Outstanding requests (asyncio's `cancelling()`).
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Acquire) / ONE
    }

    /// One request fewer (never below zero); at zero an undelivered request
    /// is withdrawn too (asyncio 3.13), in the same read-modify-write.
    /// Returns the requests left.
    pub(crate) fn uncancel(&self) -> usize {
        match self.requests.fetch_update(AcqRel, Acquire, |n| {
            let left = (n / ONE).checked_sub(1)?;
            Some(if left == 0 {
                0
            } else {
                (left * ONE) | (n & PENDING)
            })
        }) {
            Ok(prev) => prev / ONE - 1,
            Err(_) => 0,
        }
    }
}

/// A runtime's [`CancelState`]s, by the address of their task's cell (the
/// module docs say who inserts and removes, and when the lock is taken).
///
/// Its lock comes from the concurrency facade (`crate::loom`), as the rest
/// of `Shared`'s cross-thread half: under `cfg(loom)` an inserter holds it
/// across a loom operation (the bit's RMW, `State::mark_cancel_state`), and
/// a std mutex there would block loom's one OS thread when another modelled
/// thread takes it (model `loom_model` below hung so).
#[derive(Default)]
pub(crate) struct CancelTable(crate::loom::Mutex<HashMap<usize, Entry, CellHash>>);

/// The table's hasher: its keys are cell addresses, which the allocator
/// picks and no input controls, so a multiply-and-fold (Fibonacci
/// hashing) spreads them over the buckets and the control bytes at a
/// fraction of SipHash's cost; a named task pays it at its spawn, at every
/// read of its name and at its deallocation.
#[derive(Default, Clone, Copy)]
struct CellHash;

impl std::hash::BuildHasher for CellHash {
    type Hasher = CellHasher;
    fn build_hasher(&self) -> CellHasher {
        CellHasher(0)
    }
}

/// [`CellHash`]'s hasher, for `usize` keys (anything else still hashes,
/// byte by byte).
struct CellHasher(u64);

impl std::hash::Hasher for CellHasher {
    fn finish(&self) -> u64 {
        // The product's high half mixed into the low one: hashbrown takes
        // the bucket from the low bits and the control byte from the top 7.
        let wide = u128::from(self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (wide as u64) ^ ((wide >> 64) as u64)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }
}

/// A `Box<CancelState>` of the table, kept as a pointer: references to the
/// `CancelState` outlive the lock (module docs), and moving a `Box` (a
/// rehash) would assert it unique.
struct Entry(NonNull<CancelState>);

// SAFETY: an `Entry` owns a `Box<CancelState>` (freed once, by `remove`),
// and `CancelState` is `Send` and `Sync` (atomics, a mutex and a name read
// only).
unsafe impl Send for Entry {}

impl std::fmt::Debug for CancelTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelTable")
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl CancelTable {
    fn lock(&self) -> crate::loom::MutexGuard<'_, HashMap<usize, Entry, CellHash>> {
        // Inserts and removes are single calls: a panic cannot break it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry of the task whose cell is at `key`, if it has one. The
    /// caller looked at the task's [`CANCEL_STATE`] bit first (set: the
    /// entry is there), so that a task with none takes no lock.
    ///
    /// # Safety
    /// The task is alive for `'a` (a `TaskRef` of it is in use), and `key`
    /// is its cell's address.
    #[cold]
    pub(crate) unsafe fn get<'a>(&self, key: usize) -> Option<&'a CancelState> {
        let p = self.lock().get(&key).map(|e| e.0);
        debug_assert!(p.is_some(), "a task's CANCEL_STATE bit without its entry");
        // SAFETY: the entry's box lives until the task's deallocation
        // (module docs), after `'a` (the caller's promise).
        p.map(|p| unsafe { p.as_ref() })
    }

    /// The entry of the task, inserted now (with `name`, and the state
    /// word's bit set) if it has none. Any thread.
    ///
    /// # Safety
    /// As for [`CancelTable::get`].
    #[cold]
    pub(crate) unsafe fn get_or_insert<'a>(
        &self,
        key: usize,
        state: &State,
        name: Option<Arc<str>>,
    ) -> &'a CancelState {
        let mut table = self.lock();
        let entry = table.entry(key).or_insert_with(|| {
            state.mark_cancel_state();
            let fresh = Box::new(CancelState {
                name,
                ..CancelState::default()
            });
            Entry(NonNull::from(Box::leak(fresh)))
        });
        // SAFETY: as in `get`: alive until the task's deallocation.
        unsafe { entry.0.as_ref() }
    }

    /// The task's deallocation, its [`CANCEL_STATE`] bit set: frees its
    /// entry.
    ///
    /// # Safety
    /// The task's last reference is gone (no reference to its entry is
    /// left), its memory not yet given back; `key` as for
    /// [`CancelTable::get`].
    #[cold]
    pub(crate) unsafe fn remove(&self, key: usize) {
        let entry = {
            let mut table = self.lock();
            let entry = table.remove(&key);
            // Give back the room of a burst of entries (a `HashMap` never
            // shrinks by itself): at a quarter full, down to twice the
            // entries left. A shrink (O(entries), under the lock) leaves
            // room for at least twice the entries, so the next one follows
            // at least half as many removals and the next growth as many
            // inserts as it moved: O(1) amortised, no thrashing.
            // The entries stay put (a shrink moves their pointers).
            let cap = table.capacity();
            if cap > SHRINK_ABOVE && table.len() * 4 < cap {
                let len = table.len();
                table.shrink_to(len * 2);
            }
            entry
        };
        if let Some(Entry(p)) = entry {
            // SAFETY: leaked from a `Box` by `get_or_insert`, removed from
            // the table just now (once), and no reference to it is left
            // (the caller's promise).
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

/// A table with room for at most this many entries is never shrunk (a
/// runtime with a few named tasks keeps its small buffer).
const SHRINK_ABOVE: usize = 64;

impl Drop for CancelTable {
    /// A runtime's `Shared` outlives its tasks (a slab chunk or a boxed
    /// cell holds it, and a leaked task leaks it), so every task's
    /// deallocation has removed its entry by now: checked in debug builds
    /// (so a test that names tasks catches a missed `remove`); an entry left
    /// anyway is freed.
    fn drop(&mut self) {
        let table = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        debug_assert!(table.is_empty(), "a task's cancel entry outlived it");
        for (_, Entry(p)) in table.drain() {
            // SAFETY: leaked from a `Box` by `get_or_insert`; the table is
            // dropped, so nothing borrows it any more.
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The table's invariants (module docs): one entry per task whoever
    //! inserts it, entries that stay put while the table grows and are
    //! freed by `remove` (Miri's use-after-free and leak checks, in the
    //! miri tier).

    use super::*;
    use crate::task::state::CANCEL_STATE;

    /// Cell addresses (multiples of 8, a chunk's stride apart) spread over
    /// the low bits (the bucket) and the top 7 (the control byte): an
    /// identity hash would use one bucket in eight.
    #[test]
    fn cell_addresses_spread_over_buckets_and_control_bytes() {
        use std::hash::BuildHasher;
        let base = 0x7f3a_5c01_2000usize;
        for stride in [40usize, 64, 128, 512] {
            let hashes: Vec<u64> = (0..1024)
                .map(|i| CellHash.hash_one(base + i * stride))
                .collect();
            let buckets: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
            let controls: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
            assert!(
                buckets.len() > 550,
                "stride {stride}: {} buckets of 1024",
                buckets.len()
            );
            assert_eq!(controls.len(), 128, "stride {stride}: control bytes");
        }
    }

    #[test]
    fn an_entry_stays_put_while_the_table_grows() {
        let table = CancelTable::default();
        let state = State::new_spawned();
        // SAFETY: the "task" (`state`, key 1) outlives every use below.
        let named = unsafe { table.get_or_insert(1, &state, Some("a".into())) };
        assert!(state.load().is(CANCEL_STATE));
        let others: Vec<State> = (0..if cfg!(miri) { 100 } else { 2000 })
            .map(|_| State::new_spawned())
            .collect();
        for (i, s) in others.iter().enumerate() {
            // SAFETY: as above, key `i + 2` for `s`.
            unsafe { table.get_or_insert(i + 2, s, None) }.offer_message("m".into());
        }
        assert_eq!(
            named.name().map(|n| &**n),
            Some("a"),
            "moved or freed by a rehash"
        );
        // SAFETY: as above.
        let again = unsafe { table.get(1) }.unwrap();
        assert!(std::ptr::eq(named, again));
        // SAFETY: a second insert finds the entry and keeps its name.
        let third = unsafe { table.get_or_insert(1, &state, None) };
        assert!(std::ptr::eq(named, third));
        for i in 0..others.len() {
            // SAFETY: no reference to entry `i + 2` is used after this.
            unsafe { table.remove(i + 2) };
        }
        // SAFETY: `named`, `again` and `third` are not used after this.
        unsafe { table.remove(1) };
        assert_eq!(table.lock().len(), 0);
    }

    /// A burst of named tasks does not keep the table's buffer after they
    /// are gone (a runtime that once had many entries would hold their
    /// room for good): it shrinks as entries go, and the entries left stay
    /// put meanwhile (pointers, not `CancelState`s, move).
    #[test]
    fn the_table_gives_back_its_room_after_a_burst() {
        let table = CancelTable::default();
        let n = if cfg!(miri) { 300 } else { 20_000 };
        let states: Vec<State> = (0..n).map(|_| State::new_spawned()).collect();
        let mut kept = Vec::new();
        for (i, s) in states.iter().enumerate() {
            // SAFETY: the "task" (`s`, key `i + 1`) outlives every use below.
            let c = unsafe { table.get_or_insert(i + 1, s, Some(format!("{i}").into())) };
            if i % 1000 == 0 {
                kept.push((i, c));
            }
        }
        let burst = table.lock().capacity();
        assert!(burst >= n);
        for i in 0..n {
            if i % 1000 != 0 {
                // SAFETY: entry `i + 1` is not one of `kept`, not used after.
                unsafe { table.remove(i + 1) };
            }
        }
        let after = table.lock().capacity();
        assert!(
            after <= 8 * kept.len().max(8),
            "{after} slots kept for {} entries (had {burst})",
            kept.len()
        );
        for (i, c) in &kept {
            assert_eq!(c.name().map(|n| &**n), Some(format!("{i}").as_str()));
            // SAFETY: `c` is not used after this.
            unsafe { table.remove(i + 1) };
        }
    }

    #[test]
    fn threads_racing_to_insert_share_one_entry() {
        let table = Arc::new(CancelTable::default());
        let state = Arc::new(State::new_spawned());
        let addrs: Vec<usize> = (0..4)
            .map(|i| {
                let (table, state) = (table.clone(), state.clone());
                std::thread::spawn(move || {
                    // SAFETY: the "task" (key 7) outlives the threads.
                    let c = unsafe { table.get_or_insert(7, &state, None) };
                    c.offer_message(format!("from {i}").into());
                    std::ptr::from_ref(c).addr()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(addrs.windows(2).all(|w| w[0] == w[1]), "{addrs:?}");
        assert_eq!(table.lock().len(), 1);
        // SAFETY: the bit is set; the threads' references are gone.
        let c = unsafe { table.get(7) }.unwrap();
        assert!(c.message().is_some_and(|m| m.starts_with("from ")));
        // SAFETY: no reference to the entry is used after this.
        unsafe { table.remove(7) };
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! The table under loom (`RUSTFLAGS="--cfg loom" cargo test -p coil
    //! --lib --release loom`): two threads cancel one task with a message
    //! (`raw.rs` `abort`: each inserts the entry if missing and sets the
    //! bit, under the table's lock) while the loop reads the entry once it
    //! sees the bit. One entry, one message of the two, the bit set; the
    //! lock is loom's, so an inserter preempted inside it (the bit's RMW is
    //! a loom operation) makes the others wait in the model instead of
    //! blocking the one OS thread loom runs on.

    use super::*;
    use crate::task::state::CANCEL_STATE;
    use loom::sync::Arc;

    #[test]
    fn two_cancel_withs_and_a_reader_share_one_entry() {
        loom::model(|| {
            let table = Arc::new(CancelTable::default());
            let state = Arc::new(State::new_spawned());
            let threads: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|m| {
                    let (table, state) = (table.clone(), state.clone());
                    loom::thread::spawn(move || {
                        // SAFETY: the "task" (`state`, key 7) outlives the
                        // threads; its entry is removed only below.
                        let c = unsafe { table.get_or_insert(7, &state, None) };
                        c.offer_message(m.into());
                    })
                })
                .collect();
            if state.load().is(CANCEL_STATE) {
                // SAFETY: as above; the bit is set, so the entry exists.
                let c = unsafe { table.get(7) };
                assert!(c.is_some(), "the bit without the entry");
            }
            for t in threads {
                t.join().unwrap();
            }
            assert!(state.load().is(CANCEL_STATE));
            // SAFETY: as above.
            let c = unsafe { table.get(7) }.unwrap();
            assert!(matches!(c.message().as_deref(), Some("a" | "b")));
            // SAFETY: the threads are done; `c` is not used after this.
            unsafe { table.remove(7) };
        });
    }
}
