//! The epoll backend's op table: completions emulated as readiness, then the
//! system call.
//!
//! An op is first tried at once (`perform`) — unless the table already knows
//! the fd is not ready in that direction (its last attempt said `EAGAIN` and
//! no event came since), which saves a system call that would fail. If the
//! fd is not ready (`WouldBlock`) the op waits in its fd's reader or writer
//! queue, and the fd is registered with epoll, **edge-triggered**, the first
//! time it is needed;
//! the registration stays until [`ReadyTable::release`] (the op layer calls it
//! when the fd is closed, before the number can be reused). On an event, the
//! waiting ops of that direction are retried in FIFO order until one answers
//! `WouldBlock` again; because every retry reads until `EAGAIN` or completes,
//! no edge is missed.
//!
//! Storage: per-fd state lives in a `Vec` indexed by the fd number (the kernel
//! hands out the lowest free numbers, so the table stays as dense as the
//! process's fd table), and `where_is` ([`WhereIs`]) is an array indexed by
//! the op layer's slot number (the low 32 bits of `user_data`), with a
//! `HashMap` for other keys under a one-multiply hasher ([`UserDataHasher`]):
//! `user_data` values are distinct integers chosen by the op layer, not
//! attacker input, and SipHash cost ~300 instructions per echoed request in
//! W5 (callgrind) for nothing.
//!
//! Invariants:
//! 1. An op is in at most one queue, and `where_is` maps its `user_data` to
//!    that queue's fd exactly while it is queued.
//! 2. Every queued op's pointer is valid (the submit contract); the table
//!    never dereferences a pointer after reporting its completion.
//! 3. Every op submitted gets exactly one result: returned by `submit` when
//!    it finished during the call, else one completion pushed after an event,
//!    on cancel (`-ECANCELED`), or on release of its fd (`-ECANCELED`).
//! 4. `not_readable`/`not_writable` are set only when the next attempt would
//!    surely fail and a later change raises an edge: after `WouldBlock`, or
//!    after a read the op calls drained (`OpCode::drained`: a short stream
//!    read emptied the receive queue) on a registered fd whose peer has not
//!    hung up (`read_final`: after a hang-up or error the next read ends at
//!    once, and no edge would come to say so). An event clears them;
//!    nothing else may, or an op could wait for an edge that already came.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use crate::op::{Completion, OpCode, OpPtr, Readiness, to_result};
use crate::sys::syscall;

/// Interest for op fds: both directions, edge-triggered, and peer hang-up.
const OP_INTEREST: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

#[derive(Debug)]
struct Waiter {
    user_data: u64,
    op: OpPtr,
}

#[derive(Debug, Default)]
struct FdState {
    readers: VecDeque<Waiter>,
    writers: VecDeque<Waiter>,
    /// The last read attempt said EAGAIN and no readable event came since.
    not_readable: bool,
    /// The last write attempt said EAGAIN and no writable event came since.
    not_writable: bool,
    /// A peer hang-up or error was reported (`EPOLLRDHUP`, `EPOLLHUP`,
    /// `EPOLLERR`): reads now end at once (EOF or the error) and no further
    /// edge will announce that, so a short read no longer means "wait".
    read_final: bool,
}

/// Hashes a `u64` key with one multiplication by 2⁶⁴/φ (Fibonacci hashing):
/// every input bit reaches the high bits hashbrown uses for its control bytes,
/// and distinct low bits (the op layer's slot index) stay distinct in the low
/// bits it uses for the bucket.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UserDataHasher(u64);

impl Hasher for UserDataHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than u64 (none here); stay correct anyway.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// `user_data` → the fd whose queue holds that op (only `cancel` needs it).
///
/// The op layer's keys are `generation << 32 | slot` with dense slot
/// numbers, and at most one live op per slot, so `dense[slot]` holds the
/// whole key and its fd: an insert and a remove are an index and a compare
/// (the hashed map cost ~60 instructions per W5 request). Keys whose slot
/// is beyond `DENSE_SLOTS`, or whose slot is taken by another live key (a
/// caller of `coil-arch` may choose any keys), go to `sparse`.
#[derive(Debug, Default)]
struct WhereIs {
    dense: Vec<(u64, RawFd)>,
    sparse: HashMap<u64, RawFd, BuildHasherDefault<UserDataHasher>>,
}

/// Slots kept in `WhereIs::dense` (16 bytes each: at most 1 MiB).
const DENSE_SLOTS: usize = 1 << 16;
/// Marks a free dense entry; reserved, so never a submitted op's key.
const NO_KEY: u64 = u64::MAX;

impl WhereIs {
    fn slot(user_data: u64) -> usize {
        (user_data & 0xFFFF_FFFF) as usize
    }

    #[inline]
    fn insert(&mut self, user_data: u64, fd: RawFd) {
        debug_assert_ne!(user_data, NO_KEY);
        let i = Self::slot(user_data);
        if i < DENSE_SLOTS {
            if i >= self.dense.len() {
                self.dense.resize(i + 1, (NO_KEY, -1));
            }
            if self.dense[i].0 == NO_KEY {
                self.dense[i] = (user_data, fd);
                return;
            }
        }
        self.sparse.insert(user_data, fd);
    }

