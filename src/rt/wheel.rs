//! A hierarchical timing wheel: O(1) insert and cancel. It counts abstract
//! ticks; the loop's tick is 125 µs (`timers.rs`, `TICK`), and the spans
//! below are given for it.
//!
//! Level 0 has 4096 one-tick slots, so every timer due within the current
//! 512 ms block is filed once and fired straight from its slot (no
//! cascading for the common "sleep a few ms / time out in a fraction of a
//! second" cases). Levels 1–5 have 64 slots each, each slot 64 times wider
//! than the level below: level 1 slots are 512 ms, … level 5 covers about
//! 17 years (2⁴² ticks). Level `L` slot `s` holds the timers whose deadline tick shares
//! all bits above that level's range with `elapsed` and whose slot bits equal
//! `s`. Deadlines further away are clamped to the top level and re-filed when
//! their slot comes round.
//!
//! Invariants (checked by `check_invariants` in tests and the fuzz target):
//! 1. Every linked entry is in the list of exactly the slot its
//!    `level`/`slot` name, once, at the position `pos` names; that slot's
//!    `live` count is the number of entries in its list, and its `occupied`
//!    bit is set iff the count is not zero. A list with no live entry is
//!    empty and holds no buffer (capacity 0: its buffer went to the spares,
//!    below).
//! 2. Every linked entry's deadline is `> elapsed` (due entries are fired, not kept).
//! 3. An entry at a lower level always expires before any entry at a higher
//!    level, so the next expiration is found in the lowest occupied level.
//! 4. `Key { index, generation }` names a live entry iff the slab entry at
//!    `index` has that generation and is linked; firing or removing bumps it,
//!    so stale keys read as "fired".
//! 5. (For timers inserted within [`MAX_DURATION`] of `elapsed`; clamped
//!    ones are re-filed and may pass later ones with the same deadline.)
//!    Each slot's list is in insertion order (new timers are appended at its
//!    tail, and a cascade re-files a slot's entries head first), and a slot
//!    only receives cascaded entries before any timer is inserted into it
//!    directly (a lower level is only ever filed for the block `elapsed` is
//!    in, and the cascade into that block happens when it begins). So timers
//!    with equal deadlines fire in the order they were inserted, as
//!    asyncio's heap breaks ties by sequence number. A pending entry (below)
//!    counts as inserted when it is filed: it comes after a timer with the
//!    same deadline inserted directly between its own insert and its filing
//!    (a `sleep_until` beside a `sleep(d)` that lands on the same tick).
//!
//! The entries live in a slab (`Vec`); a slot's list is a `Vec` of slab
//! indices in insertion order, and an entry records its position there
//! (`pos[i]`, kept apart from the entry), so cancel writes `NIL` over its
//! index (a *tombstone*) in O(1) and no pointer is unsafe. A list whose last
//! live entry goes is emptied at once (with its occupied bit); one that
//! holds more than twice as many tombstones as live entries (and at least
//! [`COMPACT_MIN`]) is compacted, so tombstones cost amortised O(1) and at
//! most about twice the live entries' room.
//!
//! Why arrays and not linked lists (which this wheel had): firing a slot
//! reads its indices in sequence and then touches each entry (deadline,
//! waker) independently, so the entries' cache misses overlap; chasing
//! `next` from entry to entry made them a chain, one full miss per timer
//! (W4: 100 000 timers filed in one burst and fired over 200 ms, the entries
//! long out of cache: `advance` was a fifth of the CPU time, 96 % of it the
//! stalled access to the entry just reached). The same holds for the
//! pending list. `advance` also prefetches a few entries ahead, and the
//! target of each fired waker (a coil task's header, which the caller wakes
//! next); those hints are the module's only `unsafe` ([`prefetch_ptr`]),
//! and they read nothing.
//!
//! **Pending entries.** A timer whose deadline is relative to a clock read
//! that has not happened yet (`sleep(d)`: `d` after the loop's next look at
//! the clock, see `timers.rs`) is inserted with [`Wheel::insert_pending`]:
//! it is listed, in insertion order, on a separate pending list (same form
//! as a slot's: indices, tombstones for cancelled ones; its
//! `level` is `PENDING`, its `deadline` field holds the caller's relative
//! value, not a tick), and [`Wheel::file_pending`] later files every pending
//! entry at the tick its caller computes from that value and one clock read.
//! A pending entry is live for `poll`/`remove` like a filed one; it is not in
//! any slot, so `next_expiration` does not see it: callers file pending
//! entries before asking when to wake (invariant 6).
//!
//! 6. Every linked entry is either in a slot list (level `< LEVELS`, its
//!    `deadline` a tick) or on the pending list (level `PENDING`, its
//!    `deadline` the relative value, `pending` counting them; the list is
//!    empty when `pending` is 0); `len` counts both.
//!
//! **Memory after a burst.** A wheel gives back what a burst made it
//! allocate, the way the run queue does (`core/run_queue.rs`: a buffer above
//! a threshold is released once it empties), so that 100 000 timers filed
//! once do not pin megabytes for the rest of the loop's life:
//! - A slot's list buffer is not kept by the slot once the list empties
//!   (fired, or its last live entry cancelled; invariant 1): it goes to a
//!   wheel-wide LIFO of *spare* buffers if their total capacity stays within
//!   [`SPARE_MAX`] indices (64 KiB), and is freed otherwise. A slot that
//!   needs a buffer takes the last spare, or allocates [`FIRST_CAP`]. Since
//!   level-0 slots are one tick each, a loop's steady timers move from slot
//!   to slot; with the spares, one buffer per tick's worth of timers
//!   circulates and the steady state allocates nothing (a slot never keeps
//!   a buffer for its next round 512 ms later, which for one periodic timer
//!   touching all 4096 level-0 slots would have pinned 4096 buffers).
//! - The pending list keeps its buffer while it is at most [`PENDING_KEEP`]
//!   indices (64 KiB), whether it empties by filing or by cancels.
//! - The slab (`entries`, 32 bytes a timer, and `pos`, 4) is freed by
//!   [`Wheel::shrink_if_empty`], which the loop calls when it is about to
//!   park, once the wheel holds no timer and the slab has grown past
//!   [`ENTRIES_KEEP`] entries (72 KiB): entries cannot move (keys name their index), so it can only
//!   go all at once. Stale keys must stay stale (invariant 4): new entries
//!   start at `gen_floor`, the highest generation the freed slab held,
//!   above every stale key's (generations wrap after 2³² reuses of one
//!   index, as before). A steady load under the threshold, or one that never
//!   drains, keeps its slab; a new burst regrows it by doubling.
//!
//! 7. `spare_cap` is the total capacity of the spare buffers, at most
//!    [`SPARE_MAX`]; each spare is empty.
//!
//! [`Wheel`], [`Key`] and [`MAX_DURATION`] are `pub` in this crate-private
//! module so that `crate::fuzz` can re-export them for the `timer_wheel` fuzz
//! target under `cfg(fuzzing)`; they are not API.