    #[inline]
    fn remove(&mut self, user_data: u64) -> Option<RawFd> {
        if let Some(e) = self.dense.get_mut(Self::slot(user_data))
            && e.0 == user_data
        {
            e.0 = NO_KEY;
            return Some(e.1);
        }
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.remove(&user_data)
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct ReadyTable {
    /// Indexed by fd; `Some` exactly while the fd is registered with epoll.
    fds: Vec<Option<FdState>>,
    where_is: WhereIs,
}

fn complete(pending: &mut Vec<Completion>, user_data: u64, r: io::Result<usize>) {
    pending.push(Completion {
        user_data,
        result: to_result(r),
        flags: 0,
    });
}

/// Completes each of `waiters` with `-ECANCELED`, in order, and forgets where it waited.
fn cancel_waiters(
    waiters: impl Iterator<Item = Waiter>,
    where_is: &mut WhereIs,
    pending: &mut Vec<Completion>,
) {
    for w in waiters {
        where_is.remove(w.user_data);
        complete(
            pending,
            w.user_data,
            Err(io::Error::from_raw_os_error(libc::ECANCELED)),
        );
    }
}

impl ReadyTable {
    /// Start an op (see `Driver::submit_or_finish`). `Some(result)` if it
    /// finished during the call (nothing is pushed for it and nothing keeps
    /// `op`); `None` if it waits for readiness (its completion is pushed
    /// later).
    ///
    /// `code` is used for the calls made now (statically dispatched when the
    /// caller knows the op's type); `op` is the same op, kept if it waits.
    ///
    /// # Safety
    ///
    /// `op` stays valid and in place until its completion is pushed, and
    /// `code` points to the same op.
    #[inline]
    pub(crate) unsafe fn submit<C: OpCode + ?Sized>(
        &mut self,
        epfd: RawFd,
        user_data: u64,
        mut code: NonNull<C>,
        op: OpPtr,
        pending: &mut Vec<Completion>,
    ) -> Option<i32> {
        // SAFETY: valid per the caller's promise; nobody else uses it now.
        let code = unsafe { code.as_mut() };
        let (fd, write) = match code.readiness() {
            Readiness::Immediate => return Some(to_result(code.perform())),
            Readiness::Close(fd) => {
                self.release(epfd, fd, pending);
                return Some(to_result(code.perform()));
            }
            Readiness::Readable(fd) => (fd, false),
            Readiness::Writable(fd) => (fd, true),
        };
        let known_blocked = self.state(fd).is_some_and(|st| {
            if write {
                st.not_writable || !st.writers.is_empty()
            } else {
                st.not_readable || !st.readers.is_empty()
            }
        });
        if !known_blocked {
            match code.perform() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => {
                    if let Ok(n) = r
                        && !write
                        && code.drained(n)
                        && let Some(st) = self.fds.get_mut(fd as usize).and_then(Option::as_mut)
                        && !st.read_final
                    {
                        // A registered fd raises an edge on the next arrival
                        // (invariant 4); an unregistered one is tried again.
                        st.not_readable = true;
                    }
                    return Some(to_result(r));
                }
            }
        }
        if self.state(fd).is_none() {
            let mut ev = libc::epoll_event {
                events: OP_INTEREST,
                u64: fd as u64,
            };
            // SAFETY: `ev` is a live local; epfd is our epoll fd.
            let added = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &raw mut ev) };
            if added == -1 {
                // EPERM for regular files, EBADF for closed or negative fds: the op
                // fails (and a negative fd never reaches the index below).
                return Some(to_result(Err(io::Error::last_os_error())));
            }
            let index = fd as usize;
            if index >= self.fds.len() {
                self.fds.resize_with(index + 1, || None);
            }
            self.fds[index] = Some(FdState::default());
        }
        let state = self.fds[fd as usize]
            .as_mut()
            .expect("registered just above or before");
        let queue = if write {
            state.not_writable = true;
            &mut state.writers
        } else {
            state.not_readable = true;
            &mut state.readers
        };
        queue.push_back(Waiter { user_data, op });
        self.where_is.insert(user_data, fd);
        None
    }

    /// An epoll event for `fd`: retry the waiting ops it may unblock.
    pub(crate) fn on_event(&mut self, fd: RawFd, events: u32, pending: &mut Vec<Completion>) {
        let Some(state) = slot(&mut self.fds, fd).and_then(Option::as_mut) else {
            return; // released since the event was queued
        };
        let err = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        if events & (libc::EPOLLRDHUP as u32 | err) != 0 {
            state.read_final = true;
        }
        if events & ((libc::EPOLLIN | libc::EPOLLRDHUP) as u32 | err) != 0 {
            let trust_drained = !state.read_final;
            state.not_readable = retry(
                &mut state.readers,
                &mut self.where_is,
                pending,
                trust_drained,
            );
        }
        if events & (libc::EPOLLOUT as u32 | err) != 0 {
            // Most events carry EPOLLOUT with no writer waiting: skip the call.
            state.not_writable = !state.writers.is_empty()
                && retry(&mut state.writers, &mut self.where_is, pending, false);
        }
    }

    /// Cancel a waiting op: it completes with `-ECANCELED`. Ops not waiting
    /// (finished, or never seen) are ignored.
    pub(crate) fn cancel(&mut self, user_data: u64, pending: &mut Vec<Completion>) {
        let Some(fd) = self.where_is.remove(user_data) else {
            return;
        };
        if let Some(state) = self.fds.get_mut(fd as usize).and_then(Option::as_mut) {
            for q in [&mut state.readers, &mut state.writers] {
                q.retain(|w| w.user_data != user_data);
            }
        }
        complete(
            pending,
            user_data,
            Err(io::Error::from_raw_os_error(libc::ECANCELED)),
        );
    }

    /// How many ops wait for readiness: the only ops whose memory the table may
    /// still use (through `perform`, from a later `on_event`). Counted on demand;
    /// nothing on the submit path maintains it.
    pub(crate) fn in_flight(&self) -> usize {
        self.fds
            .iter()
            .flatten()
            .map(|st| st.readers.len() + st.writers.len())
            .sum()
    }

    /// Cancel every waiting op (each completes with `-ECANCELED`, in fd order,
    /// readers before writers). The fds stay registered.
    pub(crate) fn cancel_all(&mut self, pending: &mut Vec<Completion>) {
        for state in self.fds.iter_mut().flatten() {
            let waiters = state.readers.drain(..).chain(state.writers.drain(..));
            cancel_waiters(waiters, &mut self.where_is, pending);
        }
    }

    /// Forget `fd`: deregister it and cancel whatever still waits on it.
    pub(crate) fn release(&mut self, epfd: RawFd, fd: RawFd, pending: &mut Vec<Completion>) {
        let Some(state) = slot(&mut self.fds, fd).and_then(Option::take) else {
            return;
        };
        // SAFETY: plain epoll_ctl; a null event is allowed for DEL. The fd may
        // already be closed (then the kernel dropped the registration itself
        // and this fails harmlessly).
        let _ = syscall!(unsafe {
            libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut())
        });
        let waiters = state.readers.into_iter().chain(state.writers);
        cancel_waiters(waiters, &mut self.where_is, pending);
    }
}