use std::task::Waker;

const LEVELS: usize = 6;
/// Slot bits of level 0 (4096 slots).
const L0_BITS: u32 = 12;
/// Slot bits of levels 1.. (64 slots).
const LN_BITS: u32 = 6;
/// The furthest a deadline may be from `elapsed` (2⁴² − 1 ticks).
pub const MAX_DURATION: u64 = (1 << (L0_BITS + LN_BITS * (LEVELS as u32 - 1))) - 1;
const NIL: u32 = u32::MAX;
const UNLINKED: u8 = u8::MAX;
/// The `level` of an entry on the pending list (module docs).
const PENDING: u8 = LEVELS as u8;
/// A slot list is compacted once it holds more tombstones than this and
/// more than twice its live entries (module docs).
const COMPACT_MIN: usize = 32;
/// The first allocation of a slot's list, in entries.
const FIRST_CAP: usize = 16;
/// The most indices the spare slot buffers may hold in all (64 KiB; module
/// docs): an emptied list's buffer that does not fit is freed.
const SPARE_MAX: usize = 16 * 1024;
/// The pending list keeps a buffer of at most this many indices (64 KiB)
/// when it empties; a larger one is freed.
const PENDING_KEEP: usize = 16 * 1024;
/// A slab of more than this many entries is freed once no timer is left
/// (fewer under Miri, so that its tests stay small).
const ENTRIES_KEEP: usize = if cfg!(miri) { 64 } else { 2048 };

/// Identifies one timer in the wheel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Entry {
    /// The tick (relative value while pending); while free, the index of
    /// the next free entry (so firing touches only the entry).
    deadline: u64,
    waker: Option<Waker>,
    generation: u32,
    /// The level while linked in a slot, `PENDING` on the pending list,
    /// `UNLINKED` when free.
    level: u8,
    /// The slot within the level while linked.
    slot: u16,
}

/// One slot of a level (aligned so that it never straddles two cache
/// lines).
#[derive(Debug, Default)]
#[repr(align(32))]
struct Slot {
    /// The slot's entries in insertion order; `NIL` marks a removed one.
    list: Vec<u32>,
    /// The entries (not `NIL`) in `list`.
    live: u32,
}

/// One level: the list of each slot, their live counts, an occupancy
/// bitmap, and a summary word whose bit `w` says `occupied[w] != 0`.
#[derive(Debug)]
struct Level {
    /// Each slot's list and live count, side by side: filing a timer
    /// touches both, in one cache line instead of two arrays' lines (W4's
    /// burst files 100 000 timers into random slots).
    slots: Box<[Slot]>,
    occupied: Box<[u64]>,
    summary: u64,
}

impl Level {
    fn new(bits: u32) -> Level {
        let slots = 1usize << bits;
        Level {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            occupied: vec![0; slots.div_ceil(64)].into_boxed_slice(),
            summary: 0,
        }
    }

    fn set(&mut self, slot: usize) {
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.summary |= 1 << (slot / 64);
    }

    fn clear(&mut self, slot: usize) {
        let w = slot / 64;
        self.occupied[w] &= !(1 << (slot % 64));
        if self.occupied[w] == 0 {
            self.summary &= !(1 << w);
        }
    }

    #[cfg(any(test, fuzzing))]
    fn is_set(&self, slot: usize) -> bool {
        self.occupied[slot / 64] & (1 << (slot % 64)) != 0
    }

    /// The first occupied slot at or after `from`, wrapping around.
    fn next_occupied(&self, from: usize) -> Option<usize> {
        if self.summary == 0 {
            return None;
        }
        let (w0, b0) = (from / 64, from % 64);
        let here = self.occupied[w0] & (!0u64 << b0);
        if here != 0 {
            return Some(w0 * 64 + here.trailing_zeros() as usize);
        }
        let after = if w0 < 63 {
            self.summary & (!0u64 << (w0 + 1))
        } else {
            0
        };
        let before = self.summary & (!0u64 >> (63 - w0));
        let w = if after != 0 { after } else { before }.trailing_zeros() as usize;
        if w >= 64 {
            return None;
        }
        Some(w * 64 + self.occupied[w].trailing_zeros() as usize)
    }
}

/// The wheel. Not thread-safe: it lives in a loop's core.
#[derive(Debug)]
pub struct Wheel {
    elapsed: u64,
    levels: [Level; LEVELS],
    entries: Vec<Entry>,
    /// `pos[i]`: while `entries[i]` is linked, its position in its list
    /// (module docs).
    pos: Vec<u32>,
    free: u32,
    len: usize,
    /// The pending list (module docs): indices, `NIL` for cancelled ones.
    pending_list: Vec<u32>,
    /// How many entries the pending list holds (counted in `len` too).
    pending: usize,
    /// Emptied slot buffers for the next slot that needs one (module docs).
    spare: Vec<Vec<u32>>,
    /// Their total capacity (invariant 7).
    spare_cap: usize,
    /// The generation a new slab entry starts at (module docs).
    gen_floor: u32,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel::new()
    }
}