impl ReadyTable {
    /// The state of a registered fd.
    fn state(&self, fd: RawFd) -> Option<&FdState> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(Option::as_ref)
    }
}

/// The table entry of `fd`, if the table reaches that far.
fn slot(fds: &mut [Option<FdState>], fd: RawFd) -> Option<&mut Option<FdState>> {
    usize::try_from(fd).ok().and_then(|i| fds.get_mut(i))
}

/// Retry the waiters in order; returns whether one answered `WouldBlock`, or
/// (with `trust_drained`) finished with a read its op calls drained: the fd
/// is then known not ready in this direction until the next event.
fn retry(
    queue: &mut VecDeque<Waiter>,
    where_is: &mut WhereIs,
    pending: &mut Vec<Completion>,
    trust_drained: bool,
) -> bool {
    while let Some(w) = queue.front_mut() {
        // SAFETY: queued ops are valid until their completion is pushed
        // (invariant 2); this is the only access.
        let op = unsafe { w.op.0.as_mut() };
        let r = op.perform();
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            return true;
        }
        let drained = trust_drained && matches!(r, Ok(n) if op.drained(n));
        let w = queue.pop_front().expect("front exists");
        where_is.remove(w.user_data);
        complete(pending, w.user_data, r);
        if drained {
            return true; // invariant 4: the next arrival raises an edge
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_is_matches_a_map_for_any_keys() {
        // Dense slots, a second live key on a taken slot (another
        // generation), slots past the dense range, removes of absent keys and
        // reuse of freed slots, against a plain HashMap.
        let mut w = WhereIs::default();
        let mut model = HashMap::new();
        let gen_ = |g: u64, slot: u64| (g << 32) | slot;
        let keys = [
            gen_(0, 0),
            gen_(0, 7),
            gen_(1, 7), // same slot as the one before, both live
            gen_(0, DENSE_SLOTS as u64),
            gen_(3, u64::from(u32::MAX)),
            gen_(2, 5),
        ];
        for (i, &k) in keys.iter().enumerate() {
            w.insert(k, i as RawFd);
            model.insert(k, i as RawFd);
        }
        assert_eq!(
            w.remove(gen_(9, 7)),
            None,
            "another generation of a live slot"
        );
        assert_eq!(w.remove(gen_(0, 123)), None, "never inserted");
        for &k in &[keys[1], keys[2], keys[3], keys[4]] {
            assert_eq!(w.remove(k), model.remove(&k), "key {k:#x}");
            assert_eq!(w.remove(k), None, "removed twice: {k:#x}");
        }
        // Slot 7 is free again: a new generation takes the dense entry.
        w.insert(gen_(4, 7), 40);
        model.insert(gen_(4, 7), 40);
        for (k, fd) in model.drain() {
            assert_eq!(w.remove(k), Some(fd), "key {k:#x}");
        }
        assert!(w.sparse.is_empty());
        assert!(w.dense.iter().all(|e| e.0 == NO_KEY));
    }
}