fn level_for(elapsed: u64, when: u64) -> usize {
    let mut masked = elapsed ^ when;
    if masked >= MAX_DURATION {
        masked = MAX_DURATION - 1;
    }
    if masked < 1 << L0_BITS {
        return 0;
    }
    let significant = 63 - masked.leading_zeros();
    1 + ((significant - L0_BITS) / LN_BITS) as usize
}

/// log2 of a level's slot width in ticks.
fn shift(level: usize) -> u32 {
    if level == 0 {
        0
    } else {
        L0_BITS + LN_BITS * (level as u32 - 1)
    }
}

fn slot_bits(level: usize) -> u32 {
    if level == 0 { L0_BITS } else { LN_BITS }
}

fn slot_for(level: usize, when: u64) -> usize {
    ((when >> shift(level)) & ((1 << slot_bits(level)) - 1)) as usize
}

fn slot_range(level: usize) -> u64 {
    1 << shift(level)
}

impl Wheel {
    /// An empty wheel at tick 0.
    pub fn new() -> Wheel {
        Wheel {
            elapsed: 0,
            levels: std::array::from_fn(|l| Level::new(slot_bits(l))),
            entries: Vec::new(),
            pos: Vec::new(),
            free: NIL,
            len: 0,
            pending_list: Vec::new(),
            pending: 0,
            spare: Vec::new(),
            spare_cap: 0,
            gen_floor: 0,
        }
    }

    /// The tick the wheel has advanced to.
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of timers filed in the slots (`len` without the pending
    /// list): the ones `advance` may fire.
    pub fn filed_len(&self) -> usize {
        self.len - self.pending
    }

    /// Adds a timer for tick `when`, which must be later than `elapsed()`
    /// (callers fire due timers themselves). Deadlines beyond
    /// [`MAX_DURATION`] are clamped: such a timer fires no earlier than
    /// intended, because it is re-filed until its real deadline.
    pub fn insert(&mut self, when: u64, waker: Waker) -> Key {
        debug_assert!(when > self.elapsed, "insert of a due timer");
        let index = self.allocate(when, waker, UNLINKED, NIL);
        let horizon = self.horizon();
        self.link_to(index, when, horizon);
        Key {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Adds a pending timer (module docs): `after` is kept as is until
    /// [`Wheel::file_pending`] turns it into a tick. Pending timers are filed
    /// in the order they were inserted.
    #[inline]
    pub fn insert_pending(&mut self, after: u64, waker: Waker) -> Key {
        // The entry is written once, already listed (level and position).
        let index = self.allocate(after, waker, PENDING, list_pos(&self.pending_list));
        self.pending_list.push(index);
        self.pending += 1;
        Key {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Whether some timer is pending (not yet filed).
    pub fn has_pending(&self) -> bool {
        self.pending != 0
    }

    /// Files every pending timer, in insertion order, at tick `tick(after)`
    /// (`after` as given to `insert_pending`). A timer whose tick is not
    /// later than `elapsed()` is due: its waker is pushed onto `fired` at
    /// once (the caller's clock has passed it).
    pub fn file_pending(&mut self, mut tick: impl FnMut(u64) -> u64, fired: &mut Vec<Waker>) {
        let mut list = std::mem::take(&mut self.pending_list);
        self.pending = 0;
        // One horizon for the batch: `elapsed` does not move while filing.
        let horizon = self.horizon();
        for &cur in &list {
            if cur == NIL {
                continue;
            }
            let e = &mut self.entries[cur as usize];
            let when = tick(e.deadline);
            e.deadline = when;
            if when <= self.elapsed {
                e.level = UNLINKED;
                if let Some(w) = self.release(cur) {
                    fired.push(w);
                }
            } else {
                self.link_to(cur, when, horizon);
            }
        }
        // Nothing was added meanwhile (`link` files into slots): keep a
        // modest buffer for the next burst (module docs).
        list.clear();
        if list.capacity() <= PENDING_KEEP {
            self.pending_list = list;
        }
    }

    /// The tick a live filed timer is due at; `None` if `key` is stale
    /// (fired or removed) or the timer is still pending.
    pub fn deadline(&self, key: Key) -> Option<u64> {
        let e = self.entries.get(key.index as usize)?;
        (self.is_live(key) && e.level != PENDING).then_some(e.deadline)
    }

    /// A free slab entry holding `deadline` and `waker`, with `level` and
    /// `pos` (`UNLINKED` and `NIL` for an entry the caller links next, with
    /// `link_to`; `PENDING` and its place for one on the pending list).
    /// Written in one go: on a burst's first pass the slab grows, and each
    /// new entry's line is written once instead of pushed and then patched.
    #[inline(always)]
    fn allocate(&mut self, deadline: u64, waker: Waker, level: u8, pos: u32) -> u32 {
        self.len += 1;
        match self.free {
            NIL => {
                let index = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("more than 4 billion timers are pending; this is a leak in the caller");
                self.entries.push(Entry {
                    deadline,
                    waker: Some(waker),
                    generation: self.gen_floor,
                    level,
                    slot: 0,
                });
                self.pos.push(pos);
                index
            }
            index => {
                let e = &mut self.entries[index as usize];
                self.free = e.deadline as u32;
                e.deadline = deadline;
                debug_assert!(e.waker.is_none(), "`release` took the waker");
                e.waker = Some(waker);
                e.level = level;
                self.pos[index as usize] = pos;
                index
            }
        }
    }

    /// The tick far deadlines are clamped to while `elapsed` stays where it
    /// is: the top-level slot just behind the current one, which
    /// `next_slot` reaches last (after wrapping). At `elapsed +
    /// MAX_DURATION` they would land in the current slot and, read as one
    /// rotation ahead, hide every other top-level timer.
    #[inline(always)]
    fn horizon(&self) -> u64 {
        let top = shift(LEVELS - 1);
        (self.elapsed >> top << top) + (MAX_DURATION + 1) - (1 << top)
    }

    /// Links the unlinked entry `index` into the slot of its deadline
    /// `when` (as `entries[index].deadline` holds), `horizon` being
    /// `self.horizon()`.
    #[inline(always)]
    fn link_to(&mut self, index: u32, when: u64, horizon: u64) {
        debug_assert_eq!(when, self.entries[index as usize].deadline);
        debug_assert_eq!(horizon, self.horizon());
        let (level, slot) = if (self.elapsed ^ when) < 1 << L0_BITS {
            // Level 0 (`level_for`), the common case: a one-tick slot of
            // the block `elapsed` is in (and far below the horizon).
            (0, slot_for(0, when))
        } else {
            let filed = when.min(horizon);
            let level = level_for(self.elapsed, filed);
            (level, slot_for(level, filed))
        };
        // Appended at the end (invariant 5: equal deadlines fire in
        // insertion order).
        let lvl = &mut self.levels[level];
        if lvl.slots[slot].live == 0 {
            lvl.set(slot);
        }
        let Slot { list, live } = &mut lvl.slots[slot];
        *live += 1;
        if list.capacity() == 0 {
            // An empty slot has no buffer (invariant 1): take a spare, or
            // skip the smallest growth steps: a slot that is used at all
            // tends to get a few timers (W4: about 60 per level-0 slot).
            *list = match self.spare.pop() {
                Some(buf) => {
                    self.spare_cap -= buf.capacity();
                    buf
                }
                None => Vec::with_capacity(FIRST_CAP),
            };
        }
        self.pos[index as usize] = list_pos(list);
        list.push(index);
        let e = &mut self.entries[index as usize];
        e.level = level as u8;
        e.slot = slot as u16;
    }

    /// `link_to` for a cascade (`advance`), out of the firing loop's line.
    #[inline(never)]
    fn link(&mut self, index: u32) {
        let when = self.entries[index as usize].deadline;
        let horizon = self.horizon();
        self.link_to(index, when, horizon);
    }

    fn unlink(&mut self, index: u32) {
        let e = &mut self.entries[index as usize];
        let (level, slot) = (e.level as usize, e.slot as usize);
        e.level = UNLINKED;
        let pos = self.pos[index as usize] as usize;
        if level == PENDING as usize {
            self.pending_list[pos] = NIL;
            self.pending -= 1;
            if self.pending == 0 {
                self.pending_list.clear();
                if self.pending_list.capacity() > PENDING_KEEP {
                    self.pending_list = Vec::new();
                }
            }
            return;
        }
        let lvl = &mut self.levels[level];
        let Slot { list, live } = &mut lvl.slots[slot];
        list[pos] = NIL;
        *live -= 1;
        let live = *live as usize;
        if live == 0 {
            let mut buf = std::mem::take(list);
            buf.clear();
            lvl.clear(slot);
            give_spare(&mut self.spare, &mut self.spare_cap, buf);
        } else if list.len() - live > COMPACT_MIN && list.len() > 3 * live {
            // Drop the tombstones, keeping the order (invariant 5).
            let mut n = 0;
            for i in 0..list.len() {
                let x = list[i];
                if x != NIL {
                    list[n] = x;
                    self.pos[x as usize] = n as u32;
                    n += 1;
                }
            }
            list.truncate(n);
        }
    }

    /// Return an unlinked entry to the free list, bumping its generation.
    fn release(&mut self, index: u32) -> Option<Waker> {
        let e = &mut self.entries[index as usize];
        e.generation = e.generation.wrapping_add(1);
        e.deadline = u64::from(self.free);
        self.free = index;
        self.len -= 1;
        e.waker.take()
    }

    fn is_live(&self, key: Key) -> bool {
        self.entries
            .get(key.index as usize)
            .is_some_and(|e| e.generation == key.generation && e.level != UNLINKED)
    }

    /// Cancels a timer. Returns false if it had already fired.
    pub fn remove(&mut self, key: Key) -> bool {
        if !self.is_live(key) {
            return false;
        }
        self.unlink(key.index);
        drop(self.release(key.index));
        true
    }

    /// Frees a large slab if no timer is left (module docs); returns
    /// whether it did. The loop calls it when it is about to park (idle),
    /// not on the firing path: unmapping a 4 MiB slab takes about 0.4 ms,
    /// which would delay the tasks the burst's last timers woke (W4).
    #[inline]
    pub fn shrink_if_empty(&mut self) -> bool {
        if self.len == 0 && self.entries.len() > ENTRIES_KEEP {
            self.shrink_slab();
            return true;
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn shrink_slab(&mut self) {
        debug_assert_eq!(self.len, 0);
        // Every entry is free (`len` is 0): no waker, no list names one.
        // Stale keys hold generations below their entry's, so below the
        // highest one (invariant 4 for the entries allocated next).
        self.gen_floor = self.gen_floor.max(max_generation(&self.entries));
        self.entries = Vec::new();
        self.pos = Vec::new();
        self.free = NIL;
    }

    /// Whether the timer is still pending; if so, makes sure `waker` will be
    /// woken when it fires.
    pub fn poll(&mut self, key: Key, waker: &Waker) -> bool {
        if !self.is_live(key) {
            return false;
        }
        let e = &mut self.entries[key.index as usize];
        match &e.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => e.waker = Some(waker.clone()),
        }
        true
    }

    /// The earliest tick at which some slot must be processed, if any.
    pub fn next_expiration(&self) -> Option<u64> {
        self.next_slot().map(|(_, _, d)| d)
    }

    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, lvl) in self.levels.iter().enumerate() {
            let range = slot_range(level);
            let slots = 1u64 << slot_bits(level);
            let level_range = range * slots;
            let now_slot = ((self.elapsed / range) % slots) as usize;
            let Some(slot) = lvl.next_occupied(now_slot) else {
                continue;
            };
            let level_start = self.elapsed & !(level_range - 1);
            let mut deadline = level_start + slot as u64 * range;
            if deadline <= self.elapsed {
                // Only the top level wraps (far deadlines are clamped into
                // it): a slot "behind" `elapsed` is one rotation ahead.
                debug_assert_eq!(level, LEVELS - 1);
                deadline += level_range;
            }
            return Some((level, slot, deadline));
        }
        None
    }

    /// Advances to tick `now`, pushing the wakers of every timer whose
    /// deadline is `<= now` onto `fired`: in deadline order, and timers with
    /// equal deadlines in the order they were inserted (invariant 5).
    pub fn advance(&mut self, now: u64, fired: &mut Vec<Waker>) {
        while let Some((level, slot, deadline)) = self.next_slot() {
            if deadline > now {
                break;
            }
            self.elapsed = deadline;
            let lvl = &mut self.levels[level];
            let mut list = std::mem::take(&mut lvl.slots[slot].list);
            lvl.slots[slot].live = 0;
            lvl.clear(slot);
            // The indices are read in sequence and each entry is touched on
            // its own: their misses overlap (module docs), and a prefetch a
            // few entries ahead starts each one before it is needed.
            for (i, &cur) in list.iter().enumerate() {
                if let Some(&ahead) = list.get(i + PREFETCH_AHEAD) {
                    prefetch(&self.entries, ahead);
                }
                if cur == NIL {
                    continue;
                }
                let e = &mut self.entries[cur as usize];
                e.level = UNLINKED;
                if e.deadline <= deadline {
                    if let Some(w) = self.release(cur) {
                        // The caller wakes it next: start loading what the
                        // waker points at (a coil task's header).
                        prefetch_ptr(w.data());
                        fired.push(w);
                    }
                } else {
                    self.link(cur);
                }
            }
            // The buffer goes to the spares (a cascade that filed something
            // back into this very slot took another one).
            list.clear();
            give_spare(&mut self.spare, &mut self.spare_cap, list);
        }
        if now > self.elapsed {
            self.elapsed = now;
        }
    }

    /// Drops every pending timer (runtime shutdown), returning their wakers
    /// so the caller can drop them outside any borrow.
    pub(crate) fn clear(&mut self) -> Vec<Waker> {
        let wakers = self
            .entries
            .iter_mut()
            .filter_map(|e| e.waker.take())
            .collect();
        *self = Wheel {
            elapsed: self.elapsed,
            // Keys of the dropped timers stay stale (invariant 4).
            gen_floor: self
                .gen_floor
                .max(max_generation(&self.entries))
                .wrapping_add(1),
            ..Wheel::new()
        };
        wakers
    }

    /// Checks invariants 1, 2, 6 and 7 (tests and fuzzing).
    #[cfg(any(test, fuzzing))]
    pub fn check_invariants(&self) {
        let mut linked = 0;
        let mut pending = 0;
        for (i, &cur) in self.pending_list.iter().enumerate() {
            if cur == NIL {
                continue;
            }
            let e = &self.entries[cur as usize];
            assert_eq!(e.level, PENDING, "pending list entry");
            assert_eq!(self.pos[cur as usize] as usize, i, "pending pos");
            pending += 1;
        }
        assert_eq!(pending, self.pending, "pending count");
        if self.pending == 0 {
            assert!(self.pending_list.is_empty(), "empty pending list");
        }
        linked += pending;
        for (level, lvl) in self.levels.iter().enumerate() {
            for slot in 0..lvl.slots.len() {
                let list = &lvl.slots[slot].list;
                let mut live = 0;
                for (i, &cur) in list.iter().enumerate() {
                    if cur == NIL {
                        continue;
                    }
                    let e = &self.entries[cur as usize];
                    assert_eq!((e.level as usize, e.slot as usize), (level, slot));
                    assert_eq!(self.pos[cur as usize] as usize, i, "slot pos");
                    assert!(e.deadline > self.elapsed, "due entry left in the wheel");
                    live += 1;
                }
                assert_eq!(lvl.slots[slot].live, live, "live count");
                assert_eq!(lvl.is_set(slot), live != 0, "occupied bit");
                if live == 0 {
                    assert!(list.is_empty(), "a list with no live entry is empty");
                    assert_eq!(list.capacity(), 0, "an empty list holds no buffer");
                }
                assert_eq!(
                    lvl.summary & (1 << (slot / 64)) != 0,
                    lvl.occupied[slot / 64] != 0,
                    "summary bit"
                );
                linked += live as usize;
            }
        }
        assert_eq!(linked, self.len);
        assert_eq!(self.pos.len(), self.entries.len(), "one pos per entry");
        let spare: usize = self.spare.iter().map(Vec::capacity).sum();
        assert_eq!(spare, self.spare_cap, "spare capacity");
        assert!(self.spare_cap <= SPARE_MAX, "spare budget");
        assert!(self.spare.iter().all(Vec::is_empty), "spares are empty");
    }

    /// The capacity, in bytes, of every buffer the wheel holds beyond its
    /// fixed per-slot arrays: slot lists, spares, pending list, slab
    /// (tests: what a burst leaves behind).
    #[cfg(test)]
    fn retained_bytes(&self) -> usize {
        let idx = size_of::<u32>();
        let lists: usize = self
            .levels
            .iter()
            .flat_map(|l| l.slots.iter())
            .map(|s| s.list.capacity())
            .sum();
        (lists + self.spare_cap + self.pending_list.capacity() + self.pos.capacity()) * idx
            + self.spare.capacity() * size_of::<Vec<u32>>()
            + self.entries.capacity() * size_of::<Entry>()
    }
}

/// Puts an emptied slot buffer on the spares if it fits [`SPARE_MAX`], else
/// frees it (module docs).
#[inline]
fn give_spare(spare: &mut Vec<Vec<u32>>, spare_cap: &mut usize, buf: Vec<u32>) {
    debug_assert!(buf.is_empty());
    let cap = buf.capacity();
    if cap != 0 && *spare_cap + cap <= SPARE_MAX {
        *spare_cap += cap;
        spare.push(buf);
    }
}

/// The highest generation in `entries` (0 if none).
fn max_generation(entries: &[Entry]) -> u32 {
    entries.iter().map(|e| e.generation).max().unwrap_or(0)
}

/// How many entries ahead `advance` prefetches.
const PREFETCH_AHEAD: usize = 8;

/// Hints the CPU to start loading `entries[index]` (nothing if `index` is
/// `NIL`).
#[inline(always)]
fn prefetch(entries: &[Entry], index: u32) {
    if let Some(e) = entries.get(index as usize) {
        prefetch_ptr((e as *const Entry).cast());
    }
}

/// Hints the CPU to start loading the cache line at `p` (nothing on other
/// architectures and under Miri). A hint only: no effect on results.
#[inline(always)]
fn prefetch_ptr(p: *const ()) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse", not(miri)))]
    // SAFETY: `_mm_prefetch` needs only `sse`, which this block is compiled
    // with (x86_64 baseline); a prefetch reads nothing into the program and
    // cannot fault, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse", not(miri))))]
    let _ = p;
}

/// The position the next push onto `list` takes (lists hold at most one
/// index per slab entry plus tombstones, far below `u32::MAX`).
fn list_pos(list: &[u32]) -> u32 {
    list.len() as u32
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod memory_tests;
